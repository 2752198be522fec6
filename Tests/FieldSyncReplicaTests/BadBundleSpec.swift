import FieldSyncCore
@testable import FieldSyncReplica
import Foundation
import Testing

/// Truncated, corrupt and oversized bundles get a clear error and a non-zero exit, and leave the
/// receiving replica exactly as it was. A single invalid change line spoils nothing else: it is
/// set aside with its line and reason and the rest of the bundle is applied (issue 12, point 2).
@Suite(.serialized) struct BadBundleSpec {
    let dir = TempDir("badbundle")
    let target: String
    let goodLines: [[UInt8]]
    let good: String

    init() throws {
        let a = try makeReplica(dir, "a")
        for n in 0..<40 {
            let id = try a.add(.dispute, disputeInput(parties: "当事人\(n)"))
            if n % 3 == 0 { try a.edit(id, ["status": "调解中"]) }
        }
        good = dir.file("good.bundle")
        try a.exportBundle(to: good)
        let raw = try Gzip.decompress([UInt8](Data(contentsOf: URL(fileURLWithPath: good))), limit: 1 << 30)
        goodLines = raw.split(separator: 0x0A, omittingEmptySubsequences: false).map(Array.init).filter { !$0.isEmpty }
        let b = try makeReplica(dir, "b")
        try b.add(.dispute, disputeInput(village2, parties: "乙村的纠纷"))
        target = b.path
    }

    func write(_ name: String, _ bytes: [UInt8]) throws -> String {
        let p = dir.file(name)
        try Data(bytes).write(to: URL(fileURLWithPath: p))
        return p
    }

    func bundle(_ lines: [[UInt8]]) -> [UInt8] { Gzip.compress(Array(lines.joined(separator: [0x0A])) + [0x0A]) }

    /// The index of the first line from `i` on that holds `needle` (a change line, not a manifest).
    func line(from i: Int, containing needle: String) -> Int {
        (i..<goodLines.count).first { String(decoding: goodLines[$0], as: UTF8.self).contains(needle) }!
    }

    func replaceLine(_ i: Int, _ transform: (String) -> String) -> [[UInt8]] {
        var l = goodLines
        l[i] = Array(transform(String(decoding: l[i], as: UTF8.self)).utf8)
        return l
    }

    /// Imports `file` through the CLI and checks: exit 65, the message, nothing changed.
    func expectRefused(_ file: String, mentioning needles: [String], extra: [String] = [], sourceLocation: SourceLocation = #_sourceLocation) throws {
        let before = try fingerprint(target)
        let r = try runCLI(["bundle", "import", file] + extra, db: target)
        #expect(r.status == 65, "exit \(r.status), stderr: \(r.stderr)", sourceLocation: sourceLocation)
        for n in needles {
            #expect(r.stderr.contains(n), "stderr lacks \"\(n)\": \(r.stderr)", sourceLocation: sourceLocation)
        }
        #expect(try fingerprint(target) == before, "the replica changed", sourceLocation: sourceLocation)
    }

    @Test func theGoodBundleImports() throws {
        let r = try runCLI(["bundle", "import", good], db: target)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("新变更 54"))
    }

    @Test func truncatedBundleIsRefused() throws {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: good)))
        try expectRefused(try write("cut.bundle", Array(bytes.prefix(bytes.count / 2))), mentioning: ["truncated"])
        // Cut exactly before the gzip trailer: the data is all there but the stream is unfinished.
        try expectRefused(try write("cut8.bundle", Array(bytes.dropLast(8))), mentioning: ["truncated"])
    }

    @Test func bundleWithoutItsEndLineIsRefused() throws {
        try expectRefused(try write("noend.bundle", bundle(Array(goodLines.dropLast()))), mentioning: ["truncated", "no end line"])
    }

    @Test func endLineCountMustMatch() throws {
        try expectRefused(try write("count.bundle", bundle(Array(goodLines.dropLast(2)) + [goodLines.last!])), mentioning: ["says 54 changes but the file holds 53"])
    }

    @Test func dataAfterTheEndLineIsRefused() throws {
        try expectRefused(try write("after.bundle", bundle(goodLines + [goodLines[3]])), mentioning: ["data after the end line"])
    }

    @Test func corruptedBundleIsRefused() throws {
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: good)))
        for i in stride(from: bytes.count / 3, to: bytes.count / 3 + 40, by: 1) { bytes[i] ^= 0x5A }
        try expectRefused(try write("corrupt.bundle", bytes), mentioning: ["corrupt"])
    }

    @Test func oversizedBundleIsRefusedBeforeItIsRead() throws {
        // A gzip bomb: a small file that inflates far past the limit.
        let bomb = Gzip.compress(goodLines[0] + [0x0A] + [UInt8](repeating: 0x20, count: 8 << 20))
        #expect(bomb.count < 64 * 1024)
        try expectRefused(try write("bomb.bundle", bomb), mentioning: ["more than 1000000 bytes"], extra: ["--max-bytes", "1000000"])
        let long = Gzip.compress(goodLines[0] + [0x0A] + [UInt8](repeating: 0x20, count: 17 << 20))
        try expectRefused(try write("longline.bundle", long), mentioning: ["line 2 is longer than"])
    }

    /// Imports `file` through the CLI and checks: exit 0, every other change of the bundle
    /// applied, and each bad line kept aside (as it came) with a reason naming it.
    func expectSetAside(_ file: String, lines bad: [Int], mentioning needles: [String], sourceLocation: SourceLocation = #_sourceLocation) throws {
        let r = try runCLI(["bundle", "import", file], db: target)
        #expect(r.status == 0, "exit \(r.status), stderr: \(r.stderr)", sourceLocation: sourceLocation)
        for n in needles {
            #expect(r.stdout.contains(n), "the report lacks \"\(n)\": \(r.stdout)", sourceLocation: sourceLocation)
        }
        let b = try Replica.open(path: target)
        let aside = try b.setAsideChanges()
        #expect(aside.count == bad.count, "\(aside)", sourceLocation: sourceLocation)
        for n in bad {
            #expect(aside.contains { $0.reason.contains("line \(n + 1)") && $0.body.utf8.elementsEqual(goodLinesReplaced(file, n)) },
                    "line \(n + 1) is not kept as it came: \(aside)", sourceLocation: sourceLocation)
        }
        // Every other change line of the bundle landed.
        let changeLines = goodLines.indices.filter { i in i > 0 && i < goodLines.count - 1 && !String(decoding: goodLines[i], as: UTF8.self).hasPrefix("{\"manifest\"") }
        let held = try Set(fingerprint(target).compactMap { $0.split(separator: " ", maxSplits: 2).dropFirst(2).first.map(String.init) })
        for i in changeLines where !bad.contains(i) {
            #expect(held.contains(String(decoding: goodLines[i], as: UTF8.self)), "line \(i + 1) did not land", sourceLocation: sourceLocation)
        }
    }

    /// The bytes of line `n` of the bundle file `file`.
    func goodLinesReplaced(_ file: String, _ n: Int) -> [UInt8] {
        let raw = try! Gzip.decompress([UInt8](Data(contentsOf: URL(fileURLWithPath: file))), limit: 1 << 30)
        return raw.split(separator: 0x0A, omittingEmptySubsequences: false).map(Array.init).filter { !$0.isEmpty }[n]
    }

    @Test func aSchemaViolatingChangeIsSetAsideWithItsLineAndFieldAndTheRestLands() throws {
        let lines = replaceLine(20) { $0.replacingOccurrences(of: "\"受理\"", with: "\"已解决\"").replacingOccurrences(of: "\"调解中\"", with: "\"已解决\"") }
        try expectSetAside(try write("schema.bundle", bundle(lines)), lines: [20], mentioning: ["line 21", "dispute.status (办理状态)", "\"已解决\" is not one of"])
    }

    @Test func negativeMoneyAndWrongTypesAreSetAside() throws {
        let lines = replaceLine(5) { $0.replacingOccurrences(of: "\"parties\":{\"value\":\"当事人", with: "\"parties\":{\"value\":17,\"x\":\"") }
        try expectSetAside(try write("type.bundle", bundle(lines)), lines: [5], mentioning: ["line 6"])
        let proj = #"{"id":"1111111111111111:1","kind":"project","row":"520221105201-019aa9f1c2d34e5f8a7b6c5d4e3f2a1b","hlc":"1763784245123-0","author":"王芳","schema":1,"fields":{"spent_fen":{"value":-500}}}"#
        let l2 = [goodLines[0], Array(proj.utf8), Array(BundleFormat.trailerLine(count: 1).utf8)]
        let r = try runCLI(["bundle", "import", try write("neg.bundle", bundle(l2))], db: target)
        #expect(r.status == 0 && r.stdout.contains("line 2") && r.stdout.contains("money cannot be negative"), "\(r.stdout) \(r.stderr)")
    }

    @Test func unknownKindsAndFieldsOfThisSchemaAreSetAside() throws {
        try expectSetAside(try write("kind.bundle", bundle(replaceLine(3) { $0.replacingOccurrences(of: "\"kind\":\"dispute\"", with: "\"kind\":\"meeting\"") })),
                           lines: [3], mentioning: ["line 4", "unknown record kind \"meeting\""])
    }

    @Test func aMisspelledFieldOfThisSchemaIsSetAside() throws {
        let n = line(from: 7, containing: "\"parties\":")
        try expectSetAside(try write("field.bundle", bundle(replaceLine(n) { $0.replacingOccurrences(of: "\"parties\":", with: "\"partys\":") })),
                           lines: [n], mentioning: ["line \(n + 1)", "has no field \"partys\""])
    }

    @Test func invalidUTF8IsRefused() throws {
        var lines = goodLines
        let s = String(decoding: lines[9], as: UTF8.self)
        let r = s.range(of: "当事人")!
        var bytes = Array(s[..<r.lowerBound].utf8)
        bytes += [0xE5, 0xBD, 0xFF, 0xC0, 0xAF]  // a cut sequence, an invalid byte, an overlong "/"
        bytes += Array(s[r.upperBound...].utf8)
        lines[9] = bytes
        try expectRefused(try write("utf8.bundle", bundle(lines)), mentioning: ["line 10", "invalid UTF-8"])
    }

    @Test func aReplayedIDWithDifferentContentIsRefused() throws {
        // Import the good bundle, then a bundle reusing one of its ids for other content:
        // the signature of a copied replica file.
        #expect(try runCLI(["bundle", "import", good], db: target).status == 0)
        let clone = replaceLine(12) { $0.replacingOccurrences(of: "当事人", with: "别人") }
        try expectRefused(try write("clone.bundle", bundle(clone)), mentioning: ["line 13", "received before with different content"])
    }

    @Test func notABundleIsRefused() throws {
        try expectRefused(try write("text.bundle", Array("这不是交换包\n".utf8)), mentioning: ["not a FieldSync bundle"])
        try expectRefused(try write("empty.bundle", []), mentioning: ["empty"])
        try expectRefused(dir.file("missing.bundle"), mentioning: ["cannot open"])
        let future = replaceLine(0) { $0.replacingOccurrences(of: "\"version\":2", with: "\"version\":7") }
        try expectRefused(try write("v7.bundle", bundle(future)), mentioning: ["version 7 is not supported"])
        let old = replaceLine(0) { $0.replacingOccurrences(of: "\"version\":2", with: "\"version\":1") }
        try expectRefused(try write("v1.bundle", bundle(old)), mentioning: ["version 1 carries no signatures"])
    }

    /// The last change line broken: it alone is set aside, every line before it lands.
    @Test func aBadLineLateInTheBundleIsSetAsideAndTheRestLands() throws {
        let n = goodLines.count - 2
        let lines = replaceLine(n) { $0.replacingOccurrences(of: "\"hlc\":\"", with: "\"hlc\":\"x") }
        try expectSetAside(try write("late.bundle", bundle(lines)), lines: [n], mentioning: ["line \(n + 1)", "clock reading"])
    }
}

import FieldSyncCore
@testable import FieldSyncReplica
import Foundation
import Testing

/// Simplified and Traditional Chinese, emoji and 100 KB notes come back byte for byte through
/// every path: the replica API, a bundle, the CLI's JSON, and plain `sqlite3`.
@Suite struct TextRoundTripSpec {
    static let seedsDir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("shared/seeds").path

    static func seedTexts() throws -> [String] {
        let names = try FileManager.default.contentsOfDirectory(atPath: seedsDir).filter { $0.hasSuffix(".txt") }.sorted()
        return try names.map { try String(contentsOfFile: "\(seedsDir)/\($0)", encoding: .utf8) }
    }

    static func samples() throws -> [String] {
        let seeds = try seedTexts()
        #expect(seeds.count >= 5, "expected the five seed articles in \(seedsDir)")
        var big = ""
        while big.utf8.count < 100 * 1024 { big += seeds.joined(separator: "\n") }
        return seeds + [
            big,
            "👨‍👩‍👧‍👦 一家四口 🏔️🌾🍵 🇨🇳 ✅",
            "e\u{301} café \u{00E9} 南海區(qū)大瀝鎮(zhèn) 瀝東社區(qū)",  // decomposed and precomposed é differ in bytes
            "  前后有空格\t制表符\r\n换行 \"引号\" \\反斜杠\\ ",
            "𠀀𪚥𰻞 (CJK Extension B and G)",
        ]
    }

    func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

    @Test func textRoundTripsByteForByteEverywhere() throws {
        let dir = TempDir()
        let a = try makeReplica(dir, "a"), b = try makeReplica(dir, "b")
        let samples = try Self.samples()
        var ids: [String] = []
        for s in samples {
            let head = String(s.prefix(50))
            ids.append(try a.add(.visit, ["village": .string(village1), "cadre_name": "王芳", "visit_date": "2026-11-20",
                                          "visit_kind": "入户走访", "household_head": .string(head), "notes": .string(s)]))
        }
        try a.exportBundle(to: dir.file("t.bundle"))
        try b.importBundle(from: dir.file("t.bundle"))
        for (s, id) in zip(samples, ids) {
            for r in [a, b] {
                #expect(bytes(try r.record(id)["notes"].text ?? "") == bytes(s), "replica \(r.siteName) changed the bytes of a \(s.utf8.count)-byte note")
                #expect(bytes(try r.record(id)["household_head"].text ?? "") == bytes(String(s.prefix(50))))
            }
            // The CLI's JSON.
            let out = try runCLI(["record", "get", id, "--json"], db: b.path)
            #expect(out.status == 0)
            let json = try JSONValue.parse(out.stdout)
            #expect(bytes(json["fields"]?["notes"]?.stringValue ?? "") == bytes(s))
            // Plain sqlite3 reading the view.
            if FileManager.default.isExecutableFile(atPath: "/usr/bin/sqlite3") {
                let p = Process()
                p.executableURL = URL(fileURLWithPath: "/usr/bin/sqlite3")
                p.arguments = [b.path, "SELECT hex(notes) FROM visit WHERE id = '\(id)'"]
                let pipe = Pipe()
                p.standardOutput = pipe
                try p.run()
                let hex = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
                p.waitUntilExit()
                #expect(hex == bytes(s).map { String(format: "%02X", $0) }.joined())
            }
        }
    }

    @Test func oversizedNotesAreRefusedWithTheirSize() throws {
        let dir = TempDir()
        let a = try makeReplica(dir, "a")
        let huge = String(repeating: "字", count: 400_000)  // 1.2 MB of UTF-8
        #expect {
            try a.add(.visit, ["village": .string(village1), "cadre_name": "王芳", "visit_date": "2026-11-20",
                               "visit_kind": "入户走访", "notes": .string(huge)])
        } throws: { e in
            "\(e)".contains("visit.notes (走访情况)") && "\(e)".contains("1200000 bytes long")
        }
    }
}

import FieldSyncCore
import FieldSyncTrust
@testable import FieldSyncReplica
import Foundation
import GRDB
import Testing

/// A mixed fleet loses nothing (issue 12, point 2; changeset.md §2.4): a change made with a
/// newer schema is taken by a schema-1 replica, its known fields merge, and what it cannot read
/// is kept and relayed byte for byte — by bundle, and in the snapshots a hub serves from a
/// replica's tables.
@Suite struct MixedSchemaSpec {
    let dir = TempDir("mixedschema")
    static let row = "520221105201-019aa9f1c2d34e5f8a7b6c5d4e3f2a1b"

    /// A dispute as a schema-2 laptop writes it: `status` holds a choice schema 1 lacks, and
    /// `mediation_fee_fen` and `witnesses` are fields schema 1 lacks.
    static func created(_ site: SiteID) -> String {
        #"{"id":"\#(site.hex):1","kind":"dispute","row":"\#(row)","hlc":"1763784000001-0","author":"王芳","schema":2,"fields":{"#
            + #""village":{"value":"520221105201"},"category":{"value":"邻里纠纷"},"parties":{"value":"张三与李四"},"summary":{"value":"宅基地边界"},"#
            + #""reported_on":{"value":"2026-11-20"},"status":{"value":"司法确认"},"mediation_fee_fen":{"value":0},"witnesses":{"value":["王五","赵六"]}}}"#
    }

    /// A later schema-2 edit that writes only a field schema 1 lacks.
    static func feeEdit(_ site: SiteID) -> String {
        #"{"id":"\#(site.hex):2","kind":"dispute","row":"\#(row)","hlc":"1763784000002-0","author":"王芳","schema":2,"fields":{"mediation_fee_fen":{"value":30000,"seen":{"\#(site.hex)":1}}}}"#
    }

    /// A bundle from `key`'s site holding `texts` under one manifest it signs.
    func bundle(_ name: String, _ key: SiteKey, _ texts: [String]) throws -> String {
        let header = BundleFormat.headerLine(BundleHeader(schema: 2, site: key.site, siteName: "新版笔记本", created: 1_763_784_000_000, sites: [key.site: "新版笔记本"]))
        let m = Manifest.signed(by: key, as: key.site, digests: texts.map { ChangeDigest(canonicalText: $0) })
        let lines = [header, BundleFormat.manifestLine(m.json)] + texts + [BundleFormat.trailerLine(count: texts.count)]
        let p = dir.file(name)
        try Data(Gzip.compress(Array(lines.joined(separator: "\n").utf8) + [0x0A])).write(to: URL(fileURLWithPath: p))
        return p
    }

    func bodies(_ r: Replica) throws -> [String] {
        try DatabaseQueue(path: r.path).read { db in try String.fetchAll(db, sql: "SELECT body FROM fs_change ORDER BY seq") }
    }

    func lines(ofBundle path: String) throws -> [String] {
        let raw = try Gzip.decompress([UInt8](Data(contentsOf: URL(fileURLWithPath: path))), limit: 1 << 30)
        return String(decoding: raw, as: UTF8.self).split(separator: "\n").map(String.init)
    }

    @Test func aSchema1ReplicaMergesWhatItKnowsAndRelaysTheRestByteForByte() throws {
        let key = SiteKey()
        let texts = [Self.created(key.site), Self.feeEdit(key.site)]
        let a = try makeReplica(dir, "a")
        let rep = try a.importBundle(from: try bundle("newer.bundle", key, texts))
        #expect(rep.apply.applied == 1 && rep.apply.obsolete == 1 && rep.apply.setAside == 0, "\(rep.apply)")
        // Known fields merged; the value schema 1 does not allow is not guessed at.
        let rec = try a.record(Self.row)
        #expect(rec["parties"] == .text("张三与李四"))
        #expect(rec["reported_on"] == .text("2026-11-20"))
        #expect(rec["status"] == .null)
        // Both changes are held exactly as written.
        #expect(try bodies(a).filter { $0.contains("\"schema\":2") } == texts)

        // Relayed by bundle: the lines are the same bytes, under the manifest that proved them.
        let out = dir.file("relay.bundle")
        try a.exportBundle(to: out)
        let relayed = try lines(ofBundle: out)
        for t in texts { #expect(relayed.contains(t), "the relay changed \(t)") }
        let c = try makeReplica(dir, "c")
        let rc = try c.importBundle(from: out)
        #expect(rc.apply.setAside == 0, "\(rc.apply)")
        #expect(try bodies(c).filter { $0.contains("\"schema\":2") } == texts)
        // Importing again is harmless, and the same id with other content is still a clone.
        #expect(try c.importBundle(from: out).apply.duplicates == 2)

        // A hub built on these tables sends both in a snapshot, although no register holds the
        // fee edit: a schema-2 laptop needs it.
        let page = try a.snapshotPage(scope: "520221105201", after: nil, limit: 100, maxBytes: 1 << 20)
        for t in texts { #expect(page.texts.contains(t), "the snapshot lacks \(t)") }
    }

    @Test func aLaterSchema1EditMergesWithTheNewerChangeAsUsual() throws {
        let key = SiteKey()
        let a = try makeReplica(dir, "a")
        try a.importBundle(from: try bundle("newer.bundle", key, [Self.created(key.site)]))
        try a.edit(Self.row, ["parties": "张三、李四"])
        #expect(try a.record(Self.row)["parties"] == .text("张三、李四"))
        #expect(try a.conflicts().isEmpty)
    }

    @Test func theSameIdWithOtherUnreadableContentIsStillAClone() throws {
        let key = SiteKey()
        let a = try makeReplica(dir, "a")
        try a.importBundle(from: try bundle("one.bundle", key, [Self.feeEdit(key.site)]))
        let forged = Self.feeEdit(key.site).replacingOccurrences(of: "30000", with: "90000")
        #expect(throws: (any Error).self) { try a.importBundle(from: try bundle("two.bundle", key, [forged])) }
        #expect(try bodies(a) == [Self.feeEdit(key.site)])
    }
}

import FieldSyncCore
@testable import FieldSyncReplica
import Foundation
import Testing

@Suite struct MergeSpec {
    @Test func addedRecordReadsBackWithEveryValue() throws {
        let dir = TempDir()
        let a = try makeReplica(dir, "a")
        let id = try a.add(.dispute, disputeInput())
        let rec = try a.record(id)
        #expect(rec.kind == .dispute)
        #expect(rec["status"] == .text("受理"))
        #expect(rec["parties"] == .text("张三与李四"))
        #expect(rec["reported_on"] == .text("2026-11-20"))
        #expect(!rec.deleted)
        #expect(rec.conflicts.isEmpty)
    }

    @Test func editsToDifferentFieldsBothSurvive() throws {
        let dir = TempDir()
        let a = try makeReplica(dir, "a"), b = try makeReplica(dir, "b")
        let id = try a.add(.dispute, disputeInput())
        try sync(a, b)
        try a.edit(id, ["status": "已化解"])
        try b.edit(id, ["parties": "张三与李四、王五"])
        try sync(a, b)
        try sync(b, a)
        for r in [a, b] {
            let rec = try r.record(id)
            #expect(rec["status"] == .text("已化解"))
            #expect(rec["parties"] == .text("张三与李四、王五"))
            #expect(rec.conflicts.isEmpty)
        }
        #expect(try snapshot(a) == snapshot(b))
    }

    @Test func concurrentEditsToSameFieldAreKeptAsConflict() throws {
        let dir = TempDir()
        let a = try makeReplica(dir, "a"), b = try makeReplica(dir, "b")
        let id = try a.add(.dispute, disputeInput())
        try sync(a, b)
        try a.edit(id, ["status": "已化解"])
        try b.edit(id, ["status": "已上报"])
        try sync(a, b)
        try sync(b, a)
        let ra = try a.record(id), rb = try b.record(id)
        #expect(ra.conflicts == ["status"])
        #expect(ra["status"] == rb["status"])
        let state = try a.rowState(.dispute, id)!
        let values = Set(state["status"]!.entries.map(\.value))
        #expect(values == [.text("已化解"), .text("已上报")])
        #expect(try a.conflicts().count == 1)
        #expect(try snapshot(a) == snapshot(b))
    }

    @Test func sequentialOverwriteIsNeverAConflict() throws {
        let dir = TempDir()
        let a = try makeReplica(dir, "a"), b = try makeReplica(dir, "b")
        let id = try a.add(.dispute, disputeInput())
        try sync(a, b)
        try b.edit(id, ["status": "调解中"])
        try sync(b, a)
        try a.edit(id, ["status": "已化解"])
        try sync(a, b)
        for r in [a, b] {
            #expect(try r.record(id)["status"] == .text("已化解"))
            #expect(try r.conflicts().isEmpty)
        }
    }

    @Test func deleteAndUndeleteReplicate() throws {
        let dir = TempDir()
        let a = try makeReplica(dir, "a"), b = try makeReplica(dir, "b")
        let id = try a.add(.dispute, disputeInput())
        try sync(a, b)
        try a.delete(id)
        try sync(a, b)
        #expect(try b.record(id).deleted)
        #expect(try b.records(.dispute).isEmpty)
        try b.undelete(id)
        try sync(b, a)
        #expect(try !a.record(id).deleted)
        #expect(try a.record(id)["status"] == .text("受理"))
    }

    @Test func deleteConcurrentWithEditIsAConflict() throws {
        let dir = TempDir()
        let a = try makeReplica(dir, "a"), b = try makeReplica(dir, "b")
        let id = try a.add(.dispute, disputeInput())
        try sync(a, b)
        try a.delete(id)
        try b.edit(id, ["status": "已化解"])
        try sync(a, b)
        try sync(b, a)
        for r in [a, b] {
            let rec = try r.record(id)
            #expect(rec.deleted)
            #expect(rec.conflicts == [RowState.recordConflictField])
        }
        // Undeleting settles it and keeps the edit.
        try b.undelete(id)
        try sync(b, a)
        for r in [a, b] {
            let rec = try r.record(id)
            #expect(!rec.deleted)
            #expect(rec.conflicts.isEmpty)
            #expect(rec["status"] == .text("已化解"))
        }
    }

    @Test func applyingTheSameChangesTwiceChangesNothing() throws {
        let dir = TempDir()
        let a = try makeReplica(dir, "a"), b = try makeReplica(dir, "b")
        let id = try a.add(.dispute, disputeInput())
        try a.edit(id, ["status": "调解中"])
        let first = try sync(a, b)
        #expect(first.applied == 2)
        let before = try snapshot(b)
        let second = try sync(a, b)
        #expect(second.duplicates == 2 && second.applied == 0)
        #expect(try snapshot(b) == before)
    }

    @Test func bundleRoundTripIsIdempotent() throws {
        let dir = TempDir()
        let a = try makeReplica(dir, "a"), b = try makeReplica(dir, "b")
        let id = try a.add(.dispute, disputeInput())
        try a.edit(id, ["status": "调解中"])
        let rep = try a.exportBundle(to: dir.file("a.bundle"))
        #expect(rep.changes == 2)
        let i1 = try b.importBundle(from: dir.file("a.bundle"))
        #expect(i1.apply.applied == 2)
        let i2 = try b.importBundle(from: dir.file("a.bundle"))
        #expect(i2.apply.duplicates == 2 && i2.apply.applied == 0)
        #expect(try snapshot(a) == snapshot(b))
    }
}

@Suite struct RecordPlaceSpec {
    @Test func aRecordIdStartsWithItsVillageAndShortPrefixesFindIt() throws {
        let dir = TempDir()
        let a = try makeReplica(dir, "a")
        let id = try a.add(.dispute, disputeInput(village2))
        #expect(id.hasPrefix(village2 + "-"))
        let short = String(RecordID.shortPart(id).prefix(6))
        #expect(try a.resolve(short).1 == id)
        #expect(try a.resolve(RecordID.short(id)).1 == id, "the 8 digits tables show find the record")
        #expect(try a.resolve(String(id.prefix(20))).1 == id)
    }

    @Test func aRecordCannotMoveToAnotherVillage() throws {
        let dir = TempDir()
        let a = try makeReplica(dir, "a")
        let id = try a.add(.dispute, disputeInput(village1))
        #expect {
            try a.edit(id, ["village": .string(village2)])
        } throws: { "\($0)".contains("cannot move") }
        // Writing the same village again is allowed (it changes nothing).
        #expect(try a.edit(id, ["village": .string(village1)]).change == nil)
        // A crafted change that moves it is refused on decoding, whatever the replica holds.
        var json = try JSONValue.parse(allChanges(a)[0].json).objectValue!
        json["id"] = "1111111111111111:1"
        json["fields"] = ["village": ["value": .string(village2)]]
        #expect(throws: InputError.self) { try ChangeCodec.decode(.object(json)) }
        // And an id that does not start with the record's village is refused when adding.
        #expect {
            var input = disputeInput(village1)
            input["id"] = .string(village2 + "-0123456789abcdef0123456789abcdef")
            try a.add(.dispute, input)
        } throws: { "\($0)".contains("must be \(village2)") }
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/sqlite3")))
    func plainSQLCannotMoveARecordEither() throws {
        let dir = TempDir()
        let path = dir.file("a.sqlite")
        let id: String
        do { id = try Replica.create(path: path, siteName: "a", author: "王芳").add(.dispute, disputeInput(village1)) }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/sqlite3")
        p.arguments = [path, "UPDATE dispute SET village = '\(village2)' WHERE id = '\(id)'"]
        let err = Pipe()
        p.standardError = err
        try p.run()
        let msg = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(p.terminationStatus != 0)
        #expect(msg.contains("cannot move"))
        #expect(try Replica.open(path: path).record(id)["village"] == .text(village1))
    }
}

extension Change {
    var json: String { ChangeCodec.canonicalText(self) }
}

import FieldSyncCore
@testable import FieldSyncReplica
import Foundation
import Testing

/// Writes made to the replica file by another program through plain SQL (the sqlite3 shell)
/// are checked by triggers and become ordinary changes that sync.
@Suite struct SQLCaptureSpec {
    func sqlite3(_ path: String, _ sql: String) throws -> CLIResult {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/sqlite3")
        p.arguments = [path, sql]
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return CLIResult(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/sqlite3")))
    func plainSQLWritesBecomeChangesThatSync() throws {
        let dir = TempDir()
        let path = dir.file("a.sqlite")
        let keep: String
        do {
            let a = try Replica.create(path: path, siteName: "a", author: "王芳")
            keep = try a.add(.dispute, disputeInput(parties: "原当事人"))
        }
        let ins = try sqlite3(path, """
            INSERT INTO dispute(village, category, parties, summary, reported_on, status)
            VALUES ('520221105201', '土地承包', '刘某与村集体', '承包地界线不清', '2026-11-19', '受理');
            UPDATE dispute SET status = '已化解', resolution = '重新丈量后双方认可' WHERE parties = '刘某与村集体';
            UPDATE dispute SET mediator_name = '陈书记' WHERE id = '\(keep)';
            """)
        #expect(ins.status == 0, "\(ins.stderr)")
        let bad = try sqlite3(path, "UPDATE dispute SET status = '胡乱填写' WHERE id = '\(keep)'")
        #expect(bad.status != 0)
        #expect(bad.stderr.contains("dispute.status (办理状态): must be one of"))
        let noReq = try sqlite3(path, "INSERT INTO dispute(village, category) VALUES ('520221105201', '其他')")
        #expect(noReq.status != 0 && noReq.stderr.contains("is required"))

        let a = try Replica.open(path: path)  // ingests the captured writes
        let recs = try a.records(.dispute)
        #expect(recs.count == 2)
        let new = try #require(recs.first { $0["parties"] == .text("刘某与村集体") })
        #expect(new["status"] == .text("已化解"))
        #expect(try a.record(keep)["mediator_name"] == .text("陈书记"))
        #expect(try a.record(keep)["status"] == .text("受理"), "the refused update must not have changed anything")
        let (_, h) = try a.history(new.id)
        #expect(h.contains { $0.field == "status" && $0.value == "受理" && $0.status == .superseded && $0.note == Replica.capturedNote })
        #expect(h.contains { $0.field == "status" && $0.value == "已化解" && $0.status == .current })

        // A delete through SQL is a delete like any other, and it all syncs.
        #expect(try sqlite3(path, "DELETE FROM dispute WHERE id = '\(keep)'").status == 0)
        let a2 = try Replica.open(path: path)
        #expect(try a2.record(keep).deleted)
        let b = try makeReplica(dir, "b")
        try sync(a2, b)
        #expect(try b.record(keep).deleted)
        #expect(try b.record(new.id)["resolution"] == .text("重新丈量后双方认可"))
        #expect(try snapshot(a2) == snapshot(b))
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/sqlite3")))
    func aCapturedWriteThatBreaksTheSchemaIsSetAsideAndTheRecordRestored() throws {
        let dir = TempDir()
        let path = dir.file("a.sqlite")
        let id: String
        do {
            let a = try Replica.create(path: path, siteName: "a", author: "王芳")
            id = try a.add(.dispute, disputeInput(parties: "张三与李四"))
        }
        // Invalid UTF-8 passes the trigger (it is still TEXT) but not ingestion.
        #expect(try sqlite3(path, "UPDATE dispute SET parties = CAST(x'e5bcff' AS TEXT), status = '调解中' WHERE id = '\(id)'").status == 0)
        let a = try Replica.open(path: path)
        let rejected = try a.rejectedCaptures()
        #expect(rejected.count == 1)
        #expect(rejected.first?.reason.contains("UTF-8") == true)
        let rec = try a.record(id)
        #expect(rec["parties"] == .text("张三与李四"), "the record is put back as it was")
        #expect(rec["status"] == .text("受理"))
        #expect(try a.status().capturesRejected == 1)
    }
}

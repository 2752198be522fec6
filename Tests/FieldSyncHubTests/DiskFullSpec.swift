import FieldSyncCore
@_spi(Hub) @testable import FieldSyncReplica
import Foundation
import GRDB
import Testing

/// A full disk and I/O errors (a read-only filesystem) under the laptop and under the hub, on
/// small tmpfs mounts: a clear error, no cursor past durable data, an intact database, and a
/// clean resume once space is freed. Needs root (mount); skipped otherwise.
@Suite(.serialized) struct DiskFullSpec {
    static let canMount: Bool = {
        guard getuid() == 0 else { return false }
        let probe = NSTemporaryDirectory() + "fieldsync-mount-probe-\(getpid())"
        try? FileManager.default.createDirectory(atPath: probe, withIntermediateDirectories: true)
        defer { _ = shell("umount", probe); try? FileManager.default.removeItem(atPath: probe) }
        return shell("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", probe) == 0
    }()

    @discardableResult
    static func shell(_ args: String...) -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = args
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try? p.run()
        p.waitUntilExit()
        return p.terminationStatus
    }

    /// A tmpfs of `size` mounted at a fresh folder, unmounted at the end.
    final class Mount {
        let path: String
        init(_ dir: TempDir, _ name: String, size: String) throws {
            path = dir.file(name)
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
            guard DiskFullSpec.shell("mount", "-t", "tmpfs", "-o", "size=\(size)", "tmpfs", path) == 0 else { throw CocoaError(.fileWriteNoPermission) }
        }
        func resize(_ size: String) { DiskFullSpec.shell("mount", "-o", "remount,size=\(size)", path) }
        func readOnly(_ ro: Bool) { DiskFullSpec.shell("mount", "-o", ro ? "remount,ro" : "remount,rw", path) }
        deinit { DiskFullSpec.shell("umount", "-l", path) }
    }

    static func integrity(_ db: String) throws -> String { try DatabaseQueue(path: db).read { try String.fetchOne($0, sql: "PRAGMA integrity_check") ?? "" } }

    func jsonl(_ n: Int, _ tag: String) -> String {
        (0..<n).map { i in
            #"{"village":"520221105201","category":"邻里纠纷","parties":"\#(tag)\#(i)","summary":"\#(String(repeating: "纠纷经过的详细记录。", count: 30))","reported_on":"2026-11-20","status":"受理"}"#
        }.joined(separator: "\n")
    }

    @Test(.enabled(if: DiskFullSpec.canMount))
    func aLaptopDiskThatFillsUpGivesAClearErrorLosesNothingAndResumes() throws {
        let dir = TempDir()
        let m = try Mount(dir, "laptop", size: "4m")
        let db = m.path + "/replica.sqlite"
        #expect(try runCLI(["init", "--site", "a", "--author", "王芳"], db: db).status == 0)
        try jsonl(200, "少量").write(toFile: dir.file("small.jsonl"), atomically: true, encoding: .utf8)
        #expect(try runCLI(["record", "import", "dispute", dir.file("small.jsonl")], db: db).status == 0)
        let before = try fingerprint(db)
        try jsonl(6000, "大量").write(toFile: dir.file("big.jsonl"), atomically: true, encoding: .utf8)
        let r = try runCLI(["record", "import", "dispute", dir.file("big.jsonl")], db: db)
        #expect(r.status == 74, "exit \(r.status): \(r.stderr)")
        #expect(r.stderr.contains("full"), "the message says the disk is full: \(r.stderr)")
        #expect(try Self.integrity(db) == "ok")
        #expect(try fingerprint(db) == before, "nothing of the failed import is there")
        // A read-only filesystem (an I/O error for every write): a clear error too.
        m.readOnly(true)
        let ro = try runCLI(["record", "add", "dispute", "--json", #"{"village":"520221105201","category":"其他","parties":"x","summary":"y","reported_on":"2026-11-20","status":"受理"}"#], db: db)
        #expect(ro.status == 74 || ro.status == 78, "exit \(ro.status): \(ro.stderr)")
        #expect(ro.stderr.contains("readonly") || ro.stderr.contains("read-only") || ro.stderr.contains("unable to open"), "\(ro.stderr)")
        m.readOnly(false)
        m.resize("64m")
        let again = try runCLI(["record", "import", "dispute", dir.file("big.jsonl")], db: db)
        #expect(again.status == 0, "\(again.stderr)")
        #expect(try Self.integrity(db) == "ok")
        #expect(try Replica.open(path: db).records(.dispute).count == 6200)
    }

    @Test(.enabled(if: DiskFullSpec.canMount))
    func aLaptopThatFillsUpWhilePullingKeepsItsCursorWithItsData() throws {
        let dir = TempDir()
        let hub = try HubProcess(db: dir.file("hub.sqlite"), log: dir.file("hub.log"))
        let a = try Laptop(dir, "a", author: "王芳")
        try a.enroll(hub, scope: village1)
        try jsonl(4000, "甲").write(toFile: dir.file("a.jsonl"), atomically: true, encoding: .utf8)
        #expect(try a.run(["record", "import", "dispute", dir.file("a.jsonl")]).status == 0)
        #expect(try a.sync().status == 0)
        let m = try Mount(dir, "b", size: "3m")
        let b = m.path + "/b.sqlite"
        #expect(try runCLI(["init", "--site", "b", "--author", "李明"], db: b).status == 0)
        let (_, code) = try hub.addDevice("b", scope: village1)
        #expect(try runCLI(["enroll", "--hub", hub.url, "--code", code], db: b).status == 0)
        let r = try runCLI(["sync", "--quiet"], db: b)
        #expect(r.status == 74, "exit \(r.status): \(r.stderr)")
        #expect(r.stderr.contains("full"), "\(r.stderr)")
        #expect(try Self.integrity(b) == "ok")
        // No cursor beyond the data it covers: every change up to the stored position is here.
        let (cursorOK, held) = try DatabaseQueue(path: b).read { db -> (Bool, Int) in
            let snapshotDone = try Int.fetchOne(db, sql: "SELECT snapshot_done FROM fs_sync") ?? 0
            let cursor = try Int64.fetchOne(db, sql: "SELECT pull_cursor FROM fs_sync") ?? 0
            let held = try Int.fetchOne(db, sql: "SELECT count(*) FROM fs_change") ?? 0
            return (snapshotDone == 0 ? cursor == 0 : true, held)
        }
        #expect(cursorOK, "the pull position did not move past what was stored")
        let status = try JSONValue.parse(try runCLI(["status", "--json"], db: b).stdout)["sync"]
        #expect(status?["lastSuccess"] == .null && status?["lastError"]?.stringValue?.contains("full") == true)
        m.resize("128m")
        #expect(try runCLI(["sync", "--quiet"], db: b).status == 0)
        #expect(try Replica.open(path: b).records(.dispute).count == 4000)
        #expect(held < 4000)
    }

    @Test(.enabled(if: DiskFullSpec.canMount))
    func aHubDiskThatFillsUpRefusesWithRetryAfterAndResumes() throws {
        let dir = TempDir()
        let m = try Mount(dir, "hub", size: "3m")
        let hubDB = m.path + "/hub.sqlite"
        var hub = try HubProcess(db: hubDB, log: dir.file("hub.log"))
        let a = try Laptop(dir, "a", author: "王芳")
        try a.enroll(hub, scope: village1)
        try jsonl(4000, "甲").write(toFile: dir.file("a.jsonl"), atomically: true, encoding: .utf8)
        #expect(try a.run(["record", "import", "dispute", dir.file("a.jsonl")]).status == 0)
        let r = try a.sync(attempts: 2)
        #expect(r.status == 75, "exit \(r.status): \(r.stderr)")
        #expect(r.stderr.contains("503") || r.stderr.contains("could not complete"), "\(r.stderr)")
        hub.kill(SIGTERM)
        #expect(try Self.integrity(hubDB) == "ok")
        // Whatever the laptop counts as acknowledged is at the hub.
        let acked = try CrashDuringSyncSpec.acknowledged(a.db)
        #expect(try CrashDuringSyncSpec.missingAtHub(acked, hub: hubDB) == 0)
        m.resize("128m")
        hub = try hub.restart()
        #expect(try a.sync().status == 0)
        let site = try #require(SiteID(hex: try a.status()["site"]!.stringValue!))
        let (n, twice) = try CrashDuringSyncSpec.count(hubDB, site: site)
        #expect(n == 4000 && twice == 0)
        hub.kill(SIGTERM)
    }
}

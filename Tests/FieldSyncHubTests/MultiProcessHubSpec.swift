import FieldSyncCore
@testable import FieldSyncHub
import FieldSyncPostgres
@_spi(Hub) import FieldSyncReplica
import Foundation
import Testing

/// Two `fieldsync-hub serve` processes on one PostgreSQL database, laptops syncing through
/// either with the real CLI: they converge as with one hub; one process killed with SIGKILL in
/// the middle of a push loses nothing acknowledged while the other keeps serving, and comes
/// back; a SQLite hub moved with `fieldsync-hub migrate` keeps its laptops without re-enrolment.
@Suite(.serialized, .enabled(if: StoreKind.available.contains(.postgres))) struct MultiProcessHubSpec {
    func records(_ l: Laptop, _ village: String) throws -> [String] {
        try ["dispute", "visit"].map { k in
            let list = try JSONValue.parse(l.run(["record", "list", k, "--village", village, "--deleted", "--json"]).stdout).arrayValue ?? []
            return list.map(\.compactText).sorted().joined(separator: "\n")
        }
    }

    /// The records the PostgreSQL store holds for `village`, as the laptops print them.
    func hubRecords(_ url: PostgresURL, _ village: String) async throws -> [String] {
        let store = try await PostgresHubStore(url: url, create: false)
        defer { store.shutdown() }
        let s = Supervisor(name: "检查", scope: village)
        var out: [String] = []
        for kind in [RecordKind.dispute, .visit] {
            var q = RecordQuery(kind: kind)
            q.includeDeleted = true
            q.limit = 1000
            var all: [String] = []
            while true {
                let page = try await store.records(for: s, q)
                all += page.records.map(\.json.compactText)
                if page.records.count < q.limit { break }
                q.offset += q.limit
            }
            out.append(all.sorted().joined(separator: "\n"))
        }
        return out
    }

    @Test func laptopsOnTwoHubProcessesConvergeAndAKilledProcessLosesNothing() async throws {
        let dir = TempDir()
        let url = try await StoreKind.freshDatabase()
        var hubA = try HubProcess(db: url.description, log: dir.file("a.log"))
        let hubB = try HubProcess(db: url.description, log: dir.file("b.log"))
        let a1 = try Laptop(dir, "王芳的笔记本", author: "王芳"), a2 = try Laptop(dir, "李明的笔记本", author: "李明")
        let b1 = try Laptop(dir, "乡镇办公室", author: "陈书记"), b2 = try Laptop(dir, "村委会", author: "赵主任")
        try a1.enroll(hubA, scope: village1)
        try a2.enroll(hubA, scope: village1)
        try b1.enroll(hubB, scope: township)
        try b2.enroll(hubB, scope: village1)
        let d1 = try a1.add("dispute", disputeJSON())
        _ = try b2.add("dispute", disputeJSON(parties: "王五与赵六"))
        for l in [a1, a2, b1, b2, a1] { #expect(try l.sync().status == 0) }
        // Concurrent edits through different processes: a conflict every laptop shows alike.
        try a2.edit(d1, #"{"status":"已化解"}"#)
        try b1.edit(d1, #"{"status":"已上报"}"#)
        for _ in 0..<2 { for l in [a2, b1, a1, b2] { #expect(try l.sync().status == 0) } }
        let want = try records(a1, village1)
        for l in [a2, b1, b2] { #expect(try records(l, village1) == want, "\(l.name)") }
        #expect(try await hubRecords(url, village1) == want, "the database holds what the laptops hold")
        let conflicts = try JSONValue.parse(a1.run(["conflicts", "list", "--json"]).stdout).arrayValue ?? []
        #expect(conflicts.count == 1 && conflicts.first?["field"] == "status")

        // a1 pushes 3000 visits through A; A is killed mid-push. B keeps serving meanwhile.
        let lines = (0..<3000).map { n in
            #"{"village":"520221105201","cadre_name":"王芳","visit_date":"2026-11-20","visit_kind":"入户走访","household_head":"户主\#(n)","notes":"走访第\#(n)户，宣传惠民政策。"}"#
        }
        try lines.joined(separator: "\n").write(toFile: dir.file("v.jsonl"), atomically: true, encoding: .utf8)
        #expect(try a1.run(["record", "import", "visit", dir.file("v.jsonl")]).status == 0)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: fieldsyncBinary())
        p.arguments = ["--db", a1.db, "sync", "--quiet", "--attempts", "1"]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        let firstBatch = await waitUntilAsync(30) { ((try? await self.hubRecords(url, village1)[1].split(separator: "\n").count) ?? 0) > 0 }
        #expect(firstBatch, "the first batch reached the database")
        hubA.kill(SIGKILL)
        let before = try await hubRecords(url, village1)[1].split(separator: "\n").count
        print("MultiProcessHubSpec: \(before) of 3000 visits were in the database when A was killed")
        try b2.edit(d1, #"{"mediator_name":"赵主任"}"#)
        #expect(try b2.sync().status == 0, "the other process serves while A is down")
        p.waitUntilExit()
        hubA = try hubA.restart()
        #expect(try a1.sync().status == 0, "a1's next sync completes")
        for _ in 0..<2 { for l in [a2, b1, b2, a1] { #expect(try l.sync().status == 0) } }
        let after = try await hubRecords(url, village1)
        #expect(after[1].split(separator: "\n").count == 3000, "every visit arrived, none twice")
        #expect(after[1].split(separator: "\n").count >= before)
        let final = try records(a1, village1)
        for l in [a2, b1, b2] { #expect(try records(l, village1) == final, "\(l.name)") }
        #expect(after == final)
        let st = try a1.status()["sync"]
        #expect(st?["changesWaiting"] == .int(0))
        _ = hubB
    }

    @Test func aSQLiteHubMovedToPostgreSQLKeepsItsLaptops() async throws {
        let dir = TempDir()
        let file = dir.file("hub.sqlite")
        var hub = try HubProcess(db: file, log: dir.file("hub.log"))
        let a = try Laptop(dir, "王芳的笔记本", author: "王芳"), b = try Laptop(dir, "李明的笔记本", author: "李明")
        try a.enroll(hub, scope: village1)
        try b.enroll(hub, scope: village1)
        let d = try a.add("dispute", disputeJSON())
        for l in [a, b] { #expect(try l.sync().status == 0) }
        try a.edit(d, #"{"status":"已化解"}"#)
        try b.edit(d, #"{"status":"已上报"}"#)
        for l in [a, b, a] { #expect(try l.sync().status == 0) }
        let port = hub.port
        hub.kill(SIGTERM)

        let url = try await StoreKind.freshDatabase()
        let moved = try runCLI(["migrate", "--from", file, "--to", url.description], binary: "fieldsync-hub")
        #expect(moved.status == 0, "\(moved.stderr)")
        #expect(moved.stdout.contains("已迁移") && moved.stdout.contains("核对"), "\(moved.stdout)")
        // Again into the same database: refused, nothing doubled.
        let again = try runCLI(["migrate", "--from", file, "--to", url.description], binary: "fieldsync-hub")
        #expect(again.status != 0 && again.stderr.contains("holds a hub already"), "\(again.stderr)")

        hub = try HubProcess(db: url.description, port: port, log: dir.file("pg.log"))
        // The laptops carry on: same hub identity and key, same positions in its log.
        try a.edit(d, #"{"mediator_name":"王芳"}"#)
        for l in [a, b, a] { #expect(try l.sync().status == 0, "\(l.name) syncs with the moved hub") }
        let want = try records(a, village1)
        #expect(try records(b, village1) == want)
        #expect(try await hubRecords(url, village1) == want)
        let conflicts = try JSONValue.parse(b.run(["conflicts", "list", "--json"]).stdout).arrayValue ?? []
        #expect(conflicts.count == 1, "the open conflict moved with the hub")
        let devices = try hub.devices().arrayValue ?? []
        #expect(devices.count == 2 && devices.allSatisfy { $0["status"] == "enrolled" && $0["pending"] == .int(0) })
    }
}

/// Polls `condition` until it holds or `seconds` pass.
func waitUntilAsync(_ seconds: Double, _ condition: @escaping () async -> Bool) async -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if await condition() { return true }
        try? await Task.sleep(nanoseconds: 20_000_000)
    }
    return false
}

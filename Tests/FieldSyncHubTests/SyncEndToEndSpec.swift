import FieldSyncCore
import FieldSyncTransport
@_spi(Hub) import FieldSyncReplica
import Foundation
import GRDB
import Testing

/// Real processes on loopback: a hub, laptops using the CLI over libcurl, a proxy that cuts
/// connections, SIGKILL. At the end of each test every replica and the hub agree, and nothing
/// acknowledged is lost. The tests that matter most (convergence, the hub killed, cut
/// connections, scope) run with the hub on SQLite and on PostgreSQL alike.
@Suite(.serialized) struct SyncEndToEndSpec {
    /// A laptop's records of a village, by id (replicas may have received them in different orders).
    func records(_ l: Laptop, _ village: String) throws -> [JSONValue] {
        try ["dispute", "visit", "project"].map {
            .array(byID(try JSONValue.parse(l.run(["record", "list", $0, "--village", village, "--deleted", "--json"]).stdout).arrayValue ?? []))
        }
    }

    func byID(_ items: [JSONValue]) -> [JSONValue] { E2EHub.byID(items) }

    func conflicts(_ l: Laptop, _ village: String) throws -> JSONValue {
        .array((try JSONValue.parse(l.run(["conflicts", "list", "--json"]).stdout).arrayValue ?? []).filter {
            $0["village"]?.stringValue?.hasPrefix(village) ?? false
        })
    }

    @Test(arguments: StoreKind.available) func threeLaptopsAndAHubConvergeFieldByField(kind: StoreKind) async throws {
        let dir = TempDir()
        let store = try await E2EHub(kind, dir)
        let hub = try store.start(log: dir.file("hub.log"))
        let a = try Laptop(dir, "王芳的笔记本", author: "王芳")
        let b = try Laptop(dir, "李明的笔记本", author: "李明")
        let c = try Laptop(dir, "乡镇办公室", author: "陈书记")
        try a.enroll(hub, scope: village1)
        try b.enroll(hub, scope: village1)
        try c.enroll(hub, scope: township)
        let d1 = try a.add("dispute", disputeJSON())
        let d2 = try a.add("dispute", disputeJSON(parties: "王五与赵六"))
        let d3 = try a.add("dispute", disputeJSON(parties: "刘某与村集体"))
        let other = try c.add("dispute", disputeJSON(village2, parties: "邻村的纠纷"))
        for l in [a, b, c] { #expect(try l.sync().status == 0) }
        #expect(try b.run(["record", "get", d3]).status == 0, "b received a's records")
        #expect(try a.run(["record", "get", other]).status == 1, "a (village 1) does not receive village 2's record")

        // Offline, concurrently: different fields of d1 by a and b; the same field of d1 by a and c;
        // d2 by b only; c deletes d3 while a edits it.
        try a.edit(d1, #"{"status":"已化解","resolution":"双方达成协议"}"#)
        try b.edit(d1, #"{"parties":"张三与李四、王五"}"#)
        try c.edit(d1, #"{"status":"已上报"}"#)
        try b.edit(d2, #"{"status":"调解中"}"#)
        #expect(try c.run(["record", "delete", d3]).status == 0)
        try a.edit(d3, #"{"mediator_name":"王芳"}"#)
        for _ in 0..<2 { for l in [a, b, c] { #expect(try l.sync().status == 0) } }

        let want = try records(a, village1)
        #expect(try records(b, village1) == want)
        #expect(try records(c, village1) == want)
        #expect(try await store.records(village1) == want, "the hub holds what the laptops hold")
        let cs = try conflicts(a, village1)
        #expect(try conflicts(b, village1) == cs && conflicts(c, village1) == cs)
        let fields = Set((cs.arrayValue ?? []).compactMap { $0["field"]?.stringValue })
        #expect(fields == ["status", RowState.recordConflictField], "d1.status (a vs c) and d3 (delete vs edit)")
        let rec = try JSONValue.parse(a.run(["record", "get", d1, "--json"]).stdout)
        #expect(rec["fields"]?["parties"] == "张三与李四、王五" && rec["fields"]?["resolution"] == "双方达成协议")
    }

    @Test(arguments: StoreKind.available) func aHubKilledMidSyncLosesNothingAndTheNextSyncCompletes(kind: StoreKind) async throws {
        let dir = TempDir()
        let store = try await E2EHub(kind, dir)
        var hub = try store.start(log: dir.file("hub.log"))
        let a = try Laptop(dir, "王芳的笔记本", author: "王芳")
        try a.enroll(hub, scope: village1)
        let lines = (0..<3000).map { n in
            #"{"village":"520221105201","cadre_name":"王芳","visit_date":"2026-11-20","visit_kind":"入户走访","household_head":"户主\#(n)","notes":"走访第\#(n)户，了解收入、就业和医疗情况，宣传惠民政策。"}"#
        }
        try lines.joined(separator: "\n").write(toFile: dir.file("v.jsonl"), atomically: true, encoding: .utf8)
        #expect(try a.run(["record", "import", "visit", dir.file("v.jsonl")]).status == 0)
        let site = try #require(try a.status()["site"]?.stringValue)

        // Sync in the background; kill the hub while batches are in flight; bring it back.
        let p = Process()
        p.executableURL = URL(fileURLWithPath: fieldsyncBinary())
        p.arguments = ["--db", a.db, "sync", "--quiet", "--attempts", "8"]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        let firstBatch = await waitUntilAsync(20) { (try? await store.changes(of: site)) ?? 0 > 0 }
        #expect(firstBatch, "the first batch reached the hub")
        hub.kill(SIGKILL)
        let acknowledgedBefore = try await store.changes(of: site)
        print("SyncEndToEndSpec (\(kind)): \(acknowledgedBefore) of 3000 changes were at the hub when it was killed")
        try await Task.sleep(for: .seconds(1))
        hub = try hub.restart()
        p.waitUntilExit()
        if p.terminationStatus != 0 {
            #expect(try a.sync().status == 0, "a second sync completes")
        }
        let atHub = try await store.changes(of: site)
        #expect(atHub == 3000, "every change reached the hub")
        #expect(atHub >= acknowledgedBefore)
        if kind == .sqlite { #expect(try store.integrity() == "ok") }
        #expect(try await store.changesTwice() == 0, "no change twice")
        let st = try a.status()["sync"]
        #expect(st?["changesWaiting"] == .int(0))
        #expect(st?["lastSuccess"] != .null)
    }

    @Test(arguments: StoreKind.available) func connectionsCutMidTransferResumeWithoutLossOrDuplicates(kind: StoreKind) async throws {
        let dir = TempDir()
        let store = try await E2EHub(kind, dir)
        let hub = try store.start(log: dir.file("hub.log"))
        let a = try Laptop(dir, "王芳的笔记本", author: "王芳")
        let b = try Laptop(dir, "李明的笔记本", author: "李明")
        try a.enroll(hub, scope: village1)
        try b.enroll(hub, scope: village1)
        let lines = (0..<1500).map { n in
            #"{"village":"520221105201","category":"邻里纠纷","parties":"当事人\#(n)","summary":"\#(String(repeating: "纠纷经过的详细记录。", count: 8))","reported_on":"2026-11-20","status":"受理"}"#
        }
        try lines.joined(separator: "\n").write(toFile: dir.file("d.jsonl"), atomically: true, encoding: .utf8)
        #expect(try a.run(["record", "import", "dispute", dir.file("d.jsonl")]).status == 0)
        // The first connections are cut mid-transfer: the push's upload for one laptop, the
        // pull's download for the other (a sync keeps one connection, so each cut is one
        // attempt of a sync, opened again by the client).
        let up = try ProxyProcess(upstream: hub.port, log: dir.file("proxy-up.log"), options: ["--cut-up-after", "40000", "--cut-first", "2"])
        let down = try ProxyProcess(upstream: hub.port, log: dir.file("proxy-down.log"), options: ["--cut-down-after", "40000", "--cut-first", "2"])
        var runs = 0
        while try a.run(["sync", "--quiet", "--hub", "http://127.0.0.1:\(up.port)"]).status != 0 && runs < 8 { runs += 1 }
        runs = 0
        while try b.run(["sync", "--quiet", "--hub", "http://127.0.0.1:\(down.port)"]).status != 0 && runs < 8 { runs += 1 }
        #expect(up.cuts >= 1 && down.cuts >= 1, "the proxies cut connections: \(up.cuts) up, \(down.cuts) down: \((try? String(contentsOfFile: up.log, encoding: .utf8)) ?? "") \((try? String(contentsOfFile: down.log, encoding: .utf8)) ?? "")")
        let want = try await store.records(village1)
        let ra = try records(a, village1), rb = try records(b, village1)
        #expect(ra == want && rb == want)
        let listed = try JSONValue.parse(b.run(["record", "list", "dispute", "--json"]).stdout).arrayValue ?? []
        #expect(listed.count == 1500)
        let twice = try await DatabaseQueue(path: b.db).read { db in
            try Int.fetchOne(db, sql: "SELECT count(*) - count(DISTINCT site || ':' || counter) FROM fs_change")
        }
        #expect(twice == 0, "no change applied twice")
    }

    @Test(arguments: StoreKind.available) func wrongRevokedAndOutOfScopeAreReportedClearly(kind: StoreKind) async throws {
        let dir = TempDir()
        let store = try await E2EHub(kind, dir)
        let hub = try store.start(log: dir.file("hub.log"))
        let a = try Laptop(dir, "王芳的笔记本", author: "王芳")
        let r0 = try a.sync()
        #expect(r0.status == 78 && r0.stderr.contains("not enrolled"))
        try a.enroll(hub, scope: village1)
        // A write outside the scope is refused per change; the rest goes through.
        _ = try a.add("dispute", disputeJSON())
        _ = try a.add("dispute", disputeJSON(village2))
        let r1 = try a.sync()
        #expect(r1.status == 3, "incomplete: \(r1.stdout)")
        let j = try JSONValue.parse(r1.stdout)
        #expect(j["pushed"] == .int(1) && j["refused"]?.arrayValue?.first?["code"] == "out_of_scope")
        let st = try a.status()["sync"]
        #expect(st?["lastError"]?.stringValue?.contains("out_of_scope") == true)
        #expect(st?["changesWaiting"] == .int(0), "a change refused for good is not offered again")
        // A wrong token (it lives in the owner-only secret file beside the replica, not in it).
        let secret = a.db + ".secret"
        let text = try String(contentsOfFile: secret, encoding: .utf8)
        try text.replacingOccurrences(of: #""token":"fst_[0-9a-f]+""#, with: #""token":"fst_wrong""#, options: .regularExpression)
            .write(toFile: secret, atomically: true, encoding: .utf8)
        let r2 = try a.sync()
        #expect(r2.status == 77 && r2.stderr.contains("bad_token"))
        #expect(try a.status()["sync"]?["lastError"]?.stringValue?.contains("bad_token") == true)
        // A revoked device.
        let b = try Laptop(dir, "李明的笔记本", author: "李明")
        try b.enroll(hub, scope: village1)
        let dev = try #require(try b.status()["sync"]?["device"]?.stringValue)
        #expect(try runCLI(["device", "revoke", "--store", hub.db, dev], binary: "fieldsync-hub").status == 0)
        let r3 = try b.sync()
        #expect(r3.status == 77 && r3.stderr.contains("revoked"))
        let listed = try hub.devices().arrayValue?.first { $0["device"]?.stringValue == dev }
        #expect(listed?["status"] == "revoked")
        // The hub gone: a clear error, and never reported as success.
        let last = try b.status()["sync"]?["lastSuccess"]
        hub.kill()
        let r4 = try b.sync(attempts: 2)
        #expect(r4.status == 75 && r4.stderr.contains("cannot reach"))
        #expect(try b.status()["sync"]?["lastSuccess"] == last)
    }

    @Test func aLaptopWhoseClockIsAYearFastIsCorrectedAndLosesNothing() throws {
        let dir = TempDir()
        let hub = try HubProcess(db: dir.file("hub.sqlite"), log: dir.file("hub.log"))
        let year: Int64 = 31_536_000_000
        let fast = ["FIELDSYNC_CLOCK_SKEW_MS": String(year)]
        let f = try Laptop(dir, "时钟快的笔记本", author: "李明", env: fast)
        let a = try Laptop(dir, "王芳的笔记本", author: "王芳")
        // Offline before its first contact with the hub, the fast laptop records a dispute.
        let id = try f.run(["record", "add", "dispute", "--json", disputeJSON()], env: fast).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try f.enroll(hub, scope: village1, env: fast)
        try a.enroll(hub, scope: village1)
        let correction = try f.run(["status", "--json"], env: fast)
        let c = try JSONValue.parse(correction.stdout)["sync"]?["clockCorrectionMs"]?.intValue ?? 0
        #expect(c < -year + 3_600_000 && c > -year - 3_600_000, "the hub's clock told the laptop it is a year fast (\(c) ms)")
        let r = try f.sync(env: fast)
        #expect(r.status == 0, "\(r.stdout) \(r.stderr)")
        let rep = try JSONValue.parse(r.stdout)
        let hubOffset = rep["hubOffsetMs"]?.intValue ?? 0
        #expect(hubOffset < -year + 3_600_000)
        // The hub refused the edit stamped a year ahead; the laptop re-stamped it and it went through.
        #expect(rep["restamped"] == .int(1) && rep["complete"] == true)
        #expect(try Replica.open(path: hub.db).records(.dispute).count == 1, "the offline edit reached the hub")
        let skew = try hub.devices().arrayValue?.compactMap { $0["clockSkewMs"]?.intValue }.max() ?? 0
        #expect(skew > year - 3_600_000, "the hub sees the device's clock is off")
        // After correction the fast laptop stamps true times; the edit made before is kept as it was.
        #expect(try f.run(["record", "edit", id, "--json", #"{"parties":"张三与李四、王五"}"#], env: fast).status == 0)
        let hist = try JSONValue.parse(f.run(["record", "history", id, "--json"], env: fast).stdout)["history"]?.arrayValue ?? []
        let soon = UTCTime.iso(Int64(Date().timeIntervalSince1970 * 1000) + 3_600_000)
        let statusTimes = hist.filter { $0["field"] == "status" }.compactMap { $0["time"]?.stringValue }
        let after = hist.first { $0["field"] == "parties" && $0["value"] == "张三与李四、王五" }?["time"]?.stringValue ?? ""
        #expect(statusTimes.contains { $0 > soon }, "the original offline edit stays in history with its (wrong) time: \(statusTimes)")
        #expect(statusTimes.contains { $0 < soon }, "and its re-stamped copy has the true time")
        #expect(!after.isEmpty && after < soon, "the edit after correction has the true time: \(after)")
        #expect(try f.sync(env: fast).status == 0)
        #expect(try a.sync().status == 0)
        // Nothing was lost, and a later edit by someone who saw the fast laptop's wins.
        try a.edit(id, #"{"status":"已化解"}"#)
        #expect(try a.sync().status == 0)
        #expect(try f.sync(env: fast).status == 0)
        for (l, env) in [(a, [String: String]()), (f, fast)] {
            let rec = try JSONValue.parse(l.run(["record", "get", id, "--json"], env: env).stdout)
            #expect(rec["fields"]?["status"] == "已化解")
            #expect(rec["fields"]?["parties"] == "张三与李四、王五")
            #expect(rec["conflicts"] == .array([]))
        }
    }

    @Test func theDaemonSyncsAfterEditsBacksOffWithoutSpinningAndStopsOnSIGTERM() throws {
        let dir = TempDir()
        var hub = try HubProcess(db: dir.file("hub.sqlite"), log: dir.file("hub.log"))
        let a = try Laptop(dir, "王芳的笔记本", author: "王芳")
        try a.enroll(hub, scope: village1)
        let d = Process()
        d.executableURL = URL(fileURLWithPath: fieldsyncBinary())
        d.arguments = ["--db", a.db, "daemon", "--interval", "60", "--settle", "1", "--max-backoff", "4"]
        d.standardOutput = FileHandle.nullDevice
        d.standardError = FileHandle(forWritingAtPath: { FileManager.default.createFile(atPath: dir.file("daemon.log"), contents: nil); return dir.file("daemon.log") }())
        try d.run()
        defer { if d.isRunning { d.terminate() } }
        let id = try a.add("dispute", disputeJSON())
        #expect(waitUntil(15) { (try? Replica.open(path: hub.db).records(.dispute).count) == 1 }, "the daemon pushed the edit soon after it was made")
        #expect(waitUntil(5) { (try? a.status()["sync"]?["daemon"]?.stringValue?.hasPrefix("idle")) == true })
        // The hub disappears: the daemon backs off, says so, and does not spin.
        hub.kill()
        try a.edit(id, #"{"status":"调解中"}"#)
        #expect(waitUntil(15) { (try? a.status()["sync"]?["daemon"]?.stringValue?.contains("backing off")) == true })
        #expect(try a.status()["sync"]?["lastError"]?.stringValue?.contains("cannot reach") == true)
        let cpu0 = cpuSeconds(d.processIdentifier)
        Thread.sleep(forTimeInterval: 3)
        let cpu = cpuSeconds(d.processIdentifier) - cpu0
        #expect(cpu < 0.6, "the daemon used \(cpu) s of CPU in 3 s while waiting")
        // The hub is back: the daemon catches up by itself.
        hub = try hub.restart()
        #expect(waitUntil(30) { (try? Replica.open(path: hub.db).record(id)["status"]) == .text("调解中") })
        // SIGTERM: a clean stop, recorded.
        kill(d.processIdentifier, SIGTERM)
        let deadline = Date().addingTimeInterval(10)
        while d.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.1) }
        #expect(!d.isRunning)
        #expect(d.terminationStatus == 0)
        #expect(try a.status()["sync"]?["daemon"] == "stopped")
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/openssl")))
    func aHubServingHTTPSIsTrustedThroughItsCAOnly() throws {
        let dir = TempDir()
        func openssl(_ args: [String]) throws {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
            p.arguments = args
            p.currentDirectoryURL = URL(fileURLWithPath: dir.path)
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            p.waitUntilExit()
            #expect(p.terminationStatus == 0, "openssl \(args.first ?? "")")
        }
        try openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=FieldSync test CA"])
        try openssl(["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "hub.key", "-out", "hub.csr", "-subj", "/CN=127.0.0.1"])
        try "subjectAltName=IP:127.0.0.1\n".write(toFile: dir.file("ext.cnf"), atomically: true, encoding: .utf8)
        try openssl(["x509", "-req", "-in", "hub.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "hub.pem", "-days", "2", "-extfile", "ext.cnf"])
        let hub = try HubProcess(db: dir.file("hub.sqlite"), log: dir.file("hub.log"),
                                 extra: ["--tls-cert", dir.file("hub.pem"), "--tls-key", dir.file("hub.key")])
        let url = "https://127.0.0.1:\(hub.port)"
        let a = try Laptop(dir, "王芳的笔记本", author: "王芳")
        let (_, code) = try hub.addDevice("王芳", scope: village1)
        let untrusted = try a.run(["enroll", "--hub", url, "--code", code])
        #expect(untrusted.status == 75 && untrusted.stderr.contains("TLS"), "\(untrusted.stderr)")
        #expect(try a.run(["enroll", "--hub", url, "--code", code, "--cacert", dir.file("ca.pem")]).status == 0)
        _ = try a.add("dispute", disputeJSON())
        #expect(try a.sync().status == 0)
        #expect(try Replica.open(path: hub.db).records(.dispute).count == 1)
    }

    @Test func aBusyHubsRetryAfterIsHonoured() throws {
        let dir = TempDir()
        let hub = try HubProcess(db: dir.file("hub.sqlite"), log: dir.file("hub.log"))
        let a = try Laptop(dir, "王芳的笔记本", author: "王芳")
        try a.enroll(hub, scope: village1)
        _ = try a.add("dispute", disputeJSON())
        let proxy = try ProxyProcess(upstream: hub.port, log: dir.file("proxy.log"), options: ["--busy-first", "2", "--retry-after", "2"])
        let t0 = Date()
        let r = try a.run(["sync", "--json", "--hub", "http://127.0.0.1:\(proxy.port)"])
        let elapsed = Date().timeIntervalSince(t0)
        #expect(r.status == 0, "\(r.stderr)")
        let j = try JSONValue.parse(r.stdout)
        #expect(j["retries"] == .int(2) && j["pushed"] == .int(1))
        #expect(elapsed >= 4, "two 503s with Retry-After: 2 take at least 4 s, took \(elapsed)")
        #expect(elapsed < 20)
        #expect(try Replica.open(path: hub.db).records(.dispute).count == 1)
    }

    /// A sync's requests (schema, push, pull, acknowledgement) share one kept-alive connection:
    /// on a village link each new connection costs a round trip of ≈ 600 ms before anything moves.
    /// A push grows its batches while the hub answers them quickly (up to the maxima) and keeps
    /// them at their first size when it does not: 3,000 changes in 5 requests (100, 200, 400,
    /// 800, 1,600), not 30; with answers never quick enough, 30.
    @Test func aPushGrowsItsBatchesWhileTheHubAnswersQuickly() throws {
        let dir = TempDir()
        let hub = try HubProcess(db: dir.file("hub.sqlite"), log: dir.file("hub.log"))
        var pushRequests: [Double: Int] = [:]
        for (n, within) in [60.0, 0].enumerated() {
            let r = try Replica.create(path: dir.file("laptop\(n).sqlite"), siteName: "laptop\(n)", author: "干部\(n)")
            var o = SyncOptions()
            o.transport.progress = false
            o.pushBatch = 100
            o.pushGrowWithin = within
            let (_, code) = try hub.addDevice("laptop\(n)", scope: "520221105")
            _ = try SyncClient.enroll(replica: r, hubURL: hub.url, code: code, caFile: nil, options: o)
            let records = try (0..<3000).map { i in
                try r.check(.dispute, try JSONValue.parse(disputeJSON(parties: "当事人\(n)-\(i)")).objectValue!, creating: true)
            }
            _ = try r.insert(records)
            // The requests of the push: the whole sync's less those of a sync with nothing to push.
            let first = try SyncClient(replica: r, options: o).sync()
            #expect(first.pushed == 3000 && first.complete)
            let idle = try SyncClient(replica: r, options: o).sync()
            #expect(idle.pushed == 0)
            pushRequests[within] = first.requests - idle.requests - first.snapshotPages + idle.snapshotPages
        }
        // The same few other requests of a first sync in both (the epoch check): 30 pushes against 5.
        let fixed = pushRequests[0] ?? 0, grown = pushRequests[60] ?? 0
        #expect(fixed - grown == 25 && grown <= 6, "\(pushRequests)")
    }

    @Test func aSyncMakesItsRequestsOnOneConnection() throws {
        let dir = TempDir()
        let hub = try HubProcess(db: dir.file("hub.sqlite"), log: dir.file("hub.log"))
        let a = try Laptop(dir, "王芳的笔记本", author: "王芳")
        let b = try Laptop(dir, "李明的笔记本", author: "李明")
        for l in [a, b] { try l.enroll(hub, scope: village1) }
        for n in 0..<3 { _ = try a.add("dispute", disputeJSON(parties: "当事人\(n)")) }
        #expect(try b.sync().status == 0)
        _ = try b.add("dispute", disputeJSON(parties: "对方"))
        #expect(try b.sync().status == 0)
        let proxy = try ProxyProcess(upstream: hub.port, log: dir.file("proxy.log"), options: [])
        let r = try a.run(["sync", "--json", "--hub", "http://127.0.0.1:\(proxy.port)"])
        #expect(r.status == 0, "\(r.stderr)")
        let j = try JSONValue.parse(r.stdout)
        #expect(j["pushed"] == .int(3) && j["pulled"] == .int(1), "\(r.stdout)")
        // The connection closes when the laptop's process ends.
        var closed = Set<Int>()
        for _ in 0..<50 where closed.isEmpty {
            closed = proxy.closedConnections
            if closed.isEmpty { Thread.sleep(forTimeInterval: 0.1) }
        }
        #expect(closed == [1], "one connection for the whole sync, got \(closed.sorted()): \((try? String(contentsOfFile: proxy.log, encoding: .utf8)) ?? "")")
    }

    /// A new laptop's first sync pushes its work, then takes the snapshot: the hub leaves out
    /// what it has from that laptop (`held`, sync.md §5) instead of sending it all back.
    @Test func aNewLaptopsSnapshotDoesNotBringBackWhatItJustPushed() throws {
        let dir = TempDir()
        let hub = try HubProcess(db: dir.file("hub.sqlite"), log: dir.file("hub.log"))
        let other = try Laptop(dir, "李明的笔记本", author: "李明")
        try other.enroll(hub, scope: village1)
        _ = try other.add("dispute", disputeJSON(parties: "对方"))
        #expect(try other.sync().status == 0)
        let a = try Laptop(dir, "王芳的笔记本", author: "王芳")
        try a.enroll(hub, scope: village1)
        for n in 0..<5 { _ = try a.add("dispute", disputeJSON(parties: "当事人\(n)")) }
        let r = try a.run(["sync", "--json"])
        let j = try JSONValue.parse(r.stdout)
        #expect(r.status == 0 && j["pushed"] == .int(5) && j["snapshotPages"] == .int(1), "\(r.stdout)")
        #expect(j["pulled"] == .int(1) && j["pulledDuplicates"] == .int(0), "its own five came back: \(r.stdout)")
        #expect(try other.sync().status == 0)
        #expect(try records(a, village1) == records(other, village1), "both hold the same six disputes")
        #expect(try records(a, village1).first?.arrayValue?.count == 6)
    }

    @Test func proxySettingsComeFromTheEnvironment() throws {
        let dir = TempDir()
        let hub = try HubProcess(db: dir.file("hub.sqlite"), log: dir.file("hub.log"))
        let a = try Laptop(dir, "王芳的笔记本", author: "王芳")
        try a.enroll(hub, scope: village1)
        _ = try a.add("dispute", disputeJSON())
        let dead = ["http_proxy": "http://127.0.0.1:9", "no_proxy": ""]
        let r = try a.sync(env: dead, attempts: 1)
        #expect(r.status == 75, "a dead proxy from http_proxy is used: \(r.stderr)")
        let bypass = ["http_proxy": "http://127.0.0.1:9", "no_proxy": "127.0.0.1"]
        #expect(try a.sync(env: bypass, attempts: 1).status == 0, "no_proxy bypasses it")
    }
}

/// User plus system CPU seconds a process has used (from /proc).
func cpuSeconds(_ pid: Int32) -> Double {
    guard let s = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
          let close = s.lastIndex(of: ")") else { return 0 }
    let f = s[s.index(after: close)...].split(separator: " ")
    guard f.count > 13, let u = Double(f[11]), let k = Double(f[12]) else { return 0 }
    return (u + k) / Double(sysconf(Int32(_SC_CLK_TCK)))
}

import FieldSyncCore
@_spi(Hub) @testable import FieldSyncReplica
import FieldSyncTransport
import Foundation
import GRDB
import Testing

/// Five laptops and a real hub process: thousands of seeded random edits, random syncs over
/// libcurl, USB-style peer exchanges (random subsets, shuffled, duplicated), replayed pushes,
/// partitions, conflict resolutions, and a laptop whose clock runs two hours fast. At the end
/// every replica and the hub hold identical records and conflicts, and every change the hub
/// acknowledged is present everywhere.
///
/// FIELDSYNC_SOAK_SEEDS / FIELDSYNC_SOAK_OPS for longer runs (scripts/soak); FIELDSYNC_SEED=N replays one.
@Suite(.serialized) struct ConvergenceSoak {
    static let env = ProcessInfo.processInfo.environment

    @Test func laptopsAndAHubConvergeAndKeepEveryAcknowledgedChange() throws {
        let seeds: [UInt64] = Self.env["FIELDSYNC_SEED"].flatMap(UInt64.init).map { [$0] }
            ?? (0..<UInt64(Self.env["FIELDSYNC_SOAK_SEEDS"].flatMap(Int.init) ?? 2)).map { 7_700 + $0 }
        let ops = Self.env["FIELDSYNC_SOAK_OPS"].flatMap(Int.init) ?? 500
        var totals = SoakRun.Counts()
        for seed in seeds {
            var run = try SoakRun(seed: seed, ops: ops)
            do {
                try run.execute()
                totals.add(run.counts)
                print("soak seed \(seed): \(run.counts)")
            } catch let e as SoakRun.Failure {
                Issue.record("seed \(seed): \(e.message)\nreplay: FIELDSYNC_SEED=\(seed) FIELDSYNC_SOAK_OPS=\(ops) swift test --filter ConvergenceSoak")
            }
        }
        print("soak total: \(seeds.count) seeds, \(totals)")
        #expect(totals.syncs > 0 && totals.peerDeliveries > 0 && totals.replayedPushes > 0)
    }
}

struct SoakRun {
    struct Failure: Error { let message: String }
    struct Counts: CustomStringConvertible {
        var ops = 0, edits = 0, syncs = 0, failedSyncs = 0, peerDeliveries = 0, changesDelivered = 0, replayedPushes = 0
        var partitions = 0, resolutions = 0, restamped = 0, acknowledged = 0, conflictsAtEnd = 0, records = 0
        mutating func add(_ o: Counts) {
            ops += o.ops; edits += o.edits; syncs += o.syncs; failedSyncs += o.failedSyncs; peerDeliveries += o.peerDeliveries
            changesDelivered += o.changesDelivered; replayedPushes += o.replayedPushes; partitions += o.partitions
            resolutions += o.resolutions; restamped += o.restamped; acknowledged += o.acknowledged; conflictsAtEnd += o.conflictsAtEnd; records += o.records
        }
        var description: String {
            "\(ops) ops: \(edits) edits, \(syncs) syncs (\(failedSyncs) incomplete), \(peerDeliveries) peer deliveries of \(changesDelivered) changes, "
                + "\(replayedPushes) replayed pushes, \(partitions) partitions, \(resolutions) resolutions, \(restamped) re-stamped; "
                + "end: \(records) records, \(conflictsAtEnd) open conflicts, \(acknowledged) acknowledged changes all present; lost 0, duplicated 0, diverged 0"
        }
    }

    let seed: UInt64
    let ops: Int
    var rng: SplitMix64
    let dir: TempDir
    let hub: HubProcess
    var laptops: [Replica] = []
    var tokens: [String] = []
    var offline = Set<Int>()
    var counts = Counts()
    /// Laptop 4's clock: right at first, two hours fast from a third of the way through.
    let skew = Skew()
    final class Skew: @unchecked Sendable { var ms: Int64 = 0 }
    let villages = ["520221105201", "520221105202", "520221105203"]

    init(seed: UInt64, ops: Int) throws {
        self.seed = seed
        self.ops = ops
        rng = SplitMix64(seed: seed)
        dir = TempDir("soak-\(seed)")
        hub = try HubProcess(db: dir.file("hub.sqlite"), log: dir.file("hub.log"))
        for i in 0..<5 {
            let r = try Replica.create(path: dir.file("laptop\(i).sqlite"), siteName: "laptop\(i)", author: "干部\(i)")
            if i == 4 {
                // This laptop's clock will jump two hours ahead (a reset battery): its edits are
                // refused by the hub until it corrects its clock and re-stamps them.
                let box = skew
                r.wallClock = { Int64(Date().timeIntervalSince1970 * 1000) + box.ms }
            }
            let (_, code) = try hub.addDevice("laptop\(i)", scope: "520221105")
            _ = try SyncClient.enroll(replica: r, hubURL: hub.url, code: code, caFile: nil, options: Self.options)
            laptops.append(r)
            tokens.append(try r.syncState()!.token)
        }
    }

    static var options: SyncOptions {
        var o = SyncOptions()
        o.transport.progress = false
        o.attempts = 3
        o.pushBatch = 40
        o.pushBatchMax = 40
        o.pullBatch = 60
        return o
    }

    func pick<T>(_ a: [T], _ g: inout SplitMix64) -> T { a[Int.random(in: 0..<a.count, using: &g)] }

    mutating func execute() throws {
        for step in 0..<ops {
            counts.ops += 1
            if step == ops / 3 { skew.ms = 7_200_000 }
            let i = Int.random(in: 0..<laptops.count, using: &rng)
            switch Int.random(in: 0..<100, using: &rng) {
            case 0..<45: try edit(step % 7 == 0 ? 4 : i)
            case 45..<65: try syncLaptop(i)
            case 65..<77: try peerDelivery(i)
            case 77..<83: try replayPush(i)
            case 83..<88:
                counts.partitions += 1
                if offline.contains(i) { offline.remove(i) } else { offline.insert(i) }
            default: try resolveSomething(i)
            }
        }
        // Heal the partitions; three rounds of syncs bring everyone together.
        offline = []
        for _ in 0..<3 { for i in laptops.indices { try syncLaptop(i) } }
        try check()
    }

    mutating func edit(_ i: Int) throws {
        let r = laptops[i]
        counts.edits += 1
        let recs = try r.records(.dispute, includeDeleted: true)
        if recs.isEmpty || Int.random(in: 0..<5, using: &rng) == 0 {
            _ = try r.add(.dispute, [
                "village": .string(pick(villages, &rng)), "category": "邻里纠纷", "parties": .string("当事人\(Int.random(in: 0..<50, using: &rng))"),
                "summary": "纠纷经过", "reported_on": "2026-11-20", "status": "受理",
            ])
            return
        }
        let rec = pick(recs, &rng)
        if rec.deleted {
            if Bool.random(using: &rng) { try? r.undelete(rec.id) }
            return
        }
        switch Int.random(in: 0..<10, using: &rng) {
        case 0: try? r.delete(rec.id)
        case 1...5: try r.edit(rec.id, ["status": .string(pick(Enumerations.disputeStatuses, &rng))])
        default: try r.edit(rec.id, ["parties": .string("当事人\(Int.random(in: 0..<6, using: &rng))"), "mediator_name": .string(pick(["王芳", "李明", "陈书记"], &rng))])
        }
    }

    mutating func syncLaptop(_ i: Int) throws {
        guard !offline.contains(i) else { return }
        counts.syncs += 1
        do {
            let rep = try SyncClient(replica: laptops[i], options: Self.options).sync()
            counts.restamped += rep.restamped
            if !rep.complete { counts.failedSyncs += 1 }
        } catch let e as SyncError {
            throw Failure(message: "sync of laptop\(i) failed: \(e)")
        }
    }

    /// A USB stick: a random part of one laptop's changes, shuffled, some twice, into another.
    mutating func peerDelivery(_ from: Int) throws {
        var to = Int.random(in: 0..<laptops.count, using: &rng)
        if to == from { to = (to + 1) % laptops.count }
        var changes = try laptops[from].changes().compactMap(\.change).filter { _ in Int.random(in: 0..<3, using: &rng) == 0 }
        changes += changes.filter { _ in Int.random(in: 0..<8, using: &rng) == 0 }
        changes.shuffle(using: &rng)
        guard !changes.isEmpty else { return }
        try laptops[to].noteSites(laptops[from].knownSiteNames())
        try laptops[to].apply(changes)
        counts.peerDeliveries += 1
        counts.changesDelivered += changes.count
    }

    /// A push delivered again, out of order, through another route: any changes this laptop holds.
    mutating func replayPush(_ i: Int) throws {
        guard !offline.contains(i) else { return }
        let all = try laptops[i].changes()
        guard !all.isEmpty else { return }
        let sample = all.filter { _ in Int.random(in: 0..<4, using: &rng) == 0 }.shuffled(using: &rng)
        guard !sample.isEmpty else { return }
        let body = PushBody.text(site: laptops[i].site, siteName: laptops[i].siteName, sites: [:], changeTexts: sample.map(\.body))
        var o = TransportOptions()
        o.progress = false
        let reply = try CurlHTTPClient().perform(HTTPExchange(method: "POST", url: hub.url + "/v1/changes",
                                                              headers: [("Authorization", "Bearer \(tokens[i])"), ("Content-Type", "application/json")],
                                                              body: Array(body.utf8)), options: o)
        guard reply.status == 200 else { throw Failure(message: "replayed push got HTTP \(reply.status)") }
        counts.replayedPushes += 1
    }

    mutating func resolveSomething(_ i: Int) throws {
        let r = laptops[i]
        guard let c = try r.conflicts().first else { return }
        _ = try? r.resolveConflict("\(c.row)/\(c.field)", Bool.random(using: &rng) ? .newest : .oldest)
        counts.resolutions += 1
    }

    func state(_ r: Replica) throws -> [String] {
        var out: [String] = []
        for k in [RecordKind.dispute] {
            out += try r.records(k, includeDeleted: true).map { $0.json.compactText }
        }
        out += try r.conflicts().map { c in "\(c.row)/\(c.field) " + c.candidates.map { "\($0.change)\($0.wins ? "*" : "")" }.joined(separator: ",") }
        return out.sorted()
    }

    mutating func check() throws {
        let hubReplica = try Replica.open(path: hub.db)
        let want = try state(hubReplica)
        for (i, r) in laptops.enumerated() {
            let got = try state(r)
            if got != want {
                let diff = zip(got, want).first { $0 != $1 }.map { "\n  laptop\(i): \($0.0)\n  hub:     \($0.1)" } ?? " (\(got.count) vs \(want.count) lines)"
                throw Failure(message: "laptop\(i) differs from the hub after the final syncs:\(diff)")
            }
            let twice = try r.read { try Int.fetchOne($0, sql: "SELECT count(*) - count(DISTINCT site || ':' || counter) FROM fs_change") ?? -1 }
            if twice != 0 { throw Failure(message: "laptop\(i) logged \(twice) change(s) twice") }
        }
        // Every change a laptop saw acknowledged (up to its push cursor, not refused) is at the hub and everywhere.
        let hubIDs = try Set(hubReplica.read { db in try Row.fetchAll(db, sql: "SELECT site, counter FROM fs_change") }.map { "\($0["site"] as Int64):\($0["counter"] as Int64)" })
        for (i, r) in laptops.enumerated() {
            let acked = try r.read { db in
                try Row.fetchAll(db, sql: """
                    SELECT site, counter FROM fs_change c WHERE source != 2 AND seq <= (SELECT push_cursor FROM fs_sync)
                      AND seq NOT IN (SELECT seq FROM fs_sync_refused)
                    """).map { "\($0["site"] as Int64):\($0["counter"] as Int64)" }
            }
            let missing = acked.filter { !hubIDs.contains($0) }
            if !missing.isEmpty { throw Failure(message: "\(missing.count) change(s) acknowledged to laptop\(i) are missing at the hub: \(missing.prefix(3))") }
            counts.acknowledged += acked.count
        }
        counts.records = try hubReplica.records(.dispute, includeDeleted: true).count
        counts.conflictsAtEnd = try hubReplica.conflicts().count
    }
}

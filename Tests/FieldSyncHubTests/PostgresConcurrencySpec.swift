import FieldSyncCore
import FieldSyncTrust
@testable import FieldSyncHub
import FieldSyncPostgres
@_spi(Hub) import FieldSyncReplica
import Foundation
import Testing

/// Many devices pushing and pulling at once through two hub processes' stores (two connection
/// pools on one PostgreSQL database): every puller receives every change of its scope exactly
/// once, whatever the interleaving, and the change log replayed serially into a laptop's replica
/// gives the records and conflicts the hub holds.
@Suite(.serialized) struct PostgresConcurrencySpec {
    static let villages = ["520221105201", "520221105202", "520221106301"]

    /// A seeded generator: the failing seed is printed, and FIELDSYNC_SEED replays it.
    struct Rand {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
    }

    func edit(_ site: SiteID, _ counter: Int64, row: String, base: ChangeID, status: String, ms: Int64) -> Change {
        Change(id: ChangeID(site: site, counter: counter), kind: .dispute, row: row, hlc: HybridTimestamp(millis: ms, counter: 0),
               author: "干部\(site.hex.prefix(4))",
               writes: [FieldWrite(field: "status", value: .text(status), context: VersionVector([(base.site, base.counter)]))])
    }

    @Test(.enabled(if: StoreKind.available.contains(.postgres)))
    func manyPushersAndPullersThroughTwoProcessesEachChangeArrivesOnceAndTheLogReplaysToTheSameState() async throws {
        let seed = UInt64(ProcessInfo.processInfo.environment["FIELDSYNC_SEED"] ?? "") ?? UInt64.random(in: 1...UInt64(UInt32.max))
        print("PostgresConcurrencySpec seed \(seed) (FIELDSYNC_SEED=\(seed) to replay)")
        var rand = Rand(state: seed)
        let f = try await StoreFixture(.postgres)
        let storeA = f.store
        let storeB = try await f.secondProcess()

        // Shared records everyone edits (row locks, conflicts), made first by a county device.
        let seedKey = SiteKey()
        let (seeder, _) = try await f.device("县里", scope: "520221", key: seedKey)
        var shared: [Change] = []
        for (i, v) in Self.villages.enumerated() {
            for j in 0..<4 { shared.append(creation(seedKey.site, Int64(i * 4 + j + 1), village: v)) }
        }
        let seeded = try await storeA.push(shared.map(ChangeCodec.encode), sites: [:], vouches: Vouches(), from: seeder)
        try #require(seeded.results.allSatisfy { $0.status == .accepted }, "seed \(seed)")

        // Pushers: one per village and one per township, alternating between the two processes.
        struct Pusher { let device: Device; let key: SiteKey; let village: String; let store: any HubStore; var plan: [[Change]] }
        var pushers: [Pusher] = []
        let scopes = Self.villages + ["520221105", "520221106"]
        for (n, scope) in scopes.enumerated() {
            let key = SiteKey()
            let (d, _) = try await f.device("推送\(n)", scope: scope, key: key)
            let villages = Self.villages.filter { $0.hasPrefix(scope) }
            var counter: Int64 = 0
            var plan: [[Change]] = []
            for b in 0..<12 {
                var batch: [Change] = []
                for _ in 0..<(1 + rand.below(8)) {
                    counter += 1
                    let village = villages[rand.below(villages.count)]
                    let ms = 1_763_800_000_000 + Int64(b) * 1000 + Int64(rand.below(1000))
                    if rand.below(3) == 0 {
                        batch.append(creation(key.site, counter, village: village))
                    } else {
                        let targets = shared.filter { $0.row.hasPrefix(village) }
                        let t = targets[rand.below(targets.count)]
                        batch.append(edit(key.site, counter, row: t.row, base: t.id, status: ["受理", "调解中", "已化解", "已上报"][rand.below(4)], ms: ms))
                    }
                }
                plan.append(batch)
            }
            pushers.append(Pusher(device: d, key: key, village: scope, store: n % 2 == 0 ? storeA : storeB, plan: plan))
        }
        // Pullers of several scopes (one of them also a pusher: its own changes are left out).
        struct Puller { let device: Device; let store: any HubStore }
        var pullers: [Puller] = []
        for (n, scope) in ["520221", "520221105", "520221105201", "520221106"].enumerated() {
            let (d, _) = try await f.device("拉取\(n)", scope: scope)
            pullers.append(Puller(device: d, store: n % 2 == 0 ? storeB : storeA))
        }
        pullers.append(Puller(device: pushers[3].device, store: storeB))

        // Pushers and pullers at once; the pullers stop two empty pages after the last push.
        enum Outcome: Sendable { case pushed([(String, String)]); case pulled(Int, [String]) }
        let stop = ManagedFlag()
        var everything: [(String, String)] = shared.map { ($0.id.description, $0.row) }  // (change id, row)
        var received: [Int: [String]] = [:]
        try await withThrowingTaskGroup(of: Outcome.self) { group in
            for (i, p) in pullers.enumerated() {
                group.addTask {
                    var got: [String] = []
                    var cursor: Int64 = 0
                    var quiet = 0
                    while true {
                        let page = try await p.store.pull(for: p.device, after: cursor, limit: 37, maxBytes: 1 << 20)
                        got += try page.texts.map { try ChangeCodec.decode(JSONValue.parse($0)).id.description }
                        #expect(page.cursor >= cursor, "seed \(seed): a cursor never goes back")
                        cursor = page.cursor
                        if page.texts.isEmpty && !page.more {
                            if stop.value { quiet += 1; if quiet >= 2 { break } }
                            try await Task.sleep(nanoseconds: 2_000_000)
                        }
                    }
                    return .pulled(i, got)
                }
            }
            let pushing = pushers
            let pushes = Task {
                try await withThrowingTaskGroup(of: [(String, String)].self) { inner in
                    for p in pushing {
                        inner.addTask {
                            var ok: [(String, String)] = []
                            for batch in p.plan {
                                let r = try await p.store.push(batch.map(ChangeCodec.encode), sites: [:], vouches: Vouches(), from: p.device)
                                for (c, res) in zip(batch, r.results) {
                                    #expect(res.status == .accepted, "seed \(seed): \(c.id) \(res.code ?? "") \(res.reason ?? "")")
                                    if res.status == .accepted { ok.append((c.id.description, c.row)) }
                                }
                            }
                            return ok
                        }
                    }
                    var all: [(String, String)] = []
                    for try await part in inner { all += part }
                    return all
                }
            }
            let pushed = try await pushes.value
            stop.set()
            everything += pushed
            for try await o in group { if case .pulled(let i, let ids) = o { received[i] = ids } }
        }
        #expect(Set(everything.map(\.0)).count == everything.count, "seed \(seed)")
        for (i, p) in pullers.enumerated() {
            let got = received[i] ?? []
            let own = Set(pushers.filter { $0.device.id == p.device.id }.map { $0.key.site.hex })
            let want = Set(everything.filter { $0.1.hasPrefix(p.device.scope) && !own.contains(String($0.0.prefix(16))) }.map(\.0))
            #expect(got.count == Set(got).count, "seed \(seed): puller \(p.device.scope) received a change twice")
            let missed = want.subtracting(got).sorted(), extra = Set(got).subtracting(want).sorted()
            #expect(missed.isEmpty && extra.isEmpty,
                    "seed \(seed): puller \(p.device.scope) missed \(missed.count) (\(missed.prefix(5))), got \(extra.count) it should not (\(extra.prefix(5)))")
        }

        // The log, replayed serially into a laptop's replica, gives what the hub holds.
        let county = try await f.device("复核", scope: "520221")
        var texts: [String] = []
        var cursor: Int64 = 0
        while true {
            let page = try await storeA.pull(for: county.0, after: cursor, limit: 500, maxBytes: 8 << 20)
            texts += page.texts
            cursor = page.cursor
            if !page.more { break }
        }
        #expect(texts.count == everything.count, "seed \(seed)")
        let dir = TempDir()
        let replica = try Replica.create(path: dir.file("replay.sqlite"), siteName: "复核", author: "复核")
        _ = try replica.apply(try texts.map { try ChangeCodec.decode(JSONValue.parse($0)) })
        let everyone = Supervisor(name: "全县", scope: "520221")
        var q = RecordQuery(kind: .dispute)
        q.includeDeleted = true
        q.limit = 1000
        let atHub = try await storeB.records(for: everyone, q).records.map { $0.json.compactText }
        let replayed = try replica.records(.dispute, includeDeleted: true).map { $0.json.compactText }
        #expect(atHub == replayed, "seed \(seed)")
        let hubConflicts = try await storeA.conflicts(for: everyone, ConflictFilter()).map { "\($0.key) \($0.candidates.map(\.change.description).sorted())" }.sorted()
        let replicaConflicts = try replica.conflicts().map { "\($0.key) \($0.candidates.map(\.change.description).sorted())" }.sorted()
        #expect(hubConflicts == replicaConflicts, "seed \(seed)")
        #expect(!hubConflicts.isEmpty, "seed \(seed): concurrent edits of the shared records made conflicts")
    }
}

/// A flag set once, read from any task.
final class ManagedFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var on = false
    func set() { lock.withLock { on = true } }
    var value: Bool { lock.withLock { on } }
}

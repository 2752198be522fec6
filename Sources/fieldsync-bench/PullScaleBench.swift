import FieldSyncCore
import FieldSyncHub
import FieldSyncPostgres
import FieldSyncTrust
import Foundation
import GRDB
import PostgresNIO

/// Issue 10's pull benchmark: one village laptop's pull on a hub whose log holds 10^4 versus
/// 10^6 changes of other villages (its own village's 400 changes spread among them). With the
/// region indexes the pull reads its scope's rows only, so the ratio stays near 1.
///
///   fieldsync-bench --pull-scale [--small N] [--large N] [--pg postgres://…]
enum PullScaleBench {
    static let village = "520221105201"

    struct Hub {
        let store: any HubStore
        let puller: Device
        let fill: (_ rows: Int) async throws -> Void
    }

    static func run(dir: String, small: Int, large: Int, pg: PostgresURL?) async throws {
        for kind in ["SQLite"] + (pg == nil ? [] : ["PostgreSQL"]) {
            var medians: [Int: Double] = [:]
            for n in [small, large] {
                let hub = kind == "SQLite" ? try await sqliteHub(dir + "/pull-\(n).sqlite") : try await postgresHub(pg!, n)
                let pusher = SiteKey()
                let dev = try await hub.store.addDevice(name: "推送", scope: village, codeLifetimeMs: 3_600_000)
                let resp = try await hub.store.enroll(EnrollRequest(code: dev.code, site: pusher.site, siteName: "推送", key: pusher.publicKey,
                                                                    proof: pusher.sign(EnrollRequest.possessionMessage(code: dev.code, site: pusher.site))))
                let from = Device(id: resp.device, name: "推送", scope: village)
                for part in 0..<4 {
                    try await hub.fill(n / 4)
                    let changes = (1...100).map { i -> JSONValue in
                        let c = Int64(part * 100 + i)
                        return ChangeCodec.encode(Change(id: ChangeID(site: pusher.site, counter: c), kind: .visit, row: RecordID.make(kind: .visit, region: village, nowMs: 1_763_784_000_000 + c),
                                                         hlc: HybridTimestamp(millis: 1_763_784_000_000 + c, counter: 0), author: "王芳", writes: [
                                                             FieldWrite(field: "village", value: .text(village)), FieldWrite(field: "cadre_name", value: .text("王芳")),
                                                             FieldWrite(field: "visit_date", value: .text("2026-11-20")), FieldWrite(field: "visit_kind", value: .text("入户走访")),
                                                         ]))
                    }
                    let r = try await hub.store.push(changes, sites: [:], vouches: Vouches(), from: from)
                    precondition(r.results.allSatisfy { $0.status == .accepted }, "bench push refused")
                }
                var times: [Double] = []
                for _ in 0..<30 {
                    let t = DispatchTime.now().uptimeNanoseconds
                    var cursor: Int64 = 0, got = 0
                    while true {
                        let page = try await hub.store.pull(for: hub.puller, after: cursor, limit: 500, maxBytes: 4 << 20)
                        got += page.texts.count
                        cursor = page.cursor
                        if !page.more { break }
                    }
                    precondition(got == 400, "the village's pull got \(got) changes, not 400")
                    times.append(Double(DispatchTime.now().uptimeNanoseconds - t) / 1e6)
                }
                medians[n] = times.sorted()[times.count / 2]
                await hub.store.close()
                note("d pull, \(kind): one village's 400 changes among \(n) of other villages, median ms", String(format: "%.2f", medians[n]!))
            }
            note("d pull ratio, \(kind): \(large) / \(small) changes of other villages (target ≤ 1.5)", String(format: "%.2f×", medians[large]! / medians[small]!))
        }
    }

    static func enrolPuller(_ store: any HubStore) async throws -> Device {
        let key = SiteKey()
        let d = try await store.addDevice(name: "村里的笔记本", scope: village, codeLifetimeMs: 3_600_000)
        let r = try await store.enroll(EnrollRequest(code: d.code, site: key.site, siteName: "笔记本", key: key.publicKey,
                                                     proof: key.sign(EnrollRequest.possessionMessage(code: d.code, site: key.site))))
        return Device(id: r.device, name: d.name, scope: village)
    }

    static func sqliteHub(_ path: String) async throws -> Hub {
        try? FileManager.default.removeItem(atPath: path)
        let store = try SQLiteHubStore(path: path, name: "基准")
        let puller = try await enrolPuller(store)
        let q = try DatabaseQueue(path: path)
        let counter = ManagedBox(0)
        return Hub(store: store, puller: puller) { rows in
            let base = counter.value
            counter.value += rows
            // Other villages' changes (townships 200–296), appended to the log as pushes would.
            try await q.write { db in
                try db.execute(sql: """
                    WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < ?)
                    INSERT INTO fs_change(site, counter, kind, row, hlc, author, received, source, peer, body)
                    SELECT 4242, ? + n, 'visit', '520221' || (200 + n % 97) || printf('%03d', n % 13) || '-' || lower(hex(randomblob(16))),
                           0, '其他村', 0, 1, 'dev-other', '{}' FROM g
                    """, arguments: [rows, base])
            }
        }
    }

    static func postgresHub(_ server: PostgresURL, _ n: Int) async throws -> Hub {
        let url = try await PostgresHubStore.createDatabase("bench_pull_\(n)_\(UInt32.random(in: 0...UInt32.max))", on: server)
        let store = try await PostgresHubStore(url: url, name: "基准")
        let puller = try await enrolPuller(store)
        let counter = ManagedBox(0)
        return Hub(store: store, puller: puller) { rows in
            let base = counter.value
            counter.value += rows
            try await store.benchmarkFill(rows: rows, counterBase: base)
        }
    }
}

final class ManagedBox: @unchecked Sendable {
    var value: Int
    init(_ v: Int) { value = v }
}

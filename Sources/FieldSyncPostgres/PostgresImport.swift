import FieldSyncCore
import FieldSyncHub
import FieldSyncReplica
import FieldSyncTrust
import Foundation
import GRDB
import Logging
import PostgresNIO

// MARK: - From a SQLite hub to PostgreSQL

/// `fieldsync-hub migrate --from hub.sqlite --to postgres://…`: moves a county's hub from its
/// SQLite file to PostgreSQL, keeping what laptops rely on — the hub's site id and signing key
/// (pages stay verifiable), change-log positions (devices' cursors stay valid), device tokens,
/// site bindings, supervisors, open conflicts and bundles.
///
/// Everything is copied in one PostgreSQL transaction: stopped half-way (killed, the network
/// gone) the database is left as it was, and the command can be run again. The target must
/// hold no hub yet. The hub must not be serving from the file meanwhile (stop it first).
public enum PostgresImport {
    public struct Summary: Sendable {
        public var changes = 0
        public var records = 0
        public var devices = 0
        public var supervisors = 0
        public var conflicts = 0
        public var bundles = 0
        /// Records compared with the file after the copy.
        public var checked = 0
        public var hubSite = ""
        public var hubName = ""
    }

    /// Rows per statement (PostgreSQL takes at most 65,535 parameters in one).
    static let batch = 500

    public static func run(from path: String, to url: PostgresURL, logger: Logger = Logger(label: "fieldsync-hub.migrate"),
                           progress: @escaping @Sendable (String) -> Void = { _ in }) async throws -> Summary {
        guard FileManager.default.fileExists(atPath: path) else {
            throw HubFailure(.notFound, "\(path): no hub file here (give --from PATH of the file `fieldsync-hub serve` used)")
        }
        // Opening it brings an older file up to date (its migrations), as serve would.
        let sqlite = try SQLiteHubStore(path: path)
        let bundles = sqlite.bundleFolder
        await sqlite.close()
        var config = Configuration()
        config.readonly = true
        let file: DatabaseQueue
        do { file = try DatabaseQueue(path: path, configuration: config) } catch {
            throw ReplicaError.storage("\(path): cannot open for reading: \(error)")
        }

        let (client, runner) = await PostgresHubStore.start(url, logger: logger)
        defer { runner.cancel() }
        do {
            try await PostgresHubStore.migrate(client, logger: logger)
            let summary = try await client.withTransaction(logger: logger) { c in
                let pg = PG(connection: c, logger: logger)
                try await pg.exec("SELECT pg_advisory_xact_lock(2026120102)")
                if try await pg.one("SELECT 1 FROM hub_meta LIMIT 1") != nil {
                    throw HubFailure(.exists, "\(url) holds a hub already: migrate into an empty database (createdb NAME)")
                }
                return try await copy(file, bundles: bundles, into: pg, progress: progress)
            }
            // Statistics for the planner at once: until autovacuum gets to the freshly filled
            // tables, it may not use the region indexes (a village's pull measured 4× slower
            // among 10^6 changes right after a bulk load, docs/benchmarks.md).
            progress("ANALYZE")
            try await client.query("ANALYZE", logger: logger)
            return summary
        } catch {
            throw PostgresHubStore.storeError(error, url: url)
        }
    }

    static func copy(_ file: DatabaseQueue, bundles: String, into pg: PG, progress: @escaping @Sendable (String) -> Void) async throws -> Summary {
        var summary = Summary()
        // Identity: the same site id and key, so laptops keep trusting the pages. (A hub from
        // the first release keeps its old site id, which its key does not derive: laptops know
        // the hub by the id and key they learnt at enrolment.)
        let meta = try await file.read { db in
            Dictionary(try Row.fetchAll(db, sql: "SELECT key, value FROM fs_meta").map { ($0["key"] as String, ($0["value"] as DatabaseValue).description(plain: true)) },
                       uniquingKeysWith: { a, _ in a })
        }
        guard let siteHex = meta["site"], let site = SiteID(hex: siteHex), let seed = meta["site_key"].flatMap(Base64.decode),
              let key = SiteKey(seed: seed) else {
            throw ReplicaError.notAReplica(path: file.path, reason: "it is not a hub file with its signing key (fs_meta site, site_key)")
        }
        summary.hubSite = site.hex
        summary.hubName = meta["site_name"] ?? "hub"
        for (k, v) in [("site", site.hex), ("site_name", summary.hubName), ("site_key", Base64.encode(key.seed)),
                       ("public_key", Base64.encode(key.publicKey)), ("created", meta["created"] ?? "0"), ("horizon", meta["hub_horizon"] ?? "0"),
                       // The same epoch: its laptops go on as they were (a moved hub lost nothing).
                       ("epoch", meta["hub_epoch"].flatMap { HubEpoch.isID($0) ? $0 : nil } ?? HubEpoch.newID()),
                       ("epoch_start", meta["hub_epoch_start"] ?? "0")] {
            try await pg.exec("INSERT INTO hub_meta(key, value) VALUES ($1, $2)", [.text(k), .text(v)])
        }
        // The hub's schema (opening the file above took it into this process): its columns and
        // kinds before the records that fill them.
        if Schema.current.version > Schema.builtin.version {
            try await PostgresHubStore.upgradeTables(pg, from: .builtin, to: .current)
        }

        // The change log, positions kept.
        var after: Int64 = 0
        var hubCounter: Int64 = 0, hubHLC: Int64 = 0
        while true {
            let rows = try await file.read { db in
                try Row.fetchAll(db, sql: "SELECT seq, site, counter, kind, row, hlc, author, received, peer, body FROM fs_change WHERE seq > ? ORDER BY seq LIMIT ?",
                                 arguments: [after, batch * 4])
            }
            guard let last = rows.last else { break }
            var cols: [[PGValue]] = Array(repeating: [], count: 10)
            for r in rows {
                let vals: [PGValue] = [.int(r["seq"]), .int(r["site"]), .int(r["counter"]), .text(r["kind"]), .text(r["row"]), .int(r["hlc"]),
                                       .text(r["author"]), .int(r["received"]), .opt(r["peer"] as String?), .text(r["body"])]
                for (i, v) in vals.enumerated() { cols[i].append(v) }
                if UInt64(bitPattern: r["site"] as Int64) == site.raw {
                    hubCounter = max(hubCounter, r["counter"])
                    hubHLC = max(hubHLC, r["hlc"])
                }
            }
            try await insert(pg, "hub_change", ["seq", "site", "counter", "kind", "row", "hlc", "author", "received", "peer", "body"], rows: rows.indices.map { i in cols.map { $0[i] } })
            after = last["seq"]
            summary.changes += rows.count
            if summary.changes % 50_000 < rows.count { progress("变更 changes: \(summary.changes)") }
        }
        try await pg.exec("UPDATE hub_log_head SET seq = $1 WHERE id = 1", [.int(after)])
        let clock = try await file.read { db in try Row.fetchOne(db, sql: "SELECT hlc, counter FROM fs_clock WHERE id = 1") }
        try await pg.exec("INSERT INTO hub_clock(id, hlc, counter) VALUES (1, $1, $2)",
                          [.int(max(hubHLC, clock?["hlc"] ?? 0)), .int(max(hubCounter, clock?["counter"] ?? 0))])

        // Records, with their merge state as it is (the positions it names are kept).
        for kind in RecordKind.allCases {
            let names = kind.spec.fields.map(\.name)
            let t = PostgresSchema.kindTable(kind)
            try await forEachRecordBatch(file, kind) { rows in
                try await insert(pg, t, ["id"] + names + ["_deleted", "_clock"], rows: rows.map { r in
                    var v: [PGValue] = [.text(r["id"])]
                    for n in names {
                        switch (r[n] as DatabaseValue).storage {
                        case .int64(let i): v.append(.int(i))
                        case .string(let s): v.append(.text(s))
                        case .null, .double, .blob: v.append(.null)
                        }
                    }
                    v.append(.int(r["_deleted"]))
                    v.append(.bytes([UInt8](r["_clock"] as Data)))
                    return v
                }, casts: ["_deleted": "smallint"])
                summary.records += rows.count
            }
        }

        // The rest, table by table.
        func copyTable(_ table: String, into target: String? = nil, _ columns: [String], order: String, casts: [String: String] = [:], blobs: Set<String> = []) async throws -> Int {
            let rows = try await file.read { db in try Row.fetchAll(db, sql: "SELECT \(columns.joined(separator: ", ")) FROM \(table) ORDER BY \(order)") }
            try await insert(pg, target ?? table, columns, rows: rows.map { r in
                columns.map { c -> PGValue in
                    switch (r[c] as DatabaseValue).storage {
                    case .int64(let i): return .int(i)
                    case .string(let s): return .text(s)
                    case .blob(let d): return .bytes([UInt8](d))
                    case .null, .double: return .null
                    }
                }
            }, casts: casts)
            return rows.count
        }
        summary.conflicts = try await copyTable("fs_conflict", ["kind", "row", "field", "since"], order: "kind, row, field")
        // Changes kept for a newer schema (changeset.md §2.4): listed by record, so that
        // snapshots carry them and learning the schema merges them.
        let kept = try await copyTable("fs_pending", into: "hub_pending", ["seq", "kind", "row"], order: "seq")
        _ = try await copyTable("fs_set_aside", into: "hub_set_aside", ["change", "body", "reason", "came_from", "at"], order: "id")
        _ = try await copyTable("fs_site", ["id", "hex", "name"], order: "id")
        summary.devices = try await copyTable("hub_device", ["id", "name", "scope", "code_hash", "code_expires", "token_hash", "used_code_hash", "token_used",
                                                             "site", "site_name", "created", "enrolled", "revoked", "last_seen", "last_sync", "last_error",
                                                             "last_error_at", "pull_cursor", "pushed", "clock_skew"],
                                              order: "created, id", casts: ["token_used": "smallint"])
        _ = try await copyTable("hub_site", ["site", "hex", "device", "key", "bound"], order: "site")
        summary.supervisors = try await copyTable("hub_supervisor", ["name", "scope", "salt", "iterations", "password_hash", "created", "disabled", "last_login"],
                                                  order: "name", casts: ["iterations": "int"])
        _ = try await copyTable("hub_session", ["token_hash", "supervisor", "created", "expires", "csrf"], order: "token_hash")
        _ = try await copyTable("hub_signin", ["subject", "failures", "last_failure", "locked"], order: "subject", casts: ["failures": "int"])
        _ = try await copyTable("hub_security_event", ["at", "kind", "subject", "address", "detail"], order: "id")

        // Bundles uploaded to the file's inbox: into the database, where every hub process finds them.
        let fm = FileManager.default
        for device in (try? fm.contentsOfDirectory(atPath: bundles))?.sorted() ?? [] {
            for name in (try? fm.contentsOfDirectory(atPath: bundles + "/" + device))?.sorted() ?? [] where !name.contains(".partial-") {
                guard let data = fm.contents(atPath: "\(bundles)/\(device)/\(name)") else { continue }
                let stored = ((try? fm.attributesOfItem(atPath: "\(bundles)/\(device)/\(name)")[.modificationDate]) as? Date).map { Int64($0.timeIntervalSince1970 * 1000) } ?? 0
                try await pg.exec("INSERT INTO hub_bundle(device, name, bytes, stored) VALUES ($1, $2, $3, $4)",
                                  [.text(device), .text(name), .bytes([UInt8](data)), .int(stored)])
                summary.bundles += 1
            }
        }

        // What arrived must be what left.
        let counts: [(String, Int)] = [("hub_change", summary.changes), ("hub_device", summary.devices), ("fs_conflict", summary.conflicts), ("hub_pending", kept)]
        for (table, n) in counts {
            let got = try await pg.one("SELECT count(*) FROM \(table)")?.int(0) ?? -1
            guard got == Int64(n) else { throw ReplicaError.storage("copying \(table): \(n) rows read, \(got) written") }
        }
        progress("核对 checking every record, register and conflict")
        summary.checked = try await check(file, pg)
        return summary
    }

    /// Every record of `kind` in the SQLite file, in id order, `batch` at a time: its id, field
    /// columns, `_deleted` and `_clock`.
    static func forEachRecordBatch(_ file: DatabaseQueue, _ kind: RecordKind, _ body: ([Row]) async throws -> Void) async throws {
        let columns = (["id"] + kind.spec.fields.map(\.name) + ["_deleted", "_clock"]).joined(separator: ", ")
        let t = PostgresSchema.kindTable(kind)
        var lastID = ""
        while true {
            let rows = try await file.read { db in
                try Row.fetchAll(db, sql: "SELECT \(columns) FROM \(t) WHERE id > ? ORDER BY id LIMIT ?", arguments: [lastID, batch])
            }
            guard let last = rows.last else { return }
            try await body(rows)
            lastID = last["id"]
        }
    }

    /// Compares both stores record by record — the winning values, every register with its
    /// competing entries and the changes logged, the open conflicts — and the change logs
    /// change by change; the first difference is an error (and the copy is rolled back).
    static func check(_ file: DatabaseQueue, _ pg: PG) async throws -> Int {
        var checked = 0
        for kind in RecordKind.allCases {
            let names = kind.spec.fields.map(\.name)
            try await forEachRecordBatch(file, kind) { rows in
                let there = try await PostgresRecords.load(pg, kind, rows.map { $0["id"] }, lock: false)
                for r in rows {
                    let id: String = r["id"]
                    let values = names.map { n -> FieldValue in
                        switch (r[n] as DatabaseValue).storage {
                        case .int64(let i): return .integer(i)
                        case .string(let s): return .text(s)
                        default: return .null
                        }
                    }
                    let blob = [UInt8](r["_clock"] as Data)
                    let (state, log) = try blob.withUnsafeBytes { try ClockBlob.decode($0, kind: kind, columns: values, deleted: (r["_deleted"] as Int64) != 0) }
                    guard let copy = there[id] else { throw mismatch("\(kind.rawValue) \(id) is missing") }
                    guard copy.state.registers.map(\.entries) == state.registers.map(\.entries),
                          copy.state.registers.map(\.value) == state.registers.map(\.value),
                          copy.state.conflicts.map(\.field) == state.conflicts.map(\.field),
                          copy.log.map(\.id) == log.map(\.id), copy.log.map(\.seq) == log.map(\.seq) else {
                        throw mismatch("\(kind.rawValue) \(id) differs")
                    }
                    checked += 1
                }
            }
        }
        let conflicts = try await file.read { db in
            try Row.fetchAll(db, sql: "SELECT kind, row, field, since FROM fs_conflict ORDER BY kind, row, field").map { "\($0["kind"] as String) \($0["row"] as String) \($0["field"] as String) \($0["since"] as Int64)" }
        }
        let copied = try await pg.rows("SELECT kind, row, field, since FROM fs_conflict ORDER BY kind, row, field").map {
            "\(try $0.text(0)) \(try $0.text(1)) \(try $0.text(2)) \(try $0.int(3))"
        }
        guard conflicts == copied else { throw mismatch("the open conflicts differ") }
        var after: Int64 = 0
        while true {
            let rows = try await file.read { db in
                try Row.fetchAll(db, sql: "SELECT seq, site, counter, body FROM fs_change WHERE seq > ? ORDER BY seq LIMIT ?", arguments: [after, batch * 4])
            }
            guard let last = rows.last else { break }
            let copy = try await pg.rows("SELECT seq, site, counter, body FROM hub_change WHERE seq > $1 ORDER BY seq LIMIT $2", [.int(after), .int(Int64(rows.count))])
            guard copy.count == rows.count else { throw mismatch("the change logs differ after position \(after)") }
            for (r, c) in zip(rows, copy) {
                guard try c.int(0) == r["seq"], try c.int(1) == r["site"], try c.int(2) == r["counter"], try c.text(3) == r["body"] as String else {
                    throw mismatch("change-log position \(r["seq"] as Int64) differs")
                }
            }
            after = last["seq"]
        }
        return checked
    }

    static func mismatch(_ what: String) -> ReplicaError {
        .storage("the copy does not match the SQLite hub: \(what); nothing was kept (the transaction is rolled back)")
    }

    /// Inserts rows in statements of at most ``batch`` rows.
    static func insert(_ pg: PG, _ table: String, _ columns: [String], rows: [[PGValue]], casts: [String: String] = [:]) async throws {
        var start = 0
        while start < rows.count {
            let part = rows[start..<min(rows.count, start + batch)]
            var binds: [PGValue] = []
            var tuples: [String] = []
            for r in part {
                var slots: [String] = []
                for (c, v) in zip(columns, r) {
                    binds.append(v)
                    slots.append("$\(binds.count)" + (casts[c].map { "::\($0)" } ?? ""))
                }
                tuples.append("(" + slots.joined(separator: ", ") + ")")
            }
            try await pg.exec("INSERT INTO \(table)(\(columns.joined(separator: ", "))) VALUES \(tuples.joined(separator: ", "))", binds)
            start += batch
        }
    }
}

private extension DatabaseValue {
    /// The value as fs_meta keeps it, as text.
    func description(plain: Bool) -> String {
        switch storage {
        case .int64(let i): return String(i)
        case .double(let d): return String(d)
        case .string(let s): return s
        case .blob(let b): return String(decoding: b, as: UTF8.self)
        case .null: return ""
        }
    }
}

import FieldSyncCore
import FieldSyncHub
import FieldSyncReplica
import FieldSyncTrust
import Foundation
import Logging
import NIOCore
import PostgresNIO

// MARK: - PostgresHubStore

/// The hub's store in PostgreSQL, for a county or a province: several `fieldsync-hub serve`
/// processes share one database (docs/deploy.md). The rules are the hub's own (``PushAdmission``,
/// ``SignIn``, ``RecordMerge``); this type keeps what they decide.
///
/// Correct under concurrency (docs/architecture.md): a push locks the records it touches in id
/// order (`FOR UPDATE`), merges them, and takes the change log's head row last, so positions are
/// handed out in commit order and a pull never skips a change that commits later with a smaller
/// position; a transaction that meets a deadlock or a serialization failure is run again.
public final class PostgresHubStore: @unchecked Sendable {
    public let url: PostgresURL
    public let hubSite: SiteID
    public let hubName: String
    public let hubKey: SiteKey
    /// Which life of this database serves (sync.md §2): a new one after a restore.
    public let epoch: HubEpoch
    public let clock: @Sendable () -> Int64
    let client: PostgresClient
    let runner: Task<Void, Never>
    let logger: Logger
    /// Counters of transactions run again after a deadlock or serialization failure (metrics).
    let retries = ManagedCounter()
    /// When this process last looked for a schema another process loaded.
    let schemaWatch = SchemaWatch()

    /// Connects, brings the schema up to date, and reads (or, on an empty database, makes) the
    /// hub's identity.
    /// With `create` false, a database without a hub is refused (404) rather than made one.
    public init(url: PostgresURL, name: String = "hub", create: Bool = true, clock: @escaping @Sendable () -> Int64 = PostgresHubStore.wallClock,
                logger: Logger = Logger(label: "fieldsync-hub.postgres")) async throws {
        self.url = url
        self.clock = clock
        self.logger = logger
        (client, runner) = await Self.start(url, logger: logger)
        do {
            try await Self.migrate(client, logger: logger)
            let identity = try await Self.identity(client, name: name, create: create, url: url, now: clock(), logger: logger)
            hubSite = identity.site
            hubName = identity.name
            hubKey = identity.key
            epoch = identity.epoch
            try await reconcileSchema()
        } catch {
            runner.cancel()
            throw Self.storeError(error, url: url)
        }
    }

    deinit { runner.cancel() }

    /// Stops the connection pool.
    public func shutdown() { runner.cancel() }

    public var location: String { url.description }

    public func vitals() async throws -> HubVitals {
        let retried = retries.value
        return try await read { pg in
            var devices: [String: Int] = [:]
            for r in try await pg.rows("""
                SELECT CASE WHEN revoked IS NOT NULL THEN 'revoked' WHEN enrolled IS NULL THEN 'awaiting enrolment' ELSE 'enrolled' END AS s, count(*)
                FROM hub_device GROUP BY s
                """) { devices[try r.text(0)] = Int(try r.int(1)) }
            return HubVitals(openConflicts: Int(try await pg.one("SELECT count(*) FROM fs_conflict")?.int(0) ?? 0),
                             changeLogPosition: try await pg.one("SELECT seq FROM hub_log_head WHERE id = 1")?.int(0) ?? 0,
                             devices: devices, retries: retried)
        }
    }
    public func close() async { shutdown() }

    public static func wallClock() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

    /// Creates an empty database `name` on the server `url` points at (as its user), and returns
    /// the URL of the new one. For tests, benchmarks and `fieldsync-hub migrate`; `name` is
    /// letters, digits and underscores.
    public static func createDatabase(_ name: String, on url: PostgresURL, logger: Logger = Logger(label: "fieldsync-hub.postgres")) async throws -> PostgresURL {
        guard !name.isEmpty, name.utf8.count <= 63, name.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x5F }) else {
            throw ReplicaError.invalidInput(InputError("database", "a new database's name is 1–63 lowercase letters, digits and _, got \"\(name.prefix(70))\""))
        }
        let (client, task) = await start(url, logger: logger)
        defer { task.cancel() }
        do {
            try await client.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name) TEMPLATE template0 ENCODING 'UTF8'"), logger: logger)
        } catch {
            throw storeError(error, url: url)
        }
        var new = url
        new.database = name
        return new
    }

    /// Drops database `name` on the server `url` points at (benchmarks clean up after
    /// themselves); nobody may be connected to it. `name` as for ``createDatabase(_:on:logger:)``.
    public static func dropDatabase(_ name: String, on url: PostgresURL, logger: Logger = Logger(label: "fieldsync-hub.postgres")) async throws {
        guard !name.isEmpty, name.utf8.count <= 63, name.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x5F }) else {
            throw ReplicaError.invalidInput(InputError("database", "a database's name is 1–63 lowercase letters, digits and _, got \"\(name.prefix(70))\""))
        }
        let (client, task) = await start(url, logger: logger)
        defer { task.cancel() }
        do {
            try await client.query(PostgresQuery(unsafeSQL: "DROP DATABASE IF EXISTS \(name)"), logger: logger)
        } catch {
            throw storeError(error, url: url)
        }
    }

    public func now() -> Int64 { clock() }

    // MARK: Migrations and identity

    static func migrate(_ client: PostgresClient, logger: Logger) async throws {
        try await client.withTransaction(logger: logger) { c in
            // One process migrates at a time; the others wait here, then find nothing to do.
            try await c.query("SELECT pg_advisory_xact_lock(2026120101)", logger: logger)
            try await c.query("CREATE TABLE IF NOT EXISTS hub_migration(name text PRIMARY KEY, applied bigint NOT NULL)", logger: logger)
            var applied = Set<String>()
            for try await n in try await c.query("SELECT name FROM hub_migration", logger: logger).decode(String.self) { applied.insert(n) }
            for m in PostgresSchema.migrations where !applied.contains(m.name) {
                for s in m.statements { try await c.query(PostgresQuery(unsafeSQL: s), logger: logger) }
                try await c.query("INSERT INTO hub_migration(name, applied) VALUES (\(m.name), \(wallClock()))", logger: logger)
            }
        }
    }

    /// A connection pool for `url`, running.
    static func start(_ url: PostgresURL, logger: Logger) async -> (PostgresClient, Task<Void, Never>) {
        let client = PostgresClient(configuration: url.configuration, backgroundLogger: logger)
        let runner = Task { await client.run() }
        // run() marks the pool running at once; a lease before that works too, but postgres-nio
        // then logs a warning. A few milliseconds at start-up spare the operator that line.
        try? await Task.sleep(nanoseconds: 5_000_000)
        return (client, runner)
    }

    static func identity(_ client: PostgresClient, name: String, create: Bool, url: PostgresURL, now: Int64, logger: Logger) async throws -> (site: SiteID, name: String, key: SiteKey, epoch: HubEpoch) {
        try await client.withTransaction(logger: logger) { c in
            try await c.query("SELECT pg_advisory_xact_lock(2026120102)", logger: logger)
            var meta: [String: String] = [:]
            for try await (k, v) in try await c.query("SELECT key, value FROM hub_meta", logger: logger).decode((String, String).self) { meta[k] = v }
            if let hex = meta["site"], var site = SiteID(hex: hex), let seed = meta["site_key"].flatMap(Base64.decode), let key = SiteKey(seed: seed) {
                let siteName = meta["site_name"] ?? name
                if meta["restored"] == nil, let id = meta["epoch"], HubEpoch.isID(id), let start = meta["epoch_start"].flatMap({ Int64($0) }) {
                    return (site, siteName, key, HubEpoch(id: id, start: start))
                }
                // Restored from a backup (`fieldsync-hub restored`): a new id for the hub, with
                // the same key, and a new epoch starting where the restored log ends; or, for a
                // database from before epochs, its first epoch.
                var start: Int64 = 0
                if meta["restored"] != nil {
                    var taken = Set<UInt64>()
                    for try await id in try await c.query("SELECT id FROM fs_site", logger: logger).decode(Int64.self) { taken.insert(UInt64(bitPattern: id)) }
                    let fresh = SiteID.random(avoiding: taken)
                    site = fresh
                    try await c.query("UPDATE hub_meta SET value = \(fresh.hex) WHERE key = 'site'", logger: logger)
                    try await c.query("INSERT INTO fs_site(id, hex, name) VALUES (\(Int64(bitPattern: fresh.raw)), \(fresh.hex), \(siteName))", logger: logger)
                    try await c.query("""
                        INSERT INTO hub_site(site, hex, device, key, bound) VALUES (\(Int64(bitPattern: fresh.raw)), \(fresh.hex), NULL,
                          \(ByteBuffer(bytes: key.publicKey)), \(now))
                        """, logger: logger)
                    try await c.query("UPDATE hub_clock SET counter = 0 WHERE id = 1", logger: logger)
                    for try await seq in try await c.query("SELECT seq FROM hub_log_head WHERE id = 1", logger: logger).decode(Int64.self) { start = seq }
                }
                let e = HubEpoch(id: HubEpoch.newID(), start: start)
                for (k, v) in [("epoch", e.id), ("epoch_start", String(start))] {
                    try await c.query("INSERT INTO hub_meta(key, value) VALUES (\(k), \(v)) ON CONFLICT (key) DO UPDATE SET value = excluded.value", logger: logger)
                }
                try await c.query("DELETE FROM hub_meta WHERE key = 'restored'", logger: logger)
                return (site, siteName, key, e)
            }
            guard create else {
                throw HubFailure(.notFound, "\(url) holds no hub yet (serve it once, or fieldsync-hub migrate a SQLite hub into it)")
            }
            let key = SiteKey()
            let e = HubEpoch(id: HubEpoch.newID(), start: 0)
            for (k, v) in [("site", key.site.hex), ("site_name", name), ("site_key", Base64.encode(key.seed)),
                           ("public_key", Base64.encode(key.publicKey)), ("created", String(now)), ("horizon", "0"),
                           ("epoch", e.id), ("epoch_start", "0")] {
                try await c.query("INSERT INTO hub_meta(key, value) VALUES (\(k), \(v))", logger: logger)
            }
            try await c.query("INSERT INTO hub_clock(id, hlc, counter) VALUES (1, 0, 0)", logger: logger)
            try await c.query("INSERT INTO fs_site(id, hex, name) VALUES (\(Int64(bitPattern: key.site.raw)), \(key.site.hex), \(name))", logger: logger)
            try await c.query("""
                INSERT INTO hub_site(site, hex, device, key, bound) VALUES (\(Int64(bitPattern: key.site.raw)), \(key.site.hex), NULL,
                  \(ByteBuffer(bytes: key.publicKey)), \(now))
                """, logger: logger)
            return (key.site, name, key, e)
        }
    }

    /// Marks the hub database at `url` as restored from a backup (after `pg_restore`): the next
    /// hub process to open it starts a new epoch (a new hub site id, the same key).
    public static func markRestored(url: PostgresURL, logger: Logger = Logger(label: "fieldsync-hub.postgres")) async throws {
        let (client, runner) = await start(url, logger: logger)
        defer { runner.cancel() }
        do {
            try await client.withConnection { c in
                let n = try await c.query("SELECT count(*) FROM information_schema.tables WHERE table_name = 'hub_meta'", logger: logger).collect()
                guard let row = n.first, try row.decode(Int64.self) > 0 else {
                    throw HubFailure(.notFound, "\(url) holds no hub (nothing to mark as restored)")
                }
                try await c.query("""
                    INSERT INTO hub_meta(key, value) VALUES ('restored', \(String(wallClock()))) ON CONFLICT (key) DO UPDATE SET value = excluded.value
                    """, logger: logger)
            }
        } catch let f as HubFailure { throw f } catch { throw storeError(error, url: url) }
    }

    // MARK: Running statements

    /// Runs `body` in one transaction, again (up to five times) when PostgreSQL reports a
    /// deadlock (40P01) or a serialization failure (40001): the locks are taken in a consistent
    /// order, so those are rare, and running again is the remedy the documentation gives.
    func transaction<T: Sendable>(_ body: @Sendable (PG) async throws -> T) async throws -> T {
        var attempt = 0
        while true {
            do {
                return try await client.withTransaction(logger: logger) { c in try await body(PG(connection: c, logger: logger)) }
            } catch {
                let state = Self.sqlState(error)
                if (state == "40P01" || state == "40001"), attempt < 4 {
                    attempt += 1
                    retries.add()
                    try await Task.sleep(nanoseconds: UInt64.random(in: 1_000_000...20_000_000) << attempt)
                    continue
                }
                throw Self.storeError(error, url: url)
            }
        }
    }

    /// Runs one statement outside a transaction.
    func read<T: Sendable>(_ body: @Sendable (PG) async throws -> T) async throws -> T {
        do { return try await client.withConnection { c in try await body(PG(connection: c, logger: logger)) } } catch {
            throw Self.storeError(error, url: url)
        }
    }

    static func sqlState(_ error: any Error) -> String? {
        if let e = error as? PSQLError { return e.serverInfo?[.sqlState] }
        if let t = error as? PostgresTransactionError {
            for inner in [t.closureError, t.commitError, t.beginError] { if let s = inner.flatMap(sqlState) { return s } }
        }
        return nil
    }

    /// A refusal (``HubFailure``, an input error) goes through as it is; a failure of the
    /// database becomes a storage error (503 to clients, who try again).
    static func storeError(_ error: any Error, url: PostgresURL) -> any Error {
        if error is HubFailure || error is ReplicaError || error is ApplyRefusal || error is CancellationError { return error }
        if let t = error as? PostgresTransactionError, let inner = t.closureError ?? t.beginError ?? t.commitError {
            if inner is HubFailure || inner is ReplicaError || inner is ApplyRefusal { return inner }
            return storeError(inner, url: url)
        }
        if let e = error as? PSQLError {
            let state = e.serverInfo?[.sqlState] ?? "-"
            let message = e.serverInfo?[.message] ?? "\(e.code)"
            return ReplicaError.storage("PostgreSQL \(url): \(message) (SQLSTATE \(state))")
        }
        return ReplicaError.storage("PostgreSQL \(url): \(error)")
    }
}

// MARK: - PG

/// One connection (or transaction) and the statements the store runs on it, with binds built
/// from ``PGValue``s.
struct PG: @unchecked Sendable {
    let connection: PostgresConnection
    let logger: Logger

    @discardableResult
    func rows(_ sql: String, _ binds: [PGValue] = []) async throws -> [PostgresRandomAccessRow] {
        var out: [PostgresRandomAccessRow] = []
        try await each(sql, binds) { out.append($0.makeRandomAccess()) }
        return out
    }

    func exec(_ sql: String, _ binds: [PGValue] = []) async throws {
        try await rows(sql, binds)
    }

    /// Runs `body` on each row as it arrives, holding none of them (a report's visits).
    func each(_ sql: String, _ binds: [PGValue] = [], _ body: (PostgresRow) throws -> Void) async throws {
        var b = PostgresBindings(capacity: binds.count)
        for v in binds { v.bind(into: &b) }
        for try await r in try await connection.query(PostgresQuery(unsafeSQL: sql, binds: b), logger: logger) { try body(r) }
    }

    func one(_ sql: String, _ binds: [PGValue] = []) async throws -> PostgresRandomAccessRow? { try await rows(sql, binds).first }
}

/// A value to bind: the few types the hub's tables hold.
enum PGValue: Sendable {
    case int(Int64)
    case text(String)
    case bytes([UInt8])
    case null
    /// `$n::bigint[]` and `$n::text[]` for `unnest` and `= ANY`.
    case ints([Int64])
    case texts([String])

    static func opt(_ v: Int64?) -> PGValue { v.map { .int($0) } ?? .null }
    static func opt(_ v: String?) -> PGValue { v.map { .text($0) } ?? .null }

    func bind(into b: inout PostgresBindings) {
        switch self {
        case .int(let i): b.append(i)
        case .text(let s): b.append(s)
        case .bytes(let x): b.append(ByteBuffer(bytes: x))
        case .null: b.appendNull()
        case .ints(let a): b.append(a)
        case .texts(let a): b.append(a)
        }
    }

    /// A field value as its column holds it.
    init(_ v: FieldValue) {
        switch v {
        case .null: self = .null
        case .integer(let i): self = .int(i)
        case .text(let s): self = .text(s)
        }
    }
}

extension PostgresRandomAccessRow {
    func int(_ i: Int) throws -> Int64 { try self[i].decode(Int64.self) }
    func optInt(_ i: Int) throws -> Int64? { try self[i].decode(Int64?.self) }
    func text(_ i: Int) throws -> String { try self[i].decode(String.self) }
    func optText(_ i: Int) throws -> String? { try self[i].decode(String?.self) }
    func bytes(_ i: Int) throws -> [UInt8] {
        guard var b = try self[i].decode(ByteBuffer?.self) else { return [] }
        return b.readBytes(length: b.readableBytes) ?? []
    }
    /// A record column by the field's type.
    func field(_ i: Int, _ t: FieldType) throws -> FieldValue {
        if t.sqlType == "INTEGER" { return try optInt(i).map { .integer($0) } ?? .null }
        return try optText(i).map { .text($0) } ?? .null
    }
}

/// A count several tasks add to.
final class ManagedCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var n = 0
    func add() { lock.withLock { n += 1 } }
    var value: Int { lock.withLock { n } }
}

// MARK: - Benchmarks

extension PostgresHubStore {
    /// Runs one read-only statement and returns how many rows it gave, for fieldsync-bench's
    /// report benchmark (its full-scan baseline). Not for a hub in use.
    public func benchmarkRead(_ sql: String) async throws -> Int {
        try await read { pg in try await pg.rows(sql).count }
    }

    /// Appends `rows` changes of other villages (townships 200–296 of county 520221) to the
    /// change log, as pushes would have, for fieldsync-bench's pull benchmark. Not for a hub in use.
    public func benchmarkFill(rows: Int, counterBase: Int) async throws {
        try await transaction { pg in
            let head = try await pg.one("SELECT seq FROM hub_log_head WHERE id = 1 FOR UPDATE")!.int(0)
            try await pg.exec("""
                INSERT INTO hub_change(seq, site, counter, kind, row, hlc, author, received, peer, body)
                SELECT $1 + g, 4242, $2 + g, 'visit', '520221' || (200 + g % 97)::text || lpad((g % 13)::text, 3, '0') || '-' || md5(g::text),
                       0, '其他村', 0, 'dev-other', '{}' FROM generate_series(1, $3::bigint) AS g
                """, [.int(head), .int(Int64(counterBase)), .int(Int64(rows))])
            try await pg.exec("UPDATE hub_log_head SET seq = seq + $1 WHERE id = 1", [.int(Int64(rows))])
        }
        // As autovacuum would after so many new rows: without statistics the planner may not
        // use the region index yet, and the benchmark would measure that, not a pull.
        try await read { pg in try await pg.exec("ANALYZE hub_change") }
    }
}

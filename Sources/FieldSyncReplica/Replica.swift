import FieldSyncCore
import FieldSyncTrust
import Foundation
import GRDB

// MARK: - KeyCustody

/// Where a replica keeps its site's signing key (docs/security.md).
public enum KeyCustody: Sendable {
    /// A laptop: in the owner-only file `REPLICA.secret`, with the device token, never in the
    /// replica. A replica opened without it takes a new site id derived from a new key.
    case secretFile
    /// The hub: in its own store (the hub file is the hub's secret as a whole). The hub keeps
    /// its site id whatever its key, since laptops learn its key from the hub itself.
    case database
}

// MARK: - Replica

/// A laptop's copy of the records: one ordinary SQLite file, merged field by field.
///
///     let r = try Replica.create(path: "niujiao.sqlite", siteName: "牛角村-笔记本1", author: "王芳")
///     let id = try r.add(.dispute, ["village": "520221105201", "category": "邻里纠纷", …])
///     try r.edit(id, ["status": "已化解"])
///
/// Every write happens in one SQLite transaction together with its entry in the change log,
/// so a crash never separates the two. A `Replica` is used from one thread at a time.
public final class Replica {
    public let path: String
    /// The site this replica writes under now. Derived from ``key`` on a laptop.
    public internal(set) var site: SiteID
    /// The site's signing key: signs this site's changes in bundles (a laptop) or the pages it
    /// serves (the hub), Protocol/changeset.md §7.
    public internal(set) var key: SiteKey
    public let custody: KeyCustody
    public private(set) var siteName: String
    /// Who is credited with local edits when a command does not say.
    public private(set) var author: String
    /// The wall clock in Unix milliseconds. Tests replace it to play a laptop with a wrong clock;
    /// FIELDSYNC_CLOCK_SKEW_MS shifts it for a whole process (the end-to-end tests use that).
    public var wallClock: () -> Int64 = {
        Int64((Date().timeIntervalSince1970 * 1000).rounded(.down)) + Replica.processClockSkew
    }

    static let processClockSkew: Int64 = ProcessInfo.processInfo.environment["FIELDSYNC_CLOCK_SKEW_MS"].flatMap(Int64.init)
        .map { max(-HybridTimestamp.maxMillis, min(HybridTimestamp.maxMillis, $0)) } ?? 0
    public let maxDrift: Int64

    let db: DatabaseQueue

    /// The underlying database, for the hub's own tables in the same file.
    @_spi(Hub) public var database: DatabaseQueue { db }
    // Per-transaction state, reloaded at the start of every write transaction.
    var clock: HybridLogicalClock
    var clockOffset: Int64 = 0
    var nextCounter: Int64 = 1
    var knownSites: Set<UInt64> = []
    /// `PRAGMA data_version` when the clock and counter were last known to be current; another
    /// connection's commit changes it, and then they are read again from the file.
    var cachedDataVersion: Int64?
    /// The change-log position fs_clock was last saved at, and the newest position written.
    var savedClockSeq: Int64 = 0
    var lastSeq: Int64 = 0
    var savedOffset: Int64 = 0
    /// The hot path's statements by a small number (``hotStatement(_:_:sql:)``): GRDB's
    /// `cachedStatement(sql:)` hashes the whole SQL text on every call, which callgrind put at
    /// about 5% of applying a change.
    var hotStatements: [Int: Statement] = [:]

    init(path: String, db: DatabaseQueue, site: SiteID, key: SiteKey, custody: KeyCustody, siteName: String, author: String, maxDrift: Int64) {
        self.path = path
        self.db = db
        self.site = site
        self.key = key
        self.custody = custody
        self.siteName = siteName
        self.author = author
        self.maxDrift = maxDrift
        self.clock = HybridLogicalClock(maxDrift: maxDrift)
    }

    // MARK: Opening

    static func configuration() -> Configuration {
        var c = Configuration()
        c.busyMode = .timeout(15)
        c.prepareDatabase { db in
            // WAL, set here rather than with `journalMode = .wal`: GRDB's WAL setup runs after
            // this and sets synchronous = NORMAL, under which a power loss can undo commits
            // already acknowledged (a hub's answer to a push, a laptop's cursor).
            try db.execute(sql: "PRAGMA journal_mode = WAL")
            // FULL: a change acknowledged to anyone survives power loss, not just a crash.
            try db.execute(sql: "PRAGMA synchronous = FULL")
        }
        return c
    }

    /// Creates a new replica file (0600, its folder 0700 when made here) and, for a laptop, its
    /// secret file. Fails if the file already exists.
    public static func create(path: String, siteName: String, author: String,
                              maxDrift: Int64 = HybridLogicalClock.defaultMaxDrift, custody: KeyCustody = .secretFile,
                              migrations: ((inout DatabaseMigrator) -> Void)? = nil) throws -> Replica {
        guard !siteName.isEmpty, siteName.count <= 200 else {
            throw ReplicaError.invalidInput(InputError("--site", "a site name is 1…200 characters"))
        }
        guard !author.isEmpty, author.count <= ChangeCodec.maxAuthorLength else {
            throw ReplicaError.invalidInput(InputError("--author", "an author is 1…\(ChangeCodec.maxAuthorLength) characters"))
        }
        if FileManager.default.fileExists(atPath: path) { throw ReplicaError.alreadyExists(path: path) }
        let key = SiteKey()
        let site = key.site
        do {
            try OwnerOnly.makeFolder(for: path)
            try OwnerOnly.createFile(path)
        } catch {
            throw ReplicaError.storage("cannot create \(path): \(error.localizedDescription)")
        }
        if custody == .secretFile { try ReplicaSecrets(key: key, home: ReplicaSecrets.home(of: path)).save(for: path) }
        return try storage {
            let q = try DatabaseQueue(path: path, configuration: configuration())
            var migrator = ReplicaMigrations.migrator
            migrations?(&migrator)
            try migrator.migrate(q)
            try q.inTransaction(.immediate) { db in
                var meta: [(String, DatabaseValueConvertible)] = [
                    ("format", SQLLayout.formatName), ("format_version", SQLLayout.formatVersion),
                    ("schema_version", Schema.current.version), ("schema", Schema.current.document.compactText), ("site", site.hex), ("site_name", siteName),
                    ("author", author), ("created", Int64(Date().timeIntervalSince1970 * 1000)), ("max_drift_ms", maxDrift),
                    ("public_key", Base64.encode(key.publicKey)),
                ]
                if custody == .database { meta.append(("site_key", Base64.encode(key.seed))) }
                for (k, v) in meta { try db.execute(sql: "INSERT INTO fs_meta(key, value) VALUES (?, ?)", arguments: [k, v]) }
                try db.execute(sql: "INSERT INTO fs_site(id, hex, name) VALUES (?, ?, ?)",
                               arguments: [Int64(bitPattern: site.raw), site.hex, siteName])
                try db.execute(sql: "INSERT INTO fs_clock(id, hlc, counter, seq) VALUES (1, 0, 0, 0)")
                return .commit
            }
            return Replica(path: path, db: q, site: site, key: key, custody: custody, siteName: siteName, author: author, maxDrift: maxDrift)
        }
    }

    /// Opens an existing replica, and turns any writes made through plain SQL since the
    /// last open into changes.
    ///
    /// The file is brought up to date with its migrations first; a file from the release before
    /// signed provenance moves its device token to the secret file and, having no key, takes a
    /// new site id (``KeyCustody``).
    public static func open(path: String, custody: KeyCustody = .secretFile,
                            migrations: ((inout DatabaseMigrator) -> Void)? = nil) throws -> Replica {
        guard FileManager.default.fileExists(atPath: path) else {
            throw ReplicaError.notAReplica(path: path, reason: "the file does not exist (create one with `fieldsync init --site NAME`)")
        }
        OwnerOnly.tighten(database: path)
        let r: Replica = try storage {
            let q = try DatabaseQueue(path: path, configuration: configuration())
            let meta = try q.read { db -> [String: DatabaseValue] in
                guard try db.tableExists("fs_meta") else { return [:] }
                var m: [String: DatabaseValue] = [:]
                for row in try Row.fetchAll(db, sql: "SELECT key, value FROM fs_meta") { m[row["key"]] = row["value"] }
                return m
            }
            guard String.fromDatabaseValue(meta["format"] ?? .null) == SQLLayout.formatName else {
                throw ReplicaError.notAReplica(path: path, reason: "it has no FieldSync metadata (fs_meta)")
            }
            let fv = Int.fromDatabaseValue(meta["format_version"] ?? .null) ?? 0
            guard fv <= SQLLayout.formatVersion else {
                throw ReplicaError.notAReplica(path: path, reason: "it was written by a newer FieldSync (file format \(fv)); upgrade")
            }
            guard let hex = String.fromDatabaseValue(meta["site"] ?? .null), let site = SiteID(hex: hex) else {
                throw ReplicaError.notAReplica(path: path, reason: "its site id is missing or malformed")
            }
            var migrator = ReplicaMigrations.migrator
            migrations?(&migrator)
            try migrator.migrate(q)
            let name = String.fromDatabaseValue(meta["site_name"] ?? .null) ?? ""
            let (current, key) = try identity(path: path, db: q, site: site, siteName: name, custody: custody,
                                               storedSeed: String.fromDatabaseValue(meta["site_key"] ?? .null))
            return Replica(path: path, db: q, site: current, key: key, custody: custody, siteName: name,
                           author: String.fromDatabaseValue(meta["author"] ?? .null) ?? "",
                           maxDrift: Int64.fromDatabaseValue(meta["max_drift_ms"] ?? .null) ?? HybridLogicalClock.defaultMaxDrift)
        }
        try r.reconcileSchema()
        try r.ingestCapturedWrites()
        return r
    }

    /// The site this replica writes under and its key. A laptop whose secret file is missing or
    /// belongs to another site (a copied replica, or a file from before signed provenance) takes
    /// a new site id here; a device token still kept in the replica moves to the secret file.
    static func identity(path: String, db q: DatabaseQueue, site: SiteID, siteName: String, custody: KeyCustody,
                         storedSeed: String?) throws -> (SiteID, SiteKey) {
        switch custody {
        case .database:
            if let seed = storedSeed.flatMap(Base64.decode), let key = SiteKey(seed: seed) { return (site, key) }
            let key = SiteKey()
            try q.write { db in
                try db.execute(sql: "INSERT OR REPLACE INTO fs_meta(key, value) VALUES ('site_key', ?), ('public_key', ?)",
                               arguments: [Base64.encode(key.seed), Base64.encode(key.publicKey)])
            }
            return (site, key)
        case .secretFile:
            var secrets = ReplicaSecrets.load(for: path)
            let legacyToken = try q.read { db in try String.fetchOne(db, sql: "SELECT token FROM fs_sync WHERE id = 1 AND token != ''") }
            if let secrets, secrets.key.site == site {
                if let legacyToken, secrets.token == nil {
                    var s = secrets
                    s.token = legacyToken
                    try s.save(for: path)
                }
                if legacyToken != nil { try q.write { try $0.execute(sql: "UPDATE fs_sync SET token = '' WHERE id = 1") } }
                let here = ReplicaSecrets.home(of: path)
                guard let home = secrets.home else {
                    // A secret file from before homes were kept: this is its home from now on.
                    var s = secrets
                    s.home = here
                    try s.save(for: path)
                    return (site, secrets.key)
                }
                guard home != here else { return (site, secrets.key) }
                // Opened somewhere else than where it was written — a copy on another machine
                // or file, or a restored disk image — so another copy may write under this site
                // id and hold the same device token: take a new site before writing anything,
                // and leave the device to the copy at home. This one keeps every record and
                // change (earlier changes keep their ids) and is enrolled again to sync
                // (`fieldsync enroll`: a new code from the hub), or hands its work over by bundle.
                let key = SiteKey()
                try ReplicaSecrets(key: key, token: nil, home: here).save(for: path)
                try q.inTransaction(.immediate) { db in
                    try renewSite(db, from: site, to: key, name: siteName)
                    try db.execute(sql: "DELETE FROM fs_sync")
                    try db.execute(sql: "INSERT OR REPLACE INTO fs_meta(key, value) VALUES ('copied_from', ?)",
                                   arguments: ["\(site.hex) \(Int64(Date().timeIntervalSince1970 * 1000))"])
                    return .commit
                }
                return (key.site, key)
            }
            // No key for this site here: speak under a new one. What was made under the old id
            // stays valid; the hub learns the new id from this device at its next sync.
            let key = SiteKey()
            secrets = ReplicaSecrets(key: key, token: legacyToken, home: ReplicaSecrets.home(of: path))
            try secrets!.save(for: path)
            try q.inTransaction(.immediate) { db in
                try renewSite(db, from: site, to: key, name: siteName)
                if legacyToken != nil { try db.execute(sql: "UPDATE fs_sync SET token = '' WHERE id = 1") }
                return .commit
            }
            return (key.site, key)
        }
    }

    /// Records that this replica writes under `key`'s site from now on; the old site becomes a
    /// former one. The new site's counter starts at 1.
    static func renewSite(_ db: Database, from old: SiteID, to key: SiteKey, name: String) throws {
        try renewSite(db, from: old, to: key.site, key: key, name: name)
    }

    /// Writes under `fresh` from now on, signing with `key` (a laptop: the key `fresh` derives
    /// from; a hub: its own key, which its laptops know, under a new id).
    static func renewSite(_ db: Database, from old: SiteID, to fresh: SiteID, key: SiteKey, name: String) throws {
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        try db.execute(sql: "INSERT OR REPLACE INTO fs_former_site(hex, until) VALUES (?, ?)", arguments: [old.hex, now])
        try db.execute(sql: "UPDATE fs_meta SET value = ? WHERE key = 'site'", arguments: [fresh.hex])
        try db.execute(sql: "INSERT OR REPLACE INTO fs_meta(key, value) VALUES ('public_key', ?)", arguments: [Base64.encode(key.publicKey)])
        try db.execute(sql: """
            INSERT INTO fs_site(id, hex, name) VALUES (?, ?, ?) ON CONFLICT(id) DO UPDATE SET name = excluded.name
            """, arguments: [Int64(bitPattern: fresh.raw), fresh.hex, name])
        // The clock keeps its reading; the counter is the new site's (loadClock counts only
        // changes of the current site from the log's tail).
        try db.execute(sql: "UPDATE fs_clock SET counter = 0 WHERE id = 1")
    }

    /// Sets the default author of local edits.
    public func setAuthor(_ name: String) throws {
        guard !name.isEmpty, name.count <= ChangeCodec.maxAuthorLength else {
            throw ReplicaError.invalidInput(InputError("--author", "an author is 1…\(ChangeCodec.maxAuthorLength) characters"))
        }
        try write { db in try db.execute(sql: "UPDATE fs_meta SET value = ? WHERE key = 'author'", arguments: [name]) }
        author = name
    }

    // MARK: Transactions

    /// Runs `body` in one IMMEDIATE write transaction with the clock and counter loaded from
    /// the file (another process may have written since), saving the clock before commit.
    func write<T>(_ body: (Database) throws -> T) throws -> T {
        try Self.storage {
            var result: T?
            let saved = (clock, nextCounter, savedClockSeq, lastSeq)
            do {
                try db.inTransaction(.immediate) { db in
                    let dv = try hotStatement(db, HotKey.dataVersion, sql: "PRAGMA data_version")
                    dv.begin()
                    _ = try dv.step(db)
                    let version = dv.int64(0)
                    dv.begin()
                    if version != cachedDataVersion { try loadClock(db) }
                    cachedDataVersion = version
                    let startSeq = lastSeq
                    result = try body(db)
                    // Saving fs_clock costs a page per transaction; a short tail of changes after
                    // the saved position is cheap to read back instead (loadClock).
                    if lastSeq - savedClockSeq >= 256 || lastSeq - startSeq >= 32 || clockOffset != savedOffset {
                        try saveClock(db)
                    }
                    return .commit
                }
            } catch {
                // Rolled back: what this process believed about the clock may not be on disk.
                (clock, nextCounter, savedClockSeq, lastSeq) = saved
                cachedDataVersion = nil
                throw error
            }
            return result!
        }
    }

    /// Reads the clock and this site's last counter: as saved in fs_clock, brought up to date
    /// with the changes logged after the saved position.
    func loadClock(_ db: Database) throws {
        // Another process (the daemon, the app, the CLI) may have taken a new site id since this
        // one opened the file: write under the one the file names, with its key.
        if custody == .secretFile, let current = try String.fetchOne(db, sql: "SELECT value FROM fs_meta WHERE key = 'site'"),
           current != site.hex {
            guard let secrets = ReplicaSecrets.load(for: path), secrets.key.site.hex == current else {
                throw ReplicaError.storage("the replica now writes under site \(current) but \(ReplicaSecrets.path(for: path)) holds no key for it; reopen the replica")
            }
            site = secrets.key.site
            key = secrets.key
        }
        let st = try db.cachedStatement(sql: "SELECT hlc, counter, seq, offset_ms FROM fs_clock WHERE id = 1")
        st.begin()
        guard try st.step(db) else { throw ReplicaError.storage("fs_clock is empty") }
        clock = HybridLogicalClock(last: HybridTimestamp(packed: st.int64(0)), maxDrift: maxDrift)
        var counter = st.int64(1)
        savedClockSeq = st.int64(2)
        clockOffset = st.int64(3)
        savedOffset = clockOffset
        st.begin()
        lastSeq = savedClockSeq
        let tail = try db.cachedStatement(sql: "SELECT seq, site, counter, hlc, received FROM fs_change WHERE seq > ? ORDER BY seq")
        tail.begin()
        tail.bind(1, savedClockSeq)
        let me = Int64(bitPattern: site.raw)
        while try tail.step(db) {
            lastSeq = tail.int64(0)
            let hlc = HybridTimestamp(packed: tail.int64(3))
            if tail.int64(1) == me {
                counter = max(counter, tail.int64(2))
                if hlc > clock.last { _ = clock.observe(hlc, wall: hlc.millis) }
            } else {
                clock.observe(hlc, wall: tail.int64(4) + clockOffset)
            }
        }
        tail.begin()
        nextCounter = counter + 1
    }

    func saveClock(_ db: Database) throws {
        let save = try db.cachedStatement(sql: "UPDATE fs_clock SET hlc = ?, counter = ?, seq = ?, offset_ms = ? WHERE id = 1")
        save.begin()
        save.bind(1, clock.last.packed)
        save.bind(2, nextCounter - 1)
        save.bind(3, lastSeq)
        save.bind(4, clockOffset)
        try save.run(db)
        save.begin()
        savedClockSeq = lastSeq
        savedOffset = clockOffset
    }

    func read<T>(_ body: (Database) throws -> T) throws -> T {
        try Self.storage { try db.read(body) }
    }

    /// Translates SQLite failures into ``ReplicaError/storage(_:)``; the transaction has been
    /// rolled back by then.
    static func storage<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let e as ReplicaError {
            throw e
        } catch let e as InputError {
            throw ReplicaError.invalidInput(e)
        } catch let e as DatabaseError {
            throw ReplicaError.storage("\(e.message ?? "SQLite error") (SQLite code \(e.extendedResultCode.rawValue))")
        }
    }

    /// The time this replica stamps on local edits: the wall clock plus any correction the
    /// hub has told it about.
    var now: Int64 { wallClock() + clockOffset }

    /// A prepared statement of this replica's one connection, found by `key` (distinct per SQL
    /// text: callers put the schema version and the kind in it). SQLite prepares it again by
    /// itself when the tables change (sqlite3_prepare_v2).
    func hotStatement(_ db: Database, _ key: Int, sql: @autoclosure () -> String) throws -> Statement {
        if let st = hotStatements[key] { return st }
        let st = try db.makeStatement(sql: sql())
        hotStatements[key] = st
        return st
    }

    func nextChangeID() -> ChangeID {
        defer { nextCounter += 1 }
        return ChangeID(site: site, counter: nextCounter)
    }
}

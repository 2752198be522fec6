import FieldSyncCore
import FieldSyncTrust
@_spi(Hub) import FieldSyncReplica
import Foundation
import GRDB

/// Carries the replica onto the store's queue, the only place it is used.
private struct ReplicaBox: @unchecked Sendable {
    let replica: Replica
}

// MARK: - SQLiteHubStore

/// The hub's default store: one SQLite file holding a replica of every record in the hub's
/// region (merged by the same code as the laptops) plus the hub's own tables.
///
/// All access runs on one serial queue: SQLite has one writer, and the replica object is not
/// shared across threads.
public final class SQLiteHubStore: HubStore, @unchecked Sendable {
    public let hubSite: SiteID
    public let hubName: String
    /// Which life of this file serves (sync.md §2): a new one after a restore from a backup.
    public let epoch: HubEpoch
    public let path: String
    let replica: Replica
    private let queue = DispatchQueue(label: "fieldsync.hub.store")
    /// Reports read on their own connection and queue (Reports/SQLiteHubStore+Reports.swift).
    let reportReaders: ReportReaders

    /// The hub's signing key: it signs every page it serves (changeset.md §7).
    public let hubKey: SiteKey
    /// The wall clock in Unix ms, as `now()` gives it; tests set their own (no edited SQL, no waiting).
    public let clock: @Sendable () -> Int64
    /// Every site the hub has heard of (`fs_site`), kept in memory: a pushed change's `seen`
    /// vectors may name only these (PushAdmission). Used on the store's queue only.
    private var knownSites: Set<UInt64> = []
    /// When this process last looked for a schema another process loaded.
    let schemaWatch = SchemaWatch()

    /// Opens the hub file at `path`, creating it (named `name`) if it does not exist. The file and
    /// its WAL are the owner's only (0600); it is brought up to date with its migrations.
    public init(path: String, name: String = "hub", clock: @escaping @Sendable () -> Int64 = SQLiteHubStore.now) throws {
        self.clock = clock
        let r: Replica
        if FileManager.default.fileExists(atPath: path) {
            r = try Replica.open(path: path, custody: .database, migrations: HubMigrations.register)
        } else {
            r = try Replica.create(path: path, siteName: name, author: name, custody: .database, migrations: HubMigrations.register)
        }
        replica = r
        self.path = path
        epoch = try r.hubEpoch()
        hubSite = r.site
        hubName = r.siteName
        hubKey = r.key
        reportReaders = ReportReaders(open: { [path] in try SQLiteHubStore.makeReportReader(path: path) })
        try r.database.write { db in
            // The hub's own site in its directory (a new file; files from before have it by migration).
            try db.execute(sql: "INSERT OR IGNORE INTO hub_site(site, hex, device, key, bound) VALUES (?, ?, NULL, ?, ?)",
                           arguments: [Int64(bitPattern: r.site.raw), r.site.hex, Data(r.key.publicKey), self.now()])
            knownSites = Set(try Int64.fetchAll(db, sql: "SELECT id FROM fs_site").map { UInt64(bitPattern: $0) })
        }
    }

    /// Marks the hub file at `path` as restored from a backup: the next time it is opened it
    /// starts a new epoch (``Replica/hubEpoch()``). For a file put back by other means than
    /// `fieldsync-hub backup` (a disk snapshot, a copy).
    public static func markRestored(path: String) throws {
        let q = try DatabaseQueue(path: path)
        try q.write { db in try markRestored(db) }
        try q.close()
    }

    static func markRestored(_ db: Database) throws {
        try db.execute(sql: "INSERT OR REPLACE INTO fs_meta(key, value) VALUES ('hub_restored', ?)", arguments: [String(now())])
    }

    /// Runs `body` on the store's queue.
    func run<T: Sendable>(_ body: @escaping @Sendable (Replica) throws -> T) async throws -> T {
        let box = ReplicaBox(replica: replica)
        return try await withCheckedThrowingContinuation { cont in
            queue.async { cont.resume(with: Result { try Self.storeFailure { try body(box.replica) } }) }
        }
    }

    /// SQLite's own failures (disk full, I/O error, locked) as the store's failure
    /// (``ReplicaError/storage(_:)``), so that callers above the store never see GRDB's types.
    static func storeFailure<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch let e as DatabaseError {
            throw ReplicaError.storage("SQLite \(e.resultCode)\(e.message.map { ": \($0)" } ?? "")")
        }
    }

    /// Folds the write-ahead log into the database file, so that a stopped hub leaves one
    /// self-contained file (to copy or back up). Called when `serve` shuts down.
    public func checkpoint() {
        queue.sync { _ = try? replica.database.writeWithoutTransaction { try $0.checkpoint(.truncate) } }
    }

    /// Runs `body` synchronously on the store's queue (for the admin commands).
    public func sync<T>(_ body: (Replica) throws -> T) rethrows -> T {
        try queue.sync { try body(replica) }
    }

    public static func now() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

    // MARK: Devices

    static func makeCode() -> String { Enrolment.makeCode() }
    static func normalizeCode(_ code: String) -> String { EnrollRequest.normalize(code: code) }
    static func hash(_ secret: String) -> String { Enrolment.hash(secret) }
    public static func scopeProblem(_ scope: String) -> String? { Enrolment.scopeProblem(scope) }

    public func addDevice(name: String, scope: String, codeLifetimeMs: Int64) async throws -> NewDevice {
        try await run { r in try Self.addDevice(r, name: name, scope: scope, codeLifetimeMs: codeLifetimeMs) }
    }

    static func addDevice(_ r: Replica, name: String, scope: String, codeLifetimeMs: Int64) throws -> NewDevice {
        try Enrolment.checkNewDevice(name: name, scope: scope)
        let code = makeCode()
        let id = Enrolment.newDeviceID()
        let expires = now() + codeLifetimeMs
        try r.database.write { db in
            try db.execute(sql: "INSERT INTO hub_device(id, name, scope, code_hash, code_expires, created) VALUES (?, ?, ?, ?, ?, ?)",
                           arguments: [id, name, scope, hash(normalizeCode(code)), expires, now()])
        }
        return NewDevice(id: id, name: name, scope: scope, code: code, expires: expires)
    }

    public func devices() async throws -> [DeviceInfo] { try await run { r in try Self.devices(r) } }

    static func devices(_ r: Replica) throws -> [DeviceInfo] {
        let rows = try r.database.read { db in try Row.fetchAll(db, sql: "SELECT * FROM hub_device ORDER BY created") }
        return try rows.map { row in
            let id: String = row["id"], scope: String = row["scope"], cursor: Int64 = row["pull_cursor"]
            let enrolled: Int64? = row["enrolled"]
            return DeviceInfo(
                id: id, name: row["name"], scope: scope, site: row["site"], siteName: row["site_name"], created: row["created"],
                enrolled: enrolled, revoked: row["revoked"], codeExpires: row["code_expires"], lastSeen: row["last_seen"],
                lastSync: row["last_sync"], lastError: row["last_error"], lastErrorAt: row["last_error_at"], pullCursor: cursor,
                pending: enrolled == nil ? 0 : try r.countChanges(after: cursor, scope: scope, excludingPeer: id, regionIndexed: true),
                pushed: row["pushed"], clockSkew: row["clock_skew"],
                client: (row["client_release"] as Int?).map { ClientReport(release: $0, schema: row["client_schema"] ?? 0, pending: row["client_pending"] ?? 0, oldestUnsent: row["client_oldest"]) })
        }
    }

    public func revoke(device: String) async throws -> DeviceInfo {
        try await run { r in try Self.revoke(r, device: device) }
    }

    static func revoke(_ r: Replica, device: String) throws -> DeviceInfo {
        let changed = try r.database.write { db -> Int in
            try db.execute(sql: "UPDATE hub_device SET revoked = ?, code_hash = NULL WHERE id = ? AND revoked IS NULL", arguments: [now(), device])
            return db.changesCount
        }
        guard let info = try devices(r).first(where: { $0.id == device }) else {
            throw HubFailure(.notFound, "no device \(device) on this hub (see fieldsync-hub device list)")
        }
        if changed == 0 && info.revoked == nil { throw HubFailure(.conflict, "device \(device) could not be revoked") }
        return info
    }

    public func enroll(_ request: EnrollRequest) async throws -> EnrollResponse {
        let (site, name, key) = (hubSite, hubName, hubKey.publicKey)
        try SitePossession.check(site: request.site, key: request.key, proof: request.proof,
                                 message: EnrollRequest.possessionMessage(code: request.code, site: request.site))
        return try await run { r in
            let h = Self.hash(Self.normalizeCode(request.code))
            let token = Enrolment.newToken()
            let response = try r.database.write { db -> EnrollResponse in
                let row: Row
                if let fresh = try Row.fetchOne(db, sql: "SELECT id, name, scope, code_expires, revoked FROM hub_device WHERE code_hash = ?", arguments: [h]) {
                    row = fresh
                } else if let retry = try Row.fetchOne(db, sql: """
                    SELECT id, name, scope, code_expires, revoked FROM hub_device
                    WHERE used_code_hash = ? AND site = ? AND token_used IS NULL AND revoked IS NULL
                    """, arguments: [h, request.site.hex]) {
                    // The same laptop again with the code it just used, and the token it was given
                    // never seen: the answer was lost on the way (a cut link). It gets a fresh token;
                    // the lost one stops working. Once the token has been used, the code is spent.
                    row = retry
                } else {
                    throw Enrolment.badCode
                }
                let id: String = row["id"]
                if (row["revoked"] as Int64?) != nil { throw HubFailure.revoked(id) }
                if let exp: Int64 = row["code_expires"], exp < self.now() { throw Enrolment.expired(exp) }
                try Self.bind(db, site: request.site, key: request.key, to: id)
                try db.execute(sql: """
                    UPDATE hub_device SET token_hash = ?, code_hash = NULL, used_code_hash = ?, token_used = NULL, site = ?, site_name = ?,
                      enrolled = ?, last_seen = ? WHERE id = ?
                    """, arguments: [Self.hash(token), h, request.site.hex, request.siteName, self.now(), self.now(), id])
                try r.noteSites(db, [request.site: request.siteName])
                return EnrollResponse(device: id, name: row["name"], scope: row["scope"], token: token, hubSite: site, hubName: name, hubKey: key)
            }
            self.knownSites.insert(request.site.raw)
            return response
        }
    }

    /// Binds `site` to device `id` in the directory: refused when the site belongs to another
    /// device or to the hub (nobody can take over another's site id), or when the device holds
    /// ``maxSitesPerDevice`` already. Binding the same site to the same device again is harmless.
    static func bind(_ db: Database, site: SiteID, key: [UInt8], to id: String) throws {
        if let row = try Row.fetchOne(db, sql: "SELECT device FROM hub_site WHERE site = ?", arguments: [Int64(bitPattern: site.raw)]) {
            let owner: String? = row["device"]
            guard owner == id else { throw Enrolment.siteTaken(site, byHub: owner == nil) }
            return
        }
        let held = try Int.fetchOne(db, sql: "SELECT count(*) FROM hub_site WHERE device = ?", arguments: [id]) ?? 0
        guard held < SitePossession.maxSitesPerDevice else { throw Enrolment.tooManySites(id, held) }
        try db.execute(sql: "INSERT INTO hub_site(site, hex, device, key, bound) VALUES (?, ?, ?, ?, ?)",
                       arguments: [Int64(bitPattern: site.raw), site.hex, id, Data(key), now()])
    }

    public func bindSite(_ b: SiteBinding, for device: Device) async throws {
        try SitePossession.check(site: b.site, key: b.key, proof: b.proof, message: SiteBinding.possessionMessage(device: device.id, site: b.site))
        try await run { r in
            try r.database.write { db in
                try Self.bind(db, site: b.site, key: b.key, to: device.id)
                let name = try String.fetchOne(db, sql: "SELECT site_name FROM hub_device WHERE id = ?", arguments: [device.id]) ?? device.name
                try r.noteSites(db, [b.site: name])
            }
        }
        try await run { _ in self.knownSites.insert(b.site.raw) }
    }

    public func authenticate(token: String) async throws -> Device {
        try await run { r in
            let row = try r.database.read { db in
                try Row.fetchOne(db, sql: "SELECT id, name, scope, revoked, token_used FROM hub_device WHERE token_hash = ?", arguments: [Self.hash(token)])
            }
            guard let row else { throw HubFailure.badToken }
            let id: String = row["id"]
            if (row["revoked"] as Int64?) != nil { throw HubFailure.revoked(id) }
            if (row["token_used"] as Int64?) == nil {
                // The first use of this token: from now on its enrolment code cannot be replayed.
                try r.database.write { try $0.execute(sql: "UPDATE hub_device SET token_used = 1 WHERE id = ?", arguments: [id]) }
            }
            return Device(id: id, name: row["name"], scope: row["scope"])
        }
    }

    // MARK: Exchange

    public func push(_ raw: [JSONValue], sites: [SiteID: String], vouches: Vouches, from device: Device) async throws -> PushResponse {
        // Decoding and hashing are CPU work: done before the store's queue is asked.
        let decoded = PushAdmission.decode(raw)
        let mentioned = PushAdmission.sites(decoded)
        return try await run { r in
            let now = self.now()
            let ctx = try r.database.read { db in
                PushAdmission.Context(device: device, ownSites: try Self.sites(db, of: device.id),
                                      owners: try Self.owners(db, of: mentioned.origins),
                                      knownSites: Set(mentioned.inVectors.filter { self.knownSites.contains($0.raw) }),
                                      vouches: vouches, now: now)
            }
            let (sorted, admitted) = PushAdmission.sort(decoded, ctx, count: raw.count)
            let incoming = admitted.map { Replica.Incoming($0.change, text: $0.text, onlyIfHeld: $0.onlyIfHeld) }
            // Names only for the device's own sites: a push cannot rename the hub or another laptop.
            try r.noteSites(sites.filter { ctx.ownSites.contains($0.key) })
            let (outcomes, _) = try r.applyEach(incoming, source: .device, peer: device.id)
            let answer = PushAdmission.answer(sorted, admitted, outcomes)
            for (a, o) in zip(admitted, outcomes) where o == .applied || o == .obsolete { self.knownSites.insert(a.change.id.site.raw) }
            try r.database.write { db in
                try db.execute(sql: "UPDATE hub_device SET pushed = pushed + ?, last_seen = ? WHERE id = ?", arguments: [answer.accepted, now, device.id])
                if let e = answer.lastError {
                    try db.execute(sql: "UPDATE hub_device SET last_error = ?, last_error_at = ? WHERE id = ?", arguments: [e, now, device.id])
                }
            }
            return PushResponse(results: answer.results, hubSeq: try r.changeLogEnd())
        }
    }

    /// The sites bound to a device in the directory.
    static func sites(_ db: Database, of device: String) throws -> Set<SiteID> {
        Set(try Int64.fetchAll(db, sql: "SELECT site FROM hub_site WHERE device = ?", arguments: [device]).map { SiteID(raw: UInt64(bitPattern: $0)) })
    }

    /// The directory's entries for `sites` (absent: a site no device or hub holds).
    static func owners(_ db: Database, of sites: Set<SiteID>) throws -> [SiteID: SiteOwner] {
        var out: [SiteID: SiteOwner] = [:]
        let all = Array(sites)
        for start in stride(from: 0, to: all.count, by: 500) {
            let part = all[start..<min(all.count, start + 500)]
            let rows = try Row.fetchAll(db, sql: """
                SELECT s.site, s.device, d.scope, d.revoked FROM hub_site s LEFT JOIN hub_device d ON d.id = s.device
                WHERE s.site IN (\(part.map { _ in "?" }.joined(separator: ",")))
                """, arguments: StatementArguments(part.map { Int64(bitPattern: $0.raw) }))
            for row in rows {
                let site = SiteID(raw: UInt64(bitPattern: row["site"]))
                if let device: String = row["device"] {
                    out[site] = .device(id: device, scope: row["scope"] ?? "", revoked: (row["revoked"] as Int64?) != nil)
                } else {
                    out[site] = .hub
                }
            }
        }
        return out
    }

    public func pull(for device: Device, after: Int64, limit: Int, maxBytes: Int) async throws -> ScopedPage {
        try await run { r in
            let horizon = try r.database.read { db in try Int64.fetchOne(db, sql: "SELECT value FROM fs_meta WHERE key = 'hub_horizon'") ?? 0 }
            if after > 0 && after < horizon {
                throw HubFailure(.behindHorizon, "changes before hub position \(horizon) have been compacted; this device must take a snapshot (position \(after))")
            }
            let page = try r.changes(after: after, scope: device.scope, excludingPeer: device.id, limit: limit, maxBytes: maxBytes, regionIndexed: true)
            try r.database.write { db in
                try db.execute(sql: "UPDATE hub_device SET pull_cursor = max(pull_cursor, ?), last_seen = ? WHERE id = ?", arguments: [after, self.now(), device.id])
                if !page.more {
                    try db.execute(sql: "UPDATE hub_device SET last_sync = ?, last_error = NULL, last_error_at = NULL WHERE id = ? AND (last_error_at IS NULL OR last_error_at < ?)",
                                   arguments: [self.now(), device.id, self.now() - 1000])
                }
            }
            return page
        }
    }

    public func acknowledge(device: Device, cursor: Int64) async throws {
        try await run { r in
            let end = try r.changeLogEnd()
            guard cursor <= end else {
                throw HubFailure(.invalid, "cursor \(cursor) is beyond this hub's change log (\(end)); was the hub restored from an old backup?")
            }
            try r.database.write { db in
                try db.execute(sql: "UPDATE hub_device SET pull_cursor = max(pull_cursor, ?), last_seen = ?, last_sync = ? WHERE id = ?",
                               arguments: [cursor, self.now(), self.now(), device.id])
            }
        }
    }

    public func changes(ids: [ChangeID], for device: Device) async throws -> [String] {
        try await run { r in try r.changeTexts(ids: ids, scope: device.scope) }
    }

    public func snapshot(for device: Device, after: String?, limit: Int, maxBytes: Int, held: [SiteID: Int64] = [:]) async throws -> ScopedPage {
        try await run { r in
            if let after, let id = after.split(separator: ":", maxSplits: 1).last, !Replica.inScope(row: String(id), scope: device.scope) {
                throw HubFailure(.invalid, "snapshot position \(after.prefix(60)) is outside this device's scope")
            }
            // The device's own pushes too, unless it says it holds them: a laptop restored from
            // an older disk image, or starting over, may lack them (a pull leaves them out).
            return try r.snapshotPage(scope: device.scope, after: after, limit: limit, maxBytes: maxBytes, held: held)
        }
    }

    public func note(device: Device, deviceTime: Int64?, client: ClientReport?, error: String?) async {
        _ = try? await run { r in
            try r.database.write { db in
                let now = self.now()
                // One statement per request: the client report's columns keep their values when
                // the device sent none (release is null then).
                try db.execute(sql: """
                    UPDATE hub_device SET last_seen = ?1, clock_skew = COALESCE(?2, clock_skew),
                      client_release = COALESCE(?3, client_release), client_schema = COALESCE(?4, client_schema),
                      client_pending = COALESCE(?5, client_pending), client_oldest = CASE WHEN ?3 IS NULL THEN client_oldest ELSE ?6 END
                    WHERE id = ?7
                    """, arguments: [now, deviceTime.map { $0 - now }, client?.release, client?.schema, client?.pending, client?.oldestUnsent, device.id])
                if let error {
                    try db.execute(sql: "UPDATE hub_device SET last_error = ?, last_error_at = ? WHERE id = ?", arguments: [error, now, device.id])
                }
            }
        }
    }

    public func siteNames(_ ids: Set<SiteID>) async throws -> [SiteID: String] {
        guard !ids.isEmpty else { return [:] }
        return try await run { r in try r.siteNames(ids) }
    }
}

// MARK: - Admin commands

/// The synchronous operations `fieldsync-hub device …` runs on the store's queue.
public enum SQLiteHubStoreAdmin {
    public static func addDevice(_ r: Replica, name: String, scope: String, hours: Int) throws -> NewDevice {
        try SQLiteHubStore.addDevice(r, name: name, scope: scope, codeLifetimeMs: Int64(hours) * 3_600_000)
    }

    public static func devices(_ r: Replica) throws -> [DeviceInfo] { try SQLiteHubStore.devices(r) }

    public static func revoke(_ r: Replica, device: String) throws -> DeviceInfo { try SQLiteHubStore.revoke(r, device: device) }

    public static func json(_ d: DeviceInfo) -> JSONValue {
        func t(_ ms: Int64?) -> JSONValue { ms.map { .string(UTCTime.iso($0)) } ?? .null }
        return .object(JSONObject([
            ("device", .string(d.id)), ("name", .string(d.name)), ("scope", .string(d.scope)), ("status", .string(d.status)),
            ("site", d.site.map { .string($0) } ?? .null), ("siteName", d.siteName.map { .string($0) } ?? .null),
            ("created", t(d.created)), ("enrolled", t(d.enrolled)), ("revoked", t(d.revoked)), ("lastSeen", t(d.lastSeen)),
            ("lastSync", t(d.lastSync)), ("pending", .int(Int64(d.pending))), ("pushed", .int(Int64(d.pushed))),
            ("lastError", d.lastError.map { .string($0) } ?? .null), ("lastErrorAt", t(d.lastErrorAt)),
            ("clockSkewMs", d.clockSkew.map { .int($0) } ?? .null), ("pullCursor", .int(d.pullCursor)),
            ("clientRelease", d.client.map { .int(Int64($0.release)) } ?? .null), ("clientSchema", d.client.map { .int(Int64($0.schema)) } ?? .null),
            ("unsentOnDevice", d.client.map { .int(Int64($0.pending)) } ?? .null),
            ("oldestUnsentOnDevice", d.client?.oldestUnsent.map { .string(UTCTime.iso($0)) } ?? .null),
        ]))
    }
}

// MARK: - Online backup

extension SQLiteHubStore {
    /// A consistent copy of the hub file at `path`, taken while hubs may be serving it (SQLite's
    /// online backup API, one read transaction: every committed push is in it or none of it is),
    /// written to `destination`, which must not exist yet; owner-only like the hub file (it holds
    /// the hub's signing key and the devices' token hashes). Returns the copy's size in bytes.
    public static func backup(path: String, to destination: String) throws -> Int {
        guard FileManager.default.fileExists(atPath: path) else {
            throw ReplicaError.notFound("\(path): 这里没有同步中心文件 (no hub file here)")
        }
        guard !FileManager.default.fileExists(atPath: destination) else {
            throw ReplicaError.alreadyExists(path: destination)
        }
        let partial = destination + ".partial"
        unlink(partial)
        try OwnerOnly.createFile(partial)
        do {
            var config = Configuration()
            config.readonly = true
            let source = try DatabaseQueue(path: path, configuration: config)
            let copy = try DatabaseQueue(path: partial)
            try source.backup(to: copy)
            try copy.writeWithoutTransaction { db in
                // A file that stands alone: no WAL beside it, checked whole.
                try db.execute(sql: "PRAGMA journal_mode = DELETE")
                let check = try String.fetchOne(db, sql: "PRAGMA integrity_check") ?? "?"
                guard check == "ok" else { throw ReplicaError.storage("the copy failed its integrity check: \(check)") }
                // Served again, the copy is a hub restored from a backup: it starts a new epoch.
                try markRestored(db)
            }
            try copy.close()
            try source.close()
        } catch {
            unlink(partial)
            throw error
        }
        guard rename(partial, destination) == 0 else {
            unlink(partial)
            throw ReplicaError.storage("could not move the copy to \(destination) (errno \(errno))")
        }
        return ((try? FileManager.default.attributesOfItem(atPath: destination)[.size]) as? NSNumber)?.intValue ?? 0
    }
}

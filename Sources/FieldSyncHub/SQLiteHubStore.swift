import FieldSyncCore
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
    public let path: String
    let replica: Replica
    private let queue = DispatchQueue(label: "fieldsync.hub.store")
    /// Reports read on their own connection and queue (Reports/SQLiteHubStore+Reports.swift).
    let reportReaders: ReportReaders

    /// Opens the hub file at `path`, creating it (named `name`) if it does not exist.
    public init(path: String, name: String = "hub") throws {
        let r: Replica
        if FileManager.default.fileExists(atPath: path) {
            r = try Replica.open(path: path)
        } else {
            r = try Replica.create(path: path, siteName: name, author: name)
        }
        replica = r
        self.path = path
        hubSite = r.site
        hubName = r.siteName
        reportReaders = ReportReaders(open: { [path] in try SQLiteHubStore.makeReportReader(path: path) })
        try r.database.write { db in
            try db.execute(sql: """
                CREATE TABLE IF NOT EXISTS hub_device(
                  id TEXT PRIMARY KEY NOT NULL, name TEXT NOT NULL, scope TEXT NOT NULL,
                  code_hash TEXT, code_expires INTEGER, token_hash TEXT,
                  site TEXT, site_name TEXT,
                  created INTEGER NOT NULL, enrolled INTEGER, revoked INTEGER,
                  last_seen INTEGER, last_sync INTEGER, last_error TEXT, last_error_at INTEGER,
                  pull_cursor INTEGER NOT NULL DEFAULT 0, pushed INTEGER NOT NULL DEFAULT 0, clock_skew INTEGER) WITHOUT ROWID;
                CREATE UNIQUE INDEX IF NOT EXISTS hub_device_token ON hub_device(token_hash) WHERE token_hash IS NOT NULL;
                CREATE UNIQUE INDEX IF NOT EXISTS hub_device_code ON hub_device(code_hash) WHERE code_hash IS NOT NULL;
                CREATE UNIQUE INDEX IF NOT EXISTS hub_change_id ON fs_change(site, counter);
                INSERT OR IGNORE INTO fs_meta(key, value) VALUES ('hub_horizon', 0);
                """)
            try Self.createSupervisorTables(db)
            try Self.createReportIndexes(db)
            // Columns added after the first release of the table (enrolment retries).
            let columns = Set(try Row.fetchAll(db, sql: "PRAGMA table_info(hub_device)").map { $0["name"] as String })
            if !columns.contains("used_code_hash") { try db.execute(sql: "ALTER TABLE hub_device ADD COLUMN used_code_hash TEXT") }
            if !columns.contains("token_used") { try db.execute(sql: "ALTER TABLE hub_device ADD COLUMN token_used INTEGER") }
        }
    }

    /// Runs `body` on the store's queue.
    func run<T: Sendable>(_ body: @escaping @Sendable (Replica) throws -> T) async throws -> T {
        let box = ReplicaBox(replica: replica)
        return try await withCheckedThrowingContinuation { cont in
            queue.async { cont.resume(with: Result { try body(box.replica) }) }
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

    static func now() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

    // MARK: Devices

    static let codeAlphabet = Array("23456789ABCDEFGHJKLMNPQRSTUVWXYZ")

    /// Enrolment codes are typed by people: 12 characters without 0/O or 1/I, in groups of four.
    static func makeCode() -> String {
        var g = SystemRandomNumberGenerator()
        let chars = (0..<12).map { _ in codeAlphabet[Int.random(in: 0..<codeAlphabet.count, using: &g)] }
        return String(chars[0..<4]) + "-" + String(chars[4..<8]) + "-" + String(chars[8..<12])
    }

    static func normalizeCode(_ code: String) -> String {
        code.uppercased().filter { $0 != "-" && $0 != " " }
    }

    static func hash(_ secret: String) -> String { SHA256.hex(Array(secret.utf8)) }

    public static func scopeProblem(_ scope: String) -> String? {
        guard scope.utf8.allSatisfy({ (0x30...0x39).contains($0) }), [2, 4, 6, 9, 12].contains(scope.utf8.count) else {
            return "a scope is a division-code prefix: 2 (province), 4 (city), 6 (county), 9 (township) or 12 (village) digits, got \"\(scope.prefix(40))\""
        }
        return nil
    }

    public func addDevice(name: String, scope: String, codeLifetimeMs: Int64) async throws -> NewDevice {
        try await run { r in try Self.addDevice(r, name: name, scope: scope, codeLifetimeMs: codeLifetimeMs) }
    }

    static func addDevice(_ r: Replica, name: String, scope: String, codeLifetimeMs: Int64) throws -> NewDevice {
        guard !name.isEmpty, name.unicodeScalars.count <= 100 else { throw HubFailure(422, "invalid", "a device name is 1–100 characters") }
        if let p = scopeProblem(scope) { throw HubFailure(422, "invalid", p) }
        let code = makeCode()
        let id = "dev-" + Hex.random(bytes: 4)
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
                pending: enrolled == nil ? 0 : try r.countChanges(after: cursor, scope: scope, excludingPeer: id),
                pushed: row["pushed"], clockSkew: row["clock_skew"])
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
            throw HubFailure(404, "not_found", "no device \(device) on this hub (see fieldsync-hub device list)")
        }
        if changed == 0 && info.revoked == nil { throw HubFailure(409, "conflict", "device \(device) could not be revoked") }
        return info
    }

    public func enroll(_ request: EnrollRequest) async throws -> EnrollResponse {
        let (site, name) = (hubSite, hubName)
        return try await run { r in
            let h = Self.hash(Self.normalizeCode(request.code))
            let token = "fst_" + Hex.random(bytes: 32)
            return try r.database.write { db -> EnrollResponse in
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
                    throw HubFailure(403, "bad_code", "this enrolment code is not valid on this hub (mistyped, already used, or revoked)")
                }
                let id: String = row["id"]
                if (row["revoked"] as Int64?) != nil { throw HubFailure.revoked(id) }
                if let exp: Int64 = row["code_expires"], exp < Self.now() {
                    throw HubFailure(403, "code_expired", "this enrolment code expired on \(UTCTime.human(exp)); ask for a new one")
                }
                try db.execute(sql: """
                    UPDATE hub_device SET token_hash = ?, code_hash = NULL, used_code_hash = ?, token_used = NULL, site = ?, site_name = ?,
                      enrolled = ?, last_seen = ? WHERE id = ?
                    """, arguments: [Self.hash(token), h, request.site.hex, request.siteName, Self.now(), Self.now(), id])
                return EnrollResponse(device: id, name: row["name"], scope: row["scope"], token: token, hubSite: site, hubName: name)
            }
        }
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

    public func push(_ raw: [JSONValue], sites: [SiteID: String], from device: Device) async throws -> PushResponse {
        try await run { r in
            var results = [PushResult?](repeating: nil, count: raw.count)
            var slots: [Int] = []
            var changes: [Change] = []
            for (i, j) in raw.enumerated() {
                let idText = j["id"]?.stringValue ?? "#\(i)"
                do throws(InputError) {
                    let c = try ChangeCodec.decode(j)
                    guard Replica.inScope(row: c.row, scope: device.scope) else {
                        results[i] = PushResult(id: idText, status: .refused, code: "out_of_scope",
                                                reason: "\(c.kind.spec.label) \(c.row) lies outside this device's scope \(device.scope)")
                        continue
                    }
                    let ahead = c.hlc.millis - Self.now()
                    guard ahead <= SyncProtocol.maxClockAheadMs else {
                        results[i] = PushResult(id: idText, status: .refused, code: "clock_ahead",
                                                reason: "stamped \(ahead / 3_600_000) h ahead of the hub's clock (the bound is \(SyncProtocol.maxClockAheadMs / 60_000) min): the device's clock is wrong; it re-stamps the edit with the corrected time and sends it again")
                        continue
                    }
                    slots.append(i)
                    changes.append(c)
                } catch {
                    let newer = error.location.hasSuffix("schema") && error.reason.contains("upgrade")
                    results[i] = PushResult(id: idText, status: .refused, code: newer ? "schema_too_new" : "invalid",
                                            reason: error.description, retry: newer)
                }
            }
            try r.noteSites(sites)
            let (outcomes, _) = try r.applyEach(changes, source: .device, peer: device.id)
            var accepted = 0
            for (slot, o) in zip(slots, outcomes) {
                let id = changes[slots.firstIndex(of: slot)!].id.description
                switch o {
                case .applied, .obsolete:
                    results[slot] = PushResult(id: id, status: .accepted)
                    accepted += 1
                case .duplicate: results[slot] = PushResult(id: id, status: .duplicate)
                case .refused(let e): results[slot] = PushResult(id: id, status: .refused, code: "clone", reason: e.description)
                }
            }
            let final = results.map { $0! }
            let refused = final.filter { $0.status == .refused }
            try r.database.write { db in
                try db.execute(sql: "UPDATE hub_device SET pushed = pushed + ?, last_seen = ? WHERE id = ?", arguments: [accepted, Self.now(), device.id])
                if let first = refused.first {
                    try db.execute(sql: "UPDATE hub_device SET last_error = ?, last_error_at = ? WHERE id = ?",
                                   arguments: ["refused \(refused.count) change(s): \(first.code ?? ""): \(first.reason ?? "")", Self.now(), device.id])
                }
            }
            return PushResponse(results: final, hubSeq: try r.changeLogEnd())
        }
    }

    public func pull(for device: Device, after: Int64, limit: Int, maxBytes: Int) async throws -> ScopedPage {
        try await run { r in
            let horizon = try r.database.read { db in try Int64.fetchOne(db, sql: "SELECT value FROM fs_meta WHERE key = 'hub_horizon'") ?? 0 }
            if after > 0 && after < horizon {
                throw HubFailure(410, "behind_horizon", "changes before hub position \(horizon) have been compacted; this device must take a snapshot (position \(after))")
            }
            let page = try r.changes(after: after, scope: device.scope, excludingPeer: device.id, limit: limit, maxBytes: maxBytes)
            try r.database.write { db in
                try db.execute(sql: "UPDATE hub_device SET pull_cursor = max(pull_cursor, ?), last_seen = ? WHERE id = ?", arguments: [after, Self.now(), device.id])
                if !page.more {
                    try db.execute(sql: "UPDATE hub_device SET last_sync = ?, last_error = NULL, last_error_at = NULL WHERE id = ? AND (last_error_at IS NULL OR last_error_at < ?)",
                                   arguments: [Self.now(), device.id, Self.now() - 1000])
                }
            }
            return page
        }
    }

    public func acknowledge(device: Device, cursor: Int64) async throws {
        try await run { r in
            let end = try r.changeLogEnd()
            guard cursor <= end else {
                throw HubFailure(422, "invalid", "cursor \(cursor) is beyond this hub's change log (\(end)); was the hub restored from an old backup?")
            }
            try r.database.write { db in
                try db.execute(sql: "UPDATE hub_device SET pull_cursor = max(pull_cursor, ?), last_seen = ?, last_sync = ? WHERE id = ?",
                               arguments: [cursor, Self.now(), Self.now(), device.id])
            }
        }
    }

    public func snapshot(for device: Device, after: String?, limit: Int, maxBytes: Int) async throws -> ScopedPage {
        try await run { r in
            if let after, let id = after.split(separator: ":", maxSplits: 1).last, !Replica.inScope(row: String(id), scope: device.scope) {
                throw HubFailure(422, "invalid", "snapshot position \(after.prefix(60)) is outside this device's scope")
            }
            return try r.snapshotPage(scope: device.scope, after: after, limit: limit, maxBytes: maxBytes, excludingPeer: device.id)
        }
    }

    public func note(device: Device, deviceTime: Int64?, error: String?) async {
        _ = try? await run { r in
            try r.database.write { db in
                let now = Self.now()
                try db.execute(sql: "UPDATE hub_device SET last_seen = ?, clock_skew = COALESCE(?, clock_skew) WHERE id = ?",
                               arguments: [now, deviceTime.map { $0 - now }, device.id])
                if let error {
                    try db.execute(sql: "UPDATE hub_device SET last_error = ?, last_error_at = ? WHERE id = ?", arguments: [error, now, device.id])
                }
            }
        }
    }

    public func siteNames() async throws -> [SiteID: String] { try await run { r in try r.knownSiteNames() } }
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
        ]))
    }
}

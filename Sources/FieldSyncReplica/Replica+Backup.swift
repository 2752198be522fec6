import FieldSyncCore
import FieldSyncTrust
import Foundation
import GRDB

// MARK: - Backup of what the hub does not have

extension Replica {
    /// Writes a bundle of every change the hub does not have yet (everything, when this replica
    /// was never enrolled) into `folder`, named `fieldsync-backup-SITE-YYYYMMDD-HHMMSS.bundle`
    /// (UTC). Nil when there is nothing to back up. The bundle imports anywhere — a replacement
    /// laptop, a colleague's, the hub's inbox — and its changes merge once, however many times
    /// they arrive (a change's id is its site and counter).
    public func backup(toFolder folder: String) throws -> ExportReport? {
        let cursor = try read { db in try Int64.fetchOne(db, sql: "SELECT push_cursor FROM fs_sync WHERE id = 1") }
        if cursor != nil, try pendingPushCount() == 0 { return nil }
        if cursor == nil, try read({ db in try Int.fetchOne(db, sql: "SELECT count(*) FROM fs_change") ?? 0 }) == 0 { return nil }
        try OwnerOnly.makeFolder(folder)
        let stamp = UTCTime.iso(wallClock()).prefix(19).replacingOccurrences(of: "-", with: "").replacingOccurrences(of: ":", with: "").replacingOccurrences(of: "T", with: "-")
        let path = (folder as NSString).appendingPathComponent("fieldsync-backup-\(site.hex.prefix(8))-\(stamp).bundle")
        return try exportBundle(to: path, filter: cursor.map { .sinceSeq($0) } ?? .all)
    }
}

// MARK: - A new site id

extension Replica {
    /// Takes a new site id (and key) now: the hub said another copy wrote under this one
    /// (`clone`). Later edits cannot collide again; earlier changes keep their ids. The device
    /// token stays; the next sync binds the new site to the device.
    @discardableResult
    public func takeNewSite() throws -> SiteID {
        guard custody == .secretFile else { return site }
        let old = site
        let fresh = SiteKey()
        let token = ReplicaSecrets.load(for: path)?.token
        try ReplicaSecrets(key: fresh, token: token, home: ReplicaSecrets.home(of: path)).save(for: path)
        try write { db in try Self.renewSite(db, from: old, to: fresh, name: siteName) }
        site = fresh.site
        key = fresh
        cachedDataVersion = nil
        return site
    }
}

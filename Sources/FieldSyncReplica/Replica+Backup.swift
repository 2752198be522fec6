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

// MARK: - A restored hub

extension Replica {
    /// (The hub's store.) Writes under `fresh` from now on, keeping the hub's key, which its
    /// laptops know: a hub restored from a backup must not hand out again the counters its
    /// former id used after the backup was taken (sync.md §2, the hub's epoch).
    @_spi(Hub) public func takeNewHubSite(_ fresh: SiteID) throws {
        guard custody == .database else { return }
        try write { db in try Self.renewSite(db, from: site, to: fresh, key: key, name: siteName) }
        site = fresh
        knownSites.insert(fresh.raw)
        cachedDataVersion = nil
    }

    /// The hub answered from another epoch than the one this laptop last synced with (it was
    /// restored from a backup): everything this replica holds is offered again — its own changes
    /// and those it received, from the hub too, since the hub may have lost any of them — and
    /// pulls restart from no later than where the restored hub's log ended. A snapshot under
    /// way starts over, and the replica's site is named to the hub again (it may have taken a
    /// new one after the backup). Returns true when that happened, false when the epoch was only noted
    /// (the first one this laptop sees, or the same one).
    @discardableResult
    public func noteHubEpoch(_ e: HubEpoch) throws -> Bool {
        try write { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT hub_epoch FROM fs_sync WHERE id = 1") else { return false }
            let known: String? = row["hub_epoch"]
            if known == e.id { return false }
            guard known != nil else {
                try db.execute(sql: "UPDATE fs_sync SET hub_epoch = ? WHERE id = 1", arguments: [e.id])
                return false
            }
            try db.execute(sql: """
                UPDATE fs_sync SET hub_epoch = ?, push_cursor = 0, bound_site = NULL,
                  reseed_through = (SELECT COALESCE(max(seq), 0) FROM fs_change),
                  pull_cursor = CASE WHEN snapshot_cursor IS NOT NULL THEN 0 ELSE min(pull_cursor, ?) END,
                  snapshot_done = CASE WHEN snapshot_cursor IS NOT NULL THEN 0 ELSE snapshot_done END,
                  snapshot_cursor = NULL, snapshot_next = NULL
                WHERE id = 1
                """, arguments: [e.id, e.start])
            return true
        }
    }
}

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
    /// (The hub's store.) The file's epoch (sync.md §2). A file marked restored (`hub_restored`:
    /// every `fieldsync-hub backup` copy, or `fieldsync-hub restored`) starts a new one first,
    /// in one transaction with clearing the mark: a new site id for the hub with the same key
    /// (which its laptops know), so that nothing it writes reuses an id its former self handed
    /// out after the backup; and the position where the copy's log ends, which laptops pull
    /// from. A file from before epochs gets its first one, starting at 0.
    @_spi(Hub) public func hubEpoch() throws -> HubEpoch {
        guard custody == .database else { throw ReplicaError.storage("only a hub's file has an epoch") }
        var renewed: SiteID?
        let epoch = try write { db -> HubEpoch in
            var meta: [String: String] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT key, CAST(value AS TEXT) AS value FROM fs_meta WHERE key IN ('hub_epoch', 'hub_epoch_start', 'hub_restored')") {
                meta[row["key"]] = row["value"]
            }
            let restored = meta["hub_restored"] != nil
            if !restored, let id = meta["hub_epoch"], HubEpoch.isID(id), let start = meta["hub_epoch_start"].flatMap({ Int64($0) }) {
                return HubEpoch(id: id, start: start)
            }
            var start: Int64 = 0
            if restored {
                let fresh = SiteID.random(avoiding: Set(try Int64.fetchAll(db, sql: "SELECT id FROM fs_site").map { UInt64(bitPattern: $0) }))
                try Self.renewSite(db, from: site, to: fresh, key: key, name: siteName)
                renewed = fresh
                start = try Int64.fetchOne(db, sql: "SELECT COALESCE(max(seq), 0) FROM fs_change") ?? 0
            }
            let e = HubEpoch(id: HubEpoch.newID(), start: start)
            for (k, v) in [("hub_epoch", e.id), ("hub_epoch_start", String(start))] {
                try db.execute(sql: "INSERT OR REPLACE INTO fs_meta(key, value) VALUES (?, ?)", arguments: [k, v])
            }
            try db.execute(sql: "DELETE FROM fs_meta WHERE key = 'hub_restored'")
            return e
        }
        if let fresh = renewed {
            site = fresh
            knownSites.insert(fresh.raw)
            cachedDataVersion = nil
        }
        return epoch
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

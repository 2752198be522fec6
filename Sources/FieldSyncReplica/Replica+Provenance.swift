import FieldSyncCore
import FieldSyncTrust
import Foundation
import GRDB

// MARK: - ApplyRefusal

/// Why one received change was not taken, when the rest of its batch still is.
public struct ApplyRefusal: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable {
        /// The id was received before with other content (two replicas share a site id).
        case clone
        /// It claims this replica's own site id, but this replica never made it.
        case ownSite = "own_site"
        /// Nothing proves it comes from the site its id names (Protocol/changeset.md §7).
        case notAuthentic = "not_authentic"
        /// (The hub.) Its site belongs to no enrolled device.
        case unknownOrigin = "unknown_origin"
        /// (The hub.) Its site belongs to a revoked device.
        case revokedOrigin = "revoked_origin"
        /// Not a change the schema now held takes (read while its kind was unknown).
        case invalid
        /// Its record, of a kind this schema does not hold yet, keeps as many changes as it may
        /// until the schema arrives (``ChangeCodec/maxKeptChangesPerRecord``): offer it later.
        case keptFull = "kept_full"
    }

    public let code: Code
    public let error: InputError

    public var description: String { error.description }

    /// The checks every received change passes before it is logged, whatever its kind and
    /// store: a change held already with the same text is a duplicate (returns false: nothing
    /// to do); the same id with another text is a clone; a change taken only as a duplicate
    /// (`onlyIfHeld`) is refused with its reason; and nobody else makes changes under the
    /// receiver's own site id (`own`, named as `whose`, "this replica's" or "this hub's").
    /// `text` is asked for only when something is held under the id.
    public static func checkArrival(_ id: ChangeID, text: @autoclosure () -> String, held: String?,
                                    onlyIfHeld: (Code, String)?, own: SiteID, whose: String) throws(ApplyRefusal) -> Bool {
        switch RecordMerge.classify(text: held == nil ? "" : text(), held: held) {
        case .duplicate: return false
        case .clone:
            throw ApplyRefusal(code: .clone, error: InputError("change \(id)", "this id was received before with different content: two replicas share a site id (was a replica file copied?)"))
        case .new: break
        }
        if let (code, reason) = onlyIfHeld { throw ApplyRefusal(code: code, error: InputError("change \(id)", reason)) }
        if id.site == own {
            throw ApplyRefusal(code: .ownSite, error: InputError("change \(id)", "claims \(whose) own site id \(own), but it never made it: only it makes changes under its id (a forged change, or a copy of it elsewhere)"))
        }
        return true
    }
}

// MARK: - SetAside

/// A received change this replica kept aside instead of merging, with the reason
/// (`fieldsync status` counts them; nothing anyone sent is thrown away unseen).
public struct SetAsideChange: Sendable {
    public let change: String
    public let body: String
    public let reason: String
    /// Where it came from: a bundle's path, "hub", a peer.
    public let cameFrom: String
    public let at: Int64
}

extension Replica {
    /// Most changes one import or page may set aside: a hostile bundle of a million forged
    /// changes costs a count, not a million rows.
    public static let maxSetAsidePerBatch = 1000

    // MARK: Trust

    /// The rule this replica checks received changes against: sites vouch for their own changes,
    /// and the hub it is enrolled with (once it knows the hub's key) for any change.
    func provenance(_ db: Database) throws -> Provenance {
        if custody == .database { return Provenance(hub: (site, key.publicKey)) }
        guard let row = try Row.fetchOne(db, sql: "SELECT hub_site, hub_key FROM fs_sync WHERE id = 1"),
              let hex: String = row["hub_site"], let hubSite = SiteID(hex: hex), let key: [UInt8] = (row["hub_key"] as Data?).map({ Array($0) })
        else { return Provenance(hub: nil) }
        return Provenance(hub: (hubSite, key))
    }

    /// Keeps a manifest whose signature holds (once: the same signature again is the same manifest)
    /// and returns its id, for the changes it proves.
    func storeManifest(_ db: Database, _ m: Manifest) throws -> Int64 {
        if let id = try Int64.fetchOne(db, sql: "SELECT id FROM fs_manifest WHERE sig = ?", arguments: [Data(m.signature)]) { return id }
        try db.execute(sql: "INSERT INTO fs_manifest(signer, key, sig, digests, received) VALUES (?, ?, ?, ?, ?)",
                       arguments: [Int64(bitPattern: m.signer.raw), Data(m.key), Data(m.signature), Data(m.digests.flatMap(\.bytes)), wallClock()])
        return db.lastInsertedRowID
    }

    func loadManifest(_ db: Database, id: Int64) throws -> Manifest? {
        guard let row = try Row.fetchOne(db, sql: "SELECT signer, key, sig, digests FROM fs_manifest WHERE id = ?", arguments: [id]) else { return nil }
        let raw = Array((row["digests"] as Data))
        var digests: [ChangeDigest] = []
        digests.reserveCapacity(raw.count / 32)
        for i in stride(from: 0, to: raw.count - raw.count % 32, by: 32) { digests.append(ChangeDigest(bytes: Array(raw[i..<i + 32]))!) }
        return Manifest(signer: SiteID(raw: UInt64(bitPattern: row["signer"])), key: Array(row["key"] as Data), digests: digests,
                        signature: Array(row["sig"] as Data))
    }

    /// The manifests that prove these stored changes (by their `fs_change.proof`), for a push
    /// that relays them.
    public func manifests(proving seqs: [Int64]) throws -> [Manifest] {
        guard !seqs.isEmpty else { return [] }
        return try read { db in
            let ids = try Int64.fetchAll(db, sql: "SELECT DISTINCT proof FROM fs_change WHERE proof IS NOT NULL AND seq IN (\(seqs.map { _ in "?" }.joined(separator: ",")))",
                                         arguments: StatementArguments(seqs))
            return try ids.compactMap { try loadManifest(db, id: $0) }
        }
    }

    // MARK: Set aside

    func setAside(_ db: Database, id: String, body: String, reason: String, from: String, count: inout Int) throws {
        count += 1
        guard count <= Self.maxSetAsidePerBatch else { return }
        // Once per change and reason: importing the same bundle again adds nothing.
        guard try !Bool.fetchOne(db, sql: "SELECT EXISTS(SELECT 1 FROM fs_set_aside WHERE change = ? AND reason = ?)", arguments: [id, reason])! else { return }
        try db.execute(sql: "INSERT INTO fs_set_aside(change, body, reason, came_from, at) VALUES (?, ?, ?, ?, ?)",
                       arguments: [id, body, String(reason.prefix(1000)), String(from.prefix(300)), wallClock()])
    }

    /// Changes kept aside, newest first.
    public func setAsideChanges(limit: Int = 100) throws -> [SetAsideChange] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT change, body, reason, came_from, at FROM fs_set_aside ORDER BY id DESC LIMIT ?", arguments: [limit]).map {
                SetAsideChange(change: $0["change"], body: $0["body"], reason: $0["reason"], cameFrom: $0["came_from"], at: $0["at"])
            }
        }
    }

    public func setAsideCount() throws -> Int {
        try read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM fs_set_aside") ?? 0 }
    }

    func pruneSetAsideIfAny(_ db: Database) throws {
        if try Bool.fetchOne(db, sql: "SELECT EXISTS(SELECT 1 FROM fs_set_aside)") == true { try pruneSetAside(db) }
    }

    /// Changes kept aside whose id has since arrived in a form this replica trusts leave the
    /// list: the genuine change is here (an altered copy kept aside is moot then). Called after
    /// a batch, and only when something is kept aside (the list is short).
    func pruneSetAside(_ db: Database) throws {
        let rows = try Row.fetchAll(db, sql: "SELECT id, body FROM fs_set_aside LIMIT 10000")
        for r in rows {
            guard let c = try? ChangeCodec.decodeReceived(JSONValue.parse(r["body"] as String)) else { continue }
            let held: Bool
            switch c {
            case .known(let k): held = try loadRow(db, k.kind, k.row).log.contains(where: { $0.id == k.id })
            case .foreign(let f):
                held = try heldForeign(db, f) != nil
            }
            if held {
                try db.execute(sql: "DELETE FROM fs_set_aside WHERE id = ?", arguments: [r["id"] as Int64])
            }
        }
    }
}

import FieldSyncCore
import Foundation
import GRDB

// MARK: - The schema a replica holds

/// What learning a schema did.
public struct SchemaLearnReport: Sendable, Equatable {
    /// The version held before and after.
    public var from: Int
    public var to: Int
    /// Changes kept for a newer schema whose writes merged now, and those still waiting (made
    /// with a schema newer still).
    public var merged: Int
    public var stillPending: Int
    /// Changes kept whole for a kind this schema now holds that it finds invalid, or not in
    /// their canonical form: set aside, never merged.
    public var setAside = 0

    public init(from: Int, to: Int, merged: Int, stillPending: Int) {
        self.from = from
        self.to = to
        self.merged = merged
        self.stillPending = stillPending
    }
}

extension Replica {
    /// Takes the schema a replica file holds into this process before anything else reads the
    /// schema — a command line's arguments name kinds and fields a newer schema added. Read
    /// only; a file that is missing or unreadable is left to ``open(path:custody:migrations:)``
    /// to report.
    public static func adoptStoredSchema(path: String) {
        guard FileManager.default.fileExists(atPath: path) else { return }
        var c = Configuration()
        c.readonly = true
        guard let q = try? DatabaseQueue(path: path, configuration: c) else { return }
        defer { try? q.close() }
        guard let stored = try? q.read({ db -> Schema? in
            guard try db.tableExists("fs_meta") else { return nil }
            return try storedSchema(db)
        }) else { return }
        _ = try? Schema.adopt(stored)
    }

    /// The schema document this file holds (`fs_meta.schema`); the built-in one for a file that
    /// never held another.
    static func storedSchema(_ db: Database) throws -> Schema {
        guard let text = try String.fetchOne(db, sql: "SELECT value FROM fs_meta WHERE key = 'schema'") else { return .builtin }
        do {
            return try Schema(documentText: text)
        } catch {
            throw ReplicaError.storage("the schema kept in this file does not read: \(error)")
        }
    }

    /// The version of the schema this file holds.
    public func schemaVersion() throws -> Int {
        try read { db in try Int.fetchOne(db, sql: "SELECT value FROM fs_meta WHERE key = 'schema_version'") ?? 1 }
    }

    /// Makes the file and this process hold the same schema, the newer of the two: a file kept
    /// by a newer schema teaches it to the process; a process that already took a newer one
    /// (from a hub, another store) brings the file up to it. Then changes kept for a schema now
    /// known merge in place. Run when a replica is opened, and by ``refreshSchema()``.
    @discardableResult
    func reconcileSchema() throws -> SchemaLearnReport? {
        let stored = try read { db in try Self.storedSchema(db) }
        let current = Schema.current
        if stored.version > current.version {
            try Self.storage { try Schema.adopt(stored) }
            return try mergePending(from: current.version)
        }
        if stored.version < current.version {
            return try learn(current)
        }
        // Same version: the same schema, or two different ones sharing a number.
        if stored.version > 1 { try Self.storage { try Schema.adopt(stored) } }
        return nil
    }

    /// Checks whether another process (an administrator's `schema load`, the daemon) stored a
    /// newer schema in this file since it was opened, and takes it. One small read.
    @discardableResult
    public func refreshSchema() throws -> SchemaLearnReport? {
        let v = try schemaVersion()
        guard v != Schema.current.version else { return nil }
        return try reconcileSchema()
    }

    /// Takes a newer schema (a lawful, additive successor of the one held): new columns, views
    /// and triggers are made in one transaction, this process takes the schema, and changes kept
    /// for it merge in place — without downloading anything again. Taking the version already
    /// held does nothing; an older one is refused.
    @discardableResult
    public func learn(_ schema: Schema) throws -> SchemaLearnReport {
        let stored = try read { db in try Self.storedSchema(db) }
        let target: Schema
        do { target = try Schema.target(stored: stored, held: .current, offered: schema) } catch { throw ReplicaError.invalidInput(error) }
        if target.version > stored.version {
            // The columns first: until the process takes the schema it reads the older columns only.
            try write { db in
                for s in SQLLayout.upgradeStatements(from: stored, to: target) { try db.execute(sql: s) }
                try db.execute(sql: "INSERT OR REPLACE INTO fs_meta(key, value) VALUES ('schema', ?), ('schema_version', ?)",
                               arguments: [target.document.compactText, target.version])
            }
        }
        try Self.storage { try Schema.adopt(target) }
        return try mergePending(from: stored.version)
    }

    /// Merges a kept change read again with the schema now held (``RecordMerge/mergeLearnt(_:_:)``),
    /// into a record with change list `log`. A change of a kind learnt only now was never on the
    /// list: it joins it at `seq` — unless its kept text is not the canonical form this schema
    /// gives it, when nothing is merged and nil says so (it is set aside). Both stores ask this.
    package static func mergeKept(_ state: inout RowState, log: inout [RowLogEntry], _ c: Change, seq: Int64, text: String) -> RecordMerge.Result? {
        if !log.contains(where: { $0.id == c.id }) {
            guard ChangeCodec.canonicalText(c).utf8.elementsEqual(text.utf8) else { return nil }
            log.append(RowLogEntry(id: c.id, seq: seq))
        }
        return RecordMerge.mergeLearnt(&state, c)
    }

    /// Merges what changes kept for a newer schema carry that this process's schema now reads
    /// (``Change/pending``, and whole changes of a kind learnt now, ``ForeignChange``): each is
    /// read again from its logged text, joins its record's change list if it was not on it, its writes merge into its
    /// record (writes merged before are duplicates, so nothing counts twice), a delete's
    /// `rowSeen` of the newly known fields joins its register, and the change leaves
    /// `fs_pending` unless it still carries writes of a schema newer still.
    func mergePending(from version: Int) throws -> SchemaLearnReport {
        let schema = Schema.current
        return try write { db in
            var merged = 0, still = 0
            let rows = try Row.fetchAll(db, sql: "SELECT p.seq, c.body FROM fs_pending p JOIN fs_change c ON c.seq = p.seq ORDER BY p.seq")
            var report = ApplyReport()
            var aside = 0
            for r in rows {
                let seq: Int64 = r[0]
                let body: String = r[1]
                let c: Change
                switch ChangeCodec.readKept(body, schema: schema) {
                case .stillNewer:
                    still += 1
                    continue
                case .refused(let id, let why):
                    // Kept whole while its kind was unknown, and not a change this schema takes:
                    // it never merges here (nor at any receiver that knows the kind).
                    try db.execute(sql: "DELETE FROM fs_pending WHERE seq = ?", arguments: [seq])
                    try setAside(db, id: id, body: body, reason: why, from: "schema \(schema.version)", count: &aside)
                    report.setAside += 1
                    continue
                case .readable(let ok): c = ok
                }
                var row = try loadRow(db, c.kind, c.row)
                guard let result = Self.mergeKept(&row.state, log: &row.log, c, seq: seq, text: body) else {
                    try db.execute(sql: "DELETE FROM fs_pending WHERE seq = ?", arguments: [seq])
                    try setAside(db, id: c.id.description, body: body, reason: ChangeCodec.notCanonical, from: "schema \(schema.version)", count: &aside)
                    report.setAside += 1
                    continue
                }
                try storeRow(db, &row)
                if !result.conflicts.isEmpty || !result.closed.isEmpty {
                    try syncConflicts(db, kind: c.kind, row: c.row, result, report: &report)
                }
                if c.hasPending {
                    still += 1
                } else {
                    try db.execute(sql: "DELETE FROM fs_pending WHERE seq = ?", arguments: [seq])
                    merged += 1
                }
            }
            var learnt = SchemaLearnReport(from: version, to: schema.version, merged: merged, stillPending: still)
            learnt.setAside = report.setAside
            return learnt
        }
    }
}

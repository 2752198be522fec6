import FieldSyncCore
import FieldSyncHub
import FieldSyncReplica
import Foundation
import Logging
import PostgresNIO

// MARK: - The schema in PostgreSQL

/// The PostgreSQL store keeps the schema document in `hub_meta` (`schema`, `schema_version`), as
/// the SQLite hub keeps it in `fs_meta`; loading a newer one adds columns and merges the changes
/// kept for it (`hub_pending`) in place, by the same rules (Schema.target, RecordMerge).
extension PostgresHubStore {
    /// Takes the schema a PostgreSQL hub holds into this process before a command line's
    /// arguments are read (they may name a kind a later schema added). Best effort: a database
    /// that cannot be reached or holds no hub is left to opening the store to report.
    public static func adoptStoredSchema(url: PostgresURL, logger: Logger = Logger(label: "fieldsync-hub.postgres")) async {
        let (client, runner) = await start(url, logger: logger)
        defer { runner.cancel() }
        if let stored = try? await client.withConnection({ c in try await storedSchema(PG(connection: c, logger: logger)) }) {
            _ = try? Schema.adopt(stored)
        }
    }

    /// A field's column, text compared byte for byte as in every table (PostgresSchema).
    static func column(_ t: FieldType) -> String {
        let c = PostgresSchema.columnType(t)
        return c == "text" ? "text COLLATE \"C\"" : c
    }

    static func storedSchema(_ pg: PG) async throws -> Schema {
        guard let r = try await pg.one("SELECT value FROM hub_meta WHERE key = 'schema'") else { return .builtin }
        do { return try Schema(documentText: try r.text(0)) } catch {
            throw ReplicaError.storage("the schema kept in hub_meta does not read: \(error)")
        }
    }

    /// The newer of the store's schema and this process's, for both (run when opened).
    func reconcileSchema() async throws {
        let stored = try await read { pg in try await Self.storedSchema(pg) }
        if stored.version > Schema.current.version {
            try Schema.adopt(stored)
            _ = try await mergePending(from: Schema.current.version)
        } else if stored.version < Schema.current.version {
            _ = try await learnSchema(Schema.current)
        }
    }

    public func refreshSchema() async {
        guard schemaWatch.due() else { return }
        guard let v = try? await read({ pg in try await pg.one("SELECT value FROM hub_meta WHERE key = 'schema_version'").map { Int(try $0.text(0)) ?? 1 } ?? 1 }),
              v > Schema.current.version else { return }
        do { try await reconcileSchema() } catch { logger.error("cannot take schema version \(v) from the database: \(error)") }
    }

    public func learnSchema(_ schema: Schema) async throws -> SchemaLearnReport {
        let from = try await transaction { pg -> Int in
            // One loader at a time; each ALTER holds its table to commit, so a push waits for it.
            try await pg.exec("SELECT pg_advisory_xact_lock(2026120201)")
            let stored = try await Self.storedSchema(pg)
            let target: Schema
            do throws(InputError) { target = try Schema.target(stored: stored, held: .current, offered: schema) } catch { throw ReplicaError.invalidInput(error) }
            guard target.version > stored.version else { return stored.version }
            try await Self.upgradeTables(pg, from: stored, to: target)
            return stored.version
        }
        let stored = try await read { pg in try await Self.storedSchema(pg) }
        try Schema.adopt(stored)
        return try await mergePending(from: from)
    }

    /// Brings the record tables from schema `old` to `new` (a lawful successor) and keeps `new`
    /// in hub_meta, in the caller's transaction: new columns, tables for new kinds.
    static func upgradeTables(_ pg: PG, from old: Schema, to new: Schema) async throws {
        for (o, n) in zip(old.kinds, new.kinds) {
            for f in n.fields.dropFirst(o.fields.count) {
                try await pg.exec("ALTER TABLE \(PostgresSchema.kindTable(n.kind)) ADD COLUMN IF NOT EXISTS \(f.name) \(column(f.type))")
            }
        }
        for n in new.kinds.dropFirst(old.kinds.count) {
            let t = PostgresSchema.kindTable(n.kind)
            let cols = n.fields.map { "\($0.name) \(column($0.type))" }.joined(separator: ", ")
            try await pg.exec("CREATE TABLE IF NOT EXISTS \(t)(id text COLLATE \"C\" PRIMARY KEY, \(cols), _deleted smallint NOT NULL DEFAULT 0, _clock bytea NOT NULL)")
            if let rf = n.regionField { try await pg.exec("CREATE INDEX IF NOT EXISTS \(t)_region ON \(t)(\(rf))") }
        }
        try await pg.exec("""
            INSERT INTO hub_meta(key, value) VALUES ('schema', $1), ('schema_version', $2)
            ON CONFLICT (key) DO UPDATE SET value = excluded.value
            """, [.text(new.document.compactText), .text(String(new.version))])
    }

    /// Merges the writes of kept changes that this process's schema now reads, as the replica
    /// does (Replica.mergePending): again from the logged text, duplicates counting nothing.
    func mergePending(from version: Int) async throws -> SchemaLearnReport {
        let schema = Schema.current
        return try await transaction { pg in
            var merged = 0, still = 0, aside = 0
            for r in try await pg.rows("SELECT p.seq, c.body FROM hub_pending p JOIN hub_change c ON c.seq = p.seq ORDER BY p.seq FOR UPDATE OF p") {
                let seq = try r.int(0)
                let body = try r.text(1)
                /// Not a change this schema takes: it never merges (Replica.mergePending does the same).
                func setAside(_ id: String, _ why: String) async throws {
                    try await pg.exec("DELETE FROM hub_pending WHERE seq = $1", [.int(seq)])
                    try await pg.exec("INSERT INTO hub_set_aside(change, body, reason, came_from, at) VALUES ($1, $2, $3, $4, $5)",
                                      [.text(id), .text(body), .text(String(why.prefix(1000))), .text("schema \(schema.version)"), .int(self.now())])
                    aside += 1
                }
                let c: Change
                switch ChangeCodec.readKept(body, schema: schema) {
                case .stillNewer:
                    still += 1
                    continue
                case .refused(let id, let why):
                    try await setAside(id, why)
                    continue
                case .readable(let ok): c = ok
                }
                var rec = try await PostgresRecords.load(pg, c.kind, [c.row], lock: true)[c.row]
                    ?? PGRecord(kind: c.kind, id: c.row, state: RowState(kind: c.kind), log: [], exists: false)
                guard let result = Replica.mergeKept(&rec.state, log: &rec.log, c, seq: seq, text: body) else {
                    try await setAside(c.id.description, ChangeCodec.notCanonical)
                    continue
                }
                try await PostgresRecords.store(pg, [rec])
                if !result.conflicts.isEmpty || !result.closed.isEmpty {
                    try await PostgresRecords.syncConflicts(pg, kind: c.kind, row: c.row, result)
                }
                if c.hasPending {
                    still += 1
                } else {
                    try await pg.exec("DELETE FROM hub_pending WHERE seq = $1", [.int(seq)])
                    merged += 1
                }
            }
            var learnt = SchemaLearnReport(from: version, to: schema.version, merged: merged, stillPending: still)
            learnt.setAside = aside
            return learnt
        }
    }
}

import FieldSyncCore
import FieldSyncReplica
import Foundation
import PostgresNIO

// MARK: - Records in PostgreSQL

/// A record as the PostgreSQL store keeps it: the table of its kind holds the winning value of
/// each field, `_deleted`, and `_clock` — the same compact encoding of the registers and the
/// record's change list as the SQLite replica's (``ClockBlob``), whose log positions are
/// `hub_change.seq`.
struct PGRecord {
    let kind: RecordKind
    let id: String
    var state: RowState
    var log: [RowLogEntry]
    /// False until it is written the first time.
    var exists: Bool
}

enum PostgresRecords {
    static func columns(_ kind: RecordKind) -> String { kind.spec.fields.map(\.name).joined(separator: ", ") }

    /// The records `ids` of `kind` (those that exist), locked for the transaction when `lock`:
    /// in id order, so transactions lock in one order and do not deadlock each other.
    static func load(_ pg: PG, _ kind: RecordKind, _ ids: [String], lock: Bool) async throws -> [String: PGRecord] {
        guard !ids.isEmpty else { return [:] }
        let fields = kind.spec.fields
        let sql = """
            SELECT id, \(columns(kind)), _deleted, _clock FROM \(PostgresSchema.kindTable(kind))
            WHERE id = ANY($1::text[]) ORDER BY id \(lock ? "FOR UPDATE" : "")
            """
        var out: [String: PGRecord] = [:]
        for r in try await pg.rows(sql, [.texts(ids.sorted())]) {
            let id = try r.text(0)
            var values: [FieldValue] = []
            values.reserveCapacity(fields.count)
            for (i, f) in fields.enumerated() { values.append(try r.field(i + 1, f.type)) }
            let deleted = try r[fields.count + 1].decode(Int16.self) != 0
            let blob = try r.bytes(fields.count + 2)
            let (state, log) = try blob.withUnsafeBytes { try ClockBlob.decode($0, kind: kind, columns: values, deleted: deleted) }
            out[id] = PGRecord(kind: kind, id: id, state: state, log: log, exists: true)
        }
        return out
    }

    /// Records written by one statement at most (binds stay far below PostgreSQL's 65,535).
    static let storeBatch = 500

    /// Writes records back (new ones inserted), in id order: one statement per kind (per
    /// ``storeBatch`` records), not one per record. A push writes its records while it holds the
    /// change log's head row, which every other push waits for, so each round trip here is one
    /// every push in the fleet pays (docs/benchmarks.md, "Load").
    static func store(_ pg: PG, _ records: [PGRecord]) async throws {
        let sorted = records.sorted(by: { ($0.kind.ordinal, $0.id) < ($1.kind.ordinal, $1.id) })
        var start = 0
        while start < sorted.count {
            let kind = sorted[start].kind
            var end = start
            while end < sorted.count, sorted[end].kind == kind, end - start < storeBatch { end += 1 }
            let names = kind.spec.fields.map(\.name)
            var binds: [PGValue] = []
            var rows: [String] = []
            for var rec in sorted[start..<end] {
                if rec.state.registers.count != names.count + 1 {
                    // Loaded before this process took a newer schema: the new fields start empty.
                    rec.state = RowState(kind: kind, registers: rec.state.registers)
                }
                let first = binds.count + 1
                binds.append(.text(rec.id))
                for r in rec.state.registers.dropLast() { binds.append(PGValue(r.value)) }
                binds.append(.int(rec.state.isDeleted ? 1 : 0))
                binds.append(.bytes(ClockBlob.encode(rec.state, log: rec.log)))
                rows.append("(" + (first...binds.count).map { "$\($0)" }.joined(separator: ", ") + ")")
            }
            // Each row's values are coerced to the columns' types as in a one-row INSERT; ids are
            // distinct (one entry per record), as ON CONFLICT DO UPDATE requires.
            let updates = (names + ["_deleted", "_clock"]).map { "\($0) = excluded.\($0)" }.joined(separator: ", ")
            try await pg.exec("""
                INSERT INTO \(PostgresSchema.kindTable(kind))(id, \(names.joined(separator: ", ")), _deleted, _clock)
                VALUES \(rows.joined(separator: ", ")) ON CONFLICT (id) DO UPDATE SET \(updates)
                """, binds)
            start = end
        }
    }

    /// Keeps `fs_conflict` in step with what a merge did.
    static func syncConflicts(_ pg: PG, kind: RecordKind, row: String, _ merged: RecordMerge.Result) async throws {
        for f in merged.closed {
            try await pg.exec("DELETE FROM fs_conflict WHERE kind = $1 AND row = $2 AND field = $3", [.text(kind.rawValue), .text(row), .text(f)])
        }
        for c in merged.conflicts {
            try await pg.exec("""
                INSERT INTO fs_conflict(kind, row, field, since) VALUES ($1, $2, $3, $4)
                ON CONFLICT (kind, row, field) DO UPDATE SET since = excluded.since
                """, [.text(kind.rawValue), .text(row), .text(c.field), .int(c.openedAt.millis)])
        }
    }
}

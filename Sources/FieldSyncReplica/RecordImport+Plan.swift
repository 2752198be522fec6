import FieldSyncCore
import GRDB

// MARK: - ImportPlan

/// What importing a file would do, row by row, before anything is written: add a record, update
/// one (named by an `id`/`编号` column, or found by the kind's natural key), leave one as it is,
/// or refuse the row and say why. Importing the same file twice adds nothing the second time.
public struct ImportPlan: Sendable {
    public enum Action: Sendable {
        case add(NewRecord)
        /// The fields of record `id` this row changes (its other values already match).
        case update(id: String, values: [(field: String, value: FieldValue)])
        case unchanged(id: String)
        case wrong(String)
    }

    public struct Row: Sendable {
        public var line: Int
        public var action: Action
        /// What the row is about, for a person (the key fields' values).
        public var summary: String
    }

    public var kind: RecordKind
    public var rows: [Row]
    public var encoding: String

    public var adds: Int { rows.filter { if case .add = $0.action { true } else { false } }.count }
    public var updates: Int { rows.filter { if case .update = $0.action { true } else { false } }.count }
    public var unchanged: Int { rows.filter { if case .unchanged = $0.action { true } else { false } }.count }
    public var wrong: Int { rows.filter { if case .wrong = $0.action { true } else { false } }.count }
}

extension RecordImport {
    /// The fields that say two rows are the same record when a file has no id column: what a
    /// cadre would call "the same visit" (the same household, day and kind of visit, in the same
    /// village), and so on. docs/cli.md and docs/app.md list them.
    public static func naturalKey(_ kind: RecordKind) -> [String] {
        switch kind {
        case .visit: return ["village", "household_head", "visit_date", "visit_kind"]
        case .dispute: return ["village", "parties", "reported_on"]
        case .project: return ["village", "name"]
        case .household: return ["village", "head_name"]
        case .cadre: return ["village", "name"]
        case .region: return []  // a region's id is its code, always given
        default:
            // A kind a later schema added: its place and its required fields.
            let spec = kind.spec
            return [spec.regionField].compactMap { $0 } + spec.fields.filter { $0.required && $0.name != spec.regionField }.map(\.name)
        }
    }

    /// Plans an import: reads the file and matches every row against the replica.
    public static func plan(kind: RecordKind, path: String, format: Format? = nil, encoding: Encoding = .auto,
                            using replica: Replica) throws -> ImportPlan {
        let (rows, used) = try rows(kind: kind, path: path, format: format, encoding: encoding, using: replica)
        let spec = kind.spec
        let key = naturalKey(kind)
        var seen: [String: Int] = [:]  // natural key → first line, within the file
        var out: [ImportPlan.Row] = []
        for row in rows {
            guard case .success(let rec) = row.result else {
                if case .failure(let e) = row.result { out.append(.init(line: row.line, action: .wrong(e.reason), summary: "")) }
                continue
            }
            func value(_ f: String) -> FieldValue { rec.values.first { $0.field == f }?.value ?? .null }
            let summary = key.compactMap { f -> String? in
                guard let spec = spec.field(f), value(f) != .null else { return nil }
                return "\(spec.label) \(value(f).description)"
            }.joined(separator: " · ")
            // The record this row names: its id, else the first live record with the same key.
            var existing: Record?
            if let id = rec.id {
                existing = try? replica.record(id)
            } else if !key.isEmpty, key.allSatisfy({ value($0) != .null }) {
                let k = key.map { value($0).description }.joined(separator: "\u{1F}")
                if let first = seen[k] {
                    out.append(.init(line: row.line, action: .wrong("与第 \(first) 行是同一条记录（\(summary)）(the same record as line \(first))"), summary: summary))
                    continue
                }
                seen[k] = row.line
                var q = RecordQuery(kind: kind, villagePrefix: spec.regionField.flatMap { if case .text(let v) = value($0) { v } else { nil } })
                q.equals = key.map { ($0, value($0)) }
                q.limit = 1
                existing = try replica.browse(q).records.first
            }
            guard let existing else {
                out.append(.init(line: row.line, action: .add(rec), summary: summary))
                continue
            }
            let changed = rec.values.filter { $0.field != spec.regionField && existing[$0.field] != $0.value }
            if existing.deleted {
                out.append(.init(line: row.line, action: .wrong("记录 \(RecordID.short(existing.id)) 已删除：请先恢复它再导入 (record is deleted)"), summary: summary))
            } else {
                out.append(.init(line: row.line, action: changed.isEmpty ? .unchanged(id: existing.id) : .update(id: existing.id, values: changed), summary: summary))
            }
        }
        return ImportPlan(kind: kind, rows: out, encoding: used)
    }
}

extension Replica {
    /// Carries out a plan's adds and updates in one transaction (all or none); wrong rows are
    /// left out. Returns the ids added and updated.
    public func apply(_ plan: ImportPlan, author: String? = nil, note: String? = nil) throws -> (added: [String], updated: [String]) {
        try write { db in
            var added: [String] = []
            var updated: [String] = []
            var report = ApplyReport()
            for row in plan.rows {
                switch row.action {
                case .add(let rec): added += try insert(db, [rec], author: author, note: note)
                case .update(let id, let values):
                    let loaded = try loadRow(db, plan.kind, id)
                    let wanted = values.filter { !loaded.state.holds($0.field, $0.value) }
                    guard !wanted.isEmpty, !loaded.state.isDeleted else { continue }
                    let c = Change(id: nextChangeID(), kind: plan.kind, row: id, hlc: clock.tick(wall: now),
                                   author: author ?? self.author, writes: loaded.state.writes(setting: wanted), note: note)
                    try applyOne(db, c, local: true, preloaded: loaded, report: &report)
                    updated.append(id)
                case .unchanged, .wrong: continue
                }
            }
            return (added, updated)
        }
    }
}

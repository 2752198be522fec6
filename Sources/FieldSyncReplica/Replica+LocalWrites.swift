import FieldSyncCore
import GRDB

// MARK: - NewRecord

/// A record checked and ready to insert.
public struct NewRecord: Sendable {
    public var kind: RecordKind
    /// The id to use; nil makes a new one (regions must give their code).
    public var id: String?
    public var values: [(field: String, value: FieldValue)]
}

/// What a local edit did.
public struct EditResult: Sendable {
    public var id: String
    public var kind: RecordKind
    /// The change made, or nil when every value was already as asked.
    public var change: ChangeID?
    public var fieldsChanged: [String]
    /// Conflicts that this edit settled (the field held competing values and now holds one).
    public var conflictsSettled: [String]
}

// MARK: - Local writes

extension Replica {
    /// Checks user input (JSON field → value) against the schema.
    ///
    /// Every problem is reported at once, each naming the field and the reason. `creating`
    /// demands the required fields and allows an `id` key.
    public func check(_ kind: RecordKind, _ input: JSONObject, creating: Bool, id existing: String? = nil) throws -> NewRecord {
        let spec = kind.spec
        var problems: [String] = []
        var id: String?
        var values: [(Int, String, FieldValue)] = []
        for (key, json) in input {
            if key == "id" {
                guard creating else { problems.append("id: a record's id cannot be changed"); continue }
                guard case .string(let s) = json else { problems.append("id: expected a string, got \(json.typeName)"); continue }
                if let p = RecordID.problem(s, kind: kind) { problems.append("id: \(p)") } else { id = s }
                continue
            }
            guard let f = spec.field(key), let i = spec.fieldIndex(key) else {
                problems.append(spec.unknownField(key).description)
                continue
            }
            do throws(InputError) {
                let v: FieldValue
                do throws(InputError) { v = try f.decode(f.personJSON(json)) } catch {
                    // Chinese first, what to type, the precise reason in brackets.
                    throw InputError("", f.explain(error, json))
                }
                if let row = existing, let p = spec.regionProblem(field: key, value: v, row: row) {
                    problems.append("\(f.location(in: kind)): \(p)")
                    continue
                }
                values.append((i, key, v))
            } catch {
                problems.append("\(f.location(in: kind)): \(error.reason)")
            }
        }
        if creating {
            for f in spec.fields where f.required && input[f.name] == nil {
                problems.append("\(f.location(in: kind)): 必填，请填写\(f.label)：\(f.formHint) (is required: \(f.type.formatHint))")
            }
            if kind == .region && id == nil && input["id"] == nil {
                problems.append("region.id: a region's id is its division code (6, 9 or 12 digits)")
            }
            if let id, let rf = spec.regionField, case .string(let v)? = input[rf], let f = spec.field(rf),
               let p = spec.regionProblem(field: rf, value: .text(v), row: id) {
                problems.append("\(f.location(in: kind)): \(p)")
            }
        }
        guard problems.isEmpty else {
            throw ReplicaError.invalidInput(InputError(spec.label, problems.count == 1 ? problems[0] : "\(problems.count) problems:\n  - " + problems.joined(separator: "\n  - ")))
        }
        values.sort { $0.0 < $1.0 }
        return NewRecord(kind: kind, id: id, values: values.map { ($0.1, $0.2) })
    }

    /// Adds one record and returns its id.
    @discardableResult
    public func add(_ kind: RecordKind, _ input: JSONObject, author: String? = nil, note: String? = nil) throws -> String {
        try insert([check(kind, input, creating: true)], author: author, note: note)[0]
    }

    /// Inserts checked records in one transaction (all or none) and returns their ids.
    public func insert(_ records: [NewRecord], author: String? = nil, note: String? = nil) throws -> [String] {
        try write { db in try insert(db, records, author: author, note: note) }
    }

    func insert(_ db: Database, _ records: [NewRecord], author: String?, note: String?) throws -> [String] {
        do {
            var ids: [String] = []
            ids.reserveCapacity(records.count)
            var report = ApplyReport()
            for r in records {
                let id = try r.id ?? RecordID.make(kind: r.kind, region: region(of: r), nowMs: now)
                // A freshly made id (80 random bits) cannot be taken; a given one is checked.
                let row = r.id == nil ? LoadedRow(rid: nil, id: id, state: RowState(kind: r.kind), log: []) : try loadRow(db, r.kind, id)
                if row.state.exists {
                    throw ReplicaError.invalidInput(InputError("\(r.kind.rawValue) \(id)", "a record with this id already exists"))
                }
                let c = Change(id: nextChangeID(), kind: r.kind, row: id, hlc: clock.tick(wall: now),
                               author: author ?? self.author, writes: row.state.writes(setting: r.values), note: note)
                try applyOne(db, c, local: true, preloaded: row, report: &report)
                ids.append(id)
            }
            return ids
        }
    }

    /// Sets some fields of a record. Values equal to what the record already holds are skipped;
    /// writing a field that is in conflict settles the conflict.
    @discardableResult
    public func edit(_ idOrPrefix: String, _ input: JSONObject, author: String? = nil, note: String? = nil) throws -> EditResult {
        let (kind, id) = try resolve(idOrPrefix)
        let checked = try check(kind, input, creating: false, id: id)
        return try write { db in
            let row = try loadRow(db, kind, id)
            guard !row.state.isDeleted else {
                throw ReplicaError.wrongState("\(kind.spec.label) \(RecordID.short(id)) 已删除，请先恢复：fieldsync record undelete \(RecordID.short(id)) (\(id) is deleted; undelete it first)")
            }
            let wanted = checked.values.filter { !row.state.holds($0.field, $0.value) }
            guard !wanted.isEmpty else { return EditResult(id: id, kind: kind, change: nil, fieldsChanged: [], conflictsSettled: []) }
            try dismissRefusals(db, kind, id)
            let before = Set(row.state.conflicts.map(\.field))
            let c = Change(id: nextChangeID(), kind: kind, row: id, hlc: clock.tick(wall: now),
                           author: author ?? self.author, writes: row.state.writes(setting: wanted), note: note)
            var report = ApplyReport()
            try applyOne(db, c, local: true, preloaded: row, report: &report)
            let after = try Set(loadRow(db, kind, id).state.conflicts.map(\.field))
            return EditResult(id: id, kind: kind, change: c.id, fieldsChanged: wanted.map(\.field),
                              conflictsSettled: before.subtracting(after).sorted())
        }
    }

    /// Deletes a record. The delete is an edit: it replicates, can be undone with
    /// ``undelete(_:author:note:)``, and conflicts with edits it had not seen.
    @discardableResult
    public func delete(_ idOrPrefix: String, author: String? = nil, note: String? = nil) throws -> EditResult {
        try setDeleted(idOrPrefix, true, author: author, note: note)
    }

    /// Brings a deleted record back, with the values it had.
    @discardableResult
    public func undelete(_ idOrPrefix: String, author: String? = nil, note: String? = nil) throws -> EditResult {
        try setDeleted(idOrPrefix, false, author: author, note: note)
    }

    private func setDeleted(_ idOrPrefix: String, _ deleted: Bool, author: String?, note: String?) throws -> EditResult {
        let (kind, id) = try resolve(idOrPrefix, includeDeleted: true)
        return try write { db in
            let row = try loadRow(db, kind, id)
            let reg = row.state[RowState.deletedField]!
            let target = FieldValue.integer(deleted ? 1 : 0)
            let settlesRecordConflict = deleted && !row.state.unseenEdits.isEmpty
            if row.state.holds(RowState.deletedField, target) && !settlesRecordConflict
                || (!deleted && reg.isEmpty) {
                throw ReplicaError.wrongState("\(kind.spec.label) \(RecordID.short(id)) \(deleted ? "已经删除了" : "没有被删除") (\(id) is \(deleted ? "already deleted" : "not deleted"))")
            }
            try dismissRefusals(db, kind, id)
            let before = Set(row.state.conflicts.map(\.field))
            let c = Change(id: nextChangeID(), kind: kind, row: id, hlc: clock.tick(wall: now), author: author ?? self.author,
                           writes: [FieldWrite(field: RowState.deletedField, value: target, context: reg.context)],
                           rowContext: deleted ? row.state.rowContext : nil, note: note)
            var report = ApplyReport()
            try applyOne(db, c, local: true, preloaded: row, report: &report)
            let after = try Set(loadRow(db, kind, id).state.conflicts.map(\.field))
            return EditResult(id: id, kind: kind, change: c.id, fieldsChanged: [RowState.deletedField],
                              conflictsSettled: before.subtracting(after).sorted())
        }
    }

    /// The division code a new record's id starts with: its region field.
    func region(of r: NewRecord) throws -> String {
        guard let rf = r.kind.spec.regionField, case .text(let v)? = r.values.first(where: { $0.field == rf })?.value else {
            throw ReplicaError.invalidInput(InputError(r.kind.rawValue, "a new record needs its division code (\(r.kind.spec.regionField ?? "id"))"))
        }
        return v
    }

    // MARK: Finding records

    /// Finds the record whose id is `idOrPrefix`, or whose id starts with it, or whose part after
    /// the dash starts or ends with it (tables show the last 8 digits) — at least 4 characters.
    /// With a `scope`, only records in it are looked at: one outside it is "not found", exactly as
    /// a missing one, and an ambiguous prefix lists only ids inside it (the hub's supervisors).
    public func resolve(_ idOrPrefix: String, includeDeleted: Bool = true, scope: String = "") throws -> (RecordKind, String) {
        let p = try RecordLookup.normalized(idOrPrefix)
        let live = (includeDeleted ? "" : "AND _deleted = 0 ") + (scope.isEmpty ? "" : "AND substr(id, 1, \(scope.utf8.count)) = \(SQLLayout.quote(scope))")
        precondition(scope.utf8.allSatisfy { (0x30...0x39).contains($0) }, "a scope is digits")
        return try read { db in
            var matches: [(RecordKind, String)] = []
            for k in RecordKind.allCases {
                let t = SQLLayout.table(k)
                var rows = try String.fetchAll(db, sql: "SELECT id FROM \(t) WHERE id >= ? AND id < ? \(live) LIMIT 3", arguments: [p, p + "~"])
                if rows.contains(p) { return (k, p) }  // (in scope: `live` holds the scope)
                if rows.isEmpty, !p.contains("-"), k != .region {
                    rows = try String.fetchAll(db, sql: """
                        SELECT id FROM \(t) WHERE (substr(id, instr(id, '-') + 1, ?) = ? OR substr(id, -?) = ?) \(live) LIMIT 3
                        """, arguments: [p.utf8.count, p, p.utf8.count, p])
                }
                matches += rows.map { (k, $0) }
            }
            return try RecordLookup.pick(idOrPrefix, matches)
        }
    }
}

/// How people name a record (``Replica/resolve(_:includeDeleted:scope:)``) and a conflict, for
/// every store: the laptop's replica and both hub stores look records up by these rules.
package enum RecordLookup {
    /// The id or prefix, lowercased, or why it cannot name a record.
    package static func normalized(_ idOrPrefix: String) throws -> String {
        let p = idOrPrefix.lowercased()
        guard p.utf8.count >= 4, p.utf8.allSatisfy({ SiteIDChars.isIDChar($0) || $0 == UInt8(ascii: "-") }) else {
            throw ReplicaError.invalidInput(InputError("id", "\"\(idOrPrefix.prefix(40))\" is not a record id or a prefix of at least 4 hex digits"))
        }
        return p
    }

    /// The one record among the matches, or "not found", or "ambiguous".
    package static func pick(_ idOrPrefix: String, _ matches: [(RecordKind, String)]) throws -> (RecordKind, String) {
        if matches.isEmpty { throw ReplicaError.notFound(idOrPrefix) }
        if matches.count > 1 { throw ReplicaError.ambiguous(prefix: idOrPrefix, matches: matches.map(\.1)) }
        return matches[0]
    }

    package static func noOpenConflict(_ id: String, _ field: String) -> ReplicaError {
        .notFound("\(RecordID.short(id))/\(field): no open conflict (settled already, or never was)")
    }

    /// Many conflicts are settled at once only by taking the newest or the oldest value.
    package static func checkBulk(_ how: Resolution) throws {
        guard how == .newest || how == .oldest else {
            throw ReplicaError.invalidInput(InputError("resolve", "settling many conflicts at once takes --take-newest or --take-oldest"))
        }
    }

    /// A conflict's name `RECORD/FIELD` split in two.
    package static func conflictKey(_ text: String) throws -> (record: String, field: String) {
        guard let slash = text.lastIndex(of: "/") else {
            throw ReplicaError.invalidInput(InputError("conflict", "a conflict id is RECORD/FIELD, e.g. 3f2a9c1b/status (see fieldsync conflicts list), got \"\(text.prefix(60))\""))
        }
        return (String(text[..<slash]), String(text[text.index(after: slash)...]))
    }
}

enum SiteIDChars {
    static func isIDChar(_ c: UInt8) -> Bool { (0x30...0x39).contains(c) || (0x61...0x66).contains(c) }
}

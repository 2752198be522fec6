import FieldSyncCore
import GRDB

// MARK: - RecordQuery

/// Which records a browser (the hub's web console) lists: one kind, a place, some text, a page.
///
///     var q = RecordQuery(kind: .dispute)
///     q.villagePrefix = "520221105"; q.text = "宅基地"; q.offset = 50
public struct RecordQuery: Sendable, Equatable {
    public var kind: RecordKind
    /// The record's division code starts with this (a scope, a township, a village).
    public var villagePrefix: String?
    /// Some text field (or the id) contains this, byte for byte (no wildcards, no case folding).
    public var text: String?
    public var includeDeleted = false
    public var limit = 50
    public var offset = 0
    /// Fields that must hold exactly these values (a status, a kind of visit).
    public var equals: [(field: String, value: FieldValue)] = []
    /// A date field between `from` and `to` (both `YYYY-MM-DD`, both included).
    public var dateField: String?
    public var from: String?
    public var to: String?
    /// Only records this replica's own site has written ("mine").
    public var mine = false
    /// Only records with changes the hub does not have yet.
    public var unsent = false
    /// Only records with an open conflict.
    public var inConflict = false
    /// Ordered by this field (then id); by id when nil.
    public var sort: String?
    public var descending = false

    public static func == (a: RecordQuery, b: RecordQuery) -> Bool {
        a.kind == b.kind && a.villagePrefix == b.villagePrefix && a.text == b.text && a.includeDeleted == b.includeDeleted
            && a.limit == b.limit && a.offset == b.offset && a.equals.map(\.field) == b.equals.map(\.field)
            && a.equals.map(\.value) == b.equals.map(\.value) && a.dateField == b.dateField && a.from == b.from && a.to == b.to
            && a.mine == b.mine && a.unsent == b.unsent && a.inConflict == b.inConflict && a.sort == b.sort && a.descending == b.descending
    }

    public init(kind: RecordKind, villagePrefix: String? = nil, text: String? = nil) {
        self.kind = kind
        self.villagePrefix = villagePrefix
        self.text = text
    }
}

/// One page of records and how many match in all.
public struct RecordPage: Sendable {
    public var records: [Record]
    public var total: Int

    public init(records: [Record], total: Int) {
        self.records = records
        self.total = total
    }
}

// MARK: - Browsing

extension Replica {
    /// The records matching `query`, in id order (by place, then creation time), and their count.
    public func browse(_ query: RecordQuery) throws -> RecordPage {
        let spec = query.kind.spec
        let t = SQLLayout.table(query.kind)
        var conds: [String] = []
        var args: [DatabaseValueConvertible] = []
        if let p = query.villagePrefix, !p.isEmpty {
            // The id starts with the division code (for regions it is the code), and is indexed.
            conds.append("id >= ? AND id < ?")
            args += [p, p + "~"]
        }
        if !query.includeDeleted { conds.append("_deleted = 0") }
        if let text = query.text, !text.isEmpty {
            // instr(), not LIKE: % and _ in what people type are ordinary characters.
            // One instr() per column, OR-ed: measured faster than one instr() over the columns
            // joined (scripts/bench --app-search), since a match ends a row's test early.
            let columns = ["id"] + spec.fields.filter { $0.type.sqlType == "TEXT" }.map(\.name)
            conds.append("(" + columns.map { "instr(\($0), ?) > 0" }.joined(separator: " OR ") + ")")
            args += columns.map { _ in text }
        }
        let k = query.kind.rawValue
        for (field, value) in query.equals where spec.field(field) != nil {
            conds.append("\(field) = ?")
            switch value {
            case .integer(let i): args.append(i)
            case .text(let t): args.append(t)
            case .null: conds[conds.count - 1] = "\(field) IS NULL"
            }
        }
        if let f = query.dateField, spec.field(f)?.type == .date {
            if let from = query.from { conds.append("\(f) >= ?"); args.append(from) }
            if let to = query.to { conds.append("\(f) <= ?"); args.append(to) }
        }
        if query.mine {
            conds.append("id IN (SELECT row FROM fs_change WHERE kind = ? AND site = ?)")
            args += [k, Int64(bitPattern: site.raw)]
        }
        if query.unsent {
            // Changes after the push cursor that the hub has not refused for good.
            conds.append("""
                id IN (SELECT row FROM fs_change WHERE kind = ? AND site = ? AND seq > COALESCE((SELECT push_cursor FROM fs_sync WHERE id = 1), 0)
                       AND seq NOT IN (SELECT seq FROM fs_sync_refused))
                """)
            args += [k, Int64(bitPattern: site.raw)]
        }
        if query.inConflict {
            conds.append("id IN (SELECT row FROM fs_conflict WHERE kind = ?)")
            args.append(k)
        }
        let whereClause = conds.isEmpty ? "" : "WHERE " + conds.joined(separator: " AND ")
        let order = query.sort.flatMap { spec.field($0)?.name }.map { "\($0) \(query.descending ? "DESC" : "ASC"), id" } ?? (query.descending ? "id DESC" : "id")
        let limit = max(0, min(query.limit, 1000)), offset = max(0, query.offset)
        let sql = """
            SELECT id, \(spec.fields.map(\.name).joined(separator: ", ")), _deleted,
              (SELECT group_concat(field, ',') FROM fs_conflict c WHERE c.kind = '\(query.kind.rawValue)' AND c.row = t.id) AS _conflicts
            FROM \(t) t \(whereClause) ORDER BY \(order) LIMIT \(limit) OFFSET \(offset)
            """
        return try read { db in
            let total = try Int.fetchOne(db, sql: "SELECT count(*) FROM \(t) t \(whereClause)", arguments: StatementArguments(args)) ?? 0
            let rows = try Row.fetchAll(db, sql: sql, arguments: StatementArguments(args))
            let records = rows.map { row -> Record in
                let values = spec.fields.map { f -> FieldValue in
                    switch (row[f.name] as DatabaseValue).storage {
                    case .int64(let i): return .integer(i)
                    case .string(let s): return .text(s)
                    case .null, .double, .blob: return .null  // the schema stores neither
                    }
                }
                let conflicts = (row["_conflicts"] as String?)?.split(separator: ",").map(String.init).sorted() ?? []
                return Record(kind: query.kind, id: row["id"], values: values, deleted: (row["_deleted"] as Int64) != 0, conflicts: conflicts)
            }
            return RecordPage(records: records, total: total)
        }
    }
}

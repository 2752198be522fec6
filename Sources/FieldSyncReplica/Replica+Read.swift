import FieldSyncCore
import GRDB

// MARK: - Record

/// A record as people and scripts see it: the winning value of each field.
public struct Record: Sendable {
    public let kind: RecordKind
    public let id: String
    /// Winning values by field position.
    public let values: [FieldValue]
    public let deleted: Bool
    /// Fields with open conflicts (`_deleted` for delete vs undelete, `_record` for delete vs edit).
    public let conflicts: [String]

    public subscript(field: String) -> FieldValue {
        kind.spec.fieldIndex(field).map { values[$0] } ?? .null
    }

    /// The record's stable JSON form (docs/cli.md):
    /// `{"id":…,"kind":…,"deleted":false,"fields":{…},"conflicts":[…]}`.
    public var json: JSONValue {
        var fields = JSONObject()
        for (f, v) in zip(kind.spec.fields, values) { fields[f.name] = f.encode(v) }
        return .object(JSONObject([
            ("id", .string(id)), ("kind", .string(kind.rawValue)), ("deleted", .bool(deleted)),
            ("fields", .object(fields)), ("conflicts", .array(conflicts.map { .string($0) })),
        ]))
    }
}

// MARK: - HistoryEntry

/// One value a field once had (or has): who wrote it, when, from which replica.
public struct HistoryEntry: Sendable {
    public enum Status: String, Sendable {
        /// The value the record shows now.
        case current
        /// A value competing in an open conflict, not the one shown.
        case competing
        /// Replaced by a later write that had seen it.
        case superseded
        /// Superseded long ago: this laptop kept who made the change and when, and dropped its
        /// values once the hub had it (the hub keeps every change). `field` is empty.
        case pruned
    }

    public let change: ChangeID
    public let hlc: HybridTimestamp
    public let author: String
    public let site: String
    public let field: String
    public let value: JSONValue
    public let status: Status
    public let note: String?
    /// When this replica received the change (its own wall clock, Unix ms).
    public let received: Int64
}

// MARK: - ConflictInfo

/// An open conflict with everything needed to show it: the competing writes, their authors
/// and replicas, and which one wins everywhere.
public struct ConflictInfo: Sendable {
    public struct Candidate: Sendable {
        public let change: ChangeID
        public let hlc: HybridTimestamp
        public let author: String
        public let site: String
        public let field: String
        public let value: JSONValue
        public let wins: Bool
        /// The note kept with the change, if any.
        public let note: String?
        /// True when this candidate was itself a conflict resolution (two resolutions competing).
        public let isResolution: Bool
        /// When this replica received it (its own clock).
        public let received: Int64
    }

    public let kind: RecordKind
    public let row: String
    public let field: String
    public let type: RowConflict.Kind
    /// When the conflict arose (ms of the write that made the values disagree).
    public let since: Int64
    public let village: String?
    /// The competing writes, winner first; for delete-versus-edit, the deletes then the unseen edits.
    public let candidates: [Candidate]

    /// `3f2a9c1b…/status`: how the CLI names a conflict.
    public var key: String { "\(row)/\(field)" }
}

// MARK: - Reading

extension Replica {
    public func record(_ idOrPrefix: String) throws -> Record {
        let (kind, id) = try resolve(idOrPrefix)
        return try read { db in RecordViews.record(kind, id, try loadRow(db, kind, id).state) }
    }

    /// The merge state of a record (nil if this replica has never heard of it).
    public func rowState(_ kind: RecordKind, _ id: String) throws -> RowState? {
        try read { db in
            let row = try loadRow(db, kind, id)
            return row.rid == nil ? nil : row.state
        }
    }

    /// Records of a kind, optionally those whose division code starts with `villagePrefix`, in id
    /// order (by place, then creation time) — the same order on every replica.
    public func records(_ kind: RecordKind, villagePrefix: String? = nil, includeDeleted: Bool = false, limit: Int? = nil) throws -> [Record] {
        let spec = kind.spec
        let t = SQLLayout.table(kind)
        var conds: [String] = []
        var args: [DatabaseValueConvertible] = []
        if let p = villagePrefix, !p.isEmpty {
            let col = spec.regionField ?? "id"
            conds.append("\(col) >= ? AND \(col) < ?")
            args += [p, p + "~"]
        }
        if !includeDeleted { conds.append("_deleted = 0") }
        let sql = """
            SELECT id, \(spec.fields.map(\.name).joined(separator: ", ")), _deleted,
              (SELECT group_concat(field, ',') FROM fs_conflict c WHERE c.kind = '\(kind.rawValue)' AND c.row = t.id)
            FROM \(t) t \(conds.isEmpty ? "" : "WHERE " + conds.joined(separator: " AND ")) ORDER BY id
            \(limit.map { "LIMIT \($0)" } ?? "")
            """
        return try read { db in
            let st = try db.makeStatement(sql: sql)
            try st.setArguments(StatementArguments(args))
            var out: [Record] = []
            let n = Int32(spec.fields.count)
            while try st.step(db) {
                var values: [FieldValue] = []
                for i in 0..<n { values.append(st.value(i + 1)) }
                let conflicts = st.isNull(n + 2) ? [] : st.text(n + 2).split(separator: ",").map(String.init)
                out.append(Record(kind: kind, id: st.text(0), values: values, deleted: st.int64(n + 1) != 0, conflicts: conflicts.sorted()))
            }
            return out
        }
    }

    /// Every value each field of a record ever had here, oldest first.
    public func history(_ idOrPrefix: String) throws -> (Record, [HistoryEntry]) {
        let rec = try record(idOrPrefix)
        let entries: [HistoryEntry] = try read { db in
            let row = try loadRow(db, rec.kind, rec.id)
            let names = try siteNames(db)
            let logged = try logged(db, row.log)
            // Pruned changes first (they are the oldest): who and when, without values.
            let pruned = logged.pruned.sorted { $0.hlc < $1.hlc }.map {
                HistoryEntry(change: $0.id, hlc: $0.hlc, author: $0.author, site: names[$0.id.site] ?? $0.id.site.hex,
                             field: "", value: .null, status: .pruned, note: nil, received: $0.received)
            }
            return pruned + RecordViews.history(rec.kind, row.state, logged.changes, names: names)
        }
        return (rec, entries)
    }

    /// A logged change whose text was pruned: who made it and when.
    struct PrunedLog {
        let id: ChangeID
        let hlc: HybridTimestamp
        let author: String
        let received: Int64
    }

    /// The changes a record logged, decoded, with when they arrived; those whose text was
    /// pruned (``pruneHistory(windowMs:requireAcknowledged:)``) apart, as who and when.
    func logged(_ db: Database, _ log: [RowLogEntry]) throws -> (changes: [RecordViews.Logged], pruned: [PrunedLog]) {
        var changes: [RecordViews.Logged] = [], pruned: [PrunedLog] = []
        let st = try db.cachedStatement(sql: "SELECT body, received, hlc, author FROM fs_change WHERE seq = ?")
        for l in log {
            guard let r = try Row.fetchOne(st, arguments: [l.seq]) else { continue }
            let body: String = r["body"]
            if body.isEmpty {
                pruned.append(PrunedLog(id: l.id, hlc: HybridTimestamp(packed: r["hlc"]), author: r["author"], received: r["received"]))
            } else {
                changes.append(.init(change: try ChangeCodec.decode(JSONValue.parse(body)), received: r["received"]))
            }
        }
        return (changes, pruned)
    }

    func siteNames(_ db: Database) throws -> [SiteID: String] {
        var out: [SiteID: String] = [:]
        for r in try Row.fetchAll(db, sql: "SELECT id, name FROM fs_site") {
            let id = SiteID(raw: UInt64(bitPattern: r["id"] as Int64))
            let name: String = r["name"]
            out[id] = name.isEmpty ? id.hex : name
        }
        return out
    }

    /// The names of just these sites (a page names only the sites whose changes it carries).
    public func siteNames(_ ids: Set<SiteID>) throws -> [SiteID: String] {
        try read { db in
            var out: [SiteID: String] = [:]
            let st = try db.cachedStatement(sql: "SELECT name FROM fs_site WHERE id = ?")
            for id in ids {
                st.begin()
                st.bind(1, Int64(bitPattern: id.raw))
                if try st.step(db) {
                    let name = st.text(0)
                    out[id] = name.isEmpty ? id.hex : name
                }
            }
            st.begin()
            return out
        }
    }

    /// Every open conflict, oldest first.
    public func conflicts() throws -> [ConflictInfo] {
        try read { db in
            let names = try siteNames(db)
            var out: [ConflictInfo] = []
            for r in try Row.fetchAll(db, sql: "SELECT kind, row, field, since FROM fs_conflict ORDER BY since, kind, row, field") {
                guard let kind = RecordKind(rawValue: r["kind"]) else { continue }
                let id: String = r["row"]
                let field: String = r["field"]
                if let info = try conflictInfo(db, kind: kind, id: id, field: field, since: r["since"], names: names) { out.append(info) }
            }
            return out
        }
    }

    /// One open conflict with its candidates, or nil when the record has no such conflict now.
    func conflictInfo(_ db: Database, kind: RecordKind, id: String, field: String, since: Int64?, names: [SiteID: String]) throws -> ConflictInfo? {
        let loaded = try loadRow(db, kind, id)
        guard let c = loaded.state.conflicts.first(where: { $0.field == field }) else { return nil }
        let dots = Set(c.entries.map(\.dot) + c.edits.map(\.entry.dot))
        let competing = try logged(db, loaded.log.filter { dots.contains($0.id) }).changes
        return RecordViews.conflictInfo(kind, id, field: field, loaded.state, since: since,
                                        logged: Dictionary(competing.map { ($0.change.id, $0) }, uniquingKeysWith: { a, _ in a }), names: names)
    }

    // MARK: Knowledge

    /// Which changes this replica holds: per site, ranges of counters. Another replica uses
    /// it to export exactly what this one lacks.
    public func knowledge() throws -> Knowledge {
        try read { db in
            var k = Knowledge()
            let st = try db.makeStatement(sql: "SELECT site, counter FROM fs_change ORDER BY site, counter")
            while try st.step(db) {
                k.insert(ChangeID(site: SiteID(raw: UInt64(bitPattern: st.int64(0))), counter: st.int64(1)))
            }
            return k
        }
    }
}

// MARK: - Knowledge

/// A set of change ids, stored as ranges of counters per site.
public struct Knowledge: Sendable, Equatable {
    public private(set) var ranges: [SiteID: [ClosedRange<Int64>]] = [:]

    public init() {}

    public func contains(_ id: ChangeID) -> Bool {
        guard let rs = ranges[id.site] else { return false }
        var lo = 0, hi = rs.count - 1
        while lo <= hi {
            let mid = (lo + hi) / 2
            if rs[mid].contains(id.counter) { return true }
            if rs[mid].lowerBound > id.counter { hi = mid - 1 } else { lo = mid + 1 }
        }
        return false
    }

    /// Adds an id. Ids added in increasing order per site extend the last range cheaply.
    public mutating func insert(_ id: ChangeID) {
        var rs = ranges[id.site] ?? []
        if let last = rs.last, id.counter > last.upperBound {
            if id.counter == last.upperBound + 1 { rs[rs.count - 1] = last.lowerBound...id.counter } else { rs.append(id.counter...id.counter) }
        } else if rs.isEmpty {
            rs = [id.counter...id.counter]
        } else if !contains(id) {
            rs.append(id.counter...id.counter)
            rs.sort { $0.lowerBound < $1.lowerBound }
            var merged: [ClosedRange<Int64>] = []
            for r in rs {
                if let m = merged.last, r.lowerBound <= m.upperBound + 1 {
                    merged[merged.count - 1] = m.lowerBound...max(m.upperBound, r.upperBound)
                } else { merged.append(r) }
            }
            rs = merged
        }
        ranges[id.site] = rs
    }

    public var count: Int64 { ranges.values.reduce(0) { $0 + $1.reduce(0) { $0 + $1.upperBound - $1.lowerBound + 1 } } }

    /// `{"9f3c…":[[1,120],[130,131]], …}`
    public var json: JSONValue {
        .object(JSONObject(ranges.sorted { $0.key < $1.key }.map { site, rs in
            (site.hex, JSONValue.array(rs.map { .array([.int($0.lowerBound), .int($0.upperBound)]) }))
        }))
    }

    public init(json: JSONValue) throws(InputError) {
        guard case .object(let o) = json else { throw InputError("knowledge", "expected an object of site → [[from, to], …]") }
        for (k, v) in o {
            guard let site = SiteID(hex: k), case .array(let items) = v else {
                throw InputError("knowledge", "entry \"\(k.prefix(40))\" is not site → [[from, to], …]")
            }
            for item in items {
                guard case .array(let pair) = item, pair.count == 2, case .int(let a) = pair[0], case .int(let b) = pair[1],
                      a >= 1, b >= a, b - a < 1 << 40 else {
                    throw InputError("knowledge.\(k)", "each range is [from, to] with 1 ≤ from ≤ to")
                }
                var rs = ranges[site] ?? []
                rs.append(a...b)
                ranges[site] = rs.sorted { $0.lowerBound < $1.lowerBound }
            }
        }
    }
}

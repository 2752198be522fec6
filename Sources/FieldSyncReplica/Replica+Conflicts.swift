import FieldSyncCore
import GRDB

// MARK: - ConflictFilter

/// Which conflicts to list or settle: every condition given must hold.
public struct ConflictFilter: Sendable {
    public var kind: RecordKind?
    /// The record's division code starts with this (a village, a township, a supervisor's scope).
    public var villagePrefix: String?
    /// A field name (`status`), or `_record` / `_deleted`.
    public var field: String?
    /// Some competing write was made by this author (exact name).
    public var author: String?
    /// Open for at least / at most this long (ms).
    public var olderThan: Int64?
    public var newerThan: Int64?

    public init(kind: RecordKind? = nil, villagePrefix: String? = nil, field: String? = nil, author: String? = nil,
                olderThan: Int64? = nil, newerThan: Int64? = nil) {
        self.kind = kind
        self.villagePrefix = villagePrefix
        self.field = field
        self.author = author
        self.olderThan = olderThan
        self.newerThan = newerThan
    }

    public func matches(_ c: ConflictInfo, now: Int64) -> Bool {
        if let k = kind, c.kind != k { return false }
        if let p = villagePrefix, !(c.village ?? c.row).hasPrefix(p) { return false }
        if let f = field, c.field != f { return false }
        if let a = author, !c.candidates.contains(where: { $0.author == a }) { return false }
        if let o = olderThan, now - c.since < o { return false }
        if let n = newerThan, now - c.since > n { return false }
        return true
    }
}

// MARK: - ConflictDetail

/// Everything `conflicts show` tells about one conflict.
public struct ConflictDetail: Sendable {
    public let info: ConflictInfo
    public let record: Record
    /// The value(s) every competing write had seen: where they started from (nil when this
    /// replica's history does not have it, e.g. after a snapshot).
    public let base: [ConflictInfo.Candidate]?
    /// Why the winner wins, in words (the same on every replica).
    public let why: String
    /// How far ahead of the others the winner's clock reading is, when suspiciously far (ms).
    public let winnerAheadBy: Int64?
}

/// How to settle a conflict.
public enum Resolution: Sendable, Equatable {
    /// Keep one competing value (or, for a delete versus edits, the delete or the edits).
    case take(ChangeID)
    /// A new value, e.g. two notes merged by hand.
    case value(JSONValue)
    /// The competing value with the latest (or earliest) clock reading.
    case newest, oldest
}

// MARK: - ConflictSummary

public struct ConflictSummary: Sendable {
    public var total = 0
    public var byKind: [(kind: RecordKind, count: Int)] = []
    public var byVillage: [(village: String, count: Int)] = []
    public var byField: [(kind: RecordKind, field: String, count: Int)] = []
    /// Open less than a day, 1–7 days, 7–30 days, more than 30 days.
    public var ageBuckets: [(label: String, count: Int)] = []
    public var oldestSince: Int64?
    public var medianAgeMs: Int64?

    public init() {}

    public var json: JSONValue {
        .object(JSONObject([
            ("total", .int(Int64(total))),
            ("byKind", .object(JSONObject(byKind.map { ($0.kind.rawValue, JSONValue.int(Int64($0.count))) }))),
            ("byVillage", .object(JSONObject(byVillage.map { ($0.village, JSONValue.int(Int64($0.count))) }))),
            ("byField", .array(byField.map { .object(JSONObject([("kind", .string($0.kind.rawValue)), ("field", .string($0.field)), ("count", .int(Int64($0.count)))])) })),
            ("ages", .object(JSONObject(ageBuckets.map { ($0.label, JSONValue.int(Int64($0.count))) }))),
            ("oldestSince", oldestSince.map { .string(UTCTime.iso($0)) } ?? .null),
            ("medianAgeHours", medianAgeMs.map { .double(Double($0) / 3_600_000) } ?? .null),
        ]))
    }
}

// MARK: - Inspecting and settling conflicts

extension Replica {
    /// Open conflicts matching `filter`, oldest first.
    public func conflicts(matching filter: ConflictFilter) throws -> [ConflictInfo] {
        let now = self.now
        return try conflicts().filter { filter.matches($0, now: now) }
    }

    /// Finds a conflict by its id `ROW/FIELD`, where ROW may be any form `record get` accepts;
    /// with a `scope`, only among records in it (``resolve(_:includeDeleted:scope:)``).
    public func findConflict(_ text: String, scope: String = "") throws -> (RecordKind, String, String) {
        let (record, field) = try RecordLookup.conflictKey(text)
        let (kind, id) = try resolve(record, scope: scope)
        return (kind, id, field)
    }

    public func conflictDetail(_ text: String, scope: String = "") throws -> ConflictDetail {
        let (kind, id, field) = try findConflict(text, scope: scope)
        return try read { db in
            let names = try siteNames(db)
            guard let info = try conflictInfo(db, kind: kind, id: id, field: field, since: nil, names: names) else {
                throw RecordLookup.noOpenConflict(id, field)
            }
            let since = try Int64.fetchOne(db, sql: "SELECT since FROM fs_conflict WHERE kind = ? AND row = ? AND field = ?",
                                           arguments: [kind.rawValue, id, field]) ?? info.since
            let detailed = ConflictInfo(kind: info.kind, row: info.row, field: info.field, type: info.type, since: since,
                                        village: info.village, candidates: info.candidates)
            let row = try loadRow(db, kind, id)
            let record = Record(kind: kind, id: id, values: row.state.registers.dropLast().map(\.value), deleted: row.state.isDeleted,
                                conflicts: row.state.conflicts.map(\.field))
            let base = info.type == .concurrentValues ? RecordViews.base(kind, field: field, row.state, logged: try logged(db, row.log).changes, names: names) : nil
            let (why, ahead) = RecordViews.explainWinner(detailed, maxDrift: maxDrift)
            return ConflictDetail(info: detailed, record: record, base: base, why: why, winnerAheadBy: ahead)
        }
    }

    /// Settles one conflict with an ordinary change that covers every competing write; it syncs
    /// like any edit, and records which writes it settled. Other fields are not touched.
    @discardableResult
    public func resolveConflict(_ text: String, _ how: Resolution, author: String? = nil, note: String? = nil, scope: String = "") throws -> EditResult {
        let (kind, id, field) = try findConflict(text, scope: scope)
        return try write { db in try resolveOne(db, kind: kind, id: id, field: field, how, author: author, note: note) }
    }

    /// Settles every conflict matching `filter` by taking the newest (or oldest) value, in one transaction.
    public func resolveConflicts(matching filter: ConflictFilter, _ how: Resolution, author: String? = nil, note: String? = nil) throws -> [EditResult] {
        try RecordLookup.checkBulk(how)
        let targets = try conflicts(matching: filter)
        return try write { db in
            try targets.map { try resolveOne(db, kind: $0.kind, id: $0.row, field: $0.field, how, author: author, note: note) }
        }
    }

    func resolveOne(_ db: Database, kind: RecordKind, id: String, field: String, _ how: Resolution, author: String?, note: String?) throws -> EditResult {
        let row = try loadRow(db, kind, id)
        let before = Set(row.state.conflicts.map(\.field))
        let plan = try RecordViews.settling(kind, id, field: field, row.state, how, note: note)
        let c = Change(id: nextChangeID(), kind: kind, row: id, hlc: clock.tick(wall: now), author: author ?? self.author,
                       writes: plan.writes, rowContext: plan.rowContext, note: plan.note, resolves: plan.settles)
        var report = ApplyReport()
        try applyOne(db, c, local: true, preloaded: row, report: &report)
        let after = try Set(loadRow(db, kind, id).state.conflicts.map(\.field))
        return EditResult(id: id, kind: kind, change: c.id, fieldsChanged: plan.writes.map(\.field), conflictsSettled: before.subtracting(after).sorted())
    }

    /// How many conflicts are open, where, on what, and for how long.
    public func conflictSummary(matching filter: ConflictFilter = ConflictFilter()) throws -> ConflictSummary {
        RecordViews.summary(try conflicts(matching: filter), now: now)
    }
}

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
        guard let slash = text.lastIndex(of: "/") else {
            throw ReplicaError.invalidInput(InputError("conflict", "a conflict id is RECORD/FIELD, e.g. 3f2a9c1b/status (see fieldsync conflicts list), got \"\(text.prefix(60))\""))
        }
        let (kind, id) = try resolve(String(text[..<slash]), scope: scope)
        return (kind, id, String(text[text.index(after: slash)...]))
    }

    public func conflictDetail(_ text: String, scope: String = "") throws -> ConflictDetail {
        let (kind, id, field) = try findConflict(text, scope: scope)
        return try read { db in
            let names = try siteNames(db)
            guard let info = try conflictInfo(db, kind: kind, id: id, field: field, since: nil, names: names) else {
                throw ReplicaError.notFound("\(RecordID.short(id))/\(field): no open conflict (settled already, or never was)")
            }
            let since = try Int64.fetchOne(db, sql: "SELECT since FROM fs_conflict WHERE kind = ? AND row = ? AND field = ?",
                                           arguments: [kind.rawValue, id, field]) ?? info.since
            let detailed = ConflictInfo(kind: info.kind, row: info.row, field: info.field, type: info.type, since: since,
                                        village: info.village, candidates: info.candidates)
            let row = try loadRow(db, kind, id)
            let record = Record(kind: kind, id: id, values: row.state.registers.dropLast().map(\.value), deleted: row.state.isDeleted,
                                conflicts: row.state.conflicts.map(\.field))
            let base = info.type == .concurrentValues ? try baseOf(db, row: row, field: field, names: names) : nil
            let (why, ahead) = explainWinner(detailed)
            return ConflictDetail(info: detailed, record: record, base: base, why: why, winnerAheadBy: ahead)
        }
    }

    /// The writes to `field` that every competing write had seen, latest first: where they started.
    func baseOf(_ db: Database, row: LoadedRow, field: String, names: [SiteID: String]) throws -> [ConflictInfo.Candidate]? {
        guard let reg = row.state[field], reg.entries.count > 1 else { return nil }
        var common: [(Change, FieldWrite, Int64)] = []
        for l in row.log {
            guard let r = try Row.fetchOne(db, sql: "SELECT body, received FROM fs_change WHERE seq = ?", arguments: [l.seq]),
                  let c = try? ChangeCodec.decode(JSONValue.parse(r["body"] as String)),
                  let w = c.writes.first(where: { $0.field == field })
            else { continue }
            if reg.entries.allSatisfy({ $0.context.covers(c.id) }) { common.append((c, w, r["received"])) }
        }
        // The latest common write(s): those no other common write had seen.
        let latest = common.filter { x in !common.contains { y in y.0.id != x.0.id && y.1.context.covers(x.0.id) } }
        guard !latest.isEmpty else { return nil }
        return latest.map { c, w, received in
            .init(change: c.id, hlc: c.hlc, author: c.author, site: names[c.id.site] ?? c.id.site.hex, field: field,
                  value: jsonValue(row.state.kind, w), wins: false, note: c.note, isResolution: c.resolves != nil, received: received)
        }
    }

    /// Why the winner wins: every replica orders competing writes by clock reading, then site id.
    func explainWinner(_ c: ConflictInfo) -> (String, Int64?) {
        let competing = c.type == .deleteVersusEdit ? c.candidates.filter { $0.field == RowState.deletedField } : c.candidates
        guard let w = c.candidates.first(where: \.wins) ?? competing.first else { return ("", nil) }
        if c.type == .deleteVersusEdit {
            let deleted = w.field == RowState.deletedField
            return (deleted
                ? "记录目前是删除状态：删除未看到这些修改；保留修改请恢复记录 (--take 某条修改)，确认删除请 --take 删除"
                : "记录目前未删除 (恢复的操作胜出)；修改都保留着", nil)
        }
        let others = competing.filter { $0.change != w.change }
        guard let next = others.max(by: { $0.hlc < $1.hlc }) else { return ("", nil) }
        let ahead = w.hlc.millis - next.hlc.millis
        if w.hlc.millis != next.hlc.millis {
            let suspicious = ahead > maxDrift ? ahead : nil
            return ("所有副本按 (时间, 站点编号) 选出同一个值：胜出的修改时间 \(UTCTime.iso(w.hlc.millis)) 晚于其他候选"
                    + (suspicious != nil ? "（⚠ 晚了 \(ahead / 86_400_000) 天以上：可能来自时钟不准的设备）" : ""), suspicious)
        }
        return ("两个修改的时间相同，站点编号较大者胜出 (\(w.change.site.hex) > \(next.change.site.hex))", nil)
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
        guard how == .newest || how == .oldest else {
            throw ReplicaError.invalidInput(InputError("resolve", "settling many conflicts at once takes --take-newest or --take-oldest"))
        }
        let targets = try conflicts(matching: filter)
        return try write { db in
            try targets.map { try resolveOne(db, kind: $0.kind, id: $0.row, field: $0.field, how, author: author, note: note) }
        }
    }

    func resolveOne(_ db: Database, kind: RecordKind, id: String, field: String, _ how: Resolution, author: String?, note: String?) throws -> EditResult {
        let row = try loadRow(db, kind, id)
        guard let conflict = row.state.conflicts.first(where: { $0.field == field }) else {
            throw ReplicaError.wrongState("\(kind.spec.label) \(RecordID.short(id)) has no open conflict on \(field) (settled already?)")
        }
        let dots = conflict.dots
        var writes: [FieldWrite]
        var rowContext: [String: VersionVector]?
        var how_: String
        let before = Set(row.state.conflicts.map(\.field))
        switch conflict.kind {
        case .concurrentValues:
            let reg = row.state[field]!
            let value: FieldValue
            switch how {
            case .take(let dot):
                guard let e = reg.entries.first(where: { $0.dot == dot }) else {
                    throw ReplicaError.invalidInput(InputError("--take", "\(dot) is not one of the competing writes: " + reg.entries.map(\.dot.description).joined(separator: ", ")))
                }
                value = e.value
                how_ = "采用 \(dot) 的值"
            case .value(let json):
                if field == RowState.deletedField {
                    guard case .bool(let b) = json else { throw ReplicaError.invalidInput(InputError("--value", "the deletion state is true or false")) }
                    value = .integer(b ? 1 : 0)
                } else {
                    let spec = kind.spec.field(field)!
                    do throws(InputError) { value = try spec.decode(json) } catch {
                        throw ReplicaError.invalidInput(InputError(spec.location(in: kind), error.reason))
                    }
                }
                how_ = "写入新值"
            case .newest, .oldest:
                let sorted = reg.entries.sorted(by: RegisterEntry.winsOver)
                value = (how == .newest ? sorted.first : sorted.last)!.value
                how_ = how == .newest ? "采用最新的值" : "采用最早的值"
            }
            writes = [FieldWrite(field: field, value: value, context: reg.context)]
            if field == RowState.deletedField, value == .integer(1) { rowContext = row.state.rowContext }
        case .deleteVersusEdit:
            let deletes = conflict.entries
            let edits = conflict.edits.map(\.entry)
            let keepDeleted: Bool
            switch how {
            case .take(let dot):
                if deletes.contains(where: { $0.dot == dot }) { keepDeleted = true } else if edits.contains(where: { $0.dot == dot }) { keepDeleted = false } else {
                    throw ReplicaError.invalidInput(InputError("--take", "\(dot) is neither the delete nor one of the edits: " + dots.map(\.description).joined(separator: ", ")))
                }
            case .newest, .oldest:
                let d = deletes.map(\.hlc).max()!, e = edits.map(\.hlc).max()!
                keepDeleted = how == .newest ? d > e : d < e
            case .value:
                throw ReplicaError.invalidInput(InputError("--value", "a delete versus edits is settled with --take: the delete (delete again, having seen the edits) or an edit (undelete, keeping them)"))
            }
            let reg = row.state[RowState.deletedField]!
            writes = [FieldWrite(field: RowState.deletedField, value: .integer(keepDeleted ? 1 : 0), context: reg.context)]
            if keepDeleted { rowContext = row.state.rowContext }
            how_ = keepDeleted ? "确认删除（已看到这些修改）" : "恢复记录，保留修改"
        }
        let text = "解决冲突 resolved \(Self.fieldWord(kind, field)): \(how_)" + (note.map { "。\($0)" } ?? "")
        let c = Change(id: nextChangeID(), kind: kind, row: id, hlc: clock.tick(wall: now), author: author ?? self.author,
                       writes: writes, rowContext: rowContext, note: String(text.prefix(ChangeCodec.maxNoteLength)), resolves: dots)
        var report = ApplyReport()
        try applyOne(db, c, local: true, preloaded: row, report: &report)
        let after = try Set(loadRow(db, kind, id).state.conflicts.map(\.field))
        return EditResult(id: id, kind: kind, change: c.id, fieldsChanged: writes.map(\.field), conflictsSettled: before.subtracting(after).sorted())
    }

    static func fieldWord(_ kind: RecordKind, _ field: String) -> String {
        switch field {
        case RowState.recordConflictField: return "删除与修改"
        case RowState.deletedField: return "删除状态"
        default: return kind.spec.field(field)?.label ?? field
        }
    }

    /// How many conflicts are open, where, on what, and for how long.
    public func conflictSummary(matching filter: ConflictFilter = ConflictFilter()) throws -> ConflictSummary {
        let list = try conflicts(matching: filter)
        let now = self.now
        var s = ConflictSummary()
        s.total = list.count
        s.byKind = RecordKind.allCases.compactMap { k in let n = list.filter { $0.kind == k }.count; return n > 0 ? (k, n) : nil }
        var villages: [String: Int] = [:]
        var fields: [String: (RecordKind, String, Int)] = [:]
        for c in list {
            villages[c.village ?? "—", default: 0] += 1
            fields["\(c.kind.rawValue)/\(c.field)", default: (c.kind, c.field, 0)].2 += 1
        }
        s.byVillage = villages.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.map { ($0.key, $0.value) }
        s.byField = fields.values.sorted { $0.2 != $1.2 ? $0.2 > $1.2 : ($0.0, $0.1) < ($1.0, $1.1) }.map { ($0.0, $0.1, $0.2) }
        let day: Int64 = 86_400_000
        let ages = list.map { max(0, now - $0.since) }
        s.ageBuckets = [("<1d", ages.filter { $0 < day }.count), ("1-7d", ages.filter { $0 >= day && $0 < 7 * day }.count),
                        ("7-30d", ages.filter { $0 >= 7 * day && $0 < 30 * day }.count), (">30d", ages.filter { $0 >= 30 * day }.count)]
        s.oldestSince = list.map(\.since).min()
        s.medianAgeMs = ages.isEmpty ? nil : ages.sorted()[ages.count / 2]
        return s
    }
}

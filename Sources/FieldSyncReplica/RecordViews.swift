import FieldSyncCore

// MARK: - RecordViews

/// What people see of a record — its values, its history, its conflicts and how to settle one —
/// computed from the record's merge state and the changes it logged, with no storage in sight.
/// The laptop's replica, the hub's SQLite store and its PostgreSQL store load those and ask
/// these functions, so every one shows the same thing.
package enum RecordViews {
    /// A change as a store logged it.
    package struct Logged: Sendable {
        package let change: Change
        /// When this store received it (its own clock).
        package let received: Int64

        package init(change: Change, received: Int64) {
            self.change = change
            self.received = received
        }
    }

    package static func record(_ kind: RecordKind, _ id: String, _ state: RowState) -> Record {
        Record(kind: kind, id: id, values: state.registers.dropLast().map(\.value), deleted: state.isDeleted, conflicts: state.conflicts.map(\.field))
    }

    package static func jsonValue(_ kind: RecordKind, _ w: FieldWrite) -> JSONValue {
        if w.field == RowState.deletedField { return .bool(w.value == .integer(1)) }
        return kind.spec.field(w.field)?.encode(w.value) ?? .null
    }

    /// Every value each field had, oldest first (by clock reading, then id).
    package static func history(_ kind: RecordKind, _ state: RowState, _ logged: [Logged], names: [SiteID: String]) -> [HistoryEntry] {
        var out: [HistoryEntry] = []
        for l in logged.sorted(by: { ($0.change.hlc, $0.change.id) < ($1.change.hlc, $1.change.id) }) {
            let c = l.change
            for w in c.writes {
                let reg = state[w.field]
                let status: HistoryEntry.Status
                if reg?.winner?.dot == c.id {
                    status = .current
                } else if reg?.entries.contains(where: { $0.dot == c.id }) == true {
                    status = .competing
                } else {
                    status = .superseded
                }
                out.append(HistoryEntry(change: c.id, hlc: c.hlc, author: c.author, site: names[c.id.site] ?? c.id.site.hex,
                                        field: w.field, value: jsonValue(kind, w), status: status, note: c.note, received: l.received))
            }
        }
        return out
    }

    /// One open conflict with its candidates, or nil when the record has no such conflict now.
    /// `logged` needs to hold at least the competing changes.
    package static func conflictInfo(_ kind: RecordKind, _ id: String, field: String, _ state: RowState, since: Int64?,
                                     logged: [ChangeID: Logged], names: [SiteID: String]) -> ConflictInfo? {
        guard let c = state.conflicts.first(where: { $0.field == field }) else { return nil }
        func candidate(_ f: String, _ e: RegisterEntry, wins: Bool) -> ConflictInfo.Candidate {
            let l = logged[e.dot]
            return .init(change: e.dot, hlc: e.hlc, author: l?.change.author ?? "?", site: names[e.dot.site] ?? e.dot.site.hex, field: f,
                         value: jsonValue(kind, FieldWrite(field: f, value: e.value)), wins: wins, note: l?.change.note,
                         isResolution: l?.change.resolves != nil, received: l?.received ?? 0)
        }
        var cands: [ConflictInfo.Candidate] = []
        let deletedWins = state.isDeleted
        for (i, e) in c.entries.enumerated() {
            cands.append(candidate(c.kind == .deleteVersusEdit ? RowState.deletedField : c.field, e,
                                   wins: c.kind == .deleteVersusEdit ? deletedWins && i == 0 : i == 0))
        }
        for (f, e) in c.edits { cands.append(candidate(f, e, wins: !deletedWins)) }
        let village = kind.spec.regionField.flatMap { state[$0]?.value.text } ?? (kind == .region ? id : RecordID.region(of: id))
        return ConflictInfo(kind: kind, row: id, field: field, type: c.kind, since: since ?? c.openedAt.millis, village: village, candidates: cands)
    }

    /// The writes to `field` that every competing write had seen, latest first: where they started.
    package static func base(_ kind: RecordKind, field: String, _ state: RowState, logged: [Logged], names: [SiteID: String]) -> [ConflictInfo.Candidate]? {
        guard let reg = state[field], reg.entries.count > 1 else { return nil }
        var common: [(Change, FieldWrite, Int64)] = []
        for l in logged {
            guard let w = l.change.writes.first(where: { $0.field == field }) else { continue }
            if reg.entries.allSatisfy({ $0.context.covers(l.change.id) }) { common.append((l.change, w, l.received)) }
        }
        // The latest common write(s): those no other common write had seen.
        let latest = common.filter { x in !common.contains { y in y.0.id != x.0.id && y.1.context.covers(x.0.id) } }
        guard !latest.isEmpty else { return nil }
        return latest.map { c, w, received in
            .init(change: c.id, hlc: c.hlc, author: c.author, site: names[c.id.site] ?? c.id.site.hex, field: field,
                  value: jsonValue(kind, w), wins: false, note: c.note, isResolution: c.resolves != nil, received: received)
        }
    }

    /// Why the winner wins: every replica orders competing writes by clock reading, then site id.
    package static func explainWinner(_ c: ConflictInfo, maxDrift: Int64) -> (String, Int64?) {
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
            // No time written here: the views show each candidate's time in the reader's zone.
            return ("所有副本按 (时间, 站点编号) 选出同一个值：胜出的修改时间晚于其他候选（晚 \(Self.span(ahead))）"
                    + (suspicious != nil ? "（⚠ 晚了 \(ahead / 86_400_000) 天以上：可能来自时钟不准的设备）" : ""), suspicious)
        }
        return ("两个修改的时间相同，站点编号较大者胜出 (\(w.change.site.hex) > \(next.change.site.hex))", nil)
    }

    /// A time difference for people: 45 秒, 12 分钟, 3 小时, 5 天.
    static func span(_ ms: Int64) -> String {
        let s = ms.magnitude / 1000
        if s < 60 { return "\(ms.magnitude < 1000 ? "不到 1" : String(s)) 秒" }
        if s < 3600 { return "\(s / 60) 分钟" }
        if s < 86_400 { return "\(s / 3600) 小时" }
        return "\(s / 86_400) 天"
    }

    /// The writes that settle the conflict on `field` as `how` says: they cover every competing
    /// write, so the settling is an ordinary change. Returns the writes, the delete's row context
    /// (when the settling deletes), the changes it settles, and the note saying how.
    package static func settling(_ kind: RecordKind, _ id: String, field: String, _ state: RowState, _ how: Resolution, note: String?) throws
        -> (writes: [FieldWrite], rowContext: [String: VersionVector]?, settles: [ChangeID], note: String) {
        guard let conflict = state.conflicts.first(where: { $0.field == field }) else {
            throw ReplicaError.wrongState("\(kind.spec.label) \(RecordID.short(id)) 的“\(kind.spec.field(field)?.label ?? field)”没有未解决的冲突，可能已被处理 (no open conflict on \(field): settled already?)")
        }
        let dots = conflict.dots
        var writes: [FieldWrite]
        var rowContext: [String: VersionVector]?
        var how_: String
        switch conflict.kind {
        case .concurrentValues:
            let reg = state[field]!
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
            if field == RowState.deletedField, value == .integer(1) { rowContext = state.rowContext }
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
            let reg = state[RowState.deletedField]!
            writes = [FieldWrite(field: RowState.deletedField, value: .integer(keepDeleted ? 1 : 0), context: reg.context)]
            if keepDeleted { rowContext = state.rowContext }
            how_ = keepDeleted ? "确认删除（已看到这些修改）" : "恢复记录，保留修改"
        }
        let text = "解决冲突 resolved \(fieldWord(kind, field)): \(how_)" + (note.map { "。\($0)" } ?? "")
        return (writes, rowContext, dots, String(text.prefix(ChangeCodec.maxNoteLength)))
    }

    package static func fieldWord(_ kind: RecordKind, _ field: String) -> String {
        switch field {
        case RowState.recordConflictField: return "删除与修改"
        case RowState.deletedField: return "删除状态"
        default: return kind.spec.field(field)?.label ?? field
        }
    }

    /// How many conflicts are open, where, on what, and for how long.
    package static func summary(_ list: [ConflictInfo], now: Int64) -> ConflictSummary {
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

// Other stores of the package (the hub's PostgreSQL store) make these as the replica does.
extension ConflictDetail {
    package init(_ info: ConflictInfo, record: Record, base: [ConflictInfo.Candidate]?, why: String, winnerAheadBy: Int64?) {
        self.init(info: info, record: record, base: base, why: why, winnerAheadBy: winnerAheadBy)
    }
}

extension ConflictInfo {
    /// The same conflict, open since `since`.
    package func opened(since: Int64) -> ConflictInfo {
        ConflictInfo(kind: kind, row: row, field: field, type: type, since: since, village: village, candidates: candidates)
    }
}

extension EditResult {
    package init(_ id: String, _ kind: RecordKind, change: ChangeID?, fieldsChanged: [String], conflictsSettled: [String]) {
        self.init(id: id, kind: kind, change: change, fieldsChanged: fieldsChanged, conflictsSettled: conflictsSettled)
    }
}

extension Record {
    package init(_ kind: RecordKind, _ id: String, values: [FieldValue], deleted: Bool, conflicts: [String]) {
        self.init(kind: kind, id: id, values: values, deleted: deleted, conflicts: conflicts)
    }
}

import FieldSyncCore
import Foundation
import GRDB

// MARK: - Re-making what a clone wrote

extension Replica {
    /// The hub refused these changes of this replica as clones: another copy of the replica (a
    /// disk image restored in place, which the home check cannot see) had written other changes
    /// under the same ids first, and the replica has taken a new site id since (issue 12 point 8).
    ///
    /// Each is taken out of its record — the record's registers are rebuilt from the other
    /// changes it holds, so the id can later arrive with the hub's content and merge like any
    /// change — and made again under the current site: the same values, author and note, for
    /// the fields it still held. Its `seen` is what the original had seen, except what the other
    /// copy wrote under the shared ids (this replica never saw those), plus the changes re-made
    /// before it. Nothing is lost and nothing is counted twice: the hub keeps the other copy's
    /// change, and this copy's edit arrives as a new one beside it (a conflict when both wrote
    /// one field). Returns the new changes' ids.
    @discardableResult
    public func remakeClones(_ ids: [ChangeID]) throws -> [ChangeID] {
        guard !ids.isEmpty else { return [] }
        return try write { db in
            var clones: [(seq: Int64, change: Change)] = []
            for id in ids where id.site != site {
                guard let r = try Row.fetchOne(db, sql: "SELECT seq, body FROM fs_change WHERE site = ? AND counter = ? AND source = 0",
                                               arguments: [Int64(bitPattern: id.site.raw), id.counter]),
                      let c = try? ChangeCodec.decode(JSONValue.parse(r["body"] as String))
                else { continue }
                clones.append((r["seq"], c))
            }
            clones.sort { $0.seq < $1.seq }
            // Per shared site, the first counter the clones took: from there on, that site's
            // ids name what the other copy wrote.
            var firstShared: [SiteID: Int64] = [:]
            for (_, c) in clones { firstShared[c.id.site] = min(firstShared[c.id.site] ?? .max, c.id.counter) }
            var remadeAs: [(old: ChangeID, new: ChangeID)] = []
            func seen(_ v: VersionVector) -> VersionVector {
                var out = VersionVector(v.compactMap { e -> (SiteID, Int64)? in
                    guard let f = firstShared[e.site], e.counter >= f else { return (e.site, e.counter) }
                    return f > 1 ? (e.site, f - 1) : nil
                })
                for (old, new) in remadeAs where v.covers(old) { out.include(new) }
                return out
            }
            for (seq, old) in clones {
                var row = try loadRow(db, old.kind, old.row)
                let held = Set(old.writes.filter { w in row.state[w.field]?.entries.contains { $0.dot == old.id } == true }.map(\.field))
                // The record without it: rebuilt from the other changes it logged (a pruned
                // change was superseded, so it holds no current value to rebuild).
                var state = RowState(kind: old.kind)
                for l in try logged(db, row.log.filter { $0.id != old.id }).changes { state.apply(l.change) }
                row.state = state
                row.log.removeAll { $0.id == old.id }
                try storeRow(db, &row)
                for table in ["fs_change", "fs_pending", "fs_sync_refused"] {
                    try db.execute(sql: "DELETE FROM \(table) WHERE seq = ?", arguments: [seq])
                }
                try db.execute(sql: "DELETE FROM fs_conflict WHERE kind = ? AND row = ?", arguments: [old.kind.rawValue, old.row])
                for c in state.conflicts {
                    try db.execute(sql: "INSERT INTO fs_conflict(kind, row, field, since) VALUES (?, ?, ?, ?)",
                                   arguments: [old.kind.rawValue, old.row, c.field, c.openedAt.millis])
                }
                let writes = old.writes.filter { held.contains($0.field) }.map { FieldWrite(field: $0.field, value: $0.value, context: seen($0.context)) }
                guard !writes.isEmpty else { continue }
                let deletes = writes.contains { $0.field == RowState.deletedField && $0.value == .integer(1) }
                let note = (old.note.map { $0 + "。" } ?? "") + "重新记录 re-made: first written as \(old.id), an id another copy of this laptop had used"
                let c = Change(id: nextChangeID(), kind: old.kind, row: old.row, hlc: clock.tick(wall: now), author: old.author, writes: writes,
                               rowContext: deletes ? (old.rowContext ?? [:]).mapValues(seen) : nil,
                               note: String(note.prefix(ChangeCodec.maxNoteLength)), resolves: old.resolves)
                var report = ApplyReport()
                try applyOne(db, c, local: true, preloaded: row, report: &report)
                remadeAs.append((old.id, c.id))
            }
            return remadeAs.map(\.new)
        }
    }
}

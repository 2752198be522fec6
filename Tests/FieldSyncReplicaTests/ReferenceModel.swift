import FieldSyncCore

// MARK: - Reference model

/// The merge semantics stated with explicit sets instead of version vectors: each write
/// remembers the exact set of writes (to its field) that its author had seen, closed under
/// "seen by what I saw". A register is the set of received writes that no other received write
/// has seen. Conflicts and winners follow Protocol/changeset.md §3 directly.
struct ModelWrite {
    let id: ChangeID
    let hlc: HybridTimestamp
    let row: String
    let field: String
    let value: FieldValue
    let seen: Set<ChangeID>
    /// For deletes: what the delete had seen of every other field.
    let rowSeen: [String: Set<ChangeID>]?
}

final class ModelReplica {
    /// row → field → id → write
    private(set) var writes: [String: [String: [ChangeID: ModelWrite]]] = [:]

    func receive(_ w: ModelWrite) { writes[w.row, default: [:]][w.field, default: [:]][w.id] = w }

    var rows: [String] { Array(writes.keys) }

    func fields(_ row: String) -> [String] { Array((writes[row] ?? [:]).keys) }

    /// The writes to (row, field) that no other received write to it has seen.
    func live(_ row: String, _ field: String) -> [ModelWrite] {
        let all = Array((writes[row]?[field] ?? [:]).values)
        return all.filter { w in !all.contains { $0.id != w.id && $0.seen.contains(w.id) } }
    }

    /// What a new local write to (row, field) has seen: every received write and all they saw.
    func seenForNewWrite(_ row: String, _ field: String) -> Set<ChangeID> {
        var s = Set<ChangeID>()
        for w in (writes[row]?[field] ?? [:]).values {
            s.insert(w.id)
            s.formUnion(w.seen)
        }
        return s
    }

    static func winner(_ ws: [ModelWrite]) -> ModelWrite? {
        ws.max { a, b in
            if a.hlc != b.hlc { return a.hlc < b.hlc }
            if a.id.site != b.id.site { return a.id.site < b.id.site }
            return a.id.counter < b.id.counter
        }
    }

    func isDeleted(_ row: String) -> Bool { Self.winner(live(row, RowState.deletedField))?.value == .integer(1) }

    /// Open conflicts of a row, by field name (`_record` for delete versus edit).
    func conflicts(_ row: String) -> Set<String> {
        var out = Set<String>()
        for f in fields(row) where Set(live(row, f).map(\.value)).count > 1 { out.insert(f) }
        let deletes = live(row, RowState.deletedField).filter { $0.value == .integer(1) }
        for d in deletes {
            for f in fields(row) where f != RowState.deletedField {
                if live(row, f).contains(where: { !(d.rowSeen?[f]?.contains($0.id) ?? false) }) { out.insert(RowState.recordConflictField) }
            }
        }
        return out
    }
}


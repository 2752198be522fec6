// MARK: - RecordMerge

/// The per-record bookkeeping of taking a change, apart from any storage: whether it is new, a
/// duplicate or a clone, what it does to the record's registers, and which conflicts it opens
/// and closes. Every store (the laptop's SQLite replica, the hub's SQLite and PostgreSQL stores)
/// loads the record, asks this, and writes back what it says, so no two stores can disagree.
///
///     switch RecordMerge.classify(text: canonical, held: storedBodyOfSameID) {
///     case .duplicate: …            // count it, write nothing
///     case .clone: …                // refuse it: the id was used for other content
///     case .new:
///         let r = RecordMerge.merge(&state, change)   // then store state, log the change,
///     }                                               // and apply r.opened / r.closed
public enum RecordMerge {
    public enum Arrival: Sendable, Equatable {
        /// The record already logged this change, byte for byte.
        case duplicate
        /// The record logged another change with this id: two replicas share a site id.
        case clone
        /// New to the record.
        case new
    }

    /// Whether a change (canonical form `text`, any kind) is new to a record whose log holds
    /// `held` for the same id (nil when it holds no change with that id). The record's change
    /// list, not its registers, says whether an id was seen: a change reusing an id with other
    /// fields holds nothing the first one wrote.
    /// `held` is the text this replica keeps for the id: empty once pruned (a superseded change
    /// whose text a laptop dropped after the hub acknowledged it), which can only be a duplicate.
    /// Stores ask it through `ApplyRefusal.checkArrival`, with the other arrival checks.
    public static func classify(text: String, held: String?) -> Arrival {
        guard let held else { return .new }
        if held.isEmpty { return .duplicate }
        return held.utf8.elementsEqual(text.utf8) ? .duplicate : .clone
    }

    /// What merging one new change did to its record.
    public struct Result: Sendable {
        /// No field took the change (every write was obsolete or a duplicate): history only.
        public var changedNothing: Bool
        /// The record's open conflicts after the change, in field order.
        public var conflicts: [RowConflict]
        /// Fields whose conflict the change opened.
        public var opened: [String]
        /// Fields whose conflict the change closed.
        public var closed: [String]
    }

    /// Merges `change` into `state` (``RowState/apply(_:)``) and compares the open conflicts before
    /// and after.
    public static func merge(_ state: inout RowState, _ change: Change) -> Result {
        let before = openConflicts(state)
        let outcome = state.apply(change)
        if outcome.changedNothing { return Result(changedNothing: true, conflicts: before, opened: [], closed: []) }
        return compare(before, openConflicts(state))
    }

    /// Merges again a logged change that was kept for a newer schema, once that schema is held
    /// (changeset.md §2.4), read again from its text: writes merged before are duplicates, a
    /// delete's register takes the delete's whole `rowSeen` (the newly known fields included),
    /// and the record's conflicts are compared whole, since a delete that now covers more fields
    /// changes its delete-versus-edit conflict even when no write is new. Both hub stores and the
    /// laptop merge kept changes through this.
    public static func mergeLearnt(_ state: inout RowState, _ change: Change) -> Result {
        let before = openConflicts(state)
        _ = state.apply(change)
        if change.deletes, let rc = change.rowContext { state.widenDeleteContext(of: change.id, to: rc) }
        return compare(before, openConflicts(state))
    }

    static func openConflicts(_ state: RowState) -> [RowConflict] { state.hasSeveralEntries ? state.conflicts : [] }

    static func compare(_ before: [RowConflict], _ after: [RowConflict]) -> Result {
        let was = Set(before.map(\.field)), now = Set(after.map(\.field))
        return Result(changedNothing: false, conflicts: after,
                      opened: after.map(\.field).filter { !was.contains($0) }, closed: before.map(\.field).filter { !now.contains($0) })
    }
}

extension RowState {
    /// True when some register holds more than one write (or the record is deleted): the only
    /// states that can hold a conflict, so others skip computing them.
    public var hasSeveralEntries: Bool { registers.contains { $0.entries.count > 1 } || isDeleted }
}

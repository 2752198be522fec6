// MARK: - RegisterEntry

/// One write held by a field register: its id, clock reading, what its author had seen of
/// the field, and the value.
public struct RegisterEntry: Sendable, Equatable {
    public let dot: ChangeID
    public let hlc: HybridTimestamp
    /// The writes to this field the author had seen (and so replaced).
    public let context: VersionVector
    public let value: FieldValue
    /// For a delete only: what its author had seen of every other field of the record.
    /// An edit the delete had not seen is a delete-versus-edit conflict.
    public let rowContext: [String: VersionVector]?

    public init(dot: ChangeID, hlc: HybridTimestamp, context: VersionVector, value: FieldValue,
                rowContext: [String: VersionVector]? = nil) {
        self.dot = dot
        self.hlc = hlc
        self.context = context
        self.value = value
        self.rowContext = rowContext
    }

    /// The order every replica uses to pick a winner among concurrent writes:
    /// later clock reading first, then larger site id, then larger counter.
    public static func winsOver(_ a: RegisterEntry, _ b: RegisterEntry) -> Bool {
        if a.hlc != b.hlc { return a.hlc > b.hlc }
        if a.dot.site != b.dot.site { return a.dot.site > b.dot.site }
        return a.dot.counter > b.dot.counter
    }
}

// MARK: - FieldRegister

/// A multi-value register: the writes to one field that no other known write has replaced.
///
/// Merging is order-free. An incoming write is dropped as obsolete when a held write had seen
/// it; otherwise it replaces every held write it had seen and joins the rest. One entry is the
/// normal state; several are concurrent writes, a conflict when their values differ. Entries
/// are kept winner first.
///
///     var r = FieldRegister()
///     r.merge(a)            // .applied(replaced: [])
///     r.merge(b)            // b concurrent with a: both kept
///     r.isConflict          // true when a.value != b.value
public struct FieldRegister: Sendable, Equatable {
    public private(set) var entries: [RegisterEntry]

    public init(entries: [RegisterEntry] = []) {
        self.entries = entries.sorted(by: RegisterEntry.winsOver)
    }

    public enum Outcome: Sendable, Equatable {
        /// The same write is already held.
        case duplicate
        /// A held write had already seen (and replaced) this one; kept only as history.
        case obsolete
        /// The write is now held; `replaced` are the entries it had seen.
        case applied(replaced: [RegisterEntry])
    }

    @discardableResult
    public mutating func merge(_ w: RegisterEntry) -> Outcome {
        if entries.isEmpty {
            entries.append(w)
            return .applied(replaced: [])
        }
        if entries.contains(where: { $0.dot == w.dot }) { return .duplicate }
        if entries.contains(where: { $0.context.covers(w.dot) }) { return .obsolete }
        var replaced: [RegisterEntry] = []
        entries.removeAll { e in
            if w.context.covers(e.dot) { replaced.append(e); return true }
            return false
        }
        let at = entries.firstIndex(where: { RegisterEntry.winsOver(w, $0) }) ?? entries.count
        entries.insert(w, at: at)
        return .applied(replaced: replaced)
    }

    public var isEmpty: Bool { entries.isEmpty }
    public var winner: RegisterEntry? { entries.first }
    public var value: FieldValue { entries.first?.value ?? .null }

    /// Concurrent writes with different values. Concurrent writes of one value agree, so they
    /// are not a conflict (two people both marking a dispute 已化解).
    public var isConflict: Bool {
        guard let first = entries.first else { return false }
        return entries.dropFirst().contains { $0.value != first.value }
    }

    /// What a new write to this field has seen: every held write and all they had seen.
    ///
    /// At most `limit` sites (``ChangeCodec/maxSeenEntries``, what receivers accept): held
    /// writes are taken winner first, each with everything it had seen, and one that would
    /// overflow the limit is left out whole, so the vector stays transitively closed (Protocol
    /// §3) and merging stays order-free. A write left out stays held beside the new one — a
    /// conflict shown, never an edit refused everywhere. Only vectors inflated on purpose
    /// (hundreds of sites on one field) ever reach the limit.
    public var context: VersionVector { context(limit: ChangeCodec.maxSeenEntries) }

    public func context(limit: Int) -> VersionVector {
        var v = VersionVector()
        for e in entries {
            var next = v
            next.formUnion(e.context)
            next.include(e.dot)
            if next.count <= limit { v = next }
        }
        return v
    }
}

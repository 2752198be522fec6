// MARK: - VersionVector

/// For each site, the highest counter of that site's writes to one field that a writer had seen.
///
/// Vectors here are kept per field: a write to `status` records which earlier writes to
/// `status` its author had in front of them. Because one site's writes to one field are
/// totally ordered (each saw the one before), "seen counter 5 of site A" means "seen all of
/// A's writes to this field up to 5", even when changes arrive out of order.
public struct VersionVector: Hashable, Sendable, Sequence {
    /// Entries sorted by site, counters ≥ 1, at most one per site.
    public private(set) var entries: [(site: SiteID, counter: Int64)]

    public init() { entries = [] }

    /// Builds a vector from arbitrary entries, keeping the highest counter per site.
    public init<S: Sequence>(_ items: S) where S.Element == (SiteID, Int64) {
        entries = []
        for (s, c) in items { include(ChangeID(site: s, counter: c)) }
    }

    /// A vector from entries with distinct sites, in one sort (decoding: `include` one by one
    /// would cost a search and an insertion each).
    public init(sorting items: [(SiteID, Int64)]) {
        entries = items.sorted { $0.0 < $1.0 }.map { (site: $0.0, counter: $0.1) }
    }

    public var isEmpty: Bool { entries.isEmpty }
    public var count: Int { entries.count }

    public subscript(site: SiteID) -> Int64 {
        for e in entries where e.site == site { return e.counter }
        return 0
    }

    /// True when the write `dot` is one this vector has seen.
    public func covers(_ dot: ChangeID) -> Bool { self[dot.site] >= dot.counter }

    /// Adds `dot` (keeps the larger counter for its site).
    public mutating func include(_ dot: ChangeID) {
        if let i = entries.firstIndex(where: { $0.site == dot.site }) {
            if entries[i].counter < dot.counter { entries[i].counter = dot.counter }
            return
        }
        let at = entries.firstIndex(where: { $0.site > dot.site }) ?? entries.count
        entries.insert((site: dot.site, counter: dot.counter), at: at)
    }

    /// Adds every entry of `other`.
    public mutating func formUnion(_ other: VersionVector) {
        for e in other.entries { include(ChangeID(site: e.site, counter: e.counter)) }
    }

    public func makeIterator() -> IndexingIterator<[(site: SiteID, counter: Int64)]> { entries.makeIterator() }

    public static func == (a: VersionVector, b: VersionVector) -> Bool {
        a.entries.count == b.entries.count
            && zip(a.entries, b.entries).allSatisfy { $0.site == $1.site && $0.counter == $1.counter }
    }

    public func hash(into h: inout Hasher) {
        for e in entries {
            h.combine(e.site)
            h.combine(e.counter)
        }
    }
}

import FieldSyncCore
import GRDB

// MARK: - Reading changes by scope (the hub's side of pull and snapshot)

/// A page of stored change texts, ready to send.
public struct ScopedPage: Sendable {
    public var texts: [String]
    /// Pull: the last sequence number looked at. Snapshot: the hub position when it began.
    public var cursor: Int64
    public var more: Bool
    /// Snapshot: where to continue (`kind:id`), nil at the end.
    public var next: String?
    public var bytes: Int
    /// Snapshot: records walked for this page (``walkedOn(fetched:limit:)``).
    public var walked = 0

    public init(texts: [String], cursor: Int64, more: Bool, next: String?, bytes: Int) {
        (self.texts, self.cursor, self.more, self.next, self.bytes) = (texts, cursor, more, next, bytes)
    }

    /// Pull: adds one change's text; when the page already holds `limit` changes, or it would
    /// pass `maxBytes` on a page that holds something already, adds nothing, marks the page
    /// `more` and returns false (one change alone always fits).
    public mutating func addChange(_ body: String, limit: Int, maxBytes: Int) -> Bool {
        if texts.count >= limit || (!texts.isEmpty && bytes + body.utf8.count > maxBytes) {
            more = true
            return false
        }
        texts.append(body)
        bytes += body.utf8.count
        return true
    }

    /// How many records one snapshot page may walk: ten pages' worth. Records whose changes the
    /// device says it holds add nothing to a page, so a page does not end when `limit` records
    /// were walked (a new laptop's first snapshot after its push got one empty page per 1,000
    /// of its own records, a round trip each); this bounds the hub's work per request instead.
    public static func recordsWalked(limit: Int) -> Int {
        let (n, overflow) = max(limit, 1).multipliedReportingOverflow(by: 10)
        return overflow ? Int.max : n
    }

    /// Snapshot, after the page took the `fetched` records of a kind it asked for (`limit` + 1
    /// at most): true to fetch more of the kind after the last one, false when the kind ran out
    /// (go on to the next), nil when the page has walked enough (it ends, marked `more`).
    public mutating func walkedOn(fetched: Int, limit: Int) -> Bool? {
        walked += fetched
        guard fetched > limit else { return false }
        guard walked < Self.recordsWalked(limit: limit) else {
            more = true
            return nil
        }
        return true
    }

    /// Snapshot: adds one record's changes (`size` bytes of text) whole, continuing after
    /// `next`; when they would break `limit` or `maxBytes` on a page that holds something
    /// already, adds nothing, marks the page `more` and returns false (a record is never split,
    /// and one record alone always fits).
    public mutating func addRecord(_ recordTexts: [String], size: Int, next position: String, limit: Int, maxBytes: Int) -> Bool {
        if !texts.isEmpty && (texts.count + recordTexts.count > limit || bytes + size > maxBytes) {
            more = true
            return false
        }
        texts += recordTexts
        bytes += size
        next = position
        return true
    }
}

extension Replica {
    /// Whether a snapshot's `held` (site → highest counter, sync.md §5) covers the change with
    /// this stored site and counter: then it is left out. Both hub stores ask this.
    public static func holds(_ held: [SiteID: Int64], site: Int64, counter: Int64) -> Bool {
        guard !held.isEmpty, let upTo = held[SiteID(raw: UInt64(bitPattern: site))] else { return false }
        return counter <= upTo
    }

    /// Whether a record id lies in a scope: its division code starts with the scope's prefix.
    public static func inScope(row: String, scope: String) -> Bool { Scope(scope).contains(row) }

    /// Changes logged after `after` whose record lies in `scope`, leaving out those `peer` sent
    /// (a device need not be sent back its own changes). Stops at `limit` changes, about
    /// `maxBytes`, or after looking at `scanLimit` rows; `cursor` is the last row looked at.
    public func changes(after: Int64, scope: String, excludingPeer peer: String?, limit: Int, maxBytes: Int,
                        scanLimit: Int = 100_000, regionIndexed: Bool = false) throws -> ScopedPage {
        if regionIndexed, let n = Scope(scope).indexedLength {
            return try changesByRegion(after: after, scope: scope, length: n, excludingPeer: peer, limit: limit, maxBytes: maxBytes)
        }
        return try read { db in
            let st = try db.cachedStatement(sql: "SELECT seq, row, peer, body FROM fs_change WHERE seq > ? ORDER BY seq LIMIT ?")
            st.begin()
            st.bind(1, after)
            st.bind(2, Int64(scanLimit))
            defer { st.begin() }
            var page = ScopedPage(texts: [], cursor: after, more: false, next: nil, bytes: 0)
            var scanned = 0
            while try st.step(db) {
                scanned += 1
                let row = st.text(1)
                let from: String? = st.isNull(2) ? nil : st.text(2)
                if Self.inScope(row: row, scope: scope) && (peer == nil || from != peer) {
                    guard page.addChange(st.text(3), limit: limit, maxBytes: maxBytes) else { return page }
                }
                page.cursor = st.int64(0)
            }
            page.more = scanned >= scanLimit
            return page
        }
    }

    /// A page of `scope`'s changes through the hub's region index (`substr(row, 1, n), seq`):
    /// it reads only the scope's own rows after the cursor, whatever the rest of the log holds.
    /// A page that ends before `limit` saw every change up to the end of the log, so its cursor
    /// moves there (read in the same transaction).
    func changesByRegion(after: Int64, scope: String, length n: Int, excludingPeer peer: String?, limit: Int, maxBytes: Int) throws -> ScopedPage {
        try read { db in
            let end = try Int64.fetchOne(db, sql: "SELECT COALESCE(max(seq), 0) FROM fs_change") ?? 0
            let st = try db.cachedStatement(sql: """
                SELECT seq, body FROM fs_change INDEXED BY hub_change_r\(n)
                WHERE substr(row, 1, \(n)) = ? AND seq > ? AND (peer IS NULL OR peer != ?) ORDER BY seq
                """)
            st.begin()
            st.bind(1, scope)
            st.bind(2, after)
            st.bind(3, peer ?? "")
            defer { st.begin() }
            var page = ScopedPage(texts: [], cursor: after, more: false, next: nil, bytes: 0)
            while try st.step(db) {
                guard page.addChange(st.text(1), limit: limit, maxBytes: maxBytes) else { return page }
                page.cursor = st.int64(0)
            }
            // The scope's rows ran out before the limit: the log holds nothing more for it.
            page.cursor = max(after, end)
            return page
        }
    }

    /// How many changes in `scope` were logged after `after` (not counting those `peer` sent).
    public func countChanges(after: Int64, scope: String, excludingPeer peer: String?, regionIndexed: Bool = false) throws -> Int {
        try read { db in
            if regionIndexed, let n = Scope(scope).indexedLength {
                return try Int.fetchOne(db, sql: """
                    SELECT count(*) FROM fs_change INDEXED BY hub_change_r\(n) WHERE substr(row, 1, \(n)) = ? AND seq > ? AND (peer IS NULL OR peer != ?)
                    """, arguments: [scope, after, peer ?? ""]) ?? 0
            }
            return try Int.fetchOne(db, sql: """
                SELECT count(*) FROM fs_change WHERE seq > ? AND substr(row, 1, ?) = ? AND (peer IS NULL OR peer != ?)
                """, arguments: [after, scope.utf8.count, scope, peer ?? ""]) ?? 0
        }
    }

    /// One page of a snapshot of `scope`: for each record, in kind then id order, the changes
    /// that still hold one of its current values. Applied to an empty replica they rebuild the
    /// same registers (values, conflicts, deletions); the superseded history is left out. Changes
    /// `peer` sent are left out when it is given (the hub gives none: a device restored from an
    /// older image lacks some of its own pushes). After the kinds this schema holds come the
    /// records of kinds it does not hold yet, by kind key then id: every change kept for them.
    public func snapshotPage(scope: String, after: String?, limit: Int, maxBytes: Int, excludingPeer peer: String? = nil,
                             held: [SiteID: Int64] = [:]) throws -> ScopedPage {
        let start = try after.map { try SnapshotPosition(parsing: $0) }
        return try read { db in
            let cursor = try Int64.fetchOne(db, sql: "SELECT COALESCE(max(seq), 0) FROM fs_change") ?? 0
            var page = ScopedPage(texts: [], cursor: cursor, more: false, next: nil, bytes: 0)
            let hasPending = try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM fs_pending)") ?? false
            let pendingStatement = try db.cachedStatement(sql: "SELECT seq FROM fs_pending WHERE kind = ? AND row = ?")
            let body = try db.cachedStatement(sql: "SELECT body, peer, site, counter FROM fs_change WHERE seq = ?")
            /// One record's changes at `seqs` onto the page (`next` the position after it); false when the page is full.
            func add(_ seqs: Set<Int64>, next: String) throws -> Bool {
                var texts: [String] = []
                var size = 0
                for seq in seqs.sorted() {
                    body.begin()
                    body.bind(1, seq)
                    guard try body.step(db) else { continue }
                    if let peer, !body.isNull(1), body.text(1) == peer { continue }
                    if Self.holds(held, site: body.int64(2), counter: body.int64(3)) { continue }
                    let t = body.text(0)
                    texts.append(t)
                    size += t.utf8.count
                }
                body.begin()
                return page.addRecord(texts, size: size, next: next, limit: limit, maxBytes: maxBytes)
            }
            let startOrdinal = start?.ordinal ?? 0
            for kind in RecordKind.allCases where kind.ordinal >= startOrdinal {
                var continuing = start?.after != nil && kind.ordinal == startOrdinal
                var from = continuing ? start!.after! : scope
                while true {
                    let ids = try String.fetchAll(db, sql: """
                        SELECT id FROM \(SQLLayout.table(kind)) WHERE id \(continuing ? ">" : ">=") ? AND id < ? ORDER BY id LIMIT ?
                        """, arguments: [max(from, scope), scope + "~", limit + 1])
                    for id in ids {
                        let row = try loadRow(db, kind, id)
                        var seqs = Set<Int64>()
                        for reg in row.state.registers {
                            for e in reg.entries {
                                if let l = row.log.first(where: { $0.id == e.dot }) { seqs.insert(l.seq) }
                            }
                        }
                        // Writes of a newer schema are not in the registers: every change holding
                        // one goes along, for a receiver that can read it.
                        if hasPending { seqs.formUnion(try Int64.fetchAll(pendingStatement, arguments: [kind.rawValue, id])) }
                        guard try add(seqs, next: "\(kind.rawValue):\(id)") else { return page }
                    }
                    guard let onward = page.walkedOn(fetched: ids.count, limit: limit) else { return page }
                    guard onward else { break }
                    (from, continuing) = (ids[ids.count - 1], true)
                }
            }
            if hasPending {
                let known = RecordKind.allCases.map(\.rawValue)
                let (fromKind, fromID) = start?.keptAfter.map { ($0.kind, $0.id) } ?? ("", "")
                let records = try Row.fetchAll(db, sql: """
                    SELECT DISTINCT kind, row FROM fs_pending
                    WHERE kind NOT IN (\(known.map { _ in "?" }.joined(separator: ","))) AND row >= ? AND row < ? AND (kind > ? OR (kind = ? AND row > ?))
                    ORDER BY kind, row LIMIT ?
                    """, arguments: StatementArguments(known) + [scope, scope + "~", fromKind, fromKind, fromID, limit + 1])
                for r in records {
                    let kind: String = r[0], id: String = r[1]
                    guard try add(Set(try Int64.fetchAll(pendingStatement, arguments: [kind, id])), next: SnapshotPosition.kept(kind: kind, id: id)) else { return page }
                }
                if records.count > limit {
                    page.more = true
                    return page
                }
            }
            page.next = nil
            return page
        }
    }
}

// MARK: - SnapshotPosition

/// Where a snapshot continues: the last record sent. `KIND:ID` for a kind the schema held here
/// has; records of kinds it does not hold (a newer schema's, whose changes are kept) come after
/// every known kind, by kind key then id, as `KIND.N:ID` — N the number of kinds the hub held
/// when it wrote the position. When a hub takes a schema mid-snapshot (or a hub process with
/// another schema reads the position), the kinds learnt since come next, from their start, and
/// then the kept records from theirs: records may come twice (harmless), never not at all. Both
/// hub stores and the route read positions through this.
public struct SnapshotPosition: Sendable, Equatable {
    /// The first known kind to visit.
    public var ordinal: Int
    /// In that kind, the last record sent (nil: from the scope's start).
    public var after: String?
    /// In the kept records, the last one sent (nil: from their start).
    public var keptAfter: Kept?

    public struct Kept: Sendable, Equatable {
        public var kind: String
        public var id: String
    }

    /// The position after a record of a kind this schema does not hold.
    public static func kept(kind: String, id: String) -> String { "\(kind).\(Schema.current.kinds.count):\(id)" }

    /// The record id the position names.
    public var id: String? { after ?? keptAfter?.id }

    public init(parsing text: String) throws {
        let bad = ReplicaError.invalidInput(InputError("after", "a snapshot position is KIND:ID as the hub sent it, got \"\(text.prefix(60))\""))
        let parts = text.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 2, !parts[1].isEmpty, parts[1].utf8.count <= 100 else { throw bad }
        let id = parts[1]
        let kinds = Schema.current.kinds.count
        let head = parts[0].split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard (1...2).contains(head.count), FieldName.problem(head[0]) == nil else { throw bad }
        let kind = head[0]
        if head.count == 2 {
            // A kept record's position, written when the hub held `held` kinds.
            guard let held = Int(head[1]), (1...Schema.maxKinds).contains(held) else { throw bad }
            if held == kinds, Schema.current.kind(named: kind) == nil {
                (ordinal, after, keptAfter) = (kinds, nil, Kept(kind: kind, id: id))
            } else {
                (ordinal, after, keptAfter) = (min(held, kinds), nil, nil)
            }
        } else if let k = Schema.current.kind(named: kind) {
            (ordinal, after, keptAfter) = (k.ordinal, id, nil)
        } else {
            // A known kind's position from a hub process holding a newer schema: the kept records from their start.
            (ordinal, after, keptAfter) = (kinds, nil, nil)
        }
    }
}

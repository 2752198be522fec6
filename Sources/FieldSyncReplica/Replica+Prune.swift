import FieldSyncCore
import Foundation
import GRDB

// MARK: - Pruning superseded history

/// What one pruning pass did.
public struct PruneReport: Sendable, Equatable {
    /// Changes old enough and acknowledged, looked at.
    public var examined = 0
    /// Of those, the superseded ones whose text was dropped.
    public var pruned = 0
    /// The bytes of change text dropped.
    public var bytes = 0
}

extension Replica {
    /// How long a laptop keeps the full text of superseded history: 90 days.
    public static let defaultHistoryWindowMs: Int64 = 90 * 86_400_000

    /// Drops the text of superseded history older than `windowMs` (issue 12 point 4): a change
    /// received here before then, that the hub has (it came from the hub, or the hub
    /// acknowledged it: at or before the push cursor), and that no register of its record holds
    /// any more — no current value, no conflict candidate, no deletion. Its id, author, time and
    /// place in the record's log stay, so the record's history still lists it (``HistoryEntry/Status/pruned``)
    /// and the same change arriving again is a duplicate, never new. Writes kept for a newer
    /// schema (`fs_pending`) are kept whole. Merging never reads a superseded change's text (the
    /// registers and their version vectors are the state), so pruning changes no merge result;
    /// the hub keeps every change for good.
    ///
    /// A replica never enrolled prunes nothing unless `requireAcknowledged` is false (tests and
    /// the year simulation in scripts/bench).
    @discardableResult
    public func pruneHistory(windowMs: Int64 = Replica.defaultHistoryWindowMs, requireAcknowledged: Bool = true) throws -> PruneReport {
        let (cutoff, overflow) = wallClock().subtractingReportingOverflow(max(0, windowMs))
        guard !overflow else { return PruneReport() }
        return try write { db in
            var report = PruneReport()
            var condition = "body != '' AND received < ? AND seq NOT IN (SELECT seq FROM fs_pending)"
            var args: [any DatabaseValueConvertible] = [cutoff]
            if requireAcknowledged {
                guard let cursor = try Int64.fetchOne(db, sql: "SELECT push_cursor FROM fs_sync WHERE id = 1") else { return report }
                condition += " AND (source = 2 OR seq <= ?)"
                args.append(cursor)
            }
            let rows = try Row.fetchAll(db, sql: "SELECT seq, site, counter, kind, row, length(CAST(body AS BLOB)) FROM fs_change WHERE \(condition) ORDER BY kind, row",
                                        arguments: StatementArguments(args))
            var drop: [Int64] = []
            var i = 0
            while i < rows.count {
                let kindText: String = rows[i]["kind"], id: String = rows[i]["row"]
                var j = i + 1
                while j < rows.count, rows[j]["kind"] as String == kindText, rows[j]["row"] as String == id { j += 1 }
                defer { i = j }
                guard let kind = RecordKind(rawValue: kindText) else { continue }
                let state = try loadRow(db, kind, id).state
                var held = Set<ChangeID>()
                for register in state.registers { for e in register.entries { held.insert(e.dot) } }
                for r in rows[i..<j] {
                    report.examined += 1
                    let change = ChangeID(site: SiteID(raw: UInt64(bitPattern: r["site"])), counter: r["counter"])
                    guard !held.contains(change) else { continue }
                    drop.append(r["seq"])
                    report.bytes += r[5] as Int
                }
            }
            for start in stride(from: 0, to: drop.count, by: 500) {
                let part = drop[start..<min(drop.count, start + 500)]
                try db.execute(sql: "UPDATE fs_change SET body = '', proof = NULL WHERE seq IN (\(part.map { _ in "?" }.joined(separator: ",")))",
                               arguments: StatementArguments(Array(part)))
            }
            if !drop.isEmpty {
                // Manifests that prove nothing kept any more.
                try db.execute(sql: "DELETE FROM fs_manifest WHERE id NOT IN (SELECT proof FROM fs_change WHERE proof IS NOT NULL)")
            }
            try db.execute(sql: "INSERT OR REPLACE INTO fs_meta(key, value) VALUES ('last_prune', ?)", arguments: [wallClock()])
            report.pruned = drop.count
            return report
        }
    }

    /// Prunes (``pruneHistory(windowMs:requireAcknowledged:)``) when the last pass was a day
    /// ago or more: what a sync does after it completes. Nil when it was not due.
    @discardableResult
    public func pruneHistoryIfDue(windowMs: Int64 = Replica.defaultHistoryWindowMs) throws -> PruneReport? {
        let last = try read { db in try Int64.fetchOne(db, sql: "SELECT value FROM fs_meta WHERE key = 'last_prune'") }
        if let last, wallClock() - last < 86_400_000 { return nil }
        return try pruneHistory(windowMs: windowMs)
    }

    /// (The hub.) The texts of the changes with these ids whose record lies in `scope`, in the
    /// order asked; ids not held, out of scope or pruned are left out.
    @_spi(Hub) public func changeTexts(ids: [ChangeID], scope: String) throws -> [String] {
        try read { db in
            let st = try db.cachedStatement(sql: "SELECT row, body FROM fs_change WHERE site = ? AND counter = ?")
            defer { st.begin() }
            var out: [String] = []
            for id in ids {
                st.begin()
                st.bind(1, Int64(bitPattern: id.site.raw))
                st.bind(2, id.counter)
                guard try st.step(db), Self.inScope(row: st.text(0), scope: scope) else { continue }
                let body = st.text(1)
                if !body.isEmpty { out.append(body) }
            }
            return out
        }
    }

    /// The ids of a record's changes whose text was pruned here, oldest first (to fetch from the hub).
    public func prunedChanges(of idOrPrefix: String) throws -> [ChangeID] {
        let rec = try record(idOrPrefix)
        return try read { db in
            try logged(db, loadRow(db, rec.kind, rec.id).log).pruned.map(\.id)
        }
    }

    /// Puts back the text of pruned changes the hub sent (``prunedChanges(of:)``), after checking
    /// the page's signature as a pull does; a change not logged here, or not pruned, is ignored.
    /// Returns how many came back. They are pruned again by a later pass.
    @discardableResult
    public func restorePruned(_ page: ChangePage) throws -> Int {
        try write { db in
            let texts = page.changes.map(ChangeCodec.canonicalText)
            _ = try checkHubProof(db, page, texts: texts)
            var restored = 0
            for (c, text) in zip(page.changes, texts) {
                try db.execute(sql: "UPDATE fs_change SET body = ? WHERE site = ? AND counter = ? AND body = ''",
                               arguments: [text, Int64(bitPattern: c.id.site.raw), c.id.counter])
                restored += db.changesCount
            }
            return restored
        }
    }

    /// Changes whose text was pruned here.
    public func prunedCount() throws -> Int {
        try read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM fs_change WHERE body = ''") ?? 0 }
    }
}

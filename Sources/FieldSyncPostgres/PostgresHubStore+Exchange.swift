import FieldSyncCore
import FieldSyncHub
import FieldSyncReplica
import FieldSyncTrust
import Foundation
import PostgresNIO

// MARK: - Applying changes

extension PostgresHubStore {
    /// One change to apply in a batch: what ``PushAdmission`` admitted, or a change the hub made.
    struct Incoming {
        let change: ReceivedChange
        let text: String
        let onlyIfHeld: (ApplyRefusal.Code, String)?
        /// Made by the hub itself (a supervisor's settlement): its own site id is expected.
        let local: Bool
    }

    typealias Outcome = Replica.EachOutcome

    /// Applies a batch in the caller's transaction: the records it touches are locked in one
    /// order, each change is judged by ``RecordMerge`` against its record and the change log,
    /// and positions in the change log are taken last (the head row), so they follow commit order.
    /// `beforeHead` runs once the outcomes are known and before the head row is locked: whatever
    /// the caller still writes goes there, since every other push waits while the head is held.
    /// Returns the outcomes, and the log's new head when the batch took positions.
    static func apply(_ pg: PG, _ batch: [Incoming], peer: String?, hubSite: SiteID, now: Int64,
                      beforeHead: ([Outcome]) async throws -> Void = { _ in }) async throws -> (outcomes: [Outcome], head: Int64?) {
        guard !batch.isEmpty else {
            try await beforeHead([])
            return ([], nil)
        }
        // What the change log holds already under these ids (duplicates, clones across records).
        var held: [ChangeID: String] = [:]
        let ids = batch.map(\.change.id)
        for r in try await pg.rows("""
            SELECT c.site, c.counter, c.body FROM hub_change c
            JOIN unnest($1::bigint[], $2::bigint[]) AS x(site, counter) ON c.site = x.site AND c.counter = x.counter
            """, [.ints(ids.map { Int64(bitPattern: $0.site.raw) }), .ints(ids.map(\.counter))]) {
            held[ChangeID(site: SiteID(raw: UInt64(bitPattern: try r.int(0))), counter: try r.int(1))] = try r.text(2)
        }
        // A change read while its kind was unknown may be of a kind this process holds now
        // (Replica.knownNow): read again before the records are locked.
        let resolved: [Result<ReceivedChange, ApplyRefusal>] = batch.map { i in
            guard case .foreign(let f) = i.change else { return .success(i.change) }
            do throws(ApplyRefusal) {
                guard let now = try Replica.knownNow(f) else { return .success(i.change) }
                return .success(.known(now))
            } catch { return .failure(error) }
        }
        // Lock the records, kind by kind, each in id order.
        var records: [String: PGRecord] = [:]
        for kind in RecordKind.allCases {
            let rows = Set(resolved.compactMap { (try? $0.get())?.known }.filter { $0.kind == kind }.map(\.row))
            for (id, rec) in try await PostgresRecords.load(pg, kind, Array(rows), lock: true) { records["\(kind.rawValue)/\(id)"] = rec }
        }
        /// A change log row to write: `pending` when it waits in hub_pending (writes, or a whole
        /// change of a kind this schema does not hold, ``ForeignChange``).
        struct NewRow { let id: ChangeID; let kind: String; let row: String; let hlc: HybridTimestamp; let author: String; let text: String; let pending: Bool }
        var newRows: [NewRow] = []
        var touched = Set<String>()
        var conflictWork: [(RecordKind, String, RecordMerge.Result)] = []
        var outcomes: [Outcome] = []
        outcomes.reserveCapacity(batch.count)
        /// Changes and bytes kept per record of a kind this schema does not hold, as this batch goes.
        var keptOf: [String: (count: Int, bytes: Int)] = [:]
        for (i, r) in zip(batch, resolved) {
            let id = i.change.id
            if !i.local {
                do throws(ApplyRefusal) {
                    guard try ApplyRefusal.checkArrival(id, text: i.text, held: held[id], onlyIfHeld: i.onlyIfHeld, own: hubSite, whose: "this hub's") else {
                        outcomes.append(.duplicate)
                        continue
                    }
                } catch {
                    outcomes.append(.refused(error.code, error.error))
                    continue
                }
            }
            let c: Change
            let item: ReceivedChange
            do throws(ApplyRefusal) { item = try r.get() } catch {
                outcomes.append(.refused(error.code, error.error))
                continue
            }
            switch item {
            case .foreign(let f):
                // Kept whole, merged once the kind is known (mergePending); no record to lock,
                // as many per record as one may keep.
                let key = "\(f.kind)/\(f.row)"
                if keptOf[key] == nil {
                    let kept = try await pg.one("""
                        SELECT count(*), COALESCE(sum(octet_length(c.body)), 0)::bigint FROM hub_pending p JOIN hub_change c ON c.seq = p.seq WHERE p.kind = $1 AND p.row = $2
                        """, [.text(f.kind), .text(f.row)])
                    keptOf[key] = (Int(try kept?.int(0) ?? 0), Int(try kept?.int(1) ?? 0))
                }
                if let refusal = Replica.keptFull(f, count: keptOf[key]!.count, bytes: keptOf[key]!.bytes) {
                    outcomes.append(.refused(refusal.code, refusal.error))
                    continue
                }
                keptOf[key]!.count += 1
                keptOf[key]!.bytes += i.text.utf8.count
                held[id] = i.text
                newRows.append(NewRow(id: f.id, kind: f.kind, row: f.row, hlc: f.hlc, author: f.author, text: i.text, pending: true))
                outcomes.append(.applied)
                continue
            case .known(let k): c = ChangeCodec.readAgainIfKnown(k, text: i.text)
            }
            held[id] = i.text
            let key = "\(c.kind.rawValue)/\(c.row)"
            var rec = records[key] ?? PGRecord(kind: c.kind, id: c.row, state: RowState(kind: c.kind), log: [], exists: false)
            rec.log.append(RowLogEntry(id: c.id, seq: 0))  // its position is set below
            let merged = RecordMerge.merge(&rec.state, c)
            records[key] = rec
            touched.insert(key)
            newRows.append(NewRow(id: c.id, kind: c.kind.rawValue, row: c.row, hlc: c.hlc, author: c.author, text: i.text, pending: c.hasPending))
            if merged.changedNothing { outcomes.append(.obsolete); continue }
            if !merged.conflicts.isEmpty || !merged.closed.isEmpty { conflictWork.append((c.kind, c.row, merged)) }
            outcomes.append(.applied)
        }
        // Work that needs no position, done before the head is taken (the records are locked,
        // so their conflicts are ours to write; a site entry is only ever inserted).
        for (kind, row, merged) in conflictWork { try await PostgresRecords.syncConflicts(pg, kind: kind, row: row, merged) }
        for site in Set(newRows.map(\.id.site)) {
            try await pg.exec("INSERT INTO fs_site(id, hex) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING", [.int(Int64(bitPattern: site.raw)), .text(site.hex)])
        }
        try await beforeHead(outcomes)
        guard !newRows.isEmpty else { return (outcomes, nil) }
        // Held to commit from here: only what needs the positions (the log rows, the records'
        // clocks that name them).
        // The head last: positions in commit order (docs/architecture.md).
        let end = try await pg.one("UPDATE hub_log_head SET seq = seq + $1 WHERE id = 1 RETURNING seq", [.int(Int64(newRows.count))])!.int(0)
        let first = end - Int64(newRows.count) + 1
        var seqOf: [ChangeID: Int64] = [:]
        for (n, r) in newRows.enumerated() { seqOf[r.id] = first + Int64(n) }
        try await pg.exec("""
            INSERT INTO hub_change(seq, site, counter, kind, row, hlc, author, received, peer, body)
            SELECT s, si, co, k, r, h, a, $7, $8, b FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::text[], $5::text[], $6::bigint[],
                   $9::text[], $10::text[]) AS x(s, si, co, k, r, h, a, b)
            """, [.ints(newRows.map { seqOf[$0.id]! }), .ints(newRows.map { Int64(bitPattern: $0.id.site.raw) }), .ints(newRows.map(\.id.counter)),
                  .texts(newRows.map(\.kind)), .texts(newRows.map(\.row)), .ints(newRows.map(\.hlc.packed)), .int(now), .opt(peer),
                  .texts(newRows.map(\.author)), .texts(newRows.map(\.text))])
        let pending = newRows.filter(\.pending)
        if !pending.isEmpty {
            try await pg.exec("INSERT INTO hub_pending(seq, kind, row) SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[])",
                              [.ints(pending.map { seqOf[$0.id]! }), .texts(pending.map(\.kind)), .texts(pending.map(\.row))])
        }
        var changed: [PGRecord] = []
        for key in touched {
            var rec = records[key]!
            rec.log = rec.log.map { $0.seq == 0 ? RowLogEntry(id: $0.id, seq: seqOf[$0.id] ?? 0) : $0 }
            changed.append(rec)
        }
        try await PostgresRecords.store(pg, changed)
        return (outcomes, end)
    }
}

// MARK: - Push, pull, snapshot, acknowledgement

extension PostgresHubStore {
    public func push(_ raw: [JSONValue], sites: [SiteID: String], vouches: Vouches, from device: Device) async throws -> PushResponse {
        let decoded = PushAdmission.decode(raw)
        let mentioned = PushAdmission.sites(decoded)
        let now = self.now()
        let hubSite = self.hubSite
        return try await transaction { pg in
            let own = Set(try await pg.rows("SELECT site FROM hub_site WHERE device = $1", [.text(device.id)]).map { SiteID(raw: UInt64(bitPattern: try $0.int(0))) })
            var owners: [SiteID: SiteOwner] = [:]
            for r in try await pg.rows("""
                SELECT s.site, s.device, d.scope, d.revoked FROM hub_site s LEFT JOIN hub_device d ON d.id = s.device WHERE s.site = ANY($1::bigint[])
                """, [.ints(mentioned.origins.map { Int64(bitPattern: $0.raw) })]) {
                let site = SiteID(raw: UInt64(bitPattern: try r.int(0)))
                if let dev = try r.optText(1) { owners[site] = .device(id: dev, scope: try r.optText(2) ?? "", revoked: try r.optInt(3) != nil) } else { owners[site] = .hub }
            }
            let known = Set(try await pg.rows("SELECT id FROM fs_site WHERE id = ANY($1::bigint[])", [.ints(mentioned.inVectors.map { Int64(bitPattern: $0.raw) })])
                .map { SiteID(raw: UInt64(bitPattern: try $0.int(0))) })
            let ctx = PushAdmission.Context(device: device, ownSites: own, owners: owners, knownSites: known, vouches: vouches, now: now)
            let (sorted, admitted) = PushAdmission.sort(decoded, ctx, count: raw.count)
            let incoming = admitted.map { Incoming(change: $0.change, text: $0.text, onlyIfHeld: $0.onlyIfHeld, local: false) }
            // Names only for the device's own sites: a push cannot rename the hub or another laptop.
            for (id, name) in sites where own.contains(id) { try await Self.noteSite(pg, id, name: name) }
            var answer: PushAdmission.Answer?
            let (_, newHead) = try await Self.apply(pg, incoming, peer: device.id, hubSite: hubSite, now: now) { outcomes in
                let a = PushAdmission.answer(sorted, admitted, outcomes)
                try await pg.exec("UPDATE hub_device SET pushed = pushed + $1, last_seen = $2 WHERE id = $3", [.int(Int64(a.accepted)), .int(now), .text(device.id)])
                if let e = a.lastError {
                    try await pg.exec("UPDATE hub_device SET last_error = $1, last_error_at = $2 WHERE id = $3", [.text(e), .int(now), .text(device.id)])
                }
                answer = a
            }
            // The head this push set (no second read while holding it), else the head as it is.
            let head: Int64
            if let newHead { head = newHead } else { head = try await pg.one("SELECT seq FROM hub_log_head WHERE id = 1")!.int(0) }
            return PushResponse(results: answer!.results, hubSeq: head)
        }
    }

    public func pull(for device: Device, after: Int64, limit: Int, maxBytes: Int) async throws -> ScopedPage {
        let page = try await transaction { pg -> ScopedPage in
            // One snapshot for the rows and the head: every row at or below the head it sees is
            // committed and visible (positions are taken last, in commit order).
            try await pg.exec("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            let horizon = Int64(try await pg.one("SELECT value FROM hub_meta WHERE key = 'horizon'")?.text(0) ?? "0") ?? 0
            if after > 0 && after < horizon {
                throw HubFailure(.behindHorizon, "changes before hub position \(horizon) have been compacted; this device must take a snapshot (position \(after))")
            }
            let head = try await pg.one("SELECT seq FROM hub_log_head WHERE id = 1")!.int(0)
            let (cond, binds) = ScopeSQL.condition(device.scope, column: "row", firstBind: 4)
            let rows = try await pg.rows("""
                SELECT seq, body FROM hub_change WHERE seq > $1 AND (peer IS NULL OR peer <> $2) AND \(cond) ORDER BY seq LIMIT $3
                """, [.int(after), .text(device.id), .int(Int64(limit) + 1)] + binds)
            var page = ScopedPage(texts: [], cursor: after, more: false, next: nil, bytes: 0)
            for r in rows {
                guard page.addChange(try r.text(1), limit: limit, maxBytes: maxBytes) else { return page }
                page.cursor = try r.int(0)
            }
            // Everything up to the head was looked at: the cursor may pass it all.
            page.cursor = max(after, head)
            return page
        }
        let now = self.now()
        try await transaction { pg in
            try await pg.exec("UPDATE hub_device SET pull_cursor = GREATEST(pull_cursor, $1), last_seen = $2 WHERE id = $3", [.int(after), .int(now), .text(device.id)])
            if !page.more {
                try await pg.exec("""
                    UPDATE hub_device SET last_sync = $1, last_error = NULL, last_error_at = NULL WHERE id = $2 AND (last_error_at IS NULL OR last_error_at < $3)
                    """, [.int(now), .text(device.id), .int(now - 1000)])
            }
        }
        return page
    }

    public func changes(ids: [ChangeID], for device: Device) async throws -> [String] {
        guard !ids.isEmpty else { return [] }
        return try await read { pg in
            let rows = try await pg.rows("""
                SELECT w.ord, c.row, c.body FROM unnest($1::bigint[], $2::bigint[]) WITH ORDINALITY AS w(site, counter, ord)
                JOIN hub_change c ON c.site = w.site AND c.counter = w.counter ORDER BY w.ord
                """, [.ints(ids.map { Int64(bitPattern: $0.site.raw) }), .ints(ids.map(\.counter))])
            return try rows.compactMap { r in Replica.inScope(row: try r.text(1), scope: device.scope) ? try r.text(2) : nil }
        }
    }

    public func acknowledge(device: Device, cursor: Int64) async throws {
        let now = self.now()
        try await transaction { pg in
            let end = try await pg.one("SELECT seq FROM hub_log_head WHERE id = 1")!.int(0)
            guard cursor <= end else {
                throw HubFailure(.invalid, "cursor \(cursor) is beyond this hub's change log (\(end)); was the hub restored from an old backup?")
            }
            try await pg.exec("UPDATE hub_device SET pull_cursor = GREATEST(pull_cursor, $1), last_seen = $2, last_sync = $2 WHERE id = $3",
                              [.int(cursor), .int(now), .text(device.id)])
        }
    }

    /// A page of the current state of the scope: per record, in kind then id order, the changes
    /// that still hold one of its values (Protocol/sync.md §5), leaving out the device's own;
    /// then the records of kinds this schema does not hold yet, by kind key then id, with every
    /// change kept for them (as the SQLite store, ``Replica/snapshotPage(scope:after:limit:maxBytes:excludingPeer:)``).
    public func snapshot(for device: Device, after: String?, limit: Int, maxBytes: Int, held: [SiteID: Int64] = [:]) async throws -> ScopedPage {
        let scope = device.scope
        let start = try after.map { try SnapshotPosition(parsing: $0) }
        if let start, let id = start.id, !Replica.inScope(row: id, scope: scope) {
            throw HubFailure(.invalid, "snapshot position \(after!.prefix(60)) is outside this device's scope")
        }
        return try await transaction { pg in
            try await pg.exec("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            let head = try await pg.one("SELECT seq FROM hub_log_head WHERE id = 1")!.int(0)
            var page = ScopedPage(texts: [], cursor: head, more: false, next: nil, bytes: 0)
            let hasPending = try await pg.one("SELECT count(*) FROM (SELECT 1 FROM hub_pending LIMIT 1) AS p")!.int(0) > 0
            /// One record's changes at `seqs` onto the page; false when the page is full.
            func add(_ seqs: Set<Int64>, next: String) async throws -> Bool {
                var texts: [String] = [], size = 0
                // The device's own pushes too (a laptop restored from an older image may lack them).
                for r in try await pg.rows("SELECT body, site, counter FROM hub_change WHERE seq = ANY($1::bigint[]) ORDER BY seq", [.ints(Array(seqs))]) {
                    // Unless the device says it holds them (sync.md §5).
                    if Replica.holds(held, site: try r.int(1), counter: try r.int(2)) { continue }
                    let t = try r.text(0)
                    texts.append(t)
                    size += t.utf8.count
                }
                return page.addRecord(texts, size: size, next: next, limit: limit, maxBytes: maxBytes)
            }
            func pendingSeqs(_ kind: String, _ id: String) async throws -> [Int64] {
                try await pg.rows("SELECT seq FROM hub_pending WHERE kind = $1 AND row = $2", [.text(kind), .text(id)]).map { try $0.int(0) }
            }
            let startOrdinal = start?.ordinal ?? 0
            for kind in RecordKind.allCases where kind.ordinal >= startOrdinal {
                var continuing = start?.after != nil && kind.ordinal == startOrdinal
                var from = continuing ? max(start!.after!, scope) : scope
                while true {
                    let ids = try await pg.rows("""
                        SELECT id FROM \(PostgresSchema.kindTable(kind)) WHERE id \(continuing ? ">" : ">=") $1 AND id < $2 ORDER BY id LIMIT $3
                        """, [.text(from), .text(scope + "~"), .int(Int64(limit) + 1)]).map { try $0.text(0) }
                    let recs = try await PostgresRecords.load(pg, kind, ids, lock: false)
                    for id in ids {
                        guard let rec = recs[id] else { continue }
                        var seqs = Set<Int64>()
                        for reg in rec.state.registers {
                            for e in reg.entries { if let l = rec.log.first(where: { $0.id == e.dot }) { seqs.insert(l.seq) } }
                        }
                        // Writes of a newer schema are not in the registers: every change holding one goes along.
                        if hasPending { seqs.formUnion(try await pendingSeqs(kind.rawValue, id)) }
                        guard try await add(seqs, next: "\(kind.rawValue):\(id)") else { return page }
                    }
                    guard let onward = page.walkedOn(fetched: ids.count, limit: limit) else { return page }
                    guard onward else { break }
                    (from, continuing) = (ids[ids.count - 1], true)
                }
            }
            if hasPending {
                let (fromKind, fromID) = start?.keptAfter.map { ($0.kind, $0.id) } ?? ("", "")
                let records = try await pg.rows("""
                    SELECT DISTINCT kind, row FROM hub_pending
                    WHERE kind <> ALL($1::text[]) AND row >= $2 AND row < $3 AND (kind > $4 OR (kind = $4 AND row > $5))
                    ORDER BY kind, row LIMIT $6
                    """, [.texts(RecordKind.allCases.map(\.rawValue)), .text(scope), .text(scope + "~"), .text(fromKind), .text(fromID), .int(Int64(limit) + 1)])
                for r in records {
                    let kind = try r.text(0), id = try r.text(1)
                    guard try await add(Set(try await pendingSeqs(kind, id)), next: SnapshotPosition.kept(kind: kind, id: id)) else { return page }
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

    // MARK: Bundles

    /// Keeps an uploaded bundle in the database, so that any hub process can serve it.
    public func keepBundle(named name: String, bytes: [UInt8], from device: Device) async throws -> BundleKept {
        let now = self.now()
        return try await transaction { pg in
            let inserted = try await pg.rows("""
                INSERT INTO hub_bundle(device, name, bytes, stored) VALUES ($1, $2, $3, $4) ON CONFLICT (device, name) DO NOTHING RETURNING name
                """, [.text(device.id), .text(name), .bytes(bytes), .int(now)])
            let shown = "\(device.id)/\(name)"
            if !inserted.isEmpty { return BundleKept(path: shown, again: false) }
            let existing = try await pg.one("SELECT bytes FROM hub_bundle WHERE device = $1 AND name = $2", [.text(device.id), .text(name)])?.bytes(0) ?? []
            guard existing == bytes else {
                throw HubFailure(.nameTaken, "this device already uploaded another bundle named \(name); choose another name")
            }
            return BundleKept(path: shown, again: true)
        }
    }
}

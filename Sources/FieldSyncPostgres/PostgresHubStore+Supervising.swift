import FieldSyncCore
import FieldSyncHub
import FieldSyncReplica
import FieldSyncTrust
import Foundation
import PostgresNIO

// MARK: - Conflicts, records and reports in a supervisor's scope

/// What supervisors see and do at a PostgreSQL hub. The views and the settling are
/// ``RecordViews``' (the laptop's and the SQLite hub's own), the scoping ``SupervisorRules``';
/// this file loads records and changes and keeps what a settlement changes.
extension PostgresHubStore {
    // MARK: Loading

    /// Logged changes by their positions, with when the hub received them.
    static func logged(_ pg: PG, _ log: [RowLogEntry]) async throws -> [RecordViews.Logged] {
        guard !log.isEmpty else { return [] }
        var out: [RecordViews.Logged] = []
        for r in try await pg.rows("SELECT body, received FROM hub_change WHERE seq = ANY($1::bigint[]) ORDER BY seq", [.ints(log.map(\.seq))]) {
            out.append(.init(change: try ChangeCodec.decode(JSONValue.parse(try r.text(0))), received: try r.int(1)))
        }
        return out
    }

    /// The names of these sites (their hex id when unnamed).
    static func names(_ pg: PG, _ sites: Set<SiteID>) async throws -> [SiteID: String] {
        guard !sites.isEmpty else { return [:] }
        var out: [SiteID: String] = [:]
        for r in try await pg.rows("SELECT id, hex, name FROM fs_site WHERE id = ANY($1::bigint[])", [.ints(sites.map { Int64(bitPattern: $0.raw) })]) {
            let name = try r.text(2)
            out[SiteID(raw: UInt64(bitPattern: try r.int(0)))] = name.isEmpty ? try r.text(1) : name
        }
        return out
    }

    /// The sites a record's log mentions.
    static func sites(_ rec: PGRecord) -> Set<SiteID> { Set(rec.log.map(\.id.site)) }

    /// Finds the record `idOrPrefix` names among those in `scope` (``RecordLookup``): one outside
    /// it is "not found" in the same words as a missing one.
    static func lookUp(_ pg: PG, _ idOrPrefix: String, scope: String) async throws -> (RecordKind, String) {
        let p = try RecordLookup.normalized(idOrPrefix)
        let inScope = "AND id >= $2 AND id < $3"
        let scopeBinds: [PGValue] = [.text(scope), .text(scope + "~")]
        var matches: [(RecordKind, String)] = []
        for k in RecordKind.allCases {
            let t = PostgresSchema.kindTable(k)
            var rows = try await pg.rows("SELECT id FROM \(t) WHERE id >= $1 AND id < $4 \(inScope) ORDER BY id LIMIT 3",
                                         [.text(p)] + scopeBinds + [.text(p + "~")]).map { try $0.text(0) }
            if rows.contains(p) { return (k, p) }
            if rows.isEmpty, !p.contains("-"), k != .region {
                rows = try await pg.rows("""
                    SELECT id FROM \(t) WHERE (substr(id, strpos(id, '-') + 1, $4::int) = $1 OR right(id, $4::int) = $1) \(inScope) ORDER BY id LIMIT 3
                    """, [.text(p)] + scopeBinds + [.int(Int64(p.utf8.count))]).map { try $0.text(0) }
            }
            matches += rows.map { (k, $0) }
        }
        return try RecordLookup.pick(idOrPrefix, matches)
    }

    /// One open conflict with its candidates (nil when the record has none on `field`).
    static func conflictInfo(_ pg: PG, _ rec: PGRecord, field: String, since: Int64?) async throws -> ConflictInfo? {
        guard let c = rec.state.conflicts.first(where: { $0.field == field }) else { return nil }
        let dots = Set(c.entries.map(\.dot) + c.edits.map(\.entry.dot))
        let competing = try await logged(pg, rec.log.filter { dots.contains($0.id) })
        let names = try await names(pg, Set(dots.map(\.site)))
        return RecordViews.conflictInfo(rec.kind, rec.id, field: field, rec.state, since: since,
                                        logged: Dictionary(competing.map { ($0.change.id, $0) }, uniquingKeysWith: { a, _ in a }), names: names)
    }

    /// The open conflicts whose records lie under `prefix`, oldest first.
    static func openConflicts(_ pg: PG, prefix: String) async throws -> [ConflictInfo] {
        let rows = try await pg.rows("""
            SELECT kind, row, field, since FROM fs_conflict WHERE row >= $1 AND row < $2 ORDER BY since, kind, row, field
            """, [.text(prefix), .text(prefix + "~")])
        var wanted: [RecordKind: Set<String>] = [:]
        var list: [(RecordKind, String, String, Int64)] = []
        for r in rows {
            guard let kind = RecordKind(rawValue: try r.text(0)) else { continue }
            let row = try r.text(1)
            wanted[kind, default: []].insert(row)
            list.append((kind, row, try r.text(2), try r.int(3)))
        }
        var records: [String: PGRecord] = [:]
        for (kind, ids) in wanted {
            for (id, rec) in try await PostgresRecords.load(pg, kind, Array(ids), lock: false) { records["\(kind.rawValue)/\(id)"] = rec }
        }
        var out: [ConflictInfo] = []
        for (kind, row, field, since) in list {
            guard let rec = records["\(kind.rawValue)/\(row)"], let info = try await conflictInfo(pg, rec, field: field, since: since) else { continue }
            out.append(info)
        }
        return out
    }

    // MARK: Conflicts

    public func conflicts(for s: Supervisor, _ filter: ConflictFilter) async throws -> [ConflictInfo] {
        guard let f = SupervisorRules.scoped(filter, s) else { return [] }
        let now = self.now()
        return try await readSnapshot { pg in try await Self.openConflicts(pg, prefix: s.scope).filter { f.matches($0, now: now) } }
    }

    public func conflictSummary(for s: Supervisor, _ filter: ConflictFilter) async throws -> ConflictSummary {
        guard SupervisorRules.scoped(filter, s) != nil else { return SupervisorRules.noConflicts }
        return RecordViews.summary(try await conflicts(for: s, filter), now: now())
    }

    public func conflictDetail(for s: Supervisor, _ text: String) async throws -> ConflictDetail {
        let (record, field) = try RecordLookup.conflictKey(text)
        let maxDrift = HybridLogicalClock.defaultMaxDrift
        return try await readSnapshot { pg in
            let (kind, id) = try await Self.lookUp(pg, record, scope: s.scope)
            guard let rec = try await PostgresRecords.load(pg, kind, [id], lock: false)[id],
                  let info = try await Self.conflictInfo(pg, rec, field: field, since: nil) else {
                throw RecordLookup.noOpenConflict(id, field)
            }
            let since = try await pg.one("SELECT since FROM fs_conflict WHERE kind = $1 AND row = $2 AND field = $3",
                                         [.text(kind.rawValue), .text(id), .text(field)])?.int(0) ?? info.since
            let detailed = info.opened(since: since)
            var base: [ConflictInfo.Candidate]?
            if info.type == .concurrentValues {
                base = RecordViews.base(kind, field: field, rec.state, logged: try await Self.logged(pg, rec.log),
                                        names: try await Self.names(pg, Self.sites(rec)))
            }
            let (why, ahead) = RecordViews.explainWinner(detailed, maxDrift: maxDrift)
            return ConflictDetail(detailed, record: RecordViews.record(kind, id, rec.state), base: base, why: why, winnerAheadBy: ahead)
        }
    }

    public func resolve(for s: Supervisor, _ text: String, _ how: Resolution, note: String?) async throws -> EditResult {
        let (record, field) = try RecordLookup.conflictKey(text)
        let now = self.now(), hubSite = self.hubSite
        return try await transaction { pg in
            let (kind, id) = try await Self.lookUp(pg, record, scope: s.scope)
            return try await Self.settle(pg, [(kind, id, field)], how, author: s.name, note: SupervisorRules.settlingNote(note), hubSite: hubSite, now: now)[0]
        }
    }

    public func resolveAll(for s: Supervisor, _ filter: ConflictFilter, _ how: Resolution, note: String?) async throws -> [EditResult] {
        try RecordLookup.checkBulk(how)
        guard let f = SupervisorRules.scoped(filter, s) else { return [] }
        let now = self.now(), hubSite = self.hubSite
        return try await transaction { pg in
            let targets = try await Self.openConflicts(pg, prefix: s.scope).filter { f.matches($0, now: now) }
            return try await Self.settle(pg, targets.map { ($0.kind, $0.row, $0.field) }, how, author: s.name,
                                         note: SupervisorRules.settlingNote(note), hubSite: hubSite, now: now)
        }
    }

    /// Settles conflicts with changes made by the hub's own site, in the caller's transaction:
    /// the records are locked (in id order), then the hub's clock and counter (`hub_clock`),
    /// then the change log's head — the order every writer takes them in, so settlements made by
    /// several hub processes at once neither deadlock nor share a change id.
    static func settle(_ pg: PG, _ targets: [(RecordKind, String, String)], _ how: Resolution, author: String, note: String,
                       hubSite: SiteID, now: Int64) async throws -> [EditResult] {
        guard !targets.isEmpty else { return [] }
        var records: [String: PGRecord] = [:]
        for kind in RecordKind.allCases {
            let ids = Set(targets.filter { $0.0 == kind }.map(\.1))
            for (id, rec) in try await PostgresRecords.load(pg, kind, Array(ids), lock: true) { records["\(kind.rawValue)/\(id)"] = rec }
        }
        guard let clockRow = try await pg.one("SELECT hlc, counter FROM hub_clock WHERE id = 1 FOR UPDATE") else {
            throw ReplicaError.storage("hub_clock is empty")
        }
        var clock = HybridLogicalClock(last: HybridTimestamp(packed: try clockRow.int(0)))
        var counter = try clockRow.int(1)
        var results: [EditResult] = []
        for (kind, id, field) in targets {
            let key = "\(kind.rawValue)/\(id)"
            guard var rec = records[key] else { throw RecordLookup.noOpenConflict(id, field) }
            let before = Set(rec.state.conflicts.map(\.field))
            let plan = try RecordViews.settling(kind, id, field: field, rec.state, how, note: note)
            // Later than every write it settles, whatever clock the laptops that made them had.
            for reg in rec.state.registers { for e in reg.entries { _ = clock.observe(e.hlc, wall: now) } }
            let (next, overflow) = counter.addingReportingOverflow(1)
            guard !overflow, next <= ChangeID.maxCounter else { throw ReplicaError.storage("the hub's change counter is exhausted") }
            counter = next
            let c = Change(id: ChangeID(site: hubSite, counter: counter), kind: kind, row: id, hlc: clock.tick(wall: now), author: author,
                           writes: plan.writes, rowContext: plan.rowContext, note: plan.note, resolves: plan.settles)
            let outcome = try await apply(pg, [Incoming(change: .known(c), text: ChangeCodec.canonicalText(c), onlyIfHeld: nil, local: true)],
                                          peer: nil, hubSite: hubSite, now: now)
            if case .refused(_, let e)? = outcome.outcomes.first { throw ReplicaError.invalidInput(e) }
            rec = try await PostgresRecords.load(pg, kind, [id], lock: false)[id] ?? rec
            records[key] = rec
            results.append(EditResult(id, kind, change: c.id, fieldsChanged: plan.writes.map(\.field),
                                      conflictsSettled: before.subtracting(rec.state.conflicts.map(\.field)).sorted()))
        }
        try await pg.exec("UPDATE hub_clock SET hlc = $1, counter = $2 WHERE id = 1", [.int(clock.last.packed), .int(counter)])
        return results
    }

    // MARK: Records

    public func records(for s: Supervisor, _ query: RecordQuery) async throws -> RecordPage {
        guard let q = SupervisorRules.scoped(query, s) else { return RecordPage(records: [], total: 0) }
        let spec = q.kind.spec
        let t = PostgresSchema.kindTable(q.kind)
        var conds: [String] = [], binds: [PGValue] = []
        func bind(_ v: PGValue) -> String { binds.append(v); return "$\(binds.count)" }
        if let p = q.villagePrefix, !p.isEmpty { conds.append("id >= \(bind(.text(p))) AND id < \(bind(.text(p + "~")))") }
        if !q.includeDeleted { conds.append("_deleted = 0") }
        if let text = q.text, !text.isEmpty {
            // strpos, not LIKE: % and _ in what people type are ordinary characters.
            let n = bind(.text(text))
            let columns = ["id"] + spec.fields.filter { $0.type.sqlType == "TEXT" }.map(\.name)
            conds.append("(" + columns.map { "strpos(\($0), \(n)) > 0" }.joined(separator: " OR ") + ")")
        }
        let whereClause = conds.isEmpty ? "" : "WHERE " + conds.joined(separator: " AND ")
        let limit = max(0, min(q.limit, 1000)), offset = max(0, q.offset)
        let countBinds = binds
        let pageSQL = """
            SELECT id, \(PostgresRecords.columns(q.kind)), _deleted,
              (SELECT string_agg(field, ',' ORDER BY field) FROM fs_conflict c WHERE c.kind = '\(q.kind.rawValue)' AND c.row = t.id)
            FROM \(t) t \(whereClause) ORDER BY id LIMIT \(limit) OFFSET \(offset)
            """
        return try await readSnapshot { pg in
            let total = Int(try await pg.one("SELECT count(*) FROM \(t) t \(whereClause)", countBinds)?.int(0) ?? 0)
            var records: [Record] = []
            for r in try await pg.rows(pageSQL, countBinds) {
                var values: [FieldValue] = []
                for (i, f) in spec.fields.enumerated() { values.append(try r.field(i + 1, f.type)) }
                let deleted = try r[spec.fields.count + 1].decode(Int16.self) != 0
                let conflicts = try r.optText(spec.fields.count + 2)?.split(separator: ",").map(String.init) ?? []
                records.append(Record(q.kind, try r.text(0), values: values, deleted: deleted, conflicts: conflicts))
            }
            return RecordPage(records: records, total: total)
        }
    }

    public func recordHistory(for s: Supervisor, id: String) async throws -> (Record, [HistoryEntry]) {
        try SupervisorRules.checkWholeID(id)
        return try await readSnapshot { pg in
            // A whole id (checked above) finds that record or none: never another by prefix.
            let (kind, found) = try await Self.lookUp(pg, id, scope: s.scope)
            guard let rec = try await PostgresRecords.load(pg, kind, [found], lock: false)[found] else { throw ReplicaError.notFound(id) }
            let history = RecordViews.history(kind, rec.state, try await Self.logged(pg, rec.log), names: try await Self.names(pg, Self.sites(rec)))
            return (RecordViews.record(kind, found, rec.state), history)
        }
    }

    // MARK: Reports

    public func report(for s: Supervisor, _ q: ReportQuery) async throws -> HubReport {
        try await report(try q.scoped(to: s))
    }

    /// The report for `q` over the whole hub (the admin command).
    public func report(_ q: ReportQuery) async throws -> HubReport {
        let engine = try ReportEngine(query: q, now: now(), sql: .postgres)
        let (results, tallies) = try await readSnapshot { pg in
            var out: [String: [ReportRow]] = [:]
            var tallies = engine.tallies()
            for st in engine.statements {
                if st.feed != .results {
                    // Each row's text columns as their UTF-8 bytes as PostgreSQL sent them (binary
                    // text is the text itself), into the tally as the row arrives; packed rows
                    // (a village and an array per column) are unpacked element by element.
                    var buffer: [UInt8] = [], spans: [Range<Int>?] = []
                    /// One row of the statement, its columns at `spans` in `buffer`.
                    func tally(_ spans: [Range<Int>?]) {
                        let a = ReportTallies.attendeesColumn
                        let attendees = st.feed == .visits && a < spans.count ? spans[a].flatMap { PackedArray.integer(buffer[$0]) } : nil
                        buffer.withUnsafeBufferPointer { all in
                            tallies.add(st.feed, attendees: attendees) { i in
                                i < spans.count ? spans[i].map { UnsafeBufferPointer(rebasing: all[$0]) } : nil
                            }
                        }
                    }
                    try await pg.each(st.numberedSQL, st.args.map { .text($0) }) { r in
                        buffer.removeAll(keepingCapacity: true)
                        var columns: [Range<Int>?] = []
                        for cell in r {
                            guard let b = cell.bytes else { columns.append(nil); continue }
                            let start = buffer.count
                            buffer.append(contentsOf: b.readableBytesView)
                            columns.append(start..<buffer.count)
                        }
                        guard st.packed else { return tally(columns) }
                        let arrays = try columns.dropFirst().map { c in try c.map { try PackedArray.elements(buffer, $0) } ?? [] }
                        let n = arrays.first?.count ?? 0
                        guard arrays.allSatisfy({ $0.count == n }) else { throw PackedArray.malformed }
                        for i in 0..<n {
                            spans.removeAll(keepingCapacity: true)
                            spans.append(columns.first ?? nil)
                            for a in arrays { spans.append(a[i]) }
                            tally(spans)
                        }
                    }
                    continue
                }
                let rows = try await pg.rows(st.numberedSQL, st.args.map { .text($0) })
                out[st.key] = try rows.map { r in
                    ReportRow(try (0..<r.count).map { i -> ReportValue in
                        let cell = r[i]
                        guard cell.bytes != nil else { return .null }
                        switch cell.dataType {
                        case .int8, .int4, .int2: return .int(try cell.decode(Int64.self))
                        default: return .text(try cell.decode(String.self))
                        }
                    })
                }
            }
            return (out, tallies)
        }
        return engine.assemble(results, tallies)
    }

    /// Runs `body` in a read-only repeatable-read transaction: everything it reads is one
    /// snapshot of the database.
    func readSnapshot<T: Sendable>(_ body: @Sendable @escaping (PG) async throws -> T) async throws -> T {
        try await transaction { pg in
            try await pg.exec("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            return try await body(pg)
        }
    }
}
extension PostgresHubStore: HubStore {}

// MARK: - Packed rows

/// PostgreSQL's binary form of a one-dimensional array (`array_agg` of a report's column):
/// where each element lies in the buffer, nil for NULL.
enum PackedArray {
    struct Malformed: Error, CustomStringConvertible {
        var description: String { "a packed report row is not a one-dimensional array as PostgreSQL sends it" }
    }
    static let malformed = Malformed()

    static func elements(_ b: [UInt8], _ r: Range<Int>) throws -> [Range<Int>?] {
        var at = r.lowerBound
        func int32() throws -> Int {
            guard at + 4 <= r.upperBound else { throw malformed }
            let v = Int32(bitPattern: UInt32(b[at]) << 24 | UInt32(b[at + 1]) << 16 | UInt32(b[at + 2]) << 8 | UInt32(b[at + 3]))
            at += 4
            return Int(v)
        }
        let dims = try int32()
        _ = try int32()  // has nulls
        _ = try int32()  // element type
        guard dims == 0 || dims == 1 else { throw malformed }
        if dims == 0 { return [] }
        let count = try int32()
        _ = try int32()  // lower bound
        guard count >= 0, count <= r.count else { throw malformed }
        var out: [Range<Int>?] = []
        out.reserveCapacity(count)
        for _ in 0..<count {
            let n = try int32()
            if n < 0 { out.append(nil); continue }
            guard at + n <= r.upperBound else { throw malformed }
            out.append(at..<(at + n))
            at += n
        }
        return out
    }

    /// A binary bigint, integer or smallint (big-endian), nil for any other width.
    static func integer(_ bytes: ArraySlice<UInt8>) -> Int64? {
        guard [2, 4, 8].contains(bytes.count) else { return nil }
        var v: Int64 = bytes.first.map { $0 >= 0x80 ? -1 : 0 } ?? 0
        for byte in bytes { v = v << 8 | Int64(byte) }
        return v
    }
}

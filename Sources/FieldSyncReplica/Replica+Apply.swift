import FieldSyncCore
import GRDB

// MARK: - ApplyReport

/// What applying a batch of changes did.
public struct ApplyReport: Sendable, Equatable {
    /// Changes that were new and changed at least one field.
    public var applied = 0
    /// Changes this replica already had (same id, same content).
    public var duplicates = 0
    /// New changes that an already-held write had seen and replaced: kept in history only.
    public var obsolete = 0
    public var conflictsOpened = 0
    public var conflictsClosed = 0
    /// Received changes kept aside instead of merged (not authentic, or claiming this replica's
    /// own site id), with their reasons in `fs_set_aside`.
    public var setAside = 0
    /// New changes of a record kind this schema does not hold yet: kept whole, to relay and to
    /// merge once the schema that defines the kind is taken (changeset.md §2.4).
    public var held = 0
    /// Changes stamped beyond the drift bound, with how far ahead of this machine's clock (ms).
    public var clockAhead: [ChangeID: Int64] = [:]

    public init() {}

    public var received: Int { applied + duplicates + obsolete + held }
}

// MARK: - ChangeSource

/// Where a logged change came from (`fs_change.source`).
public enum ChangeSource: Int, Sendable {
    /// Made here.
    case local = 0
    /// From another replica directly: a bundle, a test.
    case peer = 1
    /// Pulled from the hub.
    case hub = 2
    /// Pushed to this hub by an enrolled device (`fs_change.peer` names it).
    case device = 3
}

// MARK: - Applying changes

extension Replica {
    /// Applies changes from elsewhere in one transaction: all of them, or (on any error) none.
    ///
    /// Order does not matter and repeats are harmless: a change already held is skipped.
    @discardableResult
    public func apply(_ changes: [Change], source: ChangeSource = .peer, peer: String? = nil) throws -> ApplyReport {
        try write { db in
            var report = ApplyReport()
            for c in changes { try applyOne(db, c, local: false, source: source, peer: peer, report: &report) }
            return report
        }
    }

    /// What happened to one change of ``applyEach(_:source:peer:)``.
    public enum EachOutcome: Sendable, Equatable {
        case applied, obsolete, duplicate
        case refused(ApplyRefusal.Code, InputError)
    }

    /// One change for ``applyEach(_:source:peer:)``: the change, and how it is vouched for.
    public struct Incoming: Sendable {
        public var change: ReceivedChange
        /// Its canonical text, when the caller has it already.
        public var text: String?
        /// When set, the change is taken only if this replica already holds it exactly (a
        /// duplicate); otherwise it is refused with this code and reason.
        public var onlyIfHeld: (ApplyRefusal.Code, String)?

        public init(_ change: Change, text: String? = nil, onlyIfHeld: (ApplyRefusal.Code, String)? = nil) {
            self.init(.known(change), text: text, onlyIfHeld: onlyIfHeld)
        }

        public init(_ change: ReceivedChange, text: String? = nil, onlyIfHeld: (ApplyRefusal.Code, String)? = nil) {
            self.change = change
            self.text = text
            self.onlyIfHeld = onlyIfHeld
        }
    }

    /// Applies changes in one transaction, refusing bad ones individually: a change that cannot
    /// be taken (a replayed id with other content) is reported and the others still count.
    public func applyEach(_ changes: [Incoming], source: ChangeSource, peer: String?) throws -> (outcomes: [EachOutcome], report: ApplyReport) {
        try write { db in
            var report = ApplyReport()
            var out: [EachOutcome] = []
            out.reserveCapacity(changes.count)
            for i in changes {
                let c = i.change
                let before = report
                do {
                    try receive(db, c, source: source, peer: peer, onlyIfHeld: i.onlyIfHeld, body: i.text, report: &report)
                } catch let e as ApplyRefusal {
                    out.append(.refused(e.code, e.error))
                    continue
                } catch let e as DatabaseError where e.resultCode == .SQLITE_CONSTRAINT {
                    // A store with a unique index on change ids (the hub) catches a replayed id
                    // even when it names another record.
                    out.append(.refused(.clone, InputError("change \(c.id)", "this id was received before with different content: two replicas share a site id (was a replica file copied?)")))
                    continue
                }
                out.append(report.duplicates > before.duplicates ? .duplicate : report.obsolete > before.obsolete ? .obsolete : .applied)
            }
            return (out, report)
        }
    }

    /// The one write path for local edits and incoming changes: log the change, merge it into
    /// the record, store the winners, keep `fs_conflict` in step. Runs inside a transaction.
    ///
    /// `proof` is the manifest that vouches for a received change (kept, to relay it later);
    /// `onlyIfHeld` takes the change only as a duplicate (``Incoming/onlyIfHeld``). A received
    /// change claiming this replica's own site id that it does not hold is refused: nobody else
    /// makes changes under it. Refusals are ``ApplyRefusal``s; the transaction goes on.
    func applyOne(_ db: Database, _ c: Change, local: Bool, source: ChangeSource? = nil, peer: String? = nil,
                  proof: Int64? = nil, onlyIfHeld: (ApplyRefusal.Code, String)? = nil, body given: String? = nil,
                  preloaded: LoadedRow? = nil, report: inout ApplyReport) throws {
        // The canonical text as bytes when none was given: a String is made only if needed.
        let bytes = given == nil ? ChangeCodec.canonicalBytes(c) : []
        var body: String { given ?? String(decoding: bytes, as: UTF8.self) }
        let c = ChangeCodec.readAgainIfKnown(c, text: body)
        var row = try preloaded ?? loadRow(db, c.kind, c.row)
        if !local {
            let held = try row.log.first(where: { $0.id == c.id }).map { try changeBody(db, seq: $0.seq) }
            guard try ApplyRefusal.checkArrival(c.id, text: body, held: held, onlyIfHeld: onlyIfHeld, own: site, whose: "this replica's") else {
                report.duplicates += 1
                return
            }
        }
        let ins = try hotStatement(db, HotKey.logInsert, sql: "INSERT INTO fs_change(site, counter, kind, row, hlc, author, received, source, peer, body, proof) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
        ins.begin()
        ins.bind(1, Int64(bitPattern: c.id.site.raw))
        ins.bind(2, c.id.counter)
        ins.bind(3, c.kind.rawValue)
        ins.bind(4, c.row)
        ins.bind(5, c.hlc.packed)
        ins.bind(6, c.author)
        ins.bind(7, wallClock())
        ins.bind(8, Int64((source ?? (local ? .local : .peer)).rawValue))
        if let peer { ins.bind(9, peer) }
        if let given { ins.bind(10, given) } else { ins.bind(10, utf8: bytes) }
        if let proof { ins.bind(11, proof) }
        try ins.run(db)
        lastSeq = db.lastInsertedRowID
        row.log.append(RowLogEntry(id: c.id, seq: lastSeq))
        if c.hasPending {
            try db.execute(sql: "INSERT INTO fs_pending(seq, kind, row) VALUES (?, ?, ?)", arguments: [lastSeq, c.kind.rawValue, c.row])
        }
        if !knownSites.contains(c.id.site.raw) { try noteSite(db, c.id.site, name: nil) }
        if !local, let ahead = clock.observe(c.hlc, wall: now) { report.clockAhead[c.id] = ahead }

        let merged = RecordMerge.merge(&row.state, c)
        // Stored even when nothing changed: the record's change list grew.
        try storeRow(db, &row)
        if merged.changedNothing {
            report.obsolete += 1
            return
        }
        if !merged.conflicts.isEmpty || !merged.closed.isEmpty {
            try syncConflicts(db, kind: c.kind, row: c.row, merged, report: &report)
        }
        report.applied += 1
    }

    /// Takes one received change: merged (``applyOne``) when this schema reads it, kept
    /// (``hold(_:_:source:peer:proof:onlyIfHeld:report:)``) when its kind is one it does not hold yet.
    func receive(_ db: Database, _ c: ReceivedChange, source: ChangeSource, peer: String? = nil, proof: Int64? = nil,
                 onlyIfHeld: (ApplyRefusal.Code, String)? = nil, body: String? = nil, report: inout ApplyReport) throws {
        switch c {
        case .known(let k): try applyOne(db, k, local: false, source: source, peer: peer, proof: proof, onlyIfHeld: onlyIfHeld, body: body, report: &report)
        case .foreign(let f): try hold(db, f, source: source, peer: peer, proof: proof, onlyIfHeld: onlyIfHeld, report: &report)
        }
    }

    /// Keeps a change of a record kind this schema does not hold yet (``ForeignChange``): the
    /// same checks as ``applyOne`` — a duplicate counts nothing, an id held with other content is
    /// a clone, this replica's own site id is refused — then it is logged with its text and listed
    /// in `fs_pending` under its record, so pushes, pulls, snapshots and bundles carry it and
    /// ``mergePending(from:)`` merges it once the kind is known. No record table is touched.
    func hold(_ db: Database, _ f: ForeignChange, source: ChangeSource, peer: String? = nil, proof: Int64? = nil,
              onlyIfHeld: (ApplyRefusal.Code, String)? = nil, report: inout ApplyReport) throws {
        // Read while its kind was unknown, stored after this process took the schema that adds it
        // (a push decoded while an administrator loaded it): it merges now, as any change does.
        if let known = try Self.knownNow(f) {
            return try applyOne(db, known, local: false, source: source, peer: peer, proof: proof, onlyIfHeld: onlyIfHeld, body: f.text, report: &report)
        }
        guard try ApplyRefusal.checkArrival(f.id, text: f.text, held: try heldForeign(db, f), onlyIfHeld: onlyIfHeld, own: site, whose: "this replica's") else {
            report.duplicates += 1
            return
        }
        let kept = try Row.fetchOne(db, sql: """
            SELECT count(*), COALESCE(sum(length(CAST(c.body AS BLOB))), 0) FROM fs_pending p JOIN fs_change c ON c.seq = p.seq WHERE p.kind = ? AND p.row = ?
            """, arguments: [f.kind, f.row])
        if let refusal = Self.keptFull(f, count: kept?[0] ?? 0, bytes: kept?[1] ?? 0) { throw refusal }
        try db.execute(sql: """
            INSERT INTO fs_change(site, counter, kind, row, hlc, author, received, source, peer, body, proof) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """, arguments: [Int64(bitPattern: f.id.site.raw), f.id.counter, f.kind, f.row, f.hlc.packed, f.author, wallClock(),
                             Int64(source.rawValue), peer, f.text, proof])
        lastSeq = db.lastInsertedRowID
        try db.execute(sql: "INSERT INTO fs_pending(seq, kind, row) VALUES (?, ?, ?)", arguments: [lastSeq, f.kind, f.row])
        if !knownSites.contains(f.id.site.raw) { try noteSite(db, f.id.site, name: nil) }
        if let ahead = clock.observe(f.hlc, wall: now) { report.clockAhead[f.id] = ahead }
        report.held += 1
    }

    /// `f` read again when this process has taken the schema that adds its kind since it was
    /// read; nil while the kind is still unknown. A change that schema refuses, or whose text is
    /// not the canonical form it gives, is refused (`invalid`).
    public static func knownNow(_ f: ForeignChange) throws(ApplyRefusal) -> Change? {
        guard Schema.current.kind(named: f.kind) != nil else { return nil }
        switch ChangeCodec.readKept(f.text, schema: .current) {
        case .stillNewer: return nil
        case .refused(_, let why): throw ApplyRefusal(code: .invalid, error: InputError("change \(f.id)", why))
        case .readable(let c):
            guard ChangeCodec.canonicalText(c).utf8.elementsEqual(f.text.utf8) else {
                throw ApplyRefusal(code: .invalid, error: InputError("change \(f.id)", ChangeCodec.notCanonical))
            }
            return c
        }
    }

    /// The refusal when `f`'s record already keeps `count` changes of `bytes` bytes of text
    /// (``ChangeCodec/maxKeptChangesPerRecord``), or nil. Both stores ask this.
    public static func keptFull(_ f: ForeignChange, count: Int, bytes: Int) -> ApplyRefusal? {
        guard count >= ChangeCodec.maxKeptChangesPerRecord || bytes + f.text.utf8.count > ChangeCodec.maxKeptBytesPerRecord else { return nil }
        return ApplyRefusal(code: .keptFull, error: InputError("change \(f.id)",
            "its record \(f.row), of the kind \(f.kind) this store does not hold yet, already keeps \(count) changes (\(bytes) bytes): at most \(ChangeCodec.maxKeptChangesPerRecord) changes and \(ChangeCodec.maxKeptBytesPerRecord) bytes until its schema is taken; offer it again later"))
    }

    /// The text kept for `f`'s id under its record while its kind is unknown here, if any.
    func heldForeign(_ db: Database, _ f: ForeignChange) throws -> String? {
        try String.fetchOne(db, sql: """
            SELECT c.body FROM fs_pending p JOIN fs_change c ON c.seq = p.seq WHERE p.kind = ? AND p.row = ? AND c.site = ? AND c.counter = ?
            """, arguments: [f.kind, f.row, Int64(bitPattern: f.id.site.raw), f.id.counter])
    }

    func changeBody(_ db: Database, seq: Int64) throws -> String {
        let st = try db.cachedStatement(sql: "SELECT body FROM fs_change WHERE seq = ?")
        st.begin()
        st.bind(1, seq)
        defer { st.begin() }
        guard try st.step(db) else { throw ReplicaError.storage("change log entry \(seq) is missing") }
        return st.text(0)
    }

    /// Keeps `fs_conflict` in step with what a merge did (``RecordMerge/Result``).
    func syncConflicts(_ db: Database, kind: RecordKind, row: String, _ merged: RecordMerge.Result, report: inout ApplyReport) throws {
        for f in merged.closed {
            try db.execute(sql: "DELETE FROM fs_conflict WHERE kind = ? AND row = ? AND field = ?", arguments: [kind.rawValue, row, f])
        }
        for c in merged.conflicts {
            try db.execute(sql: """
                INSERT INTO fs_conflict(kind, row, field, since) VALUES (?, ?, ?, ?)
                ON CONFLICT(kind, row, field) DO UPDATE SET since = excluded.since
                """, arguments: [kind.rawValue, row, c.field, c.openedAt.millis])
        }
        report.conflictsClosed += merged.closed.count
        report.conflictsOpened += merged.opened.count
    }

    /// Learns the human names of sites (from a bundle header or a push).
    public func noteSites(_ sites: [SiteID: String]) throws {
        guard !sites.isEmpty else { return }
        try write { db in for (id, name) in sites { try noteSite(db, id, name: name) } }
    }

    /// Records sites and their names inside a transaction (the hub's enrolment and pushes).
    @_spi(Hub) public func noteSites(_ db: Database, _ sites: [SiteID: String]) throws {
        for (id, name) in sites { try noteSite(db, id, name: name) }
    }

    /// Records a site's name only when it has none yet (names from a bundle).
    func noteSiteIfUnnamed(_ db: Database, _ site: SiteID, name: String) throws {
        try db.execute(sql: """
            INSERT INTO fs_site(id, hex, name) VALUES (?, ?, ?)
            ON CONFLICT(id) DO UPDATE SET name = excluded.name WHERE name = ''
            """, arguments: [Int64(bitPattern: site.raw), site.hex, name])
        knownSites.insert(site.raw)
    }

    /// Every site this replica has heard of, with its name when known.
    public func knownSiteNames() throws -> [SiteID: String] { try read { db in try siteNames(db) } }

    /// Records a site (and its human name, when known).
    func noteSite(_ db: Database, _ site: SiteID, name: String?) throws {
        try db.execute(sql: """
            INSERT INTO fs_site(id, hex, name) VALUES (?, ?, COALESCE(?, ''))
            ON CONFLICT(id) DO UPDATE SET name = COALESCE(NULLIF(excluded.name, ''), name)
            """, arguments: [Int64(bitPattern: site.raw), site.hex, name])
        knownSites.insert(site.raw)
    }

    // MARK: Rows

    /// A record's stored form: its row id in the base table (nil if new) and merge state.
    struct LoadedRow {
        var rid: Int64?
        var id: String
        var state: RowState
        /// The changes logged for this record, oldest first.
        var log: [RowLogEntry] = []
    }

    func loadRow(_ db: Database, _ kind: RecordKind, _ id: String) throws -> LoadedRow {
        let sql = RowSQL.of(kind)
        let fields = sql.spec.fields
        let st = try hotStatement(db, HotKey.row(sql, 0), sql: sql.select)
        st.begin()
        st.bind(1, id)
        defer { st.begin() }
        guard try st.step(db) else { return LoadedRow(rid: nil, id: id, state: RowState(kind: kind), log: []) }
        let n = Int32(fields.count)
        var columns: [FieldValue] = []
        columns.reserveCapacity(fields.count)
        for i in 0..<n { columns.append(st.value(i + 1)) }
        let deleted = st.int64(n + 1) != 0
        let (state, log) = try st.withBlob(n + 2) { try ClockBlob.decode($0, kind: kind, columns: columns, deleted: deleted) }
        return LoadedRow(rid: st.int64(0), id: id, state: state, log: log)
    }

    func storeRow(_ db: Database, _ row: inout LoadedRow) throws {
        let kind = row.state.kind
        let sql = RowSQL.of(kind)
        if row.state.registers.count != sql.spec.fields.count + 1 {
            // Loaded before this process took a newer schema: the new fields start empty.
            row.state = RowState(kind: kind, registers: row.state.registers)
        }
        let blob = ClockBlob.encode(row.state, log: row.log)
        let st = try row.rid == nil ? hotStatement(db, HotKey.row(sql, 1), sql: sql.insert) : hotStatement(db, HotKey.row(sql, 2), sql: sql.update)
        st.begin()
        var i: Int32 = 1
        for r in row.state.registers.dropLast() {
            st.bind(i, r.value)
            i += 1
        }
        st.bind(i, row.state.isDeleted ? 1 : 0)
        st.bind(i + 1, blob: blob)
        if let rid = row.rid { st.bind(i + 2, rid) } else { st.bind(i + 2, row.id) }
        try st.run(db)
        if row.rid == nil { row.rid = db.lastInsertedRowID }
    }
}

/// Keys of ``Replica/hotStatement(_:_:sql:)``.
enum HotKey {
    static let dataVersion = 1
    static let logInsert = 2
    /// A kind's row statement (0 select, 1 insert, 2 update) under one schema version.
    static func row(_ sql: RowSQL, _ op: Int) -> Int { 1_000 + (sql.version * Schema.maxKinds + sql.spec.kind.ordinal) * 4 + op }
}

/// The row statements of each kind, built once per schema version.
struct RowSQL {
    let spec: KindSpec
    let version: Int
    let select: String
    let insert: String
    let update: String

    /// The statements of the schema version last used, so that the write path takes no lock.
    private static let built = Published<(version: Int, all: [RowSQL])>((0, []))

    static func of(_ kind: RecordKind) -> RowSQL {
        let schema = Schema.current
        let b = built.value
        if b.version == schema.version { return b.all[kind.ordinal] }
        let all = schema.kinds.map { make($0, version: schema.version) }
        built.publish((schema.version, all))
        return all[kind.ordinal]
    }

    private static func make(_ spec: KindSpec, version: Int) -> RowSQL {
        let names = spec.fields.map(\.name)
        let t = SQLLayout.table(spec.kind)
        return RowSQL(
            spec: spec, version: version,
            select: "SELECT rid, \(names.joined(separator: ", ")), _deleted, _clock FROM \(t) WHERE id = ?",
            insert: "INSERT INTO \(t)(\(names.joined(separator: ", ")), _deleted, _clock, id) VALUES (\(Array(repeating: "?", count: names.count + 3).joined(separator: ", ")))",
            update: "UPDATE \(t) SET \(names.map { "\($0) = ?" }.joined(separator: ", ")), _deleted = ?, _clock = ? WHERE rid = ?")
    }
}



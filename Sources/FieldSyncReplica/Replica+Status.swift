import FieldSyncCore
import GRDB

// MARK: - ReplicaStatus

/// A replica's state at a glance, for `fieldsync status`.
public struct ReplicaStatus: Sendable {
    public struct KindCount: Sendable {
        public var kind: RecordKind
        public var live: Int
        public var deleted: Int
    }

    public var path: String
    public var site: SiteID
    public var siteName: String
    public var author: String
    public var schema: Int
    public var records: [KindCount]
    public var changes: Int
    public var ownChanges: Int
    public var sites: Int
    public var conflicts: Int
    public var capturesRejected: Int
    public var clock: HybridTimestamp
    /// Changes stamped further ahead of this machine's clock than the drift bound when they arrived.
    public var changesFromTheFuture: Int
    public var maxDrift: Int64
    public var lastSeq: Int64
    /// Changes kept for a newer schema (writes it cannot read, or whole changes of a record kind
    /// it does not hold), merged once it takes that schema; `keptKinds` names those kinds.
    public var keptForNewerSchema = 0
    public var keptKinds: [String] = []

    public var json: JSONValue {
        .object(JSONObject([
            ("path", .string(path)), ("site", .string(site.hex)), ("siteName", .string(siteName)),
            ("author", .string(author)), ("schema", .int(Int64(schema))),
            ("records", .object(JSONObject(records.map { ($0.kind.rawValue, JSONValue.object(JSONObject([("live", .int(Int64($0.live))), ("deleted", .int(Int64($0.deleted)))]))) }))),
            ("changes", .int(Int64(changes))), ("ownChanges", .int(Int64(ownChanges))), ("sites", .int(Int64(sites))),
            ("conflicts", .int(Int64(conflicts))), ("capturesRejected", .int(Int64(capturesRejected))),
            ("clock", .string(clock.description)), ("clockTime", .string(UTCTime.iso(clock.millis))),
            ("changesFromTheFuture", .int(Int64(changesFromTheFuture))), ("maxDriftMs", .int(maxDrift)),
            ("lastSeq", .int(lastSeq)), ("keptForNewerSchema", .int(Int64(keptForNewerSchema))),
            ("keptKinds", .array(keptKinds.map { .string($0) })),
        ]))
    }
}

extension Replica {
    /// The clock as it stands: the saved reading brought up to date with the change log.
    func currentClock(_ db: Database) throws -> HybridTimestamp {
        try loadClock(db)
        return clock.last
    }

    public func status() throws -> ReplicaStatus {
        try read { db in
            var counts: [ReplicaStatus.KindCount] = []
            for k in RecordKind.allCases {
                let r = try Row.fetchOne(db, sql: "SELECT count(*) - COALESCE(sum(_deleted), 0), COALESCE(sum(_deleted), 0) FROM \(SQLLayout.table(k))")!
                counts.append(.init(kind: k, live: r[0], deleted: r[1]))
            }
            let own = try Int.fetchOne(db, sql: "SELECT count(*) FROM fs_change WHERE site = ?", arguments: [Int64(bitPattern: site.raw)]) ?? 0
            let known = Set(RecordKind.allCases.map(\.rawValue))
            var s = ReplicaStatus(
                path: path, site: site, siteName: siteName, author: author, schema: Schema.current.version, records: counts,
                changes: try Int.fetchOne(db, sql: "SELECT count(*) FROM fs_change") ?? 0, ownChanges: own,
                sites: try Int.fetchOne(db, sql: "SELECT count(*) FROM fs_site") ?? 0,
                conflicts: try Int.fetchOne(db, sql: "SELECT count(*) FROM fs_conflict") ?? 0,
                capturesRejected: try Int.fetchOne(db, sql: "SELECT count(*) FROM fs_capture_rejected") ?? 0,
                clock: try currentClock(db),
                changesFromTheFuture: try Int.fetchOne(db, sql: "SELECT count(*) FROM fs_change WHERE (hlc >> 16) > received + ?", arguments: [maxDrift]) ?? 0,
                maxDrift: maxDrift,
                lastSeq: try Int64.fetchOne(db, sql: "SELECT COALESCE(max(seq), 0) FROM fs_change") ?? 0)
            s.keptForNewerSchema = try Int.fetchOne(db, sql: "SELECT count(*) FROM fs_pending") ?? 0
            s.keptKinds = try String.fetchAll(db, sql: "SELECT DISTINCT kind FROM fs_pending ORDER BY kind").filter { !known.contains($0) }
            return s
        }
    }
}

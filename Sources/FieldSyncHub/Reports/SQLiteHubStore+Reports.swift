import FieldSyncCore
@_spi(Hub) import FieldSyncReplica
import Foundation
import GRDB
import GRDBSQLite

// MARK: - Reports on the SQLite store

extension SQLiteHubStore {
    /// Indexes the report queries use: each covers the columns a report reads, only for live
    /// records, so a county report reads narrow index entries instead of whole rows (notes and
    /// merge metadata). Created by the hub only; laptops' replicas do not carry them.
    static let reportIndexes = [
        """
        CREATE INDEX IF NOT EXISTS hub_report_visit ON fs_visit(village, visit_date, visit_kind, attendees, household_id, household_head, cadre_id, cadre_name)
          WHERE _deleted = 0
        """,
        "CREATE INDEX IF NOT EXISTS hub_report_dispute ON fs_dispute(village, reported_on, status, category, resolved_on) WHERE _deleted = 0",
        """
        CREATE INDEX IF NOT EXISTS hub_report_project ON fs_project(village, started_on, completed_on, project_kind, status, budget_fen, spent_fen, households_benefiting)
          WHERE _deleted = 0
        """,
        "CREATE INDEX IF NOT EXISTS hub_report_conflict ON fs_conflict(row)",
        // A cadre's latest visit before the period, one seek per cadre record: by the cadre id
        // visits carry, and by name for visits without one (Protocol/reports.md §3.4).
        "CREATE INDEX IF NOT EXISTS hub_report_cadre_visit ON fs_visit(cadre_id, visit_date, village) WHERE _deleted = 0",
        "CREATE INDEX IF NOT EXISTS hub_report_named_visit ON fs_visit(cadre_name, visit_date, village) WHERE _deleted = 0 AND cadre_id IS NULL",
    ]

    /// Creates the report indexes that are missing (every hub migration that adds one, and the
    /// report benchmark after its bulk insert, call this).
    public static func createReportIndexes(_ db: Database) throws {
        for sql in reportIndexes { try db.execute(sql: sql) }
    }

    /// A read-only connection for reports. The file is in WAL mode, so a report reads a
    /// consistent snapshot while syncs keep writing: it neither waits for the store's queue
    /// nor holds it up.
    static func makeReportReader(path: String) throws -> DatabaseQueue {
        var c = Configuration()
        c.readonly = true
        c.busyMode = .timeout(15)
        c.label = "fieldsync.hub.reports"
        return try DatabaseQueue(path: path, configuration: c)
    }

    /// The report for `q` as `s` may see it: no region means the supervisor's scope; a region
    /// outside it is refused (403 `out_of_scope`). Runs on its own read-only connection.
    public func report(for s: Supervisor, _ q: ReportQuery) async throws -> HubReport {
        let scoped = try q.scoped(to: s)
        let now = self.now()
        let readers = reportReaders
        return try await withCheckedThrowingContinuation { cont in
            readers.queue.async {
                cont.resume(with: Result {
                    try Self.storeFailure { try readers.reader().read { db in try Self.runReport(db, ReportEngine(query: scoped, now: now, sql: .sqlite)) } }
                })
            }
        }
    }

    /// The report for `q` over the whole hub (the admin command); no region means every record.
    public func report(_ q: ReportQuery) throws -> HubReport {
        let now = self.now()
        return try reportReaders.queue.sync {
            try reportReaders.reader().read { db in try Self.runReport(db, ReportEngine(query: q, now: now, sql: .sqlite)) }
        }
    }

    /// Runs a report's statements in the caller's read transaction (one snapshot) and assembles it.
    static func runReport(_ db: Database, _ engine: ReportEngine) throws -> HubReport {
        var results: [String: [ReportRow]] = [:]
        var tallies = engine.tallies()
        for s in engine.statements {
            let statement = try db.makeStatement(sql: s.sql)
            try statement.setArguments(StatementArguments(s.args))
            let raw = statement.sqliteStatement
            // A column's bytes stay valid until the next step (none is read twice or converted).
            func bytes(_ i: Int) -> UnsafeBufferPointer<UInt8>? {
                guard let p = sqlite3_column_text(raw, Int32(i)) else { return nil }
                return UnsafeBufferPointer(start: p, count: Int(sqlite3_column_bytes(raw, Int32(i))))
            }
            var rows: [ReportRow] = []
            while true {
                let rc = sqlite3_step(raw)
                guard rc == SQLITE_ROW else {
                    if rc == SQLITE_DONE { break }
                    throw DatabaseError(resultCode: ResultCode(rawValue: rc), message: String(cString: sqlite3_errmsg(db.sqliteConnection)), sql: s.sql)
                }
                if s.feed != .results {
                    let a = Int32(ReportTallies.attendeesColumn)
                    let attendees = s.feed == .visits && sqlite3_column_type(raw, a) == SQLITE_INTEGER ? sqlite3_column_int64(raw, a) : nil
                    tallies.add(s.feed, attendees: attendees, column: bytes)
                    continue
                }
                rows.append(ReportRow((0..<sqlite3_column_count(raw)).map { i in
                    switch sqlite3_column_type(raw, i) {
                    case SQLITE_INTEGER: return .int(sqlite3_column_int64(raw, i))
                    case SQLITE_FLOAT: return .int(Int64(exactly: sqlite3_column_double(raw, i).rounded()) ?? 0)
                    case SQLITE_TEXT: return bytes(Int(i)).map { .text(String(decoding: $0, as: UTF8.self)) } ?? .null
                    default: return .null
                    }
                }))
            }
            results[s.key] = rows
        }
        return engine.assemble(results, tallies)
    }
}

// MARK: - Report connection

/// The store's read-only report connection, opened on first use, and the queue that uses it.
final class ReportReaders: @unchecked Sendable {
    let queue = DispatchQueue(label: "fieldsync.hub.reports")
    private let open: () throws -> DatabaseQueue
    private var connection: DatabaseQueue?

    init(open: @escaping () throws -> DatabaseQueue) { self.open = open }

    /// Only called on `queue`.
    func reader() throws -> DatabaseQueue {
        if let connection { return connection }
        let c = try open()
        connection = c
        return c
    }
}

// MARK: - Admin side

extension SQLiteHubStoreAdmin {
    /// The report for `q`, as `fieldsync-hub report` prints it; the supervisor's scope applies
    /// when one is given.
    public static func report(_ store: SQLiteHubStore, as s: Supervisor? = nil, _ q: ReportQuery) throws -> HubReport {
        try store.report(s.map { try q.scoped(to: $0) } ?? q)
    }
}

import FieldSyncCore
@_spi(Hub) import FieldSyncReplica
import Foundation
import GRDB

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
    ]

    static func createReportIndexes(_ db: Database) throws {
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
        for s in engine.statements {
            var rows: [ReportRow] = []
            let cursor = try Row.fetchCursor(db, sql: s.sql, arguments: StatementArguments(s.args))
            while let r = try cursor.next() {
                rows.append(ReportRow((0..<r.count).map { i in
                    switch (r[i] as DatabaseValue).storage {
                    case .int64(let n): return .int(n)
                    case .string(let t): return .text(t)
                    case .double(let d): return .int(Int64(exactly: d.rounded()) ?? 0)
                    case .null, .blob: return .null
                    }
                }))
            }
            results[s.key] = rows
        }
        return engine.assemble(results)
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

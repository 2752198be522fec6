import FieldSyncCore
@_spi(Hub) import FieldSyncReplica
import Foundation

// MARK: - Records in a supervisor's scope (the web console's record browser)

extension SQLiteHubStore {
    public static func records(_ r: Replica, for s: Supervisor, _ q: RecordQuery) throws -> RecordPage {
        guard let q = SupervisorRules.scoped(q, s) else { return RecordPage(records: [], total: 0) }
        return try r.browse(q)
    }

    /// A record and every value its fields ever had, when it lies in the supervisor's scope. A
    /// record outside the scope is "not found" in the same words as a missing one.
    public static func recordHistory(_ r: Replica, for s: Supervisor, id: String) throws -> (Record, [HistoryEntry]) {
        try SupervisorRules.checkWholeID(id)
        // A whole id (checked above) finds that record or none: never another by prefix.
        _ = try r.resolve(id, scope: s.scope)
        return try r.history(id)
    }

    public func records(for s: Supervisor, _ q: RecordQuery) async throws -> RecordPage { try await run { try Self.records($0, for: s, q) } }
    public func recordHistory(for s: Supervisor, id: String) async throws -> (Record, [HistoryEntry]) {
        try await run { try Self.recordHistory($0, for: s, id: id) }
    }
}

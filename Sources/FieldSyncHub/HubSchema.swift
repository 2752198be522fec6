import FieldSyncCore
import FieldSyncReplica
import Foundation
import Synchronization

// MARK: - The hub's schema

/// How often a hub process looks for a schema another process loaded into its store
/// (`fieldsync-hub schema load` beside a running hub, or another hub process on PostgreSQL).
public final class SchemaWatch: Sendable {
    private let last = Mutex<UInt64>(0)
    let intervalNanoseconds: UInt64

    public init(intervalSeconds: Double = 1) { intervalNanoseconds = UInt64(intervalSeconds * 1e9) }

    /// True at most once per interval.
    public func due() -> Bool {
        let now = DispatchTime.now().uptimeNanoseconds
        return last.withLock { t in
            guard t == 0 || now &- t >= intervalNanoseconds else { return false }
            t = now
            return true
        }
    }
}

extension SQLiteHubStore {
    public func refreshSchema() async {
        guard schemaWatch.due() else { return }
        _ = try? await run { try $0.refreshSchema() }
    }

    public func learnSchema(_ schema: Schema) async throws -> SchemaLearnReport {
        try await run { try $0.learn(schema) }
    }
}

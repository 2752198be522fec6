import FieldSyncCore
import GRDB

// MARK: - Reading the change log

/// A change as this replica logged it, with its local sequence number.
public struct LoggedChange: Sendable {
    /// The order in which this replica applied it (its own edits included).
    public let seq: Int64
    public let change: Change
    /// The change's canonical JSON (Protocol/changeset.md), as stored.
    public let body: String
}

extension Replica {
    /// Changes applied here after local sequence number `afterSeq`, oldest first (not those
    /// whose text was pruned, ``pruneHistory(windowMs:requireAcknowledged:)``).
    public func changes(afterSeq: Int64 = 0, limit: Int? = nil) throws -> [LoggedChange] {
        try read { db in
            let st = try db.makeStatement(sql: "SELECT seq, body FROM fs_change WHERE seq > ? AND body != '' ORDER BY seq \(limit.map { "LIMIT \($0)" } ?? "")")
            st.begin()
            st.bind(1, afterSeq)
            var out: [LoggedChange] = []
            while try st.step(db) {
                let body = st.text(1)
                out.append(LoggedChange(seq: st.int64(0), change: try ChangeCodec.decode(JSONValue.parse(body)), body: body))
            }
            return out
        }
    }
}

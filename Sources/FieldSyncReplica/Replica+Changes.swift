import FieldSyncCore
import GRDB

// MARK: - Reading the change log

/// A change as this replica logged it, with its local sequence number.
public struct LoggedChange: Sendable {
    /// The order in which this replica applied it (its own edits included).
    public let seq: Int64
    public let id: ChangeID
    /// The change, read with this process's schema; nil for a change of a record kind it does
    /// not hold yet (kept to relay, ``ForeignChange``).
    public let change: Change?
    /// The change's canonical JSON (Protocol/changeset.md), as stored.
    public let body: String

    /// Reads a logged change's stored text. Only its id must read: a change kept for a newer
    /// schema that turned out invalid under it (set aside since) is still offered as it is.
    init(seq: Int64, body: String) throws {
        let json = try JSONValue.parse(body)
        guard let id = json["id"]?.stringValue.flatMap(ChangeID.init) else {
            throw ReplicaError.storage("change log entry \(seq) has no change id")
        }
        self.seq = seq
        self.id = id
        self.change = (try? ChangeCodec.decodeReceived(json))?.known
        self.body = body
    }
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
                out.append(try LoggedChange(seq: st.int64(0), body: body))
            }
            return out
        }
    }
}

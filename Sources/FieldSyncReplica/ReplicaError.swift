import FieldSyncCore

// MARK: - ReplicaError

/// Everything the replica layer refuses or fails at, said so that a person can act on it.
public enum ReplicaError: Error, CustomStringConvertible, Sendable {
    /// Bad input: a value, a change, a bundle line. Nothing was written.
    case invalidInput(InputError)
    /// A bundle file that cannot be read as one: truncated, corrupt, too large.
    case badBundle(path: String, reason: String)
    /// No record has this id (or prefix).
    case notFound(String)
    /// An id prefix that matches several records.
    case ambiguous(prefix: String, matches: [String])
    /// The operation needs a live record, but it is deleted (or the reverse).
    case wrongState(String)
    /// The file is not a FieldSync replica, or not one this version can open.
    case notAReplica(path: String, reason: String)
    /// `init` on a file that already holds a replica or other data.
    case alreadyExists(path: String)
    /// SQLite failed (disk full, I/O error, locked). The transaction was rolled back.
    case storage(String)

    public var description: String {
        switch self {
        case .invalidInput(let e): return e.description
        case .badBundle(let path, let reason): return "\(path): \(reason)"
        case .notFound(let id): return "no record with id \(id)"
        case .ambiguous(let p, let m): return "id prefix \(p) matches \(m.count) records (\(m.prefix(5).joined(separator: ", "))…); give more digits"
        case .wrongState(let s): return s
        case .notAReplica(let path, let reason): return "\(path) is not a usable FieldSync replica: \(reason)"
        case .alreadyExists(let path): return "\(path) already exists; choose another --db or remove it first"
        case .storage(let s): return "storage error: \(s) (nothing was changed)"
        }
    }
}

extension ReplicaError {
    init(_ e: InputError) { self = .invalidInput(e) }
}

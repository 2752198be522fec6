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

    /// Chinese first (what is wrong, what to do), the precise English after.
    public var description: String {
        switch self {
        case .invalidInput(let e): return e.description
        case .badBundle(let path, let reason): return "数据包无法导入，本机数据没有改变 (\(path): \(reason))"
        case .notFound(let id): return "找不到编号为 \(id) 的记录 (no record with id \(id))"
        case .ambiguous(let p, let m):
            return "编号 \(p) 对应 \(m.count) 条记录，请多写几位 (id prefix \(p) matches \(m.count) records: \(m.prefix(5).joined(separator: ", "))…; give more digits)"
        case .wrongState(let s): return s
        case .notAReplica(let path, let reason): return "\(path) 不是可用的 FieldSync 数据文件 (not a usable FieldSync replica: \(reason))"
        case .alreadyExists(let path): return "\(path) 已存在：请换一个 --db 路径或先移走它 (already exists; choose another --db or remove it first)"
        case .storage(let s): return "存储出错，本次没有改动任何数据 (storage error: \(s); nothing was changed)"
        }
    }
}

extension ReplicaError {
    init(_ e: InputError) { self = .invalidInput(e) }
}

import FieldSyncCore
import GRDB
import GRDBSQLite

// MARK: - Raw statement access

/// Binding and stepping GRDB's cached statements through the SQLite C API, for the hot paths
/// (writing changes, loading rows) where building `StatementArguments` would dominate.
extension Statement {
    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

    func begin() {
        sqlite3_reset(sqliteStatement)
        sqlite3_clear_bindings(sqliteStatement)
    }

    func bind(_ i: Int32, _ v: FieldValue) {
        switch v {
        case .null: sqlite3_bind_null(sqliteStatement, i)
        case .integer(let x): sqlite3_bind_int64(sqliteStatement, i, x)
        case .text(let s): bind(i, s)
        }
    }

    func bind(_ i: Int32, _ s: String) {
        var s = s
        s.withUTF8 { bindText(i, $0) }
    }

    func bind(_ i: Int32, _ x: Int64) { sqlite3_bind_int64(sqliteStatement, i, x) }

    /// UTF-8 bytes bound as TEXT (the caller made them valid UTF-8: canonical change text).
    func bind(_ i: Int32, utf8: [UInt8]) {
        utf8.withUnsafeBufferPointer { bindText(i, $0) }
    }

    private func bindText(_ i: Int32, _ u: UnsafeBufferPointer<UInt8>) {
        if u.isEmpty {
            sqlite3_bind_text(sqliteStatement, i, "", 0, Self.transient)
        } else {
            u.withMemoryRebound(to: CChar.self) {
                _ = sqlite3_bind_text(sqliteStatement, i, $0.baseAddress, Int32($0.count), Self.transient)
            }
        }
    }

    func bind(_ i: Int32, blob: [UInt8]) {
        blob.withUnsafeBytes { b in
            _ = sqlite3_bind_blob(sqliteStatement, i, b.baseAddress ?? UnsafeRawPointer(bitPattern: 1), Int32(b.count), Self.transient)
        }
    }

    /// Steps once: true when a row is available, false when done.
    func step(_ db: Database) throws -> Bool {
        let rc = sqlite3_step(sqliteStatement)
        switch rc {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        default:
            let msg = String(cString: sqlite3_errmsg(db.sqliteConnection))
            sqlite3_reset(sqliteStatement)
            throw DatabaseError(resultCode: ResultCode(rawValue: rc), message: msg, sql: sql)
        }
    }

    func run(_ db: Database) throws {
        while try step(db) {}
    }

    func int64(_ col: Int32) -> Int64 { sqlite3_column_int64(sqliteStatement, col) }

    func isNull(_ col: Int32) -> Bool { sqlite3_column_type(sqliteStatement, col) == SQLITE_NULL }

    func text(_ col: Int32) -> String {
        guard let p = sqlite3_column_text(sqliteStatement, col) else { return "" }
        let n = Int(sqlite3_column_bytes(sqliteStatement, col))
        return String(decoding: UnsafeBufferPointer(start: p, count: n), as: UTF8.self)
    }

    func bytes(_ col: Int32) -> [UInt8] {
        let n = Int(sqlite3_column_bytes(sqliteStatement, col))
        guard n > 0, let p = sqlite3_column_blob(sqliteStatement, col) else { return [] }
        return Array(UnsafeRawBufferPointer(start: p, count: n))
    }

    func withBlob<T>(_ col: Int32, _ body: (UnsafeRawBufferPointer) throws -> T) rethrows -> T {
        let n = Int(sqlite3_column_bytes(sqliteStatement, col))
        guard n > 0, let p = sqlite3_column_blob(sqliteStatement, col) else { return try body(UnsafeRawBufferPointer(start: nil, count: 0)) }
        return try body(UnsafeRawBufferPointer(start: p, count: n))
    }

    func value(_ col: Int32) -> FieldValue {
        switch sqlite3_column_type(sqliteStatement, col) {
        case SQLITE_NULL: return .null
        case SQLITE_INTEGER: return .integer(sqlite3_column_int64(sqliteStatement, col))
        default: return .text(text(col))
        }
    }
}

extension Database {
    /// Rows changed by the last INSERT, UPDATE or DELETE.
    var lastChanges: Int { Int(sqlite3_changes(sqliteConnection)) }
}

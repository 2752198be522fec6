// MARK: - FieldValue

/// A field's value as SQLite stores it: NULL, a 64-bit integer or UTF-8 text.
///
/// The schema decides what the storage form means: money is integer 分, a boolean is 0 or 1,
/// a multiple choice is a JSON array in the enumeration's order, a date is `YYYY-MM-DD`.
public enum FieldValue: Hashable, Sendable, CustomStringConvertible {
    case null
    case integer(Int64)
    case text(String)

    public var isNull: Bool { self == .null }

    public var description: String {
        switch self {
        case .null: return "NULL"
        case .integer(let i): return String(i)
        case .text(let s): return s
        }
    }

    public var text: String? {
        if case .text(let s) = self { return s }
        return nil
    }

    public var integer: Int64? {
        if case .integer(let i) = self { return i }
        return nil
    }
}

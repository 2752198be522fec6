// MARK: - FieldValue

/// A field's value as SQLite stores it: NULL, a 64-bit integer or UTF-8 text.
///
/// The schema decides what the storage form means: money is integer 分, a boolean is 0 or 1,
/// a multiple choice is a JSON array in the enumeration's order, a date is `YYYY-MM-DD`.
public enum FieldValue: Hashable, Sendable, CustomStringConvertible {
    case null
    case integer(Int64)
    case text(String)

    /// Values are equal when their bytes are: Swift's `String ==` treats "café" written with
    /// U+00E9 and with "e" + U+0301 as equal, FieldSync (and the protocol) must not.
    public static func == (a: FieldValue, b: FieldValue) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case (.integer(let x), .integer(let y)): return x == y
        case (.text(let x), .text(let y)): return x.utf8.elementsEqual(y.utf8)
        default: return false
        }
    }

    public func hash(into h: inout Hasher) {
        switch self {
        case .null: h.combine(0)
        case .integer(let i): h.combine(1); h.combine(i)
        case .text(let s):
            h.combine(2)
            for b in s.utf8 { h.combine(b) }
        }
    }

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

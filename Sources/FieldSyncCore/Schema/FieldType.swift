// MARK: - FieldType

/// What a field holds, how it is checked, and how it travels as JSON.
public enum FieldType: Sendable, Equatable {
    /// One line of text, at most `maxLength` characters.
    case text(maxLength: Int)
    /// Free text (visit notes, dispute summaries), at most ``FieldType/longTextMaxBytes`` bytes.
    case longText
    /// A whole number within a range.
    case integer(ClosedRange<Int64>)
    /// Money in integer 分 (fen), never negative. JSON: integer.
    case money
    /// A calendar date `YYYY-MM-DD`.
    case date
    /// Yes or no. JSON: true/false; SQLite: 1/0.
    case bool
    /// One value from a fixed list.
    case choice([String])
    /// Any number of values from a fixed list. JSON: array; SQLite: JSON array text in list order.
    case choices([String])
    /// A statistical division code of one of the given lengths.
    case regionCode(Set<Int>)
    /// The id of another record.
    case reference(RecordKind)
    /// A GPS point, `"lat,lon"` in decimal degrees (WGS-84), up to 7 decimals.
    case geo

    public static let longTextMaxBytes = 1 << 20

    /// The type's name in `fieldsync schema --json`.
    public var name: String {
        switch self {
        case .text: return "text"
        case .longText: return "long_text"
        case .integer: return "integer"
        case .money: return "money_fen"
        case .date: return "date"
        case .bool: return "boolean"
        case .choice: return "choice"
        case .choices: return "choices"
        case .regionCode: return "region_code"
        case .reference: return "reference"
        case .geo: return "geo"
        }
    }

    /// The SQLite column type (affinity) of the field.
    public var sqlType: String {
        switch self {
        case .integer, .money, .bool: return "INTEGER"
        default: return "TEXT"
        }
    }

    /// A short Chinese description of the expected format, for error messages and help.
    public var formatHint: String {
        switch self {
        case .text(let n): return "文本，最多 \(n) 字"
        case .longText: return "长文本"
        case .integer(let r): return "整数 \(r.lowerBound)…\(r.upperBound)"
        case .money: return "金额，整数分 (≥ 0)"
        case .date: return "日期 YYYY-MM-DD"
        case .bool: return "是/否 (true/false)"
        case .choice(let v): return "取值之一：" + v.joined(separator: "、")
        case .choices(let v): return "可多选：" + v.joined(separator: "、")
        case .regionCode(let l): return "区划代码 (" + l.sorted().map { "\($0) 位" }.joined(separator: "/") + ")"
        case .reference(let k): return "\(k.spec.label)编号"
        case .geo: return "经纬度 \"纬度,经度\""
        }
    }
}

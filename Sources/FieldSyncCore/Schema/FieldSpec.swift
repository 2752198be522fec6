// MARK: - FieldSpec

/// One field of a record kind: its key, Chinese label, type and whether it is required.
public struct FieldSpec: Sendable, Equatable {
    /// The key used in JSON, SQL and the CLI (`status`).
    public let name: String
    /// The label people read (`办理状态`).
    public let label: String
    public let type: FieldType
    public let required: Bool
    /// A longer explanation shown by `fieldsync schema`.
    public let help: String

    public init(_ name: String, _ label: String, _ type: FieldType, required: Bool = false, help: String = "") {
        self.name = name
        self.label = label
        self.type = type
        self.required = required
        self.help = help
    }

    /// `dispute.status (办理状态)`: how errors name a field.
    public func location(in kind: RecordKind) -> String { "\(kind.rawValue).\(name) (\(label))" }
}

// MARK: - JSON ⇄ storage

extension FieldSpec {
    /// Checks a JSON value and returns its storage form.
    ///
    /// Throws an ``InputError`` with an empty location and a reason in plain words;
    /// callers add the location they know.
    public func decode(_ json: JSONValue) throws(InputError) -> FieldValue {
        if case .null = json {
            if required { throw InputError("", "is required and cannot be empty (null)") }
            return .null
        }
        switch type {
        case .text(let maxLength):
            let s = try string(json)
            if s.isEmpty, required { throw InputError("", "is required and cannot be empty") }
            // Counted in Unicode scalars (code points): every implementation counts alike.
            let n = s.unicodeScalars.count
            if n > maxLength { throw InputError("", "is \(n) characters long, at most \(maxLength) allowed") }
            return .text(s)
        case .longText:
            let s = try string(json)
            if s.isEmpty, required { throw InputError("", "is required and cannot be empty") }
            let n = s.utf8.count
            if n > FieldType.longTextMaxBytes {
                throw InputError("", "is \(n) bytes long, at most \(FieldType.longTextMaxBytes) allowed")
            }
            return .text(s)
        case .integer(let range):
            let i = try integer(json)
            guard range.contains(i) else {
                throw InputError("", "\(i) is out of range \(range.lowerBound)…\(range.upperBound)")
            }
            return .integer(i)
        case .money:
            let i = try integer(json, hint: " (money is integer 分: 12.50 元 is 1250)")
            guard i >= 0 else { throw InputError("", "money cannot be negative, got \(i) 分") }
            guard i <= 1_000_000_000_000_000 else { throw InputError("", "\(i) 分 is implausibly large") }
            return .integer(i)
        case .date:
            let s = try string(json)
            if let p = DateCheck.problem(s) { throw InputError("", p) }
            return .text(s)
        case .bool:
            guard case .bool(let b) = json else { throw wrongType(json, "true or false") }
            return .integer(b ? 1 : 0)
        case .choice(let options):
            let s = try string(json)
            guard options.contains(s) else {
                throw InputError("", "\"\(s.prefix(40))\" is not one of " + options.joined(separator: ", "))
            }
            return .text(s)
        case .choices(let options):
            guard case .array(let items) = json else { throw wrongType(json, "an array of strings") }
            var picked = Set<String>()
            for item in items {
                guard case .string(let s) = item else { throw wrongType(item, "an array of strings") }
                guard options.contains(s) else {
                    throw InputError("", "\"\(s.prefix(40))\" is not one of " + options.joined(separator: ", "))
                }
                picked.insert(s)
            }
            return .text(Self.canonicalChoices(picked, options: options))
        case .regionCode(let lengths):
            let s = try string(json)
            if let p = RegionCode.problem(s, allowed: lengths) { throw InputError("", p) }
            return .text(s)
        case .reference(let kind):
            let s = try string(json)
            if let p = RecordID.problem(s, kind: kind) { throw InputError("", p) }
            return .text(s)
        case .geo:
            let s = try string(json)
            if let p = GeoCheck.problem(s) { throw InputError("", p) }
            return .text(s)
        }
    }

    /// The JSON form of a stored value (the inverse of ``decode(_:)``).
    public func encode(_ value: FieldValue) -> JSONValue {
        switch (type, value) {
        case (_, .null): return .null
        case (.bool, .integer(let i)): return .bool(i != 0)
        case (.choices, .text(let s)):
            guard case .array(let items)? = try? JSONValue.parse(s) else { return .string(s) }
            return .array(items)
        case (_, .integer(let i)): return .int(i)
        case (_, .text(let s)): return .string(s)
        }
    }

    /// Checks a value read back from storage (a write made through plain SQL).
    public func check(stored value: FieldValue) throws(InputError) -> FieldValue {
        switch (type, value) {
        case (_, .null): return try decode(.null)
        case (.bool, .integer(let i)):
            guard i == 0 || i == 1 else { throw InputError("", "a yes/no field holds 0 or 1, got \(i)") }
            return value
        case (.choices, .text(let s)):
            guard let v = try? JSONValue.parse(s) else {
                throw InputError("", "a multiple choice is a JSON array such as [\"就业\",\"医疗\"], got \(s.prefix(40))")
            }
            return try decode(v)
        case (.integer, .integer(let i)), (.money, .integer(let i)): return try decode(.int(i))
        case (.integer, .text), (.money, .text), (.bool, .text):
            throw InputError("", "expected a whole number, got text")
        case (_, .integer(let i)):
            throw InputError("", "expected text, got the number \(i)")
        case (_, .text(let s)): return try decode(.string(s))
        }
    }

    static func canonicalChoices(_ picked: Set<String>, options: [String]) -> String {
        JSONValue.array(options.filter(picked.contains).map { .string($0) }).compactText
    }

    private func string(_ json: JSONValue) throws(InputError) -> String {
        guard case .string(let s) = json else { throw wrongType(json, "a string") }
        if s.utf8.contains(0) { throw InputError("", "contains a NUL character (U+0000)") }
        return s
    }

    private func integer(_ json: JSONValue, hint: String = "") throws(InputError) -> Int64 {
        switch json {
        case .int(let i): return i
        case .double(let d): throw InputError("", "expected a whole number, got \(d)\(hint)")
        default: throw wrongType(json, "a whole number")
        }
    }

    private func wrongType(_ json: JSONValue, _ expected: String) -> InputError {
        InputError("", "expected \(expected), got \(json.typeName)")
    }
}

// MARK: - Format checks

/// Calendar dates `YYYY-MM-DD` between 1900 and 2200.
public enum DateCheck {
    public static func problem(_ s: String) -> String? {
        let u = Array(s.utf8)
        let digits = [0, 1, 2, 3, 5, 6, 8, 9]
        guard u.count == 10, u[4] == 0x2D, u[7] == 0x2D, digits.allSatisfy({ (0x30...0x39).contains(u[$0]) }) else {
            return "a date is written YYYY-MM-DD, got \"\(s.prefix(40))\""
        }
        let y = Int(s.prefix(4))!, m = Int(s.dropFirst(5).prefix(2))!, d = Int(s.suffix(2))!
        guard (1900...2200).contains(y) else { return "year \(y) is outside 1900…2200" }
        guard (1...12).contains(m) else { return "month \(m) does not exist" }
        guard (1...daysIn(year: y, month: m)).contains(d) else { return "\(s) is not a calendar date" }
        return nil
    }

    public static func daysIn(year y: Int, month m: Int) -> Int {
        switch m {
        case 2: return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }
}

/// GPS points `"lat,lon"`.
public enum GeoCheck {
    public static func problem(_ s: String) -> String? {
        let parts = s.split(separator: ",", omittingEmptySubsequences: false)
        guard parts.count == 2, let lat = degrees(parts[0]), let lon = degrees(parts[1]) else {
            return "a GPS point is \"lat,lon\" in decimal degrees with up to 7 decimals, e.g. \"26.5912,104.8307\""
        }
        guard abs(lat) <= 90 else { return "latitude \(parts[0]) is outside -90…90" }
        guard abs(lon) <= 180 else { return "longitude \(parts[1]) is outside -180…180" }
        return nil
    }

    private static func degrees(_ s: Substring) -> Double? {
        var body = s
        if body.first == "-" { body = body.dropFirst() }
        let halves = body.split(separator: ".", omittingEmptySubsequences: false)
        guard (1...2).contains(halves.count), !halves[0].isEmpty, halves[0].count <= 3,
            halves.allSatisfy({ $0.utf8.allSatisfy { (0x30...0x39).contains($0) } }),
            halves.count == 1 || (1...7).contains(halves[1].count)
        else { return nil }
        return Double(s)
    }
}

// MARK: - FieldName

/// What a field key may be, in this schema and every later one: 1…64 of `a-z`, `0-9`, `_`,
/// starting with a letter. Keys become SQL column names, so a newer schema's fields that a
/// receiver keeps unread are held to the same rule.
public enum FieldName {
    public static let maxLength = 64

    public static func problem(_ name: String) -> String? {
        let u = Array(name.utf8)
        guard !u.isEmpty, u.count <= maxLength else { return "a field key is 1…\(maxLength) characters" }
        guard (0x61...0x7A).contains(u[0]) else { return "a field key starts with a lowercase letter a–z" }
        for c in u where !((0x61...0x7A).contains(c) || (0x30...0x39).contains(c) || c == 0x5F) {
            return "a field key holds only a–z, 0–9 and _"
        }
        return nil
    }
}

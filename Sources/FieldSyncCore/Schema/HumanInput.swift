// MARK: - Human input

/// Reads the way people write values in spreadsheets: `2023/1/4` and `2023年1月4日` for
/// dates, `是`/`否` for yes and no, `1,234.50` yuan for money, `就业、医疗` for several choices.
///
///     try field.parseHuman("12,345.6", unit: .yuan)   // .int(1234560) (分)
extension FieldSpec {
    public enum MoneyUnit: Sendable { case fen, yuan }

    /// Converts spreadsheet text to the field's JSON form. Empty text is null.
    public func parseHuman(_ raw: String, unit: MoneyUnit = .fen) throws(InputError) -> JSONValue {
        let s = raw.trimmingSpaces
        if s.isEmpty { return .null }
        switch type {
        case .text, .longText, .choice, .regionCode, .reference, .geo:
            // Text is kept exactly as written (only an empty cell counts as empty).
            if case .text = type { return .string(raw) }
            if case .longText = type { return .string(raw) }
            return .string(s)
        case .integer:
            guard let v = Self.wholeNumber(s) else { throw InputError("", "\"\(s.prefix(40))\" is not a whole number") }
            return .int(v)
        case .money:
            switch unit {
            case .fen:
                guard let v = Self.wholeNumber(s) else { throw InputError("", "\"\(s.prefix(40))\" is not a whole number of 分") }
                return .int(v)
            case .yuan:
                guard let v = Self.yuanToFen(s) else {
                    throw InputError("", "\"\(s.prefix(40))\" is not an amount in 元 with at most 2 decimals")
                }
                return .int(v)
            }
        case .date:
            guard let d = Self.normalizeDate(s) else {
                throw InputError("", "\"\(s.prefix(40))\" is not a date (YYYY-MM-DD, YYYY/M/D or YYYY年M月D日)")
            }
            return .string(d)
        case .bool:
            switch s.lowercased() {
            case "是", "true", "yes", "y", "1", "已办结", "已签订": return .bool(true)
            case "否", "false", "no", "n", "0", "未办结", "未签订": return .bool(false)
            default: throw InputError("", "\"\(s.prefix(40))\" is not 是 or 否")
            }
        case .choices:
            let parts = s.split(whereSeparator: { "、,，;；|/ ".contains($0) }).map(String.init)
            return .array(parts.map { .string($0) })
        }
    }

    static func wholeNumber(_ s: String) -> Int64? {
        var body = Substring(s)
        let negative = body.hasPrefix("-")
        if negative { body = body.dropFirst() }
        guard let digits = ungrouped(body) else { return nil }
        return Int64((negative ? "-" : "") + digits)
    }

    /// Digits with optional thousands separators in the right places ("1,234,567"), or nil.
    static func ungrouped(_ s: Substring) -> String? {
        guard !s.isEmpty, s.utf8.allSatisfy({ (0x30...0x39).contains($0) || $0 == 0x2C }) else { return nil }
        guard s.contains(",") else { return String(s) }
        let groups = s.split(separator: ",", omittingEmptySubsequences: false)
        guard (1...3).contains(groups[0].count), groups.dropFirst().allSatisfy({ $0.count == 3 }) else { return nil }
        return groups.joined()
    }

    /// `1,234.5` 元 → 123450 分, exactly (no floating point): ``FormText/moneyFen(_:)``.
    public static func yuanToFen(_ s: String) -> Int64? { FormText.moneyFen(s) }

    /// `2023/1/4`, `2023.1.4`, `2023年1月4日`, `2023-01-04` → `2023-01-04`.
    public static func normalizeDate(_ s: String) -> String? {
        var t = s
        for sep in ["年", "月", "/", "."] { t = t.replacingAll(sep, "-") }
        t = t.replacingAll("日", "")
        let p = t.split(separator: "-", omittingEmptySubsequences: false)
        guard p.count == 3, p[0].count == 4, (1...2).contains(p[1].count), (1...2).contains(p[2].count),
              p.allSatisfy({ $0.utf8.allSatisfy { (0x30...0x39).contains($0) } }),
              let y = Int(p[0]), let m = Int(p[1]), let d = Int(p[2]) else { return nil }
        let out = "\(y)-\(m < 10 ? "0" : "")\(m)-\(d < 10 ? "0" : "")\(d)"
        return DateCheck.problem(out) == nil ? out : nil
    }
}

extension String {
    var trimmingSpaces: String {
        // Character.isWhitespace also covers "\r\n" (one Character) and the ideographic space.
        var s = Substring(self)
        while let f = s.first, f.isWhitespace { s.removeFirst() }
        while let l = s.last, l.isWhitespace { s.removeLast() }
        return String(s)
    }

    func replacingAll(_ a: String, _ b: String) -> String {
        guard contains(a) else { return self }
        return components(separatedByString: a).joined(separator: b)
    }

    func components(separatedByString sep: String) -> [String] {
        var out: [String] = []
        var rest = Substring(self)
        while let r = rest.range(of: sep) {
            out.append(String(rest[..<r.lowerBound]))
            rest = rest[r.upperBound...]
        }
        out.append(String(rest))
        return out
    }
}

extension Substring {
    func range(of needle: String) -> Range<Substring.Index>? {
        guard !needle.isEmpty else { return nil }
        var i = startIndex
        while i < endIndex {
            if self[i...].hasPrefix(needle) { return i..<index(i, offsetBy: needle.count) }
            i = index(after: i)
        }
        return nil
    }
}

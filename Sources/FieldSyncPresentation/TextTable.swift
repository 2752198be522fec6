// MARK: - TextTable

/// A plain-text table that lines up Chinese text: CJK characters take two columns.
///
///     var t = TextTable(["编号", "状态"])
///     t.add(["3f2a9c1b", "已化解"])
///     print(t.render())
public struct TextTable {
    public var header: [String]
    public var rows: [[String]] = []

    public init(_ header: [String]) { self.header = header }

    public mutating func add(_ row: [String]) { rows.append(row) }

    public func render() -> String {
        let all = [header] + rows
        var widths = Array(repeating: 0, count: header.count)
        for r in all { for (i, c) in r.enumerated() where i < widths.count { widths[i] = max(widths[i], Width.of(c)) } }
        func line(_ r: [String]) -> String {
            r.enumerated().map { i, c in
                i == r.count - 1 ? c : c + String(repeating: " ", count: widths[i] - Width.of(c))
            }.joined(separator: "  ")
        }
        var out = [line(header), widths.map { String(repeating: "─", count: $0) }.joined(separator: "  ")]
        out += rows.map(line)
        return out.joined(separator: "\n")
    }
}

// MARK: - Width

/// Terminal display width (East Asian wide characters and emoji count two).
public enum Width {
    public static func of(_ s: String) -> Int { s.unicodeScalars.reduce(0) { $0 + of($1) } }

    public static func of(_ u: Unicode.Scalar) -> Int {
        let v = u.value
        if v == 0x200D || (0x0300...0x036F).contains(v) || (0xFE00...0xFE0F).contains(v) { return 0 }
        if (0x1100...0x115F).contains(v) || (0x2E80...0xA4CF).contains(v) || (0xAC00...0xD7A3).contains(v)
            || (0xF900...0xFAFF).contains(v) || (0xFE30...0xFE4F).contains(v) || (0xFF00...0xFF60).contains(v)
            || (0xFFE0...0xFFE6).contains(v) || (0x1F300...0x1FAFF).contains(v) || (0x20000...0x3FFFD).contains(v) {
            return 2
        }
        return 1
    }

    /// Shortens to at most `max` columns, ending with "…" when cut; line breaks become spaces.
    public static func clip(_ s: String, _ max: Int) -> String {
        let flat = s.replacingOccurrences(of: "\n", with: " ").replacingOccurrences(of: "\r", with: "")
        guard of(flat) > max else { return flat }
        var out = ""
        var w = 0
        for ch in flat {
            let cw = of(String(ch))
            if w + cw > max - 1 { break }
            out.append(ch)
            w += cw
        }
        return out + "…"
    }
}

// MARK: - CSVText

/// CSV for Excel, as the hub's reports and the app's exports write it: UTF-8 with a byte-order
/// mark (so Excel reads Chinese text), CRLF line ends, fields quoted when they hold a comma, a
/// quote, a line break or edge spaces (quotes doubled). RFC 4180.
///
/// Text that a spreadsheet would run as a formula — beginning with `=`, `+`, `-`, `@`, a tab or
/// a carriage return (a name typed as `=HYPERLINK(…)` on a laptop) — gets a leading `'`, which
/// Excel and LibreOffice show as text and do not display (OWASP "CSV injection").
public enum CSVText {
    public static let bom: [UInt8] = [0xEF, 0xBB, 0xBF]

    /// A whole file: the header, then the rows; `isNumber(row, column)` marks cells written by
    /// FieldSync itself as numbers, which stay as they are.
    public static func file(header: [String], rows: [[String]], isNumber: (Int, Int) -> Bool = { _, _ in false }) -> [UInt8] {
        var out = bom
        func line(_ fields: [String], _ row: Int?) {
            for (i, f) in fields.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                out += Array(field(row.map { isNumber($0, i) } == true ? f : inert(f)).utf8)
            }
            out += [0x0D, 0x0A]
        }
        line(header, nil)
        for (r, row) in rows.enumerated() { line(row, r) }
        return out
    }

    /// Text a spreadsheet will show, never evaluate.
    public static func inert(_ s: String) -> String {
        guard let first = s.unicodeScalars.first, "=+-@\t\r".unicodeScalars.contains(first) else { return s }
        return "'" + s
    }

    /// One field, quoted when it must be.
    public static func field(_ s: String) -> String {
        let needs = s.utf8.contains { $0 == UInt8(ascii: ",") || $0 == UInt8(ascii: "\"") || $0 == 0x0A || $0 == 0x0D }
            || s.first == " " || s.last == " "
        guard needs else { return s }
        var out = "\""
        for c in s.unicodeScalars {
            if c == "\"" { out += "\"\"" } else { out.unicodeScalars.append(c) }
        }
        return out + "\""
    }
}

// MARK: - HTML

/// A piece of markup that is safe to send: text from data is escaped on the way in.
///
/// Literals written in the code are markup; everything interpolated as a `String` is text and is
/// escaped, so record text such as `<script>` shows as itself and never runs:
///
///     let name = "<b>王芳</b>"
///     let cell: HTML = "<td class=\"who\">\(name)</td>"   // <td class="who">&lt;b&gt;王芳&lt;/b&gt;</td>
///
/// Markup made elsewhere (another `HTML`) is interpolated as it is. There is no way to interpolate
/// a `String` as markup: `HTML(trusted:)` is for constants in this package only.
public struct HTML: Sendable, CustomStringConvertible, ExpressibleByStringInterpolation {
    public private(set) var markup: String

    /// Markup written in this package's code (never data).
    package init(trusted markup: String) { self.markup = markup }

    public init(stringLiteral value: String) { markup = value }

    public init(stringInterpolation: StringInterpolation) { markup = stringInterpolation.markup }

    public var description: String { markup }

    public static let empty = HTML(trusted: "")

    public static func + (a: HTML, b: HTML) -> HTML { HTML(trusted: a.markup + b.markup) }

    public static func += (a: inout HTML, b: HTML) { a.markup += b.markup }

    /// Markup pieces one after the other.
    public static func join(_ parts: [HTML], separator: HTML = .empty) -> HTML {
        HTML(trusted: parts.map(\.markup).joined(separator: separator.markup))
    }

    /// Text as markup: `&`, `<`, `>`, `"` and `'` become character references, so the result is
    /// safe both between tags and inside a quoted attribute value.
    public static func escape(_ text: some StringProtocol) -> String {
        var out = ""
        out.unicodeScalars.reserveCapacity(text.utf8.count)
        for s in text.unicodeScalars {
            switch s {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            // NUL and the other C0 controls but tab and line breaks are not allowed in HTML text.
            case "\u{0}"..."\u{8}", "\u{B}", "\u{C}", "\u{E}"..."\u{1F}", "\u{7F}": out += "\u{FFFD}"
            default: out.unicodeScalars.append(s)
            }
        }
        return out
    }

    public struct StringInterpolation: StringInterpolationProtocol {
        var markup = ""

        public init(literalCapacity: Int, interpolationCount: Int) { markup.reserveCapacity(literalCapacity * 2) }

        public mutating func appendLiteral(_ literal: String) { markup += literal }
        /// Text: escaped.
        public mutating func appendInterpolation(_ text: String) { markup += HTML.escape(text) }
        public mutating func appendInterpolation(_ text: Substring) { markup += HTML.escape(text) }
        /// Markup: as it is.
        public mutating func appendInterpolation(_ html: HTML) { markup += html.markup }
        public mutating func appendInterpolation(_ html: [HTML]) { markup += html.map(\.markup).joined() }
        public mutating func appendInterpolation(_ html: HTML?) { markup += html?.markup ?? "" }
        public mutating func appendInterpolation(_ n: Int) { markup += String(n) }
        public mutating func appendInterpolation(_ n: Int64) { markup += String(n) }
    }
}

// MARK: - URLs

/// Builds the console's and the app's own links: a fixed path and query values percent-encoded.
public enum WebURL {
    /// Characters left as they are in a path segment or query value (RFC 3986 unreserved).
    public static func isUnreserved(_ b: UInt8) -> Bool {
        (0x41...0x5A).contains(b) || (0x61...0x7A).contains(b) || (0x30...0x39).contains(b)
            || b == UInt8(ascii: "-") || b == UInt8(ascii: ".") || b == UInt8(ascii: "_") || b == UInt8(ascii: "~")
    }

    public static func encode(_ s: some StringProtocol) -> String {
        let hex = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        for b in s.utf8 {
            if isUnreserved(b) { out.append(b) } else { out += [UInt8(ascii: "%"), hex[Int(b >> 4)], hex[Int(b & 0xF)]] }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// `/app/records?kind=dispute&q=%E5%AE%85` — parameters with nil or empty values are left out.
    public static func make(_ path: String, _ query: [(String, String?)] = []) -> String {
        let q = query.compactMap { k, v in v.flatMap { $0.isEmpty ? nil : encode(k) + "=" + encode($0) } }
        return q.isEmpty ? path : path + "?" + q.joined(separator: "&")
    }

    /// Percent-decodes a path segment or form value (`+` is a space in forms): nil when it is not
    /// well formed or not UTF-8.
    public static func decode(_ s: some StringProtocol, plusIsSpace: Bool) -> String? {
        var bytes: [UInt8] = []
        var it = Array(s.utf8)[...]
        func hexValue(_ c: UInt8) -> UInt8? {
            switch c {
            case 0x30...0x39: return c - 0x30
            case 0x41...0x46: return c - 0x37
            case 0x61...0x66: return c - 0x57
            default: return nil
            }
        }
        while let c = it.popFirst() {
            if c == UInt8(ascii: "%") {
                guard let h = it.popFirst().flatMap(hexValue), let l = it.popFirst().flatMap(hexValue) else { return nil }
                bytes.append(h << 4 | l)
            } else if c == UInt8(ascii: "+") && plusIsSpace {
                bytes.append(0x20)
            } else {
                bytes.append(c)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }
}

// MARK: - Writing JSON

extension JSONValue {
    /// The compact canonical text: keys in stored order, no spaces, non-ASCII written as UTF-8.
    public var compactText: String {
        var out: [UInt8] = []
        out.reserveCapacity(128)
        JSONWriter.write(self, into: &out, indent: nil, level: 0)
        return String(decoding: out, as: UTF8.self)
    }

    /// Text indented by two spaces, for people.
    public var prettyText: String {
        var out: [UInt8] = []
        JSONWriter.write(self, into: &out, indent: 2, level: 0)
        return String(decoding: out, as: UTF8.self)
    }
}

public enum JSONWriter {
    public static func write(_ v: JSONValue, into out: inout [UInt8], indent: Int?, level: Int) {
        switch v {
        case .null: out.append(contentsOf: "null".utf8)
        case .bool(let x): out.append(contentsOf: (x ? "true" : "false").utf8)
        case .int(let x): out.append(contentsOf: String(x).utf8)
        case .double(let x): out.append(contentsOf: formatDouble(x).utf8)
        case .string(let s): writeString(s, into: &out)
        case .array(let items):
            if items.isEmpty { out.append(contentsOf: "[]".utf8); return }
            out.append(UInt8(ascii: "["))
            for (n, item) in items.enumerated() {
                if n > 0 { out.append(UInt8(ascii: ",")) }
                newline(&out, indent, level + 1)
                write(item, into: &out, indent: indent, level: level + 1)
            }
            newline(&out, indent, level)
            out.append(UInt8(ascii: "]"))
        case .object(let o):
            if o.isEmpty { out.append(contentsOf: "{}".utf8); return }
            out.append(UInt8(ascii: "{"))
            for (n, pair) in o.pairs.enumerated() {
                if n > 0 { out.append(UInt8(ascii: ",")) }
                newline(&out, indent, level + 1)
                writeString(pair.key, into: &out)
                out.append(UInt8(ascii: ":"))
                if indent != nil { out.append(UInt8(ascii: " ")) }
                write(pair.value, into: &out, indent: indent, level: level + 1)
            }
            newline(&out, indent, level)
            out.append(UInt8(ascii: "}"))
        }
    }

    private static func newline(_ out: inout [UInt8], _ indent: Int?, _ level: Int) {
        guard let indent else { return }
        out.append(0x0A)
        out.append(contentsOf: repeatElement(UInt8(ascii: " "), count: indent * level))
    }

    static func formatDouble(_ x: Double) -> String {
        if x == x.rounded(), abs(x) < 1e15 { return String(Int64(x)) }
        return "\(x)"
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)

    /// Writes a quoted string, escaping only what JSON requires.
    public static func writeString(_ s: String, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        // Fast path: copy runs that need no escaping in one go.
        let done: Bool? = s.utf8.withContiguousStorageIfAvailable { u -> Bool in
            var start = 0
            for i in 0..<u.count {
                let c = u[i]
                guard c < 0x20 || c == 0x22 || c == 0x5C else { continue }
                out.append(contentsOf: UnsafeBufferPointer(rebasing: u[start..<i]))
                escape(c, into: &out)
                start = i + 1
            }
            out.append(contentsOf: UnsafeBufferPointer(rebasing: u[start..<u.count]))
            return true
        }
        if done == true {
            out.append(UInt8(ascii: "\""))
            return
        }
        for c in s.utf8 {
            switch c {
            case 0x22: out.append(0x5C); out.append(0x22)
            case 0x5C: out.append(0x5C); out.append(0x5C)
            case 0x0A: out.append(0x5C); out.append(UInt8(ascii: "n"))
            case 0x0D: out.append(0x5C); out.append(UInt8(ascii: "r"))
            case 0x09: out.append(0x5C); out.append(UInt8(ascii: "t"))
            case 0..<0x20:
                out.append(contentsOf: "\\u00".utf8)
                out.append(hexDigits[Int(c >> 4)])
                out.append(hexDigits[Int(c & 0xF)])
            default: out.append(c)
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    private static func escape(_ c: UInt8, into out: inout [UInt8]) {
        switch c {
        case 0x22: out.append(0x5C); out.append(0x22)
        case 0x5C: out.append(0x5C); out.append(0x5C)
        case 0x0A: out.append(0x5C); out.append(UInt8(ascii: "n"))
        case 0x0D: out.append(0x5C); out.append(UInt8(ascii: "r"))
        case 0x09: out.append(0x5C); out.append(UInt8(ascii: "t"))
        default:
            out.append(contentsOf: "\\u00".utf8)
            out.append(hexDigits[Int(c >> 4)])
            out.append(hexDigits[Int(c & 0xF)])
        }
    }

    /// Appends a non-negative or negative integer in decimal without allocating a String.
    public static func writeInt(_ v: Int64, into out: inout [UInt8]) {
        if v == 0 { out.append(0x30); return }
        var n = v.magnitude
        if v < 0 { out.append(0x2D) }
        var buf: (UInt64, UInt64, UInt64) = (0, 0, 0)
        var len = 0
        withUnsafeMutableBytes(of: &buf) { b in
            while n > 0 {
                b[23 - len] = UInt8(n % 10) + 0x30
                n /= 10
                len += 1
            }
            out.append(contentsOf: UnsafeRawBufferPointer(rebasing: b[(24 - len)...]))
        }
    }
}

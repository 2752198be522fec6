// MARK: - JSONSyntaxError

/// Why a text is not acceptable JSON, and at which byte.
public struct JSONSyntaxError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Zero-based byte offset of the problem.
    public let offset: Int
    public let reason: String
    public var description: String { "byte \(offset + 1): \(reason)" }
}

// MARK: - Parsing

extension JSONValue {
    /// The deepest nesting accepted. Change sets need 4 levels; the bound keeps hostile input
    /// from exhausting the stack.
    public static let maximumDepth = 64

    /// Parses one JSON document, strictly: valid UTF-8 only, no duplicate keys, no trailing text.
    public static func parse(_ text: String) throws(JSONSyntaxError) -> JSONValue {
        try parse(bytes: Array(text.utf8))
    }

    /// Parses one JSON document from UTF-8 bytes (see ``parse(_:)-swift.type.method``).
    public static func parse(bytes: UnsafeBufferPointer<UInt8>) throws(JSONSyntaxError) -> JSONValue {
        var p = JSONParser(bytes: bytes)
        p.skipSpace()
        let v = try p.value(depth: 0)
        p.skipSpace()
        if p.i != bytes.count { throw p.fail("unexpected text after the JSON value") }
        return v
    }

    public static func parse(bytes: [UInt8]) throws(JSONSyntaxError) -> JSONValue {
        let r: Result<JSONValue, JSONSyntaxError> = bytes.withUnsafeBufferPointer { buf in
            Result { () throws(JSONSyntaxError) in try parse(bytes: buf) }
        }
        return try r.get()
    }
}

/// A recursive-descent parser over UTF-8 bytes.
struct JSONParser {
    let b: UnsafeBufferPointer<UInt8>
    var i = 0

    init(bytes: UnsafeBufferPointer<UInt8>) { b = bytes }

    func fail(_ reason: String, at offset: Int? = nil) -> JSONSyntaxError {
        JSONSyntaxError(offset: offset ?? i, reason: reason)
    }

    mutating func skipSpace() {
        while i < b.count {
            switch b[i] {
            case 0x20, 0x09, 0x0A, 0x0D: i += 1
            default: return
            }
        }
    }

    mutating func value(depth: Int) throws(JSONSyntaxError) -> JSONValue {
        guard depth < JSONValue.maximumDepth else {
            throw fail("nested more than \(JSONValue.maximumDepth) levels deep")
        }
        guard i < b.count else { throw fail("unexpected end of text, expected a value") }
        switch b[i] {
        case UInt8(ascii: "{"): return try object(depth: depth)
        case UInt8(ascii: "["): return try array(depth: depth)
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try number()
        default:
            throw fail("unexpected character \(describe(b[i])), expected a value")
        }
    }

    private func describe(_ c: UInt8) -> String {
        c >= 0x20 && c < 0x7F ? "'\(Character(Unicode.Scalar(c)))'" : "byte 0x\(String(c, radix: 16))"
    }

    mutating func literal(_ word: StaticString) throws(JSONSyntaxError) {
        let n = word.utf8CodeUnitCount
        let start = i
        guard i + n <= b.count else { throw fail("unexpected end of text in '\(word)'") }
        for k in 0..<n where b[i + k] != word.utf8Start[k] {
            throw fail("invalid literal, expected '\(word)'", at: start)
        }
        i += n
    }

    mutating func object(depth: Int) throws(JSONSyntaxError) -> JSONValue {
        i += 1
        var pairs: [(String, JSONValue)] = []
        var seen = Set<[UInt8]>()  // by bytes: canonically equivalent keys are still different keys
        skipSpace()
        if i < b.count && b[i] == UInt8(ascii: "}") { i += 1; return .object(JSONObject()) }
        while true {
            skipSpace()
            guard i < b.count else { throw fail("unexpected end of text in an object") }
            guard b[i] == UInt8(ascii: "\"") else { throw fail("expected a quoted key") }
            let keyAt = i
            let key = try string()
            guard seen.insert(Array(key.utf8)).inserted else { throw fail("duplicate key \"\(key)\"", at: keyAt) }
            skipSpace()
            guard i < b.count, b[i] == UInt8(ascii: ":") else { throw fail("expected ':' after key \"\(key)\"") }
            i += 1
            skipSpace()
            pairs.append((key, try value(depth: depth + 1)))
            skipSpace()
            guard i < b.count else { throw fail("unexpected end of text in an object") }
            if b[i] == UInt8(ascii: ",") { i += 1; continue }
            if b[i] == UInt8(ascii: "}") { i += 1; return .object(JSONObject(pairs)) }
            throw fail("expected ',' or '}' in an object")
        }
    }

    mutating func array(depth: Int) throws(JSONSyntaxError) -> JSONValue {
        i += 1
        var items: [JSONValue] = []
        skipSpace()
        if i < b.count && b[i] == UInt8(ascii: "]") { i += 1; return .array([]) }
        while true {
            skipSpace()
            items.append(try value(depth: depth + 1))
            skipSpace()
            guard i < b.count else { throw fail("unexpected end of text in an array") }
            if b[i] == UInt8(ascii: ",") { i += 1; continue }
            if b[i] == UInt8(ascii: "]") { i += 1; return .array(items) }
            throw fail("expected ',' or ']' in an array")
        }
    }

    mutating func number() throws(JSONSyntaxError) -> JSONValue {
        let start = i
        if b[i] == UInt8(ascii: "-") { i += 1 }
        guard i < b.count, isDigit(b[i]) else { throw fail("invalid number", at: start) }
        if b[i] == UInt8(ascii: "0") {
            i += 1
            if i < b.count, isDigit(b[i]) { throw fail("numbers may not have leading zeros", at: start) }
        } else {
            while i < b.count, isDigit(b[i]) { i += 1 }
        }
        var integral = true
        if i < b.count, b[i] == UInt8(ascii: ".") {
            integral = false
            i += 1
            guard i < b.count, isDigit(b[i]) else { throw fail("invalid number: digits expected after '.'", at: start) }
            while i < b.count, isDigit(b[i]) { i += 1 }
        }
        if i < b.count, b[i] == UInt8(ascii: "e") || b[i] == UInt8(ascii: "E") {
            integral = false
            i += 1
            if i < b.count, b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") { i += 1 }
            guard i < b.count, isDigit(b[i]) else { throw fail("invalid number: digits expected in exponent", at: start) }
            while i < b.count, isDigit(b[i]) { i += 1 }
        }
        let text = String(decoding: UnsafeBufferPointer(rebasing: b[start..<i]), as: UTF8.self)
        if integral, let v = Int64(text) { return .int(v) }
        guard let d = Double(text), d.isFinite else { throw fail("number out of range", at: start) }
        return .double(d)
    }

    private func isDigit(_ c: UInt8) -> Bool { c >= 0x30 && c <= 0x39 }

    mutating func string() throws(JSONSyntaxError) -> String {
        let open = i
        i += 1
        // Fast path: no escapes, so the bytes between the quotes are the string.
        var j = i
        while j < b.count {
            let c = b[j]
            if c == UInt8(ascii: "\"") {
                let slice = UnsafeBufferPointer(rebasing: b[i..<j])
                guard let s = String(validating: slice, as: UTF8.self) else {
                    throw fail("invalid UTF-8 in a string", at: firstInvalidUTF8(from: i, to: j))
                }
                i = j + 1
                return s
            }
            if c == UInt8(ascii: "\\") { break }
            if c < 0x20 { throw fail("control character in a string (must be escaped)", at: j) }
            j += 1
        }
        if j >= b.count { throw fail("unterminated string", at: open) }
        // Slow path with escapes.
        var out: [UInt8] = Array(UnsafeBufferPointer(rebasing: b[i..<j]))
        i = j
        while true {
            guard i < b.count else { throw fail("unterminated string", at: open) }
            let c = b[i]
            if c == UInt8(ascii: "\"") {
                i += 1
                guard let s = String(validating: out, as: UTF8.self) else {
                    // Escapes are ASCII, so the bad bytes sit where they were in the source.
                    throw fail("invalid UTF-8 in a string", at: firstInvalidUTF8(from: open + 1, to: i - 1))
                }
                return s
            }
            if c < 0x20 { throw fail("control character in a string (must be escaped)") }
            if c != UInt8(ascii: "\\") { out.append(c); i += 1; continue }
            i += 1
            guard i < b.count else { throw fail("unterminated escape") }
            let e = b[i]
            i += 1
            switch e {
            case UInt8(ascii: "\""): out.append(0x22)
            case UInt8(ascii: "\\"): out.append(0x5C)
            case UInt8(ascii: "/"): out.append(0x2F)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = try hex4()
                if (0xD800...0xDBFF).contains(scalar) {
                    guard i + 1 < b.count, b[i] == UInt8(ascii: "\\"), b[i + 1] == UInt8(ascii: "u") else {
                        throw fail("unpaired surrogate \\u\(String(scalar, radix: 16))")
                    }
                    i += 2
                    let low = try hex4()
                    guard (0xDC00...0xDFFF).contains(low) else { throw fail("invalid low surrogate") }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                } else if (0xDC00...0xDFFF).contains(scalar) {
                    throw fail("unpaired surrogate \\u\(String(scalar, radix: 16))")
                }
                guard let u = Unicode.Scalar(scalar) else { throw fail("invalid \\u escape") }
                out.append(contentsOf: Array(String(Character(u)).utf8))
            default:
                throw fail("invalid escape '\\\(Character(Unicode.Scalar(e)))'", at: i - 2)
            }
        }
    }

    mutating func hex4() throws(JSONSyntaxError) -> UInt32 {
        guard i + 4 <= b.count else { throw fail("unterminated \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = b[i]
            let d: UInt32
            switch c {
            case 0x30...0x39: d = UInt32(c - 0x30)
            case 0x41...0x46: d = UInt32(c - 0x41 + 10)
            case 0x61...0x66: d = UInt32(c - 0x61 + 10)
            default: throw fail("invalid hex digit in \\u escape")
            }
            v = v << 4 | d
            i += 1
        }
        return v
    }

    /// Locates the first byte of an invalid UTF-8 sequence, for the error message.
    private func firstInvalidUTF8(from start: Int, to end: Int) -> Int {
        var k = start
        while k < end {
            let n = UTF8Validation.sequenceLength(b, at: k, end: end)
            if n == 0 { return k }
            k += n
        }
        return start
    }
}

/// UTF-8 checks shared by the JSON parser and the CSV reader.
public enum UTF8Validation {
    /// The length of the valid UTF-8 sequence starting at `k`, or 0 if it is invalid.
    static func sequenceLength(_ b: UnsafeBufferPointer<UInt8>, at k: Int, end: Int) -> Int {
        let c = b[k]
        if c < 0x80 { return 1 }
        let n: Int
        var minScalar: UInt32
        var scalar: UInt32
        switch c {
        case 0xC2...0xDF: n = 2; minScalar = 0x80; scalar = UInt32(c & 0x1F)
        case 0xE0...0xEF: n = 3; minScalar = 0x800; scalar = UInt32(c & 0x0F)
        case 0xF0...0xF4: n = 4; minScalar = 0x10000; scalar = UInt32(c & 0x07)
        default: return 0
        }
        guard k + n <= end else { return 0 }
        for m in 1..<n {
            let cc = b[k + m]
            guard cc & 0xC0 == 0x80 else { return 0 }
            scalar = scalar << 6 | UInt32(cc & 0x3F)
        }
        if scalar < minScalar || scalar > 0x10FFFF || (0xD800...0xDFFF).contains(scalar) { return 0 }
        return n
    }

    /// The byte offset of the first invalid UTF-8 sequence in `bytes`, or nil when all is valid.
    public static func firstInvalidOffset(_ bytes: [UInt8]) -> Int? {
        bytes.withUnsafeBufferPointer { b in
            var k = 0
            while k < b.count {
                let n = sequenceLength(b, at: k, end: b.count)
                if n == 0 { return k }
                k += n
            }
            return nil
        }
    }
}

@testable import FieldSyncCore
import Testing

@Suite struct JSONParserSpec {
    // MARK: Accepted documents

    @Test func parsesEveryKindOfValueKeepingKeyOrder() throws {
        let v = try JSONValue.parse(#" { "z": [1, -2, 0.5, true, false, null], "a": {"b": "c"}, "m": "" } "#)
        guard case .object(let o) = v else {
            Issue.record("expected an object, got \(v)")
            return
        }
        #expect(o.keys == ["z", "a", "m"])
        #expect(o["z"] == .array([.int(1), .int(-2), .double(0.5), .bool(true), .bool(false), .null]))
        #expect(o["a"] == .object(JSONObject([("b", .string("c"))])))
        #expect(o["m"] == .string(""))
    }

    @Test func escapesDecodeToTheirCharacters() throws {
        let v = try JSONValue.parse(#""\"\\\/\b\f\n\r\t\u0041\u4e2d\ud83d\ude00""#)
        #expect(v == .string("\"\\/\u{8}\u{C}\n\r\tA中😀"))
    }

    @Test func escapedNulIsAllowedInsideAString() throws {
        let v = try JSONValue.parse(#""a\u0000b""#)
        #expect(v.stringValue.map { Array($0.utf8) } == [0x61, 0x00, 0x62])
    }

    @Test func multiByteUTF8IsAccepted() throws {
        // 中 = E4 B8 AD, é = C3 A9, 😀 = F0 9F 98 80
        let bytes: [UInt8] = [0x22, 0xE4, 0xB8, 0xAD, 0xC3, 0xA9, 0xF0, 0x9F, 0x98, 0x80, 0x22]
        #expect(try JSONValue.parse(bytes: bytes) == .string("中é😀"))
    }

    @Test func decomposedTextIsKeptByteForByte() throws {
        // "e" + COMBINING ACUTE ACCENT must not be normalised to U+00E9.
        let v = try JSONValue.parse("\"cafe\u{301}\"")
        #expect(v.stringValue.map { Array($0.utf8) } == [0x63, 0x61, 0x66, 0x65, 0xCC, 0x81])
    }

    // MARK: Invalid UTF-8

    @Test(arguments: [
        // (bytes inside the quotes, offset of the first bad byte in the whole text)
        ([0xC0, 0x80] as [UInt8], 1),                      // overlong NUL
        ([0xC1, 0xBF] as [UInt8], 1),                      // overlong 2-byte
        ([0x61, 0xE0, 0x80, 0xAF] as [UInt8], 2),          // overlong '/' in 3 bytes
        ([0xF0, 0x80, 0x80, 0x80] as [UInt8], 1),          // overlong in 4 bytes
        ([0x61, 0x62, 0xED, 0xA0, 0x80] as [UInt8], 3),    // UTF-8 encoded surrogate U+D800
        ([0xED, 0xBF, 0xBF] as [UInt8], 1),                // UTF-8 encoded surrogate U+DFFF
        ([0xF4, 0x90, 0x80, 0x80] as [UInt8], 1),          // above U+10FFFF
        ([0xF5, 0x80, 0x80, 0x80] as [UInt8], 1),          // lead byte never valid
        ([0x61, 0x80] as [UInt8], 2),                      // lone continuation byte
        ([0xFF] as [UInt8], 1),
        ([0xE4, 0xB8] as [UInt8], 1),                      // truncated 中
        ([0xE4, 0xB8, 0xAD, 0xE4, 0x41] as [UInt8], 4),    // valid 中 then a broken sequence
    ])
    func invalidUTF8IsRefusedWithItsOffset(inner: [UInt8], offset: Int) throws {
        let e = try #require(jsonError([0x22] + inner + [0x22]), "bytes \(inner) were accepted")
        #expect(e.offset == offset)
        #expect(e.reason.contains("UTF-8"))
    }

    @Test func invalidUTF8InAKeyIsRefused() throws {
        let e = try #require(jsonError([0x7B, 0x22, 0xC0, 0xAF, 0x22, 0x3A, 0x31, 0x7D]))  // {"<C0 AF>":1}
        #expect(e.offset == 2)
    }

    /// The documented contract is "the offset of the problem". After an escape the parser
    /// switches to a slower path; the offset must still be the bad byte, not the string start.
    @Test func invalidUTF8AfterAnEscapeIsRefusedWithItsOffset() throws {
        // text: "  \  n  <FF>  "   offsets: 0 1 2 3 4
        let e = try #require(jsonError([0x22, 0x5C, 0x6E, 0xFF, 0x22]))
        #expect(e.reason.contains("UTF-8"))
        #expect(e.offset == 3, "reported \(e)")
    }

    @Test func invalidUTF8OutsideStringsIsRefused() {
        #expect(jsonError([0x5B, 0xFF, 0x5D]) != nil)           // [<FF>]
        #expect(jsonError([0xEF, 0xBB, 0xBF, 0x31]) != nil)     // a byte order mark is not JSON
    }

    // MARK: Surrogate escapes

    @Test(arguments: [
        #""\ud800""#,          // lone high surrogate at the end
        #""\ud800x""#,         // high surrogate followed by a plain character
        #""\udc00""#,          // lone low surrogate
        #""\ude00\ud83d""#,    // pair in the wrong order
        #""\ud83d\u0041""#,    // high surrogate followed by a non-surrogate escape
        #""\ud83d\ud83d""#,    // two high surrogates
    ])
    func loneSurrogateEscapesAreRefused(text: String) {
        #expect(jsonError(text) != nil, "\(text) was accepted")
    }

    @Test func surrogatePairEscapeBecomesOneScalar() throws {
        let s = try #require(JSONValue.parse(#""\uD83D\uDE00""#).stringValue)
        #expect(s.unicodeScalars.map(\.value) == [0x1F600])
    }

    // MARK: Duplicate keys

    @Test func duplicateKeysAreRefused() throws {
        let e = try #require(jsonError(#"{"a":1,"a":2}"#))
        #expect(e.offset == 7)  // the second "a"
        #expect(e.reason.contains("duplicate"))
    }

    @Test func duplicateKeysAreRefusedEvenWhenSpelledWithEscapes() {
        #expect(jsonError(#"{"ab":1,"\u0061b":2}"#) != nil)
        #expect(jsonError(#"{"x":{"中":1,"\u4e2d":2}}"#) != nil)
    }

    @Test func equalKeysInDifferentObjectsAreFine() throws {
        let v = try JSONValue.parse(#"[{"a":1},{"a":2},{"b":{"a":3}}]"#)
        #expect(v.arrayValue?.count == 3)
    }

    /// RFC 8259 §8.3 compares member names code unit by code unit, and the protocol keeps
    /// strings byte for byte: U+00E9 and "e" + U+0301 are different keys, not duplicates.
    @Test func keysThatDifferInBytesAreNotDuplicates() throws {
        let v = try JSONValue.parse("{\"caf\u{E9}\":1,\"cafe\u{301}\":2}")
        #expect(v.objectValue?.count == 2)
    }

    // MARK: Nesting

    @Test func nestingOfSixtyFourLevelsIsAccepted() throws {
        let text = String(repeating: "[", count: 64) + String(repeating: "]", count: 64)
        var v = try JSONValue.parse(text)
        var depth = 1
        while case .array(let items) = v, let first = items.first {
            v = first
            depth += 1
        }
        #expect(depth == 64)
    }

    @Test func nestingOfSixtyFiveLevelsIsRefused() throws {
        let text = String(repeating: "[", count: 65) + String(repeating: "]", count: 65)
        let e = try #require(jsonError(text))
        #expect(e.offset == 64)
        #expect(e.reason.contains("64"))
    }

    @Test func depthBombGivesAnErrorNotACrash() throws {
        let arrays = try #require(jsonError(String(repeating: "[", count: 200_000)))
        #expect(arrays.offset == 64)
        let objects = try #require(jsonError(String(repeating: #"{"a":"#, count: 100_000)))
        #expect(objects.reason.contains("nested"))
        let mixed = try #require(jsonError(String(repeating: #"[{"k":"#, count: 50_000)))
        #expect(mixed.reason.contains("nested"))
    }

    // MARK: Numbers

    @Test(arguments: ["01", "-01", "00", "007", "-00", "00.5"])
    func leadingZerosAreRefused(text: String) throws {
        let e = try #require(jsonError(text), "\(text) was accepted")
        #expect(e.reason.contains("leading zero"))
        #expect(e.offset == 0)
    }

    @Test(arguments: ["+1", ".5", "1.", "-", "--1", "1e", "1e+", "0x10", "NaN", "Infinity", "-Infinity", "1_000"])
    func malformedNumbersAreRefused(text: String) {
        #expect(jsonError(text) != nil, "\(text) was accepted")
    }

    @Test func zeroAndFractionsAndExponentsAreNumbers() throws {
        #expect(try JSONValue.parse("0") == .int(0))
        #expect(try JSONValue.parse("-0") == .int(0))
        #expect(try JSONValue.parse("0.25") == .double(0.25))
        #expect(try JSONValue.parse("-1.5e2") == .double(-150))
        #expect(try JSONValue.parse("2E-1") == .double(0.2))
        #expect(try JSONValue.parse("1.0") == .double(1.0))
    }

    @Test func exactInt64LimitsStayIntegers() throws {
        #expect(try JSONValue.parse("9223372036854775807") == .int(Int64.max))
        #expect(try JSONValue.parse("-9223372036854775808") == .int(Int64.min))
    }

    @Test func integersBeyondInt64BecomeDoubles() throws {
        #expect(try JSONValue.parse("9223372036854775808") == .double(9_223_372_036_854_775_808.0))
        #expect(try JSONValue.parse("-9223372036854775809") == .double(-9_223_372_036_854_775_809.0))
        #expect(try JSONValue.parse("12345678901234567890") == .double(12_345_678_901_234_567_890.0))
        #expect(try JSONValue.parse("100000000000000000000000") == .double(1e23))
    }

    @Test func numbersTooLargeForADoubleAreRefused() throws {
        let e = try #require(jsonError("[1, 1e400]"))
        #expect(e.offset == 4)
    }

    // MARK: Strings and literals

    @Test(arguments: Array(UInt8(0)...UInt8(0x1F)))
    func rawControlCharactersInStringsAreRefused(byte: UInt8) throws {
        let e = try #require(jsonError([0x22, 0x61, byte, 0x22]), "control byte \(byte) accepted")
        #expect(e.offset == 2)
        // and also after an escape (the parser's second path)
        #expect(jsonError([0x22, 0x5C, 0x6E, byte, 0x22]) != nil)
    }

    @Test func deleteCharacterIsNotAControlCharacterInJSON() throws {
        #expect(try JSONValue.parse(bytes: [0x22, 0x7F, 0x22]) == .string("\u{7F}"))
    }

    @Test(arguments: [#""\x41""#, #""\a""#, #""\'""#, #""\u12""#, #""\u12G4""#, #""\U0041""#, #""abc"#, #""\"#])
    func badEscapesAndUnterminatedStringsAreRefused(text: String) {
        #expect(jsonError(text) != nil, "\(text) was accepted")
    }

    @Test(arguments: ["tru", "trUe", "nul", "nulll", "False", "True", "none", "undefined"])
    func misspelledLiteralsAreRefused(text: String) {
        #expect(jsonError(text) != nil, "\(text) was accepted")
    }

    // MARK: Structure

    @Test(arguments: ["", "   ", "[1,]", "[,1]", "{\"a\":1,}", "{,}", "{\"a\" 1}", "{a:1}", "{'a':1}", "[1 2]", "{\"a\":1 \"b\":2}", "[", "{", "]", "}"])
    func malformedStructureIsRefused(text: String) {
        #expect(jsonError(text) != nil, "\(text.debugDescription) was accepted")
    }

    @Test func trailingTextIsRefused() throws {
        let e = try #require(jsonError(#"{"a":1} x"#))
        #expect(e.offset == 8)
        #expect(e.reason.contains("after"))
        #expect(jsonError("1 2") != nil)
        #expect(jsonError("[] []") != nil)
        #expect(jsonError("null,") != nil)
        #expect(jsonError([0x31, 0x00]) != nil)  // a NUL byte after the value
    }

    @Test func surroundingWhitespaceIsAllowed() throws {
        #expect(try JSONValue.parse(" \t\r\n[ 1 , 2 ]\n ") == .array([.int(1), .int(2)]))
    }

    @Test func errorDescriptionCountsBytesFromOne() throws {
        let e = try #require(jsonError(#"{"a":1,"a":2}"#))
        #expect(e.description.hasPrefix("byte 8:"))
    }
}

@Suite struct JSONWriterSpec {
    @Test func compactTextHasNoSpacesAndKeepsKeyOrder() {
        let v: JSONValue = ["b": 1, "a": ["x", true, nil], "c": [:]]
        #expect(v.compactText == #"{"b":1,"a":["x",true,null],"c":{}}"#)
    }

    @Test func stringsEscapeOnlyWhatJSONRequires() {
        let v = JSONValue.string("a\"b\\c\n\r\t\u{1}\u{1F}/王芳😀\u{7F}")
        #expect(v.compactText == "\"a\\\"b\\\\c\\n\\r\\t\\u0001\\u001f/王芳😀\u{7F}\"")
    }

    @Test func chineseAndEmojiRoundTripThroughCompactText() throws {
        let originals: [JSONValue] = [
            .string("王芳在村委会调解了邻里纠纷"),
            .string("👨‍👩‍👧‍👦🇨🇳😀"),
            ["作者": "李明", "备注": ["已化解", "😀", "\u{2028}\u{2029}"]],
            .string("𠀀𪚥"),  // supplementary-plane CJK ideographs
        ]
        for v in originals {
            let text = v.compactText
            let back = try JSONValue.parse(text)
            #expect(back == v)
            #expect(back.compactText.utf8.elementsEqual(text.utf8))
        }
        // The writer does not escape non-ASCII: the UTF-8 bytes appear as-is.
        #expect(Array(JSONValue.string("中").compactText.utf8) == [0x22, 0xE4, 0xB8, 0xAD, 0x22])
    }

    @Test func prettyTextParsesToTheSameValue() throws {
        let v: JSONValue = ["fields": ["status": ["value": "已化解", "seen": ["9f3c2a1b4d5e6f70": 41]]], "n": [1, 2]]
        #expect(v.prettyText.contains("\n  \"fields\": {"))
        #expect(try JSONValue.parse(v.prettyText) == v)
    }

    @Test func randomDocumentsRoundTripByteForByte() throws {
        for seed in propertySeeds {
            var rng = SplitMix64(seed: seed)
            for _ in 0..<30 {
                let v = randomValue(&rng, depth: 0)
                let text = v.compactText
                let back: JSONValue
                do { back = try JSONValue.parse(text) } catch {
                    Issue.record("seed \(seed): writer output did not parse: \(error) in \(text.debugDescription)")
                    continue
                }
                #expect(back == v, "seed \(seed)")
                #expect(Array(back.compactText.utf8) == Array(text.utf8), "seed \(seed)")
            }
        }
    }

    // MARK: Random documents

    private func randomScalar(_ rng: inout SplitMix64) -> Unicode.Scalar {
        let pools: [ClosedRange<UInt32>] = [
            0x00...0x1F, 0x20...0x7E, 0x22...0x22, 0x5C...0x5C, 0x7F...0x7F, 0x80...0x7FF,
            0x4E00...0x9FFF, 0x1F300...0x1F64F, 0x20000...0x2A6DF, 0x2028...0x2029, 0xE000...0xFFFD,
        ]
        while true {
            let pool = pools[Int(rng.next() % UInt64(pools.count))]
            if let s = Unicode.Scalar(UInt32.random(in: pool, using: &rng)) { return s }
        }
    }

    private func randomString(_ rng: inout SplitMix64) -> String {
        var s = String.UnicodeScalarView()
        for _ in 0..<Int(rng.next() % 12) { s.append(randomScalar(&rng)) }
        return String(s)
    }

    private func randomValue(_ rng: inout SplitMix64, depth: Int) -> JSONValue {
        let pick = rng.next() % (depth < 4 ? 8 : 6)
        switch pick {
        case 0: return .null
        case 1: return .bool(rng.next() % 2 == 0)
        case 2:
            let specials: [Int64] = [0, -1, 1, Int64.max, Int64.min, 999_999_999_999_999]
            return .int(rng.next() % 3 == 0 ? specials[Int(rng.next() % 6)] : Int64(bitPattern: rng.next()))
        case 3:
            // A non-integral double: the writer prints those exactly.
            let d = Double(Int64(bitPattern: rng.next()) % 1_000_000) + 0.5
            return .double(d / 1024)
        case 4, 5: return .string(randomString(&rng))
        case 6: return .array((0..<Int(rng.next() % 4)).map { _ in randomValue(&rng, depth: depth + 1) })
        default:
            // Keys made distinct by a numeric prefix.
            let n = Int(rng.next() % 4)
            return .object(JSONObject((0..<n).map { i in ("\(i)" + randomString(&rng), randomValue(&rng, depth: depth + 1)) }))
        }
    }
}

import FieldSyncCore
@testable import FieldSyncHub
@testable import FieldSyncPostgres
import Testing

// MARK: - The report tallies' parts

/// The pieces the report tallies are built from, on their own: exact interning of byte strings
/// (the figures depend on it), reading dates as the tallies do, and reading PostgreSQL's
/// packed rows. The tallies as a whole are checked against an independent computation in
/// ReportSpec, on both stores.
@Suite struct ReportTallySpec {
    func id(_ i: inout ByteInterner, _ s: String) -> Int {
        Array(s.utf8).withUnsafeBufferPointer { i.id($0) }
    }

    @Test func theInternerGivesEachDistinctByteStringOneIdInOrderOfFirstSight() {
        var interner = ByteInterner()
        var seen: [String: Int] = [:]
        var g = SystemRandomNumberGenerator()
        let seed = UInt64.random(in: 0...UInt64.max, using: &g)
        var state = seed
        // 50,000 strings drawn from 20,000 (the table grows several times), with empty strings,
        // prefixes of each other and Chinese text among them.
        for _ in 0..<50_000 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            let n = Int(state >> 33) % 20_000
            let s = n % 7 == 0 ? String(repeating: "户", count: n % 5) : "522224100201-" + String(n, radix: 16)
            let expected = seen[s] ?? seen.count
            seen[s] = expected
            #expect(id(&interner, s) == expected, "seed \(seed): \(s)")
        }
        #expect(interner.count == seen.count, "seed \(seed)")
        for (s, i) in seen { #expect(interner.key(i) == Array(s.utf8), "seed \(seed)") }
    }

    @Test func textThatIsCanonicallyEquivalentButNotTheSameBytesIsTwoKeys() {
        // SQL compares bytes; so do the tallies (Swift's == would call these equal).
        var interner = ByteInterner()
        let composed = id(&interner, "\u{00E9}"), decomposed = id(&interner, "e\u{0301}")
        #expect(composed != decomposed)
        #expect(id(&interner, "\u{00E9}") == composed)
    }

    @Test func datesAreReadOnlyInTheirOneForm() {
        func day(_ s: String) -> Int? { Array(s.utf8).withUnsafeBufferPointer { VisitTally.dayNumber($0) } }
        #expect(day("2025-03-09") == 20250309)
        for bad in ["2025-3-09", "2025-03-9", "２０２５-03-09", "2025/03/09", "2025-03-09 ", "", "abcd-ef-gh"] {
            #expect(day(bad) == nil, "\(bad)")
        }
        #expect(VisitTally.dayText(20250309) == "2025-03-09")
        #expect(DisputeTally.epochDay(19700101) == 0)
        #expect(DisputeTally.epochDay(20240229) == 19782)
        #expect(DisputeTally.epochDay(20250229) == nil)
        #expect(DisputeTally.epochDay(20251301) == nil)
    }

    /// PostgreSQL's binary one-dimensional array: ndim, has-null flag, element type, then size
    /// and lower bound, then each element's length (−1 for NULL) and bytes.
    func array(_ elements: [[UInt8]?], dims: Int32 = 1) -> [UInt8] {
        func be(_ v: Int32) -> [UInt8] { withUnsafeBytes(of: v.bigEndian) { Array($0) } }
        var out = be(dims) + be(elements.contains { $0 == nil } ? 1 : 0) + be(25)
        if dims == 0 { return out }
        out += be(Int32(elements.count)) + be(1)
        for e in elements { out += e.map { be(Int32($0.count)) + $0 } ?? be(-1) }
        return out
    }

    @Test func packedArraysAreReadElementByElementWithNulls() throws {
        let bytes = [0xAA] + array([Array("2025-01-02".utf8), nil, [], Array("调解中".utf8)]) + [0xBB]
        let spans = try PackedArray.elements(bytes, 1..<(bytes.count - 1))
        #expect(spans.count == 4)
        #expect(spans[0].map { Array(bytes[$0]) } == Array("2025-01-02".utf8))
        #expect(spans[1] == nil)
        #expect(spans[2]?.isEmpty == true)
        #expect(spans[3].map { String(decoding: bytes[$0], as: UTF8.self) } == "调解中")
        #expect(try PackedArray.elements(array([], dims: 0), 0..<12).isEmpty)
        #expect(PackedArray.integer([0, 0, 0, 0, 0, 0, 1, 2][...]) == 258)
        #expect(PackedArray.integer([0xFF, 0xFF, 0xFF, 0xFE][...]) == -2)
        #expect(PackedArray.integer([1, 2, 3][...]) == nil)
    }

    @Test func aMalformedPackedArrayIsAnErrorNotACrash() {
        let good = array([Array("a".utf8), Array("bc".utf8)])
        // Every truncation, a second dimension, a length past the end, a negative count.
        for cut in 0..<good.count {
            #expect(throws: PackedArray.Malformed.self) { try PackedArray.elements(good, 0..<cut) }
        }
        #expect(throws: PackedArray.Malformed.self) { try PackedArray.elements(array([[1]], dims: 2), 0..<array([[1]], dims: 2).count) }
        var long = good
        long[23] = 0x7F  // the first element's length
        #expect(throws: PackedArray.Malformed.self) { try PackedArray.elements(long, 0..<long.count) }
        var negative = good
        negative[12] = 0xFF
        #expect(throws: PackedArray.Malformed.self) { try PackedArray.elements(negative, 0..<negative.count) }
    }
}

@testable import FieldSyncCore
import Testing

@Suite struct FieldSpecValidationSpec {
    func decode(_ spec: FieldSpec, _ json: JSONValue) -> FieldValue? {
        do throws(InputError) { return try spec.decode(json) } catch { return nil }
    }

    // MARK: null and required

    @Test func nullClearsAnOptionalFieldAndIsRefusedForARequiredOne() throws {
        let optional = FieldSpec("note", "备注", .text(maxLength: 10))
        let required = FieldSpec("name", "姓名", .text(maxLength: 10), required: true)
        #expect(decode(optional, nil) == .null)
        let e = try #require(decodeError(required, nil))
        #expect(e.reason.contains("required"))
        #expect(decode(required, "") == nil)
        #expect(decode(optional, "") == .text(""))
    }

    // MARK: text and long text

    /// changeset.md §2.1: text length counts Unicode scalars (code points), which every
    /// implementation counts alike (grapheme clusters depend on the Unicode version).
    @Test func textIsLimitedToItsLengthInUnicodeScalars() {
        let spec = FieldSpec("head", "户主", .text(maxLength: 7))
        #expect(decode(spec, "王大明") == .text("王大明"))
        #expect(decode(spec, "一二三四五六七") == .text("一二三四五六七"))
        #expect(decode(spec, "一二三四五六七八") == nil)
        #expect(decode(spec, "👨‍👩‍👧‍👦") == .text("👨‍👩‍👧‍👦"))  // 4 people + 3 joiners = 7 scalars
        #expect(decode(spec, "👨‍👩‍👧‍👦a") == nil)  // 8 scalars, though one "character" and a letter
    }

    @Test func textIsStoredByteForByte() {
        let spec = FieldSpec("head", "户主", .text(maxLength: 50))
        let v = decode(spec, .string("  cafe\u{301} \t"))
        #expect(v?.text.map { Array($0.utf8) } == Array("  cafe\u{301} \t".utf8))
    }

    @Test func nulIsRefusedInEveryStringType() throws {
        for type in [FieldType.text(maxLength: 10), .longText, .choice(["a\u{0}b"]), .date, .geo, .regionCode([6]), .reference(.cadre)] {
            let e = try #require(decodeError(FieldSpec("f", "字段", type), .string("a\u{0}b")), "\(type.name)")
            #expect(e.reason.contains("NUL"), "\(type.name)")
        }
    }

    @Test func longTextIsLimitedToOneMebibyteOfUTF8() {
        let spec = FieldSpec("notes", "走访情况", .longText)
        let limit = 1 << 20
        #expect(FieldType.longTextMaxBytes == limit)
        #expect(decode(spec, .string(String(repeating: "a", count: limit))) != nil)
        #expect(decode(spec, .string(String(repeating: "a", count: limit + 1))) == nil)
        // 中 is 3 bytes of UTF-8: 349525 of them are 1048575 bytes, one more is 1048578
        #expect(decode(spec, .string(String(repeating: "中", count: 349_525))) != nil)
        #expect(decode(spec, .string(String(repeating: "中", count: 349_526))) == nil)
    }

    // MARK: integer and money

    @Test func integersMustBeWholeAndInRange() throws {
        let spec = FieldSpec("members", "家庭人口", .integer(0...100))
        #expect(decode(spec, 0) == .integer(0))
        #expect(decode(spec, 100) == .integer(100))
        #expect(decode(spec, 101) == nil)
        #expect(decode(spec, -1) == nil)
        #expect(decode(spec, .double(5.5)) == nil)
        #expect(decode(spec, "5") == nil)
        let e = try #require(decodeError(spec, 101))
        #expect(e.reason.contains("101"))
    }

    @Test func moneyIsWholeFenFromZeroToTenToTheFifteen() throws {
        let spec = FieldSpec("budget_fen", "预算金额", .money)
        #expect(decode(spec, 0) == .integer(0))
        #expect(decode(spec, 1_000_000_000_000_000) == .integer(1_000_000_000_000_000))
        #expect(decode(spec, 1_000_000_000_000_001) == nil)
        let negative = try #require(decodeError(spec, -1))
        #expect(negative.reason.contains("negative"))
        let fraction = try #require(decodeError(spec, .double(12.5)))
        #expect(fraction.reason.contains("分"))
        // an integer beyond 64 bits arrives as a double and is refused, not rounded
        #expect(decode(spec, try JSONValue.parse("100000000000000000000")) == nil)
        #expect(decode(spec, "1250") == nil)
    }

    // MARK: date

    @Test(arguments: ["1900-01-01", "2200-12-31", "2024-02-29", "2000-02-29", "2023-04-30", "2023-12-31"])
    func realCalendarDatesAreAccepted(text: String) {
        #expect(decode(FieldSpec("d", "日期", .date), .string(text)) == .text(text))
    }

    @Test(arguments: ["2023-02-30", "2023-02-29", "1900-02-29", "2100-02-29", "2023-04-31", "2023-13-01", "2023-00-01",
                      "2023-01-00", "1899-12-31", "2201-01-01", "2023-1-04", "2023/01/04", "20230104", "2023-01-04T00:00:00Z",
                      "2023-01-4 ", "２０２３-01-04", ""])
    func impossibleDatesAreRefused(text: String) throws {
        let e = try #require(decodeError(FieldSpec("d", "日期", .date), .string(text)), "\(text) accepted")
        #expect(!e.reason.isEmpty)
    }

    @Test func anImpossibleDateIsNamedInTheError() throws {
        let e = try #require(decodeError(FieldSpec("d", "日期", .date), "2023-02-30"))
        #expect(e.reason.contains("2023-02-30"))
    }

    // MARK: boolean

    @Test func booleansAreStoredAsOneAndZero() {
        let spec = FieldSpec("done", "是否办结", .bool)
        #expect(decode(spec, true) == .integer(1))
        #expect(decode(spec, false) == .integer(0))
        #expect(decode(spec, 1) == nil)
        #expect(decode(spec, "true") == nil)
        #expect(spec.encode(.integer(1)) == .bool(true))
        #expect(spec.encode(.integer(0)) == .bool(false))
    }

    // MARK: choice and choices

    @Test func choiceMustBeOneOfItsValues() throws {
        let spec = RecordKind.dispute.spec.field("status")!
        #expect(decode(spec, "已化解") == .text("已化解"))
        let e = try #require(decodeError(spec, "已解决"))
        #expect(e.reason == "\"已解决\" is not one of 受理, 调解中, 已化解, 已上报, 未化解")
        #expect(decode(spec, " 已化解") == nil)
        #expect(decode(spec, ["已化解"]) == nil)
    }

    @Test func choicesAreStoredInEnumerationOrderWithoutRepeats() {
        let spec = FieldSpec("topics", "走访事项", .choices(["政策宣传", "就业", "医疗", "教育"]))
        let canonical = FieldValue.text(#"["就业","医疗"]"#)
        #expect(decode(spec, ["医疗", "就业"]) == canonical)
        #expect(decode(spec, ["就业", "医疗", "就业"]) == canonical)
        #expect(decode(spec, ["医疗", "医疗", "就业", "就业"]) == canonical)
        #expect(decode(spec, ["教育", "政策宣传"]) == .text(#"["政策宣传","教育"]"#))
        #expect(decode(spec, []) == .text("[]"))
        #expect(spec.encode(canonical) == .array(["就业", "医疗"]))
    }

    @Test func choicesCanonicalFormIsIndependentOfOrderAndRepeats() {
        let options = Enumerations.visitTopics
        let spec = FieldSpec("topics", "走访事项", .choices(options))
        for seed in propertySeeds {
            var rng = SplitMix64(seed: seed)
            let picked = options.filter { _ in rng.next() % 2 == 0 }
            var input = picked + picked.filter { _ in rng.next() % 3 == 0 }
            input.shuffle(using: &rng)
            let expected = "[" + picked.map { "\"\($0)\"" }.joined(separator: ",") + "]"
            #expect(decode(spec, .array(input.map { .string($0) })) == .text(expected), "seed \(seed)")
        }
    }

    @Test func choicesRefuseUnknownValuesAndNonStrings() throws {
        let spec = FieldSpec("topics", "走访事项", .choices(["就业", "医疗"]))
        let e = try #require(decodeError(spec, ["就业", "旅游"]))
        #expect(e.reason.contains("\"旅游\""))
        #expect(decode(spec, ["就业", 1]) == nil)
        #expect(decode(spec, "就业") == nil)
    }

    @Test func storedChoicesAreCheckedAndCanonicalised() throws {
        let spec = FieldSpec("topics", "走访事项", .choices(["就业", "医疗"]))
        #expect(try spec.check(stored: .text(#"["医疗","就业","医疗"]"#)) == .text(#"["就业","医疗"]"#))
        #expect(throws: InputError.self) { try spec.check(stored: .text("就业,医疗")) }
        let bool = FieldSpec("done", "是否办结", .bool)
        #expect(throws: InputError.self) { try bool.check(stored: .integer(2)) }
        #expect(try bool.check(stored: .integer(1)) == .integer(1))
    }

    // MARK: region codes, references, GPS

    @Test func regionCodesAreDigitsOfAnAllowedLength() {
        let village = FieldSpec("village", "村", .regionCode([12]))
        #expect(decode(village, "520221105201") == .text("520221105201"))
        #expect(decode(village, "52022110520") == nil)
        #expect(decode(village, "5202211052011") == nil)
        #expect(decode(village, "52022110520a") == nil)
        #expect(decode(village, 520221105201) == nil)
        let any = FieldSpec("parent", "上级", .regionCode([6, 9, 12]))
        for ok in ["520221", "520221105", "520221105201"] { #expect(decode(any, .string(ok)) != nil) }
        for bad in ["52022", "5202211", "5202211052", ""] { #expect(decode(any, .string(bad)) == nil, "\(bad)") }
    }

    @Test func referencesAreRecordIdsOfTheirKind() {
        let cadre = FieldSpec("cadre_id", "干部", .reference(.cadre))
        #expect(decode(cadre, "520221105-0123456789abcdef0123456789abcdef") != nil)
        #expect(decode(cadre, "0123456789abcdef0123456789abcdef") == nil)
        #expect(decode(cadre, "520221105-0123456789ABCDEF0123456789ABCDEF") == nil)
        #expect(decode(cadre, "520221105-0123456789abcdef0123456789abcde") == nil)
        let region = FieldSpec("r", "区划", .reference(.region))
        #expect(decode(region, "520221105201") != nil)
        #expect(decode(region, "0123456789abcdef0123456789abcdef") == nil)
    }

    @Test(arguments: ["26.5912,104.8307", "-90,-180", "90,180", "0,0", "-26.5912345,104.8307000", "45.1,-0.5"])
    func gpsPointsWithinRangeAreAccepted(text: String) {
        #expect(decode(FieldSpec("loc", "定位", .geo), .string(text)) == .text(text))
    }

    @Test(arguments: ["90.0000001,0", "0,180.0000001", "-91,0", "1.12345678,2", "26.5912", "26.5912,104.8307,0", " 26.5,104.8",
                      "26.5, 104.8", "1e1,2", ".5,1", "1.,2", "1000,0", "+26.5,104.8", "26,5912,104", "--1,2", ""])
    func malformedOrOutOfRangeGPSPointsAreRefused(text: String) {
        #expect(decode(FieldSpec("loc", "定位", .geo), .string(text)) == nil, "\(text) accepted")
    }

    // MARK: every field of the schema

    @Test func everyFieldOfTheSchemaRoundTripsAValueOfItsType() throws {
        for kind in RecordKind.allCases {
            for spec in kind.spec.fields {
                let json: JSONValue
                switch spec.type {
                case .text: json = "王芳"
                case .longText: json = "走访情况良好\n第二行"
                case .integer(let r): json = .int(r.upperBound)
                case .money: json = 123_450
                case .date: json = "2024-02-29"
                case .bool: json = true
                case .choice(let values): json = .string(values.last!)
                case .choices(let values): json = .array([.string(values.last!), .string(values.first!)])
                case .regionCode(let lengths): json = .string(String(repeating: "5", count: lengths.max()!))
                case .reference(let k): json = k == .region ? "520221" : "520221105201-0123456789abcdef0123456789abcdef"
                case .geo: json = "26.5912,104.8307"
                }
                let stored = try spec.decode(json)
                let back = spec.encode(stored)
                if case .choices(let values) = spec.type {
                    #expect(back == .array([.string(values.first!), .string(values.last!)]), "\(spec.location(in: kind))")
                } else {
                    #expect(back == json, "\(spec.location(in: kind))")
                }
                #expect(try spec.check(stored: stored) == stored, "\(spec.location(in: kind))")
            }
        }
    }

    @Test func typeNamesMatchTheProtocol() {
        let names = [FieldType.text(maxLength: 1), .longText, .integer(0...1), .money, .date, .bool, .choice([]), .choices([]),
                     .regionCode([6]), .reference(.cadre), .geo].map(\.name)
        #expect(names == ["text", "long_text", "integer", "money_fen", "date", "boolean", "choice", "choices", "region_code", "reference", "geo"])
    }
}

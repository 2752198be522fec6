@testable import FieldSyncCore
import Testing

@Suite struct HumanInputSpec {
    static let budget = RecordKind.project.spec.field("budget_fen")!
    static let members = RecordKind.household.spec.field("members")!
    static let reported = RecordKind.dispute.spec.field("reported_on")!
    static let signed = RecordKind.dispute.spec.field("agreement_signed")!
    static let topics = RecordKind.visit.spec.field("topics")!
    static let parties = RecordKind.dispute.spec.field("parties")!
    static let status = RecordKind.dispute.spec.field("status")!

    func human(_ spec: FieldSpec, _ raw: String, unit: FieldSpec.MoneyUnit = .fen) -> JSONValue? {
        do throws(InputError) { return try spec.parseHuman(raw, unit: unit) } catch { return nil }
    }

    // MARK: Yuan to fen, exactly

    @Test(arguments: [
        ("1,234.5", 123_450 as Int64), ("0.01", 1), ("0.1", 10), ("12.34", 1234), ("12", 1200), ("0", 0),
        ("1,000,000.99", 100_000_099), ("¥12.50", 1250), ("￥3", 300), ("88元", 8800), ("-1.5", -150),
        // 0.07 × 100 is 7.000000000000001 in floating point: the conversion must not use it
        ("0.07", 7), ("1.15", 115), ("4.35", 435), ("9999999999999.99", 999_999_999_999_999),
        // Full-width digits and punctuation, and 万 (the same reading as the app's forms).
        ("１２", 1200), ("１，２００．５０", 120_050), ("12.5万", 12_500_000), ("12.5万元", 12_500_000), ("3万", 3_000_000),
        ("0.0001万", 100), ("１．２万", 1_200_000),
    ])
    func yuanConvertsToFenExactly(text: String, fen: Int64) {
        #expect(FieldSpec.yuanToFen(text) == fen, "\(text)")
    }

    @Test(arguments: ["12.345", "0.001", ".5", "5.", "1.2.3", "", "-", "abc", "1e3", "1 000", "10000000000000", "--1", "1.-5", "+5", "1万2", "万"])
    func yuanWithMoreThanTwoDecimalsOrNoDigitsIsRefused(text: String) {
        #expect(FieldSpec.yuanToFen(text) == nil, "\(text) gave \(String(describing: FieldSpec.yuanToFen(text)))")
    }

    @Test func moneyCellsAreReadInTheChosenUnit() {
        #expect(human(Self.budget, " 1,234.50 ", unit: .yuan) == .int(123_450))
        #expect(human(Self.budget, "1,234", unit: .fen) == .int(1234))
        #expect(human(Self.budget, "12.5", unit: .fen) == nil)  // 分 are whole
        #expect(human(Self.budget, "12.345", unit: .yuan) == nil)
        #expect(human(Self.budget, "", unit: .yuan) == .null)
    }

    // MARK: Dates

    @Test(arguments: [
        ("2023/1/4", "2023-01-04"), ("2023年1月4日", "2023-01-04"), ("2023.1.4", "2023-01-04"),
        ("2023-01-04", "2023-01-04"), ("2023/12/31", "2023-12-31"), ("2024年2月29日", "2024-02-29"),
        ("2023年10月1日", "2023-10-01"),
    ])
    func spreadsheetDatesAreNormalised(text: String, iso: String) {
        #expect(FieldSpec.normalizeDate(text) == iso)
    }

    @Test(arguments: ["2023/2/29", "2023/13/1", "2023/0/1", "2023/1/32", "23/1/4", "2023/001/4", "2023-1", "1/4/2023",
                      "2023年1月", "1899/12/31", "2201/1/1", "", "二〇二三年一月四日"])
    func impossibleOrUnreadableDatesAreRefused(text: String) {
        #expect(FieldSpec.normalizeDate(text) == nil, "\(text) gave \(String(describing: FieldSpec.normalizeDate(text)))")
    }

    @Test func dateCellsBecomeISODates() {
        #expect(human(Self.reported, "2023年1月4日") == .string("2023-01-04"))
        #expect(human(Self.reported, "\u{3000}2023/1/4 ") == .string("2023-01-04"))
        #expect(human(Self.reported, "2023/2/30") == nil)
    }

    // MARK: Yes and no

    @Test(arguments: ["是", "true", "TRUE", "Yes", "y", "1", "已办结", "已签订"])
    func yesWordsAreTrue(text: String) {
        #expect(human(Self.signed, text) == .bool(true))
    }

    @Test(arguments: ["否", "false", "No", "N", "0", "未办结", "未签订"])
    func noWordsAreFalse(text: String) {
        #expect(human(Self.signed, text) == .bool(false))
    }

    @Test(arguments: ["对", "不是", "maybe", "2", "是的"])
    func otherWordsAreNotBooleans(text: String) {
        #expect(human(Self.signed, text) == nil, "\(text)")
    }

    // MARK: Other types

    @Test func wholeNumbersMayHaveThousandsSeparators() {
        #expect(human(Self.members, "5") == .int(5))
        #expect(human(Self.members, "1,200") == .int(1200))
        #expect(human(Self.members, "-3") == .int(-3))  // the range check is decode's job
        #expect(human(Self.members, "5.0") == nil)
        #expect(human(Self.members, "五") == nil)
    }

    @Test func severalChoicesSplitOnChineseAndLatinSeparators() {
        #expect(human(Self.topics, "就业、医疗") == .array(["就业", "医疗"]))
        #expect(human(Self.topics, "就业，医疗;教育") == .array(["就业", "医疗", "教育"]))
        #expect(human(Self.topics, "就业") == .array(["就业"]))
    }

    @Test func humanChoicesDecodeToTheCanonicalSet() throws {
        let json = try #require(human(Self.topics, "医疗、就业、医疗"))
        #expect(try Self.topics.decode(json) == .text(#"["就业","医疗"]"#))
    }

    @Test func textIsKeptExactlyAndAnEmptyCellIsNull() {
        #expect(human(Self.parties, "  张三与李四 ") == .string("  张三与李四 "))
        #expect(human(Self.parties, " \t\u{3000}\n") == .null)
        #expect(human(Self.status, " 已化解 ") == .string("已化解"))
    }

    /// The trimming rule lists "\r" and "\n", so a cell ending in a Windows line break (CR LF,
    /// which Swift treats as one Character) must be trimmed too.
    @Test func cellsEndingInAWindowsLineBreakAreTrimmed() {
        #expect(human(Self.budget, "12.50\r\n", unit: .yuan) == .int(1250))
        #expect(human(Self.reported, "2023/1/4\r\n") == .string("2023-01-04"))
        #expect(human(Self.signed, "是\r\n") == .bool(true))
        #expect(human(Self.parties, "\r\n") == .null)
    }
}

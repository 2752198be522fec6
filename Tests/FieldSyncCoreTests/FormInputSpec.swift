@testable import FieldSyncCore
import Testing

/// What a person types into a form field (``FieldSpec/readForm(_:)``): the same value the replica
/// would store, or a problem said in Chinese at the field.
@Suite struct FormInputSpec {
    static let budget = RecordKind.project.spec.field("budget_fen")!
    static let members = RecordKind.household.spec.field("members")!
    static let reported = RecordKind.dispute.spec.field("reported_on")!
    static let status = RecordKind.dispute.spec.field("status")!
    static let category = RecordKind.dispute.spec.field("category")!
    static let topics = RecordKind.visit.spec.field("topics")!
    static let parties = RecordKind.dispute.spec.field("parties")!
    static let signed = RecordKind.dispute.spec.field("agreement_signed")!

    func read(_ f: FieldSpec, _ text: String) -> Result<FieldValue, FormProblem> {
        do throws(FormProblem) { return .success(try f.readForm(text)) } catch { return .failure(error) }
    }

    func problem(_ f: FieldSpec, _ text: String) -> FormProblem? {
        if case .failure(let p) = read(f, text) { return p }
        return nil
    }

    @Test(arguments: [("12.5万", 12_500_000 as Int64), ("1,200.50", 120_050), ("¥300", 30_000), ("１，２００．５０", 120_050),
                      ("  88元 ", 8_800), ("0", 0), ("12.5 万", -1)])
    func moneyIsTypedInYuanAndStoredInFen(text: String, fen: Int64) throws {
        if fen < 0 {
            #expect(problem(Self.budget, text)?.message.contains("不是金额") == true, "\(text)")
        } else {
            #expect(try read(Self.budget, text).get() == .integer(fen), "\(text)")
        }
    }

    @Test func negativeMoneyAndWordsAreRefusedInChinese() throws {
        #expect(problem(Self.budget, "-5")?.message.contains("不能是负数") == true)
        let p = try #require(problem(Self.budget, "十二万"))
        #expect(p.message.contains("“十二万”不是金额") && p.message.contains("12.5万"), "\(p.message)")
    }

    @Test func aRequiredFieldLeftEmptyIsNamed() throws {
        let p = try #require(problem(Self.status, "  "))
        #expect(p.message.hasPrefix("请填写办理状态（必填项）"), "\(p.message)")
        #expect(try read(Self.members, "").get() == .null)
    }

    @Test func aNearMissChoiceGetsDidYouMean() throws {
        let p = try #require(problem(Self.category, "土地"))
        #expect(p.suggestion == "土地承包" && p.message.contains("您是不是要选“土地承包”"), "\(p.message)")
        let q = try #require(problem(Self.status, "已化角"))
        #expect(q.suggestion == "已化解", "\(q.message)")
        let far = try #require(problem(Self.status, "完全不同的东西"))
        #expect(far.suggestion == nil && far.message.contains("可选：受理、调解中"), "\(far.message)")
    }

    @Test func fullWidthNumbersDatesAndYesNoAreRead() throws {
        #expect(try read(Self.members, "１２").get() == .integer(12))
        #expect(try read(Self.reported, "２０２６年１１月３日").get() == .text("2026-11-03"))
        #expect(problem(Self.reported, "2026/2/30")?.message.contains("不是日期") == true, "February has no 30th")
        #expect(try read(Self.signed, "是").get() == .integer(1))
        #expect(problem(Self.members, "101")?.message.contains("101 超出范围") == true)
        #expect(problem(Self.members, "十二")?.message.contains("不是整数") == true)
    }

    @Test func textIsKeptExactlyAndItsLengthCountedInCharacters() throws {
        #expect(try read(Self.parties, "　张三，李四　").get() == .text("　张三，李四　"), "text is not narrowed or trimmed")
        let p = try #require(problem(Self.parties, String(repeating: "字", count: 501)))
        #expect(p.message.contains("最多 500 个字，现在有 501 个字"), "\(p.message)")
    }

    @Test func multipleChoicesSplitOnChinesePunctuation() throws {
        #expect(try read(Self.topics, "就业、医疗，教育").get() == .text(#"["就业","医疗","教育"]"#))
        #expect(problem(Self.topics, "就业、看病")?.message.contains("“看病”") == true)
    }

    /// Whatever the form accepts, the replica's own check accepts unchanged (one rule).
    @Test func whatTheFormAcceptsTheReplicaAccepts() throws {
        let seed = UInt64.random(in: 0...UInt64.max)
        var g = SplitMix64(seed: seed)
        for _ in 0..<2000 {
            let fen = Int64(g.next() % 1_000_000_000_000)
            let yuan = "\(fen / 100).\(fen % 100 < 10 ? "0" : "")\(fen % 100)"
            let typed = g.next() % 2 == 0 ? yuan : FormTextWide.wide(yuan)
            let v = try read(Self.budget, typed).get()
            #expect(v == .integer(fen), "seed \(seed): \(typed)")
            #expect(try Self.budget.decode(Self.budget.encode(v)) == v, "seed \(seed)")
        }
    }
}

enum FormTextWide {
    /// ASCII digits and punctuation to their full-width forms.
    static func wide(_ s: String) -> String {
        String(String.UnicodeScalarView(s.unicodeScalars.map { (0x21...0x7E).contains($0.value) ? Unicode.Scalar($0.value + 0xFEE0)! : $0 }))
    }
}

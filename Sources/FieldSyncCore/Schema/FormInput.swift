// MARK: - Form input

/// What a person typed into one field of a form, checked the way the replica checks it, with the
/// problem said in Chinese (what is wrong, what to type instead) for showing at the field.
///
/// Reads people's ways of writing: full-width digits and punctuation (`１２０`, `，`), money in 元
/// (`1,200.50`, `¥300`, `12.5万`), dates as `2026/1/4` or `2026年1月4日`, 是/否. The value it
/// returns has passed ``FieldSpec/decode(_:)``, the replica's own check, so a form cannot accept
/// what the replica would refuse.
///
///     try FieldSpec("budget_fen", "预算金额", .money).readForm("12.5万")   // .integer(12_500_000) 分
public struct FormProblem: Error, Sendable, Equatable {
    /// The sentence shown at the field, in Chinese.
    public var message: String
    /// A near-miss choice the person may have meant.
    public var suggestion: String?

    public init(_ message: String, suggestion: String? = nil) {
        self.message = message
        self.suggestion = suggestion
    }
}

extension FieldSpec {
    /// Reads a form field. Empty text is null (refused when the field is required).
    public func readForm(_ raw: String) throws(FormProblem) -> FieldValue {
        let wide: Bool
        switch type {
        case .text, .longText: wide = false
        default: wide = true
        }
        let text = wide ? FormText.narrow(raw) : raw
        if text.trimmingSpaces.isEmpty {
            if required { throw FormProblem("请填写\(label)（必填项）。\(formHint)") }
            return .null
        }
        let json: JSONValue
        switch type {
        case .money:
            guard let fen = FormText.moneyFen(text) else {
                throw FormProblem("“\(Self.shown(raw))”不是金额。\(formHint)")
            }
            guard fen >= 0 else { throw FormProblem("金额不能是负数。\(formHint)") }
            json = .int(fen)
        case .choice(let options):
            let s = text.trimmingSpaces
            guard options.contains(s) else {
                let near = FormText.nearest(s, in: options)
                throw FormProblem("“\(Self.shown(s))”不是可选的\(label)。\(formHint)" + (near.map { "。您是不是要选“\($0)”？" } ?? ""), suggestion: near)
            }
            json = .string(s)
        case .choices(let options):
            let parts = text.split(whereSeparator: { "、,，;；|/\n".contains($0) }).map { String($0).trimmingSpaces }.filter { !$0.isEmpty }
            for p in parts where !options.contains(p) {
                let near = FormText.nearest(p, in: options)
                throw FormProblem("“\(Self.shown(p))”不是可选的\(label)。\(formHint)" + (near.map { "。您是不是要选“\($0)”？" } ?? ""), suggestion: near)
            }
            json = .array(parts.map { .string($0) })
        default:
            do throws(InputError) { json = try parseHuman(text, unit: .yuan) } catch {
                throw FormProblem("“\(Self.shown(raw))”\(Self.notA(type))。\(formHint)")
            }
        }
        do throws(InputError) { return try decode(json) } catch {
            throw FormProblem(chinese(error, json) + "。" + formHint)
        }
    }

    /// What to type, in Chinese.
    public var formHint: String {
        switch type {
        case .text(let n): return "最多 \(n) 个字"
        case .longText: return "可以写多段文字"
        case .integer(let r): return "请填 \(r.lowerBound) 到 \(r.upperBound) 之间的整数"
        case .money: return "金额以元填写，如 1,200.50、¥300 或 12.5万"
        case .date: return "日期如 2026-11-20、2026/11/20 或 2026年11月20日"
        case .bool: return "填 是 或 否"
        case .choice(let o): return "可选：" + o.joined(separator: "、")
        case .choices(let o): return "可多选：" + o.joined(separator: "、")
        case .regionCode(let l): return "区划代码，" + l.sorted().map { "\($0)" }.joined(separator: "、") + " 位数字"
        case .reference(let k): return "\(k.spec.label)的编号（从列表中选择）"
        case .geo: return "经纬度“纬度,经度”，如 26.5912,104.8307"
        }
    }

    static func notA(_ t: FieldType) -> String {
        switch t {
        case .integer: return "不是整数"
        case .date: return "不是日期"
        case .bool: return "不是“是”或“否”"
        default: return "的格式不对"
        }
    }

    static func shown(_ s: String) -> String { s.unicodeScalars.count > 20 ? String(s.prefix(20)) + "…" : s }

    /// The replica's refusal of `json`, Chinese first, with what to type and the precise English
    /// reason in brackets: how the CLI and imports word a bad value.
    public func explain(_ e: InputError, _ json: JSONValue) -> String {
        let zh = chinese(e, json)
        return zh.contains(e.reason) ? "\(zh)。\(formHint)" : "\(zh)。\(formHint) (\(e.reason))"
    }

    /// The replica's refusal in Chinese (its English reason in brackets).
    func chinese(_ e: InputError, _ json: JSONValue) -> String {
        switch (type, json) {
        case (.text(let n), .string(let s)) where s.unicodeScalars.count > n:
            return "\(label)最多 \(n) 个字，现在有 \(s.unicodeScalars.count) 个字"
        case (.longText, .string(let s)) where s.utf8.count > FieldType.longTextMaxBytes:
            return "\(label)太长：最多 \(FieldType.longTextMaxBytes) 字节，现在有 \(s.utf8.count) 字节"
        case (.integer(let r), .int(let i)) where !r.contains(i):
            return "\(i) 超出范围"
        case (.money, .int(let i)) where i > 1_000_000_000_000_000:
            return "金额大得不合常理"
        case (_, .null): return "请填写\(label)（必填项）"
        case (.choice, .string(let v)), (.choices, .string(let v)):
            let near = { () -> String? in if case .choice(let o) = type { return FormText.nearest(v, in: o) } else { return nil } }()
            return "“\(Self.shown(v))”不是可选的\(label)" + (near.map { "，您是不是要选“\($0)”？" } ?? "")
        case (.date, _): return "不是存在的日期（\(e.reason)）"
        case (.regionCode, _): return "区划代码有误（\(e.reason)）"
        case (.reference, _): return "编号有误（\(e.reason)）"
        case (.geo, _): return "经纬度有误（\(e.reason)）"
        default: return "\(label)填写有误（\(e.reason)）"
        }
    }
}

// MARK: - FormText

public enum FormText {
    /// Full-width digits, letters and ASCII punctuation (U+FF01…U+FF5E) to their ASCII forms,
    /// the ideographic space to a space; everything else as it is.
    public static func narrow(_ s: String) -> String {
        var out = String.UnicodeScalarView()
        for u in s.unicodeScalars {
            switch u.value {
            case 0xFF01...0xFF5E: out.append(Unicode.Scalar(u.value - 0xFEE0)!)
            case 0x3000: out.append(" ")
            default: out.append(u)
            }
        }
        return String(out)
    }

    /// Money typed in 元 → 分, exactly: `1,200.50`, `¥300`, `300元`, `12.5万`, `12.5万元`,
    /// full-width digits. The one reading of 元 for forms, CSV ledgers and the console.
    /// Nil when it is not an amount (or is too large to be one).
    public static func moneyFen(_ raw: String) -> Int64? {
        var s = narrow(raw).trimmingSpaces
        for sign in ["¥", "￥", "人民币"] where s.hasPrefix(sign) { s.removeFirst(sign.count) }
        if s.hasSuffix("元") { s.removeLast() }
        var scaleDigits = 0  // decimals that 万 moves
        if s.hasSuffix("万") { s.removeLast(); scaleDigits = 4 }
        var negative = false
        if s.hasPrefix("-") { negative = true; s.removeFirst() }
        let parts = s.split(separator: ".", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), let whole = FieldSpec.ungrouped(parts[0]) else { return nil }
        let frac = parts.count == 2 ? String(parts[1]) : ""
        guard frac.utf8.allSatisfy({ (0x30...0x39).contains($0) }), frac.count <= 2 + scaleDigits, parts.count == 1 || !frac.isEmpty else { return nil }
        // All digits, then the power of ten: 分 = digits × 10^(2 + scale − decimals).
        guard whole.count + frac.count <= 18, let digits = Int64(whole + frac) else { return nil }
        var fen = digits
        for _ in 0..<(2 + scaleDigits - frac.count) {
            let (m, o) = fen.multipliedReportingOverflow(by: 10)
            guard !o else { return nil }
            fen = m
        }
        // Under 10^13 元: no budget in a village comes near, and it leaves room to add up.
        guard fen < 1_000_000_000_000_000 else { return nil }
        return negative ? -fen : fen
    }

    /// The option nearest to what was typed, when it is near enough to be a slip (one option
    /// containing the other, or an edit distance of at most a third of the length).
    public static func nearest(_ typed: String, in options: [String]) -> String? {
        let t = Array(typed)
        guard !t.isEmpty else { return nil }
        var best: (String, Int)?
        for o in options {
            let a = Array(o)
            let contains = o.contains(typed) || typed.contains(o)
            let d = contains ? abs(a.count - t.count) : distance(t, a)
            // One written inside the other ("入户" for "入户走访") is a slip however long the rest.
            guard contains || d <= max(1, max(a.count, t.count) / 3) else { continue }
            if best == nil || d < best!.1 { best = (o, d) }
        }
        return best?.0
    }

    static func distance(_ a: [Character], _ b: [Character]) -> Int {
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var prev = Array(0...b.count)
        var cur = prev
        for i in 1...a.count {
            cur[0] = i
            for j in 1...b.count {
                cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            swap(&prev, &cur)
        }
        return prev[b.count]
    }
}

// MARK: - Money in a person's JSON

extension FieldSpec {
    /// A value a person wrote in JSON (`fieldsync record add --json`, a JSON Lines import), in the
    /// same terms as the forms and CSV ledgers: money as a number is integer 分 (the key says so:
    /// `budget_fen`); money as text must name its unit — `"12.5万"`, `"1,200.50元"`, `"¥300"`
    /// (元) or `"1200分"` — so `125000` can never mean 元 in one place and 分 in another.
    public func personJSON(_ json: JSONValue) throws(InputError) -> JSONValue {
        // Dates, yes/no and several choices as people write them, as in the forms and CSV.
        if case .string(let raw) = json {
            switch type {
            case .date: return FieldSpec.normalizeDate(FormText.narrow(raw).trimmingSpaces).map { .string($0) } ?? json
            case .bool, .choices: return (try? parseHuman(FormText.narrow(raw))) ?? json
            default: break
            }
        }
        guard type == .money, case .string(let raw) = json else { return json }
        let s = FormText.narrow(raw).trimmingSpaces
        if s.hasSuffix("分"), let fen = FieldSpec.wholeNumber(String(s.dropLast()).trimmingSpaces) { return .int(fen) }
        if s.contains("元") || s.contains("万") || s.hasPrefix("¥") || s.hasPrefix("￥") {
            guard let fen = FormText.moneyFen(s) else {
                throw InputError("", "“\(FieldSpec.shown(raw))”不是金额；如 \"12.5万\"、\"1,200.50元\" (not an amount in 元)")
            }
            return .int(fen)
        }
        throw InputError("", "金额要写明单位：写成 \"\(s)元\" 或 \"\(s)分\"，或写整数分 (money as text names its unit: \"\(s)元\" or \"\(s)分\", or give integer 分)")
    }
}

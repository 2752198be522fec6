import FieldSyncCore
import FieldSyncPresentation
import FieldSyncReplica

// MARK: - ConflictHTML

/// How a conflict looks on a page and how its settling form reads, for the hub's console and the
/// laptop's app alike (the text views for the CLIs are ``ConflictViews``): one implementation.
public enum ConflictHTML {
    public static func typeLabel(_ c: ConflictInfo) -> String {
        c.type == .deleteVersusEdit ? "删除与修改" : c.candidates.filter(\.isResolution).count > 1 ? "处理决定冲突" : "同时修改"
    }

    /// How a candidate's value reads: its value, or for a delete versus edits, which it is.
    public static func candidateText(_ c: ConflictInfo, _ x: ConflictInfo.Candidate) -> String {
        let v = Display.value(x.value, c.kind.spec.field(x.field))
        guard c.type == .deleteVersusEdit else { return v }
        return x.field == RowState.deletedField ? "删除记录" : "修改 \(Display.fieldLabel(c.kind, x.field)) = \(v)"
    }

    public static func clip(_ s: String, _ n: Int) -> String { s.unicodeScalars.count > n ? String(s.prefix(n)) + "…" : s }

    public static func time(_ ms: Int64?) -> String { ms.map { Display.time($0) } ?? "—" }

    /// `ROW/FIELD` from an address: a full record id and a field name, nothing else.
    public static func key(row: String, field: String, path: String) throws -> String {
        guard RecordKind.allCases.contains(where: { RecordID.problem(row, kind: $0) == nil }),
              (1...64).contains(field.utf8.count),
              field.utf8.allSatisfy({ (0x61...0x7A).contains($0) || (0x30...0x39).contains($0) || $0 == UInt8(ascii: "_") })
        else {
            throw WebPageError(404, "找不到这个冲突", "a conflict is \(path)/RECORD-ID/FIELD, got \"\(row.prefix(60))/\(field.prefix(40))\"")
        }
        return "\(row)/\(field)"
    }

    /// One table row per open conflict (for a list whose head is ``listHead``).
    public static func listRow(_ c: ConflictInfo, link: String) -> HTML {
        let winner = c.candidates.first(where: \.wins)
        let others = c.candidates.filter { !$0.wins }
        func show(_ x: ConflictInfo.Candidate) -> HTML { "\(clip(candidateText(c, x), 24)) <span class=\"muted\">(\(x.author) @ \(x.site))</span>" }
        return """
            <tr><td><a href="\(link)">\(RecordID.short(c.row))/\(c.field)</a></td><td>\(typeLabel(c))</td><td>\(c.kind.spec.label)</td>
            <td>\(c.village ?? "—")</td><td>\(Display.fieldLabel(c.kind, c.field))</td><td class="winner">\(winner.map(show))</td>
            <td>\(HTML.join(others.map(show), separator: "<br>"))</td><td>\(time(c.since))</td></tr>
            """
    }

    public static let listHead: HTML = "<thead><tr><th>冲突</th><th>类型</th><th>记录</th><th>村(社区)</th><th>字段</th><th>胜出值</th><th>其他值</th><th>发生于</th></tr></thead>"

    /// The candidates side by side, the common base, why the winner wins, and what each
    /// candidate changed in a long text, sentence by sentence.
    public static func detail(_ detail: ConflictDetail) -> HTML {
        let c = detail.info
        let spec = c.kind.spec.field(c.field)
        let head = (["" as HTML] + c.candidates.indices.map { i -> HTML in
            "[\(i + 1)]\(c.candidates[i].wins ? HTML(trusted: " <span class=\"badge warn\">目前胜出</span>") : .empty)"
        }).map { "<th>\($0)</th>" as HTML }
        func line(_ label: String, long: Bool = false, _ cell: (ConflictInfo.Candidate) -> String) -> HTML {
            let cells = c.candidates.map { x -> HTML in "<td class=\"\(long ? "long " : "")\(x.wins ? "winner" : "")\">\(cell(x))</td>" }
            return "<tr><th>\(label)</th>\(cells)</tr>"
        }
        var table: [HTML] = [
            line("值", long: true) { candidateText(c, $0) },
            line("作者") { $0.author },
            line("设备") { $0.site },
            line("时间") { time($0.hlc.millis) },
            line("同步中心收到") { time($0.received) },
            line("变更") { String($0.change.site.hex.prefix(8)) + "…:\($0.change.counter)" },
        ]
        if c.candidates.contains(where: { $0.note != nil }) { table.append(line("备注", long: true) { $0.note ?? "—" }) }
        var baseHTML: HTML
        if let base = detail.base, !base.isEmpty {
            baseHTML = HTML.join(base.map { b in
                "<p id=\"base\">共同起点（双方修改前的值）：<b>\(clip(Display.value(b.value, spec), 200))</b> — \(b.author) @ \(b.site)，\(time(b.hlc.millis))</p>"
            })
        } else if c.type == .concurrentValues {
            baseHTML = "<p id=\"base\" class=\"muted\">共同起点：历史中没有（例如设备以快照加入）。</p>"
        } else { baseHTML = .empty }
        var diffs: [HTML] = []
        if let spec, spec.type == .longText || spec.type == .text(maxLength: 500) {
            let from = detail.base?.first?.value.stringValue
            for (i, x) in c.candidates.enumerated() {
                guard let text = x.value.stringValue else { continue }
                let against = from ?? (i == 0 ? nil : c.candidates[0].value.stringValue)
                guard let a = against, !a.utf8.elementsEqual(text.utf8) else { continue }
                diffs.append("<h3>[\(i + 1)] 相对\(from != nil ? "共同起点" : "[1]")的改动</h3>\(diffHTML(TextDiff.diff(a, text)))")
            }
        }
        return """
            <table id="candidates"><thead><tr>\(head)</tr></thead><tbody>\(table)</tbody></table>
            \(baseHTML)
            <p id="why" class="muted">为什么胜出：\(detail.why)</p>
            \(diffs.isEmpty ? HTML.empty : "<h2>长文本的改动</h2><div class=\"diffs\">\(diffs)</div>")
            """
    }

    /// The form that settles a conflict, posted to `action` with the session's CSRF secret.
    public static func resolveForm(_ c: ConflictInfo, action: String, csrf: String, typed: String) -> HTML {
        let spec = c.kind.spec.field(c.field)
        var choices: [HTML] = []
        var seen = Set<ChangeID>()
        for (i, x) in c.candidates.enumerated() where seen.insert(x.change).inserted {
            let what = c.type == .deleteVersusEdit
                ? (x.field == RowState.deletedField ? "确认删除（删除时未看到这些修改）" : "恢复记录并保留修改")
                : "采用 [\(i + 1)] 的值：\(clip(candidateText(c, x), 40))"
            choices.append("<label class=\"choice\"><input type=\"radio\" name=\"how\" value=\"take:\(x.change.description)\" id=\"take-\(i + 1)\"\(i == 0 ? HTML(trusted: " checked") : .empty)> \(what)（\(x.author)）</label>")
        }
        choices.append("<label class=\"choice\"><input type=\"radio\" name=\"how\" value=\"newest\" id=\"take-newest\"> 采用时间最晚的值</label>")
        if c.type == .concurrentValues, let spec {
            let hint = spec.formHint + (spec.required ? "" : "；留空表示清空该字段")
            choices.append("""
                <label class="choice"><input type="radio" name="how" value="value" id="take-value"> 填写新值（例如把两份记录合并）：</label>
                <textarea name="value" id="new-value" placeholder="\(hint)">\(typed)</textarea>
                <p class="muted">\(spec.label)：\(hint)</p>
                """)
        }
        return """
            <form method="post" action="\(action)">
              <input type="hidden" name="csrf" value="\(csrf)">
              <fieldset class="resolve">
                <legend>选择处理方式</legend>
                \(choices)
                <label>处理说明（可选，会记入历史）<input type="text" name="note" id="note" maxlength="500"></label>
                <p><button type="submit" class="primary" id="resolve">确认处理</button></p>
              </fieldset>
            </form>
            """
    }

    /// What the settling form asks for: the resolution and the note, or a message in Chinese to
    /// show with the form again. `spec` is the field when a new value may be typed.
    public static func resolution(_ form: WebForm, spec: FieldSpec?) throws -> (Resolution, note: String?) {
        let note = form["note"].flatMap { $0.trimmingCharacters(in: .whitespaces).isEmpty ? nil : $0 }
        if let n = note, n.unicodeScalars.count > 500 || n.utf8.contains(0) {
            throw WebPageError(422, "处理说明太长", "处理说明最多 500 个字（不能含 NUL）(the note is at most 500 characters)")
        }
        switch form["how"] ?? "" {
        case "newest": return (.newest, note)
        case "oldest": return (.oldest, note)
        case "value":
            guard let spec else { throw WebPageError(422, "请选择一个候选值", "这个冲突不能填写新值，请选择一个候选值") }
            do throws(InputError) { return (.value(try spec.parseHuman(form["value"] ?? "", unit: .yuan)), note) } catch {
                throw WebPageError(422, "新值有误", "新值有误：\(spec.label) \(error.reason)")
            }
        case let t where t.hasPrefix("take:"):
            guard let dot = ChangeID(String(t.dropFirst(5))) else { throw WebPageError(422, "没有这个候选值", "没有这个候选值：\(t.prefix(60))") }
            return (.take(dot), note)
        default:
            throw WebPageError(422, "请选择处理方式", "请选择处理方式")
        }
    }

    /// A sentence diff as markup: removed and added sentences marked, long unchanged runs folded.
    public static func diffHTML(_ lines: [TextDiff.Line]) -> HTML {
        var out: [HTML] = []
        var i = 0
        while i < lines.count {
            switch lines[i] {
            case .removed(let t): out.append("<div class=\"del\">\(t)</div>"); i += 1
            case .added(let t): out.append("<div class=\"add\">\(t)</div>"); i += 1
            case .same:
                var j = i
                var run: [String] = []
                while j < lines.count, case .same(let t) = lines[j] { run.append(t); j += 1 }
                if run.count > 3 {
                    if i > 0 { out.append("<div class=\"same\">\(run[0])</div>") }
                    out.append("<div class=\"fold\">……（\(run.count - (i > 0 ? 1 : 0) - (j < lines.count ? 1 : 0)) 句未改动）……</div>")
                    if j < lines.count { out.append("<div class=\"same\">\(run[run.count - 1])</div>") }
                } else {
                    out += run.map { "<div class=\"same\">\($0)</div>" as HTML }
                }
                i = j
            }
        }
        return "<div class=\"diff\">\(out)</div>"
    }
}

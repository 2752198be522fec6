import FieldSyncCore
import FieldSyncPresentation
import FieldSyncReplica
import Foundation
import Hummingbird

// MARK: - Conflict review

extension ConsolePages {
    static func typeLabel(_ c: ConflictInfo) -> String {
        c.type == .deleteVersusEdit ? "删除与修改" : c.candidates.filter(\.isResolution).count > 1 ? "处理决定冲突" : "同时修改"
    }

    /// How a candidate's value reads: its value, or for a delete versus edits, which it is.
    static func candidateText(_ c: ConflictInfo, _ x: ConflictInfo.Candidate) -> String {
        let v = Display.value(x.value, c.kind.spec.field(x.field))
        guard c.type == .deleteVersusEdit else { return v }
        return x.field == RowState.deletedField ? "删除记录" : "修改 \(Display.fieldLabel(c.kind, x.field)) = \(v)"
    }

    static func clip(_ s: String, _ n: Int) -> String { s.unicodeScalars.count > n ? String(s.prefix(n)) + "…" : s }

    /// 冲突: open conflicts in the scope, filtered by kind, place, field and author.
    func conflicts(_ request: Request, _ s: Session) async throws -> HTML {
        let q = request.uri.queryParameters
        var f = ConflictFilter()
        func param(_ k: String) -> String? { q[Substring(k)].map(String.init).flatMap { $0.isEmpty ? nil : $0 } }
        if let k = param("kind") {
            guard let kind = RecordKind(rawValue: k) else { throw ConsolePageError(400, "没有这种记录", "unknown kind \"\(k.prefix(40))\"") }
            f.kind = kind
        }
        if let v = param("village") {
            guard HubHTTP.isDigits(v, max: 12) else { throw ConsolePageError(400, "区划代码有误", "the place is a division-code prefix of 1–12 digits, got \"\(v.prefix(40))\"") }
            f.villagePrefix = v
        }
        f.author = param("by")
        let list = try await store.conflicts(for: s.supervisor, f)
        let summary = try await store.conflictSummary(for: s.supervisor, ConflictFilter())
        let rows = list.map { c -> HTML in
            let winner = c.candidates.first(where: \.wins)
            let others = c.candidates.filter { !$0.wins }
            func show(_ x: ConflictInfo.Candidate) -> HTML { "\(Self.clip(Self.candidateText(c, x), 24)) <span class=\"muted\">(\(x.author) @ \(x.site))</span>" }
            let link = "/console/conflicts/\(ConsoleURL.encode(c.row))/\(ConsoleURL.encode(c.field))"
            return """
                <tr><td><a href="\(link)">\(RecordID.short(c.row))/\(c.field)</a></td><td>\(Self.typeLabel(c))</td><td>\(c.kind.spec.label)</td>
                <td>\(c.village ?? "—")</td><td>\(Display.fieldLabel(c.kind, c.field))</td><td class="winner">\(winner.map(show))</td>
                <td>\(HTML.join(others.map(show), separator: "<br>"))</td><td>\(ConsoleLayout.time(c.since))</td></tr>
                """
        }
        let kinds = [RecordKind.visit, .dispute, .project, .household, .cadre, .region].map { k -> HTML in
            "<option value=\"\(k.rawValue)\"\(k == f.kind ? HTML(trusted: " selected") : .empty)>\(k.spec.label)</option>"
        }
        let byKind = summary.byKind.map { x -> HTML in "<td>\(x.kind.spec.label) <b>\(x.count)</b></td>" }
        let body: HTML = """
            <h1>冲突审核</h1>
            <p id="conflict-total">本范围内未解决冲突共 <b>\(summary.total)</b> 个。胜出值在每台设备上相同（时间较晚者胜出，时间相同则站点编号较大者胜出）；请核实后处理。</p>
            \(summary.total > 0 ? ("<table class=\"compact\"><tr>\(byKind)</tr></table>" as HTML) : .empty)
            <form method="get" action="/console/conflicts" class="filters">
              <label>种类 <select name="kind"><option value="">全部</option>\(kinds)</select></label>
              <label>区划代码前缀 <input type="text" name="village" value="\(f.villagePrefix ?? "")" maxlength="12" inputmode="numeric"></label>
              <label>作者 <input type="text" name="by" value="\(f.author ?? "")"></label>
              <button type="submit" class="primary">筛选</button>
            </form>
            \(list.isEmpty ? ConsoleLayout.notice("ok", "没有符合条件的未解决冲突。", id: "no-conflicts") : .empty)
            <table id="conflicts">
              <thead><tr><th>冲突</th><th>类型</th><th>记录</th><th>村(社区)</th><th>字段</th><th>胜出值</th><th>其他值</th><th>发生于</th></tr></thead>
              <tbody>\(rows)</tbody>
            </table>
            """
        return ConsoleLayout.page("冲突", .conflicts, s, body)
    }

    /// `ROW/FIELD` from the address: a full record id and a field name, nothing else.
    static func conflictKey(row: String, field: String) throws -> String {
        guard RecordKind.allCases.contains(where: { RecordID.problem(row, kind: $0) == nil }),
              (1...64).contains(field.utf8.count),
              field.utf8.allSatisfy({ (0x61...0x7A).contains($0) || (0x30...0x39).contains($0) || $0 == UInt8(ascii: "_") })
        else {
            throw ConsolePageError(404, "找不到这个冲突", "a conflict is /console/conflicts/RECORD-ID/FIELD, got \"\(row.prefix(60))/\(field.prefix(40))\"")
        }
        return "\(row)/\(field)"
    }

    /// One conflict side by side, with the base value, why the winner wins, the difference of long
    /// texts, and the form to settle it. When the conflict is no longer open, says so and shows
    /// how it was settled.
    func conflict(row: String, field: String, _ s: Session, error: String? = nil, typed: String = "") async throws -> HTML {
        let key = try Self.conflictKey(row: row, field: field)
        let detail: ConflictDetail
        do { detail = try await store.conflictDetail(for: s.supervisor, key) } catch ReplicaError.notFound {
            return try await settled(row: row, field: field, s)
        }
        let c = detail.info
        let kind = c.kind
        let spec = kind.spec.field(c.field)
        let head = (["" as HTML] + c.candidates.indices.map { i -> HTML in
            "[\(i + 1)]\(c.candidates[i].wins ? HTML(trusted: " <span class=\"badge warn\">目前胜出</span>") : .empty)"
        }).map { "<th>\($0)</th>" as HTML }
        func line(_ label: String, long: Bool = false, _ cell: (ConflictInfo.Candidate) -> String) -> HTML {
            let cells = c.candidates.map { x -> HTML in "<td class=\"\(long ? "long " : "")\(x.wins ? "winner" : "")\">\(cell(x))</td>" }
            return "<tr><th>\(label)</th>\(cells)</tr>"
        }
        var table: [HTML] = [
            line("值", long: true) { Self.candidateText(c, $0) },
            line("作者") { $0.author },
            line("设备") { $0.site },
            line("时间") { ConsoleLayout.time($0.hlc.millis) },
            line("同步中心收到") { ConsoleLayout.time($0.received) },
            line("变更") { String($0.change.site.hex.prefix(8)) + "…:\($0.change.counter)" },
        ]
        if c.candidates.contains(where: { $0.note != nil }) { table.append(line("备注", long: true) { $0.note ?? "—" }) }
        var baseHTML: HTML
        if let base = detail.base, !base.isEmpty {
            baseHTML = HTML.join(base.map { b in
                "<p id=\"base\">共同起点（双方修改前的值）：<b>\(Self.clip(Display.value(b.value, spec), 200))</b> — \(b.author) @ \(b.site)，\(ConsoleLayout.time(b.hlc.millis))</p>"
            })
        } else if c.type == .concurrentValues {
            baseHTML = "<p id=\"base\" class=\"muted\">共同起点：同步中心的历史中没有（例如设备以快照加入）。</p>"
        } else { baseHTML = .empty }
        // Long text: what each candidate changed, sentence by sentence.
        var diffs: [HTML] = []
        if let spec, spec.type == .longText || spec.type == .text(maxLength: 500) {
            let from = detail.base?.first?.value.stringValue
            for (i, x) in c.candidates.enumerated() {
                guard let text = x.value.stringValue else { continue }
                let against = from ?? (i == 0 ? nil : c.candidates[0].value.stringValue)
                guard let a = against, !a.utf8.elementsEqual(text.utf8) else { continue }
                diffs.append("<h3>[\(i + 1)] 相对\(from != nil ? "共同起点" : "[1]")的改动</h3>\(Self.diffHTML(TextDiff.diff(a, text)))")
            }
        }
        let body: HTML = """
            <h1>冲突 · \(kind.spec.label) <a href="/console/records/\(ConsoleURL.encode(c.row))">\(RecordID.short(c.row))</a> · \(Display.fieldLabel(kind, c.field))</h1>
            <p>\(Self.typeLabel(c)) · 村(社区) \(c.village ?? "—") · 发生于 \(ConsoleLayout.time(c.since))（已 \(max(0, store.now() - c.since) / 86_400_000) 天）\(detail.record.deleted ? HTML(trusted: " · <span class=\"badge off\">记录目前为已删除状态</span>") : .empty)</p>
            \(error.map { ConsoleLayout.notice("error", "\($0)", id: "resolve-error") })
            <table id="candidates"><thead><tr>\(head)</tr></thead><tbody>\(table)</tbody></table>
            \(baseHTML)
            <p id="why" class="muted">为什么胜出：\(detail.why)</p>
            \(diffs.isEmpty ? HTML.empty : "<h2>长文本的改动</h2><div class=\"diffs\">\(diffs)</div>")
            <h2>处理</h2>
            \(resolveForm(c, spec: spec, s, typed: typed))
            """
        return ConsoleLayout.page("冲突 \(RecordID.short(c.row))/\(c.field)", .conflicts, s, body)
    }

    func resolveForm(_ c: ConflictInfo, spec: FieldSpec?, _ s: Session, typed: String) -> HTML {
        var choices: [HTML] = []
        var seen = Set<ChangeID>()
        for (i, x) in c.candidates.enumerated() where seen.insert(x.change).inserted {
            let what = c.type == .deleteVersusEdit
                ? (x.field == RowState.deletedField ? "确认删除（删除时未看到这些修改）" : "恢复记录并保留修改")
                : "采用 [\(i + 1)] 的值：\(Self.clip(Self.candidateText(c, x), 40))"
            choices.append("<label class=\"choice\"><input type=\"radio\" name=\"how\" value=\"take:\(x.change.description)\" id=\"take-\(i + 1)\"\(i == 0 ? HTML(trusted: " checked") : .empty)> \(what)（\(x.author)）</label>")
        }
        choices.append("<label class=\"choice\"><input type=\"radio\" name=\"how\" value=\"newest\" id=\"take-newest\"> 采用时间最晚的值</label>")
        if c.type == .concurrentValues, let spec {
            let hint: String
            switch spec.type {
            case .money: hint = "金额以元填写，如 1,234.50"
            case .bool: hint = "填 是 或 否"
            case .date: hint = "日期如 2026-11-20 或 2026年11月20日"
            case .choice(let o): hint = "取值之一：" + o.joined(separator: "、")
            case .choices(let o): hint = "可多选，用顿号分隔：" + o.joined(separator: "、")
            default: hint = "留空表示清空该字段"
            }
            choices.append("""
                <label class="choice"><input type="radio" name="how" value="value" id="take-value"> 填写新值（例如把两份记录合并）：</label>
                <textarea name="value" id="new-value" placeholder="\(hint)">\(typed)</textarea>
                <p class="muted">\(spec.label)：\(hint)</p>
                """)
        }
        return """
            <form method="post" action="/console/conflicts/\(ConsoleURL.encode(c.row))/\(ConsoleURL.encode(c.field))/resolve">
              <input type="hidden" name="csrf" value="\(s.csrf)">
              <fieldset class="resolve">
                <legend>选择处理方式</legend>
                \(choices)
                <label>处理说明（可选，会记入历史）<input type="text" name="note" id="note" maxlength="500"></label>
                <p><button type="submit" class="primary" id="resolve">确认处理</button></p>
              </fieldset>
            </form>
            """
    }

    /// A sentence diff as markup: removed and added sentences marked, long unchanged runs folded.
    static func diffHTML(_ lines: [TextDiff.Line]) -> HTML {
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

    /// The page for a conflict that is no longer open: the field's value now and the change that settled it.
    func settled(row: String, field: String, _ s: Session) async throws -> HTML {
        let (rec, history) = try await store.recordHistory(for: s.supervisor, id: row)
        let spec = rec.kind.spec.field(field)
        guard spec != nil || field == RowState.deletedField || field == RowState.recordConflictField else {
            throw ConsolePageError(404, "找不到这个冲突", "\(rec.kind.spec.label) has no field \(field.prefix(40))")
        }
        let resolution = history.last { $0.note?.hasPrefix("解决冲突") == true && ($0.field == field || field == RowState.recordConflictField) }
        let now = spec.map { Display.value(rec[field], $0) } ?? (rec.deleted ? "已删除" : "正常")
        let how: HTML = resolution.map { r in
            "<p id=\"resolution\">由 <b>\(r.author)</b> 于 \(ConsoleLayout.time(r.hlc.millis)) 处理（\(r.site)）：\(r.note ?? "")</p>"
        } ?? "<p class=\"muted\">历史中没有找到处理记录（冲突可能在设备上解决，或并不存在）。</p>"
        let body: HTML = """
            <h1>冲突 · \(rec.kind.spec.label) \(RecordID.short(rec.id)) · \(Display.fieldLabel(rec.kind, field))</h1>
            \(ConsoleLayout.notice("ok", "此字段目前没有未解决的冲突\(resolution != nil ? "：冲突已解决" : "")。", id: "conflict-settled"))
            <p>当前值：<b id="current-value">\(now)</b></p>
            \(how)
            <p><a href="/console/records/\(ConsoleURL.encode(rec.id))">查看这条记录和完整历史</a> · <a href="/console/conflicts">返回冲突列表</a></p>
            """
        return ConsoleLayout.page("冲突已解决", .conflicts, s, body)
    }

    /// Settles a conflict as the form says, then shows the conflict's page (which now says it is settled).
    func resolve(row: String, field: String, _ s: Session, _ form: ConsoleForm) async throws -> Response {
        let key = try Self.conflictKey(row: row, field: field)
        let how: Resolution
        let typed = form["value"] ?? ""
        let note = form["note"].flatMap { $0.trimmingCharacters(in: .whitespaces).isEmpty ? nil : $0 }
        if let n = note, n.unicodeScalars.count > 500 || n.utf8.contains(0) {
            throw ConsolePageError(422, "处理说明太长", "the note is at most 500 characters (no NUL)")
        }
        func again(_ message: String) async throws -> Response {
            HubConsole.htmlResponse(try await conflict(row: row, field: field, s, error: message, typed: typed), status: .unprocessableContent)
        }
        switch form["how"] ?? "" {
        case "newest": how = .newest
        case "oldest": how = .oldest
        case "value":
            guard let spec = try await fieldSpec(key, s) else { return try await again("这个冲突不能填写新值，请选择一个候选值") }
            do throws(InputError) { how = .value(try spec.parseHuman(typed, unit: .yuan)) } catch {
                return try await again("新值有误：\(spec.label) \(error.reason)")
            }
        case let t where t.hasPrefix("take:"):
            guard let dot = ChangeID(String(t.dropFirst(5))) else { return try await again("没有这个候选值：\(t.prefix(60))") }
            how = .take(dot)
        default:
            return try await again("请选择处理方式")
        }
        do {
            _ = try await store.resolve(for: s.supervisor, key, how, note: note)
        } catch ReplicaError.invalidInput(let e) {
            return try await again("无法这样处理：\(e.description)")
        }
        return HubConsole.redirect("/console/conflicts/\(ConsoleURL.encode(row))/\(ConsoleURL.encode(field))")
    }

    func fieldSpec(_ key: String, _ s: Session) async throws -> FieldSpec? {
        let d = try await store.conflictDetail(for: s.supervisor, key)
        guard d.info.type == .concurrentValues else { return nil }
        return d.info.kind.spec.field(d.info.field)
    }
}

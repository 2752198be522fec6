import FieldSyncCore
import FieldSyncPresentation
import FieldSyncReplica
import FieldSyncTransport
import FieldSyncWeb
import Foundation
import HTTPTypes
import Hummingbird

// MARK: - Forms generated from the schema

/// A form's state: the text of each field as typed, and the problems found at each field.
struct FormState {
    var texts: [String: String] = [:]
    var problems: [String: FormProblem] = [:]
    /// A problem of the whole record (not one field's), from the replica's own check.
    var general: String?
}

extension AppPages {
    /// The fields a form shows: every field, but a record's division code only when it is new
    /// (it is part of the id and never changes).
    static func formFields(_ kind: RecordKind, editing: Bool) -> [FieldSpec] {
        kind.spec.fields.filter { !(editing && $0.name == kind.spec.regionField) }
    }

    /// A stored value as a person would type it back (money in 元, 是/否, choices with 、).
    static func text(_ v: FieldValue, _ f: FieldSpec) -> String {
        switch (f.type, v) {
        case (_, .null): return ""
        case (.money, .integer(let fen)):
            return Display.yuan(fen).replacingOccurrences(of: " 元", with: "").replacingOccurrences(of: ",", with: "")
        default: return Display.value(v, f)
        }
    }

    /// What a new record starts with: the laptop's village, its author as the cadre, today.
    func defaults(_ kind: RecordKind, _ r: Replica) throws -> [String: String] {
        var d: [String: String] = [:]
        if let rf = kind.spec.regionField, let scope = try r.syncState()?.scope, scope.utf8.count == 12 || kind == .cadre {
            d[rf] = scope
        }
        let author = try r.status().author
        for name in ["cadre_name", "mediator_name"] where kind.spec.field(name) != nil { d[name] = author }
        for name in ["visit_date", "reported_on"] where kind.spec.field(name) != nil { d[name] = Display.today(state.now) }
        return d
    }

    /// The villages a new record may belong to: the region records of level 村 this laptop holds
    /// (within its scope), and the scope itself when it is a village.
    func villages(_ r: Replica) throws -> [(code: String, name: String)] {
        let scope = try r.syncState()?.scope ?? ""
        var q = RecordQuery(kind: .region, villagePrefix: scope.isEmpty ? nil : scope)
        q.limit = 1000
        q.equals = [("level", .text("村"))]
        var out = try r.browse(q).records.map { ($0.id, Display.value($0["name"], RecordKind.region.spec.field("name"))) }
        if scope.utf8.count == 12, !out.contains(where: { $0.0 == scope }) { out.insert((scope, scope), at: 0) }
        return out
    }

    /// Records of `kind` to pick from (households, cadres), in the laptop's scope.
    func choices(of kind: RecordKind, _ r: Replica) throws -> [(id: String, label: String)] {
        var q = RecordQuery(kind: kind, villagePrefix: try r.syncState()?.scope)
        q.limit = 500
        let nameField = kind == .household ? "head_name" : "name"
        return try r.browse(q).records.map { rec in
            (rec.id, Display.value(rec[nameField], kind.spec.field(nameField)) + "（\(RecordID.short(rec.id))）")
        }
    }

    func formHTML(_ kind: RecordKind, _ r: Replica, _ s: AppSession, key: String, editing: Record?, _ fs: FormState) throws -> HTML {
        let fields = Self.formFields(kind, editing: editing != nil)
        var rows: [HTML] = []
        let firstError = fields.first { fs.problems[$0.name] != nil }?.name
        for f in fields {
            let id = "f-\(f.name)"
            let name = "f.\(f.name)"
            let value = fs.texts[f.name] ?? ""
            let focus: HTML = firstError == f.name ? " autofocus" : .empty
            let input: HTML
            switch f.type {
            case .longText:
                input = "<textarea id=\"\(id)\" name=\"\(name)\"\(focus)>\(value)</textarea>"
            case .text(let n) where n >= 500:
                input = "<textarea id=\"\(id)\" name=\"\(name)\" maxlength=\"\(n)\"\(focus)>\(value)</textarea>"
            case .text(let n):
                input = "<input type=\"text\" id=\"\(id)\" name=\"\(name)\" value=\"\(value)\" maxlength=\"\(n)\"\(focus)>"
            case .integer:
                input = "<input type=\"text\" id=\"\(id)\" name=\"\(name)\" value=\"\(value)\" inputmode=\"numeric\"\(focus)>"
            case .money:
                input = "<input type=\"text\" id=\"\(id)\" name=\"\(name)\" value=\"\(value)\" inputmode=\"decimal\" placeholder=\"如 1,200.50 或 12.5万\"\(focus)><span class=\"unit\">元</span>"
            case .date:
                // The picker wants YYYY-MM-DD; anything else typed earlier shows as the hint says.
                let v = FieldSpec.normalizeDate(FormText.narrow(value)) ?? ""
                input = "<input type=\"date\" id=\"\(id)\" name=\"\(name)\" value=\"\(v)\" min=\"1900-01-01\" max=\"2200-12-31\"\(focus)>"
            case .bool:
                let opts = ["", "是", "否"].map { o -> HTML in "<option value=\"\(o)\"\(o == value ? HTML(trusted: " selected") : .empty)>\(o.isEmpty ? "—" : o)</option>" }
                input = "<select id=\"\(id)\" name=\"\(name)\"\(focus)>\(opts)</select>"
            case .choice(let options):
                var opts: [HTML] = ["<option value=\"\"\(value.isEmpty ? HTML(trusted: " selected") : .empty)>请选择</option>"]
                if !value.isEmpty, !options.contains(value) { opts.append("<option selected>\(value)</option>") }
                opts += options.map { o -> HTML in "<option\(o == value ? HTML(trusted: " selected") : .empty)>\(o)</option>" }
                input = "<select id=\"\(id)\" name=\"\(name)\"\(focus)>\(opts)</select>"
            case .choices(let options):
                let picked = Set(value.split(whereSeparator: { "、,，;；|/".contains($0) }).map { String($0).trimmingCharacters(in: .whitespaces) })
                input = "<div class=\"checks\" id=\"\(id)\">" + HTML.join(options.enumerated().map { i, o in
                    "<label><input type=\"checkbox\" name=\"\(name)\" value=\"\(o)\" id=\"\(id)-\(i)\"\(picked.contains(o) ? HTML(trusted: " checked") : .empty)> \(o)</label>"
                }) + "</div>"
            case .regionCode where f.name == kind.spec.regionField && kind != .cadre:
                let list = try villages(r)
                if list.isEmpty {
                    input = "<input type=\"text\" id=\"\(id)\" name=\"\(name)\" value=\"\(value)\" inputmode=\"numeric\" maxlength=\"12\"\(focus)>"
                } else {
                    var opts: [HTML] = list.count == 1 ? [] : ["<option value=\"\">请选择</option>"]
                    if !value.isEmpty, !list.contains(where: { $0.code == value }) { opts.append("<option selected>\(value)</option>") }
                    opts += list.map { v -> HTML in "<option value=\"\(v.code)\"\(v.code == value ? HTML(trusted: " selected") : .empty)>\(v.name)（\(v.code)）</option>" }
                    input = "<select id=\"\(id)\" name=\"\(name)\"\(focus)>\(opts)</select>"
                }
            case .reference(let target):
                let list = try choices(of: target, r)
                var opts: [HTML] = ["<option value=\"\">—</option>"]
                if !value.isEmpty, !list.contains(where: { $0.id == value }) { opts.append("<option selected>\(value)</option>") }
                opts += list.map { v -> HTML in "<option value=\"\(v.id)\"\(v.id == value ? HTML(trusted: " selected") : .empty)>\(v.label)</option>" }
                input = "<select id=\"\(id)\" name=\"\(name)\"\(focus)>\(opts)</select>"
            default:
                input = "<input type=\"text\" id=\"\(id)\" name=\"\(name)\" value=\"\(value)\"\(focus)>"
            }
            let problem = fs.problems[f.name]
            let hint = f.help.isEmpty ? f.formHint : f.formHint + "。" + f.help
            rows.append("""
                <div class="field\(problem != nil ? HTML(trusted: " has-error") : .empty)" id="field-\(f.name)">
                  <label for="\(id)">\(f.label)\(f.required ? HTML(trusted: "<span class=\"req\" title=\"必填\">*</span>") : .empty)</label>
                  <div>\(input)</div>
                  \(problem.map { "<div class=\"error\" id=\"error-\(f.name)\" role=\"alert\">\($0.message)</div>" as HTML })
                  <div class="hint">\(hint)</div>
                </div>
                """)
        }
        let action = editing.map { "/record/\(WebURL.encode($0.id))/edit" } ?? "/records/\(kind.rawValue)/new"
        let problemCount = fs.problems.count + (fs.general == nil ? 0 : 1)
        return """
            \(problemCount > 0 ? AppLayout.notice("error", "有 \(problemCount) 处需要改正，已在对应字段下说明。\(fs.general ?? "")", id: "form-errors") : .empty)
            <form method="post" action="\(action)" class="record" id="record-form" data-draft="/drafts/\(key)" autocomplete="off">
              <input type="hidden" name="csrf" value="\(s.csrf)">
              <input type="hidden" name="key" value="\(key)">
              <input type="hidden" name="kind" value="\(kind.rawValue)">
              \(editing.map { "<input type=\"hidden\" name=\"record\" value=\"\($0.id)\">" as HTML })
              <p class="muted">带 <span class="req">*</span> 的为必填项。填写时自动保存草稿（存在本机）。<span id="draft-status"></span></p>
              \(rows)
              <div class="actions"><button type="submit" class="primary" id="save">保存</button>
              <a href="\(editing.map { "/record/\(WebURL.encode($0.id))" } ?? "/records/\(kind.rawValue)")">取消</a></div>
            </form>
            \(AppLayout.postButton("/drafts/\(key)/discard", "丢弃草稿", csrf: s.csrf, id: "discard", cls: "danger", confirm: "确定丢弃这份草稿吗？"))
            """
    }

    /// The texts of a submitted (or autosaved) form, field by field.
    static func texts(_ form: WebForm, _ kind: RecordKind, editing: Bool) -> [(name: String, text: String)] {
        formFields(kind, editing: editing).map { f in
            if case .choices = f.type { return (f.name, form.all("f.\(f.name)").joined(separator: "、")) }
            return (f.name, form["f.\(f.name)"] ?? "")
        }
    }

    /// Reads every field the schema's way (``FieldSpec/readForm(_:)``), collecting each problem.
    /// A new record leaves empty fields out (nothing to write); an edit sends them, to clear.
    static func read(_ texts: [(name: String, text: String)], _ kind: RecordKind, creating: Bool) -> (JSONObject, FormState) {
        var input = JSONObject()
        var fs = FormState()
        for (name, text) in texts {
            fs.texts[name] = text
            guard let f = kind.spec.field(name) else { continue }
            do throws(FormProblem) {
                let v = try f.readForm(text)
                if !(creating && v == .null) { input[name] = f.encode(v) }
            } catch { fs.problems[name] = error }
        }
        return (input, fs)
    }

    static func formKey(_ form: WebForm) throws -> String {
        guard let key = form["key"], Replica.isFormKey(key) else {
            throw WebPageError(400, "表单已过期", "表单缺少编号，请重新打开表单 (the form carries no key)")
        }
        return key
    }

    // MARK: New

    func newForm(_ request: Request, _ kind: RecordKind, _ s: AppSession) throws -> Response {
        try state.with { r in
            var fs = FormState()
            var key = Hex.random(bytes: 16)
            var resumed = false
            if let dk = AppRequest.query(request, "draft"), let d = try r.draft(dk), d.kind == kind, d.record == nil {
                key = d.key
                for (n, t) in d.fields { fs.texts[n] = t }
                resumed = true
            } else {
                fs.texts = try defaults(kind, r)
            }
            let others = try r.drafts().filter { $0.kind == kind && $0.record == nil && $0.key != key }
            let body: HTML = """
                <h1>新建\(kind.spec.label)</h1>
                \(resumed ? AppLayout.notice("info", "已恢复草稿：接着填写即可。", id: "draft-resumed") : .empty)
                \(others.isEmpty || resumed ? HTML.empty : AppLayout.notice("warn", "您有 \(others.count) 份未提交的\(kind.spec.label)草稿：" + HTML.join(others.prefix(5).map { "<a href=\"/records/\(kind.rawValue)/new?draft=\($0.key)\" class=\"resume\">\(AppLayout.time($0.updated)) 的草稿</a>" as HTML }, separator: "、"), id: "other-drafts"))
                \(try formHTML(kind, r, s, key: key, editing: nil, fs))
                """
            return html(AppLayout.page("新建\(kind.spec.label)", AppLayout.Section.of(kind), try frame(r, s), body))
        }
    }

    func create(_ kind: RecordKind, _ s: AppSession, _ form: WebForm) throws -> Response {
        let key = try Self.formKey(form)
        return try state.with { r in
            // Sent again (a double click, a retried request): the record the first one made.
            if let id = try r.submitted(key) { return WebHeaders.redirect("/record/\(WebURL.encode(id))?saved=1") }
            let texts = Self.texts(form, kind, editing: false)
            var (input, fs) = Self.read(texts, kind, creating: true)
            if fs.problems.isEmpty {
                do {
                    let record = try r.check(kind, input, creating: true)
                    let (id, _) = try r.submitNew(record, key: key)
                    return WebHeaders.redirect("/record/\(WebURL.encode(id))?saved=1")
                } catch ReplicaError.invalidInput(let e) {
                    fs.general = e.reason
                }
            }
            input = JSONObject()
            try r.saveDraft(Draft(key: key, kind: kind, record: nil, fields: texts, updated: state.now))
            let body: HTML = "<h1>新建\(kind.spec.label)</h1>\(try formHTML(kind, r, s, key: key, editing: nil, fs))"
            return html(AppLayout.page("新建\(kind.spec.label)", AppLayout.Section.of(kind), try frame(r, s), body), status: .unprocessableContent)
        }
    }

    // MARK: Edit

    func editForm(_ request: Request, _ id: String, _ s: AppSession) throws -> Response {
        try state.with { r in
            let rec = try r.record(id)
            guard !rec.deleted else { throw WebPageError(409, "记录已删除", "这条记录已删除；请先在记录页点“恢复”再修改") }
            var fs = FormState()
            var key = Hex.random(bytes: 16)
            var resumed = false
            if let dk = AppRequest.query(request, "draft"), let d = try r.draft(dk), d.record == rec.id {
                key = d.key
                for (n, t) in d.fields { fs.texts[n] = t }
                resumed = true
            } else {
                for f in Self.formFields(rec.kind, editing: true) { fs.texts[f.name] = Self.text(rec[f.name], f) }
            }
            let body: HTML = """
                <h1>修改\(rec.kind.spec.label) \(RecordID.short(rec.id))</h1>
                \(resumed ? AppLayout.notice("info", "已恢复草稿：接着填写即可。", id: "draft-resumed") : .empty)
                <p class="muted">村(社区)：\(Display.value(rec[rec.kind.spec.regionField ?? ""], rec.kind.spec.field(rec.kind.spec.regionField ?? "")))（创建后不能修改）</p>
                \(try formHTML(rec.kind, r, s, key: key, editing: rec, fs))
                """
            return html(AppLayout.page("修改\(rec.kind.spec.label)", AppLayout.Section.of(rec.kind), try frame(r, s), body))
        }
    }

    func update(_ id: String, _ s: AppSession, _ form: WebForm) throws -> Response {
        let key = try Self.formKey(form)
        return try state.with { r in
            let rec = try r.record(id)
            if try r.submitted(key) != nil { return WebHeaders.redirect("/record/\(WebURL.encode(rec.id))?saved=1") }
            let texts = Self.texts(form, rec.kind, editing: true)
            var (input, fs) = Self.read(texts, rec.kind, creating: false)
            if fs.problems.isEmpty {
                do {
                    _ = try r.edit(rec.id, input)
                    try r.finishForm(key, record: rec.id)
                    return WebHeaders.redirect("/record/\(WebURL.encode(rec.id))?saved=1")
                } catch ReplicaError.invalidInput(let e) {
                    fs.general = e.reason
                }
            }
            input = JSONObject()
            try r.saveDraft(Draft(key: key, kind: rec.kind, record: rec.id, fields: texts, updated: state.now))
            let body: HTML = "<h1>修改\(rec.kind.spec.label) \(RecordID.short(rec.id))</h1>\(try formHTML(rec.kind, r, s, key: key, editing: rec, fs))"
            return html(AppLayout.page("修改\(rec.kind.spec.label)", AppLayout.Section.of(rec.kind), try frame(r, s), body), status: .unprocessableContent)
        }
    }

    func setDeleted(_ id: String, _ deleted: Bool, _ s: AppSession, _ form: WebForm) throws -> Response {
        try state.with { r in
            let rec = try r.record(id)
            if deleted { try r.delete(rec.id) } else { try r.undelete(rec.id) }
            return WebHeaders.redirect("/record/\(WebURL.encode(rec.id))?\(deleted ? "deleted" : "restored")=1")
        }
    }

    // MARK: Drafts

    func saveDraft(_ key: String, _ s: AppSession, _ form: WebForm) throws -> Response {
        guard Replica.isFormKey(key), let kind = form["kind"].flatMap(RecordKind.init(rawValue:)) else {
            throw WebPageError(400, "草稿有误", "草稿缺少表单编号或种类 (a draft names its form's key and kind)")
        }
        let record = form["record"].flatMap { $0.isEmpty ? nil : $0 }
        try state.with { r in
            try r.saveDraft(Draft(key: key, kind: kind, record: record, fields: Self.texts(form, kind, editing: record != nil), updated: state.now))
        }
        return Response(status: .noContent)
    }

    func discardDraft(_ key: String, _ s: AppSession, _ form: WebForm) throws -> Response {
        try state.with { r in try r.deleteDraft(key) }
        return WebHeaders.redirect("/")
    }

    // MARK: Record page

    /// Fetches the record's pruned history back from the hub (docs/operations.md §10), on its
    /// own thread and connection to the replica, as the sync button does.
    func fetchHistory(_ id: String, _ s: AppSession, _ form: WebForm) async throws -> Response {
        let path = state.configuration.replicaPath
        let outcome: Result<Int, Error> = await withCheckedContinuation { cont in
            Thread.detachNewThread {
                cont.resume(returning: Result {
                    var options = SyncOptions()
                    options.attempts = 1
                    options.transport.connectTimeout = 5
                    options.transport.progress = false
                    return try SyncClient(replica: try Replica.open(path: path), options: options).restorePrunedHistory(of: id)
                })
            }
        }
        let n = (try? outcome.get()) ?? -1
        return WebHeaders.redirect("/record/\(WebURL.encode(id))?fetched=\(n)")
    }

    func record(_ request: Request, _ id: String, _ s: AppSession) throws -> Response {
        try state.with { r in
            let (rec, history) = try r.history(id)
            let kind = rec.kind
            let unsent = try r.unsentChanges(kind: kind, row: rec.id)
            let refusals = try r.refusals(kind: kind, row: rec.id)
            let enrolled = try r.syncState() != nil
            let names = try placeNames(r)
            let rows = kind.spec.fields.map { f -> HTML in
                let v: String
                if case .regionCode = f.type { v = Self.place(rec[f.name], names) } else { v = Display.value(rec[f.name], f) }
                let conflict: HTML = rec.conflicts.contains(f.name)
                    ? " <a class=\"badge warn\" href=\"/conflicts/\(WebURL.encode(rec.id))/\(f.name)\">冲突，去处理</a>" : .empty
                return "<tr id=\"row-\(f.name)\"><th>\(f.label)</th><td class=\"\(f.type == .longText ? "long" : "")\">\(v)\(conflict)</td></tr>"
            }
            var notices: [HTML] = []
            if AppRequest.query(request, "saved") != nil { notices.append(AppLayout.notice("ok", "已保存。", id: "saved")) }
            if AppRequest.query(request, "deleted") != nil { notices.append(AppLayout.notice("ok", "已删除（可以恢复）。", id: "deleted-notice")) }
            if AppRequest.query(request, "restored") != nil { notices.append(AppLayout.notice("ok", "已恢复。", id: "restored-notice")) }
            if let n = AppRequest.query(request, "fetched").flatMap(Int.init) {
                notices.append(n >= 0 ? AppLayout.notice("ok", "已从同步中心取回 \(n) 条较早的历史内容。", id: "fetched")
                                      : AppLayout.notice("warn", "现在连不上同步中心，较早的历史内容稍后再取。", id: "fetched"))
            }
            for x in refusals {
                notices.append(AppLayout.notice("error", """
                    同步中心拒收了这条记录的一次修改（\(AppLayout.time(x.at))）：\(x.reason)（\(x.code)）。
                    可以 <a href="/record/\(WebURL.encode(rec.id))/edit">改正后重新保存</a>，或删除本机的这条记录；之后不再提示。
                    """, id: "refused"))
            }
            if rec.conflicts.contains(RowState.recordConflictField) || rec.conflicts.contains(RowState.deletedField) {
                let f = rec.conflicts.contains(RowState.recordConflictField) ? RowState.recordConflictField : RowState.deletedField
                notices.append(AppLayout.notice("warn", "这条记录有删除与修改的冲突：<a href=\"/conflicts/\(WebURL.encode(rec.id))/\(f)\">去处理</a>", id: "record-conflict"))
            }
            let hist = history.reversed().map { h -> HTML in
                let atHub: HTML = unsent.contains(h.change) ? "<span class=\"badge warn\">未上传</span>"
                    : refusals.contains(where: { $0.change == h.change.description }) ? "<span class=\"badge bad\">被拒收</span>"
                    : enrolled ? "<span class=\"badge ok\">中心已有</span>" : "<span class=\"badge off\">未注册</span>"
                let status: HTML = h.status == .current ? "<span class=\"badge ok\">\(Display.status(h.status))</span>"
                    : h.status == .competing ? "<span class=\"badge warn\">\(Display.status(h.status))</span>" : "<span class=\"badge off\">\(Display.status(h.status))</span>"
                return """
                    <tr><td>\(AppLayout.time(h.hlc.millis))</td><td>\(h.author)</td><td>\(h.site)</td><td>\(h.status == .pruned ? "（已清理）" : Display.fieldLabel(kind, h.field))</td>
                    <td class="long">\(ConflictHTML.clip(Display.value(h.value, kind.spec.field(h.field)), 200))</td><td>\(status)</td><td>\(atHub)</td><td>\(h.note ?? "")</td></tr>
                    """
            }
            let actions: HTML = rec.deleted
                ? AppLayout.postButton("/record/\(WebURL.encode(rec.id))/undelete", "恢复这条记录", csrf: s.csrf, id: "undelete", cls: "primary")
                : "<a class=\"button primary\" href=\"/record/\(WebURL.encode(rec.id))/edit\" id=\"edit\">修改</a> "
                    + AppLayout.postButton("/record/\(WebURL.encode(rec.id))/delete", "删除", csrf: s.csrf, id: "delete", cls: "danger",
                                           confirm: "确定删除这条\(kind.spec.label)吗？删除后可以恢复。")
            let body: HTML = """
                <h1>\(kind.spec.label) <span id="record-id">\(RecordID.short(rec.id))</span>\(rec.deleted ? HTML(trusted: " <span class=\"badge off\">已删除</span>") : .empty)
                \(unsent.isEmpty ? HTML.empty : " <span class=\"badge warn\" id=\"unsent\">有 \(unsent.count) 次修改未上传</span>")</h1>
                \(notices)
                <div class="actions">\(actions)</div>
                <table id="fields"><tbody>\(rows)</tbody></table>
                <p class="muted">完整编号 \(rec.id)</p>
                <h2>修改历史</h2>
                \(history.contains { $0.status == .pruned } && enrolled
                    ? AppLayout.postButton("/record/\(WebURL.encode(rec.id))/history/fetch", "从同步中心取回较早的历史", csrf: s.csrf, id: "fetch-history")
                    : HTML.empty)
                <table id="history"><thead><tr><th>时间</th><th>作者</th><th>设备</th><th>字段</th><th>值</th><th>状态</th><th>同步中心</th><th>备注</th></tr></thead><tbody>\(hist)</tbody></table>
                """
            return html(AppLayout.page("\(kind.spec.label) \(RecordID.short(rec.id))", AppLayout.Section.of(kind), try frame(r, s), body))
        }
    }
}

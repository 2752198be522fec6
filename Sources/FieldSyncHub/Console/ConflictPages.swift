import FieldSyncWeb
import FieldSyncCore
import FieldSyncPresentation
import FieldSyncReplica
import Foundation
import Hummingbird

// MARK: - Conflict review

extension ConsolePages {
    static func typeLabel(_ c: ConflictInfo) -> String { ConflictHTML.typeLabel(c) }

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
            ConflictHTML.listRow(c, link: "/console/conflicts/\(ConsoleURL.encode(c.row))/\(ConsoleURL.encode(c.field))")
        }
        let kinds = (RecordKind.listed + [.region]).map { k -> HTML in
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
              \(ConflictHTML.listHead)
              <tbody>\(rows)</tbody>
            </table>
            """
        return ConsoleLayout.page("冲突", .conflicts, s, body)
    }

    static func conflictKey(row: String, field: String) throws -> String {
        try ConflictHTML.key(row: row, field: field, path: "/console/conflicts")
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
        let body: HTML = """
            <h1>冲突 · \(kind.spec.label) <a href="/console/records/\(ConsoleURL.encode(c.row))">\(RecordID.short(c.row))</a> · \(Display.fieldLabel(kind, c.field))</h1>
            <p>\(Self.typeLabel(c)) · 村(社区) \(c.village ?? "—") · 发生于 \(ConsoleLayout.time(c.since))（已 \(max(0, store.now() - c.since) / 86_400_000) 天）\(detail.record.deleted ? HTML(trusted: " · <span class=\"badge off\">记录目前为已删除状态</span>") : .empty)</p>
            \(error.map { ConsoleLayout.notice("error", "\($0)", id: "resolve-error") })
            \(ConflictHTML.detail(detail))
            <h2>处理</h2>
            \(ConflictHTML.resolveForm(c, action: "/console/conflicts/\(ConsoleURL.encode(c.row))/\(ConsoleURL.encode(c.field))/resolve", csrf: s.csrf, typed: typed))
            """
        return ConsoleLayout.page("冲突 \(RecordID.short(c.row))/\(c.field)", .conflicts, s, body)
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
        let typed = form["value"] ?? ""
        func again(_ message: String) async throws -> Response {
            HubConsole.htmlResponse(try await conflict(row: row, field: field, s, error: message, typed: typed), status: .unprocessableContent)
        }
        let how: Resolution, note: String?
        do {
            // The field is looked up only for a typed value: a conflict settled meanwhile is the store's to report.
            (how, note) = try ConflictHTML.resolution(form, spec: form["how"] == "value" ? try await fieldSpec(key, s) : nil)
        } catch let e as WebPageError where e.status == 422 {
            return try await again(e.detail)
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

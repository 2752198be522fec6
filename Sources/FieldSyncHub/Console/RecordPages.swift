import FieldSyncWeb
import FieldSyncCore
import FieldSyncPresentation
import FieldSyncReplica
import Foundation
import Hummingbird

// MARK: - Overview, records, history

extension ConsolePages {
    /// 概览: how many records, open conflicts and devices the supervisor's scope holds.
    func overview(_ request: Request, _ s: Session) async throws -> HTML {
        var cards: [HTML] = []
        for kind in RecordKind.listed {
            let n = try await store.records(for: s.supervisor, { var q = RecordQuery(kind: kind); q.limit = 0; return q }()).total
            cards.append("<a class=\"card\" href=\"\(ConsoleURL.make("/console/records", [("kind", kind.rawValue)]))\"><div class=\"n\">\(n)</div><div class=\"l\">\(kind.spec.label)</div></a>")
        }
        let summary = try await store.conflictSummary(for: s.supervisor, ConflictFilter())
        let devices = try await scopedDevices(s)
        let now = store.now()
        let troubled = devices.filter { DeviceSyncState(of: $0, now: now).level != "ok" && $0.revoked == nil }
        let body: HTML = """
            <h1>概览 · \(s.supervisor.scope)</h1>
            <div class="cards">\(cards)</div>
            <h2>冲突</h2>
            <p id="overview-conflicts">未解决冲突 <b>\(summary.total)</b> 个\(summary.oldestSince.map { HTML(trusted: "，最早发生于 " + HTML.escape(ConsoleLayout.time($0))) })。
              <a href="/console/conflicts">查看并处理冲突</a></p>
            <h2>设备</h2>
            <p>本范围内设备 <b>\(devices.count)</b> 台，其中需要关注 <b>\(troubled.count)</b> 台。<a href="/console/devices">查看同步状况</a></p>
            <h2>报表</h2>
            <p><a href="/console/reports">按区划和时间汇总走访、纠纷化解和项目资金</a></p>
            """
        return ConsoleLayout.page("概览", .overview, s, body)
    }

    // MARK: Record browser

    static let pageSize = 50
    static var browsable: [RecordKind] { RecordKind.listed + [.region] }

    /// 记录: one kind at a time, narrowed by place and text, fifty to a page.
    func records(_ request: Request, _ s: Session) async throws -> HTML {
        let q = request.uri.queryParameters
        let kindName = q["kind"].map(String.init) ?? "visit"
        guard let kind = RecordKind(rawValue: kindName), Self.browsable.contains(kind) else {
            throw ConsolePageError(400, "没有这种记录", "kind is one of " + Self.browsable.map(\.rawValue).joined(separator: ", ") + ", got \"\(kindName.prefix(40))\"")
        }
        let village = q["village"].map(String.init).flatMap { $0.isEmpty ? nil : $0 }
        if let v = village, !HubHTTP.isDigits(v, max: 12) {
            throw ConsolePageError(400, "区划代码有误", "the place is a division-code prefix of 1–12 digits, got \"\(v.prefix(40))\"")
        }
        let text = q["q"].map(String.init).flatMap { $0.isEmpty ? nil : $0 }
        if let t = text, t.unicodeScalars.count > 200 || t.utf8.contains(0) {
            throw ConsolePageError(400, "搜索词有误", "the search text is at most 200 characters (no NUL)")
        }
        let page = try pageNumber(request)
        let includeDeleted = q["deleted"] == "1"
        var query = RecordQuery(kind: kind, villagePrefix: village, text: text)
        query.includeDeleted = includeDeleted
        query.limit = Self.pageSize
        query.offset = (page - 1) * Self.pageSize
        let result = try await store.records(for: s.supervisor, query)
        let spec = kind.spec
        let columns = spec.listFields.compactMap { spec.field($0) }
        var rows: [HTML] = []
        for r in result.records {
            let cells = columns.map { f -> HTML in
                let v = r[f.name]
                let shown = Display.value(v, f)
                return "<td\(f.type == .money ? HTML(trusted: " class=\"num\"") : .empty)>\(shown.unicodeScalars.count > 60 ? String(shown.prefix(60)) + "…" : shown)</td>"
            }
            let flags: HTML = r.conflicts.isEmpty ? .empty : "<span class=\"badge bad\">冲突 \(r.conflicts.count)</span>"
            rows.append("""
                <tr\(r.deleted ? HTML(trusted: " class=\"deleted\"") : .empty)><td><a href="/console/records/\(ConsoleURL.encode(r.id))">\(RecordID.short(r.id))</a> \(flags)</td>\(cells)</tr>
                """)
        }
        let kindOptions = Self.browsable.map { k -> HTML in
            "<option value=\"\(k.rawValue)\"\(k == kind ? HTML(trusted: " selected") : .empty)>\(k.spec.label)</option>"
        }
        let pages = max(1, (result.total + Self.pageSize - 1) / Self.pageSize)
        func link(_ p: Int) -> String {
            ConsoleURL.make("/console/records", [("kind", kind.rawValue), ("village", village), ("q", text), ("deleted", includeDeleted ? "1" : nil), ("page", String(p))])
        }
        let pager: HTML = """
            <div class="pager">\(page > 1 ? ("<a href=\"\(link(page - 1))\" rel=\"prev\">上一页</a>" as HTML) : .empty)
            <span>第 \(page) / \(pages) 页，共 \(result.total) 条</span>
            \(page < pages ? ("<a href=\"\(link(page + 1))\" rel=\"next\">下一页</a>" as HTML) : .empty)</div>
            """
        let body: HTML = """
            <h1>记录 · \(spec.label)</h1>
            <form method="get" action="/console/records" class="filters">
              <label>种类 <select name="kind">\(kindOptions)</select></label>
              <label>区划代码前缀 <input type="text" name="village" value="\(village ?? "")" placeholder="\(s.supervisor.scope)" inputmode="numeric" maxlength="12"></label>
              <label>搜索 <input type="text" name="q" value="\(text ?? "")" placeholder="姓名、内容、编号…"></label>
              <label>已删除 <select name="deleted"><option value="">不显示</option><option value="1"\(includeDeleted ? HTML(trusted: " selected") : .empty)>也显示</option></select></label>
              <button type="submit" class="primary">查询</button>
            </form>
            \(result.records.isEmpty ? ConsoleLayout.notice("info", "没有符合条件的记录。", id: "no-records") : .empty)
            <table id="records">
              <thead><tr><th>编号</th>\(columns.map { f -> HTML in "<th>\(f.label)</th>" })</tr></thead>
              <tbody>\(rows)</tbody>
            </table>
            \(pager)
            """
        return ConsoleLayout.page("记录", .records, s, body)
    }

    func pageNumber(_ request: Request) throws -> Int {
        guard let raw = request.uri.queryParameters["page"] else { return 1 }
        guard let p = Int(raw), (1...100_000).contains(p) else {
            throw ConsolePageError(400, "页码有误", "page is a whole number from 1 to 100000, got \"\(raw.prefix(40))\"")
        }
        return p
    }

    /// One record: every field's value, its open conflicts, and every value each field ever had.
    func record(_ request: Request, _ id: String, _ s: Session) async throws -> HTML {
        let (rec, history) = try await store.recordHistory(for: s.supervisor, id: id)
        let spec = rec.kind.spec
        let fieldRows = spec.fields.map { f -> HTML in
            let conflict: HTML = rec.conflicts.contains(f.name)
                ? " <a class=\"badge bad\" href=\"/console/conflicts/\(ConsoleURL.encode(rec.id))/\(f.name)\">冲突 · 去处理</a>" : .empty
            return "<tr><th>\(f.label)</th><td class=\"long\">\(Display.value(rec[f.name], f))\(conflict)</td></tr>"
        }
        let special = rec.conflicts.filter { spec.field($0) == nil }.map { f -> HTML in
            ConsoleLayout.notice("error", "\(Display.fieldLabel(rec.kind, f))有未解决的冲突 · <a href=\"/console/conflicts/\(ConsoleURL.encode(rec.id))/\(ConsoleURL.encode(f))\">去处理</a>")
        }
        let historyRows = history.reversed().map { h -> HTML in
            let field = spec.field(h.field)
            let badge: HTML = switch h.status {
            case .current: "<span class=\"badge ok\">\(Display.status(h.status))</span>"
            case .competing: "<span class=\"badge bad\">\(Display.status(h.status))</span>"
            case .superseded, .pruned: "<span class=\"badge off\">\(Display.status(h.status))</span>"
            }
            return """
                <tr><td>\(ConsoleLayout.time(h.hlc.millis))</td><td>\(Display.fieldLabel(rec.kind, h.field))</td>
                <td class="long">\(Display.value(h.value, field))</td><td>\(h.author)</td><td>\(h.site)</td><td>\(badge)</td>
                <td class="long">\(h.note ?? "")</td><td class="muted">\(String(h.change.site.hex.prefix(8)))…:\(h.change.counter)</td></tr>
                """
        }
        let body: HTML = """
            <h1>\(spec.label) \(RecordID.short(rec.id))\(rec.deleted ? HTML(trusted: " <span class=\"badge off\">已删除</span>") : .empty)</h1>
            <p class="muted">完整编号 <code id="record-id">\(rec.id)</code></p>
            \(special)
            <table id="fields"><tbody>\(fieldRows)</tbody></table>
            <h2>修改历史（每个字段的每一个值，谁、何时、来自哪台设备）</h2>
            <table id="history">
              <thead><tr><th>时间</th><th>字段</th><th>值</th><th>作者</th><th>设备（副本）</th><th>状态</th><th>备注</th><th>变更</th></tr></thead>
              <tbody>\(historyRows)</tbody>
            </table>
            <p><a href="\(ConsoleURL.make("/console/records", [("kind", rec.kind.rawValue)]))">返回\(spec.label)列表</a></p>
            """
        return ConsoleLayout.page("\(spec.label) \(RecordID.short(rec.id))", .records, s, body)
    }
}

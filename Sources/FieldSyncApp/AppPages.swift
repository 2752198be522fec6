import FieldSyncCore
import FieldSyncPresentation
import FieldSyncReplica
import FieldSyncWeb
import Foundation
import HTTPTypes
import Hummingbird

// MARK: - AppPages

/// The app's pages, each over the replica (docs/app.md).
struct AppPages: Sendable {
    let state: AppState

    func frame(_ r: Replica, _ s: AppSession) throws -> AppLayout.Status { try AppLayout.status(r, csrf: s.csrf) }

    func html(_ page: HTML, status: HTTPResponse.Status = .ok) -> Response { WebHeaders.html(page, status: status) }

    // MARK: Signing in

    static func signInNeeded() -> HTML {
        AppLayout.document("请从命令行打开", """
            <main class="narrow">
            <h1 id="sign-in-needed">请先打开工作台</h1>
            <p>为了保护本机数据，工作台只接受本机命令打开的链接。请在命令行运行：</p>
            <p><code>fieldsync app</code></p>
            <p>然后打开它显示的链接（链接只能用一次，10 分钟内有效；工作台已在运行时用 <code>fieldsync app --link</code> 再要一个）。</p>
            </main>
            """)
    }

    static func errorPage(_ e: WebPageError) -> HTML {
        AppLayout.document(e.title, """
            <main class="narrow">
            <h1 id="error-title">\(e.title)</h1>
            \(AppLayout.notice("error", "\(e.detail)", id: "error-detail"))
            <p><a href="/">返回首页</a></p>
            </main>
            """)
    }

    func openPage(_ request: Request) throws -> Response {
        let t = AppRequest.query(request, "t") ?? ""
        guard AppKey.check(t, key: state.key, now: state.now) != nil else {
            return html(AppLayout.document("链接无效", """
                <main class="narrow"><h1 id="link-invalid">这个链接已失效</h1>
                <p>链接只能用一次，10 分钟内有效。请在命令行运行 <code>fieldsync app --link</code> 再要一个。</p></main>
                """), status: .forbidden)
        }
        return html(AppLayout.document("打开工作台", """
            <main class="narrow">
            <h1>FieldSync 驻村工作台</h1>
            <form method="post" action="/open" id="open-form">
              <input type="hidden" name="t" value="\(t)">
              <p><button type="submit" class="primary" id="open" autofocus>进入工作台</button></p>
            </form>
            <p class="muted">在共用的电脑上用完请关闭浏览器（或点首页的“退出”）。</p>
            </main>
            """))
    }

    func open(_ request: Request) async throws -> Response {
        try WebGuard.checkOrigin(request, secure: false)
        var request = request
        let form = try await WebForm.read(&request, maxBytes: 4096)
        guard let nonce = AppKey.check(form["t"] ?? "", key: state.key, now: state.now),
              try state.with({ try $0.useAppLink(nonce) })
        else {
            throw WebPageError(403, "这个链接已失效", "链接只能用一次，10 分钟内有效；请运行 fieldsync app --link 再要一个 (the one-time link was used or has expired)")
        }
        let (token, _) = try state.with { try $0.startAppSession() }
        var r = WebHeaders.redirect("/")
        // No Max-Age: the session ends when the browser closes (a shared laptop).
        r.headers[values: .setCookie].append(WebCookie.set(AppRequest.cookie, token, path: "/", maxAge: nil, secure: false))
        return r
    }

    // MARK: Home

    func home(_ request: Request, _ s: AppSession) throws -> Response {
        try state.with { r in
            let st = try r.status()
            let f = try frame(r, s)
            let sync = try r.syncState()
            let cards = RecordKind.listed.map { k -> HTML in
                let n = st.records.first { $0.kind == k }?.live ?? 0
                return "<a class=\"card\" href=\"/records/\(k.rawValue)\" id=\"card-\(k.rawValue)\"><div class=\"n\">\(n)</div><div class=\"l\">\(k.spec.label)</div></a>"
            }
            let drafts = try r.drafts()
            let draftRows = drafts.map { d -> HTML in
                let what = d.record.map { "修改 \(RecordID.short($0))" } ?? "新建"
                let preview = d.fields.map(\.text).filter { !$0.isEmpty }.prefix(3).joined(separator: " · ")
                let link = d.record.map { "/record/\(WebURL.encode($0))/edit?draft=\(d.key)" } ?? "/records/\(d.kind.rawValue)/new?draft=\(d.key)"
                return "<tr><td>\(d.kind.spec.label) · \(what)</td><td>\(ConflictHTML.clip(preview, 60))</td><td>\(AppLayout.time(d.updated))</td><td><a href=\"\(link)\" class=\"resume\">继续填写</a></td></tr>"
            }
            let new = ([RecordKind.visit, .dispute, .project, .household] + RecordKind.added).map { k -> HTML in
                "<a class=\"button primary\" href=\"/records/\(k.rawValue)/new\" id=\"new-\(k.rawValue)\">新建\(k.spec.label)</a>"
            }
            let body: HTML = """
                <h1>首页</h1>
                <div class="actions">\(new)</div>
                \(drafts.isEmpty ? HTML.empty : """
                    <h2 id="drafts-title">未提交的草稿（\(drafts.count)）</h2>
                    <p class="muted">草稿保存在本机数据文件里：关掉浏览器、程序被关闭后都还在。</p>
                    <table id="drafts"><thead><tr><th>表单</th><th>内容</th><th>最后修改</th><th></th></tr></thead><tbody>\(draftRows)</tbody></table>
                    """)
                <h2>本机记录</h2>
                <div class="cards">\(cards)</div>
                <h2>同步</h2>
                <p id="home-sync">\(sync == nil ? "本机尚未注册到同步中心。" as HTML : "同步中心 \(sync!.hubName) · 最近一次成功同步 \(AppLayout.time(sync!.lastSuccess))") · 未上传 \(f.pending) 条变更 · 未解决冲突 \(st.conflicts) 个 · <a href="/sync">同步页面</a></p>
                <div class="actions">\(AppLayout.postButton("/close", "退出", csrf: s.csrf, id: "close"))</div>
                """
            return html(AppLayout.page("首页", .home, f, body))
        }
    }

    /// The names of the places this laptop knows (its region records), for showing codes.
    func placeNames(_ r: Replica) throws -> [String: String] {
        var q = RecordQuery(kind: .region)
        q.limit = 1000
        var out: [String: String] = [:]
        for rec in try r.browse(q).records { if case .text(let n) = rec["name"] { out[rec.id] = n } }
        return out
    }

    /// A division code as people read it: `牛角村（520221105201）`.
    static func place(_ v: FieldValue, _ names: [String: String]) -> String {
        guard case .text(let code) = v else { return "—" }
        return names[code].map { "\($0)（\(code)）" } ?? code
    }

    // MARK: Lists

    /// The list's filters, read from the address.
    struct ListFilter {
        var query: RecordQuery
        var page: Int
        var params: [(String, String?)]
    }

    static let pageSize = 50

    /// The choice fields a list filters by, and its date field.
    static func filterFields(_ kind: RecordKind) -> (choices: [FieldSpec], date: FieldSpec?) {
        let spec = kind.spec
        let listed = spec.listFields.compactMap { spec.field($0) }
        let choices = listed.filter { if case .choice = $0.type { true } else { false } }
        return (choices, spec.fields.first { $0.type == .date })
    }

    func filter(_ request: Request, _ kind: RecordKind) throws -> ListFilter {
        func q(_ k: String) -> String? { AppRequest.query(request, k) }
        var query = RecordQuery(kind: kind, villagePrefix: q("village"), text: q("q"))
        var params: [(String, String?)] = [("q", q("q")), ("village", q("village"))]
        if let v = query.villagePrefix, !(v.utf8.count <= 12 && v.utf8.allSatisfy({ (0x30...0x39).contains($0) })) {
            throw WebPageError(400, "区划代码有误", "村(社区)代码是 1–12 位数字的前缀，收到“\(v.prefix(40))”")
        }
        let (choices, date) = Self.filterFields(kind)
        for f in choices {
            if let v = q(f.name) {
                query.equals.append((f.name, .text(v)))
                params.append((f.name, v))
            }
        }
        if let date {
            query.dateField = date.name
            for (k, label) in [("from", "开始日期"), ("to", "结束日期")] {
                guard let v = q(k) else { continue }
                guard let d = FieldSpec.normalizeDate(FormText.narrow(v)) else {
                    throw WebPageError(400, "\(label)有误", "“\(v.prefix(40))”不是日期；日期如 2026-11-20")
                }
                if k == "from" { query.from = d } else { query.to = d }
                params.append((k, d))
            }
        }
        query.mine = q("mine") == "1"
        query.unsent = q("unsent") == "1"
        query.inConflict = q("conflict") == "1"
        query.includeDeleted = q("deleted") == "1"
        for (k, on) in [("mine", query.mine), ("unsent", query.unsent), ("conflict", query.inConflict), ("deleted", query.includeDeleted)] where on {
            params.append((k, "1"))
        }
        if let s = q("sort") {
            guard kind.spec.field(s) != nil else { throw WebPageError(400, "排序字段有误", "\(kind.spec.label)没有字段“\(s.prefix(40))”") }
            query.sort = s
            params.append(("sort", s))
        }
        query.descending = q("desc") == "1"
        if query.descending { params.append(("desc", "1")) }
        let page = max(1, min(Int(q("page") ?? "1") ?? 1, 1_000_000))
        query.limit = Self.pageSize
        query.offset = (page - 1) * Self.pageSize
        return ListFilter(query: query, page: page, params: params)
    }

    func list(_ request: Request, _ kind: RecordKind, _ s: AppSession) throws -> Response {
        let lf = try filter(request, kind)
        return try state.with { r in
            let f = try frame(r, s)
            let result = try r.browse(lf.query)
            let spec = kind.spec
            let columns = spec.listFields.compactMap { spec.field($0) }
            let base = "/records/\(kind.rawValue)"
            func sortLink(_ c: FieldSpec) -> HTML {
                let desc = lf.query.sort == c.name && !lf.query.descending
                let params = lf.params.filter { $0.0 != "sort" && $0.0 != "desc" } + [("sort", c.name), ("desc", desc ? "1" : nil)]
                let mark = lf.query.sort == c.name ? (lf.query.descending ? " ▼" : " ▲") : ""
                return "<a href=\"\(WebURL.make(base, params))\">\(c.label)\(mark)</a>"
            }
            let head = columns.map { "<th>\(sortLink($0))</th>" as HTML }
            let names = try placeNames(r)
            let rows = result.records.map { rec -> HTML in
                let cells = columns.map { c -> HTML in
                    let v = c.name == spec.regionField ? (names[Display.value(rec[c.name], c)] ?? Display.value(rec[c.name], c)) : Display.value(rec[c.name], c)
                    return c.type == .money ? "<td class=\"num\">\(v)</td>" : "<td>\(ConflictHTML.clip(v, 40))</td>"
                }
                let badges: HTML = (rec.conflicts.isEmpty ? HTML.empty : " <span class=\"badge warn\">冲突</span>") + (rec.deleted ? " <span class=\"badge off\">已删除</span>" : HTML.empty)
                return "<tr\(rec.deleted ? HTML(trusted: " class=\"deleted\"") : .empty)><td><a href=\"/record/\(WebURL.encode(rec.id))\">\(RecordID.short(rec.id))</a>\(badges)</td>\(cells)</tr>"
            }
            let (choices, date) = Self.filterFields(kind)
            let selects = choices.map { c -> HTML in
                guard case .choice(let options) = c.type else { return .empty }
                let current: String? = lf.query.equals.first { $0.field == c.name }.flatMap { if case .text(let t) = $0.value { t } else { nil } }
                let opts = options.map { o -> HTML in "<option\(o == current ? HTML(trusted: " selected") : .empty)>\(o)</option>" }
                return "<label>\(c.label) <select name=\"\(c.name)\" id=\"filter-\(c.name)\"><option value=\"\">全部</option>\(opts)</select></label>"
            }
            let dates: HTML = date.map { d in
                """
                <label>\(d.label)从 <input type="date" name="from" id="filter-from" value="\(lf.query.from ?? "")"></label>
                <label>到 <input type="date" name="to" id="filter-to" value="\(lf.query.to ?? "")"></label>
                """
            } ?? .empty
            func check(_ name: String, _ label: String, _ on: Bool) -> HTML {
                "<label class=\"check\"><input type=\"checkbox\" name=\"\(name)\" value=\"1\" id=\"filter-\(name)\"\(on ? HTML(trusted: " checked") : .empty)> \(label)</label>"
            }
            let pages = max(1, (result.total + Self.pageSize - 1) / Self.pageSize)
            func pageLink(_ p: Int, _ label: String, _ id: String) -> HTML {
                "<a href=\"\(WebURL.make(base, lf.params + [("page", String(p))]))\" id=\"\(id)\">\(label)</a>"
            }
            let pager: HTML = """
                <div class="pager"><span id="total">共 \(result.total) 条</span> <span>第 \(lf.page) / \(pages) 页</span>
                \(lf.page > 1 ? pageLink(lf.page - 1, "上一页", "prev") : .empty) \(lf.page < pages ? pageLink(lf.page + 1, "下一页", "next") : .empty)
                <a href="\(WebURL.make(base + "/export.csv", lf.params))" id="export-csv">导出为 Excel 表格 (CSV)</a></div>
                """
            let body: HTML = """
                <h1>\(spec.label)</h1>
                <div class="actions"><a class="button primary" href="\(base)/new" id="new-record">新建\(spec.label)</a></div>
                <form method="get" action="\(base)" class="filters" id="filters">
                  <label>搜索（文字、姓名、编号） <input type="text" name="q" id="filter-q" value="\(lf.query.text ?? "")"></label>
                  <label>村(社区)代码 <input type="text" name="village" id="filter-village" value="\(lf.query.villagePrefix ?? "")" maxlength="12" inputmode="numeric"></label>
                  \(selects)
                  \(dates)
                  \(check("mine", "本机录入", lf.query.mine)) \(check("unsent", "未上传", lf.query.unsent)) \(check("conflict", "有冲突", lf.query.inConflict)) \(check("deleted", "含已删除", lf.query.includeDeleted))
                  <button type="submit" class="primary" id="filter">查找</button>
                </form>
                \(result.records.isEmpty ? AppLayout.notice("info", "没有符合条件的\(spec.label)。", id: "empty") : .empty)
                <table id="records"><thead><tr><th>编号</th>\(head)</tr></thead><tbody>\(rows)</tbody></table>
                \(pager)
                """
            return html(AppLayout.page(spec.label, AppLayout.Section.of(kind), f, body))
        }
    }

    /// The records of a kind, filters applied, as a CSV for Excel (every match, not one page).
    func exportCSV(_ request: Request, _ kind: RecordKind, _ s: AppSession) throws -> Response {
        var lf = try filter(request, kind)
        lf.query.offset = 0
        lf.query.limit = 1000
        let spec = kind.spec
        var rows: [[String]] = []
        try state.with { r in
            while true {
                let page = try r.browse(lf.query)
                for rec in page.records {
                    rows.append([rec.id] + spec.fields.map { f in
                        // Money in 元 as a plain number (Excel sums it); everything else as people read it.
                        if f.type == .money, case .integer(let fen) = rec[f.name] { return Display.yuan(fen).replacingOccurrences(of: " 元", with: "").replacingOccurrences(of: ",", with: "") }
                        if case .null = rec[f.name] { return "" }
                        return Display.value(rec[f.name], f)
                    } + [rec.deleted ? "是" : "否"])
                }
                if page.records.count < lf.query.limit { break }
                lf.query.offset += lf.query.limit
            }
        }
        let header = ["编号"] + spec.fields.map { $0.type == .money ? "\($0.label)(元)" : $0.label } + ["已删除"]
        let moneyColumns = Set(spec.fields.indices.filter { spec.fields[$0].type == .money }.map { $0 + 1 })
        let bytes = CSVText.file(header: header, rows: rows, isNumber: { _, c in moneyColumns.contains(c) })
        var r = Response(status: .ok, headers: [.contentType: "text/csv; charset=utf-8"], body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
        let name = "fieldsync-\(kind.rawValue)-\(Display.today(state.now)).csv"
        r.headers[.contentDisposition] = "attachment; filename=\"\(name)\""
        return r
    }
}

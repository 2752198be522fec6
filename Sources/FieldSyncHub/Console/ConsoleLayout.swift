import FieldSyncWeb
import FieldSyncCore
import FieldSyncPresentation
import Foundation

// MARK: - ConsoleLayout

/// The frame around every console page: title, navigation, who is signed in, the sign-out button.
enum ConsoleLayout {
    enum Section: String, CaseIterable {
        case overview, reports, records, conflicts, devices

        var label: String {
            switch self {
            case .overview: return "概览"
            case .reports: return "报表"
            case .records: return "记录"
            case .conflicts: return "冲突"
            case .devices: return "设备"
            }
        }

        var path: String { self == .overview ? "/console" : "/console/\(rawValue)" }
    }

    /// A page for a signed-in supervisor.
    static func page(_ title: String, _ section: Section?, _ session: Session, _ body: HTML) -> HTML {
        let nav = Section.allCases.map { s -> HTML in
            "<a href=\"\(s.path)\"\(s == section ? HTML(trusted: " class=\"here\" aria-current=\"page\"") : .empty)>\(s.label)</a>"
        }
        let header: HTML = """
            <header class="top">
              <span class="brand">FieldSync 同步中心</span>
              <nav>\(nav)</nav>
              <span class="who">督导 <b id="who-name">\(session.supervisor.name)</b> · 范围 <span id="who-scope">\(session.supervisor.scope)</span>（\(RegionCode.levelLabel(session.supervisor.scope))）</span>
              <form method="post" action="/console/logout" class="logout">
                <input type="hidden" name="csrf" value="\(session.csrf)">
                <button type="submit" id="logout">退出登录</button>
              </form>
            </header>
            """
        return document(title, header + "<main>\(body)</main>")
    }

    /// A whole document.
    static func document(_ title: String, _ body: HTML) -> HTML {
        """
        <!DOCTYPE html>
        <html lang="zh-CN">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>\(title) · FieldSync 同步中心</title>
        <link rel="stylesheet" href="/console/assets/console.css">
        </head>
        <body>
        \(body)
        <footer>时间均以 \(Display.zoneLabel) 显示 · 金额以元显示（按分存储）</footer>
        </body>
        </html>
        """
    }

    /// A message box: `info`, `ok` or `error`.
    static func notice(_ kind: String, _ text: HTML, id: String? = nil) -> HTML {
        "<p class=\"notice \(kind)\" role=\"\(kind == "error" ? "alert" : "status")\"\(id.map { HTML(trusted: " id=\"\(HTML.escape($0))\"") })>\(text)</p>"
    }

    /// A whole-page refusal or error.
    static func errorPage(_ e: ConsolePageError, session: Session?) -> HTML {
        let body: HTML = """
            <h1 id="error-title">\(e.title)</h1>
            \(notice("error", "\(e.detail)", id: "error-detail"))
            <p><a href="/console">返回概览</a></p>
            """
        if let session { return page(e.title, nil, session, body) }
        return document(e.title, "<main class=\"narrow\">\(body)</main>")
    }

    static func time(_ ms: Int64?) -> String { ms.map { Display.time($0) } ?? "—" }

    /// A duration for people: 45 秒, 12 分钟, 3 小时, 5 天.
    static func duration(_ ms: Int64) -> String {
        let s = abs(ms) / 1000
        if s < 60 { return "\(s) 秒" }
        if s < 3600 { return "\(s / 60) 分钟" }
        if s < 86_400 { return "\(s / 3600) 小时" }
        return "\(s / 86_400) 天"
    }

    // MARK: Stylesheet

    /// The console's only stylesheet, served from the hub itself (no outside assets; the
    /// Content-Security-Policy allows styles from here and nothing inline).
    static let stylesheet = WebStyle.base + "\n" + """
        :root { --ink: #1f2933; --muted: #66717d; --line: #d5dbe1; --accent: #b3261e; --bg: #f6f7f9; --ok: #1e7b34; --warn: #a15c00; }
        header.top { display: flex; align-items: center; gap: 1.5em; background: #8c1c13; color: #fff; padding: .6em 1.2em; flex-wrap: wrap; }
        header.top .brand { font-weight: bold; font-size: 1.1em; }
        header.top nav a { color: #fde8e6; text-decoration: none; margin-right: 1em; padding: .2em .4em; border-radius: 3px; }
        header.top nav a.here { background: #fff; color: #8c1c13; }
        header.top form.logout button { background: transparent; color: #fff; border: 1px solid #fff; border-radius: 3px; padding: .2em .8em; cursor: pointer; }
        main { max-width: 1200px; margin: 1.2em auto; padding: 0 1.2em; }
        main.narrow { max-width: 420px; margin-top: 4em; }
        h1 { font-size: 1.4em; margin: .4em 0 .8em; }
        h2 { font-size: 1.15em; margin: 1.4em 0 .6em; border-left: 4px solid #8c1c13; padding-left: .5em; }
        table { border-collapse: collapse; width: 100%; background: #fff; margin-bottom: 1em; }
        th, td { border: 1px solid var(--line); padding: .35em .6em; text-align: left; vertical-align: top; }
        th { background: #eef1f4; font-weight: 600; white-space: nowrap; }
        td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
        td.long { white-space: pre-wrap; word-break: break-word; max-width: 40em; }
        tr.winner td, td.winner { background: #fff7e0; }
        .notice.error { background: #fdecea; border-color: #f2b8b5; color: var(--accent); }
        .badge.bad { color: var(--accent); border-color: #f2b8b5; background: #fdecea; }
        form.filters { display: flex; gap: .8em; flex-wrap: wrap; align-items: end; background: #fff; padding: .8em; border: 1px solid var(--line); margin-bottom: 1em; }
        input[type=text], input[type=password], input[type=date], select, textarea { padding: .3em .4em; border: 1px solid #aab4be; border-radius: 3px; }
        button.primary { background: #8c1c13; color: #fff; border: none; border-radius: 3px; padding: .4em 1.2em; cursor: pointer; }
        .login-box { background: #fff; border: 1px solid var(--line); padding: 1.5em; border-radius: 6px; }
        .login-box label { display: block; margin: .8em 0 .2em; }
        .login-box input[type=text], .login-box input[type=password] { width: 100%; }
        .login-box button { margin-top: 1.2em; width: 100%; }
        .card { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: .8em 1.2em; min-width: 10em; }
        .card .n { font-size: 1.6em; font-weight: bold; }
        .diff { background: #fff; border: 1px solid var(--line); padding: .5em .8em; font-size: .95em; }
        .diff div { white-space: pre-wrap; word-break: break-word; }
        .diff .del::before { content: "− "; color: var(--accent); }
        .diff .same { color: var(--muted); }
        .diff .fold { color: var(--muted); font-style: italic; }
        fieldset.resolve textarea { width: 100%; min-height: 6em; }
        svg.chart { background: #fff; border: 1px solid var(--line); max-width: 100%; height: auto; }
        svg.chart text { font-size: 12px; fill: #333; }
        svg.chart .bar { fill: #c0392b; }
        svg.chart .bar2 { fill: #2e86c1; }
        svg.chart .line { fill: none; stroke: #2e86c1; stroke-width: 2; }
        svg.chart .dot { fill: #2e86c1; }
        svg.chart .axis { stroke: #888; stroke-width: 1; }
        svg.chart .grid { stroke: #e3e6ea; stroke-width: 1; }
        .charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(520px, 1fr)); gap: 1em; margin: 1em 0; }
        .charts svg.chart { width: 100%; height: auto; }
        .scroll { overflow-x: auto; }
        .scroll td, .scroll th { white-space: nowrap; }
        h2 a.csv { font-size: .75em; font-weight: normal; margin-left: 1em; }
        """
}

import FieldSyncCore
import FieldSyncPresentation
import FieldSyncReplica
import FieldSyncWeb

// MARK: - AppLayout

/// The frame of every page: the laptop's name, the navigation, and on every page how many
/// changes the hub does not have yet.
enum AppLayout {
    enum Section: String, CaseIterable {
        case home, visit, dispute, project, household, cadre, conflicts, sync, files

        var label: String {
            switch self {
            case .home: return "首页"
            case .visit: return "走访"
            case .dispute: return "纠纷"
            case .project: return "项目"
            case .household: return "农户"
            case .cadre: return "干部"
            case .conflicts: return "冲突"
            case .sync: return "同步"
            case .files: return "文件"
            }
        }

        var path: String {
            switch self {
            case .home: return "/"
            case .visit, .dispute, .project, .household, .cadre: return "/records/\(rawValue)"
            default: return "/\(rawValue)"
            }
        }

        static func of(_ kind: RecordKind) -> Section? { Section(rawValue: kind.rawValue) }
    }

    /// What the header shows on every page.
    struct Status {
        var site: String
        var author: String
        var scope: String?
        var pending: Int
        var conflicts: Int
        var csrf: String
    }

    static func status(_ r: Replica, csrf: String) throws -> Status {
        let st = try r.status()
        return Status(site: st.siteName, author: st.author, scope: try r.syncState()?.scope, pending: try r.pendingPushCount(),
                      conflicts: st.conflicts, csrf: csrf)
    }

    static func page(_ title: String, _ section: Section?, _ s: Status, _ body: HTML, refresh: Int? = nil) -> HTML {
        let nav = Section.allCases.map { x -> HTML in
            let badge: HTML = x == .conflicts && s.conflicts > 0 ? " <span class=\"count warn\">\(s.conflicts)</span>" : .empty
            return "<a href=\"\(x.path)\"\(x == section ? HTML(trusted: " class=\"here\" aria-current=\"page\"") : .empty)>\(x.label)\(badge)</a>"
        }
        let pending: HTML = s.pending == 0
            ? "<a href=\"/sync\" id=\"pending\" class=\"pending ok\">全部已上传</a>"
            : "<a href=\"/sync\" id=\"pending\" class=\"pending warn\">未上传 <b id=\"pending-count\">\(s.pending)</b> 条变更</a>"
        let header: HTML = """
            <header class="top">
              <span class="brand">FieldSync 驻村工作台</span>
              <nav>\(nav)</nav>
              <span class="who">\(s.author) · \(s.site)</span>
              \(pending)
            </header>
            """
        return document(title, header + "<main>\(body)</main>", csrf: s.csrf, refresh: refresh)
    }

    static func document(_ title: String, _ body: HTML, csrf: String? = nil, refresh: Int? = nil) -> HTML {
        """
        <!DOCTYPE html>
        <html lang="zh-CN">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        \(refresh.map { "<meta http-equiv=\"refresh\" content=\"\($0)\">" as HTML })
        \(csrf.map { "<meta name=\"csrf\" content=\"\($0)\">" as HTML })
        <title>\(title) · FieldSync 驻村工作台</title>
        <link rel="stylesheet" href="/assets/app.css">
        <script src="/assets/app.js" defer></script>
        </head>
        <body>
        \(body)
        <footer>时间均以 \(Display.zoneLabel) 显示 · 金额以元显示（按分存储）· 本页只在本机打开，不连外网</footer>
        </body>
        </html>
        """
    }

    static func notice(_ kind: String, _ text: HTML, id: String? = nil) -> HTML {
        "<p class=\"notice \(kind)\" role=\"\(kind == "error" ? "alert" : "status")\"\(id.map { HTML(trusted: " id=\"\(HTML.escape($0))\"") })>\(text)</p>"
    }

    static func time(_ ms: Int64?) -> String { ms.map { Display.time($0) } ?? "—" }

    /// A button that posts (every change is a POST with the session's CSRF secret).
    static func postButton(_ action: String, _ label: String, csrf: String, id: String, cls: String = "", confirm: String? = nil) -> HTML {
        """
        <form method="post" action="\(action)" class="inline"\(confirm.map { HTML(trusted: " data-confirm=\"\(HTML.escape($0))\"") })>
          <input type="hidden" name="csrf" value="\(csrf)"><button type="submit" id="\(id)" class="\(cls)">\(label)</button>
        </form>
        """
    }

    // MARK: Assets

    static let stylesheet = WebStyle.base + "\n" + """
        a.pending { color: #fff; text-decoration: none; border: 1px solid #fff; border-radius: 3px; padding: .1em .6em; font-size: .9em; }
        a.pending.warn { background: #fff4e0; color: var(--warn); border-color: #f0c987; }
        .count { display: inline-block; min-width: 1.4em; text-align: center; border-radius: 9px; font-size: .8em; background: #fff4e0; color: var(--warn); }
        form.record { background: #fff; border: 1px solid var(--line); padding: 1em; }
        .field { display: grid; grid-template-columns: 11em 1fr; gap: .2em 1em; padding: .45em 0; border-bottom: 1px dashed #e5e8eb; }
        .field > label, .field > .label { font-weight: 600; padding-top: .3em; }
        .field .req { color: var(--bad); margin-left: .2em; }
        .field .hint { grid-column: 2; color: var(--muted); font-size: .85em; }
        .field .error { grid-column: 2; color: var(--bad); font-weight: 600; }
        .field.has-error input, .field.has-error select, .field.has-error textarea { border-color: var(--bad); background: #fffafa; }
        .field input[type=text] { width: 28em; }
        .field textarea { width: 100%; min-height: 5.5em; }
        .field .checks { display: flex; flex-wrap: wrap; gap: .2em 1em; }
        .field .unit { margin-left: .4em; }
        progress { width: 20em; }
        """

    /// The app's only script (the policy allows scripts from here and nothing inline): drafts
    /// saved as the cadre types (never while the input method is composing), Enter while
    /// composing never submits, a form is sent once, and buttons that delete ask first.
    static let script = #"""
        "use strict";
        (function () {
          var csrf = document.querySelector('meta[name="csrf"]');
          csrf = csrf ? csrf.getAttribute("content") : "";
          document.querySelectorAll("form[data-confirm]").forEach(function (f) {
            f.addEventListener("submit", function (e) { if (!window.confirm(f.getAttribute("data-confirm"))) { e.preventDefault(); } });
          });
          // The one-time link's page: go straight in (the POST spends the link).
          var open = document.getElementById("open-form");
          if (open && !sessionStorage.getItem("fs-opened-" + open.elements.t.value)) {
            sessionStorage.setItem("fs-opened-" + open.elements.t.value, "1");
            open.submit();
          }
          var form = document.querySelector("form[data-draft]");
          if (!form) { return; }
          var composing = false, timer = null, sent = false, status = document.getElementById("draft-status");
          function save() {
            timer = null;
            if (composing || sent) { return; }
            var body = new URLSearchParams(new FormData(form));
            body.delete("csrf");
            fetch(form.getAttribute("data-draft"), { method: "POST", credentials: "same-origin",
              headers: { "Content-Type": "application/x-www-form-urlencoded", "X-CSRF-Token": csrf }, body: body.toString() })
              .then(function (r) { if (status) { status.textContent = r.ok ? "草稿已保存 " + new Date().toLocaleTimeString("zh-CN") : "草稿未能保存（" + r.status + "）"; } })
              .catch(function () { if (status) { status.textContent = "草稿未能保存：本机程序没有响应"; } });
          }
          function later() { if (timer) { clearTimeout(timer); } timer = setTimeout(save, 400); }
          form.addEventListener("compositionstart", function () { composing = true; });
          form.addEventListener("compositionend", function () { composing = false; later(); });
          form.addEventListener("input", function (e) { if (!e.isComposing && !composing) { later(); } });
          form.addEventListener("change", later);
          form.addEventListener("keydown", function (e) {
            if (e.key === "Enter" && (e.isComposing || composing || e.keyCode === 229)) { e.preventDefault(); }
          });
          form.addEventListener("submit", function (e) {
            if (sent) { e.preventDefault(); return; }
            sent = true;
            if (timer) { clearTimeout(timer); timer = null; }
            form.querySelectorAll("button[type=submit]").forEach(function (b) { b.disabled = true; b.textContent = "正在保存…"; });
          });
          var first = form.querySelector(".has-error input, .has-error select, .has-error textarea");
          if (first) { first.focus(); }
        })();
        """#
}

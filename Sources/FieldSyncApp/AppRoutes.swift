import FieldSyncCore
import FieldSyncReplica
import FieldSyncWeb
import Foundation
import HTTPTypes
import Hummingbird
import Logging

// MARK: - AppRoutes

/// Every address of the app. GET never changes anything; every POST comes from the app's own
/// pages (same origin) with the session's CSRF secret.
enum AppRoutes {
    typealias Context = AppServer.Context

    static func add(_ router: Router<Context>, _ state: AppState, _ logger: Logger) {
        let pages = AppPages(state: state)
        func get(_ path: RouterPath, _ h: @escaping @Sendable (Request, Context, AppSession) async throws -> Response) {
            router.get(path) { request, context in
                await respond(request, state, logger) { request in try await h(request, context, try AppRequest.session(request, state)) }
            }
        }
        func post(_ path: RouterPath, _ h: @escaping @Sendable (Request, Context, AppSession, WebForm) async throws -> Response) {
            router.post(path) { request, context in
                await respond(request, state, logger) { request in
                    var request = request
                    let (s, form) = try await AppRequest.form(&request, state)
                    return try await h(request, context, s, form)
                }
            }
        }
        router.get("/assets/app.css") { request, _ in
            await respond(request, state, logger, cache: true) { _ in WebHeaders.asset(AppLayout.stylesheet, type: "text/css; charset=utf-8") }
        }
        router.get("/assets/app.js") { request, _ in
            await respond(request, state, logger, cache: true) { _ in WebHeaders.asset(AppLayout.script, type: "text/javascript; charset=utf-8") }
        }
        // Signing in: the one-time link shows a button; pressing it (a POST) starts the session.
        router.get("/open") { request, _ in await respond(request, state, logger) { try pages.openPage($0) } }
        router.post("/open") { request, _ in await respond(request, state, logger) { try await pages.open($0) } }
        post("/close") { _, _, s, _ in
            try state.with { try $0.endAppSession(s.token) }
            var r = WebHeaders.html(AppLayout.document("已退出", "<main class=\"narrow\"><h1 id=\"closed\">已退出</h1><p>要再次打开，请在命令行运行 <code>fieldsync app</code>，打开它显示的链接。</p></main>"))
            r.headers[values: .setCookie].append(WebCookie.set(AppRequest.cookie, "", path: "/", maxAge: 0, secure: false))
            return r
        }

        get("/") { r, _, s in try pages.home(r, s) }
        get("/records/:kind") { r, c, s in try pages.list(r, try kind(c), s) }
        get("/records/:kind/export.csv") { r, c, s in try pages.exportCSV(r, try kind(c), s) }
        get("/records/:kind/new") { r, c, s in try pages.newForm(r, try kind(c), s) }
        post("/records/:kind/new") { _, c, s, f in try pages.create(try kind(c), s, f) }
        get("/record/:id") { r, c, s in try pages.record(r, try AppRequest.parameter(c, "id"), s) }
        get("/record/:id/edit") { r, c, s in try pages.editForm(r, try AppRequest.parameter(c, "id"), s) }
        post("/record/:id/edit") { _, c, s, f in try pages.update(try AppRequest.parameter(c, "id"), s, f) }
        post("/record/:id/delete") { _, c, s, f in try pages.setDeleted(try AppRequest.parameter(c, "id"), true, s, f) }
        post("/record/:id/undelete") { _, c, s, f in try pages.setDeleted(try AppRequest.parameter(c, "id"), false, s, f) }
        post("/record/:id/history/fetch") { _, c, s, f in try await pages.fetchHistory(try AppRequest.parameter(c, "id"), s, f) }
        post("/drafts/:key") { _, c, s, f in try pages.saveDraft(try AppRequest.parameter(c, "key"), s, f) }
        post("/drafts/:key/discard") { _, c, s, f in try pages.discardDraft(try AppRequest.parameter(c, "key"), s, f) }
        get("/conflicts") { r, _, s in try pages.conflicts(r, s) }
        get("/conflicts/:row/:field") { _, c, s in
            try pages.conflict(row: try AppRequest.parameter(c, "row"), field: try AppRequest.parameter(c, "field"), s)
        }
        post("/conflicts/:row/:field/resolve") { _, c, s, f in
            try pages.resolve(row: try AppRequest.parameter(c, "row"), field: try AppRequest.parameter(c, "field"), s, f)
        }
        get("/sync") { r, _, s in try pages.syncPage(r, s) }
        post("/sync") { _, _, s, _ in try pages.startSync(s) }
        get("/files") { r, _, s in try pages.files(r, s) }
        get("/files/export.bundle") { _, _, s in try pages.exportBundle(s) }
        /// A file from a page's file input: multipart/form-data, the CSRF secret one of its parts
        /// (the handler checks it once the body is read).
        func upload(_ path: RouterPath, _ h: @escaping @Sendable (inout Request, AppSession) async throws -> Response) {
            router.post(path) { request, _ in
                await respond(request, state, logger) { request in
                    try WebGuard.checkOrigin(request, secure: false)
                    let s = try AppRequest.session(request, state)
                    var request = request
                    return try await h(&request, s)
                }
            }
        }
        upload("/files/import") { r, s in try await pages.importBundle(&r, s) }
        upload("/files/csv") { r, s in try await pages.previewCSV(&r, s) }
        post("/files/csv/apply") { _, _, s, f in try pages.applyCSV(s, f) }
        get("/**") { _, _, _ in throw WebPageError(404, "页面不存在", "工作台没有这个页面 (the app has no page at this address)") }
    }

    static func kind(_ c: Context) throws -> RecordKind {
        let k = try AppRequest.parameter(c, "kind")
        guard let kind = RecordKind(rawValue: k), kind != .region else {
            throw WebPageError(404, "没有这种记录", "工作台列出走访、纠纷、项目、农户和干部，没有“\(k.prefix(40))” (no such kind)")
        }
        return kind
    }

    /// Runs a handler: the Host checked first, every failure turned into a Chinese page (never a
    /// crash), the security headers on whatever comes back.
    static func respond(_ request: Request, _ state: AppState, _ logger: Logger, cache: Bool = false,
                        _ body: (Request) async throws -> Response) async -> Response {
        var response: Response
        do {
            try AppRequest.checkHost(request, port: state.port)
            response = try await body(request)
        } catch is AppSignInRequired {
            response = WebHeaders.html(AppPages.signInNeeded(), status: .unauthorized)
        } catch {
            let e: WebPageError
            switch error {
            case let x as WebPageError: e = x
            case ReplicaError.notFound(let what): e = WebPageError(404, "找不到", "没有这条记录或这个冲突（\(what)）")
            case ReplicaError.invalidInput(let x): e = WebPageError(422, "输入有误", x.description)
            case ReplicaError.wrongState(let x): e = WebPageError(409, "记录状态不允许这样做", x)
            default:
                logger.error("app: \(request.method) \(request.uri.path): \(error)")
                e = WebPageError(500, "本机程序出错", "\(error)")
            }
            response = WebHeaders.html(AppPages.errorPage(e), status: .init(code: e.status))
        }
        WebHeaders.secure(&response, policy: WebHeaders.ownScriptPolicy, cache: cache)
        return response
    }
}

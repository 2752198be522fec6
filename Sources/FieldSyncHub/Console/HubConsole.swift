import FieldSyncWeb
import FieldSyncCore
import FieldSyncReplica
import Foundation
import HTTPTypes
import Hummingbird
import Logging

// MARK: - HubConsole

/// The web console for supervisors, served by the hub under `/console` (docs/console.md).
///
/// Server-rendered HTML in Chinese, no script, no outside assets. A supervisor signs in with the
/// account `fieldsync-hub supervisor add` made; the session lives in an HttpOnly, SameSite=Strict
/// cookie and on the hub (signing out ends it there); every form that changes something carries
/// the session's CSRF secret; every page and action is limited to the supervisor's region scope
/// by the store, on the server.
public enum HubConsole {
    typealias Context = HubRequestContext
    typealias Handler = @Sendable (inout Request, Context) async throws -> Response

    static func addRoutes(_ router: Router<HubRequestContext>, store: any HubStore, signIn: SignIn, configuration c: ConsoleConfiguration, logger: Logger) {
        let pages = ConsolePages(store: store, signIn: signIn, configuration: c)
        func get(_ path: RouterPath, _ h: @escaping @Sendable (Request, Context, Session) async throws -> HTML) {
            router.get(path) { request, context in
                await respond(request, c, logger, store: store) { request in
                    let session = try await signedIn(request, store)
                    return htmlResponse(try await h(request, context, session))
                }
            }
        }
        func post(_ path: RouterPath, _ h: @escaping @Sendable (Request, Context, Session, ConsoleForm) async throws -> Response) {
            router.post(path) { request, context in
                await respond(request, c, logger, store: store) { request in
                    try ConsoleGuard.checkOrigin(request, secure: c.secureCookies)
                    let session = try await signedIn(request, store)
                    var request = request
                    let form = try await ConsoleForm.read(&request)
                    try ConsoleGuard.checkCSRF(form, session)
                    return try await h(request, context, session, form)
                }
            }
        }

        router.get("/console/assets/console.css") { _, _ in
            var r = Response(status: .ok, headers: [.contentType: "text/css; charset=utf-8"],
                             body: ResponseBody(byteBuffer: ByteBuffer(string: ConsoleLayout.stylesheet)))
            ConsoleHeaders.secure(&r, cache: true)
            return r
        }
        router.get("/console/login") { request, _ in await respond(request, c, logger, store: store) { try await pages.loginForm($0) } }
        router.post("/console/login") { request, context in
            await respond(request, c, logger, store: store) { try await pages.signIn($0, address: context.clientAddress) }
        }
        post("/console/logout") { _, _, session, _ in
            try await store.logout(token: session.token)
            var r = redirect("/console/login?reason=ended")
            r.headers[values: .setCookie].append(ConsoleCookie.clear(ConsoleCookie.session, secure: c.secureCookies))
            return r
        }
        get("/console") { r, _, s in try await pages.overview(r, s) }
        get("/console/records") { r, _, s in try await pages.records(r, s) }
        get("/console/records/:id") { r, ctx, s in try await pages.record(r, try parameter(ctx, "id"), s) }
        get("/console/conflicts") { r, _, s in try await pages.conflicts(r, s) }
        get("/console/conflicts/:row/:field") { _, ctx, s in
            try await pages.conflict(row: try parameter(ctx, "row"), field: try parameter(ctx, "field"), s)
        }
        post("/console/conflicts/:row/:field/resolve") { _, ctx, s, form in
            try await pages.resolve(row: try parameter(ctx, "row"), field: try parameter(ctx, "field"), s, form)
        }
        get("/console/devices") { r, _, s in try await pages.devices(r, s) }
        get("/console/reports") { r, _, s in try await pages.reports(r, s) }
        // Any other console address: a page saying so (after sign-in, so it reveals nothing).
        get("/console/**") { _, _, _ in throw ConsolePageError(404, "页面不存在", "the console has no page at this address") }
        router.get("/console/logout") { _, _ in redirect("/console") }
        router.get("/console/reports/:file") { request, context in
            await respond(request, c, logger, store: store) { request in
                let session = try await signedIn(request, store)
                return try await pages.reportCSV(request, file: try parameter(context, "file"), session)
            }
        }
    }

    /// The signed-in supervisor's session, from the cookie.
    static func signedIn(_ request: Request, _ store: any HubStore) async throws -> Session {
        guard let token = ConsoleCookie.value(request, ConsoleCookie.session), token.hasPrefix("fss_") else {
            throw ConsoleSignInRequired(reason: "required")
        }
        do { return try await store.session(token: token) } catch let f as HubFailure where f.status == 401 {
            throw ConsoleSignInRequired(reason: f.kind == .sessionExpired ? "expired" : "ended")
        }
    }

    static func parameter(_ context: Context, _ name: String) throws -> String {
        guard let raw = context.parameters.get(name), let v = ConsoleURL.decode(raw, plusIsSpace: false), (1...200).contains(v.utf8.count) else {
            throw ConsolePageError(404, "页面不存在", "the address names nothing here")
        }
        return v
    }

    // MARK: Responses

    static func htmlResponse(_ html: HTML, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "text/html; charset=utf-8"], body: ResponseBody(byteBuffer: ByteBuffer(string: html.markup)))
    }

    /// 303 See Other: after a form, the browser asks for the next page with GET.
    static func redirect(_ location: String) -> Response {
        Response(status: .seeOther, headers: [.location: location])
    }

    /// Runs a console handler and turns every failure into a page (never JSON, never a crash),
    /// adding the security headers to whatever comes back.
    static func respond(_ request: Request, _ c: ConsoleConfiguration, _ logger: Logger, store: (any HubStore)? = nil,
                        _ body: (Request) async throws -> Response) async -> Response {
        var response: Response
        do {
            response = try await body(request)
        } catch let e as ConsoleSignInRequired {
            response = redirect("/console/login?reason=\(e.reason)")
            if e.reason != "required" {
                response.headers[values: .setCookie].append(ConsoleCookie.clear(ConsoleCookie.session, secure: c.secureCookies))
            }
        } catch {
            let e = pageError(error, request, logger)
            // With the navigation when signed in (a refusal of a form sent without the token still
            // knows who is asking; an expired session was handled above).
            var session: Session?
            if let store { session = try? await signedIn(request, store) }
            response = htmlResponse(ConsoleLayout.errorPage(e, session: session), status: .init(code: e.status))
            if e.status == 503 { response.headers[.retryAfter] = "5" }
        }
        ConsoleHeaders.secure(&response)
        return response
    }

    /// A page for any error: the same typed refusal the JSON API sends (``HubMiddleware/failure(_:_:)``),
    /// titled in Chinese by its kind.
    static func pageError(_ error: any Error, _ request: Request, _ logger: Logger) -> ConsolePageError {
        if let e = error as? ConsolePageError { return e }
        let f = HubMiddleware.failure(error, request)
        let title: String
        switch f.kind {
        case .outOfScope: title = "不在您的管辖范围内"
        case .notFound: title = "找不到"
        case .invalid, .badParameter: title = "输入有误"
        case .conflict: title = "记录状态已变化"
        case .unavailable:
            logger.error("console: store failure on \(request.method) \(request.uri.path): \(error)")
            title = "同步中心暂时无法完成请求"
        case .internalError:
            logger.error("console: unexpected failure on \(request.method) \(request.uri.path): \(error)")
            title = "内部错误"
        default: title = f.status == 403 ? "无权访问" : "请求未能完成"
        }
        return ConsolePageError(f.status, title, f.message)
    }
}

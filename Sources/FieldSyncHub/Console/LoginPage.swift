import FieldSyncWeb
import FieldSyncCore
import Foundation
import HTTPTypes
import Hummingbird

// MARK: - ConsolePages

/// The console's pages; each reads through the store with the signed-in supervisor, so the store
/// applies the region scope to everything shown.
struct ConsolePages: Sendable {
    let store: any HubStore
    let signIn: SignIn
    let configuration: ConsoleConfiguration

    // MARK: Signing in and out

    static let reasons = [
        "expired": "会话已过期，请重新登录。",
        "ended": "您已退出登录（或会话已被结束）。",
        "required": "请先登录。",
    ]

    /// The sign-in form. A pre-session cookie holds a random value; the form carries its
    /// signature, so a sign-in only counts when it comes from a form this hub served.
    func loginForm(_ request: Request, error: String? = nil, name: String = "", status: HTTPResponse.Status = .ok) async throws -> Response {
        if error == nil, let token = ConsoleCookie.value(request, ConsoleCookie.session), token.hasPrefix("fss_"),
           (try? await store.session(token: token)) != nil {
            return HubConsole.redirect("/console")
        }
        let nonce = ConsoleCookie.value(request, ConsoleCookie.login).flatMap { $0.utf8.count == 32 ? $0 : nil } ?? Hex.random(bytes: 16)
        let reason = request.uri.queryParameters["reason"].flatMap { Self.reasons[String($0)] }
        var messages: [HTML] = []
        if let reason, error == nil { messages.append(ConsoleLayout.notice("info", "\(reason)", id: "login-reason")) }
        if let error { messages.append(ConsoleLayout.notice("error", "\(error)", id: "login-error")) }
        let body: HTML = """
            <main class="narrow">
            <h1>FieldSync 同步中心 · 督导登录</h1>
            \(messages)
            <form method="post" action="/console/login" class="login-box">
              <input type="hidden" name="login_csrf" value="\(ConsoleGuard.loginToken(nonce: nonce, key: configuration.loginKey))">
              <label for="name">督导账号</label>
              <input type="text" id="name" name="name" value="\(name)" autocomplete="username" required autofocus>
              <label for="password">密码</label>
              <input type="password" id="password" name="password" autocomplete="current-password" required>
              <button type="submit" class="primary" id="login">登录</button>
            </form>
            <p class="muted">账号由同步中心管理员用 <code>fieldsync-hub supervisor add</code> 创建；只能查看和处理自己管辖范围内的记录。</p>
            </main>
            """
        var r = HubConsole.htmlResponse(ConsoleLayout.document("登录", body), status: status)
        r.headers[values: .setCookie].append(ConsoleCookie.set(ConsoleCookie.login, nonce, maxAge: 3600, secure: configuration.secureCookies))
        return r
    }

    func signIn(_ request: Request, address: String?) async throws -> Response {
        try ConsoleGuard.checkOrigin(request, secure: configuration.secureCookies)
        var request = request
        let form = try await ConsoleForm.read(&request)
        guard let nonce = ConsoleCookie.value(request, ConsoleCookie.login), let sent = form["login_csrf"],
              Hex.equalInConstantTime(sent, ConsoleGuard.loginToken(nonce: nonce, key: configuration.loginKey))
        else {
            // Cookies off, a form from before the hub restarted, or a form from another site.
            return try await loginForm(request, error: "登录表单已失效，请重新输入（login form expired or not from this hub）", status: .forbidden)
        }
        let name = form["name"] ?? "", password = form["password"] ?? ""
        guard !name.isEmpty, !password.isEmpty else {
            return try await loginForm(request, error: "请输入账号和密码", name: name, status: .unprocessableContent)
        }
        let session: Session
        do { session = try await signIn(name: name, password: password, address: address) } catch let f as HubFailure where f.status == 401 {
            return try await loginForm(request, error: "账号或密码错误", name: name, status: .unauthorized)
        } catch let f as HubFailure where f.status == 429 || f.kind == .locked {
            var r = try await loginForm(request, error: String(f.message.prefix { $0 != "(" }).trimmingCharacters(in: .whitespaces), name: name,
                                        status: .init(code: f.status))
            if let s = f.retryAfter { r.headers[.retryAfter] = String(s) }
            return r
        }
        // A session this browser still held ends now: one browser, one session.
        if let old = ConsoleCookie.value(request, ConsoleCookie.session), old.hasPrefix("fss_") { try? await store.logout(token: old) }
        var r = HubConsole.redirect("/console")
        let maxAge = (session.expires - store.now()) / 1000
        r.headers[values: .setCookie].append(ConsoleCookie.set(ConsoleCookie.session, session.token, maxAge: maxAge, secure: configuration.secureCookies))
        r.headers[values: .setCookie].append(ConsoleCookie.clear(ConsoleCookie.login, secure: configuration.secureCookies))
        return r
    }
}

import FieldSyncCore
import FieldSyncTrust
import Foundation
import HTTPTypes
import Hummingbird

// MARK: - ConsoleConfiguration

/// How the web console is served.
public struct ConsoleConfiguration: Sendable {
    /// Mark cookies `Secure` (the hub serves HTTPS).
    public var secureCookies: Bool
    /// Signs the login form's token; made afresh each time the hub starts (an open login form
    /// from before a restart is refused politely and shown again).
    let loginKey: [UInt8]

    public init(secureCookies: Bool = false) {
        self.secureCookies = secureCookies
        var g = SystemRandomNumberGenerator()
        loginKey = (0..<32).map { _ in UInt8.random(in: 0...255, using: &g) }
    }
}

// MARK: - Security headers

enum ConsoleHeaders {
    static let xFrameOptions = HTTPField.Name("X-Frame-Options")!
    static let referrerPolicy = HTTPField.Name("Referrer-Policy")!
    static let secFetchSite = HTTPField.Name("Sec-Fetch-Site")!
    static let coop = HTTPField.Name("Cross-Origin-Opener-Policy")!

    /// No script at all, styles only from the console's own stylesheet, forms only to itself,
    /// never inside a frame.
    static let policy = "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

    /// Adds the headers every console response carries.
    static func secure(_ r: inout Response, cache: Bool = false) {
        r.headers[.contentSecurityPolicy] = policy
        r.headers[xFrameOptions] = "DENY"
        r.headers[.xContentTypeOptions] = "nosniff"
        r.headers[referrerPolicy] = "same-origin"
        r.headers[coop] = "same-origin"
        // Pages show records: neither the browser nor a proxy keeps them (the back button after
        // signing out must not show them either).
        r.headers[.cacheControl] = cache ? "public, max-age=3600" : "no-store"
    }
}

// MARK: - Cookies

enum ConsoleCookie {
    /// The session token (`fss_…`).
    static let session = "fs_session"
    /// A random value before signing in; the login form carries its signature (login CSRF).
    static let login = "fs_login"

    /// The value of cookie `name`, when it is made only of the characters our tokens use.
    static func value(_ request: Request, _ name: String) -> String? {
        for header in request.headers[values: .cookie] {
            for part in header.split(separator: ";") {
                let kv = part.drop { $0 == " " }.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                guard kv.count == 2, kv[0] == name else { continue }
                let v = kv[1]
                guard (1...100).contains(v.utf8.count),
                      v.utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x7A).contains($0) || $0 == UInt8(ascii: "_") })
                else { return nil }
                return String(v)
            }
        }
        return nil
    }

    /// `Set-Cookie` for one of the console's cookies: only for /console, never readable by script,
    /// never sent with a request another site starts.
    static func set(_ name: String, _ value: String, maxAge: Int64, secure: Bool) -> String {
        "\(name)=\(value); Path=/console; Max-Age=\(max(0, maxAge)); HttpOnly; SameSite=Strict" + (secure ? "; Secure" : "")
    }

    static func clear(_ name: String, secure: Bool) -> String { set(name, "", maxAge: 0, secure: secure) }
}

// MARK: - Forms

/// A submitted form (`application/x-www-form-urlencoded`), strictly decoded.
struct ConsoleForm {
    var fields: [(String, String)] = []

    subscript(_ name: String) -> String? { fields.first { $0.0 == name }?.1 }

    /// At most 2 MiB: a new value for a long note may be long.
    static let maxBytes = 2 << 20

    static func read(_ request: inout Request) async throws -> ConsoleForm {
        let type = request.headers[.contentType]?.lowercased() ?? ""
        guard type.hasPrefix("application/x-www-form-urlencoded") else {
            throw ConsolePageError(415, "表单格式不对", "expected an HTML form (application/x-www-form-urlencoded), got \(type.isEmpty ? "no Content-Type" : String(type.prefix(60)))")
        }
        let buffer: ByteBuffer
        do { buffer = try await request.collectBody(upTo: maxBytes) } catch {
            throw ConsolePageError(413, "提交的内容太长", "the form is larger than \(maxBytes) bytes")
        }
        return try parse(String(decoding: buffer.readableBytesView, as: UTF8.self))
    }

    static func parse(_ body: String) throws -> ConsoleForm {
        var form = ConsoleForm()
        for pair in body.split(separator: "&") where !pair.isEmpty {
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let k = ConsoleURL.decode(kv[0], plusIsSpace: true), let v = ConsoleURL.decode(kv.count == 2 ? kv[1] : "", plusIsSpace: true) else {
                throw ConsolePageError(400, "表单内容无法读取", "a form field is not well-formed percent-encoded UTF-8")
            }
            form.fields.append((k, v))
        }
        return form
    }
}

// MARK: - Request checks

enum ConsoleGuard {
    /// The login form's token: a signature of the pre-session cookie with the hub's key, so only
    /// a page this hub served can sign in (an attacker cannot make a victim's browser sign in to
    /// the attacker's account).
    static func loginToken(nonce: String, key: [UInt8]) -> String {
        Hex.encode(SecretHash.hmac(key: key, message: Array("fieldsync-console-login:\(nonce)".utf8)))
    }

    /// Refuses a state-changing request another site started: `Sec-Fetch-Site`, then `Origin`,
    /// then `Referer`, when the browser sent them, must name this hub.
    static func checkOrigin(_ request: Request, secure: Bool) throws {
        if let site = request.headers[ConsoleHeaders.secFetchSite], site != "same-origin", site != "none" {
            throw ConsolePageError(403, "请求被拒绝", "the form was sent from another site (Sec-Fetch-Site: \(site.prefix(40)))")
        }
        guard let host = request.head.authority else {
            throw ConsolePageError(400, "请求被拒绝", "the request names no host")
        }
        let own = (secure ? "https://" : "http://") + host
        if let origin = request.headers[.origin] {
            guard origin == own else {
                throw ConsolePageError(403, "请求被拒绝", "the form was sent from another origin (\(origin.prefix(80))), not \(own)")
            }
        } else if let referer = request.headers[.referer] {
            guard referer == own || referer.hasPrefix(own + "/") else {
                throw ConsolePageError(403, "请求被拒绝", "the form was sent from another page (\(referer.prefix(80)))")
            }
        }
    }

    /// The session's CSRF secret must be in the form, compared in constant time.
    static func checkCSRF(_ form: ConsoleForm, _ session: Session) throws {
        guard let sent = form["csrf"], !sent.isEmpty else {
            throw ConsolePageError(403, "请求被拒绝：缺少安全令牌", "the form carries no CSRF token; reload the page and try again")
        }
        guard Hex.equalInConstantTime(sent, session.csrf) else {
            throw ConsolePageError(403, "请求被拒绝：安全令牌不符", "the form's CSRF token does not belong to this session; reload the page and try again")
        }
    }
}

// MARK: - ConsolePageError

/// A refusal the console shows as a page (in Chinese, with the precise reason below).
struct ConsolePageError: Error {
    let status: Int
    let title: String
    let detail: String

    init(_ status: Int, _ title: String, _ detail: String) {
        self.status = status
        self.title = title
        self.detail = detail
    }
}

/// Not signed in (or the session ended): back to the sign-in page, saying why.
struct ConsoleSignInRequired: Error {
    /// `expired`, `required` or `ended`
    let reason: String
}

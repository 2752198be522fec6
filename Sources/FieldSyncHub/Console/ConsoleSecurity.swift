import FieldSyncCore
import FieldSyncTrust
import Foundation
import HTTPTypes
import FieldSyncWeb
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

// MARK: - Shared pieces (FieldSyncWeb)

typealias ConsoleHeaders = WebHeaders
typealias ConsoleForm = WebForm
typealias ConsoleURL = WebURL
typealias ConsolePageError = WebPageError

// MARK: - Cookies

enum ConsoleCookie {
    /// The session token (`fss_…`).
    static let session = "fs_session"
    /// A random value before signing in; the login form carries its signature (login CSRF).
    static let login = "fs_login"

    static func value(_ request: Request, _ name: String) -> String? { WebCookie.value(request, name) }

    /// `Set-Cookie` for one of the console's cookies: only for /console, never readable by script,
    /// never sent with a request another site starts.
    static func set(_ name: String, _ value: String, maxAge: Int64, secure: Bool) -> String {
        WebCookie.set(name, value, path: "/console", maxAge: maxAge, secure: secure)
    }

    static func clear(_ name: String, secure: Bool) -> String { set(name, "", maxAge: 0, secure: secure) }
}

// MARK: - Request checks

enum ConsoleGuard {
    /// The login form's token: a signature of the pre-session cookie with the hub's key, so only
    /// a page this hub served can sign in (an attacker cannot make a victim's browser sign in to
    /// the attacker's account).
    static func loginToken(nonce: String, key: [UInt8]) -> String {
        Hex.encode(SecretHash.hmac(key: key, message: Array("fieldsync-console-login:\(nonce)".utf8)))
    }

    static func checkOrigin(_ request: Request, secure: Bool) throws { try WebGuard.checkOrigin(request, secure: secure) }

    /// The session's CSRF secret must be in the form, compared in constant time.
    static func checkCSRF(_ form: ConsoleForm, _ session: Session) throws {
        try WebGuard.checkCSRF(sent: form["csrf"], expected: session.csrf)
    }
}

/// Not signed in (or the session ended): back to the sign-in page, saying why.
struct ConsoleSignInRequired: Error {
    /// `expired`, `required` or `ended`
    let reason: String
}

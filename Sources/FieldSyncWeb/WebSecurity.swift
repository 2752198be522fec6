import FieldSyncCore
import FieldSyncTrust
import Foundation
import HTTPTypes
import Hummingbird

// The pieces of a safe web page that the hub's console and the laptop's app share: security
// headers, cookies, strictly decoded forms, the cross-site check and refusals shown as pages.

// MARK: - Security headers

public enum WebHeaders {
    public static let xFrameOptions = HTTPField.Name("X-Frame-Options")!
    public static let referrerPolicy = HTTPField.Name("Referrer-Policy")!
    public static let secFetchSite = HTTPField.Name("Sec-Fetch-Site")!
    public static let coop = HTTPField.Name("Cross-Origin-Opener-Policy")!
    public static let corp = HTTPField.Name("Cross-Origin-Resource-Policy")!

    /// No script at all, styles only from the site's own stylesheet, forms only to itself,
    /// never inside a frame.
    public static let noScriptPolicy = "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    /// The same, with scripts from the site's own files only (never inline, never eval) and
    /// requests back to itself (drafts saved as people type).
    public static let ownScriptPolicy = "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

    /// Adds the headers every page carries.
    public static func secure(_ r: inout Response, policy: String = noScriptPolicy, cache: Bool = false) {
        r.headers[.contentSecurityPolicy] = policy
        r.headers[xFrameOptions] = "DENY"
        r.headers[.xContentTypeOptions] = "nosniff"
        r.headers[referrerPolicy] = "same-origin"
        r.headers[coop] = "same-origin"
        r.headers[corp] = "same-origin"
        // Pages show records: neither the browser nor a proxy keeps them (the back button after
        // signing out must not show them either).
        r.headers[.cacheControl] = cache ? "public, max-age=3600" : "no-store"
    }

    public static func html(_ html: HTML, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "text/html; charset=utf-8"], body: ResponseBody(byteBuffer: ByteBuffer(string: html.markup)))
    }

    /// 303 See Other: after a form, the browser asks for the next page with GET.
    public static func redirect(_ location: String) -> Response {
        Response(status: .seeOther, headers: [.location: location])
    }

    public static func asset(_ text: String, type: String) -> Response {
        Response(status: .ok, headers: [.contentType: type], body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }
}

// MARK: - Cookies

public enum WebCookie {
    /// The value of cookie `name`, when it is made only of the characters our tokens use.
    public static func value(_ request: Request, _ name: String) -> String? {
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

    /// `Set-Cookie` for a cookie under `path`: never readable by script, never sent with a
    /// request another site starts.
    public static func set(_ name: String, _ value: String, path: String, maxAge: Int64?, secure: Bool) -> String {
        "\(name)=\(value); Path=\(path)" + (maxAge.map { "; Max-Age=\(max(0, $0))" } ?? "") + "; HttpOnly; SameSite=Strict" + (secure ? "; Secure" : "")
    }
}

// MARK: - Forms

/// A submitted form (`application/x-www-form-urlencoded`), strictly decoded.
public struct WebForm: Sendable {
    public var fields: [(String, String)] = []

    public init(fields: [(String, String)] = []) { self.fields = fields }

    public subscript(_ name: String) -> String? { fields.first { $0.0 == name }?.1 }

    /// Every value sent under `name` (checkboxes).
    public func all(_ name: String) -> [String] { fields.filter { $0.0 == name }.map(\.1) }

    /// At most 2 MiB: a new value for a long note may be long.
    public static let maxBytes = 2 << 20

    public static func read(_ request: inout Request, maxBytes: Int = maxBytes) async throws -> WebForm {
        let type = request.headers[.contentType]?.lowercased() ?? ""
        guard type.hasPrefix("application/x-www-form-urlencoded") else {
            throw WebPageError(415, "表单格式不对", "请从页面上的表单提交 (expected an HTML form, application/x-www-form-urlencoded, got \(type.isEmpty ? "no Content-Type" : String(type.prefix(60))))")
        }
        let buffer: ByteBuffer
        do { buffer = try await request.collectBody(upTo: maxBytes) } catch {
            throw WebPageError(413, "提交的内容太长", "表单超过 \(maxBytes) 字节 (the form is larger than \(maxBytes) bytes)")
        }
        return try parse(String(decoding: buffer.readableBytesView, as: UTF8.self))
    }

    public static func parse(_ body: String) throws -> WebForm {
        var form = WebForm()
        for pair in body.split(separator: "&") where !pair.isEmpty {
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let k = WebURL.decode(kv[0], plusIsSpace: true), let v = WebURL.decode(kv.count == 2 ? kv[1] : "", plusIsSpace: true) else {
                throw WebPageError(400, "表单内容无法读取", "表单内容不是有效的 UTF-8 (a form field is not well-formed percent-encoded UTF-8)")
            }
            form.fields.append((k, v))
        }
        return form
    }
}

// MARK: - Request checks

public enum WebGuard {
    /// Refuses a state-changing request another site started: `Sec-Fetch-Site`, then `Origin`,
    /// then `Referer`, when the browser sent them, must name this site.
    public static func checkOrigin(_ request: Request, secure: Bool) throws {
        if let site = request.headers[WebHeaders.secFetchSite], site != "same-origin", site != "none" {
            throw WebPageError(403, "请求被拒绝", "这个表单来自别的网站 (the form was sent from another site, Sec-Fetch-Site: \(site.prefix(40)))")
        }
        guard let host = request.head.authority else {
            throw WebPageError(400, "请求被拒绝", "请求没有写明主机 (the request names no host)")
        }
        let own = (secure ? "https://" : "http://") + host
        if let origin = request.headers[.origin] {
            guard origin == own else {
                throw WebPageError(403, "请求被拒绝", "这个表单来自别的网站 \(origin.prefix(80))，不是 \(own) (the form was sent from another origin)")
            }
        } else if let referer = request.headers[.referer] {
            guard referer == own || referer.hasPrefix(own + "/") else {
                throw WebPageError(403, "请求被拒绝", "这个表单来自别的网页 (the form was sent from another page: \(referer.prefix(80)))")
            }
        }
    }

    /// The session's CSRF secret must be in the form (or the `X-CSRF-Token` header of a script's
    /// request), compared in constant time.
    public static func checkCSRF(sent: String?, expected: String) throws {
        guard let sent, !sent.isEmpty else {
            throw WebPageError(403, "请求被拒绝：缺少安全令牌", "表单缺少安全令牌，请刷新页面后重试 (the form carries no CSRF token; reload the page and try again)")
        }
        guard Hex.equalInConstantTime(sent, expected) else {
            throw WebPageError(403, "请求被拒绝：安全令牌不符", "表单的安全令牌与当前会话不符，请刷新页面后重试 (the form's CSRF token does not belong to this session; reload the page and try again)")
        }
    }

    public static let csrfHeader = HTTPField.Name("X-CSRF-Token")!
}

// MARK: - WebPageError

/// A refusal shown as a page (in Chinese, with the precise reason below).
public struct WebPageError: Error, Sendable {
    public let status: Int
    public let title: String
    public let detail: String

    public init(_ status: Int, _ title: String, _ detail: String) {
        self.status = status
        self.title = title
        self.detail = detail
    }
}

import FieldSyncCore
import FieldSyncReplica
import FieldSyncTrust
import FieldSyncWeb
import Foundation
import HTTPTypes
import Hummingbird
import Logging

// MARK: - AppConfiguration

/// How the cadre's app is served (docs/app.md).
public struct AppConfiguration: Sendable {
    /// The replica file the app works on.
    public var replicaPath: String
    /// The loopback port; 0 picks a free one.
    public var port: Int
    /// A session ends after this long without a request.
    public var idleMs: Int64 = 8 * 3_600_000
    /// A one-time link works this long after it is made.
    public static let linkLifetimeMs: Int64 = 10 * 60_000

    public init(replicaPath: String, port: Int) {
        self.replicaPath = replicaPath
        self.port = port
    }
}

// MARK: - AppKey

/// The per-install secret that signs the one-time links to the app: `REPLICA.app-key`, owner-only.
public enum AppKey {
    public static func path(for replica: String) -> String { replica + ".app-key" }

    /// The secret, made on first use.
    public static func load(for replica: String) throws -> [UInt8] {
        let p = path(for: replica)
        if let d = FileManager.default.contents(atPath: p), let s = String(data: d, encoding: .utf8),
           let k = Hex.decode(s.trimmingCharacters(in: .whitespacesAndNewlines)), k.count == 32 {
            return k
        }
        var g = SystemRandomNumberGenerator()
        let k = (0..<32).map { _ in UInt8.random(in: 0...255, using: &g) }
        try OwnerOnly.writeAtomically(Array((Hex.encode(k) + "\n").utf8), to: p)
        return k
    }

    /// A one-time link's token: `EXPIRY-NONCE-MAC` (the expiry in Unix ms, 16 random bytes, and
    /// an HMAC of both with the secret). It works once, before it expires.
    public static func link(key: [UInt8], now: Int64) -> String {
        let expiry = now + AppConfiguration.linkLifetimeMs
        let nonce = Hex.random(bytes: 16)
        return "\(expiry)-\(nonce)-\(mac(key, expiry, nonce))"
    }

    static func mac(_ key: [UInt8], _ expiry: Int64, _ nonce: String) -> String {
        Hex.encode(SecretHash.hmac(key: key, message: Array("fieldsync-app-link:\(expiry):\(nonce)".utf8)))
    }

    /// The nonce of a valid, unexpired token (whether it was used is the replica's to say).
    static func check(_ token: String, key: [UInt8], now: Int64) -> String? {
        let parts = token.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 3, let expiry = Int64(parts[0]), parts[1].utf8.count == 32, parts[2].utf8.count == 64,
              Hex.equalInConstantTime(String(parts[2]), mac(key, expiry, String(parts[1]))), now <= expiry
        else { return nil }
        return String(parts[1])
    }
}

// MARK: - AppState

/// What every request shares: the replica (one request at a time uses it), the secret, the port.
final class AppState: @unchecked Sendable {
    let configuration: AppConfiguration
    let key: [UInt8]
    private let lock = NSLock()
    private let replica: Replica
    let sync: SyncRunner
    /// CSV files uploaded for a preview, by token, until imported (or the app stops).
    let uploads = Mutex<[String: (kind: RecordKind, name: String, bytes: [UInt8])]>([:])
    /// The port really listened on (known once the server runs).
    private let portBox = Mutex<Int>(0)

    init(configuration: AppConfiguration) throws {
        self.configuration = configuration
        replica = try Replica.open(path: configuration.replicaPath)
        key = try AppKey.load(for: configuration.replicaPath)
        sync = SyncRunner(path: configuration.replicaPath)
    }

    var port: Int {
        get { portBox.withLock { $0 } }
        set { portBox.withLock { $0 = newValue } }
    }

    /// Runs `body` with the replica, one request at a time (SQLite calls are short).
    func with<T>(_ body: (Replica) throws -> T) throws -> T {
        lock.lock()
        defer { lock.unlock() }
        // The daemon (another process) may have taken a newer schema from the hub: forms and
        // lists follow it at once (one small read).
        _ = try? replica.refreshSchema()
        return try body(replica)
    }

    var now: Int64 { Int64(Date().timeIntervalSince1970 * 1000) }
}

import Synchronization

// MARK: - AppServer

public enum AppServer {
    public typealias Context = BasicRequestContext

    /// Builds the app on 127.0.0.1. `onRunning` gets the port and a one-time link.
    public static func application(_ configuration: AppConfiguration, logger: Logger,
                                   onRunning: @escaping @Sendable (_ port: Int, _ link: String) async -> Void = { _, _ in })
        throws -> some ApplicationProtocol
    {
        let state = try AppState(configuration: configuration)
        let router = Router(context: Context.self)
        AppRoutes.add(router, state, logger)
        return Application(
            router: router,
            configuration: ApplicationConfiguration(address: .hostname("127.0.0.1", port: configuration.port), serverName: "FieldSync-App"),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? configuration.port
                state.port = port
                await onRunning(port, "http://127.0.0.1:\(port)/open?t=" + AppKey.link(key: state.key, now: state.now))
            },
            logger: logger)
    }

    /// A fresh one-time link for the app of `replica` running on `port` (`fieldsync app --link`).
    public static func link(replica: String, port: Int) throws -> String {
        "http://127.0.0.1:\(port)/open?t=" + AppKey.link(key: try AppKey.load(for: replica), now: Int64(Date().timeIntervalSince1970 * 1000))
    }
}

// MARK: - Request plumbing

/// A signed-in request: its CSRF secret.
struct AppSession: Sendable {
    let token: String
    let csrf: String
}

/// Not signed in: the page that says how to open the app.
struct AppSignInRequired: Error {}

enum AppRequest {
    static let cookie = "fs_app"

    /// Only the addresses the app listens on may be named: a page from another site that
    /// resolves its own name to 127.0.0.1 (DNS rebinding) is refused.
    static func checkHost(_ request: Request, port: Int) throws {
        let host = request.head.authority ?? ""
        guard host == "127.0.0.1:\(port)" || host == "localhost:\(port)" else {
            throw WebPageError(403, "地址不对，请求被拒绝", "工作台只接受 http://127.0.0.1:\(port) 的访问；这个请求用的是“\(host.prefix(80))” (this app answers only to 127.0.0.1:\(port))")
        }
    }

    static func session(_ request: Request, _ state: AppState) throws -> AppSession {
        guard let token = WebCookie.value(request, cookie), token.hasPrefix("fsa_"),
              let csrf = try state.with({ try $0.appSession(token, idleMs: state.configuration.idleMs) })
        else { throw AppSignInRequired() }
        return AppSession(token: token, csrf: csrf)
    }

    /// A form that changes something: same origin, signed in, the session's CSRF secret.
    static func form(_ request: inout Request, _ state: AppState) async throws -> (AppSession, WebForm) {
        try WebGuard.checkOrigin(request, secure: false)
        let s = try session(request, state)
        let form = try await WebForm.read(&request)
        try WebGuard.checkCSRF(sent: form["csrf"] ?? request.headers[WebGuard.csrfHeader], expected: s.csrf)
        return (s, form)
    }

    static func parameter(_ context: AppServer.Context, _ name: String) throws -> String {
        guard let raw = context.parameters.get(name), let v = WebURL.decode(raw, plusIsSpace: false), (1...200).contains(v.utf8.count) else {
            throw WebPageError(404, "页面不存在", "这个地址没有对应的内容 (the address names nothing here)")
        }
        return v
    }

    static func query(_ request: Request, _ name: String) -> String? {
        request.uri.queryParameters[Substring(name)].flatMap { WebURL.decode($0, plusIsSpace: true) }.flatMap { $0.isEmpty ? nil : $0 }
    }
}

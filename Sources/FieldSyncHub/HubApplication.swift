import FieldSyncCore
import FieldSyncPresentation
import FieldSyncReplica
import Foundation
import Hummingbird
import HummingbirdTLS
import HTTPTypes
import Logging

// MARK: - Configuration

public struct HubServerConfiguration: Sendable {
    public var host: String
    public var port: Int
    /// PEM certificate chain and private key files: set both to serve HTTPS.
    public var tlsCertificate: String?
    public var tlsKey: String?

    public init(host: String = "127.0.0.1", port: Int = 8780, tlsCertificate: String? = nil, tlsKey: String? = nil) {
        self.host = host
        self.port = port
        self.tlsCertificate = tlsCertificate
        self.tlsKey = tlsKey
    }
}

// MARK: - The HTTP API (Protocol/sync.md, Protocol/openapi.yaml)

public enum HubHTTP {
    static let hubTime = HTTPField.Name(SyncProtocol.hubTimeHeader)!
    static let deviceTime = HTTPField.Name(SyncProtocol.deviceTimeHeader)!

    /// The router with every endpoint; tests drive it in process (`app.test(.router)`).
    public static func router(store: any HubStore, logger: Logger = Logger(label: "fieldsync-hub")) -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        router.add(middleware: HubMiddleware(logger: logger))

        router.get("/v1/health") { _, _ in
            json(["status": "ok", "hub": ["site": .string(store.hubSite.hex), "name": .string(store.hubName)], "hubTime": .int(now())])
        }

        router.post("/v1/enroll") { request, _ in
            var request = request
            let body = try await readJSON(&request)
            let req: EnrollRequest
            do throws(InputError) { req = try EnrollRequest(json: body) } catch { throw HubFailure(422, "invalid", error.description) }
            let resp = try await store.enroll(req)
            return json(resp.json(hubTime: now()))
        }

        router.get("/v1/device") { request, _ in
            let device = try await authenticate(request, store)
            let info = try await store.devices().first { $0.id == device.id }
            return json(["device": .string(device.id), "name": .string(device.name), "scope": .string(device.scope),
                         "pending": .int(Int64(info?.pending ?? 0)), "hub": ["site": .string(store.hubSite.hex), "name": .string(store.hubName)],
                         "hubTime": .int(now())])
        }

        router.post("/v1/changes") { request, _ in
            let device = try await authenticate(request, store)
            var request = request
            let body: JSONValue
            do { body = try await readJSON(&request) } catch let f as HubFailure {
                await store.note(device: device, deviceTime: deviceTime(request), error: "push refused: \(f.message)")
                throw f
            }
            guard case .array(let changes)? = body["changes"] else {
                throw HubFailure(422, "invalid", "a push is {\"site\": …, \"changes\": [ … ]}: \"changes\" must be an array")
            }
            guard changes.count <= SyncProtocol.maxPushChanges else {
                throw HubFailure(413, "too_large", "\(changes.count) changes in one push; at most \(SyncProtocol.maxPushChanges)")
            }
            var sites: [SiteID: String] = [:]
            if case .object(let so)? = body["sites"] {
                for (k, v) in so { if let id = SiteID(hex: k), let n = v.stringValue, n.unicodeScalars.count <= 200 { sites[id] = n } }
            }
            await store.note(device: device, deviceTime: deviceTime(request), error: nil)
            let resp = try await store.push(changes, sites: sites, from: device)
            return json(resp.json(hubTime: now()), request: request)
        }

        router.get("/v1/changes") { request, _ in
            let device = try await authenticate(request, store)
            let after = try int(request, "after", default: 0, range: 0...Int64.max)
            let limit = try int(request, "limit", default: 1000, range: 1...5000)
            let maxBytes = try int(request, "maxBytes", default: 1 << 20, range: 1024...(16 << 20))
            await store.note(device: device, deviceTime: deviceTime(request), error: nil)
            let page = try await store.pull(for: device, after: after, limit: Int(limit), maxBytes: Int(maxBytes))
            return try await pageResponse(page, store: store, request: request)
        }

        router.post("/v1/ack") { request, _ in
            let device = try await authenticate(request, store)
            var request = request
            let body = try await readJSON(&request)
            guard let cursor = body["pullCursor"]?.intValue, cursor >= 0 else {
                throw HubFailure(422, "invalid", "an acknowledgement is {\"pullCursor\": N}")
            }
            try await store.acknowledge(device: device, cursor: cursor)
            return json(["pullCursor": .int(cursor), "hubTime": .int(now())])
        }

        router.get("/v1/snapshot") { request, _ in
            let device = try await authenticate(request, store)
            let after = request.uri.queryParameters["after"].map(String.init)
            let limit = try int(request, "limit", default: 1000, range: 1...5000)
            let maxBytes = try int(request, "maxBytes", default: 1 << 20, range: 1024...(16 << 20))
            await store.note(device: device, deviceTime: deviceTime(request), error: nil)
            let page = try await store.snapshot(for: device, after: after, limit: Int(limit), maxBytes: Int(maxBytes))
            return try await pageResponse(page, store: store, request: request)
        }
        addSupervisorRoutes(router, store: store)
        return router
    }

    // MARK: Supervisors and conflicts (Protocol/conflicts.md)

    static func addSupervisorRoutes(_ router: Router<BasicRequestContext>, store: any HubStore) {
        router.post("/v1/sessions") { request, _ in
            var request = request
            let body = try await readJSON(&request)
            guard let name = body["name"]?.stringValue, let password = body["password"]?.stringValue else {
                throw HubFailure(422, "invalid", "sign in with {\"name\": …, \"password\": …}")
            }
            let s = try await store.login(name: name, password: password)
            return json(["token": .string(s.token), "expires": .string(UTCTime.iso(s.expires)), "csrf": .string(s.csrf),
                         "supervisor": ["name": .string(s.supervisor.name), "scope": .string(s.supervisor.scope)], "hubTime": .int(now())])
        }
        router.delete("/v1/sessions") { request, _ in
            let s = try await supervisor(request, store)
            try await store.logout(token: s.token)
            return json(["signedOut": true, "hubTime": .int(now())])
        }
        router.get("/v1/conflicts") { request, _ in
            let s = try await supervisor(request, store)
            let list = try await store.conflicts(for: s.supervisor, try filter(request))
            return json(.array(list.map(ConflictViews.json)), request: request)
        }
        router.get("/v1/conflicts/summary") { request, _ in
            let s = try await supervisor(request, store)
            return json(try await store.conflictSummary(for: s.supervisor, try filter(request)).json, request: request)
        }
        router.get("/v1/conflicts/:row/:field") { request, context in
            let s = try await supervisor(request, store)
            let id = try conflictID(context)
            return json(ConflictViews.json(try await store.conflictDetail(for: s.supervisor, id)), request: request)
        }
        router.post("/v1/conflicts/:row/:field/resolve") { request, context in
            let s = try await supervisor(request, store)
            let id = try conflictID(context)
            var request = request
            let body = try await readJSON(&request)
            let how: Resolution
            if let t = body["take"]?.stringValue {
                guard let dot = ChangeID(t) else { throw HubFailure(422, "invalid", "take is a change id SITE:COUNTER, got \(t.prefix(40))") }
                how = .take(dot)
            } else if let v = body["value"] {
                how = .value(v)
            } else if let m = body["method"]?.stringValue, m == "newest" || m == "oldest" {
                how = m == "newest" ? .newest : .oldest
            } else {
                throw HubFailure(422, "invalid", "resolve with {\"take\": CHANGE_ID}, {\"value\": …} or {\"method\": \"newest\"|\"oldest\"}")
            }
            let res = try await store.resolve(for: s.supervisor, id, how, note: body["note"]?.stringValue)
            return json(["change": .string(res.change?.description ?? ""), "settled": .array(res.conflictsSettled.map { .string($0) }), "hubTime": .int(now())])
        }
        router.post("/v1/conflicts/resolve") { request, _ in
            let s = try await supervisor(request, store)
            var request = request
            let body = try await readJSON(&request)
            guard let m = body["method"]?.stringValue, m == "newest" || m == "oldest" else {
                throw HubFailure(422, "invalid", "settling many conflicts takes {\"method\": \"newest\"|\"oldest\", \"filter\": {…}}")
            }
            let f = try filter(body["filter"] ?? .object(JSONObject()))
            let done = try await store.resolveAll(for: s.supervisor, f, m == "newest" ? .newest : .oldest, note: body["note"]?.stringValue)
            return json(["resolved": .int(Int64(done.count)), "changes": .array(done.compactMap { $0.change.map { .string($0.description) } }), "hubTime": .int(now())])
        }
    }

    static func supervisor(_ request: Request, _ store: any HubStore) async throws -> Session {
        guard let auth = request.headers[.authorization] else {
            throw HubFailure(401, "missing_token", "sign in first: POST /v1/sessions, then Authorization: Bearer TOKEN")
        }
        let parts = auth.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { throw HubFailure(401, "bad_session", "the Authorization header must be \"Bearer TOKEN\"") }
        if parts[1].hasPrefix("fst_") { throw HubFailure(403, "not_a_supervisor", "this is for supervisors: a device's token cannot read or settle conflicts here") }
        return try await store.session(token: String(parts[1]))
    }

    static func conflictID(_ context: BasicRequestContext) throws -> String {
        guard let row = context.parameters.get("row"), let field = context.parameters.get("field") else {
            throw HubFailure(400, "bad_parameter", "a conflict is /v1/conflicts/ROW/FIELD")
        }
        return "\(row)/\(field)"
    }

    static func filter(_ r: Request) throws -> ConflictFilter {
        var o = JSONObject()
        for key in ["kind", "village", "field", "by"] { if let v = r.uri.queryParameters[Substring(key)] { o[key] = .string(String(v)) } }
        for key in ["olderThanDays", "newerThanDays"] {
            if let v = r.uri.queryParameters[Substring(key)] {
                guard let d = Double(v) else { throw HubFailure(400, "bad_parameter", "\(key) is a number of days") }
                o[key] = .double(d)
            }
        }
        return try filter(.object(o))
    }

    static func filter(_ j: JSONValue) throws -> ConflictFilter {
        var f = ConflictFilter()
        if let k = j["kind"]?.stringValue {
            guard let kind = RecordKind(rawValue: k) else { throw HubFailure(400, "bad_parameter", "unknown kind \(k.prefix(40))") }
            f.kind = kind
        }
        f.villagePrefix = j["village"]?.stringValue
        f.field = j["field"]?.stringValue
        f.author = j["by"]?.stringValue
        func days(_ k: String) -> Int64? {
            switch j[k] {
            case .double(let d)?: return Int64(d * 86_400_000)
            case .int(let i)?: return i * 86_400_000
            default: return nil
            }
        }
        f.olderThan = days("olderThanDays")
        f.newerThan = days("newerThanDays")
        return f
    }

    /// Builds the application for `fieldsync-hub serve`.
    public static func application(store: any HubStore, configuration: HubServerConfiguration, logger: Logger,
                                   onRunning: @escaping @Sendable (Int) async -> Void) throws -> some ApplicationProtocol {
        let r = router(store: store, logger: logger)
        let config = ApplicationConfiguration(address: .hostname(configuration.host, port: configuration.port), serverName: "FieldSync-Hub")
        let port = configuration.port
        if let cert = configuration.tlsCertificate, let key = configuration.tlsKey {
            let tls = TLSConfiguration.makeServerConfiguration(
                certificateChain: try NIOSSLCertificate.fromPEMFile(cert).map { .certificate($0) },
                privateKey: .privateKey(try NIOSSLPrivateKey(file: key, format: .pem)))
            return Application(router: r, server: try .tls(.http1(), tlsConfiguration: tls), configuration: config,
                               onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? port) }, logger: logger)
        }
        return Application(router: r, server: .http1(), configuration: config,
                           onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? port) }, logger: logger)
    }

    // MARK: Helpers

    static func now() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

    static func deviceTime(_ r: Request) -> Int64? { r.headers[deviceTime].flatMap { Int64($0) } }

    static func authenticate(_ request: Request, _ store: any HubStore) async throws -> Device {
        guard let auth = request.headers[.authorization] else { throw HubFailure.missingToken }
        let parts = auth.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer", !parts[1].isEmpty, parts[1].utf8.count <= 200 else {
            throw HubFailure(401, "bad_token", "the Authorization header must be \"Bearer TOKEN\"")
        }
        return try await store.authenticate(token: String(parts[1]))
    }

    static func int(_ r: Request, _ name: String, default d: Int64, range: ClosedRange<Int64>) throws -> Int64 {
        guard let raw = r.uri.queryParameters[Substring(name)] else { return d }
        guard let v = Int64(raw), range.contains(v) else {
            throw HubFailure(400, "bad_parameter", "\(name) must be a whole number in \(range.lowerBound)…\(range.upperBound), got \"\(raw.prefix(40))\"")
        }
        return v
    }

    /// Reads the request body: at most 8 MiB as sent, gzip (Content-Encoding) up to 32 MiB
    /// decompressed, strict UTF-8 JSON.
    static func readJSON(_ request: inout Request) async throws -> JSONValue {
        let buffer: ByteBuffer
        do { buffer = try await request.collectBody(upTo: SyncProtocol.maxRequestBytes) } catch {
            throw HubFailure(413, "too_large", "the request body is larger than \(SyncProtocol.maxRequestBytes) bytes; send smaller batches")
        }
        var bytes = Array(buffer.readableBytesView)
        switch request.headers[.contentEncoding]?.lowercased() {
        case nil, "identity": break
        case "gzip":
            do { bytes = try Gzip.decompress(bytes, limit: SyncProtocol.maxDecompressedBytes) } catch let e as GzipError {
                if e.reason.contains("more than") {
                    throw HubFailure(413, "too_large", "the gzip body \(e.reason)")
                }
                throw HubFailure(400, "bad_gzip", "the gzip body cannot be read: \(e.reason)")
            }
        case let other?:
            throw HubFailure(415, "unsupported_encoding", "Content-Encoding \(other.prefix(40)) is not supported; use gzip or none")
        }
        guard !bytes.isEmpty else { throw HubFailure(400, "bad_json", "the request body is empty; a JSON object is expected") }
        do { return try JSONValue.parse(bytes: bytes) } catch {
            throw HubFailure(400, "bad_json", "the request body is not valid JSON: \(error)")
        }
    }

    static func pageResponse(_ page: ScopedPage, store: any HubStore, request: Request) async throws -> Response {
        // Name only the sites whose changes are in the page: a change's text starts {"id":"SITE:…
        var ids = Set<SiteID>()
        for t in page.texts {
            let u = t.utf8
            if u.count > 24, let id = SiteID(hex: String(decoding: u.dropFirst(7).prefix(16), as: UTF8.self)) { ids.insert(id) }
        }
        let names = try await store.siteNames().filter { ids.contains($0.key) }
        let text = ChangePage.text(changeTexts: page.texts, cursor: page.cursor, more: page.more, next: page.next, sites: names, hubTime: now())
        return bytesResponse(Array(text.utf8), status: .ok, request: request)
    }

    static func json(_ v: JSONValue, status: HTTPResponse.Status = .ok, request: Request? = nil) -> Response {
        bytesResponse(Array(v.compactText.utf8), status: status, request: request)
    }

    /// A JSON response, gzip-compressed when the client accepts it and it is worth it.
    static func bytesResponse(_ body: [UInt8], status: HTTPResponse.Status, request: Request?) -> Response {
        var headers: HTTPFields = [.contentType: "application/json; charset=utf-8"]
        var out = body
        if body.count > 1024, let ae = request?.headers[.acceptEncoding], ae.lowercased().contains("gzip") {
            out = Gzip.compress(body)
            headers[.contentEncoding] = "gzip"
            headers[.vary] = "Accept-Encoding"
        }
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: out)))
    }
}

// MARK: - Middleware

/// Stamps every response with the hub's clock, turns every error into a JSON error body with
/// the right status, and logs each request.
struct HubMiddleware: RouterMiddleware {
    typealias Context = BasicRequestContext
    let logger: Logger

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = DispatchTime.now().uptimeNanoseconds
        var response: Response
        do {
            response = try await next(request, context)
        } catch let f as HubFailure {
            response = HubHTTP.json(HubErrorBody(code: f.code, message: f.message).json, status: .init(code: f.status))
            if let s = f.retryAfter { response.headers[.retryAfter] = String(s) }
        } catch let e as ReplicaError {
            switch e {
            case .invalidInput(let ie):
                response = HubHTTP.json(HubErrorBody(code: "invalid", message: ie.description).json, status: .unprocessableContent)
            case .notFound, .ambiguous:
                response = HubHTTP.json(HubErrorBody(code: "not_found", message: e.description).json, status: .notFound)
            case .wrongState:
                response = HubHTTP.json(HubErrorBody(code: "conflict", message: e.description).json, status: .conflict)
            case .badBundle(_, let reason):
                response = HubHTTP.json(HubErrorBody(code: "invalid", message: reason).json, status: .unprocessableContent)
            default:
                logger.error("store failure on \(request.method) \(request.uri.path): \(e)")
                response = HubHTTP.json(HubErrorBody(code: "unavailable", message: "the hub's store could not complete the request (\(e)); try again shortly").json,
                                        status: .serviceUnavailable)
                response.headers[.retryAfter] = "5"
            }
        } catch let e as HTTPError {
            let message = e.status == .notFound ? "no such endpoint: \(request.method) \(request.uri.path) (see Protocol/openapi.yaml)"
                : e.status == .methodNotAllowed ? "\(request.method) is not allowed on \(request.uri.path)" : "\(e.status)"
            let code = e.status == .notFound ? "not_found" : e.status == .methodNotAllowed ? "method_not_allowed" : "http_\(e.status.code)"
            response = HubHTTP.json(HubErrorBody(code: code, message: message).json, status: e.status)
        } catch {
            logger.error("unexpected failure on \(request.method) \(request.uri.path): \(error)")
            response = HubHTTP.json(HubErrorBody(code: "internal", message: "the hub failed unexpectedly; this is a bug").json, status: .internalServerError)
        }
        response.headers[HubHTTP.hubTime] = String(HubHTTP.now())
        let ms = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
        logger.info("\(request.method) \(request.uri.path) → \(response.status.code) \(String(format: "%.1f", ms)) ms")
        return response
    }
}

import FieldSyncCore
import FieldSyncPresentation
import FieldSyncReplica
import FieldSyncTrust
import Foundation
import Hummingbird
import HummingbirdCore
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
    /// Timeouts and the per-address connection cap (docs/security.md).
    public var limits: ConnectionLimits
    /// Pulls need at least this client release (426 below it); pushes never do.
    public var minClientRelease: Int?

    public init(host: String = "127.0.0.1", port: Int = 8780, tlsCertificate: String? = nil, tlsKey: String? = nil,
                limits: ConnectionLimits = ConnectionLimits(), minClientRelease: Int? = nil) {
        self.minClientRelease = minClientRelease
        self.host = host
        self.port = port
        self.tlsCertificate = tlsCertificate
        self.tlsKey = tlsKey
        self.limits = limits
    }

    /// Serving HTTPS (both files given): cookies are Secure and responses carry HSTS.
    public var servesTLS: Bool { tlsCertificate != nil && tlsKey != nil }
}

// MARK: - The HTTP API (Protocol/sync.md, Protocol/openapi.yaml)

public enum HubHTTP {
    static let hubTime = HTTPField.Name(SyncProtocol.hubTimeHeader)!
    static let hubEpoch = HTTPField.Name(SyncProtocol.hubEpochHeader)!
    static let hubSchema = HTTPField.Name(SyncProtocol.hubSchemaHeader)!
    static let deviceTime = HTTPField.Name(SyncProtocol.deviceTimeHeader)!
    static let strictTransportSecurity = HTTPField.Name("Strict-Transport-Security")!

    /// The router with every endpoint; tests drive it in process (`app.test(.router)`).
    public static func router(store: any HubStore, logger: Logger = Logger(label: "fieldsync-hub"),
                              console: ConsoleConfiguration = ConsoleConfiguration(), metrics: HubMetrics = HubMetrics(),
                              minClientRelease: Int? = nil) -> Router<HubRequestContext> {
        let router = Router(context: HubRequestContext.self)
        // Each request logged as it arrives, tokens and cookies redacted; HubMiddleware logs how it ended.
        router.add(middleware: LogRequestsMiddleware(.info, includeHeaders: .all(), redactHeaders: [.authorization, .cookie, .setCookie]))
        router.add(middleware: HubMiddleware(logger: logger, hsts: console.secureCookies, metrics: metrics, epoch: store.epoch.header, store: store))
        let signIn = SignIn(store: store, pool: PasswordHashingPool(), logger: logger)

        // Prometheus metrics, for the holder of the metrics token only (docs/deploy.md).
        router.get("/metrics") { request, _ in
            guard metrics.tokenHash != nil else { throw HTTPError(.notFound) }
            guard metrics.allows(request.headers[.authorization]) else {
                throw HubFailure(.badToken, "/metrics takes the metrics token: Authorization: Bearer TOKEN (fieldsync-hub serve --metrics-token-file)")
            }
            let body = await metrics.scrape(store)
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                            body: ResponseBody(byteBuffer: ByteBuffer(bytes: body)))
        }

        router.get("/v1/health") { _, _ in
            json(["status": "ok", "hub": ["site": .string(store.hubSite.hex), "name": .string(store.hubName),
                                          "key": .string(Base64.encode(store.hubKey.publicKey))], "hubTime": .int(now())])
        }

        router.post("/v1/enroll") { request, _ in
            var request = request
            let body = try await readJSON(&request)
            try onlyKeys(body, ["code", "site", "siteName", "key", "proof"], "an enrolment is {\"code\": …, \"site\": …, \"siteName\": …, \"key\": …, \"proof\": …}")
            if let n = body["siteName"], n.stringValue == nil { throw HubFailure(.invalid, "siteName: expected a string, got \(n.typeName)") }
            let req: EnrollRequest
            do throws(InputError) { req = try EnrollRequest(json: body) } catch { throw HubFailure(.invalid, error.description) }
            let resp = try await store.enroll(req)
            return json(resp.json(hubTime: now()))
        }

        router.get("/v1/device") { request, _ in
            let device = try await authenticate(request, store)
            let info = try await store.devices().first { $0.id == device.id }
            return json(["device": .string(device.id), "name": .string(device.name), "scope": .string(device.scope),
                         "pending": .int(Int64(info?.pending ?? 0)),
                         "hub": ["site": .string(store.hubSite.hex), "name": .string(store.hubName), "key": .string(Base64.encode(store.hubKey.publicKey))],
                         "hubTime": .int(now())])
        }

        // The schema the hub holds (docs/operations.md §11): a laptop whose schema is older than
        // the version in the X-FieldSync-Schema header takes this before it pulls.
        router.get("/v1/schema") { request, _ in
            _ = try await authenticate(request, store)
            return json(Schema.current.document)
        }

        router.post("/v1/device/sites") { request, _ in
            let device = try await authenticate(request, store)
            var request = request
            let body = try await readJSON(&request)
            let binding: SiteBinding
            do throws(InputError) { binding = try SiteBinding(json: body) } catch { throw HubFailure(.invalid, error.description) }
            try await store.bindSite(binding, for: device)
            return json(["site": .string(binding.site.hex), "device": .string(device.id), "hubTime": .int(now())])
        }

        router.post("/v1/changes") { request, _ in
            let device = try await authenticate(request, store)
            var request = request
            let body: JSONValue
            do { body = try await readJSON(&request) } catch let f as HubFailure {
                await store.note(device: device, deviceTime: deviceTime(request), client: clientReport(request), error: "push refused: \(f.message)")
                throw f
            }
            guard case .array(let changes)? = body["changes"] else {
                throw HubFailure(.invalid, "a push is {\"site\": …, \"changes\": [ … ]}: \"changes\" must be an array")
            }
            guard changes.count <= SyncProtocol.maxPushChanges else {
                throw HubFailure(.tooLarge, "\(changes.count) changes in one push; at most \(SyncProtocol.maxPushChanges)")
            }
            // The envelope as openapi.yaml has it; each change is judged on its own below, and the
            // site names in "sites" are only a courtesy (entries the hub cannot use are skipped).
            guard let site = body["site"]?.stringValue, SiteID(hex: site) != nil else {
                throw HubFailure(.invalid, "a push names the pushing replica: \"site\" is its site id (16 lowercase hex digits)")
            }
            if let n = body["siteName"], n.stringValue == nil { throw HubFailure(.invalid, "siteName: expected a string, got \(n.typeName)") }
            if let so = body["sites"], so.objectValue == nil { throw HubFailure(.invalid, "sites: expected an object {SITE: NAME}, got \(so.typeName)") }
            if let so = body["sites"]?.objectValue, so.count > PushBody.maxSiteNames {
                throw HubFailure(.tooManySites, "sites names \(so.count) sites; a push names at most \(PushBody.maxSiteNames) (the hub takes names only for the device's own sites)")
            }
            var sites: [SiteID: String] = [:]
            if case .object(let so)? = body["sites"] {
                for (k, v) in so { if let id = SiteID(hex: k), let n = v.stringValue, n.unicodeScalars.count <= 200 { sites[id] = n } }
            }
            let vouches = try self.vouches(body["manifests"], store: store)
            await store.note(device: device, deviceTime: deviceTime(request), client: clientReport(request), error: nil)
            let t0 = DispatchTime.now().uptimeNanoseconds
            let resp = try await store.push(changes, sites: sites, vouches: vouches, from: device)
            metrics.sync("push", nanoseconds: DispatchTime.now().uptimeNanoseconds - t0)
            metrics.pushed(resp.results)
            return json(resp.json(hubTime: now()), request: request)
        }

        router.get("/v1/changes") { request, _ in
            let device = try await authenticate(request, store)
            try requireRelease(request, minClientRelease)
            let after = try int(request, "after", default: 0, range: 0...Int64.max)
            let limit = try int(request, "limit", default: 1000, range: 1...5000)
            let maxBytes = try int(request, "maxBytes", default: 1 << 20, range: 1024...(16 << 20))
            await store.note(device: device, deviceTime: deviceTime(request), client: clientReport(request), error: nil)
            let t0 = DispatchTime.now().uptimeNanoseconds
            let page = try await store.pull(for: device, after: after, limit: Int(limit), maxBytes: Int(maxBytes))
            metrics.sync("pull", nanoseconds: DispatchTime.now().uptimeNanoseconds - t0)
            return try await pageResponse(page, store: store, request: request)
        }

        // A laptop fetching the history it pruned (docs/operations.md §10): the changes with
        // these ids whose record lies in its scope, signed like a page.
        router.get("/v1/changes/lookup") { request, _ in
            let device = try await authenticate(request, store)
            guard let raw = request.uri.queryParameters.get("ids"), !raw.isEmpty else {
                throw HubFailure(.badParameter, "ids: give 1…\(SyncProtocol.maxLookupIDs) change ids, SITE:COUNTER separated by commas")
            }
            let parts = raw.split(separator: ",", omittingEmptySubsequences: false)
            guard parts.count <= SyncProtocol.maxLookupIDs else {
                throw HubFailure(.badParameter, "ids: \(parts.count) ids; at most \(SyncProtocol.maxLookupIDs)")
            }
            let ids = try parts.map { p -> ChangeID in
                guard let id = ChangeID(String(p)) else { throw HubFailure(.badParameter, "ids: \"\(p.prefix(40))\" is not a change id (SITE:COUNTER)") }
                return id
            }
            let texts = try await store.changes(ids: ids, for: device)
            return try await pageResponse(ScopedPage(texts: texts, cursor: 0, more: false, next: nil, bytes: 0), store: store, request: request)
        }

        router.post("/v1/ack") { request, _ in
            let device = try await authenticate(request, store)
            var request = request
            let body = try await readJSON(&request)
            guard let cursor = body["pullCursor"]?.intValue, cursor >= 0 else {
                throw HubFailure(.invalid, "an acknowledgement is {\"pullCursor\": N}")
            }
            let t0 = DispatchTime.now().uptimeNanoseconds
            try await store.acknowledge(device: device, cursor: cursor)
            metrics.sync("ack", nanoseconds: DispatchTime.now().uptimeNanoseconds - t0)
            return json(["pullCursor": .int(cursor), "hubTime": .int(now())])
        }

        router.get("/v1/snapshot") { request, _ in
            let device = try await authenticate(request, store)
            try requireRelease(request, minClientRelease)
            let after = try snapshotPosition(request)
            let limit = try int(request, "limit", default: 1000, range: 1...5000)
            let maxBytes = try int(request, "maxBytes", default: 1 << 20, range: 1024...(16 << 20))
            await store.note(device: device, deviceTime: deviceTime(request), client: clientReport(request), error: nil)
            let t0 = DispatchTime.now().uptimeNanoseconds
            let page = try await store.snapshot(for: device, after: after, limit: Int(limit), maxBytes: Int(maxBytes), held: try heldChanges(request))
            metrics.sync("snapshot", nanoseconds: DispatchTime.now().uptimeNanoseconds - t0)
            return try await pageResponse(page, store: store, request: request)
        }
        router.put("/v1/bundles/:name") { request, context in
            let device = try await authenticate(request, store)
            let name = try BundleUpload.name(context.parameters.get("name") ?? "")
            var request = request
            let body: ByteBuffer
            do { body = try await request.collectBody(upTo: SyncProtocol.maxRequestBytes) } catch {
                throw HubFailure(.tooLarge, "the bundle is larger than \(SyncProtocol.maxRequestBytes) bytes; export it in parts (--since)")
            }
            if let e = request.headers[.contentEncoding]?.lowercased(), e != "identity" {
                throw HubFailure(.unsupportedEncoding, "send the bundle file as it is (it is gzip already), without Content-Encoding")
            }
            let bytes = Array(body.readableBytesView)
            let parsed: BundleUpload.Parsed
            do { parsed = try BundleUpload.parse(bytes) } catch let f as HubFailure {
                await store.note(device: device, deviceTime: deviceTime(request), client: clientReport(request), error: "bundle \(name) refused: \(f.message)")
                throw f
            }
            let kept = try await store.keepBundle(named: name, bytes: bytes, from: device)
            await store.note(device: device, deviceTime: deviceTime(request), client: clientReport(request), error: nil)
            // Merged exactly as a push: a change is judged on its own.
            let (results, hubSeq) = try await BundleUpload.merge(parsed, into: store, from: device)
            func count(_ s: PushResult.Status) -> JSONValue { .int(Int64(results.filter { $0.status == s }.count)) }
            return json(["bundle": .string(name), "stored": .string(kept.path), "again": .bool(kept.again),
                         "lines": .int(Int64(parsed.lines)), "changes": .int(Int64(parsed.changes.count)),
                         "accepted": count(.accepted), "duplicate": count(.duplicate), "refused": count(.refused),
                         "results": .array(results.map(\.json)), "hubSeq": .int(hubSeq), "hubTime": .int(now())],
                        status: kept.again ? .ok : .created, request: request)
        }
        addSupervisorRoutes(router, store: store, signIn: signIn)
        addReportRoutes(router, store: store)
        HubConsole.addRoutes(router, store: store, signIn: signIn, configuration: console, logger: logger)
        return router
    }

    // MARK: Supervisors and conflicts (Protocol/conflicts.md)

    static func addSupervisorRoutes(_ router: Router<HubRequestContext>, store: any HubStore, signIn: SignIn) {
        router.post("/v1/sessions") { request, context in
            var request = request
            let body = try await readJSON(&request)
            guard let name = body["name"]?.stringValue, let password = body["password"]?.stringValue else {
                throw HubFailure(.invalid, "sign in with {\"name\": …, \"password\": …}")
            }
            let s = try await signIn(name: name, password: password, address: context.clientAddress)
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
            let shape = "resolve with one of {\"take\": CHANGE_ID}, {\"value\": …} or {\"method\": \"newest\"|\"oldest\"}, and optionally \"note\""
            try onlyKeys(body, ["take", "value", "method", "note"], shape)
            let how: Resolution
            switch (body["take"], body["value"], body["method"]) {
            case (let t?, nil, nil):
                guard let text = t.stringValue, let dot = ChangeID(text) else {
                    throw HubFailure(.invalid, "take is a change id SITE:COUNTER, got \(t.stringValue.map { String($0.prefix(40)) } ?? t.typeName)")
                }
                how = .take(dot)
            case (nil, let v?, nil):
                how = .value(v)
            case (nil, nil, let m?):
                how = try method(m)
            default:
                throw HubFailure(.invalid, shape)
            }
            let res = try await store.resolve(for: s.supervisor, id, how, note: try note(body))
            return json(["change": .string(res.change?.description ?? ""), "settled": .array(res.conflictsSettled.map { .string($0) }), "hubTime": .int(now())])
        }
        router.post("/v1/conflicts/resolve") { request, _ in
            let s = try await supervisor(request, store)
            var request = request
            let body = try await readJSON(&request)
            let shape = "settling many conflicts takes {\"method\": \"newest\"|\"oldest\", \"filter\": {…}, \"note\": …}"
            // Strict: a misspelt key must not widen what gets settled (a filter that says nothing
            // settles every conflict in the supervisor's scope).
            try onlyKeys(body, ["method", "filter", "note"], shape)
            guard let m = body["method"] else { throw HubFailure(.invalid, shape) }
            let how = try method(m)
            let f = try filter(body: body["filter"] ?? .object(JSONObject()))
            let done = try await store.resolveAll(for: s.supervisor, f, how, note: try note(body))
            return json(["resolved": .int(Int64(done.count)), "changes": .array(done.compactMap { $0.change.map { .string($0.description) } }), "hubTime": .int(now())])
        }
    }

    static func supervisor(_ request: Request, _ store: any HubStore) async throws -> Session {
        guard let auth = request.headers[.authorization] else {
            throw HubFailure(.missingToken, "sign in first: POST /v1/sessions, then Authorization: Bearer TOKEN")
        }
        let parts = auth.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer", !parts[1].isEmpty, parts[1].utf8.count <= 200 else {
            throw HubFailure(.badSession, "the Authorization header must be \"Bearer TOKEN\"")
        }
        if parts[1].hasPrefix("fst_") { throw HubFailure(.notASupervisor, "this is for supervisors: a device's token cannot read or settle conflicts here") }
        return try await store.session(token: String(parts[1]))
    }

    /// The conflict named by the path: ROW is a record id or at least 4 of its hex digits (as in
    /// `shortId`), FIELD a field name, `_deleted` or `_record`. Anything else names no conflict.
    static func conflictID(_ context: HubRequestContext) throws -> String {
        guard let row = context.parameters.get("row"), let field = context.parameters.get("field"),
              (4...45).contains(row.utf8.count),
              row.utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) || (0x41...0x46).contains($0) || $0 == UInt8(ascii: "-") }),
              (1...64).contains(field.utf8.count), field.utf8.first.map({ !(0x30...0x39).contains($0) }) == true,
              field.utf8.allSatisfy({ (0x61...0x7A).contains($0) || (0x30...0x39).contains($0) || $0 == UInt8(ascii: "_") })
        else {
            throw HubFailure(.notFound, "no such conflict: a conflict is /v1/conflicts/ROW/FIELD, ROW a record id (or 4+ of its hex digits), FIELD a field name")
        }
        return "\(row)/\(field)"
    }

    static func method(_ m: JSONValue) throws -> Resolution {
        switch m.stringValue {
        case "newest": return .newest
        case "oldest": return .oldest
        default: throw HubFailure(.invalid, "method is \"newest\" or \"oldest\"")
        }
    }

    /// The supervisor's note on a resolution: a string of at most 2,000 characters.
    static func note(_ body: JSONValue) throws -> String? {
        guard let n = body["note"] else { return nil }
        guard let text = n.stringValue, text.unicodeScalars.count <= ChangeCodec.maxNoteLength, !text.utf8.contains(0) else {
            throw HubFailure(.invalid, "note is a string of at most \(ChangeCodec.maxNoteLength) characters (no NUL)")
        }
        return text
    }

    /// The most days a conflict filter takes: a century, which keeps the milliseconds in range.
    static let maxFilterDays = 36_500.0

    /// A conflict filter from the query (`GET /v1/conflicts`, `…/summary`): 400 `bad_parameter`
    /// for a malformed parameter.
    static func filter(_ r: Request) throws -> ConflictFilter {
        var f = ConflictFilter()
        let q = r.uri.queryParameters
        if let k = q["kind"] { f.kind = try kind(String(k), code: .badParameter) }
        if let v = q["village"] { f.villagePrefix = try village(String(v), code: .badParameter) }
        f.field = q["field"].map(String.init)
        f.author = q["by"].map(String.init)
        for key in ["olderThanDays", "newerThanDays"] {
            guard let raw = q[Substring(key)] else { continue }
            // A plain decimal number: no hex floats, no inf or nan.
            let ok = raw.utf8.allSatisfy { (0x30...0x39).contains($0) || [UInt8(ascii: "."), UInt8(ascii: "e"), UInt8(ascii: "E"), UInt8(ascii: "+"), UInt8(ascii: "-")].contains($0) }
            guard ok, let d = Double(raw) else { throw HubFailure(.badParameter, "\(key) is a number of days, got \"\(raw.prefix(40))\"") }
            let ms = try days(d, key, code: .badParameter)
            if key == "olderThanDays" { f.olderThan = ms } else { f.newerThan = ms }
        }
        return f
    }

    /// A conflict filter in a body (`POST /v1/conflicts/resolve`): 422 `invalid` for anything
    /// but the keys and types of conflicts.schema.json#/$defs/filter.
    static func filter(body j: JSONValue) throws -> ConflictFilter {
        try onlyKeys(j, ["kind", "village", "field", "by", "olderThanDays", "newerThanDays"], "filter")
        var f = ConflictFilter()
        func string(_ k: String) throws -> String? {
            guard let v = j[k] else { return nil }
            guard let s = v.stringValue else { throw HubFailure(.invalid, "filter.\(k): expected a string, got \(v.typeName)") }
            return s
        }
        if let k = try string("kind") { f.kind = try kind(k, code: .invalid) }
        if let v = try string("village") { f.villagePrefix = try village(v, code: .invalid) }
        f.field = try string("field")
        f.author = try string("by")
        for key in ["olderThanDays", "newerThanDays"] {
            let d: Double
            switch j[key] {
            case nil: continue
            case .int(let i)?: d = Double(i)
            case .double(let x)?: d = x
            case let v?: throw HubFailure(.invalid, "filter.\(key): expected a number of days, got \(v.typeName)")
            }
            let ms = try days(d, "filter.\(key)", code: .invalid)
            if key == "olderThanDays" { f.olderThan = ms } else { f.newerThan = ms }
        }
        return f
    }

    static func kind(_ k: String, code: HubFailure.Code) throws -> RecordKind {
        guard let kind = RecordKind(rawValue: k) else { throw HubFailure(code, "unknown kind \(k.prefix(40))") }
        return kind
    }

    /// A division-code prefix: 1 to 12 digits.
    static func village(_ v: String, code: HubFailure.Code) throws -> String {
        guard isDigits(v, max: 12) else { throw HubFailure(code, "village is a division-code prefix (1–12 digits), got \"\(v.prefix(40))\"") }
        return v
    }

    static func days(_ d: Double, _ name: String, code: HubFailure.Code) throws -> Int64 {
        guard d.isFinite, d >= 0, d <= maxFilterDays else {
            throw HubFailure(code, "\(name) is a number of days from 0 to \(Int(maxFilterDays))")
        }
        return Int64((d * 86_400_000).rounded())
    }

    /// Every path the router serves and its methods, as in openapi.yaml (literal paths before
    /// those with parameters). A known path asked with another method is answered 405 with
    /// `Allow`; keep this in step with the routes above.
    static let endpoints: [(path: [Substring], methods: [HTTPRequest.Method])] = [
        ("/metrics", [.get]), ("/v1/health", [.get]), ("/v1/enroll", [.post]), ("/v1/device", [.get]), ("/v1/device/sites", [.post]), ("/v1/schema", [.get]), ("/v1/changes", [.get, .post]), ("/v1/changes/lookup", [.get]),
        ("/v1/ack", [.post]), ("/v1/snapshot", [.get]), ("/v1/sessions", [.post, .delete]), ("/v1/conflicts", [.get]),
        ("/v1/conflicts/summary", [.get]), ("/v1/conflicts/resolve", [.post]),
        ("/v1/conflicts/:row/:field", [.get]), ("/v1/conflicts/:row/:field/resolve", [.post]),
        ("/v1/bundles/:name", [.put]), ("/v1/reports", [.get]), ("/v1/reports/:file", [.get]),
    ].map { (path: $0.0.split(separator: "/"), methods: $0.1) }

    /// The methods the path is served with, or nil when no route has this path.
    static func allowedMethods(_ path: String) -> [HTTPRequest.Method]? {
        let segments = path.split(separator: "/")
        return endpoints.first { e in
            e.path.count == segments.count && zip(e.path, segments).allSatisfy { p, s in p.hasPrefix(":") || p == s }
        }?.methods
    }

    /// Builds the application for `fieldsync-hub serve`.
    public static func application(store: any HubStore, configuration: HubServerConfiguration, logger: Logger, metrics: HubMetrics = HubMetrics(),
                                   onRunning: @escaping @Sendable (Int) async -> Void) throws -> some ApplicationProtocol {
        let r = router(store: store, logger: logger, console: ConsoleConfiguration(secureCookies: configuration.servesTLS), metrics: metrics,
                       minClientRelease: configuration.minClientRelease)
        let config = ApplicationConfiguration(address: .hostname(configuration.host, port: configuration.port), serverName: "FieldSync-Hub")
        let port = configuration.port
        let limits = configuration.limits
        let counter = ConnectionCounter(limit: limits.maxConnectionsPerAddress, onChange: { metrics.connections($0) })
        // Idle, head and body timeouts per request, and the per-address cap per connection.
        let http1 = HTTP1Channel.Configuration(additionalChannelHandlers: [RequestTimeouts(limits: limits, logger: logger)])
        let tls: TLSConfiguration? = if let cert = configuration.tlsCertificate, let key = configuration.tlsKey {
            TLSConfiguration.makeServerConfiguration(
                certificateChain: try NIOSSLCertificate.fromPEMFile(cert).map { .certificate($0) },
                privateKey: .privateKey(try NIOSSLPrivateKey(file: key, format: .pem)))
        } else { nil }
        let server = HTTPServerBuilder { responder in
            let plain = HTTP1Channel(responder: responder, configuration: http1)
            if let tls { return GuardedChannel(inner: try TLSChannel(plain, tlsConfiguration: tls), counter: counter, logger: logger) }
            return GuardedChannel(inner: plain, counter: counter, logger: logger)
        }
        return Application(router: r, server: server, configuration: config,
                           onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? port) }, logger: logger)
    }

    // MARK: Helpers

    static func now() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

    static func deviceTime(_ r: Request) -> Int64? { r.headers[deviceTime].flatMap { Int64($0) } }

    static let clientHeader = HTTPField.Name(SyncProtocol.clientHeader)!

    /// What the device says it runs and holds (sync.md §2); nil when it does not say (releases
    /// before 3) or says it in a form that does not read (ignored, like an absent header).
    static func clientReport(_ r: Request) -> ClientReport? { r.headers[clientHeader].flatMap(ClientReport.parse) }

    /// Pulls need at least the hub's minimum release (426); pushes never do, so a laptop too old
    /// to pull still hands over everything it holds.
    static func requireRelease(_ r: Request, _ minimum: Int?) throws {
        guard let minimum else { return }
        let release = clientReport(r)?.release ?? 0
        guard release >= minimum else {
            throw HubFailure(.upgradeRequired, "本机 FieldSync 程序太旧（\(release == 0 ? "第 3 版以前" : "第 \(release) 版")），同步中心要求至少第 \(minimum) 版才能下载：请升级 FieldSync；上传照常，本机数据不会丢失 (this release \(release) is below the hub's minimum \(minimum) for pulls: upgrade fieldsync; pushes still work and nothing on the laptop is lost)")
        }
    }

    static func authenticate(_ request: Request, _ store: any HubStore) async throws -> Device {
        guard let auth = request.headers[.authorization] else { throw HubFailure.missingToken }
        let parts = auth.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer", !parts[1].isEmpty, parts[1].utf8.count <= 200 else {
            throw HubFailure(.badToken, "the Authorization header must be \"Bearer TOKEN\"")
        }
        let device = try await store.authenticate(token: String(parts[1]))
        // The device's clock (sync.md §2) is optional, but when sent it is a whole number.
        if let t = request.headers[deviceTime], !isDigits(t, max: 18) {
            throw HubFailure(.badParameter, "\(SyncProtocol.deviceTimeHeader) is the device's clock in Unix milliseconds (digits only), got \"\(t.prefix(40))\"")
        }
        return device
    }

    static func isDigits(_ s: some StringProtocol, min: Int = 1, max: Int) -> Bool {
        (min...max).contains(s.utf8.count) && s.utf8.allSatisfy { (0x30...0x39).contains($0) }
    }

    /// Refuses (422) an object with keys other than `allowed`, or a body that is not an object.
    static func onlyKeys(_ body: JSONValue, _ allowed: Set<String>, _ shape: String) throws {
        guard let o = body.objectValue else { throw HubFailure(.invalid, "\(shape): expected a JSON object, got \(body.typeName)") }
        if let k = o.keys.first(where: { !allowed.contains($0) }) {
            throw HubFailure(.invalid, "\(shape): unknown key \"\(k.prefix(40))\"")
        }
    }

    /// `held=SITE:COUNTER,…`: the device holds every change of SITE up to COUNTER (its own,
    /// sync.md §5), so a snapshot leaves them out. At most 16 sites (one device's).
    static func heldChanges(_ r: Request) throws -> [SiteID: Int64] {
        guard let raw = r.uri.queryParameters["held"] else { return [:] }
        var out: [SiteID: Int64] = [:]
        for part in raw.split(separator: ",", omittingEmptySubsequences: false) {
            // A bound, not a change id: any counter of up to 16 digits reads (none is above 2^53 − 1).
            let sc = part.split(separator: ":", omittingEmptySubsequences: false)
            guard out.count < SitePossession.maxSitesPerDevice, sc.count == 2, let site = SiteID(hex: String(sc[0])), out[site] == nil,
                  sc[1].utf8.count <= 16, sc[1].utf8.first != UInt8(ascii: "0"), sc[1].utf8.allSatisfy({ (0x30...0x39).contains($0) }),
                  let counter = Int64(sc[1])
            else {
                throw HubFailure(.badParameter, "held is SITE:COUNTER[,SITE:COUNTER…] for at most \(SitePossession.maxSitesPerDevice) sites, each once, got \"\(raw.prefix(80))\"")
            }
            out[site] = counter
        }
        return out
    }

    /// A snapshot position: KIND:ID exactly as the hub sent it in `next` (sync.md §5); KIND may
    /// be a kind this hub does not hold yet, whose kept changes come last (``SnapshotPosition``).
    static func snapshotPosition(_ r: Request) throws -> String? {
        guard let raw = r.uri.queryParameters["after"] else { return nil }
        let parts = raw.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        guard raw.utf8.count <= 200, parts.count == 2, (try? SnapshotPosition(parsing: String(raw))) != nil, !parts[1].isEmpty,
              parts[1].utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) || $0 == UInt8(ascii: "-") })
        else {
            throw HubFailure(.invalid, "a snapshot position is KIND:ID as the hub sent it in \"next\", got \"\(raw.prefix(60))\"")
        }
        return String(raw)
    }

    static func int(_ r: Request, _ name: String, default d: Int64, range: ClosedRange<Int64>) throws -> Int64 {
        guard let raw = r.uri.queryParameters[Substring(name)] else { return d }
        guard let v = Int64(raw), range.contains(v) else {
            throw HubFailure(.badParameter, "\(name) must be a whole number in \(range.lowerBound)…\(range.upperBound), got \"\(raw.prefix(40))\"")
        }
        return v
    }

    /// Reads the request body: at most 8 MiB as sent, gzip (Content-Encoding) up to 32 MiB
    /// decompressed, strict UTF-8 JSON.
    static func readJSON(_ request: inout Request) async throws -> JSONValue {
        let buffer: ByteBuffer
        do { buffer = try await request.collectBody(upTo: SyncProtocol.maxRequestBytes) } catch {
            throw HubFailure(.tooLarge, "the request body is larger than \(SyncProtocol.maxRequestBytes) bytes; send smaller batches")
        }
        var bytes = Array(buffer.readableBytesView)
        switch request.headers[.contentEncoding]?.lowercased() {
        case nil, "identity": break
        case "gzip":
            do { bytes = try Gzip.decompress(bytes, limit: SyncProtocol.maxDecompressedBytes) } catch let e as GzipError {
                if e.overLimit {
                    throw HubFailure(.tooLarge, "the gzip body \(e.reason)")
                }
                throw HubFailure(.badGzip, "the gzip body cannot be read: \(e.reason)")
            }
        case let other?:
            throw HubFailure(.unsupportedEncoding, "Content-Encoding \(other.prefix(40)) is not supported; use gzip or none")
        }
        guard !bytes.isEmpty else { throw HubFailure(.badJSON, "the request body is empty; a JSON object is expected") }
        do { return try JSONValue.parse(bytes: bytes) } catch {
            throw HubFailure(.badJSON, "the request body is not valid JSON: \(error)")
        }
    }

    /// A page of changes, signed by the hub (changeset.md §7: the receiver checks the signature
    /// against the key it learnt at enrolment, and keeps it to relay the changes by bundle).
    static func pageResponse(_ page: ScopedPage, store: any HubStore, request: Request) async throws -> Response {
        // Name only the sites whose changes are in the page: a change's text starts {"id":"SITE:…
        var ids = Set<SiteID>()
        for t in page.texts {
            let u = t.utf8
            if u.count > 24, let id = SiteID(hex: String(decoding: u.dropFirst(7).prefix(16), as: UTF8.self)) { ids.insert(id) }
        }
        let names = try await store.siteNames(ids)
        let proof = Manifest.signed(by: store.hubKey, as: store.hubSite, digests: page.texts.map { ChangeDigest(canonicalText: $0) })
        let text = ChangePage.text(changeTexts: page.texts, cursor: page.cursor, more: page.more, next: page.next, sites: names, hubTime: now(),
                                   proof: proof.proofJSON)
        return bytesResponse(Array(text.utf8), status: .ok, request: request)
    }

    /// The manifests a push carries to prove relayed changes, checked (signatures are verified
    /// here, off the store's queue). At most ``PushBody/maxManifests``.
    static func vouches(_ raw: JSONValue?, store: any HubStore) throws -> Vouches {
        guard let raw else { return Vouches() }
        guard case .array(let items) = raw else { throw HubFailure(.invalid, "manifests: expected an array of manifests, got \(raw.typeName)") }
        guard items.count <= PushBody.maxManifests else {
            throw HubFailure(.tooManyManifests, "\(items.count) manifests in one push; at most \(PushBody.maxManifests)")
        }
        var manifests: [Manifest] = []
        for (i, m) in items.enumerated() {
            do throws(InputError) { manifests.append(try Manifest(json: m)) } catch { throw HubFailure(.invalid, "manifests[\(i)]: \(error.description)") }
        }
        return Vouches(manifests, provenance: Provenance(hub: (store.hubSite, store.hubKey.publicKey)))
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
    typealias Context = HubRequestContext
    let logger: Logger
    /// Served over HTTPS: every response tells browsers to use only HTTPS here (HSTS).
    let hsts: Bool
    let metrics: HubMetrics
    /// The store's epoch, as its header says it (``HubEpoch``).
    let epoch: String
    /// Looked at for a schema another process loaded (at most once a second).
    let store: any HubStore

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = DispatchTime.now().uptimeNanoseconds
        var response: Response
        if request.uri.path.hasPrefix("/v1/") { await store.refreshSchema() }
        do {
            response = try await next(request, context)
        } catch {
            let f = Self.failure(error, request)
            switch f.kind {
            case .unavailable:
                metrics.storeError()
                logger.error("store failure on \(request.method) \(request.uri.path): \(error)")
            case .internalError:
                logger.error("unexpected failure on \(request.method) \(request.uri.path): \(error)")
            default: break
            }
            response = HubHTTP.json(HubErrorBody(code: f.code, message: f.message).json, status: .init(code: f.status))
            if let s = f.retryAfter { response.headers[.retryAfter] = String(s) }
            if f.kind == .methodNotAllowed, let allowed = HubHTTP.allowedMethods(request.uri.path) {
                response.headers[.allow] = allowed.map(\.rawValue).joined(separator: ", ")
            }
        }
        response.headers[HubHTTP.hubTime] = String(HubHTTP.now())
        response.headers[HubHTTP.hubEpoch] = epoch
        response.headers[HubHTTP.hubSchema] = String(Schema.current.version)
        if hsts { response.headers[HubHTTP.strictTransportSecurity] = "max-age=31536000" }
        let elapsed = DispatchTime.now().uptimeNanoseconds - start
        // The route as registered (/v1/conflicts/:row/:field), never the path asked for: a
        // stranger's made-up paths must not grow the metrics without bound.
        // Hummingbird names the route of a path it could not match "NotFound".
        let route = context.endpointPath.flatMap { $0 == "NotFound" ? nil : $0 } ?? "unmatched"
        metrics.request(route: route, method: request.method.rawValue, status: response.status.code, nanoseconds: elapsed)
        logger.info("\(request.method) \(request.uri.path) → \(response.status.code) \(String(format: "%.1f", Double(elapsed) / 1e6)) ms")
        return response
    }

    /// What any error thrown below becomes on the wire: one typed refusal. The store's errors
    /// arrive as ``ReplicaError`` whichever store it is (SQLite's and PostgreSQL's own failures
    /// are translated inside the stores), so this layer knows no database.
    static func failure(_ error: any Error, _ request: Request) -> HubFailure {
        switch error {
        case let f as HubFailure:
            return f
        case let e as ReplicaError:
            switch e {
            case .invalidInput(let ie): return HubFailure(.invalid, ie.description)
            case .notFound, .ambiguous: return HubFailure(.notFound, e.description)
            case .wrongState: return HubFailure(.conflict, e.description)
            case .badBundle(_, let reason): return HubFailure(.invalid, reason)
            default: return HubFailure(.unavailable, "the hub's store could not complete the request (\(e)); try again shortly", retryAfter: 5)
            }
        case let e as HTTPError where e.status == .notFound || e.status == .methodNotAllowed:
            // A path that exists, but not with this method (RFC 9110 §15.5.6).
            if let allowed = HubHTTP.allowedMethods(request.uri.path), !allowed.contains(request.method) {
                return HubFailure(.methodNotAllowed, "\(request.method) is not allowed on \(request.uri.path); it takes \(allowed.map(\.rawValue).joined(separator: ", "))")
            }
            return HubFailure(.notFound, "no such endpoint: \(request.method) \(request.uri.path) (see Protocol/openapi.yaml)")
        case let e as HTTPError where e.status == .contentTooLarge:
            return HubFailure(.tooLarge, "the request body is larger than this endpoint takes")
        case let e as HTTPError where e.status.code >= 400 && e.status.code < 500:
            return HubFailure(.badParameter, "the request cannot be read (\(e.status))")
        default:
            return HubFailure(.internalError, "the hub failed unexpectedly; this is a bug")
        }
    }
}

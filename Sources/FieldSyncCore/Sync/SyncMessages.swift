// MARK: - The hub protocol's messages

/// Names shared by the hub and the sync client (Protocol/sync.md).
public enum SyncProtocol {
    public static let version = 1
    /// The hub's clock (Unix ms) on every response.
    public static let hubTimeHeader = "X-FieldSync-Hub-Time"
    /// The device's clock (Unix ms) on every request, so the hub can see clocks that are off.
    public static let deviceTimeHeader = "X-FieldSync-Device-Time"
    /// What the device runs and holds, on every request (sync.md §2): `ClientReport`.
    public static let clientHeader = "X-FieldSync-Client"
    /// Which life of the hub's store answers, on every response (sync.md §2): ``HubEpoch``.
    public static let hubEpochHeader = "X-FieldSync-Hub-Epoch"
    /// The schema version the hub holds, on every response (sync.md §2): a laptop holding an
    /// older one fetches `GET /v1/schema` and takes it before it pulls.
    public static let hubSchemaHeader = "X-FieldSync-Schema"
    /// Largest request body the hub accepts, compressed and decompressed.
    public static let maxRequestBytes = 8 << 20
    public static let maxDecompressedBytes = 32 << 20
    /// Most ids in one history lookup (`GET /v1/changes/lookup`).
    public static let maxLookupIDs = 200
    /// Most changes in one push.
    public static let maxPushChanges = 5000
    /// A pushed change stamped further than this ahead of the hub's clock is refused
    /// (`clock_ahead`): the drift bound of changeset.md §4.
    public static let maxClockAheadMs = HybridLogicalClock.defaultMaxDrift
}

// MARK: - ClientReport

/// This program's release number: 1 was the first release, 2 the release of 2026-12 that moved
/// tokens out of the replica (Tests/Fixtures/release-2), 3 the one that reports itself. A hub
/// can require a minimum for pulls (`fieldsync-hub serve --min-client-release N`).
public enum FieldSyncRelease {
    public static let current = 3
}

/// What a device says about itself on every request, in `X-FieldSync-Client`:
/// `release=3; schema=1; pending=12; oldest=1764547200000` — its program's release, the schema
/// version it holds, the changes it has not yet offered to the hub, and when the oldest of them
/// was made (Unix ms; absent when none). The hub shows it in its device list and console, and
/// refuses pulls (never pushes) from a release below its minimum.
public struct ClientReport: Sendable, Equatable {
    public var release: Int
    public var schema: Int
    public var pending: Int
    public var oldestUnsent: Int64?

    public init(release: Int = FieldSyncRelease.current, schema: Int, pending: Int, oldestUnsent: Int64?) {
        self.release = release
        self.schema = schema
        self.pending = pending
        self.oldestUnsent = oldestUnsent
    }

    public var header: String {
        "release=\(release); schema=\(schema); pending=\(pending)" + (oldestUnsent.map { "; oldest=\($0)" } ?? "")
    }

    /// Reads the header strictly: every part `key=digits` (at most 15 digits), `release`,
    /// `schema` and `pending` present, keys known; nil otherwise.
    public static func parse(_ text: String) -> ClientReport? {
        guard text.utf8.count <= 200 else { return nil }
        var values: [String: Int64] = [:]
        for part in text.split(separator: ";") {
            let kv = part.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard kv.count == 2 else { return nil }
            let k = String(kv[0]).trimmingSpaces, v = String(kv[1]).trimmingSpaces
            guard ["release", "schema", "pending", "oldest"].contains(k), values[k] == nil,
                  (1...15).contains(v.utf8.count), v.utf8.allSatisfy({ (0x30...0x39).contains($0) }), let n = Int64(v)
            else { return nil }
            values[k] = n
        }
        guard let r = values["release"], let s = values["schema"], let p = values["pending"] else { return nil }
        return ClientReport(release: Int(r), schema: Int(s), pending: Int(p), oldestUnsent: values["oldest"])
    }
}

// MARK: - HubEpoch

/// Which life of the hub's store answers: `X-FieldSync-Hub-Epoch: 3f9a0c1b22d4e5f6; start=1234`
/// on every response (sync.md §2). A hub restored from a backup starts a new epoch: a new id,
/// and `start`, the last position of its change log the backup held. A laptop that synced with
/// another epoch pushes everything it holds again (the hub lost what came after the backup)
/// and pulls from no later than `start` (positions after it name other changes now).
public struct HubEpoch: Sendable, Equatable {
    /// 16 lowercase hex digits.
    public var id: String
    public var start: Int64

    public init(id: String, start: Int64) {
        self.id = id
        self.start = start
    }

    /// A new epoch id: 64 random bits in hex.
    public static func newID() -> String { SiteID.random().hex }

    public var header: String { "\(id); start=\(start)" }

    /// Reads the header strictly: 16 lowercase hex digits, then `start=` with 1…15 digits; nil otherwise.
    public static func parse(_ text: String) -> HubEpoch? {
        let parts = text.split(separator: ";", omittingEmptySubsequences: false).map { String($0).trimmingSpaces }
        guard parts.count == 2, Self.isID(parts[0]), parts[1].hasPrefix("start=") else { return nil }
        let v = parts[1].dropFirst(6)
        guard (1...15).contains(v.utf8.count), v.utf8.allSatisfy({ (0x30...0x39).contains($0) }), let n = Int64(v) else { return nil }
        return HubEpoch(id: parts[0], start: n)
    }

    public static func isID(_ s: String) -> Bool {
        s.utf8.count == 16 && s.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
    }
}

// MARK: - Errors on the wire

/// `{"error":{"code":"out_of_scope","message":"…"}}`: every non-2xx response from the hub.
public struct HubErrorBody: Error, Sendable, Equatable, CustomStringConvertible {
    public var code: String
    public var message: String

    public init(code: String, message: String) {
        self.code = code
        self.message = message
    }

    public var json: JSONValue { ["error": ["code": .string(code), "message": .string(message)]] }

    public init?(json: JSONValue) {
        guard let e = json["error"], let c = e["code"]?.stringValue, let m = e["message"]?.stringValue else { return nil }
        self.init(code: c, message: m)
    }

    public var description: String { "\(message) (\(code))" }
}

// MARK: - Enrolment

/// `POST /v1/enroll`: a one-time code, the laptop's site, and proof that the laptop holds the
/// key its site id is derived from (sync.md §1), so nobody can enrol under another's site id.
public struct EnrollRequest: Sendable, Equatable {
    public var code: String
    public var site: SiteID
    public var siteName: String
    /// The site's 32-byte Ed25519 public key.
    public var key: [UInt8]
    /// The site's signature of ``possessionMessage(code:site:)``.
    public var proof: [UInt8]

    public init(code: String, site: SiteID, siteName: String, key: [UInt8], proof: [UInt8]) {
        self.code = code
        self.site = site
        self.siteName = siteName
        self.key = key
        self.proof = proof
    }

    /// What the laptop signs to enrol: `fieldsync-enroll-v1`, LF, the code as the hub compares it
    /// (upper case, without dashes and spaces), LF, the site id.
    public static func possessionMessage(code: String, site: SiteID) -> [UInt8] {
        Array("fieldsync-enroll-v1\n\(normalize(code: code))\n\(site.hex)".utf8)
    }

    /// Enrolment codes are typed by people: case, dashes and spaces do not matter.
    public static func normalize(code: String) -> String { code.uppercased().filter { $0 != "-" && $0 != " " } }

    public var json: JSONValue {
        ["code": .string(code), "site": .string(site.hex), "siteName": .string(siteName),
         "key": .string(Base64.encode(key)), "proof": .string(Base64.encode(proof))]
    }

    public init(json: JSONValue) throws(InputError) {
        guard case .object(let o) = json else { throw InputError("body", "expected a JSON object") }
        guard let code = o["code"]?.stringValue, !code.isEmpty, code.count <= 64 else { throw InputError("code", "an enrolment code is required") }
        guard let s = o["site"]?.stringValue, let site = SiteID(hex: s) else { throw InputError("site", "expected the replica's site id (16 lowercase hex digits)") }
        let name = o["siteName"]?.stringValue ?? ""
        guard name.unicodeScalars.count <= 200 else { throw InputError("siteName", "at most 200 characters") }
        guard let k = o["key"]?.stringValue, k.utf8.count <= 64, let key = Base64.decode(k), key.count == 32 else {
            throw InputError("key", "expected the site's Ed25519 public key (32 bytes, base64); this laptop's FieldSync is older than the hub: upgrade it")
        }
        guard let p = o["proof"]?.stringValue, p.utf8.count <= 128, let proof = Base64.decode(p), proof.count == 64 else {
            throw InputError("proof", "expected the site's signature of the enrolment (64 bytes, base64)")
        }
        self.init(code: code, site: site, siteName: name, key: key, proof: proof)
    }
}

/// `POST /v1/device/sites`: a device names a new site it writes under (its replica took a new
/// id), with proof that it holds the site's key (sync.md §1).
public struct SiteBinding: Sendable, Equatable {
    public var site: SiteID
    public var key: [UInt8]
    public var proof: [UInt8]

    public init(site: SiteID, key: [UInt8], proof: [UInt8]) {
        self.site = site
        self.key = key
        self.proof = proof
    }

    /// `fieldsync-bind-v1`, LF, the device id, LF, the site id.
    public static func possessionMessage(device: String, site: SiteID) -> [UInt8] {
        Array("fieldsync-bind-v1\n\(device)\n\(site.hex)".utf8)
    }

    public var json: JSONValue { ["site": .string(site.hex), "key": .string(Base64.encode(key)), "proof": .string(Base64.encode(proof))] }

    public init(json: JSONValue) throws(InputError) {
        guard case .object(let o) = json, o.count == 3 else { throw InputError("body", "expected {\"site\": …, \"key\": …, \"proof\": …}") }
        guard let s = o["site"]?.stringValue, let site = SiteID(hex: s) else { throw InputError("site", "expected a site id (16 lowercase hex digits)") }
        guard let k = o["key"]?.stringValue, k.utf8.count <= 64, let key = Base64.decode(k), key.count == 32 else {
            throw InputError("key", "expected the site's Ed25519 public key (32 bytes, base64)")
        }
        guard let p = o["proof"]?.stringValue, p.utf8.count <= 128, let proof = Base64.decode(p), proof.count == 64 else {
            throw InputError("proof", "expected the site's signature (64 bytes, base64)")
        }
        self.init(site: site, key: key, proof: proof)
    }
}

public struct EnrollResponse: Sendable, Equatable {
    public var device: String
    public var name: String
    public var scope: String
    public var token: String
    public var hubSite: SiteID
    public var hubName: String
    /// The hub's Ed25519 public key: it signs every page it serves (changeset.md §7).
    public var hubKey: [UInt8]

    public init(device: String, name: String, scope: String, token: String, hubSite: SiteID, hubName: String, hubKey: [UInt8]) {
        self.device = device
        self.name = name
        self.scope = scope
        self.token = token
        self.hubSite = hubSite
        self.hubName = hubName
        self.hubKey = hubKey
    }

    public func json(hubTime: Int64) -> JSONValue {
        ["device": .string(device), "name": .string(name), "scope": .string(scope), "token": .string(token),
         "hub": ["site": .string(hubSite.hex), "name": .string(hubName), "key": .string(Base64.encode(hubKey))], "hubTime": .int(hubTime)]
    }

    public init(json: JSONValue) throws(InputError) {
        guard let d = json["device"]?.stringValue, let n = json["name"]?.stringValue, let s = json["scope"]?.stringValue,
              let t = json["token"]?.stringValue, let hs = json["hub"]?["site"]?.stringValue, let site = SiteID(hex: hs),
              let hk = json["hub"]?["key"]?.stringValue, let key = Base64.decode(hk), key.count == 32
        else { throw InputError("enrolment response", "missing device, name, scope, token or hub (site, key)") }
        self.init(device: d, name: n, scope: s, token: t, hubSite: site, hubName: json["hub"]?["name"]?.stringValue ?? "", hubKey: key)
    }
}

// MARK: - Push

/// The hub's answer for one pushed change.
public struct PushResult: Sendable, Equatable {
    public enum Status: String, Sendable {
        /// New at the hub (merged, or kept in history if something newer had replaced it).
        case accepted
        /// The hub had it already.
        case duplicate
        /// Not taken; `code` and `reason` say why, `retry` whether sending it again later can help.
        case refused
    }

    public var id: String
    public var status: Status
    public var code: String?
    public var reason: String?
    public var retry: Bool

    public init(id: String, status: Status, code: String? = nil, reason: String? = nil, retry: Bool = false) {
        self.id = id
        self.status = status
        self.code = code
        self.reason = reason
        self.retry = retry
    }

    public var json: JSONValue {
        var o: JSONObject = ["id": .string(id), "status": .string(status.rawValue)]
        if let code { o["code"] = .string(code) }
        if let reason { o["reason"] = .string(reason) }
        if retry { o["retry"] = true }
        return .object(o)
    }

    public init(json: JSONValue) throws(InputError) {
        guard let id = json["id"]?.stringValue, let s = json["status"]?.stringValue, let st = Status(rawValue: s) else {
            throw InputError("results", "each result has an id and a status")
        }
        self.init(id: id, status: st, code: json["code"]?.stringValue, reason: json["reason"]?.stringValue, retry: json["retry"] == .bool(true))
    }
}

public struct PushResponse: Sendable, Equatable {
    public var results: [PushResult]
    public var hubSeq: Int64

    public init(results: [PushResult], hubSeq: Int64) {
        self.results = results
        self.hubSeq = hubSeq
    }

    public func json(hubTime: Int64) -> JSONValue {
        ["results": .array(results.map(\.json)), "hubSeq": .int(hubSeq), "hubTime": .int(hubTime)]
    }

    public init(json: JSONValue) throws(InputError) {
        guard case .array(let items)? = json["results"] else { throw InputError("push response", "missing results") }
        var rs: [PushResult] = []
        for i in items { rs.append(try PushResult(json: i)) }
        self.init(results: rs, hubSeq: json["hubSeq"]?.intValue ?? 0)
    }
}

/// Builds a push body from changes' canonical texts without re-encoding them.
public enum PushBody {
    /// Most entries in a push's `sites` map (and a bundle header's): a hub takes names only for
    /// the pushing device's own sites, so an honest push names a few.
    public static let maxSiteNames = 1000
    /// Most manifests in one push: each proves relayed changes (changeset.md §7).
    public static let maxManifests = 100

    /// `manifests` are the JSON texts of the manifests proving relayed changes (none when the
    /// device pushes only its own changes: its token proves their origin).
    public static func text(site: SiteID, siteName: String, sites: [SiteID: String], changeTexts: [String], manifests: [String] = []) -> String {
        var sitesObj = JSONObject()
        for (id, name) in sites.sorted(by: { $0.key < $1.key }) { sitesObj[id.hex] = .string(name) }
        let head: JSONValue = ["site": .string(site.hex), "siteName": .string(siteName), "sites": .object(sitesObj)]
        var t = head.compactText
        t.removeLast()
        if !manifests.isEmpty { t += ",\"manifests\":[" + manifests.joined(separator: ",") + "]" }
        return t + ",\"changes\":[" + changeTexts.joined(separator: ",") + "]}"
    }
}

// MARK: - Pull and snapshot

/// A page of changes from the hub: a pull (`after` a hub sequence number) or a snapshot page.
public struct ChangePage: Sendable {
    /// The page's changes in the hub's order as this schema reads them: a change of a record kind
    /// it does not hold yet is kept and relayed (changeset.md §2.4); one it finds invalid (a hub
    /// on an older schema relays what it cannot judge) is a failure, set aside by the receiver
    /// while the rest of the page applies.
    public var decoded: [Result<ReceivedChange, InputError>]
    /// Each change as the hub sent it, in page order (empty for a page made here): the hub signs
    /// the texts it stores, which are these, written compactly.
    public var received: [JSONValue]
    /// The changes read.
    public var items: [ReceivedChange] { decoded.compactMap { try? $0.get() } }
    /// The changes this schema reads and places in records.
    public var changes: [Change] { items.compactMap(\.known) }
    /// Pull: the hub sequence number to ask `after` next. Snapshot: the hub's position when the
    /// snapshot began, to pull from once it is done.
    public var cursor: Int64
    /// Pull: more changes are waiting. Snapshot: the key to continue from, or nil at the end.
    public var more: Bool
    public var next: String?
    public var sites: [SiteID: String]
    public var hubTime: Int64
    /// The hub's signature of the page's changes, `{"signer","key","sig"}` (changeset.md §7):
    /// the receiver computes the digests from the changes themselves.
    public var proof: JSONValue?

    public init(changes: [Change], cursor: Int64, more: Bool, next: String?, sites: [SiteID: String], hubTime: Int64, proof: JSONValue? = nil) {
        self.init(items: changes.map { .known($0) }, cursor: cursor, more: more, next: next, sites: sites, hubTime: hubTime, proof: proof)
    }

    public init(items: [ReceivedChange], cursor: Int64, more: Bool, next: String?, sites: [SiteID: String], hubTime: Int64, proof: JSONValue? = nil) {
        self.init(decoded: items.map { .success($0) }, received: [], cursor: cursor, more: more, next: next, sites: sites, hubTime: hubTime, proof: proof)
    }

    public init(decoded: [Result<ReceivedChange, InputError>], received: [JSONValue], cursor: Int64, more: Bool, next: String?,
                sites: [SiteID: String], hubTime: Int64, proof: JSONValue? = nil) {
        self.decoded = decoded
        self.received = received
        self.cursor = cursor
        self.more = more
        self.next = next
        self.sites = sites
        self.hubTime = hubTime
        self.proof = proof
    }

    /// The page as the hub writes it, from stored canonical change texts.
    public static func text(changeTexts: [String], cursor: Int64, more: Bool, next: String?, sites: [SiteID: String], hubTime: Int64,
                            proof: JSONValue? = nil) -> String {
        var sitesObj = JSONObject()
        for (id, name) in sites.sorted(by: { $0.key < $1.key }) { sitesObj[id.hex] = .string(name) }
        var tail: JSONObject = ["cursor": .int(cursor), "more": .bool(more), "next": next.map { .string($0) } ?? .null,
                                "sites": .object(sitesObj), "hubTime": .int(hubTime)]
        if let proof { tail["proof"] = proof }
        let tailValue = JSONValue.object(tail)
        var t = tailValue.compactText
        t.removeFirst()
        return "{\"changes\":[" + changeTexts.joined(separator: ",") + "]," + t
    }

    /// Decodes and checks a page: each change on its own (the hub is not trusted blindly; the
    /// receiver sets aside what it finds invalid, once the hub's signature over the page holds).
    public init(json: JSONValue) throws(InputError) {
        guard case .array(let items)? = json["changes"], let cursor = json["cursor"]?.intValue, case .bool(let more)? = json["more"] else {
            throw InputError("page", "expected changes, cursor and more")
        }
        var cs: [Result<ReceivedChange, InputError>] = []
        cs.reserveCapacity(items.count)
        for (n, i) in items.enumerated() {
            do throws(InputError) { cs.append(.success(try ChangeCodec.decodeReceived(i))) } catch { cs.append(.failure(error.within("changes[\(n)]"))) }
        }
        var sites: [SiteID: String] = [:]
        if case .object(let so)? = json["sites"] {
            for (k, v) in so { if let id = SiteID(hex: k), let n = v.stringValue { sites[id] = n } }
        }
        self.init(decoded: cs, received: items, cursor: cursor, more: more, next: json["next"]?.stringValue, sites: sites, hubTime: json["hubTime"]?.intValue ?? 0,
                  proof: json["proof"])
    }
}

// MARK: - The hub protocol's messages

/// Names shared by the hub and the sync client (Protocol/sync.md).
public enum SyncProtocol {
    public static let version = 1
    /// The hub's clock (Unix ms) on every response.
    public static let hubTimeHeader = "X-FieldSync-Hub-Time"
    /// The device's clock (Unix ms) on every request, so the hub can see clocks that are off.
    public static let deviceTimeHeader = "X-FieldSync-Device-Time"
    /// Largest request body the hub accepts, compressed and decompressed.
    public static let maxRequestBytes = 8 << 20
    public static let maxDecompressedBytes = 32 << 20
    /// Most changes in one push.
    public static let maxPushChanges = 5000
    /// A pushed change stamped further than this ahead of the hub's clock is refused
    /// (`clock_ahead`): the drift bound of changeset.md §4.
    public static let maxClockAheadMs = HybridLogicalClock.defaultMaxDrift
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

public struct EnrollRequest: Sendable, Equatable {
    public var code: String
    public var site: SiteID
    public var siteName: String

    public init(code: String, site: SiteID, siteName: String) {
        self.code = code
        self.site = site
        self.siteName = siteName
    }

    public var json: JSONValue { ["code": .string(code), "site": .string(site.hex), "siteName": .string(siteName)] }

    public init(json: JSONValue) throws(InputError) {
        guard case .object(let o) = json else { throw InputError("body", "expected a JSON object") }
        guard let code = o["code"]?.stringValue, !code.isEmpty, code.count <= 64 else { throw InputError("code", "an enrolment code is required") }
        guard let s = o["site"]?.stringValue, let site = SiteID(hex: s) else { throw InputError("site", "expected the replica's site id (16 lowercase hex digits)") }
        let name = o["siteName"]?.stringValue ?? ""
        guard name.unicodeScalars.count <= 200 else { throw InputError("siteName", "at most 200 characters") }
        self.init(code: code, site: site, siteName: name)
    }
}

public struct EnrollResponse: Sendable, Equatable {
    public var device: String
    public var name: String
    public var scope: String
    public var token: String
    public var hubSite: SiteID
    public var hubName: String

    public init(device: String, name: String, scope: String, token: String, hubSite: SiteID, hubName: String) {
        self.device = device
        self.name = name
        self.scope = scope
        self.token = token
        self.hubSite = hubSite
        self.hubName = hubName
    }

    public func json(hubTime: Int64) -> JSONValue {
        ["device": .string(device), "name": .string(name), "scope": .string(scope), "token": .string(token),
         "hub": ["site": .string(hubSite.hex), "name": .string(hubName)], "hubTime": .int(hubTime)]
    }

    public init(json: JSONValue) throws(InputError) {
        guard let d = json["device"]?.stringValue, let n = json["name"]?.stringValue, let s = json["scope"]?.stringValue,
              let t = json["token"]?.stringValue, let hs = json["hub"]?["site"]?.stringValue, let site = SiteID(hex: hs)
        else { throw InputError("enrolment response", "missing device, name, scope, token or hub") }
        self.init(device: d, name: n, scope: s, token: t, hubSite: site, hubName: json["hub"]?["name"]?.stringValue ?? "")
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
    public static func text(site: SiteID, siteName: String, sites: [SiteID: String], changeTexts: [String]) -> String {
        var sitesObj = JSONObject()
        for (id, name) in sites.sorted(by: { $0.key < $1.key }) { sitesObj[id.hex] = .string(name) }
        let head: JSONValue = ["site": .string(site.hex), "siteName": .string(siteName), "sites": .object(sitesObj)]
        var t = head.compactText
        t.removeLast()
        return t + ",\"changes\":[" + changeTexts.joined(separator: ",") + "]}"
    }
}

// MARK: - Pull and snapshot

/// A page of changes from the hub: a pull (`after` a hub sequence number) or a snapshot page.
public struct ChangePage: Sendable {
    public var changes: [Change]
    /// Pull: the hub sequence number to ask `after` next. Snapshot: the hub's position when the
    /// snapshot began, to pull from once it is done.
    public var cursor: Int64
    /// Pull: more changes are waiting. Snapshot: the key to continue from, or nil at the end.
    public var more: Bool
    public var next: String?
    public var sites: [SiteID: String]
    public var hubTime: Int64

    public init(changes: [Change], cursor: Int64, more: Bool, next: String?, sites: [SiteID: String], hubTime: Int64) {
        self.changes = changes
        self.cursor = cursor
        self.more = more
        self.next = next
        self.sites = sites
        self.hubTime = hubTime
    }

    /// The page as the hub writes it, from stored canonical change texts.
    public static func text(changeTexts: [String], cursor: Int64, more: Bool, next: String?, sites: [SiteID: String], hubTime: Int64) -> String {
        var sitesObj = JSONObject()
        for (id, name) in sites.sorted(by: { $0.key < $1.key }) { sitesObj[id.hex] = .string(name) }
        let tail: JSONValue = ["cursor": .int(cursor), "more": .bool(more), "next": next.map { .string($0) } ?? .null,
                               "sites": .object(sitesObj), "hubTime": .int(hubTime)]
        var t = tail.compactText
        t.removeFirst()
        return "{\"changes\":[" + changeTexts.joined(separator: ",") + "]," + t
    }

    /// Decodes and checks a page; any invalid change refuses the page (the hub is not trusted blindly).
    public init(json: JSONValue) throws(InputError) {
        guard case .array(let items)? = json["changes"], let cursor = json["cursor"]?.intValue, case .bool(let more)? = json["more"] else {
            throw InputError("page", "expected changes, cursor and more")
        }
        var cs: [Change] = []
        cs.reserveCapacity(items.count)
        for (n, i) in items.enumerated() {
            do throws(InputError) { cs.append(try ChangeCodec.decode(i)) } catch { throw error.within("changes[\(n)]") }
        }
        var sites: [SiteID: String] = [:]
        if case .object(let so)? = json["sites"] {
            for (k, v) in so { if let id = SiteID(hex: k), let n = v.stringValue { sites[id] = n } }
        }
        self.init(changes: cs, cursor: cursor, more: more, next: json["next"]?.stringValue, sites: sites, hubTime: json["hubTime"]?.intValue ?? 0)
    }
}

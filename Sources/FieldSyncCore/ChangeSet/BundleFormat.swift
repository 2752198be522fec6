// MARK: - BundleHeader

/// The first line of a bundle: who wrote it, when, and the names of the sites it mentions.
public struct BundleHeader: Sendable, Equatable {
    public static let format = "fieldsync-bundle"
    /// 2: change lines come after signed manifest lines that prove them (changeset.md §5, §7).
    public static let version = 2

    public var schema: Int
    public var site: SiteID
    public var siteName: String
    /// When the bundle was written, Unix milliseconds (the writer's clock).
    public var created: Int64
    /// Human names of the sites whose changes the bundle holds.
    public var sites: [SiteID: String]

    public init(schema: Int = Schema.current.version, site: SiteID, siteName: String, created: Int64, sites: [SiteID: String]) {
        self.schema = schema
        self.site = site
        self.siteName = siteName
        self.created = created
        self.sites = sites
    }
}

// MARK: - BundleFormat

/// Bundles are gzip-compressed JSON Lines: a header line, one change per line, then a trailer
/// line `{"end":true,"changes":N}` so that a cut-off file is always detected
/// (Protocol/changeset.md). This type frames and checks the lines; the replica does the files.
public enum BundleFormat {
    /// The longest line accepted: a change with a few 1 MiB notes fits comfortably.
    public static let maxLineBytes = 16 << 20

    public static func headerLine(_ h: BundleHeader) -> String {
        var sites = JSONObject()
        for (id, name) in h.sites.sorted(by: { $0.key < $1.key }) { sites[id.hex] = .string(name) }
        let o: JSONValue = [
            "format": .string(BundleHeader.format), "version": .int(Int64(BundleHeader.version)),
            "schema": .int(Int64(h.schema)), "site": .string(h.site.hex), "siteName": .string(h.siteName),
            "created": .string(UTCTime.iso(h.created)), "sites": .object(sites),
        ]
        return o.compactText
    }

    public static func trailerLine(count: Int) -> String {
        JSONValue.object(JSONObject([("end", .bool(true)), ("changes", .int(Int64(count)))])).compactText
    }

    public static func decodeHeader(_ json: JSONValue) throws(InputError) -> BundleHeader {
        guard case .object(let o) = json, o["format"]?.stringValue == BundleHeader.format else {
            throw InputError("line 1", "not a FieldSync bundle (the first line must be a header with \"format\": \"\(BundleHeader.format)\")")
        }
        guard let v = o["version"]?.intValue else { throw InputError("line 1: version", "is missing") }
        guard v == Int64(BundleHeader.version) else {
            if v == 1 {
                throw InputError("line 1: version", "bundle format version 1 carries no signatures, so nothing in it can be checked for its origin; export it again with this FieldSync (version \(BundleHeader.version))")
            }
            throw InputError("line 1: version", "bundle format version \(v) is not supported (this FieldSync reads version \(BundleHeader.version))")
        }
        guard let schema = o["schema"]?.intValue, schema >= 1 else { throw InputError("line 1: schema", "is missing") }
        // A newer schema's bundle is read: its changes carry what this schema cannot read
        // along untouched (changeset.md §2.4). Only an absurd number is refused.
        guard schema <= ChangeCodec.maxSchemaVersion else {
            throw InputError("line 1: schema", "schema version must be at most \(ChangeCodec.maxSchemaVersion), got \(schema)")
        }
        guard let siteText = o["site"]?.stringValue, let site = SiteID(hex: siteText) else {
            throw InputError("line 1: site", "expected the writer's site id (16 lowercase hex digits)")
        }
        guard let created = o["created"]?.stringValue.flatMap(UTCTime.parseISO) else {
            throw InputError("line 1: created", "expected an ISO time such as 2026-11-22T03:04:05.123Z")
        }
        var sites: [SiteID: String] = [:]
        if let s = o["sites"] {
            guard case .object(let so) = s else { throw InputError("line 1: sites", "expected an object of site id → name") }
            guard so.count <= PushBody.maxSiteNames else {
                throw InputError("line 1: sites", "\(so.count) names; a bundle names at most \(PushBody.maxSiteNames) sites")
            }
            for (k, v) in so {
                guard let id = SiteID(hex: k), case .string(let name) = v, name.count <= 200 else {
                    throw InputError("line 1: sites", "entry \"\(k.prefix(40))\" is not site id → name")
                }
                sites[id] = name
            }
        }
        let name = o["siteName"]?.stringValue ?? ""
        guard name.count <= 200 else { throw InputError("line 1: siteName", "longer than 200 characters") }
        return BundleHeader(schema: Int(schema), site: site, siteName: name, created: created, sites: sites)
    }

    /// A manifest line, `{"manifest":{…}}`: it proves the change lines after it, up to the next
    /// manifest line (changeset.md §5).
    public static func manifestLine(_ manifest: JSONValue) -> String {
        JSONValue.object(JSONObject([("manifest", manifest)])).compactText
    }

    /// The manifest of a manifest line, or nil when the line is not one.
    public static func manifest(_ json: JSONValue) -> JSONValue? {
        guard case .object(let o) = json, o.count == 1, let m = o["manifest"] else { return nil }
        return m
    }

    /// The change count of a trailer line, or nil when the line is not a trailer.
    public static func trailerCount(_ json: JSONValue) -> Int? {
        guard case .object(let o) = json, o["end"] == .bool(true), let n = o["changes"]?.intValue, n >= 0 else { return nil }
        return Int(n)
    }
}

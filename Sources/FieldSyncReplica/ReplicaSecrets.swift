import FieldSyncCore
import FieldSyncTrust
import Foundation

// MARK: - ReplicaSecrets

/// What a laptop must not hand over with a copy of its replica: the site's signing key and the
/// device token. They live in `REPLICA.secret` beside the replica, readable by its owner only
/// (0600), never in the replica file itself (docs/security.md).
///
///     {"format":"fieldsync-secret","version":1,"site":"…","key":"BASE64 SEED","token":"fst_…"}
///
/// A replica copied without this file cannot speak as its site or its device: on opening it
/// takes a new site id (its earlier changes keep theirs) and must be enrolled again.
public struct ReplicaSecrets: Sendable {
    public var key: SiteKey
    public var token: String?

    public init(key: SiteKey, token: String? = nil) {
        self.key = key
        self.token = token
    }

    public static func path(for replica: String) -> String { replica + ".secret" }

    /// The secrets kept for a replica, or nil when the file is missing or unreadable.
    public static func load(for replica: String) -> ReplicaSecrets? {
        guard let data = FileManager.default.contents(atPath: path(for: replica)),
              let json = try? JSONValue.parse(bytes: Array(data)),
              json["format"]?.stringValue == "fieldsync-secret",
              let seed = json["key"]?.stringValue.flatMap(Base64.decode), let key = SiteKey(seed: seed),
              json["site"]?.stringValue == key.site.hex
        else { return nil }
        return ReplicaSecrets(key: key, token: json["token"]?.stringValue)
    }

    public func save(for replica: String) throws {
        let json: JSONValue = .object(JSONObject([
            ("format", "fieldsync-secret"), ("version", .int(1)), ("site", .string(key.site.hex)),
            ("key", .string(Base64.encode(key.seed))), ("token", token.map { .string($0) } ?? .null),
        ]))
        do { try OwnerOnly.writeAtomically(Array((json.compactText + "\n").utf8), to: Self.path(for: replica)) } catch {
            throw ReplicaError.storage("cannot write the secret file \(Self.path(for: replica)): \(error.localizedDescription)")
        }
    }
}

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
    /// Where the replica lives: this machine's id and the replica file's device and inode
    /// (``home(of:)``). A replica opened somewhere else — its file copied to another machine or
    /// another file, or restored from a disk image — finds a different home and takes a new site
    /// id before it writes anything, so two copies never write under one id (issue 12).
    public var home: String?

    public init(key: SiteKey, token: String? = nil, home: String? = nil) {
        self.key = key
        self.token = token
        self.home = home
    }

    /// `MACHINE-ID:DEVICE:INODE` of the replica file at `path` (the machine id from
    /// /etc/machine-id when there is one).
    public static func home(of path: String) -> String {
        var st = stat()
        let file = stat(path, &st) == 0 ? "\(st.st_dev):\(st.st_ino)" : "?"
        let machine = (try? String(contentsOfFile: "/etc/machine-id", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        return "\(machine):\(file)"
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
        return ReplicaSecrets(key: key, token: json["token"]?.stringValue, home: json["home"]?.stringValue)
    }

    public func save(for replica: String) throws {
        let json: JSONValue = .object(JSONObject([
            ("format", "fieldsync-secret"), ("version", .int(1)), ("site", .string(key.site.hex)),
            ("key", .string(Base64.encode(key.seed))), ("token", token.map { .string($0) } ?? .null),
            ("home", home.map { .string($0) } ?? .null),
        ]))
        do { try OwnerOnly.writeAtomically(Array((json.compactText + "\n").utf8), to: Self.path(for: replica)) } catch {
            throw ReplicaError.storage("cannot write the secret file \(Self.path(for: replica)): \(error.localizedDescription)")
        }
    }
}

import FieldSyncCore
import FieldSyncReplica
import FieldSyncTrust
import Foundation

// MARK: - Bundles uploaded by name (PUT /v1/bundles/{name}, Protocol/sync.md §8)

/// A bundle file a device uploads by name, for laptops that carry their changes on a USB stick
/// to an office with a link: the hub keeps the file in the device's inbox and merges its
/// changes exactly as a push (scope, clock bound, clone detection, per change).
public enum BundleUpload {
    /// The most characters (Unicode scalars) in a bundle name.
    public static let maxNameLength = 100

    /// The name as the hub will store it, or a 400 `bad_name` saying what is wrong with it.
    ///
    /// `raw` is the path segment as sent (percent-encoded). After decoding, a name is 1–100
    /// letters (any script), digits, `.`, `_` and `-`; it does not start with a dot and holds
    /// no `..`. So `/`, `\`, NUL, control characters, spaces and every other trick are out:
    /// a name can only ever be one file inside the inbox.
    public static func name(_ raw: some StringProtocol) throws -> String {
        guard raw.utf8.count <= 3 * 4 * maxNameLength else { throw bad("the name is longer than \(maxNameLength) characters") }
        guard let decoded = percentDecoded(Array(raw.utf8)) else {
            throw bad("the name is not valid percent-encoded UTF-8")
        }
        guard !decoded.isEmpty else { throw bad("the name is empty") }
        guard decoded.unicodeScalars.count <= maxNameLength else { throw bad("the name is longer than \(maxNameLength) characters") }
        if let s = decoded.unicodeScalars.first(where: { !allowed($0) }) {
            // Visible ASCII quoted; anything else (controls, bidi overrides, other invisibles) by code.
            let shown = (0x20...0x7E).contains(s.value) ? "\"\(s)\"" : String(format: "U+%04X", s.value)
            throw bad("\(shown) may not appear in a bundle name (letters, digits, \".\", \"_\" and \"-\" only)")
        }
        guard !decoded.hasPrefix(".") else { throw bad("a bundle name may not start with \".\"") }
        guard !decoded.contains("..") else { throw bad("a bundle name may not contain \"..\"") }
        return decoded
    }

    static func allowed(_ s: Unicode.Scalar) -> Bool {
        if s == "." || s == "_" || s == "-" { return true }
        if s.isASCII { return (0x30...0x39).contains(s.value) || (0x41...0x5A).contains(s.value) || (0x61...0x7A).contains(s.value) }
        switch s.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter, .decimalNumber: return true
        default: return false
        }
    }

    static func bad(_ why: String) -> HubFailure { HubFailure(.badName, "bad bundle name: \(why)") }

    /// Strict percent-decoding: nil for a stray `%`, bad hex digits or bytes that are not UTF-8.
    static func percentDecoded(_ bytes: [UInt8]) -> String? {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var i = 0
        func hex(_ b: UInt8) -> UInt8? {
            switch b {
            case 0x30...0x39: return b - 0x30
            case 0x41...0x46: return b - 0x41 + 10
            case 0x61...0x66: return b - 0x61 + 10
            default: return nil
            }
        }
        while i < bytes.count {
            if bytes[i] == UInt8(ascii: "%") {
                guard i + 2 < bytes.count, let h = hex(bytes[i + 1]), let l = hex(bytes[i + 2]) else { return nil }
                out.append(h << 4 | l)
                i += 3
            } else {
                out.append(bytes[i])
                i += 1
            }
        }
        return String(validating: out, as: UTF8.self)
    }

    /// A bundle read whole from memory: its header and its changes, or a 422 `bad_bundle`
    /// naming the line and the reason. Nothing is stored unless the whole file reads.
    public struct Parsed: Sendable {
        public var header: BundleHeader
        public var changes: [JSONValue]
        /// The manifest lines: the signatures that prove the changes (changeset.md §7).
        public var manifests: [Manifest]
        public var lines: Int
    }

    /// Merges a read bundle's changes exactly as pushes from `device`, in batches of the push
    /// size: each change is judged on its own; changes of other sites must be proved by the
    /// bundle's manifests. Returns one result per change and the hub's last position.
    public static func merge(_ parsed: Parsed, into store: any HubStore, from device: Device) async throws -> (results: [PushResult], hubSeq: Int64) {
        let vouches = Vouches(parsed.manifests, provenance: Provenance(hub: (store.hubSite, store.hubKey.publicKey)))
        var results: [PushResult] = []
        var hubSeq: Int64 = 0
        for start in stride(from: 0, to: max(1, parsed.changes.count), by: SyncProtocol.maxPushChanges) {
            let batch = Array(parsed.changes[start..<min(parsed.changes.count, start + SyncProtocol.maxPushChanges)])
            let resp = try await store.push(batch, sites: parsed.header.sites, vouches: vouches, from: device)
            hubSeq = max(hubSeq, resp.hubSeq)
            results += resp.results
        }
        return (results, hubSeq)
    }

    public static func parse(_ body: [UInt8]) throws -> Parsed {
        func bad(_ why: String) -> HubFailure { HubFailure(.badBundle, "the bundle cannot be read: \(why); nothing was stored") }
        var bytes = body
        if bytes.count >= 2, bytes[0] == 0x1F, bytes[1] == 0x8B {
            do { bytes = try Gzip.decompress(bytes, limit: SyncProtocol.maxDecompressedBytes) } catch let e as GzipError {
                if e.overLimit { throw HubFailure(.tooLarge, "the bundle \(e.reason)") }
                throw bad("the gzip data is damaged (\(e.reason))")
            }
        }
        guard !bytes.isEmpty else { throw bad("the file is empty") }
        var lines = bytes.split(separator: 0x0A, omittingEmptySubsequences: false)
        if lines.last?.isEmpty == true { lines.removeLast() }
        var header: BundleHeader?
        var changes: [JSONValue] = []
        var manifests: [Manifest] = []
        var trailer: Int?
        for (i, line) in lines.enumerated() {
            let n = i + 1
            if trailer != nil {
                if line.isEmpty { continue }
                throw bad("line \(n): data after the end line")
            }
            let json: JSONValue
            do { json = try JSONValue.parse(bytes: Array(line)) } catch {
                throw bad(n == 1 ? "not a FieldSync bundle: line 1 is not a JSON header (\(error))" : "line \(n): not valid JSON (\(error))")
            }
            if header == nil {
                do throws(InputError) { header = try BundleFormat.decodeHeader(json) } catch { throw bad("line 1: \(error.description)") }
                continue
            }
            if let m = BundleFormat.manifest(json) {
                do throws(InputError) { manifests.append(try Manifest(json: m)) } catch { throw bad("line \(n): \(error.description)") }
                continue
            }
            if let count = BundleFormat.trailerCount(json) {
                guard count == changes.count else {
                    throw bad("line \(n): the end line counts \(count) changes but the bundle holds \(changes.count) (lines are missing)")
                }
                trailer = count
                continue
            }
            guard json.objectValue != nil else { throw bad("line \(n): a change is a JSON object, got \(json.typeName)") }
            changes.append(json)
        }
        guard let header else { throw bad("the file is empty") }
        guard trailer != nil else { throw bad("it has no end line: the file was cut short (copy it again)") }
        return Parsed(header: header, changes: changes, manifests: manifests, lines: lines.count)
    }
}

// MARK: - The SQLite store's inbox

extension SQLiteHubStore {
    /// Where uploaded bundles are kept: `<hub file>.bundles/<device id>/<name>`.
    public var bundleFolder: String { path + ".bundles" }

    public func keepBundle(named name: String, bytes: [UInt8], from device: Device) async throws -> BundleKept {
        let root = URL(fileURLWithPath: bundleFolder, isDirectory: true).standardizedFileURL
        let inbox = root.appendingPathComponent(device.id, isDirectory: true).standardizedFileURL
        let file = inbox.appendingPathComponent(name, isDirectory: false).standardizedFileURL
        // BundleUpload.name admits no separator and no dot-dot; this is the belt to those braces.
        guard file.deletingLastPathComponent().path == inbox.path, inbox.deletingLastPathComponent().path == root.path else {
            throw BundleUpload.bad("it would leave the device's inbox")
        }
        let relative = "\(device.id)/\(name)"
        return try await withCheckedThrowingContinuation { cont in
            DispatchQueue.global().async {
                cont.resume(with: Result { try Self.write(bytes, to: file.path, in: inbox.path, shown: relative) })
            }
        }
    }

    /// Creates the file exclusively (never following a link, never replacing another file),
    /// flushed to disk before it is named: written in full or not at all.
    static func write(_ bytes: [UInt8], to path: String, in folder: String, shown: String) throws -> BundleKept {
        do { try OwnerOnly.makeFolder(folder) } catch {
            throw ReplicaError.storage("cannot create the bundle inbox \(folder): \(error.localizedDescription)")
        }
        if let existing = FileManager.default.contents(atPath: path) {
            guard existing.elementsEqual(bytes) else {
                throw HubFailure(.nameTaken, "this device already uploaded another bundle named \(shown.split(separator: "/").last ?? ""); choose another name")
            }
            return BundleKept(path: shown, again: true)
        }
        let partial = path + ".partial-" + Hex.random(bytes: 6)
        let fd = open(partial, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, OwnerOnly.fileMode)
        guard fd >= 0 else { throw ReplicaError.storage("cannot create \(partial): \(String(cString: strerror(errno)))") }
        fchmod(fd, OwnerOnly.fileMode)
        defer {
            Glibc.close(fd)
            unlink(partial)  // once linked, the file lives on under its name
        }
        var written = 0
        try bytes.withUnsafeBytes { buf in
            while written < buf.count {
                let n = Glibc.write(fd, buf.baseAddress! + written, buf.count - written)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw ReplicaError.storage("cannot write the bundle \(shown): \(String(cString: strerror(errno)))")
                }
                written += n
            }
        }
        guard fsync(fd) == 0 else { throw ReplicaError.storage("cannot flush the bundle \(shown): \(String(cString: strerror(errno)))") }
        // link(2) fails if the name exists: two uploads of one name at once keep the first.
        guard link(partial, path) == 0 else {
            if errno == EEXIST, let existing = FileManager.default.contents(atPath: path), existing.elementsEqual(bytes) {
                return BundleKept(path: shown, again: true)
            }
            if errno == EEXIST { throw HubFailure(.nameTaken, "another bundle with this name arrived at the same time") }
            throw ReplicaError.storage("cannot name the bundle \(shown): \(String(cString: strerror(errno)))")
        }
        return BundleKept(path: shown, again: false)
    }
}

/// A bundle file kept in a device's inbox.
public struct BundleKept: Sendable {
    /// Its path in the hub's bundle folder: `DEVICE/NAME`.
    public var path: String
    /// True when the same file had been uploaded under this name before.
    public var again: Bool

    public init(path: String, again: Bool) {
        self.path = path
        self.again = again
    }
}

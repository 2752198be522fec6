import Crypto
import FieldSyncCore
import Foundation

// MARK: - ChangeDigest

/// The SHA-256 of a change's canonical text (Protocol/changeset.md §2.3): what a manifest lists
/// and therefore what a signature covers.
public struct ChangeDigest: Hashable, Sendable, CustomStringConvertible {
    public let bytes: [UInt8]

    public init?(bytes: [UInt8]) {
        guard bytes.count == 32 else { return nil }
        self.bytes = bytes
    }

    /// The digest of a change's canonical text.
    public init(canonicalText text: String) {
        var text = text
        bytes = text.withUTF8 { Array(SHA256.hash(data: UnsafeRawBufferPointer($0))) }
    }

    public var description: String { Hex.encode(bytes) }
}

// MARK: - Manifest

/// A signed list of change digests: one signature vouches for many changes (Protocol/changeset.md §7).
///
/// A site signs a manifest of its own changes when it writes them to a bundle; the hub signs a
/// manifest of every page it serves. A change is authentic to a receiver when a manifest whose
/// signature holds lists its digest, and the signer may vouch for it (``Provenance``).
///
///     let m = Manifest.signed(by: key, as: key.site, digests: changes.map { ChangeDigest(canonicalText: $0) })
///     m.signatureHolds    // true
public struct Manifest: Sendable, Equatable {
    /// Most digests in one manifest: a pull page's most changes.
    public static let maxDigests = 5000

    public var signer: SiteID
    /// The signer's 32-byte Ed25519 public key.
    public var key: [UInt8]
    public var digests: [ChangeDigest]
    public var signature: [UInt8]

    public init(signer: SiteID, key: [UInt8], digests: [ChangeDigest], signature: [UInt8]) {
        self.signer = signer
        self.key = key
        self.digests = digests
        self.signature = signature
    }

    /// Signs `digests` with `key` on behalf of `signer` (the key's own site, or the hub's id).
    public static func signed(by key: SiteKey, as signer: SiteID, digests: [ChangeDigest]) -> Manifest {
        Manifest(signer: signer, key: key.publicKey, digests: digests, signature: key.sign(message(signer: signer, digests: digests)))
    }

    /// What is signed: `fieldsync-manifest-v1`, LF, the signer's 16 hex digits, LF, then the
    /// SHA-256 of the digests concatenated in order.
    public static func message(signer: SiteID, digests: [ChangeDigest]) -> [UInt8] {
        var h = SHA256()
        for d in digests { h.update(data: d.bytes) }
        var m = Array("fieldsync-manifest-v1\n".utf8)
        site(signer, into: &m)
        m.append(0x0A)
        m += Array(h.finalize())
        return m
    }

    static func site(_ s: SiteID, into out: inout [UInt8]) { s.appendHex(to: &out) }

    /// True when the signature is the key's signature of this signer and these digests. Who may
    /// sign for what is ``Provenance``'s question.
    public var signatureHolds: Bool {
        SiteIdentity.isValid(signature: signature, of: Self.message(signer: signer, digests: digests), publicKey: key)
    }

    // MARK: JSON

    /// `{"signer":SITE,"key":B64,"digests":B64,"sig":B64}` (a bundle's manifest line, a push's `manifests`).
    public var json: JSONValue {
        .object(JSONObject([
            ("signer", .string(signer.hex)), ("key", .string(Base64.encode(key))),
            ("digests", .string(Base64.encode(digests.flatMap(\.bytes)))), ("sig", .string(Base64.encode(signature))),
        ]))
    }

    /// A page's proof: the same without `digests`, which the receiver computes from the page.
    public var proofJSON: JSONValue {
        .object(JSONObject([("signer", .string(signer.hex)), ("key", .string(Base64.encode(key))), ("sig", .string(Base64.encode(signature)))]))
    }

    /// Reads a manifest; `digests` given when they come from elsewhere (a page's changes).
    public init(json: JSONValue, digests given: [ChangeDigest]? = nil) throws(InputError) {
        guard case .object(let o) = json else { throw InputError("manifest", "expected an object {signer, key, digests, sig}") }
        let allowed: Set<String> = given == nil ? ["signer", "key", "digests", "sig"] : ["signer", "key", "sig"]
        if let k = o.keys.first(where: { !allowed.contains($0) }) { throw InputError("manifest", "unknown key \"\(k.prefix(40))\"") }
        guard let s = o["signer"]?.stringValue, let signer = SiteID(hex: s) else {
            throw InputError("manifest.signer", "expected the signing site's id (16 lowercase hex digits)")
        }
        guard let k = o["key"]?.stringValue, let key = Base64.decode(k), key.count == 32 else {
            throw InputError("manifest.key", "expected a 32-byte Ed25519 public key in base64")
        }
        guard let g = o["sig"]?.stringValue, let sig = Base64.decode(g), sig.count == 64 else {
            throw InputError("manifest.sig", "expected a 64-byte Ed25519 signature in base64")
        }
        var digests: [ChangeDigest] = []
        if let given {
            digests = given
        } else {
            // Checked before decoding: a huge string must not be decoded to be refused.
            guard let d = o["digests"]?.stringValue, d.utf8.count <= (Self.maxDigests * 32 + 2) / 3 * 4,
                  let raw = Base64.decode(d), raw.count % 32 == 0, !raw.isEmpty else {
                throw InputError("manifest.digests", "expected 1…\(Self.maxDigests) SHA-256 digests (32 bytes each) in base64")
            }
            digests.reserveCapacity(raw.count / 32)
            for i in stride(from: 0, to: raw.count, by: 32) { digests.append(ChangeDigest(bytes: Array(raw[i..<i + 32]))!) }
        }
        guard digests.count <= Self.maxDigests else { throw InputError("manifest.digests", "at most \(Self.maxDigests) digests in one manifest") }
        self.init(signer: signer, key: key, digests: digests, signature: sig)
    }
}

// MARK: - Provenance

/// Who may vouch for which change: the rule every receiver applies (Protocol/changeset.md §7).
///
/// - A site vouches for its own changes: the manifest's signer is the change's site and the
///   signer's id is derived from the manifest's key.
/// - The receiver's hub vouches for any change it serves: the key is the hub's, as the receiver
///   learnt it from the hub itself (enrolment, or the hub's own store), under any signer id (a
///   restored hub takes a new id and keeps its key).
public struct Provenance: Sendable {
    /// The hub this receiver trusts, when it has one.
    public var hub: (site: SiteID, key: [UInt8])?

    public init(hub: (site: SiteID, key: [UInt8])?) { self.hub = hub }

    public enum Authority: Sendable, Equatable {
        /// The site itself: vouches for changes whose id names this site.
        case origin(SiteID)
        /// The receiver's hub: vouches for every change it lists.
        case hub
    }

    /// The authority of a manifest whose signature holds, or nil when it vouches for nothing here.
    public func authority(of m: Manifest) -> Authority? {
        guard m.signatureHolds else { return nil }
        // The hub's key, whichever id it signs as: a hub restored from a backup writes under a
        // new id with the same key, and its pages and earlier proofs both still hold.
        if let hub, hub.key == m.key { return .hub }
        if SiteIdentity.owns(m.key, m.signer) { return .origin(m.signer) }
        return nil
    }

    public static func vouches(_ a: Authority, for id: ChangeID) -> Bool {
        switch a {
        case .hub: return true
        case .origin(let s): return id.site == s
        }
    }
}

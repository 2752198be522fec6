import Crypto
import FieldSyncCore
import Foundation

// MARK: - SiteKey

/// A site's Ed25519 signing key. The site's id is derived from its public key, so anyone can
/// check that a key belongs to a site id without asking a directory (Protocol/changeset.md §7).
///
///     let key = SiteKey()
///     key.site              // the 64-bit site id this key speaks for
///     let sig = key.sign(message)
///     SiteIdentity.isValid(signature: sig, of: message, publicKey: key.publicKey)   // true
public struct SiteKey: @unchecked Sendable {  // immutable; swift-crypto's key is a value not marked Sendable
    let key: Curve25519.Signing.PrivateKey
    /// The site id derived from the public key.
    public let site: SiteID

    /// A new random key (redrawn in the negligible case that its site id would be zero).
    public init() {
        var k = Curve25519.Signing.PrivateKey()
        while SiteIdentity.site(for: Array(k.publicKey.rawRepresentation)) == nil { k = Curve25519.Signing.PrivateKey() }
        key = k
        site = SiteIdentity.site(for: Array(k.publicKey.rawRepresentation))!
    }

    /// A key kept earlier (its 32-byte seed), or nil when the bytes are not one.
    public init?(seed: [UInt8]) {
        guard seed.count == 32, let k = try? Curve25519.Signing.PrivateKey(rawRepresentation: seed),
              let s = SiteIdentity.site(for: Array(k.publicKey.rawRepresentation)) else { return nil }
        key = k
        site = s
    }

    /// The 32-byte seed to keep in the owner-only secrets file.
    public var seed: [UInt8] { Array(key.rawRepresentation) }

    /// The 32-byte public key that travels with signatures.
    public var publicKey: [UInt8] { Array(key.publicKey.rawRepresentation) }

    public func sign(_ message: [UInt8]) -> [UInt8] {
        // Signing cannot fail for a well-formed key; an error here would be a broken library.
        Array(try! key.signature(for: message))
    }
}

// MARK: - SiteIdentity

/// How a site id follows from a public key, and signature checks.
public enum SiteIdentity {
    static let domain = Array("fieldsync-site-v1".utf8)

    /// The site id of a public key: the first 8 bytes, big-endian, of
    /// SHA-256("fieldsync-site-v1" ‖ key). Nil for a key that is not 32 bytes, or a zero id.
    public static func site(for publicKey: [UInt8]) -> SiteID? {
        guard publicKey.count == 32 else { return nil }
        var h = SHA256()
        h.update(data: domain)
        h.update(data: publicKey)
        var raw: UInt64 = 0
        for b in h.finalize().prefix(8) { raw = raw << 8 | UInt64(b) }
        return raw == 0 ? nil : SiteID(raw: raw)
    }

    /// True when `publicKey` is the key `site` was derived from.
    public static func owns(_ publicKey: [UInt8], _ site: SiteID) -> Bool { Self.site(for: publicKey) == site }

    /// True when `signature` is an Ed25519 signature of `message` by `publicKey`.
    public static func isValid(signature: [UInt8], of message: [UInt8], publicKey: [UInt8]) -> Bool {
        guard signature.count == 64, let k = try? Curve25519.Signing.PublicKey(rawRepresentation: publicKey) else { return false }
        return k.isValidSignature(signature, for: message)
    }
}

import Crypto
import _CryptoExtras
import FieldSyncCore
import Foundation

// MARK: - SecretHash

/// Hashes of secrets the hub keeps instead of the secrets themselves (device tokens, enrolment
/// codes, session tokens): a copied hub file hands out no working token.
///
///     SecretHash.hex("fst_…")   // SHA-256, lowercase hex
public enum SecretHash {
    public static func hex(_ secret: String) -> String { Hex.encode(Array(SHA256.hash(data: Array(secret.utf8)))) }

    /// HMAC-SHA256 (RFC 2104), for the console's signed login tokens.
    public static func hmac(key: [UInt8], message: [UInt8]) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: key)))
    }
}

// MARK: - PasswordHash

/// Supervisors' passwords: PBKDF2-HMAC-SHA256 (RFC 8018) with a per-account salt and iteration
/// count, as hex. Hashes made by earlier releases (the same function) stay valid.
public enum PasswordHash {
    /// Iterations for new passwords (OWASP's figure for PBKDF2-HMAC-SHA256).
    public static let iterations = 210_000

    /// The hex-encoded 32-byte key; `salt` is used as its UTF-8 bytes. Iterations below 1 derive nothing.
    public static func derive(_ password: String, salt: String, iterations: Int) -> String? {
        guard iterations >= 1,
              let k = try? KDF.Insecure.PBKDF2.deriveKey(from: Array(password.utf8), salt: Array(salt.utf8), using: .sha256,
                                                         outputByteCount: 32, unsafeUncheckedRounds: iterations)
        else { return nil }
        return k.withUnsafeBytes { Hex.encode(Array($0)) }
    }
}

// MARK: - Hex

/// Lowercase hexadecimal text for bytes, random secrets and constant-time comparison.
///
///     Hex.encode([0xde, 0xad])   // "dead"
public enum Hex {
    private static let digits = Array("0123456789abcdef".utf8)

    public static func encode(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0xF)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Random bytes from the system's generator, as lowercase hex.
    public static func random(bytes n: Int) -> String {
        var g = SystemRandomNumberGenerator()
        return encode((0..<n).map { _ in UInt8.random(in: 0...255, using: &g) })
    }

    /// Constant-time comparison of two strings (for secrets).
    public static func equalInConstantTime(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        guard x.count == y.count else { return false }
        var d: UInt8 = 0
        for i in 0..<x.count { d |= x[i] ^ y[i] }
        return d == 0
    }
}

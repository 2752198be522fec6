// MARK: - PBKDF2

/// PBKDF2-HMAC-SHA256 (RFC 8018) for supervisors' passwords on the hub.
///
/// The HMAC's inner and outer key states are computed once, so each iteration costs two
/// compressions of one 64-byte block and no allocation.
///
///     PBKDF2.derive(password: Array("pw".utf8), salt: salt, iterations: 200_000)  // 32 bytes
public enum PBKDF2 {
    public static func derive(password: [UInt8], salt: [UInt8], iterations: Int, length: Int = 32) -> [UInt8] {
        precondition(iterations >= 1)
        var key = password.count > 64 ? SHA256.digest(password) : password
        key += [UInt8](repeating: 0, count: 64 - key.count)
        let inner = SHA256State(afterBlock: key.map { $0 ^ 0x36 })
        let outer = SHA256State(afterBlock: key.map { $0 ^ 0x5c })
        var out: [UInt8] = []
        var block: UInt32 = 1
        while out.count < length {
            // U1 = HMAC(password, salt || INT(block)) — the message may exceed one block.
            var message = salt
            message.append(UInt8(truncatingIfNeeded: block >> 24))
            message.append(UInt8(truncatingIfNeeded: block >> 16))
            message.append(UInt8(truncatingIfNeeded: block >> 8))
            message.append(UInt8(truncatingIfNeeded: block))
            let first = SHA256.hmac(key: password, message: message)
            var u = SHA256State.words(first)
            var t = u
            withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 64) { w in
                for _ in 1..<iterations {
                    inner.finish32(&u, w)
                    outer.finish32(&u, w)
                    for k in 0..<8 { t[k] ^= u[k] }
                }
            }
            for v in t {
                out.append(UInt8(truncatingIfNeeded: v >> 24))
                out.append(UInt8(truncatingIfNeeded: v >> 16))
                out.append(UInt8(truncatingIfNeeded: v >> 8))
                out.append(UInt8(truncatingIfNeeded: v))
            }
            block += 1
        }
        return Array(out.prefix(length))
    }
}

/// SHA-256 chaining state, for hashing a 32-byte message after a precomputed 64-byte block.
struct SHA256State {
    var h: (UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32) =
        (0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19)

    init(afterBlock block: [UInt8]) {
        var w = [UInt32](repeating: 0, count: 16)
        for i in 0..<16 {
            let b0 = UInt32(block[4 * i]) << 24, b1 = UInt32(block[4 * i + 1]) << 16
            let b2 = UInt32(block[4 * i + 2]) << 8, b3 = UInt32(block[4 * i + 3])
            w[i] = b0 | b1 | b2 | b3
        }
        compress(w)
    }

    static func words(_ bytes: [UInt8]) -> [UInt32] {
        (0..<8).map { i -> UInt32 in
            let b0 = UInt32(bytes[4 * i]) << 24, b1 = UInt32(bytes[4 * i + 1]) << 16
            let b2 = UInt32(bytes[4 * i + 2]) << 8, b3 = UInt32(bytes[4 * i + 3])
            return b0 | b1 | b2 | b3
        }
    }

    /// Replaces `m` (8 words) by SHA-256(the block this state has absorbed ‖ m), using `w` as
    /// the 64-word schedule: no allocation per call.
    func finish32(_ m: inout [UInt32], _ w: UnsafeMutableBufferPointer<UInt32>) {
        for t in 0..<8 { w[t] = m[t] }
        // The padding bit, zeros, and the length: (64 + 32) bytes = 768 bits.
        w[8] = 0x8000_0000
        for t in 9..<15 { w[t] = 0 }
        w[15] = 768
        var s = self
        s.compress(schedule: w)
        let (a, b, c, d, e, f, g, hh) = s.h
        m[0] = a; m[1] = b; m[2] = c; m[3] = d; m[4] = e; m[5] = f; m[6] = g; m[7] = hh
    }

    private static let k = SHA256.k

    mutating func compress(_ block: [UInt32]) {
        withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 64) { w in
            for t in 0..<16 { w[t] = block[t] }
            compress(schedule: w)
        }
    }

    /// Compresses the block in `w[0..<16]`, using the rest of `w` for the message schedule.
    mutating func compress(schedule w: UnsafeMutableBufferPointer<UInt32>) {
        do {
            for t in 16..<64 {
                let a = w[t - 15], b = w[t - 2]
                let s0 = (a >> 7 | a << 25) ^ (a >> 18 | a << 14) ^ (a >> 3)
                let s1 = (b >> 17 | b << 15) ^ (b >> 19 | b << 13) ^ (b >> 10)
                w[t] = w[t - 16] &+ s0 &+ w[t - 7] &+ s1
            }
            var (a, b, c, d, e, f, g, hh) = h
            for t in 0..<64 {
                let s1 = (e >> 6 | e << 26) ^ (e >> 11 | e << 21) ^ (e >> 25 | e << 7)
                let ch = (e & f) ^ (~e & g)
                let t1 = hh &+ s1 &+ ch &+ Self.k[t] &+ w[t]
                let s0 = (a >> 2 | a << 30) ^ (a >> 13 | a << 19) ^ (a >> 22 | a << 10)
                let maj = (a & b) ^ (a & c) ^ (b & c)
                (hh, g, f, e, d, c, b, a) = (g, f, e, d &+ t1, c, b, a, t1 &+ s0 &+ maj)
            }
            h = (h.0 &+ a, h.1 &+ b, h.2 &+ c, h.3 &+ d, h.4 &+ e, h.5 &+ f, h.6 &+ g, h.7 &+ hh)
        }
    }
}

// MARK: - Base64

/// Standard base64 with padding (RFC 4648 §4): keys, signatures and digests in JSON. Reading is
/// strict: only the alphabet, correct padding, no whitespace, and the unused bits zero, so one
/// byte string has exactly one text.
///
///     Base64.encode([0xfb, 0xff])   // "+/8="
///     Base64.decode("+/8=")         // [0xfb, 0xff]
public enum Base64 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    private static let values: [UInt8] = {
        var t = [UInt8](repeating: 0xFF, count: 256)
        for (i, c) in alphabet.enumerated() { t[Int(c)] = UInt8(i) }
        return t
    }()

    public static func encode(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var i = 0
        while i + 3 <= bytes.count {
            let n = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2])
            out += [alphabet[Int(n >> 18 & 63)], alphabet[Int(n >> 12 & 63)], alphabet[Int(n >> 6 & 63)], alphabet[Int(n & 63)]]
            i += 3
        }
        switch bytes.count - i {
        case 1:
            let n = UInt32(bytes[i]) << 16
            out += [alphabet[Int(n >> 18 & 63)], alphabet[Int(n >> 12 & 63)], 0x3D, 0x3D]
        case 2:
            let n = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8
            out += [alphabet[Int(n >> 18 & 63)], alphabet[Int(n >> 12 & 63)], alphabet[Int(n >> 6 & 63)], 0x3D]
        default: break
        }
        return String(decoding: out, as: UTF8.self)
    }

    public static func decode(_ text: String) -> [UInt8]? {
        let u = Array(text.utf8)
        guard u.count % 4 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(u.count / 4 * 3)
        var i = 0
        while i < u.count {
            let last = i + 4 == u.count
            let pad = last ? (u[i + 3] == 0x3D ? (u[i + 2] == 0x3D ? 2 : 1) : 0) : 0
            var n: UInt32 = 0
            for k in 0..<(4 - pad) {
                let v = values[Int(u[i + k])]
                guard v != 0xFF else { return nil }
                n |= UInt32(v) << UInt32(18 - 6 * k)
            }
            switch pad {
            case 0: out += [UInt8(n >> 16 & 0xFF), UInt8(n >> 8 & 0xFF), UInt8(n & 0xFF)]
            case 1:
                guard n & 0xFF == 0 else { return nil }
                out += [UInt8(n >> 16 & 0xFF), UInt8(n >> 8 & 0xFF)]
            default:
                guard n & 0xFFFF == 0 else { return nil }
                out.append(UInt8(n >> 16 & 0xFF))
            }
            i += 4
        }
        return out
    }
}

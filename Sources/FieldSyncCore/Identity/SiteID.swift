// MARK: - SiteID

/// The identity of one replica: 64 random bits, written as 16 lowercase hex digits.
///
/// Every change a replica makes carries its site id, so ids never collide between laptops
/// even when two are given the same human name. Ordering is numeric, which equals the order
/// of the hex text, so another implementation can compare the strings.
///
///     let site = SiteID.random()
///     site.hex          // "9f3c2a1b4d5e6f70"
public struct SiteID: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let raw: UInt64

    public init(raw: UInt64) { self.raw = raw }

    public init?(hex: String) {
        guard hex.utf8.count == 16, hex.utf8.allSatisfy(Self.isLowerHex), let v = UInt64(hex, radix: 16) else {
            return nil
        }
        raw = v
    }

    public static func random() -> SiteID {
        var g = SystemRandomNumberGenerator()
        // Zero is reserved so that an uninitialised value is never a real site.
        return SiteID(raw: UInt64.random(in: 1...UInt64.max, using: &g))
    }

    /// A random site id that is none of `taken` (raw values): a hub restored from a backup
    /// takes one beside every id its directory knows.
    public static func random(avoiding taken: Set<UInt64>) -> SiteID {
        var s = random()
        while taken.contains(s.raw) { s = random() }
        return s
    }

    public var hex: String {
        let s = String(raw, radix: 16)
        return String(repeating: "0", count: 16 - s.utf8.count) + s
    }

    public var description: String { hex }

    private static let digits = Array("0123456789abcdef".utf8)

    /// Appends the 16 hex digits without building a String.
    public func appendHex(to out: inout [UInt8]) {
        var shift: UInt64 = 60
        for _ in 0..<16 {
            out.append(Self.digits[Int((raw >> shift) & 0xF)])
            shift &-= 4
        }
    }

    public static func < (a: SiteID, b: SiteID) -> Bool { a.raw < b.raw }

    static func isLowerHex(_ c: UInt8) -> Bool { (0x30...0x39).contains(c) || (0x61...0x66).contains(c) }
}

// MARK: - ChangeID

/// The globally unique id of a change: the site that made it and that site's counter (from 1).
///
/// Written `SITE:COUNTER`, e.g. `9f3c2a1b4d5e6f70:42`. In merge terms this is the change's *dot*.
public struct ChangeID: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let site: SiteID
    public let counter: Int64

    /// The largest counter a change may carry: 2^53 − 1, exact in every JSON reader (and far
    /// beyond any real site: a million edits a day for 24 million years), so that counting on
    /// from any accepted counter never overflows.
    public static let maxCounter: Int64 = (1 << 53) - 1

    public init(site: SiteID, counter: Int64) {
        self.site = site
        self.counter = counter
    }

    public init?(_ text: String) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let site = SiteID(hex: String(parts[0])),
            parts[1].utf8.allSatisfy({ (0x30...0x39).contains($0) }), !parts[1].isEmpty,
            parts[1].utf8.first != 0x30, parts[1].utf8.count <= 16, let c = Int64(parts[1]), c >= 1, c <= Self.maxCounter
        else { return nil }
        self.init(site: site, counter: c)
    }

    public var description: String { "\(site.hex):\(counter)" }

    public static func < (a: ChangeID, b: ChangeID) -> Bool {
        a.site != b.site ? a.site < b.site : a.counter < b.counter
    }
}

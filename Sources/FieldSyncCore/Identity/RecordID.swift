// MARK: - RecordID

/// Makes and checks record ids.
///
/// Records get 32 lowercase hex digits: 48 bits of creation time then 80 random bits, so ids
/// made on different laptops never collide and new rows land at the end of the index.
/// A region's id is its statistical division code (`522224105201`), so two laptops that
/// enter the same village create the same record, which merges instead of duplicating.
public enum RecordID {
    public static func make(kind: RecordKind, nowMs: Int64) -> String {
        precondition(kind != .region, "region ids are their division codes")
        var g = SystemRandomNumberGenerator()
        let time = UInt64(max(0, nowMs)) & 0xFFFF_FFFF_FFFF
        let hi = time << 16 | UInt64.random(in: 0...0xFFFF, using: &g)
        let lo = UInt64.random(in: 0...UInt64.max, using: &g)
        var out: [UInt8] = []
        out.reserveCapacity(32)
        SiteID(raw: hi).appendHex(to: &out)
        SiteID(raw: lo).appendHex(to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Why `id` is not a valid id for a record of `kind`, or nil when it is.
    public static func problem(_ id: String, kind: RecordKind) -> String? {
        if kind == .region {
            return RegionCode.problem(id, allowed: RegionCode.anyLevel)
        }
        guard id.utf8.count == 32, id.utf8.allSatisfy(SiteID.isLowerHex) else {
            return "a record id is 32 lowercase hex digits, got \"\(id.prefix(40))\""
        }
        return nil
    }

}

// MARK: - RegionCode

/// China's statistical division codes: 6 digits for a county, 9 for a township, 12 for a village.
public enum RegionCode {
    public static let anyLevel: Set<Int> = [6, 9, 12]
    public static let village: Set<Int> = [12]

    public static func problem(_ code: String, allowed: Set<Int>) -> String? {
        let lengths = allowed.sorted().map(String.init).joined(separator: ", ")
        guard code.utf8.allSatisfy({ (0x30...0x39).contains($0) }), allowed.contains(code.utf8.count) else {
            return "a division code is \(lengths) digits, got \"\(code.prefix(40))\""
        }
        return nil
    }

    /// The level name of a code, for people.
    public static func levelLabel(_ code: String) -> String {
        switch code.utf8.count {
        case 6: return "县(区)"
        case 9: return "乡镇(街道)"
        case 12: return "村(社区)"
        default: return "区划"
        }
    }
}

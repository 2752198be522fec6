// MARK: - RecordID

/// Makes and checks record ids.
///
/// A record's id starts with its division code: `520221105201-019aa9f1c2d34e5f8a7b6c5d4e3f2a1b`,
/// the village (or, for a cadre, the township or village) then 32 lowercase hex digits — 48 bits
/// of creation time and 80 random bits, so ids made on different laptops never collide and new
/// rows land at the end of the index. The region is part of the identity: a record never moves
/// out of a scope, and the hub can check any change against a device's scope by its row id alone,
/// whatever order changes arrive in. A region's id is its code (`522224105201`), so two laptops
/// entering the same village create the same record, which merges instead of duplicating.
public enum RecordID {
    public static func make(kind: RecordKind, region: String, nowMs: Int64) -> String {
        precondition(kind != .region, "region ids are their division codes")
        var g = SystemRandomNumberGenerator()
        let time = UInt64(max(0, nowMs)) & 0xFFFF_FFFF_FFFF
        let hi = time << 16 | UInt64.random(in: 0...0xFFFF, using: &g)
        let lo = UInt64.random(in: 0...UInt64.max, using: &g)
        var out: [UInt8] = Array(region.utf8)
        out.reserveCapacity(region.utf8.count + 33)
        out.append(UInt8(ascii: "-"))
        SiteID(raw: hi).appendHex(to: &out)
        SiteID(raw: lo).appendHex(to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// The division code a record id starts with (for a region, the id itself).
    public static func region(of id: String) -> String? {
        guard let dash = id.utf8.firstIndex(of: UInt8(ascii: "-")) else {
            return id.utf8.allSatisfy({ (0x30...0x39).contains($0) }) ? id : nil
        }
        return String(id[..<dash])
    }

    /// The part after the dash (creation time, then random digits).
    public static func shortPart(_ id: String) -> Substring {
        guard let dash = id.firstIndex(of: "-") else { return Substring(id) }
        return id[id.index(after: dash)...]
    }

    /// How tables name a record: its last 8 hex digits (random, so distinct even for records
    /// made in the same second). `fieldsync record get` accepts them.
    public static func short(_ id: String) -> String {
        id.contains("-") ? String(id.suffix(8)) : id
    }

    /// Why `id` is not a valid id for a record of `kind`, or nil when it is.
    public static func problem(_ id: String, kind: RecordKind) -> String? { problem(id, spec: kind.spec) }

    /// The same, with the kind's spec from a given schema.
    public static func problem(_ id: String, spec: KindSpec) -> String? {
        guard spec.kind != .region else { return RegionCode.problem(id, allowed: RegionCode.anyLevel) }
        return problem(id, kindName: spec.kind.rawValue, lengths: spec.regionLengths)
    }

    /// The same for a kind known by its key only (a kind of a newer schema): its division code
    /// has one of `lengths`.
    public static func problem(_ id: String, kindName: String, lengths: Set<Int>) -> String? {
        let parts = id.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2, parts[1].utf8.count == 32, parts[1].utf8.allSatisfy(SiteID.isLowerHex),
              parts[0].utf8.allSatisfy({ (0x30...0x39).contains($0) }), lengths.contains(parts[0].utf8.count)
        else {
            let l = lengths.sorted().map(String.init).joined(separator: "/")
            return "a \(kindName) id is its \(l)-digit division code, a dash and 32 lowercase hex digits, got \"\(id.prefix(60))\""
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

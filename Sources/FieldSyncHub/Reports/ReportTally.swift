import FieldSyncCore
#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

// MARK: - VisitTally

/// The visits of a report's period, added up in one pass: the visit figures, the distinct
/// households (in total, per unit, per month) and what each visitor did per month and unit.
///
/// Both stores feed it the rows of the `visitRows` statement as they step through them
/// (``ReportStatement/feedsVisitTally``), so the period's visits are read once and never held
/// as rows. Where the SQL passes it replaces each sorted the period's visits again (counts,
/// three distinct-household counts, the visitors), this costs one hash of the household's and
/// one of the visitor's bytes per row (issue 13: a county report within one scan of the record
/// tables). Text is compared byte for byte, as SQL compares it.
public struct VisitTally: Sendable {
    let unitLength: Int?
    let monthKeys: [String]
    /// year × 12 + month − 1 of the period's first month.
    let firstMonth: Int?

    var total = VisitFigures()
    var unitNames: [String] = []
    var byUnit: [VisitFigures] = []
    var byMonth: [VisitFigures]

    /// Households by the id the tally gives them, and the distinct households of each unit and
    /// month: a household's first unit and its months as bits (periods of up to 64 months),
    /// other (unit, household) and (month, household) pairs in sets.
    var households = ByteInterner()
    var unitHouseholds: [Int] = []
    var monthHouseholds: [Int]
    private var householdUnit: [Int] = []
    private var householdMonthBits: [UInt64] = []
    private var otherUnits = Set<Int>()
    private var otherMonths = Set<Int>()

    struct VisitorKey: Hashable, Sendable { let cadreID: String?; let name: String }
    /// One visitor as the rows name it (a cadre id, or none, and a name): per month of the
    /// period the visits and the latest day, per unit the visits, and the largest village.
    struct Visitor: Sendable {
        let key: VisitorKey
        var monthCounts: [Int]
        var monthLast: [Int]  // YYYYMMDD, 0 for none
        var perUnit: [(unit: Int, count: Int)] = []
        var village = -1      // a village id
    }
    var visitorIDs = ByteInterner()
    var visitors: [Visitor] = []

    /// Villages by id, each with its unit.
    var villages = ByteInterner()
    var villageUnit: [Int] = []
    private var unitIDs: [String: Int] = [:]
    private var lastVillage = -1
    private var scratch: [UInt8] = []

    static let kindBytes = Enumerations.visitKinds.map { Array($0.utf8) }
    static let meetingKind = Enumerations.visitKinds.map { ReportEngine.meetingKinds.contains($0) }

    init(unitLength: Int?, months: [String]) {
        self.unitLength = unitLength
        monthKeys = months
        firstMonth = months.first.flatMap { Self.monthNumber(Array($0.utf8)[...]) }
        byMonth = Array(repeating: VisitFigures(), count: months.count)
        monthHouseholds = Array(repeating: 0, count: months.count)
    }

    /// One visit of the period, as the `visitRows` statement returns it.
    public mutating func add(village: String, date: String, kind: String, attendees: Int64?, household: String?,
                             cadreID: String?, cadreName: String) {
        var (v, d, k, c, n) = (village, date, kind, cadreID, cadreName)
        var h = household
        v.withUTF8 { v in d.withUTF8 { d in k.withUTF8 { k in n.withUTF8 { n in
            func rest(_ h: UnsafeBufferPointer<UInt8>?) {
                if var c {
                    c.withUTF8 { c in add(village: v, date: d, kind: k, attendees: attendees, household: h, cadreID: c, cadreName: n) }
                } else {
                    add(village: v, date: d, kind: k, attendees: attendees, household: h, cadreID: nil, cadreName: n)
                }
            }
            if h != nil { h!.withUTF8 { rest($0) } } else { rest(nil) }
        } } } }
    }

    /// One visit of the period, its text columns as UTF-8 bytes.
    public mutating func add(village: UnsafeBufferPointer<UInt8>, date: UnsafeBufferPointer<UInt8>, kind: UnsafeBufferPointer<UInt8>,
                             attendees: Int64?, household: UnsafeBufferPointer<UInt8>?,
                             cadreID: UnsafeBufferPointer<UInt8>?, cadreName: UnsafeBufferPointer<UInt8>) {
        let vid = villageID(village)
        let u = villageUnit[vid]
        let day = Self.dayNumber(date)
        var m: Int?
        if let f = firstMonth, let day {
            let i: Int = (day / 10_000) * 12 + (day / 100 % 100) - 1 - f
            if i >= 0, i < byMonth.count { m = i }
        }
        let k = Self.kindBytes.firstIndex { ByteInterner.same($0, kind) }
        let meeting = k.map { Self.meetingKind[$0] } ?? false
        let att = meeting ? (attendees ?? 0) : 0
        func count(_ f: inout VisitFigures) {
            f.visits += 1
            if let k { f.byKind[k].count += 1 }
            if meeting { f.meetings += 1; f.meetingAttendees = ReportNumbers.adding(f.meetingAttendees, att) }
        }
        count(&total)
        count(&byUnit[u])
        if let m { count(&byMonth[m]) }

        if let household {
            let known = households.count
            let h = households.id(household)
            if h == known {
                householdUnit.append(u)
                householdMonthBits.append(0)
                unitHouseholds[u] += 1
            } else if householdUnit[h] != u, otherUnits.insert(u << 32 | h).inserted {
                unitHouseholds[u] += 1
            }
            if let m {
                if m < 64 {
                    if householdMonthBits[h] & (1 << m) == 0 { householdMonthBits[h] |= 1 << m; monthHouseholds[m] += 1 }
                } else if otherMonths.insert(m << 32 | h).inserted {
                    monthHouseholds[m] += 1
                }
            }
        }

        // The visitor's key: 1, the cadre id, 0xFF, the name (0xFF is never in UTF-8), or 0, the name.
        scratch.removeAll(keepingCapacity: true)
        if let cadreID { scratch.append(1); scratch.append(contentsOf: cadreID); scratch.append(0xFF) } else { scratch.append(0) }
        scratch.append(contentsOf: cadreName)
        let before = visitorIDs.count
        let p = scratch.withUnsafeBufferPointer { visitorIDs.id($0) }
        if p == before {
            let key = VisitorKey(cadreID: cadreID.map { String(decoding: $0, as: UTF8.self) }, name: String(decoding: cadreName, as: UTF8.self))
            visitors.append(Visitor(key: key, monthCounts: Array(repeating: 0, count: byMonth.count), monthLast: Array(repeating: 0, count: byMonth.count)))
        }
        if let m, let day {
            visitors[p].monthCounts[m] += 1
            if day > visitors[p].monthLast[m] { visitors[p].monthLast[m] = day }
        }
        if let i = visitors[p].perUnit.firstIndex(where: { $0.unit == u }) {
            visitors[p].perUnit[i].count += 1
        } else {
            visitors[p].perUnit.append((u, 1))
        }
        let top = visitors[p].village
        if top != vid, top < 0 || villages.key(vid).lexicographicallyPrecedes(villages.key(top)) == false { visitors[p].village = vid }
    }

    /// The village's id; rows come village by village, so the last one is remembered.
    private mutating func villageID(_ village: UnsafeBufferPointer<UInt8>) -> Int {
        if lastVillage >= 0, villages.matches(lastVillage, village) { return lastVillage }
        let before = villages.count
        let id = villages.id(village)
        if id == before {
            // Its unit: the code cut to the unit's length, as SQL substr counts (code points); "" for a village report.
            let code = String(decoding: village, as: UTF8.self)
            let unit = unitLength.map { String(String.UnicodeScalarView(code.unicodeScalars.prefix($0))) } ?? ""
            let u: Int
            if let known = unitIDs[unit] {
                u = known
            } else {
                u = unitNames.count
                unitIDs[unit] = u
                unitNames.append(unit)
                byUnit.append(VisitFigures())
                unitHouseholds.append(0)
            }
            villageUnit.append(u)
        }
        lastVillage = id
        return id
    }

    /// `YYYY-MM-DD` as the number YYYYMMDD, nil when it is not of that form.
    static func dayNumber(_ d: UnsafeBufferPointer<UInt8>) -> Int? {
        guard d.count == 10, d[4] == 0x2D, d[7] == 0x2D else { return nil }
        var n = 0
        for i in [0, 1, 2, 3, 5, 6, 8, 9] {
            let c = d[i]
            guard c >= 0x30, c <= 0x39 else { return nil }
            n = n * 10 + Int(c - 0x30)
        }
        return n
    }

    /// `YYYY-MM` as year × 12 + month − 1.
    static func monthNumber(_ m: ArraySlice<UInt8>) -> Int? {
        var s = Array(m) + Array("-01".utf8)
        return s.withUnsafeMutableBufferPointer { b in dayNumber(UnsafeBufferPointer(b)).map { ($0 / 10_000) * 12 + ($0 / 100 % 100) - 1 } }
    }

    /// YYYYMMDD as `YYYY-MM-DD`.
    static func dayText(_ n: Int) -> String {
        func pad(_ x: Int, _ w: Int) -> String { let s = String(x); return String(repeating: "0", count: max(0, w - s.count)) + s }
        return pad(n / 10_000, 4) + "-" + pad(n / 100 % 100, 2) + "-" + pad(n % 100, 2)
    }
}

// MARK: - ByteInterner

/// Gives each distinct byte string a small id (0, 1, 2, … in order of first sight), exactly:
/// an open-addressing table of ids by a hash of the bytes (seeded per process, so crafted text
/// cannot pile up in one chain), each hit compared byte for byte with the string it stands for.
struct ByteInterner: Sendable {
    private var keys: [[UInt8]] = []
    private var hashes: [UInt64] = []
    /// id + 1 per slot, 0 for an empty one; the size a power of two, at most half full.
    private var slots = [Int32](repeating: 0, count: 1024)
    private static let seed = UInt64.random(in: 1...UInt64.max)

    var count: Int { keys.count }
    func key(_ id: Int) -> [UInt8] { keys[id] }
    func matches(_ id: Int, _ bytes: UnsafeBufferPointer<UInt8>) -> Bool { Self.same(keys[id], bytes) }

    static func same(_ a: [UInt8], _ b: UnsafeBufferPointer<UInt8>) -> Bool {
        guard a.count == b.count else { return false }
        guard let q = b.baseAddress else { return a.isEmpty }
        return a.withUnsafeBufferPointer { memcmp($0.baseAddress!, q, a.count) == 0 }
    }

    /// A 64-bit hash of the bytes, eight at a time (multiply and rotate, then a final mix).
    static func hash(_ b: UnsafeBufferPointer<UInt8>) -> UInt64 {
        var h = seed ^ (UInt64(b.count) &* 0x9E37_79B9_7F4A_7C15)
        guard let base = b.baseAddress else { return h }
        let raw = UnsafeRawPointer(base)
        var i = 0
        while i + 8 <= b.count {
            let w = raw.loadUnaligned(fromByteOffset: i, as: UInt64.self)
            h = ((h ^ w) &* 0xBF58_476D_1CE4_E5B9).rotatedLeft(29)
            i += 8
        }
        var tail: UInt64 = 0
        var shift: UInt64 = 0
        while i < b.count { tail |= UInt64(b[i]) << shift; shift += 8; i += 1 }
        h = (h ^ tail) &* 0x94D0_49BB_1331_11EB
        h ^= h >> 31
        h = h &* 0xBF58_476D_1CE4_E5B9
        return h ^ (h >> 29)
    }

    mutating func id(_ bytes: UnsafeBufferPointer<UInt8>) -> Int {
        let h = Self.hash(bytes)
        let mask = slots.count - 1
        var i = Int(truncatingIfNeeded: h) & mask
        while true {
            let s = Int(slots[i])
            if s == 0 { break }
            if hashes[s - 1] == h, Self.same(keys[s - 1], bytes) { return s - 1 }
            i = (i + 1) & mask
        }
        let id = keys.count
        keys.append(Array(bytes))
        hashes.append(h)
        slots[i] = Int32(truncatingIfNeeded: id + 1)
        if keys.count * 2 > slots.count { grow() }
        return id
    }

    private mutating func grow() {
        slots = [Int32](repeating: 0, count: slots.count * 2)
        let mask = slots.count - 1
        for (id, h) in hashes.enumerated() {
            var i = Int(truncatingIfNeeded: h) & mask
            while slots[i] != 0 { i = (i + 1) & mask }
            slots[i] = Int32(truncatingIfNeeded: id + 1)
        }
    }
}

extension UInt64 {
    fileprivate func rotatedLeft(_ n: UInt64) -> UInt64 { (self << n) | (self >> (64 - n)) }
}

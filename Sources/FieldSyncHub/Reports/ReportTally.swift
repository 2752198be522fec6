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
/// (``ReportStatement/feed``, ``ReportTallies/add(_:attendees:column:)``), so the period's visits are read once and never held
/// as rows. Where the SQL passes it replaces each sorted the period's visits again (counts,
/// three distinct-household counts, the visitors), this costs one hash of the household's and
/// one of the visitor's bytes per row (issue 13: a county report within one scan of the record
/// tables). Text is compared byte for byte, as SQL compares it.
public struct VisitTally: Sendable {
    let unitLength: Int?
    let months: PeriodMonths

    var total = VisitFigures()
    var places = UnitsOfVillages()
    var unitNames: [String] { places.names }
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

    private var scratch: [UInt8] = []

    static let kindBytes = Enumerations.visitKinds.map { Array($0.utf8) }
    static let meetingKind = Enumerations.visitKinds.map { ReportEngine.meetingKinds.contains($0) }

    init(unitLength: Int?, months: [String]) {
        self.unitLength = unitLength
        self.months = PeriodMonths(months)
        byMonth = Array(repeating: VisitFigures(), count: months.count)
        monthHouseholds = Array(repeating: 0, count: months.count)
    }

    /// One visit of the period, its text columns as UTF-8 bytes.
    public mutating func add(village: UnsafeBufferPointer<UInt8>, date: UnsafeBufferPointer<UInt8>, kind: UnsafeBufferPointer<UInt8>,
                             attendees: Int64?, household: UnsafeBufferPointer<UInt8>?,
                             cadreID: UnsafeBufferPointer<UInt8>?, cadreName: UnsafeBufferPointer<UInt8>) {
        let vid = places.village(village, length: unitLength)
        let u = places.villageUnit[vid]
        while byUnit.count < places.names.count { byUnit.append(VisitFigures()); unitHouseholds.append(0) }
        let day = Self.dayNumber(date)
        let m = months.index(ofDay: day)
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
        if top != vid, top < 0 || places.villages.key(vid).lexicographicallyPrecedes(places.villages.key(top)) == false { visitors[p].village = vid }
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

// MARK: - Feeding the tallies

extension ReportTallies {
    /// The column of `visitRows` that holds the attendees (an integer; the others are text).
    public static let attendeesColumn = 3

    /// Adds one row of a tallied statement (``ReportStatement/feed``): its text columns read
    /// through `column` (UTF-8 bytes by the statement's column index, nil for NULL) and, for
    /// visits, the attendees. Both stores feed the tallies through this, each reading columns
    /// its own way.
    public mutating func add(_ feed: ReportFeed, attendees: Int64?, column: (Int) -> UnsafeBufferPointer<UInt8>?) {
        let none = UnsafeBufferPointer<UInt8>(start: nil, count: 0)
        switch feed {
        case .visits:
            visits.add(village: column(0) ?? none, date: column(1) ?? none, kind: column(2) ?? none, attendees: attendees,
                       household: column(4), cadreID: column(5), cadreName: column(6) ?? none)
        case .disputes:
            disputes.add(village: column(0) ?? none, reportedOn: column(1), category: column(2) ?? none, status: column(3) ?? none,
                         resolvedOn: column(4))
        case .results:
            break
        }
    }
}

// MARK: - DisputeTally

/// The region's disputes that a report counts, added up in one pass as the `disputeRows`
/// statement gives them: received in the period (per unit, month, category and status),
/// resolved in it (with the days each took, for the medians), and still open among those
/// received up to its last day. Dates and text are compared byte for byte, as SQL compares them.
public struct DisputeTally: Sendable {
    let unitLength: Int?
    let from: [UInt8], to: [UInt8]
    let months: PeriodMonths

    var units = UnitsOfVillages()
    var total = DisputeFigures()
    var byUnit: [DisputeFigures] = []
    var byMonth: [DisputeFigures]
    var byCategory = Array(repeating: DisputeFigures(), count: Enumerations.disputeCategories.count)
    /// Days to resolve per group (total, unit, month, category), for the medians.
    var days: (total: [Int64: Int], unit: [Int: [Int64: Int]], month: [Int: [Int64: Int]], category: [Int: [Int64: Int]]) = ([:], [:], [:], [:])
    /// Still open, received before the period and per month of it.
    var openBefore = 0
    var openByMonth: [Int]

    static let categoryBytes = Enumerations.disputeCategories.map { Array($0.utf8) }
    static let statusBytes = Enumerations.disputeStatuses.map { Array($0.utf8) }
    static let resolvedStatus = Enumerations.disputeStatuses.firstIndex(of: "已化解")
    static let openStatuses = Set(["受理", "调解中"].compactMap { Enumerations.disputeStatuses.firstIndex(of: $0) })

    init(unitLength: Int?, months: [String], from: String, to: String) {
        self.unitLength = unitLength
        (self.from, self.to) = (Array(from.utf8), Array(to.utf8))
        self.months = PeriodMonths(months)
        byMonth = Array(repeating: DisputeFigures(), count: months.count)
        openByMonth = Array(repeating: 0, count: months.count)
    }

    /// One dispute, its text columns as UTF-8 bytes (nil for NULL).
    public mutating func add(village: UnsafeBufferPointer<UInt8>, reportedOn: UnsafeBufferPointer<UInt8>?, category: UnsafeBufferPointer<UInt8>,
                             status: UnsafeBufferPointer<UInt8>, resolvedOn: UnsafeBufferPointer<UInt8>?) {
        let u = units.unit(of: village, length: unitLength)
        while byUnit.count < units.names.count { byUnit.append(DisputeFigures()) }
        let c = Self.categoryBytes.firstIndex { ByteInterner.same($0, category) }
        let s = Self.statusBytes.firstIndex { ByteInterner.same($0, status) }
        let reported = reportedOn.map { VisitTally.dayNumber($0) } ?? nil

        if let r = reportedOn, !Self.less(r, from), !Self.less(to, r) {
            let m = months.index(ofDay: reported)
            func receive(_ f: inout DisputeFigures) {
                f.received += 1
                if let s {
                    if s == Self.resolvedStatus { f.receivedResolved += 1 }
                    f.byStatus[s].count += 1
                }
            }
            receive(&total)
            receive(&byUnit[u])
            if let m { receive(&byMonth[m]) }
            if let c { receive(&byCategory[c]) }
        }
        if let s, Self.openStatuses.contains(s), let r = reportedOn, !Self.less(to, r) {
            total.stillOpen += 1
            byUnit[u].stillOpen += 1
            if let c { byCategory[c].stillOpen += 1 }
            if Self.less(r, from) { openBefore += 1 } else if let m = months.index(ofDay: reported) { openByMonth[m] += 1 }
        }
        if s == Self.resolvedStatus, let done = resolvedOn, !Self.less(done, from), !Self.less(to, done) {
            // Whole days from reported to resolved (0 when a date cannot be read, as SQL's NULL read as 0).
            let resolved = VisitTally.dayNumber(done)
            let d = (resolved.map(Self.epochDay) ?? nil).flatMap { a in (reported.map(Self.epochDay) ?? nil).map { a - $0 } } ?? 0
            days.total[d, default: 0] += 1
            days.unit[u, default: [:]][d, default: 0] += 1
            if let m = months.index(ofDay: resolved) { days.month[m, default: [:]][d, default: 0] += 1 }
            if let c { days.category[c, default: [:]][d, default: 0] += 1 }
        }
    }

    static func epochDay(_ ymd: Int) -> Int64? {
        let m = ymd / 100 % 100, d = ymd % 100
        guard (1...12).contains(m), d >= 1, d <= DateCheck.daysIn(year: ymd / 10_000, month: m) else { return nil }
        return UTCTime.days(year: Int64(ymd / 10_000), month: m, day: d)
    }

    /// a < b, byte for byte (as SQL compares text).
    static func less(_ a: UnsafeBufferPointer<UInt8>, _ b: [UInt8]) -> Bool {
        b.withUnsafeBufferPointer { less(a, $0) }
    }
    static func less(_ a: [UInt8], _ b: UnsafeBufferPointer<UInt8>) -> Bool {
        a.withUnsafeBufferPointer { less($0, b) }
    }
    static func less(_ a: UnsafeBufferPointer<UInt8>, _ b: UnsafeBufferPointer<UInt8>) -> Bool {
        let n = min(a.count, b.count)
        if n > 0, let p = a.baseAddress, let q = b.baseAddress {
            let c = memcmp(p, q, n)
            if c != 0 { return c < 0 }
        }
        return a.count < b.count
    }
}

// MARK: - PeriodMonths

/// The months of a report's period (`YYYY-MM`, in order, none missing), to find a day's.
struct PeriodMonths: Sendable {
    /// year × 12 + month − 1 of the first month.
    let first: Int?
    let count: Int

    init(_ months: [String]) {
        count = months.count
        first = months.first.flatMap { m in
            Array((m + "-01").utf8).withUnsafeBufferPointer { VisitTally.dayNumber($0) }.map { $0 / 10_000 * 12 + $0 / 100 % 100 - 1 }
        }
    }

    /// The month's index in the period, for a day as YYYYMMDD (``VisitTally/dayNumber(_:)``).
    func index(ofDay day: Int?) -> Int? {
        guard let first, let day else { return nil }
        let i: Int = day / 10_000 * 12 + day / 100 % 100 - 1 - first
        return i >= 0 && i < count ? i : nil
    }
}

// MARK: - UnitsOfVillages

/// Each village code's unit of the report (its code cut to the unit's length, as SQL substr
/// counts: by code point; "" for a village report) by a small id; rows come village by village,
/// so the last village is remembered.
struct UnitsOfVillages: Sendable {
    var villages = ByteInterner()
    var villageUnit: [Int] = []
    var names: [String] = []
    private var ids: [String: Int] = [:]
    private var last = -1

    mutating func village(_ village: UnsafeBufferPointer<UInt8>, length: Int?) -> Int {
        if last >= 0, villages.matches(last, village) { return last }
        let before = villages.count
        let id = villages.id(village)
        if id == before {
            let code = String(decoding: village, as: UTF8.self)
            let unit = length.map { String(String.UnicodeScalarView(code.unicodeScalars.prefix($0))) } ?? ""
            if let known = ids[unit] {
                villageUnit.append(known)
            } else {
                ids[unit] = names.count
                villageUnit.append(names.count)
                names.append(unit)
            }
        }
        last = id
        return id
    }

    mutating func unit(of village: UnsafeBufferPointer<UInt8>, length: Int?) -> Int {
        villageUnit[self.village(village, length: length)]
    }
}

import FieldSyncCore

// MARK: - VisitTally

/// The visits of a report's period, added up in one pass: the visit figures, the distinct
/// households (in total, per unit, per month) and what each visitor did per month and unit.
///
/// Both stores feed it the rows of the `visitRows` statement as they step through them
/// (``ReportStatement/feedsVisitTally``), so the period's visits are read once and never held
/// as rows. Where the SQL passes it replaces each sorted the period's visits again (counts,
/// three distinct-household counts, the visitors), this costs one hash lookup per household and
/// per visitor and row (issue 13: a county report within one scan of the record tables).
public struct VisitTally: Sendable {
    let unitLength: Int?
    let monthIndex: [String: Int]

    var total = VisitFigures()
    var unitNames: [String] = []
    var unitIndex: [String: Int] = [:]
    var byUnit: [VisitFigures] = []
    var byMonth: [VisitFigures]

    /// Households by the id the tally gives them; (unit, household) and (month, household) seen.
    var householdIDs: [String: Int] = [:]
    var householdUnits = Set<Int>()
    var householdMonths = Set<Int>()

    struct VisitorKey: Hashable, Sendable { let cadreID: String?; let name: String }
    /// One visitor as the rows name it (a cadre id, or none, and a name): per month of the
    /// period the visits and the latest date, per unit the visits, and the largest village.
    struct Visitor: Sendable {
        var monthCounts: [Int]
        var monthLast: [String]
        var perUnit: [Int: Int] = [:]
        var village = ""
    }
    var visitorIndex: [VisitorKey: Int] = [:]
    var visitors: [Visitor] = []

    private var lastVillage = "", lastUnit = -1

    init(unitLength: Int?, months: [String]) {
        self.unitLength = unitLength
        monthIndex = Dictionary(months.enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
        byMonth = Array(repeating: VisitFigures(), count: months.count)
    }

    /// One visit of the period, as the `visitRows` statement returns it.
    public mutating func add(village: String, date: String, kind: String, attendees: Int64?, household: String?,
                             cadreID: String?, cadreName: String) {
        let u = unit(of: village)
        let m = monthIndex[String(date.utf8.prefix(7)) ?? ""]
        let k = Enumerations.visitKinds.firstIndex(of: kind)
        let meeting = ReportEngine.meetingKinds.contains(kind)
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
            let h: Int
            if let known = householdIDs[household] { h = known } else { h = householdIDs.count; householdIDs[household] = h }
            householdUnits.insert(u << 32 | h)
            if let m { householdMonths.insert(m << 32 | h) }
        }

        let key = VisitorKey(cadreID: cadreID, name: cadreName)
        let v: Int
        if let known = visitorIndex[key] {
            v = known
        } else {
            v = visitors.count
            visitorIndex[key] = v
            visitors.append(Visitor(monthCounts: Array(repeating: 0, count: byMonth.count), monthLast: Array(repeating: "", count: byMonth.count)))
        }
        if let m {
            visitors[v].monthCounts[m] += 1
            if date > visitors[v].monthLast[m] { visitors[v].monthLast[m] = date }
        }
        visitors[v].perUnit[u, default: 0] += 1
        if village > visitors[v].village { visitors[v].village = village }
    }

    /// The index of the village's unit (its code cut to the unit's length; "" for a village
    /// report). Rows come village by village, so the last one is remembered.
    private mutating func unit(of village: String) -> Int {
        if lastUnit >= 0, village == lastVillage { return lastUnit }
        let code = unitLength.map { String(String.UnicodeScalarView(village.unicodeScalars.prefix($0))) } ?? ""  // as SQL substr counts
        let u: Int
        if let known = unitIndex[code] {
            u = known
        } else {
            u = unitNames.count
            unitIndex[code] = u
            unitNames.append(code)
            byUnit.append(VisitFigures())
        }
        (lastVillage, lastUnit) = (village, u)
        return u
    }
}

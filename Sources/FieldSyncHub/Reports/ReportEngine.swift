import FieldSyncCore
import GRDB

// MARK: - ReportEngine

/// Computes a ``HubReport`` with SQL aggregates over the hub's tables (`fs_visit`, `fs_dispute`,
/// `fs_project`, `fs_cadre`, `fs_region`, `fs_conflict`, `hub_device`); Swift only adds up the
/// small grouped results into totals, per-region and per-month figures.
///
/// Every query selects the region by a range on the division code (`code >= R AND code < R||':'`,
/// ':' sorting right after '9'), which the report indexes answer, and reads live records only
/// (`_deleted = 0`). Protocol/reports.md defines each figure; this file is its implementation.
struct ReportEngine {
    let db: Database
    let query: ReportQuery
    let now: Int64

    let region: String
    /// The code length of the breakdown units, or nil for a village (no breakdown).
    let unitLength: Int?
    let lo: String, hi: String
    let from: String, to: String
    let months: [Month]

    struct Month {
        let key: String   // YYYY-MM
        let first: String // first day within the period
        let last: String  // last day within the period
    }

    init(db: Database, query: ReportQuery, now: Int64) throws {
        guard let region = query.region else {
            throw HubFailure(400, "bad_parameter", "region: a report needs a division-code prefix (6 digits for a county, 9 for a township, 12 for a village)")
        }
        self.db = db
        self.query = query
        self.now = now
        self.region = region
        unitLength = [2: 4, 4: 6, 6: 9, 9: 12][region.utf8.count]
        lo = region
        hi = region + ":"
        from = query.from
        to = query.to
        months = Self.months(from: query.from, to: query.to)
    }

    static func months(from: String, to: String) -> [Month] {
        var out: [Month] = []
        guard var y = Int(from.prefix(4)), var m = Int(from.dropFirst(5).prefix(2)) else { return [] }
        while true {
            let key = String(format4(y)) + "-" + (m < 10 ? "0" : "") + String(m)
            guard key <= String(to.prefix(7)) else { break }
            let firstDay = key + "-01"
            let lastDay = key + "-" + String(DateCheck.daysIn(year: y, month: m))
            out.append(Month(key: key, first: max(firstDay, from), last: min(lastDay, to)))
            m += 1
            if m == 13 { m = 1; y += 1 }
        }
        return out
    }

    static func format4(_ y: Int) -> String { String(repeating: "0", count: max(0, 4 - String(y).count)) + String(y) }

    /// The SQL expression of a code column's breakdown unit ('' for a village report).
    func unit(_ column: String) -> String {
        unitLength.map { "substr(\(column), 1, \($0))" } ?? "''"
    }

    func monthOf(_ column: String) -> String { "substr(\(column), 1, 7)" }

    static let meetingKinds = ["院坝会", "群众会"]

    // MARK: Run

    func run() throws -> HubReport {
        var unitCodes = Set<String>()
        let visitParts = try visitAggregates(&unitCodes)
        let disputeParts = try disputeAggregates(&unitCodes)
        let projectParts = try projectAggregates(&unitCodes)
        let cadreParts = try cadreAggregates(&unitCodes)
        let syncParts = try syncAggregates(&unitCodes)

        let names = try regionNames()
        if let l = unitLength {
            for code in names.keys where code.utf8.count == l && code.hasPrefix(region) { unitCodes.insert(code) }
        }
        unitCodes.remove("")
        let units = unitCodes.sorted().map { ReportRegion(code: $0, name: names[$0]) }

        func section<F>(_ parts: (total: F, unit: [String: F], month: [String: F]), _ zero: F, months: Bool = true) -> ReportSection<F> {
            ReportSection(total: parts.total,
                          byUnit: units.map { ($0, parts.unit[$0.code] ?? zero) },
                          byMonth: months ? self.months.map { ($0.key, parts.month[$0.key] ?? zero) } : [])
        }
        return HubReport(
            region: ReportRegion(code: region, name: names[region]), from: from, to: to, inactiveDays: query.inactiveDays,
            generatedAt: now, units: units, months: months.map(\.key),
            visits: section(visitParts, VisitFigures()),
            disputes: section((disputeParts.total, disputeParts.unit, disputeParts.month), DisputeFigures()),
            disputeCategories: disputeParts.categories,
            projects: section(projectParts, ProjectFigures()),
            cadres: section((cadreParts.total, cadreParts.unit, cadreParts.month), CadreFigures()),
            cadreList: cadreParts.list,
            sync: section((syncParts.total, syncParts.unit, [:]), SyncFigures(), months: false),
            devices: syncParts.devices)
    }

    func regionNames() throws -> [String: String] {
        var out: [String: String] = [:]
        let rows = try Row.fetchCursor(db, sql: "SELECT id, name FROM fs_region WHERE _deleted = 0 AND id >= ? AND id < ?", arguments: [lo, hi])
        while let r = try rows.next() { out[r[0]] = r[1] }
        if let n = try String.fetchOne(db, sql: "SELECT name FROM fs_region WHERE _deleted = 0 AND id = ?", arguments: [region]) { out[region] = n }
        return out
    }

    // MARK: Visits

    func visitAggregates(_ units: inout Set<String>) throws -> (total: VisitFigures, unit: [String: VisitFigures], month: [String: VisitFigures]) {
        var total = VisitFigures(), byUnit: [String: VisitFigures] = [:], byMonth: [String: VisitFigures] = [:]
        let kinds = Enumerations.visitKinds
        let meetings = Self.meetingKinds.map { "'\($0)'" }.joined(separator: ", ")
        let range = "_deleted = 0 AND village >= ? AND village < ? AND visit_date >= ? AND visit_date <= ?"
        let args: StatementArguments = [lo, hi, from, to]
        let rows = try Row.fetchCursor(db, sql: """
            SELECT \(unit("village")) AS u, \(monthOf("visit_date")) AS m, visit_kind, count(*),
                   COALESCE(sum(CASE WHEN visit_kind IN (\(meetings)) THEN attendees END), 0)
            FROM fs_visit INDEXED BY hub_report_visit WHERE \(range) GROUP BY u, m, visit_kind
            """, arguments: args)
        func add(_ f: inout VisitFigures, _ kind: String, _ n: Int, _ attendees: Int64) {
            f.visits += n
            if let i = kinds.firstIndex(of: kind) { f.byKind[i].count += n }
            if Self.meetingKinds.contains(kind) { f.meetings += n; f.meetingAttendees += attendees }
        }
        while let r = try rows.next() {
            let u: String = r[0], m: String = r[1], kind: String = r[2], n: Int = r[3], att: Int64 = r[4]
            units.insert(u)
            add(&total, kind, n, att)
            add(&byUnit[u, default: VisitFigures()], kind, n, att)
            add(&byMonth[m, default: VisitFigures()], kind, n, att)
        }
        // A household: its record id, else village and 户主; a visit naming neither counts none.
        let household = "COALESCE(household_id, CASE WHEN household_head != '' THEN village || '/' || household_head END)"
        total.households = try Int.fetchOne(db, sql: "SELECT count(DISTINCT \(household)) FROM fs_visit INDEXED BY hub_report_visit WHERE \(range)", arguments: args) ?? 0
        for (group, isUnit) in [(unit("village"), true), (monthOf("visit_date"), false)] where isUnit ? unitLength != nil : true {
            let rows = try Row.fetchCursor(db, sql: "SELECT \(group) AS g, count(DISTINCT \(household)) FROM fs_visit INDEXED BY hub_report_visit WHERE \(range) GROUP BY g", arguments: args)
            while let r = try rows.next() {
                let g: String = r[0], n: Int = r[1]
                if isUnit { byUnit[g, default: VisitFigures()].households = n } else { byMonth[g, default: VisitFigures()].households = n }
            }
        }
        return (total, byUnit, byMonth)
    }

    // MARK: Disputes

    func disputeAggregates(_ units: inout Set<String>) throws
        -> (total: DisputeFigures, unit: [String: DisputeFigures], month: [String: DisputeFigures], categories: [(category: String, figures: DisputeFigures)])
    {
        var total = DisputeFigures(), byUnit: [String: DisputeFigures] = [:], byMonth: [String: DisputeFigures] = [:]
        var byCategory: [String: DisputeFigures] = [:]
        let statuses = Enumerations.disputeStatuses
        let inRegion = "_deleted = 0 AND village >= ? AND village < ?"
        // Received in the period, by status.
        let received = try Row.fetchCursor(db, sql: """
            SELECT \(unit("village")) AS u, \(monthOf("reported_on")) AS m, category, status, count(*)
            FROM fs_dispute INDEXED BY hub_report_dispute WHERE \(inRegion) AND reported_on >= ? AND reported_on <= ?
            GROUP BY u, m, category, status
            """, arguments: [lo, hi, from, to])
        func addReceived(_ f: inout DisputeFigures, _ status: String, _ n: Int) {
            f.received += n
            if status == "已化解" { f.receivedResolved += n }
            if let i = statuses.firstIndex(of: status) { f.byStatus[i].count += n }
        }
        while let r = try received.next() {
            let u: String = r[0], m: String = r[1], c: String = r[2], s: String = r[3], n: Int = r[4]
            units.insert(u)
            addReceived(&total, s, n)
            addReceived(&byUnit[u, default: DisputeFigures()], s, n)
            addReceived(&byMonth[m, default: DisputeFigures()], s, n)
            addReceived(&byCategory[c, default: DisputeFigures()], s, n)
        }
        // Resolved in the period, with the days each took (for the medians).
        var days: (total: [Int64], unit: [String: [Int64]], month: [String: [Int64]], category: [String: [Int64]]) = ([], [:], [:], [:])
        let resolved = try Row.fetchCursor(db, sql: """
            SELECT \(unit("village")) AS u, \(monthOf("resolved_on")) AS m, category,
                   CAST(julianday(resolved_on) - julianday(reported_on) AS INTEGER)
            FROM fs_dispute INDEXED BY hub_report_dispute WHERE \(inRegion) AND status = '已化解' AND resolved_on >= ? AND resolved_on <= ?
            """, arguments: [lo, hi, from, to])
        while let r = try resolved.next() {
            let u: String = r[0], m: String = r[1], c: String = r[2], d: Int64 = r[3]
            units.insert(u)
            days.total.append(d)
            days.unit[u, default: []].append(d)
            days.month[m, default: []].append(d)
            days.category[c, default: []].append(d)
        }
        func settle(_ f: inout DisputeFigures, _ d: [Int64]?) {
            guard let d, !d.isEmpty else { return }
            f.resolved = d.count
            f.medianDaysToResolveTimesTwo = Self.twiceMedian(d)
        }
        settle(&total, days.total)
        for (u, d) in days.unit { settle(&byUnit[u, default: DisputeFigures()], d) }
        for (m, d) in days.month { settle(&byMonth[m, default: DisputeFigures()], d) }
        for (c, d) in days.category { settle(&byCategory[c, default: DisputeFigures()], d) }
        // Still open (by today's status) among those received up to the period's last day, or
        // per month up to the month's last day; '' gathers those received before the period.
        let open = try Row.fetchCursor(db, sql: """
            SELECT \(unit("village")) AS u, CASE WHEN reported_on < ? THEN '' ELSE \(monthOf("reported_on")) END AS m, category, count(*)
            FROM fs_dispute INDEXED BY hub_report_dispute WHERE \(inRegion) AND status IN ('受理', '调解中') AND reported_on <= ?
            GROUP BY u, m, category
            """, arguments: [from, lo, hi, to])
        var openByMonth: [String: Int] = [:]
        while let r = try open.next() {
            let u: String = r[0], m: String = r[1], c: String = r[2], n: Int = r[3]
            units.insert(u)
            total.stillOpen += n
            byUnit[u, default: DisputeFigures()].stillOpen += n
            byCategory[c, default: DisputeFigures()].stillOpen += n
            openByMonth[m, default: 0] += n
        }
        var running = openByMonth[""] ?? 0
        for m in months {
            running += openByMonth[m.key] ?? 0
            byMonth[m.key, default: DisputeFigures()].stillOpen = running
        }
        let categories = Enumerations.disputeCategories.map { (category: $0, figures: byCategory[$0] ?? DisputeFigures()) }
        return (total, byUnit, byMonth, categories)
    }

    /// Twice the median (so that a median halfway between two whole days stays whole).
    static func twiceMedian(_ values: [Int64]) -> Int64? {
        guard !values.isEmpty else { return nil }
        let s = values.sorted()
        let n = s.count
        return n % 2 == 1 ? 2 * s[n / 2] : s[n / 2 - 1] + s[n / 2]
    }

    // MARK: Projects

    func projectAggregates(_ units: inout Set<String>) throws -> (total: ProjectFigures, unit: [String: ProjectFigures], month: [String: ProjectFigures]) {
        var total = ProjectFigures(), byUnit: [String: ProjectFigures] = [:], byMonth: [String: ProjectFigures] = [:]
        let kinds = Enumerations.projectKinds, statuses = Enumerations.projectStatuses
        func add(_ f: inout ProjectFigures, _ r: Row) {
            let kind: String = r[2], status: String = r[3], n: Int = r[4]
            f.projects += n
            if let i = kinds.firstIndex(of: kind) { f.byKind[i].count += n }
            if let i = statuses.firstIndex(of: status) { f.byStatus[i].count += n }
            f.budgetFen += r[5]
            f.spentFen += r[6]
            f.householdsBenefiting += r[7]
            f.started += r[8]
            f.completed += r[9]
        }
        let sums = """
            count(*), COALESCE(sum(budget_fen), 0), COALESCE(sum(spent_fen), 0), COALESCE(sum(households_benefiting), 0),
            COALESCE(sum(started_on >= s), 0), COALESCE(sum(completed_on >= s AND completed_on <= e), 0)
            """
        // Active in [s, e]: started on or before e, not completed before s.
        let active = "p._deleted = 0 AND p.village >= ? AND p.village < ? AND p.started_on IS NOT NULL AND p.started_on <= e AND (p.completed_on IS NULL OR p.completed_on >= s)"
        let whole = try Row.fetchCursor(db, sql: """
            SELECT \(unit("village")) AS u, '' AS m, project_kind, status, \(sums)
            FROM (SELECT ? AS s, ? AS e) JOIN fs_project p INDEXED BY hub_report_project WHERE \(active)
            GROUP BY u, project_kind, status
            """, arguments: [from, to, lo, hi])
        while let r = try whole.next() {
            let u: String = r[0]
            units.insert(u)
            add(&total, r)
            add(&byUnit[u, default: ProjectFigures()], r)
        }
        if !months.isEmpty {
            let values = months.map { _ in "(?, ?, ?)" }.joined(separator: ", ")
            var args: [DatabaseValueConvertible] = []
            for m in months { args += [m.key, m.first, m.last] }
            args += [lo, hi]
            let perMonth = try Row.fetchCursor(db, sql: """
                WITH months(m, s, e) AS (VALUES \(values))
                SELECT '' AS u, m, project_kind, status, \(sums)
                FROM months JOIN fs_project p INDEXED BY hub_report_project WHERE \(active)
                GROUP BY m, project_kind, status
                """, arguments: StatementArguments(args))
            while let r = try perMonth.next() {
                let m: String = r[1]
                add(&byMonth[m, default: ProjectFigures()], r)
            }
        }
        return (total, byUnit, byMonth)
    }

    // MARK: Cadres

    struct CadreRecord {
        let id: String, name: String, place: String, started: String?, ended: String?
        func onPost(_ day: String) -> Bool { (started.map { $0 <= day } ?? true) && (ended.map { $0 >= day } ?? true) }
    }

    /// One visitor's visits: per month ('' = before the period) the count and latest date, and
    /// per unit the count within the period.
    struct Visitor {
        var perMonth: [String: (count: Int, last: String)] = [:]
        var perUnit: [String: Int] = [:]
        var village = ""

        func last(upTo month: String) -> String? {
            perMonth.filter { $0.key <= month }.map(\.value.last).max()
        }
        var inPeriod: Int { perMonth.filter { !$0.key.isEmpty }.reduce(0) { $0 + $1.value.count } }
    }

    func cadreAggregates(_ units: inout Set<String>) throws
        -> (total: CadreFigures, unit: [String: CadreFigures], month: [String: CadreFigures], list: [CadreActivity])
    {
        var records: [CadreRecord] = []
        let rows = try Row.fetchCursor(db, sql: """
            SELECT id, name, village, started_on, ended_on FROM fs_cadre WHERE _deleted = 0 AND village >= ? AND village < ? ORDER BY id
            """, arguments: [lo, hi])
        while let r = try rows.next() { records.append(CadreRecord(id: r[0], name: r[1], place: r[2], started: r[3], ended: r[4])) }
        // A visit without cadre_id is credited to the region's one cadre record of that name;
        // when none or several have it, to the name alone.
        var byName: [String: [Int]] = [:]
        for (i, c) in records.enumerated() { byName[c.name, default: []].append(i) }
        let recordIndex = Dictionary(records.enumerated().map { ($1.id, $0) }, uniquingKeysWith: { a, _ in a })

        var visitors: [String: Visitor] = [:]  // "id:<record id>" or "name:<name>"
        var nameOf: [String: String] = [:]      // a cadre id → the (largest) name its visits give
        let visits = try Row.fetchCursor(db, sql: """
            SELECT cadre_id, cadre_name, \(unit("village")) AS u, CASE WHEN visit_date < ? THEN '' ELSE \(monthOf("visit_date")) END AS m,
                   count(*), max(visit_date), max(village)
            FROM fs_visit INDEXED BY hub_report_visit WHERE _deleted = 0 AND village >= ? AND village < ? AND visit_date <= ?
            GROUP BY cadre_id, cadre_name, u, m
            """, arguments: [from, lo, hi, to])
        while let r = try visits.next() {
            let cid: String? = r[0], name: String = r[1], u: String = r[2], m: String = r[3], n: Int = r[4], last: String = r[5], village: String = r[6]
            let key: String
            if let cid {
                key = "id:" + cid
            } else if let same = byName[name], same.count == 1 {
                key = "id:" + records[same[0]].id
            } else {
                key = "name:" + name
            }
            var v = visitors[key] ?? Visitor()
            let old = v.perMonth[m]
            v.perMonth[m] = ((old?.count ?? 0) + n, max(old?.last ?? "", last))
            if !m.isEmpty { v.perUnit[u, default: 0] += n; units.insert(u) }
            v.village = max(v.village, village)
            if let cid { nameOf[cid] = max(nameOf[cid] ?? "", name) }
            visitors[key] = v
        }
        func inactive(_ c: CadreRecord, _ v: Visitor?, monthKey: String, day: String) -> Bool {
            guard let last = v?.last(upTo: monthKey) else { return true }
            return Self.dayNumber(last) <= Self.dayNumber(day) - Int64(query.inactiveDays)
        }
        var total = CadreFigures(), byUnit: [String: CadreFigures] = [:], byMonth: [String: CadreFigures] = [:]
        let lastMonth = months.last?.key ?? String(to.prefix(7))
        var list: [CadreActivity] = []
        for c in records {
            let v = visitors["id:" + c.id]
            let onPost = c.onPost(to)
            let idle = onPost && inactive(c, v, monthKey: lastMonth, day: to)
            let u = unitLength.flatMap { c.place.utf8.count >= $0 ? String(c.place.prefix($0)) : nil }
            if onPost {
                total.cadres += 1
                if idle { total.inactive += 1 }
                if let u {
                    units.insert(u)
                    byUnit[u, default: CadreFigures()].cadres += 1
                    if idle { byUnit[u, default: CadreFigures()].inactive += 1 }
                }
            }
            for m in months where c.onPost(m.last) {
                byMonth[m.key, default: CadreFigures()].cadres += 1
                if inactive(c, v, monthKey: m.key, day: m.last) { byMonth[m.key, default: CadreFigures()].inactive += 1 }
            }
            list.append(CadreActivity(id: c.id, name: c.name, region: c.place, onPost: onPost, visits: v?.inPeriod ?? 0,
                                      lastVisit: v?.last(upTo: lastMonth), inactive: idle))
        }
        for (key, v) in visitors.sorted(by: { $0.key < $1.key }) {
            let visits = v.inPeriod
            if visits > 0 {
                total.visitingCadres += 1
                total.visits += visits
            }
            for (u, n) in v.perUnit {
                byUnit[u, default: CadreFigures()].visitingCadres += 1
                byUnit[u, default: CadreFigures()].visits += n
            }
            for (m, x) in v.perMonth where !m.isEmpty {
                byMonth[m, default: CadreFigures()].visitingCadres += 1
                byMonth[m, default: CadreFigures()].visits += x.count
            }
            let isRecord = key.hasPrefix("id:") && recordIndex[String(key.dropFirst(3))] != nil
            if !isRecord && visits > 0 {
                let id = key.hasPrefix("id:") ? String(key.dropFirst(3)) : nil
                let name = key.hasPrefix("name:") ? String(key.dropFirst(5)) : (id.flatMap { nameOf[$0] } ?? "")
                list.append(CadreActivity(id: id, name: name, region: v.village, onPost: false, visits: visits,
                                          lastVisit: v.last(upTo: lastMonth), inactive: false))
            }
        }
        list.sort { ($0.region, $0.name, $0.id ?? "") < ($1.region, $1.name, $1.id ?? "") }
        return (total, byUnit, byMonth, list)
    }

    static func dayNumber(_ date: String) -> Int64 { (UTCTime.parseISO(date) ?? 0) / 86_400_000 }

    // MARK: Sync health

    func syncAggregates(_ units: inout Set<String>) throws -> (total: SyncFigures, unit: [String: SyncFigures], devices: [DeviceHealth]) {
        var total = SyncFigures(), byUnit: [String: SyncFigures] = [:]
        var devices: [DeviceHealth] = []
        let rows = try Row.fetchAll(db, sql: """
            SELECT id, name, scope, enrolled, revoked, last_sync, last_seen, last_error, last_error_at, pull_cursor
            FROM hub_device WHERE scope >= ? AND scope < ? ORDER BY scope, created, id
            """, arguments: [lo, hi])
        for r in rows {
            let id: String = r[0], scope: String = r[2], enrolled: Int64? = r[3], revoked: Int64? = r[4]
            let lastSync: Int64? = r[5], lastError: String? = r[7], cursor: Int64 = r[9]
            let status = revoked != nil ? "revoked" : enrolled == nil ? "awaiting enrolment" : "enrolled"
            let live = status == "enrolled"
            let pending: Int64 = live ? try Int64.fetchOne(db, sql: """
                SELECT count(*) FROM fs_change WHERE seq > ? AND row >= ? AND row < ? AND (peer IS NULL OR peer != ?)
                """, arguments: [cursor, scope, scope + ":", id]) ?? 0 : 0
            let lag = live ? lastSync.map { max(0, now - $0) } : nil
            devices.append(DeviceHealth(id: id, name: r[1], scope: scope, status: status, lastSync: lastSync, lastSeen: r[6],
                                        lagMs: lag, pending: pending, lastError: live ? lastError : nil, lastErrorAt: live ? r[8] : nil))
            func add(_ f: inout SyncFigures) {
                switch status {
                case "revoked": f.revoked += 1
                case "awaiting enrolment": f.awaitingEnrolment += 1
                default:
                    f.devices += 1
                    if let s = lastSync {
                        f.lastSync = max(f.lastSync ?? s, s)
                        f.oldestSync = min(f.oldestSync ?? s, s)
                    } else {
                        f.neverSynced += 1
                    }
                    if let lag { f.maxLagMs = max(f.maxLagMs ?? lag, lag) }
                    if lastError != nil { f.withErrors += 1 }
                    f.pendingChanges += pending
                }
            }
            add(&total)
            if let l = unitLength, scope.utf8.count >= l {
                let u = String(scope.prefix(l))
                units.insert(u)
                add(&byUnit[u, default: SyncFigures()])
            }
        }
        let conflicts = try Row.fetchCursor(db, sql: """
            SELECT \(unit("row")) AS u, count(*) FROM fs_conflict WHERE row >= ? AND row < ? GROUP BY u
            """, arguments: [lo, hi])
        while let r = try conflicts.next() {
            let u: String = r[0], n: Int = r[1]
            total.conflictsOpen += n
            // A conflict on the region record itself (a township's own record) has no unit.
            if unitLength != nil, u.utf8.count == unitLength, u.utf8.allSatisfy({ (0x30...0x39).contains($0) }) {
                units.insert(u)
                byUnit[u, default: SyncFigures()].conflictsOpen += n
            }
        }
        return (total, byUnit, devices)
    }
}

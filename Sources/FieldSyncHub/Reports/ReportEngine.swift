import FieldSyncCore

// MARK: - ReportSQL

/// The few places where the hub's two stores speak different SQL. Everything else in a report
/// is one text for both (the same ranges, groupings and sums) and one tally in Swift, so the
/// figures cannot drift apart.
public struct ReportSQL: Sendable {
    /// The change log (`fs_change` in SQLite, `hub_change` in PostgreSQL).
    public let changeTable: String
    /// SQLite is told which covering index to use; PostgreSQL's planner chooses.
    public let indexHints: Bool
    /// Tallied rows (a report's visits and disputes) come packed, an array per column for each
    /// village, instead of a row each: the PostgreSQL driver costs microseconds per row it
    /// delivers (a county's 316,000 visits took ≈ 0.8 s as rows), while SQLite steps rows in
    /// the process for a few hundred nanoseconds each.
    public var packsRows: Bool { !indexHints }

    public init(changeTable: String, indexHints: Bool) {
        (self.changeTable, self.indexHints) = (changeTable, indexHints)
    }

    public static let sqlite = ReportSQL(changeTable: "fs_change", indexHints: true)
    public static let postgres = ReportSQL(changeTable: "hub_change", indexHints: false)

    func table(_ t: String, index: String, as alias: String? = nil) -> String {
        let named = alias.map { "\(t) AS \($0)" } ?? t
        return indexHints ? "\(named) INDEXED BY \(index)" : named
    }
}

/// One statement of a report: SQL with `?` placeholders, and its text arguments.
public struct ReportStatement: Sendable {
    public let key: String
    public let sql: String
    public let args: [String]
    /// A tallied statement whose rows come packed: one row per value of its first column, every
    /// other column an array of the rows' values, in the same order (``ReportSQL/packsRows``).
    public let packed: Bool

    /// Where the statement's rows go as they are stepped through: into the results (by key), or
    /// into one of the report's tallies — ``VisitTally`` (`add(village:date:kind:attendees:
    /// household:cadreID:cadreName:)`) or ``DisputeTally`` (`add(village:reportedOn:category:
    /// status:resolvedOn:)`), columns in that order.
    public var feed: ReportFeed { ReportFeed(key: key) }

    /// The SQL with `$1`, `$2`, … instead of `?` (PostgreSQL). The report's SQL holds no `?`
    /// inside a literal.
    public var numberedSQL: String {
        var out = "", n = 0
        for ch in sql {
            if ch == "?" { n += 1; out += "$\(n)" } else { out.append(ch) }
        }
        return out
    }
}

public enum ReportFeed: Sendable {
    case results, visits, disputes

    /// Where the rows of the statement named `key` go.
    init(key: String) {
        self = key == ReportEngine.visitRowsKey ? .visits : key == ReportEngine.disputeRowsKey ? .disputes : .results
    }
}

/// What a report's rows were added up into while the store read them.
public struct ReportTallies: Sendable {
    public var visits: VisitTally
    public var disputes: DisputeTally
}

/// A value a report statement returns: every column is cast to an integer or text.
public enum ReportValue: Sendable, Equatable {
    case int(Int64)
    case text(String)
    case null
}

/// A row of a report query's result.
public struct ReportRow: Sendable {
    public let cells: [ReportValue]
    public init(_ cells: [ReportValue]) { self.cells = cells }

    subscript(i: Int) -> ReportValue { i < cells.count ? cells[i] : .null }
    func text(_ i: Int) -> String { if case .text(let s) = self[i] { return s }; if case .int(let n) = self[i] { return String(n) }; return "" }
    func optText(_ i: Int) -> String? { if case .null = self[i] { return nil }; return text(i) }
    func int(_ i: Int) -> Int64 { if case .int(let n) = self[i] { return n }; if case .text(let s) = self[i] { return Int64(s) ?? 0 }; return 0 }
    func optInt(_ i: Int) -> Int64? { if case .null = self[i] { return nil }; return int(i) }
    func count(_ i: Int) -> Int { Int(clamping: int(i)) }
}

// MARK: - ReportEngine

/// Computes a ``HubReport`` with SQL aggregates over the hub's tables (`fs_visit`, `fs_dispute`,
/// `fs_project`, `fs_cadre`, `fs_region`, `fs_conflict`, `hub_device`, the change log); Swift only
/// adds up the small grouped results into totals, per-region and per-month figures.
///
/// A report is planned first — ``statements``, none depending on another's result — then the
/// store runs them all in one consistent read (a SQLite read transaction, a PostgreSQL
/// repeatable-read transaction) and ``assemble(_:)`` makes the report. Both stores thus run one
/// text of the rules.
///
/// Every query selects the region by a range on the division code (`code >= R AND code < R||':'`,
/// ':' sorting right after '9'; PostgreSQL columns use the "C" collation so that it does), which
/// the report indexes answer, and reads live records only (`_deleted = 0`). Sums are cast to
/// 64-bit integers. Protocol/reports.md defines each figure; this file is its implementation.
public struct ReportEngine: Sendable {
    let query: ReportQuery
    let now: Int64
    let sql: ReportSQL

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

    public init(query: ReportQuery, now: Int64, sql: ReportSQL) throws {
        guard let region = query.region else {
            throw HubFailure(.badParameter, "region: a report needs a division-code prefix (6 digits for a county, 9 for a township, 12 for a village)")
        }
        self.query = query
        self.now = now
        self.sql = sql
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


    static let meetingKinds = ["院坝会", "群众会"]
    static let visitRowsKey = "visitRows"
    static let disputeRowsKey = "disputeRows"

    /// Empty tallies for this report's `visitRows` and `disputeRows`.
    public func tallies() -> ReportTallies {
        ReportTallies(visits: VisitTally(unitLength: unitLength, months: months.map(\.key)),
                      disputes: DisputeTally(unitLength: unitLength, months: months.map(\.key), from: from, to: to))
    }

    var visits: String { sql.table("fs_visit", index: "hub_report_visit") }
    var disputes: String { sql.table("fs_dispute", index: "hub_report_dispute") }
    var projects: String { sql.table("fs_project", index: "hub_report_project", as: "p") }

    // MARK: Plan

    /// The report's statements, to run in one consistent read.
    public var statements: [ReportStatement] {
        var out: [ReportStatement] = []
        func add(_ key: String, _ sql: String, _ args: [String]) {
            out.append(ReportStatement(key: key, sql: sql, args: args, packed: self.sql.packsRows && ReportFeed(key: key) != .results))
        }
        /// A tallied statement's columns: as they are, or packed — the first, then each other
        /// one as an array per value of the first (``ReportSQL/packsRows``), with `groupedBy`.
        func tallied(_ columns: [String]) -> String {
            guard sql.packsRows, let first = columns.first else { return "SELECT " + columns.joined(separator: ", ") }
            return "SELECT " + ([first] + columns.dropFirst().map { "array_agg(\($0))" }).joined(separator: ", ")
        }
        func groupedBy(_ first: String) -> String { sql.packsRows ? "\nGROUP BY \(first)" : "" }
        add("regions", "SELECT id, name FROM fs_region WHERE _deleted = 0 AND id >= ? AND id < ?", [lo, hi])
        add("region", "SELECT name FROM fs_region WHERE _deleted = 0 AND id = ?", [region])

        // Visits: the period's rows, read once into a VisitTally (counts, households, visitors).
        // The villages of the region are found first by seeking from one to the next, then each
        // village's period is a range of the report index: the region's earlier and later years
        // are not read.
        let household = "COALESCE(v.household_id, CASE WHEN v.household_head <> '' THEN v.village || '/' || v.household_head END)"
        let visitColumns = ["v.visit_date", "v.visit_kind", "v.attendees", household, "v.cadre_id", "v.cadre_name"]
        let visitRows = sql.packsRows
            // One row per village: its period's visits as arrays, aggregated where they are read
            // (a GROUP BY would sort the county's visits again).
            ? """
              SELECT vs.x, p.* FROM vs CROSS JOIN LATERAL (
                SELECT \(visitColumns.map { "array_agg(\($0))" }.joined(separator: ", ")) FROM fs_visit AS v
                WHERE v.village = vs.x AND v._deleted = 0 AND v.visit_date >= ? AND v.visit_date <= ?) AS p
              WHERE vs.x IS NOT NULL
              """
            : """
              SELECT v.village, \(visitColumns.joined(separator: ", "))
              FROM vs CROSS JOIN \(sql.table("fs_visit", index: "hub_report_visit", as: "v"))
              WHERE v.village = vs.x AND v._deleted = 0 AND v.visit_date >= ? AND v.visit_date <= ?
              """
        add(Self.visitRowsKey, """
            WITH RECURSIVE vs(x) AS (
              SELECT (SELECT min(village) FROM \(visits) WHERE _deleted = 0 AND village >= ? AND village < ?)
              UNION ALL
              SELECT (SELECT min(village) FROM \(visits) WHERE _deleted = 0 AND village > vs.x AND village < ?) FROM vs WHERE vs.x IS NOT NULL)
            \(visitRows)
            """, [lo, hi, hi, from, to])

        // Disputes: the region's that a report counts — received in the period, resolved in it,
        // or still open (by today's status) and received by its last day — read once into a
        // DisputeTally (three grouped passes before, each sorting its rows).
        add(Self.disputeRowsKey, """
            \(tallied(["village", "reported_on", "category", "status", "resolved_on"])) FROM \(disputes)
            WHERE _deleted = 0 AND village >= ? AND village < ?
              AND ((reported_on >= ? AND reported_on <= ?) OR (status IN ('受理', '调解中') AND reported_on <= ?)
                   OR (status = '已化解' AND resolved_on >= ? AND resolved_on <= ?))\(groupedBy("village"))
            """, [lo, hi, from, to, to, from, to])

        // Projects active in the period (started on or before its last day, not completed before
        // its first); Swift adds them up in total, per unit and per month (active in [s, e]:
        // started on or before e, not completed before s).
        add("projectRows", """
            SELECT \(unit("village")), project_kind, status, budget_fen, spent_fen, households_benefiting, started_on, completed_on
            FROM \(projects) WHERE p._deleted = 0 AND p.village >= ? AND p.village < ? AND p.started_on IS NOT NULL AND p.started_on <= ?
              AND (p.completed_on IS NULL OR p.completed_on >= ?)
            """, [lo, hi, to, from])

        // Cadre records, each with its latest credited visit before the period (by its id, and by
        // its name among visits without an id), one index seek each.
        add("cadres", """
            SELECT c.id, c.name, c.village, c.started_on, c.ended_on,
              (SELECT max(v.visit_date) FROM \(sql.table("fs_visit", index: "hub_report_cadre_visit", as: "v"))
                 WHERE v._deleted = 0 AND v.cadre_id = c.id AND v.visit_date < ? AND v.village >= ? AND v.village < ?),
              (SELECT max(v.visit_date) FROM \(sql.table("fs_visit", index: "hub_report_named_visit", as: "v"))
                 WHERE v._deleted = 0 AND v.cadre_id IS NULL AND v.cadre_name = c.name AND v.visit_date < ? AND v.village >= ? AND v.village < ?)
            FROM fs_cadre AS c WHERE c._deleted = 0 AND c.village >= ? AND c.village < ? ORDER BY c.id
            """, [from, lo, hi, from, lo, hi, lo, hi])

        // Sync health: devices (with the changes waiting for each live one) and open conflicts.
        add("devices", """
            SELECT id, name, scope, enrolled, revoked, last_sync, last_seen, last_error, last_error_at,
              CASE WHEN enrolled IS NOT NULL AND revoked IS NULL THEN
                (SELECT count(*) FROM \(sql.changeTable) c WHERE c.seq > d.pull_cursor AND c.row >= d.scope AND c.row < d.scope || ':'
                   AND (c.peer IS NULL OR c.peer <> d.id))
              ELSE 0 END
            FROM hub_device d WHERE scope >= ? AND scope < ? ORDER BY scope, created, id
            """, [lo, hi])
        add("conflicts", "SELECT \(unit("row")) AS u, count(*) FROM fs_conflict WHERE row >= ? AND row < ? GROUP BY u", [lo, hi])
        return out
    }

    // MARK: Assemble

    /// The report from the statements' results (by key).
    public func assemble(_ results: [String: [ReportRow]], _ tallies: ReportTallies) -> HubReport {
        let rows = { (key: String) in results[key] ?? [] }
        var unitCodes = Set<String>()
        let visitParts = visitAggregates(tallies.visits, &unitCodes)
        let disputeParts = disputeAggregates(tallies.disputes, &unitCodes)
        let projectParts = projectAggregates(rows, &unitCodes)
        let cadreParts = cadreAggregates(rows, tallies.visits, &unitCodes)
        let syncParts = syncAggregates(rows, &unitCodes)

        var names: [String: String] = [:]
        for r in rows("regions") { names[r.text(0)] = r.text(1) }
        if let n = rows("region").first { names[region] = n.text(0) }
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

    typealias Rows = (String) -> [ReportRow]

    // MARK: Visits

    func visitAggregates(_ t: VisitTally, _ units: inout Set<String>) -> (total: VisitFigures, unit: [String: VisitFigures], month: [String: VisitFigures]) {
        var total = t.total, byUnit: [String: VisitFigures] = [:], byMonth: [String: VisitFigures] = [:]
        total.households = t.households.count
        for (i, code) in t.unitNames.enumerated() {
            units.insert(code)
            var f = t.byUnit[i]
            f.households = t.unitHouseholds[i]
            byUnit[code] = f
        }
        for (i, m) in months.enumerated() where t.byMonth[i].visits > 0 {
            var f = t.byMonth[i]
            f.households = t.monthHouseholds[i]
            byMonth[m.key] = f
        }
        return (total, byUnit, byMonth)
    }

    // MARK: Disputes

    func disputeAggregates(_ t: DisputeTally, _ units: inout Set<String>)
        -> (total: DisputeFigures, unit: [String: DisputeFigures], month: [String: DisputeFigures], categories: [(category: String, figures: DisputeFigures)])
    {
        func settle(_ f: inout DisputeFigures, _ d: [Int64: Int]?) {
            guard let d, !d.isEmpty else { return }
            f.resolved = d.values.reduce(0, +)
            f.medianDaysToResolveTimesTwo = Self.twiceMedian(counted: d.map { ($0.key, $0.value) })
        }
        var total = t.total, byUnit: [String: DisputeFigures] = [:], byMonth: [String: DisputeFigures] = [:]
        settle(&total, t.days.total)
        for (i, code) in t.units.names.enumerated() {
            units.insert(code)
            var f = t.byUnit[i]
            settle(&f, t.days.unit[i])
            byUnit[code] = f
        }
        var running = t.openBefore
        for (i, m) in months.enumerated() {
            var f = t.byMonth[i]
            settle(&f, t.days.month[i])
            running += t.openByMonth[i]
            f.stillOpen = running
            byMonth[m.key] = f
        }
        let categories = Enumerations.disputeCategories.enumerated().map { i, c in
            var f = t.byCategory[i]
            settle(&f, t.days.category[i])
            return (category: c, figures: f)
        }
        return (total, byUnit, byMonth, categories)
    }

    /// Twice the median (so that a median halfway between two whole days stays whole).
    static func twiceMedian(_ values: [Int64]) -> Int64? {
        twiceMedian(counted: values.map { ($0, 1) })
    }

    /// Twice the median of values given with how many times each occurs.
    static func twiceMedian(counted: [(Int64, Int)]) -> Int64? {
        let s = counted.filter { $0.1 > 0 }.sorted { $0.0 < $1.0 }
        let n = s.reduce(0) { $0 + $1.1 }
        guard n > 0 else { return nil }
        /// The k-th smallest value (0-based).
        func nth(_ k: Int) -> Int64 {
            var seen = 0
            for (v, c) in s {
                seen += c
                if k < seen { return v }
            }
            return s.last!.0
        }
        return n % 2 == 1 ? 2 * nth(n / 2) : nth(n / 2 - 1) + nth(n / 2)
    }

    // MARK: Projects

    func projectAggregates(_ rows: Rows, _ units: inout Set<String>) -> (total: ProjectFigures, unit: [String: ProjectFigures], month: [String: ProjectFigures]) {
        var total = ProjectFigures(), byUnit: [String: ProjectFigures] = [:]
        var byMonth = Array(repeating: ProjectFigures(), count: months.count)
        let kinds = Enumerations.projectKinds, statuses = Enumerations.projectStatuses
        for r in rows("projectRows") {
            let u = r.text(0), started = r.text(6), completed = r.optText(7)
            let kind = Self.index(of: r.text(1), in: kinds), status = Self.index(of: r.text(2), in: statuses)
            let budget = r.int(3), spent = r.int(4), benefiting = r.int(5)
            /// Adds the project to `f` for the days [s, e], when it is active then.
            func add(_ f: inout ProjectFigures, _ s: String, _ e: String) {
                guard started <= e, completed.map({ $0 >= s }) ?? true else { return }
                f.projects += 1
                if let kind { f.byKind[kind].count += 1 }
                if let status { f.byStatus[status].count += 1 }
                f.budgetFen = ReportNumbers.adding(f.budgetFen, budget)
                f.spentFen = ReportNumbers.adding(f.spentFen, spent)
                f.householdsBenefiting = ReportNumbers.adding(f.householdsBenefiting, benefiting)
                if started >= s { f.started += 1 }
                if let c = completed, c <= e { f.completed += 1 }
            }
            units.insert(u)
            add(&total, from, to)
            add(&byUnit[u, default: ProjectFigures()], from, to)
            for (i, m) in months.enumerated() { add(&byMonth[i], m.first, m.last) }
        }
        return (total, byUnit, Dictionary(uniqueKeysWithValues: zip(months.map(\.key), byMonth)))
    }

    /// The position of `value` in `list`, compared byte for byte as SQL compares text (Swift's
    /// `==` on Chinese text normalises both sides first: slow, and not what the store compared).
    static func index(of value: String, in list: [String]) -> Int? {
        list.firstIndex { $0.utf8.elementsEqual(value.utf8) }
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

    func cadreAggregates(_ rows: Rows, _ tally: VisitTally, _ units: inout Set<String>)
        -> (total: CadreFigures, unit: [String: CadreFigures], month: [String: CadreFigures], list: [CadreActivity])
    {
        let cadreRows = rows("cadres")
        let records = cadreRows.map { CadreRecord(id: $0.text(0), name: $0.text(1), place: $0.text(2), started: $0.optText(3), ended: $0.optText(4)) }
        // A visit without cadre_id is credited to the region's one cadre record of that name;
        // when none or several have it, to the name alone.
        var byName: [String: [Int]] = [:]
        for (i, c) in records.enumerated() { byName[c.name, default: []].append(i) }
        let recordIndex = Dictionary(records.enumerated().map { ($1.id, $0) }, uniquingKeysWith: { a, _ in a })

        var visitors: [String: Visitor] = [:]  // "id:<record id>" or "name:<name>"
        var nameOf: [String: String] = [:]      // a cadre id → the (largest) name its visits give
        let monthKeys = months.map(\.key)
        for raw in tally.visitors {
            let k = raw.key
            let key: String
            if let cid = k.cadreID {
                key = "id:" + cid
                nameOf[cid] = max(nameOf[cid] ?? "", k.name)
            } else if let same = byName[k.name], same.count == 1 {
                key = "id:" + records[same[0]].id
            } else {
                key = "name:" + k.name
            }
            var v = visitors[key] ?? Visitor()
            for (m, n) in raw.monthCounts.enumerated() where n > 0 {
                let old = v.perMonth[monthKeys[m]]
                v.perMonth[monthKeys[m]] = ((old?.count ?? 0) + n, max(old?.last ?? "", VisitTally.dayText(raw.monthLast[m])))
            }
            for (u, n) in raw.perUnit {
                let code = tally.unitNames[u]
                v.perUnit[code, default: 0] += n
                units.insert(code)
            }
            if raw.village >= 0 { v.village = max(v.village, String(decoding: tally.places.villages.key(raw.village), as: UTF8.self)) }
            visitors[key] = v
        }
        // Each record's latest credited visit before the period (month ''): by its id, and by
        // its name when no other record of the region has that name.
        for (i, r) in cadreRows.enumerated() {
            let byItsName = byName[records[i].name]?.count == 1 ? r.optText(6) : nil
            guard let before = [r.optText(5), byItsName].compactMap({ $0 }).max() else { continue }
            visitors["id:" + records[i].id, default: Visitor()].perMonth[""] = (0, before)
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

    func syncAggregates(_ rows: Rows, _ units: inout Set<String>) -> (total: SyncFigures, unit: [String: SyncFigures], devices: [DeviceHealth]) {
        var total = SyncFigures(), byUnit: [String: SyncFigures] = [:]
        var devices: [DeviceHealth] = []
        for r in rows("devices") {
            let id = r.text(0), scope = r.text(2), enrolled = r.optInt(3), revoked = r.optInt(4)
            let lastSync = r.optInt(5), lastError = r.optText(7), pending = r.int(9)
            let status = revoked != nil ? "revoked" : enrolled == nil ? "awaiting enrolment" : "enrolled"
            let live = status == "enrolled"
            let lag = live ? lastSync.map { max(0, now - $0) } : nil
            devices.append(DeviceHealth(id: id, name: r.text(1), scope: scope, status: status, lastSync: lastSync, lastSeen: r.optInt(6),
                                        lagMs: lag, pending: live ? pending : 0, lastError: live ? lastError : nil, lastErrorAt: live ? r.optInt(8) : nil))
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
        for r in rows("conflicts") {
            let u = r.text(0), n = r.count(1)
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

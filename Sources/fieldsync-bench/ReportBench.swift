import FieldSyncCore
import FieldSyncHub
import FieldSyncPostgres
@_spi(Hub) import FieldSyncReplica
import Foundation
import GRDB

// MARK: - (c) hub reports on a county

/// A county-size hub for the report benchmark: `records` records over 20 townships × 15 villages
/// (300 villages), written straight into the hub's record tables in one transaction.
///
/// The rows are what the hub would hold after syncing (every report column filled as laptops
/// fill them, notes included) except the merge metadata: `_clock` is empty and there is no change
/// log, which makes the tables smaller than a real hub's and the full-scan baseline faster, so
/// the ratios below are, if anything, pessimistic for the reports. Mix: 78 % visits, 12 %
/// households, 8 % disputes, 2 % projects, ~900 cadres, and the region records.
enum ReportBench {
    static let county = "522224"
    static let township = "522224103"

    static func villages() -> [String] {
        (0..<20).flatMap { t in (0..<15).map { v in county + String(100 + t) + String(200 + v) } }
    }

    static func generate(path: String, records: Int) throws -> Double {
        try? FileManager.default.removeItem(atPath: path)
        let store = try SQLiteHubStore(path: path, name: "县同步中心")
        var g = SplitMix64Bench(seed: 2026)
        let vs = villages()
        func hex() -> String { String(format: "%016llx%016llx", g.next(), g.next()) }
        func day(_ lo: Int64, _ span: UInt64) -> String { String(UTCTime.iso((lo + Int64(g.next() % span)) * 86_400_000).prefix(10)) }
        let start = (UTCTime.parseISO("2024-01-01") ?? 0) / 86_400_000
        let notes = ["走访了解家庭收入、就业和医疗情况，宣传惠民政策，群众反映通组路雨天难行，已记录并向村委反映，约定下周回访。",
                     "入户核实低保申请材料，户主在外务工，家中老人身体尚可，孙子在镇上读初中，需协调教育资助。",
                     "召开院坝会，讨论茶叶合作社分红方案，到会群众三十余人，意见基本一致，会后整理会议纪要。"]
        return try seconds {
            try store.sync { r in
                try r.database.write { db in
                    for sql in ["hub_report_visit", "hub_report_dispute", "hub_report_project", "hub_report_cadre_visit", "hub_report_named_visit"] {
                        try db.execute(sql: "DROP INDEX IF EXISTS \(sql)")
                    }
                    let region = try db.makeStatement(sql: "INSERT INTO fs_region(id, name, level, parent_code, _clock) VALUES (?, ?, ?, ?, x'')")
                    try region.execute(arguments: [county, "测试县", "县", nil])
                    for t in 0..<20 { try region.execute(arguments: [county + String(100 + t), "第\(t + 1)镇", "乡镇", county]) }
                    for v in vs { try region.execute(arguments: [v, "村\(v.suffix(3))", "村", String(v.prefix(9))]) }
                    var cadres: [(String, String)] = []
                    let cadre = try db.makeStatement(sql: "INSERT INTO fs_cadre(id, village, name, role, started_on, _clock) VALUES (?, ?, ?, '工作队员', ?, x'')")
                    for i in 0..<900 {
                        let v = vs[i % vs.count], id = v + "-" + hex(), name = "干部\(i)"
                        try cadre.execute(arguments: [id, v, name, day(start - 400, 300)])
                        cadres.append((id, name))
                    }
                    let n = max(0, records - 900 - vs.count - 21)
                    let nVisits = n * 78 / 100, nHouseholds = n * 12 / 100, nDisputes = n * 8 / 100, nProjects = n - nVisits - nHouseholds - nDisputes
                    let household = try db.makeStatement(sql: "INSERT INTO fs_household(id, village, head_name, members, category, _clock) VALUES (?, ?, ?, ?, '一般户', x'')")
                    var households: [String] = []
                    households.reserveCapacity(nHouseholds)
                    for i in 0..<nHouseholds {
                        let v = vs[i % vs.count], id = v + "-" + hex()
                        try household.execute(arguments: [id, v, "户主\(i)", Int(g.next() % 6) + 1])
                        households.append(id)
                    }
                    let visit = try db.makeStatement(sql: """
                        INSERT INTO fs_visit(id, village, household_id, household_head, cadre_id, cadre_name, visit_date, visit_kind, topics, attendees, notes, follow_up_done, _clock)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?, '["政策宣传","就业"]', ?, ?, ?, x'')
                        """)
                    let kinds = Enumerations.visitKinds
                    for i in 0..<nVisits {
                        let h = households.isEmpty ? nil : households[Int(g.next() % UInt64(households.count))]
                        let v = h.map { String($0.prefix(12)) } ?? vs[i % vs.count]
                        let kind = kinds[Int(g.next() % 5)]
                        let meeting = kind == "院坝会" || kind == "群众会"
                        let c = cadres[Int(g.next() % UInt64(cadres.count))]
                        try visit.execute(arguments: [v + "-" + hex(), v, meeting ? nil : h, meeting ? nil : "户主", c.0, c.1, day(start, 900), kind,
                                                      meeting ? Int(g.next() % 60) : nil, notes[i % 3], Int(g.next() % 2)])
                    }
                    let dispute = try db.makeStatement(sql: """
                        INSERT INTO fs_dispute(id, village, category, parties, summary, reported_on, mediator_name, status, resolved_on, _clock)
                        VALUES (?, ?, ?, '张某与李某', '宅基地边界争执，双方各执一词，经村调委会现场查看', ?, '王芳', ?, ?, x'')
                        """)
                    for i in 0..<nDisputes {
                        let v = vs[i % vs.count], status = Enumerations.disputeStatuses[Int(g.next() % 5)]
                        let reported = start + Int64(g.next() % 900)
                        try dispute.execute(arguments: [v + "-" + hex(), v, Enumerations.disputeCategories[Int(g.next() % 7)],
                                                        day(reported, 1), status, status == "已化解" ? day(reported, 60) : nil])
                    }
                    let project = try db.makeStatement(sql: """
                        INSERT INTO fs_project(id, village, name, project_kind, funding_source, budget_fen, spent_fen, status, started_on, completed_on, households_benefiting, _clock)
                        VALUES (?, ?, ?, ?, '县', ?, ?, ?, ?, ?, ?, x'')
                        """)
                    for i in 0..<nProjects {
                        let v = vs[i % vs.count], s = start + Int64(g.next() % 900)
                        try project.execute(arguments: [v + "-" + hex(), v, "项目\(i)", Enumerations.projectKinds[Int(g.next() % 4)],
                                                        Int64(g.next() % 500_000_000), Int64(g.next() % 200_000_000),
                                                        Enumerations.projectStatuses[Int(g.next() % 5)], day(s, 1),
                                                        g.next() % 2 == 0 ? day(s + 30, 300) : nil, Int(g.next() % 300)])
                    }
                    // The report indexes again, after the bulk insert (faster than keeping them up
                    // to date row by row). Reopening the store would not: its migrations have run.
                    try SQLiteHubStore.createReportIndexes(db)
                }
            }
            let db = try DatabaseQueue(path: path)
            try db.write { try $0.execute(sql: "ANALYZE") }
        }
    }

    /// Times the county report and a township drill-down against a full scan of the record
    /// tables, on the same file in the same process, best of `rounds` each.
    /// The full-scan baseline: every row of every record table read, with its text.
    static var scanSQL: [String] {
        RecordKind.allCases.map { k -> String in
            let text = k.spec.fields.filter { if case .longText = $0.type { return true }; return false }.map { "COALESCE(length(\($0.name)), 0)" }
            return "SELECT count(*), sum(length(id) + length(_clock)\(text.map { " + " + $0 }.joined())) FROM fs_\(k.rawValue)"
        }
    }

    static func run(path: String, rounds: Int = 3) throws {
        // A file generated before the report indexes it lacks were added gets them now.
        try DatabaseQueue(path: path).write { db in
            let before = try Int.fetchOne(db, sql: "SELECT count(*) FROM sqlite_master WHERE type = 'index'") ?? 0
            try SQLiteHubStore.createReportIndexes(db)
            if try Int.fetchOne(db, sql: "SELECT count(*) FROM sqlite_master WHERE type = 'index'") != before { try db.execute(sql: "ANALYZE") }
        }
        let store = try SQLiteHubStore(path: path)
        let records = try store.sync { r in
            try r.database.read { db in
                try RecordKind.allCases.reduce(0) { $0 + (try Int.fetchOne(db, sql: "SELECT count(*) FROM fs_\($1.rawValue)") ?? 0) }
            }
        }
        let villages = try store.sync { r in try r.database.read { try Int.fetchOne($0, sql: "SELECT count(*) FROM fs_region WHERE length(id) = 12") ?? 0 } }
        note("c hub file", "\(records) records over \(villages) villages, \((((try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0) ?? 0) / 1_048_576) MiB")
        // The baseline: every row of every record table read, with its text.
        let reader = try DatabaseQueue(path: path, configuration: { var c = Configuration(); c.readonly = true; return c }())
        let scanSQL = Self.scanSQL
        func scan() throws { try reader.read { db in for sql in scanSQL { _ = try Row.fetchOne(db, sql: sql) } } }
        let countyQ = try ReportQuery(region: county, from: "2025-01-01", to: "2025-12-31")
        let townshipQ = try ReportQuery(region: township, from: "2025-01-01", to: "2025-12-31")
        try scan()  // warm the page cache for everyone alike
        try scan()
        // Wall time and CPU time (user + system of this process): on a shared machine the CPU
        // time is the steadier of the two; both are best of `rounds`.
        var scanT = (Double.infinity, Double.infinity), countyT = scanT, townshipT = scanT
        var county: HubReport?
        func best(_ t: inout (Double, Double), _ body: () throws -> Void) rethrows {
            let c0 = cpuSeconds()
            let w = try seconds(body)
            t = (min(t.0, w), min(t.1, cpuSeconds() - c0))
        }
        for _ in 0..<rounds {
            try best(&scanT) { try scan() }
            try best(&countyT) { county = try store.report(countyQ) }
            try best(&townshipT) { _ = try store.report(townshipQ) }
        }
        func ms(_ t: (Double, Double)) -> String { String(format: "%.0f ms wall, %.0f ms CPU", t.0 * 1000, t.1 * 1000) }
        func ratio(_ a: (Double, Double), _ b: (Double, Double)) -> String { String(format: "%.2f× wall, %.2f× CPU", a.0 / b.0, a.1 / b.1) }
        note("c full scan of the record tables (count and text length of every row)", ms(scanT))
        note("c county report (\(county?.units.count ?? 0) townships × 12 months, every section)", ms(countyT))
        note("c county report ratio (report / full scan)", ratio(countyT, scanT))
        note("c township drill-down (15 villages × 12 months)", ms(townshipT))
        note("c township drill-down ratio (report / full scan)", ratio(townshipT, scanT))
        if let c = county {
            note("c county figures (sanity)", "\(c.visits.total.visits) visits, \(c.disputes.total.received) disputes received, \(c.projects.total.projects) projects active, budget \(ReportNumbers.fixed2(c.projects.total.budgetFen)) 元")
        }
    }
}

extension ReportBench {
    /// The same county on PostgreSQL: the file moved in as `fieldsync-hub migrate` moves a hub
    /// (a new database on `server`), then the county report and the township drill-down timed
    /// against a full scan of the record tables in the same database, best of `rounds` (wall
    /// time: the work is in the PostgreSQL server's process).
    static func runPostgres(path: String, server: PostgresURL, rounds: Int = 3) async throws {
        let url: PostgresURL
        if let reuse = ProcessInfo.processInfo.environment["BENCH_REPORT_PG_REUSE"] {
            // A database an earlier run moved the same file into (to time again without the move).
            url = try PostgresURL(reuse)
        } else {
            url = try await PostgresHubStore.createDatabase("bench_report_\(UInt32.random(in: 0...UInt32.max))", on: server)
            let start = Date()
            let moved = try await PostgresImport.run(from: path, to: url)
            note("c PostgreSQL: the file moved in (fieldsync-hub migrate, untimed below)", String(format: "%d records, %.0f s", moved.records, Date().timeIntervalSince(start)))
        }
        let store = try await PostgresHubStore(url: url)
        func timed(_ body: () async throws -> Void) async rethrows -> Double {
            let t = Date()
            try await body()
            return Date().timeIntervalSince(t)
        }
        func scan() async throws { for sql in scanSQL { _ = try await store.benchmarkRead(sql) } }
        let countyQ = try ReportQuery(region: county, from: "2025-01-01", to: "2025-12-31")
        let townshipQ = try ReportQuery(region: township, from: "2025-01-01", to: "2025-12-31")
        try await scan()
        try await scan()
        var scanT = Double.infinity, countyT = scanT, townshipT = scanT
        var report: HubReport?
        for _ in 0..<rounds {
            scanT = min(scanT, try await timed { try await scan() })
            countyT = min(countyT, try await timed { report = try await store.report(countyQ) })
            townshipT = min(townshipT, try await timed { _ = try await store.report(townshipQ) })
        }
        await store.close()
        func ms(_ t: Double) -> String { String(format: "%.0f ms wall", t * 1000) }
        note("c PostgreSQL full scan of the record tables", ms(scanT))
        note("c PostgreSQL county report", ms(countyT))
        note("c PostgreSQL county report ratio (report / full scan)", String(format: "%.2f×", countyT / scanT))
        note("c PostgreSQL township drill-down", ms(townshipT))
        note("c PostgreSQL township drill-down ratio (report / full scan)", String(format: "%.2f×", townshipT / scanT))
        if let c = report {
            note("c PostgreSQL county figures (sanity, as SQLite's)", "\(c.visits.total.visits) visits, \(c.disputes.total.received) disputes received, \(c.projects.total.projects) projects active, budget \(ReportNumbers.fixed2(c.projects.total.budgetFen)) 元")
        }
    }
}

/// User plus system CPU time of this process, in seconds.
func cpuSeconds() -> Double {
    var u = rusage()
    getrusage(RUSAGE_SELF.rawValue, &u)
    return Double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + Double(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6
}

/// SplitMix64 (the tests' generator), so the benchmark's data set is the same on every run.
struct SplitMix64Bench: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

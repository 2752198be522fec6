import FieldSyncCore
import FieldSyncTrust
@testable import FieldSyncHub
@_spi(Hub) import FieldSyncReplica
import Foundation
import GRDB
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

// MARK: - A generated county

/// A seeded county: region records (one township with no records, one village with no region
/// record), cadres (two share a name; one on post only part of the time), visits of every kind,
/// disputes in every status, projects with money, edits, deletions and undeletions, devices in
/// every state, open conflicts, and records of a neighbouring county that must not count. The
/// records are written on a laptop of the whole prefecture and pushed, so that either kind of
/// store takes them the same way.
struct GeneratedCounty {
    static let county = "522224"
    static let townships = ["522224100", "522224101", "522224102"]
    static let emptyTownship = "522224103"
    static let villages = ["522224100201", "522224100202", "522224100203", "522224101201", "522224101202", "522224102201", "522224102202"]
    static let unnamedVillage = "522224102202"
    static let neighbour = "522225100201"

    /// The prefecture the laptop that writes the records is enrolled for (the county and its neighbour).
    static let prefecture = "5222"

    let seed: UInt64
    let f: StoreFixture

    init(_ kind: StoreKind = .sqlite, seed: UInt64, _ name: String = #function) async throws {
        self.seed = seed
        f = try await StoreFixture(kind, name)
        var g = SplitMix64(seed: seed)
        let store = f.store
        let laptop = try Replica.create(path: f.dir.file("prefecture-laptop.sqlite"), siteName: "州里的笔记本", author: "州里")
        func pick<T>(_ a: [T]) -> T { a[Int(g.next() % UInt64(a.count))] }
        func chance(_ p: Double) -> Bool { Double(g.next() % 10_000) < p * 10_000 }
        func date(_ lo: String, _ days: Int) -> String {
            let base = (UTCTime.parseISO(lo) ?? 0) / 86_400_000
            let d = base + Int64(g.next() % UInt64(days))
            return String(UTCTime.iso(d * 86_400_000).prefix(10))
        }
        func obj(_ pairs: [(String, JSONValue?)]) -> JSONObject { JSONObject(pairs.compactMap { k, v in v.map { (k, $0) } }) }

        func write(_ r: Replica) throws {
            var regions: [NewRecord] = [try r.check(.region, ["id": .string(Self.county), "name": "测试县", "level": "县"], creating: true)]
            for (i, t) in (Self.townships + [Self.emptyTownship]).enumerated() {
                regions.append(try r.check(.region, ["id": .string(t), "name": .string("第\(i + 1)镇"), "level": "乡镇", "parent_code": .string(Self.county)], creating: true))
            }
            for (i, v) in Self.villages.enumerated() where v != Self.unnamedVillage {
                regions.append(try r.check(.region, ["id": .string(v), "name": .string("村\(i + 1)"), "level": "村", "parent_code": .string(String(v.prefix(9)))], creating: true))
            }
            _ = try r.insert(regions)

            // Cadres: two named 王芳 (visits by that name without an id stay with the name).
            let cadreNames = ["王芳", "王芳", "李明", "张伟", "欧阳,\"小\"芳", "陈静", "刘洋", "赵磊", "孙丽"]
            var cadres: [NewRecord] = []
            for (i, n) in cadreNames.enumerated() {
                let place = i == 8 ? Self.townships[1] : Self.villages[i % Self.villages.count]
                cadres.append(try r.check(.cadre, obj([
                    ("village", .string(place)), ("name", .string(n)), ("role", .string(pick(Enumerations.cadreRoles))),
                    ("started_on", i == 6 ? "2026-03-15" : chance(0.5) ? .string(date("2024-01-01", 600)) : nil),
                    ("ended_on", i == 7 ? "2026-04-30" : nil),
                ]), creating: true))
            }
            let cadreIDs = try r.insert(cadres)
            // On post throughout and never visiting: inactive in every row.
            try r.add(.cadre, ["village": .string(Self.villages[2]), "name": "周敏", "role": "工作队员", "started_on": "2025-01-01"])
            let outsider = try r.add(.cadre, ["village": .string(Self.neighbour), "name": "外县干部", "role": "工作队员"])

            // Visits, over a wider span than the periods asked for.
            var visits: [NewRecord] = []
            for n in 0..<420 {
                let village = n % 40 == 0 ? Self.neighbour : pick(Self.villages)
                let kind = pick(Enumerations.visitKinds)
                let meeting = kind == "院坝会" || kind == "群众会"
                let cadre = Int(g.next() % UInt64(cadreNames.count))
                visits.append(try r.check(.visit, obj([
                    ("village", .string(village)),
                    ("household_id", !meeting && chance(0.5) ? .string("\(village)-\(String(format: "%032x", g.next() % 40))") : nil),
                    ("household_head", !meeting && chance(0.6) ? .string(pick(["张三", "李四", "王五", "赵六", "钱七", ""])) : nil),
                    ("cadre_id", chance(0.6) ? .string(n % 97 == 0 ? outsider : cadreIDs[cadre]) : nil),
                    ("cadre_name", .string(chance(0.05) ? "临时人员" : cadreNames[cadre])),
                    ("visit_date", .string(date("2025-10-01", 330))),
                    ("visit_kind", .string(kind)),
                    ("attendees", meeting && chance(0.9) ? .int(Int64(g.next() % 80)) : nil),
                    ("notes", chance(0.3) ? "走访情况，群众反映\"饮水\"问题\n已记录" : nil),
                ]), creating: true))
            }
            let visitIDs = try r.insert(visits)

            var disputes: [NewRecord] = []
            for n in 0..<160 {
                let village = n % 30 == 0 ? Self.neighbour : pick(Self.villages)
                let status = pick(Enumerations.disputeStatuses)
                let reported = date("2025-10-01", 330)
                let resolved: JSONValue? = status == "已化解" ? (chance(0.9) ? .string(date(reported, 90)) : nil)
                    : (chance(0.1) ? .string(date(reported, 30)) : nil)
                disputes.append(try r.check(.dispute, obj([
                    ("village", .string(village)), ("category", .string(pick(Enumerations.disputeCategories))),
                    ("parties", "甲与乙"), ("summary", "纠纷概要"), ("reported_on", .string(reported)), ("status", .string(status)),
                    ("resolved_on", resolved),
                ]), creating: true))
            }
            let disputeIDs = try r.insert(disputes)

            var projects: [NewRecord] = []
            for n in 0..<70 {
                let village = n % 25 == 0 ? Self.neighbour : pick(Self.villages)
                let started: String? = chance(0.85) ? date("2025-06-01", 500) : nil
                let completed: String? = started.flatMap { s in chance(0.4) ? date(s, 200) : nil }
                projects.append(try r.check(.project, obj([
                    ("village", .string(village)), ("name", .string("项目\(n)")), ("project_kind", .string(pick(Enumerations.projectKinds))),
                    ("status", .string(pick(Enumerations.projectStatuses))),
                    ("budget_fen", chance(0.9) ? .int(Int64(g.next() % 500_000_000)) : nil),
                    ("spent_fen", chance(0.8) ? .int(Int64(g.next() % 300_000_000)) : nil),
                    ("households_benefiting", chance(0.8) ? .int(Int64(g.next() % 500)) : nil),
                    ("started_on", started.map(JSONValue.string)), ("completed_on", completed.map(JSONValue.string)),
                ]), creating: true))
            }
            let projectIDs = try r.insert(projects)

            // Edits move records in and out of periods and statuses; deletions remove some.
            for id in visitIDs.shuffled(using: &g).prefix(40) { try r.edit(id, ["visit_date": .string(date("2025-12-01", 200))]) }
            for id in disputeIDs.shuffled(using: &g).prefix(30) {
                let s = pick(Enumerations.disputeStatuses)
                try r.edit(id, obj([("status", .string(s)), ("resolved_on", s == "已化解" ? .string(date("2026-01-01", 200)) : nil)]))
            }
            for id in projectIDs.shuffled(using: &g).prefix(15) { try r.edit(id, ["spent_fen": .int(Int64(g.next() % 900_000_000))]) }
            try r.edit(cadreIDs[3], ["ended_on": "2026-02-28"])
            for id in (visitIDs.shuffled(using: &g).prefix(25) + disputeIDs.shuffled(using: &g).prefix(12) + projectIDs.shuffled(using: &g).prefix(6)) {
                try r.delete(id)
            }
            try r.delete(cadreIDs[5])
            for id in visitIDs.prefix(60) where try r.database.read({ try Bool.fetchOne($0, sql: "SELECT _deleted FROM fs_visit WHERE id = ?", arguments: [id]) }) == true {
                try r.undelete(id)
                break
            }
        }
        try write(laptop)
        let (writer, _) = try await f.device("州里的笔记本", scope: Self.prefecture, key: laptop.key)
        var cursor: Int64 = 0
        while true {
            let batch = try laptop.pendingPush(after: cursor, limit: 1000, maxBytes: 16 << 20)
            guard let last = batch.last else { break }
            let pushed = try await store.push(try batch.map { try JSONValue.parse($0.body) }, sites: [:], vouches: Vouches(), from: writer)
            let refused = pushed.results.filter { $0.status != .accepted }
            try #require(refused.isEmpty, "the hub refused the county's records: \(refused.prefix(3).map { "\($0.code ?? "") \($0.reason ?? "")" })")
            cursor = last.seq
        }

        // Devices in every state, with health as syncs leave it.
        let (d1, _) = try await f.device("一镇笔记本", scope: Self.townships[0])
        let (d2, _) = try await f.device("村1笔记本", scope: Self.villages[0])
        let (d3, _) = try await f.device("村4笔记本", scope: Self.villages[3])
        let (d4, _) = try await f.device("外县笔记本", scope: Self.neighbour)
        _ = try await store.addDevice(name: "未注册", scope: Self.villages[5], codeLifetimeMs: 3_600_000)
        let (d5, _) = try await f.device("已吊销", scope: Self.villages[6])
        _ = try await store.revoke(device: d5.id)
        let now = store.now()
        try await f.execute("UPDATE hub_device SET last_sync = ?, pull_cursor = 5 WHERE id = ?", [.int(now - 3_600_000 * 30), .text(d1.id)])
        try await f.execute("UPDATE hub_device SET last_sync = ?, last_error = ?, last_error_at = ? WHERE id = ?",
                            [.int(now - 600_000), .text("推送被拒\n第二行, \"引号\""), .int(now - 500_000), .text(d2.id)])
        try await f.execute("UPDATE hub_device SET last_sync = ?, pull_cursor = 100000 WHERE id = ?", [.int(now - 86_400_000 * 9), .text(d4.id)])
        _ = d3
        // Two open conflicts in the county (concurrent status edits from two laptops).
        let ks = SiteKey(), kt = SiteKey()
        let s = ks.site, t = kt.site
        let c1 = creation(s, 1, village: Self.villages[0]), c2 = creation(s, 2, village: Self.villages[4])
        func edit(_ site: SiteID, _ n: Int64, _ base: Change, _ status: String) -> Change {
            Change(id: ChangeID(site: site, counter: n), kind: .dispute, row: base.row, hlc: HybridTimestamp(millis: 1_763_785_000_000 + n, counter: 0),
                   author: "王芳", writes: [FieldWrite(field: "status", value: .text(status), context: VersionVector([(base.id.site, base.id.counter)]))])
        }
        let county = Device(id: d1.id, name: "县", scope: Self.county)
        try await bind(store, ks, to: county)
        try await bind(store, kt, to: county)
        _ = try await store.push([c1, c2, edit(s, 3, c1, "已化解"), edit(s, 4, c2, "已化解")].map(ChangeCodec.encode), sites: [:], vouches: Vouches(), from: county)
        _ = try await store.push([edit(t, 1, c1, "已上报"), edit(t, 2, c2, "已上报")].map(ChangeCodec.encode), sites: [:], vouches: Vouches(), from: county)
    }
}

// MARK: - The reference

/// Runs scripts/report-reference.py over the hub file and the report's JSON.
func referenceCheck(_ hubPath: String, _ report: JSONValue, _ dir: TempDir, _ tag: String) throws -> CLIResult {
    let json = dir.file("report-\(tag).json")
    try Data(report.prettyText.utf8).write(to: URL(fileURLWithPath: json))
    return try runPython([scriptPath("report-reference.py"), hubPath, json])
}

/// A SQLite file the reference script reads for `f`'s store: the hub file itself, or for
/// PostgreSQL the tables the script reads (records as the replica's views show them, devices,
/// conflicts, the change log) copied out row by row, values as they are.
func referenceFile(_ f: StoreFixture) async throws -> String {
    if let s = f.sqlite { return s.path }
    var tables: [(name: String, columns: [String], select: String)] = RecordKind.allCases.map { k in
        let columns = ["id"] + k.spec.fields.map(\.name)
        return (k.rawValue, columns, "SELECT \(columns.joined(separator: ", ")) FROM fs_\(k.rawValue) WHERE _deleted = 0 ORDER BY id")
    }
    let device = ["id", "name", "scope", "created", "enrolled", "revoked", "code_expires", "last_seen", "last_sync", "last_error", "last_error_at",
                  "pull_cursor", "pushed", "clock_skew", "site", "site_name"]
    tables += [
        ("hub_device", device, "SELECT \(device.joined(separator: ", ")) FROM hub_device ORDER BY id"),
        ("fs_conflict", ["kind", "row", "field", "since"], "SELECT kind, row, field, since FROM fs_conflict ORDER BY kind, row, field"),
        ("fs_change", ["seq", "row", "peer"], "SELECT seq, row, peer FROM hub_change ORDER BY seq"),
    ]
    let path = f.dir.file("postgres-copy.sqlite")
    try? FileManager.default.removeItem(atPath: path)
    var copied: [(String, [String], [[SQLCell]])] = []
    for t in tables { copied.append((t.name, t.columns, try await f.rows(t.select))) }
    let q = try DatabaseQueue(path: path)
    try await q.write { [copied] db in
        for (name, columns, rows) in copied {
            try db.execute(sql: "CREATE TABLE \(name)(\(columns.joined(separator: ", ")))")
            let insert = "INSERT INTO \(name) VALUES (\(columns.map { _ in "?" }.joined(separator: ", ")))"
            for row in rows {
                try db.execute(sql: insert, arguments: StatementArguments(row.map { c -> DatabaseValue in
                    switch c {
                    case .null: .null
                    case .int(let i): i.databaseValue
                    case .text(let s): s.databaseValue
                    case .bytes(let b): Data(b).databaseValue
                    }
                }))
            }
        }
    }
    return path
}

func scriptPath(_ name: String) -> String {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("scripts/\(name)").path
}

func runPython(_ args: [String], stdin: [UInt8]? = nil) throws -> CLIResult {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = ["python3"] + args
    let out = Pipe(), err = Pipe(), inp = Pipe()
    p.standardOutput = out
    p.standardError = err
    p.standardInput = inp
    try p.run()
    if let stdin { inp.fileHandleForWriting.write(Data(stdin)) }
    try inp.fileHandleForWriting.close()
    let o = out.fileHandleForReading.readDataToEndOfFile()
    let e = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return CLIResult(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
}

// MARK: - ReportSpec

@Suite(.serialized) struct ReportSpec {
    static let seeds: [UInt64] = [20_260_601, 7]

    /// Every figure (totals, per region, per month, per category, cadre and device lists) of
    /// county, township and village reports equals a Python computation over the same file.
    @Test(arguments: StoreKind.available, seeds) func everyFigureMatchesAnIndependentComputation(kind: StoreKind, seed: UInt64) async throws {
        let county = try await GeneratedCounty(kind, seed: seed, "figures-\(seed)")
        let file = try await referenceFile(county.f)
        let queries = [
            try ReportQuery(region: GeneratedCounty.county, from: "2026-01-01", to: "2026-06-30"),
            try ReportQuery(region: GeneratedCounty.county, from: "2025-11-15", to: "2026-02-10", inactiveDays: 10),
            try ReportQuery(region: GeneratedCounty.townships[0], from: "2026-01-01", to: "2026-06-30", inactiveDays: 45),
            try ReportQuery(region: GeneratedCounty.villages[3], from: "2025-10-01", to: "2026-08-31"),
            try ReportQuery(region: GeneratedCounty.emptyTownship, from: "2026-01-01", to: "2026-01-31"),
        ]
        for (i, q) in queries.enumerated() {
            let report = try await county.f.store.report(q)
            let check = try referenceCheck(file, report.json, county.f.dir, "\(i)")
            #expect(check.status == 0, "\(kind), seed \(seed), \(q.region!) \(q.from)…\(q.to):\n\(check.stdout)\(check.stderr)")
            #expect(check.stdout.contains("0 differ"), "\(kind), seed \(seed): \(check.stdout)")
        }
        // The data set exercises what it claims to (else a match would prove little).
        let r = try await county.f.store.report(queries[0])
        #expect(r.visits.total.byKind.allSatisfy { $0.count > 0 } && r.visits.total.meetingAttendees > 0 && r.visits.total.households > 0)
        #expect(r.disputes.total.byStatus.allSatisfy { $0.count > 0 } && r.disputes.total.resolved > 0 && r.disputes.total.stillOpen > 0)
        #expect(r.projects.total.budgetFen > 0 && r.projects.total.started > 0 && r.projects.total.completed > 0)
        #expect(r.cadres.total.inactive > 0 && r.cadres.total.visitingCadres > 0 && r.cadreList.contains { $0.id == nil })
        #expect(r.sync.total.devices == 3 && r.sync.total.revoked == 1 && r.sync.total.awaitingEnrolment == 1 && r.sync.total.conflictsOpen == 2)
        #expect(r.units.map(\.code) == GeneratedCounty.townships + [GeneratedCounty.emptyTownship])
        #expect(r.months.count == 6)
    }

    /// The comparison can fail: a report with one figure off, anywhere, is caught and named.
    @Test func theReferenceCatchesAWrongFigure() async throws {
        let county = try await GeneratedCounty(seed: 99, "wrong-figure")
        let hubFile = try #require(county.f.sqlite?.path)
        let report = try await county.f.store.report(try ReportQuery(region: GeneratedCounty.county, from: "2026-01-01", to: "2026-06-30"))
        func altered(_ v: JSONValue, _ path: ArraySlice<String>, _ change: (JSONValue) -> JSONValue) -> JSONValue {
            guard let head = path.first else { return change(v) }
            switch v {
            case .object(var o):
                o[head] = altered(o[head] ?? .null, path.dropFirst(), change)
                return .object(o)
            case .array(var a):
                let i = Int(head)!
                a[i] = altered(a[i], path.dropFirst(), change)
                return .array(a)
            default: return v
            }
        }
        let bump: (JSONValue) -> JSONValue = { v in
            switch v {
            case .int(let i): return .int(i + 1)
            case .double(let d): return .double(d + 0.01)
            case .null: return .int(0)
            default: return v
            }
        }
        let good = try referenceCheck(hubFile, report.json, county.f.dir, "good")
        #expect(good.status == 0, "\(good.stdout)")
        for path in ["visits.total.households", "disputes.byUnit.1.resolutionRate", "projects.byMonth.3.budgetFen",
                     "cadres.byMonth.5.inactive", "disputes.total.medianDaysToResolve", "sync.total.pendingChanges"] {
            let parts = path.split(separator: ".").map(String.init)
            let bad = try referenceCheck(hubFile, altered(report.json, parts[...], bump), county.f.dir, "bad")
            #expect(bad.status == 1, "\(path) altered but not caught:\n\(bad.stdout)")
            let shown = "report." + parts.map { Int($0) != nil ? "[\($0)]" : $0 }.joined(separator: ".").replacingOccurrences(of: ".[", with: "[")
            #expect(bad.stdout.contains(shown), "\(bad.stdout)\(bad.stderr)")
        }
    }

    /// Each section's CSV opens in Excel (BOM, CRLF) and reads back with Python's csv module to
    /// the same text, byte for byte, and the same numbers (元 to the 分).
    @Test(arguments: StoreKind.available) func csvHasABomAndReadsBackToTheSameTextAndNumbers(kind: StoreKind) async throws {
        let county = try await GeneratedCounty(kind, seed: 3, "csv")
        let report = try await county.f.store.report(try ReportQuery(region: GeneratedCounty.county, from: "2026-01-01", to: "2026-06-30"))
        let reader = """
            import csv, io, json, sys
            raw = sys.stdin.buffer.read()
            assert raw.startswith(b"\\xef\\xbb\\xbf"), "no BOM"
            body = raw[3:]
            assert body.endswith(b"\\r\\n") and body.count(b"\\n") >= body.count(b"\\r\\n"), "not CRLF"
            rows = list(csv.reader(io.StringIO(body.decode("utf-8"), newline="")))
            print(json.dumps(rows, ensure_ascii=False))
            """
        for t in report.tables() {
            let bytes = ReportCSV.bytes(t)
            #expect(Array(bytes.prefix(3)) == [0xEF, 0xBB, 0xBF])
            let r = try runPython(["-c", reader], stdin: bytes)
            #expect(r.status == 0, "\(t.section): \(r.stderr)")
            let rows = (try? JSONValue.parse(r.stdout))?.arrayValue?.map { $0.arrayValue?.compactMap(\.stringValue) ?? [] } ?? []
            #expect(rows.first == t.columns.map(\.label), "\(t.section) header")
            #expect(Array(rows.dropFirst()) == t.rows.map { $0.map(\.plain) }, "\(t.section) rows")
            // Byte for byte, Chinese text with commas, quotes and line breaks included.
            for (a, b) in zip(rows.dropFirst(), t.rows) { for (x, y) in zip(a, b) { #expect(Array(x.utf8) == Array(y.plain.utf8)) } }
        }
        // Money: the 元 figures read back as numbers equal the 分 totals.
        let projects = report.table("projects")!
        let csvRows = try runPython(["-c", reader], stdin: ReportCSV.bytes(projects))
        let parsed = (try JSONValue.parse(csvRows.stdout)).arrayValue!.map { $0.arrayValue!.compactMap(\.stringValue) }
        let col = parsed[0].firstIndex(of: "预算(元)")!
        let budgets = parsed.dropFirst().map { Decimal(string: $0[col])! * 100 }
        let expected = [report.projects.total.budgetFen] + report.projects.byUnit.map(\.figures.budgetFen) + report.projects.byMonth.map(\.figures.budgetFen)
        #expect(budgets == expected.map { Decimal($0) })
        #expect(report.cadreList.contains { $0.name == "欧阳,\"小\"芳" } && report.devices.contains { $0.lastError?.contains("\n") == true })
    }

    /// Names typed on a laptop as formulas (`=HYPERLINK(…)`, `+1`, `-2+3`, `@SUM(…)`, a tab or a
    /// carriage return first) reach a report as text a spreadsheet shows and never runs, while
    /// numbers stay numbers: read back as Excel reads a cell (a leading `=`, `+`, `-` or `@` in a
    /// cell that is not a number makes it a formula).
    @Test func csvCellsThatASpreadsheetWouldRunAreNeutralised() throws {
        let hostile = ["=HYPERLINK(\"http://x\",\"点我\")", "+1", "-2+3", "@SUM(A1:A9)", "\t=1", "\r=1", "=cmd|' /C calc'!A0", "王芳", "'已引用", "a=b"]
        let table = ReportTable(section: "cadre_list", title: "干部", columns: [ReportColumn(key: "name", label: "姓名"), ReportColumn(key: "n", label: "次数"),
                                                                               ReportColumn(key: "fen", label: "金额(元)")],
                                rows: hostile.enumerated().map { i, name in [.text(name), .int(Int64(-i)), .yuan(Int64(-i * 150))] })
        let reader = """
            import csv, io, json, re, sys
            raw = sys.stdin.buffer.read()[3:].decode("utf-8")
            rows = list(csv.reader(io.StringIO(raw, newline="")))
            number = re.compile(r"^-?[0-9]+(\\.[0-9]+)?$")
            bad = [c for r in rows[1:] for c in r if c[:1] in ("=", "+", "-", "@", "\\t", "\\r") and not number.match(c)]
            print(json.dumps({"rows": rows, "formulas": bad}, ensure_ascii=False))
            """
        let r = try runPython(["-c", reader], stdin: ReportCSV.bytes(table))
        #expect(r.status == 0, "\(r.stderr)")
        let out = try JSONValue.parse(r.stdout)
        #expect(out["formulas"]?.arrayValue?.isEmpty == true, "cells a spreadsheet would run: \(out["formulas"]?.compactText ?? "")")
        let rows = out["rows"]?.arrayValue?.dropFirst().map { $0.arrayValue?.compactMap(\.stringValue) ?? [] } ?? []
        #expect(rows.count == hostile.count)
        for (row, name) in zip(rows, hostile) {
            let shown = "=+-@\t\r".contains(name.first!) ? "'" + name : name
            #expect(row.first == shown, "\(name) → \(row.first ?? "nil")")
        }
        #expect(rows.map { $0[1] } == (0..<hostile.count).map { "\(-$0)" }, "numbers stay numbers, negative ones too")
        #expect(rows[1][2] == "-1.50")
    }

    /// Over HTTP: JSON and CSV for a supervisor's scope; a township supervisor asking for the
    /// county is refused 403; bad parameters get a precise 400, an unknown section 404.
    @Test(arguments: StoreKind.available) func supervisorsGetReportsForTheirScopeOnly(kind: StoreKind) async throws {
        let county = try await GeneratedCounty(kind, seed: 5, "http")
        let f = county.f
        let township = GeneratedCounty.townships[0]
        _ = try await f.store.addSupervisor(name: "一镇督导", scope: township, password: "correct horse")
        let (_, deviceToken) = try await f.device("某笔记本", scope: township)
        try await f.app.test(.router) { client in
            let token = try await client.execute(uri: "/v1/sessions", method: .post, body: ByteBuffer(string: #"{"name":"一镇督导","password":"correct horse"}"#)) { r in
                body(r)["token"]?.stringValue ?? ""
            }
            let period = "from=2026-01-01&to=2026-06-30"
            try await client.execute(uri: "/v1/reports?region=\(GeneratedCounty.county)&\(period)", method: .get, headers: bearer(token)) { r in
                #expect(r.status == .forbidden)
                #expect(body(r)["error"]?["code"] == "out_of_scope")
                #expect(body(r)["error"]?["message"]?.stringValue?.contains(township) == true)
            }
            try await client.execute(uri: "/v1/reports?region=\(GeneratedCounty.neighbour)&\(period)", method: .get, headers: bearer(token)) { r in
                #expect(r.status == .forbidden)
            }
            try await client.execute(uri: "/v1/reports?\(period)", method: .get, headers: bearer(token)) { r in
                #expect(r.status == .ok)
                let j = body(r)
                #expect(j["region"]?["code"] == .string(township))
                let direct = try await f.store.report(try ReportQuery(region: township, from: "2026-01-01", to: "2026-06-30"))
                #expect(j["visits"]?["total"] == direct.json["visits"]?["total"])
                #expect(j["units"]?.arrayValue?.count == 3)
            }
            try await client.execute(uri: "/v1/reports?region=\(GeneratedCounty.villages[1])&\(period)&inactive_days=7", method: .get, headers: bearer(token)) { r in
                #expect(r.status == .ok && body(r)["inactiveDays"] == 7 && body(r)["units"] == .array([]))
            }
            try await client.execute(uri: "/v1/reports/disputes.csv?\(period)", method: .get, headers: bearer(token)) { r in
                #expect(r.status == .ok)
                #expect(r.headers[.contentType] == "text/csv; charset=utf-8")
                #expect(r.headers[HTTPField.Name("Content-Disposition")!] == "attachment; filename=\"fieldsync-report-\(township)-2026-01-01-2026-06-30-disputes.csv\"")
                let bytes = Array(r.body.readableBytesView)
                #expect(Array(bytes.prefix(3)) == [0xEF, 0xBB, 0xBF])
                #expect(String(decoding: bytes.dropFirst(3), as: UTF8.self).hasPrefix("分组,区划代码/月份,名称,受理,"))
            }
            let bad: [(String, String)] = [
                ("from=2026-02-30&to=2026-03-01", "from"), ("from=2026-01-01", "to is required"), ("from=2026-05-01&to=2026-04-01", "after"),
                ("region=52a&\(period)", "region"), ("region=5222241001&\(period)", "region"), ("\(period)&inactive_days=x", "inactive_days"),
                ("\(period)&inactive_days=0", "inactive_days"), ("from=1800-01-01&to=2026-01-01", "year"), ("region=&\(period)", "region"),
                ("from=2026/01/01&to=2026-01-02", "YYYY-MM-DD"),
            ]
            for (q, word) in bad {
                try await client.execute(uri: "/v1/reports?\(q)", method: .get, headers: bearer(token)) { r in
                    #expect(r.status == .badRequest, "\(q)")
                    #expect(body(r)["error"]?["code"] == "bad_parameter", "\(q)")
                    #expect(body(r)["error"]?["message"]?.stringValue?.contains(word) == true, "\(q): \(body(r))")
                }
            }
            try await client.execute(uri: "/v1/reports/nothing.csv?\(period)", method: .get, headers: bearer(token)) { r in
                #expect(r.status == .notFound && body(r)["error"]?["message"]?.stringValue?.contains("visits") == true)
            }
            try await client.execute(uri: "/v1/reports?\(period)", method: .get, headers: bearer(deviceToken)) { r in
                #expect(r.status == .forbidden && body(r)["error"]?["code"] == "not_a_supervisor")
            }
            try await client.execute(uri: "/v1/reports?\(period)", method: .get) { r in #expect(r.status == .unauthorized) }
            try await client.execute(uri: "/v1/reports?\(period)", method: .post, headers: bearer(token)) { r in
                #expect(r.status == .methodNotAllowed && r.headers[.allow] == "GET")
            }
        }
    }

    /// `fieldsync-hub report`: Chinese tables, JSON equal to the engine's, CSV files, and clear
    /// errors for a bad prefix, a bad date, a reversed period and a missing file.
    @Test func theReportCommandPrintsTablesJsonAndCsvAndExplainsBadInput() async throws {
        let county = try await GeneratedCounty(seed: 11, "cli")
        let db = try #require(county.f.sqlite?.path)
        let base = ["report", "--db", db, "--region", GeneratedCounty.county, "--from", "2026-01-01", "--to", "2026-06-30"]
        let human = try runCLI(base, binary: "fieldsync-hub")
        #expect(human.status == 0, "\(human.stderr)")
        for heading in ["统计报表", "【走访情况】", "走访户数", "化解率(%)", "预算(元)", "30天未走访干部", "未处理冲突", "测试县", "第1镇", "Asia/Shanghai"] {
            #expect(human.stdout.contains(heading), "\(heading) missing")
        }
        let json = try runCLI(base + ["--json"], binary: "fieldsync-hub")
        let parsed = try JSONValue.parse(json.stdout)
        let direct = try await county.f.store.report(try ReportQuery(region: GeneratedCounty.county, from: "2026-01-01", to: "2026-06-30"))
        #expect(parsed["visits"] == direct.json["visits"])
        let out = county.f.dir.file("csv")
        let csv = try runCLI(base + ["--csv", out], binary: "fieldsync-hub")
        #expect(csv.status == 0, "\(csv.stderr)")
        let files = try FileManager.default.contentsOfDirectory(atPath: out).sorted()
        #expect(files.count == ReportTable.sections.count && files.allSatisfy { $0.hasPrefix("fieldsync-report-522224-2026-01-01-2026-06-30-") })
        let one = try runCLI(base + ["--csv", "-", "--section", "projects"], binary: "fieldsync-hub")
        #expect(one.stdout.hasPrefix("\u{FEFF}分组,"))

        let cases: [([String], Int32, String)] = [
            (["report", "--db", db, "--region", "52222", "--from", "2026-01-01", "--to", "2026-06-30"], 64, "--region"),
            (["report", "--db", db, "--region", "522224", "--from", "2026-13-01", "--to", "2026-06-30"], 64, "--from"),
            (["report", "--db", db, "--region", "522224", "--from", "2026-07-01", "--to", "2026-06-30"], 64, "after"),
            (["report", "--db", db, "--region", "522224", "--from", "2026-01-01", "--to", "2026-06-30", "--section", "x"], 64, "--section"),
            (["report", "--db", county.f.dir.file("none.sqlite"), "--region", "522224", "--from", "2026-01-01", "--to", "2026-06-30"], 78, "no hub file"),
        ]
        for (args, status, word) in cases {
            let r = try runCLI(args, binary: "fieldsync-hub")
            #expect(r.status == status, "\(args): \(r.status) \(r.stderr)")
            #expect(r.stderr.contains(word), "\(args): \(r.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: county.f.dir.file("none.sqlite")))
    }
}

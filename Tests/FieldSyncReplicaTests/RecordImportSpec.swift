import FieldSyncCore
@testable import FieldSyncReplica
import Foundation
import Testing

/// Ledgers exported from Excel import in one transaction; a bad row is reported by its line
/// number and nothing is imported.
@Suite struct RecordImportSpec {
    let csv = "\u{FEFF}村(社区)代码,项目名称,项目类别,资金来源,预算金额(元),已支出金额(元),项目状态,开工日期,受益户数,进展情况\r\n"
        + "520221105201,茶叶加工厂,产业发展,帮扶单位,\"1,250,000.50\",300000,在建,2023/3/1,48,\"设备已到位，\r\n正在调试 🍵\"\r\n"
        + "520221105202,通组路硬化,基础设施,县,860000,0.01,规划,2023年10月8日,173,\r\n"

    @Test func csvWithChineseHeadersYuanAndExcelDatesImports() throws {
        let dir = TempDir()
        let a = try makeReplica(dir, "a")
        let file = dir.file("projects.csv")
        try csv.write(toFile: file, atomically: true, encoding: .utf8)
        let r = try runCLI(["record", "import", "project", file], db: a.path)
        #expect(r.status == 0, "\(r.stderr)")
        let recs = try a.records(.project)
        #expect(recs.count == 2)
        let tea = try #require(recs.first { $0["name"] == .text("茶叶加工厂") })
        #expect(tea["budget_fen"] == .integer(125_000_050))
        #expect(tea["spent_fen"] == .integer(30_000_000))
        #expect(tea["started_on"] == .text("2023-03-01"))
        #expect(tea["progress_notes"] == .text("设备已到位，\r\n正在调试 🍵"))
        let road = try #require(recs.first { $0["name"] == .text("通组路硬化") })
        #expect(road["spent_fen"] == .integer(1))
        #expect(road["started_on"] == .text("2023-10-08"))
        #expect(road["progress_notes"] == .null)
    }

    /// 125000 under a bare 预算金额 could be 元 or 分 (100× apart): the header must say which, the
    /// same rule as the CLI's JSON and the app's forms (issue 11).
    @Test func aMoneyColumnWithoutItsUnitIsRefusedAndTheKeyOrAUnitIsTaken() throws {
        let dir = TempDir()
        let a = try makeReplica(dir, "a")
        let file = dir.file("bare.csv")
        try "村(社区)代码,项目名称,项目类别,预算金额,项目状态\r\n520221105201,茶园,产业发展,125000,在建\r\n".write(toFile: file, atomically: true, encoding: .utf8)
        let r = try runCLI(["record", "import", "project", file], db: a.path)
        #expect(r.status == 65 && r.stderr.contains("金额列“预算金额”没有写单位") && r.stderr.contains("预算金额(元)"), "\(r.stderr)")
        #expect(try a.records(.project).isEmpty)
        for (header, fen) in [("预算金额(分)", 125_000 as Int64), ("budget_fen", 125_000), ("预算金额(元)", 12_500_000)] {
            let f = dir.file("unit-\(fen)-\(header.utf8.count).csv")
            try "村(社区)代码,项目名称,项目类别,\(header),项目状态\r\n520221105201,茶园\(header),产业发展,125000,在建\r\n".write(toFile: f, atomically: true, encoding: .utf8)
            let ok = try runCLI(["record", "import", "project", f], db: a.path)
            #expect(ok.status == 0, "\(header): \(ok.stderr)")
            #expect(try a.records(.project).first { $0["name"] == .text("茶园\(header)") }?["budget_fen"] == .integer(fen), "\(header)")
        }
    }

    /// Money in the CLI's JSON: a number is 分 (the key says so), text must name its unit.
    @Test func moneyAsTextInJsonNamesItsUnit() throws {
        let dir = TempDir()
        let a = try makeReplica(dir, "a")
        let base = #"{"village":"520221105201","project_kind":"产业发展","status":"在建","name":"#
        for (value, fen) in [(#""12.5万""#, 12_500_000 as Int64), (#""1,200.50元""#, 120_050), (#""300分""#, 300), ("125000", 125_000)] {
            let r = try runCLI(["record", "add", "project", "--json", base + "\"项目\(fen)\",\"budget_fen\":\(value)}"], db: a.path)
            #expect(r.status == 0, "\(value): \(r.stderr)")
            #expect(try a.records(.project).first { $0["name"] == .text("项目\(fen)") }?["budget_fen"] == .integer(fen), "\(value)")
        }
        let bare = try runCLI(["record", "add", "project", "--json", base + #""裸数","budget_fen":"125000"}"#], db: a.path)
        #expect(bare.status == 65 && bare.stderr.contains("金额要写明单位"), "\(bare.stderr)")
    }

    @Test func aBadRowIsReportedByLineAndNothingIsImported() throws {
        let dir = TempDir()
        let a = try makeReplica(dir, "a")
        let file = dir.file("bad.csv")
        // Line 4 (after a quoted cell spanning lines 2–3) has an impossible date and a bad kind.
        try (csv + "520221105201,鱼塘,养殖,县,100,0,规划,2023/2/30,1,\r\n").write(toFile: file, atomically: true, encoding: .utf8)
        let before = try fingerprint(a.path)
        let r = try runCLI(["record", "import", "project", file], db: a.path)
        #expect(r.status == 65)
        #expect(r.stderr.contains("line 5"), "\(r.stderr)")
        #expect(r.stderr.contains("project.started_on (开工日期)"))
        #expect(r.stderr.contains("nothing was imported"))
        #expect(try fingerprint(a.path) == before)
    }

    @Test func gb18030FromExcelOnChineseWindowsImports() throws {
        let dir = TempDir()
        let a = try makeReplica(dir, "a")
        let utf8 = dir.file("u.csv"), gb = dir.file("gb.csv")
        try "村(社区)代码,户主姓名,家庭人口,户类型\n520221105201,潘志刚,4,脱贫户\n".write(toFile: utf8, atomically: true, encoding: .utf8)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/iconv")
        p.arguments = ["-f", "UTF-8", "-t", "GB18030", "-o", gb, utf8]
        try p.run()
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
        #expect(try Data(contentsOf: URL(fileURLWithPath: gb)) != Data(contentsOf: URL(fileURLWithPath: utf8)))
        let r = try runCLI(["record", "import", "household", gb], db: a.path)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("GB18030"))
        #expect(try a.records(.household).first?["head_name"] == .text("潘志刚"))
    }

    @Test func jsonLinesImportNamesTheBadLine() throws {
        let dir = TempDir()
        let a = try makeReplica(dir, "a")
        let file = dir.file("v.jsonl")
        let good = #"{"village":"520221105201","cadre_name":"王芳","visit_date":"2026-11-20","visit_kind":"院坝会","attendees":35}"#
        try [good, good, #"{"village":"520221105201","cadre_name":"王芳","visit_date":"2026-11-20","visit_kind":"开会"}"#, ""]
            .joined(separator: "\n").write(toFile: file, atomically: true, encoding: .utf8)
        let r = try runCLI(["record", "import", "visit", file], db: a.path)
        #expect(r.status == 65)
        #expect(r.stderr.contains("line 3") && r.stderr.contains("visit.visit_kind (走访方式)"))
        #expect(try a.records(.visit).isEmpty)
        try [good, good].joined(separator: "\n").write(toFile: file, atomically: true, encoding: .utf8)
        #expect(try runCLI(["record", "import", "visit", file], db: a.path).status == 0)
        #expect(try a.records(.visit).count == 2)
    }
}

import ArgumentParser
import FieldSyncCore
import FieldSyncHub
import FieldSyncCommandLine
import FieldSyncPresentation
import Foundation

// MARK: - report

struct ReportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Figures for a region and period: visits, meetings, disputes, projects, cadres, sync health (统计报表).",
        discussion: """
            Dates are calendar days in UTC, both ends included. Example:
              fieldsync-hub report --db hub.sqlite --region 522224 --from 2026-01-01 --to 2026-06-30
              fieldsync-hub report --db hub.sqlite --region 522224105 --from 2026-01-01 --to 2026-06-30 --csv out/
            Sections: \(ReportTable.sections.joined(separator: ", ")). Definitions: Protocol/reports.md.
            """)
    @OptionGroup var hub: HubOptions
    @Option(help: "The division-code prefix: 6 digits a county, 9 a township, 12 a village.") var region: String
    @Option(help: "First day, YYYY-MM-DD (UTC), included.") var from: String
    @Option(help: "Last day, YYYY-MM-DD (UTC), included.") var to: String
    @Option(help: "A cadre on post with no visit in this many days up to --to is listed as inactive.") var inactiveDays = ReportQuery.defaultInactiveDays
    @Option(name: .customLong("as"), help: "Act as this supervisor: the region must lie in their scope.") var supervisor: String?
    @Option(help: "Only this section (\(ReportTable.sections.joined(separator: ", "))).") var section: String?
    @Flag(help: "Print the whole report as JSON (Protocol/reports.md).") var json = false
    @Option(help: "Write CSV (UTF-8 with BOM, for Excel): one file per section into this folder, or - for one --section on standard output.")
    var csv: String?

    func validate() throws {
        if let section, !ReportTable.sections.contains(section) {
            throw ValidationError("--section \(section): not a section; one of \(ReportTable.sections.joined(separator: ", "))")
        }
        if csv == "-" && section == nil { throw ValidationError("--csv - writes one section to standard output: add --section") }
        if json && csv != nil { throw ValidationError("--json and --csv: choose one") }
    }

    func run() async throws {
        let query: ReportQuery
        do {
            query = try ReportQuery(region: region, from: from, to: to, inactiveDays: inactiveDays)
        } catch let f as HubFailure {
            throw ValidationError(f.message.replacingOccurrences(of: "inactive_days", with: "--inactive-days")
                .replacingOccurrences(of: "region:", with: "--region:").replacingOccurrences(of: "from:", with: "--from:")
                .replacingOccurrences(of: "to:", with: "--to:"))
        }
        let store = try await hub.openExisting()
        let report: HubReport
        if let supervisor {
            report = try await store.report(for: try await store.supervisor(named: supervisor), query)
        } else {
            report = try await store.report(query)
        }
        let tables = section.map { [report.table($0)!] } ?? report.tables()
        if json {
            print(report.json.prettyText)
        } else if csv == "-" {
            FileHandle.standardOutput.write(Data(ReportCSV.bytes(tables[0])))
        } else if let dir = csv {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            for t in tables {
                let path = (dir as NSString).appendingPathComponent(ReportCSV.fileName(report, t.section))
                guard FileManager.default.createFile(atPath: path, contents: Data(ReportCSV.bytes(t))) else {
                    throw HubFailure(.io, "\(path): could not write the file")
                }
                print("已写入 wrote \(path)")
            }
        } else {
            print(Self.heading(report))
            for t in tables {
                print("\n【\(t.title)】")
                var text = TextTable(t.columns.map(\.label))
                for r in t.rows { text.add(r.map(Self.human)) }
                print(text.render())
            }
        }
    }

    static func heading(_ r: HubReport) -> String {
        let name = r.region.name.map { " \($0)" } ?? ""
        return "统计报表 \(r.region.level) \(r.region.code)\(name)：\(r.from) 至 \(r.to)（含首尾；时间以 \(Display.zoneLabel) 显示）\n"
            + "生成于 \(Display.time(r.generatedAt))；同步情况为生成时的状态；未走访天数 \(r.inactiveDays) 天；金额单位 元"
    }

    static func human(_ c: ReportCell) -> String {
        switch c {
        case .yuan(let fen): return Display.yuan(fen).replacingOccurrences(of: " 元", with: "")
        case .time(let ms): return Display.time(ms)
        case .empty: return "—"
        case .text(let s): return Width.clip(s, 40)
        default: return c.plain
        }
    }
}

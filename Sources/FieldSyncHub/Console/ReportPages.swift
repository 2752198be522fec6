import FieldSyncWeb
import FieldSyncCore
import FieldSyncPresentation
import Foundation
import HTTPTypes
import Hummingbird

// MARK: - Reports

extension ConsolePages {
    /// The report the address asks for: `region`, `from`, `to`, `inactive_days`; the period
    /// defaults to this year up to today (UTC), the region to the whole scope.
    func reportQuery(_ request: Request) throws -> ReportQuery {
        let q = request.uri.queryParameters
        func param(_ k: String) -> String? { q[Substring(k)].map(String.init).flatMap { $0.isEmpty ? nil : $0 } }
        let today = String(UTCTime.iso(store.now()).prefix(10))
        var inactive = ReportQuery.defaultInactiveDays
        if let raw = param("inactive_days") {
            guard HubHTTP.isDigits(raw, max: 9), let n = Int(raw) else {
                throw ConsolePageError(400, "报表参数有误", "inactive_days is a whole number of days, got \"\(raw.prefix(40))\"")
            }
            inactive = n
        }
        do {
            return try ReportQuery(region: param("region"), from: param("from") ?? String(today.prefix(4)) + "-01-01", to: param("to") ?? today, inactiveDays: inactive)
        } catch let f as HubFailure {
            throw ConsolePageError(400, "报表参数有误", f.message)
        }
    }

    static func cell(_ c: ReportCell) -> (HTML, Bool) {
        switch c {
        case .text(let s): return ("\(s)", false)
        case .int(let i): return ("\(i)", true)
        case .yuan(let fen): return ("\(Display.yuan(fen))", true)
        case .hundredths(let h): return ("\(ReportNumbers.fixed2(h))", true)
        case .half(let t): return ("\(ReportNumbers.half(t))", true)
        case .time(let ms): return ("\(ConsoleLayout.time(ms))", false)
        case .empty: return ("—", false)
        }
    }

    static func table(_ t: ReportTable, csv: String) -> HTML {
        let head = t.columns.map { c -> HTML in "<th>\(c.label)</th>" }
        let rows = t.rows.map { r -> HTML in
            let cells = r.map { c -> HTML in
                let (v, num) = cell(c)
                return "<td\(num ? HTML(trusted: " class=\"num\"") : .empty)>\(v)</td>"
            }
            return "<tr>\(cells)</tr>"
        }
        return """
            <h2>\(t.title) <a class="csv" href="\(csv)" id="csv-\(t.section)">导出 CSV</a></h2>
            <div class="scroll"><table id="report-\(t.section)"><thead><tr>\(head)</tr></thead><tbody>\(rows)</tbody></table></div>
            """
    }

    static func unitName(_ u: ReportRegion) -> String { u.name.map { "\($0)（\(u.code)）" } ?? u.code }
    /// Charts name a region briefly: its name, else its code.
    static func shortName(_ u: ReportRegion) -> String { u.name ?? u.code }

    /// 报表: figures for a region and period, with charts by sub-region and by month, every
    /// section as a table, and each table as a CSV file.
    func reports(_ request: Request, _ s: Session) async throws -> HTML {
        let q = try reportQuery(request)
        let report = try await store.report(for: s.supervisor, q)
        let params: [(String, String?)] = [("region", q.region), ("from", q.from), ("to", q.to), ("inactive_days", String(q.inactiveDays))]
        let d = report.disputes.total, v = report.visits.total, p = report.projects.total
        let cards: [HTML] = [
            ("走访次数", "\(v.visits)"), ("走访户数", "\(v.households)"), ("受理纠纷", "\(d.received)"),
            ("化解率", d.resolutionRateBasisPoints.map { ReportNumbers.fixed2($0) + "%" } ?? "—"),
            ("帮扶项目", "\(p.projects)"), ("项目预算", Display.yuan(p.budgetFen)), ("已支出", Display.yuan(p.spentFen)),
            ("未处理冲突", "\(report.sync.total.conflictsOpen)"),
        ].map { l, n in "<div class=\"card\"><div class=\"n\">\(n)</div><div class=\"l\">\(l)</div></div>" }
        let unitLevel = report.units.first?.level ?? "下级区划"
        let charts: [HTML] = [
            SVGChart.bars("各\(unitLevel)走访次数", report.visits.byUnit.map { .init(label: Self.shortName($0.unit), value: Int64($0.figures.visits), shown: "\($0.figures.visits)") }, id: "chart-visits-by-unit"),
            SVGChart.columns("每月走访次数", report.visits.byMonth.map { .init(label: $0.month, value: Int64($0.figures.visits), shown: "\($0.figures.visits)") }, id: "chart-visits-by-month"),
            SVGChart.bars("各\(unitLevel)受理纠纷（化解率）", report.disputes.byUnit.map {
                .init(label: Self.shortName($0.unit), value: Int64($0.figures.received),
                      shown: "\($0.figures.received)" + ($0.figures.resolutionRateBasisPoints.map { "（\(ReportNumbers.fixed2($0))%）" } ?? ""))
            }, id: "chart-disputes-by-unit"),
            SVGChart.columns("每月受理纠纷", report.disputes.byMonth.map { .init(label: $0.month, value: Int64($0.figures.received), shown: "\($0.figures.received)") }, id: "chart-disputes-by-month"),
            SVGChart.bars("各\(unitLevel)项目已支出（元）", report.projects.byUnit.map {
                .init(label: Self.shortName($0.unit), value: $0.figures.spentFen, shown: Display.yuan($0.figures.spentFen))
            }, id: "chart-spent-by-unit"),
        ]
        let tables = report.tables().map { t in
            Self.table(t, csv: ConsoleURL.make("/console/reports/\(t.section).csv", params))
        }
        let body: HTML = """
            <h1>报表 · \(Self.unitName(report.region))</h1>
            <form method="get" action="/console/reports" class="filters" id="report-form">
              <label>区划代码 <input type="text" name="region" id="report-region" value="\(q.region ?? s.supervisor.scope)" maxlength="12" inputmode="numeric"></label>
              <label>开始日期 <input type="date" name="from" id="report-from" value="\(q.from)"></label>
              <label>结束日期 <input type="date" name="to" id="report-to" value="\(q.to)"></label>
              <label>未走访天数 <input type="text" name="inactive_days" value="\(q.inactiveDays)" maxlength="4" inputmode="numeric"></label>
              <button type="submit" class="primary" id="report-submit">生成报表</button>
            </form>
            <p class="muted" id="report-period">\(report.region.level) \(Self.unitName(report.region)) · \(report.from) 至 \(report.to)（按 UTC 日期，含首尾两天）· 生成于 \(ConsoleLayout.time(report.generatedAt))</p>
            <div class="cards" id="report-cards">\(cards)</div>
            <div class="charts">\(charts)</div>
            \(tables)
            """
        return ConsoleLayout.page("报表", .reports, s, body)
    }

    /// One section of the report as a CSV file (UTF-8 with BOM, for Excel).
    func reportCSV(_ request: Request, file: String, _ s: Session) async throws -> Response {
        let section = file.hasSuffix(".csv") ? String(file.dropLast(4)) : ""
        guard ReportTable.sections.contains(section) else {
            throw ConsolePageError(404, "没有这个报表", "the report sections are " + ReportTable.sections.map { $0 + ".csv" }.joined(separator: ", "))
        }
        let report = try await store.report(for: s.supervisor, try reportQuery(request))
        guard let table = report.table(section) else { throw ConsolePageError(404, "没有这个报表", "no section \(section)") }
        return Response(status: .ok, headers: [
            .contentType: "text/csv; charset=utf-8",
            HubHTTP.contentDisposition: "attachment; filename=\"\(ReportCSV.fileName(report, section))\"",
        ], body: ResponseBody(byteBuffer: ByteBuffer(bytes: ReportCSV.bytes(table))))
    }
}

import FieldSyncCore
import FieldSyncPresentation

// MARK: - ReportTable

/// One section of a report as a table with Chinese headings: what the CLI prints, what a CSV
/// file holds and what the web console can render without knowing each figure.
///
///     for t in report.tables() { print(t.title); … t.columns … t.rows … }
public struct ReportTable: Sendable {
    /// The section's key: `visits`, `disputes`, … (``ReportTable/sections``), also the CSV file name.
    public let section: String
    /// 走访情况, …
    public let title: String
    public let columns: [ReportColumn]
    public let rows: [[ReportCell]]

    /// Every section, in the order reports show them.
    public static let sections = ["visits", "disputes", "dispute_categories", "projects", "cadres", "cadre_list", "sync", "devices"]
}

public struct ReportColumn: Sendable, Equatable {
    /// A stable ASCII key (as in the JSON form).
    public let key: String
    /// The Chinese heading people read (and the CSV header).
    public let label: String
}

/// A value in a report table. Numbers stay exact: money in 分, ratios in hundredths.
public enum ReportCell: Sendable, Equatable {
    case text(String)
    case int(Int64)
    /// Money in 分, shown in 元 with two decimals.
    case yuan(Int64)
    /// A number in hundredths (a rate in percent, an average), shown with two decimals.
    case hundredths(Int64)
    /// Twice a value that is a multiple of ½ (a median of days), shown as 3 or 3.5.
    case half(Int64)
    /// A moment, Unix ms, shown in UTC.
    case time(Int64)
    case empty

    /// The plain form for CSV: numbers without grouping or unit (元 `1234.56`, rate `99.67`),
    /// times ISO 8601 UTC, empty as nothing.
    public var plain: String {
        switch self {
        case .text(let s): return s
        case .int(let i): return String(i)
        case .yuan(let fen): return ReportNumbers.fixed2(fen)
        case .hundredths(let h): return ReportNumbers.fixed2(h)
        case .half(let t): return ReportNumbers.half(t)
        // People's time: the hub's zone (Display.zone), named in the column's label.
        case .time(let ms): return String(Display.time(ms).prefix(19))
        case .empty: return ""
        }
    }
}

// MARK: - Building the tables

extension HubReport {
    /// Every section as a table, in ``ReportTable/sections`` order.
    public func tables() -> [ReportTable] { ReportTable.sections.compactMap(table) }

    /// One section's table, or nil for an unknown section key.
    public func table(_ section: String) -> ReportTable? {
        switch section {
        case "visits": return breakdown(section, "走访情况", visits, visitColumns, visitCells)
        case "disputes": return breakdown(section, "矛盾纠纷", disputes, disputeColumns, disputeCells)
        case "dispute_categories":
            return ReportTable(section: section, title: "矛盾纠纷（按类型）",
                               columns: [ReportColumn(key: "category", label: "纠纷类型")] + disputeColumns,
                               rows: disputeCategories.map { [.text($0.category)] + disputeCells($0.figures) })
        case "projects": return breakdown(section, "帮扶项目", projects, projectColumns, projectCells)
        case "cadres": return breakdown(section, "干部走访", cadres, cadreColumns, cadreCells)
        case "cadre_list":
            let cols = [("id", "干部编号"), ("name", "姓名"), ("region", "驻点区划代码"), ("onPost", "在岗"), ("visits", "期内走访次数"),
                        ("lastVisit", "最近走访日期"), ("inactive", "\(inactiveDays)天未走访")].map(ReportColumn.init)
            return ReportTable(section: section, title: "干部走访明细", columns: cols, rows: cadreList.map { c in
                [c.id.map(ReportCell.text) ?? .empty, .text(c.name), .text(c.region), .text(c.onPost ? "是" : "否"), .int(Int64(c.visits)),
                 c.lastVisit.map(ReportCell.text) ?? .empty, .text(c.inactive ? "是" : "否")]
            })
        case "sync": return breakdown(section, "同步情况（截至生成时）", sync, syncColumns, syncCells)
        case "devices":
            let cols = [("device", "设备编号"), ("name", "设备名称"), ("scope", "范围"), ("status", "状态"), ("lastSync", "最近同步(\(Display.zone.name))"),
                        ("lastSeen", "最近联系(\(Display.zone.name))"), ("lagHours", "滞后(小时)"), ("pending", "待下发变更"), ("lastError", "最近错误")].map(ReportColumn.init)
            return ReportTable(section: section, title: "设备同步明细", columns: cols, rows: devices.map { d in
                [.text(d.id), .text(d.name), .text(d.scope), .text(Self.statusLabel(d.status)), d.lastSync.map(ReportCell.time) ?? .empty,
                 d.lastSeen.map(ReportCell.time) ?? .empty, d.lagMs.map { .hundredths(Self.hoursHundredths($0)) } ?? .empty,
                 .int(d.pending), d.lastError.map(ReportCell.text) ?? .empty]
            })
        default: return nil
        }
    }

    static func statusLabel(_ s: String) -> String {
        switch s {
        case "revoked": return "已吊销"
        case "awaiting enrolment": return "待注册"
        default: return "已注册"
        }
    }

    /// Milliseconds → hours in hundredths, rounded half up.
    static func hoursHundredths(_ ms: Int64) -> Int64 { ReportNumbers.hundredths(ms, 3_600_000) ?? 0 }

    /// The leading columns of a breakdown: which row it is (合计, a region, a month).
    static let groupColumns = [ReportColumn(key: "group", label: "分组"), ReportColumn(key: "code", label: "区划代码/月份"),
                               ReportColumn(key: "name", label: "名称")]

    func breakdown<F>(_ section: String, _ title: String, _ s: ReportSection<F>, _ columns: [ReportColumn], _ cells: (F) -> [ReportCell]) -> ReportTable {
        var rows: [[ReportCell]] = [[.text("合计"), .text(region.code), region.name.map(ReportCell.text) ?? .empty] + cells(s.total)]
        for (u, f) in s.byUnit { rows.append([.text(u.level), .text(u.code), u.name.map(ReportCell.text) ?? .empty] + cells(f)) }
        for (m, f) in s.byMonth { rows.append([.text("月份"), .text(m), .empty] + cells(f)) }
        return ReportTable(section: section, title: title, columns: Self.groupColumns + columns, rows: rows)
    }

    var visitColumns: [ReportColumn] {
        [("visits", "走访次数"), ("households", "走访户数"), ("meetings", "院坝会群众会次数"), ("meetingAttendees", "到会人数")].map(ReportColumn.init)
            + Enumerations.visitKinds.map { ReportColumn(key: "byKind." + $0, label: $0) }
    }

    func visitCells(_ f: VisitFigures) -> [ReportCell] {
        [.int(Int64(f.visits)), .int(Int64(f.households)), .int(Int64(f.meetings)), .int(f.meetingAttendees)] + f.byKind.map { .int(Int64($0.count)) }
    }

    var disputeColumns: [ReportColumn] {
        [("received", "受理"), ("receivedResolved", "其中已化解"), ("resolutionRate", "化解率(%)"), ("resolved", "期内化解"),
         ("medianDaysToResolve", "化解天数中位数"), ("stillOpen", "未结(受理、调解中)")].map(ReportColumn.init)
            + Enumerations.disputeStatuses.map { ReportColumn(key: "byStatus." + $0, label: "受理中" + $0) }
    }

    func disputeCells(_ f: DisputeFigures) -> [ReportCell] {
        [.int(Int64(f.received)), .int(Int64(f.receivedResolved)), f.resolutionRateBasisPoints.map(ReportCell.hundredths) ?? .empty,
         .int(Int64(f.resolved)), f.medianDaysToResolveTimesTwo.map(ReportCell.half) ?? .empty, .int(Int64(f.stillOpen))]
            + f.byStatus.map { .int(Int64($0.count)) }
    }

    var projectColumns: [ReportColumn] {
        [("projects", "项目数"), ("budgetYuan", "预算(元)"), ("spentYuan", "已支出(元)"), ("householdsBenefiting", "受益户数"),
         ("started", "期内开工"), ("completed", "期内完工")].map(ReportColumn.init)
            + Enumerations.projectKinds.map { ReportColumn(key: "byKind." + $0, label: $0) }
            + Enumerations.projectStatuses.map { ReportColumn(key: "byStatus." + $0, label: $0) }
    }

    func projectCells(_ f: ProjectFigures) -> [ReportCell] {
        [.int(Int64(f.projects)), .yuan(f.budgetFen), .yuan(f.spentFen), .int(f.householdsBenefiting), .int(Int64(f.started)), .int(Int64(f.completed))]
            + f.byKind.map { .int(Int64($0.count)) } + f.byStatus.map { .int(Int64($0.count)) }
    }

    var cadreColumns: [ReportColumn] {
        [("cadres", "在岗干部"), ("visitingCadres", "有走访的干部"), ("visits", "走访次数"), ("visitsPerCadre", "人均走访"),
         ("inactive", "\(inactiveDays)天未走访干部")].map(ReportColumn.init)
    }

    func cadreCells(_ f: CadreFigures) -> [ReportCell] {
        [.int(Int64(f.cadres)), .int(Int64(f.visitingCadres)), .int(Int64(f.visits)), f.visitsPerCadreHundredths.map(ReportCell.hundredths) ?? .empty,
         .int(Int64(f.inactive))]
    }

    var syncColumns: [ReportColumn] {
        [("devices", "设备数"), ("awaitingEnrolment", "待注册"), ("revoked", "已吊销"), ("neverSynced", "从未同步"), ("lastSync", "最近同步(\(Display.zone.name))"),
         ("oldestSync", "最久未同步(\(Display.zone.name))"), ("maxLagHours", "最大滞后(小时)"), ("withErrors", "有错误设备"), ("pendingChanges", "待下发变更"),
         ("conflictsOpen", "未处理冲突")].map(ReportColumn.init)
    }

    func syncCells(_ f: SyncFigures) -> [ReportCell] {
        [.int(Int64(f.devices)), .int(Int64(f.awaitingEnrolment)), .int(Int64(f.revoked)), .int(Int64(f.neverSynced)),
         f.lastSync.map(ReportCell.time) ?? .empty, f.oldestSync.map(ReportCell.time) ?? .empty,
         f.maxLagMs.map { .hundredths(Self.hoursHundredths($0)) } ?? .empty, .int(Int64(f.withErrors)), .int(f.pendingChanges), .int(Int64(f.conflictsOpen))]
    }
}

// MARK: - CSV

/// CSV for Excel: UTF-8 with a byte-order mark (so Excel reads Chinese text), CRLF line ends,
/// fields quoted when they hold a comma, a quote, a line break or edge spaces (quotes doubled),
/// numbers plain (元 `1234.56`, rates `99.67`) so they read back as numbers. RFC 4180.
///
/// Text that a spreadsheet would run as a formula — beginning with `=`, `+`, `-`, `@`, a tab or
/// a carriage return (a name typed as `=HYPERLINK(…)` on a laptop) — gets a leading `'`, which
/// Excel and LibreOffice show as text and do not display (OWASP "CSV injection"). Number cells
/// are written by the hub itself and stay numbers.
public enum ReportCSV {
    public static let bom = CSVText.bom

    public static func bytes(_ t: ReportTable) -> [UInt8] {
        // Number cells are written by the hub itself and stay numbers.
        CSVText.file(header: t.columns.map(\.label), rows: t.rows.map { $0.map { if case .text(let s) = $0 { s } else { $0.plain } } },
                     isNumber: { r, c in if case .text = t.rows[r][c] { false } else { true } })
    }

    /// Text a spreadsheet will show, never evaluate.
    public static func inert(_ s: String) -> String { CSVText.inert(s) }

    /// The file name a section is saved as: `fieldsync-report-522224-2026-01-01-2026-06-30-visits.csv`.
    public static func fileName(_ r: HubReport, _ section: String) -> String {
        "fieldsync-report-\(r.region.code)-\(r.from)-\(r.to)-\(section).csv"
    }
}

// MARK: - JSON

extension HubReport {
    /// The stable JSON form (Protocol/reports.md, Protocol/schemas/report.schema.json): money in
    /// integer 分, rates as numbers with two decimals, times ISO 8601 UTC.
    public var json: JSONValue {
        func region(_ r: ReportRegion) -> JSONValue {
            ["code": .string(r.code), "name": r.name.map(JSONValue.string) ?? .null, "level": .string(r.level)]
        }
        func section<F>(_ s: ReportSection<F>, _ f: (F) -> JSONObject) -> JSONValue {
            var o: JSONObject = ["total": .object(f(s.total))]
            o["byUnit"] = .array(s.byUnit.map { u, x in .object(JSONObject([("code", .string(u.code)), ("name", u.name.map(JSONValue.string) ?? .null)] + f(x).pairs.map { ($0.key, $0.value) })) })
            o["byMonth"] = .array(s.byMonth.map { m, x in .object(JSONObject([("month", .string(m))] + f(x).pairs.map { ($0.key, $0.value) })) })
            return .object(o)
        }
        func counts(_ c: [(String, Int)]) -> JSONValue { .object(JSONObject(c.map { ($0.0, .int(Int64($0.1))) })) }
        func time(_ ms: Int64?) -> JSONValue { ms.map { .string(UTCTime.iso($0)) } ?? .null }
        func number2(_ h: Int64?) -> JSONValue { h.map { .double(Double($0) / 100) } ?? .null }
        func visit(_ f: VisitFigures) -> JSONObject {
            ["visits": .int(Int64(f.visits)), "households": .int(Int64(f.households)), "meetings": .int(Int64(f.meetings)),
             "meetingAttendees": .int(f.meetingAttendees), "byKind": counts(f.byKind)]
        }
        func dispute(_ f: DisputeFigures) -> JSONObject {
            ["received": .int(Int64(f.received)), "receivedResolved": .int(Int64(f.receivedResolved)),
             "resolutionRate": number2(f.resolutionRateBasisPoints), "resolved": .int(Int64(f.resolved)),
             "medianDaysToResolve": f.medianDaysToResolveTimesTwo.map { $0 % 2 == 0 ? .int($0 / 2) : .double(Double($0) / 2) } ?? .null,
             "stillOpen": .int(Int64(f.stillOpen)), "byStatus": counts(f.byStatus)]
        }
        func project(_ f: ProjectFigures) -> JSONObject {
            ["projects": .int(Int64(f.projects)), "byKind": counts(f.byKind), "byStatus": counts(f.byStatus), "budgetFen": .int(f.budgetFen),
             "spentFen": .int(f.spentFen), "householdsBenefiting": .int(f.householdsBenefiting), "started": .int(Int64(f.started)),
             "completed": .int(Int64(f.completed))]
        }
        func cadre(_ f: CadreFigures) -> JSONObject {
            ["cadres": .int(Int64(f.cadres)), "visitingCadres": .int(Int64(f.visitingCadres)), "visits": .int(Int64(f.visits)),
             "visitsPerCadre": number2(f.visitsPerCadreHundredths), "inactive": .int(Int64(f.inactive))]
        }
        func sync(_ f: SyncFigures) -> JSONObject {
            ["devices": .int(Int64(f.devices)), "awaitingEnrolment": .int(Int64(f.awaitingEnrolment)), "revoked": .int(Int64(f.revoked)),
             "neverSynced": .int(Int64(f.neverSynced)), "lastSync": time(f.lastSync), "oldestSync": time(f.oldestSync),
             "maxLagMs": f.maxLagMs.map(JSONValue.int) ?? .null, "withErrors": .int(Int64(f.withErrors)),
             "pendingChanges": .int(f.pendingChanges), "conflictsOpen": .int(Int64(f.conflictsOpen))]
        }
        var o = JSONObject()
        o["version"] = .int(Int64(Self.version))
        o["region"] = region(self.region)
        o["from"] = .string(from)
        o["to"] = .string(to)
        o["timeZone"] = .string(Self.timeZone)
        o["inactiveDays"] = .int(Int64(inactiveDays))
        o["generatedAt"] = .string(UTCTime.iso(generatedAt))
        o["units"] = .array(units.map(region))
        o["months"] = .array(months.map(JSONValue.string))
        o["visits"] = section(visits, visit)
        o["disputes"] = section(disputes, dispute)
        o["disputeCategories"] = .array(disputeCategories.map { c, f in .object(JSONObject([("category", .string(c))] + dispute(f).pairs.map { ($0.key, $0.value) })) })
        o["projects"] = section(projects, project)
        o["cadres"] = section(cadres, cadre)
        o["cadreList"] = .array(cadreList.map { c in
            ["id": c.id.map(JSONValue.string) ?? .null, "name": .string(c.name), "region": .string(c.region), "onPost": .bool(c.onPost),
             "visits": .int(Int64(c.visits)), "lastVisit": c.lastVisit.map(JSONValue.string) ?? .null, "inactive": .bool(c.inactive)]
        })
        o["sync"] = section(self.sync, sync)
        o["devices"] = .array(devices.map { d in
            ["device": .string(d.id), "name": .string(d.name), "scope": .string(d.scope), "status": .string(d.status),
             "lastSync": time(d.lastSync), "lastSeen": time(d.lastSeen), "lagMs": d.lagMs.map(JSONValue.int) ?? .null,
             "pending": .int(d.pending), "lastError": d.lastError.map(JSONValue.string) ?? .null, "lastErrorAt": time(d.lastErrorAt)]
        })
        return .object(o)
    }
}

import FieldSyncCore

// MARK: - HubReport

/// The figures a township or county office publishes, computed from the synced records of one
/// region and period: visits and meetings, disputes, projects, cadre activity and sync health,
/// each in total, per region one level down (county → townships, township → villages) and per
/// month. Protocol/reports.md defines every figure; `json` is its stable JSON form and
/// ``tables`` the same figures as tables (for the CLI, CSV export and the web console).
///
/// Money is integer 分; rates are kept as numerator and denominator.
public struct HubReport: Sendable {
    /// The query as answered (region filled in from the scope).
    public var region: ReportRegion
    public var from: String
    public var to: String
    public var inactiveDays: Int
    /// When the report was computed (Unix ms, UTC); sync-health figures are as of this moment.
    public var generatedAt: Int64
    /// The regions one level down that the breakdowns use, in code order: every one named in
    /// the region records, and every one that holds a record. Empty for a village.
    public var units: [ReportRegion]
    /// Every month the period touches, `YYYY-MM`, oldest first.
    public var months: [String]

    public var visits: ReportSection<VisitFigures>
    public var disputes: ReportSection<DisputeFigures>
    /// Dispute figures per category (the total over the period).
    public var disputeCategories: [(category: String, figures: DisputeFigures)]
    public var projects: ReportSection<ProjectFigures>
    public var cadres: ReportSection<CadreFigures>
    /// Every cadre record in the region, and everyone who logged a visit without one.
    public var cadreList: [CadreActivity]
    /// Per region one level down; no months (it describes now, not the period).
    public var sync: ReportSection<SyncFigures>
    public var devices: [DeviceHealth]

    /// The time zone of every date and time in the report.
    public static let timeZone = "UTC"
    /// The report format's version (JSON `version`).
    public static let version = 1
}

/// A region the report covers or breaks down into: its code and, when a region record names
/// it, its name.
public struct ReportRegion: Sendable, Equatable {
    public var code: String
    public var name: String?
    /// 县(区), 乡镇(街道), 村(社区), …
    public var level: String { RegionCode.levelLabel(code) }

    public init(code: String, name: String?) {
        self.code = code
        self.name = name
    }
}

/// One section's figures: the total, per region one level down, per month.
public struct ReportSection<F: Sendable>: Sendable {
    public var total: F
    /// In the order of ``HubReport/units``.
    public var byUnit: [(unit: ReportRegion, figures: F)]
    /// In the order of ``HubReport/months``; empty for sections that describe the present.
    public var byMonth: [(month: String, figures: F)]
}

// MARK: - Figures

/// 走访: visits whose `visit_date` lies in the period.
public struct VisitFigures: Sendable, Equatable {
    public var visits = 0
    /// Distinct households visited: by `household_id`, or by village and 户主 when it is empty;
    /// visits naming neither (meetings) count no household.
    public var households = 0
    /// 院坝会 and 群众会.
    public var meetings = 0
    /// Sum of `attendees` over the meetings.
    public var meetingAttendees: Int64 = 0
    /// Per `visit_kind`, in the schema's order (Enumerations.visitKinds), zeros included.
    public var byKind: [(kind: String, count: Int)] = Enumerations.visitKinds.map { ($0, 0) }

    public static func == (a: VisitFigures, b: VisitFigures) -> Bool {
        a.visits == b.visits && a.households == b.households && a.meetings == b.meetings && a.meetingAttendees == b.meetingAttendees
            && a.byKind.map(\.kind) == b.byKind.map(\.kind) && a.byKind.map(\.count) == b.byKind.map(\.count)
    }
}

/// 矛盾纠纷.
public struct DisputeFigures: Sendable, Equatable {
    /// 受理: disputes whose `reported_on` lies in the period.
    public var received = 0
    /// Of those received, how many are now 已化解 (the numerator of the resolution rate).
    public var receivedResolved = 0
    /// 化解: disputes now 已化解 whose `resolved_on` lies in the period (whenever received).
    public var resolved = 0
    /// Twice the median of `resolved_on − reported_on` in days over ``resolved`` (twice, so it
    /// stays a whole number: a median of 3.5 days is 7); nil when nothing was resolved.
    public var medianDaysToResolveTimesTwo: Int64?
    /// Received on or before the period's last day and now 受理 or 调解中 (state as of now).
    public var stillOpen = 0
    /// Per status of the disputes received in the period, in the schema's order, zeros included.
    public var byStatus: [(status: String, count: Int)] = Enumerations.disputeStatuses.map { ($0, 0) }

    /// 化解率 = receivedResolved / received, in hundredths of a percent rounded half up
    /// (9967 = 99.67 %); nil when nothing was received.
    public var resolutionRateBasisPoints: Int64? { ReportNumbers.basisPoints(Int64(receivedResolved), Int64(received)) }

    public var medianDaysToResolve: Double? { medianDaysToResolveTimesTwo.map { Double($0) / 2 } }

    public static func == (a: DisputeFigures, b: DisputeFigures) -> Bool {
        a.received == b.received && a.receivedResolved == b.receivedResolved && a.resolved == b.resolved
            && a.medianDaysToResolveTimesTwo == b.medianDaysToResolveTimesTwo && a.stillOpen == b.stillOpen
            && a.byStatus.map(\.count) == b.byStatus.map(\.count)
    }
}

/// 帮扶项目: projects active in the period, i.e. started (`started_on`) on or before its last
/// day and not completed (`completed_on`) before its first. A project with no start date is
/// not yet active. Per month: the projects active in that month.
public struct ProjectFigures: Sendable, Equatable {
    public var projects = 0
    /// Per `project_kind` and per `status`, in the schema's order, zeros included.
    public var byKind: [(kind: String, count: Int)] = Enumerations.projectKinds.map { ($0, 0) }
    public var byStatus: [(status: String, count: Int)] = Enumerations.projectStatuses.map { ($0, 0) }
    /// Sums over the active projects, integer 分 (an empty amount counts 0).
    public var budgetFen: Int64 = 0
    public var spentFen: Int64 = 0
    public var householdsBenefiting: Int64 = 0
    /// Of the active projects: started in the period, and completed in it.
    public var started = 0
    public var completed = 0

    public static func == (a: ProjectFigures, b: ProjectFigures) -> Bool {
        a.projects == b.projects && a.byKind.map(\.count) == b.byKind.map(\.count) && a.byStatus.map(\.count) == b.byStatus.map(\.count)
            && a.budgetFen == b.budgetFen && a.spentFen == b.spentFen && a.householdsBenefiting == b.householdsBenefiting
            && a.started == b.started && a.completed == b.completed
    }
}

/// 干部走访情况.
public struct CadreFigures: Sendable, Equatable {
    /// Cadre records of the region on post on the period's last day (started on or before it,
    /// not ended before it). Per month: on post on the month's last day within the period.
    public var cadres = 0
    /// Distinct visitors in the period (by `cadre_id`, else by 走访干部 name).
    public var visitingCadres = 0
    public var visits = 0
    /// Cadres on post with no visit in the `inactiveDays` days ending on the period's last day
    /// (or, per month, on the month's last day within the period).
    public var inactive = 0

    /// Visits per visiting cadre, in hundredths (rounded half up); nil when nobody visited.
    public var visitsPerCadreHundredths: Int64? { ReportNumbers.hundredths(Int64(visits), Int64(visitingCadres)) }
}

/// One cadre's visits.
public struct CadreActivity: Sendable, Equatable {
    /// The cadre record's id; nil for a name found only on visits.
    public var id: String?
    public var name: String
    /// The cadre record's place (village or township code), or the village of the name's latest visit.
    public var region: String
    public var onPost: Bool
    public var visits: Int
    /// The latest `visit_date` on or before the period's last day.
    public var lastVisit: String?
    public var inactive: Bool
}

/// 同步情况, as of ``HubReport/generatedAt``: devices enrolled for a scope inside the region
/// (a device enrolled for a wider scope shows in that wider region's report), and open conflicts
/// on the region's records.
public struct SyncFigures: Sendable, Equatable {
    /// Enrolled and not revoked.
    public var devices = 0
    public var awaitingEnrolment = 0
    public var revoked = 0
    /// Enrolled devices that have never been fully caught up.
    public var neverSynced = 0
    /// The most recent and the oldest "last fully caught up" among enrolled devices (Unix ms).
    public var lastSync: Int64?
    public var oldestSync: Int64?
    /// Lag of a device = generatedAt − its last full catch-up; the largest, in ms.
    public var maxLagMs: Int64?
    /// Enrolled devices whose last request ended in an error still standing.
    public var withErrors = 0
    /// Changes in the devices' scopes they have not pulled yet, summed.
    public var pendingChanges: Int64 = 0
    /// Open conflicts (record × field) on the region's records.
    public var conflictsOpen = 0
}

/// One device's sync health.
public struct DeviceHealth: Sendable, Equatable {
    public var id: String
    public var name: String
    public var scope: String
    /// enrolled, awaiting enrolment, revoked
    public var status: String
    public var lastSync: Int64?
    public var lastSeen: Int64?
    public var lagMs: Int64?
    public var pending: Int64
    public var lastError: String?
    public var lastErrorAt: Int64?
}

// MARK: - Numbers

/// Exact arithmetic for ratios: integers in, rounding half up, no floating point.
public enum ReportNumbers {
    /// numerator / denominator in hundredths of a percent, rounded half up (both ≥ 0).
    public static func basisPoints(_ n: Int64, _ d: Int64) -> Int64? {
        guard d > 0 else { return nil }
        return (n * 20_000 + d) / (2 * d)
    }

    /// numerator / denominator in hundredths, rounded half up.
    public static func hundredths(_ n: Int64, _ d: Int64) -> Int64? {
        guard d > 0 else { return nil }
        return (n * 200 + d) / (2 * d)
    }

    /// 12345 → "123.45"; the plain form CSV and JSON use.
    public static func fixed2(_ hundredths: Int64) -> String {
        let neg = hundredths < 0
        let a = hundredths.magnitude
        let c = a % 100
        return (neg ? "-" : "") + String(a / 100) + "." + (c < 10 ? "0" : "") + String(c)
    }

    /// a + b, at most Int64.max: a report's sums cannot trap on hostile amounts.
    public static func adding(_ a: Int64, _ b: Int64) -> Int64 {
        let (s, o) = a.addingReportingOverflow(b)
        return o ? (b < 0 ? .min : .max) : s
    }

    /// Twice a value → "3.5" or "3".
    public static func half(_ twice: Int64) -> String { twice % 2 == 0 ? String(twice / 2) : String(twice / 2) + ".5" }
}

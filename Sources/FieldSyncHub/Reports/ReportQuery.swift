import FieldSyncCore

// MARK: - ReportQuery

/// What a report covers: a region (a division-code prefix), a period of whole UTC days, and how
/// many days without a visit make a cadre inactive.
///
///     let q = try ReportQuery(region: "522224", from: "2026-01-01", to: "2026-06-30")
///     let report = try await store.report(for: supervisor, q)
///
/// Both ends of the period are included. Dates are calendar dates as the records hold them
/// (`visit_date`, `reported_on`, …), read as UTC days. Protocol/reports.md says which date puts
/// each kind of record in the period.
public struct ReportQuery: Sendable, Equatable {
    /// The division-code prefix (2, 4, 6, 9 or 12 digits); nil means the asker's whole scope.
    public var region: String?
    /// First day, `YYYY-MM-DD`, included.
    public var from: String
    /// Last day, `YYYY-MM-DD`, included.
    public var to: String
    /// A cadre with no visit in the `inactiveDays` days ending on `to` is listed as inactive.
    public var inactiveDays: Int

    public static let defaultInactiveDays = 30
    public static let inactiveDaysRange = 1...3650
    /// The longest period a report covers, in days (about 30 years).
    public static let maxPeriodDays: Int64 = 11_000

    /// Checks every parameter; a bad one is a ``HubFailure`` 400 `bad_parameter` naming it and why.
    public init(region: String? = nil, from: String, to: String, inactiveDays: Int = ReportQuery.defaultInactiveDays) throws {
        if let region, let p = SQLiteHubStore.scopeProblem(region) {
            throw HubFailure(.badParameter, "region: \(p)")
        }
        let f = try Self.day(from, "from"), t = try Self.day(to, "to")
        guard f <= t else { throw HubFailure(.badParameter, "from (\(from)) is after to (\(to)): the period runs from its first day to its last, both included") }
        guard t - f < Self.maxPeriodDays else {
            throw HubFailure(.badParameter, "the period \(from)…\(to) is \(t - f + 1) days; a report covers at most \(Self.maxPeriodDays) days")
        }
        guard Self.inactiveDaysRange.contains(inactiveDays) else {
            throw HubFailure(.badParameter, "inactive_days is a whole number of days in \(Self.inactiveDaysRange.lowerBound)…\(Self.inactiveDaysRange.upperBound), got \(inactiveDays)")
        }
        self.region = region
        self.from = from
        self.to = to
        self.inactiveDays = inactiveDays
    }

    /// Days since 1970-01-01 of a `YYYY-MM-DD` date (years 1900…2999), or 400 `bad_parameter`.
    static func day(_ s: String, _ name: String) throws -> Int64 {
        if let p = DateCheck.problem(s) { throw HubFailure(.badParameter, "\(name): \(p)") }
        guard let ms = UTCTime.parseISO(s), s.utf8.count == 10 else {
            throw HubFailure(.badParameter, "\(name): \"\(s.prefix(40))\" is not a calendar date YYYY-MM-DD")
        }
        let y = s.prefix(4)
        guard y >= "1900", y <= "2999" else { throw HubFailure(.badParameter, "\(name): the year of \(s) is outside 1900…2999") }
        return ms / 86_400_000
    }

    /// The query narrowed to a supervisor's scope: no region means the whole scope; a region
    /// outside it (or wider than it) is 403 `out_of_scope`.
    public func scoped(to s: Supervisor) throws -> ReportQuery {
        var q = self
        guard let r = region else { q.region = s.scope; return q }
        guard r.hasPrefix(s.scope) else {
            throw HubFailure(.outOfScope, "region \(r) (\(RegionCode.levelLabel(r))) lies outside \(s.name)'s scope \(s.scope) (\(RegionCode.levelLabel(s.scope))); ask for \(s.scope) or a region inside it")
        }
        return q
    }
}

import FieldSyncCore
import Foundation
import HTTPTypes
import Hummingbird

// MARK: - Reports over HTTP (Protocol/reports.md)

extension HubHTTP {
    static let contentDisposition = HTTPField.Name("Content-Disposition")!

    /// `GET /v1/reports` (JSON) and `GET /v1/reports/SECTION.csv` (one section as CSV), for a
    /// signed-in supervisor, within their scope.
    static func addReportRoutes(_ router: Router<HubRequestContext>, store: any HubStore) {
        router.get("/v1/reports") { request, _ in
            let s = try await supervisor(request, store)
            let report = try await store.report(for: s.supervisor, try reportQuery(request))
            return json(report.json, request: request)
        }
        router.get("/v1/reports/:file") { request, context in
            let file = context.parameters.get("file") ?? ""
            let section = file.hasSuffix(".csv") ? String(file.dropLast(4)) : ""
            guard ReportTable.sections.contains(section) else {
                throw HubFailure(.notFound, "no report section \"\(file.prefix(60))\": ask for /v1/reports/SECTION.csv with SECTION one of \(ReportTable.sections.joined(separator: ", ")), or /v1/reports for JSON")
            }
            let s = try await supervisor(request, store)
            let report = try await store.report(for: s.supervisor, try reportQuery(request))
            guard let table = report.table(section) else { throw HubFailure(.notFound, "no report section \(section)") }
            let headers: HTTPFields = [
                .contentType: "text/csv; charset=utf-8",
                contentDisposition: "attachment; filename=\"\(ReportCSV.fileName(report, section))\"",
            ]
            return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: ReportCSV.bytes(table))))
        }
    }

    /// The report parameters of a request: `from` and `to` (required, YYYY-MM-DD), `region` and
    /// `inactive_days` (optional). A missing or malformed one is 400 `bad_parameter`.
    static func reportQuery(_ r: Request) throws -> ReportQuery {
        let q = r.uri.queryParameters
        func required(_ name: String) throws -> String {
            guard let v = q[Substring(name)], !v.isEmpty else {
                throw HubFailure(.badParameter, "\(name) is required: the period's \(name == "from" ? "first" : "last") day, YYYY-MM-DD (UTC)")
            }
            return String(v)
        }
        let from = try required("from"), to = try required("to")
        var inactive = ReportQuery.defaultInactiveDays
        if let raw = q["inactive_days"] {
            guard isDigits(raw, max: 9), let n = Int(raw) else {
                throw HubFailure(.badParameter, "inactive_days is a whole number of days, got \"\(raw.prefix(40))\"")
            }
            inactive = n
        }
        let region = q["region"].map(String.init)
        if let region, region.isEmpty { throw HubFailure(.badParameter, "region is empty: leave it out for your whole scope, or give a division-code prefix") }
        return try ReportQuery(region: region, from: from, to: to, inactiveDays: inactive)
    }
}

import FieldSyncCore
import FieldSyncTrust
@testable import FieldSyncHub
@_spi(Hub) import FieldSyncReplica
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import Testing

/// `/metrics` in the Prometheus text format, for the metrics token's holder only, with figures
/// that follow what happened; request logs never show a token or a cookie.
@Suite struct MetricsSpec {
    static let token = "metrics-token-0123456789abcdef"

    /// The value of the sample `name{labels}` in a Prometheus text body.
    func sample(_ text: String, _ name: String, _ labels: [(String, String)] = []) -> Double? {
        for line in text.split(separator: "\n") where line.hasPrefix(name) && !line.hasPrefix("#") {
            let rest = line.dropFirst(name.count)
            let parts = rest.split(separator: " ")
            guard let value = parts.last.flatMap({ Double($0) }) else { continue }
            let labelText = rest.hasPrefix("{") ? String(rest[rest.index(after: rest.startIndex)..<(rest.firstIndex(of: "}") ?? rest.endIndex)]) : ""
            if !rest.hasPrefix("{") && !rest.hasPrefix(" ") { continue }
            let have = Set(labelText.split(separator: ",").map(String.init))
            if labels.allSatisfy({ have.contains("\($0.0)=\"\($0.1)\"") }) { return value }
        }
        return nil
    }

    @Test(arguments: StoreKind.available) func metricsCountRequestsPushesAndConflictsForTheTokenHolderOnly(kind: StoreKind) async throws {
        let f = try await StoreFixture(kind)
        let lines = LogLines()
        let logger = Logger(label: "test") { _ in lines }
        let metrics = HubMetrics(token: Self.token)
        let app = Application(router: HubHTTP.router(store: f.store, logger: logger, metrics: metrics))
        let ka = SiteKey(), kb = SiteKey()
        let (_, a) = try await f.device("王芳", scope: village1, key: ka)
        let (_, b) = try await f.device("李明", scope: village1, key: kb)
        let c = creation(ka.site, 1)
        let bad = Change(id: ChangeID(site: ka.site, counter: 2), kind: .dispute, row: RecordID.make(kind: .dispute, region: village2, nowMs: 1_763_784_000_000),
                         hlc: HybridTimestamp(millis: 1_763_784_000_000, counter: 0), author: "王芳",
                         writes: [FieldWrite(field: "village", value: .text(village2)), FieldWrite(field: "status", value: .text("受理"))])
        @Sendable func edit(_ k: SiteKey, _ n: Int64, _ status: String) -> Change {
            Change(id: ChangeID(site: k.site, counter: n), kind: .dispute, row: c.row, hlc: HybridTimestamp(millis: 1_763_785_000_000 + n, counter: 0),
                   author: "x", writes: [FieldWrite(field: "status", value: .text(status), context: VersionVector([(ka.site, Int64(1))]))])
        }
        try await app.test(.router) { client in
            try await client.execute(uri: "/v1/changes", method: .post, headers: bearer(a), body: pushBody(ka.site, [c, bad, edit(ka, 3, "已化解")])) { r in
                #expect(r.status == .ok)
            }
            try await client.execute(uri: "/v1/changes", method: .post, headers: bearer(b), body: pushBody(kb.site, [edit(kb, 1, "已上报")])) { _ in }
            try await client.execute(uri: "/v1/changes?after=0", method: .get, headers: bearer(b)) { r in #expect(r.status == .ok) }
            try await client.execute(uri: "/v1/made-up/path/x", method: .get) { _ in }

            try await client.execute(uri: "/metrics", method: .get) { r in #expect(r.status == .unauthorized) }
            try await client.execute(uri: "/metrics", method: .get, headers: bearer("metrics-token-wrong-0000000000")) { r in #expect(r.status == .unauthorized) }
            try await client.execute(uri: "/metrics", method: .get, headers: bearer(a)) { r in #expect(r.status == .unauthorized, "a device token is not the metrics token") }
            let text = try await client.execute(uri: "/metrics", method: .get, headers: bearer(Self.token)) { r in
                #expect(r.status == .ok)
                #expect(r.headers[.contentType]?.hasPrefix("text/plain") == true)
                return String(buffer: r.body)
            }
            #expect(sample(text, "fieldsync_http_requests_total", [("route", "/v1/changes"), ("method", "POST"), ("status", "200")]) == 2, "\(text)")
            #expect(sample(text, "fieldsync_http_requests_total", [("route", "/v1/changes"), ("method", "GET"), ("status", "200")]) == 1)
            #expect(sample(text, "fieldsync_http_requests_total", [("route", "unmatched"), ("status", "404")]) == 1, "made-up paths are one series: \(text.split(separator: "\n").filter { $0.hasPrefix("fieldsync_http_requests_total") })")
            #expect(!text.contains("made-up"))
            #expect(sample(text, "fieldsync_push_changes_total", [("result", "accepted")]) == 3)
            #expect(sample(text, "fieldsync_push_changes_total", [("result", "refused"), ("code", "out_of_scope")]) == 1)
            #expect(sample(text, "fieldsync_sync_duration_seconds_count", [("kind", "push")]) == 2)
            #expect(sample(text, "fieldsync_sync_duration_seconds_count", [("kind", "pull")]) == 1)
            #expect(sample(text, "fieldsync_conflicts_open") == 1, "the two status edits conflict")
            #expect(sample(text, "fieldsync_devices", [("status", "enrolled")]) == 2)
            #expect((sample(text, "fieldsync_change_log_position") ?? 0) >= 3)
        }
        let logged = lines.text
        #expect(logged.contains("/v1/changes"), "requests are logged")
        #expect(!logged.contains(a) && !logged.contains(b) && !logged.contains(Self.token), "no token in the logs")

        // Without a token configured, /metrics does not exist.
        let closed = Application(router: HubHTTP.router(store: f.store, logger: quietLogger()), logger: quietLogger())
        try await closed.test(.router) { client in
            try await client.execute(uri: "/metrics", method: .get, headers: bearer(Self.token)) { r in #expect(r.status == .notFound) }
        }
    }
}

/// Log lines kept in memory (a swift-log handler), to check what a log would show.
final class LogLines: LogHandler, @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }
    func log(level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata?, source: String, file: String, function: String, line: UInt) {
        let all = self.metadata.merging(metadata ?? [:]) { $1 }
        lock.withLock { lines.append("\(message) \(all)") }
    }
    var text: String { lock.withLock { lines.joined(separator: "\n") } }
}

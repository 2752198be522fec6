import CoreMetrics
import FieldSyncCore
import FieldSyncTrust
import Foundation
import Hummingbird
import Prometheus

// MARK: - HubMetrics

/// The hub's Prometheus metrics (docs/deploy.md, "Metrics"): recorded with swift-metrics into a
/// swift-prometheus registry of this hub's own, served on `/metrics` to whoever holds the
/// metrics token (`fieldsync-hub serve --metrics-token-file`), and to nobody else.
///
/// - `fieldsync_http_requests_total{route,method,status}` and `fieldsync_http_request_duration_seconds{route}`
/// - `fieldsync_sync_duration_seconds{kind}`: push, pull, snapshot and acknowledgement latency
/// - `fieldsync_push_changes_total{result,code}`: changes accepted, duplicate, refused (by code)
/// - `fieldsync_store_errors_total`: requests the store could not complete (503)
/// - `fieldsync_connections_open`: client connections now open
/// - at each scrape: `fieldsync_conflicts_open`, `fieldsync_change_log_position`,
///   `fieldsync_devices{status}`, `fieldsync_store_retries_total` (PostgreSQL transactions run again)
public final class HubMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    let factory: PrometheusMetricsFactory
    /// Who may read `/metrics`: the SHA-256 of the token (nil: nobody; the route answers 404).
    let tokenHash: String?

    /// Latency buckets, seconds: a village link's sync takes from milliseconds to seconds.
    static let buckets: [Double] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30]

    public init(token: String? = nil) {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = Self.buckets.map { Duration.nanoseconds(Int64($0 * 1e9)) }
        self.registry = registry
        self.factory = factory
        tokenHash = token.map(SecretHash.hex)
    }

    func request(route: String, method: String, status: Int, nanoseconds: UInt64) {
        Counter(label: "fieldsync_http_requests_total", dimensions: [("route", route), ("method", method), ("status", String(status))], factory: factory)
            .increment()
        Timer(label: "fieldsync_http_request_duration_seconds", dimensions: [("route", route)], factory: factory)
            .recordNanoseconds(Int64(clamping: nanoseconds))
    }

    func sync(_ kind: String, nanoseconds: UInt64) {
        Timer(label: "fieldsync_sync_duration_seconds", dimensions: [("kind", kind)], factory: factory).recordNanoseconds(Int64(clamping: nanoseconds))
    }

    func pushed(_ results: [PushResult]) {
        var counts: [String: Int] = [:]
        for r in results { counts["\(r.status.rawValue)\u{0}\(r.code ?? "")", default: 0] += 1 }
        for (key, n) in counts {
            let parts = key.split(separator: "\u{0}", omittingEmptySubsequences: false)
            Counter(label: "fieldsync_push_changes_total", dimensions: [("result", String(parts[0])), ("code", String(parts[1]))], factory: factory)
                .increment(by: Int64(n))
        }
    }

    func storeError() { Counter(label: "fieldsync_store_errors_total", factory: factory).increment() }

    func connections(_ open: Int) { Gauge(label: "fieldsync_connections_open", factory: factory).record(open) }

    /// Whether `authorization` carries the metrics token.
    func allows(_ authorization: String?) -> Bool {
        guard let tokenHash, let a = authorization else { return false }
        let parts = a.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer", parts[1].utf8.count <= 200 else { return false }
        return Hex.equalInConstantTime(SecretHash.hex(String(parts[1])), tokenHash)
    }

    /// The text Prometheus reads, with the store's figures taken now.
    func scrape(_ store: any HubStore) async -> [UInt8] {
        if let v = try? await store.vitals() {
            Gauge(label: "fieldsync_conflicts_open", factory: factory).record(v.openConflicts)
            Gauge(label: "fieldsync_change_log_position", factory: factory).record(v.changeLogPosition)
            for (status, n) in v.devices { Gauge(label: "fieldsync_devices", dimensions: [("status", status)], factory: factory).record(n) }
            Gauge(label: "fieldsync_store_retries_total", factory: factory).record(v.retries)
        } else {
            storeError()
        }
        return registry.emitToBuffer()
    }
}

/// What a store tells the metrics at each scrape.
public struct HubVitals: Sendable {
    public var openConflicts: Int
    public var changeLogPosition: Int64
    /// Devices by status (enrolled, awaiting enrolment, revoked).
    public var devices: [String: Int]
    /// Transactions run again after a deadlock or a serialization failure (PostgreSQL; 0 for SQLite).
    public var retries: Int

    public init(openConflicts: Int, changeLogPosition: Int64, devices: [String: Int], retries: Int) {
        (self.openConflicts, self.changeLogPosition, self.devices, self.retries) = (openConflicts, changeLogPosition, devices, retries)
    }
}

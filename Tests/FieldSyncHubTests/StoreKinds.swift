import FieldSyncCore
import FieldSyncTrust
@testable import FieldSyncHub
import FieldSyncPostgres
@_spi(Hub) import FieldSyncReplica
import Foundation
import Logging
import Hummingbird
import Testing

/// The hub's stores the store-independent suites run against: SQLite always; PostgreSQL when
/// `FIELDSYNC_TEST_PG` names a server (`.ci/run` starts one with scripts/pg-tmp, and sets
/// `FIELDSYNC_REQUIRE_PG` so that a missing server fails the run instead of skipping).
enum StoreKind: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case sqlite, postgres

    var testDescription: String { rawValue }

    static var serverURL: String? {
        ProcessInfo.processInfo.environment["FIELDSYNC_TEST_PG"].flatMap { $0.isEmpty ? nil : $0 }
    }

    static var available: [StoreKind] {
        if serverURL != nil || ProcessInfo.processInfo.environment["FIELDSYNC_REQUIRE_PG"] == "1" { return [.sqlite, .postgres] }
        return [.sqlite]
    }

    /// A fresh, empty PostgreSQL database on the test server.
    static func freshDatabase(_ tag: String = #function) async throws -> PostgresURL {
        guard let server = serverURL else {
            throw TestFailure("FIELDSYNC_REQUIRE_PG is set but FIELDSYNC_TEST_PG is not: start a server with scripts/pg-tmp")
        }
        let safe = tag.lowercased().filter { $0.isASCII && ($0.isLetter || $0.isNumber) }.prefix(30)
        let name = "t_\(safe)_\(UInt32.random(in: 0...UInt32.max))"
        return try await PostgresHubStore.createDatabase(name, on: try PostgresURL(server))
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// A hub store of either kind with the in-process application around it.
struct StoreFixture: @unchecked Sendable {
    let kind: StoreKind
    let dir: TempDir
    let store: any HubStore
    let pgURL: PostgresURL?

    init(_ kind: StoreKind, _ name: String = #function, clock: ManualClock? = nil) async throws {
        self.kind = kind
        dir = TempDir(name)
        let time: @Sendable () -> Int64
        if let clock { time = { clock.ms } } else { time = SQLiteHubStore.now }
        switch kind {
        case .sqlite:
            store = try SQLiteHubStore(path: dir.file("hub.sqlite"), name: "测试中心", clock: time)
            pgURL = nil
        case .postgres:
            let url = try await StoreKind.freshDatabase(name)
            store = try await PostgresHubStore(url: url, name: "测试中心", clock: time)
            pgURL = url
        }
    }

    /// Another process's view of the same store (PostgreSQL: a second connection pool).
    func secondProcess() async throws -> any HubStore {
        switch kind {
        case .sqlite: return store
        case .postgres: return try await PostgresHubStore(url: pgURL!, name: "测试中心")
        }
    }

    var app: some ApplicationProtocol { Application(router: HubHTTP.router(store: store, logger: quietLogger()), logger: quietLogger()) }

    /// Adds and enrols a device whose site is `key`'s, returning it and its token.
    func device(_ name: String, scope: String, key: SiteKey = SiteKey()) async throws -> (Device, String) {
        let d = try await store.addDevice(name: name, scope: scope, codeLifetimeMs: 3_600_000)
        let resp = try await store.enroll(enrolment(code: d.code, key: key, name: name))
        return (Device(id: resp.device, name: name, scope: scope), resp.token)
    }
}

/// A logger for apps under test: warnings and worse only (the request log would drown the test output).
func quietLogger() -> Logger {
    var l = Logger(label: "fieldsync-hub-test")
    l.logLevel = .warning
    return l
}

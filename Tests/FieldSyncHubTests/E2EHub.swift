import FieldSyncCore
@testable import FieldSyncHub
import FieldSyncPostgres
@_spi(Hub) import FieldSyncReplica
import Foundation
import GRDB
import Testing

/// The store that an end-to-end test's `fieldsync-hub serve` processes use, of either kind: the
/// `--store` argument they take, and what the test reads out of the store afterwards (records,
/// a site's changes), as the hub's own tools would. SQLite: the file, read directly.
/// PostgreSQL: a fresh database, read through a `PostgresHubStore` of the test's own, opened
/// once the first hub process has made the hub (it creates nothing itself).
final class E2EHub: @unchecked Sendable {
    let kind: StoreKind
    /// A SQLite file path or a postgres:// URL: `HubProcess(db:)`, `fieldsync-hub … --store`.
    let location: String
    private let dir: TempDir
    private let url: PostgresURL?
    /// PostgreSQL: the database as the test inspects it (its own connection pool).
    private var inspector: StoreFixture?

    init(_ kind: StoreKind, _ dir: TempDir, _ tag: String = #function) async throws {
        self.kind = kind
        self.dir = dir
        switch kind {
        case .sqlite:
            location = dir.file("hub.sqlite")
            url = nil
        case .postgres:
            let url = try await StoreKind.freshDatabase(tag)
            location = url.description
            self.url = url
        }
    }

    deinit { (inspector?.store as? PostgresHubStore)?.shutdown() }

    /// The PostgreSQL store, as the test inspects it.
    private func pg() async throws -> StoreFixture {
        if let inspector { return inspector }
        let f = try await StoreFixture(inspecting: url!, dir: dir)
        inspector = f
        return f
    }

    /// A hub process serving this store.
    func start(log: String, extra: [String] = []) throws -> HubProcess {
        try HubProcess(db: location, log: log, extra: extra)
    }

    /// The hub's records of `village` (dispute, visit, project; deleted ones too), each kind
    /// sorted by id, as the laptops list them.
    func records(_ village: String) async throws -> [JSONValue] {
        let kinds = [RecordKind.dispute, .visit, .project]
        switch kind {
        case .sqlite:
            let r = try Replica.open(path: location)
            return try kinds.map { .array(Self.byID(try r.records($0, villagePrefix: village, includeDeleted: true).map(\.json))) }
        case .postgres:
            var out: [JSONValue] = []
            for k in kinds {
                var q = RecordQuery(kind: k, villagePrefix: village)
                q.includeDeleted = true
                q.limit = 1000
                var all: [JSONValue] = []
                while true {
                    let page = try await pg().store.records(for: StoreFixture.everyone, q)
                    all += page.records.map(\.json)
                    if page.records.isEmpty || all.count >= page.total { break }
                    q.offset += page.records.count
                }
                out.append(.array(Self.byID(all)))
            }
            return out
        }
    }

    /// How many changes made under `site` (a site id in hex) the hub holds.
    func changes(of site: String) async throws -> Int {
        guard let id = SiteID(hex: site) else { return 0 }
        return try await int("SELECT count(*) FROM \(changeTable) WHERE site = ?", Int64(bitPattern: id.raw)) ?? 0
    }

    /// How many changes the hub holds more than once (the same site and counter).
    func changesTwice() async throws -> Int? {
        try await int("SELECT count(*) - count(DISTINCT site || ':' || counter) FROM \(changeTable)")
    }

    /// SQLite's `PRAGMA integrity_check` of the hub file; nil for PostgreSQL (which keeps its own).
    func integrity() throws -> String? {
        guard kind == .sqlite else { return nil }
        return try DatabaseQueue(path: location).read { try String.fetchOne($0, sql: "PRAGMA integrity_check") }
    }

    /// The change log's table.
    private var changeTable: String { kind == .sqlite ? "fs_change" : "hub_change" }

    private func int(_ sql: String, _ args: Int64...) async throws -> Int? {
        switch kind {
        case .sqlite:
            return try await DatabaseQueue(path: location).read { try Int.fetchOne($0, sql: sql, arguments: StatementArguments(args)) }
        case .postgres:
            return try await pg().int(sql, args.map { .int($0) }).map(Int.init)
        }
    }

    static func byID(_ items: [JSONValue]) -> [JSONValue] {
        items.sorted { ($0["id"]?.stringValue ?? "") < ($1["id"]?.stringValue ?? "") }
    }
}

extension StoreFixture {
    /// A PostgreSQL store that hub processes serve, opened by the test to look inside (it
    /// creates nothing).
    init(inspecting url: PostgresURL, dir: TempDir) async throws {
        kind = .postgres
        self.dir = dir
        store = try await PostgresHubStore(url: url, create: false)
        pgURL = url
    }
}

import FieldSyncCore
@testable import FieldSyncHub
@testable import FieldSyncPostgres
@_spi(Hub) import FieldSyncReplica
import Foundation
import GRDB
import PostgresNIO
import Testing

/// What a test reads or sets inside a store where the HubStore protocol has no word for it (a
/// token's stored hash, the sign-in table, the change log's head), for either kind of store.
/// Statements are written once in SQL both speak, with `?` placeholders.
enum SQLCell: Equatable, Sendable, CustomStringConvertible {
    case null, int(Int64), text(String), bytes([UInt8])

    var description: String {
        switch self {
        case .null: "NULL"
        case .int(let i): String(i)
        case .text(let s): s
        case .bytes(let b): b.map { String(format: "%02X", $0) }.joined()
        }
    }

    var int: Int64? { if case .int(let i) = self { i } else { nil } }
    var text: String? { if case .text(let s) = self { s } else { nil } }
}

extension StoreFixture {
    var sqlite: SQLiteHubStore? { store as? SQLiteHubStore }
    var postgres: PostgresHubStore? { store as? PostgresHubStore }

    /// A supervisor of the whole hub, to read every record through the protocol.
    static let everyone = Supervisor(name: "测试", scope: "")

    /// Rows of `sql` (`?` placeholders), each a list of cells.
    func rows(_ sql: String, _ args: [SQLCell] = []) async throws -> [[SQLCell]] {
        switch kind {
        case .sqlite:
            let s = sqlite!
            return try s.sync { r in
                try r.database.read { db in
                    try Row.fetchAll(db, sql: sql, arguments: StatementArguments(args.map(Self.databaseValue))).map { row in
                        row.databaseValues.map { v -> SQLCell in
                            switch v.storage {
                            case .null: .null
                            case .int64(let i): .int(i)
                            case .double(let d): .text(String(d))
                            case .string(let t): .text(t)
                            case .blob(let b): .bytes(Array(b))
                            }
                        }
                    }
                }
            }
        case .postgres:
            let numbered = Self.numbered(sql)
            let binds = args.map(Self.pgValue)
            return try await postgres!.read { pg in
                try await pg.rows(numbered, binds).map { r in
                    try (0..<r.count).map { i -> SQLCell in
                        let cell = r[i]
                        guard cell.bytes != nil else { return .null }
                        switch cell.dataType {
                        case .int8, .int4, .int2: return .int(try cell.decode(Int64.self))
                        case .bytea:
                            var b = try cell.decode(ByteBuffer.self)
                            return .bytes(b.readBytes(length: b.readableBytes) ?? [])
                        default: return .text(try cell.decode(String.self))
                        }
                    }
                }
            }
        }
    }

    /// The first column of each row, as text.
    func strings(_ sql: String, _ args: [SQLCell] = []) async throws -> [String] {
        try await rows(sql, args).map { $0.first?.description ?? "" }
    }

    func int(_ sql: String, _ args: [SQLCell] = []) async throws -> Int64? {
        try await rows(sql, args).first?.first?.int
    }

    /// Runs a statement that changes the store, as a test's setup.
    func execute(_ sql: String, _ args: [SQLCell] = []) async throws {
        switch kind {
        case .sqlite:
            try sqlite!.sync { r in
                try r.database.write { try $0.execute(sql: sql, arguments: StatementArguments(args.map(Self.databaseValue))) }
            }
        case .postgres:
            let numbered = Self.numbered(sql)
            let binds = args.map(Self.pgValue)
            try await postgres!.transaction { pg in try await pg.exec(numbered, binds) }
        }
    }

    /// The store's records, change log, conflicts and the hub's clock — what a refused or repeated
    /// request must leave as it was — and not the devices' last-seen times and error notes.
    /// SQLite: ``fingerprint(_:)`` of the file. PostgreSQL: every other table's rows, in order.
    func fingerprint() async throws -> [String] {
        switch kind {
        case .sqlite: return try FieldSyncTestSupport.fingerprint(sqlite!.path)
        case .postgres:
            var out: [String] = []
            let tables = try await strings("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")
            for t in tables where t != "hub_device" {
                out += try await strings("SELECT '\(t) ' || x::text FROM \(t) x ORDER BY 1")
            }
            return out
        }
    }

    /// Every record of `kind` in the hub, through the protocol (a supervisor of the whole hub).
    func allRecords(_ kind: RecordKind, includeDeleted: Bool = false) async throws -> [FieldSyncReplica.Record] {
        var q = RecordQuery(kind: kind)
        q.includeDeleted = includeDeleted
        q.limit = 1000
        var out: [FieldSyncReplica.Record] = []
        while true {
            let page = try await store.records(for: Self.everyone, q)
            out += page.records
            if page.records.isEmpty || out.count >= page.total { return out }
            q.offset += page.records.count
        }
    }

    /// The canonical texts of the changes made under `site`, in counter order.
    func changeTexts(under site: SiteID) async throws -> [String] {
        let table = kind == .sqlite ? "fs_change" : "hub_change"
        return try await strings("SELECT body FROM \(table) WHERE site = ? ORDER BY counter", [.int(Int64(bitPattern: site.raw))])
    }

    /// The change log's last position.
    func changeLogEnd() async throws -> Int64 {
        switch kind {
        case .sqlite: return try sqlite!.sync { try $0.changeLogEnd() }
        case .postgres: return try await int("SELECT seq FROM hub_log_head WHERE id = 1") ?? -1
        }
    }

    /// The hub site's own clock (a packed HLC), which its settlements are stamped from.
    func hubClock() async throws -> Int64 {
        try await int(kind == .sqlite ? "SELECT hlc FROM fs_clock" : "SELECT hlc FROM hub_clock WHERE id = 1") ?? 0
    }

    /// Moves the history horizon: pulls from before it are told to take a snapshot.
    func setHorizon(_ seq: Int64) async throws {
        switch kind {
        case .sqlite: try await execute("UPDATE fs_meta SET value = ? WHERE key = 'hub_horizon'", [.int(seq)])
        case .postgres: try await execute("UPDATE hub_meta SET value = ? WHERE key = 'horizon'", [.text(String(seq))])
        }
    }

    /// The bundles kept in the devices' inboxes, by "DEVICE/NAME" (SQLite: files beside the hub
    /// file; PostgreSQL: `hub_bundle`).
    func inbox() async throws -> [String: [UInt8]] {
        switch kind {
        case .sqlite:
            let root = sqlite!.bundleFolder
            var out: [String: [UInt8]] = [:]
            for device in (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? [] {
                for name in (try? FileManager.default.contentsOfDirectory(atPath: root + "/" + device)) ?? [] {
                    out[device + "/" + name] = FileManager.default.contents(atPath: root + "/\(device)/\(name)").map(Array.init) ?? []
                }
            }
            return out
        case .postgres:
            var out: [String: [UInt8]] = [:]
            for r in try await rows("SELECT device, name, bytes FROM hub_bundle") {
                if case .bytes(let b) = r[2] { out["\(r[0])/\(r[1])"] = b } else { out["\(r[0])/\(r[1])"] = [] }
            }
            return out
        }
    }

    /// The same store opened afresh, as after the hub restarts.
    func reopened() async throws -> any HubStore {
        switch kind {
        case .sqlite: return try SQLiteHubStore(path: sqlite!.path)
        case .postgres: return try await PostgresHubStore(url: pgURL!, name: "测试中心")
        }
    }

    private static func databaseValue(_ c: SQLCell) -> DatabaseValue {
        switch c {
        case .null: .null
        case .int(let i): i.databaseValue
        case .text(let s): s.databaseValue
        case .bytes(let b): Data(b).databaseValue
        }
    }

    private static func pgValue(_ c: SQLCell) -> PGValue {
        switch c {
        case .null: .null
        case .int(let i): .int(i)
        case .text(let s): .text(s)
        case .bytes(let b): .bytes(b)
        }
    }

    /// `?` placeholders as PostgreSQL's `$1, $2, …` (the tests' statements hold no `?` in text).
    private static func numbered(_ sql: String) -> String {
        var n = 0
        return sql.reduce(into: "") { out, ch in
            if ch == "?" {
                n += 1
                out += "$\(n)"
            } else {
                out.append(ch)
            }
        }
    }
}

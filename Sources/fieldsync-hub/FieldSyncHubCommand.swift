import ArgumentParser
import FieldSyncCore
import FieldSyncHub
import FieldSyncPostgres
import FieldSyncCommandLine
import FieldSyncPresentation
import FieldSyncReplica
import Foundation
import Logging

// MARK: - fieldsync-hub

@main
struct FieldSyncHubCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fieldsync-hub",
        abstract: "The FieldSync hub: laptops push and pull changes here; supervisors see their region (同步中心).",
        discussion: """
            Everything is kept in one SQLite file (--db), or in PostgreSQL (--store postgres://…) for a county or a province served by \
            several hub processes (docs/deploy.md). Exit codes: 0 ok · 1 not found or refused · 64 usage · 65 bad input · 74 storage error · 78 no hub store at the path given (fieldsync-hub init makes one).
            """,
        subcommands: [HubInit.self, Serve.self, DeviceCommand.self, SupervisorCommand.self, HubConflictsCommand.self, ReportCommand.self, MigrateCommand.self, HubBackup.self, HubRestored.self, HubSchemaCommand.self])

    static func main() async {
        // Kinds named in the arguments are read with the schema the hub's store holds.
        let args = Array(CommandLine.arguments.dropFirst())
        func option(_ name: String) -> String? {
            args.indices.last { args[$0] == name && $0 + 1 < args.count }.map { args[$0 + 1] }
        }
        let l = HubOptions.location(store: option("--store"), db: option("--db") ?? HubOptions.defaultDB)
        if args.first == "migrate" {
            // Its stores are --from and --to: the SQLite file's schema is taken when it is opened.
        } else if !HubOptions.isPostgres(l) {
            Replica.adoptStoredSchema(path: l)
        } else if let url = try? PostgresURL(l) {
            await PostgresHubStore.adoptStoredSchema(url: url)
        }
        do {
            var command = try parseAsRoot()
            if var c = command as? AsyncParsableCommand { try await c.run() } else { try command.run() }
        } catch let m as StoreMissing {
            // 78 (EX_CONFIG): retrying cannot help; systemd units stop on it.
            FileHandle.standardError.write(Data("fieldsync-hub: error: \(m.message)\n".utf8))
            Foundation.exit(78)
        } catch let f as HubFailure {
            FileHandle.standardError.write(Data("fieldsync-hub: error: \(f.message)\n".utf8))
            Foundation.exit(f.status == 404 ? 1 : f.status == 422 ? 65 : f.status == 400 ? 64 : 1)
        } catch let e as ReplicaError {
            FileHandle.standardError.write(Data("fieldsync-hub: error: \(e)\n".utf8))
            Foundation.exit({ if case .storage = e { return 74 } else if case .invalidInput = e { return 65 } else { return 1 } }())
        } catch {
            exit(withError: error)
        }
    }
}

/// No hub store at the path given (exit 78).
struct StoreMissing: Error { let message: String }

struct HubOptions: ParsableArguments {
    @Option(help: ArgumentHelp("The hub's SQLite file (created if missing).", valueName: "path")) var db: String = HubOptions.defaultDB
    static let defaultDB = "hub.sqlite"
    @Option(help: ArgumentHelp(
        "The hub's store: postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE (or …?host=/socket/folder) for PostgreSQL, shared by several hub processes; or a SQLite file path. Default: $FIELDSYNC_HUB_STORE, else --db.",
        valueName: "url"))
    var store: String?
    @Option(help: "The hub's name, shown to laptops and in history (used when the store is created).") var hubName: String = "同步中心"

    /// What --store, $FIELDSYNC_HUB_STORE or --db say, in that order.
    var location: String { Self.location(store: store, db: db) }

    static func location(store: String?, db: String) -> String {
        if let store, !store.isEmpty { return store }
        if let env = ProcessInfo.processInfo.environment["FIELDSYNC_HUB_STORE"], !env.isEmpty { return env }
        return db
    }

    var isPostgres: Bool { Self.isPostgres(location) }

    static func isPostgres(_ location: String) -> Bool { location.hasPrefix("postgres://") || location.hasPrefix("postgresql://") }

    /// Opens the store (creating an empty one if there is none).
    func open(create: Bool = true) async throws -> any HubStore {
        if isPostgres {
            let url: PostgresURL
            do { url = try PostgresURL(location) } catch let e as PostgresURL.Invalid { throw ValidationError("--store: \(e.description)") }
            return try await PostgresHubStore(url: url, name: hubName, create: create)
        }
        return try SQLiteHubStore(path: location, name: hubName)
    }

    /// Opens a store that must exist already: a mistyped path never makes a new, empty hub
    /// (`fieldsync-hub init` or `serve --create` makes one).
    func openExisting() async throws -> any HubStore {
        if !isPostgres, !FileManager.default.fileExists(atPath: location) {
            throw StoreMissing(message: "\(location): 这里没有同步中心文件；新建请运行 fieldsync-hub init --db \(location) (no hub file here: give --db PATH of the file `fieldsync-hub serve` uses, or --store postgres://…; to make a new hub run `fieldsync-hub init` or `serve --create`)")
        }
        return try await open(create: false)
    }
}

// MARK: - serve

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Serve the sync API (启动服务).")
    @OptionGroup var hub: HubOptions
    @Option(help: "Address to listen on.") var host: String = "127.0.0.1"
    @Option(help: "Port to listen on (0 picks a free one; the chosen port is printed).") var port: Int = 8780
    @Option(help: "PEM certificate chain file, to serve HTTPS (with --tls-key).") var tlsCert: String?
    @Option(help: "PEM private key file, to serve HTTPS (with --tls-cert).") var tlsKey: String?
    @Option(help: "trace, debug, info, notice, warning, error or critical.") var logLevel: String = "info"
    @Option(help: "Seconds a client has to send a whole request head (also the idle timeout of a kept-alive connection).")
    var headTimeout: Int = 10
    @Option(help: "Seconds a request body may pause before the connection is closed.") var bodyTimeout: Int = 30
    @Option(help: "Seconds after which a request body must average at least --min-body-rate bytes a second.") var bodyGrace: Int = 30
    @Option(help: "Bytes a second a request body must average after --body-grace (a 64 kbit/s link sends 8000).") var minBodyRate: Int = 512
    @Option(help: "Connections one client address may hold at once.") var maxConnectionsPerAddress: Int = 64
    @Option(help: ArgumentHelp("A file whose first line is the token Prometheus sends (Authorization: Bearer) to read /metrics; also $FIELDSYNC_METRICS_TOKEN. Without one, /metrics is off.", valueName: "path"))
    var metricsTokenFile: String?
    @Option(help: "Refuse pulls (426, with a Chinese message saying what to upgrade) from laptops below this FieldSync release; their pushes are still taken. Also $FIELDSYNC_MIN_CLIENT_RELEASE. Give every hub process the same.")
    var minClientRelease: Int?
    @Flag(help: "Make a new hub file when --db names none (otherwise a missing file is an error, so a mistyped path never starts an empty hub).")
    var create = false

    /// The metrics token, from --metrics-token-file or the environment (at least 16 characters).
    func metricsToken() throws -> String? {
        var token: String?
        if let f = metricsTokenFile {
            guard let text = try? String(contentsOfFile: f, encoding: .utf8) else { throw ValidationError("--metrics-token-file \(f): cannot read it") }
            token = text.split(whereSeparator: \.isNewline).first.map { String($0).trimmingCharacters(in: .whitespaces) }
        } else if let env = ProcessInfo.processInfo.environment["FIELDSYNC_METRICS_TOKEN"], !env.isEmpty {
            token = env
        }
        if let t = token, t.utf8.count < 16 || t.utf8.count > 200 {
            throw ValidationError("the metrics token is 16–200 characters (e.g. openssl rand -hex 24 > metrics.token)")
        }
        return token
    }

    func run() async throws {
        guard (tlsCert == nil) == (tlsKey == nil) else { throw ValidationError("--tls-cert and --tls-key go together") }
        guard (1...3600).contains(headTimeout), (1...3600).contains(bodyTimeout), (1...3600).contains(bodyGrace),
              (0...1_000_000).contains(minBodyRate), (1...100_000).contains(maxConnectionsPerAddress) else {
            throw ValidationError("--head-timeout, --body-timeout and --body-grace are 1…3600 seconds, --min-body-rate 0…1000000, --max-connections-per-address 1…100000")
        }
        let token = try metricsToken()
        let minimumRelease = minClientRelease ?? ProcessInfo.processInfo.environment["FIELDSYNC_MIN_CLIENT_RELEASE"].flatMap { Int($0) }
        if let m = minimumRelease, !(1...1_000_000).contains(m) { throw ValidationError("--min-client-release is a release number, 1 or more") }
        let store = try await (create ? hub.open() : hub.openExisting())
        var logger = Logger(label: "fieldsync-hub")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info
        let scheme = tlsCert == nil ? "http" : "https"
        let app = try HubHTTP.application(
            store: store,
            configuration: HubServerConfiguration(host: host, port: port, tlsCertificate: tlsCert, tlsKey: tlsKey,
                                                  limits: ConnectionLimits(headTimeout: .seconds(Int64(headTimeout)), bodyIdleTimeout: .seconds(Int64(bodyTimeout)),
                                                                           minBodyBytesPerSecond: minBodyRate, bodyGrace: .seconds(Int64(bodyGrace)),
                                                                           maxConnectionsPerAddress: maxConnectionsPerAddress),
                                                  minClientRelease: minimumRelease),
            logger: logger, metrics: HubMetrics(token: token)
        ) { [host, store] bound in
            // Written straight to the file descriptor: scripts and tests wait for this line.
            FileHandle.standardOutput.write(Data("FieldSync hub \(store.hubName) (\(store.hubSite.hex)) listening on \(scheme)://\(host):\(bound) — store \(store.location)\n".utf8))
        }
        try await app.runService()
        // Stopped (SIGTERM/SIGINT): a SQLite store leaves one self-contained file behind.
        await store.close()
    }
}

// MARK: - device

struct DeviceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "device", abstract: "Enrol, list and revoke laptops (设备).", subcommands: [Add.self, List.self, Revoke.self, Recover.self])

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a device and print its one-time enrolment code (添加设备).",
            discussion: "Example: fieldsync-hub device add --name 牛角村-王芳 --scope 520221105201. The laptop then runs: fieldsync enroll --hub URL --code CODE")
        @OptionGroup var hub: HubOptions
        @Option(help: "A name for the device (the laptop, or who carries it).") var name: String
        @Option(help: "The division-code prefix it may read and write (village 12, township 9, county 6 digits).") var scope: String
        @Option(help: "Hours the enrolment code stays valid.") var expiresHours: Int = 168
        @Flag(help: "Print as JSON.") var json = false

        func run() async throws {
            guard (1...24 * 366).contains(expiresHours) else { throw ValidationError("--expires-hours is 1…8784 (a year)") }
            let store = try await hub.openExisting()
            let d = try await store.addDevice(name: name, scope: scope, codeLifetimeMs: Int64(expiresHours) * 3_600_000)
            if json {
                print(JSONValue(dictionaryLiteral: ("device", .string(d.id)), ("name", .string(d.name)), ("scope", .string(d.scope)),
                                ("code", .string(d.code)), ("expires", .string(UTCTime.iso(d.expires)))).prettyText)
            } else {
                print("已添加设备 added device \(d.id) \(d.name)，范围 scope \(d.scope) (\(RegionCode.levelLabel(d.scope)))")
                print("注册码 enrolment code: \(d.code)   (一次有效，\(Display.time(d.expires)) 前使用 / one use, valid until then)")
                print("在笔记本上 on the laptop: fieldsync enroll --hub URL --code \(d.code)")
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List devices with their scope, sync health and last error (设备列表).")
        @OptionGroup var hub: HubOptions
        @Flag(help: "Print as JSON.") var json = false

        func run() async throws {
            let list = try await hub.openExisting().devices()
            if json {
                print(JSONValue.array(list.map(SQLiteHubStoreAdmin.json)).prettyText)
                return
            }
            func t(_ ms: Int64?) -> String { ms.map { Display.time($0) } ?? "—" }
            print("设备 devices (时间为 \(Display.zoneLabel))")
            for d in list {
                print("\(d.id)  \(d.name)  范围 \(d.scope)  状态 \(statusLabel(d))")
                print("    最近同步 last sync: \(t(d.lastSync))   最近联系 last seen: \(t(d.lastSeen))   待下发 pending: \(d.pending)   已上传 pushed: \(d.pushed)")
                if let c = d.client {
                    print("    程序 release \(c.release)  数据格式 schema \(c.schema)  设备上未上传 unsent on the laptop: \(c.pending)" + (c.oldestUnsent.map { "（最早 oldest \(t($0))）" } ?? ""))
                } else if d.enrolled != nil {
                    print("    程序 release: 早于第 3 版 before release 3 (it does not report itself)")
                }
                if let skew = d.clockSkew, abs(skew) > 60_000 { print("    ⚠ 时钟偏差 clock off by \(skew / 1000) s") }
                if let e = d.lastError { print("    最近错误 last error (\(t(d.lastErrorAt))): \(e)") }
            }
            print("共 \(list.count) 台设备")
        }

        func statusLabel(_ d: DeviceInfo) -> String {
            switch d.status {
            case "revoked": return "已吊销 revoked"
            case "awaiting enrolment": return "待注册 awaiting enrolment" + ((d.codeExpires ?? 0) < Int64(Date().timeIntervalSince1970 * 1000) ? " (注册码已过期 code expired)" : "")
            default: return "已注册 enrolled (\(d.siteName ?? "") \(d.site ?? ""))"
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a device: its token stops working at once (吊销设备).")
        @OptionGroup var hub: HubOptions
        @Argument(help: "The device id (dev-…).") var device: String

        func run() async throws {
            let d = try await hub.openExisting().revoke(device: device)
            print("已吊销 revoked \(d.id) \(d.name)")
        }
    }

    struct Recover: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Take a revoked laptop's work from its bundle (收回已吊销设备的数据).",
            discussion: """
                A lost laptop was revoked, then found: its token stays refused, and changes made under its sites are \
                refused when others relay them. Its owner writes its unsent work to a bundle (`fieldsync backup`); \
                an administrator who has checked the laptop takes that bundle here, as a push from that device: \
                each change is judged on its own (scope, validity), other laptops' changes in it must be proved by \
                their signatures. The device stays revoked. docs/operations.md §3.
                """)
        @OptionGroup var hub: HubOptions
        @Argument(help: "The revoked device's id (dev-…).") var device: String
        @Argument(help: "The bundle file (fieldsync backup or bundle export).") var file: String
        @Flag(help: "Print the result as JSON.") var json = false

        func run() async throws {
            let store = try await hub.openExisting()
            guard let d = try await store.devices().first(where: { $0.id == device }) else {
                throw HubFailure(.notFound, "没有设备 no device \(device) on this hub (fieldsync-hub device list)")
            }
            guard d.revoked != nil else {
                throw ValidationError("设备 \(device) 没有被吊销：请它自己同步，或用 fieldsync bundle upload 上传 (not revoked: let it sync or upload the bundle itself)")
            }
            guard let data = FileManager.default.contents(atPath: file) else {
                throw ValidationError("读不到文件 cannot read \(file)")
            }
            let parsed = try BundleUpload.parse([UInt8](data))
            let results = try await BundleUpload.merge(parsed, into: store, from: Device(id: d.id, name: d.name, scope: d.scope)).results
            await store.close()
            let taken = results.filter { $0.status == .accepted }.count, had = results.filter { $0.status == .duplicate }.count
            let refused = results.filter { $0.status == .refused }
            if json {
                print(JSONValue.object(JSONObject([
                    ("device", .string(d.id)), ("changes", .int(Int64(results.count))), ("accepted", .int(Int64(taken))),
                    ("duplicate", .int(Int64(had))), ("refused", .array(refused.map(\.json))),
                ])).prettyText)
            } else {
                print("已收回 recovered \(d.name) (\(d.id)) 的数据：\(taken) 条新变更，\(had) 条中心已有，\(refused.count) 条拒收")
                for r in refused.prefix(10) { print("✘ 拒收 refused \(r.id): \(r.code ?? "") — \(r.reason ?? "")") }
            }
        }
    }
}

// MARK: - backup

struct HubBackup: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup", abstract: "A consistent copy of a running SQLite hub (备份同步中心).",
        discussion: """
            Takes the copy with SQLite's online backup API while `serve` keeps serving; DEST must not exist. \
            For a PostgreSQL store use pg_dump (docs/operations.md). Restoring: stop the hub, put the copy in place, start it: \
            the copy is marked as a backup, so the hub starts a new epoch and its laptops give back what it lost.
            """)
    @OptionGroup var hub: HubOptions
    @Argument(help: "The file to write (must not exist).") var destination: String

    func run() async throws {
        guard !hub.isPostgres else {
            throw ValidationError("PostgreSQL 存储请用 pg_dump 备份：pg_dump -Fc -f DEST 数据库 (back up a PostgreSQL store with pg_dump; docs/operations.md)")
        }
        let bytes = try SQLiteHubStore.backup(path: hub.location, to: destination)
        print("已备份 backed up \(hub.location) → \(destination) (\(bytes) bytes, integrity_check ok)")
    }
}

// MARK: - restored

struct HubRestored: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restored", abstract: "Mark a hub as restored from a backup (从备份恢复后标记).",
        discussion: """
            After putting back a backup by other means than `fieldsync-hub backup` (pg_restore, a disk snapshot, a copied file), \
            with every hub process stopped: the hub starts a new epoch (a new site id, the same key), and each laptop on its \
            next sync offers it everything it holds, so what the backup lacks comes back (docs/operations.md). \
            A copy made by `fieldsync-hub backup` needs nothing: it is marked already.
            """)
    @OptionGroup var hub: HubOptions

    func run() async throws {
        if hub.isPostgres {
            let url: PostgresURL
            do { url = try PostgresURL(hub.location) } catch let e as PostgresURL.Invalid { throw ValidationError("--store: \(e.description)") }
            try await PostgresHubStore.markRestored(url: url)
        } else {
            guard FileManager.default.fileExists(atPath: hub.location) else {
                throw StoreMissing(message: "\(hub.location): 这里没有同步中心文件 (no hub file here)")
            }
            try SQLiteHubStore.markRestored(path: hub.location)
        }
        let store = try await hub.openExisting()
        print("已标记为从备份恢复 marked restored: \(store.hubName) 新纪元 epoch \(store.epoch.id) (从第 \(store.epoch.start) 条起 log ends at \(store.epoch.start)), 新站点 site \(store.hubSite.hex)")
        await store.close()
    }
}

// MARK: - init

struct HubInit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init", abstract: "Make a new hub store (新建同步中心).",
        discussion: "fieldsync-hub init --db /var/lib/fieldsync/hub.sqlite --hub-name 落别乡同步中心. Refuses a file that exists already. With --store postgres://… it creates the tables in that (existing, empty) database.")
    @OptionGroup var hub: HubOptions

    func run() async throws {
        if !hub.isPostgres, FileManager.default.fileExists(atPath: hub.location) {
            throw ValidationError("\(hub.location) 已存在，不再新建 (already exists; serve it with fieldsync-hub serve --db \(hub.location))")
        }
        let store = try await hub.open(create: true)
        print("已新建同步中心 made hub \(store.hubName) (\(store.hubSite.hex)) — \(store.location)")
        await store.close()
    }
}

// MARK: - schema

struct HubSchemaCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "schema", abstract: "Show the hub's record schema, or load a newer version (数据结构).",
        discussion: """
            The schema is versioned data (docs/operations.md §11): `schema show --json > v2.json`, add fields or \
            choices at the end, raise "version", then `schema load v2.json`. Only additive changes are taken. A \
            running hub takes the new version within a second; laptops take it on their next sync.
            """,
        subcommands: [Show.self, Load.self], defaultSubcommand: Show.self)

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "show", abstract: "Print the schema the hub holds.")
        @OptionGroup var hub: HubOptions
        @Flag(help: "Print the schema document as JSON (what `schema load` reads).") var json = false

        func run() async throws {
            let store = try await hub.openExisting()
            defer { Task { await store.close() } }
            let s = Schema.current
            if json { Display.printJSON(s.document); return }
            print("数据结构 schema version \(s.version)")
            for k in s.kinds { print("  \(k.label) \(k.kind.rawValue): " + k.fields.map { "\($0.name) \($0.label)" }.joined(separator: ", ")) }
        }
    }

    struct Load: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "load", abstract: "Load a newer schema version from a file (载入新版数据结构).")
        @OptionGroup var hub: HubOptions
        @Argument(help: "The schema document (JSON).") var file: String

        func run() async throws {
            let schema = try readSchemaDocument(file)
            let store = try await hub.openExisting()
            let before = Schema.current.version
            let rep: SchemaLearnReport
            do { rep = try await store.learnSchema(schema) } catch ReplicaError.invalidInput(let e) { throw schemaRefusal(e) }
            await store.close()
            if rep.to == before {
                print("同步中心已是数据结构第 \(rep.to) 版 (the hub already holds schema version \(rep.to))")
            } else {
                print("已载入数据结构第 \(rep.to) 版 (schema version \(before) → \(rep.to)); 合并了 \(rep.merged) 条此前暂存的变更 (merged \(rep.merged) kept changes), 仍暂存 \(rep.stillPending) 条; 笔记本下次同步时自动取得 (laptops take it on their next sync)")
            }
        }
    }
}

import FieldSyncCore
import FieldSyncHub
import FieldSyncPostgres
import FieldSyncReplica
import FieldSyncTransport
import Foundation
import GRDB

/// Issue 10's load benchmark (`scripts/bench-load`, docs/benchmarks.md): N village laptops, C at
/// once, each pushing a day's work and pulling, through the real protocol — `fieldsync-hub serve`
/// processes on loopback, and the libcurl sync client (`SyncClient`, what `fieldsync sync` runs)
/// on one thread per laptop in flight. Each laptop is its own SQLite replica file with its own
/// site key, enrolled through `POST /v1/enroll` with a one-time code from `addDevice` (what
/// `fieldsync-hub device add` calls).
///
///   fieldsync-bench --load --pg postgres://… [--laptops 300,2000] [--concurrency 200]
///       [--setups sqlite,pg1,pg2] [--visits 15] [--history 15] [--preload-records N] [--hub-binary PATH]
///
/// For each setup and fleet size: a new store (a SQLite file, or a new PostgreSQL database), the
/// devices added, optionally `--preload-records` changes of other provinces written straight into
/// the change log, the hub process(es) started (`pg2`: two processes on one database, laptops
/// split between their ports); then, untimed, every laptop is created, enrolled, writes
/// `--history` visits and syncs twice (its first sync takes the snapshot; the second brings its
/// teammate's), and writes the day's `--visits` visits. Timed: all laptops sync once, C at a
/// time. Server figures are read from each hub's `/metrics` before and after the timed phase.
enum LoadBench {
    struct Options {
        var laptops = [300, 2000]
        var concurrency = 200
        var setups = ["sqlite", "pg1", "pg2"]
        var visits = 15
        var history = 15
        var preload = 0
        var hubBinary: String
        var pg: PostgresURL?
        var dir: String

        init(_ args: [String], dir: String) throws {
            func value(_ name: String) -> String? { args.firstIndex(of: name).flatMap { $0 + 1 < args.count ? args[$0 + 1] : nil } }
            func int(_ name: String, _ def: Int, _ range: ClosedRange<Int>) throws -> Int {
                guard let v = value(name) else { return def }
                guard let i = Int(v), range.contains(i) else { throw Problem("\(name) is a whole number in \(range), got \(v)") }
                return i
            }
            if let l = value("--laptops") {
                laptops = try l.split(separator: ",").map {
                    guard let n = Int($0), (1...100_000).contains(n) else { throw Problem("--laptops is a list of numbers 1…100000, got \(l)") }
                    return n
                }
            }
            concurrency = try int("--concurrency", concurrency, 1...2000)
            if let s = value("--setups") { setups = s.split(separator: ",").map(String.init) }
            for s in setups where !["sqlite", "pg1", "pg2"].contains(s) { throw Problem("--setups takes sqlite, pg1, pg2; got \(s)") }
            visits = try int("--visits", visits, 1...500)
            history = try int("--history", history, 0...500)
            preload = try int("--preload-records", preload, 0...100_000_000)
            hubBinary = value("--hub-binary")
                ?? URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("fieldsync-hub").path
            pg = try value("--pg").map { try PostgresURL($0) }
            if setups.contains(where: { $0.hasPrefix("pg") }) && pg == nil { throw Problem("the PostgreSQL setups need --pg postgres://… (scripts/bench-load starts one)") }
            self.dir = dir
        }
    }

    struct Problem: Error, CustomStringConvertible {
        let description: String
        init(_ d: String) { description = d }
    }

    /// What one run (a setup and a fleet size) measured.
    struct Result {
        var setup: String
        var laptops: Int
        var concurrency: Int
        var wall: Double
        var latencies: [Double]
        var errors: Int
        var firstError: String?
        var retries: Int
        var pushed: Int
        var pulled: Int
        var hubCPU: Double
        /// PostgreSQL backends serving this run's database (0 for SQLite).
        var pgCPU: Double
        /// The load driver: every laptop's client work (libcurl, JSON, its own SQLite replica).
        var driverCPU: Double
        /// Both cores' busy time over the phase, whoever used it (other work on the machine too).
        var machineBusy: Double
        var server: ServerFigures
        var syncsPerSecond: Double { Double(laptops) / wall }
        func quantile(_ q: Double) -> Double {
            let s = latencies.sorted()
            guard !s.isEmpty else { return .nan }
            return s[min(s.count - 1, max(0, Int((q * Double(s.count)).rounded(.up)) - 1))]
        }
    }

    // MARK: - Regions

    /// Laptop `i`'s village: two laptops (a team) per village, 15 villages per township, 20
    /// townships per county, 9 counties per prefecture (12-digit codes, domain.md).
    static func village(ofLaptop i: Int) -> String {
        let v = i / 2
        let county = v / 300, township = (v % 300) / 15, village = v % 15
        return "52" + twoDigits(1 + county / 9) + twoDigits(21 + county % 9) + String(100 + township) + String(200 + village)
    }

    static func twoDigits(_ n: Int) -> String { n < 10 ? "0\(n)" : String(n % 100) }

    static let notes = [
        "走访了解家庭收入、就业和医疗情况，宣传惠民政策，群众反映通组路雨天难行。",
        "入户核实低保申请材料，户主在外务工，家中老人身体尚可，孙子在镇上读初中。",
        "召开院坝会，讨论茶叶合作社分红方案，到会群众三十余人，意见基本一致。",
        "回访上月反映的饮水问题，水管已修复，群众表示满意，另提出希望增设路灯。",
    ]

    /// A day's visit log of laptop `i`: 11 fields set, in its own village.
    static func visit(laptop i: Int, n: Int, day: String) -> JSONObject {
        ["village": .string(village(ofLaptop: i)), "household_head": .string("户主\(i)-\(n)"), "cadre_name": .string("干部\(i)"),
         "visit_date": .string(day), "visit_kind": "入户走访", "topics": ["政策宣传", "就业"], "notes": .string(notes[(i + n) % notes.count]),
         "needs": "希望硬化通组路", "follow_up": "报乡镇交通办", "follow_up_due": "2026-12-20", "follow_up_done": false]
    }

    static func writeVisits(_ r: Replica, laptop i: Int, count: Int, day: String) throws {
        guard count > 0 else { return }
        _ = try r.insert(try (0..<count).map { try r.check(.visit, visit(laptop: i, n: $0, day: day), creating: true) })
    }

    // MARK: - Running

    static func run(_ o: Options) async throws {
        print("| store | laptops | at once | syncs/s | p50 | p99 | max | errors | retries | changes up / down | hub request p50 / p99 | hub push p50 / p99 | hub pull p50 / p99 | hub requests (non-2xx) | store errors / retries | CPU per sync: hub / PostgreSQL / laptops | cores busy (all processes) |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        var results: [Result] = []
        for setup in o.setups {
            for n in o.laptops {
                let r = try await runOne(setup: setup, laptops: n, o)
                results.append(r)
                print(row(r))
                fflush(nil)
            }
        }
        print("")
        if o.laptops.count >= 2, let small = o.laptops.min(), let large = o.laptops.max(), small != large {
            print("| ratio | value |")
            print("|---|---|")
            for setup in o.setups {
                guard let a = results.first(where: { $0.setup == setup && $0.laptops == small }),
                      let b = results.first(where: { $0.setup == setup && $0.laptops == large }) else { continue }
                print("| \(label(setup)): syncs/s at \(small) ÷ syncs/s at \(large) (target ≤ 1.3) | \(String(format: "%.2f×", a.syncsPerSecond / b.syncsPerSecond)) |")
                print("| \(label(setup)): hub CPU per sync at \(large) ÷ at \(small) | \(String(format: "%.2f×", (b.hubCPU / Double(b.laptops)) / (a.hubCPU / Double(a.laptops)))) |")
            }
        }
        for r in results where r.setup == "sqlite" {
            // The issue's figures before this work (SQLite hub): 2,000 laptops 49 syncs/s, p50 3.7 s,
            // p99 7.5 s; 300 laptops 169 syncs/s, p99 0.6 s.
            let before: (rate: Double, p99: Double)? = r.laptops == 2000 ? (49, 7.5) : r.laptops == 300 ? (169, 0.6) : nil
            if let before {
                print("| SQLite at \(r.laptops) against the issue's figures before (\(Int(before.rate)) syncs/s, p99 \(before.p99) s) | syncs/s \(String(format: "%.2f×", r.syncsPerSecond / before.rate)), p99 \(String(format: "%.2f×", r.quantile(0.99) / before.p99)) |")
            }
        }
    }

    static func label(_ setup: String) -> String {
        switch setup {
        case "sqlite": return "SQLite"
        case "pg1": return "PostgreSQL, 1 hub"
        default: return "PostgreSQL, 2 hubs"
        }
    }

    static func seconds(_ s: Double) -> String { s.isNaN ? "—" : s < 1 ? String(format: "%.0f ms", s * 1000) : String(format: "%.2f s", s) }

    static func row(_ r: Result) -> String {
        let s = r.server
        let cells: [String] = [
            label(r.setup), "\(r.laptops)", "\(r.concurrency)", String(format: "%.1f", r.syncsPerSecond),
            seconds(r.quantile(0.5)), seconds(r.quantile(0.99)), seconds(r.latencies.max() ?? .nan),
            "\(r.errors)" + (r.firstError.map { " (\($0.prefix(120)))" } ?? ""), "\(r.retries)", "\(r.pushed) / \(r.pulled)",
            "\(seconds(s.requestQuantile(0.5))) / \(seconds(s.requestQuantile(0.99)))",
            "\(seconds(s.quantile("push", 0.5))) / \(seconds(s.quantile("push", 0.99)))",
            "\(seconds(s.quantile("pull", 0.5))) / \(seconds(s.quantile("pull", 0.99)))",
            "\(Int(s.requests)) (\(Int(s.failedRequests)))", "\(Int(s.storeErrors)) / \(Int(s.storeRetries))",
            String(format: "%.1f / %.1f / %.1f ms", r.hubCPU / Double(r.laptops) * 1000, r.pgCPU / Double(r.laptops) * 1000, r.driverCPU / Double(r.laptops) * 1000),
            String(format: "%.2f of %d", r.machineBusy / r.wall, ProcessInfo.processInfo.activeProcessorCount),
        ]
        return "| " + cells.joined(separator: " | ") + " |"
    }

    static func log(_ s: String) {
        FileHandle.standardError.write(Data("[bench-load \(UTCTime.iso(Int64(Date().timeIntervalSince1970 * 1000)))] \(s)\n".utf8))
    }

    static func runOne(setup: String, laptops n: Int, _ o: Options) async throws -> Result {
        let dir = "\(o.dir)/load-\(setup)-\(n)"
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir + "/laptops", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }

        // The store, its devices (one-time codes), and the other provinces' history.
        var t = Date()
        let location: String
        var database: String?
        let codes = ResultSlots<String>(n)
        if setup == "sqlite" {
            location = dir + "/hub.sqlite"
            let store = try SQLiteHubStore(path: location, name: "负载基准")
            try await addDevices(store, n, codes, width: 1)
            await store.close()
            if o.preload > 0 { try await preloadSQLite(location, o.preload) }
        } else {
            let name = "bench_load_\(n)_\(UInt32.random(in: 0...UInt32.max))"
            database = name
            let url = try await PostgresHubStore.createDatabase(name, on: o.pg!)
            location = url.description
            let store = try await PostgresHubStore(url: url, name: "负载基准")
            try await addDevices(store, n, codes, width: 8)
            var done = 0
            while done < o.preload {
                let part = min(1_000_000, o.preload - done)
                try await store.benchmarkFill(rows: part, counterBase: done)
                done += part
            }
            await store.close()
        }
        log("\(setup) \(n): store and \(n) devices ready\(o.preload > 0 ? ", \(o.preload) preloaded changes" : "") in \(String(format: "%.1f", Date().timeIntervalSince(t))) s")

        // The hub process(es).
        let token = Hex.random(bytes: 24)
        let tokenFile = dir + "/metrics.token"
        try token.write(toFile: tokenFile, atomically: true, encoding: .utf8)
        var hubs: [HubServer] = []
        defer { for h in hubs { h.stop() } }
        let storeArg = try setup == "sqlite" ? location : pgLocation(o.pg!, database!)
        for k in 0..<(setup == "pg2" ? 2 : 1) {
            hubs.append(try await HubServer.start(binary: o.hubBinary, store: storeArg, tokenFile: tokenFile, output: "\(dir)/hub-\(k)", maxPerAddress: max(256, o.concurrency * 2)))
        }
        let urls = hubs.map(\.url)
        log("\(setup) \(n): hub(s) at \(urls.joined(separator: ", "))")

        // Untimed: the laptops are made, enrolled, hold an earlier day's work synced, and the day's work written.
        t = Date()
        var options = SyncOptions()
        options.transport.progress = false
        let setupErrors = ResultSlots<String>(n)
        let opts = options
        let (visits, history) = (o.visits, o.history)
        await parallel(n, width: o.concurrency) { i in
            do {
                let path = "\(dir)/laptops/\(i).sqlite"
                let r = try Replica.create(path: path, siteName: "笔记本\(i)", author: "干部\(i)")
                _ = try SyncClient.enroll(replica: r, hubURL: urls[i % urls.count], code: codes[i]!, caFile: nil, options: opts)
                try writeVisits(r, laptop: i, count: history, day: "2026-11-19")
            } catch { setupErrors[i] = "\(error)" }
        }
        log("\(setup) \(n): laptops created and enrolled in \(String(format: "%.1f", Date().timeIntervalSince(t))) s")
        // Opening a replica (its migrations checked, its schema read) is not part of a sync: the
        // replicas stay open from the last preparing round when the file limit allows it.
        let opened = ResultSlots<Replica>(n)
        let keepOpen = n * 3 + 1000 < openFileLimit()
        for round in 1...2 {
            t = Date()
            await parallel(n, width: o.concurrency) { i in
                guard setupErrors[i] == nil else { return }
                do {
                    let r = try Replica.open(path: "\(dir)/laptops/\(i).sqlite")
                    let rep = try SyncClient(replica: r, options: opts).sync()
                    if !rep.complete { setupErrors[i] = "preparing sync incomplete: \(rep.refused.first?.reason ?? rep.retryLater.first?.reason ?? "")" }
                    if round == 2 {
                        try writeVisits(r, laptop: i, count: visits, day: "2026-11-20")
                        if keepOpen { opened[i] = r }
                    }
                } catch { setupErrors[i] = "\(error)" }
            }
            log("\(setup) \(n): preparing sync round \(round) in \(String(format: "%.1f", Date().timeIntervalSince(t))) s")
        }
        let failed = (0..<n).compactMap { setupErrors[$0] }
        let preOpened = (0..<n).filter { opened[$0] != nil }.count
        if !failed.isEmpty { throw Problem("\(setup) \(n): \(failed.count) laptop(s) could not be prepared; the first: \(failed[0])") }

        // Timed: every laptop syncs once, C at a time.
        let before = try hubs.map { try $0.scrape(token) }
        let cpuBefore = hubs.map { $0.cpuSeconds() }
        let pgBefore = database.map { CPUTime.backends(of: $0) } ?? [:]
        let driverBefore = CPUTime.ownProcess()
        let machineBefore = CPUTime.machine()
        let latencies = ResultSlots<Double>(n)
        let reports = ResultSlots<SyncReport>(n)
        let errors = ResultSlots<String>(n)
        let start = DispatchTime.now().uptimeNanoseconds
        await parallel(n, width: o.concurrency) { i in
            let r: Replica
            if let o = opened[i] {
                r = o
                opened[i] = nil  // closed when this sync is done
            } else {
                do { r = try Replica.open(path: "\(dir)/laptops/\(i).sqlite") } catch { errors[i] = "open: \(error)"; return }
            }
            let client = SyncClient(replica: r, options: opts)
            let t0 = DispatchTime.now().uptimeNanoseconds
            do {
                let rep = try client.sync()
                latencies[i] = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
                reports[i] = rep
                if !rep.complete { errors[i] = "incomplete: \(rep.refused.first?.reason ?? rep.retryLater.first?.reason ?? "")" }
                else if rep.pushed != visits { errors[i] = "pushed \(rep.pushed) of \(visits) changes" }
            } catch {
                latencies[i] = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
                errors[i] = "\(error)"
            }
        }
        let wall = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        let cpu = zip(hubs.map { $0.cpuSeconds() }, cpuBefore).map { $0 - $1 }.reduce(0, +)
        let pgAfter = database.map { CPUTime.backends(of: $0) } ?? [:]
        let pgCPU = pgAfter.map { pid, t in t - (pgBefore[pid] ?? 0) }.reduce(0, +)
        let driverCPU = CPUTime.ownProcess() - driverBefore
        let machineBusy = CPUTime.machine() - machineBefore
        let after = try hubs.map { try $0.scrape(token) }
        let server = ServerFigures(before: before, after: after)
        let reps = (0..<n).compactMap { reports[$0] }
        let errs = (0..<n).compactMap { errors[$0] }
        let result = Result(setup: setup, laptops: n, concurrency: o.concurrency, wall: wall, latencies: (0..<n).compactMap { latencies[$0] },
                            errors: errs.count, firstError: errs.first, retries: reps.map(\.retries).reduce(0, +),
                            pushed: reps.map(\.pushed).reduce(0, +), pulled: reps.map(\.pulled).reduce(0, +), hubCPU: cpu,
                            pgCPU: pgCPU, driverCPU: driverCPU, machineBusy: machineBusy, server: server)
        log("\(setup) \(n): timed phase \(String(format: "%.1f", wall)) s, \(errs.count) error(s); \(preOpened) replica(s) opened beforehand")
        for h in hubs { h.stop() }
        hubs = []
        if let database { try? await PostgresHubStore.dropDatabase(database, on: o.pg!) }
        return result
    }

    /// The store URL the hub process is given: the database URL with the password, if any.
    static func pgLocation(_ server: PostgresURL, _ database: String) throws -> String {
        var u = URLComponents()
        u.scheme = "postgres"
        u.user = server.user
        u.password = server.password
        u.host = server.host
        if server.port != 5432 { u.port = server.port }
        u.path = "/" + database
        if let s = server.socketFolder { u.queryItems = [URLQueryItem(name: "host", value: s)] }
        guard let text = u.string else { throw Problem("cannot make a URL for database \(database)") }
        return text
    }

    /// Files this process may open, raised to the hard limit first.
    static func openFileLimit() -> Int {
        var l = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &l)
        if l.rlim_cur < l.rlim_max {
            l.rlim_cur = l.rlim_max
            setrlimit(Int32(RLIMIT_NOFILE.rawValue), &l)
            getrlimit(Int32(RLIMIT_NOFILE.rawValue), &l)
        }
        return Int(clamping: l.rlim_cur)
    }

    static func addDevices(_ store: any HubStore, _ n: Int, _ codes: ResultSlots<String>, width: Int) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for w in 0..<width {
                group.addTask {
                    for i in stride(from: w, to: n, by: width) {
                        let d = try await store.addDevice(name: "笔记本\(i)", scope: village(ofLaptop: i), codeLifetimeMs: 24 * 3_600_000)
                        codes[i] = d.code
                    }
                }
            }
            try await group.waitForAll()
        }
    }

    /// Other provinces' changes appended to a SQLite hub's log, as pushes would leave them (the
    /// rows a pull must pass over; no laptop's scope holds them).
    static func preloadSQLite(_ path: String, _ rows: Int) async throws {
        let q = try DatabaseQueue(path: path)
        var done = 0
        while done < rows {
            let (part, base) = (min(1_000_000, rows - done), done)
            try await q.write { db in
                try db.execute(sql: """
                    WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < ?)
                    INSERT INTO fs_change(site, counter, kind, row, hlc, author, received, source, peer, body)
                    SELECT 4242, ? + n, 'visit', '530221' || (200 + n % 97) || printf('%03d', n % 13) || '-' || lower(hex(randomblob(16))),
                           0, '其他省', 0, 1, 'dev-other', '{}' FROM g
                    """, arguments: [part, base])
            }
            done += part
        }
    }

    /// Runs `body(0..<n)` on `width` threads (the sync client blocks in libcurl), and returns when all are done.
    static func parallel(_ n: Int, width: Int, _ body: @escaping @Sendable (Int) -> Void) async {
        guard n > 0 else { return }
        let queue = WorkQueue(n)
        let threads = min(width, n)
        let left = WorkQueue(threads)
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            for _ in 0..<threads {
                let t = Thread {
                    while let i = queue.take() { body(i) }
                    if left.take() == threads - 1 { done.resume() }
                }
                t.stackSize = 4 << 20
                t.start()
            }
        }
    }
}

// MARK: - Helpers

/// Hands out 0, 1, 2, … up to `count` − 1 to whoever asks, once each.
final class WorkQueue: @unchecked Sendable {
    private let lock = NSLock()
    private var next = 0
    let count: Int
    init(_ count: Int) { self.count = count }
    func take() -> Int? {
        lock.withLock {
            guard next < count else { return nil }
            defer { next += 1 }
            return next
        }
    }
}

/// One slot per laptop, written by the thread that works on it.
final class ResultSlots<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [T?]
    init(_ n: Int) { items = Array(repeating: nil, count: n) }
    subscript(i: Int) -> T? {
        get { lock.withLock { items[i] } }
        set { lock.withLock { items[i] = newValue } }
    }
}

// MARK: - CPU time

/// CPU seconds from /proc: of processes, of this process, of the whole machine.
enum CPUTime {
    static let tick = Double(sysconf(Int32(_SC_CLK_TCK)))

    /// user + system time of process `pid`.
    static func process(_ pid: Int32) -> Double? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // After the name: fields 3… of the line; utime and stime are fields 14 and 15.
        guard fields.count > 13, let u = Double(fields[11]), let s = Double(fields[12]) else { return nil }
        return (u + s) / tick
    }

    static func ownProcess() -> Double {
        var u = rusage()
        getrusage(RUSAGE_SELF.rawValue, &u)
        return Double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + Double(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6
    }

    /// PostgreSQL backends serving `database` (their command line reads `postgres: USER
    /// DATABASE [local] idle`; the hubs', which name it in --store, do not start so), with their
    /// CPU time.
    static func backends(of database: String) -> [Int32: Double] {
        var out: [Int32: Double] = [:]
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = Int32(entry), let cmd = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline") else { continue }
            let line = String(decoding: cmd, as: UTF8.self)
            guard line.hasPrefix("postgres: "), line.split(separator: " ").contains(Substring(database)), let t = process(pid) else { continue }
            out[pid] = t
        }
        return out
    }

    /// Busy time of all cores together (everything but idle and iowait), from /proc/stat.
    static func machine() -> Double {
        guard let stat = try? String(contentsOfFile: "/proc/stat", encoding: .utf8),
              let line = stat.split(separator: "\n").first(where: { $0.hasPrefix("cpu ") }) else { return .nan }
        let v = line.split(separator: " ").dropFirst().compactMap { Double($0) }
        guard v.count >= 5 else { return .nan }
        return (v.reduce(0, +) - v[3] - v[4]) / tick
    }
}

// MARK: - HubServer

/// A `fieldsync-hub serve` process on a free loopback port.
final class HubServer: @unchecked Sendable {
    let process: Process
    let url: String

    init(process: Process, url: String) {
        self.process = process
        self.url = url
    }

    static func start(binary: String, store: String, tokenFile: String, output: String, maxPerAddress: Int) async throws -> HubServer {
        guard FileManager.default.isExecutableFile(atPath: binary) else {
            throw LoadBench.Problem("no hub program at \(binary) (swift build -c release --product fieldsync-hub, or --hub-binary PATH)")
        }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: binary)
        // Every client here is 127.0.0.1: the per-address cap (64 by default, for one village's
        // router) would refuse the fleet, so it is raised above the concurrency.
        p.arguments = ["serve", "--create", "--store", store, "--port", "0", "--metrics-token-file", tokenFile,
                       "--max-connections-per-address", String(maxPerAddress), "--hub-name", "负载基准"]
        FileManager.default.createFile(atPath: output + ".out", contents: nil)
        FileManager.default.createFile(atPath: output + ".log", contents: nil)
        p.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: output + ".out"))
        p.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: output + ".log"))
        try p.run()
        // Wait (at most two minutes) for the line that names the port.
        for _ in 0..<1200 {
            if let text = try? String(contentsOfFile: output + ".out", encoding: .utf8),
               let r = text.range(of: "listening on http://127.0.0.1:") {
                let port = text[r.upperBound...].prefix { $0.isNumber }
                return HubServer(process: p, url: "http://127.0.0.1:\(port)")
            }
            if !p.isRunning { break }
            try await Task.sleep(nanoseconds: 100_000_000)
        }
        if p.isRunning { p.terminate() }
        let log = (try? String(contentsOfFile: output + ".log", encoding: .utf8)) ?? ""
        throw LoadBench.Problem("the hub did not start: \(log.suffix(1000))")
    }

    /// The process's CPU time so far (user + system), from /proc.
    func cpuSeconds() -> Double { CPUTime.process(process.processIdentifier) ?? .nan }

    /// The hub's Prometheus text, read as Prometheus would (the metrics token).
    func scrape(_ token: String) throws -> Metrics {
        var o = TransportOptions()
        o.progress = false
        let reply: HTTPReply
        do { reply = try CurlHTTPClient().perform(HTTPExchange(method: "GET", url: url + "/metrics", headers: [("Authorization", "Bearer \(token)")]), options: o) } catch {
            throw LoadBench.Problem("GET /metrics: \(error)")
        }
        guard reply.status == 200 else { throw LoadBench.Problem("GET /metrics answered \(reply.status)") }
        return Metrics(String(decoding: reply.body, as: UTF8.self))
    }

    /// SIGTERM, then (after a minute) SIGKILL.
    func stop() {
        guard process.isRunning else { return }
        process.terminate()
        for _ in 0..<600 where process.isRunning { Thread.sleep(forTimeInterval: 0.1) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }
}

// MARK: - Metrics

/// Prometheus text format, one sample per line: `name{label="value",…} number`.
struct Metrics {
    struct Sample {
        let name: String
        let labels: [String: String]
        let value: Double
    }

    var samples: [String: Sample] = [:]

    init(_ text: String) {
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
            let key = String(line[..<space])
            var name = key, labels: [String: String] = [:]
            if let brace = key.firstIndex(of: "{") {
                name = String(key[..<brace])
                let inner = key[key.index(after: brace)...].dropLast()
                for pair in inner.split(separator: ",") {
                    let kv = pair.split(separator: "=", maxSplits: 1)
                    if kv.count == 2 { labels[String(kv[0])] = String(kv[1].dropFirst().dropLast()) }
                }
            }
            samples[key] = Sample(name: name, labels: labels, value: value)
        }
    }
}

/// The hubs' figures over the timed phase: the difference of two scrapes, summed over hubs.
struct ServerFigures {
    /// Sample key → increase.
    var delta: [String: (Metrics.Sample, Double)] = [:]
    /// Gauges at the end (summed over hubs where it makes sense).
    var storeRetries = 0.0

    init(before: [Metrics], after: [Metrics]) {
        for (b, a) in zip(before, after) {
            for (key, s) in a.samples {
                let d = s.value - (b.samples[key]?.value ?? 0)
                delta[key] = (s, (delta[key]?.1 ?? 0) + d)
            }
        }
        // Retries are counted per process (each its own counter): the increase over the phase.
        storeRetries = delta.values.filter { $0.0.name == "fieldsync_store_retries_total" }.map(\.1).reduce(0, +)
    }

    func sum(_ name: String, _ filter: ([String: String]) -> Bool = { _ in true }) -> Double {
        delta.values.filter { $0.0.name == name && filter($0.0.labels) }.map(\.1).reduce(0, +)
    }

    var requests: Double { sum("fieldsync_http_requests_total") { $0["route"] != "/metrics" } }
    var failedRequests: Double { sum("fieldsync_http_requests_total") { $0["route"] != "/metrics" && !($0["status"] ?? "").hasPrefix("2") } }
    var storeErrors: Double { sum("fieldsync_store_errors_total") }

    /// The `q` quantile of the sync latency histogram of `kind` (push, pull, ack), as the store
    /// call took it.
    func quantile(_ kind: String, _ q: Double) -> Double {
        quantile("fieldsync_sync_duration_seconds", q) { $0["kind"] == kind }
    }

    /// The `q` quantile of whole requests on the sync routes (authentication and bookkeeping
    /// included), from the request duration histogram.
    func requestQuantile(_ q: Double) -> Double {
        quantile("fieldsync_http_request_duration_seconds", q) { $0["route"] == "/v1/changes" || $0["route"] == "/v1/ack" }
    }

    /// The `q` quantile of histogram `name` over the series `filter` takes, interpolated within
    /// its bucket as Prometheus's histogram_quantile does.
    func quantile(_ name: String, _ q: Double, _ filter: ([String: String]) -> Bool) -> Double {
        var counts: [Double: Double] = [:]
        for (s, d) in delta.values where s.name == name + "_bucket" && filter(s.labels) {
            guard let le = s.labels["le"] else { continue }
            counts[le == "+Inf" ? .infinity : Double(le) ?? .infinity, default: 0] += d
        }
        let buckets = counts.map { (le: $0.key, count: $0.value) }.sorted { $0.le < $1.le }
        guard let total = buckets.last?.count, total > 0 else { return .nan }
        let rank = q * total
        var prev = (le: 0.0, count: 0.0)
        for b in buckets {
            if b.count >= rank {
                if b.le.isInfinite { return prev.le }
                return b.count == prev.count ? b.le : prev.le + (b.le - prev.le) * (rank - prev.count) / (b.count - prev.count)
            }
            prev = b
        }
        return prev.le
    }
}

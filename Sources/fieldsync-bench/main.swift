import FieldSyncCore
import FieldSyncReplica
import Foundation
import GRDB
import FieldSyncPostgres

// Benchmarks for docs/benchmarks.md. Every figure is a ratio against a baseline measured in the
// same run on the same machine (machines here are shared and noisy): plain SQLite inserts of
// the same rows, through the same library, with the same durability settings.
//
//   fieldsync-bench [--records N] [--apply-records N] [--single N] [--dir DIR]
//   fieldsync-bench --report-generate FILE [--report-records N]   a county hub file (ReportBench.swift)
//   fieldsync-bench --report FILE                                  reports on it vs a full scan, peak memory
//   fieldsync-bench --report-pg FILE postgres://…                  the same on PostgreSQL (the file moved into a new database)
//   fieldsync-bench --pull-scale [--small N] [--large N] [--pg URL]  a village's pull, 10^4 vs 10^6 other changes
//   fieldsync-bench --app-search [--search-records N]               the app's list search on a laptop of N visits (AppSearchBench.swift)
//   fieldsync-bench --prune-year [--days N]                          a village's year on a laptop, with and without pruning (PruneYearBench.swift)
//   fieldsync-bench --callgrind-apply [--apply-records N]            the apply alone, for scripts/bench --callgrind
//   fieldsync-bench --json-parsers [--json-records N]                 FieldSync's JSON parser against Foundation's on the same change sets (JSONParserBench.swift)
//   fieldsync-bench --load [--pg URL] [--laptops 300,2000] [--concurrency 200] …   N laptops syncing with real hubs (LoadBench.swift)

let args = CommandLine.arguments
func arg(_ name: String, _ def: Int) -> Int {
    if let i = args.firstIndex(of: name), i + 1 < args.count, let v = Int(args[i + 1]) { return v }
    return def
}
let batchN = arg("--records", 50_000)
let applyN = arg("--apply-records", 100_000)
let singleN = arg("--single", 2_000)
// Report benchmarks run alone in their process, so that peak memory is the report's own.
if let i = args.firstIndex(of: "--report-generate"), i + 1 < args.count {
    let n = arg("--report-records", 1_000_000)
    let t = try ReportBench.generate(path: args[i + 1], records: n)
    note("c generating the hub file (\(n) records, bulk insert, indexes, ANALYZE)", String(format: "%.1f s", t))
    exit(0)
}
if let i = args.firstIndex(of: "--report-pg"), i + 2 < args.count {
    try await ReportBench.runPostgres(path: args[i + 1], server: try PostgresURL(args[i + 2]))
    exit(0)
}
if let i = args.firstIndex(of: "--report"), i + 1 < args.count {
    try ReportBench.run(path: args[i + 1])
    note("c peak memory of the report process (RSS)", String(format: "%.0f MB", peakRSSMB()))
    exit(0)
}
let dir = args.firstIndex(of: "--dir").map { args[$0 + 1] } ?? NSTemporaryDirectory() + "fieldsync-bench-\(getpid())"
try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
defer { try? FileManager.default.removeItem(atPath: dir) }
if args.contains("--load") {
    do {
        try await LoadBench.run(LoadBench.Options(args, dir: dir))
    } catch {
        FileHandle.standardError.write(Data("fieldsync-bench --load: \(error)\n".utf8))
        try? FileManager.default.removeItem(atPath: dir)
        exit(1)
    }
    try? FileManager.default.removeItem(atPath: dir)
    exit(0)
}
if args.contains("--app-search") {
    print("| measure | result |")
    print("|---|---|")
    try AppSearchBench.run(dir: dir, records: arg("--search-records", 50_000))
    try? FileManager.default.removeItem(atPath: dir)
    exit(0)
}
if args.contains("--prune-year") {
    try PruneYearBench.run(dir: dir, days: arg("--days", 365))
    try? FileManager.default.removeItem(atPath: dir)
    exit(0)
}
if args.contains("--pull-scale") {
    let pg = try args.firstIndex(of: "--pg").map { try PostgresURL(args[$0 + 1]) }
    try await PullScaleBench.run(dir: dir, small: arg("--small", 10_000), large: arg("--large", 1_000_000), pg: pg)
    try? FileManager.default.removeItem(atPath: dir)
    exit(0)
}

func seconds(_ body: () throws -> Void) rethrows -> Double {
    let t = DispatchTime.now().uptimeNanoseconds
    try body()
    return Double(DispatchTime.now().uptimeNanoseconds - t) / 1e9
}

func peakRSSMB() -> Double {
    var u = rusage()
    getrusage(RUSAGE_SELF.rawValue, &u)
    return Double(u.ru_maxrss) / 1024
}

let notes = [
    "走访了解家庭收入、就业和医疗情况，宣传惠民政策，群众反映通组路雨天难行。",
    "入户核实低保申请材料，户主在外务工，家中老人身体尚可，孙子在镇上读初中。",
    "召开院坝会，讨论茶叶合作社分红方案，到会群众三十余人，意见基本一致。",
]

/// A realistic visit log: 11 fields set.
func visit(_ n: Int) -> JSONObject {
    ["village": .string("5202211052\(String(format: "%02d", n % 30 + 1))"), "household_head": .string("户主\(n)"),
     "cadre_name": "王芳", "visit_date": "2026-11-20", "visit_kind": "入户走访", "topics": ["政策宣传", "就业"],
     "notes": .string(notes[n % 3]), "needs": "希望硬化通组路", "follow_up": "报乡镇交通办",
     "follow_up_due": "2026-12-20", "follow_up_done": false]
}

let visitFields = Array(RecordKind.visit.spec.fields)

/// The baseline table: the same columns as a visit log, id primary key, no merge metadata.
func plainDB(_ path: String) throws -> DatabaseQueue {
    // The replica's settings exactly (Replica.configuration): WAL set by hand, since GRDB's
    // `journalMode = .wal` then sets synchronous = NORMAL, and a baseline that skips the fsync
    // of each commit made the single-record ratio look 3.5× (found by scripts/bench --check).
    var c = Configuration()
    c.prepareDatabase { db in
        try db.execute(sql: "PRAGMA journal_mode = WAL")
        try db.execute(sql: "PRAGMA synchronous = FULL")
    }
    let q = try DatabaseQueue(path: path, configuration: c)
    try q.write { db in
        try db.execute(sql: "CREATE TABLE visit(rid INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, "
            + visitFields.map { "\($0.name) \($0.type.sqlType)" }.joined(separator: ", ") + ")")
        // The same index the replica's table has, for listing a village's records.
        try db.execute(sql: "CREATE INDEX visit_village ON visit(village)")
    }
    return q
}

func plainInsert(_ db: Database, _ rows: [(String, [DatabaseValue])]) throws {
    let st = try db.cachedStatement(sql: "INSERT INTO visit(id, \(visitFields.map(\.name).joined(separator: ", "))) VALUES (?\(String(repeating: ", ?", count: visitFields.count)))")
    for (id, values) in rows {
        try st.execute(arguments: StatementArguments([id.databaseValue] + values))
    }
}

/// The stored form of each field of a checked record, as the baseline inserts it.
func plainRow(_ r: NewRecord) -> [DatabaseValue] {
    visitFields.map { f in
        switch r.values.first(where: { $0.field == f.name })?.value ?? .null {
        case .null: return .null
        case .integer(let i): return i.databaseValue
        case .text(let s): return s.databaseValue
        }
    }
}

func note(_ k: String, _ v: String) {
    print("| \(k) | \(v) |")
}

// After the globals above (top-level code runs in order).
if args.contains("--json-parsers") {
    try JSONParserBench.run(dir: dir, records: arg("--json-records", 20_000))
    try? FileManager.default.removeItem(atPath: dir)
    exit(0)
}
if let i = args.firstIndex(of: "--import-only"), i + 1 < args.count {
    // A bundle imported into a new replica, alone in this process: its peak memory is the
    // import's own (issue 13 point 7), not the benchmark's change sets.
    let dst = try Replica.create(path: "\(dir)/import-only.sqlite", siteName: "dest3", author: "李明")
    // VmHWM, not getrusage: ru_maxrss survives execve, so a child would report its parent's.
    func highWaterMB() -> Double {
        let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmHWM:") } ?? ""
        return (Double(line.split(separator: " ").dropFirst().first ?? "") ?? 0) / 1024
    }
    let before = highWaterMB()
    let report = try dst.importBundle(from: args[i + 1])
    print("applied=\(report.apply.applied)")
    print("rss_before=\(String(format: "%.0f", before))")
    print("rss_peak=\(String(format: "%.0f", highWaterMB()))")
    try? FileManager.default.removeItem(atPath: dir)
    exit(0)
}
if args.contains("--callgrind-apply") {
    // For scripts/bench --callgrind: callgrind counts inside callgrindApply only.
    let src = try Replica.create(path: "\(dir)/cg-src.sqlite", siteName: "source", author: "王芳")
    let recs = try (0..<applyN).map { try src.check(.visit, visit($0), creating: true) }
    _ = try src.insert(recs)
    let changes = try src.changes().compactMap(\.change)
    let dst = try Replica.create(path: "\(dir)/cg-dst.sqlite", siteName: "dest", author: "李明")
    try callgrindApply(dst, changes)
    print("changes=\(changes.count)")
    print("fields=\(changes.reduce(0) { $0 + $1.writes.count })")
    try? FileManager.default.removeItem(atPath: dir)
    exit(0)
}

/// The apply path alone, by name, for callgrind's --toggle-collect.
@inline(never) func callgrindApply(_ dst: Replica, _ changes: [Change]) throws {
    _ = try dst.apply(changes)
}

// MARK: (a) local writes

do {
    let r = try Replica.create(path: "\(dir)/w.sqlite", siteName: "bench", author: "王芳")
    let recs = try (0..<batchN).map { try r.check(.visit, visit($0), creating: true) }
    let ids = (0..<batchN).map { n in RecordID.make(kind: .visit, region: "5202211052\(String(format: "%02d", n % 30 + 1))", nowMs: 1_763_784_000_000) }
    let plain = try plainDB("\(dir)/plain.sqlite")
    let rows = zip(ids, recs).map { ($0, plainRow($1)) }
    // Interleave the two several times and keep the best of each, so that a noisy neighbour
    // does not decide the ratio.
    var tReplica = Double.infinity, tPlain = Double.infinity
    for round in 0..<3 {
        let chunk = batchN / 3
        let slice = recs[(round * chunk)..<((round + 1) * chunk)]
        let pslice = rows[(round * chunk)..<((round + 1) * chunk)]
        tPlain = min(tPlain, try seconds { try plain.write { try plainInsert($0, Array(pslice)) } } / Double(chunk))
        tReplica = min(tReplica, try seconds { _ = try r.insert(Array(slice)) } / Double(chunk))
    }
    note("a1 batch write, one transaction of \(batchN / 3) visit logs: replica µs/record", String(format: "%.1f", tReplica * 1e6))
    note("a1 batch write: plain SQLite µs/record", String(format: "%.1f", tPlain * 1e6))
    note("a1 batch write ratio (replica / plain)", String(format: "%.2f×", tReplica / tPlain))

    // One record per transaction, as a person saving a form does: commit and fsync included.
    let r2 = try Replica.create(path: "\(dir)/w2.sqlite", siteName: "bench", author: "王芳")
    let plain2 = try plainDB("\(dir)/plain2.sqlite")
    var tr = 0.0, tp = 0.0
    for i in 0..<singleN {
        let rec = recs[i]
        tp += try seconds { try plain2.write { try plainInsert($0, [rows[i]]) } }
        tr += try seconds { _ = try r2.insert([rec]) }
    }
    note("a2 single-record transactions (\(singleN), synchronous=FULL): replica µs/record", String(format: "%.1f", tr / Double(singleN) * 1e6))
    note("a2 single-record transactions: plain SQLite µs/record", String(format: "%.1f", tp / Double(singleN) * 1e6))
    note("a2 single-record ratio (replica / plain)", String(format: "%.2f×", tr / tp))
}

// MARK: (b) applying a large change set

do {
    let src = try Replica.create(path: "\(dir)/src.sqlite", siteName: "source", author: "王芳")
    let recs = try (0..<applyN).map { try src.check(.visit, visit($0), creating: true) }
    for chunk in stride(from: 0, to: applyN, by: 20_000) { _ = try src.insert(Array(recs[chunk..<min(applyN, chunk + 20_000)])) }
    let logged = try src.changes()
    let changes = logged.compactMap(\.change)
    let fieldChanges = changes.reduce(0) { $0 + $1.writes.count }
    note("b change set", "\(changes.count) changes writing \(fieldChanges) fields")

    let dst = try Replica.create(path: "\(dir)/dst.sqlite", siteName: "dest", author: "李明")
    let tApply = try seconds { _ = try dst.apply(changes) }
    let plain = try plainDB("\(dir)/plainb.sqlite")
    let rows = zip(changes, recs).map { ($0.0.row, plainRow($0.1)) }
    let tPlain = try seconds { try plain.write { try plainInsert($0, rows) } }
    note("b apply: field changes per second", String(format: "%.0f", Double(fieldChanges) / tApply))
    note("b apply: plain SQLite bulk insert of the same rows, fields per second", String(format: "%.0f", Double(fieldChanges) / tPlain))
    note("b apply ratio (apply time / plain bulk insert time)", String(format: "%.2f×", tApply / tPlain))

    // End to end from a gzip bundle: decompress, parse, check, apply.
    _ = try src.exportBundle(to: "\(dir)/b.bundle")
    let dst2 = try Replica.create(path: "\(dir)/dst2.sqlite", siteName: "dest2", author: "李明")
    let tImport = try seconds { _ = try dst2.importBundle(from: "\(dir)/b.bundle") }
    note("b bundle import end to end: field changes per second", String(format: "%.0f", Double(fieldChanges) / tImport))
    note("b bundle import ratio (import time / plain bulk insert time)", String(format: "%.2f×", tImport / tPlain))
    let size = (try? FileManager.default.attributesOfItem(atPath: "\(dir)/b.bundle")[.size] as? Int) ?? 0
    note("b bundle size", "\(size / 1024) KiB for \(changes.count) changes")

    // The same bundle imported by a process that does nothing else (as `fieldsync import`).
    let alone = Process()
    alone.executableURL = URL(fileURLWithPath: CommandLine.arguments[0])
    alone.arguments = ["--import-only", "\(dir)/b.bundle", "--dir", "\(dir)/alone"]
    let out = Pipe()
    alone.standardOutput = out
    try alone.run()
    let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    alone.waitUntilExit()
    let info = Dictionary(text.split(separator: "\n").compactMap { l -> (String, String)? in
        let p = l.split(separator: "=", maxSplits: 1).map(String.init)
        return p.count == 2 ? (p[0], p[1]) : nil
    }, uniquingKeysWith: { a, _ in a })
    guard alone.terminationStatus == 0, info["applied"] == String(changes.count) else {
        throw ReplicaError.storage("the import alone failed (status \(alone.terminationStatus)): \(text)")
    }
    note("b bundle import alone in its own process: peak memory (RSS)", "\(info["rss_peak"] ?? "?") MB (\(info["rss_before"] ?? "?") MB before the import)")
}
note("peak memory (RSS)", String(format: "%.0f MB", peakRSSMB()))

import FieldSyncCore
@_spi(Hub) @testable import FieldSyncReplica
import Foundation
import GRDB
import Testing

/// SIGKILL of the laptop during sync (push, pull, apply) and of the hub while it commits
/// pushes, at random moments. Afterwards: integrity_check ok, no acknowledged change missing,
/// no change applied twice, and the next sync completes.
///
/// FIELDSYNC_CRASH_SYNC_RUNS (default 6 each) for longer runs (scripts/crash-soak); FIELDSYNC_SEED replays.
@Suite(.serialized) struct CrashDuringSyncSpec {
    static let runs = ProcessInfo.processInfo.environment["FIELDSYNC_CRASH_SYNC_RUNS"].flatMap(Int.init) ?? 6
    static let seed = ProcessInfo.processInfo.environment["FIELDSYNC_SEED"].flatMap(UInt64.init) ?? UInt64.random(in: 0...UInt64.max)

    /// A hub holding 1,500 changes from laptop A, and laptop B enrolled with 1,500 changes of its
    /// own to push: pristine files copied afresh for every kill.
    struct Pristine {
        let dir: TempDir
        let hubDB: String
        let laptopDB: String
        let aSite: SiteID
        let bSite: SiteID
        let bChanges: Int

        init() throws {
            dir = TempDir("crashsync")
            hubDB = dir.file("hub.sqlite")
            let hub = try HubProcess(db: hubDB, log: dir.file("hub.log"))
            func lines(_ tag: String) -> String {
                (0..<1500).map { n in
                    #"{"village":"520221105201","category":"邻里纠纷","parties":"\#(tag)\#(n)","summary":"\#(String(repeating: "纠纷经过。", count: 10))","reported_on":"2026-11-20","status":"受理"}"#
                }.joined(separator: "\n")
            }
            let a = try Laptop(dir, "a", author: "王芳")
            try a.enroll(hub, scope: township)
            try lines("甲").write(toFile: dir.file("a.jsonl"), atomically: true, encoding: .utf8)
            #expect(try a.run(["record", "import", "dispute", dir.file("a.jsonl")]).status == 0)
            #expect(try a.sync().status == 0)
            let b = try Laptop(dir, "b", author: "李明")
            try b.enroll(hub, scope: township)
            try lines("乙").write(toFile: dir.file("b.jsonl"), atomically: true, encoding: .utf8)
            #expect(try b.run(["record", "import", "dispute", dir.file("b.jsonl")]).status == 0)
            hub.kill(SIGTERM)
            laptopDB = b.db
            aSite = SiteID(hex: try a.status()["site"]!.stringValue!)!
            bSite = SiteID(hex: try b.status()["site"]!.stringValue!)!
            bChanges = 1500
        }

        /// How long one undisturbed sync of the pristine pair takes: the window to kill in.
        func undisturbedSyncSeconds() throws -> TimeInterval {
            let (h0, l0) = try copy(0)
            let hub0 = try HubProcess(db: h0, log: dir.file("h0.log"))
            defer { hub0.kill(SIGTERM) }
            let t0 = Date()
            #expect(try runCLI(["sync", "--quiet", "--hub", hub0.url], db: l0).status == 0)
            return Date().timeIntervalSince(t0)
        }

        func copy(_ run: Int) throws -> (hub: String, laptop: String) {
            let h = dir.file("hub-\(run).sqlite"), l = dir.file("b-\(run).sqlite")
            // With its write-ahead log, if one was left behind: the file alone may lack the
            // latest commits (or even the schema).
            // The laptop's secret file too: a laptop restored whole, token and key with it.
            for (from, to) in [(hubDB, h), (laptopDB, l)] {
                for suffix in ["", "-wal", ".secret"] {
                    try? FileManager.default.removeItem(atPath: to + suffix)
                    if suffix.isEmpty || FileManager.default.fileExists(atPath: from + suffix) {
                        try FileManager.default.copyItem(atPath: from + suffix, toPath: to + suffix)
                    }
                }
            }
            // The same laptop in the same place (the copy stands for its state before the kill),
            // not a copy somewhere else, which would take a new site and leave the device.
            if var secrets = ReplicaSecrets.load(for: l) {
                secrets.home = ReplicaSecrets.home(of: l)
                try secrets.save(for: l)
            }
            return (h, l)
        }
    }

    static func count(_ db: String, site: SiteID) throws -> (Int, Int) {
        try DatabaseQueue(path: db).read { db in
            let n = try Int.fetchOne(db, sql: "SELECT count(*) FROM fs_change WHERE site = ?", arguments: [Int64(bitPattern: site.raw)]) ?? -1
            let twice = try Int.fetchOne(db, sql: "SELECT count(*) - count(DISTINCT site || ':' || counter) FROM fs_change") ?? -1
            return (n, twice)
        }
    }

    static func integrity(_ db: String) throws -> String { try DatabaseQueue(path: db).read { try String.fetchOne($0, sql: "PRAGMA integrity_check") ?? "" } }

    /// Changes the laptop counts as acknowledged by the hub (at or below its push cursor).
    static func acknowledged(_ db: String) throws -> [(Int64, Int64)] {
        try DatabaseQueue(path: db).read { db in
            try Row.fetchAll(db, sql: "SELECT site, counter FROM fs_change WHERE source != 2 AND seq <= (SELECT push_cursor FROM fs_sync)").map { ($0[0], $0[1]) }
        }
    }

    static func missingAtHub(_ acked: [(Int64, Int64)], hub: String) throws -> Int {
        try DatabaseQueue(path: hub).read { db in
            try acked.filter { (try Int.fetchOne(db, sql: "SELECT count(*) FROM fs_change WHERE site = ? AND counter = ?", arguments: [$0.0, $0.1]) ?? 0) == 0 }.count
        }
    }

    /// A random moment within the sync window (0.85 of it: a sync may run faster than the first).
    static func killDelay(_ window: TimeInterval, _ rng: inout SplitMix64) -> TimeInterval {
        Double.random(in: 0.01...max(0.02, 0.85 * window), using: &rng)
    }

    func syncProcess(_ laptop: String, _ url: String, attempts: Int) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: fieldsyncBinary())
        p.arguments = ["--db", laptop, "sync", "--quiet", "--hub", url, "--attempts", String(attempts)]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        return p
    }

    @Test func killingTheLaptopMidSyncLosesNothingAndTheNextSyncCompletes() throws {
        var rng = SplitMix64(seed: Self.seed)
        let base = try Pristine()
        let window = try base.undisturbedSyncSeconds()
        var midway = 0
        for run in 1...Self.runs {
            let (h, l) = try base.copy(run)
            let hub = try HubProcess(db: h, log: base.dir.file("h\(run).log"))
            let p = try syncProcess(l, hub.url, attempts: 3)
            Thread.sleep(forTimeInterval: Self.killDelay(window, &rng))
            if p.isRunning { midway += 1 }
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            #expect(try Self.integrity(l) == "ok", "seed \(Self.seed) run \(run): laptop integrity")
            #expect(try Self.missingAtHub(Self.acknowledged(l), hub: h) == 0, "seed \(Self.seed) run \(run): an acknowledged change is missing at the hub")
            let again = try runCLI(["sync", "--quiet", "--hub", hub.url], db: l)
            #expect(again.status == 0, "seed \(Self.seed) run \(run): the next sync failed: \(again.stderr)")
            let (bAtHub, hubTwice) = try Self.count(h, site: base.bSite)
            let (aAtLaptop, laptopTwice) = try Self.count(l, site: base.aSite)
            #expect(bAtHub == base.bChanges && hubTwice == 0, "seed \(Self.seed) run \(run): hub holds \(bAtHub) of b's changes, \(hubTwice) twice")
            #expect(aAtLaptop == 1500 && laptopTwice == 0, "seed \(Self.seed) run \(run): laptop holds \(aAtLaptop) of a's changes, \(laptopTwice) twice")
            hub.kill(SIGTERM)
            try? FileManager.default.removeItem(atPath: h)
            try? FileManager.default.removeItem(atPath: l)
        }
        print("crash during sync (laptop): seed \(Self.seed), \(Self.runs) SIGKILLs of `fieldsync sync` (\(midway) while syncing, window \(String(format: "%.2f", window)) s); integrity ok, acknowledged missing 0, duplicated 0, every next sync completed")
        #expect(midway >= Self.runs / 2)
    }

    @Test func killingTheHubWhileItCommitsPushesLosesNothingAcknowledged() throws {
        var rng = SplitMix64(seed: Self.seed &+ 1)
        let base = try Pristine()
        let window = try base.undisturbedSyncSeconds()
        var midway = 0, acknowledgedTotal = 0
        for run in 1...Self.runs {
            let (h, l) = try base.copy(run)
            var hub = try HubProcess(db: h, log: base.dir.file("h\(run).log"))
            let p = try syncProcess(l, hub.url, attempts: 1)
            Thread.sleep(forTimeInterval: Self.killDelay(window, &rng))
            if p.isRunning { midway += 1 }
            hub.kill(SIGKILL)
            p.waitUntilExit()
            #expect(try Self.integrity(h) == "ok", "seed \(Self.seed) run \(run): hub integrity")
            let acked = try Self.acknowledged(l)
            acknowledgedTotal += acked.count
            #expect(try Self.missingAtHub(acked, hub: h) == 0, "seed \(Self.seed) run \(run): the hub lost a change it acknowledged")
            hub = try hub.restart()
            let again = try runCLI(["sync", "--quiet", "--hub", hub.url], db: l)
            #expect(again.status == 0, "seed \(Self.seed) run \(run): the next sync failed: \(again.stderr)")
            let (bAtHub, twice) = try Self.count(h, site: base.bSite)
            #expect(bAtHub == base.bChanges && twice == 0, "seed \(Self.seed) run \(run): hub holds \(bAtHub) of b's changes, \(twice) twice")
            hub.kill(SIGTERM)
            try? FileManager.default.removeItem(atPath: h)
            try? FileManager.default.removeItem(atPath: l)
        }
        print("crash during sync (hub): seed \(Self.seed), \(Self.runs) SIGKILLs of the hub (\(midway) during a sync); \(acknowledgedTotal) changes were acknowledged before the kills, missing 0; integrity ok; duplicated 0; every next sync completed")
        #expect(midway >= Self.runs / 2)
    }
}

import ArgumentParser
import FieldSyncCore
import FieldSyncReplica
import FieldSyncCommandLine
import FieldSyncPresentation
import FieldSyncTransport
import Foundation
import Synchronization

/// Exit codes of the sync commands (docs/cli.md).
enum SyncExit {
    static let incomplete: Int32 = 3
    static let unavailable: Int32 = 75
    static let denied: Int32 = 77
    static let notEnrolled: Int32 = 78

    static func code(_ e: SyncError) -> Int32 {
        switch e {
        case .notEnrolled: return notEnrolled
        case .unauthorized, .forbidden: return denied
        case .refused: return 65
        case .unavailable, .badResponse, .cancelled: return unavailable
        case .local(let r): return Main.exitCode(r)
        }
    }

    static func fail(_ e: SyncError) -> Never {
        // Chinese first with what to do next, the precise reason in brackets.
        FileHandle.standardError.write(Data("fieldsync: 错误 error: \(e.explained)\n".utf8))
        Foundation.exit(code(e))
    }
}

// MARK: - enroll

struct Enroll: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Enrol this replica with a hub using a one-time code (注册到同步中心).",
        discussion: "Example: fieldsync enroll --hub https://hub.example.gov.cn:8780 --code K7PX-M2QD-9WRT. The code comes from `fieldsync-hub device add`.")
    @OptionGroup var global: GlobalOptions
    @Option(help: "The hub's address, e.g. http://127.0.0.1:8780.") var hub: String
    @Option(help: "The one-time enrolment code.") var code: String
    @Option(help: "A CA certificate (PEM) to trust for a hub with a private certificate.") var cacert: String?
    @Flag(help: "Print the result as JSON.") var json = false

    func run() throws {
        let r = try global.open()
        do {
            let resp = try SyncClient.enroll(replica: r, hubURL: hub, code: code, caFile: cacert)
            if json {
                Display.printJSON(["device": .string(resp.device), "name": .string(resp.name), "scope": .string(resp.scope),
                                   "hub": ["site": .string(resp.hubSite.hex), "name": .string(resp.hubName)]])
            } else {
                print("已注册 enrolled with \(resp.hubName) as \(resp.device) (\(resp.name))，同步范围 scope \(resp.scope) (\(RegionCode.levelLabel(resp.scope)))")
                print("现在可以同步 now run: fieldsync sync")
            }
        } catch let e as SyncError { SyncExit.fail(e) }
    }
}

// MARK: - sync

struct SyncCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sync", abstract: "Exchange changes with the hub once (同步一次).",
        discussion: "Exit codes: 0 everything exchanged · 3 exchanged, but the hub refused or deferred some changes (listed) · 75 hub unreachable or busy after retries · 77 token refused or device revoked · 78 not enrolled.")
    @OptionGroup var global: GlobalOptions
    @Flag(help: "No progress line.") var quiet = false
    @Flag(help: "Print the result as JSON.") var json = false
    @Option(help: "Attempts per request when the link fails or the hub is busy (with growing, jittered waits).") var attempts: Int = 6
    @Option(help: "Reach the hub at this address for this sync (e.g. its address on the township office network).") var hub: String?

    func run() throws {
        let r = try global.open()
        var options = SyncOptions()
        options.attempts = max(1, attempts)
        options.hubURL = hub
        options.transport.progress = !quiet && !json
        let client = SyncClient(replica: r, options: options)
        let report: SyncReport
        do { report = try client.sync() } catch let e as SyncError { SyncExit.fail(e) }
        let hub = (try? r.syncState())?.hubName ?? "hub"
        if json {
            Display.printJSON(Self.json(report))
        } else {
            print("已同步 synced with \(hub): ↑ 上传 \(report.pushed) 条变更" + (report.pushedDuplicates > 0 ? " (另 \(report.pushedDuplicates) 条中心已有)" : "")
                  + " · ↓ 下载 \(report.pulled) 条" + (report.snapshotPages > 0 ? " (快照 \(report.snapshotPages) 页)" : "")
                  + " · 新冲突 \(report.conflictsOpened) · 已解决冲突 \(report.conflictsClosed)"
                  + " · \(report.requests) 次请求 (重试 \(report.retries)) · 发送 \(report.bytesSent) B 接收 \(report.bytesReceived) B")
            if report.siteRenewed {
                print("⚠ 本机的数据文件有另一份副本用过同样的编号：已换用新编号，\(report.remade) 条修改已用新编号重新记录，不会丢失 (another copy of this replica used its ids; \(report.remade) edits re-made under a new site id)")
            }
            if let l = report.schemaLearnt, l.to > l.from {
                print("已从同步中心取得数据结构第 \(l.to) 版 (took schema version \(l.to) from the hub; was \(l.from)); 此前暂存的 \(l.merged) 条变更已合并")
            }
            if report.hubRestored {
                print("⚠ 同步中心已从备份恢复：本机已把全部记录重新上传，补回中心丢失的部分 (the hub was restored from a backup; everything here was offered to it again)")
            }
            if report.restamped > 0 {
                print("⚠ \(report.restamped) 条修改的时间比同步中心快得多：已按校正后的时间重新计时并上传 (re-stamped edits made with a fast clock; nothing lost)")
            }
            if report.clockSetBack, let o = report.hubOffsetMs {
                print("⚠ 本机时钟与同步中心相差约 \(o / 60000) 分钟：已校正，之后的修改使用校正后的时间 (this laptop's clock was off; corrected)")
            }
            for x in report.refused.prefix(10) { print("✘ 中心拒收 refused \(x.id): \(x.code ?? "") — \(x.reason ?? "")") }
            for x in report.retryLater.prefix(10) { print("… 稍后重试 later \(x.id): \(x.code ?? "") — \(x.reason ?? "")") }
        }
        if !report.complete { throw ExitCode(SyncExit.incomplete) }
    }

    static func json(_ r: SyncReport) -> JSONValue {
        .object(JSONObject([
            ("complete", .bool(r.complete)), ("pushed", .int(Int64(r.pushed))), ("pushedDuplicates", .int(Int64(r.pushedDuplicates))),
            ("pulled", .int(Int64(r.pulled))), ("pulledDuplicates", .int(Int64(r.pulledDuplicates))),
            ("conflictsOpened", .int(Int64(r.conflictsOpened))), ("conflictsClosed", .int(Int64(r.conflictsClosed))),
            ("snapshotPages", .int(Int64(r.snapshotPages))), ("requests", .int(Int64(r.requests))), ("retries", .int(Int64(r.retries))),
            ("bytesSent", .int(Int64(r.bytesSent))), ("bytesReceived", .int(Int64(r.bytesReceived))),
            ("refused", .array(r.refused.map(\.json))), ("retryLater", .array(r.retryLater.map(\.json))),
            ("clockSetBack", .bool(r.clockSetBack)), ("hubOffsetMs", r.hubOffsetMs.map { .int($0) } ?? .null),
            ("restamped", .int(Int64(r.restamped))), ("hubRestored", .bool(r.hubRestored)), ("siteRenewed", .bool(r.siteRenewed)),
            ("remade", .int(Int64(r.remade))),
            ("schema", .int(Int64(Schema.current.version))),
            ("schemaLearnt", r.schemaLearnt.map { ["from": .int(Int64($0.from)), "to": .int(Int64($0.to)), "merged": .int(Int64($0.merged))] } ?? .null),
        ]))
    }
}

// MARK: - daemon

/// Set by SIGTERM or SIGINT; the daemon's loop and any transfer in flight stop on it.
final class StopSignal: Sendable {
    let flag = Atomic<Bool>(false)
    var requested: Bool { flag.load(ordering: .relaxed) }
}

struct Daemon: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Keep syncing: soon after local edits and periodically; backs off while the hub is unreachable (后台同步).",
        discussion: "Stops cleanly on SIGTERM or SIGINT. Its state shows in `fieldsync status`. A systemd unit: docs/fieldsync-daemon.service.")
    @OptionGroup var global: GlobalOptions
    @Option(help: "Seconds between syncs when nothing changes.") var interval: Double = 300
    @Option(help: "Seconds to wait after a local edit before syncing (edits often come in bursts).") var settle: Double = 5
    @Option(help: "Longest wait, in seconds, between attempts while the hub is unreachable.") var maxBackoff: Double = 900
    @Option(help: "Serve the cadre's app (docs/app.md) on this port of 127.0.0.1; 0 picks a free port.") var appPort: Int = AppDefaults.port
    @Flag(help: "Do not serve the app.") var noApp = false
    @Option(help: "Once a day, write a bundle of what the hub does not have yet into this folder (fieldsync backup).") var backupDir: String?

    func run() throws {
        let r = try global.open()
        guard (try r.syncState()) != nil else { SyncExit.fail(.notEnrolled) }
        let stop = StopSignal()
        let http = CurlHTTPClient()
        var sources: [DispatchSourceSignal] = []
        // Started with signals blocked (by a service manager or a test runner), SIGTERM would
        // never arrive: unblock the two this daemon stops on.
        var stopSignals = sigset_t()
        sigemptyset(&stopSignals)
        sigaddset(&stopSignals, SIGTERM)
        sigaddset(&stopSignals, SIGINT)
        pthread_sigmask(SIG_UNBLOCK, &stopSignals, nil)
        for sig in [SIGTERM, SIGINT] {
            signal(sig, SIG_IGN)
            let s = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            s.setEventHandler {
                stop.flag.store(true, ordering: .relaxed)
                http.cancel()
            }
            s.resume()
            sources.append(s)
        }
        var options = SyncOptions()
        options.transport.progress = false
        options.attempts = 2  // the daemon's own loop backs off between rounds
        let client = SyncClient(replica: r, http: http, options: options)
        let pid = getpid()
        func now() -> Double { Date().timeIntervalSince1970 }
        @Sendable func log(_ s: String) { FileHandle.standardError.write(Data("\(UTCTime.iso(Int64(Date().timeIntervalSince1970 * 1000))) fieldsync daemon: \(s)\n".utf8)) }
        if !noApp {
            // The app runs beside the sync loop; a taken port leaves the daemon syncing without it.
            let path = global.path, port = appPort
            Thread.detachNewThread {
                do {
                    try AppDefaults.serve(replica: path, port: port, signals: false) { port, link in
                        log("app on http://127.0.0.1:\(port)/ — one-time link: \(link)")
                    }
                } catch { log("the app is not served: \(error)") }
            }
        }
        var failures = 0
        var nextDue = now()
        var nextBackup = now()
        var editSeenAt: Double?
        log("started (pid \(pid)), syncing every \(Int(interval)) s and \(Int(settle)) s after local edits")
        while !stop.requested {
            // Changes waiting to be offered (edits by any process writing the file, bundles
            // imported) bring the next sync forward, once they have settled for a moment.
            if (try? r.pendingPushCount()) ?? 0 > 0 {
                if editSeenAt == nil { editSeenAt = now() }
            } else {
                editSeenAt = nil
            }
            if let t = editSeenAt, failures == 0, now() - t >= settle { nextDue = min(nextDue, now()) }
            if now() >= nextDue {
                try? r.recordDaemon(pid: pid, state: "syncing", next: nil)
                do {
                    let rep = try client.sync()
                    failures = 0
                    editSeenAt = nil
                    nextDue = now() + interval
                    log("synced: ↑\(rep.pushed) ↓\(rep.pulled)\(rep.complete ? "" : " (incomplete: \(rep.refused.count) refused, \(rep.retryLater.count) deferred)")")
                    try? r.recordDaemon(pid: pid, state: rep.complete ? "idle" : "idle (last sync incomplete)", next: Int64(nextDue * 1000))
                } catch let e as SyncError {
                    if case .cancelled = e { break }
                    failures += 1
                    let cap = e.transient ? maxBackoff : max(maxBackoff, 3600)
                    let delay = Double.random(in: 0.5...1.0) * min(cap, 5 * pow(2, Double(failures - 1)))
                    nextDue = now() + delay
                    log("sync failed (\(failures) in a row), next attempt in \(Int(delay)) s: \(e)")
                    try? r.recordDaemon(pid: pid, state: "backing off after \(failures) failure(s): \(e)", next: Int64(nextDue * 1000))
                }
            }
            if let dir = backupDir, now() >= nextBackup {
                do {
                    if let rep = try r.backup(toFolder: dir) { log("backup: \(rep.changes) change(s) not yet at the hub in \(rep.path)") }
                    nextBackup = now() + 86_400
                } catch {
                    log("backup into \(dir) failed, next try in an hour: \(error)")
                    nextBackup = now() + 3600
                }
            }
            // Never a busy loop: sleep a second between looks.
            var slept = 0.0
            while slept < 1 && !stop.requested {
                Thread.sleep(forTimeInterval: 0.1)
                slept += 0.1
            }
        }
        try? r.recordDaemon(pid: nil, state: "stopped", next: nil)
        log("stopped")
        _ = sources
    }
}

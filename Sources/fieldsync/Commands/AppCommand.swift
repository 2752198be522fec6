import ArgumentParser
import FieldSyncApp
import FieldSyncCore
import FieldSyncReplica
import Foundation
import Logging

// MARK: - app

struct AppCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "app", abstract: "Open the cadre's own app in the browser: lists, forms, drafts, sync, conflicts (驻村工作台).",
        discussion: """
            Serves the app on 127.0.0.1 only and prints a one-time link to open it (or opens it with --open). \
            Stops on Ctrl-C. With the app already running (here or in `fieldsync daemon`), --link prints a new link. See docs/app.md.
            """)
    @OptionGroup var global: GlobalOptions
    @Option(help: "The port on 127.0.0.1 (0: any free port).") var port: Int = AppDefaults.port
    @Flag(help: "Only print a new one-time link to the app already running for this replica.") var link = false
    @Flag(help: "Open the link in the desktop's browser (xdg-open).") var open = false

    func run() throws {
        let path = global.path
        if link {
            let running = AppDefaults.runningPort(replica: path) ?? port
            print(try AppServer.link(replica: path, port: running))
            return
        }
        _ = try global.open()  // a clear error for a missing or foreign file, before anything listens
        let opener = open
        try AppDefaults.serve(replica: path, port: port, signals: true) { port, link in
            print("驻村工作台已启动 the app is running: http://127.0.0.1:\(port)/")
            print("请在浏览器中打开（一次有效，10 分钟内）open this one-time link: \(link)")
            print("按 Ctrl-C 停止 stop with Ctrl-C")
            AppDefaults.flush()
            if opener { AppDefaults.openInBrowser(link) }
        }
    }
}

// MARK: - Serving

enum AppDefaults {
    static let port = 8790

    /// Where a running app notes its port (for `fieldsync app --link`).
    static func portFile(_ replica: String) -> String { replica + ".app-port" }

    static func runningPort(replica: String) -> Int? {
        FileManager.default.contents(atPath: portFile(replica)).flatMap { Int(String(decoding: $0, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    /// Serves the app until the process is stopped (`signals`: on SIGTERM/SIGINT, as `fieldsync
    /// app` does; the daemon handles its own). Throws when the port cannot be had.
    static func serve(replica: String, port: Int, signals: Bool, onRunning: @escaping @Sendable (Int, String) -> Void) throws {
        var logger = Logger(label: "fieldsync.app")
        logger.logLevel = .warning
        let app = try AppServer.application(AppConfiguration(replicaPath: replica, port: port), logger: logger) { port, link in
            try? Array("\(port)\n".utf8).withUnsafeBytes { try Data($0).write(to: URL(fileURLWithPath: portFile(replica))) }
            onRunning(port, link)
        }
        let done = DispatchSemaphore(value: 0)
        let failure = FailureBox()
        Task.detached {
            do { try await app.runService(gracefulShutdownSignals: signals ? [.sigterm, .sigint] : []) } catch { failure.set("\(error)") }
            done.signal()
        }
        done.wait()
        unlink(portFile(replica))
        if let e = failure.get() {
            throw ValidationError(e.contains("Address already in use") || e.contains("bind")
                ? "端口 \(port) 已被占用：工作台可能已在运行（用 fieldsync app --link 取得链接），或用 --port 换一个端口 (port \(port) is taken: \(e))"
                : "工作台未能启动 (the app could not start): \(e)")
        }
    }

    static func flush() { fflush(nil) }

    static func openInBrowser(_ link: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["xdg-open", link]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try? p.run()
    }
}

final class FailureBox: @unchecked Sendable {
    private let lock = NSLock()
    private var value: String?
    func set(_ v: String) { lock.lock(); value = v; lock.unlock() }
    func get() -> String? { lock.lock(); defer { lock.unlock() }; return value }
}

import FieldSyncCore
import FieldSyncReplica
import FieldSyncTransport
import Foundation
import Synchronization

// MARK: - SyncRunner

/// Runs one real sync at a time for the app's "立即同步" button, on its own thread and its own
/// connection to the replica file (the app stays usable meanwhile), and tells the sync page how
/// far it got.
final class SyncRunner: Sendable {
    struct Progress: Sendable {
        var running = false
        /// `push`, `pull` or nil before either.
        var phase: String?
        var started: Int64?
        var finished: Int64?
        var report: SyncReport?
        /// What went wrong, explained (``SyncError/explained``).
        var error: String?
    }

    let path: String
    private let state = Mutex(Progress())

    init(path: String) { self.path = path }

    var progress: Progress { state.withLock { $0 } }

    /// Starts a sync unless one is running; false when one already is.
    func start() -> Bool {
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let began = state.withLock { p -> Bool in
            guard !p.running else { return false }
            p = Progress(running: true, phase: nil, started: now)
            return true
        }
        guard began else { return false }
        let path = self.path
        Thread.detachNewThread { [self] in
            var options = SyncOptions()
            options.transport.progress = false
            options.attempts = 2
            options.onPhase = { phase in self.state.withLock { $0.phase = phase } }
            let outcome: Result<SyncReport, Error>
            do {
                let r = try Replica.open(path: path)
                outcome = .success(try SyncClient(replica: r, options: options).sync())
            } catch {
                outcome = .failure(error)
            }
            let end = Int64(Date().timeIntervalSince1970 * 1000)
            self.state.withLock { p in
                p.running = false
                p.finished = end
                switch outcome {
                case .success(let r): p.report = r
                case .failure(let e as SyncError): p.error = e.explained
                case .failure(let e): p.error = "同步未能开始。（\(e)）"
                }
            }
        }
        return true
    }
}

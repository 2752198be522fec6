import FieldSyncCore
import FieldSyncReplica
import Foundation

// MARK: - SyncError

/// Why a sync did not complete, said so a cadre can act on it.
public enum SyncError: Error, CustomStringConvertible {
    /// This replica has not been enrolled with a hub.
    case notEnrolled
    /// 401: the hub does not know the token.
    case unauthorized(HubErrorBody)
    /// 403: the device is revoked (or the code is bad).
    case forbidden(HubErrorBody)
    /// The hub refused a request (4xx other than the above).
    case refused(status: Int, HubErrorBody)
    /// The hub could not be reached, or stayed busy, through every retry.
    case unavailable(String)
    /// The hub sent something this client cannot read.
    case badResponse(String)
    case cancelled
    case local(ReplicaError)

    public var description: String {
        switch self {
        case .notEnrolled: return "this replica is not enrolled with a hub: run `fieldsync enroll --hub URL --code CODE` (the code comes from `fieldsync-hub device add`)"
        case .unauthorized(let e): return "the hub refused this device's token (\(e.code)): \(e.message)"
        case .forbidden(let e): return "the hub forbids this device (\(e.code)): \(e.message)"
        case .refused(let s, let e): return "the hub refused the request (HTTP \(s), \(e.code)): \(e.message)"
        case .unavailable(let s): return "the hub could not be reached: \(s)"
        case .badResponse(let s): return "the hub's answer could not be read: \(s)"
        case .cancelled: return "stopped before the exchange finished"
        case .local(let e): return "\(e)"
        }
    }

    /// What went wrong and what to do next, in Chinese first (the precise reason in brackets):
    /// what the app's sync page and `fieldsync status` show.
    public var explained: String {
        let (what, next): (String, String)
        switch self {
        case .notEnrolled: (what, next) = ("本机还没有注册到同步中心", "请向管理员要一次性注册码，运行 fieldsync enroll --hub 地址 --code 注册码")
        case .unauthorized: (what, next) = ("同步中心不认识本机的令牌", "请联系管理员重新注册本机（数据都在本机，不会丢失）")
        case .forbidden: (what, next) = ("同步中心已停用本机", "请联系管理员；本机数据不会丢失，可以导出数据包交给管理员")
        case .refused(let status, _) where status == 426: (what, next) = ("本机程序版本太旧", "请升级 FieldSync 后再同步；本机数据不会丢失")
        case .refused: (what, next) = ("同步中心拒绝了这次请求", "请稍后再试；如果一直这样，请把下面的原因告诉管理员")
        case .unavailable: (what, next) = ("连不上同步中心", "请检查网络后点“立即同步”；没有网络也可以继续录入，联网后会自动上传")
        case .badResponse: (what, next) = ("同步中心的回复无法读取", "请稍后再试；如果一直这样，请联系管理员")
        case .cancelled: (what, next) = ("同步在完成前被停止", "再点一次“立即同步”即可，已完成的部分不会重复")
        case .local: (what, next) = ("本机数据文件出错", "请把下面的原因告诉管理员")
        }
        return "\(what)。\(next)。（\(description)）"
    }

    /// Worth trying again later without anyone doing anything.
    public var transient: Bool {
        switch self {
        case .unavailable, .badResponse, .cancelled: return true
        case .refused(let s, _): return s == 409 || s == 429
        default: return false
        }
    }
}

// MARK: - SyncReport

public struct SyncReport: Sendable {
    public var pushed = 0
    public var pushedDuplicates = 0
    public var refused: [PushResult] = []
    public var retryLater: [PushResult] = []
    public var pulled = 0
    public var pulledDuplicates = 0
    public var conflictsOpened = 0
    public var conflictsClosed = 0
    public var snapshotPages = 0
    public var requests = 0
    public var retries = 0
    public var bytesSent = 0
    public var bytesReceived = 0
    public var clockSetBack = false
    public var hubOffsetMs: Int64?
    /// Edits the hub refused as stamped too far ahead, made again with the corrected clock.
    public var restamped = 0
    /// The hub refused a change of this replica's site as a clone (another copy wrote under the
    /// id first): the replica took a new site id.
    public var siteRenewed = false
    /// Changes the hub refused as clones (another copy of this replica used their ids first),
    /// made again under the new site id.
    public var remade = 0
    /// The hub answered from a new epoch (it was restored from a backup): everything this
    /// replica holds was offered to it again and pulls went back to where its log ended.
    public var hubRestored = false
    /// The hub held a newer schema, and this replica took it (changes kept for it merged).
    public var schemaLearnt: SchemaLearnReport?
    /// Everything was offered and taken, and everything the hub had was received.
    public var complete: Bool { refused.isEmpty && retryLater.isEmpty }
}

// MARK: - SyncOptions

public struct SyncOptions: Sendable {
    public var transport = TransportOptions()
    /// Attempts per request for failures that may pass (no connection, cut, 5xx, 429).
    public var attempts = 6
    /// Backoff between attempts: full jitter over base × 2^attempt, capped.
    public var backoffBase: Double = 1
    public var backoffCap: Double = 60
    /// A push starts with batches of this size and grows them (doubling, up to the maxima)
    /// while each batch is answered within `pushGrowWithin` seconds, and halves them when one
    /// takes longer than four times that: on loopback or a LAN a large push goes in a few
    /// large requests (one transaction, one fsync each on the hub), on a slow link the batch in
    /// flight — re-sent whole when the link is cut — stays small.
    public var pushBatch = 500
    public var pushBatchBytes = 256 << 10
    public var pushBatchMax = SyncProtocol.maxPushChanges
    public var pushBatchBytesMax = 4 << 20
    public var pushGrowWithin: Double = 1
    public var pullBatch = 1000
    public var pullBatchBytes = 512 << 10
    /// Reach the hub at this address instead of the enrolled one for this exchange (the same
    /// hub seen from another network, or through a relay).
    public var hubURL: String?
    /// After a complete sync, at most once a day, superseded history older than this is pruned
    /// (``Replica/pruneHistory(windowMs:requireAcknowledged:)``); 0 never.
    public var historyWindowMs: Int64 = Replica.defaultHistoryWindowMs
    /// Told when the exchange moves on: `push`, then `pull`.
    public var onPhase: (@Sendable (String) -> Void)?
    public init() {}
}

// MARK: - SyncClient

/// Exchanges changes with the hub over HTTP(S): push what the hub lacks, then pull what this
/// replica lacks (a snapshot first when it is new). Each pulled batch is applied together with
/// its cursor, and each pushed batch's acknowledgement moves the push cursor in one transaction,
/// so a transfer cut at any byte resumes where it stopped, re-sending at most the batch in flight.
public final class SyncClient {
    public let replica: Replica
    public let http: CurlHTTPClient
    public var options: SyncOptions
    /// The `X-FieldSync-Client` value this sync sends (``refreshClientReport()``).
    var clientHeader: String?
    private var offsets: [Int64] = []
    /// The hub epoch this replica last synced with; a response naming another stops the
    /// exchange (``HubRestored``) so it starts over from what the restored hub holds.
    var expectedEpoch: String?
    /// The epoch the last response named.
    var seenEpoch: HubEpoch?
    /// The schema version the last response named (``SyncProtocol/hubSchemaHeader``).
    var seenSchema: Int?

    public init(replica: Replica, http: CurlHTTPClient = CurlHTTPClient(), options: SyncOptions = SyncOptions()) {
        self.replica = replica
        self.http = http
        self.options = options
    }

    // MARK: Enrolment

    /// Trades a one-time code for a device token and stores it in the replica.
    public static func enroll(replica: Replica, hubURL: String, code: String, caFile: String?, options: SyncOptions = SyncOptions()) throws -> EnrollResponse {
        let client = SyncClient(replica: replica, options: options)
        client.options.transport.caFile = caFile
        let url = hubURL.hasSuffix("/") ? String(hubURL.dropLast()) : hubURL
        let body = replica.enrolmentRequest(code: code).json.compactText
        var report = SyncReport()
        let reply = try client.call(HTTPExchange(method: "POST", url: url + "/v1/enroll", headers: [("Content-Type", "application/json")],
                                                 body: Array(body.utf8)), report: &report)
        let json = try client.decode(reply)
        let resp: EnrollResponse
        do { resp = try EnrollResponse(json: json) } catch { throw SyncError.badResponse(error.description) }
        do {
            try replica.enroll(hubURL: url, response: resp, caCert: caFile)
            if let e = client.seenEpoch { try replica.noteHubEpoch(e) }
        } catch let e as ReplicaError { throw SyncError.local(e) }
        try client.applyClockOffset(&report)
        return resp
    }

    // MARK: One round

    /// One full exchange. Records the outcome in the replica (a failure is never recorded as success).
    @discardableResult
    public func sync() throws -> SyncReport {
        var state = try enrolledState()
        var report = SyncReport()
        let started = replica.wallClock()
        expectedEpoch = state.hubEpoch
        seenEpoch = nil
        do {
            do {
                try exchange(state, &report)
            } catch let restored as HubRestored {
                // The hub was restored from a backup since this laptop last synced: offer it
                // everything again and pull from where its log ended, then exchange as usual.
                try local { try replica.noteHubEpoch(restored.epoch) }
                report.hubRestored = true
                expectedEpoch = restored.epoch.id
                state = try local { try currentState() } ?? state
                do { try exchange(state, &report) } catch is HubRestored {
                    throw SyncError.badResponse("the hub changed its epoch twice during one sync; try again")
                }
            }
            if state.hubEpoch == nil, let e = seenEpoch { try local { try replica.noteHubEpoch(e) } }
            // Everything is at the hub now: old superseded history may go (issue 12 point 4).
            if report.complete, options.historyWindowMs > 0 { _ = try? replica.pruneHistoryIfDue(windowMs: options.historyWindowMs) }
            try applyClockOffset(&report)
            try local { try replica.recordSyncAttempt(at: started, error: report.complete ? nil : summary(report)) }
            return report
        } catch let e as SyncError {
            try? replica.recordSyncAttempt(at: started, error: e.explained)
            throw e
        }
    }

    /// Push, then pull.
    func exchange(_ state: SyncState, _ report: inout SyncReport) throws {
        try bindSite(state, &report)
        refreshClientReport()
        options.onPhase?("push")
        try push(state, &report)
        try learnSchema(state, &report)
        refreshClientReport()
        options.onPhase?("pull")
        if report.complete { try local { try replica.recordSyncPhase(pull: false, at: replica.wallClock()) } }
        try pull(&report)
        try local { try replica.recordSyncPhase(pull: true, at: replica.wallClock()) }
    }

    /// A response came from another epoch of the hub than the one this replica synced with.
    struct HubRestored: Error {
        let epoch: HubEpoch
    }

    // MARK: Schema

    /// Takes the hub's schema when it is newer than the one held (docs/operations.md §11): after
    /// the push (which any schema may make) and before reading any page pulled, so what is pulled
    /// is read with it; changes kept for it merge in place. Nothing when the hub holds no newer one.
    func learnSchema(_ state: SyncState, _ report: inout SyncReport) throws {
        guard let v = seenSchema, v > Schema.current.version else { return }
        let reply = try call(HTTPExchange(method: "GET", url: state.hubURL + "/v1/schema", headers: authHeaders(state)), report: &report)
        let schema: Schema
        do { schema = try Schema(document: try decode(reply)) } catch let e as InputError {
            throw SyncError.badResponse("the hub's schema document is invalid: \(e)")
        }
        report.schemaLearnt = try local { try replica.learn(schema) }
    }

    // MARK: Pruned history

    /// Fetches from the hub the text of a record's changes this replica pruned
    /// (``Replica/prunedChanges(of:)``) and puts it back, so its history shows every value
    /// again (until a later pruning pass). Returns how many came back.
    public func restorePrunedHistory(of record: String) throws -> Int {
        let state = try enrolledState()
        let ids = try local { try replica.prunedChanges(of: record) }
        var report = SyncReport()
        var restored = 0
        for start in stride(from: 0, to: ids.count, by: SyncProtocol.maxLookupIDs) {
            let part = ids[start..<min(ids.count, start + SyncProtocol.maxLookupIDs)]
            let url = state.hubURL + "/v1/changes/lookup?ids=" + part.map(\.description).joined(separator: ",")
            let reply = try call(HTTPExchange(method: "GET", url: url, headers: authHeaders(state)), report: &report)
            let page = try self.page(reply)
            restored += try local { try replica.restorePruned(page) }
        }
        return restored
    }

    // MARK: Bundle upload

    /// Uploads a bundle file by name (`PUT /v1/bundles/{name}`, sync.md §8) with this replica's
    /// device token: the hub keeps it in the device's inbox and merges its changes as a push.
    /// Returns the hub's answer (counts and one result per change).
    public func uploadBundle(path: String, name: String) throws -> JSONValue {
        let state = try enrolledState()
        guard let data = FileManager.default.contents(atPath: path) else {
            throw SyncError.local(.badBundle(path: path, reason: "cannot read the file (does it exist, may it be read?)"))
        }
        guard data.count <= SyncProtocol.maxRequestBytes else {
            throw SyncError.local(.badBundle(path: path, reason: "\(data.count) bytes: the hub takes at most \(SyncProtocol.maxRequestBytes) per upload; export in parts with --since"))
        }
        let encoded = name.addingPercentEncoding(withAllowedCharacters: CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")) ?? name
        var report = SyncReport()
        let reply = try call(HTTPExchange(method: "PUT", url: state.hubURL + "/v1/bundles/" + encoded,
                                          headers: authHeaders(state) + [("Content-Type", "application/octet-stream")], body: [UInt8](data)),
                             report: &report, accept: [201])
        return try decode(reply)
    }

    func summary(_ r: SyncReport) -> String {
        var parts: [String] = []
        if !r.refused.isEmpty { parts.append("the hub refused \(r.refused.count) change(s): \(r.refused[0].code ?? ""): \(r.refused[0].reason ?? "")") }
        if !r.retryLater.isEmpty { parts.append("\(r.retryLater.count) change(s) wait for a later sync: \(r.retryLater[0].reason ?? "")") }
        return parts.joined(separator: "; ")
    }

    // MARK: Site binding

    /// When this replica writes under a site id the hub has not bound to this device (it took a
    /// new id since enrolling: an upgrade from before signed provenance, or a lost secret file),
    /// names it to the hub with proof of its key before pushing changes under it.
    func bindSite(_ state: SyncState, _ report: inout SyncReport) throws {
        guard state.boundSite != replica.site else { return }
        let body = replica.siteBinding(device: state.device).json.compactText
        _ = try call(HTTPExchange(method: "POST", url: state.hubURL + "/v1/device/sites",
                                  headers: authHeaders(state) + [("Content-Type", "application/json")], body: Array(body.utf8)), report: &report)
        try local { try replica.recordBinding() }
    }

    // MARK: Push

    func push(_ state: SyncState, _ report: inout SyncReport) throws {
        var cursor = state.pushCursor
        var batchSize = max(1, options.pushBatch), batchBytes = max(1, options.pushBatchBytes)
        while true {
            let batch = try local { try replica.pendingPush(after: cursor, limit: batchSize, maxBytes: batchBytes) }
            guard !batch.isEmpty else { return }
            let started = Date()
            // The token proves this device's own changes; relayed ones carry the manifests that
            // prove them (changeset.md §7). The hub takes names only for the device's own site.
            let relayed = batch.filter { $0.id.site != replica.site }.map(\.seq)
            let manifests = try local { try replica.manifests(proving: relayed) }.map { $0.json.compactText }
            let text = PushBody.text(site: replica.site, siteName: replica.siteName, sites: [replica.site: replica.siteName],
                                     changeTexts: batch.map(\.body), manifests: manifests)
            let reply = try call(HTTPExchange(method: "POST", url: state.hubURL + "/v1/changes",
                                              headers: authHeaders(state) + [("Content-Type", "application/json"), ("Content-Encoding", "gzip")],
                                              body: Gzip.compress(Array(text.utf8))), report: &report)
            if reply.status == 413 && batchSize > 1 {
                batchSize = max(1, batchSize / 4)
                batchBytes = max(1, batchBytes / 4)
                continue
            }
            let took = Date().timeIntervalSince(started)
            /// Twice `x`, at most `cap` (unchanged when it is at or above it already).
            func grown(_ x: Int, _ cap: Int) -> Int { x >= cap ? x : (x > cap / 2 ? cap : x * 2) }
            if took < options.pushGrowWithin {
                batchSize = grown(batchSize, options.pushBatchMax)
                batchBytes = grown(batchBytes, options.pushBatchBytesMax)
            } else if took > 4 * options.pushGrowWithin {
                batchSize = max(min(options.pushBatch, batchSize), batchSize / 2)
                batchBytes = max(min(options.pushBatchBytes, batchBytes), batchBytes / 2)
            }
            let resp: PushResponse
            do { resp = try PushResponse(json: try decode(reply)) } catch let e as InputError { throw SyncError.badResponse(e.description) }
            let (refused, retry) = try local { try replica.recordPush(batch, results: resp.results) }
            report.pushed += resp.results.filter { $0.status == .accepted }.count
            report.pushedDuplicates += resp.results.filter { $0.status == .duplicate }.count
            // Stamped too far ahead: correct the clock by the hub's, then make those edits again
            // (they are not lost: the re-stamped changes go out in the next batches).
            let ahead = refused.filter { $0.code == "clock_ahead" }
            if !ahead.isEmpty {
                try applyClockOffset(&report)
                for r in ahead {
                    guard let lc = batch.first(where: { $0.id.description == r.id }), let c = lc.change else { continue }
                    if try local({ try replica.restamp(c) }) != nil { report.restamped += 1 }
                }
            }
            // Another copy of this replica wrote under its site id first (a copy the home check
            // could not see, such as a disk image restored in place): take a new id at once, so
            // nothing written from now on collides. The refused changes stay listed as refused.
            // What it wrote under the shared ids is taken out and made again under the new id
            // (the hub keeps the other copy's changes): nothing is lost or counted twice.
            let clones = refused.filter { $0.code == "clone" && ChangeID($0.id)?.site == replica.site }
            var remade = Set<String>()
            if !clones.isEmpty {
                try local { _ = try replica.takeNewSite() }
                report.siteRenewed = true
                try local { report.remade += try replica.remakeClones(clones.compactMap { ChangeID($0.id) }).count }
                // The hub takes changes under the new id once it is bound to this device.
                if let st = try local({ try currentState() }) { try bindSite(st, &report) }
                // What the other copy pushed from this device (the work this one lost, if it is
                // an older image) never comes back in pulls, which leave out a device's own
                // pushes: a snapshot brings it.
                try local { try replica.restartFromSnapshot() }
                remade = Set(clones.map(\.id))
            }
            report.refused += refused.filter { $0.code != "clock_ahead" && !remade.contains($0.id) }
            report.retryLater += retry
            let next = try local { try replica.syncState()?.pushCursor ?? cursor }
            if next == cursor { return }  // the first change must wait (the hub said: try later)
            cursor = next
        }
    }

    // MARK: Pull

    func pull(_ report: inout SyncReport) throws {
        guard var state = try local({ try currentState() }) else { throw SyncError.notEnrolled }
        if !state.snapshotDone && state.pullCursor == 0 {
            try snapshot(state, &report)
            state = try local { try currentState() } ?? state
        }
        var cursor = state.pullCursor
        var received = report.snapshotPages > 0
        defer {
            // Tell the hub how far this replica got, so its device list shows no stale backlog.
            if received, (try? ack(state, cursor, &report)) == nil {}
        }
        while true {
            let url = "\(state.hubURL)/v1/changes?after=\(cursor)&limit=\(options.pullBatch)&maxBytes=\(options.pullBatchBytes)"
            let reply = try call(HTTPExchange(method: "GET", url: url, headers: authHeaders(state)), report: &report, accept: [410])
            if reply.status == 410 {
                // Behind the hub's history horizon: start over from a snapshot.
                try local { try replica.restartFromSnapshot() }
                try snapshot(state, &report)
                cursor = try local { try replica.syncState()?.pullCursor ?? 0 }
                continue
            }
            try learnSchema(state, &report)  // a push with nothing to send asked nothing
            let page = try self.page(reply)
            let applied = try local { try replica.applyPulled(page) }
            count(applied, &report)
            if !page.decoded.isEmpty { received = true }
            cursor = page.cursor
            if !page.more { return }
        }
    }

    /// The stored sync state with this exchange's hub address, the transfers set to trust its
    /// CA certificate; `notEnrolled` when there is none.
    func enrolledState() throws -> SyncState {
        guard let s = try local({ try currentState() }) else { throw SyncError.notEnrolled }
        options.transport.caFile = s.caCert
        return s
    }

    /// The stored sync state, with this exchange's hub address.
    func currentState() throws -> SyncState? {
        guard var s = try replica.syncState() else { return nil }
        if let u = options.hubURL { s.hubURL = u.hasSuffix("/") ? String(u.dropLast()) : u }
        return s
    }

    func ack(_ state: SyncState, _ cursor: Int64, _ report: inout SyncReport) throws {
        let body = JSONValue.object(JSONObject([("pullCursor", .int(cursor))])).compactText
        _ = try call(HTTPExchange(method: "POST", url: state.hubURL + "/v1/ack", headers: authHeaders(state) + [("Content-Type", "application/json")],
                                  body: Array(body.utf8)), report: &report)
    }

    func snapshot(_ state: SyncState, _ report: inout SyncReport) throws {
        var next = try local { try replica.syncState()?.snapshotNext }
        // Its own changes the hub has from it already need not come back (a new laptop's first
        // sync pushes its work, then takes the snapshot).
        let held = try local { try replica.heldForSnapshot() }.map { "\($0.key.hex):\($0.value)" }.joined(separator: ",")
        repeat {
            var url = "\(state.hubURL)/v1/snapshot?limit=\(options.pullBatch)&maxBytes=\(options.pullBatchBytes)"
            if !held.isEmpty { url += "&held=" + held }
            if let n = next { url += "&after=" + (n.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? n) }
            let reply = try call(HTTPExchange(method: "GET", url: url, headers: authHeaders(state)), report: &report)
            try learnSchema(state, &report)  // before reading a page that may need it
            let page = try self.page(reply)
            count(try local { try replica.applySnapshotPage(page) }, &report)
            report.snapshotPages += 1
            next = page.next
        } while next != nil
    }

    func count(_ a: ApplyReport, _ report: inout SyncReport) {
        report.pulled += a.applied + a.obsolete + a.held
        report.pulledDuplicates += a.duplicates
        report.conflictsOpened += a.conflictsOpened
        report.conflictsClosed += a.conflictsClosed
    }

    func page(_ reply: HTTPReply) throws -> ChangePage {
        do { return try ChangePage(json: try decode(reply)) } catch let e as InputError {
            throw SyncError.badResponse("a page of changes from the hub is invalid: \(e)")
        }
    }

    // MARK: Requests

    func authHeaders(_ s: SyncState) -> [(String, String)] {
        var h = [("Authorization", "Bearer \(s.token)"), (SyncProtocol.deviceTimeHeader, String(replica.wallClock()))]
        // What this laptop runs and holds (sync.md §2): read at the start of a sync and after its
        // push (``refreshClientReport()``), not once per page.
        if clientHeader == nil { refreshClientReport() }
        if let c = clientHeader { h.append((SyncProtocol.clientHeader, c)) }
        return h
    }

    func refreshClientReport() {
        clientHeader = (try? replica.clientReport())?.header
    }

    /// Sends a request, retrying what may pass: no connection, a cut transfer, 5xx, 429, with
    /// exponential backoff and full jitter, or the hub's Retry-After. 401 and 403 are thrown at once.
    func call(_ req: HTTPExchange, report: inout SyncReport, accept: Set<Int> = []) throws -> HTTPReply {
        var attempt = 0
        while true {
            report.requests += 1
            let reply: HTTPReply
            // The hub's clock is compared with the clock this replica stamps edits with.
            let sentAt = replica.wallClock()
            do {
                reply = try http.perform(req, options: options.transport)
            } catch {
                if case .cancelled = error { throw SyncError.cancelled }
                guard error.retryable, attempt + 1 < options.attempts else { throw SyncError.unavailable(error.description) }
                try pause(backoff(attempt))
                attempt += 1
                report.retries += 1
                continue
            }
            report.bytesSent += reply.bytesSent
            report.bytesReceived += reply.bytesReceived
            // The hub's clock, when it is a plausible one (a reading in 1…2^47−1 ms, as every clock
            // here): a header at Int64's ends must not overflow the arithmetic below.
            if let t = reply.headers[SyncProtocol.hubTimeHeader.lowercased()].flatMap(Int64.init), t > 0, t <= HybridTimestamp.maxMillis {
                let mine = sentAt / 2 + replica.wallClock() / 2
                offsets.append(t - mine)
            }
            if let v = reply.headers[SyncProtocol.hubSchemaHeader.lowercased()].flatMap(Int.init), v >= 1, v <= ChangeCodec.maxSchemaVersion {
                seenSchema = v
            }
            if let e = reply.headers[SyncProtocol.hubEpochHeader.lowercased()].flatMap(HubEpoch.parse) {
                seenEpoch = e
                if let known = expectedEpoch, known != e.id { throw HubRestored(epoch: e) }
            }
            if reply.status == 200 || accept.contains(reply.status) { return reply }
            let body = (try? JSONValue.parse(bytes: reply.body)).flatMap(HubErrorBody.init(json:))
                ?? HubErrorBody(code: "http_\(reply.status)", message: String(decoding: reply.body.prefix(200), as: UTF8.self))
            switch reply.status {
            case 401: throw SyncError.unauthorized(body)
            case 403: throw SyncError.forbidden(body)
            case 413: return reply
            case 429, 500...599:
                guard attempt + 1 < options.attempts else { throw SyncError.unavailable("HTTP \(reply.status): \(body.message)") }
                let wait = reply.headers["retry-after"].flatMap(Self.retryAfterSeconds) ?? backoff(attempt)
                try pause(min(wait, 900))
                attempt += 1
                report.retries += 1
            default:
                throw SyncError.refused(status: reply.status, body)
            }
        }
    }

    func backoff(_ attempt: Int) -> Double {
        let cap = min(options.backoffCap, options.backoffBase * pow(2, Double(attempt)))
        return Double.random(in: 0...cap)
    }

    /// Retry-After: seconds, or an HTTP date.
    static func retryAfterSeconds(_ v: String) -> Double? {
        if let s = Double(v.trimmingCharacters(in: .whitespaces)), s >= 0 { return s }
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        return f.date(from: v).map { max(0, $0.timeIntervalSinceNow) }
    }

    /// Sleeps in short steps so that cancelling takes effect promptly.
    func pause(_ seconds: Double) throws {
        var left = seconds
        while left > 0 {
            if http.isCancelled { throw SyncError.cancelled }
            let step = min(left, 0.2)
            Thread.sleep(forTimeInterval: step)
            left -= step
        }
    }

    func decode(_ reply: HTTPReply) throws -> JSONValue {
        do { return try JSONValue.parse(bytes: reply.body) } catch { throw SyncError.badResponse("not JSON: \(error)") }
    }

    func applyClockOffset(_ report: inout SyncReport) throws {
        guard !offsets.isEmpty else { return }
        let median = offsets.sorted()[offsets.count / 2]
        report.hubOffsetMs = median
        report.clockSetBack = try local { try replica.adjustClock(hubOffset: median) }
        offsets = []
    }

    func local<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch let e as ReplicaError { throw SyncError.local(e) }
    }
}

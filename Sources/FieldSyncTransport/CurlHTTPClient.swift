import CCurl
import FieldSyncCore
import Foundation
import Synchronization

// MARK: - Requests and responses

public struct HTTPExchange: Sendable {
    public var method: String
    public var url: String
    public var headers: [(String, String)]
    public var body: [UInt8]?

    public init(method: String, url: String, headers: [(String, String)] = [], body: [UInt8]? = nil) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
    }
}

public struct HTTPReply: Sendable {
    public var status: Int
    /// Header names in lower case.
    public var headers: [String: String]
    /// The body, already decompressed if the server sent gzip.
    public var body: [UInt8]
    public var bytesSent: Int
    public var bytesReceived: Int
    /// Wall-clock milliseconds at the start and end of the exchange (for the hub's clock offset).
    public var startedAt: Int64
    public var endedAt: Int64
}

// MARK: - TransportError

/// Why an exchange did not complete, sorted by what can be done about it.
public enum TransportError: Error, Sendable, CustomStringConvertible {
    /// No connection: host unknown, refused, network down.
    case cannotConnect(String)
    /// Too slow: the connect or low-speed timeout ran out.
    case timedOut(String)
    /// The connection broke during the exchange.
    case interrupted(String)
    /// The TLS handshake or certificate check failed.
    case tls(String)
    /// Stopped on request (the daemon is shutting down).
    case cancelled
    case other(String)

    public var retryable: Bool {
        switch self {
        case .cannotConnect, .timedOut, .interrupted: return true
        case .tls, .cancelled, .other: return false
        }
    }

    public var description: String {
        switch self {
        case .cannotConnect(let s): return "cannot reach the hub: \(s)"
        case .timedOut(let s): return "the link is too slow or stalled: \(s)"
        case .interrupted(let s): return "the connection broke during the transfer: \(s)"
        case .tls(let s): return "TLS failed: \(s)"
        case .cancelled: return "stopped"
        case .other(let s): return s
        }
    }
}

// MARK: - TransportOptions

public struct TransportOptions: Sendable {
    /// Give up connecting after this many seconds.
    public var connectTimeout: Int = 20
    /// Abort when fewer than `lowSpeedBytes` per second flow for `lowSpeedSeconds`.
    public var lowSpeedBytes: Int = 16
    public var lowSpeedSeconds: Int = 60
    /// A CA certificate file for a hub with a private certificate.
    public var caFile: String?
    /// Show a progress line on standard error for transfers that take a while.
    public var progress: Bool = true

    public init() {}
}

// MARK: - CurlHTTPClient

/// HTTP over libcurl's easy interface.
///
/// Proxies come from the usual environment variables, which libcurl reads itself:
/// `http_proxy`, `https_proxy`, `all_proxy` and `no_proxy`. Responses in gzip are decompressed.
/// A transfer can be cancelled from another thread with ``cancel()``.
///
/// One client keeps its connection to the hub open between requests (HTTP keep-alive: libcurl
/// keeps the connections of an easy handle that is reset, not cleaned up, between transfers), so
/// the requests of a sync — push, pull, acknowledgement — pay for one TCP handshake, not one
/// each: on a village link with 600 ms of round trip that is most of a small sync's time
/// (docs/benchmarks.md, "shaped link"). A connection the hub closed meanwhile is noticed and
/// opened again by libcurl.
public final class CurlHTTPClient: @unchecked Sendable {
    private static let globalInit: Bool = { curl_global_init(Int(CURL_GLOBAL_ALL)) == CURLE_OK }()
    private let stop = Atomic<Bool>(false)
    /// The easy handle kept between transfers, with its open connection; nil while one is in use
    /// (a second transfer at the same time uses a handle of its own). Guarded by `keptLock`.
    private var kept: UnsafeMutableRawPointer?
    private let keptLock = NSLock()

    public init() { _ = Self.globalInit }

    deinit {
        if let kept { curl_easy_cleanup(kept) }
    }

    /// The kept handle, reset to defaults (its connections stay open), or a new one.
    private func takeHandle() -> UnsafeMutableRawPointer? {
        keptLock.lock()
        let h = kept
        kept = nil
        keptLock.unlock()
        guard let h else { return curl_easy_init() }
        curl_easy_reset(h)
        return h
    }

    /// Keeps `h` for the next transfer, or cleans it up when another is kept already.
    private func giveBack(_ h: UnsafeMutableRawPointer) {
        keptLock.lock()
        let keep = kept == nil
        if keep { kept = h }
        keptLock.unlock()
        if !keep { curl_easy_cleanup(h) }
    }

    /// Makes the transfer in progress (and any later one) stop with ``TransportError/cancelled``.
    public func cancel() { stop.store(true, ordering: .relaxed) }
    public var isCancelled: Bool { stop.load(ordering: .relaxed) }

    /// Collects what libcurl hands the callbacks; passed to them as an opaque pointer.
    final class Transfer {
        var body: [UInt8] = []
        var headers: [String: String] = [:]
        let client: CurlHTTPClient
        let progress: ProgressLine?
        init(client: CurlHTTPClient, progress: ProgressLine?) {
            self.client = client
            self.progress = progress
        }
    }

    public func perform(_ req: HTTPExchange, options: TransportOptions) throws(TransportError) -> HTTPReply {
        if isCancelled { throw .cancelled }
        guard let h = takeHandle() else { throw .other("libcurl could not start a transfer") }
        defer { giveBack(h) }
        let errorBuffer = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE) + 1)
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
        defer { errorBuffer.deallocate() }
        let transfer = Transfer(client: self, progress: options.progress ? ProgressLine(label: req.method == "GET" ? "↓" : "↑") : nil)
        let ctx = Unmanaged.passUnretained(transfer).toOpaque()
        var list: UnsafeMutablePointer<curl_slist>? = nil
        for (k, v) in req.headers { list = curl_slist_append(list, "\(k): \(v)") }
        list = curl_slist_append(list, "Expect:")  // no 100-continue round trip on slow links
        defer { curl_slist_free_all(list) }

        fs_curl_set_string(h, CURLOPT_URL, req.url)
        fs_curl_set_long(h, CURLOPT_NOSIGNAL, 1)
        fs_curl_set_pointer(h, CURLOPT_ERRORBUFFER, errorBuffer)
        fs_curl_set_string(h, CURLOPT_USERAGENT, "fieldsync/1 libcurl")
        fs_curl_set_string(h, CURLOPT_ACCEPT_ENCODING, "")  // every encoding libcurl decodes, gzip among them
        fs_curl_set_long(h, CURLOPT_CONNECTTIMEOUT_MS, options.connectTimeout * 1000)
        fs_curl_set_long(h, CURLOPT_LOW_SPEED_LIMIT, options.lowSpeedBytes)
        fs_curl_set_long(h, CURLOPT_LOW_SPEED_TIME, options.lowSpeedSeconds)
        fs_curl_set_slist(h, CURLOPT_HTTPHEADER, list)
        if let ca = options.caFile { fs_curl_set_string(h, CURLOPT_CAINFO, ca) }
        if req.method == "POST" || (req.method != "GET" && req.body != nil) {
            // A body goes as POST fields; another method with a body (PUT) names itself below.
            let body = req.body ?? []
            fs_curl_set_long(h, CURLOPT_POST, 1)
            fs_curl_set_off(h, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(body.count))
            body.withUnsafeBufferPointer { b in
                // COPYPOSTFIELDS copies the bytes, so the buffer need not outlive this call.
                _ = fs_curl_set_pointer(h, CURLOPT_COPYPOSTFIELDS, UnsafeMutableRawPointer(mutating: b.baseAddress ?? UnsafePointer(bitPattern: 1)!))
            }
            if req.method != "POST" { fs_curl_set_string(h, CURLOPT_CUSTOMREQUEST, req.method) }
        } else if req.method != "GET" {
            fs_curl_set_string(h, CURLOPT_CUSTOMREQUEST, req.method)
        }
        fs_curl_set_data_cb(h, CURLOPT_WRITEFUNCTION) { ptr, size, n, ud in
            let t = Unmanaged<Transfer>.fromOpaque(ud!).takeUnretainedValue()
            let count = size * n
            if let ptr { t.body.append(contentsOf: UnsafeRawBufferPointer(start: ptr, count: count)) }
            return count
        }
        fs_curl_set_pointer(h, CURLOPT_WRITEDATA, ctx)
        fs_curl_set_data_cb(h, CURLOPT_HEADERFUNCTION) { ptr, size, n, ud in
            let t = Unmanaged<Transfer>.fromOpaque(ud!).takeUnretainedValue()
            let count = size * n
            guard let ptr else { return count }
            let line = String(decoding: UnsafeRawBufferPointer(start: ptr, count: count), as: UTF8.self)
            if line.hasPrefix("HTTP/") {
                t.headers = [:]  // a new response (after a redirect or 100): start over
            } else if let colon = line.firstIndex(of: ":") {
                let name = line[..<colon].lowercased()
                let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespacesAndNewlines)
                t.headers[name] = value
            }
            return count
        }
        fs_curl_set_pointer(h, CURLOPT_HEADERDATA, ctx)
        fs_curl_set_long(h, CURLOPT_NOPROGRESS, 0)
        fs_curl_set_xferinfo_cb(h) { ud, dlTotal, dlNow, ulTotal, ulNow in
            let t = Unmanaged<Transfer>.fromOpaque(ud!).takeUnretainedValue()
            if t.client.isCancelled { return 1 }  // non-zero aborts the transfer
            t.progress?.update(down: Int64(dlNow), downTotal: Int64(dlTotal), up: Int64(ulNow), upTotal: Int64(ulTotal))
            return 0
        }
        fs_curl_set_pointer(h, CURLOPT_XFERINFODATA, ctx)

        let started = Self.wallMillis()
        let rc = curl_easy_perform(h)
        let ended = Self.wallMillis()
        transfer.progress?.finish()
        let message = String(cString: errorBuffer).isEmpty ? String(cString: curl_easy_strerror(rc)) : String(cString: errorBuffer)
        switch rc {
        case CURLE_OK: break
        case CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY, CURLE_COULDNT_CONNECT: throw .cannotConnect(message)
        case CURLE_OPERATION_TIMEDOUT: throw .timedOut(message)
        case CURLE_PARTIAL_FILE, CURLE_RECV_ERROR, CURLE_SEND_ERROR, CURLE_GOT_NOTHING, CURLE_BAD_CONTENT_ENCODING, CURLE_HTTP2, CURLE_HTTP2_STREAM:
            throw .interrupted(message)
        case CURLE_ABORTED_BY_CALLBACK: throw .cancelled
        case CURLE_SSL_CONNECT_ERROR, CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CERTPROBLEM, CURLE_SSL_CIPHER, CURLE_SSL_CACERT_BADFILE:
            throw .tls(message)
        default: throw .other("\(message) (libcurl \(rc.rawValue))")
        }
        var status = 0
        fs_curl_get_long(h, CURLINFO_RESPONSE_CODE, &status)
        var up: curl_off_t = 0, down: curl_off_t = 0
        fs_curl_get_off(h, CURLINFO_SIZE_UPLOAD_T, &up)
        fs_curl_get_off(h, CURLINFO_SIZE_DOWNLOAD_T, &down)
        return HTTPReply(status: status, headers: transfer.headers, body: transfer.body, bytesSent: Int(up), bytesReceived: Int(down),
                         startedAt: started, endedAt: ended)
    }

    static func wallMillis() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }
}

// MARK: - ProgressLine

/// A progress line on standard error for transfers that take more than a second: redrawn in
/// place on a terminal, one line every 5 seconds otherwise.
final class ProgressLine {
    let label: String
    let start = DispatchTime.now().uptimeNanoseconds
    var lastDraw: UInt64 = 0
    var drawn = false
    let tty = isatty(2) != 0

    init(label: String) { self.label = label }

    func update(down: Int64, downTotal: Int64, up: Int64, upTotal: Int64) {
        let now = DispatchTime.now().uptimeNanoseconds
        let elapsed = Double(now - start) / 1e9
        guard elapsed > 1, now - lastDraw > (tty ? 200_000_000 : 5_000_000_000) else { return }
        lastDraw = now
        let moved = up + down
        let rate = Double(moved) / elapsed
        var parts: [String] = []
        if upTotal > 0 || up > 0 { parts.append("↑ \(Self.size(up))\(upTotal > 0 ? " / \(Self.size(upTotal))" : "")") }
        if downTotal > 0 || down > 0 { parts.append("↓ \(Self.size(down))\(downTotal > 0 ? " / \(Self.size(downTotal))" : "")") }
        let text = "同步中 syncing: " + parts.joined(separator: "  ") + "  \(Self.size(Int64(rate)))/s  \(Int(elapsed)) s"
        FileHandle.standardError.write(Data((tty ? "\r\u{1B}[K" + text : text + "\n").utf8))
        drawn = true
    }

    func finish() {
        if drawn && tty { FileHandle.standardError.write(Data("\n".utf8)) }
    }

    static func size(_ b: Int64) -> String {
        b < 1024 ? "\(b) B" : b < 1 << 20 ? String(format: "%.1f KiB", Double(b) / 1024) : String(format: "%.1f MiB", Double(b) / 1_048_576)
    }
}

import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTPTypes

// MARK: - ConnectionLimits

/// What one client connection may cost the hub (docs/security.md): sockets that send nothing,
/// send a request head a byte at a time, or trickle a body are closed, and one address may hold
/// only so many connections at once — so idle or slow sockets cannot lock others out.
public struct ConnectionLimits: Sendable {
    /// A request head must arrive whole within this time of the connection opening (or of the
    /// previous response on a kept-alive connection): this is also the idle timeout.
    public var headTimeout: TimeAmount
    /// A body must make progress at least this often.
    public var bodyIdleTimeout: TimeAmount
    /// After `bodyGrace`, a body must average at least this many bytes a second: far below a
    /// 64 kbit/s village link (8 KB/s), far above a trickle that would hold a socket for hours.
    public var minBodyBytesPerSecond: Int
    public var bodyGrace: TimeAmount
    /// Connections one client address may hold at once.
    public var maxConnectionsPerAddress: Int

    public init(headTimeout: TimeAmount = .seconds(10), bodyIdleTimeout: TimeAmount = .seconds(30), minBodyBytesPerSecond: Int = 512,
                bodyGrace: TimeAmount = .seconds(30), maxConnectionsPerAddress: Int = 64) {
        self.headTimeout = headTimeout
        self.bodyIdleTimeout = bodyIdleTimeout
        self.minBodyBytesPerSecond = minBodyBytesPerSecond
        self.bodyGrace = bodyGrace
        self.maxConnectionsPerAddress = maxConnectionsPerAddress
    }
}

// MARK: - ConnectionCounter

/// Open connections per client address.
final class ConnectionCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var open: [String: Int] = [:]
    private var total = 0
    let limit: Int
    /// Told the number of open connections whenever it changes (the metrics gauge).
    let onChange: @Sendable (Int) -> Void

    init(limit: Int, onChange: @escaping @Sendable (Int) -> Void = { _ in }) {
        self.limit = limit
        self.onChange = onChange
    }

    /// Counts a new connection from `address`, or refuses it (false) when that address is at the limit.
    func take(_ address: String) -> Bool {
        lock.withLock {
            let n = open[address, default: 0]
            guard n < limit else { return false }
            open[address] = n + 1
            total += 1
            onChange(total)
            return true
        }
    }

    func release(_ address: String) {
        lock.withLock {
            let n = (open[address] ?? 1) - 1
            open[address] = n > 0 ? n : nil
            total = max(0, total - 1)
            onChange(total)
        }
    }

    func count(_ address: String) -> Int { lock.withLock { open[address, default: 0] } }
}

// MARK: - GuardedChannel

/// A server child channel (HTTP/1, or TLS around it) that enforces ``ConnectionLimits``: the
/// per-address cap when a connection opens, the timeouts through ``RequestTimeouts``.
struct GuardedChannel<Inner: ServerChildChannel>: ServerChildChannel {
    typealias Value = Inner.Value
    let inner: Inner
    let counter: ConnectionCounter
    let logger: Logger

    struct TooManyConnections: Error {}

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        let address = channel.remoteAddress?.ipAddress ?? "unknown"
        guard counter.take(address) else {
            self.logger.warning("security: connection from \(address) refused: it holds \(counter.limit) already")
            channel.close(promise: nil)
            return channel.eventLoop.makeFailedFuture(TooManyConnections())
        }
        let counter = self.counter
        channel.closeFuture.whenComplete { _ in counter.release(address) }
        return inner.setup(channel: channel, logger: logger)
    }

    func handle(value: Value, logger: Logger) async {
        await inner.handle(value: value, logger: logger)
    }
}

// MARK: - RequestTimeouts

/// Closes a connection whose request head does not arrive in time (an idle or slowloris
/// socket) or whose body stalls or trickles (``ConnectionLimits``). While the hub works on a
/// request, no timeout runs: slowness there is the hub's, not the client's.
final class RequestTimeouts: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    enum Phase {
        case awaitingHead(since: NIODeadline)
        case readingBody(since: NIODeadline, last: NIODeadline, bytes: Int)
        case handling
    }

    let limits: ConnectionLimits
    let logger: Logger
    var phase: Phase = .awaitingHead(since: .now())
    /// The hub answered before the request's body had all arrived (a refusal): when the body
    /// ends, the connection waits for its next request head, not for an answer.
    var answeredEarly = false
    var timer: RepeatedTask?

    init(limits: ConnectionLimits, logger: Logger) {
        self.limits = limits
        self.logger = logger
    }

    func handlerAdded(context: ChannelHandlerContext) {
        phase = .awaitingHead(since: .now())
        let tick = min(TimeAmount.seconds(1), .nanoseconds(limits.headTimeout.nanoseconds / 4))
        let ctx = NIOLoopBound(context, eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleRepeatedTask(initialDelay: tick, delay: tick) { [weak self] _ in
            self?.check(ctx.value)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let now = NIODeadline.now()
        switch unwrapInboundIn(data) {
        case .head: phase = .readingBody(since: now, last: now, bytes: 0)
        case .body(let b):
            if case .readingBody(let since, _, let bytes) = phase { phase = .readingBody(since: since, last: now, bytes: bytes + b.readableBytes) }
        case .end:
            phase = answeredEarly ? .awaitingHead(since: now) : .handling
            answeredEarly = false
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) {
            switch phase {
            case .handling: phase = .awaitingHead(since: .now())
            case .readingBody: answeredEarly = true
            case .awaitingHead: break
            }
        }
        context.write(data, promise: promise)
    }

    func check(_ context: ChannelHandlerContext) {
        let now = NIODeadline.now()
        var why: String?
        switch phase {
        case .awaitingHead(let since) where now - since > limits.headTimeout:
            why = "no complete request head within \(limits.headTimeout.nanoseconds / 1_000_000_000) s"
        case .readingBody(_, let last, _) where now - last > limits.bodyIdleTimeout:
            why = "the request body stalled for \(limits.bodyIdleTimeout.nanoseconds / 1_000_000_000) s"
        case .readingBody(let since, _, let bytes) where now - since > limits.bodyGrace:
            let seconds = max(1, (now - since).nanoseconds / 1_000_000_000)
            if Int64(bytes) / seconds < Int64(limits.minBodyBytesPerSecond) {
                why = "the request body arrives at \(Int64(bytes) / seconds) bytes/s, below \(limits.minBodyBytesPerSecond)"
            }
        default: break
        }
        guard let why else { return }
        let who = context.channel.remoteAddress?.ipAddress ?? "unknown"
        logger.info("closed a connection from \(who): \(why)")
        timer?.cancel()
        timer = nil
        context.close(promise: nil)
    }
}

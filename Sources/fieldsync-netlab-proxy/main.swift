import Foundation
import Glibc

// A TCP proxy for the network lab and the tests: it adds latency and cuts connections.
//
//   fieldsync-netlab-proxy --upstream 127.0.0.1:8780 [--listen 127.0.0.1:0]
//       [--delay-ms 300]            one-way delay added to every chunk, both directions
//       [--cut-down-after N]        cut each connection after N bytes towards the client
//       [--cut-up-after N]          cut each connection after N bytes towards the server
//       [--cut-first K]             …only the first K connections (then pass everything)
//       [--cut-random P --seed S]   cut each connection with probability P at a random offset
//       [--cut-max BYTES]           …below this many bytes (default 64 KiB)
//       [--busy-first K --retry-after S]  answer the first K connections "503, Retry-After: S"
//                                   itself, as an overloaded hub would
//
// It prints "proxy listening on HOST:PORT" once ready, a line for every cut ("cut connection 3
// after 1234 bytes down") and, when a direction closes, the bytes it carried ("bytes 3 down
// 5678"), so tests and benchmarks can count cuts and bytes on the wire.

setvbuf(stdout, nil, _IOLBF, 0)
// A parent may have started us with signals blocked (test runners do): SIGTERM must work.
var allSignals = sigset_t()
sigemptyset(&allSignals)
pthread_sigmask(SIG_SETMASK, &allSignals, nil)
var args = Array(CommandLine.arguments.dropFirst())
func option(_ name: String) -> String? {
    guard let i = args.firstIndex(of: name), i + 1 < args.count else { return nil }
    return args[i + 1]
}
func fail(_ s: String) -> Never {
    FileHandle.standardError.write(Data("fieldsync-netlab-proxy: \(s)\n".utf8))
    exit(64)
}
func hostPort(_ s: String) -> (String, UInt16) {
    let parts = s.split(separator: ":")
    guard parts.count == 2, let p = UInt16(parts[1]) else { fail("expected HOST:PORT, got \(s)") }
    return (String(parts[0]), p)
}
guard let upstreamText = option("--upstream") else { fail("--upstream HOST:PORT is required") }
let upstream = hostPort(upstreamText)
let listenAt = hostPort(option("--listen") ?? "127.0.0.1:0")
let delay = Double(option("--delay-ms") ?? "0")! / 1000
let cutDown = option("--cut-down-after").flatMap(Int.init)
let cutUp = option("--cut-up-after").flatMap(Int.init)
let cutFirst = option("--cut-first").flatMap(Int.init)
let cutRandom = option("--cut-random").flatMap(Double.init)
let cutMax = option("--cut-max").flatMap(Int.init) ?? 64 * 1024
let busyFirst = option("--busy-first").flatMap(Int.init) ?? 0
let retryAfter = option("--retry-after") ?? "1"
var rng = SystemRandomNumberGenerator()
struct Seeded: RandomNumberGenerator {
    var s: UInt64
    mutating func next() -> UInt64 { s &+= 0x9E37_79B9_7F4A_7C15; var z = s; z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9; z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB; return z ^ (z >> 31) }
}
let lock = NSLock()
nonisolated(unsafe) var seeded = Seeded(s: option("--seed").flatMap(UInt64.init) ?? UInt64.random(in: 0...UInt64.max))
nonisolated(unsafe) var connections = 0

@Sendable func address(_ host: String, _ port: UInt16) -> sockaddr_in {
    var a = sockaddr_in()
    a.sin_family = sa_family_t(AF_INET)
    a.sin_port = port.bigEndian
    inet_pton(AF_INET, host, &a.sin_addr)
    return a
}

let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
var yes: Int32 = 1
setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
var la = address(listenAt.0, listenAt.1)
guard withUnsafePointer(to: &la, { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }) == 0 else {
    fail("cannot listen on \(listenAt.0):\(listenAt.1): \(String(cString: strerror(errno)))")
}
listen(listener, 64)
var bound = sockaddr_in()
var len = socklen_t(MemoryLayout<sockaddr_in>.size)
_ = withUnsafeMutablePointer(to: &bound) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &len) } }
print("proxy listening on \(listenAt.0):\(UInt16(bigEndian: bound.sin_port)) → \(upstream.0):\(upstream.1)")

/// Breaks a connection abruptly, as a dropped link does: linger 0 makes the final close send
/// RST; shutdown wakes the other direction's blocked reader. The owner closes the descriptor once.
@Sendable func slam(_ fd: Int32) {
    var l = linger(l_onoff: 1, l_linger: 0)
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, socklen_t(MemoryLayout<linger>.size))
    shutdown(fd, Int32(SHUT_RDWR))
}

/// Copies one direction, delaying each chunk and stopping at `cutAt` bytes.
final class Pump: @unchecked Sendable {
    let from: Int32, to: Int32, cutAt: Int?, name: String, conn: Int
    let done = DispatchSemaphore(value: 0)
    // Shared between the reader (this thread) and the writer thread, under `lock`.
    private let lock = NSCondition()
    private var queue: [(Double, [UInt8])] = []
    private var eof = false
    private var sent = 0

    init(from: Int32, to: Int32, cutAt: Int?, name: String, conn: Int) {
        self.from = from; self.to = to; self.cutAt = cutAt; self.name = name; self.conn = conn
    }

    /// Reader: timestamps chunks; writer: sends each one `delay` later (latency, not throttling).
    func run() {
        let writer = Thread { self.write() }
        writer.start()
        var buf = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            let n = buf.withUnsafeMutableBytes { recv(from, $0.baseAddress, $0.count, 0) }
            lock.lock()
            if n <= 0 { eof = true; lock.signal(); lock.unlock(); break }
            queue.append((Date().timeIntervalSince1970 + delay, Array(buf[0..<n])))
            lock.signal()
            lock.unlock()
        }
    }

    private func write() {
        while true {
            lock.lock()
            while queue.isEmpty && !eof { lock.wait() }
            if queue.isEmpty && eof { lock.unlock(); break }
            let (due, chunk) = queue.removeFirst()
            lock.unlock()
            let wait = due - Date().timeIntervalSince1970
            if wait > 0 { Thread.sleep(forTimeInterval: wait) }
            var bytes = chunk
            if let cut = cutAt, sent + bytes.count >= cut {
                bytes = Array(bytes.prefix(cut - sent))
                _ = bytes.withUnsafeBytes { send(to, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                sent = cut
                print("cut connection \(conn) after \(cut) bytes \(name)")
                slam(to)
                slam(from)
                break
            }
            var off = 0
            while off < bytes.count {
                let n = bytes[off...].withUnsafeBytes { send(to, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if n <= 0 { break }
                off += n
            }
            sent += off
            if off < bytes.count { break }
        }
        shutdown(to, Int32(SHUT_WR))
        print("bytes \(conn) \(name) \(sent)")
        done.signal()
    }
}

while true {
    let client = accept(listener, nil, nil)
    if client < 0 { continue }
    lock.lock()
    connections += 1
    let n = connections
    var down = cutDown, up = cutUp
    if let k = cutFirst, n > k { down = nil; up = nil }
    if let p = cutRandom {
        if Double.random(in: 0..<1, using: &seeded) < p {
            let at = Int.random(in: 0...cutMax, using: &seeded)
            if Bool.random(using: &seeded) { down = at } else { up = at }
        }
    }
    lock.unlock()
    let (cutDownHere, cutUpHere) = (down, up)
    if n <= busyFirst {
        Thread {
            var buf = [UInt8](repeating: 0, count: 65536)
            _ = buf.withUnsafeMutableBytes { recv(client, $0.baseAddress, $0.count, 0) }
            let body = "{\"error\":{\"code\":\"unavailable\",\"message\":\"busy (netlab proxy)\"}}"
            let reply = "HTTP/1.1 503 Service Unavailable\r\nRetry-After: \(retryAfter)\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)"
            _ = Array(reply.utf8).withUnsafeBytes { send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            print("busy connection \(n) (503, Retry-After: \(retryAfter))")
            shutdown(client, Int32(SHUT_RDWR))
            close(client)
        }.start()
        continue
    }
    Thread {
        let server = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var ua = address(upstream.0, upstream.1)
        let ok = withUnsafePointer(to: &ua) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(server, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        if ok != 0 {
            slam(client)
            close(client)
            close(server)
            return
        }
        // Each chunk goes on as it came: no Nagle delay on top of the latency asked for (on a
        // kept-alive connection Nagle would hold a response's small last segment for the
        // receiver's delayed ACK, ≈ 40 ms a request, which no real link adds).
        var one: Int32 = 1
        setsockopt(client, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        setsockopt(server, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        let a = Pump(from: client, to: server, cutAt: cutUpHere, name: "up", conn: n)
        let b = Pump(from: server, to: client, cutAt: cutDownHere, name: "down", conn: n)
        let t = Thread { a.run() }
        t.start()
        b.run()
        a.done.wait()
        b.done.wait()
        close(client)
        close(server)
    }.start()
}

import CZlib
import Foundation

// MARK: - GzipError

public struct GzipError: Error, CustomStringConvertible, Sendable {
    public let reason: String
    /// The data would decompress to more than the limit (the data may be sound): a size
    /// refusal, not damage.
    public var overLimit = false
    public var description: String { reason }
}

// MARK: - Gzip (whole buffers)

/// gzip compression of whole buffers, for change sets on the wire and in tests.
public enum Gzip {
    public static func compress(_ input: [UInt8], level: Int32 = 6) -> [UInt8] {
        let w = GzipDeflater(level: level)
        var out = w.push(input)
        out += w.finish()
        return out
    }

    /// Decompresses, refusing to produce more than `limit` bytes (a gzip bomb stops there).
    public static func decompress(_ input: [UInt8], limit: Int) throws -> [UInt8] {
        let r = GzipInflater(limit: limit)
        let out = try r.push(input)
        guard r.finished else { throw GzipError(reason: "the compressed data is truncated (it ends before the gzip trailer)") }
        return out
    }

    public static func isGzip(_ bytes: some Collection<UInt8>) -> Bool {
        var it = bytes.makeIterator()
        return it.next() == 0x1F && it.next() == 0x8B
    }
}

// MARK: - GzipDeflater

/// Streaming gzip compression. A class: zlib refuses a `z_stream` that has moved in memory.
final class GzipDeflater {
    private let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
    private var done = false

    init(level: Int32 = 6) {
        stream.initialize(to: z_stream())
        _ = fs_deflate_init_gzip(stream, level)
    }

    deinit {
        if !done { deflateEnd(stream) }
        stream.deallocate()
    }

    func push(_ input: [UInt8]) -> [UInt8] { run(input, flush: Z_NO_FLUSH) }

    func finish() -> [UInt8] {
        guard !done else { return [] }
        defer {
            deflateEnd(stream)
            done = true
        }
        return run([], flush: Z_FINISH)
    }

    private func run(_ input: [UInt8], flush: Int32) -> [UInt8] {
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        var input = input
        input.withUnsafeMutableBufferPointer { inBuf in
            stream.pointee.next_in = inBuf.baseAddress
            stream.pointee.avail_in = uInt(inBuf.count)
            repeat {
                chunk.withUnsafeMutableBufferPointer { c in
                    stream.pointee.next_out = c.baseAddress
                    stream.pointee.avail_out = uInt(c.count)
                    _ = deflate(stream, flush)
                    out.append(contentsOf: c[0..<(c.count - Int(stream.pointee.avail_out))])
                }
            } while stream.pointee.avail_out == 0 || (flush == Z_FINISH && stream.pointee.avail_in > 0)
        }
        return out
    }
}

// MARK: - GzipInflater

/// Streaming gzip decompression with a cap on the output size.
final class GzipInflater {
    private let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
    private(set) var finished = false
    private(set) var produced = 0
    let limit: Int

    init(limit: Int) {
        self.limit = limit
        stream.initialize(to: z_stream())
        _ = fs_inflate_init_gzip(stream)
    }

    deinit {
        inflateEnd(stream)
        stream.deallocate()
    }

    func push(_ input: [UInt8]) throws -> [UInt8] {
        guard !input.isEmpty else { return [] }
        if finished { throw GzipError(reason: "unexpected data after the end of the compressed stream") }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        var input = input
        var failure: GzipError?
        input.withUnsafeMutableBufferPointer { inBuf in
            stream.pointee.next_in = inBuf.baseAddress
            stream.pointee.avail_in = uInt(inBuf.count)
            while stream.pointee.avail_in > 0 && failure == nil && !finished {
                chunk.withUnsafeMutableBufferPointer { c in
                    stream.pointee.next_out = c.baseAddress
                    stream.pointee.avail_out = uInt(c.count)
                    let rc = inflate(stream, Z_NO_FLUSH)
                    let n = c.count - Int(stream.pointee.avail_out)
                    produced += n
                    if produced > limit {
                        failure = GzipError(reason: "decompresses to more than \(limit) bytes (the limit); refused", overLimit: true)
                        return
                    }
                    out.append(contentsOf: c[0..<n])
                    switch rc {
                    case Z_OK: break
                    case Z_STREAM_END:
                        finished = true
                        if stream.pointee.avail_in > 0 { failure = GzipError(reason: "unexpected data after the end of the compressed stream") }
                    case Z_BUF_ERROR: break
                    default:
                        let msg = stream.pointee.msg.map { String(cString: $0) } ?? "code \(rc)"
                        failure = GzipError(reason: "the compressed data is corrupt (\(msg)) after \(stream.pointee.total_in) bytes")
                    }
                }
            }
        }
        if let failure { throw failure }
        return out
    }
}

// MARK: - LineReader

/// Reads a file (gzip or plain) as lines of bytes, with line numbers, size limits and
/// precise errors for truncated or corrupt input.
struct LineReader {
    let path: String
    let maxBytes: Int
    let maxLine: Int
    private let handle: FileHandle
    private var inflater: GzipInflater?
    private var decided = false
    private var buffer: [UInt8] = []
    private var start = 0
    private var eof = false
    private(set) var line = 0
    private var total = 0

    init(path: String, maxBytes: Int, maxLine: Int) throws {
        guard let h = FileHandle(forReadingAtPath: path) else {
            throw ReplicaError.badBundle(path: path, reason: "cannot open the file (does it exist, may it be read?)")
        }
        self.path = path
        self.maxBytes = maxBytes
        self.maxLine = maxLine
        handle = h
    }

    func close() { try? handle.close() }

    /// The next line without its newline, or nil at the end of the file.
    mutating func next() throws -> [UInt8]? {
        while true {
            if let nl = buffer[start...].firstIndex(of: 0x0A) {
                let l = Array(buffer[start..<nl])
                start = nl + 1
                if start > 1 << 20 {
                    buffer.removeFirst(start)
                    start = 0
                }
                line += 1
                return l
            }
            if buffer.count - start > maxLine {
                throw ReplicaError.badBundle(path: path, reason: "line \(line + 1) is longer than \(maxLine) bytes")
            }
            if eof {
                if let inflater, !inflater.finished {
                    throw ReplicaError.badBundle(path: path, reason: "the file is truncated: the compressed data ends early (after line \(line))")
                }
                guard start < buffer.count else { return nil }
                let l = Array(buffer[start...])
                start = buffer.count
                line += 1
                return l
            }
            try fill()
        }
    }

    private mutating func fill() throws {
        let chunk: Data
        do { chunk = try handle.read(upToCount: 256 * 1024) ?? Data() } catch {
            throw ReplicaError.badBundle(path: path, reason: "read error: \(error.localizedDescription)")
        }
        if chunk.isEmpty {
            eof = true
            return
        }
        var bytes = [UInt8](chunk)
        if !decided {
            decided = true
            if Gzip.isGzip(bytes) { inflater = GzipInflater(limit: maxBytes) }
        }
        if inflater != nil {
            do { bytes = try inflater!.push(bytes) } catch let e as GzipError {
                throw ReplicaError.badBundle(path: path, reason: e.reason)
            }
        } else {
            total += bytes.count
            if total > maxBytes { throw ReplicaError.badBundle(path: path, reason: "larger than \(maxBytes) bytes (the limit); refused") }
        }
        buffer.append(contentsOf: bytes)
    }
}

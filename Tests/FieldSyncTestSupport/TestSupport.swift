import FieldSyncCore
import Foundation
import GRDB

// Helpers shared by the test targets: temporary folders, seeded randomness, running the
// built executables as real processes, fingerprints of replica files.

/// A fresh temporary folder per test, removed afterwards unless FIELDSYNC_KEEP_TMP is set.
public final class TempDir: @unchecked Sendable {
    public let path: String

    public init(_ name: String = #function) {
        let base = ProcessInfo.processInfo.environment["TMPDIR"] ?? "/tmp"
        let safe = name.filter { $0.isLetter || $0.isNumber }
        path = "\(base)/fieldsync-test-\(safe.prefix(40))-\(UInt32.random(in: 0...UInt32.max))"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    public func file(_ name: String) -> String { "\(path)/\(name)" }

    deinit {
        if ProcessInfo.processInfo.environment["FIELDSYNC_KEEP_TMP"] == nil {
            try? FileManager.default.removeItem(atPath: path)
        }
    }
}

/// A wall clock that tests move by hand (safe to read from any thread).
public final class ManualClock: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Int64
    public var ms: Int64 {
        get { lock.withLock { value } }
        set { lock.withLock { value = newValue } }
    }
    public init(_ ms: Int64 = 1_763_784_000_000) { value = ms }
    public func advance(_ d: Int64 = 1000) { lock.withLock { value += d } }
}

// MARK: - SplitMix64

/// A small seeded generator, so that every property run can be replayed from its seed.
public struct SplitMix64: RandomNumberGenerator {
    public var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

// MARK: - Running the real executable

/// The built `fieldsync` executable: FIELDSYNC_BIN, else beside the test bundle.
public func fieldsyncBinary(_ name: String = "fieldsync") -> String {
    if name == "fieldsync", let p = ProcessInfo.processInfo.environment["FIELDSYNC_BIN"] { return p }
    let candidates = [
        Bundle.main.bundleURL.deletingLastPathComponent().appendingPathComponent(name).path,
        Bundle.main.bundleURL.appendingPathComponent(name).path,
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent(name).path,
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent(".build/debug/\(name)").path,
    ]
    return candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? candidates.last!
}

public struct CLIResult {
    public var status: Int32
    public var stdout: String
    public var stderr: String
    public init(status: Int32, stdout: String, stderr: String) {
        self.status = status
        self.stdout = stdout
        self.stderr = stderr
    }
}

/// Runs `fieldsync` with arguments, waiting for it to finish; with `umask`, under that umask
/// (through `/bin/sh`, so the test process keeps its own).
@discardableResult
public func runCLI(_ args: [String], db: String? = nil, env: [String: String] = [:], stdin: String? = nil, binary: String = "fieldsync",
                   umask: Int? = nil) throws -> CLIResult {
    let p = Process()
    let arguments = (db.map { ["--db", $0] } ?? []) + args
    if let umask {
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", "umask \(String(umask, radix: 8)); exec \"$0\" \"$@\"", fieldsyncBinary(binary)] + arguments
    } else {
        p.executableURL = URL(fileURLWithPath: fieldsyncBinary(binary))
        p.arguments = arguments
    }
    var e = ProcessInfo.processInfo.environment
    e.removeValue(forKey: "FIELDSYNC_DB")
    for (k, v) in env { e[k] = v }
    p.environment = e
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    if let stdin {
        let inp = Pipe()
        p.standardInput = inp
        try p.run()
        inp.fileHandleForWriting.write(Data(stdin.utf8))
        try inp.fileHandleForWriting.close()
    } else {
        p.standardInput = FileHandle.nullDevice
        try p.run()
    }
    let o = out.fileHandleForReading.readDataToEndOfFile()
    let r = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return CLIResult(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: r, as: UTF8.self))
}

/// Everything in a replica file that a failed operation must leave untouched.
public func fingerprint(_ path: String) throws -> [String] {
    let q = try DatabaseQueue(path: path)
    return try q.read { db in
        var out = try String.fetchAll(db, sql: "SELECT seq || ' ' || site || ':' || counter || ' ' || body FROM fs_change ORDER BY seq")
        for k in RecordKind.allCases {
            out += try String.fetchAll(db, sql: "SELECT id || ' ' || _deleted || ' ' || hex(_clock) FROM fs_\(k.rawValue) ORDER BY rid")
        }
        out += try String.fetchAll(db, sql: "SELECT kind || row || field || since FROM fs_conflict ORDER BY 1")
        out += try String.fetchAll(db, sql: "SELECT hlc FROM fs_clock")
        return out
    }
}


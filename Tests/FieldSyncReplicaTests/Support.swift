import FieldSyncCore
@testable import FieldSyncReplica
import Foundation
import Testing

/// A fresh temporary folder per test, removed afterwards unless FIELDSYNC_KEEP_TMP is set.
final class TempDir {
    let path: String

    init(_ name: String = #function) {
        let base = ProcessInfo.processInfo.environment["TMPDIR"] ?? "/tmp"
        let safe = name.filter { $0.isLetter || $0.isNumber }
        path = "\(base)/fieldsync-test-\(safe.prefix(40))-\(UInt32.random(in: 0...UInt32.max))"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func file(_ name: String) -> String { "\(path)/\(name)" }

    deinit {
        if ProcessInfo.processInfo.environment["FIELDSYNC_KEEP_TMP"] == nil {
            try? FileManager.default.removeItem(atPath: path)
        }
    }
}

/// A wall clock that tests move by hand.
final class ManualClock: @unchecked Sendable {
    var ms: Int64
    init(_ ms: Int64 = 1_763_784_000_000) { self.ms = ms }
    func advance(_ d: Int64 = 1000) { ms += d }
}

func makeReplica(_ dir: TempDir, _ name: String, author: String = "测试员", clock: ManualClock? = nil) throws -> Replica {
    let r = try Replica.create(path: dir.file("\(name).sqlite"), siteName: name, author: author)
    if let clock { r.wallClock = { clock.ms } }
    return r
}

/// Every change `from` holds, decoded, in its local order.
func allChanges(_ r: Replica) throws -> [Change] {
    try r.read { db in
        try String.fetchAll(db, sql: "SELECT body FROM fs_change ORDER BY seq").map { try ChangeCodec.decode(JSONValue.parse($0)) }
    }
}

/// Sends everything `from` has to `to`.
@discardableResult
func sync(_ from: Replica, _ to: Replica) throws -> ApplyReport {
    try to.apply(allChanges(from))
}

let village1 = "520221105201"
let village2 = "520221105202"

func disputeInput(_ village: String = village1, status: String = "受理", parties: String = "张三与李四") -> JSONObject {
    JSONObject([
        ("village", .string(village)), ("category", "邻里纠纷"), ("parties", .string(parties)),
        ("summary", "因宅基地边界发生争执，双方多次协商未果。"), ("reported_on", "2026-11-20"), ("status", .string(status)),
    ])
}

/// A canonical picture of everything a replica holds: records, their registers and conflicts.
func snapshot(_ r: Replica) throws -> [String] {
    var out: [String] = []
    for k in RecordKind.allCases {
        for rec in try r.records(k, includeDeleted: true) {
            let state = try r.rowState(k, rec.id)!
            let regs = state.registers.enumerated().map { i, reg in
                "\(state.fieldName(i))=" + reg.entries.map { "\($0.dot)→\($0.value)" }.joined(separator: "|")
            }
            out.append("\(k.rawValue) \(rec.id) deleted=\(rec.deleted) " + regs.joined(separator: " ")
                       + " conflicts=" + state.conflicts.map { "\($0.field):\($0.dots.map(\.description).joined(separator: ","))" }.joined(separator: ";"))
        }
    }
    return out.sorted()
}

// MARK: - Running the real executable

/// The built `fieldsync` executable: FIELDSYNC_BIN, else beside the test bundle.
func fieldsyncBinary() -> String {
    if let p = ProcessInfo.processInfo.environment["FIELDSYNC_BIN"] { return p }
    let candidates = [
        Bundle.main.bundleURL.deletingLastPathComponent().appendingPathComponent("fieldsync").path,
        Bundle.main.bundleURL.appendingPathComponent("fieldsync").path,
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("fieldsync").path,
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent(".build/debug/fieldsync").path,
    ]
    return candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? candidates.last!
}

struct CLIResult {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// Runs `fieldsync` with arguments, waiting for it to finish.
@discardableResult
func runCLI(_ args: [String], db: String? = nil, env: [String: String] = [:], stdin: String? = nil) throws -> CLIResult {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: fieldsyncBinary())
    p.arguments = (db.map { ["--db", $0] } ?? []) + args
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
func fingerprint(_ path: String) throws -> [String] {
    let q = try DatabaseQueueForTests.open(path)
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

import GRDB
enum DatabaseQueueForTests {
    static func open(_ path: String) throws -> DatabaseQueue { try DatabaseQueue(path: path) }
}

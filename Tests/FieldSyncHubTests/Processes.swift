import FieldSyncCore
import FieldSyncReplica
import FieldSyncTransport
import Foundation
import Testing

/// A real `fieldsync-hub serve` process on loopback.
final class HubProcess: @unchecked Sendable {
    let db: String
    let process: Process
    let port: Int
    let log: String
    let extra: [String]
    var url: String { "http://127.0.0.1:\(port)" }

    /// Starts a hub and waits for it to say which port it listens on.
    init(db: String, port: Int = 0, log: String, extra: [String] = []) throws {
        self.db = db
        self.log = log
        self.extra = extra
        let p = Process()
        p.executableURL = URL(fileURLWithPath: fieldsyncBinary("fieldsync-hub"))
        // --store takes a SQLite path or a postgres:// URL alike.
        p.arguments = ["serve", "--create", "--store", db, "--port", String(port), "--log-level", "warning"] + extra
        let out = Pipe()
        p.standardOutput = out
        FileManager.default.createFile(atPath: log, contents: nil)
        p.standardError = FileHandle(forWritingAtPath: log)
        try p.run()
        process = p
        var text = ""
        let deadline = Date().addingTimeInterval(30)
        while !text.contains("\n") && Date() < deadline {
            let d = out.fileHandleForReading.availableData
            if d.isEmpty { break }
            text += String(decoding: d, as: UTF8.self)
        }
        guard let r = text.range(of: #"listening on https?://[0-9.]+:([0-9]+)"#, options: .regularExpression),
              let p2 = Int(text[r].split(separator: ":").last!)
        else {
            p.terminate()
            throw HubStartFailure(output: text + ((try? String(contentsOfFile: log, encoding: .utf8)) ?? ""))
        }
        self.port = p2
    }

    struct HubStartFailure: Error, CustomStringConvertible {
        let output: String
        var description: String { "the hub did not start: \(output)" }
    }

    func kill(_ sig: Int32 = SIGKILL) {
        Glibc.kill(process.processIdentifier, sig)
        process.waitUntilExit()
    }

    /// The same hub again, on the same port (a restart).
    func restart() throws -> HubProcess {
        var last: Error?
        for _ in 0..<50 {
            do { return try HubProcess(db: db, port: port, log: log, extra: extra) } catch { last = error; Thread.sleep(forTimeInterval: 0.2) }
        }
        throw last!
    }

    /// `fieldsync-hub device add`, returning the code.
    func addDevice(_ name: String, scope: String) throws -> (device: String, code: String) {
        let r = try runCLI(["device", "add", "--store", db, "--name", name, "--scope", scope, "--json"], binary: "fieldsync-hub")
        #expect(r.status == 0, "\(r.stderr)")
        let j = try JSONValue.parse(r.stdout)
        return (j["device"]!.stringValue!, j["code"]!.stringValue!)
    }

    func devices() throws -> JSONValue {
        try JSONValue.parse(try runCLI(["device", "list", "--store", db, "--json"], binary: "fieldsync-hub").stdout)
    }

    deinit { if process.isRunning { kill() } }
}

/// A request to a live hub's API over libcurl (a supervisor's, or anyone's).
func hubAPI(_ hub: HubProcess, _ method: String, _ path: String, token: String? = nil, body: String? = nil,
            headers: [(String, String)] = []) throws -> (Int, JSONValue) {
    var options = TransportOptions()
    options.progress = false
    let reply = try CurlHTTPClient().perform(
        HTTPExchange(method: method, url: hub.url + path, headers: (token.map { [("Authorization", "Bearer \($0)")] } ?? []) + headers, body: body.map { Array($0.utf8) }),
        options: options)
    return (reply.status, (try? JSONValue.parse(bytes: reply.body)) ?? .null)
}

/// The network-lab proxy in front of a hub.
final class ProxyProcess: @unchecked Sendable {
    let process: Process
    let port: Int
    let log: String

    init(upstream: Int, log: String, options: [String]) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: fieldsyncBinary("fieldsync-netlab-proxy"))
        p.arguments = ["--upstream", "127.0.0.1:\(upstream)"] + options
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        process = p
        self.log = log
        let first = String(decoding: out.fileHandleForReading.availableData, as: UTF8.self)
        guard let r = first.range(of: #"on 127\.0\.0\.1:([0-9]+)"#, options: .regularExpression), let n = Int(first[r].split(separator: ":").last!) else {
            p.terminate()
            throw HubProcess.HubStartFailure(output: first)
        }
        port = n
        // Keep its output (one line per cut) in a file.
        FileManager.default.createFile(atPath: log, contents: first.data(using: .utf8))
        let sink = FileHandle(forWritingAtPath: log)!
        sink.seekToEndOfFile()
        out.fileHandleForReading.readabilityHandler = { h in
            let d = h.availableData
            if !d.isEmpty { sink.write(d) }
        }
    }

    var cuts: Int { ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").components(separatedBy: "cut connection").count - 1 }

    /// The connections that have closed so far, by the proxy's number (from its "bytes N down/up" lines).
    var closedConnections: Set<Int> {
        Set(((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n").compactMap { line in
            let w = line.split(separator: " ")
            return w.count == 4 && w[0] == "bytes" ? Int(w[1]) : nil
        })
    }

    deinit {
        Glibc.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }
}

/// A laptop driven through the `fieldsync` CLI, as a cadre would.
struct Laptop {
    let db: String
    let name: String

    init(_ dir: TempDir, _ name: String, author: String, env: [String: String] = [:]) throws {
        db = dir.file("\(name).sqlite")
        self.name = name
        let r = try runCLI(["init", "--site", name, "--author", author], db: db, env: env)
        #expect(r.status == 0, "\(r.stderr)")
    }

    @discardableResult
    func run(_ args: [String], env: [String: String] = [:]) throws -> CLIResult { try runCLI(args, db: db, env: env) }

    func enroll(_ hub: HubProcess, scope: String, env: [String: String] = [:]) throws {
        let (_, code) = try hub.addDevice(name, scope: scope)
        let r = try run(["enroll", "--hub", hub.url, "--code", code], env: env)
        #expect(r.status == 0, "enroll: \(r.stderr)")
    }

    @discardableResult
    func sync(env: [String: String] = [:], attempts: Int = 6) throws -> CLIResult {
        try run(["sync", "--json", "--attempts", String(attempts)], env: env)
    }

    func add(_ kind: String, _ json: String) throws -> String {
        let r = try run(["record", "add", kind, "--json", json])
        #expect(r.status == 0, "add: \(r.stderr)")
        return r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func edit(_ id: String, _ json: String) throws {
        let r = try run(["record", "edit", id, "--json", json])
        #expect(r.status == 0, "edit: \(r.stderr)")
    }

    /// Records and conflicts as JSON text, for comparing replicas.
    func state(village: String) throws -> [String] {
        var out: [String] = []
        for k in ["dispute", "visit", "project"] {
            out.append(try run(["record", "list", k, "--village", village, "--deleted", "--json"]).stdout)
        }
        let conflicts = try JSONValue.parse(try run(["conflicts", "list", "--json"]).stdout).arrayValue ?? []
        out.append(JSONValue.array(conflicts.filter { $0["village"]?.stringValue?.hasPrefix(village) ?? false }).compactText)
        return out
    }

    func status() throws -> JSONValue { try JSONValue.parse(try run(["status", "--json"]).stdout) }
}

func disputeJSON(_ village: String = "520221105201", status: String = "受理", parties: String = "张三与李四") -> String {
    #"{"village":"\#(village)","category":"邻里纠纷","parties":"\#(parties)","summary":"因宅基地边界发生争执","reported_on":"2026-11-20","status":"\#(status)"}"#
}

/// The hub's records and conflicts for a village, read from its file (as a supervisor's tools would).
func hubState(_ hub: HubProcess, village: String) throws -> [String] {
    let r = try Replica.open(path: hub.db)
    var out: [String] = []
    for k in [RecordKind.dispute, .visit, .project] {
        out.append(JSONValue.array(try r.records(k, villagePrefix: village, includeDeleted: true).map(\.json)).prettyText)
    }
    return out
}

func waitUntil(_ seconds: Double, _ cond: () throws -> Bool) rethrows -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if try cond() { return true }
        Thread.sleep(forTimeInterval: 0.2)
    }
    return try cond()
}

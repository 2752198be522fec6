import FieldSyncCore
import FieldSyncTrust
@_spi(Hub) import FieldSyncReplica
import Foundation
import GRDB

// MARK: - Supervisor

/// A township or county supervisor: an account of its own (not a device) with a region scope.
public struct Supervisor: Sendable, Equatable {
    public let name: String
    public let scope: String
}

public struct SupervisorInfo: Sendable {
    public var name: String
    public var scope: String
    public var created: Int64
    public var disabled: Int64?
    public var lastLogin: Int64?
}

/// A signed-in supervisor's session.
public struct Session: Sendable {
    public let token: String
    public let supervisor: Supervisor
    public let expires: Int64
    /// A per-session secret the web console puts in its forms (CSRF protection).
    public let csrf: String
}

// MARK: - Accounts and sessions

extension SQLiteHubStore {
    /// PBKDF2-HMAC-SHA256 iterations for new passwords (stored per account, so it can grow).
    public static let passwordIterations = 210_000
    /// How long a session lasts.
    public static let sessionLifetimeMs: Int64 = 8 * 3_600_000

    static func createSupervisorTables(_ db: Database) throws {
        try db.execute(sql: """
            CREATE TABLE IF NOT EXISTS hub_supervisor(
              name TEXT PRIMARY KEY NOT NULL, scope TEXT NOT NULL, salt TEXT NOT NULL, iterations INTEGER NOT NULL,
              password_hash TEXT NOT NULL, created INTEGER NOT NULL, disabled INTEGER, last_login INTEGER) WITHOUT ROWID;
            CREATE TABLE IF NOT EXISTS hub_session(
              token_hash TEXT PRIMARY KEY NOT NULL, supervisor TEXT NOT NULL, created INTEGER NOT NULL, expires INTEGER NOT NULL,
              csrf TEXT NOT NULL) WITHOUT ROWID;
            """)
    }

    static func hashPassword(_ password: String, salt: String, iterations: Int) -> String {
        PasswordHash.derive(password, salt: salt, iterations: iterations) ?? ""
    }

    public static func addSupervisor(_ r: Replica, name: String, scope: String, password: String) throws -> SupervisorInfo {
        guard !name.isEmpty, name.unicodeScalars.count <= 100, !name.contains("/") else {
            throw HubFailure(422, "invalid", "a supervisor's name is 1–100 characters without /")
        }
        if let p = scopeProblem(scope) { throw HubFailure(422, "invalid", p) }
        guard password.unicodeScalars.count >= 8 else { throw HubFailure(422, "invalid", "a password has at least 8 characters") }
        let salt = Hex.random(bytes: 16)
        let hash = hashPassword(password, salt: salt, iterations: passwordIterations)
        let now = Self.now()
        try r.database.write { db in
            if try Bool.fetchOne(db, sql: "SELECT EXISTS(SELECT 1 FROM hub_supervisor WHERE name = ?)", arguments: [name]) == true {
                throw HubFailure(409, "exists", "a supervisor named \(name) exists already")
            }
            try db.execute(sql: "INSERT INTO hub_supervisor(name, scope, salt, iterations, password_hash, created) VALUES (?, ?, ?, ?, ?, ?)",
                           arguments: [name, scope, salt, passwordIterations, hash, now])
        }
        return SupervisorInfo(name: name, scope: scope, created: now, disabled: nil, lastLogin: nil)
    }

    public static func supervisors(_ r: Replica) throws -> [SupervisorInfo] {
        try r.database.read { db in
            try Row.fetchAll(db, sql: "SELECT name, scope, created, disabled, last_login FROM hub_supervisor ORDER BY created").map {
                SupervisorInfo(name: $0["name"], scope: $0["scope"], created: $0["created"], disabled: $0["disabled"], lastLogin: $0["last_login"])
            }
        }
    }

    /// Disables an account and ends its sessions.
    public static func disableSupervisor(_ r: Replica, name: String) throws {
        let n = try r.database.write { db -> Int in
            try db.execute(sql: "UPDATE hub_supervisor SET disabled = ? WHERE name = ? AND disabled IS NULL", arguments: [now(), name])
            let changed = db.changesCount
            try db.execute(sql: "DELETE FROM hub_session WHERE supervisor = ?", arguments: [name])
            return changed
        }
        guard n == 1 else { throw HubFailure(404, "not_found", "no active supervisor named \(name)") }
    }

    /// The supervisor account a local admin command acts as.
    public static func supervisor(_ r: Replica, named name: String) throws -> Supervisor {
        guard let row = try r.database.read({ try Row.fetchOne($0, sql: "SELECT scope, disabled FROM hub_supervisor WHERE name = ?", arguments: [name]) }) else {
            throw HubFailure(404, "not_found", "no supervisor named \(name) (fieldsync-hub supervisor add)")
        }
        if (row["disabled"] as Int64?) != nil { throw HubFailure(403, "disabled", "supervisor \(name) is disabled") }
        return Supervisor(name: name, scope: row["scope"])
    }

    public func login(name: String, password: String) async throws -> Session {
        // Only the account lookup and the session insert run on the store's queue: PBKDF2 takes
        // a noticeable time (seconds in a debug build) and would hold up every sync meanwhile.
        struct Account: Sendable { let scope: String, salt: String, iterations: Int, hash: String, disabled: Bool }
        let account: Account? = try await run { r in
            try r.database.read { db in
                try Row.fetchOne(db, sql: "SELECT scope, salt, iterations, password_hash, disabled FROM hub_supervisor WHERE name = ?", arguments: [name]).map {
                    Account(scope: $0["scope"], salt: $0["salt"], iterations: $0["iterations"], hash: $0["password_hash"], disabled: ($0["disabled"] as Int64?) != nil)
                }
            }
        }
        let verified: Bool = await withCheckedContinuation { cont in
            DispatchQueue.global().async {
                guard let account else {
                    _ = Self.hashPassword(password, salt: "x", iterations: Self.passwordIterations)  // same time as a wrong password
                    return cont.resume(returning: false)
                }
                let hash = Self.hashPassword(password, salt: account.salt, iterations: account.iterations)
                cont.resume(returning: Hex.equalInConstantTime(hash, account.hash) && !account.disabled)
            }
        }
        guard verified, let account else {
            try? await Task.sleep(nanoseconds: 300_000_000)  // slows guessing
            throw HubFailure(401, "bad_credentials", "the name or password is wrong")
        }
        let token = "fss_" + Hex.random(bytes: 32)
        let csrf = Hex.random(bytes: 16)
        let expires = Self.now() + Self.sessionLifetimeMs
        let stillActive: Bool = try await run { r in
            try r.database.write { db in
                // The account may have been disabled (or its password changed) while hashing.
                guard try Row.fetchOne(db, sql: "SELECT 1 FROM hub_supervisor WHERE name = ? AND disabled IS NULL AND password_hash = ?",
                                       arguments: [name, account.hash]) != nil else { return false }
                try db.execute(sql: "DELETE FROM hub_session WHERE expires < ?", arguments: [Self.now()])
                try db.execute(sql: "INSERT INTO hub_session(token_hash, supervisor, created, expires, csrf) VALUES (?, ?, ?, ?, ?)",
                               arguments: [Self.hash(token), name, Self.now(), expires, csrf])
                try db.execute(sql: "UPDATE hub_supervisor SET last_login = ? WHERE name = ?", arguments: [Self.now(), name])
                return true
            }
        }
        guard stillActive else { throw HubFailure(401, "bad_credentials", "the name or password is wrong") }
        return Session(token: token, supervisor: Supervisor(name: name, scope: account.scope), expires: expires, csrf: csrf)
    }

    public func session(token: String) async throws -> Session {
        try await run { r in
            let row = try r.database.read { db in
                try Row.fetchOne(db, sql: """
                    SELECT s.supervisor, s.expires, s.csrf, p.scope, p.disabled FROM hub_session s JOIN hub_supervisor p ON p.name = s.supervisor
                    WHERE s.token_hash = ?
                    """, arguments: [Self.hash(token)])
            }
            guard let row else { throw HubFailure(401, "bad_session", "not signed in (or the session ended): sign in again") }
            guard (row["expires"] as Int64) > Self.now() else { throw HubFailure(401, "session_expired", "the session has expired: sign in again") }
            guard (row["disabled"] as Int64?) == nil else { throw HubFailure(403, "disabled", "this supervisor account is disabled") }
            return Session(token: token, supervisor: Supervisor(name: row["supervisor"], scope: row["scope"]), expires: row["expires"], csrf: row["csrf"])
        }
    }

    public func logout(token: String) async throws {
        try await run { r in try r.database.write { try $0.execute(sql: "DELETE FROM hub_session WHERE token_hash = ?", arguments: [Self.hash(token)]) } }
    }

    // MARK: Conflicts in a supervisor's scope

    /// The filter narrowed to the supervisor's scope, or nil when it asks for records outside it.
    static func scoped(_ f: ConflictFilter, _ s: Supervisor) -> ConflictFilter? {
        var f = f
        if let p = f.villagePrefix {
            if p.hasPrefix(s.scope) { return f }
            if s.scope.hasPrefix(p) { f.villagePrefix = s.scope; return f }
            return nil
        }
        f.villagePrefix = s.scope
        return f
    }

    static func checkScope(_ r: Replica, _ id: String, _ s: Supervisor) throws {
        let (_, row, _) = try r.findConflict(id)
        guard Replica.inScope(row: row, scope: s.scope) else {
            throw HubFailure(403, "out_of_scope", "record \(RecordID.short(row)) lies outside \(s.name)'s scope \(s.scope)")
        }
    }

    public static func conflicts(_ r: Replica, for s: Supervisor, _ filter: ConflictFilter) throws -> [ConflictInfo] {
        guard let f = scoped(filter, s) else { return [] }
        return try r.conflicts(matching: f)
    }

    public static func conflictDetail(_ r: Replica, for s: Supervisor, _ id: String) throws -> ConflictDetail {
        try checkScope(r, id, s)
        return try r.conflictDetail(id)
    }

    public static func resolve(_ r: Replica, for s: Supervisor, _ id: String, _ how: Resolution, note: String?) throws -> EditResult {
        try checkScope(r, id, s)
        return try r.resolveConflict(id, how, author: s.name, note: "在同步中心处理 (at the hub)" + (note.map { "：\($0)" } ?? ""))
    }

    public static func resolveAll(_ r: Replica, for s: Supervisor, _ filter: ConflictFilter, _ how: Resolution, note: String?) throws -> [EditResult] {
        guard let f = scoped(filter, s) else { return [] }
        return try r.resolveConflicts(matching: f, how, author: s.name, note: "在同步中心处理 (at the hub)" + (note.map { "：\($0)" } ?? ""))
    }

    public static func summary(_ r: Replica, for s: Supervisor, _ filter: ConflictFilter) throws -> ConflictSummary {
        guard let f = scoped(filter, s) else { return noConflicts }
        return try r.conflictSummary(matching: f)
    }

    /// The summary of no conflicts, with every age bucket (at 0) as Replica.conflictSummary has
    /// them: conflicts.schema.json requires all four.
    static var noConflicts: ConflictSummary {
        var s = ConflictSummary()
        s.ageBuckets = [("<1d", 0), ("1-7d", 0), ("7-30d", 0), (">30d", 0)]
        return s
    }

    public func conflicts(for s: Supervisor, _ f: ConflictFilter) async throws -> [ConflictInfo] { try await run { try Self.conflicts($0, for: s, f) } }
    public func conflictDetail(for s: Supervisor, _ id: String) async throws -> ConflictDetail { try await run { try Self.conflictDetail($0, for: s, id) } }
    public func resolve(for s: Supervisor, _ id: String, _ how: Resolution, note: String?) async throws -> EditResult {
        try await run { try Self.resolve($0, for: s, id, how, note: note) }
    }
    public func resolveAll(for s: Supervisor, _ f: ConflictFilter, _ how: Resolution, note: String?) async throws -> [EditResult] {
        try await run { try Self.resolveAll($0, for: s, f, how, note: note) }
    }
    public func conflictSummary(for s: Supervisor, _ f: ConflictFilter) async throws -> ConflictSummary { try await run { try Self.summary($0, for: s, f) } }
    public func now() -> Int64 { Self.now() }
}

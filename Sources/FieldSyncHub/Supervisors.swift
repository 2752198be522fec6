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

    public init(name: String, scope: String) {
        self.name = name
        self.scope = scope
    }
}

public struct SupervisorInfo: Sendable {
    public var name: String
    public var scope: String
    public var created: Int64
    public var disabled: Int64?
    public var lastLogin: Int64?

    public init(name: String, scope: String, created: Int64, disabled: Int64?, lastLogin: Int64?) {
        (self.name, self.scope, self.created, self.disabled, self.lastLogin) = (name, scope, created, disabled, lastLogin)
    }
}

/// A signed-in supervisor's session.
public struct Session: Sendable {
    public let token: String
    public let supervisor: Supervisor
    public let expires: Int64
    /// A per-session secret the web console puts in its forms (CSRF protection).
    public let csrf: String

    public init(token: String, supervisor: Supervisor, expires: Int64, csrf: String) {
        (self.token, self.supervisor, self.expires, self.csrf) = (token, supervisor, expires, csrf)
    }
}

// MARK: - SupervisorRules

/// What a supervisor account must be, for every store.
public enum SupervisorRules {
    public static func checkNew(name: String, scope: String, password: String) throws {
        guard !name.isEmpty, name.unicodeScalars.count <= 100, !name.contains("/") else {
            throw HubFailure(.invalid, "a supervisor's name is 1–100 characters without /")
        }
        if let p = Enrolment.scopeProblem(scope) { throw HubFailure(.invalid, p) }
        guard password.unicodeScalars.count >= 8 else { throw HubFailure(.invalid, "a password has at least 8 characters") }
    }

    /// The filter narrowed to the supervisor's scope, or nil when it asks for records outside it.
    public static func scoped(_ f: ConflictFilter, _ s: Supervisor) -> ConflictFilter? {
        var f = f
        guard let p = Scope(s.scope).narrow(f.villagePrefix) else { return nil }
        f.villagePrefix = p
        return f
    }


    /// The summary of no conflicts, with every age bucket (at 0) as Replica.conflictSummary has
    /// them: conflicts.schema.json requires all four.
    public static var noConflicts: ConflictSummary {
        var s = ConflictSummary()
        s.ageBuckets = [("<1d", 0), ("1-7d", 0), ("7-30d", 0), (">30d", 0)]
        return s
    }

    /// The note a settlement made at the hub carries.
    public static func settlingNote(_ note: String?) -> String {
        "在同步中心处理 (at the hub)" + (note.map { "：\($0)" } ?? "")
    }

    /// The query narrowed to the supervisor's scope, or nil when it asks for a place outside it.
    public static func scoped(_ q: RecordQuery, _ s: Supervisor) -> RecordQuery? {
        var q = q
        guard let p = Scope(s.scope).narrow(q.villagePrefix) else { return nil }
        q.villagePrefix = p
        return q
    }

    /// A record history is asked for by its whole id: anything else is "not found".
    public static func checkWholeID(_ id: String) throws {
        guard RecordKind.allCases.contains(where: { RecordID.problem(id, kind: $0) == nil }) else {
            throw HubFailure(.notFound, "\"\(id.prefix(60))\" is not a record id (division code, a dash, 32 hex digits)")
        }
    }
}

// MARK: - Accounts and sessions

extension SQLiteHubStore {
    /// PBKDF2-HMAC-SHA256 iterations for new passwords (stored per account, so it can grow).
    public static let passwordIterations = PasswordHash.iterations
    /// How long a session lasts.
    public static let sessionLifetimeMs: Int64 = 8 * 3_600_000

    static func hashPassword(_ password: String, salt: String, iterations: Int) -> String {
        PasswordHash.derive(password, salt: salt, iterations: iterations) ?? ""
    }

    public static func addSupervisor(_ r: Replica, name: String, scope: String, password: String) throws -> SupervisorInfo {
        try SupervisorRules.checkNew(name: name, scope: scope, password: password)
        let salt = Hex.random(bytes: 16)
        let hash = hashPassword(password, salt: salt, iterations: passwordIterations)
        let now = self.now()
        try r.database.write { db in
            if try Bool.fetchOne(db, sql: "SELECT EXISTS(SELECT 1 FROM hub_supervisor WHERE name = ?)", arguments: [name]) == true {
                throw HubFailure(.exists, "a supervisor named \(name) exists already")
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
        guard n == 1 else { throw HubFailure(.notFound, "no active supervisor named \(name)") }
    }

    /// The supervisor account a local admin command acts as.
    public static func supervisor(_ r: Replica, named name: String) throws -> Supervisor {
        guard let row = try r.database.read({ try Row.fetchOne($0, sql: "SELECT scope, disabled FROM hub_supervisor WHERE name = ?", arguments: [name]) }) else {
            throw HubFailure(.notFound, "no supervisor named \(name) (fieldsync-hub supervisor add)")
        }
        if (row["disabled"] as Int64?) != nil { throw HubFailure(.disabled, "supervisor \(name) is disabled") }
        return Supervisor(name: name, scope: row["scope"])
    }

    public func supervisorAccount(named name: String) async throws -> SupervisorAccount? {
        try await run { r in
            try r.database.read { db in
                try Row.fetchOne(db, sql: "SELECT scope, salt, iterations, password_hash, disabled FROM hub_supervisor WHERE name = ?", arguments: [name]).map {
                    SupervisorAccount(name: name, scope: $0["scope"], salt: $0["salt"], iterations: $0["iterations"],
                                      passwordHash: $0["password_hash"], disabled: ($0["disabled"] as Int64?) != nil)
                }
            }
        }
    }

    public func createSession(_ session: Session, passwordHash: String, maxPerAccount: Int) async throws -> Bool {
        try await run { r in
            try r.database.write { db in
                let name = session.supervisor.name
                guard try Row.fetchOne(db, sql: "SELECT 1 FROM hub_supervisor WHERE name = ? AND disabled IS NULL AND password_hash = ?",
                                       arguments: [name, passwordHash]) != nil else { return false }
                let now = self.now()
                try db.execute(sql: "DELETE FROM hub_session WHERE expires < ?", arguments: [now])
                try db.execute(sql: "INSERT INTO hub_session(token_hash, supervisor, created, expires, csrf) VALUES (?, ?, ?, ?, ?)",
                               arguments: [Self.hash(session.token), name, now, session.expires, session.csrf])
                // The oldest sessions beyond the bound end.
                try db.execute(sql: """
                    DELETE FROM hub_session WHERE supervisor = ? AND token_hash NOT IN
                      (SELECT token_hash FROM hub_session WHERE supervisor = ? ORDER BY created DESC, token_hash DESC LIMIT ?)
                    """, arguments: [name, name, maxPerAccount])
                try db.execute(sql: "UPDATE hub_supervisor SET last_login = ? WHERE name = ?", arguments: [now, name])
                return true
            }
        }
    }

    public func signInRecords(_ subjects: [String]) async throws -> [String: SignInRecord] {
        try await run { r in try r.database.read { db in try Self.signInRecords(db, subjects) } }
    }

    static func signInRecords(_ db: Database, _ subjects: [String]) throws -> [String: SignInRecord] {
        var out: [String: SignInRecord] = [:]
        for s in subjects {
            if let row = try Row.fetchOne(db, sql: "SELECT failures, last_failure, locked FROM hub_signin WHERE subject = ?", arguments: [s]) {
                out[s] = SignInRecord(failures: row["failures"], lastFailure: row["last_failure"], locked: row["locked"])
            }
        }
        return out
    }

    public func reserveSignIn(_ subjects: [String], at now: Int64, refuses: @escaping @Sendable (SignInRecord, Int64) -> Bool) async throws -> [String: SignInRecord]? {
        try await run { r in
            try r.database.write { db in
                let records = try Self.signInRecords(db, subjects)
                if records.values.contains(where: { refuses($0, now) }) { return records }
                // Old counts of addresses that stopped trying are forgotten after a day.
                try db.execute(sql: "DELETE FROM hub_signin WHERE locked IS NULL AND last_failure < ?", arguments: [now - 86_400_000])
                for s in subjects {
                    try db.execute(sql: """
                        INSERT INTO hub_signin(subject, failures, last_failure) VALUES (?, 1, ?)
                        ON CONFLICT(subject) DO UPDATE SET failures = failures + 1, last_failure = max(last_failure, excluded.last_failure)
                        """, arguments: [s, now])
                }
                return nil
            }
        }
    }

    public func releaseSignIn(_ subjects: [String]) async throws {
        try await run { r in
            try r.database.write { db in
                for s in subjects {
                    try db.execute(sql: "UPDATE hub_signin SET failures = max(0, failures - 1) WHERE subject = ? AND locked IS NULL", arguments: [s])
                    try db.execute(sql: "DELETE FROM hub_signin WHERE subject = ? AND failures = 0 AND locked IS NULL", arguments: [s])
                }
            }
        }
    }

    public func recordSignInFailure(_ subjects: [String], at now: Int64, lockAt: [String: Int]) async throws -> [String: SignInRecord] {
        try await run { r in
            try r.database.write { db in
                for s in subjects {
                    // Counted when the attempt began (reserveSignIn); a row may be missing if an
                    // administrator unlocked meanwhile: then this failure is the first.
                    try db.execute(sql: """
                        INSERT INTO hub_signin(subject, failures, last_failure) VALUES (?, 1, ?)
                        ON CONFLICT(subject) DO UPDATE SET last_failure = max(last_failure, excluded.last_failure)
                        """, arguments: [s, now])
                    if let n = lockAt[s] {
                        try db.execute(sql: "UPDATE hub_signin SET locked = ? WHERE subject = ? AND locked IS NULL AND failures >= ?", arguments: [now, s, n])
                    }
                }
                return try Self.signInRecords(db, subjects)
            }
        }
    }

    public func clearSignInFailures(_ subjects: [String]) async throws {
        try await run { r in
            try r.database.write { db in
                for s in subjects { try db.execute(sql: "DELETE FROM hub_signin WHERE subject = ? AND locked IS NULL", arguments: [s]) }
            }
        }
    }

    public func logSecurityEvent(_ e: SecurityEvent) async throws {
        try await run { r in
            try r.database.write { db in try Self.logSecurityEvent(db, e) }
        }
    }

    static func logSecurityEvent(_ db: Database, _ e: SecurityEvent) throws {
        try db.execute(sql: "INSERT INTO hub_security_event(at, kind, subject, address, detail) VALUES (?, ?, ?, ?, ?)",
                       arguments: [e.at, e.kind, e.subject, e.address, String(e.detail.prefix(1000))])
        // The log keeps its last 100,000 events.
        try db.execute(sql: "DELETE FROM hub_security_event WHERE id <= (SELECT max(id) FROM hub_security_event) - 100000")
    }

    /// Lifts the lock on an account or an address (`fieldsync-hub supervisor unlock`); false when
    /// it was not locked.
    public static func unlock(_ r: Replica, subject: String) throws -> Bool {
        try r.database.write { db in
            try db.execute(sql: "DELETE FROM hub_signin WHERE subject = ?", arguments: [subject])
            let changed = db.changesCount > 0
            if changed {
                try logSecurityEvent(db, SecurityEvent(at: now(), kind: "signin_unlocked", subject: subject, address: nil, detail: "unlocked by an administrator"))
            }
            return changed
        }
    }

    /// The newest security events (`fieldsync-hub security-log`).
    public static func securityEvents(_ r: Replica, limit: Int) throws -> [SecurityEvent] {
        try r.database.read { db in
            try Row.fetchAll(db, sql: "SELECT at, kind, subject, address, detail FROM hub_security_event ORDER BY id DESC LIMIT ?", arguments: [limit]).map {
                SecurityEvent(at: $0["at"], kind: $0["kind"], subject: $0["subject"], address: $0["address"], detail: $0["detail"])
            }
        }
    }

    public func session(token: String) async throws -> Session {
        try await run { r in
            let row = try r.database.read { db in
                try Row.fetchOne(db, sql: """
                    SELECT s.supervisor, s.expires, s.csrf, p.scope, p.disabled FROM hub_session s JOIN hub_supervisor p ON p.name = s.supervisor
                    WHERE s.token_hash = ?
                    """, arguments: [Self.hash(token)])
            }
            guard let row else { throw HubFailure(.badSession, "not signed in (or the session ended): sign in again") }
            guard (row["expires"] as Int64) > self.now() else { throw HubFailure(.sessionExpired, "the session has expired: sign in again") }
            guard (row["disabled"] as Int64?) == nil else { throw HubFailure(.disabled, "this supervisor account is disabled") }
            return Session(token: token, supervisor: Supervisor(name: row["supervisor"], scope: row["scope"]), expires: row["expires"], csrf: row["csrf"])
        }
    }

    public func logout(token: String) async throws {
        try await run { r in try r.database.write { try $0.execute(sql: "DELETE FROM hub_session WHERE token_hash = ?", arguments: [Self.hash(token)]) } }
    }

    // MARK: Conflicts in a supervisor's scope

    public static func conflicts(_ r: Replica, for s: Supervisor, _ filter: ConflictFilter) throws -> [ConflictInfo] {
        guard let f = SupervisorRules.scoped(filter, s) else { return [] }
        return try r.conflicts(matching: f)
    }

    /// The conflict is looked for among the supervisor's records only: one outside the scope is
    /// "not found", word for word as a missing one, and an ambiguous prefix names only records
    /// inside the scope (docs/security.md).
    public static func conflictDetail(_ r: Replica, for s: Supervisor, _ id: String) throws -> ConflictDetail {
        try r.conflictDetail(id, scope: s.scope)
    }

    public static func resolve(_ r: Replica, for s: Supervisor, _ id: String, _ how: Resolution, note: String?) throws -> EditResult {
        try r.resolveConflict(id, how, author: s.name, note: SupervisorRules.settlingNote(note), scope: s.scope)
    }

    public static func resolveAll(_ r: Replica, for s: Supervisor, _ filter: ConflictFilter, _ how: Resolution, note: String?) throws -> [EditResult] {
        guard let f = SupervisorRules.scoped(filter, s) else { return [] }
        return try r.resolveConflicts(matching: f, how, author: s.name, note: SupervisorRules.settlingNote(note))
    }

    public static func summary(_ r: Replica, for s: Supervisor, _ filter: ConflictFilter) throws -> ConflictSummary {
        guard let f = SupervisorRules.scoped(filter, s) else { return SupervisorRules.noConflicts }
        return try r.conflictSummary(matching: f)
    }

    public func addSupervisor(name: String, scope: String, password: String) async throws -> SupervisorInfo {
        try await run { try Self.addSupervisor($0, name: name, scope: scope, password: password) }
    }
    public func supervisors() async throws -> [SupervisorInfo] { try await run { try Self.supervisors($0) } }
    public func disableSupervisor(name: String) async throws { try await run { try Self.disableSupervisor($0, name: name) } }
    public func supervisor(named name: String) async throws -> Supervisor { try await run { try Self.supervisor($0, named: name) } }
    public var location: String { path }
    public func vitals() async throws -> HubVitals {
        try await run { r in
            try r.database.read { db in
                var devices: [String: Int] = [:]
                for row in try Row.fetchAll(db, sql: """
                    SELECT CASE WHEN revoked IS NOT NULL THEN 'revoked' WHEN enrolled IS NULL THEN 'awaiting enrolment' ELSE 'enrolled' END AS s, count(*)
                    FROM hub_device GROUP BY s
                    """) { devices[row[0]] = row[1] }
                return HubVitals(openConflicts: try Int.fetchOne(db, sql: "SELECT count(*) FROM fs_conflict") ?? 0,
                                 changeLogPosition: try Int64.fetchOne(db, sql: "SELECT COALESCE(max(seq), 0) FROM fs_change") ?? 0,
                                 devices: devices, retries: 0)
            }
        }
    }
    public func close() async { checkpoint() }
    public func unlock(subject: String) async throws -> Bool { try await run { try Self.unlock($0, subject: subject) } }
    public func securityEvents(limit: Int) async throws -> [SecurityEvent] { try await run { try Self.securityEvents($0, limit: limit) } }

    public func conflicts(for s: Supervisor, _ f: ConflictFilter) async throws -> [ConflictInfo] { try await run { try Self.conflicts($0, for: s, f) } }
    public func conflictDetail(for s: Supervisor, _ id: String) async throws -> ConflictDetail { try await run { try Self.conflictDetail($0, for: s, id) } }
    public func resolve(for s: Supervisor, _ id: String, _ how: Resolution, note: String?) async throws -> EditResult {
        try await run { try Self.resolve($0, for: s, id, how, note: note) }
    }
    public func resolveAll(for s: Supervisor, _ f: ConflictFilter, _ how: Resolution, note: String?) async throws -> [EditResult] {
        try await run { try Self.resolveAll($0, for: s, f, how, note: note) }
    }
    public func conflictSummary(for s: Supervisor, _ f: ConflictFilter) async throws -> ConflictSummary { try await run { try Self.summary($0, for: s, f) } }
    /// The hub's clock (``clock``): sign-in waits and session expiry are judged by it.
    public func now() -> Int64 { clock() }
}

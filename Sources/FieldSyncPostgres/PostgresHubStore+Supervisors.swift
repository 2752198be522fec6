import FieldSyncCore
import FieldSyncHub
import FieldSyncReplica
import FieldSyncTrust
import Foundation
import PostgresNIO

// MARK: - Supervisors, sessions, sign-in records

extension PostgresHubStore {
    public func addSupervisor(name: String, scope: String, password: String) async throws -> SupervisorInfo {
        try SupervisorRules.checkNew(name: name, scope: scope, password: password)
        let salt = Hex.random(bytes: 16)
        let hash = PasswordHash.derive(password, salt: salt, iterations: PasswordHash.iterations) ?? ""
        let now = self.now()
        try await transaction { pg in
            let inserted = try await pg.rows("""
                INSERT INTO hub_supervisor(name, scope, salt, iterations, password_hash, created) VALUES ($1, $2, $3, $4, $5, $6)
                ON CONFLICT (name) DO NOTHING RETURNING name
                """, [.text(name), .text(scope), .text(salt), .int(Int64(PasswordHash.iterations)), .text(hash), .int(now)])
            if inserted.isEmpty { throw HubFailure(.exists, "a supervisor named \(name) exists already") }
        }
        return SupervisorInfo(name: name, scope: scope, created: now, disabled: nil, lastLogin: nil)
    }

    public func supervisors() async throws -> [SupervisorInfo] {
        try await read { pg in
            try await pg.rows("SELECT name, scope, created, disabled, last_login FROM hub_supervisor ORDER BY created, name").map {
                SupervisorInfo(name: try $0.text(0), scope: try $0.text(1), created: try $0.int(2), disabled: try $0.optInt(3), lastLogin: try $0.optInt(4))
            }
        }
    }

    public func disableSupervisor(name: String) async throws {
        let now = self.now()
        let n = try await transaction { pg -> Int in
            let r = try await pg.rows("UPDATE hub_supervisor SET disabled = $1 WHERE name = $2 AND disabled IS NULL RETURNING name", [.int(now), .text(name)])
            try await pg.exec("DELETE FROM hub_session WHERE supervisor = $1", [.text(name)])
            return r.count
        }
        guard n == 1 else { throw HubFailure(.notFound, "no active supervisor named \(name)") }
    }

    public func supervisor(named name: String) async throws -> Supervisor {
        guard let a = try await supervisorAccount(named: name) else {
            throw HubFailure(.notFound, "no supervisor named \(name) (fieldsync-hub supervisor add)")
        }
        if a.disabled { throw HubFailure(.disabled, "supervisor \(name) is disabled") }
        return Supervisor(name: name, scope: a.scope)
    }

    public func supervisorAccount(named name: String) async throws -> SupervisorAccount? {
        try await read { pg in
            try await pg.one("SELECT scope, salt, iterations, password_hash, disabled FROM hub_supervisor WHERE name = $1", [.text(name)]).map {
                SupervisorAccount(name: name, scope: try $0.text(0), salt: try $0.text(1), iterations: Int(try $0[2].decode(Int32.self)),
                                  passwordHash: try $0.text(3), disabled: try $0.optInt(4) != nil)
            }
        }
    }

    public func createSession(_ session: Session, passwordHash: String, maxPerAccount: Int) async throws -> Bool {
        let now = self.now()
        return try await transaction { pg in
            let name = session.supervisor.name
            guard try await pg.one("SELECT 1 FROM hub_supervisor WHERE name = $1 AND disabled IS NULL AND password_hash = $2 FOR UPDATE",
                                   [.text(name), .text(passwordHash)]) != nil else { return false }
            try await pg.exec("DELETE FROM hub_session WHERE expires < $1", [.int(now)])
            try await pg.exec("INSERT INTO hub_session(token_hash, supervisor, created, expires, csrf) VALUES ($1, $2, $3, $4, $5)",
                              [.text(Enrolment.hash(session.token)), .text(name), .int(now), .int(session.expires), .text(session.csrf)])
            try await pg.exec("""
                DELETE FROM hub_session WHERE supervisor = $1 AND token_hash NOT IN
                  (SELECT token_hash FROM hub_session WHERE supervisor = $1 ORDER BY created DESC, token_hash DESC LIMIT $2)
                """, [.text(name), .int(Int64(maxPerAccount))])
            try await pg.exec("UPDATE hub_supervisor SET last_login = $1 WHERE name = $2", [.int(now), .text(name)])
            return true
        }
    }

    public func session(token: String) async throws -> Session {
        let now = self.now()
        return try await read { pg in
            guard let r = try await pg.one("""
                SELECT s.supervisor, s.expires, s.csrf, p.scope, p.disabled FROM hub_session s JOIN hub_supervisor p ON p.name = s.supervisor
                WHERE s.token_hash = $1
                """, [.text(Enrolment.hash(token))]) else {
                throw HubFailure(.badSession, "not signed in (or the session ended): sign in again")
            }
            guard try r.int(1) > now else { throw HubFailure(.sessionExpired, "the session has expired: sign in again") }
            guard try r.optInt(4) == nil else { throw HubFailure(.disabled, "this supervisor account is disabled") }
            return Session(token: token, supervisor: Supervisor(name: try r.text(0), scope: try r.text(3)), expires: try r.int(1), csrf: try r.text(2))
        }
    }

    public func logout(token: String) async throws {
        try await transaction { pg in try await pg.exec("DELETE FROM hub_session WHERE token_hash = $1", [.text(Enrolment.hash(token))]) }
    }

    static func signInRecords(_ pg: PG, _ subjects: [String]) async throws -> [String: SignInRecord] {
        var out: [String: SignInRecord] = [:]
        for r in try await pg.rows("SELECT subject, failures, last_failure, locked FROM hub_signin WHERE subject = ANY($1::text[])", [.texts(subjects)]) {
            out[try r.text(0)] = SignInRecord(failures: Int(try r[1].decode(Int32.self)), lastFailure: try r.int(2), locked: try r.optInt(3))
        }
        return out
    }

    public func signInRecords(_ subjects: [String]) async throws -> [String: SignInRecord] {
        try await read { pg in try await Self.signInRecords(pg, subjects) }
    }

    public func reserveSignIn(_ subjects: [String], at now: Int64, refuses: @escaping @Sendable (SignInRecord, Int64) -> Bool) async throws -> [String: SignInRecord]? {
        try await transaction { pg in
            // Every process counts attempts in the same rows: lock them (in subject order).
            for s in subjects.sorted() {
                try await pg.exec("INSERT INTO hub_signin(subject, failures, last_failure) VALUES ($1, 0, 0) ON CONFLICT (subject) DO NOTHING", [.text(s)])
            }
            try await pg.exec("SELECT subject FROM hub_signin WHERE subject = ANY($1::text[]) ORDER BY subject FOR UPDATE", [.texts(subjects)])
            let records = try await Self.signInRecords(pg, subjects)
            if records.values.contains(where: { refuses($0, now) }) {
                try await pg.exec("DELETE FROM hub_signin WHERE subject = ANY($1::text[]) AND failures = 0 AND locked IS NULL", [.texts(subjects)])
                return records
            }
            try await pg.exec("DELETE FROM hub_signin WHERE locked IS NULL AND last_failure < $1 AND failures > 0", [.int(now - 86_400_000)])
            try await pg.exec("""
                UPDATE hub_signin SET failures = failures + 1, last_failure = GREATEST(last_failure, $2) WHERE subject = ANY($1::text[])
                """, [.texts(subjects), .int(now)])
            for s in subjects {
                try await pg.exec("INSERT INTO hub_signin(subject, failures, last_failure) VALUES ($1, 1, $2) ON CONFLICT (subject) DO NOTHING", [.text(s), .int(now)])
            }
            return nil
        }
    }

    public func releaseSignIn(_ subjects: [String]) async throws {
        try await transaction { pg in
            try await pg.exec("UPDATE hub_signin SET failures = GREATEST(0, failures - 1) WHERE subject = ANY($1::text[]) AND locked IS NULL", [.texts(subjects)])
            try await pg.exec("DELETE FROM hub_signin WHERE subject = ANY($1::text[]) AND failures = 0 AND locked IS NULL", [.texts(subjects)])
        }
    }

    public func recordSignInFailure(_ subjects: [String], at now: Int64, lockAt: [String: Int]) async throws -> [String: SignInRecord] {
        try await transaction { pg in
            for s in subjects {
                try await pg.exec("""
                    INSERT INTO hub_signin(subject, failures, last_failure) VALUES ($1, 1, $2)
                    ON CONFLICT (subject) DO UPDATE SET last_failure = GREATEST(hub_signin.last_failure, excluded.last_failure)
                    """, [.text(s), .int(now)])
                if let n = lockAt[s] {
                    try await pg.exec("UPDATE hub_signin SET locked = $1 WHERE subject = $2 AND locked IS NULL AND failures >= $3",
                                      [.int(now), .text(s), .int(Int64(n))])
                }
            }
            return try await Self.signInRecords(pg, subjects)
        }
    }

    public func clearSignInFailures(_ subjects: [String]) async throws {
        try await transaction { pg in try await pg.exec("DELETE FROM hub_signin WHERE subject = ANY($1::text[]) AND locked IS NULL", [.texts(subjects)]) }
    }

    public func logSecurityEvent(_ e: SecurityEvent) async throws {
        try await transaction { pg in
            try await pg.exec("INSERT INTO hub_security_event(at, kind, subject, address, detail) VALUES ($1, $2, $3, $4, $5)",
                              [.int(e.at), .text(e.kind), .text(e.subject), .opt(e.address), .text(String(e.detail.prefix(1000)))])
            try await pg.exec("DELETE FROM hub_security_event WHERE id <= (SELECT max(id) FROM hub_security_event) - 100000")
        }
    }

    public func unlock(subject: String) async throws -> Bool {
        let now = self.now()
        return try await transaction { pg in
            let gone = try await pg.rows("DELETE FROM hub_signin WHERE subject = $1 RETURNING subject", [.text(subject)])
            if !gone.isEmpty {
                try await pg.exec("INSERT INTO hub_security_event(at, kind, subject, address, detail) VALUES ($1, 'signin_unlocked', $2, NULL, 'unlocked by an administrator')",
                                  [.int(now), .text(subject)])
            }
            return !gone.isEmpty
        }
    }

    public func securityEvents(limit: Int) async throws -> [SecurityEvent] {
        try await read { pg in
            try await pg.rows("SELECT at, kind, subject, address, detail FROM hub_security_event ORDER BY id DESC LIMIT $1", [.int(Int64(limit))]).map {
                SecurityEvent(at: try $0.int(0), kind: try $0.text(1), subject: try $0.text(2), address: try $0.optText(3), detail: try $0.text(4))
            }
        }
    }
}

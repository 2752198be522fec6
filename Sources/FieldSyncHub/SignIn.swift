import FieldSyncCore
import FieldSyncTrust
import Foundation
import Logging

// MARK: - Stored sign-in state

/// A supervisor account as sign-in needs it.
public struct SupervisorAccount: Sendable {
    public var name: String
    public var scope: String
    public var salt: String
    public var iterations: Int
    public var passwordHash: String
    public var disabled: Bool

    public init(name: String, scope: String, salt: String, iterations: Int, passwordHash: String, disabled: Bool) {
        (self.name, self.scope, self.salt, self.iterations, self.passwordHash, self.disabled) = (name, scope, salt, iterations, passwordHash, disabled)
    }
}

/// Failed sign-ins of one subject: an account (`account:NAME`) or a client address (`address:IP`).
public struct SignInRecord: Sendable, Equatable {
    public var failures: Int
    public var lastFailure: Int64
    /// When it was locked (an administrator lifts the lock: `fieldsync-hub supervisor unlock`).
    public var locked: Int64?

    public init(failures: Int, lastFailure: Int64, locked: Int64?) {
        self.failures = failures
        self.lastFailure = lastFailure
        self.locked = locked
    }
}

/// A security event, kept in the hub's store and written to the log (docs/security.md).
public struct SecurityEvent: Sendable {
    public var at: Int64
    /// `signin_failed`, `signin_locked`, `signin_unlocked` (throttled, busy and locked-out
    /// attempts go to the log only: storing each would let a flood grow the hub's file).
    public var kind: String
    /// The account (or address) it concerns.
    public var subject: String
    public var address: String?
    public var detail: String

    public init(at: Int64, kind: String, subject: String, address: String?, detail: String) {
        self.at = at
        self.kind = kind
        self.subject = subject
        self.address = address
        self.detail = detail
    }
}

// MARK: - SignInPolicy

/// How failed sign-ins slow an attacker down (docs/security.md). Each account and each client
/// address counts its consecutive failures: the first three cost nothing, then each further
/// attempt must wait 1 s, 2 s, 4 s … (at most 15 min) after the last failure, and is refused
/// with 429 before any password is hashed. At 10 failures an account is locked, at 50 an
/// address, until an administrator lifts the lock. A success clears both counts.
public enum SignInPolicy {
    public static let freeFailures = 3
    public static let accountLockAt = 10
    public static let addressLockAt = 50
    public static let maxDelayMs: Int64 = 15 * 60_000
    /// Sessions one account may hold at once; a new sign-in beyond it ends the oldest.
    public static let maxSessionsPerAccount = 10

    /// How long after its last failure a subject with `failures` failures must wait.
    public static func delay(failures: Int) -> Int64 {
        guard failures >= freeFailures else { return 0 }
        let shift = min(failures - freeFailures, 20)
        return min(maxDelayMs, Int64(1000) << shift)
    }

    public static func account(_ name: String) -> String { "account:\(name)" }
    public static func address(_ ip: String) -> String { "address:\(ip)" }

    static func lockAt(_ subject: String) -> Int { subject.hasPrefix("account:") ? accountLockAt : addressLockAt }
}

// MARK: - PasswordHashingPool

/// Where password hashes are computed: one at a time on their own thread, with a short queue.
/// A flood of sign-ins gets 429 at once instead of taking the CPU that syncing needs.
public final class PasswordHashingPool: @unchecked Sendable {
    private let queue = DispatchQueue(label: "fieldsync.hub.passwords", qos: .utility)
    private let lock = NSLock()
    private var pending = 0
    /// Hashes running or waiting, at most.
    public let capacity: Int

    public init(capacity: Int = 4) { self.capacity = capacity }

    /// Runs `body` on the pool, or returns nil at once when the pool is full.
    public func run<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T? {
        guard take() else { return nil }
        return await withCheckedContinuation { cont in
            queue.async {
                let v = body()
                self.lock.withLock { self.pending -= 1 }
                cont.resume(returning: v)
            }
        }
    }

    private func take() -> Bool {
        lock.withLock {
            guard pending < capacity else { return false }
            pending += 1
            return true
        }
    }
}

// MARK: - SignIn

/// Signing a supervisor in, for the JSON API and the console alike: throttling, the bounded
/// hashing pool, the session. The store only keeps what this decides.
public struct SignIn: Sendable {
    public let store: any HubStore
    public let pool: PasswordHashingPool
    public let logger: Logger

    public init(store: any HubStore, pool: PasswordHashingPool, logger: Logger) {
        self.store = store
        self.pool = pool
        self.logger = logger
    }

    /// A session for `name`, or a ``HubFailure``: 401 `bad_credentials`, 429 `too_many_attempts`
    /// (with the seconds to wait), 429 `busy` (the hashing pool is full), 403 `locked`.
    public func callAsFunction(name: String, password: String, address: String?) async throws -> Session {
        let stored = try await store.supervisorAccount(named: name)
        let account = SignInPolicy.account(name)
        // Failures count against the account only when it exists: invented names must not fill the table.
        let subjects = (stored != nil ? [account] : []) + (address.map { [SignInPolicy.address($0)] } ?? [])
        // The attempt is counted before its password is hashed, atomically with the check, so
        // attempts arriving together cannot all pass one wait.
        if let records = try await store.reserveSignIn(subjects, at: store.now(), refuses: { r, now in
            r.locked != nil || r.lastFailure + SignInPolicy.delay(failures: r.failures) > now
        }) {
            try refuse(records, name: name, address: address)
        }
        let verified: Bool? = await pool.run {
            guard let stored else {
                // The same work as a wrong password, so timing does not tell which names exist.
                _ = PasswordHash.derive(password, salt: "x", iterations: PasswordHash.iterations)
                return false
            }
            guard let h = PasswordHash.derive(password, salt: stored.salt, iterations: stored.iterations) else { return false }
            return Hex.equalInConstantTime(h, stored.passwordHash) && !stored.disabled
        }
        guard let verified else {
            try await store.releaseSignIn(subjects)
            logger.warning("security: sign-in refused, the password pool is full (\(pool.capacity) hashes at once)", metadata: ["account": "\(name)"])
            throw HubFailure(.busy, "同步中心正忙，请稍后再试 (too many sign-ins at once; try again in a few seconds)", retryAfter: 2)
        }
        guard verified, let stored else {
            // The wait runs from when the attempt failed, not from when it began (it may have queued).
            let failedAt = store.now()
            let after = try await store.recordSignInFailure(subjects, at: failedAt, lockAt: Dictionary(uniqueKeysWithValues: subjects.map { ($0, SignInPolicy.lockAt($0)) }))
            try await note("signin_failed", account, address, "wrong name or password (\(after[account]?.failures ?? 0) in a row for the account)")
            for (s, r) in after where r.locked == failedAt {
                try await note("signin_locked", s, address, "locked after \(r.failures) failed sign-ins")
            }
            throw HubFailure(.badCredentials, "the name or password is wrong")
        }
        try await store.clearSignInFailures(subjects)
        let token = "fss_" + Hex.random(bytes: 32)
        let session = Session(token: token, supervisor: Supervisor(name: name, scope: stored.scope),
                              expires: store.now() + SQLiteHubStore.sessionLifetimeMs, csrf: Hex.random(bytes: 16))
        // The account may have been disabled, or its password changed, while hashing.
        guard try await store.createSession(session, passwordHash: stored.passwordHash, maxPerAccount: SignInPolicy.maxSessionsPerAccount) else {
            throw HubFailure(.badCredentials, "the name or password is wrong")
        }
        return session
    }

    /// The refusal of an attempt a subject's record holds back: a lock, or a wait not over.
    func refuse(_ records: [String: SignInRecord], name: String, address: String?) throws -> Never {
        let now = store.now()
        if let (s, r) = records.first(where: { $0.value.locked != nil }) {
            // Logged, not stored: hammering a locked account must not grow the hub's file.
            logger.warning("security: sign-in to locked \(s)", metadata: ["address": "\(address ?? "-")"])
            throw HubFailure(.locked, s.hasPrefix("account:")
                ? "账号因多次密码错误已锁定，请联系同步中心管理员解锁 (account locked after \(r.failures) failed sign-ins; an administrator unlocks it: fieldsync-hub supervisor unlock \(name))"
                : "此地址因多次登录失败已被锁定，请联系同步中心管理员 (this address is locked after \(r.failures) failed sign-ins; an administrator unlocks it: fieldsync-hub supervisor unlock --address \(address ?? ""))")
        }
        let wait = records.values.map { $0.lastFailure + SignInPolicy.delay(failures: $0.failures) - now }.max() ?? 1000
        let seconds = Int((max(wait, 1) + 999) / 1000)
        throw HubFailure(.tooManyAttempts, "登录失败次数过多，请 \(seconds) 秒后再试 (too many failed sign-ins: wait \(seconds) s)", retryAfter: seconds)
    }

    func note(_ kind: String, _ subject: String, _ address: String?, _ detail: String) async throws {
        logger.warning("security: \(kind) \(subject): \(detail)", metadata: ["address": "\(address ?? "-")"])
        try await store.logSecurityEvent(SecurityEvent(at: store.now(), kind: kind, subject: subject, address: address, detail: detail))
    }
}

import FieldSyncCore
import FieldSyncTrust
@testable import FieldSyncHub
@_spi(Hub) import FieldSyncReplica
import Foundation
import GRDB
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import Testing

/// Supervisor sign-in throttling (SignIn.swift, Supervisors.swift): three free failures, then a
/// doubling wait refused with 429 before any hashing; an account locked at 10 failures and an
/// address at 50 until an administrator unlocks it; invented names counted only against the
/// address; a success clearing the counts; security events kept; sessions per account bounded;
/// a bounded password-hashing pool answering 429 `busy` beyond it.
///
/// Most tests call ``SignIn`` in process with an `address:` (in-process router tests have no
/// client address), on a hub whose clock the test moves by hand: waits are judged by it, so no
/// test waits and none depends on how loaded the machine is. The last test floods a live
/// `fieldsync-hub serve` over HTTP.
@Suite struct SignInThrottleSpec {
    static let name = "陈主任"
    static let password = "correct horse"
    static let wrong = "wrong horse!"
    static let account = SignInPolicy.account(name)

    /// A hub with the supervisor 陈主任 (scope village1) and a SignIn with its own pool.
    struct World {
        let f: StoreFixture
        let signIn: SignIn
        /// The hub's clock.
        let clock = ManualClock()
        var store: any HubStore { f.store }
        /// The router as the hub has it, with a quiet log.
        var app: some ApplicationProtocol { Application(router: HubHTTP.router(store: f.store, logger: quietLogger()), logger: quietLogger()) }

        /// `fullHash: false` stores 陈主任's password with 1,000 PBKDF2 iterations instead of
        /// 210,000 (the count is kept per account, as after an upgrade): checking it takes
        /// milliseconds, so no test's timing depends on how loaded the machine is. Invented names
        /// are always hashed at the full count.
        init(_ kind: StoreKind, pool: PasswordHashingPool = PasswordHashingPool(), fullHash: Bool = false, _ test: String = #function) async throws {
            f = try await StoreFixture(kind, test, clock: clock)
            _ = try await f.store.addSupervisor(name: SignInThrottleSpec.name, scope: village1, password: SignInThrottleSpec.password)
            if !fullHash {
                let salt = try #require(try await f.strings("SELECT salt FROM hub_supervisor WHERE name = ?", [.text(SignInThrottleSpec.name)]).first)
                let hash = PasswordHash.derive(SignInThrottleSpec.password, salt: salt, iterations: 1000)!
                try await f.execute("UPDATE hub_supervisor SET iterations = 1000, password_hash = ? WHERE name = ?", [.text(hash), .text(SignInThrottleSpec.name)])
            }
            signIn = SignIn(store: f.store, pool: pool, logger: quietLogger())
        }

        func attempt(_ password: String, name: String = SignInThrottleSpec.name, from address: String?) async throws -> Result<Session, HubFailure> {
            do { return .success(try await signIn(name: name, password: password, address: address)) } catch let f as HubFailure { return .failure(f) }
        }

        /// hub_signin as it stands: subject → (failures, locked).
        func records() async throws -> [String: (failures: Int, locked: Bool)] {
            var out: [String: (Int, Bool)] = [:]
            for row in try await f.rows("SELECT subject, failures, locked FROM hub_signin") {
                out[row[0].description] = (Int(row[1].int ?? -1), row[2] != .null)
            }
            return out
        }

        /// Security events, oldest first.
        func events() async throws -> [SecurityEvent] { try await store.securityEvents(limit: 100_000).reversed() }

        /// `n` failures of `subject`, the last `ago` ms ago (locking at `lockAt`).
        func fail(_ subject: String, _ n: Int, ago: Int64, lockAt: Int? = nil) async throws {
            for _ in 0..<n {
                // As SignIn counts one: reserved when it begins, recorded when it fails.
                let at = store.now() - ago
                #expect(try await store.reserveSignIn([subject], at: at, refuses: { _, _ in false }) == nil)
                _ = try await store.recordSignInFailure([subject], at: at, lockAt: lockAt.map { [subject: $0] } ?? [:])
            }
        }

        func unlock(_ subject: String) async throws -> Bool { try await store.unlock(subject: subject) }
    }

    // MARK: The wait

    @Test(arguments: StoreKind.available) func threeFailuresAreFreeThenEvenTheRightPasswordWaitsForRetryAfterAndNoLonger(kind: StoreKind) async throws {
        let w = try await World(kind)
        let address = "10.0.0.1"
        for i in 1...3 {
            let r = try await w.attempt(Self.wrong, from: address)
            #expect(r.failure?.status == 401 && r.failure?.code == "bad_credentials", "free failure \(i): \(String(describing: r.failure))")
        }
        // An immediate retry is refused, even with the right password.
        let refused = try await w.attempt(Self.password, from: address)
        #expect(refused.failure?.status == 429 && refused.failure?.code == "too_many_attempts", "\(String(describing: refused.failure))")
        #expect(refused.failure?.retryAfter == 1)
        #expect(refused.failure?.message.contains("wait 1 s") == true)
        // Refused before any hashing: through a pool that hashes nothing it is still a wait, not `busy`.
        let noHashing = SignIn(store: w.store, pool: PasswordHashingPool(capacity: 0), logger: quietLogger())
        do {
            _ = try await noHashing(name: Self.name, password: Self.password, address: address)
            Issue.record("a throttled sign-in succeeded")
        } catch let f as HubFailure {
            #expect(f.code == "too_many_attempts", "\(f)")
        }
        // A refusal is not a failure: the counts stay at 3.
        #expect(try await w.records()[Self.account]?.failures == 3)
        #expect(try await w.records()[SignInPolicy.address(address)]?.failures == 3)
        // The JSON API answers 429 with Retry-After.
        try await w.app.test(.router) { client in
            try await client.execute(uri: "/v1/sessions", method: .post, body: signInBody(Self.name, Self.password)) { r in
                #expect(r.status == .tooManyRequests)
                #expect(r.headers[.retryAfter] == "1")
                #expect(body(r)["error"]?["code"] == "too_many_attempts")
            }
        }
        // Waiting Retry-After is enough: then the right password is taken (not a moment before).
        w.clock.advance(990)
        #expect(try await w.attempt(Self.password, from: address).failure?.code == "too_many_attempts")
        w.clock.advance(10)
        let ok = try await w.attempt(Self.password, from: address)
        #expect(ok.session != nil, "after Retry-After: \(String(describing: ok.failure))")
    }

    @Test(arguments: StoreKind.available) func theWaitDoublesFromTheLastFailureUpToFifteenMinutes(kind: StoreKind) async throws {
        #expect((0...2).map { SignInPolicy.delay(failures: $0) } == [0, 0, 0])
        #expect((3...7).map { SignInPolicy.delay(failures: $0) } == [1000, 2000, 4000, 8000, 16000])
        #expect(SignInPolicy.delay(failures: 40) == 15 * 60_000)
        let w = try await World(kind)
        // n failures just now from an address: the right password from it waits 2^(n-3) s.
        for n in 3...7 {
            let address = "10.0.1.\(n)"
            try await w.fail(SignInPolicy.address(address), n, ago: 0)
            let r = try await w.attempt(Self.password, from: address)
            #expect(r.failure?.code == "too_many_attempts" && r.failure?.retryAfter == 1 << (n - 3), "\(n) failures: \(String(describing: r.failure))")
        }
        // 30 failures (an address locks only at 50): the wait is capped at 15 minutes.
        try await w.fail(SignInPolicy.address("10.0.1.30"), 30, ago: 0)
        #expect(try await w.attempt(Self.password, from: "10.0.1.30").failure?.retryAfter == 900)
        // The wait runs from the last failure: 4 failures 1.5 s ago leave 0.5 s (Retry-After 1) …
        try await w.fail(SignInPolicy.address("10.0.1.100"), 4, ago: 1500)
        #expect(try await w.attempt(Self.password, from: "10.0.1.100").failure?.retryAfter == 1)
        // … and 4 failures 2.1 s ago leave none.
        try await w.fail(SignInPolicy.address("10.0.1.101"), 4, ago: 2100)
        let ok = try await w.attempt(Self.password, from: "10.0.1.101")
        #expect(ok.session != nil, "\(String(describing: ok.failure))")
    }

    @Test(arguments: StoreKind.available) func aFailureQueuedForTheHashingPoolIsTimedFromWhenItFailed(kind: StoreKind) async throws {
        let pool = PasswordHashingPool(capacity: 2)
        let w = try await World(kind, pool: pool)
        // Two failures long ago: the next one is the third, after which the wait is 1 s.
        try await w.fail(Self.account, 2, ago: 3_600_000)
        // A third wrong password waits 1.5 s (of the hub's clock) in the pool's queue behind another hash.
        let started = Flag(), gate = DispatchSemaphore(value: 0)
        let blocker = Task { await pool.run { started.set(); gate.wait(); return true } }
        #expect(await started.wait(seconds: 60), "the blocking hash never started")
        let queued = Task { try await w.attempt(Self.wrong, from: nil) }
        try await Task.sleep(for: .milliseconds(200))
        w.clock.advance(1500)
        gate.signal()
        _ = await blocker.value
        #expect(try await queued.value.failure?.code == "bad_credentials")
        #expect(try await w.records()[Self.account]?.failures == 3)
        // It failed just now: an immediate retry waits its second, even with the right password.
        let next = try await w.attempt(Self.password, from: nil)
        #expect(next.failure?.code == "too_many_attempts", "the retry right after a queued failure was \(next.session != nil ? "signed in" : String(describing: next.failure))")
    }

    // MARK: Locks

    @Test(arguments: StoreKind.available) func tenFailuresLockTheAccountEvenAgainstTheRightPasswordUntilAnAdministratorUnlocksIt(kind: StoreKind) async throws {
        let w = try await World(kind)
        // Nine failures an hour ago (their wait is over), then a tenth, real one.
        try await w.fail(Self.account, 9, ago: 3_600_000, lockAt: SignInPolicy.accountLockAt)
        #expect(try await w.records()[Self.account].map { [$0.failures, $0.locked ? 1 : 0] } == [9, 0])
        let tenth = try await w.attempt(Self.wrong, from: "10.0.2.1")
        #expect(tenth.failure?.code == "bad_credentials")
        #expect(try await w.records()[Self.account].map { [$0.failures, $0.locked ? 1 : 0] } == [10, 1])

        let eventsBefore = try await w.events().count
        for address in ["10.0.2.1", "10.0.2.2", nil] {
            let r = try await w.attempt(Self.password, from: address)
            #expect(r.failure?.status == 403 && r.failure?.code == "locked", "from \(address ?? "-"): \(String(describing: r.failure))")
            #expect(r.failure?.message.contains("fieldsync-hub supervisor unlock \(Self.name)") == true, "\(String(describing: r.failure?.message))")
        }
        try await w.app.test(.router) { client in
            try await client.execute(uri: "/v1/sessions", method: .post, body: signInBody(Self.name, Self.password)) { r in
                #expect(r.status == .forbidden)
                #expect(body(r)["error"]?["code"] == "locked")
                #expect(r.headers[.retryAfter] == nil, "a lock is not lifted by waiting")
            }
        }
        // Knocking on a locked account is logged, not stored: the hub's file does not grow.
        #expect(try await w.events().count == eventsBefore)

        #expect(try await w.unlock(Self.account))
        let ok = try await w.attempt(Self.password, from: "10.0.2.1")
        #expect(ok.session != nil, "after unlock: \(String(describing: ok.failure))")
        #expect(try await w.unlock(Self.account) == false, "nothing left to unlock")

        let events = try await w.events()
        try #require(events.map(\.kind) == ["signin_failed", "signin_locked", "signin_unlocked"], "\(events.map(\.kind))")
        #expect(events.allSatisfy { $0.subject == Self.account })
        #expect(events.first?.address == "10.0.2.1" && events[1].address == "10.0.2.1")
        #expect(events.first?.detail.contains("10 in a row") == true, "\(events.first?.detail ?? "")")
        #expect(events[1].detail.contains("10 failed sign-ins"))
        #expect(events.last?.address == nil)
    }

    @Test(arguments: StoreKind.available) func fiftyFailuresFromOneAddressLockItForEveryAccountButNotTheAccountElsewhere(kind: StoreKind) async throws {
        let w = try await World(kind)
        let address = "10.0.3.1", subject = SignInPolicy.address(address)
        try await w.fail(subject, 49, ago: 3_600_000, lockAt: SignInPolicy.addressLockAt)
        #expect(try await w.records()[subject]?.locked == false)
        let fiftieth = try await w.attempt(Self.wrong, name: "nobody", from: address)
        #expect(fiftieth.failure?.code == "bad_credentials")
        #expect(try await w.records()[subject].map { [$0.failures, $0.locked ? 1 : 0] } == [50, 1])

        let fromThere = try await w.attempt(Self.password, from: address)
        #expect(fromThere.failure?.status == 403 && fromThere.failure?.code == "locked")
        #expect(fromThere.failure?.message.contains("supervisor unlock --address \(address)") == true, "\(String(describing: fromThere.failure?.message))")
        // The account itself is not locked: from elsewhere the right password works.
        let elsewhere = try await w.attempt(Self.password, from: "10.0.3.2")
        #expect(elsewhere.session != nil, "\(String(describing: elsewhere.failure))")
        // A success elsewhere does not lift the address's lock.
        #expect(try await w.attempt(Self.password, from: address).failure?.code == "locked")

        #expect(try await w.events().contains { $0.kind == "signin_locked" && $0.subject == subject && $0.detail.contains("50 failed") })
        #expect(try await w.unlock(subject))
        let after = try await w.attempt(Self.password, from: address)
        #expect(after.session != nil, "after unlocking the address: \(String(describing: after.failure))")
        #expect(try await w.events().last.map { [$0.kind, $0.subject] } == ["signin_unlocked", subject])
    }

    // MARK: What counts

    @Test(arguments: StoreKind.available) func unknownNamesCountOnlyAgainstTheAddressAndLookLikeAWrongPassword(kind: StoreKind) async throws {
        let w = try await World(kind)
        let address = "10.0.4.1"
        let wrongPassword = try await w.attempt(Self.wrong, from: "10.0.4.99").failure
        for name in ["nobody", "admin", "root"] {
            let r = try await w.attempt(Self.wrong, name: name, from: address)
            #expect(r.failure?.status == 401 && r.failure?.message == wrongPassword?.message, "\(name): \(String(describing: r.failure))")
        }
        let records = try await w.records()
        #expect(records[SignInPolicy.address(address)]?.failures == 3)
        #expect(!records.keys.contains { $0.hasPrefix("account:") && $0 != Self.account }, "invented names were stored: \(records.keys.sorted())")
        #expect(records[Self.account]?.failures == 1, "only the real wrong password counts for the account")
        // Inventing names does not escape the address's wait: one more failure just now makes
        // four, and the right password must wait 2 s. (The fourth is recorded directly: an
        // invented name's full hash can outlast a 1 s wait on a loaded machine.)
        try await w.fail(SignInPolicy.address(address), 1, ago: 0)
        let next = try await w.attempt(Self.password, from: address)
        #expect(next.failure?.code == "too_many_attempts" && next.failure?.retryAfter == 2, "\(String(describing: next.failure))")
        // Without an address, an invented name leaves no row at all.
        let before = try await w.records().count
        #expect(try await w.attempt(Self.wrong, name: "ghost", from: nil).failure?.status == 401)
        #expect(try await w.records().count == before)
        // Yet every failure is in the security log, under the name tried.
        #expect(try await w.events().filter { $0.kind == "signin_failed" }.map(\.subject)
            == [Self.account, "account:nobody", "account:admin", "account:root", "account:ghost"])
    }

    @Test(arguments: StoreKind.available) func aSuccessClearsTheCountsOfTheAccountAndTheAddress(kind: StoreKind) async throws {
        let w = try await World(kind)
        let address = "10.0.5.1"
        for _ in 0..<2 { #expect(try await w.attempt(Self.wrong, from: address).failure?.status == 401) }
        let counted = try await w.records()
        #expect(counted[Self.account]?.failures == 2 && counted[SignInPolicy.address(address)]?.failures == 2)
        #expect(try await w.attempt(Self.password, from: address).session != nil)
        let cleared = try await w.records()
        #expect(cleared.isEmpty, "\(cleared.keys.sorted())")
        // Three failures are free again, then the wait.
        for i in 1...3 { #expect(try await w.attempt(Self.wrong, from: address).failure?.status == 401, "failure \(i) after the success") }
        #expect(try await w.attempt(Self.password, from: address).failure?.code == "too_many_attempts")
    }

    // MARK: Sessions and the hashing pool

    @Test(arguments: StoreKind.available) func sessionsPerAccountAreBoundedAtTenAndTheOldestEnd(kind: StoreKind) async throws {
        let w = try await World(kind)
        var tokens: [String] = []
        for i in 0..<(SignInPolicy.maxSessionsPerAccount + 2) {
            let r = try await w.attempt(Self.password, from: "10.0.6.\(i)")
            tokens.append(try #require(r.session?.token, "sign-in \(i): \(String(describing: r.failure))"))
            w.clock.advance(1)  // one after another, as people sign in
        }
        let rows = try await w.f.int("SELECT count(*) FROM hub_session WHERE supervisor = ?", [.text(Self.name)])
        #expect(rows == Int64(SignInPolicy.maxSessionsPerAccount))
        for (i, t) in tokens.enumerated() {
            do {
                let s = try await w.store.session(token: t)
                #expect(i >= 2, "session \(i) should have ended")
                #expect(s.supervisor.name == Self.name)
            } catch let f as HubFailure {
                #expect(i < 2, "session \(i) ended: \(f)")
                #expect(f.code == "bad_session")
            }
        }
    }

    @Test(arguments: StoreKind.available) func aFullHashingPoolAnswersBusyWithoutCountingAFailure(kind: StoreKind) async throws {
        let pool = PasswordHashingPool(capacity: 1)
        let w = try await World(kind, pool: pool)
        // Occupy the pool's one place with a hash that waits for the test.
        let started = Flag(), gate = DispatchSemaphore(value: 0)
        let blocker = Task { await pool.run { started.set(); gate.wait(); return true } }
        #expect(await started.wait(seconds: 60), "the blocking hash never started")
        let busy = try await w.attempt(Self.password, from: "10.0.7.1")
        #expect(busy.failure?.status == 429 && busy.failure?.code == "busy", "\(String(describing: busy.failure))")
        #expect(busy.failure?.retryAfter == 2)
        #expect(try await w.records().isEmpty, "a busy refusal counted as a failure")
        // Only a place: no other sign-in may wait for it either.
        #expect(await pool.run { 1 } == nil)
        gate.signal()
        #expect(await blocker.value == true)
        let ok = try await w.attempt(Self.password, from: "10.0.7.1")
        #expect(ok.session != nil, "once the pool is free: \(String(describing: ok.failure))")
    }

    @Test(arguments: StoreKind.available) func aBurstOfSignInsBeyondThePoolGetsBusyWhileAtLeastOneSucceeds(kind: StoreKind) async throws {
        // The pool's one place is held by a full hash that ends only when the burst has been
        // answered (no timing: a loaded machine or a slower store cannot spread the burst out so
        // that no attempt finds the pool full). The first attempt takes the place.
        let pool = PasswordHashingPool(capacity: 1)
        let w = try await World(kind, pool: pool, fullHash: true)
        let started = Flag(), gate = DispatchSemaphore(value: 0)
        let first = Task { try await w.attempt(Self.password, from: "10.0.8.0") }
        let blocker = Task { await pool.run { started.set(); gate.wait(); return true } }
        #expect(await started.wait(seconds: 60), "the blocking hash never started")
        let outcomes = try await withThrowingTaskGroup(of: Result<Session, HubFailure>.self) { g in
            for i in 1..<8 { g.addTask { try await w.attempt(Self.password, from: "10.0.8.\(i)") } }
            return try await g.reduce(into: []) { $0.append($1) }
        }
        gate.signal()
        #expect(await blocker.value == true)
        // The first attempt either held the place before the blocker (then the blocker waited
        // for nothing: it ran after it) or found it taken and was answered busy.
        let all = outcomes + [try await first.value]
        let ok = all.filter { $0.session != nil }.count
        let busy = all.filter { $0.failure?.code == "busy" }.count
        // Attempts in flight count against the account until judged: beyond three at once, the
        // rest wait their turn (too_many_attempts).
        let waiting = all.filter { $0.failure?.code == "too_many_attempts" }.count
        print("SignInThrottleSpec: 8 concurrent sign-ins through a pool of 1: \(ok) signed in, \(busy) busy, \(waiting) told to wait")
        #expect(busy >= 1, "while the pool was full, no attempt was answered busy")
        #expect(ok + busy + waiting == all.count, "other outcomes: \(all.compactMap(\.failure))")
        #expect(try await w.records().isEmpty, "busy or waiting counted as failures")
        // Nothing was counted against the account: with the pool free, the password works.
        if ok == 0 {
            let again = try await w.attempt(Self.password, from: "10.0.8.9")
            #expect(again.session != nil, "once the pool is free: \(String(describing: again.failure))")
        }
    }

    // MARK: The console

    @Test(arguments: StoreKind.available) func theConsoleFormIsThrottledWithTheSameRetryAfter(kind: StoreKind) async throws {
        let w = try await World(kind)
        try await w.app.test(.router) { client in
            let b = ConsoleSpec.Browser(client)
            for i in 1...3 {
                let p = try await b.signIn(Self.wrong)
                #expect(p.status == .unauthorized, "failure \(i): \(p.status)")
            }
            let p = try await b.signIn(Self.password)
            #expect(p.status == .tooManyRequests)
            #expect(p.headers[.retryAfter] == "1")
            #expect(p.text.contains("秒后再试"), "the page does not say to wait")
            #expect(b.cookies["fs_session"] == nil)
        }
        #expect(try await w.records()[Self.account]?.failures == 3)
    }

    // MARK: A live hub under a flood

    @Test func aFloodOfWrongPasswordsEndsIn429WhileAnEnrolledDeviceKeepsPulling() async throws {
        let dir = TempDir()
        let db = dir.file("hub.sqlite")
        let hub = try HubProcess(db: db, log: dir.file("hub.log"))
        let added = try runCLI(["supervisor", "add", "--db", db, "--name", Self.name, "--scope", village1],
                               env: ["FIELDSYNC_SUPERVISOR_PASSWORD": Self.password], binary: "fieldsync-hub")
        #expect(added.status == 0, "\(added.stderr)")
        let token = try enrolledDeviceToken(hub)
        let port = hub.port
        let wrongBody = Array(signInJSON(Self.name, Self.wrong).utf8)
        let flooding = Flag()

        // Eight attackers on 127.0.0.1, 60 requests each (however long that takes on a loaded
        // machine); an honest laptop on 127.0.0.2 pulls meanwhile.
        async let flood = onThreads(8) { _ -> [String] in
            var seen: [String] = []
            while seen.count < 60 {
                guard let r = try? rawHTTP(port, "POST", "/v1/sessions", headers: ["Content-Type": "application/json"], body: wrongBody) else {
                    seen.append("connect failed")
                    continue
                }
                seen.append("\(r.status) \(r.json["error"]?["code"]?.stringValue ?? "-")")
            }
            return seen
        }
        async let honestRun = onThreads(1) { _ -> HonestClient in
            var h = HonestClient(port: port, token: token, from: "127.0.0.2")
            repeat {
                do { try h.probe() } catch { h.replies.append(("connect", -1, 0)) }
                Thread.sleep(forTimeInterval: 0.1)
            } while !flooding.isSet || h.replies.isEmpty
            return h
        }
        let answers = await flood.flatMap { $0 }
        flooding.set()
        let honest = await honestRun.first!

        var counts: [String: Int] = [:]
        for a in answers { counts[a, default: 0] += 1 }
        print("SignInThrottleSpec: flood of \(answers.count) wrong sign-ins: \(counts.sorted { $0.key < $1.key }.map { "\($0.key) ×\($0.value)" }.joined(separator: ", "))")
        honest.check("during a sign-in flood")
        let allowed: Set<String> = ["401 bad_credentials", "429 too_many_attempts", "429 busy", "403 locked"]
        #expect(counts.keys.allSatisfy(allowed.contains), "unexpected answers: \(counts)")
        let hashed = counts["401 bad_credentials", default: 0]
        #expect(hashed >= SignInPolicy.freeFailures, "the free failures were not checked")
        // Each attempt that got past the wait is hashed and counted, one per wait (attempts are
        // counted when they begin), and the account lock at 10 ends it.
        #expect(hashed <= SignInPolicy.accountLockAt, "\(hashed) passwords were tried")
        #expect(answers.count > 4 * hashed, "the flood was too small to show anything: \(answers.count) requests")

        // The flood ends in refusals without hashing: the right password too, from the flooded
        // address and from another (the account's count) — unless the known stale failure stamp
        // (aFailureQueuedForTheHashingPoolIsTimedFromWhenItFailed) left a wait already over, as it
        // can when hashing is slow: the hub's stored count says which.
        var readOnly = Configuration()
        readOnly.readonly = true
        let row = try DatabaseQueue(path: db, configuration: readOnly).read {
            try Row.fetchOne($0, sql: "SELECT failures, last_failure FROM hub_signin WHERE subject = ?", arguments: [Self.account])
        }
        let failures: Int = row?["failures"] ?? 0
        let waitLeft = (row?["last_failure"] ?? 0) + SignInPolicy.delay(failures: failures) - Int64(Date().timeIntervalSince1970 * 1000)
        print("SignInThrottleSpec: after the flood the account has \(failures) failures; its wait ends in \(waitLeft) ms")
        #expect(failures == hashed)
        var signedInEarly = false
        for from in [nil, "127.0.0.2"] as [String?] {
            let r = try rawHTTP(port, "POST", "/v1/sessions", body: Array(signInJSON(Self.name, Self.password).utf8), from: from)
            let code = r.json["error"]?["code"]?.stringValue
            // On a loaded machine the flood may outlast its last wait: then the right password is
            // rightly taken (the stored count says so).
            #expect((r.status == 429 && code == "too_many_attempts" && r.headers["retry-after"] != nil) || (r.status == 403 && code == "locked")
                    || (r.status == 200 && waitLeft <= 200),
                    "right password from \(from ?? "127.0.0.1") after the flood: \(r.status) \(code ?? "-") (wait left \(waitLeft) ms)")
            if r.status == 200 { signedInEarly = true; break }  // signed in: the counts are cleared
            print("SignInThrottleSpec: right password from \(from ?? "127.0.0.1") after the flood: \(r.status) \(code ?? "-"), Retry-After \(r.headers["retry-after"] ?? "-") (\(oneDecimal(r.ms)) ms)")
        }
        // The security log has one signin_failed per hashed attempt, from 127.0.0.1.
        let log = try runCLI(["supervisor", "security-log", "--db", db, "--json", "--limit", "100000"], binary: "fieldsync-hub")
        let events = try JSONValue.parse(log.stdout).arrayValue ?? []
        let failed = events.filter { $0["kind"] == "signin_failed" }
        #expect(failed.count == hashed, "\(failed.count) signin_failed events for \(hashed) hashed attempts")
        #expect(failed.allSatisfy { $0["address"] == "127.0.0.1" && $0["subject"]?.stringValue == Self.account })

        // An administrator clears account and address; the supervisor signs in.
        for args in [[Self.name], ["--address", "127.0.0.1"]] {
            let r = try runCLI(["supervisor", "unlock", "--db", db] + args, binary: "fieldsync-hub")
            #expect(r.status == 0 && (signedInEarly || r.stdout.contains("已解锁")), "unlock \(args): \(r.stdout) \(r.stderr)")
        }
        let ok = try rawHTTP(port, "POST", "/v1/sessions", body: Array(signInJSON(Self.name, Self.password).utf8))
        #expect(ok.status == 200 && ok.json["token"]?.stringValue?.hasPrefix("fss_") == true, "after unlock: \(ok.status) \(String(decoding: ok.body, as: UTF8.self))")
    }
}

// MARK: - Helpers

fileprivate extension Result {
    var session: Success? { if case .success(let s) = self { s } else { nil } }
    var failure: Failure? { if case .failure(let f) = self { f } else { nil } }
}


private func signInJSON(_ name: String, _ password: String) -> String {
    let v: JSONValue = ["name": .string(name), "password": .string(password)]
    return v.compactText
}

private func signInBody(_ name: String, _ password: String) -> ByteBuffer { ByteBuffer(string: signInJSON(name, password)) }

/// Runs `body` on `n` threads of their own (blocking socket work off the concurrency pool).
private func onThreads<T: Sendable>(_ n: Int, _ body: @escaping @Sendable (Int) -> T) async -> [T] {
    await withTaskGroup(of: T.self) { g in
        for i in 0..<n {
            g.addTask { await withCheckedContinuation { c in Thread.detachNewThread { c.resume(returning: body(i)) } } }
        }
        return await g.reduce(into: []) { $0.append($1) }
    }
}

/// A flag one thread sets and a task waits for.
private final class Flag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { lock.withLock { value } }
    func set() { lock.withLock { value = true } }
    func wait(seconds: Double) async -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if isSet { return true }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return isSet
    }
}

import FieldSyncCore
import FieldSyncReplica
import FieldSyncTrust

// MARK: - Devices

/// An enrolled, authenticated device.
public struct Device: Sendable, Equatable {
    public let id: String
    public let name: String
    /// The division-code prefix of the records it may read and write.
    public let scope: String

    public init(id: String, name: String, scope: String) {
        self.id = id
        self.name = name
        self.scope = scope
    }
}

/// A device as `fieldsync-hub device list` shows it.
public struct DeviceInfo: Sendable {
    public var id: String
    public var name: String
    public var scope: String
    public var site: String?
    public var siteName: String?
    public var created: Int64
    public var enrolled: Int64?
    public var revoked: Int64?
    public var codeExpires: Int64?
    public var lastSeen: Int64?
    /// The last time it was fully caught up (a pull with nothing more to send).
    public var lastSync: Int64?
    public var lastError: String?
    public var lastErrorAt: Int64?
    public var pullCursor: Int64
    /// Changes in its scope it has not pulled yet.
    public var pending: Int
    /// Changes it pushed that the hub took.
    public var pushed: Int
    /// Its clock minus the hub's at its last request (ms).
    public var clockSkew: Int64?
    /// What it said about itself at its last request (sync.md §2): its release, schema, the
    /// changes it had not offered yet and when the oldest was made. Nil before release 3.
    public var client: ClientReport?

    public init(id: String, name: String, scope: String, site: String?, siteName: String?, created: Int64, enrolled: Int64?, revoked: Int64?,
                codeExpires: Int64?, lastSeen: Int64?, lastSync: Int64?, lastError: String?, lastErrorAt: Int64?, pullCursor: Int64,
                pending: Int, pushed: Int, clockSkew: Int64?, client: ClientReport? = nil) {
        self.client = client
        (self.id, self.name, self.scope, self.site, self.siteName, self.created) = (id, name, scope, site, siteName, created)
        (self.enrolled, self.revoked, self.codeExpires, self.lastSeen, self.lastSync) = (enrolled, revoked, codeExpires, lastSeen, lastSync)
        (self.lastError, self.lastErrorAt, self.pullCursor, self.pending, self.pushed, self.clockSkew) = (lastError, lastErrorAt, pullCursor, pending, pushed, clockSkew)
    }

    public var status: String {
        if revoked != nil { return "revoked" }
        if enrolled == nil { return "awaiting enrolment" }
        return "enrolled"
    }
}

/// A device just added: its one-time enrolment code.
public struct NewDevice: Sendable {
    public var id: String
    public var name: String
    public var scope: String
    public var code: String
    public var expires: Int64

    public init(id: String, name: String, scope: String, code: String, expires: Int64) {
        (self.id, self.name, self.scope, self.code, self.expires) = (id, name, scope, code, expires)
    }
}

// MARK: - HubStore

/// Everything the hub keeps, behind small role interfaces: the SQLite store is the default,
/// the PostgreSQL store (FieldSyncPostgres) for a county or a province implements the same.
/// The rules (``PushAdmission``, ``Enrolment``, ``SignIn``, ``RecordMerge``, ``Scope``,
/// ``SupervisorRules``, ``ReportEngine``) are the hub's; a store keeps what they decide.
///
/// Methods throw ``HubFailure`` for refusals that reach the client as they are, and
/// `ReplicaError.storage` when the store itself fails (the client is told to retry).
public protocol HubStore: HubIdentity, DeviceStore, ExchangeStore, SignInStore, SupervisingStore, HubAdministration {}

/// Who the hub is, and its clock.
public protocol HubIdentity: AnyObject, Sendable {
    var hubSite: SiteID { get }
    var hubName: String { get }
    /// Which life of the store serves (sync.md §2): a store restored from a backup starts a new one.
    var epoch: HubEpoch { get }
    /// Signs every page the hub serves and the hub's own changes (changeset.md §7).
    var hubKey: SiteKey { get }
    /// The hub's clock (ms since 1970, UTC): injected at the store's creation, so tests set time.
    func now() -> Int64
    /// Where the store is (a file path, a database URL without its password), for messages.
    var location: String { get }
    /// Lets go of the store when the hub stops (a SQLite store folds its write-ahead log in).
    func close() async
    /// Takes a newer schema another process stored (an administrator's `schema load`, another
    /// hub process), looking at most once a second; this process's schema is then the store's.
    func refreshSchema() async
}

/// Devices: enrolment codes, tokens, the sites they write under.
public protocol DeviceStore: AnyObject, Sendable {
    func addDevice(name: String, scope: String, codeLifetimeMs: Int64) async throws -> NewDevice
    func devices() async throws -> [DeviceInfo]
    func revoke(device: String) async throws -> DeviceInfo
    func enroll(_ request: EnrollRequest) async throws -> EnrollResponse
    func authenticate(token: String) async throws -> Device

    /// A device names a new site it writes under, having proved it holds the site's key.
    func bindSite(_ binding: SiteBinding, for device: Device) async throws
    /// Remembers when a device was last seen, its clock, and the last error it ran into.
    func note(device: Device, deviceTime: Int64?, client: ClientReport?, error: String?) async
}

/// The sync protocol: push, pull, snapshot, acknowledgement, bundles.
public protocol ExchangeStore: AnyObject, Sendable {

    /// Takes a batch of changes from a device: each is judged by ``PushAdmission`` (scope,
    /// origin — `vouches` are the checked manifests sent with it — vectors, clock) and merged;
    /// each gets its own result. One transaction for the batch.
    func push(_ changes: [JSONValue], sites: [SiteID: String], vouches: Vouches, from device: Device) async throws -> PushResponse
    /// Changes in the device's scope after hub position `after`, not counting its own.
    func pull(for device: Device, after: Int64, limit: Int, maxBytes: Int) async throws -> ScopedPage
    /// A page of the current state of the device's scope, leaving out the changes `held` says
    /// the device holds (site → highest counter, sync.md §5).
    func snapshot(for device: Device, after: String?, limit: Int, maxBytes: Int, held: [SiteID: Int64]) async throws -> ScopedPage
    /// The device confirms it has applied everything up to hub position `cursor`.
    func acknowledge(device: Device, cursor: Int64) async throws
    /// The changes with these ids whose record lies in the device's scope, in the order asked,
    /// leaving out ids the hub does not hold (a laptop fetching history it pruned).
    func changes(ids: [ChangeID], for device: Device) async throws -> [String]
    /// The names of these sites (only these: a page names the sites it carries).
    func siteNames(_ ids: Set<SiteID>) async throws -> [SiteID: String]
    /// Keeps a bundle a device uploaded (`PUT /v1/bundles/{name}`) in that device's inbox; the
    /// name is already checked (``BundleUpload/name(_:)``). The same name with the same bytes
    /// again is harmless (`again`); with other bytes, 409 `name_taken`.
    func keepBundle(named name: String, bytes: [UInt8], from device: Device) async throws -> BundleKept
}

/// Supervisors' sign-in and sessions: the rules are ``SignIn``'s, the store keeps the counts.
public protocol SignInStore: AnyObject, Sendable {
    func supervisorAccount(named name: String) async throws -> SupervisorAccount?
    /// Keeps a new session unless the account changed meanwhile (disabled, or its password hash
    /// is no longer `passwordHash`): false then. Ends the oldest sessions beyond `maxPerAccount`.
    func createSession(_ session: Session, passwordHash: String, maxPerAccount: Int) async throws -> Bool
    func signInRecords(_ subjects: [String]) async throws -> [String: SignInRecord]
    /// In one step: when `refuses` refuses none of the subjects' records (as they stand at
    /// `at`), counts one more attempt for each (failures + 1, last failure `at`) and returns nil;
    /// otherwise changes nothing and returns the records. Attempts running at once so see each
    /// other: one wait lets one attempt through, not as many as arrive together.
    func reserveSignIn(_ subjects: [String], at: Int64, refuses: @escaping @Sendable (SignInRecord, Int64) -> Bool) async throws -> [String: SignInRecord]?
    /// Gives back a reserved attempt that was never judged (the hashing pool was full).
    func releaseSignIn(_ subjects: [String]) async throws
    /// A reserved attempt failed at `at`: the wait runs from then; subjects whose failures reach
    /// their `lockAt` are locked. Returns the records.
    func recordSignInFailure(_ subjects: [String], at: Int64, lockAt: [String: Int]) async throws -> [String: SignInRecord]
    func clearSignInFailures(_ subjects: [String]) async throws
    func logSecurityEvent(_ e: SecurityEvent) async throws
    func session(token: String) async throws -> Session
    func logout(token: String) async throws
}

/// What supervisors see and settle, always within their scope (``SupervisorRules``).
public protocol SupervisingStore: AnyObject, Sendable {
    func conflicts(for s: Supervisor, _ f: ConflictFilter) async throws -> [ConflictInfo]
    func conflictDetail(for s: Supervisor, _ id: String) async throws -> ConflictDetail
    func resolve(for s: Supervisor, _ id: String, _ how: Resolution, note: String?) async throws -> EditResult
    func resolveAll(for s: Supervisor, _ f: ConflictFilter, _ how: Resolution, note: String?) async throws -> [EditResult]
    func conflictSummary(for s: Supervisor, _ f: ConflictFilter) async throws -> ConflictSummary

    // Supervisors: records in their scope (the web console's browser).
    func records(for s: Supervisor, _ q: RecordQuery) async throws -> RecordPage
    /// A record with its full history; 403 `out_of_scope` when it lies outside the supervisor's scope.
    func recordHistory(for s: Supervisor, id: String) async throws -> (Record, [HistoryEntry])

    /// Reports (Protocol/reports.md): figures for a region and period within the supervisor's
    /// scope; a region outside it is 403 `out_of_scope`, no region means the whole scope.
    func report(for s: Supervisor, _ q: ReportQuery) async throws -> HubReport
}

/// Administration (`fieldsync-hub supervisor …`, `security-log`, `report`): local commands,
/// not reachable over HTTP; and the figures the metrics read.
public protocol HubAdministration: AnyObject, Sendable {
    /// Loads a newer schema version (additive only, docs/operations.md §11): new columns, the
    /// document kept for laptops, and changes kept for it merged in place.
    func learnSchema(_ schema: Schema) async throws -> SchemaLearnReport
    func addSupervisor(name: String, scope: String, password: String) async throws -> SupervisorInfo
    func supervisors() async throws -> [SupervisorInfo]
    /// Disables an account and ends its sessions; 404 when there is no active one by that name.
    func disableSupervisor(name: String) async throws
    /// The account a local admin command acts as (404 missing, 403 disabled).
    func supervisor(named name: String) async throws -> Supervisor
    /// Lifts the sign-in lock on an account or an address; false when it was not locked.
    func unlock(subject: String) async throws -> Bool
    /// The newest security events, newest first.
    func securityEvents(limit: Int) async throws -> [SecurityEvent]
    /// The report for `q` over the whole hub.
    func report(_ q: ReportQuery) async throws -> HubReport

    /// Figures for the metrics, read at each scrape.
    func vitals() async throws -> HubVitals
}

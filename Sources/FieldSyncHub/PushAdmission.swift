import FieldSyncCore
import FieldSyncReplica
import FieldSyncTrust

// MARK: - SiteOwner

/// Whom a site id belongs to, as the hub's site directory says (Protocol/sync.md §1).
public enum SiteOwner: Sendable, Equatable {
    /// The hub itself: supervisors' settlements are made under it.
    case hub
    /// An enrolled device, with its scope; `revoked` when it has been revoked.
    case device(id: String, scope: String, revoked: Bool)
}

// MARK: - Vouches

/// What the manifests sent with a push prove: for each digest, who vouches for it.
public struct Vouches: Sendable {
    var byDigest: [ChangeDigest: [Provenance.Authority]] = [:]
    /// Manifests that proved nothing (a signature that does not hold, or a signer that may not vouch).
    public private(set) var rejected = 0

    public init() {}

    /// Checks each manifest against `provenance` (the hub's own key for hub manifests; derived
    /// site ids for the rest). Signature checks are CPU work: they run before the store is asked.
    public init(_ manifests: [Manifest], provenance: Provenance) {
        for m in manifests {
            guard let a = provenance.authority(of: m) else { rejected += 1; continue }
            for d in m.digests { byDigest[d, default: []].append(a) }
        }
    }

    func vouch(for id: ChangeID, digest: ChangeDigest) -> Provenance.Authority? {
        byDigest[digest]?.first { Provenance.vouches($0, for: id) }
    }

    public var isEmpty: Bool { byDigest.isEmpty }
}

// MARK: - PushAdmission

/// The hub's rules for pushed changes (Protocol/sync.md §3), apart from storage: every store
/// asks these, so no two stores can disagree. Each change is judged on its own:
///
/// 1. it must decode (changeset.md §2: `invalid`); what a newer schema added — fields, choices,
///    whole record kinds — is kept and relayed as it came (§2.4), judged by the same rules below;
/// 2. its record must lie in the pushing device's scope (`out_of_scope`);
/// 3. it must come from where its id says: a change under one of the device's own sites needs
///    nothing more (the token proves it); any other must be vouched for by a manifest — its own
///    site's, or the hub's — unless the hub already holds exactly it (then it is a duplicate).
///    Its site must belong to an enrolled device or the hub (`unknown_origin`, `not_authentic`,
///    `revoked_origin`), and its record must lie in that device's scope too;
/// 4. its `seen` vectors may name only sites the hub knows (`unknown_site`): a vector padded
///    with invented sites would be carried by every later edit of the record, for good;
/// 5. its clock may not run more than the drift bound ahead of the hub's (`clock_ahead`).
public enum PushAdmission {
    /// A pushed change after decoding.
    public struct Decoded: Sendable {
        public let index: Int
        /// Its id as sent, for the answer (`#N` when it has none).
        public let idText: String
        public let change: Result<ReceivedChange, InputError>
        /// Its canonical text, once decoded.
        public let text: String?
    }

    /// What to do with one change.
    public enum Verdict: Sendable {
        /// Merge it; `onlyIfHeld` when only a duplicate of what the hub holds may be taken.
        case admit(ReceivedChange, text: String, onlyIfHeld: (ApplyRefusal.Code, String)?)
        case refuse(PushResult)
    }

    /// What the store tells the rules about the sites a batch mentions.
    public struct Context: Sendable {
        public var device: Device
        /// The sites bound to the pushing device.
        public var ownSites: Set<SiteID>
        /// The directory's entry for each site whose changes are in the batch.
        public var owners: [SiteID: SiteOwner]
        /// The sites, of those the batch mentions in vectors, that the hub knows.
        public var knownSites: Set<SiteID>
        public var vouches: Vouches
        public var now: Int64

        public init(device: Device, ownSites: Set<SiteID>, owners: [SiteID: SiteOwner], knownSites: Set<SiteID>, vouches: Vouches, now: Int64) {
            self.device = device
            self.ownSites = ownSites
            self.owners = owners
            self.knownSites = knownSites
            self.vouches = vouches
            self.now = now
        }
    }

    public static func decode(_ raw: [JSONValue]) -> [Decoded] {
        raw.enumerated().map { i, j in
            let idText = j["id"]?.stringValue.map { String($0.prefix(60)) } ?? "#\(i)"
            do throws(InputError) {
                let c = try ChangeCodec.decodeReceived(j)
                return Decoded(index: i, idText: idText, change: .success(c), text: c.canonicalText)
            } catch {
                return Decoded(index: i, idText: idText, change: .failure(error), text: nil)
            }
        }
    }

    /// Every site a batch mentions: in change ids (`origins`) and in `seen`/`rowSeen` vectors.
    public static func sites(_ batch: [Decoded]) -> (origins: Set<SiteID>, inVectors: Set<SiteID>) {
        var origins = Set<SiteID>(), vectors = Set<SiteID>()
        for d in batch {
            guard case .success(let c) = d.change else { continue }
            origins.insert(c.id.site)
            vectors.formUnion(c.seenSites)
        }
        return (origins, vectors)
    }

    public static func judge(_ d: Decoded, _ ctx: Context) -> Verdict {
        let c: ReceivedChange
        switch d.change {
        case .failure(let error):
            let newer = error.newerSchema
            return .refuse(PushResult(id: d.idText, status: .refused, code: newer ? "schema_too_new" : "invalid", reason: error.description, retry: newer))
        case .success(let ok): c = ok
        }
        let id = c.id.description
        func refuse(_ code: String, _ reason: String) -> Verdict { .refuse(PushResult(id: id, status: .refused, code: code, reason: reason)) }
        // A kind this schema does not hold is named by its key; its record id places it all the same.
        let label = c.known?.kind.spec.label ?? c.kindName
        guard Replica.inScope(row: c.row, scope: ctx.device.scope) else {
            return refuse("out_of_scope", "\(label) \(c.row) lies outside this device's scope \(ctx.device.scope)")
        }
        var onlyIfHeld: (ApplyRefusal.Code, String)?
        if !ctx.ownSites.contains(c.id.site) {
            let text = d.text ?? c.canonicalText
            let vouch = ctx.vouches.vouch(for: c.id, digest: ChangeDigest(canonicalText: text))
            switch ctx.owners[c.id.site] {
            case nil:
                onlyIfHeld = (.unknownOrigin, "made by site \(c.id.site), which is not enrolled at this hub: its changes are taken once its laptop is enrolled and syncs")
            case .device(_, _, true)?:
                onlyIfHeld = (.revokedOrigin, "made by a laptop whose enrolment was revoked; a supervisor recovers its work")
            case .device(_, let scope, false)? where vouch != nil:
                guard Replica.inScope(row: c.row, scope: scope) else {
                    return refuse("out_of_scope", "\(label) \(c.row) lies outside the scope \(scope) of the laptop that made it")
                }
            case .hub? where vouch == .hub:
                break
            case .hub?:
                onlyIfHeld = (.notAuthentic, "claims the hub's site id \(c.id.site): only the hub makes changes under it, and no signature of the hub proves this one")
            case .device?:
                onlyIfHeld = (.notAuthentic, "claims site \(c.id.site), which belongs to another laptop, and carries no valid signature of that laptop (or of this hub)"
                              + (ctx.vouches.rejected > 0 ? "; \(ctx.vouches.rejected) manifest(s) sent with the push prove nothing" : ""))
            }
        }
        // Every write's `seen`, a newer schema's kept ones included, and a delete's `rowSeen`.
        func unknownSite(_ v: VersionVector) -> SiteID? { v.entries.first(where: { !ctx.knownSites.contains($0.site) })?.site }
        func unknownInSeen(_ field: String, _ v: VersionVector) -> Verdict? {
            unknownSite(v).map { refuse("unknown_site", "fields.\(field).seen names site \($0), which this hub has never heard of; a change may say it saw only writes of sites the hub knows") }
        }
        func unknownInRowSeen(_ field: String, _ v: VersionVector) -> Verdict? {
            unknownSite(v).map { refuse("unknown_site", "rowSeen.\(field) names site \($0), which this hub has never heard of") }
        }
        switch c {
        case .known(let c):
            for w in c.writes { if let v = unknownInSeen(w.field, w.context) { return v } }
            for w in c.pending { if let v = unknownInSeen(w.field, w.context) { return v } }
            for (field, seen) in c.rowContext ?? [:] { if let v = unknownInRowSeen(field, seen) { return v } }
            for p in c.pendingRowSeen { if let v = unknownInRowSeen(p.field, p.seen) { return v } }
        case .foreign(let f):
            if let s = f.seenSites.first(where: { !ctx.knownSites.contains($0) }) {
                return refuse("unknown_site", "a seen vector names site \(s), which this hub has never heard of; a change may say it saw only writes of sites the hub knows")
            }
        }
        let ahead = c.hlc.millis - ctx.now
        guard ahead <= SyncProtocol.maxClockAheadMs else {
            return refuse("clock_ahead", "stamped \(ahead / 3_600_000) h ahead of the hub's clock (the bound is \(SyncProtocol.maxClockAheadMs / 60_000) min): the device's clock is wrong; it re-stamps the edit with the corrected time and sends it again")
        }
        return .admit(c, text: d.text ?? c.canonicalText, onlyIfHeld: onlyIfHeld)
    }
}

// MARK: - SitePossession

/// Proof that a device holds the key of a site it names (enrolment, `POST /v1/device/sites`).
public enum SitePossession {
    /// Most site ids one device may write under: a replica takes a new one only when its key is
    /// lost or it was copied (changeset.md §7); more would let one device pose as many.
    public static let maxSitesPerDevice = 16

    /// The site id must be derived from the key, and the proof must be the key's signature of
    /// `message` (which names the code or device, so a proof cannot be replayed elsewhere).
    public static func check(site: SiteID, key: [UInt8], proof: [UInt8], message: [UInt8]) throws {
        guard SiteIdentity.owns(key, site) else {
            throw HubFailure(.invalid, "site \(site) is not derived from the key sent with it (a replica made by a FieldSync from before signed changes takes a new site id when it is opened by this one: upgrade the laptop)")
        }
        guard SiteIdentity.isValid(signature: proof, of: message, publicKey: key) else {
            throw HubFailure(.invalid, "the proof is not the site key's signature of this request: the laptop does not hold the key of site \(site)")
        }
    }
}

// MARK: - A batch: sorting and answering

extension PushAdmission {
    /// A change admitted to be merged, with its place in the batch.
    public struct Admitted: Sendable {
        public let slot: Int
        public let change: ReceivedChange
        public let text: String
        public let onlyIfHeld: (ApplyRefusal.Code, String)?
    }

    /// Judges every change of a batch: the refusals in their slots, and the admitted in order.
    public static func sort(_ decoded: [Decoded], _ ctx: Context, count: Int) -> (results: [PushResult?], admitted: [Admitted]) {
        var results = [PushResult?](repeating: nil, count: count)
        var admitted: [Admitted] = []
        for d in decoded {
            switch judge(d, ctx) {
            case .refuse(let r): results[d.index] = r
            case .admit(let c, let text, let onlyIfHeld): admitted.append(Admitted(slot: d.index, change: c, text: text, onlyIfHeld: onlyIfHeld))
            }
        }
        return (results, admitted)
    }

    /// The answer to a push once the store has merged the admitted changes (`outcomes`, in the
    /// same order): each change's result, how many were accepted, and the device's last error
    /// when any was refused.
    public struct Answer: Sendable {
        public var results: [PushResult]
        public var accepted: Int
        public var lastError: String?
    }

    public static func answer(_ sorted: [PushResult?], _ admitted: [Admitted], _ outcomes: [Replica.EachOutcome]) -> Answer {
        var results = sorted
        var accepted = 0
        for (a, o) in zip(admitted, outcomes) {
            let id = a.change.id.description
            switch o {
            case .applied, .obsolete:
                results[a.slot] = PushResult(id: id, status: .accepted)
                accepted += 1
            case .duplicate: results[a.slot] = PushResult(id: id, status: .duplicate)
            case .refused(let code, let e):
                results[a.slot] = PushResult(id: id, status: .refused, code: code.rawValue, reason: e.description, retry: code == .keptFull)
            }
        }
        let final = results.map { $0! }
        let refused = final.filter { $0.status == .refused }
        let lastError = refused.first.map { "refused \(refused.count) change(s): \($0.code ?? ""): \($0.reason ?? "")" }
        return Answer(results: final, accepted: accepted, lastError: lastError)
    }
}

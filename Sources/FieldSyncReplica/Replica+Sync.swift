import FieldSyncCore
import FieldSyncTrust
import Foundation
import GRDB

// MARK: - SyncState

/// A laptop's link to its hub and how the last exchanges went (`fs_sync`).
public struct SyncState: Sendable {
    public var hubURL: String
    public var device: String
    public var deviceName: String
    /// The device token, from the owner-only secret file (empty when it is missing there).
    public var token: String
    public var scope: String
    public var hubSite: SiteID
    public var hubName: String
    /// The hub's public key, which signs every page it serves (nil until the hub told it).
    public var hubKey: [UInt8]?
    /// The site this device last told the hub it writes under: when the replica has taken a new
    /// site id since, the next sync names it to the hub first (`POST /v1/device/sites`).
    public var boundSite: SiteID?
    /// A CA certificate file for a hub with a private certificate.
    public var caCert: String?
    /// Every change up to this local sequence number is acknowledged by the hub (or refused for good).
    public var pushCursor: Int64
    /// Every hub change up to this hub sequence number is applied here.
    public var pullCursor: Int64
    /// A snapshot in progress: the hub position it started at and the page to fetch next.
    public var snapshotCursor: Int64?
    public var snapshotNext: String?
    public var snapshotDone: Bool
    public var lastAttempt: Int64?
    public var lastSuccess: Int64?
    /// When everything pending was last offered to the hub (the push completed), and when the
    /// last pull reached the end of what the hub had: a failed sync changes neither.
    public var lastPush: Int64?
    public var lastPull: Int64?
    public var lastError: String?
    public var lastErrorAt: Int64?
    public var daemonPID: Int32?
    public var daemonState: String?
    public var daemonNext: Int64?
    /// The hub's epoch this laptop last synced with (``HubEpoch``); nil before the first sync
    /// with a hub that names one.
    public var hubEpoch: String?
    /// After a restored hub was met: every change up to this sequence number is offered again,
    /// those received from the hub included.
    public var reseedThrough: Int64
}

// MARK: - Sync bookkeeping

extension Replica {
    public func syncState() throws -> SyncState? {
        guard var s = try read({ db in try Self.loadSyncState(db) }) else { return nil }
        if custody == .secretFile { s.token = ReplicaSecrets.load(for: path)?.token ?? "" }
        return s
    }

    static func loadSyncState(_ db: Database) throws -> SyncState? {
        guard let r = try Row.fetchOne(db, sql: "SELECT * FROM fs_sync WHERE id = 1") else { return nil }
        return SyncState(
            hubURL: r["hub_url"], device: r["device"], deviceName: r["device_name"], token: r["token"], scope: r["scope"],
            hubSite: SiteID(hex: r["hub_site"]) ?? SiteID(raw: 0), hubName: r["hub_name"],
            hubKey: (r["hub_key"] as Data?).map { Array($0) }, boundSite: (r["bound_site"] as String?).flatMap { SiteID(hex: $0) },
            caCert: r["cacert"],
            pushCursor: r["push_cursor"], pullCursor: r["pull_cursor"], snapshotCursor: r["snapshot_cursor"],
            snapshotNext: r["snapshot_next"], snapshotDone: (r["snapshot_done"] as Int64) != 0,
            lastAttempt: r["last_attempt"], lastSuccess: r["last_success"], lastPush: r["last_push"], lastPull: r["last_pull"], lastError: r["last_error"], lastErrorAt: r["last_error_at"],
            daemonPID: (r["daemon_pid"] as Int64?).map { Int32(truncatingIfNeeded: $0) }, daemonState: r["daemon_state"], daemonNext: r["daemon_next"],
            hubEpoch: r["hub_epoch"], reseedThrough: r["reseed_through"] ?? 0)
    }

    /// Stores what enrolment returned. Enrolling again (another hub, a new token) starts the
    /// exchange over: everything is offered to the new hub and pulled from it.
    ///
    /// The token goes to the owner-only secret file, never into the replica (docs/security.md).
    public func enroll(hubURL: String, response: EnrollResponse, caCert: String?) throws {
        try ReplicaSecrets(key: key, token: response.token, home: ReplicaSecrets.home(of: path)).save(for: path)
        try write { db in
            try db.execute(sql: "DELETE FROM fs_sync")
            try db.execute(sql: """
                INSERT INTO fs_sync(id, hub_url, device, device_name, token, scope, hub_site, hub_name, cacert, hub_key, bound_site)
                VALUES (1, ?, ?, ?, '', ?, ?, ?, ?, ?, ?)
                """, arguments: [hubURL, response.device, response.name, response.scope,
                                 response.hubSite.hex, response.hubName, caCert, Data(response.hubKey), site.hex])
            try noteSite(db, response.hubSite, name: response.hubName)
        }
    }

    /// What proves to the hub that this replica holds its site's key: for enrolment with `code`.
    public func enrolmentRequest(code: String) -> EnrollRequest {
        EnrollRequest(code: code, site: site, siteName: siteName, key: key.publicKey,
                      proof: key.sign(EnrollRequest.possessionMessage(code: code, site: site)))
    }

    /// The request naming this replica's current site to the hub, for `device`.
    public func siteBinding(device: String) -> SiteBinding {
        SiteBinding(site: site, key: key.publicKey, proof: key.sign(SiteBinding.possessionMessage(device: device, site: site)))
    }

    /// The hub has bound this replica's current site to its device.
    public func recordBinding() throws {
        try write { db in try db.execute(sql: "UPDATE fs_sync SET bound_site = ? WHERE id = 1", arguments: [site.hex]) }
    }

    /// Changes to offer the hub: made here or received from other replicas (not from the hub),
    /// after the push cursor, oldest first, at most `limit` or about `maxBytes`. After a restored
    /// hub was met, those received from the hub up to `reseed_through` too (``noteHubEpoch(_:)``).
    public func pendingPush(after cursor: Int64, limit: Int, maxBytes: Int) throws -> [LoggedChange] {
        try read { db in
            let st = try db.cachedStatement(sql: """
                SELECT seq, body FROM fs_change
                WHERE seq > ? AND (source != 2 OR seq <= (SELECT reseed_through FROM fs_sync WHERE id = 1)) AND body != '' ORDER BY seq LIMIT ?
                """)
            st.begin()
            st.bind(1, cursor)
            st.bind(2, Int64(limit))
            defer { st.begin() }
            var out: [LoggedChange] = []
            var bytes = 0
            while try st.step(db) {
                let body = st.text(1)
                if !out.isEmpty && bytes + body.utf8.count > maxBytes { break }
                bytes += body.utf8.count
                out.append(try LoggedChange(seq: st.int64(0), body: body))
            }
            return out
        }
    }

    /// How many changes wait to be offered to the hub.
    public func pendingPushCount() throws -> Int {
        try read { db in
            let cursor = try Int64.fetchOne(db, sql: "SELECT push_cursor FROM fs_sync WHERE id = 1") ?? 0
            return try Int.fetchOne(db, sql: "SELECT count(*) FROM fs_change WHERE seq > ? AND source != 2", arguments: [cursor]) ?? 0
        }
    }

    /// What this replica says about itself on every request to the hub (sync.md §2): the
    /// schema it holds, the changes not yet offered, and when the oldest of them was made.
    public func clientReport() throws -> ClientReport {
        try read { db in
            let cursor = try Int64.fetchOne(db, sql: "SELECT push_cursor FROM fs_sync WHERE id = 1") ?? 0
            let row = try Row.fetchOne(db, sql: "SELECT count(*), min(received) FROM fs_change WHERE seq > ? AND source != 2", arguments: [cursor])
            return ClientReport(schema: Schema.current.version, pending: row?[0] ?? 0, oldestUnsent: row?[1])
        }
    }

    /// Records the hub's answer to a pushed batch and moves the push cursor past every change
    /// that is settled (accepted, duplicate, or refused for good), in one transaction. Returns
    /// the changes refused for good and those to offer again.
    @discardableResult
    public func recordPush(_ batch: [LoggedChange], results: [PushResult]) throws -> (refused: [PushResult], retry: [PushResult]) {
        try write { db in
            let byID = Dictionary(results.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
            var cursor = try Int64.fetchOne(db, sql: "SELECT push_cursor FROM fs_sync WHERE id = 1") ?? 0
            var refused: [PushResult] = []
            var retry: [PushResult] = []
            var blocked = false
            for lc in batch {
                guard let r = byID[lc.id.description] else { blocked = true; continue }
                switch r.status {
                case .accepted, .duplicate:
                    break
                case .refused where r.retry:
                    retry.append(r)
                    blocked = true
                case .refused:
                    refused.append(r)
                    try db.execute(sql: "INSERT OR REPLACE INTO fs_sync_refused(seq, change, code, reason, at) VALUES (?, ?, ?, ?, ?)",
                                   arguments: [lc.seq, r.id, r.code ?? "refused", r.reason ?? "", now])
                }
                if !blocked { cursor = max(cursor, lc.seq) }
            }
            try db.execute(sql: "UPDATE fs_sync SET push_cursor = ? WHERE id = 1", arguments: [cursor])
            return (refused, retry)
        }
    }

    /// Applies a pulled page and moves the pull cursor, in one transaction.
    @discardableResult
    public func applyPulled(_ page: ChangePage) throws -> ApplyReport {
        try write { db in
            let report = try applyHubPage(db, page)
            try db.execute(sql: "UPDATE fs_sync SET pull_cursor = max(pull_cursor, ?) WHERE id = 1", arguments: [page.cursor])
            return report
        }
    }

    /// A page from the hub: its signature must hold for the hub this replica enrolled with
    /// (whose key it learnt at enrolment; a replica enrolled before signed pages learns it from
    /// its first signed page). The manifest is kept so the changes can be relayed by bundle.
    /// A change claiming this replica's own site id is set aside, not merged.
    ///
    /// The hub signs the texts it stores. A hub on an older schema stores what it cannot judge as
    /// it came, so a page may hold a change this replica finds invalid, or whose text is not the
    /// canonical form this replica's schema gives it (a writer that did not write canonically,
    /// changeset.md §2.3): then the signature is checked over the texts as sent, and each such
    /// change is set aside with its reason while the rest of the page applies.
    func applyHubPage(_ db: Database, _ page: ChangePage) throws -> ApplyReport {
        var texts: [String] = []
        texts.reserveCapacity(page.decoded.count)
        var asSent = page.decoded.contains { if case .failure = $0 { true } else { false } }
        var proof: Manifest?
        if !asSent {
            for c in page.items { texts.append(c.canonicalText) }
            do {
                proof = try checkHubProof(db, page, texts: texts)
            } catch {
                guard page.received.count == page.decoded.count, !page.received.isEmpty else { throw error }
                asSent = true
            }
        }
        if asSent {
            guard page.received.count == page.decoded.count else {
                throw ReplicaError.invalidInput(InputError("page", "holds changes this replica cannot read"))
            }
            texts = page.received.map(\.compactText)
            proof = try checkHubProof(db, page, texts: texts)
        }
        let proofID = try proof.map { try storeManifest(db, $0) }
        for (id, name) in page.sites where id != site { try noteSite(db, id, name: name) }
        var report = ApplyReport()
        var asideCount = 0
        for (n, (r, text)) in zip(page.decoded, texts).enumerated() {
            let c: ReceivedChange
            switch r {
            case .failure(let e):
                let id = page.received[n]["id"]?.stringValue.map { String($0.prefix(60)) } ?? "changes[\(n)]"
                try setAside(db, id: id, body: text, reason: "invalid: " + e.description, from: "hub", count: &asideCount)
                report.setAside += 1
                continue
            case .success(let ok): c = ok
            }
            if asSent, !c.canonicalText.utf8.elementsEqual(text.utf8) {
                try setAside(db, id: c.id.description, body: text, reason: ChangeCodec.notCanonical, from: "hub", count: &asideCount)
                report.setAside += 1
                continue
            }
            do {
                try receive(db, c, source: .hub, proof: proofID, body: text, report: &report)
            } catch let e as ApplyRefusal {
                try setAside(db, id: c.id.description, body: text, reason: e.description, from: "hub", count: &asideCount)
                report.setAside += 1
            }
        }
        if report.applied + report.held > 0 { try pruneSetAsideIfAny(db) }
        return report
    }

    /// Checks a page's signature: it must hold for the hub this replica enrolled with (whose key
    /// it learnt at enrolment; a replica enrolled before signed pages learns it from its first
    /// signed page). Returns the manifest when the page has changes (nil for an empty page).
    func checkHubProof(_ db: Database, _ page: ChangePage, texts: [String]) throws -> Manifest? {
        if !page.decoded.isEmpty || page.proof != nil {
            guard let p = page.proof else {
                throw ReplicaError.invalidInput(InputError("page", "the hub's page carries no signature (proof); is the hub older than this laptop's FieldSync?"))
            }
            let m: Manifest
            do throws(InputError) { m = try Manifest(json: p, digests: texts.map { ChangeDigest(canonicalText: $0) }) } catch {
                throw ReplicaError.invalidInput(error.within("page"))
            }
            guard let st = try Self.loadSyncState(db) else {
                throw ReplicaError.invalidInput(InputError("page.proof", "this replica is not enrolled with a hub"))
            }
            if let known = st.hubKey {
                guard known == m.key else { throw ReplicaError.invalidInput(InputError("page.proof", "signed with a key that is not the hub's")) }
            } else {
                guard m.signer == st.hubSite else {
                    throw ReplicaError.invalidInput(InputError("page.proof", "signed by \(m.signer), not by the hub this laptop is enrolled with"))
                }
                try db.execute(sql: "UPDATE fs_sync SET hub_key = ? WHERE id = 1", arguments: [Data(m.key)])
            }
            guard m.signatureHolds else {
                throw ReplicaError.invalidInput(InputError("page.proof", "the hub's signature does not hold for these changes: the page was altered on the way"))
            }
            // The hub's key under another id: the hub was restored from a backup and writes
            // under a new id now (its key is what identifies it, changeset.md §7.3).
            if m.signer != st.hubSite {
                try db.execute(sql: "UPDATE fs_sync SET hub_site = ? WHERE id = 1", arguments: [m.signer.hex])
                try noteSite(db, m.signer, name: st.hubName)
            }
            if !page.decoded.isEmpty { return m }
        }
        return nil
    }

    /// The changes a snapshot may leave out (``snapshotPage(scope:after:limit:maxBytes:excludingPeer:held:)``):
    /// this replica's own under its current site, up to the highest the hub has acknowledged
    /// from it (at or below the push cursor) — unless the hub refused one of them as a clone,
    /// when it holds another copy's changes under those ids. A replica restored from an older
    /// image holds fewer, and says so: the rest comes back.
    public func heldForSnapshot() throws -> [SiteID: Int64] {
        try read { db in
            let cursor = try Int64.fetchOne(db, sql: "SELECT push_cursor FROM fs_sync WHERE id = 1") ?? 0
            let own = Int64(bitPattern: site.raw)
            let cloned = try Bool.fetchOne(db, sql: """
                SELECT EXISTS(SELECT 1 FROM fs_sync_refused r JOIN fs_change c ON c.seq = r.seq WHERE c.site = ? AND r.code = 'clone')
                """, arguments: [own]) ?? false
            guard !cloned, let top = try Int64.fetchOne(db, sql: "SELECT max(counter) FROM fs_change WHERE site = ? AND source = 0 AND seq <= ?",
                                                       arguments: [own, cursor]) else { return [:] }
            return [site: top]
        }
    }

    /// Applies a snapshot page and records where the snapshot stands, in one transaction.
    /// The last page (no `next`) also sets the pull cursor to where the snapshot began.
    @discardableResult
    public func applySnapshotPage(_ page: ChangePage) throws -> ApplyReport {
        try write { db in
            let report = try applyHubPage(db, page)
            if let next = page.next {
                try db.execute(sql: "UPDATE fs_sync SET snapshot_cursor = COALESCE(snapshot_cursor, ?), snapshot_next = ? WHERE id = 1",
                               arguments: [page.cursor, next])
            } else {
                try db.execute(sql: """
                    UPDATE fs_sync SET pull_cursor = max(pull_cursor, COALESCE(snapshot_cursor, ?)), snapshot_cursor = NULL,
                      snapshot_next = NULL, snapshot_done = 1 WHERE id = 1
                    """, arguments: [page.cursor])
            }
            return report
        }
    }

    /// Makes again, with this replica's corrected clock, the part of a change that still holds:
    /// the same values and author, replacing exactly the original write (its `seen` is what the
    /// original had seen plus the original) and nothing else, so conflicts stay as they were.
    /// For an edit the hub refused as stamped too far ahead (`clock_ahead`). Returns the new
    /// change's id, or nil when later edits here have replaced all of it.
    @discardableResult
    public func restamp(_ old: Change) throws -> ChangeID? {
        try write { db in
            let row = try loadRow(db, old.kind, old.row)
            var writes: [FieldWrite] = []
            for w in old.writes where row.state[w.field]?.entries.contains(where: { $0.dot == old.id }) == true {
                var seen = w.context
                seen.include(old.id)
                writes.append(FieldWrite(field: w.field, value: w.value, context: seen))
            }
            guard !writes.isEmpty else { return nil }
            let deletes = writes.contains { $0.field == RowState.deletedField && $0.value == .integer(1) }
            let note = (old.note.map { $0 + "。" } ?? "") + "重新计时 re-stamped: first stamped \(UTCTime.iso(old.hlc.millis)) by a clock that was ahead (\(old.id))"
            let c = Change(id: nextChangeID(), kind: old.kind, row: old.row, hlc: clock.tick(wall: now), author: old.author, writes: writes,
                           rowContext: deletes ? (old.rowContext ?? [:]) : nil, note: String(note.prefix(ChangeCodec.maxNoteLength)), resolves: old.resolves)
            var report = ApplyReport()
            try applyOne(db, c, local: true, preloaded: row, report: &report)
            return c.id
        }
    }

    /// Forgets the pull position, so that the next sync starts with a snapshot (the hub said
    /// this replica is behind its history horizon).
    public func restartFromSnapshot() throws {
        try write { db in
            try db.execute(sql: "UPDATE fs_sync SET pull_cursor = 0, snapshot_cursor = NULL, snapshot_next = NULL, snapshot_done = 0 WHERE id = 1")
        }
    }

    /// Records how an exchange ended. Success is recorded only for a complete exchange.
    public func recordSyncAttempt(at: Int64, error: String?) throws {
        try write { db in
            if let error {
                try db.execute(sql: "UPDATE fs_sync SET last_attempt = ?, last_error = ?, last_error_at = ? WHERE id = 1", arguments: [at, error, at])
            } else {
                try db.execute(sql: "UPDATE fs_sync SET last_attempt = ?, last_success = ?, last_error = NULL, last_error_at = NULL WHERE id = 1", arguments: [at, at])
            }
        }
    }

    /// Records that a sync's push (or pull) completed at `at`.
    public func recordSyncPhase(pull: Bool, at: Int64) throws {
        try write { db in
            try db.execute(sql: "UPDATE fs_sync SET \(pull ? "last_pull" : "last_push") = ? WHERE id = 1", arguments: [at])
        }
    }

    public func recordDaemon(pid: Int32?, state: String?, next: Int64?) throws {
        try write { db in
            try db.execute(sql: "UPDATE fs_sync SET daemon_pid = ?, daemon_state = ?, daemon_next = ? WHERE id = 1", arguments: [pid.map { Int64($0) }, state, next])
        }
    }

    /// Changes the hub refused for good, newest first — but not those the cadre has dealt with:
    /// editing the record again (which dismisses them) or deleting it here is the way out of a
    /// refusal, after which it is no longer reported (the refusal stays recorded).
    public func refusedByHub() throws -> [(seq: Int64, change: String, code: String, reason: String, at: Int64)] {
        try read { db in
            try Row.fetchAll(db, sql: """
                SELECT r.seq, r.change, r.code, r.reason, r.at, c.kind, c.row FROM fs_sync_refused r LEFT JOIN fs_change c ON c.seq = r.seq
                WHERE r.dismissed IS NULL ORDER BY r.seq DESC
                """).compactMap { r in
                let seq: Int64 = r["seq"], change: String = r["change"], code: String = r["code"], reason: String = r["reason"], at: Int64 = r["at"]
                if let k = (r["kind"] as String?).flatMap(RecordKind.init(rawValue:)), let row = r["row"] as String?,
                   try Int64.fetchOne(db, sql: "SELECT _deleted FROM \(SQLLayout.table(k)) WHERE id = ?", arguments: [row]) == 1 {
                    return nil
                }
                return (seq, change, code, reason, at)
            }
        }
    }

    /// Corrects this replica's clock by the offset the hub's clock shows (hub − this machine's
    /// wall clock, ms). Offsets under a minute are network noise and ignored. If the hybrid clock
    /// had run ahead of the corrected time by more than the drift bound (a laptop whose clock was
    /// a year fast), it is set back: later edits get true times. Merging does not depend on one
    /// site's readings increasing — a site's later edit has always seen its earlier one.
    /// Returns true when the clock was set back.
    @discardableResult
    public func adjustClock(hubOffset: Int64) throws -> Bool {
        // Offsets beyond the range of clock readings are no correction at all (and abs of
        // Int64.min would trap).
        let bounded = max(-HybridTimestamp.maxMillis, min(HybridTimestamp.maxMillis, hubOffset))
        let target = abs(bounded) > 60_000 ? bounded : 0
        return try write { db in
            var setBack = false
            if target != clockOffset {
                clockOffset = target
            }
            let corrected = wallClock() + clockOffset
            if clock.last.millis > corrected + maxDrift {
                clock = HybridLogicalClock(last: HybridTimestamp(millis: corrected, counter: 0), maxDrift: maxDrift)
                setBack = true
            }
            if setBack || clockOffset != savedOffset { try saveClock(db) }
            return setBack
        }
    }

    public var clockCorrection: Int64 { clockOffset }

    /// The change log's highest sequence number.
    public func changeLogEnd() throws -> Int64 {
        try read { db in try Int64.fetchOne(db, sql: "SELECT COALESCE(max(seq), 0) FROM fs_change") ?? 0 }
    }
}

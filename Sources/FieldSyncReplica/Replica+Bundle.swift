import FieldSyncCore
import FieldSyncTrust
import Foundation
import GRDB

// MARK: - Reports

public struct ExportReport: Sendable {
    public var path: String
    public var changes: Int
    public var bytes: Int
    public var lastSeq: Int64
    /// Manifest lines written (signatures of this site's changes, and the proofs of relayed ones).
    public var manifests: Int
    /// Changes from other sites left out because nothing here proves their origin (they reach
    /// other laptops through the hub instead).
    public var unproven: Int
}

public struct ImportReport: Sendable {
    public var path: String
    public var header: BundleHeader
    public var apply: ApplyReport
    public var lines: Int
}

/// What to leave out of an export.
public enum ExportFilter: Sendable {
    /// Everything.
    case all
    /// Changes this replica received after its local sequence number N.
    case sinceSeq(Int64)
    /// Changes this replica received after a time (Unix ms).
    case sinceTime(Int64)
    /// Changes the other replica, whose knowledge this is, does not hold.
    case missingFrom(Knowledge)
}

// MARK: - Bundles

extension Replica {
    /// The default cap on a bundle's decompressed size.
    public static let defaultMaxBundleBytes = 2 << 30

    /// How many of this site's changes one manifest line signs: one signature per chunk, and
    /// a relay of any one of them carries at most this many digests.
    static let manifestChunk = 1024

    /// Writes changes to a bundle file (gzip JSON Lines, Protocol/changeset.md §5).
    ///
    /// This site's own changes go out in chunks, each after a manifest line it signs; changes
    /// received from elsewhere go out after the manifest that proved them when they arrived
    /// (their origin's, or the hub's). Received changes nothing proves are left out and counted.
    /// The file appears complete or not at all: it is written beside the target, flushed to
    /// disk, then renamed.
    @discardableResult
    public func exportBundle(to path: String, filter: ExportFilter = .all) throws -> ExportReport {
        let partial = path + ".partial"
        unlink(partial)
        do { try OwnerOnly.createFile(partial) } catch {
            throw ReplicaError.badBundle(path: path, reason: "cannot create the file (is the folder there and writable?)")
        }
        guard let out = FileHandle(forWritingAtPath: partial) else {
            throw ReplicaError.badBundle(path: path, reason: "cannot create the file (is the folder there and writable?)")
        }
        var ok = false
        defer {
            try? out.close()
            if !ok { try? FileManager.default.removeItem(atPath: partial) }
        }
        let gz = GzipDeflater()
        var bytes = 0
        func emit(_ line: String) throws {
            var b = Array(line.utf8)
            b.append(0x0A)
            let z = gz.push(b)
            if !z.isEmpty { try out.write(contentsOf: z); bytes += z.count }
        }
        var count = 0, manifests = 0, unproven = 0
        var lastSeq: Int64 = 0
        do {
            try read { db in
                let names = try siteNames(db)
                try emit(BundleFormat.headerLine(BundleHeader(site: site, siteName: siteName, created: wallClock(), sites: names)))
                var condition = ""
                var args: [DatabaseValueConvertible] = [Int64(bitPattern: site.raw)]
                switch filter {
                case .sinceSeq(let s): condition = " AND seq > ?"; args.append(s)
                case .sinceTime(let t): condition = " AND received > ?"; args.append(t)
                default: break
                }
                func wanted(_ st: Statement) -> Bool {
                    lastSeq = max(lastSeq, st.int64(0))
                    if case .missingFrom(let k) = filter,
                       k.contains(ChangeID(site: SiteID(raw: UInt64(bitPattern: st.int64(1))), counter: st.int64(2))) {
                        return false
                    }
                    return true
                }
                // This site's own changes, signed in chunks.
                var chunk: [String] = []
                func flush() throws {
                    guard !chunk.isEmpty else { return }
                    let m = Manifest.signed(by: key, as: site, digests: chunk.map { ChangeDigest(canonicalText: $0) })
                    try emit(BundleFormat.manifestLine(m.json))
                    manifests += 1
                    for body in chunk { try emit(body) }
                    count += chunk.count
                    chunk.removeAll(keepingCapacity: true)
                }
                let own = try db.makeStatement(sql: "SELECT seq, site, counter, body FROM fs_change WHERE site = ? AND body != ''\(condition) ORDER BY seq")
                try own.setArguments(StatementArguments(args))
                while try own.step(db) {
                    guard wanted(own) else { continue }
                    chunk.append(own.text(3))
                    if chunk.count == Self.manifestChunk { try flush() }
                }
                try flush()
                // Received changes, after the manifest that proves them.
                let relayed = try db.makeStatement(sql: "SELECT seq, site, counter, body, proof FROM fs_change WHERE site != ? AND body != ''\(condition) ORDER BY proof IS NULL, proof, seq")
                try relayed.setArguments(StatementArguments(args))
                var current: Int64?
                while try relayed.step(db) {
                    guard wanted(relayed) else { continue }
                    if relayed.isNull(4) {
                        unproven += 1
                        continue
                    }
                    let proof = relayed.int64(4)
                    if proof != current {
                        guard let m = try loadManifest(db, id: proof) else { unproven += 1; continue }
                        try emit(BundleFormat.manifestLine(m.json))
                        manifests += 1
                        current = proof
                    }
                    try emit(relayed.text(3))
                    count += 1
                }
                if lastSeq == 0 { lastSeq = try Int64.fetchOne(db, sql: "SELECT COALESCE(max(seq), 0) FROM fs_change") ?? 0 }
            }
            try emit(BundleFormat.trailerLine(count: count))
            let tail = gz.finish()
            try out.write(contentsOf: tail)
            bytes += tail.count
            try out.synchronize()
            try out.close()
            if FileManager.default.fileExists(atPath: path) { try FileManager.default.removeItem(atPath: path) }
            try FileManager.default.moveItem(atPath: partial, toPath: path)
            ok = true
        } catch let e as ReplicaError {
            throw e
        } catch {
            throw ReplicaError.badBundle(path: path, reason: "could not write: \(error.localizedDescription)")
        }
        return ExportReport(path: path, changes: count, bytes: bytes, lastSeq: lastSeq, manifests: manifests, unproven: unproven)
    }

    /// Applies a bundle in one transaction. A damaged or malformed file applies nothing; an
    /// invalid change line is set aside with its reason and the rest is applied. Changes of a
    /// newer schema are taken, their unreadable writes (or the whole change, for a record kind
    /// this schema does not hold) kept for later (changeset.md §2.4). Each change must be proved by the manifest line before it (its own
    /// site's signature, or this laptop's hub's): one that is not, or that claims this
    /// replica's own site id, is set aside with the reason and the rest is applied.
    /// Importing the same bundle again, or bundles in any order, changes nothing more.
    @discardableResult
    public func importBundle(from path: String, maxBytes: Int = defaultMaxBundleBytes) throws -> ImportReport {
        var reader = try LineReader(path: path, maxBytes: maxBytes, maxLine: BundleFormat.maxLineBytes)
        defer { reader.close() }
        func parse(_ bytes: [UInt8], _ n: Int) throws -> JSONValue {
            do { return try JSONValue.parse(bytes: bytes) } catch {
                throw ReplicaError.badBundle(path: path, reason: "line \(n): not valid JSON (\(error))")
            }
        }
        guard let first = try reader.next() else { throw ReplicaError.badBundle(path: path, reason: "the file is empty") }
        let header: BundleHeader
        do {
            header = try BundleFormat.decodeHeader(JSONValue.parse(bytes: first))
        } catch let e as InputError {
            throw ReplicaError.badBundle(path: path, reason: e.description)
        } catch {
            throw ReplicaError.badBundle(path: path, reason: "not a FieldSync bundle: line 1 is not a JSON header (\(error))")
        }
        var lines = 1
        let report: ApplyReport = try write { db in
            let trust = try provenance(db)
            var report = ApplyReport()
            var changes = 0
            var trailer: Int?
            var asideCount = 0
            /// The manifest line in force: its stored id and what it vouches for, or why it vouches for nothing.
            var proof: (id: Int64, authority: Provenance.Authority, digests: Set<ChangeDigest>)?
            var unproven = "no manifest line before it proves where it comes from"
            var authentic = Set<SiteID>()
            while let bytes = try reader.next() {
                lines = reader.line
                if trailer != nil {
                    if bytes.isEmpty { continue }
                    throw ReplicaError.badBundle(path: path, reason: "line \(lines): data after the end line")
                }
                let json = try parse(bytes, lines)
                if let n = BundleFormat.trailerCount(json) {
                    trailer = n
                    continue
                }
                if let mj = BundleFormat.manifest(json) {
                    let m: Manifest
                    do throws(InputError) { m = try Manifest(json: mj) } catch {
                        throw ReplicaError.badBundle(path: path, reason: "line \(lines): \(error)")
                    }
                    if let a = trust.authority(of: m) {
                        proof = (try storeManifest(db, m), a, Set(m.digests))
                    } else {
                        proof = nil
                        unproven = m.signatureHolds
                            ? "its manifest (line \(lines)) is signed by \(m.signer), which may vouch only for its own changes (its id is not derived from the key, and it is not this laptop's hub)"
                            : "the signature of its manifest (line \(lines)) does not hold: the file was altered, or the manifest is forged"
                    }
                    continue
                }
                let c: ReceivedChange
                changes += 1
                do throws(InputError) { c = try ChangeCodec.decodeReceived(json) } catch {
                    // One bad line spoils nothing else: it is kept aside, as it came, with the reason.
                    let id = json["id"]?.stringValue.map { String($0.prefix(60)) } ?? "line \(lines)"
                    try setAside(db, id: id, body: String(decoding: bytes, as: UTF8.self),
                                 reason: "\(error.newerSchema ? "schema_too_new" : "invalid"): " + error.within("line \(lines)").description,
                                 from: path, count: &asideCount)
                    report.setAside += 1
                    continue
                }
                let text = c.canonicalText
                var why: String?
                if let p = proof {
                    if !Provenance.vouches(p.authority, for: c.id) {
                        why = "it names site \(c.id.site), but the manifest before it is signed by another site, which vouches only for its own changes"
                    } else if !p.digests.contains(ChangeDigest(canonicalText: text)) {
                        why = "the manifest before it does not list it (altered on the way, or forged)"
                    }
                } else {
                    why = unproven
                }
                do {
                    let onlyIfHeld = why.map { (ApplyRefusal.Code.notAuthentic, "not taken: nothing proves it comes from site \(c.id.site): \($0)") }
                    try receive(db, c, source: .peer, proof: why == nil ? proof?.id : nil, onlyIfHeld: onlyIfHeld, body: text, report: &report)
                    if why == nil { authentic.insert(c.id.site) }
                } catch let e as ApplyRefusal where e.code != .clone {
                    try setAside(db, id: c.id.description, body: text, reason: e.description, from: path, count: &asideCount)
                    report.setAside += 1
                } catch let e as ApplyRefusal {
                    throw ReplicaError.invalidInput(e.error.within("\(path): line \(lines)"))
                }
            }
            guard let n = trailer else {
                throw ReplicaError.badBundle(path: path, reason: "the file is truncated: no end line after \(lines) lines")
            }
            guard n == changes else {
                throw ReplicaError.badBundle(path: path, reason: "the end line says \(n) changes but the file holds \(changes)")
            }
            // Names only for sites whose changes proved themselves here, never for this replica
            // or its hub, and never over a name it knows already (a bundle cannot rename a site).
            let hub = try Self.loadSyncState(db)?.hubSite
            for (id, name) in header.sites where authentic.contains(id) && id != site && id != hub {
                try noteSiteIfUnnamed(db, id, name: name)
            }
            if report.applied + report.held > 0 { try pruneSetAsideIfAny(db) }
            return report
        }
        return ImportReport(path: path, header: header, apply: report, lines: lines)
    }
}

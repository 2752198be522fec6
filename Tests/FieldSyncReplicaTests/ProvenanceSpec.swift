import FieldSyncCore
import FieldSyncTrust
@testable import FieldSyncReplica
import Foundation
import GRDB
import Testing

/// What a laptop takes from bundles and pages (Protocol/changeset.md §7): changes proved by
/// their origin's signature or by its hub's travel any number of hops; anything else is set
/// aside with its reason, and the rest still arrives.
@Suite struct ProvenanceSpec {
    let dir = TempDir("provenance")

    func bundleLines(_ path: String) throws -> [String] {
        let raw = try Gzip.decompress([UInt8](Data(contentsOf: URL(fileURLWithPath: path))), limit: 1 << 26)
        return String(decoding: raw, as: UTF8.self).split(separator: "\n").map(String.init)
    }

    func write(_ lines: [String], _ name: String) throws -> String {
        let p = dir.file(name)
        try Data(Gzip.compress(Array((lines.joined(separator: "\n") + "\n").utf8))).write(to: URL(fileURLWithPath: p))
        return p
    }

    @Test func signedChangesTravelLaptopToLaptopAnyNumberOfHops() throws {
        let a = try makeReplica(dir, "a"), c = try makeReplica(dir, "c"), d = try makeReplica(dir, "d")
        for n in 0..<3 { _ = try a.add(.dispute, disputeInput(parties: "甲\(n)")) }
        _ = try c.add(.dispute, disputeInput(parties: "丙"))
        try a.exportBundle(to: dir.file("a.bundle"))
        #expect(try c.importBundle(from: dir.file("a.bundle")).apply.applied == 3)
        // c relays a's changes with a's manifest, and signs its own.
        let rep = try c.exportBundle(to: dir.file("c.bundle"))
        #expect(rep.changes == 4 && rep.manifests == 2 && rep.unproven == 0)
        let report = try d.importBundle(from: dir.file("c.bundle")).apply
        #expect(report.applied == 4 && report.setAside == 0)
        #expect(try snapshot(d) == snapshot(c))
        #expect(try d.knownSiteNames()[a.site] == "a", "names of sites whose changes proved themselves")
    }

    @Test func alteredForgedAndUnprovedChangesAreSetAsideAndTheRestApplies() throws {
        let a = try makeReplica(dir, "a"), b = try makeReplica(dir, "b")
        for n in 0..<4 { _ = try a.add(.dispute, disputeInput(parties: "当事人\(n)")) }
        try a.exportBundle(to: dir.file("a.bundle"))
        var lines = try bundleLines(dir.file("a.bundle"))
        // One change altered after signing.
        let i = try #require(lines.firstIndex { $0.contains("当事人2") })
        lines[i] = lines[i].replacingOccurrences(of: "当事人2", with: "改过")
        // A change of a's under a manifest someone else signed, claiming to be a.
        let thief = SiteKey()
        let forgedChange = try ChangeCodec.decode(JSONValue.parse(lines[i]))
        let forgedManifest = Manifest.signed(by: thief, as: a.site, digests: [ChangeDigest(canonicalText: lines[i])])
        let trailer = lines.removeLast()
        lines += [BundleFormat.manifestLine(forgedManifest.json), ChangeCodec.canonicalText(forgedChange)]
        lines.append(trailer.replacingOccurrences(of: "\"changes\":4", with: "\"changes\":5"))
        let report = try b.importBundle(from: try write(lines, "bad.bundle")).apply
        #expect(report.applied == 3 && report.setAside == 2, "\(report)")
        let aside = try b.setAsideChanges()
        #expect(Set(aside.map(\.change)).count == 1, "one change id, once per reason: \(aside.map(\.reason))")
        #expect(aside.contains { $0.reason.contains("does not list it") } && aside.contains { $0.reason.contains("not derived from the key") })
        // Importing the same file again sets nothing more aside.
        #expect(try b.importBundle(from: dir.file("bad.bundle")).apply.applied == 0)
        #expect(try b.setAsideCount() == 2)
        #expect(try b.records(.dispute).count == 3)
        // The genuine bundle later: the change arrives and leaves the set-aside list.
        #expect(try b.importBundle(from: dir.file("a.bundle")).apply.applied == 1)
        #expect(try b.setAsideCount() == 0)
        #expect(try b.records(.dispute).count == 4)
    }

    @Test func aChangeClaimingThisReplicasOwnSiteIsSetAside() throws {
        let b = try makeReplica(dir, "b")
        _ = try b.add(.dispute, disputeInput(parties: "本机的"))
        // A copy of b (its file and its secret) writes under b's id without b knowing: one that
        // the home check cannot see (its secret file says it is at home where it is, as a whole
        // disk restored in place would), so it keeps b's id.
        for suffix in ["", "-wal", ".secret"] where FileManager.default.fileExists(atPath: b.path + suffix) {
            try FileManager.default.copyItem(atPath: b.path + suffix, toPath: dir.file("copy.sqlite") + suffix)
        }
        var forged = try #require(ReplicaSecrets.load(for: dir.file("copy.sqlite")))
        forged.home = ReplicaSecrets.home(of: dir.file("copy.sqlite"))
        try forged.save(for: dir.file("copy.sqlite"))
        let copy = try Replica.open(path: dir.file("copy.sqlite"))
        #expect(copy.site == b.site)
        _ = try copy.add(.dispute, disputeInput(parties: "副本写的"))
        try copy.exportBundle(to: dir.file("copy.bundle"))
        let before = try snapshot(b)
        let report = try b.importBundle(from: dir.file("copy.bundle")).apply
        #expect(report.duplicates == 1 && report.setAside == 1 && report.applied == 0)
        #expect(try b.setAsideChanges().first?.reason.contains("own site id") == true)
        #expect(try snapshot(b) == before)
    }

    /// A replica copied with its secret file to another file (or machine) takes a new site id
    /// when it is first opened there, before it writes anything; the original keeps its own.
    @Test func aCopyWithItsSecretTakesANewSiteBeforeWriting() throws {
        let b = try makeReplica(dir, "b")
        let first = try b.add(.dispute, disputeInput(parties: "复制前写的"))
        for suffix in ["", "-wal", ".secret"] where FileManager.default.fileExists(atPath: b.path + suffix) {
            try FileManager.default.copyItem(atPath: b.path + suffix, toPath: dir.file("copy2.sqlite") + suffix)
        }
        let copy = try Replica.open(path: dir.file("copy2.sqlite"))
        #expect(copy.site != b.site && SiteIdentity.owns(copy.key.publicKey, copy.site), "the copy speaks under a new id of its own key")
        let edit = try copy.edit(first, ["status": "调解中"])
        #expect(edit.change?.site == copy.site && edit.change?.counter == 1)
        #expect(try copy.record(first)["parties"] == .text("复制前写的"), "what was made before the copy is kept")
        let again = try Replica.open(path: b.path)
        #expect(again.site == b.site, "the original, opened at home, keeps its id")
        let reopened = try Replica.open(path: dir.file("copy2.sqlite"))
        #expect(reopened.site == copy.site, "the copy is at home now: opened again it keeps its new id")
        #expect(ReplicaSecrets.load(for: dir.file("copy2.sqlite"))?.token == nil, "the device stays with the laptop at home")
    }

    @Test func aPageWhoseProofDoesNotHoldIsRefusedWhole() throws {
        let hubKey = SiteKey()
        let hubSite = SiteID.random()
        let r = try enrolled("r", device: "dev-1", with: hubKey, hubSite)
        let other = try makeReplica(dir, "o")
        _ = try other.add(.dispute, disputeInput())
        let changes = try allChanges(other)
        let texts = changes.map(ChangeCodec.canonicalText)
        func page(_ m: Manifest?) -> ChangePage {
            ChangePage(changes: changes, cursor: 1, more: false, next: nil, sites: [:], hubTime: 0, proof: m?.proofJSON)
        }
        let good = Manifest.signed(by: hubKey, as: hubSite, digests: texts.map { ChangeDigest(canonicalText: $0) })
        let wrongKey = Manifest.signed(by: SiteKey(), as: hubSite, digests: texts.map { ChangeDigest(canonicalText: $0) })
        let wrongDigests = Manifest.signed(by: hubKey, as: hubSite, digests: [ChangeDigest(canonicalText: "other")])
        for (m, why) in [(nil, "no signature"), (wrongKey, "not the hub's"), (wrongDigests, "does not hold")] as [(Manifest?, String)] {
            #expect(throws: ReplicaError.self, "\(why)") { try r.applyPulled(page(m)) }
        }
        #expect(try r.records(.dispute).isEmpty && r.syncState()?.pullCursor == 0)
        #expect(try r.applyPulled(page(good)).applied == 1)
        // Kept with the changes: r can relay them to a laptop that trusts the same hub.
        try r.exportBundle(to: dir.file("r.bundle"))
        let peer = try makeReplica(dir, "peer")
        #expect(try peer.importBundle(from: dir.file("r.bundle")).apply.setAside == 1, "a laptop of no hub cannot check the hub's signature")
        try peer.enroll(hubURL: "http://127.0.0.1:1", response: EnrollResponse(device: "dev-2", name: "p", scope: "", token: "fst_y",
                                                                               hubSite: hubSite, hubName: "中心", hubKey: hubKey.publicKey), caCert: nil)
        #expect(try peer.importBundle(from: dir.file("r.bundle")).apply.applied == 1)
        #expect(try peer.setAsideCount() == 0)
    }

    /// A hub on an older schema relays what it cannot judge as it came (changeset.md §2.4): a
    /// page signed over those texts may hold a change this replica finds invalid, or one whose
    /// text is not the canonical form its schema gives it. Each is set aside with its reason;
    /// the rest of the page applies, and a page whose signature holds over neither form is
    /// still refused whole.
    @Test func aPageWithAChangeThisSchemaRefusesSetsItAsideAndAppliesTheRest() throws {
        let hubKey = SiteKey()
        let hubSite = SiteID.random()
        let r = try enrolled("r", device: "dev-1", with: hubKey, hubSite)
        let other = try makeReplica(dir, "o")
        for n in 0..<3 { _ = try other.add(.dispute, disputeInput(parties: "当事人\(n)")) }
        let good = try allChanges(other).map(ChangeCodec.canonicalText)
        // The second one's fields reversed; a third of schema 1 naming a choice schema 1 lacks.
        var reversed = try JSONValue.parse(good[1]).objectValue!
        reversed["fields"] = .object(JSONObject(reversed["fields"]!.objectValue!.pairs.reversed().map { ($0.key, $0.value) }))
        let outOfOrder = JSONValue.object(reversed).compactText
        var bad = try JSONValue.parse(good[2]).objectValue!
        var fields = bad["fields"]!.objectValue!
        fields["status"] = ["value": "不存在的状态"]
        bad["fields"] = .object(fields)
        let invalid = JSONValue.object(bad).compactText
        let sent = [good[0], outOfOrder, invalid]
        func page(signing texts: [String]) throws -> ChangePage {
            let proof = Manifest.signed(by: hubKey, as: hubSite, digests: texts.map { ChangeDigest(canonicalText: $0) }).proofJSON
            return try ChangePage(json: JSONValue.parse(ChangePage.text(changeTexts: sent, cursor: 3, more: false, next: nil, sites: [:], hubTime: 0, proof: proof)))
        }
        // Signed over what this replica would write for them: holds over neither form.
        #expect(throws: ReplicaError.self) { try r.applyPulled(try page(signing: good)) }
        #expect(try r.records(.dispute).isEmpty)
        let rep = try r.applyPulled(try page(signing: sent))
        #expect(rep.applied == 1 && rep.setAside == 2, "\(rep)")
        #expect(try r.records(.dispute).map { $0["parties"] } == [.text("当事人0")])
        let aside = try r.setAsideChanges()
        #expect(aside.contains { $0.body == outOfOrder && $0.reason.contains("canonical form") }, "\(aside.map(\.reason))")
        #expect(aside.contains { $0.body == invalid && $0.reason.contains("不存在的状态") }, "\(aside.map(\.reason))")
        #expect(try r.syncState()?.pullCursor == 3, "the page was taken")
        // Every change readable, one not in canonical form: the signature over this replica's
        // own texts fails, over the texts as sent it holds.
        let r2 = try enrolled("r2", device: "dev-2", with: hubKey, hubSite)
        let two = [good[0], outOfOrder]
        let proof = Manifest.signed(by: hubKey, as: hubSite, digests: two.map { ChangeDigest(canonicalText: $0) }).proofJSON
        let readable = try ChangePage(json: JSONValue.parse(ChangePage.text(changeTexts: two, cursor: 2, more: false, next: nil, sites: [:], hubTime: 0, proof: proof)))
        #expect(readable.items.count == 2)
        let rep2 = try r2.applyPulled(readable)
        #expect(rep2.applied == 1 && rep2.setAside == 1, "\(rep2)")
        #expect(try r2.setAsideChanges().first?.reason.contains("canonical form") == true)
    }

    /// A replica enrolled with a hub of this key and site (no hub runs: the tests make its pages).
    func enrolled(_ name: String, device: String, with hubKey: SiteKey, _ hubSite: SiteID) throws -> Replica {
        let r = try makeReplica(dir, name)
        try r.enroll(hubURL: "http://127.0.0.1:1", response: EnrollResponse(device: device, name: name, scope: "", token: "fst_\(name)",
                                                                            hubSite: hubSite, hubName: "中心", hubKey: hubKey.publicKey), caCert: nil)
        return r
    }

    // MARK: Secrets and files

    @Test func theDeviceTokenAndKeyLiveOutsideTheReplicaInAnOwnerOnlyFile() throws {
        let r = try makeReplica(dir, "t")
        try r.enroll(hubURL: "http://127.0.0.1:1", response: EnrollResponse(device: "dev-1", name: "t", scope: "", token: "fst_secret_token_value",
                                                                            hubSite: SiteID.random(), hubName: "中心", hubKey: SiteKey().publicKey), caCert: nil)
        #expect(try r.syncState()?.token == "fst_secret_token_value")
        let bytes = try Data(contentsOf: URL(fileURLWithPath: r.path))
        #expect(bytes.range(of: Data("fst_secret_token_value".utf8)) == nil, "the replica file holds no token")
        let secret = try String(contentsOfFile: ReplicaSecrets.path(for: r.path), encoding: .utf8)
        #expect(secret.contains("fst_secret_token_value"))
        for p in [r.path, ReplicaSecrets.path(for: r.path), r.path + "-wal", r.path + "-shm"] where FileManager.default.fileExists(atPath: p) {
            let mode = (try FileManager.default.attributesOfItem(atPath: p)[.posixPermissions] as? NSNumber)?.uint16Value ?? 0
            #expect(mode & 0o077 == 0, "\(p) is \(String(mode, radix: 8))")
        }
        // A copy of the replica alone: it cannot speak as this laptop or its device.
        for suffix in ["", "-wal"] where FileManager.default.fileExists(atPath: r.path + suffix) {
            try FileManager.default.copyItem(atPath: r.path + suffix, toPath: dir.file("given.sqlite") + suffix)
        }
        let given = try Replica.open(path: dir.file("given.sqlite"))
        #expect(given.site != r.site, "a copy without the secret file takes a new site id")
        #expect(try given.syncState()?.token == "", "and has no token")
    }

    @Test func filesAreOwnerOnlyWhateverTheUmask() throws {
        let folder = dir.file("new/sub")
        let r = try runCLI(["init", "--site", "umask"], env: ["FIELDSYNC_DB": folder + "/r.sqlite"], binary: "fieldsync", umask: 0)
        #expect(r.status == 0, "\(r.stderr)")
        func mode(_ p: String) throws -> UInt16 { (try FileManager.default.attributesOfItem(atPath: p)[.posixPermissions] as? NSNumber)?.uint16Value ?? 0o777 }
        #expect(try mode(folder + "/r.sqlite") == 0o600)
        #expect(try mode(folder + "/r.sqlite.secret") == 0o600)
        #expect(try mode(folder) == 0o700)
        #expect(try mode(dir.file("new")) == 0o700)
        // SQLite gives the WAL and SHM the database file's mode.
        let q = try DatabaseQueue(path: folder + "/r.sqlite")
        try q.write { try $0.execute(sql: "UPDATE fs_meta SET value = value WHERE key = 'site'") }
        #expect(try mode(folder + "/r.sqlite-wal") == 0o600)
        #expect(try mode(folder + "/r.sqlite-shm") == 0o600)
        let e = try runCLI(["bundle", "export", dir.file("umask.bundle")], env: ["FIELDSYNC_DB": folder + "/r.sqlite"], umask: 0)
        let bundleMode = try mode(dir.file("umask.bundle"))
        #expect(e.status == 0 && bundleMode == 0o600, "\(e.stderr)")
    }
}

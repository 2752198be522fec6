import FieldSyncCore
@testable import FieldSyncReplica
import FieldSyncTrust
import Foundation
import Testing

/// Runs every origin vector in `Protocol/vectors/origin` (changeset.md §7.6) against the replica.
///
/// The vectors are written by `scripts/make-origin-vectors.py` from the prose of Protocol/ alone
/// (an independent implementation); `scripts/check-protocol` re-derives their verdicts in Python.
/// Here FieldSync must agree with them: each seed gives the vector's public key and site id
/// (§7.1), each change's canonical text (§2.3) and digest are the vector's byte for byte, and a
/// bundle made of the vector's lines, imported into a fresh replica that trusts the vector's hub
/// (if any), merges exactly the changes marked `proved` and sets aside exactly the others.
@Suite("Origin vectors (Protocol/vectors/origin, changeset.md §7.6)")
struct OriginVectorSpec {
    static let originDir = ProtocolVectorSpec.repoRoot.appendingPathComponent("Protocol/vectors/origin")

    static func vectorFiles() -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: originDir.path)) ?? []
        return names.filter { $0.hasSuffix(".json") }.sorted()
    }

    @Test("the origin vectors folder holds vectors")
    func folderIsNotEmpty() {
        #expect(!Self.vectorFiles().isEmpty, "no *.json origin vectors in \(Self.originDir.path)")
    }

    @Test("origin vector", arguments: vectorFiles())
    func vector(_ file: String) throws {
        let text = try String(contentsOfFile: Self.originDir.appendingPathComponent(file).path, encoding: .utf8)
        let doc = try JSONValue.parse(text)
        func bad(_ what: String) { Issue.record("\(file): malformed origin vector: \(what)") }

        // Keys: seed → public key → site id (§7.1).
        guard let keys = doc["keys"]?.objectValue, let pubs = doc["publicKeys"]?.objectValue,
              let sites = doc["sites"]?.objectValue else { bad("keys, publicKeys, sites"); return }
        var siteKeys: [String: SiteKey] = [:]
        for (name, seedJSON) in keys {
            guard let seed = seedJSON.stringValue.flatMap(hexBytes), seed.count == 32 else { bad("keys.\(name)"); return }
            guard let key = SiteKey(seed: seed) else { Issue.record("\(file): SiteKey(seed:) refused key \(name)"); continue }
            siteKeys[name] = key
            #expect(key.publicKey == pubs[name]?.stringValue.flatMap(Base64.decode),
                    "\(file): key \(name): public key \(Base64.encode(key.publicKey)), vector says \(pubs[name]?.stringValue ?? "nothing")")
            let derived = SiteIdentity.site(for: key.publicKey)
            #expect(derived?.hex == sites[name]?.stringValue,
                    "\(file): key \(name): SiteIdentity.site(for:) gives \(derived?.hex ?? "nil"), vector says \(sites[name]?.stringValue ?? "nothing")")
            #expect(key.site == derived, "\(file): key \(name): SiteKey.site \(key.site.hex) is not SiteIdentity.site(for: publicKey)")
        }

        // Changes: canonical text and digest (§2.3, §7.2).
        guard let changesJ = doc["changes"]?.arrayValue, let textsJ = doc["texts"]?.arrayValue,
              let digestsJ = doc["digests"]?.arrayValue, let expectJ = doc["expect"]?.arrayValue,
              textsJ.count == changesJ.count, digestsJ.count == changesJ.count, expectJ.count == changesJ.count
        else { bad("changes, texts, digests, expect (one of each per change)"); return }
        var ids: [String] = []
        var texts: [String] = []
        for (i, c) in changesJ.enumerated() {
            guard let t = textsJ[i].stringValue, let id = c["id"]?.stringValue else { bad("texts[\(i)]"); return }
            texts.append(t)
            ids.append(id)
            let decoded: Change
            do { decoded = try ChangeCodec.decode(c) } catch {
                Issue.record("\(file): change \(i) (\(id)) refused by ChangeCodec.decode: \(error)")
                continue
            }
            let mine = ChangeCodec.canonicalText(decoded)
            #expect(Array(mine.utf8) == Array(t.utf8), "\(file): change \(i): canonical text\n  FieldSync: \(mine)\n  vector:    \(t)")
            let fromText = try ChangeCodec.canonicalText(ChangeCodec.decode(JSONValue.parse(t)))
            #expect(Array(fromText.utf8) == Array(t.utf8), "\(file): change \(i): the vector's text does not re-encode to itself: \(fromText)")
            #expect(ChangeDigest(canonicalText: t).description == digestsJ[i].stringValue,
                    "\(file): change \(i): digest \(ChangeDigest(canonicalText: t)), vector says \(digestsJ[i].stringValue ?? "nothing")")
        }
        let expect = expectJ.map { $0.stringValue ?? "" }
        guard expect.allSatisfy({ $0 == "proved" || $0 == "setAside" }) else { bad("expect: \(expect)"); return }
        #expect(Set(ids).count == ids.count, "\(file): a change id appears twice")

        // The bundle (§5): header, the vector's lines, trailer; plain JSON Lines.
        guard let linesJ = doc["lines"]?.arrayValue else { bad("lines"); return }
        let writer = siteKeys.values.map(\.site).min() ?? SiteID(raw: 1)
        var out = [BundleFormat.headerLine(BundleHeader(site: writer, siteName: "origin-vector", created: 1_763_784_400_000, sites: [:]))]
        var changeLines = 0
        for (n, line) in linesJ.enumerated() {
            if let m = line["manifest"] {
                out.append(BundleFormat.manifestLine(m))
            } else if let i = line["change"]?.intValue, texts.indices.contains(Int(i)) {
                out.append(texts[Int(i)])
                changeLines += 1
            } else {
                bad("lines[\(n)]"); return
            }
        }
        out.append(BundleFormat.trailerLine(count: changeLines))
        let dir = TempDir("OriginVector\(file)")
        let bundle = dir.file("vector.jsonl")
        try Data((out.joined(separator: "\n") + "\n").utf8).write(to: URL(fileURLWithPath: bundle))

        // The receiver: a fresh replica, trusting the vector's hub when there is one.
        let replica = try makeReplica(dir, "receiver")
        #expect(!sites.contains { $0.value.stringValue == replica.site.hex }, "\(file): the receiver drew a vector's site id")
        if let hub = doc["hub"], hub != .null {
            guard let hubSite = hub["site"]?.stringValue.flatMap({ SiteID(hex: $0) }), let keyName = hub["key"]?.stringValue,
                  let hubKey = siteKeys[keyName] else { bad("hub"); return }
            try replica.enroll(hubURL: "http://127.0.0.1:1",
                               response: EnrollResponse(device: "dev-test", name: "t", scope: "", token: "fst_test",
                                                        hubSite: hubSite, hubName: "hub", hubKey: hubKey.publicKey),
                               caCert: nil)
        }
        do { try replica.importBundle(from: bundle) } catch {
            Issue.record("\(file): importBundle refused the bundle: \(error)")
            return
        }

        // Merged exactly the proved ones (their canonical text as logged), set aside exactly the others.
        var held: [String: String] = [:]
        for lc in try replica.changes() { held[lc.id.description] = lc.body }
        let aside = try replica.setAsideChanges(limit: 10_000)
        let asideIDs = Set(aside.map(\.change))
        for (i, id) in ids.enumerated() {
            let what = "\(file): change \(i) (\(id)), expected \(expect[i])"
            if expect[i] == "proved" {
                #expect(held[id].map { Array($0.utf8) } == Array(texts[i].utf8), "\(what): not merged as the vector's text (held: \(held[id] ?? "nothing"))")
                #expect(!asideIDs.contains(id), "\(what): set aside: \(aside.filter { $0.change == id }.map(\.reason))")
            } else {
                #expect(held[id] == nil, "\(what): merged")
                #expect(aside.contains { $0.change == id && Array($0.body.utf8) == Array(texts[i].utf8) }, "\(what): not set aside with its text")
            }
        }
        let expectedAside = Set(ids.indices.filter { expect[$0] == "setAside" }.map { ids[$0] })
        #expect(asideIDs == expectedAside, "\(file): set aside \(asideIDs.sorted()), expected \(expectedAside.sorted())")
        #expect(Set(held.keys) == Set(ids.indices.filter { expect[$0] == "proved" }.map { ids[$0] }),
                "\(file): the replica holds \(held.keys.sorted())")
    }
}

private func hexBytes(_ s: String) -> [UInt8]? {
    let u = Array(s.utf8)
    guard u.count % 2 == 0 else { return nil }
    func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        default: nil
        }
    }
    var out: [UInt8] = []
    for i in stride(from: 0, to: u.count, by: 2) {
        guard let h = nibble(u[i]), let l = nibble(u[i + 1]) else { return nil }
        out.append(h << 4 | l)
    }
    return out
}

import FieldSyncCore
import FieldSyncTrust
import Testing

/// Keys, site ids, manifests and secret hashing (Protocol/changeset.md §7), against values
/// computed independently (Python's hashlib) or published test vectors.
@Suite struct TrustSpec {
    @Test func aSiteIdIsTheFirst64BitsOfTheDomainSeparatedKeyHash() {
        // python3: hashlib.sha256(b'fieldsync-site-v1' + bytes(range(32))).hexdigest()[:16]
        #expect(SiteIdentity.site(for: (0..<32).map { UInt8($0) })?.hex == "ca12cf251a63b942")
        #expect(SiteIdentity.site(for: [1, 2, 3]) == nil)
        let k = SiteKey()
        #expect(SiteIdentity.owns(k.publicKey, k.site))
        #expect(SiteKey(seed: k.seed)?.site == k.site)
        #expect(SiteKey(seed: [1, 2]) == nil)
        #expect(!SiteIdentity.owns(SiteKey().publicKey, k.site))
    }

    @Test func aManifestSignatureCoversSignerAndEveryDigestInOrder() throws {
        let k = SiteKey()
        let d = ["a", "b", "c"].map { ChangeDigest(canonicalText: $0) }
        let m = Manifest.signed(by: k, as: k.site, digests: d)
        #expect(m.signatureHolds)
        var reordered = m
        reordered.digests.swapAt(0, 1)
        #expect(!reordered.signatureHolds)
        var otherSigner = m
        otherSigner.signer = SiteKey().site
        #expect(!otherSigner.signatureHolds)
        var dropped = m
        dropped.digests.removeLast()
        #expect(!dropped.signatureHolds)
        let back = try Manifest(json: try JSONValue.parse(m.json.compactText))
        #expect(back == m && back.signatureHolds)
        let proof = try Manifest(json: try JSONValue.parse(m.proofJSON.compactText), digests: d)
        #expect(proof == m)
    }

    @Test func aSiteVouchesOnlyForItsOwnChangesAndOnlyTheTrustedHubForOthers() {
        let a = SiteKey(), hubKey = SiteKey()
        let hubSite = SiteID(raw: 0x1234_5678_9abc_def0)  // a hub id from before derived ids
        let d = [ChangeDigest(canonicalText: "x")]
        let p = Provenance(hub: (hubSite, hubKey.publicKey))
        let own = Manifest.signed(by: a, as: a.site, digests: d)
        #expect(p.authority(of: own) == .origin(a.site))
        #expect(Provenance.vouches(.origin(a.site), for: ChangeID(site: a.site, counter: 3)))
        #expect(!Provenance.vouches(.origin(a.site), for: ChangeID(site: hubSite, counter: 3)))
        // A key claiming someone else's site id vouches for nothing.
        #expect(p.authority(of: Manifest.signed(by: a, as: hubSite, digests: d)) == nil)
        #expect(p.authority(of: Manifest.signed(by: hubKey, as: hubSite, digests: d)) == .hub)
        // Another "hub" is just a site, unless it is the one this receiver trusts.
        #expect(Provenance(hub: nil).authority(of: Manifest.signed(by: hubKey, as: hubSite, digests: d)) == nil)
    }

    @Test func secretsHashLikeTheStandards() {
        // FIPS 180-4 and RFC 4231 vectors.
        #expect(SecretHash.hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(Hex.encode(SecretHash.hmac(key: [UInt8](repeating: 0x0b, count: 20), message: Array("Hi There".utf8)))
                == "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
        // RFC 7914 §11.
        #expect(PasswordHash.derive("password", salt: "salt", iterations: 4096)
                == "c5e478d59288c841aa530db6845c4c8d962893a001ce4e11a4963873aa98134a")
        #expect(PasswordHash.derive("password", salt: "salt", iterations: 0) == nil)
    }

    @Test func passwordHashesMadeByEarlierReleasesStayValid() {
        // A hub made before swift-crypto stored PBKDF2-HMAC-SHA256(password, salt as UTF-8,
        // 210,000) in hex; python3: hashlib.pbkdf2_hmac('sha256', pw, salt, 210000, 32).hex()
        #expect(PasswordHash.derive("牛角村-密码-2026", salt: "5f1c0a9b3e7d2468aa01bb02cc03dd04", iterations: 210_000)
                == "fd19c89f0615845dd53e732623c831932c7c231ec021cd294a08b1b51ec65019")
    }
}

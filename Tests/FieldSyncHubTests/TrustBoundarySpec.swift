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

/// The attacks a hostile enrolled device tried against the hub (issue 9), replayed: each is
/// refused with its reason, and the genuine changes still arrive (Protocol/changeset.md §7,
/// sync.md §1 and §3, docs/security.md).
@Suite struct TrustBoundarySpec {
    /// A township laptop A (the hostile one) and a village laptop B (the victim), both enrolled.
    struct World {
        let f: StoreFixture
        let ka: SiteKey, kb: SiteKey
        let a: Device, b: Device
        let ta: String, tb: String
    }

    func world(_ kind: StoreKind, _ name: String = #function) async throws -> World {
        let f = try await StoreFixture(kind, name)
        let ka = SiteKey(), kb = SiteKey()
        let (a, ta) = try await f.device("王芳", scope: township, key: ka)
        let (b, tb) = try await f.device("李明", scope: village1, key: kb)
        return World(f: f, ka: ka, kb: kb, a: a, b: b, ta: ta, tb: tb)
    }

    func push(_ client: some TestClientProtocol, _ token: String, _ site: SiteID, _ changes: [Change], sites: [SiteID: String] = [:],
              manifests: [Manifest] = []) async throws -> [PushResult] {
        let text = PushBody.text(site: site, siteName: "x", sites: sites, changeTexts: changes.map(ChangeCodec.canonicalText),
                                 manifests: manifests.map { $0.json.compactText })
        return try await client.execute(uri: "/v1/changes", method: .post, headers: bearer(token), body: ByteBuffer(string: text)) { r in
            #expect(r.status == .ok, "\(body(r))")
            return try PushResponse(json: body(r)).results
        }
    }

    func changesUnder(_ f: StoreFixture, _ site: SiteID) async throws -> [String] {
        try await f.changeTexts(under: site)
    }

    // MARK: Squatting, forging, renaming

    @Test(arguments: StoreKind.available) func aDeviceCannotClaimAnotherLaptopsChangeIdsAndTheGenuineOneArrives(kind: StoreKind) async throws {
        let w = try await world(kind)
        let squat = creation(w.kb.site, 57, status: "已化解")
        let genuine = creation(w.kb.site, 57)
        try await w.f.app.test(.router) { client in
            let r = try await push(client, w.ta, w.ka.site, [squat])
            #expect(r[0].status == .refused && r[0].code == "not_authentic", "\(r)")
            #expect(r[0].reason?.contains("belongs to another laptop") == true)
            // A manifest A signed does not help: A's key does not derive B's site id.
            let forged = Manifest.signed(by: w.ka, as: w.kb.site, digests: [ChangeDigest(canonicalText: ChangeCodec.canonicalText(squat))])
            let r2 = try await push(client, w.ta, w.ka.site, [squat], manifests: [forged])
            #expect(r2[0].code == "not_authentic" && r2[0].reason?.contains("1 manifest(s)") == true, "\(r2)")
            let b = try await push(client, w.tb, w.kb.site, [genuine])
            #expect(b[0].status == .accepted, "B's own change 57 is B's: \(b)")
        }
        #expect(try await changesUnder(w.f, w.kb.site) == [ChangeCodec.canonicalText(genuine)])
    }

    @Test(arguments: StoreKind.available) func aDeviceCannotMakeChangesUnderTheHubsIdNorForgeASettlement(kind: StoreKind) async throws {
        let w = try await world(kind)
        let hub = w.f.store.hubSite
        let base = creation(w.ka.site, 1)
        func status(_ id: ChangeID, _ v: String, author: String = "王芳", resolves: [ChangeID]? = nil) -> Change {
            Change(id: id, kind: .dispute, row: base.row, hlc: HybridTimestamp(millis: 1_763_785_000_000 + min(id.counter, 1000), counter: 0), author: author,
                   writes: [FieldWrite(field: "status", value: .text(v), context: VersionVector([(base.id.site, Int64(1))]))], resolves: resolves)
        }
        let aEdit = status(ChangeID(site: w.ka.site, counter: 2), "已化解"), bEdit = status(ChangeID(site: w.kb.site, counter: 1), "已上报", author: "李明")
        let forgedSettlement = status(ChangeID(site: hub, counter: 9), "已化解", author: "supA", resolves: [aEdit.id, bEdit.id])
        let atTheEnd = status(ChangeID(site: hub, counter: ChangeID.maxCounter), "未化解", author: "supA")
        try await w.f.app.test(.router) { client in
            #expect(try await push(client, w.ta, w.ka.site, [base, aEdit]).allSatisfy { $0.status == .accepted })
            #expect(try await push(client, w.tb, w.kb.site, [bEdit])[0].status == .accepted)
            let r = try await push(client, w.ta, w.ka.site, [forgedSettlement, atTheEnd])
            #expect(r.map(\.code) == ["not_authentic", "not_authentic"], "\(r)")
            #expect(r[0].reason?.contains("hub's site id") == true)
            // The crash of issue 9: a counter past the bound is no change at all.
            let huge = #"{"site":"\#(w.ka.site.hex)","changes":[\#(ChangeCodec.canonicalText(atTheEnd).replacingOccurrences(of: ":\(ChangeID.maxCounter)\"", with: ":9223372036854775807\""))]}"#
            try await client.execute(uri: "/v1/changes", method: .post, headers: bearer(w.ta), body: ByteBuffer(string: huge)) { r in
                let res = try PushResponse(json: body(r)).results
                #expect(res[0].code == "invalid" && res[0].reason?.contains("9007199254740991") == true, "\(res)")
            }
        }
        #expect(try await changesUnder(w.f, hub).isEmpty, "nothing was made under the hub's id")
        // The supervisor's real settlement works (it did not fail with 503) and is the hub's.
        let headers = try await w.f.supervisorSession()
        try await w.f.app.test(.router) { client in
            try await client.execute(uri: "/v1/conflicts/\(base.row)/status/resolve", method: .post, headers: headers,
                                     body: ByteBuffer(string: #"{"value":"调解中","note":"电话核实"}"#)) { r in
                #expect(r.status == .ok, "\(body(r))")
            }
        }
        let hubChanges = try await changesUnder(w.f, hub).map { try ChangeCodec.decode(JSONValue.parse($0)) }
        #expect(hubChanges.count == 1 && hubChanges[0].author == "陈主任" && hubChanges[0].id.counter == 1)
        // After a restart the hub opens and takes pushes (the forged counters never reached it).
        let reopened = try await w.f.reopened()
        let more = try await reopened.push([ChangeCodec.encode(creation(w.ka.site, 3))], sites: [:], vouches: Vouches(), from: w.a)
        #expect(more.results[0].status == .accepted)
    }

    @Test(arguments: StoreKind.available) func aPushCanNameOnlyItsOwnSites(kind: StoreKind) async throws {
        let w = try await world(kind)
        try await w.f.app.test(.router) { client in
            let r = try await push(client, w.ta, w.ka.site, [creation(w.ka.site, 1)],
                                   sites: [w.f.store.hubSite: "假中心", w.kb.site: "假笔记本", w.ka.site: "王芳的新笔记本"])
            #expect(r[0].status == .accepted)
            let names = try await w.f.store.siteNames([w.f.store.hubSite, w.kb.site, w.ka.site])
            #expect(names[w.f.store.hubSite] == w.f.store.hubName && names[w.kb.site] == "李明" && names[w.ka.site] == "王芳的新笔记本", "\(names)")
            // A map past the cap is refused whole, naming the cap.
            var many: [SiteID: String] = [:]
            for _ in 0...PushBody.maxSiteNames { many[SiteID.random()] = "x" }
            let text = PushBody.text(site: w.ka.site, siteName: "x", sites: many, changeTexts: [])
            try await client.execute(uri: "/v1/changes", method: .post, headers: bearer(w.ta), body: ByteBuffer(string: text)) { r in
                #expect(r.status == .unprocessableContent && body(r)["error"]?["code"] == "too_many_sites")
                #expect(body(r)["error"]?["message"]?.stringValue?.contains("1000") == true)
            }
        }
    }

    // MARK: Relays

    /// B's laptop (a real replica) writes a bundle; A carries it to the hub.
    @Test(arguments: StoreKind.available) func aBundleSignedByItsOriginIsTakenFromAColleagueAndATamperedOneIsNot(kind: StoreKind) async throws {
        let w = try await world(kind)
        let dir = TempDir(#function)
        let laptop = try Replica.create(path: dir.file("b.sqlite"), siteName: "牛角村-李明", author: "李明")
        let (_, _) = try await w.f.device("李明的新笔记本", scope: village1, key: laptop.key)
        let ids = try (0..<5).map { n in try laptop.add(.dispute, disputeFields(parties: "当事人\(n)")) }
        try laptop.edit(ids[0], ["status": "调解中"])
        try laptop.exportBundle(to: dir.file("b.bundle"))
        let file = [UInt8](try Data(contentsOf: URL(fileURLWithPath: dir.file("b.bundle"))))
        // The same file with one change altered (its manifest kept): that change is refused.
        var lines = String(decoding: try Gzip.decompress(file, limit: 1 << 24), as: UTF8.self).split(separator: "\n").map(String.init)
        let i = try #require(lines.firstIndex { $0.contains("当事人3") })
        lines[i] = lines[i].replacingOccurrences(of: "当事人3", with: "被改过的当事人")
        let tampered = Gzip.compress(Array((lines.joined(separator: "\n") + "\n").utf8))
        try await w.f.app.test(.router) { client in
            try await client.execute(uri: "/v1/bundles/tampered.bundle", method: .put, headers: bearer(w.ta), body: ByteBuffer(bytes: tampered)) { r in
                let results = body(r)["results"]?.arrayValue ?? []
                #expect(r.status == .created && body(r)["accepted"] == .int(5) && body(r)["refused"] == .int(1), "\(body(r))")
                #expect(results.first { $0["status"] == "refused" }?["code"] == "not_authentic")
            }
            try await client.execute(uri: "/v1/bundles/b.bundle", method: .put, headers: bearer(w.ta), body: ByteBuffer(bytes: file)) { r in
                #expect(r.status == .created && body(r)["accepted"] == .int(1) && body(r)["duplicate"] == .int(5), "\(body(r))")
            }
        }
        #expect(try await changesUnder(w.f, laptop.site).count == 6)
        #expect(try await !changesUnder(w.f, laptop.site).contains { $0.contains("被改过的当事人") })
    }

    /// A imports B's bundle into its own replica, then pushes: the relayed changes go with the
    /// manifest that proves them (sync.md §3).
    @Test(arguments: StoreKind.available) func relayedChangesPushedWithTheirManifestAreTaken(kind: StoreKind) async throws {
        let w = try await world(kind)
        let dir = TempDir(#function)
        let b = try Replica.create(path: dir.file("b.sqlite"), siteName: "牛角村-李明", author: "李明")
        let a = try Replica.create(path: dir.file("a.sqlite"), siteName: "乡里-王芳", author: "王芳")
        _ = try await w.f.device("李明的笔记本2", scope: village1, key: b.key)
        _ = try await w.f.device("王芳的笔记本2", scope: township, key: a.key)
        let (aDev, aToken) = try await w.f.device("王芳的笔记本3", scope: township)
        _ = aDev
        for n in 0..<3 { _ = try b.add(.dispute, disputeFields(parties: "乙\(n)")) }
        _ = try a.add(.dispute, disputeFields(parties: "甲"))
        try b.exportBundle(to: dir.file("b.bundle"))
        #expect(try a.importBundle(from: dir.file("b.bundle")).apply.applied == 3)
        let batch = try a.pendingPush(after: 0, limit: 100, maxBytes: 1 << 20)
        let relayed = batch.filter { $0.id.site != a.site }.map(\.seq)
        let manifests = try a.manifests(proving: relayed)
        let aSite = a.site
        #expect(manifests.count == 1 && manifests[0].signer == b.site)
        // Pushed with a token of the device that owns a's site (here enrolled under a.key).
        let (_, ownerToken) = try await w.f.device("王芳的笔记本4", scope: township, key: SiteKey())
        _ = ownerToken
        try await w.f.app.test(.router) { client in
            // Without the manifest the relayed ones are refused…
            let bare = PushBody.text(site: aSite, siteName: "a", sites: [:], changeTexts: batch.map(\.body))
            try await client.execute(uri: "/v1/changes", method: .post, headers: bearer(aToken), body: ByteBuffer(string: bare)) { r in
                let res = try PushResponse(json: body(r)).results
                #expect(res.filter { $0.code == "not_authentic" }.count == 4, "a's own change is not aToken's either: \(res.map(\.code))")
            }
            // …with it, B's changes are proved (a's own change still needs a's token).
            let proved = PushBody.text(site: aSite, siteName: "a", sites: [:], changeTexts: batch.map(\.body), manifests: manifests.map { $0.json.compactText })
            try await client.execute(uri: "/v1/changes", method: .post, headers: bearer(aToken), body: ByteBuffer(string: proved)) { r in
                let res = try PushResponse(json: body(r)).results
                #expect(res.filter { $0.status == .accepted }.count == 3 && res.filter { $0.code == "not_authentic" }.count == 1, "\(res.map(\.code))")
            }
        }
        #expect(try await changesUnder(w.f, b.site).count == 3)
    }

    @Test(arguments: StoreKind.available) func aRelayedChangeMustLieInTheScopeOfTheLaptopThatMadeIt(kind: StoreKind) async throws {
        let w = try await world(kind)
        let dir = TempDir(#function)
        let b = try Replica.create(path: dir.file("b.sqlite"), siteName: "村里", author: "李明")
        _ = try await w.f.device("村里的笔记本", scope: village1, key: b.key)
        _ = try b.add(.dispute, disputeFields(village2, parties: "别村的事"))
        _ = try b.add(.dispute, disputeFields(parties: "本村的事"))
        try b.exportBundle(to: dir.file("b.bundle"))
        let file = [UInt8](try Data(contentsOf: URL(fileURLWithPath: dir.file("b.bundle"))))
        try await w.f.app.test(.router) { client in
            try await client.execute(uri: "/v1/bundles/b.bundle", method: .put, headers: bearer(w.ta), body: ByteBuffer(bytes: file)) { r in
                let res = body(r)["results"]?.arrayValue ?? []
                #expect(body(r)["accepted"] == .int(1), "\(body(r))")
                #expect(res.contains { $0["code"] == "out_of_scope" && ($0["reason"]?.stringValue ?? "").contains("laptop that made it") })
            }
        }
    }

    @Test(arguments: StoreKind.available) func changesOfUnenrolledOrRevokedLaptopsAreNotTakenFromOthers(kind: StoreKind) async throws {
        let w = try await world(kind)
        let dir = TempDir(#function)
        let stranger = try Replica.create(path: dir.file("s.sqlite"), siteName: "陌生", author: "某人")
        let gone = try Replica.create(path: dir.file("g.sqlite"), siteName: "丢失", author: "某人")
        let (goneDevice, _) = try await w.f.device("丢失的笔记本", scope: village1, key: gone.key)
        _ = try await w.f.store.revoke(device: goneDevice.id)
        _ = try stranger.add(.dispute, disputeFields(parties: "陌生人的"))
        _ = try gone.add(.dispute, disputeFields(parties: "丢失的"))
        for (r, name) in [(stranger, "s"), (gone, "g")] { try r.exportBundle(to: dir.file("\(name).bundle")) }
        try await w.f.app.test(.router) { client in
            for (name, code) in [("s", "unknown_origin"), ("g", "revoked_origin")] {
                let file = [UInt8](try Data(contentsOf: URL(fileURLWithPath: dir.file("\(name).bundle"))))
                try await client.execute(uri: "/v1/bundles/\(name).bundle", method: .put, headers: bearer(w.ta), body: ByteBuffer(bytes: file)) { r in
                    #expect(body(r)["results"]?.arrayValue?.first?["code"]?.stringValue == code, "\(body(r))")
                }
            }
        }
    }

    // MARK: Vectors and bounds

    @Test(arguments: StoreKind.available) func seenVectorsMayNameOnlySitesTheHubKnowsAndHoldAt256(kind: StoreKind) async throws {
        let w = try await world(kind)
        let base = creation(w.ka.site, 1)
        func edit(_ n: Int64, _ seen: VersionVector) -> Change {
            Change(id: ChangeID(site: w.ka.site, counter: n), kind: .dispute, row: base.row, hlc: HybridTimestamp(millis: 1_763_785_000_000 + n, counter: 0),
                   author: "王芳", writes: [FieldWrite(field: "status", value: .text("调解中"), context: seen)])
        }
        let invented = edit(2, VersionVector([(w.ka.site, Int64(1)), (SiteID.random(), Int64(5))]))
        let known = edit(3, VersionVector([(w.ka.site, Int64(1)), (w.kb.site, Int64(5)), (w.f.store.hubSite, Int64(2))]))
        var wide: [String] = []
        for _ in 0...ChangeCodec.maxSeenEntries { wide.append("\"\(SiteID.random().hex)\":1") }
        let tooWide = ChangeCodec.canonicalText(edit(4, VersionVector([(w.ka.site, Int64(1))])))
            .replacingOccurrences(of: "\"seen\":{\"\(w.ka.site.hex)\":1}", with: "\"seen\":{" + wide.joined(separator: ",") + "}")
        try await w.f.app.test(.router) { client in
            let r = try await push(client, w.ta, w.ka.site, [base, invented, known])
            #expect(r.map(\.status) == [.accepted, .refused, .accepted] && r[1].code == "unknown_site", "\(r)")
            let text = PushBody.text(site: w.ka.site, siteName: "x", sites: [:], changeTexts: [tooWide])
            try await client.execute(uri: "/v1/changes", method: .post, headers: bearer(w.ta), body: ByteBuffer(string: text)) { r in
                let res = try PushResponse(json: body(r)).results
                #expect(res[0].code == "invalid" && res[0].reason?.contains("at most 256") == true, "\(res)")
            }
        }
    }

    @Test(arguments: StoreKind.available) func aPushWithTooManyManifestsIsRefusedNamingTheCap(kind: StoreKind) async throws {
        let w = try await world(kind)
        let m = Manifest.signed(by: w.ka, as: w.ka.site, digests: [ChangeDigest(canonicalText: "x")])
        let text = PushBody.text(site: w.ka.site, siteName: "x", sites: [:], changeTexts: [],
                                 manifests: Array(repeating: m.json.compactText, count: PushBody.maxManifests + 1))
        try await w.f.app.test(.router) { client in
            try await client.execute(uri: "/v1/changes", method: .post, headers: bearer(w.ta), body: ByteBuffer(string: text)) { r in
                #expect(r.status == .unprocessableContent && body(r)["error"]?["code"] == "too_many_manifests")
                #expect(body(r)["error"]?["message"]?.stringValue?.contains("at most 100") == true)
            }
        }
    }

    // MARK: Enrolment and binding

    @Test(arguments: StoreKind.available) func nobodyEnrolsOrBindsUnderASiteIdWhoseKeyTheyDoNotHold(kind: StoreKind) async throws {
        let w = try await world(kind)
        let thief = SiteKey()
        try await w.f.app.test(.router) { client in
            let d = try await w.f.store.addDevice(name: "冒名", scope: village1, codeLifetimeMs: 3_600_000)
            // B's site id with the thief's key: the id is not derived from it.
            var req = enrolment(code: d.code, key: thief, name: "冒名")
            req.site = w.kb.site
            try await client.execute(uri: "/v1/enroll", method: .post, body: ByteBuffer(string: req.json.compactText)) { r in
                #expect(r.status == .unprocessableContent && body(r)["error"]?["message"]?.stringValue?.contains("not derived") == true)
            }
            // A proof made for another code does not hold for this one.
            var replayed = enrolment(code: "AAAA-BBBB-CCCC", key: thief, name: "冒名")
            replayed.code = d.code
            try await client.execute(uri: "/v1/enroll", method: .post, body: ByteBuffer(string: replayed.json.compactText)) { r in
                #expect(r.status == .unprocessableContent && body(r)["error"]?["message"]?.stringValue?.contains("proof") == true)
            }
            // Even with B's key (a stolen one), B's site stays B's.
            try await client.execute(uri: "/v1/enroll", method: .post, body: ByteBuffer(string: enrolment(code: d.code, key: w.kb, name: "冒名").json.compactText)) { r in
                #expect(r.status == .conflict && body(r)["error"]?["code"] == "site_taken")
            }
            // A binds a new site of its own; not B's, not the hub's; at most 16.
            func bindBody(_ k: SiteKey, as site: SiteID? = nil, device: String) -> ByteBuffer {
                var b = SiteBinding(site: k.site, key: k.publicKey, proof: k.sign(SiteBinding.possessionMessage(device: device, site: k.site)))
                if let site { b.site = site }
                return ByteBuffer(string: b.json.compactText)
            }
            try await client.execute(uri: "/v1/device/sites", method: .post, headers: bearer(w.ta), body: bindBody(thief, device: w.a.id)) { r in
                #expect(r.status == .ok, "\(body(r))")
            }
            try await client.execute(uri: "/v1/device/sites", method: .post, headers: bearer(w.ta), body: bindBody(w.kb, device: w.a.id)) { r in
                #expect(r.status == .conflict && body(r)["error"]?["code"] == "site_taken")
            }
            try await client.execute(uri: "/v1/device/sites", method: .post, headers: bearer(w.ta), body: bindBody(SiteKey(), device: "dev-other")) { r in
                #expect(r.status == .unprocessableContent, "a proof made for another device")
            }
            var last = HTTPResponse.Status.ok
            for _ in 0..<SitePossession.maxSitesPerDevice {
                last = try await client.execute(uri: "/v1/device/sites", method: .post, headers: bearer(w.ta), body: bindBody(SiteKey(), device: w.a.id)) { $0.status }
            }
            #expect(last == .unprocessableContent)
        }
        // The thief's own site now belongs to A: A may push under it with its token.
        let r = try await w.f.store.push([ChangeCodec.encode(creation(thief.site, 1))], sites: [:], vouches: Vouches(), from: w.a)
        #expect(r.results[0].status == .accepted)
    }

    // MARK: Supervisors and transport

    /// Two villages in two townships with records whose ids share their first hex digits after
    /// the dash; a supervisor of one township looks them up by that prefix.
    @Test(arguments: StoreKind.available) func aPrefixLookupStaysInTheSupervisorsScopeAndOutsideReadsAsMissing(kind: StoreKind) async throws {
        let f = try await StoreFixture(kind)
        let key = SiteKey()
        let (county, _) = try await f.device("县里", scope: "520221", key: key)
        let here = "520221105201-abcd" + String(repeating: "1", count: 28), there = "520221106301-abcd" + String(repeating: "2", count: 28)
        let onlyThere = "520221106301-beef" + String(repeating: "3", count: 28)
        var changes: [Change] = []
        var n: Int64 = 0
        for row in [here, there, onlyThere] {
            let village = String(row.prefix(12))
            n += 1
            let base = creation(key.site, n, village: village, row: row)
            changes.append(base)
            for v in ["已化解", "已上报"] {
                n += 1
                // Two writes that each saw only the creation: a conflict on status.
                changes.append(Change(id: ChangeID(site: key.site, counter: n), kind: .dispute, row: row, hlc: HybridTimestamp(millis: 1_763_785_000_000 + n, counter: 0),
                                      author: "王芳", writes: [FieldWrite(field: "status", value: .text(v), context: VersionVector([(key.site, base.id.counter)]))]))
            }
        }
        _ = try await f.store.push(changes.map(ChangeCodec.encode), sites: [:], vouches: Vouches(), from: county)
        _ = try await f.store.addSupervisor(name: "镇干部", scope: "520221105", password: "correct horse")
        let token = try await SignIn(store: f.store, pool: PasswordHashingPool(), logger: Logger(label: "t"))(name: "镇干部", password: "correct horse", address: nil).token
        try await f.app.test(.router) { client in
            // "abcd" matches a record in each township: for this supervisor, only the one inside.
            try await client.execute(uri: "/v1/conflicts/abcd/status", method: .get, headers: bearer(token)) { r in
                #expect(r.status == .ok && body(r)["row"]?.stringValue == here, "\(body(r))")
                #expect(!"\(body(r))".contains(there))
            }
            // A prefix found only outside the scope reads exactly as one found nowhere.
            var messages: [String] = []
            for prefix in ["beef", "cafe"] {
                try await client.execute(uri: "/v1/conflicts/\(prefix)/status", method: .get, headers: bearer(token)) { r in
                    #expect(r.status == .notFound && body(r)["error"]?["code"] == "not_found")
                    messages.append((body(r)["error"]?["message"]?.stringValue ?? "").replacingOccurrences(of: prefix, with: "P"))
                    #expect(!"\(body(r))".contains(onlyThere))
                }
            }
            #expect(messages[0] == messages[1], "\(messages)")
            // Settling by prefix is the same look-up.
            try await client.execute(uri: "/v1/conflicts/beef/status/resolve", method: .post, headers: bearer(token),
                                     body: ByteBuffer(string: #"{"method":"newest"}"#)) { r in
                #expect(r.status == .notFound)
            }
        }
        let everyone = Supervisor(name: "县", scope: "520221")
        #expect(try await f.store.conflicts(for: everyone, ConflictFilter()).count == 3, "nothing was settled")
    }

    @Test(arguments: StoreKind.available) func overHTTPSEveryResponseCarriesHSTSAndOverPlainHTTPNone(kind: StoreKind) async throws {
        let f = try await StoreFixture(kind)
        for secure in [true, false] {
            let app = Application(router: HubHTTP.router(store: f.store, logger: quietLogger(), console: ConsoleConfiguration(secureCookies: secure)), logger: quietLogger())
            try await app.test(.router) { client in
                for uri in ["/v1/health", "/v1/changes", "/console/login", "/nowhere"] {
                    try await client.execute(uri: uri, method: .get) { r in
                        let hsts = r.headers[HTTPField.Name("Strict-Transport-Security")!]
                        #expect(secure ? hsts == "max-age=31536000" : hsts == nil, "\(uri) over \(secure ? "HTTPS" : "HTTP"): \(hsts ?? "none")")
                    }
                }
            }
        }
    }

    @Test func hubFilesAndInboxesAreOwnerOnlyWhateverTheUmask() async throws {
        let dir = TempDir(#function)
        let db = dir.file("new/hub.sqlite")
        let made = try runCLI(["init", "--db", db], binary: "fieldsync-hub", umask: 0)
        #expect(made.status == 0, "\(made.stderr)")
        let r = try runCLI(["device", "add", "--db", db, "--name", "王芳", "--scope", village1, "--json"], binary: "fieldsync-hub", umask: 0)
        #expect(r.status == 0, "\(r.stderr)")
        func mode(_ p: String) throws -> UInt16 { (try FileManager.default.attributesOfItem(atPath: p)[.posixPermissions] as? NSNumber)?.uint16Value ?? 0o777 }
        #expect(try mode(db) == 0o600)
        #expect(try mode(dir.file("new")) == 0o700)
        // The inbox a bundle upload creates.
        let store = try SQLiteHubStore(path: db)
        let key = SiteKey()
        let code = try JSONValue.parse(r.stdout)["code"]!.stringValue!
        let e = try await store.enroll(enrolment(code: code, key: key, name: "王芳"))
        let device = Device(id: e.device, name: "王芳", scope: village1)
        _ = try await store.keepBundle(named: "a.bundle", bytes: Array("x".utf8), from: device)
        #expect(try mode(store.bundleFolder) == 0o700)
        #expect(try mode(store.bundleFolder + "/\(device.id)") == 0o700)
        #expect(try mode(store.bundleFolder + "/\(device.id)/a.bundle") == 0o600)
    }
}

/// A dispute's fields for `Replica.add`.
func disputeFields(_ village: String = village1, parties: String = "张三与李四") -> JSONObject {
    JSONObject([("village", .string(village)), ("category", "邻里纠纷"), ("parties", .string(parties)), ("summary", "宅基地边界"),
                ("reported_on", "2026-11-20"), ("status", "受理")])
}

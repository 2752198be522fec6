import FieldSyncCore
import FieldSyncTrust
@testable import FieldSyncHub
@_spi(Hub) import FieldSyncReplica
import Foundation
import GRDB
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

/// Values at and past every limit — counters near 2^53 and 2^63, vectors and maps of hundreds of
/// thousands of entries, clocks at both ends, long notes and authors, every kind of site id —
/// pushed to the hub, imported from a bundle and applied from a pulled page (issue 9, item 1):
/// nothing traps, each change is taken exactly when it is within the limits and authentic, and
/// nothing else changes. Replay a failure with FIELDSYNC_SEED=N; FIELDSYNC_EXTREME_RUNS for more.
@Suite(.serialized) struct ExtremeValueProperty {
    static let seed: UInt64 = ProcessInfo.processInfo.environment["FIELDSYNC_SEED"].flatMap(UInt64.init) ?? UInt64.random(in: 1...UInt64.max >> 1)
    static let runs = ProcessInfo.processInfo.environment["FIELDSYNC_EXTREME_RUNS"].flatMap(Int.init) ?? 120

    /// One generated change as JSON text, and whether it is within every limit (so a receiver
    /// that trusts its origin takes it).
    struct Case {
        var text: String
        var valid: Bool
        var what: String
        /// Its `seen` names sites nobody enrolled (a hub refuses those: `unknown_site`).
        var namesUnknownSites = false
        /// Stamped beyond the hub's drift bound (a hub refuses those: `clock_ahead`; laptops keep them).
        var ahead = false
    }

    static let counters: [(String, Bool)] = [("9007199254740991", true), ("9007199254740992", false), ("9223372036854775807", false),
                                             ("18446744073709551616", false), ("0", false), ("-1", false), ("01", false)]
    static let millis: [(String, Bool)] = [("1", true), ("140737488355327", true), ("140737488355328", false), ("9223372036854775807", false),
                                           ("0", false), ("1763784000000", true)]

    /// A case whose id was not generated before: the extreme counters repeat, and an id used
    /// again for other content is a clone (refused), which is not what these cases test.
    static func fresh(site: SiteID, n: Int, row: String, used: inout Set<String>, _ rng: inout SplitMix64) -> Case {
        while true {
            let c = make(site: site, n: n, row: row, &rng)
            let id = c.text.dropFirst(7).prefix { $0 != "\"" }
            if used.insert(String(id)).inserted { return c }
        }
    }

    static func make(site: SiteID, n: Int, row: String, _ rng: inout SplitMix64) -> Case {
        var counter = "\(n)", hlc = "1763784000000-\(n % 65536)", author = "王芳", note: String?
        var seen = "", valid = true, what = "plain", unknown = false, ahead = false
        var resolves: String?
        switch Int.random(in: 0..<9, using: &rng) {
        case 0:
            let c = counters.randomElement(using: &rng)!
            counter = c.0; valid = c.1; what = "counter \(c.0)"
        case 1:
            let m = millis.randomElement(using: &rng)!
            let k = [("0", true), ("65535", true), ("65536", false)].randomElement(using: &rng)!
            hlc = "\(m.0)-\(k.0)"; valid = m.1 && k.1; what = "hlc \(hlc)"
            ahead = (Int64(m.0) ?? 0) > 1_800_000_000_000
        case 2:
            // Vectors of every size; the sites are all the change's own earlier writes or the
            // hub's, so only the size decides.
            let size = [0, 1, 255, 256, 257, 5000, 100_000].randomElement(using: &rng)!
            var entries: [String] = []
            for _ in 0..<size { entries.append("\"\(SiteID.random().hex)\":\(Int64.random(in: 1...ChangeID.maxCounter, using: &rng))") }
            seen = ",\"seen\":{" + entries.joined(separator: ",") + "}"
            valid = size <= ChangeCodec.maxSeenEntries
            unknown = size > 0
            what = "seen of \(size)"
        case 3:
            let c = counters.randomElement(using: &rng)!
            seen = ",\"seen\":{\"\(SiteID.random().hex)\":\(c.0)}"
            valid = c.1 && !c.0.hasPrefix("0")
            unknown = true
            what = "seen counter \(c.0)"
        case 4:
            let len = [1, 100, 101, 10_000].randomElement(using: &rng)!
            author = String(repeating: "王", count: len); valid = len <= ChangeCodec.maxAuthorLength; what = "author of \(len)"
        case 5:
            let len = [0, 2000, 2001, 100_000].randomElement(using: &rng)!
            note = String(repeating: "记", count: len); valid = len <= ChangeCodec.maxNoteLength; what = "note of \(len)"
        case 6:
            let count = [1, 100, 101, 50_000].randomElement(using: &rng)!
            let c = counters.randomElement(using: &rng)!
            resolves = "[" + (0..<count).map { _ in "\"\(SiteID.random().hex):\(c.0)\"" }.joined(separator: ",") + "]"
            valid = count <= ChangeCodec.maxResolves && c.1
            what = "resolves \(count) × \(c.0)"
        default: break
        }
        var text = #"{"id":"\#(site.hex):\#(counter)","kind":"dispute","row":"\#(row)","hlc":"\#(hlc)","author":"\#(author)","schema":1,"fields":{"#
            + #""status":{"value":"调解中"\#(seen)}}"#
        if let note { text += #","note":"\#(note)""# }
        if let resolves { text += #","resolves":\#(resolves)"# }
        return Case(text: text + "}", valid: valid, what: what, namesUnknownSites: unknown, ahead: ahead)
    }

    @Test func extremeValuesNeverTrapTheHubAndOnlyValidOwnChangesLand() async throws {
        var rng = SplitMix64(seed: Self.seed)
        let f = try HubFixture()
        let key = SiteKey()
        let (device, token) = try await f.device("王芳", scope: village1, key: key)
        let base = creation(key.site, 1)
        // Every push decided beforehand (the test client runs its closure concurrently).
        struct Push: Sendable { let text: String; let ctx: String; let expectTaken: Bool; let tooBig: Bool; let notJSON: Bool }
        var pushes: [Push] = []
        var used: Set<String> = []
        var counter: Int64 = 1
        for run in 0..<Self.runs {
            counter += 1
            let sites: [SiteID] = [key.site, key.site, f.store.hubSite, SiteID.random(), SiteID(raw: 0)]
            let site = sites.randomElement(using: &rng)!
            let c = Self.fresh(site: site, n: Int(counter), row: base.row, used: &used, &rng)
            // Now and then a huge site-name map beside it.
            let mapSize = [0, 0, 0, 1000, 1001, 100_000].randomElement(using: &rng)!
            let names = "{" + (0..<mapSize).map { _ in "\"\(SiteID.random().hex)\":\"某站点\"" }.joined(separator: ",") + "}"
            let text = #"{"site":"\#(key.site.hex)","sites":\#(names),"changes":[\#(c.text)]}"#
            pushes.append(Push(text: text, ctx: "seed \(Self.seed) run \(run): \(c.what), site \(site == key.site ? "own" : site.hex), map \(mapSize)",
                               expectTaken: c.valid && !c.namesUnknownSites && !c.ahead && site == key.site && mapSize <= PushBody.maxSiteNames,
                               tooBig: mapSize > PushBody.maxSiteNames || text.utf8.count > SyncProtocol.maxRequestBytes,
                               // A counter like 01 or 2^64 as a JSON number makes the body not JSON at all.
                               notJSON: (try? JSONValue.parse(text)) == nil))
        }
        let all = pushes
        let (landed, refused) = try await f.app.test(.router) { client -> (Int, Int) in
            var landed = 0, refused = 0
            try await client.execute(uri: "/v1/changes", method: .post, headers: bearer(token), body: pushBody(key.site, [base])) { _ in }
            for p in all {
                let before = try fingerprint(f.store.path)
                let status = try await client.execute(uri: "/v1/changes", method: .post, headers: bearer(token), body: ByteBuffer(string: p.text)) { r in
                    (r.status, body(r))
                }
                if p.notJSON {
                    #expect(status.0 == .badRequest && status.1["error"]?["code"] == "bad_json", "\(p.ctx): \(status)")
                } else if p.tooBig {
                    #expect([.unprocessableContent, .contentTooLarge].contains(status.0), "\(p.ctx): \(status)")
                } else {
                    #expect(status.0 == .ok, "\(p.ctx): \(status)")
                    let result = try? PushResponse(json: status.1).results.first
                    #expect((result?.status == .accepted) == p.expectTaken, "\(p.ctx): \(String(describing: result))")
                }
                if p.expectTaken { landed += 1 } else {
                    refused += 1
                    #expect(try fingerprint(f.store.path) == before, "\(p.ctx): a refused change changed the store")
                }
            }
            return (landed, refused)
        }
        // The hub reopens and serves after all of it (the crash of issue 9 came at the next start).
        let reopened = try SQLiteHubStore(path: f.store.path)
        #expect(try reopened.sync { try SQLiteHubStoreAdmin.devices($0) }.count == 1)
        counter += 1
        let after = try await reopened.push([ChangeCodec.encode(creation(key.site, counter))], sites: [:], vouches: Vouches(), from: device)
        #expect(after.results[0].status == .accepted, "seed \(Self.seed)")
        print("extreme values at the hub: seed \(Self.seed), \(Self.runs) pushes, \(landed) taken, \(refused) refused, no trap")
    }

    @Test func extremeValuesNeverTrapALaptopImportingOrPulling() throws {
        var rng = SplitMix64(seed: Self.seed &+ 1)
        let dir = TempDir(#function)
        let origin = try Replica.create(path: dir.file("origin.sqlite"), siteName: "甲", author: "王芳")
        let r = try Replica.create(path: dir.file("r.sqlite"), siteName: "乙", author: "李明")
        let hubKey = SiteKey(), hubSite = SiteID.random()
        try r.enroll(hubURL: "http://127.0.0.1:1", response: EnrollResponse(device: "dev-1", name: "乙", scope: "", token: "fst_x",
                                                                            hubSite: hubSite, hubName: "中心", hubKey: hubKey.publicKey), caCert: nil)
        let row = try origin.add(.dispute, JSONObject([("village", .string(village1)), ("category", "邻里纠纷"), ("parties", "张三与李四"),
                                                       ("summary", "宅基地"), ("reported_on", "2026-11-20"), ("status", "受理")]))
        var counter: Int64 = 100
        var used: Set<String> = []
        var takenFromBundles = 0, takenFromPages = 0
        for run in 0..<Self.runs / 2 {
            counter += 1
            let sites = [origin.site, origin.site, r.site, hubSite, SiteID.random()]
            let site = sites.randomElement(using: &rng)!
            let c = Self.fresh(site: site, n: Int(counter), row: row, used: &used, &rng)
            let ctx = "seed \(Self.seed &+ 1) run \(run): \(c.what), site \(site == origin.site ? "origin" : site == r.site ? "own" : site.hex)"
            // As a bundle the origin signed (when the change decodes at all).
            let decoded = try? ChangeCodec.decode(JSONValue.parse(c.text))
            let canonical = decoded.map(ChangeCodec.canonicalText) ?? c.text
            let m = Manifest.signed(by: origin.key, as: origin.site, digests: [ChangeDigest(canonicalText: canonical)])
            let header = BundleFormat.headerLine(BundleHeader(site: origin.site, siteName: "甲", created: 1_763_784_000_000, sites: [origin.site: "甲"]))
            let lines = [header, BundleFormat.manifestLine(m.json), canonical, BundleFormat.trailerLine(count: 1)]
            let file = dir.file("run\(run).bundle")
            try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: URL(fileURLWithPath: file))
            let before = try fingerprint(r.path)
            let imported = try? r.importBundle(from: file)
            let bundleTakes = c.valid && site == origin.site
            #expect((imported?.apply.applied ?? 0) + (imported?.apply.obsolete ?? 0) == (bundleTakes ? 1 : 0), "\(ctx): \(String(describing: imported?.apply))")
            if imported == nil { #expect(!c.valid, "\(ctx): a valid change's bundle was refused whole") }
            if bundleTakes { takenFromBundles += 1 } else { #expect(try fingerprint(r.path) == before, "\(ctx): the replica changed") }
            // As a page from the hub (the hub signs whatever it serves).
            counter += 1
            let c2 = Self.fresh(site: site, n: Int(counter), row: row, used: &used, &rng)
            let before2 = try fingerprint(r.path)
            var applied = false
            if let json = try? JSONValue.parse(#"{"changes":[\#(c2.text)],"cursor":\#(counter),"more":false,"next":null,"sites":{},"hubTime":0}"#),
               let probe = try? ChangePage(json: json) {
                // What a hub serves: the canonical text of a change it reads, one it cannot judge
                // (a hub on an older schema) as it came; it signs what it serves.
                let served = probe.decoded.enumerated().map { n, d in (try? d.get())?.canonicalText ?? probe.received[n].compactText }
                var page = try ChangePage(json: JSONValue.parse(ChangePage.text(changeTexts: served, cursor: counter, more: false, next: nil, sites: [:], hubTime: 0)))
                page.proof = Manifest.signed(by: hubKey, as: hubSite, digests: served.map { ChangeDigest(canonicalText: $0) }).proofJSON
                let report = try r.applyPulled(page)
                applied = report.applied + report.obsolete == 1
                #expect(report.setAside == (site == r.site || !c2.valid ? 1 : 0), "\(ctx): own-site claims and invalid changes are set aside, the page taken")
            }
            #expect(applied == (c2.valid && site != r.site), "\(ctx) page: \(c2.what)")
            if applied { takenFromPages += 1 } else if !c2.valid { #expect(try fingerprint(r.path) == before2, "\(ctx) page: the replica changed") }
        }
        // The laptop still writes and reads after all of it.
        _ = try r.edit(row, JSONObject([("status", "已化解")]))
        #expect(try r.status().changes > 0)
        print("extreme values at a laptop: seed \(Self.seed &+ 1), \(Self.runs / 2) bundles (\(takenFromBundles) taken) and pages (\(takenFromPages) taken), no trap")
    }
}

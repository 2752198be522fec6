import FieldSyncCore
import FieldSyncTrust
@testable import FieldSyncHub
@_spi(Hub) import FieldSyncReplica
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

/// The hub's HTTP API, driven in process: enrolment, tokens, scope, push and pull semantics,
/// and precise refusals.
@Suite struct HubAPISpec {
    @Test(arguments: StoreKind.available) func everyResponseCarriesTheHubClock(kind: StoreKind) async throws {
        let f = try await StoreFixture(kind)
        try await f.app.test(.router) { client in
            for uri in ["/v1/health", "/v1/changes", "/nowhere"] {
                // Between the request leaving and the answer being read (a loaded machine may
                // take long between the two; the clock must still fall inside).
                let before = Int64(Date().timeIntervalSince1970 * 1000)
                try await client.execute(uri: uri, method: .get) { r in
                    let after = Int64(Date().timeIntervalSince1970 * 1000)
                    let t = r.headers[HTTPField.Name(SyncProtocol.hubTimeHeader)!].flatMap(Int64.init)
                    #expect(t != nil, "\(uri) has no hub time")
                    #expect((before - 1000...after + 1000).contains(t ?? 0), "\(uri): hub time \(t ?? 0) outside \(before)…\(after)")
                }
            }
        }
    }

    @Test(arguments: StoreKind.available) func anEnrolmentCodeWorksOnceAndOnlyUntilItExpires(kind: StoreKind) async throws {
        let f = try await StoreFixture(kind)
        let d = try await f.store.addDevice(name: "王芳", scope: village1, codeLifetimeMs: 3_600_000)
        let key = SiteKey()
        try await f.app.test(.router) { client in
            let req = ByteBuffer(string: enrolment(code: d.code.lowercased(), key: key, name: "王芳笔记本").json.compactText)
            var first = ""
            try await client.execute(uri: "/v1/enroll", method: .post, body: req) { r in
                #expect(r.status == .ok)
                let e = try EnrollResponse(json: body(r))
                first = e.token
                #expect(e.device == d.id && e.scope == village1 && e.token.hasPrefix("fst_"))
                #expect(e.hubSite == f.store.hubSite && e.hubKey == f.store.hubKey.publicKey)
            }
            // The same laptop again (its answer was lost on a cut link): a fresh token, the lost
            // one invalid. Another site with the used code: refused.
            var kept = ""
            try await client.execute(uri: "/v1/enroll", method: .post, body: req) { r in
                #expect(r.status == .ok)
                kept = try EnrollResponse(json: body(r)).token
            }
            let other = ByteBuffer(string: enrolment(code: d.code, key: SiteKey(), name: "别人").json.compactText)
            try await client.execute(uri: "/v1/enroll", method: .post, body: other) { r in
                #expect(r.status == .forbidden)
                #expect(body(r)["error"]?["code"] == "bad_code")
            }
            let lost = try await f.strings("SELECT token_hash FROM hub_device WHERE id = ?", [.text(d.id)]).first ?? ""
            #expect(lost == Enrolment.hash(kept), "only the newest token is valid")
            try await client.execute(uri: "/v1/device", method: .get, headers: bearer(first)) { r in #expect(r.status == .unauthorized) }
            try await client.execute(uri: "/v1/device", method: .get, headers: bearer(kept)) { r in #expect(r.status == .ok) }
            // Once its token has been used, the code is spent even for the same laptop.
            try await client.execute(uri: "/v1/enroll", method: .post, body: req) { r in
                #expect(r.status == .forbidden)
                #expect(body(r)["error"]?["code"] == "bad_code")
            }
            try await client.execute(uri: "/v1/device", method: .get, headers: bearer(kept)) { r in #expect(r.status == .ok) }
            let old = try await f.store.addDevice(name: "过期", scope: village1, codeLifetimeMs: -1000)
            let oldReq = ByteBuffer(string: enrolment(code: old.code, key: SiteKey(), name: "x").json.compactText)
            try await client.execute(uri: "/v1/enroll", method: .post, body: oldReq) { r in
                #expect(r.status == .forbidden)
                #expect(body(r)["error"]?["code"] == "code_expired")
            }
        }
        // Only a hash of the token is stored.
        let stored = try await f.strings("SELECT token_hash FROM hub_device WHERE token_hash IS NOT NULL")
        #expect(stored.count == 1 && stored[0].count == 64 && !stored[0].hasPrefix("fst_"))
    }

    @Test(arguments: StoreKind.available) func missingWrongAndRevokedTokensAreRefused(kind: StoreKind) async throws {
        let f = try await StoreFixture(kind)
        let (device, token) = try await f.device("王芳", scope: village1)
        try await f.app.test(.router) { client in
            try await client.execute(uri: "/v1/changes", method: .get) { r in
                #expect(r.status == .unauthorized)
                #expect(body(r)["error"]?["code"] == "missing_token")
            }
            try await client.execute(uri: "/v1/changes", method: .get, headers: bearer("fst_0000")) { r in
                #expect(r.status == .unauthorized)
                #expect(body(r)["error"]?["code"] == "bad_token")
            }
            try await client.execute(uri: "/v1/changes", method: .get, headers: [.authorization: "Basic abc"]) { r in
                #expect(r.status == .unauthorized)
            }
            try await client.execute(uri: "/v1/changes", method: .get, headers: bearer(token)) { r in #expect(r.status == .ok) }
            _ = try await f.store.revoke(device: device.id)
            try await client.execute(uri: "/v1/changes", method: .get, headers: bearer(token)) { r in
                #expect(r.status == .forbidden)
                #expect(body(r)["error"]?["code"] == "revoked")
                #expect(body(r)["error"]?["message"]?.stringValue?.contains(device.id) == true)
            }
        }
    }

    @Test(arguments: StoreKind.available) func aPushIsJudgedChangeByChange(kind: StoreKind) async throws {
        let f = try await StoreFixture(kind)
        let key = SiteKey()
        let (_, token) = try await f.device("王芳", scope: village1, key: key)
        let site = key.site
        let good = creation(site, 1)
        let outside = creation(site, 2, village: village2)
        var bad = ChangeCodec.encode(creation(site, 3)).objectValue!
        bad["fields"] = ["status": ["value": "已解决"]]
        let text = PushBody.text(site: site, siteName: "x", sites: [:], changeTexts: [
            ChangeCodec.canonicalText(good), ChangeCodec.canonicalText(outside), JSONValue.object(bad).compactText,
        ])
        try await f.app.test(.router) { client in
            try await client.execute(uri: "/v1/changes", method: .post, headers: bearer(token), body: ByteBuffer(string: text)) { r in
                #expect(r.status == .ok)
                let results = try PushResponse(json: body(r)).results
                #expect(results.map(\.status) == [.accepted, .refused, .refused])
                #expect(results[1].code == "out_of_scope" && results[1].reason?.contains(village2) == true)
                #expect(results[2].code == "invalid" && results[2].reason?.contains("dispute.status (办理状态)") == true)
                #expect(results.allSatisfy { !$0.retry })
            }
        }
        #expect(try await f.allRecords(.dispute).map(\.id) == [good.row])
    }

    @Test(arguments: StoreKind.available) func aDuplicatedPushChangesNothing(kind: StoreKind) async throws {
        let f = try await StoreFixture(kind)
        let key = SiteKey()
        let (_, token) = try await f.device("王芳", scope: village1, key: key)
        let site = key.site
        let batch = pushBody(site, [creation(site, 1), creation(site, 2)])
        try await f.app.test(.router) { client in
            try await client.execute(uri: "/v1/changes", method: .post, headers: bearer(token), body: batch) { r in
                let res = try PushResponse(json: body(r))
                #expect(res.results.map(\.status) == [.accepted, .accepted])
            }
            let before = try await f.fingerprint()
            try await client.execute(uri: "/v1/changes", method: .post, headers: bearer(token), body: batch) { r in
                let res = try PushResponse(json: body(r))
                #expect(res.results.map(\.status) == [.duplicate, .duplicate])
            }
            #expect(try await f.fingerprint() == before)
        }
    }

    @Test(arguments: StoreKind.available) func aReusedChangeIDForAnotherRecordIsRefusedAsAClone(kind: StoreKind) async throws {
        let f = try await StoreFixture(kind)
        let key = SiteKey()
        let (_, token) = try await f.device("王芳", scope: village1, key: key)
        let site = key.site
        try await f.app.test(.router) { client in
            try await client.execute(uri: "/v1/changes", method: .post, headers: bearer(token), body: pushBody(site, [creation(site, 1)])) { _ in }
            try await client.execute(uri: "/v1/changes", method: .post, headers: bearer(token), body: pushBody(site, [creation(site, 1)])) { r in
                let res = try PushResponse(json: body(r)).results
                #expect(res[0].status == .refused && res[0].code == "clone")
            }
        }
    }

    @Test(arguments: StoreKind.available) func pullsStayInScopeAndLeaveOutTheDevicesOwnChanges(kind: StoreKind) async throws {
        let f = try await StoreFixture(kind)
        let ks = SiteKey(), kt = SiteKey()
        let (_, villageToken) = try await f.device("王芳", scope: village1, key: ks)
        let (_, townToken) = try await f.device("李明", scope: township, key: kt)
        let s = ks.site, t = kt.site
        try await f.app.test(.router) { client in
            try await client.execute(uri: "/v1/changes", method: .post, headers: bearer(villageToken), body: pushBody(s, [creation(s, 1)])) { _ in }
            try await client.execute(uri: "/v1/changes", method: .post, headers: bearer(townToken),
                                     body: pushBody(t, [creation(t, 1, village: village1), creation(t, 2, village: village2)])) { _ in }
            try await client.execute(uri: "/v1/changes?after=0", method: .get, headers: bearer(villageToken)) { r in
                let page = try ChangePage(json: body(r))
                #expect(page.changes.map(\.id) == [ChangeID(site: t, counter: 1)], "the village sees the town's change in its village only, not its own")
                #expect(!page.more)
            }
            try await client.execute(uri: "/v1/changes?after=0", method: .get, headers: bearer(townToken)) { r in
                let page = try ChangePage(json: body(r))
                #expect(page.changes.map(\.id) == [ChangeID(site: s, counter: 1)])
                #expect(page.sites.isEmpty || page.sites.keys.allSatisfy { $0 == s })
            }
            try await client.execute(uri: "/v1/changes?after=x", method: .get, headers: bearer(townToken)) { r in
                #expect(r.status == .badRequest)
                #expect(body(r)["error"]?["code"] == "bad_parameter")
            }
        }
    }

    @Test(arguments: StoreKind.available) func pullPagesAreBoundedAndResumeAtTheirCursor(kind: StoreKind) async throws {
        let f = try await StoreFixture(kind)
        let key = SiteKey()
        let (_, a) = try await f.device("王芳", scope: village1, key: key)
        let (_, b) = try await f.device("李明", scope: village1)
        let s = key.site
        let changes = (1...25).map { creation(s, Int64($0)) }
        try await f.app.test(.router) { client in
            try await client.execute(uri: "/v1/changes", method: .post, headers: bearer(a), body: pushBody(s, changes)) { _ in }
            var cursor: Int64 = 0
            var got: [ChangeID] = []
            var pages = 0
            repeat {
                let page = try await client.execute(uri: "/v1/changes?after=\(cursor)&limit=10", method: .get, headers: bearer(b)) { r in try ChangePage(json: body(r)) }
                #expect(page.changes.count <= 10)
                got += page.changes.map(\.id)
                cursor = page.cursor
                pages += 1
                if !page.more { break }
            } while pages < 10
            #expect(got == changes.map(\.id))
            #expect(pages == 3)
        }
    }

    /// `held` (sync.md §5): what the device says it holds is left out of its snapshot; a malformed
    /// list is a 400 that names the parameter.
    @Test(arguments: StoreKind.available) func aSnapshotLeavesOutWhatTheDeviceSaysItHolds(kind: StoreKind) async throws {
        let f = try await StoreFixture(kind)
        let key = SiteKey()
        let (_, a) = try await f.device("王芳", scope: village1, key: key)
        let s = key.site
        let changes = (1...4).map { creation(s, Int64($0)) }
        try await f.app.test(.router) { client in
            try await client.execute(uri: "/v1/changes", method: .post, headers: bearer(a), body: pushBody(s, changes)) { _ in }
            func ids(_ query: String) async throws -> [Int64] {
                try await client.execute(uri: "/v1/snapshot" + query, method: .get, headers: bearer(a)) { r in
                    #expect(r.status == .ok, "\(query)")
                    return try ChangePage(json: body(r)).changes.map(\.id.counter).sorted()
                }
            }
            #expect(try await ids("") == [1, 2, 3, 4], "a restored laptop gets its own pushes back")
            #expect(try await ids("?held=\(s.hex):2") == [3, 4])
            #expect(try await ids("?held=\(s.hex):9999999999999999,\(SiteID.random().hex):1") == [])
            for bad in ["", "\(s.hex)", "\(s.hex):0", "\(s.hex):02", "\(s.hex):1,\(s.hex):2", "ZZ:1", String(repeating: "\(SiteID.random().hex):1,", count: 17) + "\(s.hex):1"] {
                try await client.execute(uri: "/v1/snapshot?held=" + bad.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!, method: .get, headers: bearer(a)) { r in
                    #expect(r.status == .badRequest, "held=\(bad)")
                    #expect(String(buffer: r.body).contains("held"))
                }
            }
        }
    }

    /// Records whose changes the device holds add nothing to a page, so they do not end it: a
    /// page walks up to ten pages' worth of records (ScopedPage.recordsWalked), and a new
    /// laptop's first snapshot after pushing its work takes one request per 10 × limit of its
    /// own records, not one per limit.
    @Test(arguments: StoreKind.available) func aSnapshotWalksPastWhatTheDeviceHoldsWithoutEndingItsPage(kind: StoreKind) async throws {
        let f = try await StoreFixture(kind)
        let key = SiteKey()
        let (_, a) = try await f.device("王芳", scope: village1, key: key)
        let s = key.site
        let changes = (1...45).map { creation(s, Int64($0)) }
        try await f.app.test(.router) { client in
            try await client.execute(uri: "/v1/changes", method: .post, headers: bearer(a), body: pushBody(s, changes)) { _ in }
            /// Pages until the end: (pages, counters received).
            func walk(_ query: String) async throws -> (Int, [Int64]) {
                var after: String?, pages = 0, got: [Int64] = []
                repeat {
                    let uri = "/v1/snapshot?limit=2" + query + (after.map { "&after=" + $0.addingPercentEncoding(withAllowedCharacters: .alphanumerics)! } ?? "")
                    let page = try await client.execute(uri: uri, method: .get, headers: bearer(a)) { r in
                        #expect(r.status == .ok, "\(uri)")
                        return try ChangePage(json: body(r))
                    }
                    got += page.changes.map(\.id.counter)
                    after = page.next
                    pages += 1
                } while after != nil && pages < 100
                return (pages, got.sorted())
            }
            let all = try await walk("")
            #expect(all.1 == Array(1...45))
            #expect(all.0 == 23, "2 records a page")
            let none = try await walk("&held=\(s.hex):45")
            #expect(none.1 == [])
            #expect(none.0 == 3, "20 records walked a page: 45 records in 3 requests, not 23")
            let some = try await walk("&held=\(s.hex):40")
            #expect(some.1 == [41, 42, 43, 44, 45])
            #expect(some.0 <= 5)
        }
    }

    @Test(arguments: StoreKind.available) func aSnapshotRebuildsTheScopeInPages(kind: StoreKind) async throws {
        let f = try await StoreFixture(kind)
        let key = SiteKey()
        let (_, a) = try await f.device("王芳", scope: village1, key: key)
        let (_, b) = try await f.device("李明", scope: village1)
        let s = key.site
        var changes = (1...30).map { creation(s, Int64($0)) }
        // Some records edited again, one deleted: the snapshot carries what holds their current values.
        for (n, c) in changes.prefix(5).enumerated() {
            changes.append(Change(id: ChangeID(site: s, counter: Int64(100 + n)), kind: .dispute, row: c.row,
                                  hlc: HybridTimestamp(millis: 1_763_785_000_000, counter: UInt16(n)), author: "王芳",
                                  writes: [FieldWrite(field: "status", value: .text("已化解"), context: VersionVector([(s, Int64(n + 1))]))]))
        }
        let all = changes
        let pages = try await f.app.test(.router) { client -> [ChangePage] in
            try await client.execute(uri: "/v1/changes", method: .post, headers: bearer(a), body: pushBody(s, all)) { _ in }
            var next: String?
            var pages: [ChangePage] = []
            repeat {
                let uri = "/v1/snapshot?limit=8" + (next.map { "&after=" + $0.addingPercentEncoding(withAllowedCharacters: .alphanumerics)! } ?? "")
                let page = try await client.execute(uri: uri, method: .get, headers: bearer(b)) { r in try ChangePage(json: body(r)) }
                #expect(page.changes.count <= 8 + 1)
                pages.append(page)
                next = page.next
            } while next != nil && pages.count < 50
            return pages
        }
        #expect(pages.count >= 4)
        let dir = TempDir()
        let fresh = try Replica.create(path: dir.file("fresh.sqlite"), siteName: "fresh", author: "x")
        try trustHub(fresh, f.store)
        for p in pages { _ = try fresh.applySnapshotPage(p) }
        let want = try await f.allRecords(.dispute, includeDeleted: true).map { $0.json.compactText }
        #expect(try fresh.records(.dispute, includeDeleted: true).map { $0.json.compactText } == want)
        #expect(try fresh.records(.dispute).filter { $0["status"] == .text("已化解") }.count == 5)
    }

    @Test(arguments: StoreKind.available) func badBodiesAreRefusedPrecisely(kind: StoreKind) async throws {
        let f = try await StoreFixture(kind)
        let (_, token) = try await f.device("王芳", scope: village1)
        try await f.app.test(.router) { client in
            func expect(_ body: ByteBuffer, headers: HTTPFields = [:], _ status: HTTPResponse.Status, _ code: String) async throws {
                try await client.execute(uri: "/v1/changes", method: .post, headers: bearer(token) + headers, body: body) { r in
                    #expect(r.status == status, "expected \(status) \(code), got \(r.status)")
                    #expect(FieldSyncHubTests.body(r)["error"]?["code"]?.stringValue == code)
                }
            }
            try await expect(ByteBuffer(string: "{\"changes\": [1, 2"), .badRequest, "bad_json")
            try await expect(ByteBuffer(bytes: [0x7B, 0x22, 0xFF, 0x22, 0x3A, 0x31, 0x7D]), .badRequest, "bad_json")
            try await expect(ByteBuffer(string: "{\"changes\": 3}"), .unprocessableContent, "invalid")
            let gz = Gzip.compress(Array("{\"changes\":[]}".utf8))
            try await expect(ByteBuffer(bytes: Array(gz.prefix(gz.count - 6))), headers: [.contentEncoding: "gzip"], .badRequest, "bad_gzip")
            try await expect(ByteBuffer(string: "{}"), headers: [.contentEncoding: "br"], .unsupportedMediaType, "unsupported_encoding")
            let bomb = Gzip.compress([UInt8](repeating: 0x20, count: SyncProtocol.maxDecompressedBytes + 1))
            try await expect(ByteBuffer(bytes: bomb), headers: [.contentEncoding: "gzip"], .contentTooLarge, "too_large")
            try await expect(ByteBuffer(bytes: [UInt8](repeating: 0x20, count: SyncProtocol.maxRequestBytes + 1)), .contentTooLarge, "too_large")
        }
    }

    @Test(arguments: StoreKind.available) func aDeviceBehindTheHistoryHorizonIsToldToTakeASnapshot(kind: StoreKind) async throws {
        let f = try await StoreFixture(kind)
        let (_, token) = try await f.device("王芳", scope: village1)
        try await f.setHorizon(100)
        try await f.app.test(.router) { client in
            try await client.execute(uri: "/v1/changes?after=5", method: .get, headers: bearer(token)) { r in
                #expect(r.status == .gone)
                #expect(body(r)["error"]?["code"] == "behind_horizon")
            }
        }
    }
}

extension HTTPFields {
    static func + (a: HTTPFields, b: HTTPFields) -> HTTPFields {
        var out = a
        for f in b { out.append(f) }
        return out
    }
}

import FieldSyncCore
import FieldSyncTrust
@testable import FieldSyncHub
@_spi(Hub) import FieldSyncReplica
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import Testing

/// Hostile requests against the hub (issue 5, item 5): each gets its precise status and error
/// code, and nothing else in the hub's store changes. Requests the other specs already cover:
/// malformed JSON, truncated gzip, a gzip bomb, oversized bodies and invalid UTF-8
/// (`HubAPISpec.badBodiesAreRefusedPrecisely`); missing, wrong and revoked tokens; a cloned
/// replica's replayed ids (`aReusedChangeIDForAnotherRecordIsRefusedAsAClone`); out-of-scope
/// writes (`aPushIsJudgedChangeByChange`); the conflict API's refusals (`HubConflictsSpec`).
@Suite struct HostileRequestSpec {
    /// The store's records, change log and conflicts (not the devices' last-seen times).
    func state(_ f: StoreFixture) async throws -> [String] { try await f.fingerprint() }

    func raw(_ c: Change, _ edit: (inout JSONObject) -> Void) -> String {
        var o = ChangeCodec.encode(c).objectValue!
        edit(&o)
        return JSONValue.object(o).compactText
    }

    func fields(_ o: inout JSONObject, _ edit: (inout JSONObject) -> Void) {
        var f = o["fields"]!.objectValue!
        edit(&f)
        o["fields"] = .object(f)
    }

    @Test(arguments: StoreKind.available) func aBatchOverTheLimitIsRefusedWholeAndNothingLands(kind: StoreKind) async throws {
        let f = try await StoreFixture(kind)
        let key = SiteKey()
        let (_, token) = try await f.device("王芳", scope: village1, key: key)
        let site = key.site
        let n = SyncProtocol.maxPushChanges + 1
        let text = PushBody.text(site: site, siteName: "x", sites: [:], changeTexts: (1...n).map { ChangeCodec.canonicalText(creation(site, Int64($0))) })
        let before = try await state(f)
        try await f.app.test(.router) { client in
            try await client.execute(uri: "/v1/changes", method: .post, headers: bearer(token), body: ByteBuffer(string: text)) { r in
                #expect(r.status == .contentTooLarge)
                #expect(body(r)["error"]?["code"] == "too_large")
                #expect(body(r)["error"]?["message"]?.stringValue?.contains("\(n) changes") == true)
            }
            // Exactly at the limit is taken.
            let atLimit = PushBody.text(site: site, siteName: "x", sites: [:],
                                        changeTexts: (1...SyncProtocol.maxPushChanges).map { ChangeCodec.canonicalText(creation(site, Int64($0))) })
            #expect(try await state(f) == before)
            try await client.execute(uri: "/v1/changes", method: .post, headers: bearer(token), body: ByteBuffer(string: atLimit)) { r in
                #expect(r.status == .ok)
                let res = try PushResponse(json: body(r)).results
                #expect(res.count == SyncProtocol.maxPushChanges && res.allSatisfy { $0.status == .accepted })
            }
        }
        #expect(try await f.store.records(for: StoreFixture.everyone, RecordQuery(kind: .dispute)).total == SyncProtocol.maxPushChanges)
    }

    @Test(arguments: StoreKind.available) func eachBadChangeIsRefusedWithWhereAndWhyAndTheRestOfTheBatchLands(kind: StoreKind) async throws {
        let f = try await StoreFixture(kind)
        let key = SiteKey()
        let (_, token) = try await f.device("王芳", scope: village1, key: key)
        let site = key.site
        let good = creation(site, 1)
        let project = RecordID.make(kind: .project, region: village1, nowMs: 1_763_784_000_000)
        let bad: [(String, String, String)] = [
            // (change text, expected code, words the reason must contain)
            (raw(creation(site, 2)) { $0["kind"] = "lawsuit" }, "invalid", "lawsuit"),
            (raw(creation(site, 3)) { o in fields(&o) { $0["weather"] = ["value": "晴"] } }, "invalid", "weather"),
            (raw(creation(site, 4)) { o in fields(&o) { $0["status"] = ["value": 5] } }, "invalid", "status"),
            (raw(creation(site, 5)) { o in fields(&o) { $0["reported_on"] = ["value": "2026-13-45"] } }, "invalid", "reported_on"),
            (raw(creation(site, 6)) { o in
                o["kind"] = "project"
                o["row"] = .string(project)
                o["fields"] = ["village": ["value": .string(village1)], "name": ["value": "茶叶合作社"], "project_kind": ["value": "产业发展"],
                               "status": ["value": "在建"], "budget_fen": ["value": -100]]
            }, "invalid", "negative"),
            (raw(creation(site, 7)) { o in
                o["kind"] = "project"
                o["row"] = .string(project)
                o["fields"] = ["village": ["value": .string(village1)], "name": ["value": "茶叶合作社"], "project_kind": ["value": "产业发展"],
                               "status": ["value": "在建"], "budget_fen": ["value": .double(12.5)]]
            }, "invalid", "budget_fen"),
            (raw(creation(site, 8)) { $0["hlc"] = "yesterday" }, "invalid", "hlc"),
            (raw(creation(site, 9)) { $0["id"] = "../../etc/passwd:1" }, "invalid", "id"),
            (raw(creation(site, 10)) { $0["row"] = "520221105201-../../x" }, "invalid", "row"),
            // A newer schema's kind is kept whole (changeset.md §2.4), but its key and record id are still checked.
            (raw(creation(site, 11)) { $0["schema"] = 99; $0["kind"] = "../meeting" }, "invalid", "kind"),
            (raw(creation(site, 12)) { $0["schema"] = 99; $0["kind"] = "meeting"; $0["row"] = "5202-x" }, "invalid", "row"),
            ("\"not a change\"", "invalid", "expected a JSON object"),
            ("null", "invalid", "expected a JSON object"),
        ]
        let text = PushBody.text(site: site, siteName: "x", sites: [:], changeTexts: bad.map(\.0) + [ChangeCodec.canonicalText(good)])
        try await f.app.test(.router) { client in
            try await client.execute(uri: "/v1/changes", method: .post, headers: bearer(token), body: ByteBuffer(string: text)) { r in
                #expect(r.status == .ok)
                let results = try PushResponse(json: body(r)).results
                #expect(results.count == bad.count + 1)
                for (i, (_, code, words)) in bad.enumerated() where i < results.count {
                    #expect(results[i].status == .refused, "change \(i)")
                    #expect(results[i].code == code, "change \(i): \(results[i].code ?? "nil") \(results[i].reason ?? "")")
                    #expect(results[i].reason?.contains(words) == true, "change \(i): reason \(results[i].reason ?? "nil") lacks \(words)")
                }
                #expect(results.last?.status == .accepted)
            }
        }
        // Only the good change is in the hub; no project row exists.
        #expect(try await f.allRecords(.dispute).map(\.id) == [good.row])
        #expect(try await f.allRecords(.project, includeDeleted: true).count == 0)
        #expect(try await f.changeLogEnd() == 1)
    }

    @Test(arguments: StoreKind.available) func aChangeStampedBeyondTheDriftBoundIsRefusedAsClockAhead(kind: StoreKind) async throws {
        let f = try await StoreFixture(kind)
        let key = SiteKey()
        let (_, token) = try await f.device("王芳", scope: village1, key: key)
        let site = key.site
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        var a = creation(site, 1)
        a.hlc = HybridTimestamp(millis: now + SyncProtocol.maxClockAheadMs + 3_600_000, counter: 0)
        var w = creation(site, 2)
        w.hlc = HybridTimestamp(millis: now + SyncProtocol.maxClockAheadMs / 2, counter: 0)
        let ahead = a, within = w
        let before = try await state(f)
        try await f.app.test(.router) { client in
            try await client.execute(uri: "/v1/changes", method: .post, headers: bearer(token), body: pushBody(site, [ahead])) { r in
                #expect(r.status == .ok)
                let res = try PushResponse(json: body(r)).results
                #expect(res.map(\.status) == [.refused])
                #expect(res.first?.code == "clock_ahead")
                #expect(res.first?.reason?.contains("ahead of the hub's clock") == true)
            }
            #expect(try await state(f) == before, "a refused change must leave the hub untouched (its clock too)")
            try await client.execute(uri: "/v1/changes", method: .post, headers: bearer(token), body: pushBody(site, [within])) { r in
                let res = try PushResponse(json: body(r)).results
                #expect(res.map(\.status) == [.accepted])
            }
        }
        // The hub's own clock was not dragged forward past the bound by the refused change.
        let hubClock = try await f.hubClock()
        #expect(hubClock >> 16 < now + SyncProtocol.maxClockAheadMs + 60_000)
    }

    @Test(arguments: StoreKind.available) func pathTricksAndBadParametersGetA4xxAndTouchNothing(kind: StoreKind) async throws {
        let f = try await StoreFixture(kind)
        let key = SiteKey()
        let (_, token) = try await f.device("王芳", scope: village1, key: key)
        let session = try await f.supervisorSession()
        let site = key.site
        try await f.app.test(.router) { client in
            try await client.execute(uri: "/v1/changes", method: .post, headers: bearer(token), body: pushBody(site, [creation(site, 1)])) { _ in }
        }
        let before = try await state(f)
        // (uri, who, status, code or nil when any error body will do)
        let cases: [(String, HTTPFields, HTTPResponse.Status, String?)] = [
            ("/v1/changes?after=-1", bearer(token), .badRequest, "bad_parameter"),
            ("/v1/changes?after=..%2F..%2Fetc%2Fpasswd", bearer(token), .badRequest, "bad_parameter"),
            ("/v1/changes?after=1e9", bearer(token), .badRequest, "bad_parameter"),
            ("/v1/changes?limit=0", bearer(token), .badRequest, "bad_parameter"),
            ("/v1/changes?limit=99999999999999999999999", bearer(token), .badRequest, "bad_parameter"),
            ("/v1/changes?maxBytes=1", bearer(token), .badRequest, "bad_parameter"),
            ("/v1/snapshot?after=..%2F..%2F520221105202-00000000000000000000000000000000", bearer(token), .unprocessableContent, "invalid"),
            ("/v1/snapshot?after=dispute:520221105202-00000000000000000000000000000000", bearer(token), .unprocessableContent, "invalid"),
            ("/v1/conflicts/..%2F..%2Fetc/passwd", session, .notFound, "not_found"),
            ("/v1/conflicts/%2e%2e/%2e%2e", session, .notFound, "not_found"),
            ("/v1/conflicts/../../v1/changes", session, .notFound, nil),
            ("/v1/../v1/changes", bearer(token), .notFound, nil),
            ("/v1/changes%00", bearer(token), .notFound, nil),
            ("/v1/conflicts?kind=..%2Fx", session, .badRequest, "bad_parameter"),
            ("/v1/conflicts?olderThanDays=abc", session, .badRequest, "bad_parameter"),
            ("/v1/conflicts", bearer(token), .forbidden, "not_a_supervisor"),
        ]
        try await f.app.test(.router) { client in
            for (uri, headers, status, code) in cases {
                try await client.execute(uri: uri, method: .get, headers: headers) { r in
                    #expect(r.status == status, "\(uri): \(r.status) \(String(buffer: r.body))")
                    if let code { #expect(body(r)["error"]?["code"]?.stringValue == code, "\(uri): \(String(buffer: r.body))") }
                }
            }
            // Settling a conflict through a traversal path is refused too.
            let resolve = ByteBuffer(string: #"{"take":"x:1"}"#)
            try await client.execute(uri: "/v1/conflicts/..%2F..%2Fetc/passwd/resolve", method: .post, headers: session + [HTTPField.Name("X-CSRF-Token")!: "x"], body: resolve) { r in
                #expect((400..<500).contains(Int(r.status.code)), "\(r.status)")
            }
        }
        #expect(try await state(f) == before)
    }

    @Test(arguments: StoreKind.available) func anAcknowledgementBeyondTheLogOrNegativeIsRefused(kind: StoreKind) async throws {
        let f = try await StoreFixture(kind)
        let (_, token) = try await f.device("王芳", scope: village1)
        let before = try await f.int("SELECT pull_cursor FROM hub_device")
        try await f.app.test(.router) { client in
            for (text, status) in [(#"{"pullCursor": 999}"#, HTTPResponse.Status.unprocessableContent), (#"{"pullCursor": -3}"#, .unprocessableContent),
                                   (#"{"pullCursor": "7"}"#, .unprocessableContent), (#"[1]"#, .unprocessableContent)] {
                try await client.execute(uri: "/v1/ack", method: .post, headers: bearer(token), body: ByteBuffer(string: text)) { r in
                    #expect(r.status == status, "\(text): \(r.status)")
                    #expect(body(r)["error"]?["code"] == "invalid")
                }
            }
        }
        let after = try await f.int("SELECT pull_cursor FROM hub_device")
        #expect(after == before)
    }
}

extension StoreFixture {
    /// Adds a supervisor for village1 and signs in; returns the Authorization header.
    func supervisorSession() async throws -> HTTPFields {
        _ = try await store.addSupervisor(name: "陈主任", scope: village1, password: "correct horse")
        let s = try await SignIn(store: store, pool: PasswordHashingPool(), logger: Logger(label: "test"))(name: "陈主任", password: "correct horse", address: nil)
        return bearer(s.token)
    }
}

import FieldSyncCore
import FieldSyncTrust
@testable import FieldSyncHub
@_spi(Hub) import FieldSyncReplica
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

/// Supervisors see and settle conflicts in their scope over the API; devices cannot.
@Suite(.serialized) struct HubConflictsSpec {
    /// A hub holding a status conflict in village1 and one in village2, and a township-level
    /// supervisor for village1's township only… of which village2 is also part, so a supervisor
    /// scoped to village1 alone is used.
    func fixture(_ kind: StoreKind, _ name: String = #function) async throws -> (StoreFixture, String, String, String) {
        let f = try await StoreFixture(kind, name)
        let ka = SiteKey(), kb = SiteKey()
        let (_, a) = try await f.device("王芳", scope: township, key: ka)
        let (_, b) = try await f.device("李明", scope: township, key: kb)
        let s = ka.site, t = kb.site
        let c1 = creation(s, 1, village: village1), c2 = creation(s, 2, village: village2)
        func edit(_ site: SiteID, _ n: Int64, _ base: Change, _ status: String) -> Change {
            Change(id: ChangeID(site: site, counter: n), kind: .dispute, row: base.row, hlc: HybridTimestamp(millis: 1_763_785_000_000 + n, counter: 0),
                   author: site == s ? "王芳" : "李明",
                   writes: [FieldWrite(field: "status", value: .text(status), context: VersionVector([(base.id.site, base.id.counter)]))])
        }
        let conflicting = [c1, c2, edit(s, 3, c1, "已化解"), edit(t, 1, c1, "已上报"), edit(s, 4, c2, "已化解"), edit(t, 2, c2, "已上报")]
        try await f.app.test(.router) { client in
            try await client.execute(uri: "/v1/changes", method: .post, headers: bearer(a), body: pushBody(s, Array(conflicting.prefix(3)) + [conflicting[4]])) { _ in }
            try await client.execute(uri: "/v1/changes", method: .post, headers: bearer(b), body: pushBody(t, [conflicting[3], conflicting[5]])) { _ in }
        }
        _ = try await f.store.addSupervisor(name: "陈主任", scope: village1, password: "correct horse")
        return (f, c1.row, c2.row, b)
    }

    func login(_ client: some TestClientProtocol, _ password: String = "correct horse") async throws -> String {
        try await client.execute(uri: "/v1/sessions", method: .post, body: ByteBuffer(string: #"{"name":"陈主任","password":"\#(password)"}"#)) { r in
            body(r)["token"]?.stringValue ?? ""
        }
    }

    @Test(arguments: StoreKind.available) func supervisorsSignInSeeTheirScopeAndSettleConflicts(kind: StoreKind) async throws {
        let (f, inScope, outside, deviceToken) = try await fixture(kind)
        try await f.app.test(.router) { client in
            try await client.execute(uri: "/v1/sessions", method: .post, body: ByteBuffer(string: #"{"name":"陈主任","password":"wrong one"}"#)) { r in
                #expect(r.status == .unauthorized && body(r)["error"]?["code"] == "bad_credentials")
            }
            let token = try await login(client)
            #expect(token.hasPrefix("fss_"))
            try await client.execute(uri: "/v1/conflicts", method: .get) { r in #expect(r.status == .unauthorized) }
            try await client.execute(uri: "/v1/conflicts", method: .get, headers: bearer(deviceToken)) { r in
                #expect(r.status == .forbidden && body(r)["error"]?["code"] == "not_a_supervisor")
            }
            try await client.execute(uri: "/v1/conflicts", method: .get, headers: bearer(token)) { r in
                #expect(r.status == .ok)
                let list = body(r).arrayValue ?? []
                #expect(list.map { $0["row"]?.stringValue } == [inScope], "only the conflict in the supervisor's scope")
                #expect(list.first?["candidates"]?.arrayValue?.count == 2)
            }
            try await client.execute(uri: "/v1/conflicts/summary", method: .get, headers: bearer(token)) { r in
                #expect(body(r)["total"] == .int(1))
            }
            // Outside the scope is "not found", in the same words as a record that does not exist.
            let missing = "520221105201-" + String(repeating: "e", count: 32)
            var words: [String] = []
            for id in [outside, missing] {
                try await client.execute(uri: "/v1/conflicts/\(id)/status", method: .get, headers: bearer(token)) { r in
                    #expect(r.status == .notFound && body(r)["error"]?["code"] == "not_found")
                    words.append((body(r)["error"]?["message"]?.stringValue ?? "").replacingOccurrences(of: id, with: "ID"))
                }
            }
            #expect(words.count == 2 && words[0] == words[1], "\(words)")
            let detail = try await client.execute(uri: "/v1/conflicts/\(inScope)/status", method: .get, headers: bearer(token)) { r in body(r) }
            let loser = try #require(detail["candidates"]?.arrayValue?.first { $0["wins"] == false })
            let req = JSONValue.object(JSONObject([("take", loser["change"]!), ("note", "电话核实")])).compactText
            try await client.execute(uri: "/v1/conflicts/\(inScope)/status/resolve", method: .post, headers: bearer(token), body: ByteBuffer(string: req)) { r in
                #expect(r.status == .ok)
                #expect(body(r)["settled"] == ["status"])
            }
            try await client.execute(uri: "/v1/conflicts", method: .get, headers: bearer(token)) { r in #expect(body(r).arrayValue?.isEmpty == true) }
            // The settlement is an ordinary change from the hub: devices pull it.
            try await client.execute(uri: "/v1/changes?after=0", method: .get, headers: bearer(deviceToken)) { r in
                let page = try ChangePage(json: body(r))
                let settled = page.changes.last { $0.row == inScope }
                #expect(settled?.author == "陈主任" && settled?.resolves?.count == 2 && settled?.note?.contains("电话核实") == true)
                #expect(settled?.id.site == f.store.hubSite)
            }
            try await client.execute(uri: "/v1/sessions", method: .delete, headers: bearer(token)) { r in #expect(r.status == .ok) }
            try await client.execute(uri: "/v1/conflicts", method: .get, headers: bearer(token)) { r in
                #expect(r.status == .unauthorized, "a signed-out session no longer works")
            }
        }
    }

    @Test(arguments: StoreKind.available) func badResolutionsAreRefusedPrecisely(kind: StoreKind) async throws {
        let (f, inScope, _, _) = try await fixture(kind)
        try await f.app.test(.router) { client in
            let token = try await login(client)
            func post(_ body: String, _ status: HTTPResponse.Status, _ code: String) async throws {
                try await client.execute(uri: "/v1/conflicts/\(inScope)/status/resolve", method: .post, headers: bearer(token), body: ByteBuffer(string: body)) { r in
                    #expect(r.status == status, "\(body): \(r.status)")
                    #expect(FieldSyncHubTests.body(r)["error"]?["code"]?.stringValue == code, "\(body)")
                }
            }
            try await post(#"{"take":"nonsense"}"#, .unprocessableContent, "invalid")
            try await post(#"{"take":"1111111111111111:9"}"#, .unprocessableContent, "invalid")
            try await post(#"{"value":"乱写"}"#, .unprocessableContent, "invalid")
            try await post(#"{}"#, .unprocessableContent, "invalid")
            try await client.execute(uri: "/v1/conflicts/\(inScope)/parties", method: .get, headers: bearer(token)) { r in
                #expect(r.status == .notFound)
            }
        }
    }
}

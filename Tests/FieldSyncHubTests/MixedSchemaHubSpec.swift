import FieldSyncCore
import FieldSyncTrust
@testable import FieldSyncHub
@_spi(Hub) import FieldSyncReplica
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

/// A schema-1 hub in a mixed fleet (issue 12, point 2; changeset.md §2.4), on both stores: a
/// change from a laptop on a newer schema is accepted, its known fields merge, and the hub
/// relays it byte for byte in pulls and snapshots; only a record kind the hub does not know is
/// left for later (`schema_too_new`, retry).
@Suite struct MixedSchemaHubSpec {
    /// A dispute as a schema-2 laptop writes it: a choice of `status` and two fields schema 1 lacks.
    static func newer(_ site: SiteID, _ counter: Int64) -> String {
        var o = ChangeCodec.encode(creation(site, counter)).objectValue!
        o["schema"] = 2
        var f = o["fields"]!.objectValue!
        f["status"] = ["value": "司法确认"]
        f["mediation_fee_fen"] = ["value": 0]
        f["witnesses"] = ["value": ["王五", "赵六"]]
        o["fields"] = .object(f)
        return JSONValue.object(o).compactText
    }

    @Test(arguments: StoreKind.available) func aNewerLaptopsChangeIsTakenAndRelayedByteForByte(kind: StoreKind) async throws {
        let f = try await StoreFixture(kind)
        let key = SiteKey()
        let (_, tokenA) = try await f.device("新版笔记本", scope: village1, key: key)
        let (_, tokenB) = try await f.device("旧版笔记本", scope: village1)
        let text = Self.newer(key.site, 1)
        let kindText = String(Self.newer(key.site, 2).replacingOccurrences(of: "\"kind\":\"dispute\"", with: "\"kind\":\"meeting\""))
        let push = ByteBuffer(string: PushBody.text(site: key.site, siteName: "新版笔记本", sites: [:], changeTexts: [text, kindText]))
        try await f.app.test(.router) { client in
            try await client.execute(uri: "/v1/changes", method: .post, headers: bearer(tokenA), body: push) { r in
                #expect(r.status == .ok)
                let res = try PushResponse(json: body(r)).results
                #expect(res.map(\.status) == [.accepted, .refused])
                #expect(res[1].code == "schema_too_new" && res[1].retry && res[1].reason?.contains("meeting") == true)
            }
            // Sent again: a duplicate, not a clone (the hub compares the text it keeps).
            try await client.execute(uri: "/v1/changes", method: .post, headers: bearer(tokenA), body: push) { r in
                let again = try PushResponse(json: body(r)).results
                #expect(again.first?.status == .duplicate)
            }
            // The schema-1 laptop pulls it, and a new one gets it in its snapshot: same bytes.
            try await client.execute(uri: "/v1/changes?after=0", method: .get, headers: bearer(tokenB)) { r in
                #expect(r.status == .ok)
                #expect(String(buffer: r.body).contains(text), "the pull re-wrote the change: \(String(buffer: r.body).prefix(600))")
            }
            try await client.execute(uri: "/v1/snapshot", method: .get, headers: bearer(tokenB)) { r in
                #expect(r.status == .ok)
                #expect(String(buffer: r.body).contains(text), "the snapshot lacks the change: \(String(buffer: r.body).prefix(600))")
            }
        }
        // The hub merged what it knows; the value it does not allow yet is not guessed at.
        let page = try await f.store.records(for: StoreFixture.everyone, RecordQuery(kind: .dispute))
        #expect(page.total == 1)
        let rec = try #require(page.records.first)
        #expect(rec["parties"] == .text("张三与李四") && rec["reported_on"] == .text("2026-11-20"))
        #expect(rec["status"] == .null)
    }
}

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
/// relays it byte for byte in pulls and snapshots — a change of a record kind the hub does not
/// know too, kept whole, paged through by snapshots after the kinds it knows.
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
        let kindText2 = String(Self.newer(key.site, 3).replacingOccurrences(of: "\"kind\":\"dispute\"", with: "\"kind\":\"meeting\""))
        let push = ByteBuffer(string: PushBody.text(site: key.site, siteName: "新版笔记本", sites: [:], changeTexts: [text, kindText, kindText2]))
        try await f.app.test(.router) { client in
            try await client.execute(uri: "/v1/changes", method: .post, headers: bearer(tokenA), body: push) { r in
                #expect(r.status == .ok)
                let res = try PushResponse(json: body(r)).results
                #expect(res.map(\.status) == [.accepted, .accepted, .accepted], "\(res)")
            }
            // Sent again: duplicates, not clones (the hub compares the text it keeps).
            try await client.execute(uri: "/v1/changes", method: .post, headers: bearer(tokenA), body: push) { r in
                let again = try PushResponse(json: body(r)).results
                #expect(again.map(\.status) == [.duplicate, .duplicate, .duplicate], "\(again)")
            }
            // The meeting's id reused with other content is a clone, kind unknown or not.
            let forged = kindText.replacingOccurrences(of: "张三与李四", with: "张三与王五")
            try await client.execute(uri: "/v1/changes", method: .post, headers: bearer(tokenA),
                                     body: ByteBuffer(string: PushBody.text(site: key.site, siteName: "新版笔记本", sites: [:], changeTexts: [forged]))) { r in
                let res = try PushResponse(json: body(r)).results
                #expect(res.first?.code == "clone", "\(res)")
            }
            // The schema-1 laptop pulls both, and a new one gets both in its snapshot: same bytes.
            try await client.execute(uri: "/v1/changes?after=0", method: .get, headers: bearer(tokenB)) { r in
                #expect(r.status == .ok)
                let got = String(buffer: r.body)
                #expect(got.contains(text) && got.contains(kindText) && got.contains(kindText2), "the pull re-wrote or lost a change: \(got.prefix(900))")
            }
            // A snapshot a record at a time: the dispute, then the meeting after every known kind.
            var next: String?
            var seen: [String] = []
            var positions: [String] = []
            repeat {
                let uri = "/v1/snapshot?limit=1" + (next.map { "&after=" + $0.addingPercentEncoding(withAllowedCharacters: .alphanumerics)! } ?? "")
                try await client.execute(uri: uri, method: .get, headers: bearer(tokenB)) { r in
                    #expect(r.status == .ok)
                    let page = try ChangePage(json: body(r))
                    seen += page.items.map(\.canonicalText)
                    next = page.next
                    if let n = next { positions.append(n) }
                }
            } while next != nil && positions.count < 10
            let meetingRow = try #require(try JSONValue.parse(kindText)["row"]?.stringValue)
            let meetingRow2 = try #require(try JSONValue.parse(kindText2)["row"]?.stringValue)
            let meetings = meetingRow < meetingRow2 ? [kindText, kindText2] : [kindText2, kindText]
            #expect(seen == [text] + meetings, "\(seen)")
            // The kept records' positions name the number of kinds the hub held.
            let kinds = RecordKind.allCases.count
            #expect(positions.count == 2 && positions[0].hasPrefix("dispute:") && positions[1] == "meeting.\(kinds):\(min(meetingRow, meetingRow2))", "\(positions)")
            // Positions among the kept records: by kind key, then record id. A position written
            // with another number of kinds (the hub took a schema meanwhile) starts the kinds
            // learnt since, and the kept records, over; so does a known kind's position this
            // hub's schema lacks (another hub process with a newer schema wrote it).
            let first = min(meetingRow, meetingRow2), last = max(meetingRow, meetingRow2)
            for (after, want) in [("aaa.\(kinds):" + village1, meetings), ("meeting.\(kinds):" + village1, meetings),
                                  ("meeting.\(kinds):" + first, [meetings[1]]), ("meeting.\(kinds):" + last, []), ("zzz.\(kinds):" + village1, []),
                                  ("meeting.\(kinds - 1):" + last, meetings), ("meeting:" + last, meetings)] {
                try await client.execute(uri: "/v1/snapshot?after=" + after.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!, method: .get,
                                         headers: bearer(tokenB)) { r in
                    #expect(r.status == .ok, "\(after)")
                    let page = try ChangePage(json: body(r))
                    #expect(page.items.map(\.canonicalText) == want && page.next == nil, "after \(after): \(page.items.count) changes")
                }
            }
            try await client.execute(uri: "/v1/snapshot?after=" + "../x:1".addingPercentEncoding(withAllowedCharacters: .alphanumerics)!, method: .get,
                                     headers: bearer(tokenB)) { r in
                #expect(r.status.code == 422, "a position whose kind is no key")
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

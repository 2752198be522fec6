import FieldSyncCore
import FieldSyncTrust
@testable import FieldSyncHub
@_spi(Hub) import FieldSyncReplica
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

/// `GET /v1/changes/lookup` (sync.md §4.1), on both stores: a laptop fetching history it pruned
/// gets the changes it names that lie in its scope, signed like a page; nothing of another
/// village, ids the hub does not hold are left out, and malformed or too many ids are 400.
@Suite struct HistoryLookupSpec {
    @Test(arguments: StoreKind.available) func aLaptopGetsTheChangesItNamesWithinItsScopeOnly(kind: StoreKind) async throws {
        let f = try await StoreFixture(kind)
        let ka = SiteKey(), kb = SiteKey()
        let (_, tokenA) = try await f.device("甲村笔记本", scope: village1, key: ka)
        let (_, tokenB) = try await f.device("乙村笔记本", scope: village2, key: kb)
        let mine = [creation(ka.site, 1), creation(ka.site, 2)]
        let theirs = creation(kb.site, 1, village: village2)
        try await f.app.test(.router) { client in
            try await client.execute(uri: "/v1/changes", method: .post, headers: bearer(tokenA), body: pushBody(ka.site, mine)) { r in #expect(r.status == .ok) }
            try await client.execute(uri: "/v1/changes", method: .post, headers: bearer(tokenB), body: pushBody(kb.site, [theirs])) { r in #expect(r.status == .ok) }
            let unknown = ChangeID(site: ka.site, counter: 99)
            let ids = [mine[1].id, theirs.id, unknown, mine[0].id].map(\.description).joined(separator: ",")
            try await client.execute(uri: "/v1/changes/lookup?ids=\(ids)", method: .get, headers: bearer(tokenA)) { r in
                #expect(r.status == .ok)
                let page = try ChangePage(json: body(r))
                #expect(page.changes.map(\.id) == [mine[1].id, mine[0].id], "in the order asked, in scope only, unknown left out")
                let m = try #require(page.proof.map { try Manifest(json: $0, digests: page.changes.map { ChangeDigest(canonicalText: ChangeCodec.canonicalText($0)) }) })
                #expect(m.signatureHolds && m.key == f.store.hubKey.publicKey, "signed by the hub like a page")
            }
            for bad in ["", "xyz", "\(ka.site.hex):0,\(ka.site.hex)", Array(repeating: mine[0].id.description, count: SyncProtocol.maxLookupIDs + 1).joined(separator: ",")] {
                try await client.execute(uri: "/v1/changes/lookup?ids=\(bad)", method: .get, headers: bearer(tokenA)) { r in
                    #expect(r.status == .badRequest, "ids=\(bad.prefix(60)) → \(r.status)")
                    #expect(body(r)["error"]?["code"] == .string("bad_parameter"))
                }
            }
            try await client.execute(uri: "/v1/changes/lookup?ids=\(mine[0].id)", method: .get, headers: [:]) { r in #expect(r.status == .unauthorized) }
            try await client.execute(uri: "/v1/changes/lookup?ids=\(mine[0].id)", method: .post, headers: bearer(tokenA)) { r in
                #expect(r.status == .methodNotAllowed && r.headers[.allow] == "GET", "\(r.status)")
            }
        }
    }
}

import FieldSyncCore
import FieldSyncTrust
@testable import FieldSyncHub
import FieldSyncPostgres
@_spi(Hub) import FieldSyncReplica
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

/// A hub store restored from a backup (issue 12 point 9, sync.md §2), on both stores: it starts
/// a new epoch — a new id with the same key, and the position where its log ends — which every
/// response names; and it takes back what it made under its former id, proved by its own key.
/// (The whole round with laptops over HTTP: LifecycleSpec.aHubRestoredFromABackupGetsBackEverythingItLost.)
@Suite struct HubRestoreSpec {
    static let epochHeader = HTTPField.Name(SyncProtocol.hubEpochHeader)!

    @Test(arguments: StoreKind.available) func aRestoredStoreStartsANewEpochAndTakesBackItsOwnEarlierChanges(kind: StoreKind) async throws {
        let f = try await StoreFixture(kind)
        let key = SiteKey()
        let (_, token) = try await f.device("笔记本", scope: village1, key: key)
        let c1 = creation(key.site, 1)
        let first = f.store.epoch, formerSite = f.store.hubSite
        #expect(HubEpoch.isID(first.id) && first.start == 0, "a new store's first epoch starts at 0: \(first)")
        try await f.app.test(.router) { client in
            try await client.execute(uri: "/v1/changes", method: .post, headers: bearer(token), body: pushBody(key.site, [c1])) { r in
                #expect(r.status == .ok)
                #expect(r.headers[Self.epochHeader] == first.header)
            }
        }
        // Opened again unmarked: the same epoch.
        let same: any HubStore = kind == .sqlite ? f.store : try await f.secondProcess()
        #expect(same.epoch == first)

        // Put back from a backup, and marked so.
        let restored: any HubStore
        switch kind {
        case .sqlite:
            try SQLiteHubStore.markRestored(path: f.dir.file("hub.sqlite"))
            restored = try SQLiteHubStore(path: f.dir.file("hub.sqlite"))
        case .postgres:
            try await PostgresHubStore.markRestored(url: f.pgURL!)
            restored = try await PostgresHubStore(url: f.pgURL!)
        }
        let second = restored.epoch
        #expect(second.id != first.id && HubEpoch.isID(second.id))
        #expect(second.start >= 1, "the epoch starts where the restored log ends (after c1): \(second)")
        #expect(restored.hubSite != formerSite, "a new id: nothing it writes can reuse one its former self handed out")
        #expect(restored.hubKey.publicKey == f.store.hubKey.publicKey, "the same key: laptops still know the hub")

        // What the hub made under its former id before the restore, brought back by a laptop
        // with the hub's proof (signed under the former id), is taken; the same under its new
        // id, which it never made, is not.
        func settling(_ site: SiteID) -> Change {
            Change(id: ChangeID(site: site, counter: 1), kind: .dispute, row: c1.row, hlc: HybridTimestamp(millis: 1_763_784_100_000, counter: 0),
                   author: "陈主任", writes: [FieldWrite(field: "status", value: .text("已化解"), context: VersionVector([(key.site, Int64(1))]))])
        }
        let old = settling(formerSite), forged = settling(restored.hubSite)
        let proofs = [old, forged].map { c in
            Manifest.signed(by: restored.hubKey, as: formerSite, digests: [ChangeDigest(canonicalText: ChangeCodec.canonicalText(c))]).json.compactText
        }
        let body = ByteBuffer(string: PushBody.text(site: key.site, siteName: "笔记本", sites: [:],
                                                    changeTexts: [old, forged].map(ChangeCodec.canonicalText), manifests: proofs))
        let app = Application(router: HubHTTP.router(store: restored, logger: quietLogger()), logger: quietLogger())
        try await app.test(.router) { client in
            try await client.execute(uri: "/v1/changes", method: .post, headers: bearer(token), body: body) { r in
                #expect(r.status == .ok)
                #expect(r.headers[Self.epochHeader] == second.header, "every response names the new epoch")
                let res = try PushResponse(json: FieldSyncHubTests.body(r)).results
                #expect(res.map(\.status) == [.accepted, .refused], "\(res)")
                #expect(res.last?.code == "own_site", "\(res)")
            }
        }
        let rec = try await restored.records(for: StoreFixture.everyone, RecordQuery(kind: .dispute)).records.first
        #expect(rec?["status"] == .text("已化解"))
    }

    @Test func theEpochHeaderIsReadStrictly() {
        #expect(HubEpoch.parse("3f9a0c1b22d4e5f6; start=1234") == HubEpoch(id: "3f9a0c1b22d4e5f6", start: 1234))
        #expect(HubEpoch.parse(HubEpoch(id: "0000000000000000", start: 0).header) == HubEpoch(id: "0000000000000000", start: 0))
        for bad in ["", "3f9a0c1b22d4e5f6", "3F9A0C1B22D4E5F6; start=1", "3f9a0c1b22d4e5f; start=1", "3f9a0c1b22d4e5f6; start=",
                    "3f9a0c1b22d4e5f6; start=-1", "3f9a0c1b22d4e5f6; start=1234567890123456", "3f9a0c1b22d4e5f6; begin=1",
                    "3f9a0c1b22d4e5f6; start=1; x=2"] {
            #expect(HubEpoch.parse(bad) == nil, "\(bad)")
        }
    }
}

import FieldSyncCore
import FieldSyncTrust
@testable import FieldSyncHub
@_spi(Hub) import FieldSyncReplica
@_exported import FieldSyncTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

let village1 = "520221105201"
let village2 = "520221105202"
let township = "520221105"

/// A hub store in a temporary folder, with the in-process application around it.
struct HubFixture: @unchecked Sendable {
    let dir: TempDir
    let store: SQLiteHubStore

    init(_ name: String = #function, clock: ManualClock? = nil) throws {
        dir = TempDir(name)
        let time: @Sendable () -> Int64
        if let clock { time = { clock.ms } } else { time = SQLiteHubStore.now }
        store = try SQLiteHubStore(path: dir.file("hub.sqlite"), name: "测试中心", clock: time)
    }

    var app: some ApplicationProtocol { Application(router: HubHTTP.router(store: store, logger: quietLogger()), logger: quietLogger()) }

    /// Adds and enrols a device whose site is `key`'s, returning its token.
    func device(_ name: String, scope: String, key: SiteKey = SiteKey()) async throws -> (Device, String) {
        let d = try await store.addDevice(name: name, scope: scope, codeLifetimeMs: 3_600_000)
        let resp = try await store.enroll(enrolment(code: d.code, key: key, name: name))
        return (Device(id: resp.device, name: name, scope: scope), resp.token)
    }
}

/// Makes `replica` take pages from this hub (as enrolment does): it learns the hub's site and key.
func trustHub(_ replica: Replica, _ store: any HubStore) throws {
    try replica.enroll(hubURL: "http://127.0.0.1:1", response: EnrollResponse(device: "dev-test", name: "test", scope: "", token: "fst_test",
                                                                               hubSite: store.hubSite, hubName: store.hubName, hubKey: store.hubKey.publicKey),
                       caCert: nil)
}

/// Binds `key`'s site to `device` at the hub, as a device whose replica took a new site id does.
func bind(_ store: some HubStore, _ key: SiteKey, to device: Device) async throws {
    try await store.bindSite(SiteBinding(site: key.site, key: key.publicKey, proof: key.sign(SiteBinding.possessionMessage(device: device.id, site: key.site))),
                             for: device)
}

/// An enrolment request for `key`'s site, with its proof of possession.
func enrolment(code: String, key: SiteKey, name: String) -> EnrollRequest {
    EnrollRequest(code: code, site: key.site, siteName: name, key: key.publicKey,
                  proof: key.sign(EnrollRequest.possessionMessage(code: code, site: key.site)))
}

func body(_ r: TestResponse) -> JSONValue { (try? JSONValue.parse(bytes: Array(r.body.readableBytesView))) ?? .null }

func bearer(_ token: String) -> HTTPFields { [.authorization: "Bearer \(token)"] }

/// A valid change creating a dispute in `village`, made by `site`.
func creation(_ site: SiteID, _ counter: Int64, village: String = village1, status: String = "受理", row: String? = nil) -> Change {
    let row = row ?? RecordID.make(kind: .dispute, region: village, nowMs: 1_763_784_000_000 + counter)
    return Change(id: ChangeID(site: site, counter: counter), kind: .dispute, row: row, hlc: HybridTimestamp(millis: 1_763_784_000_000 + counter, counter: 0),
                  author: "王芳", writes: [
                      FieldWrite(field: "village", value: .text(village)), FieldWrite(field: "category", value: .text("邻里纠纷")),
                      FieldWrite(field: "parties", value: .text("张三与李四")), FieldWrite(field: "summary", value: .text("宅基地边界")),
                      FieldWrite(field: "reported_on", value: .text("2026-11-20")), FieldWrite(field: "status", value: .text(status)),
                  ])
}

func pushBody(_ site: SiteID, _ changes: [Change]) -> ByteBuffer {
    ByteBuffer(string: PushBody.text(site: site, siteName: "笔记本", sites: [:], changeTexts: changes.map(ChangeCodec.canonicalText)))
}

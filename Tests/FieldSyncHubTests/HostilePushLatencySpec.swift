import FieldSyncCore
import FieldSyncTrust
@testable import FieldSyncHub
import Foundation
import Testing

/// While one enrolled device sends the most expensive pushes the caps allow — a thousand changes
/// whose `seen` vectors are padded to 256 invented sites, changes under other laptops' ids with
/// forged manifests, a thousand site names — an honest device keeps pulling from the same live
/// hub (issue 9, item 3). Latencies are printed; the assertion is a liveness bound.
@Suite(.serialized) struct HostilePushLatencySpec {
    static func padded(_ site: SiteID, from: Int64, count: Int, row: String) -> [String] {
        (0..<count).map { i in
            var seen: [String] = []
            for _ in 0..<ChangeCodec.maxSeenEntries { seen.append("\"\(SiteID.random().hex)\":\(Int64.random(in: 1...ChangeID.maxCounter))") }
            return #"{"id":"\#(site.hex):\#(from + Int64(i))","kind":"dispute","row":"\#(row)","hlc":"1763784000000-0","author":"王芳","schema":1,"#
                + #""fields":{"status":{"value":"调解中","seen":{\#(seen.joined(separator: ","))}}}}"#
        }
    }

    @Test func anHonestDeviceKeepsPullingWhileAnotherSendsTheCostliestPushesTheCapsAllow() async throws {
        let dir = TempDir()
        let hub = try HubProcess(db: dir.file("hub.sqlite"), log: dir.file("hub.log"))
        defer { hub.kill(SIGTERM) }
        let honestToken = try enrolledDeviceToken(hub, name: "诚实的笔记本")
        let (_, code) = try hub.addDevice("捣乱的笔记本", scope: village1)
        let key = SiteKey()
        let enrolled = try rawHTTP(hub.port, "POST", "/v1/enroll", headers: ["Content-Type": "application/json"],
                                   body: Array(enrolment(code: code, key: key, name: "捣乱").json.compactText.utf8))
        let hostileToken = try #require(enrolled.json["token"]?.stringValue)
        let victim = SiteKey()
        let row = RecordID.make(kind: .dispute, region: village1, nowMs: 1_763_784_000_000)
        // The abuses, each a body under the 8 MiB cap.
        let paddedBody = Array(PushBody.text(site: key.site, siteName: "x", sites: [:], changeTexts: Self.padded(key.site, from: 1, count: 850, row: row)).utf8)
        let forged = (1...2000).map { ChangeCodec.canonicalText(creation(victim.site, Int64($0))) }
        let forgedManifests = (0..<100).map { _ in Manifest.signed(by: key, as: victim.site, digests: forged.prefix(20).map { ChangeDigest(canonicalText: $0) }).json.compactText }
        let forgedBody = Array(PushBody.text(site: key.site, siteName: "x", sites: [:], changeTexts: forged, manifests: forgedManifests).utf8)
        var names: [SiteID: String] = [:]
        for _ in 0..<PushBody.maxSiteNames { names[SiteID.random()] = String(repeating: "名", count: 200) }
        let namesBody = Array(PushBody.text(site: key.site, siteName: "x", sites: names, changeTexts: [ChangeCodec.canonicalText(creation(key.site, 5000))]).utf8)
        let abuses: [(String, [UInt8])] = [("padded vectors", paddedBody), ("forged relays", forgedBody), ("a thousand names", namesBody)]
        let port = hub.port

        var baseline = HonestClient(port: port, token: honestToken)
        for _ in 0..<5 { try baseline.probe() }
        baseline.check("before any abuse")
        for (what, body) in abuses {
            #expect(body.count < SyncProtocol.maxRequestBytes, "\(what): \(body.count) bytes")
            let done = DoneFlag()
            async let hostile: [Int] = Self.onThread {
                var statuses: [Int] = []
                for _ in 0..<4 {
                    let r = try? rawHTTP(port, "POST", "/v1/changes", headers: ["Authorization": "Bearer \(hostileToken)", "Content-Type": "application/json"],
                                         body: body, timeout: 120)
                    statuses.append(r?.status ?? -1)
                }
                done.set()
                return statuses
            }
            async let honestRun: HonestClient = Self.onThread {
                var h = HonestClient(port: port, token: honestToken)
                repeat {
                    try? h.probe()
                    Thread.sleep(forTimeInterval: 0.05)
                } while !done.isSet || h.replies.count < 4
                return h
            }
            let statuses = await hostile
            let honest = await honestRun
            print("hostile pushes (\(what), \(body.count / 1024) KiB each): answered \(statuses)")
            #expect(statuses.allSatisfy { $0 == 200 }, "\(what): \(statuses)")
            honest.check("while another device sends \(what)")
        }
        // None of it landed.
        let devices = try hub.devices().arrayValue ?? []
        #expect(devices.first { $0["name"]?.stringValue == "捣乱的笔记本" }?["pushed"] == .int(1), "only the one genuine change of the names push")
    }

    static func onThread<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { c in Thread.detachNewThread { c.resume(returning: body()) } }
    }
}

final class DoneFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { lock.withLock { value } }
    func set() { lock.withLock { value = true } }
}

import FieldSyncCore
import FieldSyncTrust
@testable import FieldSyncHub
@_spi(Hub) import FieldSyncReplica
import Foundation
import GRDB
import Testing

/// A laptop and a hub made by the first release (Tests/Fixtures/release-1, made by its
/// binaries with make.sh: a hub with one device and one supervisor, a laptop enrolled there
/// with two records synced and one edit not yet sent) open with this release and keep working:
/// the token leaves the replica for the owner-only secret file, the laptop takes a site id
/// derived from a new key and names it to the hub, and its unsent edit still arrives.
@Suite(.serialized) struct ReleaseOneUpgradeSpec {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/release-1").path

    func copies(_ dir: TempDir) throws -> (hub: String, laptop: String) {
        let hub = dir.file("hub.sqlite"), laptop = dir.file("laptop.sqlite")
        try FileManager.default.copyItem(atPath: Self.fixtures + "/hub.sqlite", toPath: hub)
        try FileManager.default.copyItem(atPath: Self.fixtures + "/laptop.sqlite", toPath: laptop)
        chmod(hub, 0o644)
        chmod(laptop, 0o644)
        return (hub, laptop)
    }

    @Test func aReleaseOneReplicaMovesItsTokenOutAndTakesADerivedSite() throws {
        let dir = TempDir(#function)
        let (_, laptop) = try copies(dir)
        let old = try DatabaseQueue(path: laptop).read { db in
            (try String.fetchOne(db, sql: "SELECT value FROM fs_meta WHERE key = 'site'")!, try String.fetchOne(db, sql: "SELECT token FROM fs_sync")!)
        }
        #expect(old.1.hasPrefix("fst_"), "the fixture holds its token in the replica, as release 1 did")
        let r = try Replica.open(path: laptop)
        #expect(r.site.hex != old.0 && SiteIdentity.owns(r.key.publicKey, r.site))
        #expect(try r.syncState()?.token == old.1, "the device keeps its token")
        #expect(try r.syncState()?.boundSite?.hex == nil, "the hub has not heard of the new site yet")
        let stored = try DatabaseQueue(path: laptop).read { try String.fetchOne($0, sql: "SELECT token FROM fs_sync") }
        #expect(stored == "", "the token left the replica")
        #expect(try String(contentsOfFile: ReplicaSecrets.path(for: laptop), encoding: .utf8).contains(old.1))
        let mode = (try FileManager.default.attributesOfItem(atPath: laptop)[.posixPermissions] as? NSNumber)?.uint16Value ?? 0
        #expect(mode == 0o600, "the 0644 file of release 1 is narrowed to 0600")
        let former = try DatabaseQueue(path: laptop).read { try String.fetchAll($0, sql: "SELECT hex FROM fs_former_site") }
        #expect(former == [old.0])
        // Records and history as they were; edits go on under the new site.
        #expect(try r.records(.dispute).count == 1 && r.records(.visit).count == 1)
        let id = try r.records(.dispute)[0].id
        let edit = try r.edit(id, ["parties": "张某与李某（已核实）"])
        #expect(edit.change?.site == r.site && edit.change?.counter == 1)
    }

    @Test func aReleaseOneHubKeepsItsDevicesAndTheUpgradedLaptopSyncsWithIt() throws {
        let dir = TempDir(#function)
        let (hubFile, laptop) = try copies(dir)
        let devices = try DatabaseQueue(path: hubFile).read { try Row.fetchAll($0, sql: "SELECT id, site FROM hub_device") }
        let oldSite = try DatabaseQueue(path: laptop).read { try String.fetchOne($0, sql: "SELECT value FROM fs_meta WHERE key = 'site'")! }
        let hub = try HubProcess(db: hubFile, log: dir.file("hub.log"))
        defer { hub.kill(SIGTERM) }
        // The hub file was brought up to date: its device's site is in the directory.
        let bound = try DatabaseQueue(path: hubFile).read { try String.fetchAll($0, sql: "SELECT hex FROM hub_site WHERE device IS NOT NULL") }
        #expect(bound == devices.map { $0["site"] as String } && bound == [oldSite])
        let r = try runCLI(["sync", "--json", "--hub", hub.url], db: laptop)
        #expect(r.status == 0, "\(r.stdout) \(r.stderr)")
        let j = try JSONValue.parse(r.stdout)
        #expect(j["pushed"] == .int(1), "the edit release 1 had not sent arrives: \(r.stdout)")
        let newSite = try DatabaseQueue(path: laptop).read { try String.fetchOne($0, sql: "SELECT value FROM fs_meta WHERE key = 'site'")! }
        let sites = try DatabaseQueue(path: hubFile).read { try String.fetchAll($0, sql: "SELECT hex FROM hub_site WHERE device = ? ORDER BY bound", arguments: [devices[0]["id"] as String]) }
        #expect(sites == [oldSite, newSite], "the new site is bound to the same device")
        // A new edit under the new site goes through with the device's token alone.
        let id = try JSONValue.parse(try runCLI(["record", "list", "dispute", "--json"], db: laptop).stdout).arrayValue?.first?["id"]?.stringValue ?? ""
        #expect(try runCLI(["record", "edit", id, "--json", #"{"mediator_name":"李明"}"#], db: laptop).status == 0)
        let again = try runCLI(["sync", "--json", "--hub", hub.url], db: laptop)
        let pushedAgain = try JSONValue.parse(again.stdout)["pushed"]
        #expect(again.status == 0 && pushedAgain == .int(1), "\(again.stdout) \(again.stderr)")
        // The supervisor of release 1 still signs in with the same password (hashed by the
        // hand-written PBKDF2 then, checked by swift-crypto's now).
        let signIn = try hubAPI(hub, "POST", "/v1/sessions", body: #"{"name":"陈主任","password":"fixture-password-1"}"#)
        #expect(signIn.0 == 200 && signIn.1["token"]?.stringValue?.hasPrefix("fss_") == true, "\(signIn)")
    }
}

import FieldSyncCore
import FieldSyncTrust
@testable import FieldSyncHub
@_spi(Hub) import FieldSyncReplica
import Foundation
import GRDB
import Testing

/// Years in the field (issue 12): files from this release open in later ones, a laptop's unsent
/// work leaves on a USB stick and merges once on its replacement, and a running hub is backed up.
@Suite(.serialized) struct LifecycleSpec {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/release-2").path

    /// Tests/Fixtures/release-2 (made by make.sh with the release of 2026-12): the laptop opens with
    /// its key and token from the secret file, keeps its records and its draft, and its unsent
    /// edit and project reach the hub of the same release; the supervisor still signs in.
    @Test func releaseTwoFilesOpenSyncAndKeepEverything() throws {
        let dir = TempDir(#function)
        let hubFile = dir.file("hub.sqlite"), laptop = dir.file("laptop.sqlite")
        for (from, to) in [("hub.sqlite", hubFile), ("laptop.sqlite", laptop), ("laptop.sqlite.secret", laptop + ".secret")] {
            try FileManager.default.copyItem(atPath: Self.fixtures + "/" + from, toPath: to)
            chmod(to, 0o600)  // git keeps 0644
        }
        let site = try DatabaseQueue(path: laptop).read { try String.fetchOne($0, sql: "SELECT value FROM fs_meta WHERE key = 'site'")! }
        let r = try Replica.open(path: laptop)
        #expect(r.site.hex == site, "the same site: its key came from the secret file")
        #expect(try r.syncState()?.token.hasPrefix("fst_") == true)
        #expect(try r.records(.dispute).first?["status"] == .text("已化解"))
        #expect(try r.records(.project).first?["budget_fen"] == .integer(12_500_000))
        #expect(try r.draft("0123456789abcdef0123456789abcdef")?.text("notes") == "草稿：还没写完", "the app's draft survives")
        #expect(try r.pendingPushCount() == 2)
        let hub = try HubProcess(db: hubFile, log: dir.file("hub.log"))
        defer { hub.kill(SIGTERM) }
        let s = try runCLI(["sync", "--json", "--hub", hub.url], db: laptop)
        #expect(s.status == 0 && (try? JSONValue.parse(s.stdout))?["pushed"] == .int(2), "\(s.stdout) \(s.stderr)")
        let held = try hubState(hub, village: "520221105201").joined()
        #expect(held.contains("已化解") && held.contains("村集体茶叶加工厂") && held.contains("李大山"))
        let signIn = try hubAPI(hub, "POST", "/v1/sessions", body: #"{"name":"陈主任","password":"fixture-password-2"}"#)
        #expect(signIn.0 == 200, "\(signIn)")
    }

    /// A laptop is replaced: its unsent work goes on a USB stick (`fieldsync backup`), the new
    /// laptop, enrolled for the same village, gets the village from the hub and imports the
    /// stick; when the old laptop syncs too, nothing is doubled.
    @Test func aReplacedLaptopsBackupMergesOnceEvenIfTheOldOneSyncsLater() throws {
        let dir = TempDir(#function)
        let hub = try HubProcess(db: dir.file("hub.sqlite"), log: dir.file("hub.log"))
        defer { hub.kill(SIGTERM) }
        let old = try Laptop(dir, "旧笔记本", author: "王芳")
        try old.enroll(hub, scope: "520221105201")
        let synced = try old.add("dispute", disputeJSON(parties: "已同步的纠纷"))
        #expect(try old.sync().status == 0)
        // Nothing pending: no bundle.
        let none = try old.run(["backup", "--to", dir.file("usb"), "--json"])
        #expect(none.status == 0 && (try? JSONValue.parse(none.stdout))?["file"] == .null, "\(none.stdout) \(none.stderr)")
        let unsent = try old.add("dispute", disputeJSON(parties: "没来得及同步的纠纷"))
        try old.edit(synced, #"{"status":"调解中"}"#)
        let b = try old.run(["backup", "--to", dir.file("usb"), "--json"])
        let file = try #require((try? JSONValue.parse(b.stdout))?["file"]?.stringValue, "\(b.stdout) \(b.stderr)")
        #expect(b.status == 0 && file.hasPrefix(dir.file("usb") + "/fieldsync-backup-"))
        #expect((try? JSONValue.parse(b.stdout))?["changes"] == .int(2), "\(b.stdout)")
        // The replacement: enrolled for the same village, it gets the synced record from the hub.
        let new = try Laptop(dir, "新笔记本", author: "王芳")
        try new.enroll(hub, scope: "520221105201")
        #expect(try new.sync().status == 0)
        #expect(try new.run(["record", "get", unsent]).status != 0, "the unsent record is not at the hub yet")
        let imported = try new.run(["bundle", "import", file])
        #expect(imported.status == 0, "\(imported.stderr)")
        #expect(try new.sync().status == 0)
        #expect(try old.sync().status == 0, "the old laptop syncs too, later")
        #expect(try new.sync().status == 0)
        let hubHeld = try Replica.open(path: hub.db)
        let disputes = try hubHeld.records(.dispute, villagePrefix: "520221105201")
        #expect(disputes.count == 2, "two disputes, none doubled: \(disputes.map(\.id))")
        #expect(disputes.first { $0.id == synced }?["status"] == .text("调解中"))
        let twice = try hubHeld.database.read { try Int.fetchOne($0, sql: "SELECT count(*) - count(DISTINCT site || ':' || counter) FROM fs_change") ?? -1 }
        #expect(twice == 0, "no change logged twice at the hub")
        #expect(try new.state(village: "520221105201") == old.state(village: "520221105201"), "old and new laptops agree")
    }

    /// Only `init` (or `serve --create`) makes a hub: serve and the admin commands stop with exit
    /// 78 on a path with no hub, leaving no file behind; `init` refuses a file that exists.
    @Test func aMistypedPathNeverMakesAHub() throws {
        let dir = TempDir(#function)
        let typo = dir.file("hbu.sqlite")
        for args in [["serve", "--db", typo, "--port", "0"], ["device", "add", "--db", typo, "--name", "王芳", "--scope", "520221105201"],
                     ["supervisor", "add", "--db", typo, "--name", "陈主任", "--scope", "520221105"], ["device", "list", "--db", typo]] {
            let r = try runCLI(args, env: ["FIELDSYNC_SUPERVISOR_PASSWORD": "a-long-enough-password"], binary: "fieldsync-hub")
            #expect(r.status == 78 && r.stderr.contains("这里没有同步中心文件") && r.stderr.contains("fieldsync-hub init"), "\(args[0]): \(r.status) \(r.stderr)")
            #expect(!FileManager.default.fileExists(atPath: typo), "\(args[0]) made no file")
        }
        let made = try runCLI(["init", "--db", typo, "--hub-name", "落别乡同步中心"], binary: "fieldsync-hub")
        #expect(made.status == 0 && made.stdout.contains("落别乡同步中心"), "\(made.stderr)")
        let again = try runCLI(["init", "--db", typo], binary: "fieldsync-hub")
        #expect(again.status != 0 && again.stderr.contains("已存在"), "\(again.stderr)")
        let added = try runCLI(["device", "add", "--db", typo, "--name", "王芳", "--scope", "520221105201"], binary: "fieldsync-hub")
        #expect(added.status == 0, "\(added.stderr)")
    }

    /// Every request says what the laptop runs and holds; the device list shows it. A hub that
    /// requires a newer release refuses the old laptop's pulls (426, in Chinese, saying what to
    /// upgrade) but still takes its pushes, and the laptop keeps all its data.
    @Test func tooOldClientsStillPushButCannotPullAndReportTheirVersion() throws {
        let dir = TempDir(#function)
        let hub = try HubProcess(db: dir.file("hub.sqlite"), log: dir.file("hub.log"), extra: ["--min-client-release", String(FieldSyncRelease.current + 1)])
        defer { hub.kill(SIGTERM) }
        let a = try Laptop(dir, "旧程序的笔记本", author: "王芳")
        try a.enroll(hub, scope: "520221105201")
        let id = try a.add("dispute", disputeJSON(parties: "老版本也要交上来的纠纷"))
        let r = try a.sync()
        #expect(r.status == 65 && r.stderr.contains("本机程序版本太旧") && r.stderr.contains("upgrade_required"), "\(r.status) \(r.stderr)")
        #expect(try hubState(hub, village: "520221105201").joined().contains("老版本也要交上来的纠纷"), "the push was taken")
        #expect(try a.run(["record", "get", id]).status == 0, "nothing on the laptop is lost")
        let status = try a.status()
        #expect(status["sync"]?["lastError"]?.stringValue?.contains("升级") == true, "\(status)")
        // The device list shows its release and what it had not sent when it last spoke.
        _ = try a.add("visit", #"{"village":"520221105201","cadre_name":"王芳","visit_date":"2026-11-20","visit_kind":"回访"}"#)
        _ = try a.sync()
        let list = try JSONValue.parse(try runCLI(["device", "list", "--db", hub.db, "--json"], binary: "fieldsync-hub").stdout)
        let d = try #require(list.arrayValue?.first { $0["name"]?.stringValue == "旧程序的笔记本" })
        #expect(d["clientRelease"] == .int(Int64(FieldSyncRelease.current)) && d["clientSchema"] == .int(1), "\(d)")
        #expect(d["unsentOnDevice"] == .int(1) && d["oldestUnsentOnDevice"]?.stringValue?.hasSuffix("Z") == true,
                "the visit was not yet offered when the push began: \(d)")
        let token = try #require(try Replica.open(path: a.db).syncState()?.token)
        // A report in another form is ignored, as if absent: the device keeps its last one.
        let bad = try hubAPI(hub, "GET", "/v1/device", token: token, headers: [(SyncProtocol.clientHeader, "release=abc")])
        #expect(bad.0 == 200, "\(bad)")
        let after = try JSONValue.parse(try runCLI(["device", "list", "--db", hub.db, "--json"], binary: "fieldsync-hub").stdout)
        #expect(after.arrayValue?.first { $0["name"]?.stringValue == "旧程序的笔记本" }?["clientRelease"] == .int(Int64(FieldSyncRelease.current)))
        let pull = try hubAPI(hub, "GET", "/v1/changes?after=0", token: token, headers: [(SyncProtocol.clientHeader, "release=\(FieldSyncRelease.current + 1); schema=1; pending=0")])
        #expect(pull.0 == 200, "a new enough release pulls: \(pull.0)")
        let silent = try hubAPI(hub, "GET", "/v1/snapshot", token: token)
        #expect(silent.0 == 426 && silent.1["error"]?["code"] == "upgrade_required", "a release that does not say is below any minimum: \(silent.0)")
        #expect(ClientReport.parse("release=abc") == nil && ClientReport.parse("release=3; schema=1; pending=0")?.release == 3)
        #expect(ClientReport.parse("release=3; schema=1; pending=0; oldest=1; oldest=2") == nil, "a key twice")
        #expect(ClientReport.parse("release=3; schema=1") == nil, "pending missing")
    }

    /// A laptop's files (replica and secret) copied to a second place: the copy takes a new
    /// site id when first opened there and leaves the device (its token) to the laptop at home;
    /// it keeps every record, is enrolled on its own, and then both edit the same record and
    /// sync — nothing refused, nothing doubled, both edits at the hub (a conflict, since neither
    /// saw the other), and the two laptops agree.
    @Test func aCopiedLaptopTakesANewSiteAndBothCopiesSyncCleanly() throws {
        let dir = TempDir(#function)
        let hub = try HubProcess(db: dir.file("hub.sqlite"), log: dir.file("hub.log"))
        defer { hub.kill(SIGTERM) }
        let a = try Laptop(dir, "原笔记本", author: "王芳")
        try a.enroll(hub, scope: "520221105201")
        let id = try a.add("dispute", disputeJSON(parties: "复制前的纠纷"))
        #expect(try a.sync().status == 0)
        let copyDB = dir.file("复制的笔记本.sqlite")
        for suffix in ["", "-wal", ".secret"] where FileManager.default.fileExists(atPath: a.db + suffix) {
            try FileManager.default.copyItem(atPath: a.db + suffix, toPath: copyDB + suffix)
        }
        let siteA = try #require(try a.status()["site"]?.stringValue)
        let siteCopy = try #require(try JSONValue.parse(try runCLI(["status", "--json"], db: copyDB).stdout)["site"]?.stringValue)
        #expect(siteCopy != siteA, "the copy took a new site id before writing")
        let unenrolled = try runCLI(["sync"], db: copyDB)
        #expect(unenrolled.status == 78 && unenrolled.stderr.contains("还没有注册"), "the copy must be enrolled on its own: \(unenrolled.stderr)")
        #expect(try runCLI(["record", "get", id], db: copyDB).status == 0, "and keeps every record meanwhile")
        let (_, code) = try hub.addDevice("复制的笔记本", scope: "520221105201")
        #expect(try runCLI(["enroll", "--hub", hub.url, "--code", code], db: copyDB).status == 0)
        try a.edit(id, #"{"status":"调解中"}"#)
        #expect(try runCLI(["record", "edit", id, "--json", #"{"status":"已上报"}"#], db: copyDB).status == 0)
        _ = try runCLI(["record", "add", "visit", "--json", #"{"village":"520221105201","cadre_name":"王芳","visit_date":"2026-11-21","visit_kind":"回访","household_head":"副本新加的"}"#], db: copyDB)
        let s1 = try a.sync(), s2 = try runCLI(["sync", "--json"], db: copyDB), s3 = try a.sync()
        for s in [s1, s2, s3] {
            #expect(s.status == 0 && (try? JSONValue.parse(s.stdout))?["refused"]?.arrayValue?.isEmpty == true, "nothing refused: \(s.stdout) \(s.stderr)")
        }
        let hubReplica = try Replica.open(path: hub.db)
        let twice = try hubReplica.database.read { try Int.fetchOne($0, sql: "SELECT count(*) - count(DISTINCT site || ':' || counter) FROM fs_change") ?? -1 }
        #expect(twice == 0)
        let conflicts = try hubReplica.conflicts().filter { $0.row == id }
        #expect(conflicts.count == 1 && Set(conflicts[0].candidates.map { $0.value.stringValue ?? "" }) == ["调解中", "已上报"],
                "both edits kept, as a conflict: \(conflicts.map(\.candidates))")
        #expect(try hubReplica.records(.visit).contains { $0["household_head"] == .text("副本新加的") })
        let copyState = try JSONValue.parse(try runCLI(["record", "get", id, "--json"], db: copyDB).stdout)
        let aState = try JSONValue.parse(try a.run(["record", "get", id, "--json"]).stdout)
        #expect(copyState == aState, "both copies show the same record and conflict")
    }

    /// A laptop away for months (issue 12 point 5): meanwhile others edit, delete and add, and
    /// the hub's pull horizon moves past the laptop's position (its history compacted). On its
    /// return the laptop pushes its own unsent work first, is told it is behind the horizon, and
    /// catches up with a snapshot — the edits, the new records and the deletions — without
    /// losing anything it had; everyone ends equal.
    @Test func aLaptopAwayPastTheHorizonCatchesUpBySnapshotAndKeepsItsWork() throws {
        let dir = TempDir(#function)
        let hub = try HubProcess(db: dir.file("hub.sqlite"), log: dir.file("hub.log"))
        defer { hub.kill(SIGTERM) }
        let away = try Laptop(dir, "外出的笔记本", author: "王芳")
        try away.enroll(hub, scope: "520221105201")
        let stay = try Laptop(dir, "在村里的笔记本", author: "李明")
        try stay.enroll(hub, scope: "520221105201")
        let kept = try stay.add("dispute", disputeJSON(parties: "一直都在的纠纷"))
        let doomed = try stay.add("dispute", disputeJSON(parties: "后来删掉的纠纷"))
        #expect(try stay.sync().status == 0)
        #expect(try away.sync().status == 0)
        // Away: its own work, not sent.
        let mine = try away.add("dispute", disputeJSON(parties: "外出时记的纠纷"))
        try away.edit(kept, #"{"mediator_name":"王芳"}"#)
        // Meanwhile, at home: edits, a deletion, new records; many syncs.
        try stay.edit(kept, #"{"status":"已化解"}"#)
        #expect(try stay.run(["record", "delete", doomed]).status == 0)
        for i in 0..<30 { _ = try stay.add("visit", #"{"village":"520221105201","cadre_name":"李明","visit_date":"2026-11-21","visit_kind":"回访","household_head":"户\#(i)"}"#) }
        #expect(try stay.sync().status == 0)
        // And a schema change: the hub takes version 2, the laptop at home takes it from the hub
        // and fills in a new field (docs/operations.md §11).
        let load = try runCLI(["schema", "load", "--store", hub.db, SchemaUpgradeFleetSpec.v2], binary: "fieldsync-hub")
        #expect(load.status == 0, "\(load.stderr)")
        Thread.sleep(forTimeInterval: 1.2)
        #expect(try stay.sync().status == 0)
        try stay.edit(kept, #"{"mediation_fee_fen":800}"#)
        #expect(try stay.sync().status == 0)
        // The hub's history before now is compacted: pulls from before it must take a snapshot.
        // (Read with SQLite alone: a Replica opened here would take the file's schema 2 for
        // the whole test process.)
        let hubFile = try DatabaseQueue(path: hub.db)
        try hubFile.write { db in
            try db.execute(sql: "UPDATE fs_meta SET value = (SELECT max(seq) FROM fs_change) WHERE key = 'hub_horizon'")
        }
        try hubFile.close()
        let back = try away.sync()
        let report = try JSONValue.parse(back.stdout)
        #expect(back.status == 0 && report["pushed"] == .int(2) && (report["snapshotPages"]?.intValue ?? 0) > 0, "pushed its own work first, then a snapshot: \(back.stdout) \(back.stderr)")
        #expect(report["schemaLearnt"]?["to"] == .int(2), "took the schema changed while it was away: \(back.stdout)")
        #expect(try away.run(["record", "get", mine]).status == 0, "its own new record is kept")
        let deleted = try JSONValue.parse(try away.run(["record", "get", doomed, "--json"]).stdout)
        #expect(deleted["deleted"] == .bool(true), "the deletion made meanwhile arrived: \(deleted)")
        let k = try JSONValue.parse(try away.run(["record", "get", kept, "--json"]).stdout)
        #expect(k["fields"]?["status"] == .string("已化解") && k["fields"]?["mediator_name"] == .string("王芳") && k["fields"]?["mediation_fee_fen"] == .int(800),
                "every edit of the kept record, the new field's too: \(k)")
        #expect(try away.state(village: "520221105201").count == 4)
        #expect(try stay.sync().status == 0)
        #expect(try away.state(village: "520221105201") == stay.state(village: "520221105201"), "both laptops equal")
    }

    /// `fieldsync-hub backup` copies a hub while it serves: the copy opens as a hub with every
    /// record, and a second backup to the same name is refused rather than overwriting.
    @Test func aRunningHubIsBackedUpConsistently() throws {
        let dir = TempDir(#function)
        let hub = try HubProcess(db: dir.file("hub.sqlite"), log: dir.file("hub.log"))
        defer { hub.kill(SIGTERM) }
        let a = try Laptop(dir, "笔记本", author: "王芳")
        try a.enroll(hub, scope: "520221105201")
        for i in 0..<20 { _ = try a.add("dispute", disputeJSON(parties: "当事人\(i)")) }
        #expect(try a.sync().status == 0)
        let copy = dir.file("backup/hub-copy.sqlite")
        try FileManager.default.createDirectory(atPath: dir.file("backup"), withIntermediateDirectories: true)
        let r = try runCLI(["backup", "--db", hub.db, copy], binary: "fieldsync-hub")
        #expect(r.status == 0 && r.stdout.contains("integrity_check ok"), "\(r.stdout) \(r.stderr)")
        let mode = (try FileManager.default.attributesOfItem(atPath: copy)[.posixPermissions] as? NSNumber)?.uint16Value ?? 0
        #expect(mode == 0o600, "the copy is owner-only (it holds the hub's key)")
        #expect(!FileManager.default.fileExists(atPath: copy + "-wal"), "the copy stands alone")
        let restored = try SQLiteHubStore(path: copy)
        #expect(try restored.replica.records(.dispute).count == 20)
        let again = try runCLI(["backup", "--db", hub.db, copy], binary: "fieldsync-hub")
        #expect(again.status != 0 && again.stderr.contains("已存在"), "\(again.stderr)")
        let missing = try runCLI(["backup", "--db", dir.file("no-such-hub.sqlite"), dir.file("x.sqlite")], binary: "fieldsync-hub")
        #expect(missing.status != 0 && missing.stderr.contains("no hub file here"), "\(missing.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.file("no-such-hub.sqlite")), "a mistyped path makes no hub")
    }

    /// A hub restored from yesterday's backup (issue 12 point 9): after the backup a day of
    /// work reached it — edits on both laptops (a conflict), a deletion, new records, and a
    /// supervisor's settling made at the hub itself. The hub is stopped and the backup put in
    /// its place. One round of syncs later the hub holds every change it held before (the
    /// supervisor's too, brought back by the laptops under the hub's former id), with the same
    /// records, conflicts and deletions, nothing doubled; and syncing goes on as usual.
    @Test func aHubRestoredFromABackupGetsBackEverythingItLost() throws {
        let dir = TempDir(#function)
        var hub = try HubProcess(db: dir.file("hub.sqlite"), log: dir.file("hub.log"))
        defer { hub.kill(SIGTERM) }
        let village = "520221105201"
        let a = try Laptop(dir, "笔记本甲", author: "王芳")
        try a.enroll(hub, scope: village)
        let b = try Laptop(dir, "笔记本乙", author: "李明")
        try b.enroll(hub, scope: village)
        let kept = try a.add("dispute", disputeJSON(parties: "备份前的纠纷"))
        let doomed = try a.add("dispute", disputeJSON(parties: "备份后删掉的纠纷"))
        let settled = try a.add("dispute", disputeJSON(parties: "中心调解的纠纷"))
        #expect(try a.sync().status == 0 && b.sync().status == 0)
        let backup = dir.file("hub-backup.sqlite")
        let taken = try runCLI(["backup", "--db", hub.db, backup], binary: "fieldsync-hub")
        #expect(taken.status == 0, "\(taken.stdout) \(taken.stderr)")

        // A day of work after the backup.
        try a.edit(kept, #"{"status":"调解中"}"#)
        try b.edit(kept, #"{"status":"已上报"}"#)
        try a.edit(settled, #"{"mediator_name":"王芳"}"#)
        try b.edit(settled, #"{"mediator_name":"李明"}"#)
        #expect(try b.run(["record", "delete", doomed]).status == 0)
        let newA = try a.add("dispute", disputeJSON(parties: "备份后新加的纠纷"))
        let newB = try b.add("visit", #"{"village":"520221105201","cadre_name":"李明","visit_date":"2026-11-21","visit_kind":"回访","household_head":"备份后走访的户"}"#)
        #expect(try a.sync().status == 0 && b.sync().status == 0)
        let added = try runCLI(["supervisor", "add", "--db", hub.db, "--name", "陈主任", "--scope", village],
                               env: ["FIELDSYNC_SUPERVISOR_PASSWORD": "restore-test-pw"], binary: "fieldsync-hub")
        #expect(added.status == 0, "\(added.stderr)")
        let resolved = try runCLI(["conflicts", "resolve", "--db", hub.db, "--as", "陈主任", "\(RecordID.short(settled))/mediator_name", "--value", #""王芳、李明""#],
                                  binary: "fieldsync-hub")
        #expect(resolved.status == 0, "\(resolved.stdout) \(resolved.stderr)")
        #expect(try a.sync().status == 0 && b.sync().status == 0 && a.sync().status == 0)

        let before = try hubState(hub, village: village)
        let beforeIDs = try hubChangeIDs(hub.db)
        let beforeConflicts = try hubConflicts(hub.db)
        #expect(beforeConflicts.count == 1, "kept's status is in conflict: \(beforeConflicts)")
        let formerHubSite = try Replica.open(path: hub.db).site

        // The hub's disk is lost: the backup goes in its place.
        hub.kill(SIGTERM)
        for suffix in ["", "-wal", "-shm"] { unlink(hub.db + suffix) }
        try FileManager.default.copyItem(atPath: backup, toPath: hub.db)
        hub = try hub.restart()
        #expect(try Replica.open(path: hub.db).site != formerHubSite, "the restored hub writes under a new id")

        for l in [a, b] {
            let s = try l.sync()
            let report = try JSONValue.parse(s.stdout)
            #expect(s.status == 0 && report["hubRestored"] == .bool(true) && report["refused"]?.arrayValue?.isEmpty == true,
                    "\(s.stdout) \(s.stderr)")
        }
        #expect(try hubChangeIDs(hub.db) == beforeIDs, "the hub holds exactly the changes it held before, each once")
        #expect(try hubConflicts(hub.db) == beforeConflicts)
        #expect(try hubState(hub, village: village) == before, "the same records, values and deletions")
        let gone = try JSONValue.parse(try a.run(["record", "get", doomed, "--json"]).stdout)
        #expect(gone["deleted"] == .bool(true))

        // And syncing goes on as usual: a new edit after the restore reaches the other laptop.
        try a.edit(newB, #"{"notes":"恢复后补记"}"#)
        let again = try a.sync()
        #expect(again.status == 0 && (try? JSONValue.parse(again.stdout))?["hubRestored"] == .bool(false), "\(again.stdout)")
        #expect(try b.sync().status == 0)
        let seen = try JSONValue.parse(try b.run(["record", "get", newB, "--json"]).stdout)
        #expect(seen["fields"]?["notes"] == .string("恢复后补记"), "\(seen)")
        #expect(try b.run(["record", "get", newA]).status == 0)
        #expect(try a.state(village: village) == b.state(village: village), "both laptops equal")
    }

    /// Pruned history comes back from the hub (issue 12 point 4): after a laptop pruned an old
    /// superseded edit, `record history` fetches its text from the hub (the hub keeps every
    /// change) and shows the value again; offline it lists the entry as pruned and says why.
    @Test func prunedHistoryComesBackFromTheHub() throws {
        let dir = TempDir(#function)
        let hub = try HubProcess(db: dir.file("hub.sqlite"), log: dir.file("hub.log"))
        defer { hub.kill(SIGTERM) }
        let a = try Laptop(dir, "笔记本", author: "王芳")
        try a.enroll(hub, scope: "520221105201")
        let d = try a.add("dispute", disputeJSON())
        try a.edit(d, #"{"status":"调解中"}"#)
        try a.edit(d, #"{"status":"已化解"}"#)
        #expect(try a.sync().status == 0)
        let later = ["FIELDSYNC_CLOCK_SKEW_MS": String(100 * 86_400_000)]
        let p = try a.run(["prune", "--json"], env: later)
        #expect(p.status == 0 && (try? JSONValue.parse(p.stdout))?["pruned"] == .int(1), "\(p.stdout) \(p.stderr)")
        func history(_ extra: [String]) throws -> (JSONValue, [JSONValue]) {
            let r = try a.run(["record", "history", d, "--json"] + extra)
            #expect(r.status == 0, "\(r.stderr)")
            let j = try JSONValue.parse(r.stdout)
            return (j, j["history"]?.arrayValue ?? [])
        }
        let (_, offline) = try history(["--offline"])
        #expect(offline.filter { $0["status"] == .string("pruned") }.count == 1 && !offline.contains { $0["value"] == .string("调解中") })
        let (fetched, online) = try history([])
        #expect(fetched["fetchedFromHub"]?.stringValue?.contains("取回 1") == true, "\(fetched)")
        #expect(online.contains { $0["value"] == .string("调解中") && $0["status"] == .string("superseded") })
        #expect(!online.contains { $0["status"] == .string("pruned") })
        // Pruned again, with the hub gone: the history still shows what it kept, and says why
        // the rest is missing.
        #expect(try a.run(["prune"], env: later).status == 0)
        hub.kill(SIGTERM)
        let (down, kept) = try history([])
        #expect(down["fetchedFromHub"]?.stringValue?.contains("取不到") == true, "\(down)")
        #expect(kept.filter { $0["status"] == .string("pruned") }.count == 1 && kept.contains { $0["value"] == .string("已化解") })
    }

    /// A lost laptop (issue 12 point 6): revoked, then found. It is told so in Chinese, keeps
    /// its data, writes its unsent work to a bundle, and an administrator takes that bundle for
    /// it (`fieldsync-hub device recover`): its records reach the hub and the other laptops,
    /// once; the device stays revoked.
    @Test func aFoundRevokedLaptopsWorkIsRecoveredByBundle() throws {
        let dir = TempDir(#function)
        let hub = try HubProcess(db: dir.file("hub.sqlite"), log: dir.file("hub.log"))
        defer { hub.kill(SIGTERM) }
        let lost = try Laptop(dir, "丢失的笔记本", author: "王芳")
        try lost.enroll(hub, scope: "520221105201")
        let other = try Laptop(dir, "另一台笔记本", author: "李明")
        try other.enroll(hub, scope: "520221105201")
        let synced = try lost.add("dispute", disputeJSON(parties: "丢失前已同步"))
        #expect(try lost.sync().status == 0)
        let unsent = try lost.add("dispute", disputeJSON(parties: "丢失前没来得及同步"))
        try lost.edit(synced, #"{"status":"调解中"}"#)
        let dev = try #require(try lost.status()["sync"]?["device"]?.stringValue)
        #expect(try runCLI(["device", "revoke", "--db", hub.db, dev], binary: "fieldsync-hub").status == 0)

        let back = try lost.sync()
        #expect(back.status == 77 && back.stderr.contains("同步中心已停用本机") && back.stderr.contains("数据不会丢失"), "\(back.stderr)")
        #expect(try lost.run(["record", "get", unsent]).status == 0, "its data is kept")
        let b = try lost.run(["backup", "--to", dir.file("usb"), "--json"])
        let file = try #require((try? JSONValue.parse(b.stdout))?["file"]?.stringValue, "\(b.stdout) \(b.stderr)")

        let notRevoked = try runCLI(["device", "recover", "--db", hub.db, try #require(try other.status()["sync"]?["device"]?.stringValue), file],
                                    binary: "fieldsync-hub")
        #expect(notRevoked.status != 0 && notRevoked.stderr.contains("没有被吊销"), "\(notRevoked.stderr)")
        let r = try runCLI(["device", "recover", "--db", hub.db, dev, file, "--json"], binary: "fieldsync-hub")
        let j = try JSONValue.parse(r.stdout)
        #expect(r.status == 0 && j["accepted"] == .int(2) && j["refused"]?.arrayValue?.isEmpty == true, "\(r.stdout) \(r.stderr)")
        let again = try JSONValue.parse(try runCLI(["device", "recover", "--db", hub.db, dev, file, "--json"], binary: "fieldsync-hub").stdout)
        #expect(again["accepted"] == .int(0) && again["duplicate"] == .int(2), "taken once: \(again)")

        #expect(try other.sync().status == 0)
        #expect(try other.run(["record", "get", unsent]).status == 0, "the recovered record reached the other laptop")
        let s = try JSONValue.parse(try other.run(["record", "get", synced, "--json"]).stdout)
        #expect(s["fields"]?["status"] == .string("调解中"), "and so did the recovered edit: \(s)")
        #expect(try lost.sync().status == 77, "the laptop stays revoked")
    }

    /// A laptop restored in place from an older disk image (issue 12 point 8): its home check
    /// cannot see that, so it writes under ids its former self had already used. The hub
    /// refuses those as clones; the laptop takes a new site id and makes those edits again under
    /// it. Nothing is lost — the hub keeps what the laptop wrote after the image was taken, and
    /// gets what it wrote after the restore — nothing is doubled, and the laptop ends equal to
    /// another one.
    @Test func aLaptopRestoredInPlaceRemakesWhatItWroteUnderUsedIDs() throws {
        let dir = TempDir(#function)
        let hub = try HubProcess(db: dir.file("hub.sqlite"), log: dir.file("hub.log"))
        defer { hub.kill(SIGTERM) }
        let a = try Laptop(dir, "笔记本", author: "王芳")
        try a.enroll(hub, scope: "520221105201")
        let other = try Laptop(dir, "另一台笔记本", author: "李明")
        try other.enroll(hub, scope: "520221105201")
        let d = try a.add("dispute", disputeJSON(parties: "镜像之前的纠纷"))
        #expect(try a.sync().status == 0)
        let image = dir.file("image")
        try FileManager.default.createDirectory(atPath: image, withIntermediateDirectories: true)
        for suffix in ["", "-wal", ".secret"] where FileManager.default.fileExists(atPath: a.db + suffix) {
            try FileManager.default.copyItem(atPath: a.db + suffix, toPath: image + "/r" + suffix)
        }
        // After the image was taken: work that reaches the hub.
        try a.edit(d, #"{"status":"调解中"}"#)
        let afterImage = try a.add("dispute", disputeJSON(parties: "镜像之后记的纠纷"))
        #expect(try a.sync().status == 0)
        // The disk is restored from the image, in place (the same laptop, the same path).
        for suffix in ["", "-wal", "-shm", ".secret"] {
            try? FileManager.default.removeItem(atPath: a.db + suffix)
            if FileManager.default.fileExists(atPath: image + "/r" + suffix) { try FileManager.default.copyItem(atPath: image + "/r" + suffix, toPath: a.db + suffix) }
        }
        if var secrets = ReplicaSecrets.load(for: a.db) {
            secrets.home = ReplicaSecrets.home(of: a.db)
            try secrets.save(for: a.db)
        }
        let siteBefore = try #require(try a.status()["site"]?.stringValue)
        // Work after the restore, under ids the hub already holds with other content.
        try a.edit(d, #"{"mediator_name":"王芳"}"#)
        let afterRestore = try a.add("visit", #"{"village":"520221105201","cadre_name":"王芳","visit_date":"2026-11-22","visit_kind":"入户走访","household_head":"恢复之后走访的户"}"#)
        let s = try a.sync()
        let report = try JSONValue.parse(s.stdout)
        #expect(s.status == 0 && report["siteRenewed"] == .bool(true) && report["remade"] == .int(2) && report["refused"]?.arrayValue?.isEmpty == true,
                "\(s.stdout) \(s.stderr)")
        #expect(try a.status()["site"]?.stringValue != siteBefore)
        #expect(try a.sync().status == 0 && other.sync().status == 0 && a.sync().status == 0)
        let twice = try Replica.open(path: hub.db).database.read { try Int.fetchOne($0, sql: "SELECT count(*) - count(DISTINCT site || ':' || counter) FROM fs_change") ?? -1 }
        #expect(twice == 0)
        let rec = try JSONValue.parse(try other.run(["record", "get", d, "--json"]).stdout)
        #expect(rec["fields"]?["status"] == .string("调解中") && rec["fields"]?["mediator_name"] == .string("王芳"),
                "the edit from before the restore and the one after it: \(rec)")
        #expect(try other.run(["record", "get", afterImage]).status == 0 && other.run(["record", "get", afterRestore]).status == 0)
        #expect(try a.run(["record", "get", afterImage]).status == 0, "the restored laptop gets back what it wrote after the image")
        #expect(try a.state(village: "520221105201") == other.state(village: "520221105201"), "both laptops equal")
    }

    /// The ids of every change a hub file holds.
    func hubChangeIDs(_ db: String) throws -> [String] {
        try Replica.open(path: db).database.read { db in
            try String.fetchAll(db, sql: "SELECT printf('%016x:%d', site, counter) FROM fs_change ORDER BY 1")
        }
    }

    /// Every open conflict of a hub file, with its candidates' values.
    func hubConflicts(_ db: String) throws -> [String] {
        try Replica.open(path: db).conflicts().map { c in
            "\(c.row)/\(c.field): " + c.candidates.map { "\($0.change)=\($0.value.compactText)" }.sorted().joined(separator: " | ")
        }.sorted()
    }
}

import FieldSyncCore
import FieldSyncTestSupport
import FieldSyncTrust
import Foundation
import GRDB
import Testing

/// Issue 12 points 1 and 2, as a county lives it (docs/operations.md §11): laptops on schema 1
/// and 2 and a hub that starts on 1 and is upgraded while it runs; edits of the new fields are
/// relayed through old laptops by the hub and by USB stick. Every part is a real process, so
/// that each holds its own schema (a test process that took schema 2 would hold it for every
/// later test). After everyone has schema 2, every replica holds the same records and
/// conflicts and nothing anyone wrote is lost.
@Suite(.serialized) struct SchemaUpgradeFleetSpec {
    static let v2 = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("docs/schema/schema-v2-example.json").path

    @Test(arguments: StoreKind.available) func aMixedFleetConvergesOnceEveryoneHasTheNewSchema(kind: StoreKind) async throws {
        let dir = TempDir()
        let store = kind == .sqlite ? dir.file("hub.sqlite") : try await StoreKind.freshDatabase().description
        let hub = try HubProcess(db: store, log: dir.file("hub.log"))
        let a = try Laptop(dir, "新版笔记本", author: "王芳")  // takes schema 2 by hand, before the hub
        let b = try Laptop(dir, "旧版笔记本", author: "李明")
        let c = try Laptop(dir, "村委会", author: "赵主任")
        for l in [a, b, c] { try l.enroll(hub, scope: village1) }

        let loaded = try a.run(["schema", "load", Self.v2, "--json"])
        #expect(loaded.status == 0, "\(loaded.stderr)")
        #expect(try JSONValue.parse(loaded.stdout)["to"]?.intValue == 2)
        // A schema-1 laptop refuses what it does not know when typed by hand, and says why.
        let refused = try b.run(["record", "add", "dispute", "--json", #"{"village":"520221105201","category":"邻里纠纷","parties":"甲与乙","summary":"s","reported_on":"2026-11-20","status":"司法确认"}"#])
        #expect(refused.status != 0 && refused.stderr.contains("司法确认"), "\(refused.stderr)")

        // D1: made on schema 2 with a new choice and new fields. D2: made on schema 1.
        let d1 = try a.add("dispute", #"{"village":"520221105201","category":"邻里纠纷","parties":"张三与李四","summary":"宅基地边界","reported_on":"2026-11-20","status":"司法确认","mediation_fee_fen":5000,"court_confirmed_on":"2026-11-25"}"#)
        let d2 = try b.add("dispute", disputeJSON(parties: "王五与赵六"))
        let d3 = try a.add("dispute", disputeJSON(parties: "孙七与周八"))
        // M: a record of a kind schema 2 adds. The hub on 1 cannot place it in a table: it keeps
        // the change whole, scoped by its record id, and relays it like any other.
        let m = try a.add("meeting", #"{"village":"520221105201","held_on":"2026-11-28","topic":"人居环境整治","attendees":56}"#)
        let first = try a.sync()
        let firstJSON = try? JSONValue.parse(first.stdout)
        #expect(first.status == 0 && firstJSON?["refused"]?.arrayValue?.isEmpty == true && firstJSON?["retryLater"]?.arrayValue?.isEmpty == true,
                "\(first.stdout) \(first.stderr)")
        for l in [b, c] { #expect(try l.sync().status == 0) }
        _ = try a.sync()  // takes D2
        // The old laptops keep what they cannot read and show what they can.
        let seenByB = try record(b, d1)
        #expect(seenByB?["fields"]?["parties"]?.stringValue == "张三与李四")
        #expect(seenByB?["fields"]?["mediation_fee_fen"] == nil, "a schema-1 laptop shows no field it does not know")
        #expect(try pending(b) >= 2)
        #expect(try logged(b, m) == [2], "the old laptop keeps the meeting it pulled from the old hub")
        let statusB = try JSONValue.parse(try b.run(["status", "--json"]).stdout)
        #expect(statusB["keptKinds"] == ["meeting"] && (statusB["keptForNewerSchema"]?.intValue ?? 0) >= 2, "\(statusB)")
        #expect(try b.run(["status"]).stdout.contains("meeting"), "status says what it keeps")

        // While the hub is still on 1: an old laptop edits a known field of D1; the new laptop
        // edits the new field and hands the edit over on a USB stick to an old laptop, which
        // relays it to the hub; and D2 is edited (new field) and deleted concurrently.
        try b.edit(d1, #"{"parties":"张三与李四（邻居）"}"#)
        try a.edit(d1, #"{"mediation_fee_fen":6000}"#)
        try a.edit(d2, #"{"mediation_fee_fen":100}"#)
        // D3: the new laptop sets a new field and then deletes the record, having seen its own
        // edit: no conflict, once the old laptops read what the delete had seen.
        try a.edit(d3, #"{"mediation_fee_fen":300}"#)
        #expect(try a.run(["record", "delete", d3]).status == 0)
        // The new kind on the stick too: an edit of M and a second meeting M2, which reach the
        // hub only through the old laptop that imports the stick.
        try a.edit(m, #"{"attendees":60}"#)
        let m2 = try a.add("meeting", #"{"village":"520221105201","held_on":"2026-11-30","topic":"集体经济分红","attendees":71}"#)
        let stick = dir.file("usb.fsb")
        #expect(try a.run(["bundle", "export", stick]).status == 0)
        // The old laptop takes everything, what it cannot read kept whole: nothing is set aside.
        let imported = try c.run(["bundle", "import", stick, "--json"])
        #expect(imported.status == 0 && (try? JSONValue.parse(imported.stdout))?["setAside"]?.intValue == 0, "\(imported.stdout) \(imported.stderr)")
        #expect(try logged(c, m2) == [1])
        #expect(try b.run(["record", "delete", d2]).status == 0)
        for l in [c, b] { #expect(try l.sync().status == 0) }
        // Relayed by the old laptop to the old hub, and by the old hub to the other old laptop.
        #expect(try logged(b, m2) == [2], "M2 did not travel stick → old laptop → old hub → old laptop")
        #expect(try logged(b, m).count == 2, "the edit of M did not travel the same way")

        // The administrator loads schema 2 while the hub runs; it takes it within a second.
        let adminLoad = try runCLI(["schema", "load", "--store", store, Self.v2], binary: "fieldsync-hub")
        #expect(adminLoad.status == 0, "\(adminLoad.stderr)")
        #expect(adminLoad.stdout.contains("2"), "\(adminLoad.stdout)")
        try await Task.sleep(nanoseconds: 1_200_000_000)

        // Old laptops take schema 2 on their next sync and merge what they kept, in place.
        for l in [b, c] {
            let r = try l.sync()
            #expect(r.status == 0, "\(r.stderr)")
            let j = try JSONValue.parse(r.stdout)
            #expect(j["schemaLearnt"]?["to"]?.intValue == 2, "\(l.name) did not take schema 2: \(r.stdout)")
            #expect(j["schema"]?.intValue == 2)
            #expect(try pending(l) == 0, "\(l.name) still keeps changes it cannot read")
            let st = try JSONValue.parse(try l.run(["status", "--json"]).stdout)
            #expect(st["keptForNewerSchema"]?.intValue == 0 && st["keptKinds"] == [], "\(st)")
        }
        // The meetings they kept merged in place, without asking anyone for them again.
        for l in [b, c] {
            let got = try JSONValue.parse(try l.run(["record", "list", "meeting", "--json"]).stdout).arrayValue ?? []
            #expect(Set(got.compactMap { $0["fields"]?["attendees"]?.intValue }) == [60, 71], "\(l.name): \(got)")
        }
        let newcomer = try Laptop(dir, "新配发的笔记本", author: "陈书记")
        try newcomer.enroll(hub, scope: village1)
        for _ in 0..<2 {
            for l in [a, b, c, newcomer] {
                let r = try l.sync()
                #expect(r.status == 0, "\(l.name): \(r.stdout.prefix(1500)) \(r.stderr)")
            }
        }

        // Everyone holds the same records and conflicts, and every write is there.
        let want = try a.state(village: village1)
        for l in [b, c, newcomer] { #expect(try l.state(village: village1) == want, "\(l.name) differs from \(a.name)") }
        let one = try record(newcomer, d1)
        #expect(one?["fields"]?["status"]?.stringValue == "司法确认")
        #expect(one?["fields"]?["mediation_fee_fen"]?.intValue == 6000, "the edit relayed by USB and an old laptop is lost")
        #expect(one?["fields"]?["court_confirmed_on"]?.stringValue == "2026-11-25")
        #expect(one?["fields"]?["parties"]?.stringValue == "张三与李四（邻居）")
        let conflicts = try JSONValue.parse(try newcomer.run(["conflicts", "list", "--json"]).stdout).arrayValue ?? []
        #expect(conflicts.contains { $0["row"]?.stringValue == d2 && $0["field"]?.stringValue == "_record" },
                "the delete that missed the new field's edit is a delete-versus-edit conflict: \(conflicts)")
        #expect(!conflicts.contains { $0["row"]?.stringValue == d3 }, "a delete that had seen the new field's edit is no conflict: \(conflicts)")
        for l in [a, b, c, newcomer] {
            let meetings = try JSONValue.parse(try l.run(["record", "list", "meeting", "--json"]).stdout).arrayValue ?? []
            let byID = Dictionary(meetings.map { ($0["id"]?.stringValue ?? "", $0["fields"] ?? .null) }, uniquingKeysWith: { x, _ in x })
            #expect(meetings.count == 2 && byID[m]?["topic"]?.stringValue == "人居环境整治" && byID[m]?["attendees"]?.intValue == 60
                    && byID[m2]?["topic"]?.stringValue == "集体经济分红", "\(l.name): \(meetings)")
            // Kept changes merged late are in the record's history like any other.
            let history = try JSONValue.parse(try l.run(["record", "history", m, "--json", "--offline"]).stdout)["history"]?.arrayValue ?? []
            #expect(Set(history.compactMap { $0["change"]?.stringValue }).count == 2, "\(l.name): the meeting's history \(history)")
        }
        // The hub's device list shows each laptop's schema.
        let devices = try hub.devices().arrayValue ?? []
        #expect(devices.count == 4 && devices.allSatisfy { $0["clientSchema"]?.intValue == 2 }, "\(devices)")
        // A SQLite hub on schema 2 moved to PostgreSQL keeps its schema, its new columns and kinds.
        if kind == .sqlite, StoreKind.available.contains(.postgres) {
            let pg = try await StoreKind.freshDatabase().description
            hub.kill(SIGTERM)
            let moved = try runCLI(["migrate", "--from", store, "--to", pg], binary: "fieldsync-hub")
            #expect(moved.status == 0, "\(moved.stderr)")
            let shown = try runCLI(["schema", "show", "--json", "--store", pg], binary: "fieldsync-hub")
            #expect((try? JSONValue.parse(shown.stdout))?["version"]?.intValue == 2, "\(shown.stdout) \(shown.stderr)")
            let moved2 = try HubProcess(db: pg, log: dir.file("pg.log"))
            let late = try Laptop(dir, "迁移后的笔记本", author: "孙主任")
            try late.enroll(moved2, scope: village1)
            #expect(try late.sync().status == 0)
            #expect(try late.state(village: village1) == want, "a laptop of the moved hub differs")
        }
    }

    /// A SQLite hub on schema 1 holding changes kept for schema 2 (a new field, a new kind) is
    /// moved to PostgreSQL: what it kept is still relayed by snapshot, and merges there once the
    /// administrator loads schema 2.
    @Test func aHubMovedToPostgreSQLKeepsWhatItKeptForANewerSchema() async throws {
        guard StoreKind.available.contains(.postgres) else { return }
        let dir = TempDir()
        let file = dir.file("hub.sqlite")
        let hub = try HubProcess(db: file, log: dir.file("hub.log"))
        let a = try Laptop(dir, "新版笔记本", author: "王芳")
        try a.enroll(hub, scope: village1)
        #expect(try a.run(["schema", "load", Self.v2]).status == 0)
        let m = try a.add("meeting", #"{"village":"520221105201","held_on":"2026-11-28","topic":"人居环境整治","attendees":56}"#)
        let d = try a.add("dispute", #"{"village":"520221105201","category":"邻里纠纷","parties":"张三与李四","summary":"宅基地边界","reported_on":"2026-11-20","status":"司法确认","mediation_fee_fen":5000}"#)
        #expect(try a.sync().status == 0)
        hub.kill(SIGTERM)
        let pg = try await StoreKind.freshDatabase().description
        let moved = try runCLI(["migrate", "--from", file, "--to", pg], binary: "fieldsync-hub")
        #expect(moved.status == 0, "\(moved.stderr)")
        let hub2 = try HubProcess(db: pg, log: dir.file("pg.log"))
        // A schema-1 laptop of the moved hub gets both by snapshot and keeps them.
        let old = try Laptop(dir, "旧版笔记本", author: "李明")
        try old.enroll(hub2, scope: village1)
        #expect(try old.sync().status == 0)
        #expect(try logged(old, m) == [2], "the moved hub's snapshot lacks the meeting it kept")
        #expect(try pending(old) == 2)
        // Schema 2 loaded at the moved hub: it merges what it kept, and a new laptop's snapshot has it all.
        #expect(try runCLI(["schema", "load", "--store", pg, Self.v2], binary: "fieldsync-hub").status == 0)
        try await Task.sleep(nanoseconds: 1_200_000_000)
        let late = try Laptop(dir, "新配发的笔记本", author: "陈书记")
        try late.enroll(hub2, scope: village1)
        for l in [old, late] { #expect(try l.sync().status == 0) }
        for l in [old, late] {
            let meetings = try JSONValue.parse(try l.run(["record", "list", "meeting", "--json"]).stdout).arrayValue ?? []
            #expect(meetings.count == 1 && meetings.first?["id"]?.stringValue == m && meetings.first?["fields"]?["attendees"]?.intValue == 56,
                    "\(l.name): \(meetings)")
            #expect(try record(l, d)?["fields"]?["mediation_fee_fen"]?.intValue == 5000, "\(l.name): the dispute's new field")
        }
        #expect(try late.state(village: village1) == (try a.state(village: village1)))
    }

    /// A hub on schema 1 keeps whole what a hostile laptop sends as changes of schema 2's new
    /// kind: one whose region field is not the division code its record id starts with, and one
    /// whose fields are out of order (not the canonical form). Laptops that know the kind set those
    /// aside from the old hub's pages and still sync; once everyone holds schema 2 they are set
    /// aside everywhere, never merged, and the honest meeting merges.
    @Test(arguments: StoreKind.available) func keptChangesTheNewSchemaRefusesAreSetAsideNotMerged(kind: StoreKind) async throws {
        let dir = TempDir()
        let store = kind == .sqlite ? dir.file("hub.sqlite") : try await StoreKind.freshDatabase().description
        let hub = try HubProcess(db: store, log: dir.file("hub.log"))
        // The hostile device enrols through the API with its own key.
        let key = SiteKey()
        let (_, code) = try hub.addDevice("可疑的笔记本", scope: village1)
        let enroll = EnrollRequest(code: code, site: key.site, siteName: "可疑", key: key.publicKey,
                                   proof: key.sign(EnrollRequest.possessionMessage(code: code, site: key.site)))
        let (status, enrolled) = try hubAPI(hub, "POST", "/v1/enroll", body: enroll.json.compactText, headers: [("Content-Type", "application/json")])
        #expect(status == 200, "\(enrolled)")
        let token = try #require(enrolled["token"]?.stringValue)
        func meeting(_ counter: Int64, village: String, reversed: Bool = false) -> (row: String, text: String) {
            let row = RecordID.make(kind: .visit, region: village1, nowMs: 1_763_784_000_000 + counter)
            var fields: [(String, JSONValue)] = [("village", .string(village)), ("held_on", "2026-11-28"), ("topic", .string("会议\(counter)")), ("attendees", .int(counter))]
            if reversed { fields.reverse() }
            fields = fields.map { ($0.0, ["value": $0.1]) }
            let o = JSONObject([("id", .string("\(key.site.hex):\(counter)")), ("kind", "meeting"), ("row", .string(row)),
                                ("hlc", .string("\(1_763_784_000_000 + counter)-0")), ("author", "可疑"), ("schema", 2), ("fields", .object(JSONObject(fields)))])
            return (row, JSONValue.object(o).compactText)
        }
        let honest = meeting(1, village: village1), moved = meeting(2, village: "520221105202"), shuffled = meeting(3, village: village1, reversed: true)
        let before = try Laptop(dir, "早注册的新版笔记本", author: "王芳")  // enrolled now, syncs after taking schema 2
        try before.enroll(hub, scope: village1)
        let (pushed, answer) = try hubAPI(hub, "POST", "/v1/changes", token: token,
                                          body: PushBody.text(site: key.site, siteName: "可疑", sites: [:], changeTexts: [honest.text, moved.text, shuffled.text]),
                                          headers: [("Content-Type", "application/json")])
        #expect(pushed == 200 && answer["results"]?.arrayValue?.allSatisfy { $0["status"] == "accepted" } == true, "\(answer)")
        // An old laptop keeps all three.
        let old = try Laptop(dir, "旧版笔记本", author: "李明")
        try old.enroll(hub, scope: village1)
        #expect(try old.sync().status == 0)
        #expect(try pending(old) == 3)
        // A laptop on schema 2 pulling from the old hub: two set aside, the honest one merged, the sync complete.
        #expect(try before.run(["schema", "load", Self.v2]).status == 0)
        let r = try before.sync()
        #expect(r.status == 0, "\(r.stdout) \(r.stderr)")
        #expect(try JSONValue.parse(try before.run(["status", "--json"]).stdout)["setAside"]?.intValue == 2)
        func meetings(_ l: Laptop) throws -> [String] {
            (try JSONValue.parse(try l.run(["record", "list", "meeting", "--json"]).stdout).arrayValue ?? []).compactMap { $0["id"]?.stringValue }
        }
        #expect(try meetings(before) == [honest.row])
        // The hub and the old laptop take schema 2: the same two set aside, nothing kept.
        #expect(try runCLI(["schema", "load", "--store", store, Self.v2], binary: "fieldsync-hub").status == 0)
        try await Task.sleep(nanoseconds: 1_200_000_000)
        let learnt = try old.sync()
        #expect(learnt.status == 0, "\(learnt.stderr)")
        #expect(try pending(old) == 0 && meetings(old) == [honest.row])
        let st = try JSONValue.parse(try old.run(["status", "--json"]).stdout)
        #expect(st["setAside"]?.intValue == 2 && st["keptForNewerSchema"]?.intValue == 0, "\(st)")
        // A new laptop's snapshot from the upgraded hub: the honest meeting only.
        let late = try Laptop(dir, "新配发的笔记本", author: "陈书记")
        try late.enroll(hub, scope: village1)
        #expect(try late.sync().status == 0)
        #expect(try meetings(late) == [honest.row])
        #expect(try late.state(village: village1) == (try before.state(village: village1)))
        #expect(try old.state(village: village1) == (try before.state(village: village1)))
    }

    @Test func aSchemaEditThatIsNotAdditiveIsRefusedWithTheReason() throws {
        let dir = TempDir()
        let a = try Laptop(dir, "笔记本", author: "王芳")
        var doc = try JSONValue.parse(try String(contentsOfFile: Self.v2, encoding: .utf8))
        func edited(_ change: (inout [JSONValue]) -> Void) throws -> String {
            var o = doc.objectValue!
            var kinds = o["kinds"]!.arrayValue!
            change(&kinds)
            o["kinds"] = .array(kinds)
            let path = dir.file("edited-\(UInt32.random(in: 0...UInt32.max)).json")
            try JSONValue.object(o).prettyText.write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }
        func field(_ kinds: inout [JSONValue], _ kind: Int, _ i: Int, _ change: (inout JSONObject) -> Void) {
            var k = kinds[kind].objectValue!
            var fs = k["fields"]!.arrayValue!
            var f = fs[i].objectValue!
            change(&f)
            fs[i] = .object(f)
            k["fields"] = .array(fs)
            kinds[kind] = .object(k)
        }
        let cases: [(String, String)] = [
            (try edited { field(&$0, 1, 2) { $0["type"] = "long_text"; $0["maxLength"] = nil } }, "its type cannot change"),
            (try edited { field(&$0, 1, 3) { $0["name"] = "summary_text" } }, "never renamed"),
            (try edited { field(&$0, 1, 7) { $0["values"] = ["受理", "调解中", "已化解"] } }, "choices can only be added at the end"),
            (try edited { field(&$0, 1, 2) { $0["maxLength"] = 10 } }, "maximum length can only grow"),
            (try edited { field(&$0, 1, 11) { $0["required"] = true } }, "cannot be required"),
            (try edited { $0.remove(at: 5) }, "kind 6 is household"),
            (try edited { field(&$0, 1, 0) { $0["digits"] = [9, 12] } }, "the field that places records cannot change"),
        ]
        for (path, reason) in cases {
            let r = try a.run(["schema", "load", path])
            #expect(r.status != 0 && r.stderr.contains(reason), "\(reason): \(r.stderr)")
        }
        // Nothing was taken: the laptop still holds schema 1, and the lawful document loads.
        #expect(try a.run(["schema", "--json"]).stdout.contains("\"version\": 1"))
        doc = .null
        #expect(try a.run(["schema", "load", Self.v2]).status == 0)
        #expect(try a.run(["schema", "--json"]).stdout.contains("\"version\": 2"))
    }

    func record(_ l: Laptop, _ id: String) throws -> JSONValue? {
        let all = try JSONValue.parse(try l.run(["record", "list", "dispute", "--deleted", "--json"]).stdout).arrayValue ?? []
        return all.first { $0["id"]?.stringValue == id }
    }

    /// Where the changes a laptop logged for record `row` came from (`fs_change.source`: 1 a
    /// bundle, 2 the hub), read straight from its file.
    func logged(_ l: Laptop, _ row: String) throws -> [Int] {
        let q = try DatabaseQueue(path: l.db)
        defer { try? q.close() }
        return try q.read { try Int.fetchAll($0, sql: "SELECT source FROM fs_change WHERE row = ? ORDER BY seq", arguments: [row]) }
    }

    /// Changes a laptop keeps for a schema it does not hold, read straight from its file.
    func pending(_ l: Laptop) throws -> Int {
        let q = try DatabaseQueue(path: l.db)
        defer { try? q.close() }
        return try q.read { try Int.fetchOne($0, sql: "SELECT count(*) FROM fs_pending") ?? 0 }
    }
}

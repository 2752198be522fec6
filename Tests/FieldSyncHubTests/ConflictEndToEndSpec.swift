import FieldSyncCore
@_spi(Hub) import FieldSyncReplica
import FieldSyncTransport
import Foundation
import Testing

/// Three laptops and a hub produce conflicts of every kind — concurrent edits to one field,
/// delete versus edit, and two conflicting resolutions — see them identically everywhere, settle
/// them from a laptop and from the hub, and after one round of syncs none is left anywhere;
/// with the hub on SQLite and on PostgreSQL alike.
@Suite(.serialized) struct ConflictEndToEndSpec {
    /// What a conflict list says, without local details (names of local files): id, type,
    /// candidates (change ids, values, who wins).
    func essence(_ list: JSONValue) -> [String] {
        (list.arrayValue ?? []).map { c in
            let cands = (c["candidates"]?.arrayValue ?? []).map { "\($0["change"]!.compactText)=\($0["value"]!.compactText)\($0["wins"] == true ? "*" : "")" }
            return "\(c["id"]!.compactText) \(c["type"]!.compactText) \(c["since"]!.compactText) " + cands.joined(separator: " ")
        }.sorted()
    }

    @Test(arguments: StoreKind.available) func everyKindOfConflictIsListedIdenticallyAndSettledEverywhereInOneRound(kind: StoreKind) async throws {
        let dir = TempDir()
        let store = try await E2EHub(kind, dir)
        let hub = try store.start(log: dir.file("hub.log"))
        let add = try runCLI(["supervisor", "add", "--store", hub.db, "--name", "陈主任", "--scope", township], env: ["FIELDSYNC_SUPERVISOR_PASSWORD": "correct horse"], binary: "fieldsync-hub")
        #expect(add.status == 0, "\(add.stderr)")
        let add2 = try runCLI(["supervisor", "add", "--store", hub.db, "--name", "刘科长", "--scope", township], env: ["FIELDSYNC_SUPERVISOR_PASSWORD": "battery staple"], binary: "fieldsync-hub")
        #expect(add2.status == 0)
        let a = try Laptop(dir, "王芳的笔记本", author: "王芳")
        let b = try Laptop(dir, "李明的笔记本", author: "李明")
        let c = try Laptop(dir, "乡里的笔记本", author: "陈静")
        try a.enroll(hub, scope: village1)
        try b.enroll(hub, scope: village1)
        try c.enroll(hub, scope: township)
        let d1 = try a.add("dispute", disputeJSON())
        let d2 = try a.add("dispute", disputeJSON(parties: "王五与赵六"))
        let d3 = try a.add("dispute", disputeJSON(parties: "刘某与村集体"))
        for l in [a, b, c] { #expect(try l.sync().status == 0) }
        // Concurrent edits to one field; a delete versus an edit; a conflict that two supervisors will settle differently.
        try a.edit(d1, #"{"status":"已化解"}"#)
        try b.edit(d1, #"{"status":"已上报"}"#)
        #expect(try c.run(["record", "delete", d2]).status == 0)
        try a.edit(d2, #"{"mediator_name":"王芳"}"#)
        try a.edit(d3, #"{"status":"已化解"}"#)
        try b.edit(d3, #"{"status":"未化解"}"#)
        for _ in 0..<2 { for l in [a, b, c] { #expect(try l.sync().status == 0) } }
        let s1 = try #require(hubAPI(hub, "POST", "/v1/sessions", body: #"{"name":"陈主任","password":"correct horse"}"#).1["token"]?.stringValue)
        let s2 = try #require(hubAPI(hub, "POST", "/v1/sessions", body: #"{"name":"刘科长","password":"battery staple"}"#).1["token"]?.stringValue)
        // Two supervisors settle d3 at the same time, differently.
        #expect(try hubAPI(hub, "POST", "/v1/conflicts/\(d3)/status/resolve", token: s1, body: #"{"value":"已化解"}"#).0 == 200)
        try runCLI(["conflicts", "resolve", "--db", a.db, "\(RecordID.short(d3))/status", "--value", #""未化解""#])
        for _ in 0..<2 { for l in [a, b, c] { #expect(try l.sync().status == 0) } }

        // Every replica and the hub list the same conflicts.
        let lists = try [a, b, c].map { try JSONValue.parse($0.run(["conflicts", "list", "--json"]).stdout) }
        let (status, hubList) = try hubAPI(hub, "GET", "/v1/conflicts", token: s2)
        #expect(status == 200)
        #expect(essence(lists[0]) == essence(lists[1]) && essence(lists[1]) == essence(lists[2]))
        #expect(essence(lists[0]) == essence(hubList), "the hub lists what the laptops list")
        let kinds = Set((hubList.arrayValue ?? []).map { "\($0["field"]!.stringValue!):\($0["type"]!.stringValue!)" })
        #expect(kinds == ["status:concurrent_values", "_record:delete_vs_edit"], "\(kinds)")
        #expect((hubList.arrayValue ?? []).filter { $0["resolutionsCompeting"] == true }.count == 1, "d3's two resolutions compete")

        // Settle: d1 from a laptop (b), d2 and d3 from the hub; meanwhile a edits another field of d1.
        let detail = try JSONValue.parse(b.run(["conflicts", "show", "\(RecordID.short(d1))/status", "--json"]).stdout)
        let losing = try #require(detail["candidates"]?.arrayValue?.first { $0["wins"] == false })
        let loser = try #require(losing["change"]?.stringValue)
        #expect(try b.run(["conflicts", "resolve", "\(RecordID.short(d1))/status", "--take", loser]).status == 0)
        try a.edit(d1, #"{"parties":"张三、李四及村民小组长"}"#)
        let d2detail = try hubAPI(hub, "GET", "/v1/conflicts/\(d2)/_record", token: s2).1
        let edit = try #require(d2detail["candidates"]?.arrayValue?.first { $0["field"] == "mediator_name" }?["change"]?.stringValue)
        #expect(try hubAPI(hub, "POST", "/v1/conflicts/\(d2)/_record/resolve", token: s2, body: #"{"take":"\#(edit)"}"#).0 == 200)
        #expect(try hubAPI(hub, "POST", "/v1/conflicts/\(d3)/status/resolve", token: s2, body: #"{"method":"newest"}"#).0 == 200)

        // One round: the laptop that resolved, then the others.
        for l in [b, a, c] { #expect(try l.sync().status == 0) }
        for l in [a, b, c] {
            let left = try JSONValue.parse(l.run(["conflicts", "list", "--json"]).stdout)
            #expect(left.arrayValue?.isEmpty == true, "\(l.name) still has \(left.compactText)")
        }
        #expect(try hubAPI(hub, "GET", "/v1/conflicts", token: s1).1.arrayValue?.isEmpty == true)
        // Nothing unrelated was undone: a's edit of d1's parties, made while b settled d1, is kept
        // everywhere (b, which synced before a in the round, gets it at its next sync).
        #expect(try b.sync().status == 0)
        for l in [a, b, c] {
            let r1 = try JSONValue.parse(l.run(["record", "get", d1, "--json"]).stdout)
            #expect(r1["fields"]?["parties"] == "张三、李四及村民小组长")
            #expect(r1["fields"]?["status"] == losing["value"], "d1 holds the value b chose")
            let r2 = try JSONValue.parse(l.run(["record", "get", d2, "--json"]).stdout)
            #expect(r2["deleted"] == false && r2["fields"]?["mediator_name"] == "王芳", "d2 undeleted with the edit kept")
        }
        // History shows who settled and how.
        let hist = try JSONValue.parse(c.run(["record", "history", d2, "--json"]).stdout)["history"]?.arrayValue ?? []
        #expect(hist.contains { $0["author"] == "刘科长" && ($0["note"]?.stringValue?.contains("恢复记录") ?? false) })
    }
}

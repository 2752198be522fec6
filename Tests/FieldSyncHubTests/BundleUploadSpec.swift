import FieldSyncCore
import FieldSyncTrust
@testable import FieldSyncHub
@_spi(Hub) import FieldSyncReplica
import FieldSyncTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

/// `PUT /v1/bundles/{name}` (Protocol/sync.md §8): a bundle uploaded by name lands in the
/// device's inbox and merges as a push; names that try to leave the inbox, and damaged bundles,
/// are refused precisely and change nothing (issue 5, item 5: path tricks in bundle names).
@Suite struct BundleUploadSpec {
    func bundle(_ site: SiteID, _ changes: [Change], trailer: Int? = nil, gzip: Bool = true) -> [UInt8] {
        let lines = [BundleFormat.headerLine(BundleHeader(site: site, siteName: "牛角村-王芳的笔记本", created: 1_763_784_000_000, sites: [site: "牛角村-王芳的笔记本"]))]
            + changes.map(ChangeCodec.canonicalText) + [BundleFormat.trailerLine(count: trailer ?? changes.count)]
        let text = Array((lines.joined(separator: "\n") + "\n").utf8)
        return gzip ? Gzip.compress(text) : text
    }

    /// Every file under the fixture's folder except the hub's own SQLite files (a PostgreSQL
    /// store writes none: its inbox is in the database).
    func files(_ f: StoreFixture) -> [String] {
        let root = f.dir.path
        let all = (FileManager.default.enumerator(atPath: root)?.allObjects as? [String]) ?? []
        return all.filter { !$0.hasPrefix("hub.sqlite") || $0.hasPrefix("hub.sqlite.bundles") }.sorted()
    }

    @Test(arguments: StoreKind.available) func aBundleUploadedByNameIsKeptInTheInboxAndMergedAsAPush(kind: StoreKind) async throws {
        let f = try await StoreFixture(kind)
        let key = SiteKey()
        let (device, token) = try await f.device("王芳", scope: township, key: key)
        let site = key.site
        let good = (1...30).map { creation(site, Int64($0)) }
        let outside = creation(site, 31, village: "520221106201")
        let file = bundle(site, good + [outside])
        let name = "牛角村-王芳-2026-11-20.bundle"
        let encoded = name.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
        try await f.app.test(.router) { client in
            try await client.execute(uri: "/v1/bundles/\(encoded)", method: .put, headers: bearer(token), body: ByteBuffer(bytes: file)) { r in
                #expect(r.status == .created)
                let b = body(r)
                #expect(b["bundle"]?.stringValue == name)
                #expect(b["stored"]?.stringValue == "\(device.id)/\(name)")
                #expect(b["accepted"]?.intValue == 30 && b["refused"]?.intValue == 1 && b["changes"]?.intValue == 31)
                let refused = b["results"]?.arrayValue?.filter { $0["status"]?.stringValue == "refused" } ?? []
                #expect(refused.count == 1 && refused.first?["code"]?.stringValue == "out_of_scope")
            }
            let kept = "\(device.id)/\(name)"
            #expect(try await f.inbox()[kept] == file, "the inbox holds the file byte for byte")
            #expect(try await f.allRecords(.dispute).count == 30)
            let before = try await f.fingerprint()
            // The same upload again (a retry after a cut link): harmless.
            try await f.app.test(.router) { client in
                try await client.execute(uri: "/v1/bundles/\(encoded)", method: .put, headers: bearer(token), body: ByteBuffer(bytes: file)) { r in
                    #expect(r.status == .ok)
                    #expect(body(r)["again"] == .bool(true) && body(r)["accepted"]?.intValue == 0 && body(r)["duplicate"]?.intValue == 30)
                }
            }
            #expect(try await f.fingerprint() == before)
            // The same name with other content: 409, nothing merged, the first file kept.
            let other = bundle(site, [creation(site, 40)])
            try await client.execute(uri: "/v1/bundles/\(encoded)", method: .put, headers: bearer(token), body: ByteBuffer(bytes: other)) { r in
                #expect(r.status == .conflict)
                #expect(body(r)["error"]?["code"] == "name_taken")
            }
            #expect(try await f.fingerprint() == before)
            #expect(try await f.inbox()[kept] == file)
        }
    }

    @Test(arguments: StoreKind.available) func namesThatTryToLeaveTheInboxAreRefusedAndNothingIsWritten(kind: StoreKind) async throws {
        let f = try await StoreFixture(kind)
        let key = SiteKey()
        let (_, token) = try await f.device("王芳", scope: township, key: key)
        let site = key.site
        let file = bundle(site, [creation(site, 1)])
        let before = try await f.fingerprint()
        let filesBefore = files(f)
        // Each is refused by the name check (400 bad_name), naming what is wrong.
        let badNames: [(String, String)] = [
            ("..%2F..%2Fetc%2Fpasswd", "\"/\""), ("%2E%2E%2F%2E%2E%2Fhub.sqlite", "\"/\""), ("%2Fetc%2Fpasswd", "\"/\""),
            ("..", "start with"), ("%2e%2e", "start with"), (".hidden", "start with"), ("a..b", "\"..\""),
            ("a%5Cb", "\"\\\""), ("..%5C..%5Cwindows", "\"\\\""), ("a%00b", "U+0000"), ("a%0Ab", "U+000A"), ("a%0D%0Ab", "U+000D"),
            ("a%20b", "\" \""), ("a%3Ab", "\":\""), ("%E4%B8", "UTF-8"), ("%zz", "percent"), ("a%2", "percent"), ("%C0%AF", "UTF-8"),
            ("%E2%80%AEtxt.exe", "U+202E"), (String(repeating: "a", count: 101), "longer than 100"),
            (String(repeating: "%E6%9D%91", count: 101), "longer than 100"),
        ]
        try await f.app.test(.router) { client in
            for (raw, why) in badNames {
                try await client.execute(uri: "/v1/bundles/\(raw)", method: .put, headers: bearer(token), body: ByteBuffer(bytes: file)) { r in
                    #expect(r.status == .badRequest, "\(raw)")
                    #expect(body(r)["error"]?["code"] == "bad_name", "\(raw)")
                    let message = body(r)["error"]?["message"]?.stringValue ?? ""
                    #expect(message.contains(why), "\(raw): \(message)")
                }
            }
            // Unencoded separators never reach the route: another path, 404.
            for raw in ["../../etc/passwd", "a/b", "x/../../hub.sqlite"] {
                try await client.execute(uri: "/v1/bundles/\(raw)", method: .put, headers: bearer(token), body: ByteBuffer(bytes: file)) { r in
                    #expect(r.status == .notFound, "\(raw)")
                }
            }
            // Letters of any script, digits and ._- are fine; a name of exactly 100 is too.
            for ok in ["%E7%89%9B%E8%A7%92%E6%9D%91_2026-11-20.bundle", "Ni%C3%BAjiao.v2", String(repeating: "b", count: 100)] {
                try await client.execute(uri: "/v1/bundles/\(ok)", method: .put, headers: bearer(token), body: ByteBuffer(bytes: file)) { r in
                    #expect(r.status == .created || r.status == .ok, "\(ok): \(body(r))")
                }
            }
        }
        let added = Set(files(f)).subtracting(filesBefore)
        #expect(added.allSatisfy { $0 == "hub.sqlite.bundles" || $0.hasPrefix("hub.sqlite.bundles/") }, "files appeared outside the inbox: \(added.sorted())")
        if kind == .sqlite { #expect(added.filter { !$0.hasSuffix("/") }.count >= 3) } else { #expect(added.isEmpty, "\(added.sorted())") }
        // The inbox holds the three good uploads and nothing else.
        let names = ["牛角村_2026-11-20.bundle", "Niújiao.v2", String(repeating: "b", count: 100)]
        #expect(try await f.inbox().keys.map { String($0.split(separator: "/", maxSplits: 1).last ?? "") }.sorted() == names.sorted())
        // Only the three good uploads changed the store (one change, merged once).
        #expect(try await f.fingerprint() != before)
        #expect(try await f.allRecords(.dispute).count == 1)
        for name in names {
            #expect(try await BundleUploadSpec.exists(f, name), "\(name) kept")
        }
    }

    static func exists(_ f: StoreFixture, _ name: String) async throws -> Bool {
        try await f.inbox().keys.contains { $0.hasSuffix("/" + name) }
    }

    @Test(arguments: StoreKind.available) func aDamagedBundleIsRefusedWithItsLineAndNothingIsKept(kind: StoreKind) async throws {
        let f = try await StoreFixture(kind)
        let key = SiteKey()
        let (_, token) = try await f.device("王芳", scope: township, key: key)
        let site = key.site
        let changes = (1...5).map { creation(site, Int64($0)) }
        let whole = bundle(site, changes)
        let lines = String(decoding: bundle(site, changes, gzip: false), as: UTF8.self).split(separator: "\n").map(String.init)
        var broken = lines
        broken[2] = "{\"id\": oops"
        let badLine = Array((broken.joined(separator: "\n") + "\n").utf8)
        let cases: [(String, [UInt8], HTTPResponse.Status, String, String)] = [
            ("truncated", Array(whole.prefix(whole.count - 12)), .unprocessableContent, "bad_bundle", "gzip"),
            ("no-end", Gzip.compress(Array((lines.dropLast().joined(separator: "\n") + "\n").utf8)), .unprocessableContent, "bad_bundle", "no end line"),
            ("bad-line", badLine, .unprocessableContent, "bad_bundle", "line 3"),
            ("short-count", bundle(site, changes, trailer: 7), .unprocessableContent, "bad_bundle", "counts 7"),
            ("not-a-bundle", Array("hello".utf8), .unprocessableContent, "bad_bundle", "line 1"),
            ("empty", [], .unprocessableContent, "bad_bundle", "empty"),
            ("bomb", Gzip.compress([UInt8](repeating: 0x20, count: 40 << 20)), .contentTooLarge, "too_large", "more than"),
        ]
        let before = try await f.fingerprint()
        try await f.app.test(.router) { client in
            for (name, bytes, status, code, why) in cases {
                try await client.execute(uri: "/v1/bundles/\(name)", method: .put, headers: bearer(token), body: ByteBuffer(bytes: bytes)) { r in
                    #expect(r.status == status, "\(name)")
                    #expect(body(r)["error"]?["code"]?.stringValue == code, "\(name)")
                    #expect(body(r)["error"]?["message"]?.stringValue?.contains(why) == true, "\(name): \(body(r))")
                }
                #expect(try await !BundleUploadSpec.exists(f, name), "\(name) must not be kept")
            }
            try await client.execute(uri: "/v1/bundles/x", method: .put, body: ByteBuffer(bytes: whole)) { r in
                #expect(r.status == .unauthorized)
            }
            try await client.execute(uri: "/v1/bundles/x", method: .post, headers: bearer(token), body: ByteBuffer(bytes: whole)) { r in
                #expect(r.status == .methodNotAllowed && r.headers[.allow] == "PUT")
            }
        }
        #expect(try await f.fingerprint() == before)
    }

    /// The CLI end to end: a laptop exports a bundle, `fieldsync bundle upload` sends it to a real
    /// hub process over libcurl, and another laptop of the township pulls the records.
    @Test func fieldsyncBundleUploadSendsAnExportedFile() throws {
        let dir = TempDir("bundle-upload-cli")
        let hub = try HubProcess(db: dir.file("hub.sqlite"), log: dir.file("hub.log"))
        defer { hub.kill() }
        let a = try Laptop(dir, "a", author: "王芳")
        try a.enroll(hub, scope: township)
        let id = try a.add("dispute", #"{"village":"520221105201","category":"邻里纠纷","parties":"张某与李某","summary":"宅基地边界😀","reported_on":"2026-11-20","status":"受理"}"#)
        let file = dir.file("牛角村-王芳.bundle")
        #expect(try a.run(["bundle", "export", file]).status == 0)
        let up = try a.run(["bundle", "upload", file, "--json"])
        try #require(up.status == 0, "\(up.stderr)")
        let answer = try JSONValue.parse(bytes: Array(up.stdout.utf8))
        #expect(answer["bundle"]?.stringValue == "牛角村-王芳.bundle" && answer["accepted"]?.intValue ?? 0 >= 1 && answer["refused"]?.intValue == 0)
        let again = try a.run(["bundle", "upload", file])
        #expect(again.status == 0 && again.stdout.contains("此前已上传过"), "\(again.stdout)\(again.stderr)")
        let bad = try a.run(["bundle", "upload", file, "--name", "../hub.sqlite"])
        #expect(bad.status == 65 && bad.stderr.contains("bad_name"), "\(bad.stderr)")
        let b = try Laptop(dir, "b", author: "李明")
        try b.enroll(hub, scope: township)
        #expect(try b.sync().status == 0)
        #expect(try b.run(["record", "get", id, "--json"]).stdout.contains("宅基地边界😀"))
    }
}

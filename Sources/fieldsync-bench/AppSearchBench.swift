import FieldSyncCore
import FieldSyncReplica
import Foundation
import GRDB

/// The app's list search on a laptop holding N visits (issue 11: 50,000 records, a search within
/// 300 ms): the query the list page runs (`Replica.browse`: the count and one page of 50), for
/// typical searches, against a full scan of the visit table in the same run.
enum AppSearchBench {
    static let words = ["春耕", "务工", "合作社", "低保", "通组路", "医疗", "茶叶", "分红"]

    static func run(dir: String, records n: Int) throws {
        let r = try Replica.create(path: "\(dir)/search.sqlite", siteName: "bench", author: "王芳")
        var g = SystemRandomNumberGenerator()
        var made = 0
        while made < n {
            let batch = try (made..<min(n, made + 5000)).map { i -> NewRecord in
                let note = (0..<3).map { _ in words[Int.random(in: 0..<words.count, using: &g)] }.joined(separator: "，")
                return try r.check(.visit, [
                    "village": .string("5202211052\(String(format: "%02d", i % 30 + 1))"), "household_head": .string("户主\(i)号"),
                    "cadre_name": .string(i % 7 == 0 ? "李明" : "王芳"), "visit_date": .string("2026-\(String(format: "%02d", i % 12 + 1))-\(String(format: "%02d", i % 28 + 1))"),
                    "visit_kind": .string(Enumerations.visitKinds[i % 5]), "notes": .string("走访了解\(note)情况，群众反映问题已记录。第\(i)次。"),
                ], creating: true)
            }
            _ = try r.insert(batch)
            made += batch.count
        }
        func median(_ body: () throws -> Void) rethrows -> Double {
            var t: [Double] = []
            for _ in 0..<9 {
                let s = DispatchTime.now().uptimeNanoseconds
                try body()
                t.append(Double(DispatchTime.now().uptimeNanoseconds - s) / 1e6)
            }
            return t.sorted()[4]
        }
        let plain = try DatabaseQueue(path: "\(dir)/search.sqlite")
        let scan = try median { _ = try plain.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM visit WHERE notes IS NOT NULL AND length(notes) > 0") } }
        print("| \(n) visits on one laptop: a full scan of the visit table (baseline) | \(String(format: "%.1f ms", scan)) |")
        var cases: [(String, RecordQuery)] = []
        var q = RecordQuery(kind: .visit, text: "合作社")
        cases.append(("search a word in the notes (合作社, about 3 in 8 match)", q))
        q = RecordQuery(kind: .visit, text: "户主4242号")
        cases.append(("search a household head (户主4242号, one match)", q))
        q = RecordQuery(kind: .visit, text: "李明")
        q.equals = [("visit_kind", .text("院坝会"))]
        q.dateField = "visit_date"; q.from = "2026-03-01"; q.to = "2026-06-30"
        cases.append(("search 李明 among 院坝会 of March–June", q))
        q = RecordQuery(kind: .visit, villagePrefix: "520221105207", text: "医疗")
        q.sort = "visit_date"; q.descending = true; q.offset = 100
        cases.append(("one village, 医疗, newest first, page 3", q))
        for (label, query) in cases {
            let t = try median { _ = try r.browse(query) }
            print("| app list search: \(label) | \(String(format: "%.1f ms", t)) (\(String(format: "%.2f", t / scan))× the scan; target ≤ 300 ms) |")
        }
    }
}

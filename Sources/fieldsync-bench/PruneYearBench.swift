import FieldSyncCore
@_spi(Hub) import FieldSyncReplica
import Foundation
import GRDB

/// A village's year on one laptop (issue 12 point 4), twice from the same seed: once keeping
/// every change's text, once pruning superseded history older than 90 days each day (as a sync
/// does). Each day: new visits, follow-up edits of recent visits, dispute status changes,
/// project progress notes and spending. Both files are vacuumed before they are measured, and
/// must hold the same records, values and conflicts.
enum PruneYearBench {
    static let day: Int64 = 86_400_000

    static func run(dir: String, days: Int) throws {
        var sizes: [Bool: (bytes: Int, changes: Int, pruned: Int, snapshot: [String])] = [:]
        for prune in [false, true] {
            let path = "\(dir)/year-\(prune ? "pruned" : "kept").sqlite"
            let r = try Replica.create(path: path, siteName: "牛角村笔记本", author: "王芳")
            var now: Int64 = 1_767_225_600_000  // 2026-01-01 UTC
            r.wallClock = { now }
            var g = SplitMix64Bench(seed: 2026)  // both runs make the same year
            var visits: [String] = [], disputes: [String] = [], projects: [String] = []
            var pruned = 0
            for d in 0..<days {
                now = 1_767_225_600_000 + Int64(d) * day + 8 * 3_600_000
                let date = UTCTime.iso(now).prefix(10)
                for i in 0..<8 {
                    visits.append(try r.add(.visit, [
                        "village": "520221105201", "household_head": .string("户主\(d * 8 + i)号"), "cadre_name": "王芳",
                        "visit_date": .string(String(date)), "visit_kind": .string(Enumerations.visitKinds[i % 5]),
                        "notes": .string("走访了解春耕、务工和医疗报销情况，群众反映通组路雨天难走，已记录并向村委会反映。第\(d)天第\(i)户。"),
                    ]))
                }
                for v in visits.suffix(40).shuffled(using: &g).prefix(4) {
                    try r.edit(v, ["follow_up": .string("第\(d)天回访：已联系乡镇相关部门，约定下周答复。"), "follow_up_done": .bool(g.next() % 3 == 0)])
                }
                if d % 3 == 0 {
                    disputes.append(try r.add(.dispute, [
                        "village": "520221105201", "category": "邻里纠纷", "parties": .string("张\(d)与李\(d)"),
                        "summary": "因宅基地边界发生争执，双方多次协商未果。", "reported_on": .string(String(date)), "status": "受理",
                    ]))
                }
                for x in disputes.suffix(10).shuffled(using: &g).prefix(2) {
                    try r.edit(x, ["status": .string(Enumerations.disputeStatuses[Int(g.next() % UInt64(Enumerations.disputeStatuses.count))]),
                                   "mediator_name": .string(["王芳", "李明", "陈书记"][Int(g.next() % 3)])])
                }
                if d % 30 == 0 {
                    projects.append(try r.add(.project, ["village": "520221105201", "name": .string("第\(d / 30 + 1)个项目"), "project_kind": "产业发展",
                                                         "status": "在建", "budget_fen": 5_000_000]))
                }
                for p in projects.suffix(4) {
                    try r.edit(p, ["progress_notes": .string("第\(d)天：施工队进场，完成工程量约\(d % 100)%。"), "spent_fen": .int(Int64(d) * 12_345)])
                }
                if prune { pruned += try r.pruneHistory(windowMs: 90 * day, requireAcknowledged: false).pruned }
            }
            let changes = try r.changes().count
            var snap: [String] = []
            for k in RecordKind.allCases {
                for rec in try r.records(k, includeDeleted: true) { snap.append("\(k.rawValue) \(rec.values.map { "\($0)" }.joined(separator: ";")) \(rec.conflicts)") }
            }
            try r.database.writeWithoutTransaction { db in
                try db.checkpoint(.truncate)
                try db.execute(sql: "VACUUM")
            }
            let bytes = ((try? FileManager.default.attributesOfItem(atPath: path)[.size]) as? NSNumber)?.intValue ?? 0
            sizes[prune] = (bytes, changes, pruned, snap.sorted())
        }
        let kept = sizes[false]!, pruned = sizes[true]!
        guard kept.snapshot == pruned.snapshot else {
            FileHandle.standardError.write(Data("fieldsync-bench --prune-year: the pruned laptop's records differ from the other's\n".utf8))
            exit(1)
        }
        let mb = { (b: Int) in String(format: "%.2f MB", Double(b) / 1_048_576) }
        print("| \(days) days of one village's work | file size | changes with text | records |")
        print("|---|---|---|---|")
        print("| every change kept | \(mb(kept.bytes)) | \(kept.changes) | \(kept.snapshot.count) |")
        print("| pruned daily, 90-day window | \(mb(pruned.bytes)) (\(String(format: "%.2f", Double(pruned.bytes) / Double(kept.bytes)))×) | \(pruned.changes) (\(pruned.pruned) pruned) | \(pruned.snapshot.count), identical |")
    }
}

import FieldSyncCore
@testable import FieldSyncReplica
import Foundation
import Testing

/// Seeing a conflict (candidates, base, winner and why), settling it every way, and what a
/// settlement does and does not do.
@Suite struct ConflictInspectionSpec {
    /// Two replicas that both saw a dispute at 调解中, then set its status concurrently.
    func statusConflict(_ dir: TempDir) throws -> (Replica, Replica, String) {
        let a = try makeReplica(dir, "a", author: "王芳"), b = try makeReplica(dir, "b", author: "李明")
        let id = try a.add(.dispute, disputeInput(status: "受理"))
        try a.edit(id, ["status": "调解中"])
        try sync(a, b)
        try a.edit(id, ["status": "已化解"])
        try b.edit(id, ["status": "已上报"])
        try sync(a, b)
        try sync(b, a)
        return (a, b, id)
    }

    @Test func showNamesTheCandidatesTheirBaseAndWhyTheWinnerWins() throws {
        let dir = TempDir()
        let (a, _, id) = try statusConflict(dir)
        let d = try a.conflictDetail("\(RecordID.short(id))/status")
        #expect(d.info.candidates.count == 2)
        #expect(Set(d.info.candidates.map(\.author)) == ["王芳", "李明"])
        #expect(Set(d.info.candidates.map(\.site)) == ["a", "b"])
        #expect(Set(d.info.candidates.compactMap(\.value.stringValue)) == ["已化解", "已上报"])
        #expect(d.info.candidates.filter(\.wins).count == 1)
        // The base is what both had seen: 调解中 by 王芳 (not 受理, which 调解中 replaced).
        #expect(d.base?.map(\.value) == ["调解中"])
        #expect(d.base?.first?.author == "王芳")
        let w = d.info.candidates.first(where: \.wins)!, l = d.info.candidates.first { !$0.wins }!
        #expect((w.hlc, w.change.site) > (l.hlc, l.change.site))
        // The explanation names the rule that decided: the later clock reading, or on a tie the larger site id.
        if w.hlc.millis != l.hlc.millis {
            #expect(d.why.contains("晚于其他候选"))
        } else {
            #expect(d.why.contains("站点编号较大") && d.why.contains(w.change.site.hex))
        }
    }

    @Test func resolvingIsAnOrdinaryChangeThatSettlesItEverywhere() throws {
        let dir = TempDir()
        let (a, b, id) = try statusConflict(dir)
        let loser = try a.conflictDetail("\(id)/status").info.candidates.first { !$0.wins }!
        let res = try a.resolveConflict("\(id)/status", .take(loser.change), note: "电话核实")
        #expect(res.conflictsSettled == ["status"])
        #expect(try a.record(id)["status"] == .text(loser.value.stringValue!))
        try sync(a, b)
        #expect(try b.conflicts().isEmpty)
        #expect(try b.record(id)["status"] == .text(loser.value.stringValue!))
        // History says who settled it, how, and which writes it settled.
        let (_, h) = try b.history(id)
        let last = try #require(h.last { $0.field == "status" })
        #expect(last.author == "王芳" && last.status == .current && last.note?.contains("电话核实") == true)
        let change = try allChanges(b).last!
        #expect(change.resolves?.count == 2, "the settling change names the two writes it settled")
    }

    @Test func everyWayOfSettlingGivesTheExpectedValue() throws {
        for how in [Resolution.newest, .oldest, .value("未化解")] {
            let dir = TempDir("settle")
            let (a, _, id) = try statusConflict(dir)
            let cands = try a.conflictDetail("\(id)/status").info.candidates
            let newest = cands.max { ($0.hlc, $0.change.site) < ($1.hlc, $1.change.site) }!.value
            let oldest = cands.min { ($0.hlc, $0.change.site) < ($1.hlc, $1.change.site) }!.value
            try a.resolveConflict("\(id)/status", how)
            let want: JSONValue = how == .newest ? newest : how == .oldest ? oldest : "未化解"
            #expect(try a.record(id)["status"] == .text(want.stringValue!), "\(how)")
            #expect(try a.conflicts().isEmpty)
        }
    }

    @Test func aBadResolutionIsRefusedAndChangesNothing() throws {
        let dir = TempDir()
        let (a, _, id) = try statusConflict(dir)
        let before = try fingerprint(a.path)
        #expect(throws: ReplicaError.self) { try a.resolveConflict("\(id)/status", .value("乱写")) }
        #expect(throws: ReplicaError.self) { try a.resolveConflict("\(id)/status", .take(ChangeID(site: SiteID(raw: 9), counter: 9))) }
        #expect(throws: ReplicaError.self) { try a.resolveConflict("\(id)/parties", .newest) }
        #expect(try fingerprint(a.path) == before)
    }

    @Test func aResolutionNeverLosesAnUnrelatedEditMadeMeanwhile() throws {
        let dir = TempDir()
        let (a, b, id) = try statusConflict(dir)
        // While a settles the status, b (not having seen the settlement) edits another field.
        try a.resolveConflict("\(id)/status", .value("已化解"))
        try b.edit(id, ["resolution": "双方签订协议"])
        try sync(a, b)
        try sync(b, a)
        for r in [a, b] {
            let rec = try r.record(id)
            #expect(rec["status"] == .text("已化解"))
            #expect(rec["resolution"] == .text("双方签订协议"))
            #expect(rec.conflicts.isEmpty)
        }
    }

    @Test func twoConflictingResolutionsAreThemselvesAConflict() throws {
        let dir = TempDir()
        let (a, b, id) = try statusConflict(dir)
        try a.resolveConflict("\(id)/status", .value("已化解"))
        try b.resolveConflict("\(id)/status", .value("未化解"))
        try sync(a, b)
        try sync(b, a)
        for r in [a, b] {
            let c = try #require(try r.conflicts().first)
            #expect(c.field == "status")
            let allResolutions = c.candidates.allSatisfy { $0.isResolution }
            #expect(allResolutions, "both competing writes are resolutions")
            #expect(Set(c.candidates.compactMap(\.value.stringValue)) == ["已化解", "未化解"])
        }
    }

    @Test func deleteVersusEditIsSettledByDeletingAgainOrUndeleting() throws {
        for keep in [true, false] {
            let dir = TempDir("dve")
            let a = try makeReplica(dir, "a", author: "王芳"), b = try makeReplica(dir, "b", author: "李明")
            let id = try a.add(.dispute, disputeInput())
            try sync(a, b)
            try a.delete(id)
            try b.edit(id, ["mediator_name": "陈书记"])
            try sync(a, b)
            try sync(b, a)
            let d = try a.conflictDetail("\(id)/\(RowState.recordConflictField)")
            #expect(d.info.type == .deleteVersusEdit)
            let del = try #require(d.info.candidates.first { $0.field == RowState.deletedField })
            let edit = try #require(d.info.candidates.first { $0.field == "mediator_name" })
            try a.resolveConflict("\(id)/\(RowState.recordConflictField)", .take(keep ? del.change : edit.change))
            try sync(a, b)
            for r in [a, b] {
                let rec = try r.record(id)
                #expect(rec.deleted == keep)
                #expect(rec["mediator_name"] == .text("陈书记"), "the edit's value is kept either way")
                #expect(rec.conflicts.isEmpty)
            }
        }
    }

    @Test func filtersAndTheSummaryCountWhatIsOpen() throws {
        let dir = TempDir()
        let a = try makeReplica(dir, "a", author: "王芳"), b = try makeReplica(dir, "b", author: "李明")
        var ids: [String] = []
        for v in [village1, village1, village2] { ids.append(try a.add(.dispute, disputeInput(v))) }
        let p = try a.add(.project, ["village": .string(village2), "name": "茶厂", "project_kind": "产业发展", "status": "在建"])
        try sync(a, b)
        for id in ids { try a.edit(id, ["status": "已化解"]); try b.edit(id, ["status": "已上报"]) }
        try a.edit(ids[0], ["parties": "甲"]); try b.edit(ids[0], ["parties": "乙"])
        try a.edit(p, ["spent_fen": 100]); try b.edit(p, ["spent_fen": 200])
        try sync(a, b)
        let all = try b.conflicts(matching: ConflictFilter())
        #expect(all.count == 5)
        #expect(try b.conflicts(matching: ConflictFilter(kind: .project)).count == 1)
        #expect(try b.conflicts(matching: ConflictFilter(villagePrefix: village2)).count == 2)
        #expect(try b.conflicts(matching: ConflictFilter(field: "status")).count == 3)
        #expect(try b.conflicts(matching: ConflictFilter(author: "李明")).count == 5)
        #expect(try b.conflicts(matching: ConflictFilter(author: "无此人")).isEmpty)
        #expect(try b.conflicts(matching: ConflictFilter(olderThan: 86_400_000)).isEmpty)
        #expect(try b.conflicts(matching: ConflictFilter(newerThan: 86_400_000)).count == 5)
        let s = try b.conflictSummary()
        #expect(s.total == 5)
        #expect(s.byKind.map(\.count) == [4, 1] && s.byKind.map(\.kind) == [.dispute, .project])
        #expect(Dictionary(uniqueKeysWithValues: s.byVillage.map { ($0.village, $0.count) }) == [village1: 3, village2: 2])
        #expect(s.byField.first?.field == "status" && s.byField.first?.count == 3)
        #expect(s.ageBuckets.first?.count == 5)
        // Settling many at once: every dispute status, newest wins.
        let done = try b.resolveConflicts(matching: ConflictFilter(kind: .dispute, field: "status"), .newest)
        #expect(done.count == 3)
        #expect(try b.conflicts().count == 2)
    }
}

import FieldSyncPresentation

@Suite struct ConflictPickSpec {
    @Test func anEditOfSeveralFieldsIsOneCandidateByChangeID() throws {
        let dir = TempDir()
        let a = try makeReplica(dir, "a", author: "王芳"), b = try makeReplica(dir, "b", author: "李明")
        let id = try a.add(.dispute, disputeInput())
        try sync(a, b)
        try a.delete(id)
        try b.edit(id, ["mediator_name": "陈书记", "resolution": "已协商"])
        try sync(b, a)
        let d = try a.conflictDetail("\(id)/\(RowState.recordConflictField)")
        let edit = try #require(d.info.candidates.first { $0.field == "mediator_name" }).change
        #expect(d.info.candidates.filter { $0.change == edit }.count == 2, "one change, two fields")
        #expect(try ConflictViews.pick(edit.description, in: d.info) == edit)
        #expect(try ConflictViews.pick("1", in: d.info) == d.info.candidates[0].change)
        // A number out of range is refused, whatever hex digits the change ids begin with.
        for n in ["0", "4", "9", "99"] { #expect(throws: ReplicaError.self, "\(n)") { try ConflictViews.pick(n, in: d.info) } }
        #expect(throws: ReplicaError.self) { try ConflictViews.pick(String(edit.description.prefix(3)), in: d.info) }
        #expect(try ConflictViews.pick(String(edit.description.prefix(8)), in: d.info) == edit)
    }
}

import FieldSyncCore
@testable import FieldSyncReplica
import Foundation
import Testing

/// A laptop whose clock is a year fast: its edits are never lost, it cannot drag other
/// replicas' clocks into the future, and it does not win edits made after someone saw its own.
@Suite struct ClockSkewSpec {
    static let year: Int64 = 365 * 86_400_000

    @Test func aYearFastLaptopNeitherWinsEveryLaterEditNorLosesItsOwn() throws {
        let dir = TempDir()
        let now = ManualClock()
        let fast = ManualClock(now.ms + Self.year)
        let a = try makeReplica(dir, "a", author: "王芳", clock: now)
        let f = try makeReplica(dir, "f", author: "李明", clock: fast)
        let id = try a.add(.dispute, disputeInput())
        try sync(a, f)

        // F (a year ahead) edits; A receives it.
        now.advance(); fast.advance()
        try f.edit(id, ["status": "调解中"])
        let report = try sync(f, a)
        #expect(report.clockAhead.count == 1)
        let ahead = try #require(report.clockAhead.values.first)
        #expect(ahead > Self.year - 3_600_000 && ahead < Self.year + 3_600_000)

        // A's clock did not jump a year: its next edit is stamped within the drift bound.
        now.advance()
        try a.edit(id, ["status": "已化解"])
        let mine = try allChanges(a).last!
        #expect(mine.hlc.millis <= now.ms + a.maxDrift)
        #expect(mine.hlc < (try allChanges(f).last!.hlc), "A's later edit carries an earlier clock reading than F's")

        // Yet A's edit, made after seeing F's, wins everywhere, with no conflict.
        try sync(a, f)
        for r in [a, f] {
            let rec = try r.record(id)
            #expect(rec["status"] == .text("已化解"))
            #expect(rec.conflicts.isEmpty)
        }
        // F's edit is not lost: it is in the history on both sides.
        for r in [a, f] {
            let (_, h) = try r.history(id)
            #expect(h.contains { $0.field == "status" && $0.value == "调解中" && $0.author == "李明" && $0.status == .superseded })
        }
        #expect(try a.status().changesFromTheFuture == 1)
    }

    @Test func concurrentEditsWithAFastClockAreShownAndSettledNotLost() throws {
        let dir = TempDir()
        let now = ManualClock()
        let fast = ManualClock(now.ms + Self.year)
        let a = try makeReplica(dir, "a", author: "王芳", clock: now)
        let f = try makeReplica(dir, "f", author: "李明", clock: fast)
        let id = try a.add(.dispute, disputeInput())
        try sync(a, f)
        try f.edit(id, ["parties": "张三与李四（F 的修改）"])
        try a.edit(id, ["parties": "张三与李四（A 的修改）"])
        try sync(f, a)
        try sync(a, f)
        // Neither value is lost; both replicas show the same conflict and the same winner.
        for r in [a, f] {
            let reg = try #require(try r.rowState(.dispute, id)?["parties"])
            #expect(Set(reg.entries.map(\.value)) == [.text("张三与李四（F 的修改）"), .text("张三与李四（A 的修改）")])
            #expect(try r.record(id).conflicts == ["parties"])
        }
        #expect(try a.record(id)["parties"] == f.record(id)["parties"])
        // A settles it; the settling wins on both sides although F's clock reads a year later.
        now.advance()
        try a.edit(id, ["parties": "张三、李四及王五"])
        try sync(a, f)
        for r in [a, f] {
            #expect(try r.record(id)["parties"] == .text("张三、李四及王五"))
            #expect(try r.conflicts().isEmpty)
        }
    }

    @Test func aClockThatGoesBackwardsStillStampsIncreasingReadings() throws {
        let dir = TempDir()
        let c = ManualClock()
        let a = try makeReplica(dir, "a", clock: c)
        let id = try a.add(.dispute, disputeInput())
        c.advance(-86_400_000)  // the battery died and the clock reset a day back
        try a.edit(id, ["status": "调解中"])
        let cs = try allChanges(a)
        #expect(cs[1].hlc > cs[0].hlc)
    }
}

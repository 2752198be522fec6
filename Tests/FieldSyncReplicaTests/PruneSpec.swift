import FieldSyncCore
@testable import FieldSyncReplica
import Foundation
import GRDB
import Testing

/// Bounded storage (issue 12 point 4): a laptop drops the text of superseded history older than
/// its window once the hub has it, and keeps current values, conflict candidates, deletions and
/// who-changed-what-when. (The convergence property prunes at random points too.)
@Suite struct PruneSpec {
    static let day: Int64 = 86_400_000

    @Test func oldSupersededHistoryIsPrunedAndNothingElse() throws {
        let dir = TempDir(#function)
        let clock = ManualClock(1_763_784_000_000)
        let a = try makeReplica(dir, "a", author: "王芳", clock: clock)
        let b = try makeReplica(dir, "b", author: "李明", clock: clock)
        let d = try a.add(.dispute, disputeInput(status: "受理"))
        let gone = try a.add(.dispute, disputeInput(parties: "后来删掉的"))
        for s in ["调解中", "已上报", "已化解"] {
            clock.advance(3_600_000)
            try a.edit(d, ["status": .string(s)])
        }
        try sync(a, b)
        // Both edit the mediator: a conflict, whose two candidates must stay.
        try a.edit(d, ["mediator_name": "王芳"])
        try b.edit(d, ["mediator_name": "李明"])
        try sync(b, a)
        try a.delete(gone)
        let old = try allChanges(a)
        let before = try snapshot(a)
        let beforeHistory = try a.history(d).1

        // Never enrolled: nothing is acknowledged, so nothing is pruned.
        clock.advance(100 * Self.day)
        #expect(try a.pruneHistory() == PruneReport())

        let report = try a.pruneHistory(requireAcknowledged: false)
        // The two superseded status edits (调解中, 已上报); not the creation, which still holds
        // its other fields, nor the current status, the conflict's candidates or the delete.
        #expect(report.pruned == 2 && report.bytes > 0, "\(report)")
        #expect(try a.prunedCount() == 2)
        #expect(try snapshot(a) == before, "pruning changes no register, value, conflict or deletion")
        #expect(try a.record(gone).deleted)

        // History keeps who changed the record when, and says the values went.
        let history = try a.history(d).1
        #expect(history.filter { $0.status == .pruned }.count == 2)
        #expect(history.filter { $0.status != .pruned }.count == beforeHistory.count - 2, "\(history.map { "\($0.field) \($0.status)" })")
        #expect(history.contains { $0.status == .superseded && $0.value == "受理" }, "the creation's own status is still listed")
        #expect(history.contains { $0.status == .current && $0.value == "已化解" })

        // The old changes arriving again (an old bundle, a relay) are duplicates: none new, none
        // a clone, nothing moves.
        let again = try a.apply(old)
        #expect(again.applied == 0 && again.duplicates == old.count, "\(again)")
        #expect(try snapshot(a) == before)

        // Pruned changes are not relayed; what a has still brings c to the same records.
        let c = try makeReplica(dir, "c", author: "陈静", clock: clock)
        try sync(a, c)
        #expect(try snapshot(c) == before)

        // A second pass prunes nothing more; a window not yet passed prunes nothing at all.
        #expect(try a.pruneHistory(requireAcknowledged: false).pruned == 0)
        let fresh = try makeReplica(dir, "fresh", clock: clock)
        _ = try fresh.add(.dispute, disputeInput())
        try fresh.edit(try fresh.records(.dispute)[0].id, ["status": "调解中"])
        #expect(try fresh.pruneHistory(requireAcknowledged: false).pruned == 0, "younger than 90 days")
    }

    /// A laptop offline for a year edits a record that was deleted meanwhile elsewhere, where
    /// the history was pruned since: the delete's identity is kept, so the edit meets it as a
    /// delete-versus-edit conflict, never a silent resurrection.
    @Test func aDeletionOutlivesPruning() throws {
        let dir = TempDir(#function)
        let clock = ManualClock(1_763_784_000_000)
        let home = try makeReplica(dir, "home", clock: clock)
        let away = try makeReplica(dir, "away", clock: clock)
        let d = try home.add(.dispute, disputeInput())
        try home.edit(d, ["status": "调解中"])
        try sync(home, away)
        try home.edit(d, ["status": "已上报"])
        try home.delete(d)
        clock.advance(365 * Self.day)
        #expect(try home.pruneHistory(requireAcknowledged: false).pruned == 1, "the superseded status edit")
        try away.edit(d, ["status": "已化解"])
        try sync(away, home)
        let rec = try home.record(d)
        #expect(rec.deleted && rec.conflicts.contains(RowState.recordConflictField), "\(rec.conflicts)")
    }

    /// Acknowledged means at or before the push cursor, or received from the hub.
    @Test func onlyWhatTheHubHasIsPruned() throws {
        let dir = TempDir(#function)
        let clock = ManualClock(1_763_784_000_000)
        let a = try makeReplica(dir, "a", clock: clock)
        let d = try a.add(.dispute, disputeInput())
        try a.edit(d, ["status": "调解中"])
        try a.edit(d, ["status": "已化解"])
        try a.write { db in
            try db.execute(sql: "INSERT INTO fs_sync(id, hub_url, device, device_name, token, scope, hub_site, hub_name) VALUES (1, 'http://127.0.0.1:1', 'd', 'd', '', '', '0000000000000001', 'hub')")
            // The hub has the creation and the first edit only.
            try db.execute(sql: "UPDATE fs_sync SET push_cursor = (SELECT min(seq) + 1 FROM fs_change)")
        }
        clock.advance(91 * Self.day)
        #expect(try a.pruneHistory().pruned == 1, "the first edit: superseded and at the hub")
        try a.write { db in try db.execute(sql: "UPDATE fs_sync SET push_cursor = (SELECT max(seq) FROM fs_change)") }
        #expect(try a.pruneHistory().pruned == 0, "the last edit is current, the creation holds the other fields")
    }
}

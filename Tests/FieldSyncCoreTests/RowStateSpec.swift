@testable import FieldSyncCore
import Testing

@Suite struct RowStateSpec {
    static let row = "520221105201-019aa9f1c2d34e5f8a7b6c5d4e3f2a1b"

    static func change(_ id: ChangeID, at t: Int64, _ writes: [FieldWrite],
                       rowContext: [String: VersionVector]? = nil) -> Change {
        Change(id: id, kind: .dispute, row: row, hlc: hlc(t), author: "王芳", writes: writes, rowContext: rowContext)
    }

    static func write(_ field: String, _ value: FieldValue, seen: VersionVector = VersionVector()) -> FieldWrite {
        FieldWrite(field: field, value: value, context: seen)
    }

    static func delete(_ id: ChangeID, at t: Int64, seen: VersionVector = VersionVector(),
                       rowContext: [String: VersionVector]) -> Change {
        change(id, at: t, [write("_deleted", .integer(1), seen: seen)], rowContext: rowContext)
    }

    static func undelete(_ id: ChangeID, at t: Int64, seen: VersionVector) -> Change {
        change(id, at: t, [write("_deleted", .integer(0), seen: seen)])
    }

    /// A:1 creates the dispute (status 受理, parties 张三与李四).
    static let create = change(dot(siteA, 1), at: 100, [write("parties", .text("张三与李四")), write("status", .text("受理"))])

    // MARK: Shape

    @Test func aDisputeHasOneRegisterPerFieldPlusDeleted() {
        let s = RowState(kind: .dispute)
        #expect(s.registers.count == RecordKind.dispute.spec.fields.count + 1)
        #expect(s.slot("_deleted") == s.deletedSlot)
        #expect(s.slot("status") == RecordKind.dispute.spec.fieldIndex("status"))
        #expect(s.slot("nonexistent") == nil)
        #expect(s.fieldName(s.deletedSlot) == "_deleted")
        #expect(!s.exists)
        #expect(!s.isDeleted)
    }

    @Test func applyingACreationFillsItsFields() {
        var s = RowState(kind: .dispute)
        let out = s.apply(Self.create)
        #expect(out.fields.map(\.field) == ["parties", "status"])
        #expect(!out.changedNothing)
        #expect(s.exists)
        #expect(s["status"]?.value == .text("受理"))
        #expect(s["parties"]?.value == .text("张三与李四"))
        #expect(s["summary"]?.value == .null)
        #expect(s.conflicts.isEmpty)
    }

    @Test func reapplyingAChangeChangesNothing() {
        var s = RowState(kind: .dispute)
        s.apply(Self.create)
        let before = s
        let out = s.apply(Self.create)
        #expect(out.changedNothing)
        #expect(out.fields.allSatisfy { $0.outcome == .duplicate })
        #expect(s == before)
    }

    // MARK: Field-level merge

    @Test func concurrentEditsToDifferentFieldsBothSurviveWithoutConflict() {
        let editStatus = Self.change(dot(siteB, 1), at: 200, [Self.write("status", .text("已化解"), seen: vv(dot(siteA, 1)))])
        let editParties = Self.change(dot(siteC, 1), at: 150, [Self.write("parties", .text("张三与李四、王五"), seen: vv(dot(siteA, 1)))])
        var states: [RowState] = []
        for order in permutations([Self.create, editStatus, editParties]) {
            var s = RowState(kind: .dispute)
            for c in order { s.apply(c) }
            #expect(s["status"]?.value == .text("已化解"))
            #expect(s["parties"]?.value == .text("张三与李四、王五"))
            #expect(s.conflicts.isEmpty)
            states.append(s)
        }
        #expect(states.allSatisfy { $0 == states[0] })
    }

    @Test func concurrentEditsToOneFieldAreAConflictOnThatFieldOnly() {
        var s = RowState(kind: .dispute)
        s.apply(Self.create)
        s.apply(Self.change(dot(siteB, 1), at: 200, [Self.write("status", .text("已化解"), seen: vv(dot(siteA, 1)))]))
        s.apply(Self.change(dot(siteC, 1), at: 300, [Self.write("status", .text("已上报"), seen: vv(dot(siteA, 1)))]))
        let conflicts = s.conflicts
        #expect(conflicts.map(\.field) == ["status"])
        #expect(conflicts.first?.kind == .concurrentValues)
        #expect(conflicts.first?.dots == [dot(siteB, 1), dot(siteC, 1)])
        #expect(conflicts.first?.openedAt == hlc(300))
        #expect(s["status"]?.value == .text("已上报"))  // later clock
    }

    @Test func writesCarryTheContextOfWhatTheReplicaHolds() {
        var s = RowState(kind: .dispute)
        s.apply(Self.create)
        s.apply(Self.change(dot(siteB, 3), at: 200, [Self.write("status", .text("已化解"), seen: vv(dot(siteA, 1)))]))
        s.apply(Self.change(dot(siteC, 1), at: 210, [Self.write("status", .text("已上报"))]))
        let ws = s.writes(setting: [(field: "status", value: .text("调解中")), (field: "summary", value: .text("概要"))])
        #expect(ws.map(\.field) == ["status", "summary"])
        #expect(ws[0].context == vv(dot(siteA, 1), dot(siteB, 3), dot(siteC, 1)))
        #expect(ws[1].context.isEmpty)
        // which settles the conflict when applied
        s.apply(Self.change(dot(siteA, 2), at: 400, ws))
        #expect(s.conflicts.isEmpty)
        #expect(s["status"]?.entries.map(\.dot) == [dot(siteA, 2)])
    }

    @Test func holdsIsTrueOnlyForASingleEqualEntry() {
        var s = RowState(kind: .dispute)
        s.apply(Self.create)
        #expect(s.holds("status", .text("受理")))
        #expect(!s.holds("status", .text("已化解")))
        #expect(!s.holds("nonexistent", .text("受理")))
        s.apply(Self.change(dot(siteB, 1), at: 200, [Self.write("status", .text("受理"))]))
        #expect(!s.holds("status", .text("受理")))  // two entries, even of one value
    }

    @Test func rowContextHasTheContextOfEveryFieldWithEntries() {
        var s = RowState(kind: .dispute)
        s.apply(Self.create)
        s.apply(Self.change(dot(siteC, 2), at: 150, [Self.write("status", .text("调解中"), seen: vv(dot(siteA, 1)))]))
        #expect(s.rowContext == ["parties": vv(dot(siteA, 1)), "status": vv(dot(siteA, 1), dot(siteC, 2))])
    }

    // MARK: Delete versus edit

    @Test func deleteThatSawEverythingIsNoConflict() {
        var s = RowState(kind: .dispute)
        s.apply(Self.create)
        s.apply(Self.delete(dot(siteB, 1), at: 200, rowContext: s.rowContext))
        #expect(s.isDeleted)
        #expect(s.conflicts.isEmpty)
        #expect(s.unseenEdits.isEmpty)
        // the fields are still held
        #expect(s["status"]?.value == .text("受理"))
    }

    static let unseenEdit = change(dot(siteC, 1), at: 150, [write("status", .text("调解中"), seen: vv(dot(siteA, 1)))])
    static let deleteWithoutTheEdit = delete(
        dot(siteB, 1), at: 200, rowContext: ["parties": vv(dot(siteA, 1)), "status": vv(dot(siteA, 1))])

    @Test func deleteVersusEditConflictAppearsWhenTheDeleteDidNotSeeAnEdit() {
        for order in permutations([Self.create, Self.unseenEdit, Self.deleteWithoutTheEdit]) {
            var s = RowState(kind: .dispute)
            for c in order { s.apply(c) }
            #expect(s.isDeleted)
            let conflicts = s.conflicts
            #expect(conflicts.map(\.field) == ["_record"])
            guard let c = conflicts.first else { continue }
            #expect(c.kind == .deleteVersusEdit)
            #expect(c.entries.map(\.dot) == [dot(siteB, 1)])
            #expect(c.edits.map(\.field) == ["status"])
            #expect(c.edits.map(\.entry.dot) == [dot(siteC, 1)])
            #expect(c.dots == [dot(siteB, 1), dot(siteC, 1)])
            // the later of the first delete (200) and the first unseen edit (150)
            #expect(c.openedAt == hlc(200))
        }
    }

    @Test func editToAFieldTheDeleteKnewNothingAboutIsAlsoUnseen() {
        var s = RowState(kind: .dispute)
        s.apply(Self.create)
        s.apply(Self.deleteWithoutTheEdit)
        s.apply(Self.change(dot(siteC, 1), at: 500, [Self.write("resolution", .text("双方和解"))]))
        #expect(s.unseenEdits.map(\.field) == ["resolution"])
        #expect(s.conflicts.first?.openedAt == hlc(500))
    }

    /// Protocol vector 17: one change editing two fields the delete had not seen takes part
    /// in the `_record` conflict once: "[A:2, C:1] (C:1 is one change, listed once)".
    @Test func recordConflictListsEachChangeIdOnce() {
        var s = RowState(kind: .dispute)
        s.apply(Self.create)
        s.apply(Self.deleteWithoutTheEdit)
        s.apply(Self.change(dot(siteC, 1), at: 150, [
            Self.write("status", .text("调解中"), seen: vv(dot(siteA, 1))), Self.write("resolution", .text("双方和解")),
        ]))
        let record = s.conflicts.first { $0.field == "_record" }
        #expect(record?.edits.count == 2)  // both unseen edits are reported
        #expect(record?.dots == [dot(siteB, 1), dot(siteC, 1)])
    }

    @Test func undeleteCoveringTheDeleteSettlesTheConflictAndKeepsTheEdit() {
        var s = RowState(kind: .dispute)
        for c in [Self.create, Self.unseenEdit, Self.deleteWithoutTheEdit] { s.apply(c) }
        #expect(!s.conflicts.isEmpty)
        let ctx = s["_deleted"]!.context
        #expect(ctx == vv(dot(siteB, 1)))
        s.apply(Self.undelete(dot(siteA, 2), at: 300, seen: ctx))
        #expect(!s.isDeleted)
        #expect(s.conflicts.isEmpty)
        #expect(s["status"]?.value == .text("调解中"))
        #expect(s["_deleted"]?.entries.map(\.dot) == [dot(siteA, 2)])
    }

    @Test func undeleteThatDidNotSeeTheDeleteLeavesTheConflictOpen() {
        var s = RowState(kind: .dispute)
        for c in [Self.create, Self.unseenEdit, Self.deleteWithoutTheEdit] { s.apply(c) }
        s.apply(Self.undelete(dot(siteC, 2), at: 300, seen: VersionVector()))
        #expect(s["_deleted"]?.entries.count == 2)
        #expect(!s.isDeleted)  // the undelete has the later clock
        #expect(s.conflicts.contains { $0.field == "_record" })
    }

    @Test func deletingAgainHavingSeenTheEditSettlesTheConflict() {
        var s = RowState(kind: .dispute)
        for c in [Self.create, Self.unseenEdit, Self.deleteWithoutTheEdit] { s.apply(c) }
        let again = Self.delete(dot(siteA, 2), at: 300, seen: s["_deleted"]!.context, rowContext: s.rowContext)
        #expect(again.rowContext?["status"] == vv(dot(siteA, 1), dot(siteC, 1)))
        s.apply(again)
        #expect(s.isDeleted)
        #expect(s.conflicts.isEmpty)
    }

    @Test func deleteWithoutRowContextSeesNoEdit() {
        var s = RowState(kind: .dispute)
        s.apply(Self.create)
        s.apply(Self.change(dot(siteB, 1), at: 200, [Self.write("_deleted", .integer(1))], rowContext: nil))
        #expect(s.isDeleted)
        #expect(Set(s.unseenEdits.map(\.field)) == ["parties", "status"])
    }

    @Test func concurrentDeleteAndUndeleteAreDecidedByTheClock() {
        var s = RowState(kind: .dispute)
        s.apply(Self.create)
        let ctx = s.rowContext
        s.apply(Self.delete(dot(siteB, 1), at: 200, rowContext: ctx))
        #expect(s.isDeleted)
        s.apply(Self.undelete(dot(siteC, 1), at: 150, seen: VersionVector()))
        #expect(s.isDeleted)
        #expect(s.conflicts.map(\.field) == ["_deleted"])  // true versus false
    }

    @Test func changeDeletesOnlyWhenItWritesDeletedTrue() {
        #expect(Self.deleteWithoutTheEdit.deletes)
        #expect(!Self.undelete(dot(siteA, 9), at: 1, seen: VersionVector()).deletes)
        #expect(!Self.create.deletes)
    }

    @Test func randomArrivalOrdersWithRedeliveryReachTheSameState() {
        let changes = [
            Self.create, Self.unseenEdit, Self.deleteWithoutTheEdit,
            Self.change(dot(siteB, 2), at: 220, [Self.write("parties", .text("张三"), seen: vv(dot(siteA, 1)))]),
            Self.change(dot(siteC, 3), at: 230, [Self.write("parties", .text("李四"), seen: vv(dot(siteA, 1)))]),
            Self.undelete(dot(siteA, 2), at: 300, seen: vv(dot(siteB, 1))),
        ]
        var reference = RowState(kind: .dispute)
        for c in changes { reference.apply(c) }
        #expect(!reference.isDeleted)
        #expect(reference.conflicts.map(\.field) == ["parties"])
        for seed in propertySeeds {
            var rng = SplitMix64(seed: seed)
            var s = RowState(kind: .dispute)
            for c in (changes + changes.prefix(Int(rng.next() % 6))).shuffled(using: &rng) { s.apply(c) }
            #expect(s == reference, "seed \(seed)")
            #expect(s.conflicts.map(\.dots) == reference.conflicts.map(\.dots), "seed \(seed)")
        }
    }
}

import FieldSyncCore
@testable import FieldSyncReplica
import Foundation
import Testing

/// Replicas that exchange the same changes, in any order, any number of times, end identical;
/// and at every step each replica's registers and conflicts are exactly those of the
/// reference model (no missed and no spurious conflicts).
///
/// FIELDSYNC_SEED=N replays one seed; FIELDSYNC_PROPERTY_SEEDS and FIELDSYNC_PROPERTY_OPS make
/// longer runs (scripts/soak-merge).
@Suite(.serialized) struct ConvergenceProperty {
    static let env = ProcessInfo.processInfo.environment

    @Test func replicasConvergeAndMatchTheReferenceModel() throws {
        let seeds: [UInt64]
        if let s = Self.env["FIELDSYNC_SEED"].flatMap(UInt64.init) {
            seeds = [s]
        } else {
            let n = Self.env["FIELDSYNC_PROPERTY_SEEDS"].flatMap(Int.init) ?? 6
            let base = Self.env["FIELDSYNC_PROPERTY_BASE"].flatMap(UInt64.init) ?? 20_261_122
            seeds = (0..<UInt64(n)).map { base &+ $0 }
        }
        let ops = Self.env["FIELDSYNC_PROPERTY_OPS"].flatMap(Int.init) ?? 250
        var totals = PropertyRun.Counts()
        for seed in seeds {
            var run = try PropertyRun(seed: seed, ops: ops)
            do {
                try run.execute()
            } catch let f as PropertyRun.Mismatch {
                Issue.record("seed \(seed) failed at step \(f.step): \(f.message)\nreplay: FIELDSYNC_SEED=\(seed) swift test --filter ConvergenceProperty")
                continue
            }
            totals.add(run.counts)
        }
        print("convergence property: \(seeds.count) seeds, \(totals.description)")
        #expect(totals.conflictsSeen > 0, "the runs produced no conflict at all: the generator is too tame to test anything")
        #expect(totals.deliveries > 0 && totals.edits > 0)
        #expect(totals.changesPruned > 0, "pruning never dropped anything: the runs do not test it")
    }
}

struct PropertyRun {
    struct Mismatch: Error {
        var step: Int
        var message: String
    }

    struct Counts: CustomStringConvertible {
        var replicas = 0, creates = 0, edits = 0, deletes = 0, undeletes = 0, deliveries = 0, changesDelivered = 0, duplicatesDelivered = 0
        var conflictsSeen = 0, recordConflictsSeen = 0, steps = 0, prunes = 0, changesPruned = 0
        mutating func add(_ o: Counts) {
            replicas += o.replicas; creates += o.creates; edits += o.edits; deletes += o.deletes; undeletes += o.undeletes
            deliveries += o.deliveries; changesDelivered += o.changesDelivered; duplicatesDelivered += o.duplicatesDelivered
            conflictsSeen += o.conflictsSeen; recordConflictsSeen += o.recordConflictsSeen; steps += o.steps
            prunes += o.prunes; changesPruned += o.changesPruned
        }
        var description: String {
            "\(steps) steps over \(replicas) replicas: \(creates) creates, \(edits) edits, \(deletes) deletes, \(undeletes) undeletes, "
                + "\(deliveries) deliveries of \(changesDelivered) changes (\(duplicatesDelivered) duplicated), "
                + "\(conflictsSeen) field conflicts and \(recordConflictsSeen) delete-vs-edit conflicts observed, "
                + "\(prunes) prunings dropping \(changesPruned) superseded changes"
        }
    }

    let seed: UInt64
    let ops: Int
    var rng: SplitMix64
    let dir: TempDir
    var replicas: [Replica] = []
    var clocks: [ManualClock] = []
    var models: [ModelReplica] = []
    /// Every change made anywhere, as model writes, by id.
    var modelChanges: [ChangeID: [ModelWrite]] = [:]
    var rowKinds: [String: RecordKind] = [:]
    var counts = Counts()

    init(seed: UInt64, ops: Int) throws {
        self.seed = seed
        self.ops = ops
        rng = SplitMix64(seed: seed)
        dir = TempDir("property-\(seed)")
        let n = Int.random(in: 3...5, using: &rng)
        counts.replicas = n
        for i in 0..<n {
            var start: Int64 = 1_763_784_000_000 + Int64.random(in: 0...600_000, using: &rng)
            if i == n - 1 && Bool.random(using: &rng) { start += 365 * 86_400_000 }  // a laptop a year fast
            let clock = ManualClock(start)
            clocks.append(clock)
            replicas.append(try makeReplica(dir, "site\(i)", author: "干部\(i)", clock: clock))
            models.append(ModelReplica())
        }
    }

    // MARK: Values the generator writes (small pools, so that equal concurrent values happen)

    static let disputeEdits: [(String, [JSONValue])] = [
        ("status", Enumerations.disputeStatuses.map { .string($0) }),
        ("parties", ["张三与李四", "張三與李四 (Zhāng Sān)", "王五与赵六 🙂"]),
        ("mediator_name", ["王芳", "李明", "陈书记"]),
        ("resolution", ["双方达成和解，签订协议。", "已移交乡镇司法所。", .null]),
        ("agreement_signed", [true, false]),
        ("resolved_on", ["2026-11-21", "2026-11-22", .null]),
    ]
    static let projectEdits: [(String, [JSONValue])] = [
        ("status", Enumerations.projectStatuses.map { .string($0) }),
        ("spent_fen", [0, 125_000, 4_300_050, 9_999_999]),
        ("budget_fen", [5_000_000, 12_000_000]),
        ("progress_notes", ["村组道路硬化完成一半", "茶叶加工厂设备已到位 🍵", .null]),
        ("households_benefiting", [12, 48, 173]),
    ]

    func pick<T>(_ a: [T], _ g: inout SplitMix64) -> T { a[Int.random(in: 0..<a.count, using: &g)] }

    // MARK: Running

    mutating func execute() throws {
        for step in 0..<ops {
            counts.steps += 1
            let r = Int.random(in: 0..<replicas.count, using: &rng)
            let roll = Int.random(in: 0..<100, using: &rng)
            switch roll {
            case 0..<14: try create(at: r, step: step)
            case 14..<50: try edit(at: r, step: step)
            case 50..<57: try delete(at: r, step: step)
            case 57..<62: try undelete(at: r, step: step)
            case 62..<94: try deliver(step: step)
            case 94..<97: try prune(at: r, step: step)
            default:
                // Clocks move, sometimes backwards (a clock reset); HLCs must stay monotonic.
                clocks[r].advance(Int64.random(in: -30_000...600_000, using: &rng))
            }
        }
        // Full exchange: everyone gets everything, in shuffled order with repeats.
        for i in replicas.indices {
            for j in replicas.indices where i != j { try deliver(from: j, to: i, fraction: 1.0, step: ops) }
        }
        for i in replicas.indices {
            for j in replicas.indices where i != j { try deliver(from: j, to: i, fraction: 1.0, step: ops + 1) }
        }
        let first = try snapshot(replicas[0])
        for i in replicas.indices.dropFirst() {
            let s = try snapshot(replicas[i])
            if s != first {
                let diff = zip(first, s).first { $0 != $1 }.map { "\n  site0: \($0.0)\n  site\(i): \($0.1)" } ?? " (different record counts \(first.count) vs \(s.count))"
                throw Mismatch(step: ops + 2, message: "replicas differ after full exchange:\(diff)")
            }
            let c0 = try conflictTable(replicas[0]), ci = try conflictTable(replicas[i])
            if c0 != ci { throw Mismatch(step: ops + 2, message: "conflict tables differ: \(c0) vs \(ci)") }
        }
    }

    func conflictTable(_ r: Replica) throws -> [String] {
        try r.read { db in try String.fetchAll(db, sql: "SELECT kind || ' ' || row || ' ' || field || ' ' || since FROM fs_conflict ORDER BY 1") }
    }

    /// The rows a replica holds, by its own view.
    func liveRows(_ i: Int, deleted: Bool) -> [String] {
        models[i].rows.filter { rowKinds[$0] != nil && models[i].isDeleted($0) == deleted && !models[i].live($0, firstField($0)).isEmpty }.sorted()
    }

    func firstField(_ row: String) -> String { rowKinds[row] == .dispute ? "category" : "name" }

    mutating func create(at i: Int, step: Int) throws {
        let kind: RecordKind = Bool.random(using: &rng) ? .dispute : .project
        let input: JSONObject
        if kind == .dispute {
            input = disputeInput(pick([village1, village2], &rng), status: pick(Enumerations.disputeStatuses, &rng))
        } else {
            input = ["village": .string(village1), "name": "茶叶加工厂", "project_kind": "产业发展", "status": "规划", "budget_fen": 5_000_000]
        }
        let id = try replicas[i].add(kind, input)
        rowKinds[id] = kind
        counts.creates += 1
        try recordLocalChange(at: i, step: step, expectedFields: Set(input.keys))
    }

    mutating func edit(at i: Int, step: Int) throws {
        let rows = liveRows(i, deleted: false)
        guard !rows.isEmpty else { return try create(at: i, step: step) }
        let row = pick(rows, &rng)
        let kind = rowKinds[row]!
        let pool = kind == .dispute ? Self.disputeEdits : Self.projectEdits
        var input = JSONObject()
        for _ in 0..<Int.random(in: 1...3, using: &rng) {
            let (field, values) = pick(pool, &rng)
            input[field] = pick(values, &rng)
        }
        // Which fields the model expects to be written: those not already holding that one value.
        var expected = Set<String>()
        for (f, v) in input {
            let value = try kind.spec.field(f)!.decode(v)
            let live = models[i].live(row, f)
            if !(live.count == 1 && live[0].value == value) { expected.insert(f) }
        }
        let res = try replicas[i].edit(row, input)
        if Set(res.fieldsChanged) != expected {
            throw Mismatch(step: step, message: "edit at site\(i) of \(row) wrote \(res.fieldsChanged.sorted()), model expected \(expected.sorted())")
        }
        if res.change != nil {
            counts.edits += 1
            try recordLocalChange(at: i, step: step, expectedFields: expected)
        }
    }

    mutating func delete(at i: Int, step: Int) throws {
        // Delete a live record, or re-delete a deleted one that has a delete-versus-edit conflict.
        let recordConflicted = liveRows(i, deleted: true).filter { models[i].conflicts($0).contains(RowState.recordConflictField) }
        let rows = liveRows(i, deleted: false) + recordConflicted
        guard !rows.isEmpty else { return }
        let row = pick(rows, &rng)
        try replicas[i].delete(row)
        counts.deletes += 1
        try recordLocalChange(at: i, step: step, expectedFields: [RowState.deletedField])
    }

    mutating func undelete(at i: Int, step: Int) throws {
        let rows = liveRows(i, deleted: true)
        guard !rows.isEmpty else { return }
        try replicas[i].undelete(pick(rows, &rng))
        counts.undeletes += 1
        try recordLocalChange(at: i, step: step, expectedFields: [RowState.deletedField])
    }

    /// Reads the change a local operation just made, turns it into model writes whose `seen`
    /// sets the model computes itself, and checks the replica against the model.
    mutating func recordLocalChange(at i: Int, step: Int, expectedFields: Set<String>) throws {
        let c = try replicas[i].read { db in
            try ChangeCodec.decode(JSONValue.parse(String.fetchOne(db, sql: "SELECT body FROM fs_change WHERE site = ? ORDER BY seq DESC LIMIT 1",
                                                                    arguments: [Int64(bitPattern: replicas[i].site.raw)])!))
        }
        if Set(c.writes.map(\.field)) != expectedFields {
            throw Mismatch(step: step, message: "change \(c.id) writes \(c.writes.map(\.field).sorted()), expected \(expectedFields.sorted())")
        }
        let m = models[i]
        var ws: [ModelWrite] = []
        for w in c.writes {
            var rowSeen: [String: Set<ChangeID>]?
            if w.field == RowState.deletedField, w.value == .integer(1) {
                var rs: [String: Set<ChangeID>] = [:]
                for f in m.fields(c.row) where f != RowState.deletedField { rs[f] = m.seenForNewWrite(c.row, f) }
                rowSeen = rs
            }
            ws.append(ModelWrite(id: c.id, hlc: c.hlc, row: c.row, field: w.field, value: w.value,
                                 seen: m.seenForNewWrite(c.row, w.field), rowSeen: rowSeen))
        }
        for w in ws { m.receive(w) }
        modelChanges[c.id] = ws
        try compare(i, step: step, rows: [c.row])
    }

    /// Pruning switched on at a random point (issue 12 point 4): the replica drops the text of
    /// every superseded change it holds. Its registers must not move, and from now on it relays
    /// only what it kept; the run must still converge and match the model.
    mutating func prune(at i: Int, step: Int) throws {
        let rows = Set(rowKinds.keys).filter { (try? replicas[i].rowState(rowKinds[$0]!, $0)) != nil }
        let before = try rows.sorted().map { try replicas[i].rowState(rowKinds[$0]!, $0) }
        let report = try replicas[i].pruneHistory(windowMs: 0, requireAcknowledged: false)
        counts.prunes += 1
        counts.changesPruned += report.pruned
        let after = try rows.sorted().map { try replicas[i].rowState(rowKinds[$0]!, $0) }
        if before != after { throw Mismatch(step: step, message: "pruning at site\(i) changed a record's registers") }
        try compare(i, step: step, rows: rows)
    }

    mutating func deliver(step: Int) throws {
        let src = Int.random(in: 0..<replicas.count, using: &rng)
        var dst = Int.random(in: 0..<replicas.count, using: &rng)
        if dst == src { dst = (dst + 1) % replicas.count }
        try deliver(from: src, to: dst, fraction: Double.random(in: 0.1...1.0, using: &rng), step: step)
    }

    /// Sends a random part of `src`'s changes to `dst`, shuffled, some twice, in 1–3 batches.
    mutating func deliver(from src: Int, to dst: Int, fraction: Double, step: Int) throws {
        var changes = try allChanges(replicas[src]).filter { _ in Double.random(in: 0..<1, using: &rng) < fraction }
        let dups = changes.filter { _ in Int.random(in: 0..<10, using: &rng) == 0 }
        changes += dups
        changes.shuffle(using: &rng)
        guard !changes.isEmpty else { return }
        counts.deliveries += 1
        counts.changesDelivered += changes.count
        counts.duplicatesDelivered += dups.count
        var batches: [[Change]] = []
        var rest = changes[...]
        while !rest.isEmpty {
            let n = Int.random(in: 1...max(1, rest.count), using: &rng)
            batches.append(Array(rest.prefix(n)))
            rest = rest.dropFirst(n)
        }
        for b in batches { try replicas[dst].apply(b) }
        var touched = Set<String>()
        for c in changes {
            guard let ws = modelChanges[c.id] else { throw Mismatch(step: step, message: "delivered change \(c.id) unknown to the model") }
            for w in ws { models[dst].receive(w) }
            touched.insert(c.row)
        }
        try compare(dst, step: step, rows: touched)
    }

    /// The replica's registers, values, deletion and conflicts for `rows` equal the model's.
    mutating func compare(_ i: Int, step: Int, rows: Set<String>) throws {
        let m = models[i]
        for row in rows.sorted() {
            guard let kind = rowKinds[row], let state = try replicas[i].rowState(kind, row) else {
                throw Mismatch(step: step, message: "site\(i) does not hold \(row) but the model does")
            }
            for s in state.registers.indices {
                let field = state.fieldName(s)
                let impl = Dictionary(uniqueKeysWithValues: state.registers[s].entries.map { ($0.dot, $0.value) })
                let model = Dictionary(uniqueKeysWithValues: m.live(row, field).map { ($0.id, $0.value) })
                if impl != model {
                    throw Mismatch(step: step, message: "site\(i) \(row).\(field): replica holds \(impl), model \(model)")
                }
            }
            let implConflicts = Set(state.conflicts.map(\.field))
            let modelConflicts = m.conflicts(row)
            if implConflicts != modelConflicts {
                throw Mismatch(step: step, message: "site\(i) \(row): replica conflicts \(implConflicts.sorted()), model \(modelConflicts.sorted())")
            }
            if state.isDeleted != m.isDeleted(row) {
                throw Mismatch(step: step, message: "site\(i) \(row): deleted \(state.isDeleted), model says \(m.isDeleted(row))")
            }
            let table = try replicas[i].read { db in
                try Set(String.fetchAll(db, sql: "SELECT field FROM fs_conflict WHERE row = ?", arguments: [row]))
            }
            if table != implConflicts {
                throw Mismatch(step: step, message: "site\(i) \(row): fs_conflict holds \(table.sorted()) but the record has \(implConflicts.sorted())")
            }
            counts.conflictsSeen += implConflicts.subtracting([RowState.recordConflictField]).count
            counts.recordConflictsSeen += implConflicts.contains(RowState.recordConflictField) ? 1 : 0
        }
    }
}

// MARK: - RowState

/// Every field register of one record, including the `_deleted` register.
///
/// This is the one merge implementation: the laptop replica, the hub and the tests all merge
/// through ``apply(_:)``. It does no I/O.
public struct RowState: Sendable, Equatable {
    /// The pseudo-field that records deletion: `true` deleted, `false` undeleted.
    public static let deletedField = "_deleted"
    /// The name under which a delete-versus-edit conflict is listed: it concerns the whole record.
    public static let recordConflictField = "_record"

    public let kind: RecordKind
    /// Registers by field position; the last slot is `_deleted`.
    public private(set) var registers: [FieldRegister]

    public init(kind: RecordKind) {
        self.kind = kind
        registers = Array(repeating: FieldRegister(), count: kind.spec.fields.count + 1)
    }

    /// `registers` by field position with `_deleted` last. Fewer registers than the schema has
    /// fields (a state kept before the schema grew) are widened: new fields start empty.
    public init(kind: RecordKind, registers: [FieldRegister]) {
        let n = kind.spec.fields.count + 1
        precondition(!registers.isEmpty && registers.count <= n)
        self.kind = kind
        if registers.count == n {
            self.registers = registers
        } else {
            var r = Array(registers.dropLast())
            r += Array(repeating: FieldRegister(), count: n - registers.count)
            r.append(registers[registers.count - 1])
            self.registers = r
        }
    }

    @inline(__always) public var deletedSlot: Int { registers.count - 1 }

    /// The register position of a field name, `_deleted` included.
    public func slot(_ field: String) -> Int? {
        if field == Self.deletedField { return deletedSlot }
        // A state made before this process took a newer schema has no register for its new fields.
        guard let i = kind.spec.fieldIndex(field), i < deletedSlot else { return nil }
        return i
    }

    public func fieldName(_ slot: Int) -> String {
        slot == deletedSlot ? Self.deletedField : kind.spec.fields[slot].name
    }

    public subscript(field: String) -> FieldRegister? { slot(field).map { registers[$0] } }

    /// True once any write has reached the record.
    public var exists: Bool { registers.contains { !$0.isEmpty } }

    public var isDeleted: Bool { registers[deletedSlot].value == .integer(1) }

    // MARK: Merging

    /// What applying one change did to each field it wrote.
    public struct Outcome: Sendable, Equatable {
        public var fields: [(field: String, outcome: FieldRegister.Outcome)]
        public static func == (a: Outcome, b: Outcome) -> Bool {
            a.fields.count == b.fields.count && zip(a.fields, b.fields).allSatisfy { $0.field == $1.field && $0.outcome == $1.outcome }
        }
        /// True when no field took the change (all duplicate or obsolete).
        public var changedNothing: Bool {
            fields.allSatisfy { if case .applied = $0.outcome { return false } else { return true } }
        }
    }

    /// Merges a change into the record. The change must be for this record and already checked.
    @discardableResult
    public mutating func apply(_ change: Change) -> Outcome {
        var out: [(String, FieldRegister.Outcome)] = []
        out.reserveCapacity(change.writes.count)
        for w in change.writes {
            guard let s = slot(w.field) else { continue }
            let entry = RegisterEntry(
                dot: change.id, hlc: change.hlc, context: w.context, value: w.value,
                rowContext: s == deletedSlot && w.value == .integer(1) ? (change.rowContext ?? [:]) : nil)
            out.append((w.field, registers[s].merge(entry)))
        }
        return Outcome(fields: out)
    }

    /// After the schema grew: a delete already merged takes its full `rowSeen`, the fields it had
    /// seen that the older schema did not know included (the entry's value is unchanged).
    mutating func widenDeleteContext(of dot: ChangeID, to rowContext: [String: VersionVector]) {
        let s = deletedSlot
        guard registers[s].entries.contains(where: { $0.dot == dot && $0.rowContext != nil }) else { return }
        registers[s] = FieldRegister(entries: registers[s].entries.map { e in
            e.dot == dot && e.rowContext != nil
                ? RegisterEntry(dot: e.dot, hlc: e.hlc, context: e.context, value: e.value, rowContext: rowContext) : e
        })
    }

    // MARK: Making local writes

    /// The writes of a new local edit, each with the context of what this replica holds.
    public func writes(setting values: [(field: String, value: FieldValue)]) -> [FieldWrite] {
        values.map { FieldWrite(field: $0.field, value: $0.value, context: self[$0.field]?.context ?? VersionVector()) }
    }

    /// True when writing `value` would change nothing: the field holds exactly that one value.
    public func holds(_ field: String, _ value: FieldValue) -> Bool {
        guard let r = self[field] else { return false }
        return r.entries.count == 1 && r.entries[0].value == value
    }

    /// What a delete made now has seen of every field: the delete covers these writes.
    public var rowContext: [String: VersionVector] {
        var out: [String: VersionVector] = [:]
        for s in 0..<deletedSlot where !registers[s].isEmpty {
            out[fieldName(s)] = registers[s].context
        }
        return out
    }

    // MARK: Conflicts

    /// The record's open conflicts, in field order.
    public var conflicts: [RowConflict] {
        var out: [RowConflict] = []
        for s in registers.indices where registers[s].isConflict {
            out.append(RowConflict(field: fieldName(s), kind: .concurrentValues, entries: registers[s].entries))
        }
        let unseen = unseenEdits
        if !unseen.isEmpty {
            let deletes = registers[deletedSlot].entries.filter { $0.value == .integer(1) }
            out.append(RowConflict(field: Self.recordConflictField, kind: .deleteVersusEdit, entries: deletes, edits: unseen))
        }
        return out
    }

    /// Held edits that a held delete had not seen: the delete-versus-edit conflict.
    public var unseenEdits: [(field: String, entry: RegisterEntry)] {
        let deletes = registers[deletedSlot].entries.filter { $0.value == .integer(1) }
        guard !deletes.isEmpty else { return [] }
        var out: [(String, RegisterEntry)] = []
        for s in 0..<deletedSlot {
            let name = fieldName(s)
            for e in registers[s].entries
            where deletes.contains(where: { !($0.rowContext?[name]?.covers(e.dot) ?? false) }) {
                out.append((name, e))
            }
        }
        return out
    }

    public static func == (a: RowState, b: RowState) -> Bool { a.kind == b.kind && a.registers == b.registers }
}

// MARK: - RowConflict

/// An open conflict on one field of a record, or (field `_record`) a delete and the edits it
/// had not seen.
public struct RowConflict: Sendable {
    public enum Kind: String, Sendable { case concurrentValues = "concurrent_values", deleteVersusEdit = "delete_vs_edit" }
    public let field: String
    public let kind: Kind
    /// The competing writes, winner first (for delete-versus-edit: the deletes).
    public let entries: [RegisterEntry]
    /// For delete-versus-edit: the edits the delete had not seen.
    public let edits: [(field: String, entry: RegisterEntry)]

    public init(field: String, kind: Kind, entries: [RegisterEntry], edits: [(field: String, entry: RegisterEntry)] = []) {
        self.field = field
        self.kind = kind
        self.entries = entries
        self.edits = edits
    }

    /// Every change taking part, each once, sorted: a canonical identity for comparing replicas.
    /// (One change may edit several fields the delete had not seen.)
    public var dots: [ChangeID] { Set(entries.map(\.dot) + edits.map(\.entry.dot)).sorted() }
}

extension RowConflict {
    /// When the conflict arose: the clock reading of the write that first made the values
    /// disagree (for delete-versus-edit, the later of the first delete and the first unseen
    /// edit). Every replica computes the same instant.
    public var openedAt: HybridTimestamp {
        switch kind {
        case .concurrentValues:
            let byTime = entries.sorted { $0.hlc < $1.hlc }
            guard let first = byTime.first else { return .zero }
            return byTime.first(where: { $0.value != first.value })?.hlc ?? first.hlc
        case .deleteVersusEdit:
            let d = entries.map(\.hlc).min() ?? .zero
            let e = edits.map(\.entry.hlc).min() ?? .zero
            return max(d, e)
        }
    }
}

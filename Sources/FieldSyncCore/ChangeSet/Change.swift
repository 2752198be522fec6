// MARK: - Change

/// One local edit of one record: the unit that is logged, exchanged and merged.
///
/// A change writes one or more fields of one record under one id, clock reading and author.
/// Each field write merges on its own (field-level merge); sharing the id and header keeps
/// change sets small. A record's creation and deletion are changes like any other: deletion
/// writes the pseudo-field `_deleted`.
public struct Change: Sendable, Equatable {
    public var id: ChangeID
    public var kind: RecordKind
    public var row: String
    public var hlc: HybridTimestamp
    /// Who made the edit: the cadre's name as the replica was told.
    public var author: String
    public var schema: Int
    /// Field writes in schema order, `_deleted` last.
    public var writes: [FieldWrite]
    /// On a delete: the contexts of every other field, i.e. which edits the delete saw.
    public var rowContext: [String: VersionVector]?
    /// An optional human note ("resolved on the phone with both parties").
    public var note: String?
    /// When the change settles a conflict: the competing changes it replaced. Merging does not
    /// read it (the `seen` vectors do the work); people and reports do.
    public var resolves: [ChangeID]?
    /// Writes made with a newer schema that this one cannot read: fields it does not know, and
    /// known fields holding a value its schema does not allow yet (a new choice, a longer text).
    /// They are not merged here; they are kept in the change's text, relayed as they came, and
    /// merged by a receiver that knows them (issue 12, changeset.md §2.4).
    public var pending: [PendingWrite] = []
    /// A delete's `rowSeen` entries for fields this schema does not know, in the order received.
    public var pendingRowSeen: [PendingSeen] = []

    public init(id: ChangeID, kind: RecordKind, row: String, hlc: HybridTimestamp, author: String,
                schema: Int = Schema.current.version, writes: [FieldWrite],
                rowContext: [String: VersionVector]? = nil, note: String? = nil, resolves: [ChangeID]? = nil) {
        self.id = id
        self.kind = kind
        self.row = row
        self.hlc = hlc
        self.author = author
        self.schema = schema
        self.writes = writes
        self.rowContext = rowContext
        self.note = note
        self.resolves = resolves
    }

    /// True when the change carries writes this schema cannot merge.
    public var hasPending: Bool { !pending.isEmpty || !pendingRowSeen.isEmpty }

    /// True when the change deletes its record.
    public var deletes: Bool { writes.contains { $0.field == RowState.deletedField && $0.value == .integer(1) } }
}

// MARK: - FieldWrite

/// One field's new value inside a change, with what its author had seen of that field.
public struct FieldWrite: Sendable, Equatable {
    public var field: String
    public var value: FieldValue
    public var context: VersionVector

    public init(field: String, value: FieldValue, context: VersionVector = VersionVector()) {
        self.field = field
        self.value = value
        self.context = context
    }
}

// MARK: - PendingWrite

/// One field write of a newer schema, kept as it came (see ``Change/pending``).
public struct PendingWrite: Sendable, Equatable {
    public var field: String
    /// The value as sent: JSON without fractions (no FieldSync type has one), so its compact text
    /// is the same wherever it is written again.
    public var value: JSONValue
    public var context: VersionVector
    /// The field's position in this schema when it knows the field (a value it does not allow
    /// yet); nil for a field it does not know, which follows every known field in the text.
    public var position: Int?

    public init(field: String, value: JSONValue, context: VersionVector = VersionVector(), position: Int? = nil) {
        self.field = field
        self.value = value
        self.context = context
        self.position = position
    }
}

/// A delete's `seen` for a field this schema does not know.
public struct PendingSeen: Sendable, Equatable {
    public var field: String
    public var seen: VersionVector

    public init(field: String, seen: VersionVector) {
        self.field = field
        self.seen = seen
    }
}

// MARK: - RecordKind

/// A kind of record: the three the teams keep and the reference data they point to are built
/// in; a later schema version may add kinds (docs/operations.md §11). Kinds are only ever
/// appended, so a kind's position (``ordinal``) never changes meaning.
public struct RecordKind: Hashable, Sendable, Comparable, RawRepresentable, CustomStringConvertible {
    public let rawValue: String
    /// The kind's position in the schema's list of kinds.
    public let ordinal: Int

    init(_ rawValue: String, _ ordinal: Int) {
        self.rawValue = rawValue
        self.ordinal = ordinal
    }

    public static let visit = RecordKind("visit", 0)          // 走访记录
    public static let dispute = RecordKind("dispute", 1)      // 矛盾纠纷
    public static let project = RecordKind("project", 2)      // 帮扶项目
    public static let region = RecordKind("region", 3)        // 行政区划
    public static let cadre = RecordKind("cadre", 4)          // 驻村干部
    public static let household = RecordKind("household", 5)  // 农户

    /// The kinds every schema begins with.
    public static let builtin: [RecordKind] = [.visit, .dispute, .project, .region, .cadre, .household]

    /// The kinds people keep, in the order screens list them: visits, disputes, projects,
    /// households, cadres, then those a later schema added (regions are reference data).
    public static var listed: [RecordKind] { [.visit, .dispute, .project, .household, .cadre] + added }

    /// The kinds a later schema added to the built-in ones.
    public static var added: [RecordKind] { Array(allCases.dropFirst(builtin.count)) }

    /// Every kind of the schema this process holds, in order.
    public static var allCases: [RecordKind] { Schema.current.kinds.map(\.kind) }

    /// A kind of the schema this process holds, by key.
    public init?(rawValue: String) {
        guard let k = Schema.current.kind(named: rawValue) else { return nil }
        self = k
    }

    public var spec: KindSpec {
        let kinds = Schema.current.kinds
        guard ordinal < kinds.count else { fatalError("record kind \(rawValue) is not in the schema this process holds (version \(Schema.current.version))") }
        return kinds[ordinal]
    }

    public var description: String { rawValue }

    public static func == (a: RecordKind, b: RecordKind) -> Bool { a.ordinal == b.ordinal && a.rawValue == b.rawValue }
    public func hash(into h: inout Hasher) { h.combine(ordinal) }
    public static func < (a: RecordKind, b: RecordKind) -> Bool { a.ordinal < b.ordinal }

    /// Looks a kind up by key (`dispute`) or Chinese label (`矛盾纠纷`).
    public init?(named name: String) {
        if let k = RecordKind(rawValue: name) {
            self = k
        } else if let k = RecordKind.allCases.first(where: { $0.spec.label == name }) {
            self = k
        } else {
            return nil
        }
    }
}

// MARK: - KindSpec

/// A record kind's fields and how people see it.
///
/// A class: it is consulted on every write, and passing one reference is cheaper than
/// copying its arrays and dictionary.
public final class KindSpec: Sendable {
    public let kind: RecordKind
    /// 走访记录, 矛盾纠纷, …
    public let label: String
    public let fields: [FieldSpec]
    /// The field holding the record's division code, which decides scope; nil for regions,
    /// whose id is their code.
    public let regionField: String?
    /// Fields shown by `record list`, in order.
    public let listFields: [String]

    private let index: [String: Int]

    init(_ kind: RecordKind, _ label: String, regionField: String?, list: [String], _ fields: [FieldSpec]) {
        self.kind = kind
        self.label = label
        self.fields = fields
        self.regionField = regionField
        self.listFields = list
        var index: [String: Int] = [:]
        for (i, f) in fields.enumerated() {
            precondition(index[f.name] == nil && !f.name.hasPrefix("_"), "bad field \(f.name)")
            index[f.name] = i
        }
        self.index = index
    }

    public func field(_ name: String) -> FieldSpec? { index[name].map { fields[$0] } }

    /// The lengths a record's division code may have (the prefix of its id).
    public var regionLengths: Set<Int> {
        guard let rf = regionField, let f = field(rf), case .regionCode(let l) = f.type else { return RegionCode.anyLevel }
        return l
    }

    /// Why writing `value` to `field` of record `row` is impossible regardless of its state, or nil:
    /// the region field must equal the division code the record's id starts with.
    public func regionProblem(field: String, value: FieldValue, row: String) -> String? {
        guard field == regionField, case .text(let v) = value, let r = RecordID.region(of: row), v != r else { return nil }
        return "must be \(r), the division code this record's id starts with: a record cannot move to another place (delete it and add it again there)"
    }

    /// The position of a field; stable across schema versions (fields are only appended).
    public func fieldIndex(_ name: String) -> Int? { index[name] }

    /// Finds a field by key or Chinese label (CSV headers from Excel ledgers use labels).
    public func field(keyOrLabel s: String) -> FieldSpec? {
        field(s) ?? fields.first(where: { $0.label == s })
    }

    /// A field name that does not exist, explained with the fields that do.
    public func unknownField(_ name: String) -> InputError {
        InputError(
            "\(kind.rawValue).\(name.prefix(60))",
            "\(label) has no field \"\(name.prefix(60))\"; its fields are " + fields.map(\.name).joined(separator: ", "))
    }
}

// MARK: - RecordKind

/// The kinds of record a replica holds: the three the teams keep, and the reference data
/// they point to.
public enum RecordKind: String, CaseIterable, Sendable, Comparable {
    case visit       // 走访记录
    case dispute     // 矛盾纠纷
    case project     // 帮扶项目
    case region      // 行政区划
    case cadre       // 驻村干部
    case household   // 农户

    public var spec: KindSpec { Schema.current.kinds[ordinal] }

    /// The kind's position in `allCases`, without building the array.
    public var ordinal: Int {
        switch self {
        case .visit: return 0
        case .dispute: return 1
        case .project: return 2
        case .region: return 3
        case .cadre: return 4
        case .household: return 5
        }
    }

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

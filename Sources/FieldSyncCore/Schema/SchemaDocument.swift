// MARK: - Schema document

/// The schema as a JSON document: what `fieldsync schema --json` prints, what
/// `fieldsync-hub schema load FILE` reads, what a hub hands to laptops (`GET /v1/schema`) and
/// what every store keeps (docs/cli.md "schema", docs/operations.md §11).
///
/// ```json
/// {"version": 2, "kinds": [{"kind": "dispute", "label": "矛盾纠纷", "regionField": "village",
///   "list": ["reported_on", …], "fields": [{"name": "status", "label": "办理状态",
///   "type": "choice", "required": true, "values": ["受理", …]}, …]}, …]}
/// ```
///
/// Keys that only describe (`idFormat`, `maxBytes`, `unit`, `format`) are written for people and
/// ignored when read, so a printed schema can be edited and loaded again.
extension Schema {
    /// Limits on a document from outside.
    public static let maxFields = 200
    public static let maxKinds = 64
    public static let maxChoices = 500
    public static let maxLabelLength = 100
    public static let maxHelpLength = 1_000
    public static let maxTextLength = 100_000

    public var document: JSONValue {
        .object(JSONObject([
            ("version", .int(Int64(version))),
            ("kinds", .array(kinds.map { k in
                .object(JSONObject([
                    ("kind", .string(k.kind.rawValue)), ("label", .string(k.label)),
                    ("regionField", k.regionField.map { .string($0) } ?? .null),
                    ("idFormat", .string(k.kind == .region ? "division code (6, 9 or 12 digits)" : "32 lowercase hex digits")),
                    ("list", .array(k.listFields.map { .string($0) })),
                    ("fields", .array(k.fields.map(\.document))),
                ]))
            })),
        ]))
    }

    /// Reads and checks a schema document. Errors name the place (`kinds[1].fields[3].values`).
    public init(document json: JSONValue) throws(InputError) {
        guard case .object(let o) = json else { throw InputError("schema", "expected a JSON object, got \(json.typeName)") }
        for k in o.keys where k != "version" && k != "kinds" {
            throw InputError("schema", "unknown key \"\(k.prefix(60))\"; a schema document has version and kinds")
        }
        guard let v = o["version"]?.intValue else { throw InputError("version", "is missing or not a whole number") }
        guard v >= 1, v <= ChangeCodec.maxSchemaVersion else {
            throw InputError("version", "a schema version is 1…\(ChangeCodec.maxSchemaVersion), got \(v)")
        }
        guard case .array(let items)? = o["kinds"] else { throw InputError("kinds", "is missing or not an array") }
        var kinds: [KindSpec] = []
        for (i, item) in items.enumerated() {
            let at = "kinds[\(i)]"
            do throws(InputError) {
                kinds.append(try KindSpec(document: item, position: i))
            } catch {
                throw error.within(at)
            }
        }
        // The built-in kinds come first, in order; a later version appends its own.
        let builtin = RecordKind.builtin.map(\.rawValue)
        guard kinds.count >= builtin.count, Array(kinds.prefix(builtin.count).map(\.kind.rawValue)) == builtin else {
            let got = kinds.map(\.kind.rawValue).joined(separator: ", ")
            throw InputError("kinds", "must begin with the built-in record kinds in order: \(builtin.joined(separator: ", ")); got \(got)")
        }
        guard kinds.count <= Schema.maxKinds else { throw InputError("kinds", "at most \(Schema.maxKinds) kinds") }
        guard Set(kinds.map(\.kind.rawValue)).count == kinds.count else { throw InputError("kinds", "a kind is listed twice") }
        self.init(version: Int(v), kinds: kinds)
    }

    /// Parses and checks a schema document's text.
    public init(documentText text: String) throws(InputError) {
        let json: JSONValue
        do { json = try JSONValue.parse(text) } catch { throw InputError("schema", "not valid JSON: \(error)") }
        try self.init(document: json)
    }

    /// Why `new` cannot follow `old`, in plain words; empty when it may. Only additive changes
    /// are allowed — a new field at the end of a kind, a new choice at the end of a list, a longer
    /// maximum, a wider range, other labels, help and list columns — so that every value, every
    /// stored record and every change made under `old` stays valid, in the same place, under
    /// `new` (docs/operations.md §11). A field is never retyped, renamed, removed or reused.
    public static func evolutionProblems(from old: Schema, to new: Schema) -> [String] {
        var out: [String] = []
        if new.version <= old.version {
            out.append("the version must grow: \(new.version) does not follow \(old.version)")
        }
        for (o, n) in zip(old.kinds, new.kinds) {
            let k = o.kind.rawValue
            if o.kind != n.kind { out.append("kind \(k) must stay at its place"); continue }
            if o.regionField != n.regionField { out.append("\(k): the region field cannot change") }
            if n.fields.count < o.fields.count {
                let gone = o.fields.map(\.name).filter { n.field($0) == nil }
                out.append("\(k): fields cannot be removed (\(gone.joined(separator: ", ")))")
            }
            for (i, (of, nf)) in zip(o.fields, n.fields).enumerated() {
                let at = "\(k).\(of.name)"
                guard of.name == nf.name else {
                    out.append("\(at): field \(i + 1) of \(k) is now \"\(nf.name)\"; a field is never renamed or moved (add a new field at the end instead)")
                    continue
                }
                if of.name == o.regionField, of.type != nf.type {
                    // Record ids start with it and scope is judged on it: a receiver on the older
                    // schema could neither place nor keep such a record.
                    out.append("\(at): the field that places records cannot change at all")
                } else if let p = typeChange(of.type, nf.type) { out.append("\(at): \(p)") }
                if of.required != nf.required {
                    out.append("\(at): whether it is required cannot change (records and changes made before would not fit)")
                }
            }
            for nf in n.fields.dropFirst(o.fields.count) where nf.required {
                out.append("\(k).\(nf.name): a new field cannot be required (the records already made lack it)")
            }
        }
        if new.kinds.count < old.kinds.count {
            out.append("record kinds cannot be removed (" + old.kinds.dropFirst(new.kinds.count).map(\.kind.rawValue).joined(separator: ", ") + ")")
        }
        return out
    }

    /// What a store holding `stored`, in a process holding `held`, moves to when `offered` is
    /// loaded: the newest of the three, after checking that each step is additive. Offering an
    /// older schema than the store holds, or another schema under a version number in use, is
    /// refused. One rule for the laptop's replica and both hub stores.
    public static func target(stored: Schema, held: Schema, offered: Schema) throws(InputError) -> Schema {
        guard offered.version >= stored.version else {
            throw InputError("schema version \(offered.version)", "this store already holds schema version \(stored.version); a schema is never taken back")
        }
        var newest = stored
        for next in [held, offered] {
            if next.version == newest.version {
                guard next.document.compactText == newest.document.compactText else {
                    throw InputError("schema version \(next.version)", "another schema is held under the same version number: a version names one schema only (give the new one a higher version)")
                }
            } else if next.version > newest.version {
                let problems = evolutionProblems(from: newest, to: next)
                guard problems.isEmpty else {
                    throw InputError("schema version \(next.version)", "is not an additive change of version \(newest.version): " + problems.joined(separator: "; "))
                }
                newest = next
            } else {
                let problems = evolutionProblems(from: next, to: newest)
                guard problems.isEmpty else {
                    throw InputError("schema version \(newest.version)", "is not an additive change of version \(next.version): " + problems.joined(separator: "; "))
                }
            }
        }
        return newest
    }

    static func typeChange(_ o: FieldType, _ n: FieldType) -> String? {
        switch (o, n) {
        case (.text(let a), .text(let b)):
            return b < a ? "its maximum length can only grow (\(a) → \(b))" : nil
        case (.integer(let a), .integer(let b)):
            return b.lowerBound <= a.lowerBound && b.upperBound >= a.upperBound ? nil
                : "its range can only widen (\(a.lowerBound)…\(a.upperBound) → \(b.lowerBound)…\(b.upperBound))"
        case (.choice(let a), .choice(let b)), (.choices(let a), .choices(let b)):
            return b.count >= a.count && Array(b.prefix(a.count)) == a ? nil
                : "choices can only be added at the end of the list (\(a.joined(separator: "、")) → \(b.joined(separator: "、")))"
        case (.regionCode(let a), .regionCode(let b)):
            return a.isSubset(of: b) ? nil : "its division code lengths can only be added to"
        case (.reference(let a), .reference(let b)):
            return a == b ? nil : "it cannot point to another kind of record"
        case (.longText, .longText), (.money, .money), (.date, .date), (.bool, .bool), (.geo, .geo):
            return nil
        default:
            return "its type cannot change (\(o.name) → \(n.name)); add a new field instead"
        }
    }
}

// MARK: - KindSpec document

extension KindSpec {
    convenience init(document json: JSONValue, position: Int) throws(InputError) {
        guard case .object(let o) = json else { throw InputError("", "expected a JSON object, got \(json.typeName)") }
        let allowed: Set<String> = ["kind", "label", "regionField", "idFormat", "list", "fields"]
        for k in o.keys where !allowed.contains(k) {
            throw InputError("", "unknown key \"\(k.prefix(60))\"; a kind has " + allowed.sorted().joined(separator: ", "))
        }
        guard let key = o["kind"]?.stringValue else { throw InputError("kind", "is missing") }
        if let p = FieldName.problem(key) { throw InputError("kind", "a kind key, like a field key: \(p)") }
        let kind: RecordKind
        if position < RecordKind.builtin.count {
            kind = RecordKind.builtin[position]
            guard key == kind.rawValue else { throw InputError("kind", "kind \(position + 1) is \(kind.rawValue), got \"\(key.prefix(60))\"") }
        } else {
            kind = RecordKind(key, position)
        }
        let label = try SchemaText.label(o["label"], at: "label")
        guard case .array(let items)? = o["fields"], !items.isEmpty else { throw InputError("fields", "is missing or empty") }
        guard items.count <= Schema.maxFields else { throw InputError("fields", "at most \(Schema.maxFields) fields") }
        var fields: [FieldSpec] = []
        var seen = Set<String>()
        for (i, item) in items.enumerated() {
            let f: FieldSpec
            do throws(InputError) { f = try FieldSpec(document: item) } catch { throw error.within("fields[\(i)]") }
            guard seen.insert(f.name).inserted else { throw InputError("fields[\(i)].name", "\"\(f.name)\" appears twice") }
            fields.append(f)
        }
        var regionField: String?
        switch o["regionField"] {
        case nil, .null?: regionField = nil
        case .string(let s)?:
            guard let f = fields.first(where: { $0.name == s }), case .regionCode = f.type else {
                throw InputError("regionField", "\"\(s.prefix(60))\" is not a region_code field of this kind")
            }
            regionField = s
        default: throw InputError("regionField", "a field name or null")
        }
        var list: [String] = []
        if let l = o["list"] {
            guard case .array(let names) = l else { throw InputError("list", "an array of field names") }
            for n in names {
                guard case .string(let s) = n, seen.contains(s) else { throw InputError("list", "\(n.compactText.prefix(60)) is not a field of this kind") }
                list.append(s)
            }
        }
        if position >= RecordKind.builtin.count, regionField == nil {
            // Scope is judged on the place a record belongs to: every added kind has one.
            throw InputError("regionField", "a new kind names its region_code field (the place a record belongs to, which decides who sees it)")
        }
        self.init(kind, label, regionField: regionField, list: list, fields)
    }
}

// MARK: - FieldSpec document

extension FieldSpec {
    public var document: JSONValue {
        var o: JSONObject = ["name": .string(name), "label": .string(label), "type": .string(type.name), "required": .bool(required)]
        switch type {
        case .text(let n): o["maxLength"] = .int(Int64(n))
        case .longText: o["maxBytes"] = .int(Int64(FieldType.longTextMaxBytes))
        case .integer(let r): o["min"] = .int(r.lowerBound); o["max"] = .int(r.upperBound)
        case .money: o["unit"] = "分 (fen)"; o["min"] = .int(0)
        case .choice(let v), .choices(let v): o["values"] = .array(v.map { .string($0) })
        case .regionCode(let l): o["digits"] = .array(l.sorted().map { .int(Int64($0)) })
        case .reference(let k): o["references"] = .string(k.rawValue)
        case .date: o["format"] = "YYYY-MM-DD"
        case .geo: o["format"] = "lat,lon"
        case .bool: break
        }
        if !help.isEmpty { o["help"] = .string(help) }
        return .object(o)
    }

    init(document json: JSONValue) throws(InputError) {
        guard case .object(let o) = json else { throw InputError("", "expected a JSON object, got \(json.typeName)") }
        let allowed: Set<String> = ["name", "label", "type", "required", "help", "maxLength", "maxBytes", "min", "max", "unit",
                                    "values", "digits", "references", "format"]
        for k in o.keys where !allowed.contains(k) {
            throw InputError("", "unknown key \"\(k.prefix(60))\"; a field has " + allowed.sorted().joined(separator: ", "))
        }
        guard let name = o["name"]?.stringValue else { throw InputError("name", "is missing") }
        if let p = FieldName.problem(name) { throw InputError("name", p) }
        let at = name
        let label = try SchemaText.label(o["label"], at: "\(at).label")
        var required = false
        switch o["required"] {
        case nil: break
        case .bool(let b)?: required = b
        default: throw InputError("\(at).required", "true or false")
        }
        var help = ""
        if let h = o["help"] {
            guard case .string(let s) = h, s.unicodeScalars.count <= Schema.maxHelpLength else {
                throw InputError("\(at).help", "a string of at most \(Schema.maxHelpLength) characters")
            }
            help = s
        }
        guard let typeName = o["type"]?.stringValue else { throw InputError("\(at).type", "is missing") }
        func int(_ key: String) throws(InputError) -> Int64 {
            guard let v = o[key]?.intValue else { throw InputError("\(at).\(key)", "is missing or not a whole number") }
            return v
        }
        func values() throws(InputError) -> [String] {
            guard case .array(let items)? = o["values"], !items.isEmpty, items.count <= Schema.maxChoices else {
                throw InputError("\(at).values", "an array of 1…\(Schema.maxChoices) choices")
            }
            var out: [String] = []
            for i in items {
                let s = try SchemaText.label(i, at: "\(at).values")
                guard !out.contains(s) else { throw InputError("\(at).values", "\"\(s)\" appears twice") }
                out.append(s)
            }
            return out
        }
        let type: FieldType
        switch typeName {
        case "text":
            let n = try int("maxLength")
            guard n >= 1, n <= Int64(Schema.maxTextLength) else { throw InputError("\(at).maxLength", "1…\(Schema.maxTextLength)") }
            type = .text(maxLength: Int(n))
        case "long_text": type = .longText
        case "integer":
            let lo = try int("min"), hi = try int("max")
            guard lo <= hi else { throw InputError("\(at).min", "min \(lo) is above max \(hi)") }
            type = .integer(lo...hi)
        case "money_fen": type = .money
        case "date": type = .date
        case "boolean": type = .bool
        case "choice": type = .choice(try values())
        case "choices": type = .choices(try values())
        case "region_code":
            guard case .array(let items)? = o["digits"], !items.isEmpty else { throw InputError("\(at).digits", "an array of lengths (6, 9, 12)") }
            var l = Set<Int>()
            for i in items {
                guard let d = i.intValue, RegionCode.anyLevel.contains(Int(d)) else { throw InputError("\(at).digits", "each length is 6, 9 or 12") }
                l.insert(Int(d))
            }
            type = .regionCode(l)
        case "reference":
            guard let k = o["references"]?.stringValue.flatMap(RecordKind.init(rawValue:)) else {
                throw InputError("\(at).references", "names a record kind: " + RecordKind.allCases.map(\.rawValue).joined(separator: ", "))
            }
            type = .reference(k)
        case "geo": type = .geo
        default:
            throw InputError("\(at).type", "\"\(typeName.prefix(40))\" is not a field type; types are text, long_text, integer, money_fen, date, boolean, choice, choices, region_code, reference, geo")
        }
        self.init(name, label, type, required: required, help: help)
    }
}

enum SchemaText {
    static func label(_ v: JSONValue?, at: String) throws(InputError) -> String {
        guard case .string(let s)? = v, !s.isEmpty, s.unicodeScalars.count <= Schema.maxLabelLength, !s.utf8.contains(0) else {
            throw InputError(at, "a text of 1…\(Schema.maxLabelLength) characters")
        }
        return s
    }
}

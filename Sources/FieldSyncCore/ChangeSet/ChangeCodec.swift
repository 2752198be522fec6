// MARK: - ChangeCodec

/// The one encoder and decoder of changes as JSON (Protocol/changeset.md).
///
///     {"id":"9f3c2a1b4d5e6f70:42","kind":"dispute","row":"0193…","hlc":"1763784245123-0",
///      "author":"王芳","schema":1,
///      "fields":{"status":{"value":"已化解","seen":{"9f3c2a1b4d5e6f70":41}}}}
///
/// Decoding checks everything a replica relies on (ids, kind, every field's type, the
/// schema version), so a change that decodes can be merged without further checks.
public enum ChangeCodec {
    public static let maxAuthorLength = 100
    public static let maxNoteLength = 2000
    /// Most entries in one `seen` vector (and in each `rowSeen` vector): one per site that ever
    /// wrote the field, far more than a township's laptops. A vector past it would make every
    /// later edit of the record carry and compare it, for good (issue 9).
    public static let maxSeenEntries = 256
    /// Most change ids in `resolves`.
    public static let maxResolves = 100
    /// The highest schema version a change may name (a bound, not a schema anyone has).
    public static let maxSchemaVersion: Int64 = 1_000_000
    /// Most writes in one change that this schema cannot read (a newer schema's).
    public static let maxPendingWrites = 64
    /// Largest value, in bytes, of a write this schema cannot read.
    public static let maxPendingValueBytes = 65_536

    // MARK: Encoding

    public static func encode(_ c: Change) -> JSONValue {
        let spec = c.kind.spec
        var fields = JSONObject()
        for item in ordered(c) {
            var entry = JSONObject()
            switch item {
            case .write(let w):
                if w.field == RowState.deletedField {
                    entry["value"] = .bool(w.value == .integer(1))
                } else {
                    entry["value"] = spec.field(w.field)!.encode(w.value)
                }
                if !w.context.isEmpty { entry["seen"] = encode(w.context) }
                fields[w.field] = .object(entry)
            case .pending(let p):
                entry["value"] = p.value
                if !p.context.isEmpty { entry["seen"] = encode(p.context) }
                fields[p.field] = .object(entry)
            }
        }
        var o = JSONObject()
        o["id"] = .string(c.id.description)
        o["kind"] = .string(c.kind.rawValue)
        o["row"] = .string(c.row)
        o["hlc"] = .string(c.hlc.description)
        o["author"] = .string(c.author)
        o["schema"] = .int(Int64(c.schema))
        o["fields"] = .object(fields)
        if let rc = c.rowContext {
            var seen = JSONObject()
            for f in spec.fields where rc[f.name] != nil && !rc[f.name]!.isEmpty {
                seen[f.name] = encode(rc[f.name]!)
            }
            for p in c.pendingRowSeen where !p.seen.isEmpty { seen[p.field] = encode(p.seen) }
            o["rowSeen"] = .object(seen)
        }
        if let note = c.note { o["note"] = .string(note) }
        if let r = c.resolves { o["resolves"] = .array(r.map { .string($0.description) }) }
        return .object(o)
    }

    /// One entry of a change's `fields`, in canonical order.
    enum Entry {
        case write(FieldWrite)
        case pending(PendingWrite)
    }

    /// A change's field writes in canonical order (changeset.md §2.3): fields in schema order,
    /// then fields of a newer schema this one does not know in the order they came, `_deleted`
    /// last. Fields are only ever appended to a schema, so every schema that knows a field
    /// puts it in the same place.
    static func ordered(_ c: Change) -> [Entry] {
        if c.pending.isEmpty { return c.writes.map { .write($0) } }
        let spec = c.kind.spec
        let n = spec.fields.count
        var keyed: [(Int, Int, Entry)] = []
        keyed.reserveCapacity(c.writes.count + c.pending.count)
        for (i, w) in c.writes.enumerated() {
            let pos = w.field == RowState.deletedField ? 2 * n + 2 : 2 * (spec.fieldIndex(w.field) ?? n)
            keyed.append((pos, i, .write(w)))
        }
        for (i, p) in c.pending.enumerated() {
            keyed.append((p.position.map { 2 * $0 } ?? 2 * n + 1, c.writes.count + i, .pending(p)))
        }
        keyed.sort { ($0.0, $0.1) < ($1.0, $1.1) }
        return keyed.map(\.2)
    }

    /// The canonical text of a change, written straight to bytes: the same text as
    /// `encode(c).compactText`, without building a JSON tree (this is on every write's path).
    public static func canonicalText(_ c: Change) -> String { String(decoding: canonicalBytes(c), as: UTF8.self) }

    /// The canonical text's UTF-8 bytes, for writers that store or send bytes (the change log):
    /// no String is made and checked again.
    public static func canonicalBytes(_ c: Change) -> [UInt8] {
        var o: [UInt8] = []
        o.reserveCapacity(256)
        func key(_ k: StaticString) {
            o.append(0x22)
            o.append(contentsOf: UnsafeBufferPointer(start: k.utf8Start, count: k.utf8CodeUnitCount))
            o.append(0x22)
            o.append(0x3A)
        }
        func str(_ s: String) { JSONWriter.writeString(s, into: &o) }
        func hex(_ site: SiteID) {
            o.append(0x22)
            site.appendHex(to: &o)
            o.append(0x22)
        }
        func vector(_ v: VersionVector) {
            o.append(0x7B)
            for (n, e) in v.entries.enumerated() {
                if n > 0 { o.append(0x2C) }
                hex(e.site)
                o.append(0x3A)
                JSONWriter.writeInt(e.counter, into: &o)
            }
            o.append(0x7D)
        }
        let spec = c.kind.spec
        o.append(0x7B)
        key("id"); o.append(0x22); c.id.site.appendHex(to: &o); o.append(0x3A); JSONWriter.writeInt(c.id.counter, into: &o); o.append(0x22); o.append(0x2C)
        key("kind"); str(c.kind.rawValue); o.append(0x2C)
        key("row"); str(c.row); o.append(0x2C)
        key("hlc"); o.append(0x22); JSONWriter.writeInt(c.hlc.millis, into: &o); o.append(0x2D); JSONWriter.writeInt(Int64(c.hlc.counter), into: &o); o.append(0x22); o.append(0x2C)
        key("author"); str(c.author); o.append(0x2C)
        key("schema"); JSONWriter.writeInt(Int64(c.schema), into: &o); o.append(0x2C)
        key("fields"); o.append(0x7B)
        func write(_ w: FieldWrite) {
            str(w.field)
            o.append(0x3A); o.append(0x7B)
            key("value")
            if w.field == RowState.deletedField {
                o.append(contentsOf: (w.value == .integer(1) ? "true" : "false").utf8)
            } else {
                let type = spec.fields[spec.fieldIndex(w.field)!].type
                switch (type, w.value) {
                case (_, .null): o.append(contentsOf: "null".utf8)
                case (.bool, .integer(let i)): o.append(contentsOf: (i != 0 ? "true" : "false").utf8)
                case (.choices, .text(let t)): o.append(contentsOf: t.utf8)  // stored as canonical JSON
                case (_, .integer(let i)): JSONWriter.writeInt(i, into: &o)
                case (_, .text(let t)): str(t)
                }
            }
            if !w.context.isEmpty { o.append(0x2C); key("seen"); vector(w.context) }
            o.append(0x7D)
        }
        if c.pending.isEmpty {
            for (n, w) in c.writes.enumerated() {
                if n > 0 { o.append(0x2C) }
                write(w)
            }
        } else {
            for (n, item) in ordered(c).enumerated() {
                if n > 0 { o.append(0x2C) }
                switch item {
                case .write(let w): write(w)
                case .pending(let p):
                    str(p.field)
                    o.append(0x3A); o.append(0x7B)
                    key("value")
                    JSONWriter.write(p.value, into: &o, indent: nil, level: 0)
                    if !p.context.isEmpty { o.append(0x2C); key("seen"); vector(p.context) }
                    o.append(0x7D)
                }
            }
        }
        o.append(0x7D)
        if let rc = c.rowContext {
            o.append(0x2C); key("rowSeen"); o.append(0x7B)
            var first = true
            for f in spec.fields {
                guard let v = rc[f.name], !v.isEmpty else { continue }
                if !first { o.append(0x2C) }
                first = false
                str(f.name); o.append(0x3A); vector(v)
            }
            for p in c.pendingRowSeen where !p.seen.isEmpty {
                if !first { o.append(0x2C) }
                first = false
                str(p.field); o.append(0x3A); vector(p.seen)
            }
            o.append(0x7D)
        }
        if let note = c.note { o.append(0x2C); key("note"); str(note) }
        if let r = c.resolves {
            o.append(0x2C); key("resolves"); o.append(0x5B)
            for (n, id) in r.enumerated() {
                if n > 0 { o.append(0x2C) }
                o.append(0x22); id.site.appendHex(to: &o); o.append(0x3A); JSONWriter.writeInt(id.counter, into: &o); o.append(0x22)
            }
            o.append(0x5D)
        }
        o.append(0x7D)
        return o
    }

    public static func encode(_ v: VersionVector) -> JSONValue {
        .object(JSONObject(v.entries.map { ($0.site.hex, JSONValue.int($0.counter)) }))
    }

    // MARK: Decoding

    static let topKeys: Set<String> = ["id", "kind", "row", "hlc", "author", "schema", "fields", "rowSeen", "note", "resolves"]

    /// Decodes and checks one change. Errors name the JSON path (`fields.status.value`).
    public static func decode(_ json: JSONValue, schema: Schema = .current) throws(InputError) -> Change {
        guard case .object(let o) = json else { throw InputError("change", "expected a JSON object, got \(json.typeName)") }
        let id = try identity(o)
        let where_ = "change \(id)"
        do throws(InputError) {
            let version = try requiredInt(o, "schema")
            guard version >= 1 else { throw InputError("schema", "schema version must be ≥ 1, got \(version)") }
            guard version <= maxSchemaVersion else {
                throw InputError("schema", "schema version must be at most \(maxSchemaVersion), got \(version)")
            }
            // A newer schema's change is kept, not refused: what this schema cannot read of it
            // travels along untouched (changeset.md §2.4).
            let newer = version > Int64(schema.version)
            let kindText = try requiredString(o, "kind")
            guard let kind = schema.kind(named: kindText) else {
                if newer {
                    throw InputError("kind", "record kind \"\(kindText.prefix(60))\" comes with schema version \(version); this FieldSync knows up to \(schema.version): upgrade it", newerSchema: true)
                }
                throw InputError("kind", "unknown record kind \"\(kindText.prefix(60))\"; kinds are " + schema.kinds.map(\.kind.rawValue).joined(separator: ", "))
            }
            let spec = schema.spec(kind)
            let row = try requiredString(o, "row")
            if let p = RecordID.problem(row, spec: spec) { throw InputError("row", p) }
            let (hlc, author, note, resolves) = try header(o)
            guard case .object(let fields)? = o["fields"] else {
                throw InputError("fields", o["fields"] == nil ? "is missing" : "expected an object of field writes")
            }
            guard !fields.isEmpty else { throw InputError("fields", "a change writes at least one field") }
            var writes: [(Int, FieldWrite)] = []
            var pending: [PendingWrite] = []
            for (name, entry) in fields {
                let at = "fields.\(name.prefix(60))"
                let position: Int
                let field: FieldSpec?
                if name == RowState.deletedField {
                    position = spec.fields.count
                    field = nil
                } else if let i = spec.fieldIndex(name) {
                    position = i
                    field = spec.fields[i]
                } else if newer {
                    position = -1
                    field = nil
                    if let p = FieldName.problem(name) { throw InputError(at, p) }
                } else {
                    throw spec.unknownField(name).within(at)
                }
                let (raw, context) = try fieldWrite(entry, at: at, of: id)
                if position < 0 {
                    try checkPendingValue(raw, at: at + ".value")
                    guard pending.count < maxPendingWrites else {
                        throw InputError("fields", "more than \(maxPendingWrites) fields this schema does not know")
                    }
                    pending.append(PendingWrite(field: name, value: raw, context: context))
                    continue
                }
                let value: FieldValue
                if let field {
                    do throws(InputError) {
                        value = try field.decode(raw)
                    } catch {
                        // A newer schema may allow more (a new choice, a longer text): keep the
                        // write to merge once this replica knows that schema. Never the field
                        // that places the record, which scope depends on.
                        guard newer, field.name != spec.regionField else { throw error.within("\(at).value \(field.location(in: kind))") }
                        try checkPendingValue(raw, at: at + ".value")
                        pending.append(PendingWrite(field: name, value: raw, context: context, position: position))
                        continue
                    }
                } else {
                    guard case .bool(let b) = raw else { throw InputError(at + ".value", "_deleted is true or false, got \(raw.typeName)") }
                    value = .integer(b ? 1 : 0)
                }
                if let field, let p = spec.regionProblem(field: field.name, value: value, row: row) {
                    throw InputError("\(at).value \(field.location(in: kind))", p)
                }
                writes.append((position, FieldWrite(field: name, value: value, context: context)))
            }
            writes.sort { $0.0 < $1.0 }
            var rowContext: [String: VersionVector]?
            var pendingSeen: [PendingSeen] = []
            let deletes = writes.contains { $0.1.field == RowState.deletedField && $0.1.value == .integer(1) }
            if let rs = o["rowSeen"] {
                guard deletes else { throw InputError("rowSeen", "only a delete (_deleted: true) carries rowSeen") }
                guard case .object(let ro) = rs else { throw InputError("rowSeen", "expected an object of field → seen") }
                var ctx: [String: VersionVector] = [:]
                for (name, v) in ro {
                    guard spec.fieldIndex(name) != nil else {
                        guard newer else { throw spec.unknownField(name).within("rowSeen") }
                        if let p = FieldName.problem(name) { throw InputError("rowSeen.\(name.prefix(60))", p) }
                        guard pendingSeen.count < maxPendingWrites else {
                            throw InputError("rowSeen", "more than \(maxPendingWrites) fields this schema does not know")
                        }
                        let vector = try decodeVector(v, at: "rowSeen.\(name)")
                        if !vector.isEmpty { pendingSeen.append(PendingSeen(field: name, seen: vector)) }
                        continue
                    }
                    // An empty vector is the same as none, and writers omit it: keep it out, so the
                    // change equals its canonical text decoded again (found by the fuzz harness).
                    let vector = try decodeVector(v, at: "rowSeen.\(name)")
                    if !vector.isEmpty { ctx[name] = vector }
                }
                rowContext = ctx
            } else if deletes {
                rowContext = [:]
            }
            var change = Change(id: id, kind: kind, row: row, hlc: hlc, author: author, schema: Int(version),
                                writes: writes.map(\.1), rowContext: rowContext, note: note, resolves: resolves)
            // In canonical order (known fields by schema position, then unknown ones as received),
            // so that a change equals its canonical text decoded again (found by the fuzzer).
            change.pending = pending.enumerated().sorted { ($0.element.position ?? Int.max, $0.offset) < ($1.element.position ?? Int.max, $1.offset) }.map(\.element)
            change.pendingRowSeen = pendingSeen
            return change
        } catch {
            throw error.within(where_)
        }
    }

    /// One entry of a change's `fields`, `{"value": …, "seen": {…}}`: its raw value and its
    /// vector, which may not name the change itself or a later change of its own site.
    static func fieldWrite(_ entry: JSONValue, at: String, of id: ChangeID) throws(InputError) -> (JSONValue, VersionVector) {
        guard case .object(let e) = entry else { throw InputError(at, "expected {\"value\": …, \"seen\": {…}}") }
        for k in e.keys where k != "value" && k != "seen" {
            throw InputError(at, "unknown key \"\(k.prefix(60))\"; a field write has value and seen")
        }
        guard let raw = e["value"] else { throw InputError(at + ".value", "is missing") }
        let seen = try decodeVector(e["seen"], at: at + ".seen")
        if seen[id.site] >= id.counter {
            throw InputError(at + ".seen", "a change cannot have seen itself or a later change of its own site")
        }
        return (raw, seen)
    }

    /// A change's id, once its keys are known ones (any kind, any schema).
    static func identity(_ o: JSONObject) throws(InputError) -> ChangeID {
        for k in o.keys where !topKeys.contains(k) {
            throw InputError("change", "unknown key \"\(k.prefix(60))\"; a change has " + topKeys.sorted().joined(separator: ", "))
        }
        let idText = try requiredString(o, "id")
        guard let id = ChangeID(idText) else {
            throw InputError("id", "a change id is SITE:COUNTER (16 hex digits, a colon, a counter from 1 to \(ChangeID.maxCounter)), got \"\(idText.prefix(60))\"")
        }
        return id
    }

    /// A change's clock reading, author, note and settled changes, checked (any kind, any schema).
    static func header(_ o: JSONObject) throws(InputError) -> (HybridTimestamp, String, String?, [ChangeID]?) {
        let hlcText = try requiredString(o, "hlc")
        guard let hlc = HybridTimestamp(hlcText), hlc.millis > 0 else {
            throw InputError("hlc", "a clock reading is MILLIS-COUNTER (e.g. 1763784245123-0), got \"\(hlcText.prefix(60))\"")
        }
        let author = try requiredString(o, "author")
        guard !author.isEmpty, author.unicodeScalars.count <= maxAuthorLength, !author.utf8.contains(0) else {
            throw InputError("author", "an author is 1…\(maxAuthorLength) characters without NUL")
        }
        var note: String?
        if let n = o["note"] {
            guard case .string(let s) = n, s.unicodeScalars.count <= maxNoteLength, !s.utf8.contains(0) else {
                throw InputError("note", "a note is a string of at most \(maxNoteLength) characters")
            }
            note = s
        }
        var resolves: [ChangeID]?
        if let r = o["resolves"] {
            guard case .array(let items) = r, !items.isEmpty, items.count <= maxResolves else {
                throw InputError("resolves", "an array of 1…\(maxResolves) change ids")
            }
            var ids: [ChangeID] = []
            for i in items {
                guard case .string(let t) = i, let id = ChangeID(t) else {
                    throw InputError("resolves", "each entry is a change id SITE:COUNTER (counter 1…\(ChangeID.maxCounter))")
                }
                ids.append(id)
            }
            resolves = ids
        }
        return (hlc, author, note, resolves)
    }

    /// A change read while it carried writes this process's schema did not know, read again
    /// from its text when the process has since taken the change's schema (a push decoded while
    /// an administrator loaded it): what could not be read then merges now. Unchanged otherwise.
    public static func readAgainIfKnown(_ c: Change, text: @autoclosure () -> String) -> Change {
        guard c.hasPending, c.schema <= Schema.current.version, let json = try? JSONValue.parse(text()),
              let known = try? decode(json) else { return c }
        return known
    }

    /// Checks a value kept for a newer schema: JSON without fractions or exponents (their text
    /// would not survive being written again), nested at most 8 deep, at most 64 KiB.
    @discardableResult
    static func checkPendingValue(_ v: JSONValue, at: String) throws(InputError) -> Int {
        var bytes = 0
        func walk(_ v: JSONValue, depth: Int) throws(InputError) {
            guard depth <= 8 else { throw InputError(at, "nested more than 8 deep") }
            switch v {
            case .double: throw InputError(at, "a number with a fraction or exponent; FieldSync numbers are integers (money in 分)")
            case .string(let s): bytes += s.utf8.count
            case .array(let items): for i in items { try walk(i, depth: depth + 1) }
            case .object(let o):
                for (k, x) in o {
                    bytes += k.utf8.count
                    try walk(x, depth: depth + 1)
                }
            case .null, .bool, .int: bytes += 8
            }
        }
        try walk(v, depth: 0)
        guard bytes <= maxPendingValueBytes else {
            throw InputError(at, "about \(bytes) bytes; a value of a field this schema does not know is at most \(maxPendingValueBytes)")
        }
        return bytes
    }

    static func decodeVector(_ json: JSONValue?, at: String) throws(InputError) -> VersionVector {
        guard let json else { return VersionVector() }
        guard case .object(let o) = json else { throw InputError(at, "expected an object of site → counter") }
        guard o.count <= maxSeenEntries else {
            throw InputError(at, "\(o.count) entries; a vector holds at most \(maxSeenEntries) (one per site that wrote the field)")
        }
        var entries: [(SiteID, Int64)] = []
        entries.reserveCapacity(o.count)
        for (siteText, c) in o {
            guard let site = SiteID(hex: siteText) else { throw InputError(at, "\"\(siteText.prefix(40))\" is not a site id (16 lowercase hex digits)") }
            guard case .int(let n) = c, n >= 1, n <= ChangeID.maxCounter else {
                throw InputError("\(at).\(siteText)", "a counter is an integer from 1 to \(ChangeID.maxCounter)")
            }
            entries.append((site, n))
        }
        return VersionVector(sorting: entries)
    }

    static func requiredString(_ o: JSONObject, _ key: String) throws(InputError) -> String {
        guard let v = o[key] else { throw InputError(key, "is missing") }
        guard case .string(let s) = v else { throw InputError(key, "expected a string, got \(v.typeName)") }
        return s
    }

    static func requiredInt(_ o: JSONObject, _ key: String) throws(InputError) -> Int64 {
        guard let v = o[key] else { throw InputError(key, "is missing") }
        guard case .int(let i) = v else { throw InputError(key, "expected an integer, got \(v.typeName)") }
        return i
    }
}

// MARK: - ForeignChange

/// A change of a record kind the schema held here does not have yet: a kind a newer schema
/// added (changeset.md §2.4). None of it merges here. It is kept as its canonical text, relayed
/// as it came in pushes, pulls, snapshots and bundles, and merged in place once this replica or
/// hub takes the schema that defines the kind. What is read of it is what the rules need without
/// the kind: its id, its record (whose division code decides scope), its clock reading, and the
/// sites its `seen` vectors name.
public struct ForeignChange: Sendable, Equatable {
    public var id: ChangeID
    /// The kind's key, as the newer schema names it.
    public var kind: String
    public var row: String
    public var hlc: HybridTimestamp
    public var author: String
    public var schema: Int
    /// Every site its `seen` and `rowSeen` vectors name, sorted.
    public var seenSites: [SiteID]
    /// Its canonical text (changeset.md §2.3, fields in the order they came).
    public var text: String
}

// MARK: - ReceivedChange

/// A change as a replica or hub receives it: one its schema reads, or one of a record kind it
/// does not hold yet.
public enum ReceivedChange: Sendable, Equatable {
    case known(Change)
    case foreign(ForeignChange)

    public var id: ChangeID {
        switch self {
        case .known(let c): c.id
        case .foreign(let f): f.id
        }
    }

    public var row: String {
        switch self {
        case .known(let c): c.row
        case .foreign(let f): f.row
        }
    }

    public var hlc: HybridTimestamp {
        switch self {
        case .known(let c): c.hlc
        case .foreign(let f): f.hlc
        }
    }

    /// The record kind's key.
    public var kindName: String {
        switch self {
        case .known(let c): c.kind.rawValue
        case .foreign(let f): f.kind
        }
    }

    /// The change, when this schema reads it.
    public var known: Change? {
        if case .known(let c) = self { return c }
        return nil
    }

    /// Its canonical text.
    public var canonicalText: String {
        switch self {
        case .known(let c): ChangeCodec.canonicalText(c)
        case .foreign(let f): f.text
        }
    }

    /// Every site named in its `seen` and `rowSeen` vectors.
    public var seenSites: [SiteID] {
        switch self {
        case .known(let c):
            var s = Set<SiteID>()
            for w in c.writes { for e in w.context { s.insert(e.site) } }
            for v in (c.rowContext ?? [:]).values { for e in v { s.insert(e.site) } }
            for w in c.pending { for e in w.context { s.insert(e.site) } }
            for p in c.pendingRowSeen { for e in p.seen { s.insert(e.site) } }
            return s.sorted()
        case .foreign(let f): return f.seenSites
        }
    }
}

// MARK: - Reading a received change

extension ChangeCodec {
    /// Most field writes in one change of a kind this schema does not hold (a kind has at most
    /// ``Schema/maxFields`` fields, and `_deleted`).
    public static let maxForeignWrites = Schema.maxFields + 1
    /// Most bytes of values in one change of a kind this schema does not hold (a long text's limit).
    public static let maxForeignBytes = 1 << 20
    /// Most changes, and bytes of their texts, kept for one record of a kind this schema does not
    /// hold: a snapshot sends every one of them, so a record cannot grow without bound before the
    /// schema arrives (the sender is told to offer more later: `kept_full`, sync.md §3).
    public static let maxKeptChangesPerRecord = 1000
    public static let maxKeptBytesPerRecord = 8 << 20

    /// Reads a received change: as ``decode(_:schema:)`` does, except that a change of a record
    /// kind this schema does not hold, made with a newer schema, is read as a ``ForeignChange``
    /// instead of refused. A kind unknown to a change's own schema version is still an error.
    public static func decodeReceived(_ json: JSONValue, schema: Schema = .current) throws(InputError) -> ReceivedChange {
        if case .object(let o) = json, case .string(let k)? = o["kind"], schema.kind(named: k) == nil,
           case .int(let v)? = o["schema"], v > Int64(schema.version), v <= maxSchemaVersion {
            return .foreign(try decodeForeign(o))
        }
        return .known(try decode(json, schema: schema))
    }

    /// Checks everything that does not need the kind's definition — ids, the record id's form,
    /// clock, author, note, each write's form, vectors, sizes — and writes the canonical text:
    /// the header keys in their order, the fields in the order they came with `_deleted` last,
    /// vectors by site, values compact. The text of a change its own writer wrote canonically
    /// comes out byte for byte, so manifests that list it still prove it.
    static func decodeForeign(_ o: JSONObject) throws(InputError) -> ForeignChange {
        let id = try identity(o)
        do throws(InputError) {
            let version = try requiredInt(o, "schema")
            let kind = try requiredString(o, "kind")
            if let p = FieldName.problem(kind) { throw InputError("kind", "a record kind's key is written like a field key: \(p)") }
            let row = try requiredString(o, "row")
            if let p = RecordID.problem(row, kindName: kind, lengths: RegionCode.anyLevel) { throw InputError("row", p) }
            let (hlc, author, note, resolves) = try header(o)
            guard case .object(let fields)? = o["fields"] else {
                throw InputError("fields", o["fields"] == nil ? "is missing" : "expected an object of field writes")
            }
            guard !fields.isEmpty else { throw InputError("fields", "a change writes at least one field") }
            guard fields.count <= maxForeignWrites else {
                throw InputError("fields", "\(fields.count) writes; a record kind has at most \(Schema.maxFields) fields and _deleted")
            }
            var sites = Set<SiteID>()
            var writes: [(name: String, value: JSONValue, seen: VersionVector)] = []
            var deletes = false
            var valueBytes = 0
            var deleteWrite: (name: String, value: JSONValue, seen: VersionVector)?
            for (name, entry) in fields {
                let at = "fields.\(name.prefix(60))"
                if name != RowState.deletedField, let p = FieldName.problem(name) { throw InputError(at, p) }
                let (raw, seen) = try fieldWrite(entry, at: at, of: id)
                for s in seen { sites.insert(s.site) }
                if name == RowState.deletedField {
                    guard case .bool(let b) = raw else { throw InputError(at + ".value", "_deleted is true or false, got \(raw.typeName)") }
                    deletes = b
                    deleteWrite = (name, raw, seen)
                } else {
                    valueBytes += try checkPendingValue(raw, at: at + ".value")
                    guard valueBytes <= maxForeignBytes else {
                        throw InputError("fields", "more than \(maxForeignBytes) bytes of values; a change of a record kind this schema does not hold carries at most that")
                    }
                    writes.append((name, raw, seen))
                }
            }
            if let d = deleteWrite { writes.append(d) }
            var rowSeen: [(String, VersionVector)]?
            if let rs = o["rowSeen"] {
                guard deletes else { throw InputError("rowSeen", "only a delete (_deleted: true) carries rowSeen") }
                guard case .object(let ro) = rs else { throw InputError("rowSeen", "expected an object of field → seen") }
                guard ro.count <= Schema.maxFields else { throw InputError("rowSeen", "\(ro.count) fields; a record kind has at most \(Schema.maxFields)") }
                var entries: [(String, VersionVector)] = []
                for (name, v) in ro {
                    if let p = FieldName.problem(name) { throw InputError("rowSeen.\(name.prefix(60))", p) }
                    let vector = try decodeVector(v, at: "rowSeen.\(name.prefix(60))")
                    for s in vector { sites.insert(s.site) }
                    if !vector.isEmpty { entries.append((name, vector)) }
                }
                rowSeen = entries
            } else if deletes {
                rowSeen = []
            }
            let text = foreignText(id: id, kind: kind, row: row, hlc: hlc, author: author, schema: version, writes: writes,
                                   rowSeen: rowSeen, note: note, resolves: resolves)
            return ForeignChange(id: id, kind: kind, row: row, hlc: hlc, author: author, schema: Int(version),
                                 seenSites: sites.sorted(), text: text)
        } catch {
            throw error.within("change \(id)")
        }
    }

    /// The canonical text of a change of a kind this schema does not hold, written as
    /// ``canonicalBytes(_:)`` writes a known one.
    static func foreignText(id: ChangeID, kind: String, row: String, hlc: HybridTimestamp, author: String, schema: Int64,
                            writes: [(name: String, value: JSONValue, seen: VersionVector)], rowSeen: [(String, VersionVector)]?,
                            note: String?, resolves: [ChangeID]?) -> String {
        var o: [UInt8] = []
        o.reserveCapacity(256)
        func raw(_ s: StaticString) { o.append(contentsOf: UnsafeBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount)) }
        func str(_ s: String) { JSONWriter.writeString(s, into: &o) }
        func changeID(_ c: ChangeID) {
            o.append(0x22); c.site.appendHex(to: &o); o.append(0x3A); JSONWriter.writeInt(c.counter, into: &o); o.append(0x22)
        }
        func vector(_ v: VersionVector) {
            o.append(0x7B)
            for (n, e) in v.entries.enumerated() {
                if n > 0 { o.append(0x2C) }
                o.append(0x22); e.site.appendHex(to: &o); o.append(0x22); o.append(0x3A)
                JSONWriter.writeInt(e.counter, into: &o)
            }
            o.append(0x7D)
        }
        raw("{\"id\":"); changeID(id)
        raw(",\"kind\":"); str(kind)
        raw(",\"row\":"); str(row)
        raw(",\"hlc\":\""); JSONWriter.writeInt(hlc.millis, into: &o); o.append(0x2D); JSONWriter.writeInt(Int64(hlc.counter), into: &o); o.append(0x22)
        raw(",\"author\":"); str(author)
        raw(",\"schema\":"); JSONWriter.writeInt(schema, into: &o)
        raw(",\"fields\":{")
        for (n, w) in writes.enumerated() {
            if n > 0 { o.append(0x2C) }
            str(w.name)
            raw(":{\"value\":")
            JSONWriter.write(w.value, into: &o, indent: nil, level: 0)
            if !w.seen.isEmpty { raw(",\"seen\":"); vector(w.seen) }
            o.append(0x7D)
        }
        o.append(0x7D)
        if let rowSeen {
            raw(",\"rowSeen\":{")
            for (n, (name, v)) in rowSeen.enumerated() {
                if n > 0 { o.append(0x2C) }
                str(name); o.append(0x3A); vector(v)
            }
            o.append(0x7D)
        }
        if let note { raw(",\"note\":"); str(note) }
        if let resolves {
            raw(",\"resolves\":[")
            for (n, r) in resolves.enumerated() {
                if n > 0 { o.append(0x2C) }
                changeID(r)
            }
            o.append(0x5D)
        }
        o.append(0x7D)
        return String(decoding: o, as: UTF8.self)
    }
}

// MARK: - Reading a kept change again

extension ChangeCodec {
    /// A change kept for a newer schema, read again with the schema now held.
    public enum KeptReading: Sendable {
        /// It reads (its kind is known now); writes of a schema newer still may remain pending.
        case readable(Change)
        /// Its kind is still one this schema does not hold.
        case stillNewer
        /// This schema holds what it needs and finds it invalid: it never merges.
        case refused(id: String, why: String)
    }

    /// Why a change is set aside when its kept text is not the canonical form a schema that reads
    /// it gives it: receivers that know the schema would compute other digests for it.
    public static let notCanonical = "not in its canonical form (changeset.md §2.3): its writer put fields, choices or vectors out of order; not merged"

    /// Reads a kept change's stored text with `schema` (the one just taken).
    public static func readKept(_ text: String, schema: Schema) -> KeptReading {
        guard let json = try? JSONValue.parse(text) else { return .refused(id: "?", why: "invalid: the kept text is not JSON") }
        do {
            switch try decodeReceived(json, schema: schema) {
            case .known(let c): return .readable(c)
            case .foreign: return .stillNewer
            }
        } catch {
            let id = json["id"]?.stringValue.map { String($0.prefix(60)) } ?? "?"
            return .refused(id: id, why: "invalid under schema \(schema.version): \(error)")
        }
    }
}

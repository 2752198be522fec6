import FieldSyncCore
@testable import FieldSyncReplica
import Foundation
import Testing

/// Runs every merge test vector in `Protocol/vectors` (changeset.md §6) against the replica.
///
/// For each vector and each listed order: a fresh replica, the listed changes applied one
/// delivery at a time (repeats are re-deliveries), then the records, the listed registers and
/// every open conflict compared with the vector's `expect`.
@Suite("Protocol vectors (Protocol/vectors, changeset.md §6)")
struct ProtocolVectorSpec {
    /// This file is `Tests/FieldSyncReplicaTests/ProtocolVectorSpec.swift`; the repository is two levels up.
    static let repoRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let vectorsDir = repoRoot.appendingPathComponent("Protocol/vectors")

    static func vectorFiles() -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: vectorsDir.path)) ?? []
        return names.filter { $0.hasSuffix(".json") }.sorted()
    }

    @Test("the vectors folder holds vectors")
    func vectorsFolderIsNotEmpty() {
        #expect(!Self.vectorFiles().isEmpty, "no *.json test vectors in \(Self.vectorsDir.path)")
    }

    @Test("vector", arguments: vectorFiles())
    func vector(_ file: String) throws {
        let path = Self.vectorsDir.appendingPathComponent(file).path
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let doc: JSONValue
        do { doc = try JSONValue.parse(text) } catch {
            Issue.record("\(file): not JSON: \(error)")
            return
        }
        guard let v = Vector(doc, file: file) else { return }

        // Decode every change once; a vector whose changes do not decode is itself broken.
        var changes: [ReceivedChange] = []
        for (i, c) in v.changes.enumerated() {
            do { changes.append(try ChangeCodec.decodeReceived(c)) } catch {
                Issue.record("\(file): change \(i) refused by ChangeCodec.decodeReceived: \(error)")
                return
            }
        }
        // Changes of a kind this schema lacks: their canonical text is exactly the vector's.
        for k in v.kept {
            let text = changes.first { $0.id.description == k.id }.map(\.canonicalText)
            #expect(text == k.text, "\(file): canonical text of kept change \(k.id):\n\(text ?? "none")\nexpected\n\(k.text)")
        }
        #expect(!v.orders.isEmpty, "\(file): no orders")

        for (n, order) in v.orders.enumerated() {
            let where_ = "\(file) order #\(n) \(order)"
            guard order.allSatisfy({ changes.indices.contains($0) }) else {
                Issue.record("\(where_): index out of range (\(changes.count) changes)")
                continue
            }
            let dir = TempDir("ProtocolVector\(file)")
            let replica = try makeReplica(dir, "vector-order-\(n)")
            var applied = true
            for idx in order {
                do {
                    let (outcomes, _) = try replica.applyEach([Replica.Incoming(changes[idx])], source: .peer, peer: nil)
                    if case .refused(let code, let e) = outcomes.first { throw ReplicaError.invalidInput(e.within(code.rawValue)) }
                } catch {
                    Issue.record("\(where_): applying change \(idx) (\(v.changes[idx]["id"]?.stringValue ?? "?")) threw \(error)")
                    applied = false
                    break
                }
            }
            guard applied else { continue }
            try check(v, replica, where_)
        }
    }

    private func check(_ v: Vector, _ replica: Replica, _ where_: String) throws {
        // Kept whole: each once, as its canonical text, and nothing else of an unknown kind.
        let kept = try replica.changes().filter { $0.change == nil }
        #expect(kept.map(\.id.description).sorted() == v.kept.map(\.id).sorted(), "\(where_): kept \(kept.map(\.id.description))")
        for k in v.kept { #expect(kept.first { $0.id.description == k.id }?.body == k.text, "\(where_): kept text of \(k.id)") }

        // Records: exactly the expected ones, every field (unlisted = null), and `deleted`.
        var actual: [String: Record] = [:]
        for kind in RecordKind.allCases {
            for rec in try replica.records(kind, includeDeleted: true) { actual["\(kind.rawValue) \(rec.id)"] = rec }
        }
        let expectedKeys = Set(v.records.map { "\($0.kind.rawValue) \($0.row)" })
        #expect(Set(actual.keys) == expectedKeys,
                "\(where_): records \(actual.keys.sorted()), expected \(expectedKeys.sorted())")
        for exp in v.records {
            guard let rec = actual["\(exp.kind.rawValue) \(exp.row)"] else { continue }
            #expect(rec.deleted == exp.deleted,
                    "\(where_): \(exp.kind.rawValue) \(exp.row) deleted = \(rec.deleted), expected \(exp.deleted)")
            let got = rec.json["fields"] ?? .null
            for spec in exp.kind.spec.fields {
                let want = exp.fields[spec.name] ?? .null
                let have = got[spec.name] ?? .null
                #expect(have == want,
                        "\(where_): \(exp.kind.rawValue) \(exp.row) field \(spec.name) = \(render(have)), expected \(render(want))")
            }
            for name in exp.fields.keys where exp.kind.spec.fieldIndex(name) == nil {
                Issue.record("\(where_): vector lists unknown field \(exp.kind.rawValue).\(name)")
            }
        }

        // Registers: exactly the listed entry ids.
        for r in v.registers {
            guard let kind = v.kindOf[r.row] else {
                Issue.record("\(where_): register row \(r.row) appears in no change")
                continue
            }
            let state = try replica.rowState(kind, r.row)
            let ids = (state?[r.field]?.entries ?? []).map(\.dot.description).sorted()
            #expect(ids == r.ids.sorted(),
                    "\(where_): register \(r.row).\(r.field) holds \(ids), expected \(r.ids.sorted())")
        }

        // Conflicts: exactly the listed ones, each with exactly its ids.
        var open: [String] = []
        for (key, rec) in actual {
            guard let state = try replica.rowState(rec.kind, rec.id) else {
                Issue.record("\(where_): record \(key) has no row state")
                continue
            }
            for c in state.conflicts {
                open.append("\(rec.id) \(c.field) \(c.dots.map(\.description).sorted())")
            }
        }
        let wanted = v.conflicts.map { "\($0.row) \($0.field) \($0.ids.sorted())" }
        #expect(open.sorted() == wanted.sorted(),
                "\(where_): open conflicts \(open.sorted()), expected \(wanted.sorted())")
    }

    private func render(_ v: JSONValue) -> String {
        switch v {
        case .null: "null"
        case .bool(let b): "\(b)"
        case .int(let i): "\(i)"
        case .double(let d): "\(d)"
        case .string(let s): "\"\(s)\""
        case .array(let a): "[" + a.map(render).joined(separator: ", ") + "]"
        case .object(let o): "{" + o.map { "\($0.key): \(render($0.value))" }.joined(separator: ", ") + "}"
        }
    }
}

/// One vector file, read strictly: a malformed vector is reported, not skipped.
private struct Vector {
    struct Rec { let kind: RecordKind; let row: String; let deleted: Bool; let fields: [String: JSONValue] }
    struct Ids { let row: String; let field: String; let ids: [String] }
    struct Kept { let id: String; let text: String }

    let changes: [JSONValue]
    let orders: [[Int]]
    let records: [Rec]
    let registers: [Ids]
    let conflicts: [Ids]
    /// Changes of a kind the schema lacks, kept whole: id and canonical text (changeset.md §2.4).
    let kept: [Kept]
    /// Record kind of every row named by a change.
    let kindOf: [String: RecordKind]

    init?(_ doc: JSONValue, file: String) {
        func bad(_ what: String) { Issue.record("\(file): malformed vector: \(what)") }
        guard case .array(let changes)? = doc["changes"], !changes.isEmpty else { bad("changes"); return nil }
        guard case .array(let ordersJ)? = doc["orders"] else { bad("orders"); return nil }
        var orders: [[Int]] = []
        for o in ordersJ {
            guard case .array(let a) = o else { bad("orders"); return nil }
            var ints: [Int] = []
            for x in a { guard let i = x.intValue else { bad("orders"); return nil }; ints.append(Int(i)) }
            orders.append(ints)
        }
        guard let expect = doc["expect"]?.objectValue else { bad("expect"); return nil }

        var kindOf: [String: RecordKind] = [:]
        for c in changes {
            guard let name = c["kind"]?.stringValue, let row = c["row"]?.stringValue else { bad("change without kind/row"); return nil }
            // A kind of a newer schema (§2.4) places no record here.
            if let k = RecordKind(rawValue: name) { kindOf[row] = k }
        }

        var records: [Rec] = []
        guard case .array(let recsJ)? = expect["records"] else { bad("expect.records"); return nil }
        for r in recsJ {
            guard let kind = r["kind"]?.stringValue.flatMap(RecordKind.init(rawValue:)),
                  let row = r["row"]?.stringValue,
                  case .bool(let deleted)? = r["deleted"],
                  let fieldsO = r["fields"]?.objectValue
            else { bad("expect.records entry"); return nil }
            var fields: [String: JSONValue] = [:]
            for (k, v) in fieldsO { fields[k] = v }
            records.append(Rec(kind: kind, row: row, deleted: deleted, fields: fields))
        }

        func idsList(_ key: String) -> [Ids]? {
            guard case .array(let a)? = expect[key] else { return nil }
            var out: [Ids] = []
            for x in a {
                guard let row = x["row"]?.stringValue, let field = x["field"]?.stringValue,
                      case .array(let idsJ)? = x["ids"] else { return nil }
                let ids = idsJ.compactMap(\.stringValue)
                guard ids.count == idsJ.count else { return nil }
                out.append(Ids(row: row, field: field, ids: ids))
            }
            return out
        }
        guard let registers = idsList("registers") else { bad("expect.registers"); return nil }
        guard let conflicts = idsList("conflicts") else { bad("expect.conflicts"); return nil }

        var kept: [Kept] = []
        if case .array(let a)? = expect["kept"] {
            for x in a {
                guard let id = x["id"]?.stringValue, let text = x["text"]?.stringValue else { bad("expect.kept entry"); return nil }
                kept.append(Kept(id: id, text: text))
            }
        } else if expect["kept"] != nil {
            bad("expect.kept"); return nil
        }
        self.kept = kept
        self.changes = changes
        self.orders = orders
        self.records = records
        self.registers = registers
        self.conflicts = conflicts
        self.kindOf = kindOf
    }
}

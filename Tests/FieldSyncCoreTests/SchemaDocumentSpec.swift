import FieldSyncCore
import Foundation
import Testing

/// The schema as a document (issue 12 point 1). Nothing here installs a schema in the test
/// process (every later test would hold it): the documents are read and compared only;
/// taking one is tested with real processes (SchemaUpgradeFleetSpec).
@Suite struct SchemaDocumentSpec {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func text(_ path: String) throws -> String {
        try String(contentsOfFile: root.appendingPathComponent(path).path, encoding: .utf8)
    }

    @Test func theBuiltInSchemaIsProtocolSchemaJSON() throws {
        let published = try JSONValue.parse(try Self.text("Protocol/schema.json"))
        #expect(published == Schema.builtin.document, "Protocol/schema.json differs from the schema built in: regenerate it with `fieldsync schema --json`")
    }

    @Test func aDocumentReadsBackToTheSameSchema() throws {
        let again = try Schema(document: Schema.builtin.document)
        #expect(again.version == 1)
        #expect(again.document.compactText == Schema.builtin.document.compactText)
        #expect(Schema.evolutionProblems(from: Schema.builtin, to: again) == ["the version must grow: 1 does not follow 1"])
    }

    @Test func theExampleVersionTwoIsALawfulSuccessor() throws {
        let v2 = try Schema(documentText: try Self.text("docs/schema/schema-v2-example.json"))
        #expect(v2.version == 2)
        #expect(Schema.evolutionProblems(from: .builtin, to: v2).isEmpty)
        #expect(v2.spec(.dispute).field("mediation_fee_fen")?.type == .money)
        #expect(v2.spec(.dispute).fieldIndex("mediation_fee_fen") == Schema.builtin.spec(.dispute).fields.count)
        // Going back is never lawful: the fields would be removed.
        #expect(Schema.evolutionProblems(from: v2, to: .builtin).contains { $0.contains("cannot be removed") })
        // A change made with schema 2 reads with it: the new field and choice are known, none pending.
        let change: JSONValue = [
            "id": "00000000000000a1:1", "kind": "dispute", "row": "520221105201-0123456789abcdef0123456789abcdef",
            "hlc": "1764547200000-0", "author": "王芳", "schema": 2,
            "fields": ["status": ["value": "司法确认"], "mediation_fee_fen": ["value": 5000]],
        ]
        let known = try ChangeCodec.decode(change, schema: v2)
        #expect(!known.hasPending && known.writes.map(\.field) == ["status", "mediation_fee_fen"])
        let kept = try ChangeCodec.decode(change, schema: .builtin)
        #expect(kept.pending.map(\.field) == ["status", "mediation_fee_fen"])
        // Offered to a store on 1 by a process on 1: the target is 2; offering 1 to a store on 2 is refused.
        #expect(try Schema.target(stored: .builtin, held: .builtin, offered: v2).version == 2)
        #expect(throws: InputError.self) { try Schema.target(stored: v2, held: v2, offered: .builtin) }
    }

    /// A kind added after the built-in ones: it needs the field that places its records.
    @Test func anAddedKindNeedsItsPlaceAndAUniqueKey() throws {
        var doc = try JSONValue.parse(try Self.text("docs/schema/schema-v2-example.json")).objectValue!
        var kinds = doc["kinds"]!.arrayValue!
        #expect(kinds.count == 7 && kinds[6]["kind"]?.stringValue == "meeting")
        var meeting = kinds[6].objectValue!
        meeting["regionField"] = .null
        kinds[6] = .object(meeting)
        doc["kinds"] = .array(kinds)
        #expect(throws: InputError.self) { try Schema(document: .object(doc)) }
        kinds[6] = kinds[1]
        doc["kinds"] = .array(kinds)
        do { _ = try Schema(document: .object(doc)); Issue.record("a kind listed twice was taken") } catch {
            #expect(error.description.contains("listed twice"), "\(error)")
        }
        let v2 = try Schema(documentText: try Self.text("docs/schema/schema-v2-example.json"))
        #expect(v2.kind(named: "meeting")?.ordinal == 6)
        #expect(Schema.builtin.kind(named: "meeting") == nil)
        #expect(Schema.evolutionProblems(from: v2, to: try Schema(document: Schema.builtin.document)).contains { $0.contains("cannot be removed (meeting)") })
    }

    /// Documents a loader must refuse, each with the place it names.
    @Test(arguments: [
        (#"{"version": 0, "kinds": []}"#, "version"),
        (#"{"version": 2}"#, "kinds"),
        (#"{"version": 2, "kinds": [], "extra": 1}"#, "unknown key"),
        (#"{"version": 2, "kinds": []}"#, "must begin with the built-in record kinds"),
        (#"[1, 2]"#, "expected a JSON object"),
        (#"{"version": 2, "kinds": [{"kind": "meeting", "label": "会议", "fields": [{"name": "a", "label": "甲", "type": "date"}]}]}"#, "kind 1 is visit"),
        (#"{"version": 2, "kinds": [{"kind": "visit", "label": "走访", "fields": [{"name": "A", "label": "甲", "type": "date"}]}]}"#, "kinds[0]: fields[0]: name"),
        (#"{"version": 2, "kinds": [{"kind": "visit", "label": "走访", "fields": [{"name": "a", "label": "甲", "type": "text"}]}]}"#, "a.maxLength"),
        (#"{"version": 2, "kinds": [{"kind": "visit", "label": "走访", "fields": [{"name": "a", "label": "甲", "type": "integer", "min": 5, "max": 1}]}]}"#, "above max"),
        (#"{"version": 2, "kinds": [{"kind": "visit", "label": "走访", "fields": [{"name": "a", "label": "甲", "type": "choice", "values": ["x", "x"]}]}]}"#, "appears twice"),
        (#"{"version": 2, "kinds": [{"kind": "visit", "label": "走访", "fields": [{"name": "a", "label": "甲", "type": "vector"}]}]}"#, "is not a field type"),
        (#"{"version": 2, "kinds": [{"kind": "visit", "label": "走访", "regionField": "a", "fields": [{"name": "a", "label": "甲", "type": "date"}]}]}"#, "not a region_code field"),
        (#"{"version": 99999999999, "kinds": []}"#, "1…1000000"),
    ])
    func aBadDocumentIsRefusedWithThePlace(_ text: String, _ expected: String) {
        do {
            _ = try Schema(documentText: text)
            Issue.record("accepted: \(text)")
        } catch {
            #expect(error.description.contains(expected), "\(error.description) lacks \(expected)")
        }
    }
}

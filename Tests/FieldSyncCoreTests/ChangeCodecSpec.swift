@testable import FieldSyncCore
import Testing

@Suite struct ChangeCodecSpec {
    static let site = SiteID(hex: "9f3c2a1b4d5e6f70")!
    static let other = SiteID(hex: "0123456789abcdef")!
    static let row = "520221105201-019aa9f1c2d34e5f8a7b6c5d4e3f2a1b"

    /// The example change of Protocol/changeset.md §2.
    static let exampleText = """
        {"id":"9f3c2a1b4d5e6f70:42","kind":"dispute","row":"520221105201-019aa9f1c2d34e5f8a7b6c5d4e3f2a1b",
         "hlc":"1763784245123-0","author":"王芳","schema":1,
         "fields":{"status":{"value":"已化解","seen":{"9f3c2a1b4d5e6f70":41}},
                   "resolved_on":{"value":"2026-11-22"}}}
        """

    static func example() throws -> JSONObject {
        try #require(JSONValue.parse(exampleText).objectValue)
    }

    /// The example with one top-level key replaced (or removed with nil).
    static func exampleWith(_ key: String, _ value: JSONValue?) throws -> JSONValue {
        var o = try example()
        o[key] = value
        return .object(o)
    }

    /// The example with `fields` replaced.
    static func exampleWithFields(_ fields: JSONValue) throws -> JSONValue {
        try exampleWith("fields", fields)
    }

    static func roundTrip(_ c: Change) throws -> Change {
        let text = ChangeCodec.encode(c).compactText
        return try ChangeCodec.decode(JSONValue.parse(text))
    }

    // MARK: Decoding the protocol's example

    @Test func theProtocolExampleDecodes() throws {
        let c = try ChangeCodec.decode(.object(Self.example()))
        #expect(c.id == ChangeID(site: Self.site, counter: 42))
        #expect(c.kind == .dispute)
        #expect(c.row == Self.row)
        #expect(c.hlc == hlc(1_763_784_245_123, 0))
        #expect(c.author == "王芳")
        #expect(c.schema == 1)
        #expect(c.rowContext == nil)
        #expect(c.note == nil)
        // writes come in schema order: status (8th field) before resolved_on (11th)
        #expect(c.writes.map(\.field) == ["status", "resolved_on"])
        #expect(c.writes[0].value == .text("已化解"))
        #expect(c.writes[0].context == vv(dot(Self.site, 41)))
        #expect(c.writes[1].value == .text("2026-11-22"))
        #expect(c.writes[1].context.isEmpty)
    }

    @Test func encodingWritesTheProtocolsKeyOrderAndOmitsEmptySeen() throws {
        let c = try ChangeCodec.decode(.object(Self.example()))
        let expected = #"{"id":"9f3c2a1b4d5e6f70:42","kind":"dispute","row":"520221105201-019aa9f1c2d34e5f8a7b6c5d4e3f2a1b","hlc":"1763784245123-0","author":"王芳","schema":1,"fields":{"status":{"value":"已化解","seen":{"9f3c2a1b4d5e6f70":41}},"resolved_on":{"value":"2026-11-22"}}}"#
        #expect(ChangeCodec.encode(c).compactText == expected)
    }

    // MARK: Round trips

    @Test func everyValueTypeSurvivesEncodeThenDecode() throws {
        let visit = Change(
            id: ChangeID(site: Self.site, counter: 7), kind: .visit, row: Self.row, hlc: hlc(1_763_784_245_123, 65535),
            author: "李明 (驻村第一书记) 😀",
            writes: [
                FieldWrite(field: "village", value: .text("520221105201")),
                FieldWrite(field: "household_id", value: .text("520221105201-0123456789abcdef0123456789abcdef"), context: vv(dot(Self.other, 3))),
                FieldWrite(field: "household_head", value: .text("张\"三\"\\\n")),
                FieldWrite(field: "cadre_name", value: .text("李明")),
                FieldWrite(field: "visit_date", value: .text("2024-02-29")),
                FieldWrite(field: "visit_kind", value: .text("院坝会")),
                FieldWrite(field: "topics", value: .text(#"["就业","医疗"]"#), context: vv(dot(Self.site, 6), dot(Self.other, 2))),
                FieldWrite(field: "attendees", value: .integer(100_000)),
                FieldWrite(field: "notes", value: .null),
                FieldWrite(field: "follow_up_done", value: .integer(1)),
                FieldWrite(field: "location", value: .text("-26.5912345,104.8307")),
            ],
            note: "电话回访确认")
        #expect(try Self.roundTrip(visit) == visit)

        let project = Change(
            id: ChangeID(site: Self.other, counter: 1), kind: .project, row: Self.row, hlc: hlc(1, 0), author: "x",
            writes: [
                FieldWrite(field: "budget_fen", value: .integer(150_000_000)),
                FieldWrite(field: "spent_fen", value: .integer(0)),
                FieldWrite(field: "households_benefiting", value: .integer(10_000_000)),
            ])
        #expect(try Self.roundTrip(project) == project)

        let region = Change(
            id: ChangeID(site: Self.other, counter: 2), kind: .region, row: "522224105", hlc: hlc(HybridTimestamp.maxMillis, 0),
            author: String(repeating: "名", count: 100),
            writes: [FieldWrite(field: "name", value: .text("某某镇")), FieldWrite(field: "level", value: .text("乡镇")),
                     FieldWrite(field: "parent_code", value: .text("522224"))])
        #expect(try Self.roundTrip(region) == region)
    }

    @Test func deleteAndUndeleteSurviveEncodeThenDecode() throws {
        let delete = Change(
            id: ChangeID(site: Self.site, counter: 43), kind: .dispute, row: Self.row, hlc: hlc(1_763_784_245_200, 1), author: "王芳",
            writes: [FieldWrite(field: "_deleted", value: .integer(1), context: vv(dot(Self.other, 9)))],
            rowContext: ["status": vv(dot(Self.site, 41), dot(Self.other, 5)), "parties": vv(dot(Self.other, 1))])
        let back = try Self.roundTrip(delete)
        #expect(back == delete)
        #expect(back.deletes)

        let undelete = Change(
            id: ChangeID(site: Self.other, counter: 10), kind: .dispute, row: Self.row, hlc: hlc(1_763_784_245_300, 0), author: "李明",
            writes: [FieldWrite(field: "_deleted", value: .integer(0), context: vv(dot(Self.site, 43)))])
        #expect(try Self.roundTrip(undelete) == undelete)
        #expect(ChangeCodec.encode(undelete)["fields"]?["_deleted"]?["value"] == .bool(false))
        #expect(ChangeCodec.encode(delete)["fields"]?["_deleted"]?["value"] == .bool(true))
    }

    @Test func writesAreReturnedInSchemaOrderWhateverTheKeyOrder() throws {
        let c = try ChangeCodec.decode(Self.exampleWithFields([
            "_deleted": ["value": false], "resolved_on": ["value": "2026-11-22"], "village": ["value": "520221105201"],
        ]))
        #expect(c.writes.map(\.field) == ["village", "resolved_on", "_deleted"])
    }

    @Test func choicesAreStoredInEnumerationOrderWithoutRepeats() throws {
        var o = try Self.example()
        o["kind"] = "visit"
        o["fields"] = ["topics": ["value": ["医疗", "就业", "医疗"]]]
        let c = try ChangeCodec.decode(.object(o))
        #expect(c.writes.first?.value == .text(#"["就业","医疗"]"#))
    }

    @Test func regionRowsAreDivisionCodes() throws {
        var o = try Self.example()
        o["kind"] = "region"
        o["fields"] = ["name": ["value": "某村"]]
        for code in ["522224", "522224105", "522224105201"] {
            o["row"] = .string(code)
            #expect(changeError(.object(o)) == nil, "\(code)")
        }
        for code in ["52222", "5222241052", Self.row] {
            o["row"] = .string(code)
            let e = changeError(.object(o))
            #expect(e?.description.contains("row") == true, "\(code)")
        }
    }

    // MARK: Refusals, each naming the place

    @Test func theProtocolsErrorExampleIsReproducedExactly() throws {
        let e = try #require(changeError(Self.exampleWithFields(["status": ["value": "已解决", "seen": ["9f3c2a1b4d5e6f70": 41]]])))
        #expect(e.description == "change 9f3c2a1b4d5e6f70:42: fields.status.value dispute.status (办理状态): \"已解决\" is not one of 受理, 调解中, 已化解, 已上报, 未化解")
        #expect(e.within("line 12").description.hasPrefix("line 12: change 9f3c2a1b4d5e6f70:42: fields.status.value"))
    }

    @Test func unknownTopLevelKeyIsRefused() throws {
        let e = try #require(changeError(Self.exampleWith("colour", "red")))
        #expect(e.description.contains("unknown key \"colour\""))
    }

    @Test(arguments: ["id", "kind", "row", "hlc", "author", "schema", "fields"])
    func missingKeyIsRefusedByName(key: String) throws {
        let e = try #require(changeError(Self.exampleWith(key, nil)), "accepted without \(key)")
        #expect(e.description.contains(key))
        #expect(e.description.contains("missing"))
    }

    @Test func unknownKindIsRefused() throws {
        let e = try #require(changeError(Self.exampleWith("kind", "meeting")))
        #expect(e.location.contains("kind"))
        #expect(e.description.contains("\"meeting\""))
        #expect(e.description.contains("change 9f3c2a1b4d5e6f70:42"))
    }

    @Test func kindLabelsAreNotKindKeys() throws {
        #expect(changeError(try Self.exampleWith("kind", "矛盾纠纷")) != nil)
        #expect(changeError(try Self.exampleWith("kind", "Dispute")) != nil)
    }

    @Test func unknownFieldIsRefused() throws {
        let e = try #require(changeError(Self.exampleWithFields(["statuz": ["value": "已化解"]])))
        #expect(e.description.contains("fields.statuz"))
        #expect(e.description.contains("has no field \"statuz\""))
    }

    @Test func unknownKeyInAFieldWriteIsRefused() throws {
        let e = try #require(changeError(Self.exampleWithFields(["status": ["value": "已化解", "seen_by": [:]]])))
        #expect(e.description.contains("fields.status"))
        #expect(e.description.contains("seen_by"))
    }

    @Test func fieldWriteWithoutValueIsRefused() throws {
        let e = try #require(changeError(Self.exampleWithFields(["status": ["seen": ["9f3c2a1b4d5e6f70": 41]]])))
        #expect(e.description.contains("fields.status.value"))
    }

    @Test func emptyFieldsAreRefused() throws {
        let e = try #require(changeError(Self.exampleWithFields([:])))
        #expect(e.description.contains("fields"))
    }

    struct WrongType: Sendable, CustomTestStringConvertible {
        let field: String
        let value: JSONValue
        let reason: String
        var testDescription: String { "\(field) = \(value.compactText)" }
    }

    @Test(arguments: [
        WrongType(field: "status", value: 5, reason: "expected a string, got integer"),
        WrongType(field: "status", value: ["已化解"], reason: "expected a string, got array"),
        WrongType(field: "agreement_signed", value: "是", reason: "expected true or false, got string"),
        WrongType(field: "agreement_signed", value: 1, reason: "expected true or false, got integer"),
        WrongType(field: "reported_on", value: 20261122, reason: "expected a string, got integer"),
    ])
    func valueOfTheWrongTypeIsRefusedNamingTheField(_ t: WrongType) throws {
        let e = try #require(changeError(Self.exampleWithFields([t.field: ["value": t.value]])))
        #expect(e.description.contains("fields.\(t.field).value dispute.\(t.field)"))
        #expect(e.description.contains(t.reason))
    }

    @Test func deletedMustBeABoolean() throws {
        let e = try #require(changeError(Self.exampleWithFields(["_deleted": ["value": 1]])))
        #expect(e.description.contains("fields._deleted.value"))
    }

    @Test func requiredFieldCannotBeCleared() throws {
        let e = try #require(changeError(Self.exampleWithFields(["status": ["value": nil]])))
        #expect(e.description.contains("fields.status.value"))
        #expect(e.description.contains("required"))
        // an optional field can
        #expect(changeError(try Self.exampleWithFields(["resolved_on": ["value": nil]])) == nil)
    }

    @Test func negativeMoneyIsRefused() throws {
        var o = try Self.example()
        o["kind"] = "project"
        o["fields"] = ["budget_fen": ["value": -1]]
        let e = try #require(changeError(.object(o)))
        #expect(e.description.contains("fields.budget_fen.value project.budget_fen (预算金额)"))
        #expect(e.description.contains("negative"))
        o["fields"] = ["budget_fen": ["value": .double(12.5)]]
        let f = try #require(changeError(.object(o)))
        #expect(f.description.contains("fields.budget_fen.value"))
        #expect(f.description.contains("whole number"))
    }

    /// changeset.md §2.1: money_fen is "0 … 10^15" (change.schema.json: maximum 1000000000000000).
    @Test func moneyUpToTenToTheFifteenFenIsAccepted() throws {
        var o = try Self.example()
        o["kind"] = "project"
        for fen: Int64 in [0, 1, 999_999_999_999_999, 1_000_000_000_000_000] {
            o["fields"] = ["budget_fen": ["value": .int(fen)]]
            #expect(changeError(.object(o)) == nil, "\(fen) 分 refused: \(String(describing: changeError(.object(o))))")
        }
        o["fields"] = ["budget_fen": ["value": .int(1_000_000_000_000_001)]]
        let e = try #require(changeError(.object(o)))
        #expect(e.description.contains("fields.budget_fen.value"))
    }

    @Test func impossibleDateIsRefused() throws {
        let e = try #require(changeError(Self.exampleWithFields(["resolved_on": ["value": "2023-02-30"]])))
        #expect(e.description.contains("fields.resolved_on.value dispute.resolved_on (化解日期)"))
        #expect(e.description.contains("2023-02-30"))
    }

    // MARK: A newer schema's changes (issue 12, changeset.md §2.4)

    /// A change of schema 2 as its writer sends it: `status` holds a choice schema 1 lacks,
    /// `mediation_fee_fen` and `witnesses` are fields schema 1 lacks (appended after every
    /// schema-1 field, so after `resolved_on`), and `parties` is an ordinary schema-1 write.
    static let newerText = #"{"id":"9f3c2a1b4d5e6f70:42","kind":"dispute","row":"520221105201-019aa9f1c2d34e5f8a7b6c5d4e3f2a1b","hlc":"1763784245123-0","author":"王芳","schema":2,"fields":{"parties":{"value":"张三、李四"},"status":{"value":"司法确认","seen":{"9f3c2a1b4d5e6f70":41}},"resolved_on":{"value":"2026-11-22"},"mediation_fee_fen":{"value":0,"seen":{"0123456789abcdef":7}},"witnesses":{"value":["王五",{"name":"赵六","phone":null}]}}}"#

    @Test func aNewerSchemasChangeDecodesKeepingWhatItCannotRead() throws {
        let c = try ChangeCodec.decode(JSONValue.parse(Self.newerText))
        #expect(c.schema == 2)
        #expect(c.writes.map(\.field) == ["parties", "resolved_on"])
        #expect(c.pending.map(\.field) == ["status", "mediation_fee_fen", "witnesses"])
        #expect(c.pending[0].position == Schema.current.spec(.dispute).fieldIndex("status"))
        #expect(c.pending[0].value == .string("司法确认"))
        #expect(c.pending[0].context == vv(dot(Self.site, 41)))
        #expect(c.pending[1].position == nil && c.pending[1].context == vv(dot(Self.other, 7)))
        #expect(c.hasPending)
    }

    @Test func aNewerSchemasChangeIsWrittenAgainByteForByte() throws {
        let c = try ChangeCodec.decode(JSONValue.parse(Self.newerText))
        #expect(ChangeCodec.canonicalText(c) == Self.newerText)
        #expect(ChangeCodec.encode(c).compactText == Self.newerText)
        #expect(try ChangeCodec.decode(JSONValue.parse(ChangeCodec.canonicalText(c))) == c)
        // Received in another order, the known fields go back to schema order and the unknown
        // ones keep the order they came in, after every known field and before _deleted.
        let shuffled = #"{"id":"9f3c2a1b4d5e6f70:43","kind":"dispute","row":"520221105201-019aa9f1c2d34e5f8a7b6c5d4e3f2a1b","hlc":"1763784245123-1","author":"王芳","schema":2,"fields":{"_deleted":{"value":true},"zeta":{"value":1},"parties":{"value":"甲"},"alpha":{"value":2}},"rowSeen":{"zeta":{"0123456789abcdef":3},"parties":{"0123456789abcdef":2}}}"#
        let d = try ChangeCodec.decode(JSONValue.parse(shuffled))
        #expect(ChangeCodec.canonicalText(d) == #"{"id":"9f3c2a1b4d5e6f70:43","kind":"dispute","row":"520221105201-019aa9f1c2d34e5f8a7b6c5d4e3f2a1b","hlc":"1763784245123-1","author":"王芳","schema":2,"fields":{"parties":{"value":"甲"},"zeta":{"value":1},"alpha":{"value":2},"_deleted":{"value":true}},"rowSeen":{"parties":{"0123456789abcdef":2},"zeta":{"0123456789abcdef":3}}}"#)
        #expect(d.pendingRowSeen == [PendingSeen(field: "zeta", seen: vv(dot(Self.other, 3)))])
    }

    @Test func thisSchemasOwnChangesMayNotCarryUnknownFields() throws {
        let e = try #require(changeError(Self.exampleWithFields(["status": ["value": "已化解"], "weather": ["value": "晴"]])))
        #expect(e.description.contains("has no field \"weather\""))
        #expect(!e.newerSchema)
        let choice = try #require(changeError(Self.exampleWithFields(["status": ["value": "司法确认"]])))
        #expect(choice.description.contains("is not one of"))
    }

    /// A meeting (a kind schema 2 adds) as its schema-2 writer sends it: fields in that schema's
    /// order, a delete's `_deleted` last.
    static let meetingText = #"{"id":"9f3c2a1b4d5e6f70:44","kind":"meeting","row":"520221105201-019aa9f1c2d34e5f8a7b6c5d4e3f2a1c","hlc":"1763784245123-2","author":"王芳","schema":2,"fields":{"village":{"value":"520221105201"},"held_on":{"value":"2026-11-28"},"topic":{"value":"人居\n环境"},"attendees":{"value":56,"seen":{"0123456789abcdef":3}},"_deleted":{"value":false}},"note":"补录","resolves":["0123456789abcdef:2"]}"#

    @Test func aNewerSchemasRecordKindIsKeptWholeAndWrittenAgainByteForByte() throws {
        // Plain decoding places changes in records: a kind it does not hold is not one it can place.
        var o = try Self.example()
        o["schema"] = 2
        o["kind"] = "meeting"
        let e = try #require(changeError(.object(o)))
        #expect(e.newerSchema && e.description.contains("meeting"))
        // Read as received, it is kept whole, its text the writer's.
        guard case .foreign(let f) = try ChangeCodec.decodeReceived(JSONValue.parse(Self.meetingText)) else {
            Issue.record("a schema-2 meeting was not read as a change of a kind this schema lacks")
            return
        }
        #expect(f.text == Self.meetingText)
        #expect(f.kind == "meeting" && f.schema == 2 && f.id == ChangeID(site: Self.site, counter: 44))
        #expect(f.row == "520221105201-019aa9f1c2d34e5f8a7b6c5d4e3f2a1c" && f.author == "王芳")
        #expect(f.seenSites == [Self.other])
        // Keys out of order, vector entries out of site order, _deleted first: the same text.
        let shuffled = #"{"schema":2,"note":"补录","fields":{"_deleted":{"value":false},"village":{"value":"520221105201"},"held_on":{"value":"2026-11-28"},"topic":{"value":"人居\u000a环境"},"attendees":{"seen":{"0123456789abcdef":3},"value":56}},"resolves":["0123456789abcdef:2"],"author":"王芳","hlc":"1763784245123-2","row":"520221105201-019aa9f1c2d34e5f8a7b6c5d4e3f2a1c","kind":"meeting","id":"9f3c2a1b4d5e6f70:44"}"#
        #expect(try ChangeCodec.decodeReceived(JSONValue.parse(shuffled)).canonicalText == Self.meetingText)
        // A delete: rowSeen kept as received, empty entries dropped.
        let delete = #"{"id":"9f3c2a1b4d5e6f70:45","kind":"meeting","row":"520221105201-019aa9f1c2d34e5f8a7b6c5d4e3f2a1c","hlc":"1763784245123-3","author":"王芳","schema":2,"fields":{"_deleted":{"value":true,"seen":{"9f3c2a1b4d5e6f70":44}}},"rowSeen":{"topic":{"9f3c2a1b4d5e6f70":44},"held_on":{}}}"#
        #expect(try ChangeCodec.decodeReceived(JSONValue.parse(delete)).canonicalText == delete.replacingOccurrences(of: #","held_on":{}"#, with: ""))
        // A kind of the change's own schema version that this schema lacks is still invalid.
        o["schema"] = 1
        #expect(throws: InputError.self) { try ChangeCodec.decodeReceived(.object(o)) }
    }

    @Test func aNewerSchemasRecordKindIsCheckedAsFarAsItCanBe() throws {
        func problem(_ edit: (inout JSONObject) -> Void) throws -> String? {
            var o = try JSONValue.parse(Self.meetingText).objectValue!
            edit(&o)
            do { _ = try ChangeCodec.decodeReceived(.object(o)); return nil } catch { return error.description }
        }
        #expect(try problem { _ in } == nil)
        #expect(try problem { $0["kind"] = "Meeting" }?.contains("kind") == true)
        #expect(try problem { $0["kind"] = "../x" }?.contains("kind") == true)
        #expect(try problem { $0["row"] = "5202-abc" }?.contains("row") == true)
        #expect(try problem { $0["row"] = "520221105201-019AA9F1C2D34E5F8A7B6C5D4E3F2A1C" }?.contains("row") == true)
        #expect(try problem { $0["hlc"] = "soon" }?.contains("hlc") == true)
        #expect(try problem { $0["author"] = "" }?.contains("author") == true)
        #expect(try problem { $0["extra"] = 1 }?.contains("unknown key") == true)
        #expect(try problem { $0["fields"] = [:] }?.contains("at least one field") == true)
        #expect(try problem { $0["fields"] = ["Topic": ["value": 1]] }?.contains("lowercase") == true)
        #expect(try problem { $0["fields"] = ["topic": ["value": .double(1.5)]] }?.contains("fraction") == true)
        #expect(try problem { $0["fields"] = ["topic": ["value": 1, "seen": ["9f3c2a1b4d5e6f70": 44]]] }?.contains("seen itself") == true)
        #expect(try problem { $0["fields"] = ["_deleted": ["value": 1]] }?.contains("true or false") == true)
        #expect(try problem { $0["rowSeen"] = ["topic": ["0123456789abcdef": 1]] }?.contains("only a delete") == true)
        let many = JSONObject((0...Schema.maxFields + 1).map { ("f\($0)", JSONValue.object(["value": 1])) })
        #expect(try problem { $0["fields"] = .object(many) }?.contains("at most \(Schema.maxFields) fields") == true)
        #expect(try problem { $0["fields"] = ["big": ["value": .string(String(repeating: "字", count: 30_000))]] }?.contains("at most 65536") == true)
    }

    @Test func whatANewerSchemaSendsIsStillBounded() throws {
        func newer(_ fields: JSONValue) throws -> InputError? {
            var o = try Self.example()
            o["schema"] = 2
            o["fields"] = fields
            return changeError(.object(o))
        }
        // the field that places the record is never left unread
        #expect(try newer(["village": ["value": "5202"]])?.description.contains("village") == true)
        // keys that could not be SQL column names, fractions, depth, size, count, seen bounds
        #expect(try newer(["Weather": ["value": 1]])?.description.contains("lowercase") == true)
        #expect(try newer(["w-x": ["value": 1]])?.description.contains("a–z, 0–9 and _") == true)
        #expect(try newer(["fee": ["value": .double(1.5)]])?.description.contains("fraction") == true)
        var deep: JSONValue = 1
        for _ in 0..<10 { deep = .array([deep]) }
        #expect(try newer(["deep": ["value": deep]])?.description.contains("nested") == true)
        #expect(try newer(["big": ["value": .string(String(repeating: "字", count: 30_000))]])?.description.contains("at most 65536") == true)
        let many = JSONObject((0...ChangeCodec.maxPendingWrites).map { ("f\($0)", JSONValue.object(["value": 1])) })
        #expect(try newer(.object(many))?.description.contains("more than \(ChangeCodec.maxPendingWrites)") == true)
        #expect(try newer(["fee": ["value": 1, "seen": ["9f3c2a1b4d5e6f70": 42]]])?.description.contains("seen itself") == true)
        #expect(try newer(["fee": ["value": 1, "extra": 2]])?.description.contains("unknown key") == true)
        var o = try Self.example()
        o["schema"] = .int(ChangeCodec.maxSchemaVersion + 1)
        #expect(changeError(.object(o))?.description.contains("at most") == true)
    }

    @Test func schemaVersionMustBeAPositiveInteger() throws {
        #expect(changeError(try Self.exampleWith("schema", 0)) != nil)
        #expect(changeError(try Self.exampleWith("schema", "1")) != nil)
        #expect(changeError(try Self.exampleWith("schema", .double(1.0))) != nil)
    }

    @Test func seenContainingTheChangesOwnIdIsRefused() throws {
        let own = try #require(changeError(Self.exampleWithFields(["status": ["value": "已化解", "seen": ["9f3c2a1b4d5e6f70": 42]]])))
        #expect(own.description.contains("fields.status.seen"))
        let later = try #require(changeError(Self.exampleWithFields(["status": ["value": "已化解", "seen": ["9f3c2a1b4d5e6f70": 43]]])))
        #expect(later.description.contains("fields.status.seen"))
        // an earlier counter of its own site is what a site normally has seen
        #expect(changeError(try Self.exampleWithFields(["status": ["value": "已化解", "seen": ["9f3c2a1b4d5e6f70": 41]]])) == nil)
        // and the same counter of another site is fine
        #expect(changeError(try Self.exampleWithFields(["status": ["value": "已化解", "seen": ["0123456789abcdef": 42]]])) == nil)
    }

    @Test(arguments: [
        ["9F3C2A1B4D5E6F70": 1] as JSONValue,   // upper-case site
        ["9f3c2a1b4d5e6f7": 1] as JSONValue,    // 15 digits
        ["9f3c2a1b4d5e6f70": 0] as JSONValue,   // counter 0
        ["9f3c2a1b4d5e6f70": -3] as JSONValue,
        ["9f3c2a1b4d5e6f70": "41"] as JSONValue,
        ["9f3c2a1b4d5e6f70": .double(41.0)] as JSONValue,
        [9, 41] as JSONValue,
    ])
    func malformedSeenIsRefused(seen: JSONValue) throws {
        let e = try #require(changeError(Self.exampleWithFields(["status": ["value": "已化解", "seen": seen]])), "\(seen.compactText) accepted")
        #expect(e.description.contains("fields.status.seen"))
    }

    @Test func rowSeenOnANonDeleteIsRefused() throws {
        let e = try #require(changeError(Self.exampleWith("rowSeen", ["status": ["9f3c2a1b4d5e6f70": 41]])))
        #expect(e.location.hasSuffix("rowSeen"))
        var o = try Self.example()
        o["fields"] = ["_deleted": ["value": false]]
        o["rowSeen"] = ["status": ["9f3c2a1b4d5e6f70": 41]]
        let undelete = try #require(changeError(.object(o)))
        #expect(undelete.location.hasSuffix("rowSeen"))
    }

    @Test func rowSeenOnADeleteIsKeptAndChecked() throws {
        var o = try Self.example()
        o["fields"] = ["_deleted": ["value": true]]
        o["rowSeen"] = ["status": ["9f3c2a1b4d5e6f70": 41], "parties": ["0123456789abcdef": 2]]
        let c = try ChangeCodec.decode(.object(o))
        #expect(c.rowContext == ["status": vv(dot(Self.site, 41)), "parties": vv(dot(Self.other, 2))])
        o["rowSeen"] = ["statuz": ["9f3c2a1b4d5e6f70": 41]]
        let e = try #require(changeError(.object(o)))
        #expect(e.description.contains("rowSeen"))
        #expect(e.description.contains("statuz"))
        o["rowSeen"] = ["status": ["9f3c2a1b4d5e6f70": 0]]
        let f = try #require(changeError(.object(o)))
        #expect(f.description.contains("rowSeen.status"))
    }

    @Test func aDeleteWithoutRowSeenHasSeenNothing() throws {
        var o = try Self.example()
        o["fields"] = ["_deleted": ["value": true]]
        let c = try ChangeCodec.decode(.object(o))
        #expect(c.rowContext == [:])
    }

    @Test(arguments: [
        "9F3C2A1B4D5E6F70:42",     // upper-case hex
        "9f3c2a1b4d5e6f70:042",    // leading zero
        "9f3c2a1b4d5e6f70:0",      // counters start at 1
        "9f3c2a1b4d5e6f70:-1",
        "9f3c2a1b4d5e6f70:+1",
        "9f3c2a1b4d5e6f70:",
        "9f3c2a1b4d5e6f70",
        "9f3c2a1b4d5e6f7:42",      // 15 hex digits
        "9f3c2a1b4d5e6f700:42",    // 17 hex digits
        "9f3c2a1b4d5e6g70:42",     // not hex
        "9f3c2a1b4d5e6f70:4:2",
        "9f3c2a1b4d5e6f70:42 ",
        " 9f3c2a1b4d5e6f70:42",
        "9f3c2a1b4d5e6f70:99999999999999999999",  // beyond 64 bits
        ":42",
        "",
    ])
    func badIdFormatsAreRefused(id: String) throws {
        let e = try #require(changeError(Self.exampleWith("id", .string(id))), "\(id) accepted")
        #expect(e.location.hasPrefix("id"))
        #expect(e.description.contains("SITE:COUNTER"))
    }

    @Test func idMustBeAString() throws {
        let e = try #require(changeError(Self.exampleWith("id", 42)))
        #expect(e.description.contains("id"))
    }

    @Test(arguments: ["0-0", "140737488355328-0", "1763784245123-65536", "1763784245123", "1763784245123-0-0", "-1763784245123-0", "1763784245123.5-0"])
    func badClockReadingsAreRefused(text: String) throws {
        let e = try #require(changeError(Self.exampleWith("hlc", .string(text))), "\(text) accepted")
        #expect(e.location.hasSuffix("hlc"))
    }

    @Test func clockReadingLimitsAreAccepted() throws {
        #expect(changeError(try Self.exampleWith("hlc", "1-0")) == nil)
        #expect(changeError(try Self.exampleWith("hlc", "140737488355327-65535")) == nil)
    }

    @Test func authorIsOneToAHundredCharactersWithoutNul() throws {
        #expect(changeError(try Self.exampleWith("author", .string(String(repeating: "王", count: 100)))) == nil)
        for bad in ["", String(repeating: "王", count: 101), "王\u{0}芳"] {
            let e = try #require(changeError(Self.exampleWith("author", .string(bad))), "\(bad.debugDescription) accepted")
            #expect(e.location.hasSuffix("author"))
        }
    }

    @Test func noteIsAtMostTwoThousandCharacters() throws {
        #expect(changeError(try Self.exampleWith("note", .string(String(repeating: "记", count: 2000)))) == nil)
        let long = try #require(changeError(Self.exampleWith("note", .string(String(repeating: "记", count: 2001)))))
        #expect(long.location.hasSuffix("note"))
        #expect(changeError(try Self.exampleWith("note", 5)) != nil)
        #expect(changeError(try Self.exampleWith("note", "a\u{0}b")) != nil)
    }

    @Test func aChangeMustBeAnObject() throws {
        let e = try #require(changeError(["9f3c2a1b4d5e6f70:42"]))
        #expect(e.description.contains("object"))
    }
}

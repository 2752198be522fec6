import FieldSyncCore
import FieldSyncReplica
import Foundation

/// Does FieldSync's own JSON parser earn its place (issue 13 point 9)? The same change sets —
/// realistic visit logs and short records, as a pulled page holds them (one JSON array of
/// canonical changes) — parsed by FieldSync's strict parser, by Foundation's JSONSerialization
/// and by Foundation's JSONDecoder into typed mirrors of a change; and FieldSync's full decoding
/// (parse, then every check of ChangeCodec) for what the apply path really pays. Best of 5
/// interleaved rounds each, as ratios to FieldSync's parser.
enum JSONParserBench {
    /// A field write as JSONDecoder sees it: any JSON value, and `seen`.
    struct FieldShape: Decodable {
        let value: AnyJSON
        let seen: [String: Int64]?
    }

    /// A change as JSONDecoder sees it: the envelope typed, the fields by name.
    struct ChangeShape: Decodable {
        let id: String
        let kind: String
        let row: String
        let hlc: String
        let author: String
        let schema: Int
        let fields: [String: FieldShape]
        let rowSeen: [String: [String: Int64]]?
        let note: String?
    }

    /// Any JSON value, for JSONDecoder.
    indirect enum AnyJSON: Decodable {
        case null, bool(Bool), int(Int64), double(Double), string(String), array([AnyJSON]), object([String: AnyJSON])

        init(from decoder: Decoder) throws {
            let c = try decoder.singleValueContainer()
            if c.decodeNil() { self = .null } else if let b = try? c.decode(Bool.self) { self = .bool(b) } else if let i = try? c.decode(Int64.self) {
                self = .int(i)
            } else if let d = try? c.decode(Double.self) { self = .double(d) } else if let s = try? c.decode(String.self) {
                self = .string(s)
            } else if let a = try? c.decode([AnyJSON].self) { self = .array(a) } else { self = .object(try c.decode([String: AnyJSON].self)) }
        }
    }

    static func run(dir: String, records: Int) throws {
        print("| measure | result |")
        print("|---|---|")
        for (label, make) in [("visit logs (11 fields, Chinese notes)", { (n: Int) in visit(n) }),
                              ("short records (4 fields)", { (n: Int) -> JSONObject in
                                  ["village": "520221105201", "head_name": .string("户主\(n)"), "members": .int(Int64(n % 7 + 1)), "category": "一般户"]
                              })] {
            let kind: RecordKind = label.hasPrefix("visit") ? .visit : .household
            let src = try Replica.create(path: "\(dir)/json-\(kind.rawValue).sqlite", siteName: "source", author: "王芳")
            let recs = try (0..<records).map { try src.check(kind, make($0), creating: true) }
            for chunk in stride(from: 0, to: records, by: 20_000) { _ = try src.insert(Array(recs[chunk..<min(records, chunk + 20_000)])) }
            let texts = try src.changes().compactMap { $0.change.map(ChangeCodec.canonicalText) }
            let doc = Array(("[" + texts.joined(separator: ",") + "]").utf8)
            let mb = Double(doc.count) / 1_048_576
            var best = [String: Double]()
            func time(_ name: String, _ body: () throws -> Void) rethrows {
                let t = DispatchTime.now().uptimeNanoseconds
                try body()
                best[name] = min(best[name] ?? .infinity, Double(DispatchTime.now().uptimeNanoseconds - t) / 1e9)
            }
            let data = Data(doc)
            for _ in 0..<5 {
                try time("fieldsync") { _ = try JSONValue.parse(bytes: doc) }
                try time("fieldsync+decode") {
                    guard case .array(let items) = try JSONValue.parse(bytes: doc) else { fatalError("not an array") }
                    for i in items { _ = try ChangeCodec.decode(i) }
                }
                try time("serialization") { _ = try JSONSerialization.jsonObject(with: data) }
                try time("decoder") { _ = try JSONDecoder().decode([ChangeShape].self, from: data) }
            }
            let base = best["fieldsync"]!
            note("\(label): \(texts.count) changes, \(String(format: "%.1f", mb)) MiB as one page", "")
            note("  FieldSync parser (JSONValue.parse), MiB/s", String(format: "%.0f", mb / base))
            note("  FieldSync parser + every ChangeCodec check (the apply path), MiB/s · ratio", String(format: "%.0f · %.2f×", mb / best["fieldsync+decode"]!, best["fieldsync+decode"]! / base))
            note("  Foundation JSONSerialization (untyped tree), MiB/s · ratio", String(format: "%.0f · %.2f×", mb / best["serialization"]!, best["serialization"]! / base))
            note("  Foundation JSONDecoder (typed change mirror, no checks), MiB/s · ratio", String(format: "%.0f · %.2f×", mb / best["decoder"]!, best["decoder"]! / base))
        }
    }
}

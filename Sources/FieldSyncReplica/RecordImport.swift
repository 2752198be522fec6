import FieldSyncCore
import Foundation
import Glibc

// MARK: - RecordImport

/// Reads records from JSON Lines or from CSV ledgers exported by Excel, and checks every
/// row before anything is written.
///
/// CSV headers may be field keys (`visit_date`) or Chinese labels (`走访日期`). A money column
/// names its unit: `预算金额(元)`, `budget_fen(元)` or `budget_yuan` for 元; `预算金额(分)` or the
/// key `budget_fen` for 分. A Chinese label alone (`预算金额`) is refused: 125000 could mean either.
/// Text may be UTF-8 (with or without BOM) or GB18030, which Excel writes on Chinese Windows.
public enum RecordImport {
    public enum Format: String, Sendable { case jsonLines = "jsonl", csv }
    public enum Encoding: String, Sendable { case auto, utf8 = "utf-8", gb18030 }

    public struct Parsed: Sendable {
        public var records: [NewRecord]
        /// Source line of each record, for messages.
        public var lines: [Int]
        /// How the bytes were read ("UTF-8", "GB18030").
        public var encoding: String
    }

    /// One row of a file: its line and the record it asks for, or what is wrong with it.
    public struct Row: Sendable {
        public var line: Int
        public var result: Result<NewRecord, InputError>
    }

    /// Reads and checks a file row by row. Throws only when the file as a whole cannot be read
    /// (missing, not text, a bad header).
    public static func rows(kind: RecordKind, path: String, format: Format? = nil, encoding: Encoding = .auto,
                            using replica: Replica) throws -> (rows: [Row], encoding: String) {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ReplicaError.invalidInput(InputError(path, "cannot read the file (does it exist?)"))
        }
        let (text, used) = try decodeText([UInt8](data), encoding: encoding, path: path)
        let fmt = format ?? (path.lowercased().hasSuffix(".csv") ? .csv : .jsonLines)
        var out: [Row] = []
        func bad(_ line: Int, _ reason: String) { out.append(Row(line: line, result: .failure(InputError("line \(line)", reason)))) }
        func take(_ line: Int, _ obj: JSONObject) {
            do {
                out.append(Row(line: line, result: .success(try replica.check(kind, obj, creating: true))))
            } catch let e as ReplicaError {
                if case .invalidInput(let ie) = e { bad(line, ie.reason) } else { bad(line, "\(e)") }
            } catch { bad(line, "\(error)") }
        }
        switch fmt {
        case .jsonLines:
            for (n, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                let l = line.hasSuffix("\r") ? line.dropLast() : line
                if l.allSatisfy({ $0 == " " || $0 == "\t" }) { continue }
                do {
                    guard case .object(let o) = try JSONValue.parse(String(l)) else {
                        bad(n + 1, "expected a JSON object")
                        continue
                    }
                    take(n + 1, o)
                } catch { bad(n + 1, "not valid JSON (\(error))") }
            }
        case .csv:
            let rows = try CSV.parse(text, path: path)
            guard let header = rows.first else { throw ReplicaError.invalidInput(InputError(path, "the file is empty")) }
            let columns = try mapHeader(header.fields, kind: kind, path: path)
            for row in rows.dropFirst() {
                if row.fields.allSatisfy({ $0.trimmingCharacters(in: .whitespaces).isEmpty }) { continue }
                if row.fields.count > columns.count {
                    bad(row.line, "\(row.fields.count) cells but the header has \(columns.count)")
                    continue
                }
                var obj = JSONObject()
                var problems: [String] = []
                for (i, cell) in row.fields.enumerated() {
                    let col = columns[i]
                    guard let field = col.field else {
                        if col.isID, !cell.isEmpty { obj["id"] = .string(cell.trimmingCharacters(in: .whitespaces)) }
                        continue
                    }
                    do throws(InputError) {
                        let v = try field.parseHuman(cell, unit: col.unit)
                        if v != .null { obj[field.name] = v }
                    } catch {
                        problems.append("\(field.location(in: kind)): \(error.reason)")
                    }
                }
                if problems.isEmpty { take(row.line, obj) } else { bad(row.line, problems.joined(separator: "; ")) }
            }
        }
        return (out, used)
    }

    /// Reads and checks a file. Throws one error listing up to 20 bad lines.
    public static func parse(kind: RecordKind, path: String, format: Format? = nil, encoding: Encoding = .auto,
                             using replica: Replica) throws -> Parsed {
        let (rows, used) = try rows(kind: kind, path: path, format: format, encoding: encoding, using: replica)
        var records: [NewRecord] = []
        var lines: [Int] = []
        var problems: [String] = []
        for row in rows {
            switch row.result {
            case .success(let r): records.append(r); lines.append(row.line)
            case .failure(let e): problems.append(e.description)
            }
        }
        if !problems.isEmpty {
            let shown = problems.prefix(20).joined(separator: "\n  ")
            let more = problems.count > 20 ? "\n  … and \(problems.count - 20) more" : ""
            throw ReplicaError.invalidInput(InputError(path, "\(problems.count) bad line(s), nothing was imported:\n  \(shown)\(more)"))
        }
        return Parsed(records: records, lines: lines, encoding: used)
    }

    struct Column {
        var field: FieldSpec?
        var unit: FieldSpec.MoneyUnit
        var isID: Bool
    }

    static func mapHeader(_ names: [String], kind: RecordKind, path: String) throws -> [Column] {
        let spec = kind.spec
        var out: [Column] = []
        var seen = Set<String>()
        for raw in names {
            var name = raw.trimmingCharacters(in: .whitespaces)
            var unit = FieldSpec.MoneyUnit.fen
            var unitWritten = false
            for suffix in ["(元)", "（元）", "_yuan"] where name.hasSuffix(suffix) {
                name = String(name.dropLast(suffix.count))
                unit = .yuan
                unitWritten = true
            }
            for suffix in ["(分)", "（分）"] where name.hasSuffix(suffix) {
                name = String(name.dropLast(suffix.count))
                unitWritten = true
            }
            if name == "id" || name == "编号" {
                out.append(Column(field: nil, unit: unit, isID: true))
                continue
            }
            if unit == .yuan, spec.field(name) == nil, let f = spec.field(name + "_fen") { name = f.name }
            guard let f = spec.field(keyOrLabel: name) else {
                throw ReplicaError.invalidInput(InputError("\(path): header", "column \"\(raw)\" is not a field of \(spec.label); fields are " + spec.fields.map { "\($0.name) (\($0.label))" }.joined(separator: ", ")))
            }
            guard seen.insert(f.name).inserted else {
                throw ReplicaError.invalidInput(InputError("\(path): header", "field \(f.name) (\(f.label)) appears twice"))
            }
            // A money column names its unit (`预算金额(元)`, `预算金额(分)`, or the key `budget_fen`,
            // which says 分): a bare `预算金额` with 125000 in it could mean either, 100× apart.
            if f.type == .money, !unitWritten, name != f.name {
                throw ReplicaError.invalidInput(InputError("\(path): header", "金额列“\(raw)”没有写单位：请把表头写成“\(f.label)(元)”或“\(f.label)(分)” (the money column \"\(raw)\" names no unit; write \(f.label)(元) or \(f.label)(分))"))
            }
            out.append(Column(field: f, unit: f.type == .money ? unit : .fen, isID: false))
        }
        return out
    }

    /// Decodes bytes as UTF-8 (dropping a BOM) or GB18030.
    static func decodeText(_ bytes: [UInt8], encoding: Encoding, path: String) throws -> (String, String) {
        var b = bytes
        if b.starts(with: [0xEF, 0xBB, 0xBF]) { b.removeFirst(3) }
        if encoding != .gb18030 {
            if let bad = UTF8Validation.firstInvalidOffset(b) {
                if encoding == .auto, let s = fromGB18030(b) { return (s, "GB18030") }
                let line = b[..<bad].filter { $0 == 0x0A }.count + 1
                throw ReplicaError.invalidInput(InputError("\(path): line \(line)", "not valid UTF-8 (byte \(bad + 1)); save the file as UTF-8 or pass --encoding gb18030"))
            }
            return (String(decoding: b, as: UTF8.self), "UTF-8")
        }
        guard let s = fromGB18030(bytes) else {
            throw ReplicaError.invalidInput(InputError(path, "not valid GB18030 text"))
        }
        return (s, "GB18030")
    }

    static func fromGB18030(_ bytes: [UInt8]) -> String? {
        let cd = iconv_open("UTF-8", "GB18030")
        guard cd != iconv_t(bitPattern: -1) else { return nil }
        defer { iconv_close(cd) }
        var input = bytes
        var out = [UInt8](repeating: 0, count: bytes.count * 2 + 16)
        var inLeft = input.count
        var outLeft = out.count
        let rc = input.withUnsafeMutableBufferPointer { ib in
            out.withUnsafeMutableBufferPointer { ob in
                var ip: UnsafeMutablePointer<CChar>? = ib.baseAddress.map { UnsafeMutableRawPointer($0).assumingMemoryBound(to: CChar.self) }
                var op: UnsafeMutablePointer<CChar>? = UnsafeMutableRawPointer(ob.baseAddress!).assumingMemoryBound(to: CChar.self)
                return iconv(cd, &ip, &inLeft, &op, &outLeft)
            }
        }
        guard rc != -1, inLeft == 0 else { return nil }
        let result = Array(out[0..<(out.count - outLeft)])
        guard UTF8Validation.firstInvalidOffset(result) == nil else { return nil }
        return String(decoding: result, as: UTF8.self)
    }
}

// MARK: - CSV

/// RFC 4180 CSV: quoted cells may hold commas, quotes (doubled) and line breaks.
enum CSV {
    struct Row {
        var line: Int
        var fields: [String]
    }

    static func parse(_ text: String, path: String) throws -> [Row] {
        var rows: [Row] = []
        var field: [Unicode.Scalar] = []
        var fields: [String] = []
        var inQuotes = false
        var line = 1
        var rowStart = 1
        var afterQuote = false
        var it = text.unicodeScalars.makeIterator()
        var pending: Unicode.Scalar?
        func endField() {
            var s = String.UnicodeScalarView()
            s.append(contentsOf: field)
            fields.append(String(s))
            field.removeAll(keepingCapacity: true)
            afterQuote = false
        }
        while let c = pending ?? it.next() {
            pending = nil
            if inQuotes {
                if c == "\"" {
                    if let n = it.next() {
                        if n == "\"" { field.append("\"") } else { inQuotes = false; afterQuote = true; pending = n }
                    } else { inQuotes = false; afterQuote = true }
                } else {
                    if c == "\n" { line += 1 }
                    field.append(c)
                }
                continue
            }
            switch c {
            case "\"":
                if field.isEmpty && !afterQuote { inQuotes = true } else {
                    throw ReplicaError.invalidInput(InputError("\(path): line \(line)", "a quote inside an unquoted cell; quote the whole cell and double the quote (\"\")"))
                }
            case ",":
                endField()
            case "\r":
                continue
            case "\n":
                endField()
                rows.append(Row(line: rowStart, fields: fields))
                fields = []
                line += 1
                rowStart = line
            default:
                if afterQuote {
                    throw ReplicaError.invalidInput(InputError("\(path): line \(line)", "text after a closing quote"))
                }
                field.append(c)
            }
        }
        if inQuotes { throw ReplicaError.invalidInput(InputError("\(path): line \(rowStart)", "a quoted cell is never closed")) }
        if !field.isEmpty || !fields.isEmpty || afterQuote {
            endField()
            rows.append(Row(line: rowStart, fields: fields))
        }
        return rows
    }
}

import FieldSyncCore
import Foundation
import GRDB

// MARK: - Capturing writes made through plain SQL

/// A write made through plain SQL that FieldSync could not accept, kept for people to see.
public struct RejectedCapture: Sendable {
    public var kind: String
    public var row: String
    public var operation: String
    public var at: Int64
    public var reason: String
}

extension Replica {
    /// The note on changes made from writes through plain SQL.
    public static let capturedNote = "通过 SQL 直接写入 (written through plain SQL)"

    /// Turns the writes queued by the view triggers (`fs_capture`) into ordinary changes.
    ///
    /// Runs when the replica is opened. A queued write that breaks the schema (the triggers
    /// catch most; invalid UTF-8 is caught here) is moved to `fs_capture_rejected` with the
    /// reason, and the record is put back as it was; the other queued writes still count.
    @discardableResult
    public func ingestCapturedWrites() throws -> (accepted: Int, rejected: Int) {
        let pending = try read { db in try Bool.fetchOne(db, sql: "SELECT EXISTS(SELECT 1 FROM fs_capture)") ?? false }
        guard pending else { return (0, 0) }
        return try write { db in
            var accepted = 0
            var rejected = 0
            let rows = try Row.fetchAll(db, sql: "SELECT seq, kind, row, op, changed, CAST(vals AS BLOB) AS vals, at FROM fs_capture ORDER BY seq")
            for r in rows {
                let kindText: String = r["kind"]
                let id: String = r["row"]
                let op: String = r["op"]
                let at: Int64 = r["at"]
                let vals: [UInt8] = (r["vals"] as Data?).map { Array($0) } ?? []
                guard let kind = RecordKind(rawValue: kindText) else { continue }
                var row = try loadRegisteredRow(db, kind, id)
                do {
                    let c = try capturedChange(kind: kind, id: id, op: op, changed: r["changed"], vals: vals, at: at, state: row.state)
                    if let c {
                        var report = ApplyReport()
                        try applyOne(db, c, local: true, preloaded: row, report: &report)
                    } else {
                        try storeRow(db, &row)
                    }
                    accepted += 1
                } catch let e as ReplicaError {
                    guard case .invalidInput(let why) = e else { throw e }
                    try db.execute(sql: "INSERT INTO fs_capture_rejected(kind, row, op, vals, at, reason) VALUES (?, ?, ?, ?, ?, ?)",
                                   arguments: [kindText, id, op, String(decoding: vals, as: UTF8.self), at, why.description])
                    if row.state.exists {
                        try storeRow(db, &row)
                    } else if let rid = row.rid {
                        try db.execute(sql: "DELETE FROM \(SQLLayout.table(kind)) WHERE rid = ?", arguments: [rid])
                    }
                    rejected += 1
                }
            }
            try db.execute(sql: "DELETE FROM fs_capture")
            return (accepted, rejected)
        }
    }

    private func capturedChange(kind: RecordKind, id: String, op: String, changed: String?, vals: [UInt8], at: Int64, state: RowState) throws -> Change? {
        let spec = kind.spec
        let hlc = clock.tick(wall: max(at, 0))
        if op == "delete" {
            let reg = state[RowState.deletedField]!
            return Change(id: nextChangeID(), kind: kind, row: id, hlc: hlc, author: author,
                          writes: [FieldWrite(field: RowState.deletedField, value: .integer(1), context: reg.context)],
                          rowContext: state.rowContext, note: Self.capturedNote)
        }
        let json: JSONValue
        do { json = try JSONValue.parse(bytes: vals) } catch {
            throw ReplicaError.invalidInput(InputError("\(kind.rawValue) \(id)", "the values written through SQL are not valid (\(error.reason))"))
        }
        guard case .object(let o) = json else { throw ReplicaError.invalidInput(InputError("\(kind.rawValue) \(id)", "no values captured")) }
        let names: [String] = op == "insert"
            ? spec.fields.map(\.name).filter { o[$0] != nil && o[$0] != .null }
            : (changed ?? "").split(separator: ",").map(String.init)
        var values: [(String, FieldValue)] = []
        for name in names {
            guard let f = spec.field(name) else { continue }
            let stored: FieldValue
            switch o[name] ?? .null {
            case .null: stored = .null
            case .int(let i): stored = .integer(i)
            case .string(let s): stored = .text(s)
            case let other:
                throw ReplicaError.invalidInput(InputError(f.location(in: kind), "a \(other.typeName) cannot be stored here (\(f.type.formatHint))"))
            }
            do throws(InputError) {
                values.append((name, try f.check(stored: stored)))
            } catch {
                throw ReplicaError.invalidInput(InputError(f.location(in: kind), error.reason))
            }
        }
        let wanted = values.filter { !state.holds($0.0, $0.1) }
        guard !wanted.isEmpty else { return nil }
        return Change(id: nextChangeID(), kind: kind, row: id, hlc: hlc, author: author,
                      writes: state.writes(setting: wanted.map { ($0.0, $0.1) }), note: Self.capturedNote)
    }

    /// Loads a record whose columns a plain-SQL write may have overwritten: the value of each
    /// single-write register is taken from the change log, not the column.
    func loadRegisteredRow(_ db: Database, _ kind: RecordKind, _ id: String) throws -> LoadedRow {
        var row = try loadRow(db, kind, id)
        var registers = row.state.registers
        for s in registers.indices where registers[s].entries.count == 1 {
            let e = registers[s].entries[0]
            let field = row.state.fieldName(s)
            guard let seq = row.log.first(where: { $0.id == e.dot })?.seq,
                  let body = try String.fetchOne(db, sql: "SELECT body FROM fs_change WHERE seq = ?", arguments: [seq]),
                  let c = try? ChangeCodec.decode(JSONValue.parse(body)),
                  let w = c.writes.first(where: { $0.field == field })
            else { continue }
            registers[s] = FieldRegister(entries: [RegisterEntry(dot: e.dot, hlc: e.hlc, context: e.context, value: w.value, rowContext: e.rowContext)])
        }
        row.state = RowState(kind: kind, registers: registers)
        return row
    }

    public func rejectedCaptures() throws -> [RejectedCapture] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT kind, row, op, at, reason FROM fs_capture_rejected ORDER BY seq").map {
                RejectedCapture(kind: $0["kind"], row: $0["row"], operation: $0["op"], at: $0["at"], reason: $0["reason"])
            }
        }
    }
}

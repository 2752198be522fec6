import FieldSyncCore
import FieldSyncTrust
import GRDB

// MARK: - The app's state in the replica file

/// A form the cadre has not submitted yet: the text of each field exactly as typed.
public struct Draft: Sendable, Equatable {
    /// The form's key: also its idempotency key (a submit with a key already used makes nothing new).
    public var key: String
    public var kind: RecordKind
    /// The record being edited, or nil for a new one.
    public var record: String?
    public var fields: [(name: String, text: String)]
    public var updated: Int64

    public init(key: String, kind: RecordKind, record: String?, fields: [(name: String, text: String)], updated: Int64) {
        self.key = key
        self.kind = kind
        self.record = record
        self.fields = fields
        self.updated = updated
    }

    public static func == (a: Draft, b: Draft) -> Bool {
        a.key == b.key && a.kind == b.kind && a.record == b.record && a.updated == b.updated
            && a.fields.map(\.name) == b.fields.map(\.name) && a.fields.map(\.text) == b.fields.map(\.text)
    }

    public func text(_ name: String) -> String? { fields.first { $0.name == name }?.text }
}

/// Where the cadre's app keeps what must survive a killed tab, browser or daemon: drafts,
/// sessions, one-time sign-in links and the forms already submitted — in the replica's own
/// SQLite file, never in the browser.
extension Replica {
    /// A form key: 1–64 characters of `[0-9a-z-]` (the app makes 32 hex digits).
    public static func isFormKey(_ s: String) -> Bool {
        (1...64).contains(s.utf8.count) && s.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x7A).contains($0) || $0 == 0x2D }
    }

    // MARK: Drafts

    public func saveDraft(_ d: Draft) throws {
        guard Self.isFormKey(d.key) else { throw ReplicaError.invalidInput(InputError("draft", "a draft's key is 1–64 characters 0-9 a-z -")) }
        let fields = JSONValue.object(JSONObject(d.fields.map { ($0.name, JSONValue.string($0.text)) })).compactText
        try write { db in
            // A form already submitted keeps no draft (a late autosave after the submit).
            guard try !Bool(exists: db, "SELECT 1 FROM fs_app_submitted WHERE key = ?", [d.key]) else { return }
            try db.execute(sql: "INSERT OR REPLACE INTO fs_app_draft(key, kind, record, fields, updated) VALUES (?, ?, ?, ?, ?)",
                           arguments: [d.key, d.kind.rawValue, d.record, fields, d.updated])
        }
    }

    public func draft(_ key: String) throws -> Draft? {
        try read { db in try Row.fetchOne(db, sql: "SELECT * FROM fs_app_draft WHERE key = ?", arguments: [key]).flatMap(Self.draft) }
    }

    /// Drafts, newest first.
    public func drafts(limit: Int = 50) throws -> [Draft] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM fs_app_draft ORDER BY updated DESC LIMIT ?", arguments: [limit]).compactMap(Self.draft)
        }
    }

    public func deleteDraft(_ key: String) throws {
        try write { db in try db.execute(sql: "DELETE FROM fs_app_draft WHERE key = ?", arguments: [key]) }
    }

    static func draft(_ r: Row) -> Draft? {
        guard let kind = RecordKind(rawValue: r["kind"]), case .object(let o)? = try? JSONValue.parse(r["fields"] as String) else { return nil }
        return Draft(key: r["key"], kind: kind, record: r["record"],
                     fields: o.map { ($0.key, $0.value.stringValue ?? "") }, updated: r["updated"])
    }

    // MARK: Submitting once

    /// Adds a record for the form `key`, once: a second submit of the same form (a double click,
    /// a retried request) returns the record the first one made. The draft goes in the same
    /// transaction. Returns the id and whether this call made it.
    public func submitNew(_ record: NewRecord, key: String, author: String? = nil) throws -> (id: String, created: Bool) {
        guard Self.isFormKey(key) else { throw ReplicaError.invalidInput(InputError("form", "a form's key is 1–64 characters 0-9 a-z -")) }
        return try write { db in
            if let id = try String.fetchOne(db, sql: "SELECT record FROM fs_app_submitted WHERE key = ?", arguments: [key]) {
                return (id, false)
            }
            let id = try insert(db, [record], author: author, note: nil)[0]
            try db.execute(sql: "INSERT INTO fs_app_submitted(key, record, at) VALUES (?, ?, ?)", arguments: [key, id, now])
            try db.execute(sql: "DELETE FROM fs_app_draft WHERE key = ?", arguments: [key])
            return (id, true)
        }
    }

    /// The record a form key already made, if any.
    public func submitted(_ key: String) throws -> String? {
        try read { db in try String.fetchOne(db, sql: "SELECT record FROM fs_app_submitted WHERE key = ?", arguments: [key]) }
    }

    /// Marks an edit form as submitted (its draft goes).
    public func finishForm(_ key: String, record: String) throws {
        try write { db in
            try db.execute(sql: "INSERT OR IGNORE INTO fs_app_submitted(key, record, at) VALUES (?, ?, ?)", arguments: [key, record, now])
            try db.execute(sql: "DELETE FROM fs_app_draft WHERE key = ?", arguments: [key])
        }
    }

    // MARK: Sessions and one-time links

    /// Uses the one-time link `nonce`: true the first time, false ever after.
    public func useAppLink(_ nonce: String) throws -> Bool {
        try write { db in
            guard try !Bool(exists: db, "SELECT 1 FROM fs_app_link WHERE nonce = ?", [nonce]) else { return false }
            try db.execute(sql: "INSERT INTO fs_app_link(nonce, used) VALUES (?, ?)", arguments: [nonce, now])
            return true
        }
    }

    /// Starts a session; the token goes to the browser, only its hash stays here.
    public func startAppSession() throws -> (token: String, csrf: String) {
        let token = "fsa_" + Hex.random(bytes: 24)
        let csrf = Hex.random(bytes: 16)
        try write { db in
            try db.execute(sql: "INSERT INTO fs_app_session(hash, csrf, created, seen) VALUES (?, ?, ?, ?)",
                           arguments: [Self.sessionHash(token), csrf, now, now])
        }
        return (token, csrf)
    }

    /// The session's CSRF secret, when the token names a live session (idle less than `idleMs`).
    public func appSession(_ token: String, idleMs: Int64) throws -> String? {
        try write { db in
            let h = Self.sessionHash(token)
            guard let r = try Row.fetchOne(db, sql: "SELECT csrf, seen FROM fs_app_session WHERE hash = ?", arguments: [h]) else { return nil }
            let seen: Int64 = r["seen"]
            guard now - seen <= idleMs else {
                try db.execute(sql: "DELETE FROM fs_app_session WHERE hash = ?", arguments: [h])
                return nil
            }
            if now - seen > 60_000 { try db.execute(sql: "UPDATE fs_app_session SET seen = ? WHERE hash = ?", arguments: [now, h]) }
            return r["csrf"]
        }
    }

    public func endAppSession(_ token: String) throws {
        try write { db in try db.execute(sql: "DELETE FROM fs_app_session WHERE hash = ?", arguments: [Self.sessionHash(token)]) }
    }

    static func sessionHash(_ token: String) -> String { SecretHash.hex(token) }

    // MARK: Refusals

    /// The hub's refusals of this record's changes, newest first (none once it is deleted here).
    public func refusals(kind: RecordKind, row: String) throws -> [(change: String, code: String, reason: String, at: Int64)] {
        try read { db in
            try Row.fetchAll(db, sql: """
                SELECT r.change, r.code, r.reason, r.at FROM fs_sync_refused r JOIN fs_change c ON c.seq = r.seq
                WHERE c.kind = ? AND c.row = ? AND r.dismissed IS NULL AND NOT EXISTS (SELECT 1 FROM \(SQLLayout.table(kind)) t WHERE t.id = c.row AND t._deleted = 1)
                ORDER BY r.seq DESC
                """, arguments: [kind.rawValue, row]).map { ($0["change"], $0["code"], $0["reason"], $0["at"]) }
        }
    }

    /// A later local edit or delete of the record is the way out of a refusal: it stops being reported.
    func dismissRefusals(_ db: Database, _ kind: RecordKind, _ row: String) throws {
        try db.execute(sql: "UPDATE fs_sync_refused SET dismissed = ? WHERE dismissed IS NULL AND seq IN (SELECT seq FROM fs_change WHERE kind = ? AND row = ?)",
                       arguments: [now, kind.rawValue, row])
    }
}

extension Bool {
    init(exists db: Database, _ sql: String, _ args: StatementArguments) throws {
        self = try Int.fetchOne(db, sql: sql, arguments: args) != nil
    }
}

extension Replica {
    /// This record's changes that the hub does not have yet (this replica's own, after the push
    /// cursor, not refused for good).
    public func unsentChanges(kind: RecordKind, row: String) throws -> Set<ChangeID> {
        try read { db in
            let cursor = try Int64.fetchOne(db, sql: "SELECT push_cursor FROM fs_sync WHERE id = 1") ?? 0
            let rows = try Row.fetchAll(db, sql: """
                SELECT site, counter FROM fs_change WHERE kind = ? AND row = ? AND seq > ? AND source != 2
                AND seq NOT IN (SELECT seq FROM fs_sync_refused)
                """, arguments: [kind.rawValue, row, cursor])
            return Set(rows.map { ChangeID(site: SiteID(raw: UInt64(bitPattern: $0["site"])), counter: $0["counter"]) })
        }
    }
}

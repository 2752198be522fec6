import FieldSyncCore

// MARK: - SQLLayout

/// The replica's tables, generated from the schema.
///
/// Each kind has a base table `fs_<kind>` holding every record (deleted ones too) with the
/// winning value of each field and the merge metadata in `_clock`. A view named after the
/// kind (`visit`, `dispute`, …) shows the live records to anyone with `sqlite3`; writes to the
/// view are checked by triggers and queued in `fs_capture`, and FieldSync turns them into
/// ordinary changes the next time it opens the file. The change log `fs_change` is the
/// replica's public contract: one row per change, its canonical JSON in `body`, in the order
/// this replica applied them (`seq`).
enum SQLLayout {
    static let formatName = "fieldsync-replica"
    static let formatVersion = 2

    static func table(_ kind: RecordKind) -> String { "fs_\(kind.rawValue)" }

    static func quote(_ s: String) -> String { "'" + s.replacingOccurrences(of: "'", with: "''") + "'" }

    /// Milliseconds since 1970 in plain SQL, so triggers run inside the sqlite3 shell too.
    static let nowMillis = "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)"

    static var statements: [String] {
        var s = [
            "CREATE TABLE fs_meta(key TEXT PRIMARY KEY NOT NULL, value) WITHOUT ROWID",
            "CREATE TABLE fs_site(id INTEGER PRIMARY KEY, hex TEXT NOT NULL UNIQUE, name TEXT NOT NULL DEFAULT '')",
            // One row: the hybrid logical clock and this site's last counter as of change-log
            // position `seq`. Saved now and then; changes after `seq` are read back on load.
            "CREATE TABLE fs_clock(id INTEGER PRIMARY KEY CHECK (id = 1), hlc INTEGER NOT NULL, counter INTEGER NOT NULL, seq INTEGER NOT NULL, offset_ms INTEGER NOT NULL DEFAULT 0)",
            """
            CREATE TABLE fs_change(
              seq INTEGER PRIMARY KEY,
              site INTEGER NOT NULL,
              counter INTEGER NOT NULL,
              kind TEXT NOT NULL,
              row TEXT NOT NULL,
              hlc INTEGER NOT NULL,
              author TEXT NOT NULL,
              received INTEGER NOT NULL,
              source INTEGER NOT NULL DEFAULT 0,
              peer TEXT,
              body TEXT NOT NULL)
            """,
            // No index by record: each record's `_clock` lists its changes' seq numbers.
            """
            CREATE TABLE fs_conflict(
              kind TEXT NOT NULL, row TEXT NOT NULL, field TEXT NOT NULL, since INTEGER NOT NULL,
              PRIMARY KEY(kind, row, field)) WITHOUT ROWID
            """,
            """
            CREATE TABLE fs_capture(
              seq INTEGER PRIMARY KEY, kind TEXT NOT NULL, row TEXT NOT NULL, op TEXT NOT NULL,
              changed TEXT, vals TEXT, at INTEGER NOT NULL)
            """,
            """
            CREATE TABLE fs_capture_rejected(
              seq INTEGER PRIMARY KEY, kind TEXT NOT NULL, row TEXT NOT NULL, op TEXT NOT NULL,
              vals TEXT, at INTEGER NOT NULL, reason TEXT NOT NULL)
            """,
            "CREATE TABLE fs_export(peer TEXT PRIMARY KEY NOT NULL, seq INTEGER NOT NULL, at INTEGER NOT NULL) WITHOUT ROWID",
            // The laptop's link to its hub: one row once enrolled. Cursors move in the same
            // transaction as the data they cover.
            """
            CREATE TABLE fs_sync(
              id INTEGER PRIMARY KEY CHECK (id = 1),
              hub_url TEXT NOT NULL, device TEXT NOT NULL, device_name TEXT NOT NULL, token TEXT NOT NULL,
              scope TEXT NOT NULL, hub_site TEXT NOT NULL, hub_name TEXT NOT NULL, cacert TEXT,
              push_cursor INTEGER NOT NULL DEFAULT 0,
              pull_cursor INTEGER NOT NULL DEFAULT 0,
              snapshot_cursor INTEGER, snapshot_next TEXT, snapshot_done INTEGER NOT NULL DEFAULT 0,
              last_attempt INTEGER, last_success INTEGER, last_error TEXT, last_error_at INTEGER,
              daemon_pid INTEGER, daemon_state TEXT, daemon_next INTEGER)
            """,
            "CREATE TABLE fs_sync_refused(seq INTEGER PRIMARY KEY, change TEXT NOT NULL, code TEXT NOT NULL, reason TEXT NOT NULL, at INTEGER NOT NULL)",
        ]
        for k in Schema.current.kinds { s += kindStatements(k) }
        return s
    }

    /// A kind's base table and index, then its view and triggers (``viewStatements(_:)``).
    static func kindStatements(_ spec: KindSpec) -> [String] {
        let t = table(spec.kind)
        return [
            """
            CREATE TABLE \(t)(
              rid INTEGER PRIMARY KEY,
              id TEXT NOT NULL UNIQUE,
              \(spec.fields.map { "\($0.name) \($0.type.sqlType)" }.joined(separator: ",\n  ")),
              _deleted INTEGER NOT NULL DEFAULT 0,
              _clock BLOB NOT NULL)
            """,
            spec.regionField.map { "CREATE INDEX \(t)_region ON \(t)(\($0))" } ?? "CREATE INDEX \(t)_region ON \(t)(id)",
        ] + viewStatements(spec)
    }

    /// Brings a file's tables from schema `old` to `new` (a lawful successor): new columns are
    /// added, and every view and trigger is made again from `new` (choices, lengths, labels).
    static func upgradeStatements(from old: Schema, to new: Schema) -> [String] {
        var s: [String] = []
        for (o, n) in zip(old.kinds, new.kinds) {
            for f in n.fields.dropFirst(o.fields.count) {
                s.append("ALTER TABLE \(table(n.kind)) ADD COLUMN \(f.name) \(f.type.sqlType)")
            }
            s.append("DROP VIEW IF EXISTS \(n.kind.rawValue)")
            s += viewStatements(n)
        }
        for n in new.kinds.dropFirst(old.kinds.count) { s += kindStatements(n) }
        return s
    }

    /// The view named after the kind and its triggers, which check and capture plain-SQL writes.
    static func viewStatements(_ spec: KindSpec) -> [String] {
        let kind = spec.kind
        let t = table(kind)
        let names = spec.fields.map(\.name)
        let list = names.joined(separator: ", ")
        let k = kind.rawValue
        let jsonNew = "json_object(" + names.map { "\(quote($0)), NEW.\($0)" }.joined(separator: ", ") + ")"
        let idCheck: String
        let newID: String
        let immutable: String
        if let rf = spec.regionField {
            idCheck = "SELECT RAISE(ABORT, '\(k).id: a record id is its division code, a dash and 32 lowercase hex digits (leave it out to get a new one)') WHERE NEW.id IS NOT NULL AND (typeof(NEW.id) != 'text' OR NEW.id NOT GLOB NEW.\(rf) || '-*' OR length(NEW.id) != length(NEW.\(rf)) + 33 OR substr(NEW.id, length(NEW.\(rf)) + 2) GLOB '*[^0-9a-f]*');"
            newID = "COALESCE(NEW.id, NEW.\(rf) || '-' || lower(hex(randomblob(16))))"
            immutable = "SELECT RAISE(ABORT, '\(k).\(rf): a record cannot move to another place (its division code is part of its id)') WHERE NEW.\(rf) IS NOT OLD.\(rf);"
        } else {
            idCheck = "SELECT RAISE(ABORT, 'region.id: a region id is its 6, 9 or 12 digit division code') WHERE NEW.id IS NULL OR typeof(NEW.id) != 'text' OR length(NEW.id) NOT IN (6, 9, 12) OR NEW.id GLOB '*[^0-9]*';"
            newID = "NEW.id"
            immutable = ""
        }
        let changed = names.map { "(CASE WHEN NEW.\($0) IS NOT OLD.\($0) THEN '\($0),' ELSE '' END)" }.joined(separator: " || ")
        return [
            "CREATE VIEW \(k) AS SELECT id, \(list) FROM \(t) WHERE _deleted = 0",
            """
            CREATE TRIGGER \(k)_insert INSTEAD OF INSERT ON \(k) BEGIN
              \(idCheck)
              \(checks(spec))
              INSERT INTO fs_capture(kind, row, op, vals, at)
                VALUES ('\(k)', \(newID), 'insert', \(jsonNew), \(nowMillis));
              INSERT INTO \(t)(id, \(list), _deleted, _clock)
                SELECT row, \(names.map { "NEW.\($0)" }.joined(separator: ", ")), 0, x'' FROM fs_capture WHERE seq = last_insert_rowid();
            END
            """,
            """
            CREATE TRIGGER \(k)_update INSTEAD OF UPDATE ON \(k) BEGIN
              SELECT RAISE(ABORT, '\(k).id: a record id cannot be changed') WHERE NEW.id IS NOT OLD.id;
              \(immutable)
              \(checks(spec))
              INSERT INTO fs_capture(kind, row, op, changed, vals, at)
                SELECT '\(k)', OLD.id, 'update', c, \(jsonNew), \(nowMillis) FROM (SELECT \(changed) AS c) WHERE c != '';
              UPDATE \(t) SET \(names.map { "\($0) = NEW.\($0)" }.joined(separator: ", ")) WHERE id = OLD.id;
            END
            """,
            """
            CREATE TRIGGER \(k)_delete INSTEAD OF DELETE ON \(k) BEGIN
              INSERT INTO fs_capture(kind, row, op, at) VALUES ('\(k)', OLD.id, 'delete', \(nowMillis));
              UPDATE \(t) SET _deleted = 1 WHERE id = OLD.id;
            END
            """,
        ]
    }

    /// Trigger checks that mirror ``FieldSpec/decode(_:)``, so plain SQL gets the same refusals.
    static func checks(_ spec: KindSpec) -> String {
        let kind = spec.kind
        var out: [String] = []
        for f in spec.fields {
            let v = "NEW.\(f.name)"
            let at = "\(kind.rawValue).\(f.name) (\(f.label))"
            func raise(_ why: String, _ cond: String) {
                out.append("SELECT RAISE(ABORT, \(quote("\(at): \(why)"))) WHERE \(cond);")
            }
            if f.required { raise("is required", "\(v) IS NULL OR \(v) = ''") }
            let present = "\(v) IS NOT NULL AND "
            switch f.type {
            case .text(let n):
                raise("must be text of at most \(n) characters", present + "(typeof(\(v)) != 'text' OR length(\(v)) > \(n))")
            case .longText:
                raise("must be text of at most \(FieldType.longTextMaxBytes) bytes", present + "(typeof(\(v)) != 'text' OR length(CAST(\(v) AS BLOB)) > \(FieldType.longTextMaxBytes))")
            case .integer(let r):
                raise("must be a whole number in \(r.lowerBound)…\(r.upperBound)", present + "(typeof(\(v)) != 'integer' OR \(v) < \(r.lowerBound) OR \(v) > \(r.upperBound))")
            case .money:
                raise("must be a whole number of 分, not negative", present + "(typeof(\(v)) != 'integer' OR \(v) < 0)")
            case .date:
                raise("must be a date YYYY-MM-DD", present + "(typeof(\(v)) != 'text' OR length(\(v)) != 10 OR date(\(v)) IS NOT \(v))")
            case .bool:
                raise("must be 0 or 1", present + "(typeof(\(v)) != 'integer' OR \(v) NOT IN (0, 1))")
            case .choice(let opts):
                raise("must be one of " + opts.joined(separator: ", "), present + "\(v) NOT IN (\(opts.map(quote).joined(separator: ", ")))")
            case .choices(let opts):
                raise("must be a JSON array of " + opts.joined(separator: ", "),
                      present + "(NOT json_valid(\(v)) OR json_type(\(v)) != 'array' OR EXISTS (SELECT 1 FROM json_each(\(v)) WHERE value NOT IN (\(opts.map(quote).joined(separator: ", ")))))")
            case .regionCode(let lengths):
                raise("must be a division code of " + lengths.sorted().map(String.init).joined(separator: "/") + " digits",
                      present + "(typeof(\(v)) != 'text' OR length(\(v)) NOT IN (\(lengths.sorted().map(String.init).joined(separator: ", "))) OR \(v) GLOB '*[^0-9]*')")
            case .reference(let target):
                if target == .region {
                    raise("must be a division code", present + "(typeof(\(v)) != 'text' OR \(v) GLOB '*[^0-9]*')")
                } else {
                    raise("must be a record id (32 lowercase hex digits)", present + "(typeof(\(v)) != 'text' OR length(\(v)) != 32 OR \(v) GLOB '*[^0-9a-f]*')")
                }
            case .geo:
                raise("must be \"lat,lon\"", present + "(typeof(\(v)) != 'text' OR instr(\(v), ',') = 0)")
            }
        }
        return out.joined(separator: "\n  ")
    }
}

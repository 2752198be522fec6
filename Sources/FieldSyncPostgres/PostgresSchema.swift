import FieldSyncCore
import Foundation

// MARK: - PostgresSchema

/// The hub's tables in PostgreSQL, as named and ordered migrations (the same idea as GRDB's
/// migrator for the SQLite hub): each runs once, in order, in one transaction, recorded in
/// `hub_migration`. Records are kept as the SQLite replica keeps them — a table per kind with the
/// winning value of each field and the merge metadata in `_clock` — so one set of merge rules
/// (``RecordMerge``) and one report vocabulary serve both stores.
enum PostgresSchema {
    struct Migration {
        let name: String
        let statements: [String]
    }

    static func columnType(_ t: FieldType) -> String { t.sqlType == "INTEGER" ? "bigint" : "text" }

    static func kindTable(_ kind: RecordKind) -> String { "fs_\(kind.rawValue)" }

    static var migrations: [Migration] {
        var first: [String] = [
            "CREATE TABLE hub_meta(key text PRIMARY KEY, value text NOT NULL)",
            // The hub site's own clock and counter: supervisors' settlements, made by any hub process.
            "CREATE TABLE hub_clock(id int PRIMARY KEY CHECK (id = 1), hlc bigint NOT NULL, counter bigint NOT NULL)",
            // The change log's head: taken last in every writing transaction (docs/architecture.md).
            "CREATE TABLE hub_log_head(id int PRIMARY KEY CHECK (id = 1), seq bigint NOT NULL)",
            "INSERT INTO hub_log_head(id, seq) VALUES (1, 0)",
            """
            CREATE TABLE hub_change(
              seq bigint PRIMARY KEY, site bigint NOT NULL, counter bigint NOT NULL, kind text NOT NULL, row text NOT NULL,
              hlc bigint NOT NULL, author text NOT NULL, received bigint NOT NULL, peer text, body text NOT NULL,
              UNIQUE (site, counter))
            """,
            // A pull reads the changes of a scope after a cursor through these (a county, a
            // township, a village); a province's 2- and 4-digit scopes read the log in order.
            "CREATE INDEX hub_change_r6 ON hub_change ((substr(row, 1, 6)), seq)",
            "CREATE INDEX hub_change_r9 ON hub_change ((substr(row, 1, 9)), seq)",
            "CREATE INDEX hub_change_r12 ON hub_change ((substr(row, 1, 12)), seq)",
            "CREATE TABLE fs_site(id bigint PRIMARY KEY, hex text NOT NULL UNIQUE, name text NOT NULL DEFAULT '')",
            "CREATE TABLE fs_conflict(kind text NOT NULL, row text NOT NULL, field text NOT NULL, since bigint NOT NULL, PRIMARY KEY (kind, row, field))",
            "CREATE INDEX fs_conflict_row ON fs_conflict(row)",
            """
            CREATE TABLE hub_device(
              id text PRIMARY KEY, name text NOT NULL, scope text NOT NULL,
              code_hash text UNIQUE, code_expires bigint, token_hash text UNIQUE, used_code_hash text, token_used smallint,
              site text, site_name text, created bigint NOT NULL, enrolled bigint, revoked bigint,
              last_seen bigint, last_sync bigint, last_error text, last_error_at bigint,
              pull_cursor bigint NOT NULL DEFAULT 0, pushed bigint NOT NULL DEFAULT 0, clock_skew bigint)
            """,
            "CREATE TABLE hub_site(site bigint PRIMARY KEY, hex text NOT NULL UNIQUE, device text, key bytea, bound bigint NOT NULL)",
            "CREATE INDEX hub_site_device ON hub_site(device)",
            """
            CREATE TABLE hub_supervisor(
              name text PRIMARY KEY, scope text NOT NULL, salt text NOT NULL, iterations int NOT NULL,
              password_hash text NOT NULL, created bigint NOT NULL, disabled bigint, last_login bigint)
            """,
            "CREATE TABLE hub_session(token_hash text PRIMARY KEY, supervisor text NOT NULL, created bigint NOT NULL, expires bigint NOT NULL, csrf text NOT NULL)",
            "CREATE INDEX hub_session_supervisor ON hub_session(supervisor, created)",
            "CREATE TABLE hub_signin(subject text PRIMARY KEY, failures int NOT NULL, last_failure bigint NOT NULL, locked bigint)",
            "CREATE TABLE hub_security_event(id bigserial PRIMARY KEY, at bigint NOT NULL, kind text NOT NULL, subject text NOT NULL, address text, detail text NOT NULL)",
            // Uploaded bundles, in the database so that any hub process can serve them (sync.md §8).
            "CREATE TABLE hub_bundle(device text NOT NULL, name text NOT NULL, bytes bytea NOT NULL, stored bigint NOT NULL, PRIMARY KEY (device, name))",
        ]
        // The built-in schema, whatever this process holds: a later version's columns come with
        // its own step (PostgresHubStore+Schema.swift), as on a database made before it.
        for spec in Schema.builtin.kinds {
            let kind = spec.kind
            let cols = spec.fields.map { "\($0.name) \(columnType($0.type))" }.joined(separator: ", ")
            first.append("CREATE TABLE \(kindTable(kind))(id text PRIMARY KEY, \(cols), _deleted smallint NOT NULL DEFAULT 0, _clock bytea NOT NULL)")
            if let rf = spec.regionField { first.append("CREATE INDEX \(kindTable(kind))_region ON \(kindTable(kind))(\(rf))") }
        }
        // The reports' covering indexes, as the SQLite hub has them.
        first += [
            "CREATE INDEX hub_report_visit ON fs_visit(village, visit_date, visit_kind, attendees, household_id, household_head, cadre_id, cadre_name) WHERE _deleted = 0",
            "CREATE INDEX hub_report_dispute ON fs_dispute(village, reported_on, status, category, resolved_on) WHERE _deleted = 0",
            "CREATE INDEX hub_report_project ON fs_project(village, started_on, completed_on, project_kind, status, budget_fen, spent_fen, households_benefiting) WHERE _deleted = 0",
        ]
        // Text compares byte for byte ("C" collation), whatever the database's locale: scopes and
        // reports select regions by ranges such as `code >= '520221' AND code < '520221:'`, and
        // ids sort as they do in SQLite.
        first = first.map { s in
            guard s.hasPrefix("CREATE TABLE") else { return s }
            return s.replacingOccurrences(of: #"\btext\b"#, with: #"text COLLATE "C""#, options: .regularExpression)
        }
        // What each device says about itself on every request (sync.md §2, ClientReport).
        let client = ["ALTER TABLE hub_device ADD COLUMN client_release bigint, ADD COLUMN client_schema bigint, ADD COLUMN client_pending bigint, ADD COLUMN client_oldest bigint"]
        // Changes carrying writes of a newer schema (changeset.md §2.4), by record: snapshots relay them.
        let pending = ["CREATE TABLE hub_pending(seq bigint PRIMARY KEY, kind text COLLATE \"C\" NOT NULL, row text COLLATE \"C\" NOT NULL)",
                       "CREATE INDEX hub_pending_row ON hub_pending(kind, row)"]
        // Changes kept for a newer schema that it refuses once taken (changeset.md §2.4): kept
        // with the reason, as a SQLite hub keeps them in fs_set_aside.
        let aside = ["CREATE TABLE hub_set_aside(id bigserial PRIMARY KEY, change text NOT NULL, body text NOT NULL, reason text NOT NULL, came_from text NOT NULL, at bigint NOT NULL)"]
        // A cadre's latest visit before a report's period, by seek (SQLiteHubStore.reportIndexes).
        let cadres = ["CREATE INDEX hub_report_cadre_visit ON fs_visit(cadre_id, visit_date, village) WHERE _deleted = 0",
                      "CREATE INDEX hub_report_named_visit ON fs_visit(cadre_name, visit_date, village) WHERE _deleted = 0 AND cadre_id IS NULL"]
        return [Migration(name: "pg-1", statements: first), Migration(name: "pg-2-client", statements: client),
                Migration(name: "pg-3-pending", statements: pending), Migration(name: "pg-4-set-aside", statements: aside),
                Migration(name: "pg-5-report-cadres", statements: cadres)]
    }
}

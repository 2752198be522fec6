import FieldSyncCore
import GRDB

// MARK: - HubMigrations

/// The hub's own tables in its file, as named and ordered upgrades after the replica's
/// (GRDB's `DatabaseMigrator`): a hub file from any earlier release opens and is brought up to
/// date in place.
enum HubMigrations {
    static func register(_ m: inout DatabaseMigrator) {
        // The first release's tables. Its files have no migration table: the statements are
        // idempotent, and the two columns that release added later are added when missing.
        m.registerMigration("hub-1") { db in
            try db.execute(sql: """
                CREATE TABLE IF NOT EXISTS hub_device(
                  id TEXT PRIMARY KEY NOT NULL, name TEXT NOT NULL, scope TEXT NOT NULL,
                  code_hash TEXT, code_expires INTEGER, token_hash TEXT,
                  site TEXT, site_name TEXT,
                  created INTEGER NOT NULL, enrolled INTEGER, revoked INTEGER,
                  last_seen INTEGER, last_sync INTEGER, last_error TEXT, last_error_at INTEGER,
                  pull_cursor INTEGER NOT NULL DEFAULT 0, pushed INTEGER NOT NULL DEFAULT 0, clock_skew INTEGER) WITHOUT ROWID;
                CREATE UNIQUE INDEX IF NOT EXISTS hub_device_token ON hub_device(token_hash) WHERE token_hash IS NOT NULL;
                CREATE UNIQUE INDEX IF NOT EXISTS hub_device_code ON hub_device(code_hash) WHERE code_hash IS NOT NULL;
                CREATE UNIQUE INDEX IF NOT EXISTS hub_change_id ON fs_change(site, counter);
                INSERT OR IGNORE INTO fs_meta(key, value) VALUES ('hub_horizon', 0);
                CREATE TABLE IF NOT EXISTS hub_supervisor(
                  name TEXT PRIMARY KEY NOT NULL, scope TEXT NOT NULL, salt TEXT NOT NULL, iterations INTEGER NOT NULL,
                  password_hash TEXT NOT NULL, created INTEGER NOT NULL, disabled INTEGER, last_login INTEGER) WITHOUT ROWID;
                CREATE TABLE IF NOT EXISTS hub_session(
                  token_hash TEXT PRIMARY KEY NOT NULL, supervisor TEXT NOT NULL, created INTEGER NOT NULL, expires INTEGER NOT NULL,
                  csrf TEXT NOT NULL) WITHOUT ROWID;
                """)
            let columns = Set(try Row.fetchAll(db, sql: "PRAGMA table_info(hub_device)").map { $0["name"] as String })
            if !columns.contains("used_code_hash") { try db.execute(sql: "ALTER TABLE hub_device ADD COLUMN used_code_hash TEXT") }
            if !columns.contains("token_used") { try db.execute(sql: "ALTER TABLE hub_device ADD COLUMN token_used INTEGER") }
            try SQLiteHubStore.createReportIndexes(db)
        }
        // The site directory (Protocol/sync.md §1): which device (or the hub) each site id
        // belongs to. A device's changes under its own sites need only its token; anything else
        // must be proved. Devices enrolled before keep the site they enrolled with.
        m.registerMigration("hub-2-sites") { db in
            try db.execute(sql: """
                CREATE TABLE hub_site(
                  site INTEGER PRIMARY KEY, hex TEXT NOT NULL UNIQUE, device TEXT, key BLOB, bound INTEGER NOT NULL);
                CREATE INDEX hub_site_device ON hub_site(device);
                """)
            if let hex = try String.fetchOne(db, sql: "SELECT value FROM fs_meta WHERE key = 'site'"), let hub = SiteID(hex: hex) {
                try db.execute(sql: "INSERT INTO hub_site(site, hex, device, bound) VALUES (?, ?, NULL, 0)",
                               arguments: [Int64(bitPattern: hub.raw), hub.hex])
            }
            for row in try Row.fetchAll(db, sql: "SELECT id, site, COALESCE(enrolled, created) AS at FROM hub_device WHERE site IS NOT NULL") {
                guard let hex: String = row["site"], let s = SiteID(hex: hex) else { continue }
                try db.execute(sql: "INSERT OR IGNORE INTO hub_site(site, hex, device, bound) VALUES (?, ?, ?, ?)",
                               arguments: [Int64(bitPattern: s.raw), s.hex, row["id"] as String, row["at"] as Int64])
            }
        }
        // Sign-in throttling and the security log (docs/security.md).
        m.registerMigration("hub-3-signin") { db in
            try db.execute(sql: """
                CREATE TABLE hub_signin(
                  subject TEXT PRIMARY KEY NOT NULL, failures INTEGER NOT NULL, last_failure INTEGER NOT NULL,
                  locked INTEGER) WITHOUT ROWID;
                CREATE TABLE hub_security_event(
                  id INTEGER PRIMARY KEY, at INTEGER NOT NULL, kind TEXT NOT NULL, subject TEXT NOT NULL,
                  address TEXT, detail TEXT NOT NULL);
                CREATE INDEX hub_security_event_at ON hub_security_event(at);
                """)
        }
        // A pull reads the changes of its scope after its cursor through these (a county, a
        // township, a village), not the whole log after the cursor (docs/architecture.md).
        m.registerMigration("hub-4-region-index") { db in
            for n in [6, 9, 12] {
                try db.execute(sql: "CREATE INDEX hub_change_r\(n) ON fs_change(substr(row, 1, \(n)), seq)")
            }
        }
        // What each device says about itself on every request (sync.md §2, ClientReport).
        m.registerMigration("hub-5-client") { db in
            try db.execute(sql: """
                ALTER TABLE hub_device ADD COLUMN client_release INTEGER;
                ALTER TABLE hub_device ADD COLUMN client_schema INTEGER;
                ALTER TABLE hub_device ADD COLUMN client_pending INTEGER;
                ALTER TABLE hub_device ADD COLUMN client_oldest INTEGER;
                """)
        }
        // A cadre's latest visit before a report's period, by seek (issue 13: reports).
        m.registerMigration("hub-6-report-cadres") { db in
            try SQLiteHubStore.createReportIndexes(db)
        }
    }
}

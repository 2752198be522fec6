import FieldSyncCore
import GRDB

// MARK: - ReplicaMigrations

/// The replica file's layout, as named and ordered upgrades (GRDB's `DatabaseMigrator`): a file
/// from any earlier release is brought up to date in place when it is opened.
///
/// `replica-1` is the layout of the first release (its files have no migration table: the
/// migration sees their tables and leaves them). Later migrations only add.
enum ReplicaMigrations {
    static func register(_ m: inout DatabaseMigrator) {
        m.registerMigration("replica-1") { db in
            guard try !db.tableExists("fs_meta") else { return }
            for s in SQLLayout.statements { try db.execute(sql: s) }
        }
        // Signed provenance (Protocol/changeset.md §7): the manifests that prove where received
        // changes come from, changes set aside with the reason, sites this replica wrote under
        // before it took a new id, and the hub's key. The device token leaves the file (it moves
        // to the owner-only secret file when the replica is opened, Replica.open).
        m.registerMigration("replica-2-provenance") { db in
            try db.execute(sql: """
                ALTER TABLE fs_change ADD COLUMN proof INTEGER;
                CREATE TABLE fs_manifest(
                  id INTEGER PRIMARY KEY, signer INTEGER NOT NULL, key BLOB NOT NULL, sig BLOB NOT NULL UNIQUE,
                  digests BLOB NOT NULL, received INTEGER NOT NULL);
                CREATE TABLE fs_set_aside(
                  id INTEGER PRIMARY KEY, change TEXT NOT NULL, body TEXT NOT NULL, reason TEXT NOT NULL,
                  came_from TEXT NOT NULL, at INTEGER NOT NULL);
                CREATE INDEX fs_set_aside_change ON fs_set_aside(change);
                CREATE TABLE fs_former_site(hex TEXT PRIMARY KEY NOT NULL, until INTEGER NOT NULL) WITHOUT ROWID;
                ALTER TABLE fs_sync ADD COLUMN hub_key BLOB;
                ALTER TABLE fs_sync ADD COLUMN bound_site TEXT;
                UPDATE fs_meta SET value = 2 WHERE key = 'format_version';
                """)
        }
        // The cadre's app (docs/app.md): its sessions and one-time links, drafts kept as people
        // type, the forms already submitted (so a retried submit makes no second record), and
        // when the last push and the last pull completed, and which refusals the cadre has dealt
        // with (the refusal itself stays: the change was refused). Only adds: older releases read the file.
        m.registerMigration("replica-3-app") { db in
            try db.execute(sql: """
                CREATE TABLE fs_app_session(hash TEXT PRIMARY KEY NOT NULL, csrf TEXT NOT NULL, created INTEGER NOT NULL, seen INTEGER NOT NULL) WITHOUT ROWID;
                CREATE TABLE fs_app_link(nonce TEXT PRIMARY KEY NOT NULL, used INTEGER NOT NULL) WITHOUT ROWID;
                CREATE TABLE fs_app_draft(key TEXT PRIMARY KEY NOT NULL, kind TEXT NOT NULL, record TEXT, fields TEXT NOT NULL, updated INTEGER NOT NULL) WITHOUT ROWID;
                CREATE TABLE fs_app_submitted(key TEXT PRIMARY KEY NOT NULL, record TEXT NOT NULL, at INTEGER NOT NULL) WITHOUT ROWID;
                ALTER TABLE fs_sync ADD COLUMN last_push INTEGER;
                ALTER TABLE fs_sync ADD COLUMN last_pull INTEGER;
                ALTER TABLE fs_sync_refused ADD COLUMN dismissed INTEGER;
                """)
        }
        // Changes made with a newer schema that carry writes this one cannot read (changeset.md
        // §2.4): listed by record, so snapshots relay them and a later schema can merge them.
        m.registerMigration("replica-4-pending") { db in
            try db.execute(sql: """
                CREATE TABLE fs_pending(seq INTEGER PRIMARY KEY, kind TEXT NOT NULL, row TEXT NOT NULL);
                CREATE INDEX fs_pending_row ON fs_pending(kind, row);
                """)
        }
        // The hub's epoch this laptop last synced with (sync.md §2): when a restored hub answers
        // with another, everything up to `reseed_through` is offered to it again.
        m.registerMigration("replica-5-epoch") { db in
            try db.execute(sql: """
                ALTER TABLE fs_sync ADD COLUMN hub_epoch TEXT;
                ALTER TABLE fs_sync ADD COLUMN reseed_through INTEGER NOT NULL DEFAULT 0;
                """)
        }
    }

    static var migrator: DatabaseMigrator {
        var m = DatabaseMigrator()
        register(&m)
        return m
    }
}

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
    }

    static var migrator: DatabaseMigrator {
        var m = DatabaseMigrator()
        register(&m)
        return m
    }
}

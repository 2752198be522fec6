import ArgumentParser
import FieldSyncCore
import FieldSyncHub
import FieldSyncPostgres
import Foundation

// MARK: - migrate

struct MigrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Move a hub from its SQLite file to PostgreSQL, keeping its identity, devices and change log (迁移到 PostgreSQL).",
        discussion: """
            Stop the hub first. The target database must be empty (createdb NAME). Everything is copied in one transaction: \\
            if the command stops half-way, nothing is left in the database and it can be run again. Laptops need nothing: \\
            the hub keeps its site id and signing key, and their positions in its change log stay valid. Then serve with \\
            --store postgres://… (as many processes as needed). Example:
              fieldsync-hub migrate --from /var/lib/fieldsync/hub.sqlite --to postgres://fieldsync@db/hub
            """)
    @Option(help: "The hub's SQLite file.") var from: String
    @Option(help: "The empty PostgreSQL database: postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE (or …?host=/socket/folder).") var to: String

    func run() async throws {
        let url: PostgresURL
        do { url = try PostgresURL(to) } catch let e as PostgresURL.Invalid { throw ValidationError("--to: \(e.description)") }
        let s = try await PostgresImport.run(from: from, to: url) { line in
            FileHandle.standardError.write(Data("  \(line)\n".utf8))
        }
        print("已迁移 migrated hub \(s.hubName) (\(s.hubSite)) from \(from) to \(url)")
        print("  变更 changes \(s.changes) · 记录 records \(s.records) · 设备 devices \(s.devices) · 督导 supervisors \(s.supervisors) · 未处理冲突 open conflicts \(s.conflicts) · 离线包 bundles \(s.bundles)")
        print("  核对 checked: \(s.checked) 条记录的值、寄存器和冲突与原文件一致 (every record, register and conflict matches the file)")
        print("启动 serve: fieldsync-hub serve --store '\(url)'")
    }
}

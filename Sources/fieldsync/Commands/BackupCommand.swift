import ArgumentParser
import FieldSyncCore
import FieldSyncReplica
import FieldSyncPresentation
import Foundation

// MARK: - backup

struct BackupCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup", abstract: "Write a bundle of everything the hub does not have yet (备份未上传的数据).",
        discussion: """
            The bundle (in --to, default the folder beside the replica's file) can be imported on a replacement \
            laptop or a colleague's (fieldsync bundle import FILE) or uploaded to the hub; its changes merge once, \
            even if this laptop syncs later too. `fieldsync daemon --backup-dir DIR` writes one a day. docs/operations.md.
            """)
    @OptionGroup var global: GlobalOptions
    @Option(help: "The folder to write into (a USB stick, say).") var to: String?
    @Flag(help: "Print the result as JSON.") var json = false

    func run() throws {
        let r = try global.open()
        let folder = to ?? (global.path as NSString).deletingLastPathComponent
        guard let rep = try r.backup(toFolder: folder.isEmpty ? "." : folder) else {
            if json { Display.printJSON(["file": .null, "changes": .int(0)]) } else {
                print("没有需要备份的内容：同步中心已有本机的全部变更 (nothing to back up: the hub has every change)")
            }
            return
        }
        if json {
            Display.printJSON(["file": .string(rep.path), "changes": .int(Int64(rep.changes)), "bytes": .int(Int64(rep.bytes))])
        } else {
            print("已备份 backed up \(rep.changes) 条变更 to \(rep.path) (\(rep.bytes) bytes)")
            print("在新电脑上导入 import on another laptop: fieldsync bundle import \(rep.path)")
        }
    }
}

// MARK: - prune

struct PruneCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prune", abstract: "Drop the text of old superseded history the hub keeps (清理旧的历史记录).",
        discussion: """
            Keeps current values, conflicts and deletions, and for older replaced values who changed what and when; \
            the values themselves stay at the hub, which keeps every change. Only changes the hub already has are \
            pruned. A sync does this once a day by itself (90 days). docs/operations.md.
            """)
    @OptionGroup var global: GlobalOptions
    @Option(help: "Keep the full history of the last N days (at least 1).") var keepDays: Int = 90
    @Flag(help: "Print the result as JSON.") var json = false

    func validate() throws {
        guard (1...36_500).contains(keepDays) else { throw ValidationError("--keep-days is 1…36500, got \(keepDays)") }
    }

    func run() throws {
        let r = try global.open()
        let rep = try r.pruneHistory(windowMs: Int64(keepDays) * 86_400_000)
        if json {
            Display.printJSON(["examined": .int(Int64(rep.examined)), "pruned": .int(Int64(rep.pruned)), "bytes": .int(Int64(rep.bytes))])
        } else {
            print("已清理 pruned \(rep.pruned) 条 \(keepDays) 天前被覆盖的历史 (\(rep.bytes) bytes)；当前值、冲突和删除都保留，全文存于同步中心")
        }
    }
}

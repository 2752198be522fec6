import ArgumentParser
import FieldSyncCore
import FieldSyncCommandLine
import FieldSyncPresentation
import FieldSyncReplica
import Foundation

struct ConflictsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "conflicts", abstract: "See, understand and settle conflicts (冲突).",
        subcommands: [List.self, Show.self, Resolve.self, Summary.self])

    typealias Filter = ConflictFilterOptions

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List open conflicts, oldest first (冲突列表).")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var filter: Filter
        @Flag(help: "Print as JSON (documented in docs/cli.md).") var json = false

        func run() throws {
            let list = try global.open().conflicts(matching: filter.value)
            if json { Display.printJSON(.array(list.map(ConflictViews.json))) } else { print(ConflictViews.listTable(list)) }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "One conflict in full: the competing values side by side, where they started, who wins and why (冲突详情).")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The conflict, as listed: RECORD/FIELD (e.g. 3f2a9c1b/status).") var id: String
        @Flag(help: "Print as JSON.") var json = false

        func run() throws {
            let r = try global.open()
            let d = try r.conflictDetail(id)
            if json { Display.printJSON(ConflictViews.json(d)) } else { print(ConflictViews.detail(d, now: r.wallClock(), command: "fieldsync conflicts resolve")) }
        }
    }

    struct Resolve: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Settle a conflict, or many: an ordinary edit that syncs everywhere (处理冲突).",
            discussion: """
                fieldsync conflicts resolve 3f2a9c1b/status --take 2          keep candidate 2 (numbers as in `conflicts show`)
                fieldsync conflicts resolve 3f2a9c1b/notes --value '"合并后的记录"'  a new value
                fieldsync conflicts resolve --take-newest --kind dispute --field status --village 520221105   many at once
                For a delete versus edits: --take the delete confirms it; --take an edit undeletes and keeps the edits.
                """)
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The conflict (RECORD/FIELD). Leave out with --take-newest/--take-oldest and filters to settle many.") var id: String?
        @Option(help: "The candidate to keep: its number in `conflicts show`, or its change id.") var take: String?
        @Option(help: "A new value (JSON, e.g. '\"已化解\"' or 125000).") var value: String?
        @Flag(help: "Keep the value with the latest clock reading.") var takeNewest = false
        @Flag(help: "Keep the value with the earliest clock reading.") var takeOldest = false
        @OptionGroup var filter: Filter
        @OptionGroup var write: WriteOptions

        func validate() throws {
            let ways = [take != nil, value != nil, takeNewest, takeOldest].filter { $0 }.count
            guard ways == 1 else { throw ValidationError("请只选一种处理方式：--take、--value、--take-newest 或 --take-oldest (give exactly one of them)") }
            if id == nil && !(takeNewest || takeOldest) { throw ValidationError("不写冲突编号时一次处理多个冲突，只能用 --take-newest 或 --take-oldest (settling many conflicts takes --take-newest or --take-oldest)") }
        }

        func run() throws {
            let r = try global.open()
            let how: Resolution
            if takeNewest { how = .newest } else if takeOldest { how = .oldest } else if let v = value {
                do { how = .value(try JSONValue.parse(v)) } catch { throw ReplicaError.invalidInput(InputError("--value", "不是有效的 JSON：文字要加英文引号，如 '\"已化解\"' (not valid JSON: \(error))")) }
            } else {
                let d = try r.conflictDetail(id!)
                how = .take(try ConflictViews.pick(take!, in: d.info))
            }
            if let id {
                let res = try r.resolveConflict(id, how, author: write.author, note: write.note)
                print("已处理 resolved \(RecordID.short(res.id))/\(res.conflictsSettled.joined(separator: ",")) (变更 \(res.change!))；同步后所有副本都会看到 (syncs like any edit)")
            } else {
                let done = try r.resolveConflicts(matching: filter.value, how, author: write.author, note: write.note)
                print("已处理 resolved \(done.count) 个冲突 (\(takeNewest ? "采用最新的值" : "采用最早的值"))")
            }
        }
    }

    struct Summary: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Open conflicts per kind, village and field, and how long they have been open (冲突统计).")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var filter: Filter
        @Flag(help: "Print as JSON.") var json = false

        func run() throws {
            let s = try global.open().conflictSummary(matching: filter.value)
            if json { Display.printJSON(s.json) } else { print(ConflictViews.summary(s)) }
        }
    }
}

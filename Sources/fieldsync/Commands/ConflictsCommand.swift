import ArgumentParser
import FieldSyncCore
import FieldSyncReplica

struct ConflictsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "conflicts", abstract: "See open conflicts (冲突).", subcommands: [List.self])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List open conflicts, oldest first (冲突列表).")
        @OptionGroup var global: GlobalOptions
        @Flag(help: "Print as JSON (documented in docs/cli.md).") var json = false

        func run() throws {
            let list = try global.open().conflicts()
            if json { Display.printJSON(.array(list.map(Self.json))); return }
            if list.isEmpty { print("没有未解决的冲突 no open conflicts"); return }
            var t = TextTable(["冲突", "类型", "记录", "村", "字段", "胜出值", "其他值", "发生于"])
            for c in list {
                let winner = c.candidates.first(where: \.wins)
                let others = c.candidates.filter { !$0.wins }
                func show(_ x: ConflictInfo.Candidate) -> String {
                    let label = x.field == c.field || c.type == .concurrentValues ? "" : Display.fieldLabel(c.kind, x.field) + "="
                    return label + Width.clip(Display.value(x.value, c.kind.spec.field(x.field)), 20) + " (\(x.author)@\(x.site))"
                }
                t.add([Display.short(c.row) + "/" + c.field, c.type == .deleteVersusEdit ? "删除与修改" : "同时修改",
                       c.kind.spec.label, c.village ?? "—", Display.fieldLabel(c.kind, c.field),
                       winner.map(show) ?? "—", others.map(show).joined(separator: " | "), Display.time(c.since)])
            }
            print(t.render())
            print("共 \(list.count) 个未解决冲突；胜出值在每个副本上相同 (winner: later clock, then larger site id)")
        }

        static func json(_ c: ConflictInfo) -> JSONValue {
            .object(JSONObject([
                ("id", .string(c.key)), ("kind", .string(c.kind.rawValue)), ("row", .string(c.row)), ("field", .string(c.field)),
                ("type", .string(c.type.rawValue)), ("village", c.village.map { .string($0) } ?? .null),
                ("since", .string(UTCTime.iso(c.since))),
                ("candidates", .array(c.candidates.map { x in
                    .object(JSONObject([
                        ("change", .string(x.change.description)), ("field", .string(x.field)), ("value", x.value),
                        ("author", .string(x.author)), ("site", .string(x.site)), ("hlc", .string(x.hlc.description)),
                        ("time", .string(UTCTime.iso(x.hlc.millis))), ("wins", .bool(x.wins)),
                    ]))
                })),
            ]))
        }
    }
}

import ArgumentParser
import FieldSyncCore
import FieldSyncReplica
import FieldSyncCommandLine
import FieldSyncPresentation
import FieldSyncTransport
import Foundation

struct RecordCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "record", abstract: "Add, edit, read, delete and import records (记录).",
        subcommands: [Add.self, Edit.self, Get.self, List.self, Delete.self, Undelete.self, History.self, Import.self])
}

/// Options every writing command shares.
struct WriteOptions: ParsableArguments {
    @Option(help: "The cadre making this edit (default: the replica's author).") var author: String?
    @Option(help: "A note kept with the change in the record's history.") var note: String?
}

extension RecordCommand {
    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a record; prints its id (新增记录).",
            discussion: """
                Example: fieldsync record add dispute --json '{"village":"520221105201","category":"邻里纠纷",\
                "parties":"张三与李四","summary":"宅基地边界争执","reported_on":"2026-11-20","status":"受理"}'
                --json takes inline JSON, @FILE or - (standard input). `fieldsync schema` lists the fields.
                """)
        @OptionGroup var global: GlobalOptions
        @Argument(help: "visit | dispute | project | region | cadre | household (or the Chinese label).") var kind: RecordKind
        @Option(name: .customLong("json"), help: "The fields as a JSON object.") var input: String
        @OptionGroup var write: WriteOptions
        @Flag(name: .customLong("print-json"), help: "Print {\"id\":…} as JSON instead of the bare id.") var printJSON = false

        func run() throws {
            let r = try global.open()
            let id = try r.add(kind, jsonArgument(input), author: write.author, note: write.note)
            if printJSON { Display.printJSON(["id": .string(id), "kind": .string(kind.rawValue)]) } else { print(id) }
        }
    }

    struct Edit: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Set some fields of a record (修改记录).",
            discussion: "Example: fieldsync record edit 0193ab --json '{\"status\":\"已化解\",\"resolved_on\":\"2026-11-22\"}'. null clears an optional field. Writing a field that is in conflict settles the conflict.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The record id, or a unique prefix of at least 4 characters.") var id: String
        @Option(name: .customLong("json"), help: "The fields to set, as a JSON object.") var input: String
        @OptionGroup var write: WriteOptions
        @Flag(name: .customLong("print-json"), help: "Print the result as JSON.") var printJSON = false

        func run() throws {
            let r = try global.open()
            let res = try r.edit(id, jsonArgument(input), author: write.author, note: write.note)
            if printJSON {
                Display.printJSON(["id": .string(res.id), "change": res.change.map { .string($0.description) } ?? .null,
                                   "fieldsChanged": .array(res.fieldsChanged.map { .string($0) }),
                                   "conflictsSettled": .array(res.conflictsSettled.map { .string($0) })])
                return
            }
            guard let c = res.change else { print("无变化 nothing changed: \(res.id) already holds these values"); return }
            print("已修改 edited \(res.kind.spec.label) \(res.id): " + res.fieldsChanged.map { Display.fieldLabel(res.kind, $0) }.joined(separator: "、") + " (变更 \(c))")
            if !res.conflictsSettled.isEmpty {
                print("已解决冲突 settled conflicts: " + res.conflictsSettled.map { Display.fieldLabel(res.kind, $0) }.joined(separator: "、"))
            }
        }
    }

    struct Get: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one record (查看记录).")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The record id or a unique prefix.") var id: String
        @Flag(help: "Print as JSON: {\"id\",\"kind\",\"deleted\",\"fields\",\"conflicts\"}.") var json = false

        func run() throws {
            let rec = try global.open().record(id)
            if json { Display.printJSON(rec.json); return }
            print("\(rec.kind.spec.label) \(rec.id)" + (rec.deleted ? "  [已删除 deleted]" : ""))
            var t = TextTable(["字段", "值"])
            for (f, v) in zip(rec.kind.spec.fields, rec.values) {
                let mark = rec.conflicts.contains(f.name) ? "  ⚠ 有冲突" : ""
                t.add([f.label, Display.value(v, f) + mark])
            }
            print(t.render())
            if rec.conflicts.contains(RowState.recordConflictField) {
                print("⚠ 删除与修改冲突：此记录被删除时，另有修改未被看到 (fieldsync conflicts list)")
            }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List records of a kind (记录列表).")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "visit | dispute | project | region | cadre | household") var kind: RecordKind
        @Option(help: "Only records whose division code starts with this prefix (e.g. a township 520221105).") var village: String?
        @Flag(help: "Include deleted records.") var deleted = false
        @Option(help: "Show at most this many records.") var limit: Int?
        @Flag(help: "Print as a JSON array of records.") var json = false

        func run() throws {
            let recs = try global.open().records(kind, villagePrefix: village, includeDeleted: deleted, limit: limit)
            if json { Display.printJSON(.array(recs.map(\.json))); return }
            let spec = kind.spec
            let fields = spec.listFields.compactMap { spec.field($0) }
            var t = TextTable(["编号"] + fields.map(\.label) + ["状态"])
            for r in recs {
                var flags: [String] = []
                if r.deleted { flags.append("已删除") }
                if !r.conflicts.isEmpty { flags.append("⚠ 冲突:" + r.conflicts.map { Display.fieldLabel(kind, $0) }.joined(separator: "、")) }
                t.add([Display.short(r.id)] + fields.map { Width.clip(Display.value(r[$0.name], $0), 24) } + [flags.joined(separator: " ")])
            }
            print(t.render())
            print("共 \(recs.count) 条 \(spec.label)")
        }
    }

    struct Delete: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a record; it can be undeleted (删除记录).")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The record id or a unique prefix.") var id: String
        @OptionGroup var write: WriteOptions

        func run() throws {
            let res = try global.open().delete(id, author: write.author, note: write.note)
            print("已删除 deleted \(res.kind.spec.label) \(res.id) (变更 \(res.change!))")
        }
    }

    struct Undelete: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Bring a deleted record back (恢复记录).")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The record id or a unique prefix.") var id: String
        @OptionGroup var write: WriteOptions

        func run() throws {
            let res = try global.open().undelete(id, author: write.author, note: write.note)
            print("已恢复 undeleted \(res.kind.spec.label) \(res.id) (变更 \(res.change!))")
        }
    }

    struct History: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Every value each field ever had: who, when, from which replica (修改历史).")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The record id or a unique prefix.") var id: String
        @Flag(help: "Print as JSON.") var json = false
        @Flag(help: "Do not fetch pruned older values from the hub.") var offline = false

        func run() throws {
            let r = try global.open()
            // Older values this laptop pruned come back from the hub when it can be reached.
            var fetched: String?
            if !offline, try !r.prunedChanges(of: id).isEmpty, try r.syncState() != nil {
                var options = SyncOptions()
                options.attempts = 1
                options.transport.connectTimeout = 5
                options.transport.progress = false
                do {
                    let n = try SyncClient(replica: r, options: options).restorePrunedHistory(of: id)
                    fetched = "已从同步中心取回 \(n) 条较早的历史内容 (fetched \(n) pruned changes from the hub)"
                } catch {
                    fetched = "较早的历史内容存于同步中心，现在取不到 (could not fetch pruned history: \(error))"
                }
            }
            let (rec, entries) = try r.history(id)
            if json {
                Display.printJSON(.object(JSONObject([
                    ("id", .string(rec.id)), ("kind", .string(rec.kind.rawValue)),
                    ("history", .array(entries.map { e in
                        var o: JSONObject = ["change": .string(e.change.description), "hlc": .string(e.hlc.description),
                                             "time": .string(UTCTime.iso(e.hlc.millis)), "author": .string(e.author),
                                             "site": .string(e.site), "field": .string(e.field), "value": e.value,
                                             "status": .string(e.status.rawValue)]
                        if let n = e.note { o["note"] = .string(n) }
                        return .object(o)
                    })),
                    ("fetchedFromHub", fetched.map { .string($0) } ?? .null),
                ])))
                return
            }
            print("\(rec.kind.spec.label) \(rec.id) 的修改历史 (时间为 \(Display.zoneLabel))")
            if let fetched { print(fetched) }
            var t = TextTable(["时间", "字段", "值", "作者", "来源站点", "状态", "变更"])
            for e in entries {
                let f = rec.kind.spec.field(e.field)
                t.add([Display.time(e.hlc.millis), e.status == .pruned ? "（已清理）" : Display.fieldLabel(rec.kind, e.field), Width.clip(Display.value(e.value, f), 30),
                       e.author, e.site, Display.status(e.status), e.change.description + (e.note.map { " 备注:\(Width.clip($0, 20))" } ?? "")])
            }
            print(t.render())
        }
    }

    struct Import: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Import records from JSON Lines or CSV, all or nothing (批量导入).",
            discussion: """
                CSV: a header row of field keys or Chinese labels (as in the Excel ledgers), e.g. \
                村(社区)代码,户主,走访干部,走访日期,走访方式,走访情况. A money column names its unit: 预算金额(元) or \
                预算金额(分) (the key budget_fen is 分). Dates may be 2023/1/4 or 2023年1月4日. UTF-8 or GB18030.
                A row with an id (编号) column updates that record; without one, a row matching an existing record \
                on its natural key (visit: village, household_head, visit_date, visit_kind; dispute: village, parties, \
                reported_on; project: village, name; household: village, head_name; cadre: village, name) updates it, \
                so importing the same file twice adds nothing. A bad row is reported by line number and nothing is imported.
                """)
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The kind of every record in the file.") var kind: RecordKind
        @Argument(help: "A .jsonl or .csv file.") var file: String
        @Option(help: "jsonl or csv (default: from the file name).") var format: String?
        @Option(help: "auto, utf-8 or gb18030.") var encoding: String = "auto"
        @OptionGroup var write: WriteOptions

        func run() throws {
            let r = try global.open()
            guard let enc = RecordImport.Encoding(rawValue: encoding) else { throw ValidationError("--encoding 填 auto、utf-8 或 gb18030 (--encoding is auto, utf-8 or gb18030)") }
            let fmt = try format.map { f -> RecordImport.Format in
                guard let x = RecordImport.Format(rawValue: f) else { throw ValidationError("--format 填 jsonl 或 csv (--format is jsonl or csv)") }
                return x
            }
            let plan = try RecordImport.plan(kind: kind, path: file, format: fmt, encoding: enc, using: r)
            let wrong = plan.rows.compactMap { row -> String? in if case .wrong(let why) = row.action { "第 \(row.line) 行 line \(row.line): \(why)" } else { nil } }
            guard wrong.isEmpty else {
                let more = wrong.count > 20 ? "\n  … 另有 \(wrong.count - 20) 行 and \(wrong.count - 20) more" : ""
                throw ReplicaError.invalidInput(InputError(file, "\(wrong.count) 行有误，没有导入任何记录 (\(wrong.count) bad line(s), nothing was imported):\n  " + wrong.prefix(20).joined(separator: "\n  ") + more))
            }
            let (added, updated) = try r.apply(plan, author: write.author, note: write.note)
            print("已导入 imported \(added.count) 条新\(kind.spec.label)，更新 updated \(updated.count) 条，\(plan.unchanged) 条已有且相同 unchanged — from \(file) (\(plan.encoding))")
        }
    }
}

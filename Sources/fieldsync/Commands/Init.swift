import ArgumentParser
import Foundation
import FieldSyncCore
import FieldSyncReplica
import FieldSyncCommandLine
import FieldSyncPresentation

struct Init: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create a new replica (初始化本机副本).",
        discussion: "Example: fieldsync init --site 牛角村-笔记本1 --author 王芳")

    @OptionGroup var global: GlobalOptions
    @Option(help: "A name for this laptop or replica, shown to others in history (站点名称).") var site: String
    @Option(help: "The cadre credited with edits made here unless a command says otherwise (默认作者). Default: the site name.")
    var author: String?
    @Flag(help: "Print the result as JSON.") var json = false

    func run() throws {
        let r = try Replica.create(path: global.path, siteName: site, author: author ?? site)
        if json {
            Display.printJSON(["path": .string(r.path), "site": .string(r.site.hex), "siteName": .string(r.siteName), "author": .string(r.author)])
        } else {
            print("已创建副本 created replica \(r.path)")
            print("站点 site: \(r.siteName) (\(r.site.hex))  默认作者 author: \(r.author)")
        }
    }
}

struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "status", abstract: "Show the replica's state (副本状态).")
    @OptionGroup var global: GlobalOptions
    @Flag(help: "Print as JSON.") var json = false

    func run() throws {
        let r = try global.open()
        let s = try r.status()
        let sync = try r.syncState()
        let waiting = sync == nil ? nil : try r.pendingPushCount()
        if json {
            var o = s.json.objectValue!
            o["setAside"] = .int(Int64(try r.setAsideCount()))
            o["sync"] = sync.map { st in
                func t(_ ms: Int64?) -> JSONValue { ms.map { .string(UTCTime.iso($0)) } ?? .null }
                return .object(JSONObject([
                    ("hub", .string(st.hubURL)), ("hubName", .string(st.hubName)), ("device", .string(st.device)), ("scope", .string(st.scope)),
                    ("lastSuccess", t(st.lastSuccess)), ("lastPush", t(st.lastPush)), ("lastPull", t(st.lastPull)), ("lastAttempt", t(st.lastAttempt)), ("lastError", st.lastError.map { .string($0) } ?? .null),
                    ("lastErrorAt", t(st.lastErrorAt)), ("changesWaiting", .int(Int64(waiting ?? 0))), ("pushCursor", .int(st.pushCursor)),
                    ("pullCursor", .int(st.pullCursor)), ("daemon", st.daemonState.map { .string($0) } ?? .null),
                    ("daemonPid", st.daemonPID.map { .int(Int64($0)) } ?? .null), ("daemonNext", t(st.daemonNext)),
                    ("clockCorrectionMs", .int(r.clockCorrection)),
                ]))
            } ?? .null
            Display.printJSON(.object(o))
            return
        }
        var t = TextTable(["项目", "内容"])
        t.add(["副本 replica", s.path])
        t.add(["站点 site", "\(s.siteName) (\(s.site.hex))"])
        t.add(["默认作者 author", s.author])
        for k in s.records { t.add(["\(k.kind.spec.label) \(k.kind.rawValue)", "\(k.live) 条" + (k.deleted > 0 ? " (另有已删除 \(k.deleted) 条)" : "")]) }
        t.add(["变更 changes", "\(s.changes) (本机 \(s.ownChanges)，共 \(s.sites) 个站点)"])
        t.add(["未解决冲突 conflicts", "\(s.conflicts)"])
        t.add(["时钟 clock", "\(Display.time(s.clock.millis)) (HLC \(s.clock))"])
        if s.changesFromTheFuture > 0 {
            t.add(["⚠ 时钟异常 clock", "\(s.changesFromTheFuture) 条变更的时间超前本机时钟 \(s.maxDrift / 60000) 分钟以上：有设备时钟不准"])
        }
        if let st = sync {
            t.add(["同步中心 hub", "\(st.hubName) \(st.hubURL)  设备 \(st.device)  范围 \(st.scope)"])
            t.add(["最近成功同步 last success", st.lastSuccess.map { Display.time($0) } ?? "从未 never"])
            t.add(["最近成功上传/下载 last push/pull", "\(st.lastPush.map { Display.time($0) } ?? "从未 never") / \(st.lastPull.map { Display.time($0) } ?? "从未 never")"])
            if let e = st.lastError {
                t.add(["✘ 最近错误 last error", "\(st.lastErrorAt.map { Display.time($0) } ?? "")  \(e)"])
            }
            t.add(["待上传变更 changes waiting", "\(waiting ?? 0)"])
            if let d = st.daemonState {
                t.add(["后台同步 daemon", d + (st.daemonPID.map { " (pid \($0))" } ?? "") + (st.daemonNext.map { "，下次 next \(Display.time($0))" } ?? "")])
            }
            let refused = try r.refusedByHub()
            if !refused.isEmpty { t.add(["✘ 中心拒收 refused", "\(refused.count) 条，最近 \(refused[0].change): \(refused[0].code) \(refused[0].reason)"]) }
        } else {
            t.add(["同步中心 hub", "未注册 not enrolled (fieldsync enroll --hub URL --code CODE)"])
        }
        if r.clockCorrection != 0 { t.add(["时钟校正 clock correction", "\(r.clockCorrection / 1000) s (按同步中心的时间)"]) }
        if s.keptForNewerSchema > 0 {
            let kinds = s.keptKinds.isEmpty ? "" : "，其中有本机还不认识的记录类别 \(s.keptKinds.joined(separator: "、"))"
            t.add(["暂存变更 kept", "\(s.keptForNewerSchema) 条变更用了更新的数据结构\(kinds)：原样保存并转交，取得新版数据结构后自动合并 (kept for schema > \(s.schema), relayed as they came, merged once this laptop takes it)"])
        }
        let aside = try r.setAsideCount()
        if aside > 0 {
            t.add(["⚠ 另存变更 set aside", "\(aside) 条收到的变更未合并：来源无法证实、冒用本机站点，或内容无效 (not merged: unproven origin, this site's id, or invalid; fieldsync status --json: setAside)"])
        }
        if s.capturesRejected > 0 {
            t.add(["⚠ SQL 写入被拒", "\(s.capturesRejected) 条直接 SQL 写入未通过校验 (fieldsync status --json / 表 fs_capture_rejected)"])
        }
        print(t.render())
    }
}

struct SchemaCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "schema", abstract: "The record schema this laptop holds: kinds, fields, types, choices, Chinese labels (数据结构).",
        discussion: """
            The schema is versioned data (docs/operations.md §11): a laptop takes a newer version from its hub on \
            the next sync; `schema load FILE` takes one by hand (a pilot, or a laptop that cannot reach the hub).
            """,
        subcommands: [Show.self, Load.self], defaultSubcommand: Show.self)

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "show", abstract: "List every record kind, field, type and choice with Chinese labels.")
        @OptionGroup var global: GlobalOptions
        @Flag(help: "Print the schema document as JSON (the format is documented in docs/cli.md; `schema load` reads it).") var json = false

        func run() throws {
            // The replica's schema when there is one; else the one built into this release.
            if FileManager.default.fileExists(atPath: global.path) { _ = try global.open() }
            let schema = Schema.current
            if json { Display.printJSON(schema.document); return }
            print("数据结构 schema version \(schema.version)\n")
            for k in schema.kinds {
                print("\(k.label) \(k.kind.rawValue)")
                var t = TextTable(["字段 field", "名称 label", "类型 type", "必填", "说明"])
                for f in k.fields { t.add([f.name, f.label, f.type.name, f.required ? "是" : "", f.type.formatHint]) }
                print(t.render())
                print("")
            }
        }
    }

    struct Load: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "load", abstract: "Take a newer schema version from a file (载入新版数据结构).",
            discussion: "Only additive changes are taken (new fields, new choices, longer maximums); changes kept for it merge in place.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The schema document (JSON, as `fieldsync-hub schema show --json` prints it).") var file: String
        @Flag(help: "Print the result as JSON.") var json = false

        func run() throws {
            let schema = try readSchemaDocument(file)
            let r = try global.open()
            let before = Schema.current.version
            let rep: SchemaLearnReport
            do { rep = try r.learn(schema) } catch ReplicaError.invalidInput(let e) { throw schemaRefusal(e) }
            if json {
                Display.printJSON(["from": .int(Int64(before)), "to": .int(Int64(rep.to)), "merged": .int(Int64(rep.merged)), "stillPending": .int(Int64(rep.stillPending))])
            } else if rep.to == before {
                print("已是数据结构第 \(rep.to) 版 (schema version \(rep.to) is already held)")
            } else {
                print("已载入数据结构第 \(rep.to) 版 (schema version \(before) → \(rep.to)); 合并了 \(rep.merged) 条此前暂存的变更 (merged \(rep.merged) kept changes), 仍暂存 \(rep.stillPending) 条")
            }
        }
    }
}

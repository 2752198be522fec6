import ArgumentParser
import FieldSyncCore
import FieldSyncHub
import FieldSyncCommandLine
import FieldSyncPresentation
import FieldSyncReplica
import Foundation

// MARK: - supervisor

struct SupervisorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "supervisor", abstract: "Supervisor accounts: township and county staff who see and settle conflicts (督导账号).",
        subcommands: [Add.self, List.self, Disable.self, Unlock.self, SecurityLog.self])

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a supervisor with a region scope.",
            discussion: "The password is read from standard input (one line) or $FIELDSYNC_SUPERVISOR_PASSWORD; at least 8 characters.")
        @OptionGroup var hub: HubOptions
        @Option(help: "The supervisor's name (how they sign in, and how their resolutions appear in history).") var name: String
        @Option(help: "The division-code prefix they oversee (county 6, township 9 digits…).") var scope: String

        func run() async throws {
            let password: String
            if let p = ProcessInfo.processInfo.environment["FIELDSYNC_SUPERVISOR_PASSWORD"], !p.isEmpty {
                password = p
            } else {
                if isatty(0) != 0 { FileHandle.standardError.write(Data("password (至少 8 个字符): ".utf8)) }
                password = readLine(strippingNewline: true) ?? ""
            }
            let s = try await hub.openExisting().addSupervisor(name: name, scope: scope, password: password)
            print("已添加督导 added supervisor \(s.name)，范围 scope \(s.scope) (\(RegionCode.levelLabel(s.scope)))")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List supervisors.")
        @OptionGroup var hub: HubOptions

        func run() async throws {
            let list = try await hub.openExisting().supervisors()
            var t = TextTable(["督导 name", "范围 scope", "状态", "最近登录 last sign-in"])
            for s in list {
                t.add([s.name, s.scope, s.disabled == nil ? "有效" : "已停用", s.lastLogin.map { Display.time($0) } ?? "—"])
            }
            print(t.render())
        }
    }

    struct Disable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Disable a supervisor; their sessions end at once.")
        @OptionGroup var hub: HubOptions
        @Argument(help: "The supervisor's name.") var name: String

        func run() async throws {
            try await hub.openExisting().disableSupervisor(name: name)
            print("已停用 disabled \(name)")
        }
    }

    struct Unlock: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Lift the lock that failed sign-ins put on an account or a client address (解锁).",
            discussion: "Example: fieldsync-hub supervisor unlock 陈主任   or   fieldsync-hub supervisor unlock --address 10.0.0.7")
        @OptionGroup var hub: HubOptions
        @Argument(help: "The supervisor's name.") var name: String?
        @Option(help: "A client address locked after many failed sign-ins.") var address: String?

        func run() async throws {
            guard (name == nil) != (address == nil) else { throw ValidationError("give a supervisor's name or --address, one of the two") }
            let subject = name.map(SignInPolicy.account) ?? SignInPolicy.address(address!)
            let lifted = try await hub.openExisting().unlock(subject: subject)
            print(lifted ? "已解锁 unlocked \(name ?? address!)：失败次数已清零 (failed sign-ins cleared)"
                         : "\(name ?? address!) 未被锁定，也没有失败记录 (was not locked and has no failed sign-ins)")
        }
    }

    struct SecurityLog: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "security-log", abstract: "Show the newest security events: failed sign-ins, locks, unlocks (安全日志).")
        @OptionGroup var hub: HubOptions
        @Option(help: "How many events.") var limit: Int = 50
        @Flag(help: "Print as JSON.") var json = false

        func run() async throws {
            let events = try await hub.openExisting().securityEvents(limit: max(1, min(limit, 100_000)))
            if json {
                print(JSONValue.array(events.map { e in
                    .object(JSONObject([("at", .string(UTCTime.iso(e.at))), ("kind", .string(e.kind)), ("subject", .string(e.subject)),
                                        ("address", e.address.map { .string($0) } ?? .null), ("detail", .string(e.detail))]))
                }).prettyText)
                return
            }
            var t = TextTable(["时间 time", "事件 event", "对象 subject", "地址 address", "说明 detail"])
            for e in events { t.add([Display.time(e.at), e.kind, e.subject, e.address ?? "—", e.detail]) }
            print(t.render())
        }
    }
}

// MARK: - conflicts

struct HubConflictsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "conflicts", abstract: "See and settle conflicts across every device in a supervisor's scope (冲突).",
        subcommands: [List.self, Show.self, Resolve.self, Summary.self])

    struct As: ParsableArguments {
        @OptionGroup var hub: HubOptions
        @Option(name: .customLong("as"), help: "The supervisor acting (their scope limits what is shown and settled).") var supervisor: String

        func open() async throws -> (any HubStore, Supervisor) {
            let store = try await hub.openExisting()
            return (store, try await store.supervisor(named: supervisor))
        }
    }

    typealias Filter = ConflictFilterOptions

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Open conflicts in the supervisor's scope, oldest first.")
        @OptionGroup var who: As
        @OptionGroup var filter: Filter
        @Flag(help: "Print as JSON.") var json = false

        func run() async throws {
            let (store, s) = try await who.open()
            let list = try await store.conflicts(for: s, filter.value)
            print(json ? JSONValue.array(list.map(ConflictViews.json)).prettyText : ConflictViews.listTable(list))
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One conflict in full.")
        @OptionGroup var who: As
        @Argument(help: "RECORD/FIELD, as listed.") var id: String
        @Flag(help: "Print as JSON.") var json = false

        func run() async throws {
            let (store, s) = try await who.open()
            let d = try await store.conflictDetail(for: s, id)
            print(json ? ConflictViews.json(d).prettyText : ConflictViews.detail(d, now: store.now(), command: "fieldsync-hub conflicts resolve --as \(s.name)"))
        }
    }

    struct Resolve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Settle a conflict (or many, with --take-newest/--take-oldest and filters); laptops get it at their next sync.")
        @OptionGroup var who: As
        @Argument(help: "RECORD/FIELD; leave out to settle every conflict the filters match.") var id: String?
        @Option(help: "The candidate to keep: its number in `conflicts show`, or its change id.") var take: String?
        @Option(help: "A new value (JSON).") var value: String?
        @Flag(help: "Keep the newest value.") var takeNewest = false
        @Flag(help: "Keep the oldest value.") var takeOldest = false
        @Option(help: "A note kept in the record's history.") var note: String?
        @OptionGroup var filter: Filter

        func validate() throws {
            guard [take != nil, value != nil, takeNewest, takeOldest].filter({ $0 }).count == 1 else {
                throw ValidationError("give exactly one of --take, --value, --take-newest, --take-oldest")
            }
            if id == nil && !(takeNewest || takeOldest) { throw ValidationError("settling many conflicts takes --take-newest or --take-oldest") }
        }

        func run() async throws {
            let (store, s) = try await who.open()
            let how: Resolution
            if takeNewest { how = .newest } else if takeOldest { how = .oldest } else if let v = value {
                do { how = .value(try JSONValue.parse(v)) } catch { throw ReplicaError.invalidInput(InputError("--value", "not valid JSON: \(error)")) }
            } else {
                how = .take(try ConflictViews.pick(take!, in: try await store.conflictDetail(for: s, id!).info))
            }
            if let id {
                let res = try await store.resolve(for: s, id, how, note: note)
                print("已处理 resolved \(RecordID.short(res.id))/\(res.conflictsSettled.joined(separator: ",")) (变更 \(res.change.map(\.description) ?? "—"))；笔记本下次同步时收到")
            } else {
                let done = try await store.resolveAll(for: s, filter.value, how, note: note)
                print("已处理 resolved \(done.count) 个冲突")
            }
        }
    }

    struct Summary: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Open conflicts per kind, village and field, and how long open.")
        @OptionGroup var who: As
        @OptionGroup var filter: Filter
        @Flag(help: "Print as JSON.") var json = false

        func run() async throws {
            let (store, s) = try await who.open()
            let sum = try await store.conflictSummary(for: s, filter.value)
            print(json ? sum.json.prettyText : ConflictViews.summary(sum))
        }
    }
}

import ArgumentParser
import FieldSyncCore
import FieldSyncReplica
import FieldSyncTransport
import FieldSyncCommandLine
import FieldSyncPresentation
import Foundation

struct BundleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bundle", abstract: "Exchange changes by file, e.g. on a USB stick (离线交换包).",
        subcommands: [Export.self, Import.self, Upload.self, Knowledge.self])

    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write changes to a bundle file (导出交换包).",
            discussion: """
                Without options every change is written. --since N writes what this replica received after its \
                sequence number N (printed by the previous export); --since 2026-11-20T00:00:00Z what it received \
                after a time; --for FILE exactly what the replica that wrote FILE (fieldsync bundle knowledge) lacks.
                """)
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The bundle file to write.") var file: String
        @Option(help: "A sequence number or an ISO time.") var since: String?
        @Option(name: .customLong("for"), help: "A knowledge file from the receiving replica.") var knowledge: String?
        @Flag(help: "Print the result as JSON.") var json = false

        func run() throws {
            let r = try global.open()
            var filter = ExportFilter.all
            if let since {
                if let n = Int64(since) { filter = .sinceSeq(n) } else if let t = UTCTime.parseISO(since) { filter = .sinceTime(t) } else {
                    throw ValidationError("--since 填序号或 ISO 时间，如 2026-11-20T00:00:00Z (--since takes a sequence number or an ISO time)")
                }
            }
            if let knowledge {
                guard let d = FileManager.default.contents(atPath: knowledge) else {
                    throw ReplicaError.invalidInput(InputError("--for", "无法读取 \(knowledge) (cannot read it)"))
                }
                do {
                    let v = try JSONValue.parse(bytes: [UInt8](d))
                    filter = .missingFrom(try FieldSyncReplica.Knowledge(json: v["knowledge"] ?? v))
                } catch let e as JSONSyntaxError {
                    throw ReplicaError.invalidInput(InputError("--for \(knowledge)", "不是有效的 JSON (not valid JSON: \(e))"))
                } catch let e as InputError {
                    throw ReplicaError.invalidInput(e.within("--for \(knowledge)"))
                }
            }
            let rep = try r.exportBundle(to: file, filter: filter)
            if json {
                Display.printJSON(["file": .string(rep.path), "changes": .int(Int64(rep.changes)), "bytes": .int(Int64(rep.bytes)), "lastSeq": .int(rep.lastSeq),
                                   "manifests": .int(Int64(rep.manifests)), "unproven": .int(Int64(rep.unproven))])
            } else {
                print("已导出 exported \(rep.changes) 条变更 to \(rep.path) (\(rep.bytes) bytes, \(rep.manifests) 个签名清单 signed manifests); next time: --since \(rep.lastSeq)")
                if rep.unproven > 0 {
                    print("注意 note: \(rep.unproven) 条来自其他设备的变更没有来源签名，未导出；它们会经同步中心到达其他笔记本 (changes of other sites without a signature of their origin were left out; they reach other laptops through the hub)")
                }
            }
        }
    }

    struct Upload: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Upload a bundle file to the hub by name, with this replica's device token (上传交换包).",
            discussion: """
                For changes that travelled on a USB stick: the hub keeps the file in this device's inbox and merges \
                its changes as a push, each judged on its own (scope, clock). Uploading the same file again is harmless. \
                The name (default: the file's name) is 1–100 letters, digits, ".", "_" or "-", not starting with ".". \
                Exit codes as for fieldsync sync: 0 every change taken, 3 some refused, 65 the hub refused the file, \
                75 the hub could not be reached, 77 denied, 78 not enrolled.
                """)
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The bundle file (from fieldsync bundle export).") var file: String
        @Option(help: "The name to keep it under at the hub (default: the file's name).") var name: String?
        @Option(help: "Reach the hub at this address instead of the enrolled one.") var hub: String?
        @Flag(help: "Print the hub's answer as JSON.") var json = false

        func run() throws {
            let r = try global.open()
            var options = SyncOptions()
            options.hubURL = hub
            let client = SyncClient(replica: r, options: options)
            let answer: JSONValue
            let shownName = name ?? URL(fileURLWithPath: file).lastPathComponent
            do { answer = try client.uploadBundle(path: file, name: shownName) } catch let e as SyncError { SyncExit.fail(e) }
            let refused = answer["refused"]?.intValue ?? 0
            if json {
                Display.printJSON(answer)
            } else {
                print("已上传 uploaded \(shownName) → \(answer["stored"]?.stringValue ?? "?")\(answer["again"] == .bool(true) ? "（此前已上传过 uploaded before）" : ""): "
                      + "变更 \(answer["changes"]?.intValue ?? 0) · 新接收 \(answer["accepted"]?.intValue ?? 0) · 已有 \(answer["duplicate"]?.intValue ?? 0) · 被拒 \(refused)")
                for res in answer["results"]?.arrayValue ?? [] where res["status"]?.stringValue == "refused" {
                    print("  ✗ \(res["id"]?.stringValue ?? "?"): \(res["code"]?.stringValue ?? ""): \(res["reason"]?.stringValue ?? "")")
                }
            }
            if refused > 0 { throw ExitCode(3) }
        }
    }

    struct Import: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Apply a bundle file: all of it or nothing; importing twice is harmless (导入交换包).")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The bundle file.") var file: String
        @Option(help: "Refuse bundles that decompress to more than this many bytes.") var maxBytes: Int = Replica.defaultMaxBundleBytes
        @Flag(help: "Print the result as JSON.") var json = false

        func run() throws {
            let r = try global.open()
            let rep = try r.importBundle(from: file, maxBytes: maxBytes)
            let a = rep.apply
            if json {
                Display.printJSON(["file": .string(rep.path), "from": .string(rep.header.siteName), "applied": .int(Int64(a.applied)),
                                   "duplicates": .int(Int64(a.duplicates)), "obsolete": .int(Int64(a.obsolete)),
                                   "conflictsOpened": .int(Int64(a.conflictsOpened)), "conflictsClosed": .int(Int64(a.conflictsClosed)),
                                   "clockAhead": .int(Int64(a.clockAhead.count)), "setAside": .int(Int64(a.setAside))])
                return
            }
            print("已导入 imported \(rep.path) from \(rep.header.siteName): 新变更 \(a.applied) · 已有 \(a.duplicates) · 已被覆盖 \(a.obsolete) · 新冲突 \(a.conflictsOpened) · 已解决冲突 \(a.conflictsClosed)")
            if a.setAside > 0 {
                // The newest set-aside entries are this import's: show why, up to five.
                let shown = (try? r.setAsideChanges(limit: min(a.setAside, 5))) ?? []
                print("⚠ \(a.setAside) 条变更未合并，已另行保存（其余已导入；fieldsync status 可查看）(set aside, not merged; the rest was imported):")
                for s in shown { print("  \(s.change): \(s.reason)") }
            }
            if !a.clockAhead.isEmpty {
                let worst = a.clockAhead.values.max()!
                // Rounded to the nearest day (or hour under a day): 3 days ahead reads "3 天", not "2".
                let ahead = worst >= 86_400_000 ? "\((worst + 43_200_000) / 86_400_000) 天" : "\(max(1, (worst + 1_800_000) / 3_600_000)) 小时"
                print("⚠ \(a.clockAhead.count) 条变更的时间超前本机时钟（最多约 \(ahead)）：发送方设备时钟不准。变更已保留；本机时钟最多只拨快到当前时间后 1 小时 (changes up to about \(ahead) ahead: the sender's clock is wrong; kept, and this clock moves at most 1 hour past now)")
            }
        }
    }

    struct Knowledge: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write which changes this replica holds, for `bundle export --for` on another replica.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "Write to this file instead of standard output.") var output: String?

        func run() throws {
            let r = try global.open()
            let v: JSONValue = ["site": .string(r.site.hex), "siteName": .string(r.siteName), "knowledge": try r.knowledge().json]
            if let output {
                guard FileManager.default.createFile(atPath: output, contents: Data((v.prettyText + "\n").utf8)) else {
                    throw ReplicaError.invalidInput(InputError("--output", "无法写入 \(output) (cannot write it)"))
                }
                print("已写入 wrote \(output)")
            } else {
                Display.printJSON(v)
            }
        }
    }
}

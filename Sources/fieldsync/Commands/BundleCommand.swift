import ArgumentParser
import FieldSyncCore
import FieldSyncReplica
import FieldSyncPresentation
import Foundation

struct BundleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bundle", abstract: "Exchange changes by file, e.g. on a USB stick (离线交换包).",
        subcommands: [Export.self, Import.self, Knowledge.self])

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
                    throw ValidationError("--since takes a sequence number or an ISO time such as 2026-11-20T00:00:00Z")
                }
            }
            if let knowledge {
                guard let d = FileManager.default.contents(atPath: knowledge) else {
                    throw ReplicaError.invalidInput(InputError("--for", "cannot read \(knowledge)"))
                }
                do {
                    let v = try JSONValue.parse(bytes: [UInt8](d))
                    filter = .missingFrom(try FieldSyncReplica.Knowledge(json: v["knowledge"] ?? v))
                } catch let e as JSONSyntaxError {
                    throw ReplicaError.invalidInput(InputError("--for \(knowledge)", "not valid JSON: \(e)"))
                } catch let e as InputError {
                    throw ReplicaError.invalidInput(e.within("--for \(knowledge)"))
                }
            }
            let rep = try r.exportBundle(to: file, filter: filter)
            if json {
                Display.printJSON(["file": .string(rep.path), "changes": .int(Int64(rep.changes)), "bytes": .int(Int64(rep.bytes)), "lastSeq": .int(rep.lastSeq)])
            } else {
                print("已导出 exported \(rep.changes) 条变更 to \(rep.path) (\(rep.bytes) bytes); next time: --since \(rep.lastSeq)")
            }
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
                                   "clockAhead": .int(Int64(a.clockAhead.count))])
                return
            }
            print("已导入 imported \(rep.path) from \(rep.header.siteName): 新变更 \(a.applied) · 已有 \(a.duplicates) · 已被覆盖 \(a.obsolete) · 新冲突 \(a.conflictsOpened) · 已解决冲突 \(a.conflictsClosed)")
            if !a.clockAhead.isEmpty {
                let worst = a.clockAhead.values.max()! / 86_400_000
                print("⚠ \(a.clockAhead.count) 条变更的时间超前本机时钟（最多约 \(worst) 天）：发送方设备时钟不准。变更已保留，但不会把本机时钟拨快。")
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
                    throw ReplicaError.invalidInput(InputError("--output", "cannot write \(output)"))
                }
                print("已写入 wrote \(output)")
            } else {
                Display.printJSON(v)
            }
        }
    }
}

import ArgumentParser
import FieldSyncReplica
import Foundation

// MARK: - fieldsync

struct FieldSync: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fieldsync",
        abstract: "Offline-first field records for village-resident cadres (驻村干部): visit logs, disputes, projects.",
        discussion: """
            Every laptop keeps its records in one SQLite file (the replica) and merges with others \
            field by field; concurrent edits to one field are kept as conflicts, never dropped.
            Exit codes: 0 ok · 1 not found or not possible · 3 sync incomplete · 64 usage · 65 bad input data · \
            73 file exists · 74 storage error · 75 hub unreachable · 77 token refused · 78 not a replica or not enrolled.
            """,
        subcommands: [AppCommand.self, Init.self, SchemaCommand.self, RecordCommand.self, ConflictsCommand.self, StatusCommand.self, BundleCommand.self, BackupCommand.self, PruneCommand.self,
                      Enroll.self, SyncCommand.self, Daemon.self])
}

@main
enum Main {
    static func main() {
        let args = hoistGlobalOptions(Array(CommandLine.arguments.dropFirst()))
        // Kinds and fields in the arguments are read with the schema the replica holds.
        Replica.adoptStoredSchema(path: replicaPath(args))
        do {
            var command = try FieldSync.parseAsRoot(args)
            try command.run()
        } catch let e as ReplicaError {
            FileHandle.standardError.write(Data("fieldsync: error: \(e)\n".utf8))
            Foundation.exit(exitCode(e))
        } catch {
            FieldSync.exit(withError: error)
        }
    }

    static func exitCode(_ e: ReplicaError) -> Int32 {
        switch e {
        case .invalidInput, .badBundle: return 65
        case .notFound, .ambiguous, .wrongState: return 1
        case .notAReplica: return 78
        case .alreadyExists: return 73
        case .storage: return 74
        }
    }

    /// Lets `--db PATH` stand before the subcommand (`fieldsync --db x.sqlite status`) by
    /// moving it to the end, where the subcommand's own option reads it.
    /// The replica the arguments name (`--db`), as GlobalOptions resolves it.
    static func replicaPath(_ args: [String]) -> String {
        var db: String?
        for (i, a) in args.enumerated() {
            if a == "--db", i + 1 < args.count { db = args[i + 1] } else if a.hasPrefix("--db=") { db = String(a.dropFirst(5)) }
        }
        var g = GlobalOptions()
        g.db = db
        return g.path
    }

    static func hoistGlobalOptions(_ args: [String]) -> [String] {
        var rest: [String] = []
        var hoisted: [String] = []
        var i = 0
        var sawSubcommand = false
        while i < args.count {
            let a = args[i]
            if !sawSubcommand, a == "--db", i + 1 < args.count {
                hoisted += [a, args[i + 1]]
                i += 2
                continue
            }
            if !sawSubcommand, a.hasPrefix("--db=") {
                hoisted.append(a)
                i += 1
                continue
            }
            if !a.hasPrefix("-") { sawSubcommand = true }
            rest.append(a)
            i += 1
        }
        if hoisted.isEmpty { return rest }
        if let dd = rest.firstIndex(of: "--") { rest.insert(contentsOf: hoisted, at: dd); return rest }
        return rest + hoisted
    }
}

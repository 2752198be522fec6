// The fuzzer of the change-set and bundle decoders, and its regression runner.
//
// Fuzzing (scripts/fuzz): built with `-sanitize=fuzzer -DFIELDSYNC_FUZZ`. `main` hands over to
// libFuzzer's driver (LLVMFuzzerRunDriver: SwiftPM renames an executable's main, so libFuzzer's
// own main() cannot be used), which calls fuzzOneInput with each input. A broken property traps,
// so libFuzzer saves the input as a crash artifact.
//
// Regression runner (an ordinary `swift build`): `fieldsync-fuzz FILE|DIR …` runs every file
// (every file in each folder) through the same harness, FuzzHarness in FieldSyncFuzzing, and
// exits 0 when none broke a property (a crash ends the process with a signal anyway).
import FieldSyncFuzzing
import FieldSyncReplica
import Foundation

func warn(_ line: String) { FileHandle.standardError.write(Data((line + "\n").utf8)) }

#if FIELDSYNC_FUZZ

nonisolated(unsafe) private var harness: FuzzHarness?

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    if harness == nil {
        do {
            harness = try FuzzHarness.temporary()
        } catch {
            fatalError("fieldsync-fuzz: cannot create the replica: \(error)")
        }
        atexit { harness?.remove() }
    }
    let bytes = size > 0 && data != nil ? Array(UnsafeBufferPointer(start: data, count: size)) : []
    let report = harness!.run(bytes)
    if !report.violations.isEmpty {
        for v in report.violations { warn("fieldsync-fuzz: VIOLATION: \(v)") }
        fatalError("fieldsync-fuzz: \(report.violations.count) property violation(s)")
    }
    return 0
}

/// libFuzzer's entry for programs that have their own main (libclang_rt.fuzzer).
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

@main
struct FuzzMain {
    static func main() {
        var argc = CommandLine.argc
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv, fuzzOneInput))
    }
}

#else

@main
struct FuzzRegressionRunner {
    static func main() {
        let args = Array(CommandLine.arguments.dropFirst())
        if args.isEmpty || args.contains("-h") || args.contains("--help") {
            print("usage: fieldsync-fuzz FILE|DIR …   runs each input through the fuzz harness (regression runner)")
            print("       scripts/fuzz                fuzzes (needs the -sanitize=fuzzer build)")
            exit(args.isEmpty ? 64 : 0)
        }
        var files: [String] = []
        for a in args {
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: a, isDirectory: &isDir) else {
                warn("fieldsync-fuzz: \(a): no such file or folder")
                exit(66)
            }
            if isDir.boolValue {
                let names = (try? FileManager.default.contentsOfDirectory(atPath: a)) ?? []
                files += names.filter { !$0.hasPrefix(".") }.sorted().map { "\(a)/\($0)" }
            } else {
                files.append(a)
            }
        }
        let h: FuzzHarness
        do { h = try FuzzHarness.temporary(integrityEvery: 0) } catch {
            warn("fieldsync-fuzz: cannot create the replica: \(error)")
            exit(70)
        }
        var broken = 0, imported = 0, changes = 0
        for f in files {
            guard let data = FileManager.default.contents(atPath: f) else { continue }
            let r = h.run([UInt8](data))
            if r.imported { imported += 1 }
            changes += r.changes
            if !r.violations.isEmpty {
                broken += 1
                for v in r.violations { print("\(f): VIOLATION: \(v)") }
            }
        }
        let integrity = h.checkIntegrity()
        h.remove()
        for p in integrity { print("replica: \(p)") }
        print("fieldsync-fuzz: \(files.count) inputs, \(imported) imported as bundles, \(changes) changes decoded, \(broken) with violations")
        exit(broken == 0 && integrity.isEmpty ? 0 : 1)
    }
}

#endif

import FieldSyncCore
import FieldSyncFuzzing
import FieldSyncReplica
import Foundation
import Testing

/// Every input kept in Tests/FuzzCorpus (the fuzzer's seeds, and the inputs that once crashed it
/// or broke a property) goes through the fuzz harness in process: nothing may crash, no property
/// may break, and each decoder refuses with its own error type.
@Suite struct FuzzRegressionSpec {
    static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("FuzzCorpus").path

    static func inputs(_ folder: String) -> [String] {
        let dir = "\(corpus)/\(folder)"
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        return names.filter { !$0.hasPrefix(".") }.sorted().map { "\(dir)/\($0)" }
    }

    @Test func theSeedCorpusIsThere() {
        #expect(Self.inputs("seed").count >= 10, "Tests/FuzzCorpus/seed is empty or missing (\(Self.corpus))")
        #expect(FileManager.default.fileExists(atPath: "\(Self.corpus)/regressions"))
    }

    @Test(arguments: ["seed", "regressions"])
    func everyInputIsDecodedOrRefusedCleanly(_ folder: String) throws {
        let files = Self.inputs(folder)
        if folder == "seed" { try #require(!files.isEmpty, "no seed inputs in \(Self.corpus)/seed") }
        let h = try FuzzHarness.temporary(integrityEvery: 0)
        defer { h.remove() }
        var imported = 0
        for f in files {
            let name = (f as NSString).lastPathComponent
            let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: f)))
            let r = h.run(bytes)
            if r.imported { imported += 1 }
            #expect(r.violations.isEmpty, "\(folder)/\(name): \(r.violations.joined(separator: "\n"))")
            for e in r.errors {
                let clean: Bool
                switch e.decoder {
                case "Replica.importBundle": clean = e.error is ReplicaError
                case "Gzip.decompress": clean = e.error is GzipError
                case "JSONValue.parse", "JSONValue.parse(line)": clean = e.error is JSONSyntaxError
                default: clean = e.error is InputError
                }
                #expect(clean, "\(folder)/\(name): \(e.decoder) threw \(type(of: e.error)): \(e.error)")
            }
        }
        #expect(h.checkIntegrity().isEmpty)
        if folder == "seed" {
            #expect(imported >= 2, "the seed bundles (plain and gzip) should import")
        }
    }
}

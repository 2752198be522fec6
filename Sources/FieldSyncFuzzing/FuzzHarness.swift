import FieldSyncCore
import FieldSyncReplica
import Foundation
import GRDB

// MARK: - FuzzHarness

/// Runs one input, as raw bytes, through every decoder of outside data and checks the
/// properties the decoders promise. Shared by the `fieldsync-fuzz` executable (libFuzzer, or a
/// regression runner over files) and `FuzzRegressionSpec`, so both exercise exactly the same code.
///
/// Per input:
/// - `JSONValue.parse(bytes:)` on the whole input and on each of its first lines; for every
///   object: `ChangeCodec.decodeReceived`, `BundleFormat.decodeHeader`/`trailerCount`,
///   `EnrollRequest(json:)`, `PushResponse(json:)`, `ChangePage(json:)`;
/// - `Gzip.decompress(limit:)` on the raw bytes;
/// - the raw bytes written to a file and imported as a bundle into one replica that lives as
///   long as the harness (`Replica.importBundle` must throw a ``ReplicaError``, never crash).
///
/// Errors are expected (most inputs are garbage) and returned in ``Report/errors``. A broken
/// property is returned in ``Report/violations``: the fuzzer traps on it. Properties:
/// - a decoded change's canonical text equals `encode(c).compactText`, decodes to an equal
///   change, and is a fixed point (its own canonical text again);
/// - a decoded header, trailer, enrolment request, push response or change page, written again
///   the way FieldSync writes it, decodes to the same value;
/// - parsed JSON written compactly parses back to the same value (integral doubles may come
///   back as integers);
/// - `importBundle` throws only ``ReplicaError``; a bundle that imported imports again
///   without applying anything (idempotence);
/// - gzip output that decompressed compresses and decompresses back to itself.
public final class FuzzHarness {
    /// One decoder's refusal of the input.
    public struct Failure {
        public var decoder: String
        public var error: any Error
    }

    /// What happened to one input.
    public struct Report {
        public var errors: [Failure] = []
        public var violations: [String] = []
        /// Changes that decoded (whole input, lines, pages).
        public var changes = 0
        /// True when the input imported as a bundle.
        public var imported = false
    }

    public let directory: String
    let replica: Replica
    let bundlePath: String
    /// The decompressed-size cap for `Gzip.decompress` and bundle imports: small, to keep the
    /// fuzzer fast and exercise the limit.
    public let maxBytes: Int
    /// `PRAGMA integrity_check` runs every this many inputs (0: never; call ``checkIntegrity()``).
    public var integrityEvery: Int
    public private(set) var runs = 0
    /// Lines of a multi-line input decoded one by one (bundles in plain text).
    static let maxLines = 64

    /// A harness whose replica lives in `directory` (created; must not hold a replica yet).
    public init(directory: String, maxBytes: Int = 1 << 20, integrityEvery: Int = 2000) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        self.directory = directory
        self.maxBytes = maxBytes
        self.integrityEvery = integrityEvery
        bundlePath = directory + "/input.bundle"
        replica = try Replica.create(path: directory + "/replica.sqlite", siteName: "fuzz", author: "fuzz")
        // Fixed and plausible, so clock handling does not depend on when the fuzzer runs.
        replica.wallClock = { 1_763_784_245_123 }
    }

    /// A harness in a new folder under `$FIELDSYNC_FUZZ_DIR`, else /dev/shm (memory) when it
    /// exists, else the temporary folder. ``remove()`` deletes it.
    public static func temporary(maxBytes: Int = 1 << 20, integrityEvery: Int = 2000) throws -> FuzzHarness {
        let env = ProcessInfo.processInfo.environment["FIELDSYNC_FUZZ_DIR"]
        var isDir: ObjCBool = false
        let base = env ?? (FileManager.default.fileExists(atPath: "/dev/shm", isDirectory: &isDir) && isDir.boolValue
            && FileManager.default.isWritableFile(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory())
        let dir = "\(base)/fieldsync-fuzz-\(getpid())-\(UUID().uuidString.prefix(8))"
        return try FuzzHarness(directory: dir, maxBytes: maxBytes, integrityEvery: integrityEvery)
    }

    /// Deletes the harness's folder (the replica with it).
    public func remove() {
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// `PRAGMA integrity_check` and `foreign_key_check` of the replica: empty when sound.
    public func checkIntegrity() -> [String] {
        do {
            // A connection of its own: the harness sees the file as any reader would.
            var c = Configuration()
            c.readonly = true
            return try DatabaseQueue(path: replica.path, configuration: c).read { db in
                let rows = try String.fetchAll(db, sql: "PRAGMA integrity_check")
                var out = rows == ["ok"] ? [] : rows.map { "integrity_check: \($0)" }
                let fk = try Row.fetchAll(db, sql: "PRAGMA foreign_key_check")
                if !fk.isEmpty { out.append("foreign_key_check: \(fk.count) rows") }
                return out
            }
        } catch {
            return ["integrity check failed: \(error)"]
        }
    }

    // MARK: One input

    public func run(_ bytes: [UInt8]) -> Report {
        var r = Report()
        runs += 1

        // 1. The whole input as one JSON document, then line by line (a plain bundle).
        decodeJSON(bytes, as: "JSONValue.parse", &r)
        if bytes.contains(0x0A) {
            for line in bytes.split(separator: 0x0A, maxSplits: Self.maxLines, omittingEmptySubsequences: true).prefix(Self.maxLines) {
                decodeJSON(Array(line), as: "JSONValue.parse(line)", &r)
            }
        }

        // 2. gzip.
        do {
            let out = try Gzip.decompress(bytes, limit: maxBytes)
            if let back = try? Gzip.decompress(Gzip.compress(out), limit: max(maxBytes, out.count)), back != out {
                r.violations.append("Gzip: compress then decompress of \(out.count) bytes does not give them back")
            }
        } catch {
            r.errors.append(Failure(decoder: "Gzip.decompress", error: error))
            if !(error is GzipError) { r.violations.append("Gzip.decompress threw \(type(of: error)), not GzipError: \(error)") }
        }

        // 3. A bundle import into the long-lived replica.
        importBundle(bytes, &r)

        if integrityEvery > 0, runs % integrityEvery == 0 {
            r.violations += checkIntegrity()
        }
        return r
    }

    // MARK: JSON and the message decoders

    private func decodeJSON(_ bytes: [UInt8], as name: String, _ r: inout Report) {
        let json: JSONValue
        do { json = try JSONValue.parse(bytes: bytes) } catch {
            r.errors.append(Failure(decoder: name, error: error))
            return
        }
        checkJSONRoundTrip(json, &r)
        guard case .object = json else { return }
        decodeObject(json, &r)
    }

    private func checkJSONRoundTrip(_ json: JSONValue, _ r: inout Report) {
        for (form, text) in [("compact", json.compactText), ("pretty", json.prettyText)] {
            do {
                let back = try JSONValue.parse(text)
                if !Self.sameJSON(json, back) {
                    r.violations.append("JSON: the \(form) text \(text.prefix(200)) parses to a different value")
                }
            } catch {
                r.violations.append("JSON: the \(form) text of a parsed value does not parse (\(error)): \(text.prefix(200))")
            }
        }
    }

    /// Equality up to the writer's one normalisation: integral doubles are written as integers.
    static func sameJSON(_ a: JSONValue, _ b: JSONValue) -> Bool {
        switch (a, b) {
        case (.double(let x), .int(let y)): return x == x.rounded() && abs(x) < 1e15 && Int64(x) == y
        case (.array(let x), .array(let y)): return x.count == y.count && zip(x, y).allSatisfy { sameJSON($0, $1) }
        case (.object(let x), .object(let y)):
            return x.count == y.count && zip(x.pairs, y.pairs).allSatisfy { $0.key.utf8.elementsEqual($1.key.utf8) && sameJSON($0.value, $1.value) }
        default: return a == b
        }
    }

    private func decodeObject(_ json: JSONValue, _ r: inout Report) {
        // A change.
        do {
            let c = try ChangeCodec.decodeReceived(json)
            r.changes += 1
            checkReceived(c, &r)
        } catch {
            r.errors.append(Failure(decoder: "ChangeCodec.decodeReceived", error: error))
        }

        // A bundle header.
        do {
            let h = try BundleFormat.decodeHeader(json)
            let line = BundleFormat.headerLine(h)
            do {
                let back = try BundleFormat.decodeHeader(JSONValue.parse(line))
                if back != h { r.violations.append("BundleFormat: header \(line.prefix(300)) decodes to a different header") }
            } catch {
                r.violations.append("BundleFormat: the header line written for a decoded header is refused (\(error)): \(line.prefix(300))")
            }
        } catch {
            r.errors.append(Failure(decoder: "BundleFormat.decodeHeader", error: error))
        }

        // A bundle trailer.
        if let n = BundleFormat.trailerCount(json) {
            let line = BundleFormat.trailerLine(count: n)
            let back = (try? JSONValue.parse(line)).flatMap(BundleFormat.trailerCount)
            if back != n { r.violations.append("BundleFormat: trailer \(line) gives count \(String(describing: back)), not \(n)") }
        }

        // Hub messages.
        do {
            let e = try EnrollRequest(json: json)
            let back = try? EnrollRequest(json: JSONValue.parse(e.json.compactText))
            if back != e { r.violations.append("EnrollRequest: \(e.json.compactText.prefix(300)) does not decode to itself") }
        } catch {
            r.errors.append(Failure(decoder: "EnrollRequest", error: error))
        }
        do {
            let p = try PushResponse(json: json)
            let text = p.json(hubTime: 0).compactText
            let back = try? PushResponse(json: JSONValue.parse(text))
            if back != p { r.violations.append("PushResponse: \(text.prefix(300)) does not decode to itself") }
        } catch {
            r.errors.append(Failure(decoder: "PushResponse", error: error))
        }
        do {
            let page = try ChangePage(json: json)
            r.changes += page.items.count
            for c in page.items { checkReceived(c, &r) }
            let text = ChangePage.text(changeTexts: page.items.map(\.canonicalText), cursor: page.cursor, more: page.more,
                                       next: page.next, sites: page.sites, hubTime: page.hubTime)
            do {
                let back = try ChangePage(json: JSONValue.parse(text))
                if back.items != page.items || back.cursor != page.cursor || back.more != page.more || back.next != page.next
                    || back.sites != page.sites || back.hubTime != page.hubTime {
                    r.violations.append("ChangePage: \(text.prefix(300)) decodes to a different page")
                }
            } catch {
                r.violations.append("ChangePage: the text written for a decoded page is refused (\(error)): \(text.prefix(300))")
            }
        } catch {
            r.errors.append(Failure(decoder: "ChangePage", error: error))
        }
    }

    /// A received change: a known one as ``checkChange(_:_:)``; one of a kind this schema does
    /// not hold must read back from its canonical text as the same change (its text a fixed point).
    private func checkReceived(_ c: ReceivedChange, _ r: inout Report) {
        guard case .foreign(let f) = c else { return checkChange(c.known!, &r) }
        do {
            let back = try ChangeCodec.decodeReceived(JSONValue.parse(f.text))
            if back != c { r.violations.append("ChangeCodec: the text kept for a change of an unknown kind \(f.text.prefix(300)) reads back differently") }
        } catch {
            r.violations.append("ChangeCodec: the text kept for a change of an unknown kind is refused (\(error)): \(f.text.prefix(300))")
        }
    }

    /// The canonical text of a decoded change: what `encode` writes, decodes to the same change,
    /// and is its own canonical text.
    private func checkChange(_ c: Change, _ r: inout Report) {
        let text = ChangeCodec.canonicalText(c)
        let encoded = ChangeCodec.encode(c).compactText
        if !text.utf8.elementsEqual(encoded.utf8) {
            r.violations.append("ChangeCodec: canonicalText \(text.prefix(300)) differs from encode(c).compactText \(encoded.prefix(300))")
        }
        do {
            let back = try ChangeCodec.decode(JSONValue.parse(text))
            if back != c {
                r.violations.append("ChangeCodec: the canonical text \(text.prefix(300)) decodes to a different change: \(c) vs \(back)")
            } else if !ChangeCodec.canonicalText(back).utf8.elementsEqual(text.utf8) {
                r.violations.append("ChangeCodec: the canonical text \(text.prefix(300)) is not a fixed point")
            }
        } catch {
            r.violations.append("ChangeCodec: the canonical text of a decoded change is refused (\(error)): \(text.prefix(300))")
        }
    }

    // MARK: Bundles

    private func importBundle(_ bytes: [UInt8], _ r: inout Report) {
        guard FileManager.default.createFile(atPath: bundlePath, contents: Data(bytes)) else {
            r.violations.append("harness: cannot write \(bundlePath)")
            return
        }
        do {
            let first = try replica.importBundle(from: bundlePath, maxBytes: maxBytes)
            r.imported = true
            r.changes += first.apply.received
            // Idempotence: the same bundle again applies nothing and touches no conflict.
            do {
                let again = try replica.importBundle(from: bundlePath, maxBytes: maxBytes)
                if again.apply.applied != 0 || again.apply.obsolete != 0 || again.apply.conflictsOpened != 0 || again.apply.conflictsClosed != 0 {
                    r.violations.append("importBundle: importing the same bundle again changed something: \(again.apply) (first: \(first.apply))")
                }
            } catch {
                r.violations.append("importBundle: a bundle that imported is refused the second time: \(error)")
            }
        } catch {
            r.errors.append(Failure(decoder: "Replica.importBundle", error: error))
            if case ReplicaError.storage = error {
                // SQLite refused something the decoders let through: input must never get that far.
                r.violations.append("importBundle: a storage error on input that decoded: \(error)")
            } else if !(error is ReplicaError) {
                r.violations.append("importBundle threw \(type(of: error)), not ReplicaError: \(error)")
            }
        }
    }
}

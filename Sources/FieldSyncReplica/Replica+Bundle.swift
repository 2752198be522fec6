import FieldSyncCore
import Foundation
import GRDB

// MARK: - Reports

public struct ExportReport: Sendable {
    public var path: String
    public var changes: Int
    public var bytes: Int
    /// The highest local sequence number exported: pass it as `--since` next time.
    public var lastSeq: Int64
}

public struct ImportReport: Sendable {
    public var path: String
    public var header: BundleHeader
    public var apply: ApplyReport
    public var lines: Int
}

/// What to leave out of an export.
public enum ExportFilter: Sendable {
    /// Everything.
    case all
    /// Changes this replica received after its local sequence number N.
    case sinceSeq(Int64)
    /// Changes this replica received after a time (Unix ms).
    case sinceTime(Int64)
    /// Changes the other replica, whose knowledge this is, does not hold.
    case missingFrom(Knowledge)
}

// MARK: - Bundles

extension Replica {
    /// The default cap on a bundle's decompressed size.
    public static let defaultMaxBundleBytes = 2 << 30

    /// Writes changes to a bundle file (gzip JSON Lines, Protocol/changeset.md).
    ///
    /// The file appears complete or not at all: it is written beside the target, flushed to
    /// disk, then renamed.
    @discardableResult
    public func exportBundle(to path: String, filter: ExportFilter = .all) throws -> ExportReport {
        let partial = path + ".partial"
        guard FileManager.default.createFile(atPath: partial, contents: nil), let out = FileHandle(forWritingAtPath: partial) else {
            throw ReplicaError.badBundle(path: path, reason: "cannot create the file (is the folder there and writable?)")
        }
        var ok = false
        defer {
            try? out.close()
            if !ok { try? FileManager.default.removeItem(atPath: partial) }
        }
        let gz = GzipDeflater()
        var bytes = 0
        func emit(_ line: String) throws {
            var b = Array(line.utf8)
            b.append(0x0A)
            let z = gz.push(b)
            if !z.isEmpty { try out.write(contentsOf: z); bytes += z.count }
        }
        var count = 0
        var lastSeq: Int64 = 0
        do {
            try read { db in
                let names = try siteNames(db)
                try emit(BundleFormat.headerLine(BundleHeader(site: site, siteName: siteName, created: wallClock(), sites: names)))
                var sql = "SELECT seq, site, counter, body FROM fs_change"
                var args: [DatabaseValueConvertible] = []
                switch filter {
                case .sinceSeq(let s): sql += " WHERE seq > ?"; args = [s]
                case .sinceTime(let t): sql += " WHERE received > ?"; args = [t]
                default: break
                }
                let st = try db.makeStatement(sql: sql + " ORDER BY seq")
                try st.setArguments(StatementArguments(args))
                while try st.step(db) {
                    lastSeq = max(lastSeq, st.int64(0))
                    if case .missingFrom(let k) = filter,
                       k.contains(ChangeID(site: SiteID(raw: UInt64(bitPattern: st.int64(1))), counter: st.int64(2))) {
                        continue
                    }
                    try emit(st.text(3))
                    count += 1
                }
                if lastSeq == 0 { lastSeq = try Int64.fetchOne(db, sql: "SELECT COALESCE(max(seq), 0) FROM fs_change") ?? 0 }
            }
            try emit(BundleFormat.trailerLine(count: count))
            let tail = gz.finish()
            try out.write(contentsOf: tail)
            bytes += tail.count
            try out.synchronize()
            try out.close()
            if FileManager.default.fileExists(atPath: path) { try FileManager.default.removeItem(atPath: path) }
            try FileManager.default.moveItem(atPath: partial, toPath: path)
            ok = true
        } catch let e as ReplicaError {
            throw e
        } catch {
            throw ReplicaError.badBundle(path: path, reason: "could not write: \(error.localizedDescription)")
        }
        return ExportReport(path: path, changes: count, bytes: bytes, lastSeq: lastSeq)
    }

    /// Applies a bundle in one transaction: all of it or, on any error, none of it.
    /// Importing the same bundle again, or bundles in any order, changes nothing more.
    @discardableResult
    public func importBundle(from path: String, maxBytes: Int = defaultMaxBundleBytes) throws -> ImportReport {
        var reader = try LineReader(path: path, maxBytes: maxBytes, maxLine: BundleFormat.maxLineBytes)
        defer { reader.close() }
        func parse(_ bytes: [UInt8], _ n: Int) throws -> JSONValue {
            do { return try JSONValue.parse(bytes: bytes) } catch {
                throw ReplicaError.badBundle(path: path, reason: "line \(n): not valid JSON (\(error))")
            }
        }
        guard let first = try reader.next() else { throw ReplicaError.badBundle(path: path, reason: "the file is empty") }
        let header: BundleHeader
        do {
            header = try BundleFormat.decodeHeader(JSONValue.parse(bytes: first))
        } catch let e as InputError {
            throw ReplicaError.badBundle(path: path, reason: e.description)
        } catch {
            throw ReplicaError.badBundle(path: path, reason: "not a FieldSync bundle: line 1 is not a JSON header (\(error))")
        }
        var lines = 1
        let report: ApplyReport = try write { db in
            for (id, name) in header.sites { try noteSite(db, id, name: name) }
            var report = ApplyReport()
            var changes = 0
            var trailer: Int?
            while let bytes = try reader.next() {
                lines = reader.line
                if trailer != nil {
                    if bytes.isEmpty { continue }
                    throw ReplicaError.badBundle(path: path, reason: "line \(lines): data after the end line")
                }
                let json = try parse(bytes, lines)
                if let n = BundleFormat.trailerCount(json) {
                    trailer = n
                    continue
                }
                let c: Change
                do throws(InputError) { c = try ChangeCodec.decode(json) } catch { throw ReplicaError.invalidInput(error.within("\(path): line \(lines)")) }
                do { try applyOne(db, c, local: false, source: .peer, report: &report) } catch let e as InputError {
                    throw ReplicaError.invalidInput(e.within("\(path): line \(lines)"))
                }
                changes += 1
            }
            guard let n = trailer else {
                throw ReplicaError.badBundle(path: path, reason: "the file is truncated: no end line after \(lines) lines")
            }
            guard n == changes else {
                throw ReplicaError.badBundle(path: path, reason: "the end line says \(n) changes but the file holds \(changes)")
            }
            return report
        }
        return ImportReport(path: path, header: header, apply: report, lines: lines)
    }
}

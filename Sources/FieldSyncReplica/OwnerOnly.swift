import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// MARK: - OwnerOnly

/// Files and folders only their owner may read: replicas, hub files, their WAL and SHM, secret
/// files and bundle inboxes, whatever the process's umask (docs/security.md).
///
/// SQLite creates `-wal` and `-shm` with the permissions of the database file, so creating the
/// database file 0600 before SQLite opens it is enough for all three.
public enum OwnerOnly {
    public static let fileMode: mode_t = 0o600
    public static let folderMode: mode_t = 0o700

    /// Creates `path`'s folder (0700, with any missing parents) when it is missing. An existing
    /// folder keeps its mode: it may be someone's home or /tmp.
    public static func makeFolder(for path: String) throws {
        let dir = (path as NSString).deletingLastPathComponent
        guard !dir.isEmpty else { return }
        try makeFolder(dir)
    }

    public static func makeFolder(_ dir: String) throws {
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: dir, isDirectory: &isDir) { return }
        try makeFolder(for: dir)
        if mkdir(dir, folderMode) != 0 && errno != EEXIST {
            throw CocoaError(.fileWriteNoPermission, userInfo: [NSFilePathErrorKey: dir, NSLocalizedDescriptionKey: "cannot create folder \(dir): \(String(cString: strerror(errno)))"])
        }
        chmod(dir, folderMode)
    }

    /// Creates an empty file with mode 0600 (fails if it exists).
    public static func createFile(_ path: String) throws {
        let fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, fileMode)
        guard fd >= 0 else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path, NSLocalizedDescriptionKey: "cannot create \(path): \(String(cString: strerror(errno)))"])
        }
        fchmod(fd, fileMode)  // the umask may have narrowed the mode; never widened it
        close(fd)
    }

    /// Narrows an existing file to 0600 (a file from an earlier release was 0644), with its WAL and SHM.
    public static func tighten(database path: String) {
        for p in [path, path + "-wal", path + "-shm"] where FileManager.default.fileExists(atPath: p) {
            chmod(p, fileMode)
        }
    }

    /// Writes `bytes` to `path` as a 0600 file, whole or not at all (a temporary file, flushed, renamed).
    public static func writeAtomically(_ bytes: [UInt8], to path: String) throws {
        let tmp = path + ".tmp-\(getpid())"
        unlink(tmp)
        let fd = open(tmp, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, fileMode)
        guard fd >= 0 else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path, NSLocalizedDescriptionKey: "cannot write \(path): \(String(cString: strerror(errno)))"])
        }
        fchmod(fd, fileMode)
        var ok = bytes.withUnsafeBytes { b -> Bool in
            var off = 0
            while off < b.count {
                let n = write(fd, b.baseAddress! + off, b.count - off)
                if n <= 0 { return false }
                off += n
            }
            return true
        }
        ok = ok && fsync(fd) == 0
        close(fd)
        guard ok, rename(tmp, path) == 0 else {
            unlink(tmp)
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path, NSLocalizedDescriptionKey: "cannot write \(path): \(String(cString: strerror(errno)))"])
        }
    }
}

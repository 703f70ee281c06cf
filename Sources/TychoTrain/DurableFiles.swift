// DurableFiles.swift: the few file-system steps that checkpoints and run records need to survive a kill -9 or a
// power cut: folders made and synced, renames made durable, trees removed, and append-only lines that are on
// disk before the call returns.
//
// Whole files are replaced with TychoNN's AtomicFile (temporary file, fsync, rename, directory sync). What this
// file adds is the same discipline for folders (a checkpoint is a folder renamed into place) and for logs
// (metrics.jsonl, events.jsonl: one write per line, then fsync). It refuses nothing but reports every failure
// as a `RecordError` naming the path.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import TychoNN

/// A failure of a checkpoint or run-record call, with a message meant for the user.
public struct RecordError: Error, CustomStringConvertible, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

private func posixWrite(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int) -> Int { write(fd, p, n) }
private func posixClose(_ fd: Int32) { _ = close(fd) }
private func posixRename(_ from: String, _ to: String) -> Int32 { rename(from, to) }

enum DurableFiles {
    static func errnoText() -> String { String(cString: strerror(errno)) }

    /// The folder part of a path (`a/b` -> `a`, `b` -> `.`).
    static func parent(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    /// Syncs a folder so that the entries made or renamed in it survive a crash (EINVAL: cannot be synced, fine).
    static func syncDirectory(_ dir: String) throws {
        let fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw RecordError("\(dir): cannot open to sync it: \(errnoText())") }
        defer { posixClose(fd) }
        if fsync(fd) != 0 && errno != EINVAL { throw RecordError("\(dir): cannot sync: \(errnoText())") }
    }

    /// Makes `dir` and any missing parents; a new folder's entry is synced in its parent.
    static func makeDirectory(_ dir: String) throws {
        if isDirectory(dir) { return }
        if exists(dir) { throw RecordError("\(dir) exists and is not a folder") }
        let up = parent(dir)
        if up != dir, !isDirectory(up) { try makeDirectory(up) }
        if mkdir(dir, 0o777) != 0 && errno != EEXIST { throw RecordError("cannot create \(dir): \(errnoText())") }
        try syncDirectory(up)
    }

    /// Renames `from` to `to` (same folder or file system); `to` must not be a non-empty folder.
    static func rename(_ from: String, _ to: String) throws {
        guard posixRename(from, to) == 0 else { throw RecordError("cannot rename \(from) to \(to): \(errnoText())") }
    }

    /// Removes a file or a folder tree; a missing path is fine.
    static func removeTree(_ path: String) {
        guard exists(path) || (try? FileManager.default.destinationOfSymbolicLink(atPath: path)) != nil else { return }
        try? FileManager.default.removeItem(atPath: path)
    }

    /// Names in `dir` (no `.` and `..`), sorted; empty when it cannot be read.
    static func list(_ dir: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted()
    }

    /// Replaces `path` with `text` atomically and durably.
    static func writeText(_ text: String, to path: String) throws {
        do {
            try AtomicFile.write(to: path) { sink in try sink.write(Array(text.utf8)) }
        } catch let e as RecordError { throw e } catch {
            throw RecordError("\(error)")
        }
    }

    static func readText(_ path: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path) else { throw RecordError("cannot read \(path)") }
        return String(decoding: data, as: UTF8.self)
    }

    /// Syncs a file's contents (used after writing several files into a folder that is then renamed).
    static func syncFile(_ path: String) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw RecordError("\(path): cannot open to sync it: \(errnoText())") }
        defer { posixClose(fd) }
        guard fsync(fd) == 0 else { throw RecordError("\(path): cannot sync: \(errnoText())") }
    }

    /// A random tag for temporary names.
    static func tag() -> String { String(UInt64.random(in: 0...UInt64.max), radix: 36) }
}

/// A file that only grows by whole lines, each written in one call and synced before `append` returns, so a
/// kill -9 leaves every appended line complete. Opening cuts off an incomplete last line that a crash in the
/// middle of a write (a power cut) may have left.
final class AppendOnlyLines {
    let path: String
    private var fd: Int32

    init(_ path: String) throws {
        self.path = path
        let existed = DurableFiles.exists(path)
        fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0o666)
        guard fd >= 0 else { throw RecordError("\(path): cannot open for appending: \(DurableFiles.errnoText())") }
        if !existed { try DurableFiles.syncDirectory(DurableFiles.parent(path)) }
        try cutIncompleteLine()
    }

    deinit { if fd >= 0 { posixClose(fd) } }

    private func cutIncompleteLine() throws {
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw RecordError("\(path): cannot read: \(DurableFiles.errnoText())") }
        var size = Int(st.st_size)
        guard size > 0 else { return }
        var byte: UInt8 = 0
        guard pread(fd, &byte, 1, off_t(size - 1)) == 1 else { throw RecordError("\(path): cannot read: \(DurableFiles.errnoText())") }
        if byte == 0x0A { return }
        // Walk back to the last newline.
        let chunk = 4096
        var buf = [UInt8](repeating: 0, count: chunk)
        var keep = 0
        search: while size > 0 {
            let from = Swift.max(0, size - chunk)
            let n = buf.withUnsafeMutableBytes { pread(fd, $0.baseAddress!, size - from, off_t(from)) }
            guard n == size - from else { throw RecordError("\(path): cannot read: \(DurableFiles.errnoText())") }
            for i in stride(from: n - 1, through: 0, by: -1) where buf[i] == 0x0A {
                keep = from + i + 1
                break search
            }
            size = from
        }
        guard ftruncate(fd, off_t(keep)) == 0, fsync(fd) == 0 else {
            throw RecordError("\(path): cannot cut off an incomplete last line: \(DurableFiles.errnoText())")
        }
    }

    /// Appends `line` (which must not contain a newline) and a newline in one write, then syncs.
    func append(_ line: String) throws {
        var bytes = Array(line.utf8)
        bytes.append(0x0A)
        var st = stat()
        let start = fstat(fd, &st) == 0 ? off_t(st.st_size) : -1
        let ok = bytes.withUnsafeBytes { buf -> Bool in
            var p = buf.baseAddress!
            var left = buf.count
            while left > 0 {
                let n = posixWrite(fd, p, left)
                if n < 0 { if errno == EINTR { continue }; return false }
                p += n
                left -= n
            }
            return true
        }
        guard ok else {
            let reason = DurableFiles.errnoText()
            if start >= 0 { _ = ftruncate(fd, start) }
            throw RecordError("\(path): cannot write: \(reason)")
        }
        guard fsync(fd) == 0 else { throw RecordError("\(path): cannot flush to disk: \(DurableFiles.errnoText())") }
    }
}

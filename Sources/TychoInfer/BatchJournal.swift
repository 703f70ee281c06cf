// BatchJournal.swift: the append-only JSONL files of a batch job (output and errors), made so that a kill -9
// at any moment loses no finished result and duplicates none.
//
// The rules, and the crash window each one closes:
// - A record is one `write` of the whole line and its newline, followed by `fsync`, before the job goes on. A
//   short write is continued; a failed one is cut back (`ftruncate`) so no partial line stays behind.
// - On open, the scan keeps complete lines only: a last line without its newline (a kill or power cut in the
//   middle of a write) is truncated away, then the truncation is synced. Such a line was never counted as
//   finished, so the request simply runs again.
// - A line written but not yet synced when the process is killed is in the page cache and survives (only a
//   power cut can lose it, and then it is not in the file and runs again): either way it is in the file once.
// - Lines that are not records (damaged by hand) are skipped and dropped at the next compaction.
// - The output file is locked (`flock`) while a job writes it, so two jobs cannot append to one file.
// - Compaction (`rewrite`) replaces a file atomically (TychoNN's AtomicFile: temp file, fsync, rename, directory
//   sync): a kill during it leaves the old complete file.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import TychoNN

/// A batch job's fatal problem (unreadable input, unwritable output, bad options).
public struct BatchJobError: Error, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

private func posixWrite(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int) -> Int { write(fd, p, n) }
private func posixClose(_ fd: Int32) -> Int32 { close(fd) }

func errnoText() -> String { String(cString: strerror(errno)) }

/// One open file descriptor with the few operations a job needs.
final class BatchFile {
    let path: String
    private(set) var fd: Int32
    /// Bytes in the file (the job is its only writer).
    private(set) var size = 0

    /// Opens `path` to read, or nil.
    init?(readOnly path: String) {
        self.path = path
        fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { return nil }
    }

    /// Opens (creating) `path` to append, optionally taking an exclusive lock.
    init(appending path: String, lock: Bool) throws {
        self.path = path
        let existed = access(path, F_OK) == 0
        fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0o666)
        guard fd >= 0 else { throw BatchJobError("\(path): cannot open for writing: \(errnoText())") }
        var st = stat()
        if fstat(fd, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR {
            _ = posixClose(fd); fd = -1
            throw BatchJobError("\(path): is a directory")
        }
        if lock && flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let busy = errno == EWOULDBLOCK
            _ = posixClose(fd); fd = -1
            throw BatchJobError(busy ? "\(path): another batch job is writing this file" : "\(path): cannot lock: \(errnoText())")
        }
        size = Int(st.st_size)
        if !existed { BatchFile.syncDirectory(of: path) }
    }

    deinit { close() }

    func close() {
        if fd >= 0 { _ = posixClose(fd); fd = -1 }
    }

    /// Reads the file in chunks from the start.
    func chunks(_ body: (UnsafeRawBufferPointer) -> Void, onError: () -> Void) {
        let cap = 1 << 16
        let buf = UnsafeMutableRawPointer.allocate(byteCount: cap, alignment: 16)
        defer { buf.deallocate() }
        var offset: off_t = 0
        while true {
            let n = pread(fd, buf, cap, offset)
            if n < 0 { if errno == EINTR { continue }; onError(); return }
            if n == 0 { return }
            body(UnsafeRawBufferPointer(start: buf, count: n))
            offset += off_t(n)
        }
    }

    /// Calls `body(offset, line)` for each complete line (without its newline), then cuts an incomplete last
    /// line off the file. Returns the number of bytes cut.
    func scanLines(_ body: (Int, UnsafeRawBufferPointer) -> Void) throws -> Int {
        var pending: [UInt8] = []
        var lineStart = 0
        var position = 0
        var failed = false
        chunks({ chunk in
            var from = 0
            while from < chunk.count {
                guard let nl = chunk[from...].firstIndex(of: 0x0A) else {
                    pending += chunk[from...]
                    break
                }
                if pending.isEmpty {
                    body(lineStart, UnsafeRawBufferPointer(rebasing: chunk[from..<nl]))
                } else {
                    pending += chunk[from..<nl]
                    pending.withUnsafeBytes { body(lineStart, $0) }
                    pending.removeAll(keepingCapacity: true)
                }
                lineStart = position + nl + 1
                from = nl + 1
            }
            position += chunk.count
        }, onError: { failed = true })
        if failed { throw BatchJobError("\(path): cannot read: \(errnoText())") }
        size = position
        let cut = position - lineStart
        if cut > 0 {
            guard ftruncate(fd, off_t(lineStart)) == 0, fsync(fd) == 0 else {
                throw BatchJobError("\(path): cannot cut off an incomplete last line: \(errnoText())")
            }
            size = lineStart
        }
        return cut
    }

    /// Appends `line` and a newline in one write, then syncs. Returns the line's offset.
    /// - Throws: `BatchJobError`; the file is then cut back to where it was.
    @discardableResult
    func append(_ line: String) throws -> Int {
        var bytes = Array(line.utf8)
        bytes.append(0x0A)
        let start = size
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
            let reason = errnoText()
            _ = ftruncate(fd, off_t(start))
            throw BatchJobError("\(path): cannot write: \(reason)")
        }
        size += bytes.count
        guard fsync(fd) == 0 else { throw BatchJobError("\(path): cannot flush to disk: \(errnoText())") }
        return start
    }

    /// `length` bytes at `offset`.
    func read(offset: Int, length: Int) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: length)
        var done = 0
        while done < length {
            let n = out.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + done, length - done, off_t(offset + done)) }
            if n < 0 { if errno == EINTR { continue }; throw BatchJobError("\(path): cannot read: \(errnoText())") }
            if n == 0 { throw BatchJobError("\(path): changed while the job ran (a line ends early)") }
            done += n
        }
        return out
    }

    /// Makes a new directory entry durable (best effort: some filesystems cannot sync directories).
    static func syncDirectory(of path: String) {
        let dir: String
        if let slash = path.lastIndex(of: "/") { dir = slash == path.startIndex ? "/" : String(path[..<slash]) } else { dir = "." }
        let dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 { _ = fsync(dfd); _ = posixClose(dfd) }
    }

    /// Replaces `path` atomically with `lines` (each written with a newline).
    static func rewrite(_ path: String, _ body: (AtomicFile.Sink) throws -> Void) throws {
        do { try AtomicFile.write(to: path, body) } catch let e as BatchJobError { throw e } catch {
            throw BatchJobError("\(error)")
        }
    }
}

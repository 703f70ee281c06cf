// AtomicFile.swift: replacing a file so that readers see the old contents or the new, never a part.
//
// The new contents go to a temporary file in the same directory (same filesystem, so `rename` is atomic),
// which is flushed with `fsync` before it is renamed over the target; the directory is then synced so the
// rename itself survives a crash. On any failure the temporary file is removed and the target is untouched.
// It refuses to follow the target if it is a directory.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import TychoTensor

/// `write(2)`, named apart from `Sink.write`.
private func posixWrite(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int) -> Int { write(fd, p, n) }

public enum AtomicFile {
    /// Where `write` sends bytes: an open temporary file.
    public final class Sink {
        let fd: Int32
        let path: String
        public private(set) var bytesWritten = 0

        init(fd: Int32, path: String) {
            self.fd = fd
            self.path = path
        }

        /// Writes all of `buffer`, retrying short writes and interrupted calls.
        public func write(_ buffer: UnsafeRawBufferPointer) throws {
            guard var p = buffer.baseAddress else { return }
            var left = buffer.count
            while left > 0 {
                let n = posixWrite(fd, p, Swift.min(left, 1 << 30))
                if n < 0 {
                    if errno == EINTR { continue }
                    throw TensorError("\(path): cannot write: \(MappedFile.errnoText())")
                }
                p += n
                left -= n
                bytesWritten += n
            }
        }

        public func write(_ bytes: [UInt8]) throws {
            try bytes.withUnsafeBytes { try write($0) }
        }
    }

    /// Replaces (or creates) `path` with what `body` writes.
    /// - Throws: `TensorError` naming `path`, or whatever `body` throws; the target is then unchanged.
    public static func write(to path: String, _ body: (Sink) throws -> Void) throws {
        guard !path.isEmpty else { throw TensorError("cannot write a file with an empty path") }
        let (dir, base) = split(path)
        guard !base.isEmpty else { throw TensorError("\(path): is a directory") }
        var tmp = ""
        var fd: Int32 = -1
        for _ in 0..<8 {
            let tag = String(UInt64.random(in: 0...UInt64.max), radix: 36)
            tmp = "\(dir)/.\(String(decoding: base.utf8.prefix(96), as: UTF8.self)).tmp-\(getpid())-\(tag)"
            fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o666)
            if fd >= 0 || errno != EEXIST { break }
        }
        guard fd >= 0 else {
            throw TensorError("\(path): cannot create a temporary file in \(dir): \(MappedFile.errnoText())")
        }
        var done = false
        defer {
            if fd >= 0 { close(fd) }
            if !done { unlink(tmp) }
        }
        try body(Sink(fd: fd, path: path))
        guard fsync(fd) == 0 else { throw TensorError("\(path): cannot flush to disk: \(MappedFile.errnoText())") }
        let closed = close(fd)
        fd = -1
        guard closed == 0 else { throw TensorError("\(path): cannot write: \(MappedFile.errnoText())") }
        guard rename(tmp, path) == 0 else { throw TensorError("\(path): cannot replace: \(MappedFile.errnoText())") }
        done = true
        try syncDirectory(dir, for: path)
    }

    /// (`dir`, `base`) of a path: `a/b.st` -> (`a`, `b.st`), `b.st` -> (`.`, `b.st`), `/b.st` -> (`/`, `b.st`).
    static func split(_ path: String) -> (String, String) {
        let u = Array(path.utf8)
        guard let slash = u.lastIndex(of: UInt8(ascii: "/")) else { return (".", path) }
        let dir = slash == 0 ? "/" : String(decoding: u[..<slash], as: UTF8.self)
        return (dir, String(decoding: u[(slash + 1)...], as: UTF8.self))
    }

    /// Makes a rename in `dir` durable. Filesystems that cannot sync directories (EINVAL) are accepted.
    static func syncDirectory(_ dir: String, for path: String) throws {
        let dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard dfd >= 0 else {
            throw TensorError("\(path): saved, but cannot open its directory to sync it: \(MappedFile.errnoText())")
        }
        defer { close(dfd) }
        if fsync(dfd) != 0 && errno != EINVAL {
            throw TensorError("\(path): saved, but cannot sync its directory: \(MappedFile.errnoText())")
        }
    }
}

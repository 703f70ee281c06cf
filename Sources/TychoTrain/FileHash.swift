// FileHash.swift: SHA-256 of files (the script and data files a run record names), with swift-crypto, read in
// 1 MiB pieces so that a large data file is never held in memory whole.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Crypto

public enum FileHash {
    /// The lowercase hex SHA-256 of the file at `path` and its size in bytes.
    /// - Throws: `RecordError` when the file cannot be read.
    public static func sha256(path: String) throws -> (hex: String, bytes: Int) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw RecordError("cannot read \(path): \(DurableFiles.errnoText())") }
        defer { _ = close(fd) }
        var st = stat()
        if fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR { throw RecordError("\(path) is a folder, not a file") }
        var hasher = SHA256()
        let cap = 1 << 20
        let buf = UnsafeMutableRawPointer.allocate(byteCount: cap, alignment: 16)
        defer { buf.deallocate() }
        var total = 0
        while true {
            let n = read(fd, buf, cap)
            if n < 0 {
                if errno == EINTR { continue }
                throw RecordError("cannot read \(path): \(DurableFiles.errnoText())")
            }
            if n == 0 { break }
            hasher.update(bufferPointer: UnsafeRawBufferPointer(start: buf, count: n))
            total += n
        }
        return (hex(hasher.finalize()), total)
    }

    /// The lowercase hex SHA-256 of `bytes`.
    public static func sha256<C: Collection>(bytes: C) -> String where C.Element == UInt8 {
        hex(SHA256.hash(data: Array(bytes)))
    }

    static func hex<D: Sequence>(_ digest: D) -> String where D.Element == UInt8 {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for b in digest { out.append(digits[Int(b >> 4)]); out.append(digits[Int(b & 15)]) }
        return String(decoding: out, as: UTF8.self)
    }
}

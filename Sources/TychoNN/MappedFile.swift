// MappedFile.swift: a read-only memory map of one file, unmapped in `deinit`.
//
// Checkpoints are read through the page cache instead of being copied whole into a `Data`: a reader touches
// only the bytes of the tensors it converts. The map is private and read-only. It refuses what cannot be
// mapped as a file of bytes (directories, devices) with an error naming the path.
//
// One hazard no reader can check for: if another process truncates the file while it is mapped, touching the
// lost pages raises SIGBUS. Tycho's own writer replaces files by rename, which leaves a mapped old file intact.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import TychoTensor

/// The bytes of a file, mapped read-only for the lifetime of this object.
public final class MappedFile {
    public let path: String
    /// The whole file. Empty files have an empty buffer (nothing is mapped).
    public let bytes: UnsafeRawBufferPointer

    /// Maps `path`.
    /// - Throws: `TensorError` naming the path when it cannot be opened, is not a regular file, or cannot be
    ///   mapped.
    public init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw TensorError("\(path): cannot open: \(MappedFile.errnoText())") }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw TensorError("\(path): cannot stat: \(MappedFile.errnoText())") }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            let what = (st.st_mode & S_IFMT) == S_IFDIR ? "a directory" : "not a regular file"
            throw TensorError("\(path): is \(what)")
        }
        let size = Int(st.st_size)
        if size == 0 {
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            return
        }
        guard let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), p != MAP_FAILED else {
            throw TensorError("\(path): cannot map \(size) bytes: \(MappedFile.errnoText())")
        }
        bytes = UnsafeRawBufferPointer(start: p, count: size)
    }

    deinit {
        if let base = bytes.baseAddress { munmap(UnsafeMutableRawPointer(mutating: base), bytes.count) }
    }

    /// Advises the kernel that `range` will be read soon and in order (read-ahead for large tensors).
    func willRead(_ range: Range<Int>) {
        guard let base = bytes.baseAddress, range.count >= 1 << 20 else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = range.lowerBound / page * page
        _ = madvise(UnsafeMutableRawPointer(mutating: base + start), range.upperBound - start, MADV_WILLNEED)
    }

    static func errnoText(_ code: Int32 = errno) -> String { String(cString: strerror(code)) }
}

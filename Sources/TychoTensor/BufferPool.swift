// BufferPool.swift: recycling of very large tensor buffers.
//
// glibc's malloc hands blocks above its mmap threshold (which adapts up to 32 MB) straight back to the OS on
// free, so every new tensor of that size is fresh memory whose pages fault on first touch. Measured here
// (a 2-core VM), faulting 4 KB pages costs about 2.4 ns per float: five times the arithmetic of `a + b`, for
// every element-wise result of 32 MB or more. Smaller blocks are recycled by malloc itself.
//
// So buffers of `minimumBytes` and up are kept after their tensors die (up to `capacity` bytes in all) and
// handed to the next allocation of the same size class; new ones are 2 MB aligned and advised as transparent
// huge pages, which fault 512 times less often. An allocation that fails empties the pool and tries again.

import Foundation

enum BufferPool {
    static let minimumBytes = 32 << 20
    /// Sizes are rounded up to this, so that slightly different shapes share buffers.
    static let granule = 2 << 20
    static let capacity = Swift.min(Int(clamping: ProcessInfo.processInfo.physicalMemory) / 8, 2 << 30)

    private static let lock = NSLock()
    nonisolated(unsafe) private static var free: [Int: [UnsafeMutableRawPointer]] = [:]
    nonisolated(unsafe) private static var held = 0

    static func roundedSize(_ bytes: Int) -> Int { (bytes + granule - 1) / granule * granule }

    /// A buffer of at least `bytes` (>= minimumBytes), zero-filled when asked; nil when out of memory.
    static func allocate(bytes: Int, zeroed: Bool) -> UnsafeMutableRawPointer? {
        let size = roundedSize(bytes)
        lock.lock()
        let reused = free[size]?.popLast()
        if reused != nil { held -= size }
        lock.unlock()
        var raw = reused
        if raw == nil {
            if posix_memalign(&raw, granule, size) != 0 {
                drain()
                if posix_memalign(&raw, granule, size) != 0 { return nil }
            }
            #if os(Linux)
            _ = madvise(raw, size, MADV_HUGEPAGE)
            #endif
        }
        if zeroed, let raw { memset(raw, 0, bytes) }
        return raw
    }

    /// Takes back a buffer from `allocate(bytes:zeroed:)`: keeps it if there is room, else frees it.
    static func release(_ p: UnsafeMutableRawPointer, bytes: Int) {
        let size = roundedSize(bytes)
        lock.lock()
        if held + size <= capacity {
            free[size, default: []].append(p)
            held += size
            lock.unlock()
            return
        }
        lock.unlock()
        Foundation.free(p)
    }

    /// Returns every kept buffer to the OS.
    static func drain() {
        lock.lock()
        let all = free.values.flatMap { $0 }
        free = [:]
        held = 0
        lock.unlock()
        for p in all { Foundation.free(p) }
    }
}

// DescriptorCapture.swift: the process's stdout and stderr descriptors as pipes while notebooks run, so output
// that bypasses Lua's io library (a command run by os.execute, a C library's message) still lands in the cell,
// and the trainers see no terminal (plain progress lines, as in the kernel). Lua-level output is exact and
// ordered by the CellExecutor; this catches the rest. A reader thread keeps the pipes drained (a child writing a
// lot never blocks), and `drain()` empties them synchronously before each Lua-level output, so the order holds.
// The original descriptors stay available for the host's own messages (`log`).

import Foundation

final class DescriptorCapture {
    /// Duplicates of the original descriptors.
    let originalOut: Int32
    let originalErr: Int32
    private let pipes: [(fd: Int32, read: Int32)]
    private let lock = NSLock()
    /// Receives captured bytes: (1 stdout | 2 stderr, text). Called with the capture's lock held.
    var sink: ((Int32, String) -> Void)?
    private var pending: [Int32: [UInt8]] = [:]

    init() {
        fflush(stdout)
        fflush(stderr)
        originalOut = dup(STDOUT_FILENO)
        originalErr = dup(STDERR_FILENO)
        var made: [(Int32, Int32)] = []
        for fd in [STDOUT_FILENO, STDERR_FILENO] {
            var p: [Int32] = [0, 0]
            guard pipe(&p) == 0 else { continue }
            _ = fcntl(p[0], F_SETFL, fcntl(p[0], F_GETFL) | O_NONBLOCK)
            _ = fcntl(p[0], F_SETFD, FD_CLOEXEC)
            dup2(p[1], fd)
            close(p[1])
            made.append((fd, p[0]))
        }
        pipes = made
        setvbuf(stdout, nil, _IONBF, 0)
        let t = Thread { [weak self] in self?.readLoop() }
        t.stackSize = 1 << 18
        t.start()
    }

    /// Writes to the original stderr (the host's log), never captured.
    func log(_ message: String) {
        let data = Array((message.hasSuffix("\n") ? message : message + "\n").utf8)
        data.withUnsafeBytes { b in _ = Foundation.write(originalErr, b.baseAddress, b.count) }
    }

    /// Moves whatever the pipes hold to the sink now.
    func drain() {
        lock.lock()
        defer { lock.unlock() }
        readAvailable()
    }

    private func readAvailable() {
        var buf = [UInt8](repeating: 0, count: 65536)
        for (fd, r) in pipes {
            while true {
                let n = buf.withUnsafeMutableBytes { Foundation.read(r, $0.baseAddress, $0.count) }
                if n <= 0 { break }
                deliver(fd, Array(buf[0..<n]))
            }
        }
    }

    private func deliver(_ fd: Int32, _ bytes: [UInt8]) {
        var data = (pending[fd] ?? []) + bytes
        // Keep an incomplete UTF-8 sequence for the next read.
        var cut = data.count
        var i = data.count - 1
        while i >= 0 && i >= data.count - 4 {
            let b = data[i]
            if b & 0xC0 == 0x80 { i -= 1; continue }
            let need = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 1
            if data.count - i < need { cut = i }
            break
        }
        pending[fd] = Array(data[cut...])
        data.removeSubrange(cut...)
        guard !data.isEmpty else { return }
        let text = String(decoding: data, as: UTF8.self)
        if let sink { sink(fd, text) } else {
            data.withUnsafeBytes { b in _ = Foundation.write(fd == STDERR_FILENO ? originalErr : originalOut, b.baseAddress, b.count) }
        }
    }

    private func readLoop() {
        var fds = pipes.map { pollfd(fd: $0.read, events: Int16(POLLIN), revents: 0) }
        while true {
            let r = poll(&fds, nfds_t(fds.count), -1)
            if r < 0 && errno != EINTR { return }
            if r > 0 { drain() }
            if fds.contains(where: { $0.revents & Int16(POLLHUP) != 0 && $0.revents & Int16(POLLIN) == 0 }) { return }
        }
    }
}

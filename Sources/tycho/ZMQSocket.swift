// ZMQSocket.swift: the few libzmq calls the kernel needs (Debian's libzmq 4.3, C API), as handle types that
// own their resource. Multipart messages are lists of frames; a signal interrupting a call (EINTR) is retried;
// a context being shut down (ETERM) ends a receive with nil.

import CZMQ
import Foundation

struct ZMQError: Error, CustomStringConvertible {
    let description: String
    init(_ what: String) { description = "\(what): \(String(cString: zmq_strerror(zmq_errno())))" }
}

final class ZMQContext {
    let handle: UnsafeMutableRawPointer

    init() throws {
        guard let h = zmq_ctx_new() else { throw ZMQError("zmq_ctx_new") }
        handle = h
    }

    /// Makes blocking calls in every thread return (ETERM); sockets must still be closed.
    func shutdown() { _ = zmq_ctx_shutdown(handle) }

    deinit { _ = zmq_ctx_term(handle) }
}

final class ZMQSocket {
    private(set) var handle: UnsafeMutableRawPointer?

    init(_ context: ZMQContext, type: Int32) throws {
        guard let h = zmq_socket(context.handle, type) else { throw ZMQError("zmq_socket") }
        handle = h
        setOption(ZMQ_LINGER, 1000)  // pending replies get a second to leave at close
    }

    deinit { close() }

    func close() {
        if let h = handle { _ = zmq_close(h) }
        handle = nil
    }

    func setOption(_ option: Int32, _ value: Int32) {
        guard let handle else { return }
        var v = value
        _ = zmq_setsockopt(handle, option, &v, MemoryLayout<Int32>.size)
    }

    func bind(_ endpoint: String) throws {
        guard let handle, zmq_bind(handle, endpoint) == 0 else { throw ZMQError("cannot bind \(endpoint)") }
    }

    /// Sends the frames as one multipart message.
    @discardableResult
    func send(_ frames: [[UInt8]]) -> Bool {
        guard let handle else { return false }
        for (i, f) in frames.enumerated() {
            let flags: Int32 = i < frames.count - 1 ? ZMQ_SNDMORE : 0
            while true {
                let r = f.withUnsafeBytes { zmq_send(handle, $0.baseAddress, $0.count, flags) }
                if r >= 0 { break }
                if zmq_errno() == EINTR { continue }
                return false
            }
        }
        return true
    }

    /// The next multipart message; nil when the context is shut down or the socket failed.
    func receive() -> [[UInt8]]? {
        guard let handle else { return nil }
        var frames: [[UInt8]] = []
        while true {
            var msg = zmq_msg_t()
            zmq_msg_init(&msg)
            defer { zmq_msg_close(&msg) }
            var n: Int32
            repeat { n = zmq_msg_recv(&msg, handle, 0) } while n < 0 && zmq_errno() == EINTR
            if n < 0 { return nil }
            let size = zmq_msg_size(&msg)
            if size > 0, let p = zmq_msg_data(&msg) {
                frames.append(Array(UnsafeRawBufferPointer(start: p, count: size)))
            } else {
                frames.append([])
            }
            if zmq_msg_more(&msg) == 0 { return frames }
        }
    }

    /// True when a message is waiting; waits up to `milliseconds` (-1: forever).
    func poll(milliseconds: Int) -> Bool {
        guard let handle else { return false }
        var item = zmq_pollitem_t(socket: handle, fd: 0, events: Int16(ZMQ_POLLIN), revents: 0)
        let r = zmq_poll(&item, 1, milliseconds)
        return r > 0 && item.revents & Int16(ZMQ_POLLIN) != 0
    }
}

// KernelWire.swift: the Jupyter messaging protocol's wire format (jupyter_client's session.py):
//   [identities..., "<IDS|MSG>", signature, header, parent_header, metadata, content, buffers...]
// The signature is the hex HMAC-SHA256 of the four JSON frames exactly as received (never re-serialised),
// compared in constant time; replayed signatures are refused. The connection file says where to bind and the key.

import Crypto
import Foundation
import TychoText
import TychoTrain

/// The connection file jupyter_client writes (`connect.py`, `write_connection_file`).
struct ConnectionInfo {
    var transport = "tcp"
    var ip = "127.0.0.1"
    var key = ""
    var signatureScheme = "hmac-sha256"
    var ports: [String: Int] = [:]

    static func read(_ path: String) throws -> ConnectionInfo {
        guard let data = FileManager.default.contents(atPath: path) else { throw NotebookError("cannot read the connection file \(path)") }
        let v: JSONValue
        do { v = try JSONParser.parse(String(decoding: data, as: UTF8.self)) } catch { throw NotebookError("\(path): \(error)") }
        var c = ConnectionInfo()
        c.transport = v["transport"]?.stringValue ?? "tcp"
        c.ip = v["ip"]?.stringValue ?? "127.0.0.1"
        c.key = v["key"]?.stringValue ?? ""
        c.signatureScheme = v["signature_scheme"]?.stringValue ?? "hmac-sha256"
        for name in ["shell", "iopub", "stdin", "control", "hb"] {
            guard let p = v["\(name)_port"]?.intValue else { throw NotebookError("\(path): no \(name)_port") }
            c.ports[name] = p
        }
        guard c.signatureScheme == "hmac-sha256" else { throw NotebookError("\(path): signature scheme \(c.signatureScheme) (Tycho signs with hmac-sha256)") }
        return c
    }

    func endpoint(_ channel: String) -> String {
        let port = ports[channel] ?? 0
        return transport == "ipc" ? "ipc://\(ip)-\(port)" : "\(transport)://\(ip):\(port)"
    }
}

/// One message, its JSON parsed.
struct KernelMessage {
    var identities: [[UInt8]]
    var header: JSONValue
    var parentHeader: JSONValue
    var metadata: JSONValue
    var content: JSONValue

    var type: String { header["msg_type"]?.stringValue ?? "" }
    var id: String { header["msg_id"]?.stringValue ?? "" }
}

final class KernelSession {
    static let delimiter = Array("<IDS|MSG>".utf8)
    static let protocolVersion = "5.4"
    let key: SymmetricKey?
    let session = UUID().uuidString.lowercased()
    private var seen = Set<[UInt8]>()
    private let lock = NSLock()
    var log: (String) -> Void = { _ in }

    init(key: String) {
        self.key = key.isEmpty ? nil : SymmetricKey(data: Array(key.utf8))
    }

    /// Lowercase hex HMAC-SHA256 of the frames (empty without a key).
    func signature(_ frames: [[UInt8]]) -> [UInt8] {
        guard let key else { return [] }
        var h = HMAC<SHA256>(key: key)
        for f in frames { h.update(data: f) }
        let hex = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for b in h.finalize() { out.append(hex[Int(b >> 4)]); out.append(hex[Int(b & 15)]) }
        return out
    }

    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var d: UInt8 = 0
        for i in 0..<a.count { d |= a[i] ^ b[i] }
        return d == 0
    }

    /// The message in `frames`, or nil (logged) when it is malformed, badly signed or replayed.
    func parse(_ frames: [[UInt8]]) -> KernelMessage? {
        guard let d = frames.firstIndex(of: KernelSession.delimiter), frames.count >= d + 6 else {
            log("ignored a message without the <IDS|MSG> delimiter and its five frames")
            return nil
        }
        let sig = frames[d + 1]
        let parts = Array(frames[(d + 2)...(d + 5)])
        if key != nil {
            guard KernelSession.constantTimeEqual(sig, signature(parts)) else {
                log("ignored a message with a bad signature")
                return nil
            }
            lock.lock()
            let replay = !seen.insert(sig).inserted
            if seen.count > 100_000 { seen.removeAll(keepingCapacity: true) }
            lock.unlock()
            if replay {
                log("ignored a replayed message")
                return nil
            }
        }
        func json(_ b: [UInt8]) -> JSONValue? { try? JSONParser.parse(String(decoding: b, as: UTF8.self)) }
        guard let header = json(parts[0]), header.objectValue != nil, let parent = json(parts[1]), let metadata = json(parts[2]),
              let content = json(parts[3]) else {
            log("ignored a message whose JSON could not be read")
            return nil
        }
        return KernelMessage(identities: Array(frames[..<d]), header: header, parentHeader: parent, metadata: metadata,
                             content: content.objectValue != nil ? content : .object([]))
    }

    static func now() -> String {
        var tv = timeval()
        gettimeofday(&tv, nil)
        var t = time_t(tv.tv_sec)
        var tm = tm()
        gmtime_r(&t, &tm)
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                      tm.tm_hour, tm.tm_min, tm.tm_sec, Int32(tv.tv_usec))
    }

    func header(_ type: String) -> JSONValue {
        .object([("date", .string(KernelSession.now())), ("msg_id", .string(UUID().uuidString.lowercased())), ("msg_type", .string(type)),
                 ("session", .string(session)), ("username", .string("tycho")), ("version", .string(KernelSession.protocolVersion))])
    }

    /// The frames of a new message of `type` in reply to (or caused by) `parent`.
    func frames(_ type: String, content: JSONValue, parent: KernelMessage?, identities: [[UInt8]], metadata: JSONValue = .object([])) -> [[UInt8]] {
        let parts = [header(type), parent?.header ?? .object([]), metadata, content].map { Array($0.line.utf8) }
        return identities + [KernelSession.delimiter, signature(parts)] + parts
    }
}

// ContentHasher.swift: SHA-256 content hashes (swift-crypto) for cache keys: data files, tokenizers, model
// weights. Streaming, with helpers that frame integers and strings so that fields cannot run together.

import Crypto

public struct ContentHasher {
    private var hasher = Crypto.SHA256()

    public init() {}

    /// Adds bytes to the message.
    public mutating func update(_ bytes: UnsafeRawBufferPointer) { hasher.update(bufferPointer: bytes) }

    public mutating func update<S: Swift.Sequence>(_ bytes: S) where S.Element == UInt8 {
        Array(bytes).withUnsafeBytes { update($0) }
    }

    public mutating func update(_ text: String) { update(Array(text.utf8)) }

    /// Adds the 8 little-endian bytes of an integer (a length or a count, so that fields cannot run together).
    public mutating func update(int v: Int) {
        var x = UInt64(bitPattern: Int64(v)).littleEndian
        withUnsafeBytes(of: &x) { update($0) }
    }

    /// The 32-byte digest; the hasher can still be used afterwards (finishing works on a copy).
    public func digest() -> [UInt8] { Array(hasher.finalize()) }

    /// The digest as 64 lowercase hex digits.
    public func hexDigest() -> String { ContentHasher.hex(digest()) }

    public static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        for b in bytes { out.append(digits[Int(b >> 4)]); out.append(digits[Int(b & 15)]) }
        return String(decoding: out, as: UTF8.self)
    }

    /// The hex digest of a string's UTF-8 bytes.
    public static func hex(of text: String) -> String {
        var h = ContentHasher()
        h.update(text)
        return h.hexDigest()
    }
}

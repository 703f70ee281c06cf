// ByteLevel.swift: GPT-2's reversible map between bytes and printable Unicode characters.
//
// bytes_to_unicode (transformers convert_slow_tokenizer.py): the bytes `!`...`~`, `¡`...`¬` and `®`...`ÿ` map
// to themselves; the other 68 bytes (0-32, 127-160, 173) map, in increasing order, to U+0100 + n. So a space
// becomes `Ġ` (U+0120) and a newline `Ċ` (U+010A). Byte-level BPE vocabularies are written in these characters.

public enum ByteLevel {
    /// The character (one Unicode scalar) that stands for each byte.
    public static let byteToScalar: [Unicode.Scalar] = {
        var out = [Unicode.Scalar](repeating: " ", count: 256)
        var n: UInt32 = 0
        for b in 0..<256 {
            let printable = (33...126).contains(b) || (161...172).contains(b) || (174...255).contains(b)
            if printable {
                out[b] = Unicode.Scalar(UInt8(b))
            } else {
                out[b] = Unicode.Scalar(0x100 + n) ?? " "  // 0x100..<0x144 are all valid scalars
                n += 1
            }
        }
        return out
    }()

    /// The inverse map: scalar value -> byte, for the 256 characters above.
    public static let scalarToByte: [UInt32: UInt8] = {
        var m: [UInt32: UInt8] = [:]
        for (b, s) in byteToScalar.enumerated() { m[s.value] = UInt8(b) }
        return m
    }()

    /// The byte-level spelling of `bytes` (each byte one character).
    public static func encode<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.underestimatedCount * 2)
        for b in bytes { out += byteToUTF8[Int(b)] }
        return String(decoding: out, as: UTF8.self)
    }

    /// The UTF-8 bytes of each byte's character (1 or 2 bytes).
    static let byteToUTF8: [[UInt8]] = byteToScalar.map { Array(String($0).utf8) }

    /// The bytes of a byte-level spelled token, or nil when it holds a character outside the map (then
    /// Hugging Face's ByteLevel decoder uses the token's own UTF-8 bytes).
    public static func decode(_ token: String) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(token.unicodeScalars.count)
        for s in token.unicodeScalars {
            guard let b = scalarToByte[s.value] else { return nil }
            out.append(b)
        }
        return out
    }
}

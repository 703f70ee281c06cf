// HeaderJSON.swift: the strict, small JSON reader and writer that safetensors headers need.
//
// Foundation's JSONSerialization silently keeps the last of duplicate keys, turns large integers into doubles,
// and forgets key order; a safetensors reader must refuse duplicates and read u64 offsets exactly. So this file
// parses RFC 8259 JSON itself: objects keep their pairs in file order (duplicates included, for the caller to
// judge), numbers keep their text, nesting is bounded so hostile input cannot overflow the stack. It refuses
// to be a general JSON library: no pretty printing, no floating-point conversion.

/// A parsed JSON value. Objects keep their pairs in file order; numbers keep their literal text.
enum JSONValue {
    case object([(key: String, value: JSONValue)])
    case array([JSONValue])
    case string(String)
    case number(String)
    case bool(Bool)
    case null

    /// The value as a non-negative integer, when it is written as one (`12`, not `12.0` or `1e1`) and fits.
    var nonNegativeInteger: Int? {
        guard case .number(let text) = self, !text.isEmpty, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else {
            return nil
        }
        return Int(text)
    }

    /// A short name for messages: `a string`, `an array`, `the number 1.5`.
    var kindName: String {
        switch self {
        case .object: return "an object"
        case .array: return "an array"
        case .string(let s): return "the string \"\(s.prefix(40))\""
        case .number(let n): return "the number \(n.prefix(40))"
        case .bool(let b): return "\(b)"
        case .null: return "null"
        }
    }
}

/// A syntax error at a byte offset of the parsed text.
struct JSONSyntaxError: Error {
    let message: String
    let offset: Int
}

/// Parses one JSON value from `bytes`, allowing only whitespace after it.
struct JSONReader {
    private let bytes: UnsafeRawBufferPointer
    private var pos = 0
    private var depth = 0
    static let maximumDepth = 64

    /// Parses the whole of `bytes` as one JSON value.
    static func parse(_ bytes: UnsafeRawBufferPointer) throws -> JSONValue {
        var r = JSONReader(bytes: bytes)
        r.skipWhitespace()
        let v = try r.value()
        r.skipWhitespace()
        if r.pos < bytes.count {
            throw r.error("unexpected \(r.describe(bytes[r.pos])) after the end of the JSON value")
        }
        return v
    }

    private init(bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    private func error(_ message: String) -> JSONSyntaxError { JSONSyntaxError(message: message, offset: pos) }

    private func describe(_ b: UInt8) -> String {
        b >= 0x21 && b < 0x7f ? "'\(Character(Unicode.Scalar(b)))'" : "byte 0x\(String(b, radix: 16))"
    }

    private var peek: UInt8? { pos < bytes.count ? bytes[pos] : nil }

    private mutating func skipWhitespace() {
        while let b = peek, b == 0x20 || b == 0x09 || b == 0x0a || b == 0x0d { pos += 1 }
    }

    private mutating func expect(_ b: UInt8, _ what: String) throws {
        guard let c = peek else { throw error("unexpected end, expected \(what)") }
        guard c == b else { throw error("unexpected \(describe(c)), expected \(what)") }
        pos += 1
    }

    private mutating func value() throws -> JSONValue {
        guard let c = peek else { throw error("unexpected end, expected a value") }
        switch c {
        case UInt8(ascii: "{"): return try object()
        case UInt8(ascii: "["): return try array()
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try number())
        default: throw error("unexpected \(describe(c)), expected a value")
        }
    }

    private mutating func literal(_ word: String) throws {
        for b in word.utf8 {
            guard peek == b else { throw error("invalid literal, expected '\(word)'") }
            pos += 1
        }
    }

    private mutating func nest() throws {
        depth += 1
        guard depth <= JSONReader.maximumDepth else { throw error("nested more than \(JSONReader.maximumDepth) levels deep") }
    }

    private mutating func object() throws -> JSONValue {
        try nest()
        defer { depth -= 1 }
        pos += 1  // {
        var pairs: [(key: String, value: JSONValue)] = []
        skipWhitespace()
        if peek == UInt8(ascii: "}") { pos += 1; return .object(pairs) }
        while true {
            skipWhitespace()
            guard peek == UInt8(ascii: "\"") else {
                throw error(peek.map { "unexpected \(describe($0)), expected a key string" } ?? "unexpected end, expected a key string")
            }
            let key = try string()
            skipWhitespace()
            try expect(UInt8(ascii: ":"), "':'")
            skipWhitespace()
            pairs.append((key, try value()))
            skipWhitespace()
            guard let c = peek else { throw error("unexpected end, expected ',' or '}'") }
            pos += 1
            if c == UInt8(ascii: "}") { return .object(pairs) }
            guard c == UInt8(ascii: ",") else { pos -= 1; throw error("unexpected \(describe(c)), expected ',' or '}'") }
        }
    }

    private mutating func array() throws -> JSONValue {
        try nest()
        defer { depth -= 1 }
        pos += 1  // [
        var items: [JSONValue] = []
        skipWhitespace()
        if peek == UInt8(ascii: "]") { pos += 1; return .array(items) }
        while true {
            skipWhitespace()
            items.append(try value())
            skipWhitespace()
            guard let c = peek else { throw error("unexpected end, expected ',' or ']'") }
            pos += 1
            if c == UInt8(ascii: "]") { return .array(items) }
            guard c == UInt8(ascii: ",") else { pos -= 1; throw error("unexpected \(describe(c)), expected ',' or ']'") }
        }
    }

    /// A number's literal text, checked against JSON's grammar: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
    private mutating func number() throws -> String {
        let start = pos
        func digits() -> Int {
            let s = pos
            while let b = peek, b >= 0x30 && b <= 0x39 { pos += 1 }
            return pos - s
        }
        if peek == UInt8(ascii: "-") { pos += 1 }
        if peek == UInt8(ascii: "0") {
            pos += 1
        } else if digits() == 0 {
            throw error("invalid number")
        }
        if peek == UInt8(ascii: ".") {
            pos += 1
            guard digits() > 0 else { throw error("invalid number: no digits after '.'") }
        }
        if peek == UInt8(ascii: "e") || peek == UInt8(ascii: "E") {
            pos += 1
            if peek == UInt8(ascii: "+") || peek == UInt8(ascii: "-") { pos += 1 }
            guard digits() > 0 else { throw error("invalid number: no digits in the exponent") }
        }
        if let b = peek, b >= 0x30 && b <= 0x39 { throw error("invalid number: leading zero") }
        return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<pos]), as: UTF8.self)
    }

    private mutating func hex4() throws -> UInt32 {
        var v: UInt32 = 0
        for _ in 0..<4 {
            guard let b = peek else { throw error("unexpected end in a \\u escape") }
            let d: UInt32
            switch b {
            case 0x30...0x39: d = UInt32(b - 0x30)
            case 0x41...0x46: d = UInt32(b - 0x41 + 10)
            case 0x61...0x66: d = UInt32(b - 0x61 + 10)
            default: throw error("invalid \\u escape")
            }
            v = v << 4 | d
            pos += 1
        }
        return v
    }

    /// A string; the opening quote is at `pos`. Raw bytes must be valid UTF-8 with no control characters.
    private mutating func string() throws -> String {
        pos += 1  // "
        var out: [UInt8] = []
        var runStart = pos
        while true {
            guard let b = peek else { throw error("unexpected end inside a string") }
            if b == UInt8(ascii: "\"") { break }
            if b < 0x20 { throw error("unescaped control character 0x\(String(b, radix: 16)) in a string") }
            if b != UInt8(ascii: "\\") { pos += 1; continue }
            out.append(contentsOf: bytes[runStart..<pos])
            pos += 1
            guard let e = peek else { throw error("unexpected end inside a string") }
            pos += 1
            switch e {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0c)
            case UInt8(ascii: "n"): out.append(0x0a)
            case UInt8(ascii: "r"): out.append(0x0d)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = try hex4()
                if scalar >= 0xd800 && scalar < 0xdc00 {
                    guard peek == UInt8(ascii: "\\") else { throw error("lone leading surrogate in a \\u escape") }
                    pos += 1
                    guard peek == UInt8(ascii: "u") else { throw error("lone leading surrogate in a \\u escape") }
                    pos += 1
                    let low = try hex4()
                    guard low >= 0xdc00 && low < 0xe000 else { throw error("invalid surrogate pair in a \\u escape") }
                    scalar = 0x10000 + ((scalar - 0xd800) << 10) + (low - 0xdc00)
                } else if scalar >= 0xdc00 && scalar < 0xe000 {
                    throw error("lone trailing surrogate in a \\u escape")
                }
                // Surrogates are excluded above, so this always succeeds.
                guard let u = Unicode.Scalar(scalar) else { throw error("invalid \\u escape") }
                out.append(contentsOf: Array(String(Character(u)).utf8))
            default:
                pos -= 1
                throw error("invalid escape '\\\(Character(Unicode.Scalar(e)))'")
            }
            runStart = pos
        }
        out.append(contentsOf: bytes[runStart..<pos])
        pos += 1  // "
        guard JSONReader.isValidUTF8(out) else { throw error("a string is not valid UTF-8") }
        return String(decoding: out, as: UTF8.self)
    }

    /// True when `bytes` is well-formed UTF-8 (no overlong forms, surrogates or truncated sequences).
    static func isValidUTF8<C: Collection>(_ bytes: C) -> Bool where C.Element == UInt8 {
        var it = bytes.makeIterator()
        var decoder = UTF8()
        while true {
            switch decoder.decode(&it) {
            case .scalarValue: continue
            case .emptyInput: return true
            case .error: return false
            }
        }
    }
}

/// Writes JSON text as serde_json does (the reference safetensors writer): compact, no spaces, escaping only
/// `"`, `\` and control characters, with lower-case hex in `\u00XX`.
enum JSONWriter {
    static func quoted(_ s: String, into out: inout [UInt8]) {
        let hex = Array("0123456789abcdef".utf8)
        out.append(UInt8(ascii: "\""))
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "\""): out += [0x5c, 0x22]
            case UInt8(ascii: "\\"): out += [0x5c, 0x5c]
            case 0x08: out += [0x5c, UInt8(ascii: "b")]
            case 0x0c: out += [0x5c, UInt8(ascii: "f")]
            case 0x0a: out += [0x5c, UInt8(ascii: "n")]
            case 0x0d: out += [0x5c, UInt8(ascii: "r")]
            case 0x09: out += [0x5c, UInt8(ascii: "t")]
            case 0..<0x20: out += Array("\\u00".utf8) + [hex[Int(b >> 4)], hex[Int(b & 15)]]
            default: out.append(b)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}

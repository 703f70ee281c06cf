// JSONParser.swift: RFC 8259 JSON from UTF-8 bytes into `JSONValue`, for the rows of JSONL data files.
//
// Written here rather than taken from Foundation because data files need what JSONSerialization does not give:
// integers stay integers (`1` is `.int`, `1.0` is `.double`; exact up to Int64, larger ones become doubles as
// in Lua), an error says where (the byte column) and what, duplicate keys are refused rather than silently
// collapsed, strings must be valid UTF-8 with well-formed `\u` escapes, and nesting is bounded so a hostile
// line cannot overflow the stack. It refuses to be lenient: no comments, trailing commas, NaN, infinities,
// single quotes or numbers out of double range.

/// A JSON syntax error at a 1-based byte column of the parsed text.
public struct JSONSyntaxError: Error, Equatable, CustomStringConvertible {
    public let column: Int
    public let message: String
    public init(column: Int, message: String) { self.column = column; self.message = message }
    public var description: String { "invalid JSON at column \(column): \(message)" }
}

public enum JSONParser {
    /// Arrays and objects nest at most this deep.
    public static let maxDepth = 512

    /// Parses exactly one JSON value; whitespace around it is allowed, anything else after it is an error.
    /// - Throws: `JSONSyntaxError`.
    public static func parse(_ bytes: UnsafeBufferPointer<UInt8>) throws -> JSONValue {
        var s = JSONScanner(bytes)
        s.skipSpace()
        let v = try s.value(depth: 0)
        s.skipSpace()
        if s.i < s.b.count { throw s.error("unexpected \(s.describeHere()) after the value") }
        return v
    }

    /// Parses the UTF-8 text of `text` (see `parse(_:)` for bytes).
    public static func parse(_ text: String) throws -> JSONValue {
        var t = text
        return try t.withUTF8 { try parse($0) }
    }
}

/// A cursor over the bytes of one JSON text.
private struct JSONScanner {
    let b: UnsafeBufferPointer<UInt8>
    var i = 0

    init(_ b: UnsafeBufferPointer<UInt8>) { self.b = b }

    // MARK: helpers

    func error(_ message: String, at pos: Int? = nil) -> JSONSyntaxError {
        JSONSyntaxError(column: (pos ?? i) + 1, message: message)
    }

    /// The byte at the cursor for messages: `'x'`, `byte 0xC3`, or `the end of the line`.
    func describeHere() -> String {
        guard i < b.count else { return "the end of the line" }
        let c = b[i]
        if c >= 0x21 && c < 0x7F { return "'\(Character(Unicode.Scalar(c)))'" }
        return byteName(c)
    }

    func byteName(_ c: UInt8) -> String {
        let hex = String(c, radix: 16, uppercase: true)
        return "byte 0x\(hex.count == 1 ? "0" + hex : hex)"
    }

    mutating func skipSpace() {
        while i < b.count {
            switch b[i] {
            case 0x20, 0x09, 0x0A, 0x0D: i += 1
            default: return
            }
        }
    }

    /// Consumes `c` (after whitespace) when it is next.
    mutating func take(_ c: UInt8) -> Bool {
        skipSpace()
        if i < b.count && b[i] == c { i += 1; return true }
        return false
    }

    // MARK: values

    mutating func value(depth: Int) throws -> JSONValue {
        guard i < b.count else { throw error("expected a value, got the end of the line") }
        switch b[i] {
        case UInt8(ascii: "{"): return try object(depth: depth + 1)
        case UInt8(ascii: "["): return try array(depth: depth + 1)
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try number()
        default: throw error("expected a value, got \(describeHere())")
        }
    }

    mutating func literal(_ word: StaticString) throws {
        let start = i
        let n = word.utf8CodeUnitCount
        let ok = i + n <= b.count && (0..<n).allSatisfy { b[i + $0] == word.utf8Start[$0] }
        guard ok else { throw error("expected a value (true, false or null are spelled in lower case), got \(describeHere())", at: start) }
        i += n
    }

    mutating func object(depth: Int) throws -> JSONValue {
        guard depth <= JSONParser.maxDepth else { throw error("nesting deeper than \(JSONParser.maxDepth) levels") }
        i += 1  // {
        var pairs: [(String, JSONValue)] = []
        var seen: Set<String>? = nil
        if take(UInt8(ascii: "}")) { return .object(pairs) }
        while true {
            skipSpace()
            guard i < b.count, b[i] == UInt8(ascii: "\"") else {
                let after = pairs.isEmpty ? "" : " after ','"
                throw error("expected a string key\(after), got \(describeHere())")
            }
            let keyAt = i
            let key = try string()
            // Duplicate keys: a linear scan for small objects, a set beyond.
            if pairs.count < 8 {
                if pairs.contains(where: { $0.0 == key }) { throw error("duplicate key \"\(key.prefix(60))\"", at: keyAt) }
            } else {
                if seen == nil { seen = Set(pairs.map(\.0)) }
                if !seen!.insert(key).inserted { throw error("duplicate key \"\(key.prefix(60))\"", at: keyAt) }
            }
            guard take(UInt8(ascii: ":")) else {
                throw error("expected ':' after the key \"\(key.prefix(60))\", got \(describeHere())")
            }
            skipSpace()
            pairs.append((key, try value(depth: depth)))
            if take(UInt8(ascii: ",")) { continue }
            if take(UInt8(ascii: "}")) { return .object(pairs) }
            throw error("expected ',' or '}' after a value in an object, got \(describeHere())")
        }
    }

    mutating func array(depth: Int) throws -> JSONValue {
        guard depth <= JSONParser.maxDepth else { throw error("nesting deeper than \(JSONParser.maxDepth) levels") }
        i += 1  // [
        var items: [JSONValue] = []
        if take(UInt8(ascii: "]")) { return .array(items) }
        while true {
            skipSpace()
            items.append(try value(depth: depth))
            if take(UInt8(ascii: ",")) { continue }
            if take(UInt8(ascii: "]")) { return .array(items) }
            throw error("expected ',' or ']' after a value in an array, got \(describeHere())")
        }
    }

    // MARK: strings

    /// A string starting at the quote under the cursor. Runs without escapes are validated in place.
    mutating func string() throws -> String {
        let open = i
        i += 1
        var start = i
        var bytes: [UInt8] = []
        var escaped = false
        while true {
            guard i < b.count else { throw error("unterminated string (opened at column \(open + 1))", at: open) }
            let c = b[i]
            if c == UInt8(ascii: "\"") { break }
            if c < 0x20 {
                throw error("control character \(byteName(c)) in a string (write it as an escape such as \\n)")
            }
            if c != UInt8(ascii: "\\") { i += 1; continue }
            if !escaped { bytes.reserveCapacity(i - start + 16); escaped = true }
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: b[start..<i]))
            try escape(into: &bytes)
            start = i
        }
        let end = i
        i += 1  // closing quote
        let s: String?
        if escaped {
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: b[start..<end]))
            s = String(validating: bytes, as: UTF8.self)
        } else {
            s = String(validating: UnsafeBufferPointer(rebasing: b[start..<end]), as: UTF8.self)
        }
        guard let s else { throw error("invalid UTF-8 in the string", at: open) }
        return s
    }

    /// Decodes the escape under the cursor (a backslash) into UTF-8 bytes.
    mutating func escape(into out: inout [UInt8]) throws {
        let at = i
        i += 1
        guard i < b.count else { throw error("unterminated string") }
        let c = b[i]
        i += 1
        switch c {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(c)
        case UInt8(ascii: "b"): out.append(0x08)
        case UInt8(ascii: "f"): out.append(0x0C)
        case UInt8(ascii: "n"): out.append(0x0A)
        case UInt8(ascii: "r"): out.append(0x0D)
        case UInt8(ascii: "t"): out.append(0x09)
        case UInt8(ascii: "u"):
            var u = try hex4(at: at)
            if u >= 0xD800 && u < 0xDC00 {
                // A high surrogate must be followed by an escaped low one.
                guard i + 1 < b.count, b[i] == UInt8(ascii: "\\"), b[i + 1] == UInt8(ascii: "u") else {
                    throw error("unpaired surrogate \\u\(String(u, radix: 16)) in a string", at: at)
                }
                i += 2
                let low = try hex4(at: i - 2)
                guard low >= 0xDC00 && low < 0xE000 else {
                    throw error("unpaired surrogate \\u\(String(u, radix: 16)) in a string", at: at)
                }
                u = 0x10000 + ((u - 0xD800) << 10) + (low - 0xDC00)
            } else if u >= 0xDC00 && u < 0xE000 {
                throw error("unpaired surrogate \\u\(String(u, radix: 16)) in a string", at: at)
            }
            // Always a valid scalar here: surrogates were paired or refused above.
            guard let scalar = Unicode.Scalar(u) else { throw error("invalid \\u escape", at: at) }
            UTF8.encode(scalar) { out.append($0) }
        default:
            throw error("invalid escape '\\\(Character(Unicode.Scalar(c)))' in a string", at: at)
        }
    }

    /// Four hex digits after `\u`; the cursor is on the first.
    mutating func hex4(at escapeStart: Int) throws -> UInt32 {
        guard i + 4 <= b.count else { throw error("invalid \\u escape (four hex digits expected)", at: escapeStart) }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = b[i]
            let d: UInt8
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = c - UInt8(ascii: "A") + 10
            default: throw error("invalid \\u escape (four hex digits expected)", at: escapeStart)
            }
            v = v << 4 | UInt32(d)
            i += 1
        }
        return v
    }

    // MARK: numbers

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`. Integers that fit Int64 are `.int`.
    mutating func number() throws -> JSONValue {
        let start = i
        let negative = b[i] == UInt8(ascii: "-")
        if negative { i += 1 }
        func isDigit(_ k: Int) -> Bool { k < b.count && b[k] >= UInt8(ascii: "0") && b[k] <= UInt8(ascii: "9") }
        guard isDigit(i) else { throw error("invalid number: a digit must follow '-'", at: start) }
        // Accumulate negatively so Int.min is representable.
        var acc = 0
        var overflow = false
        let intStart = i
        while isDigit(i) {
            if !overflow {
                let (m, o1) = acc.multipliedReportingOverflow(by: 10)
                let (s, o2) = m.subtractingReportingOverflow(Int(b[i] - UInt8(ascii: "0")))
                acc = s
                overflow = o1 || o2
            }
            i += 1
        }
        if b[intStart] == UInt8(ascii: "0") && i - intStart > 1 {
            throw error("invalid number: leading zeros are not allowed", at: start)
        }
        var isFloat = false
        if i < b.count && b[i] == UInt8(ascii: ".") {
            i += 1
            guard isDigit(i) else { throw error("invalid number: a digit must follow '.'", at: start) }
            while isDigit(i) { i += 1 }
            isFloat = true
        }
        if i < b.count && (b[i] == UInt8(ascii: "e") || b[i] == UInt8(ascii: "E")) {
            i += 1
            if i < b.count && (b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-")) { i += 1 }
            guard isDigit(i) else { throw error("invalid number: the exponent has no digits", at: start) }
            while isDigit(i) { i += 1 }
            isFloat = true
        }
        if !isFloat && !overflow {
            if negative { return .int(acc) }
            if acc != Int.min { return .int(-acc) }
        }
        let text = String(decoding: UnsafeBufferPointer(rebasing: b[start..<i]), as: UTF8.self)
        guard let d = Double(text), d.isFinite else {
            throw error("number \(text.prefix(40)) is out of range for a double", at: start)
        }
        return .double(d)
    }
}

// JSONValue.swift: a small ordered JSON value and its two renderings: the indented layout of tokenizer.json
// (keys keep their order, so a saved file reads like the ones `tokenizers` writes) and one line of JSONL (keys
// sorted, so the output is byte-for-byte deterministic). `JSONParser` reads it from bytes; tokenizer.json
// itself is still read with Foundation.

import Foundation

/// A JSON value. Objects are ordered pairs; integers and floats stay apart (`1` is `.int`, `1.0` `.double`).
public indirect enum JSONValue {
    case null
    case bool(Bool)
    case int(Int)
    /// A finite float (JSON has no NaN or infinity).
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([(String, JSONValue)])

    /// Compact for large arrays and objects of scalars (vocab, merges), two-space indented otherwise.
    func render(into out: inout String, indent: Int = 0) {
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .int(let i): out += String(i)
        case .double(let d): out += JSONValue.format(d)
        case .string(let s): JSONValue.quote(s, into: &out)
        case .array(let xs):
            if xs.isEmpty { out += "[]"; return }
            let flat = xs.allSatisfy(\.isScalarOrSmall)
            out += "["
            for (k, x) in xs.enumerated() {
                if k > 0 { out += flat ? ", " : "," }
                if !flat { out += "\n" + String(repeating: " ", count: indent + 2) }
                x.render(into: &out, indent: indent + 2)
            }
            if !flat { out += "\n" + String(repeating: " ", count: indent) }
            out += "]"
        case .object(let kv):
            if kv.isEmpty { out += "{}"; return }
            out += "{"
            for (k, (key, v)) in kv.enumerated() {
                out += k > 0 ? ",\n" : "\n"
                out += String(repeating: " ", count: indent + 2)
                JSONValue.quote(key, into: &out)
                out += ": "
                v.render(into: &out, indent: indent + 2)
            }
            out += "\n" + String(repeating: " ", count: indent) + "}"
        }
    }

    var isScalarOrSmall: Bool {
        switch self {
        case .array(let xs): return xs.count <= 2 && xs.allSatisfy { if case .string = $0 { return true }; return false }
        case .object: return false
        default: return true
        }
    }

    static func quote(_ s: String, into out: inout String) {
        if !s.utf8.contains(where: { $0 < 0x20 || $0 == 0x22 || $0 == 0x5C || $0 == 0x7F }) {
            out += "\""; out += s; out += "\""  // nothing to escape: the common case, copied whole
            return
        }
        out += "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 || u.value == 0x7F {
                    out += String(format: "\\u%04x", u.value)
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        out += "\""
    }

    var text: String {
        var s = ""
        render(into: &s)
        return s + "\n"
    }

    /// A finite double as JSON: Swift's shortest round-trip form (`0.1`, `3.0`, `1e-05`), which keeps a float
    /// a float when read back.
    static func format(_ d: Double) -> String { d.description }

    // MARK: one line (JSONL)

    /// The value on one line, in the layout of Python's `json.dumps(v, sort_keys=True, ensure_ascii=False)`:
    /// `{"a": 1, "b": [true, null]}`. Object keys are sorted by their UTF-8 bytes, so equal values give equal
    /// lines. Doubles must be finite (a caller's contract; `.double` documents it).
    public var line: String {
        var s = ""
        renderLine(into: &s)
        return s
    }

    func renderLine(into out: inout String) {
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .int(let i): out += String(i)
        case .double(let d): out += JSONValue.format(d)
        case .string(let s): JSONValue.quote(s, into: &out)
        case .array(let xs):
            out += "["
            for (k, x) in xs.enumerated() {
                if k > 0 { out += ", " }
                x.renderLine(into: &out)
            }
            out += "]"
        case .object(let kv):
            out += "{"
            let sorted = kv.sorted { $0.0.utf8.lexicographicallyPrecedes($1.0.utf8) }
            for (k, (key, v)) in sorted.enumerated() {
                if k > 0 { out += ", " }
                JSONValue.quote(key, into: &out)
                out += ": "
                v.renderLine(into: &out)
            }
            out += "}"
        }
    }
}

extension JSONValue: Equatable {
    /// Structural equality; objects compare their pairs in order.
    public static func == (a: JSONValue, b: JSONValue) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case let (.bool(x), .bool(y)): return x == y
        case let (.int(x), .int(y)): return x == y
        case let (.double(x), .double(y)): return x == y
        case let (.string(x), .string(y)): return x == y
        case let (.array(x), .array(y)): return x == y
        case let (.object(x), .object(y)):
            return x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: return false
        }
    }
}

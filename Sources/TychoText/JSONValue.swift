// JSONValue.swift: a small ordered JSON value for writing tokenizer.json: keys keep their order, so a saved
// file reads like the ones `tokenizers` writes and is byte-for-byte deterministic. Reading uses Foundation.

import Foundation

indirect enum JSONValue {
    case null
    case bool(Bool)
    case int(Int)
    case string(String)
    case array([JSONValue])
    case object([(String, JSONValue)])

    /// Compact for large arrays and objects of scalars (vocab, merges), two-space indented otherwise.
    func render(into out: inout String, indent: Int = 0) {
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .int(let i): out += String(i)
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
}

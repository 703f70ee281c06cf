// Pretty.swift: the REPL's printer (trepl's pretty print): nested tables bounded in depth and items and safe
// against cycles, tensors Torch-style, strings quoted when nested, functions named when they are built-ins.
// Everything here reads the stack with non-raising calls; `__tostring` runs in protected mode.

import CLua
import CLuaShim
import Foundation
import TychoTensor

public struct PrettyOptions {
    public var depth = 3
    public var items = 40
    public var width = 100
    /// ANSI colors as trepl uses them: numbers cyan, booleans blue, nested strings green, functions magenta,
    /// userdata red.
    public var colors = false
    public init() {}
}

extension LuaState {
    /// The REPL text of the value at `idx`.
    public func pretty(_ idx: Int32, options: PrettyOptions = PrettyOptions()) -> String {
        var seen = Set<UnsafeRawPointer>()
        return describe(lua.absolute(idx), level: 0, top: true, seen: &seen, options: options)
    }

    private func describe(_ idx: Int32, level: Int, top: Bool, seen: inout Set<UnsafeRawPointer>,
                          options: PrettyOptions) -> String {
        let text = plainDescribe(idx, level: level, top: top, seen: &seen, options: options)
        guard options.colors else { return text }
        let code: String
        switch lua.type(idx) {
        case LUA_TNUMBER: code = "36"
        case LUA_TBOOLEAN, LUA_TNIL: code = "34"
        case LUA_TSTRING where !top: code = "32"
        case LUA_TFUNCTION: code = "35"
        case LUA_TUSERDATA where lua.object(idx, metatable: TensorBinding.metatable, as: Tensor.self) == nil: code = "31"
        default: return text
        }
        return "\u{1B}[\(code)m\(text)\u{1B}[0m"
    }

    private func plainDescribe(_ idx: Int32, level: Int, top: Bool, seen: inout Set<UnsafeRawPointer>,
                               options: PrettyOptions) -> String {
        switch lua.type(idx) {
        case LUA_TNIL, LUA_TNONE: return "nil"
        case LUA_TBOOLEAN: return lua.bool(idx) ? "true" : "false"
        case LUA_TNUMBER: return lua.toDisplayString(idx)
        case LUA_TSTRING:
            let s = lua.string(idx) ?? ""
            return top ? s : LuaState.quote(s)
        case LUA_TFUNCTION:
            if let b = tycho_tobinding(lua.L, idx) {
                return "function: \(Unmanaged<LuaFunction>.fromOpaque(b).takeUnretainedValue().signature)"
            }
            return lua.toDisplayString(idx)
        case LUA_TTABLE:
            return describeTable(idx, level: level, seen: &seen, options: options)
        default:
            if let t = lua.object(idx, metatable: TensorBinding.metatable, as: Tensor.self) {
                return top ? t.format() : "tensor(\(Tensor.describe(t.shape)))"
            }
            return lua.toDisplayString(idx)
        }
    }

    private func describeTable(_ idx: Int32, level: Int, seen: inout Set<UnsafeRawPointer>,
                               options: PrettyOptions) -> String {
        guard let p = lua_topointer(lua.L, idx) else { return "{}" }
        if seen.contains(p) { return "<cycle>" }
        // A table with __tostring prints as its metamethod says.
        if lua.getMetatable(idx) {
            let has = lua.rawGet(-1, field: "__tostring") != LUA_TNIL
            lua.pop(2)
            if has { return lua.toDisplayString(idx) }
        }
        if level >= options.depth { return "{...}" }
        guard lua.ensureStack(8) else { return "{...}" }
        seen.insert(p)
        defer { seen.remove(p) }
        var parts: [String] = []
        let n = lua.rawLength(idx)
        var shown = 0
        var more = 0
        // Array part first, in order.
        for i in 1...max(n, 1) where i <= n {
            if shown >= options.items { more += 1; continue }
            _ = lua.rawGet(idx, index: i)
            parts.append(describe(lua.absolute(-1), level: level + 1, top: false, seen: &seen, options: options))
            lua.pop()
            shown += 1
        }
        // Then the other keys, sorted for a stable display.
        var keyed: [(String, String)] = []
        lua.forEach(idx) {
            if lua.isInteger(-2), let k = lua.integer(-2), k >= 1 && k <= n { return true }
            let key: String
            if let s = lua.string(-2) {
                key = LuaState.isIdentifier(s) ? s : "[\(LuaState.quote(s))]"
            } else {
                key = "[\(describe(lua.absolute(-2), level: options.depth, top: false, seen: &seen, options: options))]"
            }
            if keyed.count + shown >= options.items { more += 1; return true }
            keyed.append((key, describe(lua.absolute(-1), level: level + 1, top: false, seen: &seen, options: options)))
            return true
        }
        keyed.sort { $0.0 < $1.0 }
        parts += keyed.map { "\($0.0) = \($0.1)" }
        if more > 0 { parts.append("... (\(more) more)") }
        if parts.isEmpty { return "{}" }
        let flat = "{" + parts.joined(separator: ", ") + "}"
        if LuaState.visibleCount(flat) + level * 2 <= options.width && !flat.contains("\n") { return flat }
        let pad = String(repeating: "  ", count: level + 1)
        let inner = parts.map { pad + $0.replacingOccurrences(of: "\n", with: "\n" + pad) }
        return "{\n" + inner.joined(separator: ",\n") + "\n" + String(repeating: "  ", count: level) + "}"
    }

    /// Length without ANSI escape sequences.
    static func visibleCount(_ s: String) -> Int {
        var n = 0, inEscape = false
        for c in s.unicodeScalars {
            if inEscape { if c == "m" { inEscape = false }; continue }
            if c == "\u{1B}" { inEscape = true; continue }
            n += 1
        }
        return n
    }

    static func isIdentifier(_ s: String) -> Bool {
        guard let f = s.unicodeScalars.first, f == "_" || (f.isASCII && CharacterSet.letters.contains(f)) else { return false }
        let keywords: Set<String> = ["and", "break", "do", "else", "elseif", "end", "false", "for", "function", "goto",
                                     "if", "in", "local", "nil", "not", "or", "repeat", "return", "then", "true", "until", "while"]
        return !keywords.contains(s) && s.unicodeScalars.allSatisfy { $0 == "_" || ($0.isASCII && CharacterSet.alphanumerics.contains($0)) }
    }

    static func quote(_ s: String) -> String {
        var out = "\""
        for c in s.unicodeScalars {
            switch c {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            default:
                if c.value < 32 || c.value == 127 { out += "\\\(c.value)" } else { out.unicodeScalars.append(c) }
            }
        }
        return out + "\""
    }
}

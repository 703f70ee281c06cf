// Binding.swift: Tycho's one binding mechanism (Torch7's cwrap idea).
//
// A Lua function is declared once, as a `LuaFunction`: its Lua name, typed parameters (optional ones with the
// default shown in help), a doc string and a Swift body. From that one declaration come the argument checks
// and their messages, `help()` text and REPL completion. The body throws to fail; the C trampoline raises the
// Lua error after the Swift frame has returned.

import CLua
import CLuaShim
import TychoTensor

/// What a parameter accepts.
public enum LuaParamKind: String {
    case tensor, number, integer, boolean, string, table, function, any
    case tensorOrNumber = "tensor or number"
    /// Sizes given as numbers or one table (`zeros(2, 3)` == `zeros{2, 3}`); always the last parameter.
    case sizes = "sizes"
    /// Any number of further values; always the last parameter.
    case rest = "..."

    /// The kind as it reads in an error message: `must be <phrase>, got string`.
    var phrase: String {
        switch self {
        case .integer: return "an integer"
        case .any: return "a value"
        case .sizes: return "sizes"
        case .rest: return "values"
        default: return "a \(rawValue)"
        }
    }
}

public struct LuaParam {
    public let name: String
    public let kind: LuaParamKind
    public let optional: Bool
    public let defaultText: String?

    public static func required(_ name: String, _ kind: LuaParamKind) -> LuaParam {
        LuaParam(name: name, kind: kind, optional: false, defaultText: nil)
    }
    public static func optional(_ name: String, _ kind: LuaParamKind, default d: String? = nil) -> LuaParam {
        LuaParam(name: name, kind: kind, optional: true, defaultText: d)
    }
}

/// An error raised in Lua as `<function>: <message>`.
public struct LuaBindingError: Error {
    public let message: String
    public init(_ message: String) { self.message = message }
}

/// Thrown after a protected call failed with its error object left on top of the stack: the trampoline raises
/// that object as it is (tables, tracebacks and all) instead of a message.
public struct LuaPendingError: Error {
    public init() {}
}

/// A Swift function callable from Lua.
public final class LuaFunction {
    public let name: String
    public internal(set) var module: String
    public let params: [LuaParam]
    public let doc: String
    /// True for functions also installed as methods (`t:sum()` for `tensor.sum(t)`).
    public let isMethod: Bool
    let body: (LuaArgs) throws -> Int

    public init(_ name: String, _ params: [LuaParam] = [], method: Bool = false, doc: String,
                _ body: @escaping (LuaArgs) throws -> Int) {
        self.name = name
        self.module = ""
        self.params = params
        self.doc = doc
        self.isMethod = method
        self.body = body
    }

    public var qualifiedName: String { module.isEmpty ? name : "\(module).\(name)" }

    /// `tensor.narrow(self, dim, start, length)`, with optional parameters in brackets.
    public var signature: String {
        var parts: [String] = []
        for p in params {
            var s = p.kind == .rest ? "..." : p.name
            if p.kind == .sizes { s = "\(p.name)..." }
            if let d = p.defaultText { s += "=\(d)" }
            parts.append(p.optional ? "[\(s)]" : s)
        }
        return "\(qualifiedName)(\(parts.joined(separator: ", ")))"
    }

    public var helpText: String { "\(signature)\n  \(doc.replacingOccurrences(of: "\n", with: "\n  "))" }

    // MARK: declared checks

    /// Checks every declared parameter's presence and type; the body then reads typed values.
    func checkDeclared(_ a: LuaArgs) throws {
        let n = Int(a.lua.top)
        for (i, p) in params.enumerated() {
            let idx = i + 1
            if p.kind == .rest || p.kind == .sizes { break }
            if a.isNil(idx) {
                if p.optional { continue }
                throw a.typeError(idx, p.kind.phrase)
            }
            let ok: Bool
            switch p.kind {
            case .tensor: ok = a.tensorOrNil(idx) != nil
            case .number: ok = a.lua.number(Int32(idx)) != nil
            case .integer: ok = a.lua.type(Int32(idx)) == LUA_TNUMBER
            case .boolean: ok = a.lua.type(Int32(idx)) == LUA_TBOOLEAN
            case .string: ok = a.lua.type(Int32(idx)) == LUA_TSTRING
            case .table: ok = a.lua.type(Int32(idx)) == LUA_TTABLE
            case .function: ok = a.lua.type(Int32(idx)) == LUA_TFUNCTION
            case .tensorOrNumber: ok = a.lua.number(Int32(idx)) != nil || a.tensorOrNil(idx) != nil
            case .any, .sizes, .rest: ok = true
            }
            if !ok {
                if p.kind == .tensor || p.kind == .tensorOrNumber, a.lua.isFinalized(Int32(idx)) {
                    _ = try a.tensor(idx)  // names a collected tensor as such
                }
                throw a.typeError(idx, p.kind.phrase)
            }
        }
        let variadic = params.last.map { $0.kind == .rest || $0.kind == .sizes } ?? false
        if !name.hasPrefix("__"), !variadic, n > params.count {
            throw LuaBindingError("expected at most \(params.count) argument\(params.count == 1 ? "" : "s"), got \(n)")
        }
    }
}

/// A Lua module: a table of functions with a doc string, registered as `require "name"` and a global.
public struct LuaModule {
    public let name: String
    public let doc: String
    public let functions: [LuaFunction]

    public init(name: String, doc: String, functions: [LuaFunction]) {
        self.name = name
        self.doc = doc
        self.functions = functions
        for f in functions { f.module = name }
    }

    public func function(named n: String) -> LuaFunction? { functions.first { $0.name == n } }
}

// MARK: the dispatcher (called from the C trampoline)

let luaDispatcher: tycho_dispatcher = { L, binding in
    guard let L, let binding else { return -1 }
    let f = Unmanaged<LuaFunction>.fromOpaque(binding).takeUnretainedValue()
    let args = LuaArgs(Lua(L), function: f)
    do {
        try f.checkDeclared(args)
        return Int32(try f.body(args))
    } catch is LuaPendingError {
        return -2
    } catch let e as LuaBindingError {
        args.lua.push("\(f.qualifiedName): \(e.message)")
    } catch let e as TensorError {
        args.lua.push("\(f.qualifiedName): \(e.message)")
    } catch {
        args.lua.push("\(f.qualifiedName): \(error)")
    }
    return -1
}

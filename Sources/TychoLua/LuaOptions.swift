// LuaOptions.swift: reading option tables (`optim.adamw(params, {lr=1e-3, betas={0.9, 0.999}})`).
//
// Every reader takes the index of the table argument and a key, returns nil when the key is absent, and throws an
// argument error naming the option when the value has the wrong type. `checkOptions` rejects unknown keys, so a
// typo (`weight_dacay`) is an error rather than a silently ignored setting.

import CLua
import CLuaShim
import TychoTensor

extension LuaArgs {
    /// Checks that the table at idx (if present) is a table whose keys are all in `allowed`.
    public func checkOptions(_ idx: Int, allowed: Set<String>) throws {
        guard !isNil(idx) else { return }
        guard lua.type(Int32(idx)) == LUA_TTABLE else { throw typeError(idx, "a table of options") }
        var bad: String? = nil
        lua.forEach(Int32(idx)) {
            if lua.type(-2) == LUA_TSTRING, let k = lua.string(-2), allowed.contains(k) { return true }
            bad = lua.type(-2) == LUA_TSTRING ? (lua.string(-2) ?? "?") : "a \(lua.typeName(-2)) key"
            return false
        }
        if let bad {
            throw argumentError(idx, "a table of options (\(allowed.sorted().joined(separator: ", "))), got unknown option '\(bad)'")
        }
    }

    /// Pushes field `key` of the options table at idx and runs `body` with it on top; nil when absent.
    private func withOption<R>(_ idx: Int, _ key: String, _ body: (Int32) throws -> R) throws -> R? {
        guard !isNil(idx), lua.type(Int32(idx)) == LUA_TTABLE else { return nil }
        let t = lua.rawGet(Int32(idx), field: key)
        defer { lua.pop() }
        if t == LUA_TNIL { return nil }
        return try body(t)
    }

    func optionError(_ idx: Int, _ key: String, _ want: String) -> LuaBindingError {
        argumentError(idx, "a table whose field '\(key)' is \(want), got \(lua.typeName(-1))")
    }

    public func optionBoolean(_ idx: Int, _ key: String) throws -> Bool? {
        try withOption(idx, key) { t in
            guard t == LUA_TBOOLEAN else { throw optionError(idx, key, "a boolean") }
            return lua.bool(-1)
        }
    }

    public func optionNumber(_ idx: Int, _ key: String) throws -> Double? {
        try withOption(idx, key) { t in
            guard t == LUA_TNUMBER, let v = lua.number(-1) else { throw optionError(idx, key, "a number") }
            return v
        }
    }

    public func optionInteger(_ idx: Int, _ key: String) throws -> Int? {
        try withOption(idx, key) { _ in
            guard lua.type(-1) == LUA_TNUMBER, let v = lua.number(-1), v == v.rounded(), Swift.abs(v) < 9e15 else {
                throw optionError(idx, key, "an integer")
            }
            return Int(v)
        }
    }

    public func optionString(_ idx: Int, _ key: String) throws -> String? {
        try withOption(idx, key) { t in
            guard t == LUA_TSTRING, let s = lua.string(-1) else { throw optionError(idx, key, "a string") }
            return s
        }
    }

    public func optionTensor(_ idx: Int, _ key: String) throws -> Tensor? {
        try withOption(idx, key) { _ in
            guard let t = lua.object(-1, metatable: TensorBinding.metatable, as: Tensor.self) else {
                throw optionError(idx, key, "a tensor")
            }
            return t
        }
    }

    /// A list of numbers (a Lua sequence) in field `key`.
    public func optionNumbers(_ idx: Int, _ key: String) throws -> [Double]? {
        try withOption(idx, key) { t in
            guard t == LUA_TTABLE else { throw optionError(idx, key, "a list of numbers") }
            var out: [Double] = []
            for k in 0..<lua.rawLength(-1) {
                _ = lua.rawGet(-1, index: k + 1)
                defer { lua.pop() }
                guard lua.type(-1) == LUA_TNUMBER, let v = lua.number(-1) else {
                    throw argumentError(idx, "a table whose field '\(key)' is a list of numbers, got \(lua.typeName(-1)) at position \(k + 1)")
                }
                out.append(v)
            }
            return out
        }
    }
}

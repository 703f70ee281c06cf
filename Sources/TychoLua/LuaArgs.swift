// LuaArgs.swift: typed, checked reading of a binding's arguments and pushing of its results.
// Messages follow one wording: `tensor.zeros: argument #2 (size) must be a non-negative integer, got -3`.

import CLua
import CLuaShim
import TychoTensor

public struct LuaArgs {
    public let lua: Lua
    public let function: LuaFunction

    init(_ lua: Lua, function: LuaFunction) {
        self.lua = lua
        self.function = function
    }

    public var count: Int { Int(lua.top) }

    /// The LuaState this call runs in (set at creation in the state's extra space).
    public var state: LuaState {
        guard let s = LuaState.owner(of: lua.L) else {
            preconditionFailure("a Tycho binding ran in a state not created by LuaState")  // internal invariant
        }
        return s
    }

    // MARK: errors

    func paramName(_ idx: Int) -> String {
        let ps = function.params
        if idx - 1 < ps.count { return ps[idx - 1].name }
        if let last = ps.last, last.kind == .sizes || last.kind == .rest { return last.name }
        return "?"
    }

    /// `argument #idx (name) <message>`.
    public func argumentError(_ idx: Int, _ message: String) -> LuaBindingError {
        LuaBindingError("argument #\(idx) (\(paramName(idx))) must be \(message)")
    }

    /// A type mismatch: `must be <expected>, got <actual type>`.
    public func typeError(_ idx: Int, _ expected: String) -> LuaBindingError {
        argumentError(idx, "\(expected), got \(typeName(idx))")
    }

    /// A short description of the value at idx for messages: its type, or the value for numbers.
    public func typeName(_ idx: Int) -> String {
        if tensorOrNil(idx) != nil { return "tensor" }
        if lua.type(Int32(idx)) == LUA_TNONE { return "no value" }
        return lua.typeName(Int32(idx))
    }

    func valueText(_ idx: Int) -> String {
        if let n = lua.number(Int32(idx)) { return LuaArgs.formatNumber(n) }
        if let s = lua.string(Int32(idx)) { return "\"\(s.prefix(40))\"" }
        return typeName(idx)
    }

    static func formatNumber(_ n: Double) -> String {
        if n == n.rounded() && Swift.abs(n) < 1e15 { return String(Int(n)) }
        return "\(n)"
    }

    // MARK: probes

    public func isNil(_ idx: Int) -> Bool { lua.isNoneOrNil(Int32(idx)) }

    public func tensorOrNil(_ idx: Int) -> Tensor? { lua.object(Int32(idx), metatable: TensorBinding.metatable, as: Tensor.self) }

    // MARK: typed reads (throwing)

    public func tensor(_ idx: Int) throws -> Tensor {
        if let t = tensorOrNil(idx) { return t }
        if lua.type(Int32(idx)) == LUA_TUSERDATA, lua.isFinalized(Int32(idx)) {
            throw argumentError(idx, "a live tensor, got one that was already collected")
        }
        throw typeError(idx, "a tensor")
    }

    public func number(_ idx: Int) throws -> Double {
        guard let n = lua.number(Int32(idx)) else { throw typeError(idx, "a number") }
        return n
    }

    public func number(_ idx: Int, default d: Double) throws -> Double { isNil(idx) ? d : try number(idx) }

    public func optionalNumber(_ idx: Int) throws -> Double? { isNil(idx) ? nil : try number(idx) }

    /// A float32 value; numbers outside float32's range become infinities as in PyTorch.
    public func float(_ idx: Int) throws -> Float { Float(try number(idx)) }

    public func integer(_ idx: Int) throws -> Int {
        guard let n = lua.number(Int32(idx)) else { throw typeError(idx, "an integer") }
        guard n == n.rounded() else { throw argumentError(idx, "an integer, got \(LuaArgs.formatNumber(n))") }
        guard Swift.abs(n) < 9.0e15 else { throw argumentError(idx, "an integer below 2^53 in magnitude, got \(LuaArgs.formatNumber(n))") }
        return Int(n)
    }

    public func integer(_ idx: Int, default d: Int) throws -> Int { isNil(idx) ? d : try integer(idx) }

    public func optionalInteger(_ idx: Int) throws -> Int? { isNil(idx) ? nil : try integer(idx) }

    public func boolean(_ idx: Int, default d: Bool) throws -> Bool {
        if isNil(idx) { return d }
        guard lua.type(Int32(idx)) == LUA_TBOOLEAN else { throw typeError(idx, "a boolean") }
        return lua.bool(Int32(idx))
    }

    public func string(_ idx: Int) throws -> String {
        guard let s = lua.string(Int32(idx)) else { throw typeError(idx, "a string") }
        return s
    }

    public func string(_ idx: Int, default d: String) throws -> String { isNil(idx) ? d : try string(idx) }

    /// A 1-based dimension of a tensor of rank `rank` (negative counts from the end), returned 0-based.
    /// `extra` allows one past the end (for unsqueeze and stack).
    public func dim(_ idx: Int, rank: Int, extra: Bool = false) throws -> Int {
        let d = try integer(idx)
        let r = rank + (extra ? 1 : 0)
        let zeroBased = d < 0 ? r + d : d - 1
        guard zeroBased >= 0 && zeroBased < r else {
            throw argumentError(idx, "a dimension in 1..\(r), got \(d)")
        }
        return zeroBased
    }

    public func optionalDim(_ idx: Int, rank: Int) throws -> Int? { isNil(idx) ? nil : try dim(idx, rank: rank) }

    /// Sizes from argument `idx` on: numbers, or one table of numbers. `allowInfer` accepts one -1.
    public func sizes(from idx: Int, allowInfer: Bool = false, allowEmpty: Bool = true) throws -> [Int] {
        var out: [Int] = []
        if lua.type(Int32(idx)) == LUA_TTABLE {
            guard count == idx else {
                throw LuaBindingError("sizes must be given as numbers or as one table, not both")
            }
            let n = lua.rawLength(Int32(idx))
            for k in 1...max(n, 1) where k <= n {
                _ = lua.rawGet(Int32(idx), index: k)
                defer { lua.pop() }
                guard let v = lua.number(-1), v == v.rounded(), Swift.abs(v) < 9e15 else {
                    throw argumentError(idx, "a table of integers, got \(lua.typeName(-1)) at position \(k)")
                }
                out.append(Int(v))
            }
        } else {
            var i = idx
            while i <= count {
                out.append(try integer(i))
                i += 1
            }
        }
        for (k, s) in out.enumerated() where s < 0 && !(allowInfer && s == -1) {
            let at = lua.type(Int32(idx)) == LUA_TTABLE ? idx : idx + k
            throw argumentError(at, "a non-negative integer, got \(s)")
        }
        if !allowEmpty && out.isEmpty { throw argumentError(idx, "at least one size, got none") }
        return out
    }

    /// A list of tensors from a table argument.
    public func tensorList(_ idx: Int) throws -> [Tensor] {
        guard lua.type(Int32(idx)) == LUA_TTABLE else { throw typeError(idx, "a table of tensors") }
        var out: [Tensor] = []
        let n = lua.rawLength(Int32(idx))
        for k in 0..<n {
            _ = lua.rawGet(Int32(idx), index: k + 1)
            defer { lua.pop() }
            guard let t = lua.object(-1, metatable: TensorBinding.metatable, as: Tensor.self) else {
                throw argumentError(idx, "a table of tensors, got \(lua.typeName(-1)) at position \(k + 1)")
            }
            out.append(t)
        }
        return out
    }

    /// A tensor argument, or a number turned into a 0-dimensional tensor.
    public func tensorOrScalar(_ idx: Int) throws -> Tensor {
        if let t = tensorOrNil(idx) { return t }
        if let n = lua.number(Int32(idx)) { return Tensor(scalar: Float(n)) }
        throw typeError(idx, "a tensor or number")
    }

    // MARK: results

    @discardableResult public func push(_ t: Tensor) -> Int { lua.push(tensor: t); return 1 }
    @discardableResult public func push(_ v: Double) -> Int { lua.push(v); return 1 }
    @discardableResult public func push(_ v: Float) -> Int { lua.push(Double(v)); return 1 }
    @discardableResult public func push(_ v: Int) -> Int { lua.push(v); return 1 }
    @discardableResult public func push(_ v: Bool) -> Int { lua.push(v); return 1 }
    @discardableResult public func push(_ v: String) -> Int { lua.push(v); return 1 }
}

// Lua.swift: the primitives of Tycho's bridge, grouped by data direction as lapi.c is.
//
// `Lua` wraps a `lua_State *` without owning it. Every primitive here is non-raising: it uses probes
// (`lua_type`, `lua_tonumberx`, ...), raw table access, and `lua_pcall` for anything that runs Lua code, so
// no longjmp can cross a Swift frame. (Allocation failures abort in the C allocator instead of raising.)

import CLua
import CLuaShim

public struct Lua {
    public let L: OpaquePointer

    public init(_ L: OpaquePointer) { self.L = L }

    public var top: Int32 {
        get { lua_gettop(L) }
        nonmutating set { lua_settop(L, newValue) }
    }

    public func absolute(_ idx: Int32) -> Int32 { lua_absindex(L, idx) }
    public func pop(_ n: Int32 = 1) { tycho_pop(L, n) }
    public func ensureStack(_ n: Int32) -> Bool { lua_checkstack(L, n) != 0 }

    // MARK: push (Swift -> stack)

    public func pushNil() { lua_pushnil(L) }
    public func push(_ v: Bool) { lua_pushboolean(L, v ? 1 : 0) }
    public func push(_ v: Double) { lua_pushnumber(L, v) }
    public func push(_ v: Int) { lua_pushinteger(L, lua_Integer(v)) }
    public func push(_ s: String) {
        var s = s
        s.withUTF8 { buf in
            buf.withMemoryRebound(to: CChar.self) { c in _ = lua_pushlstring(L, c.baseAddress, c.count) }
        }
    }
    public func pushValue(_ idx: Int32) { lua_pushvalue(L, idx) }
    public func newTable(arrayCount: Int32 = 0, recordCount: Int32 = 0) { lua_createtable(L, arrayCount, recordCount) }
    public func pushGlobals() { lua_rawgeti(L, tycho_registryindex(), lua_Integer(LUA_RIDX_GLOBALS)) }
    /// Pushes a Swift binding as a Lua function.
    public func push(_ f: LuaFunction) {
        tycho_pushbinding(L, Unmanaged.passUnretained(f).toOpaque())
    }

    // MARK: check (stack -> Swift), all non-raising

    public func type(_ idx: Int32) -> Int32 { lua_type(L, idx) }
    public func isNoneOrNil(_ idx: Int32) -> Bool { type(idx) <= LUA_TNIL }
    public func typeName(_ idx: Int32) -> String { String(cString: tycho_typename(L, idx)) }

    public func number(_ idx: Int32) -> Double? {
        var ok: Int32 = 0
        let v = lua_tonumberx(L, idx, &ok)
        return type(idx) == LUA_TNUMBER && ok != 0 ? v : nil
    }
    public func integer(_ idx: Int32) -> Int? {
        guard type(idx) == LUA_TNUMBER else { return nil }
        var ok: Int32 = 0
        let v = lua_tointegerx(L, idx, &ok)
        return ok != 0 ? Int(v) : nil
    }
    public func isInteger(_ idx: Int32) -> Bool { lua_isinteger(L, idx) != 0 }
    public func bool(_ idx: Int32) -> Bool { lua_toboolean(L, idx) != 0 }
    /// The string at `idx`, only when it is a string (numbers are not converted in place).
    public func string(_ idx: Int32) -> String? {
        guard type(idx) == LUA_TSTRING else { return nil }
        var len = 0
        guard let p = lua_tolstring(L, idx, &len) else { return nil }
        return String(decoding: UnsafeRawBufferPointer(start: p, count: len), as: UTF8.self)
    }

    // MARK: raw tables

    public func rawGet(_ table: Int32, field: String) -> Int32 {
        let t = absolute(table)
        push(field)
        return lua_rawget(L, t)
    }
    public func rawSet(_ table: Int32, field: String) {  // value on top
        let t = absolute(table)
        push(field)
        tycho_insert(L, -2)
        lua_rawset(L, t)
    }
    public func rawGet(_ table: Int32, index: Int) -> Int32 { lua_rawgeti(L, table, lua_Integer(index)) }
    public func rawSet(_ table: Int32, index: Int) { lua_rawseti(L, table, lua_Integer(index)) }
    public func rawLength(_ idx: Int32) -> Int { Int(lua_rawlen(L, idx)) }

    /// Iterates a table with `lua_next`; `body` sees the key at -2 and the value at -1 and must leave the
    /// stack as it found it. Return false from `body` to stop early.
    public func forEach(_ table: Int32, _ body: () -> Bool) {
        let t = absolute(table)
        pushNil()
        while lua_next(L, t) != 0 {
            let go = body()
            pop()
            if !go { pop(); return }
        }
    }

    public func getMetatable(_ idx: Int32) -> Bool { lua_getmetatable(L, idx) != 0 }
    public func pushRegistry() { lua_pushvalue(L, tycho_registryindex()) }

    // MARK: call (run Lua), always protected

    /// Calls the function below `nargs` arguments with a traceback handler. Returns nil on success (results
    /// on the stack), or the error message with its traceback (nothing left on the stack).
    public func protectedCall(nargs: Int32, nresults: Int32 = LUA_MULTRET, traceback: Bool = true) -> String? {
        let base = top - nargs
        if traceback {
            lua_pushcclosure(L, tycho_msghandler, 0)
            tycho_insert(L, base)
        }
        let status = tycho_pcall(L, nargs, nresults, traceback ? base : 0)
        if traceback { tycho_remove(L, base) }
        if status != LUA_OK {
            let msg = string(-1) ?? "(error object is a \(typeName(-1)) value)"
            pop()
            return msg
        }
        return nil
    }

    /// `tostring(value)` in protected mode (runs `__tostring`).
    public func toDisplayString(_ idx: Int32) -> String {
        if tycho_ptolstring(L, idx) == LUA_OK {
            let s = string(-1) ?? ""
            pop()
            return s
        }
        let msg = string(-1) ?? "?"
        pop()
        return "<error in __tostring: \(msg)>"
    }
}

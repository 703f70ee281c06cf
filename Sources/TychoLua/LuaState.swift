// LuaState.swift: one Lua 5.4 state with Tycho's modules loaded.
//
// Owns the `lua_State`, opens the standard libraries, registers modules and userdata types through the
// binding tables, and runs code in protected mode. Each LuaState is independent (tests make one each).

import CLua
import CLuaShim
import TychoTensor

public final class LuaState {
    public let lua: Lua
    public private(set) var modules: [String: LuaModule] = [:]
    public private(set) var types: [String: [LuaFunction]] = [:]
    /// This state's random generator (`tensor.manual_seed`, `rand`, `randn`, `randint`): states are
    /// independent, so tests and kernels in one process never perturb each other's sequences.
    public var generator = RandomGenerator(seed: LuaState.defaultSeed)
    public static let defaultSeed: UInt64 = 0x7479_6368_6f
    public static let version = "0.1.0"

    private static let setup: Void = { tycho_set_dispatcher(luaDispatcher) }()

    public init() throws {
        _ = LuaState.setup
        guard let L = tycho_newstate() else { throw LuaBindingError("cannot create a Lua state") }
        lua = Lua(L)
        tycho_setextra(L, Unmanaged.passUnretained(self).toOpaque())
        luaL_openlibs(L)
        registerType(metatable: TensorBinding.metatable, methods: TensorBinding.methods,
                     metamethods: TensorBinding.metamethods)
        register(TensorBinding.module)
        register(SysBinding.module)
        TokBinding.register(in: self)
        NNBinding.register(in: self)
        DataBinding.register(in: self)
        PreferenceBinding.register(in: self)  // tycho.Preferences; data.preferences/audit join DataBinding.module
        OptimBinding.register(in: self)
        RunBinding.register(in: self)
        CkptBinding.register(in: self)
        InferBinding.register(in: self)
        DPOTrainerBinding.register(in: self)  // tycho.DPOTrainer; dpo.trainer joins DPOBinding.module
        EvalBinding.register(in: self)  // eval.preferences is DPOTrainerBinding's
        RFTTrainerBinding.register(in: self)  // tycho.RFTTrainer; rft.trainer joins RFTBinding.module
        RFTBinding.register(in: self)  // rft (losses, trainer) and rft.grader (tycho.Grader)
        register(DPOBinding.module)  // the losses and PreferenceBinding.dpoFunctions; the trainer's join them
        register(HelpBinding.module, global: false)
        for f in HelpBinding.module.functions {
            lua.pushGlobals(); lua.push(f); lua.rawSet(-2, field: f.name); lua.pop()
        }
        lua.pushGlobals()
        lua.push("Tycho \(LuaState.version) (\(LuaState.luaVersion))")
        lua.rawSet(-2, field: "_TYCHO")
        lua.pop()
    }

    deinit { lua_close(lua.L) }

    /// The LuaState that owns `L` (any thread of it).
    static func owner(of L: OpaquePointer) -> LuaState? {
        guard let p = tycho_getextra(L) else { return nil }
        return Unmanaged<LuaState>.fromOpaque(p).takeUnretainedValue()
    }

    public static var luaVersion: String { "Lua 5.4" }

    // MARK: registration

    /// Makes `module` loadable with `require` and (when `global`) a global table.
    public func register(_ module: LuaModule, global: Bool = true) {
        modules[module.name] = module
        lua.newTable(recordCount: Int32(module.functions.count))
        for f in module.functions {
            lua.push(f)
            lua.rawSet(-2, field: f.name)
        }
        // package.loaded[name] = table
        lua.pushRegistry()
        _ = lua.rawGet(-1, field: "_LOADED")
        lua.pushValue(-3)
        lua.rawSet(-2, field: module.name)
        lua.pop(2)
        // registry["tycho.modules"][table] = name, for help()
        lua.pushRegistry()
        if lua.rawGet(-1, field: "tycho.modules") != LUA_TTABLE {
            lua.pop()
            lua.newTable()
            lua.pushValue(-1)
            lua.rawSet(-3, field: "tycho.modules")
        }
        lua.pushValue(-3)
        lua.push(module.name)
        lua_rawset(lua.L, -3)
        lua.pop(2)
        if global {
            lua.pushGlobals()
            lua.pushValue(-2)
            lua.rawSet(-2, field: module.name)
            lua.pop()
        }
        lua.pop()
    }

    /// Creates the metatable `metatable` with `methods` (reachable through `__index` and listed under
    /// `__methods` for completion) and the given metamethods.
    public func registerType(metatable: String, methods: [LuaFunction], metamethods: [String: LuaFunction]) {
        types[metatable] = methods
        _ = luaL_newmetatable(lua.L, metatable)
        lua.newTable(recordCount: Int32(methods.count))
        for f in methods {
            lua.push(f)
            lua.rawSet(-2, field: f.name)
        }
        lua.rawSet(-2, field: "__methods")
        for (name, f) in metamethods {
            lua.push(f)
            lua.rawSet(-2, field: name)
        }
        lua.pop()
    }

    // MARK: running code

    /// Compiles `code`; on success pushes the chunk and returns nil, else returns the message.
    public func load(_ code: String, chunkName: String) -> String? {
        var code = code
        let status = code.withUTF8 { buf in
            buf.withMemoryRebound(to: CChar.self) { c in
                luaL_loadbufferx(lua.L, c.baseAddress, c.count, chunkName, nil)
            }
        }
        if status != LUA_OK {
            let msg = lua.string(-1) ?? "syntax error"
            lua.pop()
            return msg
        }
        return nil
    }

    /// Runs `code` and discards its results. Returns the error message with traceback, or nil.
    @discardableResult
    public func execute(_ code: String, chunkName: String = "=(tycho)") -> String? {
        if let e = load(code, chunkName: chunkName) { return e }
        return lua.protectedCall(nargs: 0, nresults: 0)
    }

    /// Runs a Lua file. Returns the error message with traceback, or nil.
    @discardableResult
    public func executeFile(_ path: String) -> String? {
        let status = luaL_loadfilex(lua.L, path, nil)
        if status != LUA_OK {
            let msg = lua.string(-1) ?? "cannot load \(path)"
            lua.pop()
            return msg
        }
        return lua.protectedCall(nargs: 0, nresults: 0)
    }

    /// Runs a full collection (tests and the REPL's `collectgarbage` use Lua's own).
    public func collectGarbage() { _ = tycho_gc_collect(lua.L) }
}

extension LuaState {
    /// The global `name` when it is a string.
    public func globalString(_ name: String) -> String? {
        lua.pushGlobals()
        _ = lua.rawGet(-1, field: name)
        let s = lua.string(-1)
        lua.pop(2)
        return s
    }
}

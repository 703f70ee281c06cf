// REPLBinding.swift: the REPL's own Lua functions (trepl's): who(), import(pkg), setprintlevel(n),
// no_colors(). They are globals in the REPL only, declared like every other binding so help() knows them.

import CLua
import CLuaShim
import Foundation
import TychoLua

/// Settings the REPL's functions change; one REPL per process.
struct REPLSettings {
    var printLevel = 3
    var colors = false
    var startupGlobals: Set<String> = []
}

nonisolated(unsafe) var replSettings = REPLSettings()

enum REPLBinding {
    static let module = LuaModule(name: "repl", doc: "The REPL's helpers (globals in the REPL).", functions: [
        LuaFunction("who", doc: "Lists the globals you defined in this session, with their types.") { a in
            var names: [(String, String)] = []
            a.lua.pushGlobals()
            a.lua.forEach(-1) {
                if let k = a.lua.string(-2), !replSettings.startupGlobals.contains(k) { names.append((k, a.lua.typeName(-1))) }
                return true
            }
            a.lua.pop()
            let width = (names.map { $0.0.count }.max() ?? 0) + 2
            let text = names.sorted { $0.0 < $1.0 }
                .map { $0.0.padding(toLength: width, withPad: " ", startingAt: 0) + $0.1 }.joined(separator: "\n")
            print(text.isEmpty ? "(no globals defined)" : text)
            return 0
        },
        LuaFunction("import", [.required("module", .any)], doc: "Copies the fields of a module (a table, or a name to require) into the globals.") { a in
            if a.lua.type(1) == LUA_TSTRING {
                a.lua.pushGlobals()
                _ = a.lua.rawGet(-1, field: "require")
                a.lua.pushValue(1)
                if let e = a.lua.protectedCall(nargs: 1, nresults: 1, traceback: false) { throw LuaBindingError(e) }
                tycho_replace(a.lua.L, 1)
                a.lua.pop()
            }
            guard a.lua.type(1) == LUA_TTABLE else { throw a.typeError(1, "a table or a module name") }
            a.lua.pushGlobals()
            let g = a.lua.absolute(-1)
            var count = 0
            a.lua.forEach(1) {
                if a.lua.type(-2) == LUA_TSTRING {
                    a.lua.pushValue(-2); a.lua.pushValue(-2)
                    lua_rawset(a.lua.L, g)
                    count += 1
                }
                return true
            }
            a.lua.pop()
            return a.push(count)
        },
        LuaFunction("setprintlevel", [.required("depth", .integer)], doc: "How deep the REPL prints nested tables (default 3; 0 prints only the top level).") { a in
            let n = try a.integer(1)
            guard n >= 0 && n <= 100 else { throw a.argumentError(1, "an integer in 0..100, got \(n)") }
            replSettings.printLevel = n
            return 0
        },
        LuaFunction("no_colors", doc: "Turns off colored printing in the REPL (also: NO_COLOR in the environment).") { _ in
            replSettings.colors = false
            return 0
        },
    ])
}

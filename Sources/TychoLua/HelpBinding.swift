// HelpBinding.swift: `help(x)`: the doc of any built-in function, module or tensor, from the binding tables.

import CLua
import CLuaShim
import TychoTensor

enum HelpBinding {
    static let module = LuaModule(name: "help", doc: "Help on Tycho's functions and modules.", functions: [
        LuaFunction("help", [.optional("topic", .any)], doc: "help(): overview; help(f) or help(\"tensor.zeros\"): a function; help(tensor): a module.") { a in
            guard let state = LuaState.owner(of: a.lua.L) else { return 0 }
            let text = try state.helpText(for: a)
            a.lua.pushGlobals()
            _ = a.lua.rawGet(-1, field: "print")
            a.lua.push(text)
            if let e = a.lua.protectedCall(nargs: 1, nresults: 0, traceback: false) { throw LuaBindingError(e) }
            return 0
        },
    ])
}

extension LuaState {
    /// The overview shown by `help()` and `tycho help`.
    public var overview: String {
        var lines = ["Tycho \(LuaState.version): a Lua 5.4 workbench for preference-optimization research.",
                     "Modules (help(name) lists their functions):"]
        for name in modules.keys.sorted() where name != "help" {
            lines.append("  \(name.padding(toLength: 10, withPad: " ", startingAt: 0)) \(modules[name]?.doc ?? "")")
        }
        lines.append("help(f) shows a function, e.g. help(tensor.zeros) or help(\"tensor.zeros\").")
        return lines.joined(separator: "\n")
    }

    /// Help text for a topic name such as "tensor" or "tensor.zeros" (nil when unknown).
    public func helpText(topic: String) -> String? {
        if topic.isEmpty || topic == "help" { return overview }
        if let m = modules[topic] { return moduleHelp(m) }
        let parts = topic.split(separator: ".", maxSplits: 1).map(String.init)
        if parts.count == 2, let m = modules[parts[0]], let f = m.function(named: parts[1]) { return f.helpText }
        if let dot = topic.lastIndex(of: "."), let m = modules[String(topic[..<dot])],  // sub-modules: rft.grader.lua
           let f = m.function(named: String(topic[topic.index(after: dot)...])) { return f.helpText }
        for (_, methods) in types {
            if let f = methods.first(where: { $0.name == topic || "tensor:\($0.name)" == topic }) { return f.helpText }
        }
        return nil
    }

    func moduleHelp(_ m: LuaModule) -> String {
        var lines = ["\(m.name): \(m.doc)"]
        for f in m.functions.sorted(by: { $0.name < $1.name }) {
            let first = f.doc.split(separator: "\n").first.map(String.init) ?? ""
            lines.append("  \(f.signature)\n      \(first)")
        }
        return lines.joined(separator: "\n")
    }

    fileprivate func helpText(for a: LuaArgs) throws -> String {
        let lua = a.lua
        if a.isNil(1) { return overview }
        if let f = tycho_tobinding(lua.L, 1) {
            return Unmanaged<LuaFunction>.fromOpaque(f).takeUnretainedValue().helpText
        }
        if let s = lua.string(1) {
            guard let text = helpText(topic: s) else { throw LuaBindingError("no help for \"\(s)\"") }
            return text
        }
        if a.tensorOrNil(1) != nil, let m = modules["tensor"] { return moduleHelp(m) }
        if lua.type(1) == LUA_TTABLE {
            lua.pushRegistry()
            if lua.rawGet(-1, field: "tycho.modules") == LUA_TTABLE {
                lua.pushValue(1)
                lua_rawget(lua.L, -2)
                let name = lua.string(-1)
                lua.pop(3)
                if let name, let m = modules[name] { return moduleHelp(m) }
            } else {
                lua.pop(2)
            }
        }
        throw LuaBindingError("no help for this \(a.typeName(1)) value (help() lists the modules)")
    }
}

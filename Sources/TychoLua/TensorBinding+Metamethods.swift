// TensorBinding+Metamethods.swift: `t[i]`, `t[i] = v`, `#t`, `tostring(t)`, arithmetic operators, `__gc`.

import CLua
import CLuaShim
import TychoTensor

extension TensorBinding {
    /// The 0-based position of a 1-based (or negative, from the end) index into dimension 1.
    static func firstDimIndex(_ a: LuaArgs, _ t: Tensor) throws -> Int {
        guard t.rank > 0 else { throw LuaBindingError("cannot index a 0-dimensional tensor; use item()") }
        let i = try a.integer(2)
        let z = i < 0 ? t.shape[0] + i : i - 1
        guard z >= 0 && z < t.shape[0] else { throw a.argumentError(2, "an index in 1..\(t.shape[0]), got \(i)") }
        return z
    }

    static func operatorFunction(_ name: String, _ method: String) -> LuaFunction {
        let target = methods.first { $0.name == method }
        return LuaFunction(name, [.required("a", .tensorOrNumber), .required("b", .tensorOrNumber)], doc: target?.doc ?? method) { a in
            guard let target else { throw LuaBindingError("no method \(method)") }
            return try target.body(a)
        }
    }

    /// Metamethods belong to the module, so their errors read `tensor.__add: ...` like every other.
    static func inModule(_ table: [String: LuaFunction]) -> [String: LuaFunction] {
        for f in table.values { f.module = "tensor" }
        return table
    }

    static let metamethods: [String: LuaFunction] = inModule([
        "__index": LuaFunction("__index", [.required("self", .tensor), .required("key", .any)],
                               doc: "t[i] on the first dimension (a number for 1-D tensors, else a view); t.method.") { a in
            let t = try a.tensor(1)
            if a.lua.type(2) == LUA_TNUMBER {
                let z = try firstDimIndex(a, t)
                let s = try t.select(0, z)
                return s.rank == 0 ? a.push(try s.item()) : a.push(s)
            }
            if a.lua.type(2) == LUA_TSTRING, a.lua.string(2) == "grad" {
                if let g = t.grad { return a.push(g) }
                a.lua.pushNil()
                return 1
            }
            // Methods: the metatable's __methods table.
            guard a.lua.getMetatable(1) else { a.lua.pushNil(); return 1 }
            _ = a.lua.rawGet(-1, field: "__methods")
            a.lua.pushValue(2)
            lua_rawget(a.lua.L, -2)
            return 1
        },
        "__newindex": LuaFunction("__newindex", [.required("self", .tensor), .required("index", .integer), .required("value", .tensorOrNumber)],
                                  doc: "t[i] = v sets the slice at index i of the first dimension to a number or a tensor.") { a in
            let t = try a.tensor(1)
            let z = try firstDimIndex(a, t)
            try t.checkInPlace("t[i] = v")
            let s = try GradMode.with(enabled: false) { try t.select(0, z) }
            if let n = a.lua.number(3) { s.fill(Float(n)) } else { try s.copy(from: a.tensor(3)) }
            return 0
        },
        "__len": LuaFunction("__len", [.required("self", .tensor)], doc: "#t: the size of the first dimension.") { a in
            let t = try a.tensor(1)
            return a.push(t.rank == 0 ? 0 : t.shape[0])
        },
        "__tostring": LuaFunction("__tostring", [.required("self", .tensor)], doc: "Torch-style text of the tensor.") { a in
            a.push(try a.tensor(1).format())
        },
        "__gc": LuaFunction("__gc", [.optional("self", .any)], doc: "Releases the tensor.") { a in
            a.lua.releaseObject(1, metatable: metatable)
            return 0
        },
        "__unm": LuaFunction("__unm", [.required("self", .tensor), .optional("self2", .any)], doc: "-t.") { a in
            a.push(try a.tensor(1).negated())
        },
        "__add": operatorFunction("__add", "add"),
        "__sub": operatorFunction("__sub", "sub"),
        "__mul": operatorFunction("__mul", "mul"),
        "__div": operatorFunction("__div", "div"),
        "__pow": operatorFunction("__pow", "pow"),
    ])
}

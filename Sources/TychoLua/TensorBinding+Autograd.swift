// TensorBinding+Autograd.swift: `t:requires_grad(true)`, `t:backward()`, `t.grad`, `t:zero_grad()`,
// `t:detach()`, `tensor.no_grad(fn)`. The engine is TychoTensor's Autograd.swift.

import CLua
import CLuaShim
import TychoTensor

extension TensorBinding {
    static let autogradMethods: [LuaFunction] = [
        method("requires_grad", [.optional("flag", .boolean)],
               doc: "With a flag: marks this leaf tensor as needing gradients (or not) and returns self. Without: whether it requires grad.") { a, t in
            if a.isNil(2) { return a.push(t.requiresGrad) }
            try t.setRequiresGrad(a.boolean(2, default: true))
            a.lua.pushValue(1)
            return 1
        },
        method("backward", [.optional("grad", .tensor), .optional("options", .table)],
               doc: "Computes gradients of this tensor with respect to every leaf that requires grad and adds them to their .grad. grad (this tensor's size) is needed unless the tensor has one element. Options: retain_graph=false (keep the graph for another backward).") { a, t in
            let grad = a.isNil(2) ? nil : try a.tensor(2)
            var retain = false
            if !a.isNil(3) {
                try a.checkOptions(3, allowed: ["retain_graph"])
                retain = try a.optionBoolean(3, "retain_graph") ?? false
            }
            try t.backward(grad, retainGraph: retain)
            return 0
        },
        method("zero_grad", doc: "Drops this tensor's accumulated gradient (t.grad becomes nil); returns self.") { a, t in
            t.grad = nil
            a.lua.pushValue(1)
            return 1
        },
        method("detach", doc: "A tensor sharing this one's elements, outside the autograd graph.") { a, t in
            a.push(t.detach())
        },
        method("is_leaf", doc: "True unless the tensor was computed by an operation recorded for autograd.") { a, t in
            a.push(t.isLeaf)
        },
    ]

    /// `tensor.no_grad(fn, ...)`: calls fn with recording off and returns its results; errors pass through.
    static let noGrad = LuaFunction("no_grad", [.required("fn", .function), .optional("...", .rest)],
                                    doc: "Calls fn(...) with autograd recording turned off and returns its results (for evaluation and in-place parameter updates).") { a in
        let lua = a.lua
        let n = lua.top
        let base = 1
        let status = GradMode.with(enabled: false) { tycho_pcall(lua.L, n - 1, LUA_MULTRET, 0) }
        if status != LUA_OK { throw LuaPendingError() }
        return Int(lua.top) - (base - 1)
    }

    /// `tensor.enable_grad(fn, ...)`: the opposite of no_grad, for a part that must record inside it.
    static let enableGrad = LuaFunction("enable_grad", [.required("fn", .function), .optional("...", .rest)],
                                        doc: "Calls fn(...) with autograd recording turned on (inside no_grad) and returns its results.") { a in
        let lua = a.lua
        let n = lua.top
        let status = GradMode.with(enabled: true) { tycho_pcall(lua.L, n - 1, LUA_MULTRET, 0) }
        if status != LUA_OK { throw LuaPendingError() }
        return Int(lua.top)
    }

    static let gradEnabled = LuaFunction("is_grad_enabled", [], doc: "Whether operations are recorded for autograd right now.") { a in
        a.push(GradMode.isEnabled)
    }
}

// BindingTests.swift: the bridge's guarantees, tested from Swift: errors become Lua errors with the
// function's name, every declared function has help text, finalised objects are refused, states are
// independent, and pretty-printing and completion read the state without disturbing its stack.

import Testing
import TychoLua
import TychoTensor

@Suite struct BindingTests {
    @Test func everyFunctionIsDocumented() throws {
        let state = try LuaState()
        for (name, module) in state.modules {
            #expect(!module.doc.isEmpty, "module \(name)")
            for f in module.functions {
                #expect(!f.doc.isEmpty, "\(f.qualifiedName) has no doc")
                #expect(f.helpText.hasPrefix(f.qualifiedName + "("), "\(f.helpText)")
                #expect(state.helpText(topic: f.qualifiedName) == f.helpText)
            }
        }
        #expect(state.helpText(topic: "no.such") == nil)
    }

    @Test func errorsNameTheFunctionAndKeepTheStateUsable() throws {
        let state = try LuaState()
        let err = try #require(state.execute("tensor.narrow(tensor.zeros(3), 1, 2, 5)"))
        #expect(err.contains("tensor.narrow: argument #4 (length) must be a length in 0..2, got 5"))
        let typeErr = try #require(state.execute("tensor.zeros(2):sum('x')"))
        #expect(typeErr.contains("tensor.sum: argument #2 (dim) must be an integer, got string"))
        #expect(state.execute("x = tensor.ones(2):sum():item()") == nil)
        #expect(state.execute("assert(x == 2)") == nil)
    }

    @Test func finalisedTensorIsAnErrorNotACrash() throws {
        let state = try LuaState()
        let err = try #require(state.execute("""
            local t = tensor.ones(3)
            local gc = getmetatable(t).__gc
            gc(t); gc(t)  -- twice: the second is a no-op
            return t:sum()
            """))
        #expect(err.contains("already collected") || err.contains("must be a tensor"), "\(err)")
    }

    @Test func statesAreIndependent() throws {
        let a = try LuaState(), b = try LuaState()
        #expect(a.execute("shared = 1") == nil)
        #expect(b.execute("assert(shared == nil)") == nil)
    }

    @Test func randomGeneratorsArePerStateAndSeeded() throws {
        let a = try LuaState(), b = try LuaState()
        let draw = "tensor.manual_seed(42); local x = tensor.randn(5):totable(); r = table.concat(x, ',')"
        #expect(a.execute(draw) == nil)
        #expect(b.execute("tensor.manual_seed(42); tensor.rand(100)") == nil)  // b is consumed ...
        #expect(a.execute("tensor.rand(1000)") == nil)                        // ... and so is a
        #expect(b.execute(draw) == nil)                                         // b reseeds: same draw as a's
        let ra = try #require(a.globalString("r")), rb = try #require(b.globalString("r"))
        #expect(ra == rb)
    }

    @Test func prettyPrintsNestedBoundedAndCyclicTables() throws {
        let state = try LuaState()
        #expect(state.load("local t = {1, 'two', k = {deep = {deeper = {deepest = {}}}}}; t.me = t; return t", chunkName: "=t") == nil)
        #expect(state.lua.protectedCall(nargs: 0, nresults: 1) == nil)
        let top = state.lua.top
        let text = state.pretty(-1)
        #expect(state.lua.top == top)
        #expect(text == "{1, \"two\", k = {deep = {deeper = {...}}}, me = <cycle>}")
        state.lua.pop()
    }

    @Test func completesModulesFieldsAndMethods() throws {
        let state = try LuaState()
        let top = state.lua.top
        #expect(state.completions(for: "tensor.ra") == ["tensor.rand(", "tensor.randint(", "tensor.randn("])
        #expect(state.completions(for: "tens") == ["tensor."])
        #expect(state.execute("x = tensor.zeros(2)") == nil)
        #expect(state.completions(for: "x:resh") == ["x:reshape("])
        #expect(state.completions(for: "x:su").contains("x:sum("))
        #expect(state.completions(for: "whi") == ["while"])
        #expect(state.completions(for: "nosuch.x").isEmpty)
        #expect(state.lua.top == top)
    }
}

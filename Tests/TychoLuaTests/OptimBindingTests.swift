// OptimBindingTests.swift: the `optim` module's declarations reach help() and completion, its userdata types are
// registered, and an optimizer built in Lua is the TychoTrain object Swift sees.

import Testing
import TychoLua
import TychoTensor

@Suite struct OptimBindingTests {
    @Test func helpComesFromTheDeclarations() throws {
        let state = try LuaState()
        let adamw = try #require(state.helpText(topic: "optim.adamw"))
        #expect(adamw.hasPrefix("optim.adamw(params, [options={lr=1e-3, betas={0.9, 0.999}, eps=1e-8, weight_decay=0.01}])"))
        #expect(try #require(state.helpText(topic: "optim.step")).hasPrefix("optim.step(self)"))
        #expect(try #require(state.helpText(topic: "optim.apply")).hasPrefix("optim.apply(self, optimizer, step)"))
        let overview = try #require(state.helpText(topic: "optim"))
        for name in ["sgd", "adamw", "clip_grad_norm", "schedule", "step", "zero_grad", "lr", "set_lr", "state",
                     "load_state", "lr_at", "apply"] {
            #expect(overview.contains("optim.\(name)("), "help(optim) lists \(name)")
        }
    }

    @Test func completesModuleFunctionsAndMethods() throws {
        let state = try LuaState()
        let top = state.lua.top
        #expect(state.completions(for: "optim.ad") == ["optim.adamw("])
        #expect(state.execute("""
            w = tensor.zeros(3):requires_grad(true)
            opt = optim.adamw({w})
            s = optim.schedule{kind = "cosine", lr = 1, total = 10}
            """) == nil)
        #expect(state.completions(for: "opt:ze") == ["opt:zero_grad("])
        #expect(state.completions(for: "opt:s") == ["opt:set_lr(", "opt:state(", "opt:step("])
        #expect(state.completions(for: "s:") == ["s:apply(", "s:lr_at(", "s:scale(", "s:set_scale("])
        #expect(state.completions(for: "op") == ["opt:", "optim."])
        #expect(state.lua.top == top)
    }

    @Test func aTrainingLoopRunsFromLua() throws {
        let state = try LuaState()
        let err = state.execute("""
            tensor.manual_seed(1)
            local x = tensor.randn(64, 3)
            local y = x:matmul(tensor.new{{1}, {-2}, {0.5}})
            local w = tensor.zeros(3, 1):requires_grad(true)
            local opt = optim.adamw({w}, {lr = 0.05, weight_decay = 0})
            local s = optim.schedule{kind = "linear", lr = 0.05, warmup = 5, total = 200}
            local first, last
            for step = 1, 200 do
              s:apply(opt, step)
              opt:zero_grad()
              local loss = ((x:matmul(w) - y) ^ 2):mean()
              loss:backward()
              optim.clip_grad_norm({w}, 1.0)
              opt:step()
              first = first or loss:item()
              last = loss:item()
            end
            assert(last < first * 0.01, "loss went from " .. first .. " to " .. last)
            """)
        #expect(err == nil, "\(err ?? "")")
    }
}

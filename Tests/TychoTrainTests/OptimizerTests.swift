// OptimizerTests.swift: what SGD and AdamW share (Optimizer.swift): parameter checks, nil grads, zero_grad,
// storage versions, learning rates, the state round trip with bitwise continuation, refused states, and results
// that do not depend on the thread count.

import Testing
import TychoTensor
@testable import TychoTrain

@Suite struct OptimizerTests {
    @Test func parametersAreChecked() throws {
        let p = param([3], seed: 1)
        expectError("got an empty parameter list") { try SGD([]) }
        expectError("parameter 1 does not require grad") { try SGD([T([1, 2])]) }
        expectError("parameter 2 is the same tensor as parameter 1") { try AdamW([p, p]) }
        expectError("parameter 1 is not a leaf") {
            try AdamW([try p.multiplying(2)])
        }
        let strided = try T([2, 3], [1, 2, 3, 4, 5, 6]).transpose(0, 1)
        try strided.setRequiresGrad(true)
        expectError("parameter 1 is not contiguous") { try SGD([strided]) }
        let alias = p.detach()
        try alias.setRequiresGrad(true)
        expectError("parameters 1 and 2 share memory") { try SGD([p, alias]) }
        expectError("parameter group 2 has no parameters") {
            try SGD(groups: [([p], SGD.Options()), ([], SGD.Options())])
        }
    }

    @Test func gradsOfTheWrongSizeAreRefusedBeforeAnyUpdate() throws {
        let a = param([3], seed: 1), b = param([2], seed: 2)
        let opt = try AdamW([a, b])
        let before = values(a)
        a.grad = T([1, 1, 1])
        b.grad = T([1, 1, 1])
        expectError("the grad of parameter 2 has size 3 but the parameter has size 2") { try opt.step() }
        #expect(values(a) == before, "a failed step changes nothing")
        #expect(opt.steps == 0)
    }

    @Test func nilGradsAreSkippedAndZeroGradClears() throws {
        let a = param([3], seed: 1), b = param([2], seed: 2)
        let opt = try SGD([a, b], SGD.Options(lr: 1, momentum: 0.5))
        let bBefore = values(b)
        a.grad = T([1, 1, 1])
        try opt.step()
        #expect(values(b) == bBefore)
        #expect(opt.momentumBuffers[1] == nil, "no state for a parameter that never had a grad")
        opt.zeroGrad()
        #expect(a.grad == nil && b.grad == nil)
    }

    @Test func stepsBumpStorageVersions() throws {
        let a = param([4], seed: 1)
        let opt = try AdamW([a])
        let y = try a.multiplying(a).sum()   // saves a
        a.grad = T([1, 2, 3, 4])
        let v = a.storage.version
        try opt.step()
        #expect(a.storage.version != v)
        expectError("modified in place") { try y.backward() }
    }

    @Test func learningRatesPerGroup() throws {
        let a = param([1], seed: 1), b = param([1], seed: 2)
        let opt = try SGD(groups: [([a], SGD.Options(lr: 0.1)), ([b], SGD.Options(lr: 0.2))])
        #expect(opt.learningRate(group: 1) == 0.2)
        try opt.setLearningRate(0.3, group: 0)
        #expect(opt.learningRate(group: 0) == 0.3 && opt.learningRate(group: 1) == 0.2)
        try opt.setLearningRate(0.5)
        #expect(opt.learningRate(group: 0) == 0.5 && opt.learningRate(group: 1) == 0.5)
        expectError("lr must be a non-negative number, got -1") { try opt.setLearningRate(-1) }
        expectError("no parameter group 3") { try opt.setLearningRate(1, group: 2) }
    }

    /// Trains `opt` over `params` for steps `range` with grads seeded by the step (parameter 1 skipped on step 2).
    private func train(_ opt: Optimizer, _ params: [Tensor], _ range: ClosedRange<Int>) throws {
        for k in range {
            setGrads(params, seed: UInt64(1000 + k), skip: k == 2 ? [1] : [])
            try opt.step()
        }
    }

    private func copies(_ params: [Tensor]) throws -> [Tensor] {
        try params.map { p in
            let c = try p.detach().clone()
            try c.setRequiresGrad(true)
            return c
        }
    }

    @Test(arguments: ["sgd", "adamw"])
    func stateRoundTripContinuesBitwise(_ kind: String) throws {
        func make(_ ps: [Tensor], _ lr: Float) throws -> Optimizer {
            kind == "sgd"
                ? try SGD(groups: [([ps[0], ps[2]], SGD.Options(lr: lr, momentum: 0.9, nesterov: true)),
                                   ([ps[1]], SGD.Options(lr: lr, momentum: 0.5, dampening: 0.2))])
                : try AdamW(groups: [([ps[0], ps[2]], AdamW.Options(lr: lr, weightDecay: 0.1)),
                                     ([ps[1]], AdamW.Options(lr: lr, beta1: 0.5, eps: 1e-3))])
        }
        let a = [param([4, 3], seed: 1), param([9], seed: 2), param([], seed: 3)]
        let optA = try make(a, 0.01)
        try train(optA, a, 1...3)
        try optA.setLearningRate(0.0123, group: 1)
        let saved = Dictionary(uniqueKeysWithValues: try optA.state().map { ($0.name, $0.tensor) })
        let b = try copies(a)
        let optB = try make(b, 0.7)
        try optB.loadState(saved)
        #expect(optB.description == optA.description)
        try train(optA, a, 4...6)
        try train(optB, b, 4...6)
        for (x, y) in zip(a, b) { #expect(bitwiseEqual(values(x), values(y))) }
        let sa = try optA.state(), sb = try optB.state()
        #expect(sa.map(\.name) == sb.map(\.name))
        for (x, y) in zip(sa, sb) { #expect(bitwiseEqual(values(x.tensor), values(y.tensor)), "\(x.name)") }
    }

    @Test func refusedStatesChangeNothing() throws {
        let a = [param([2, 2], seed: 1), param([3], seed: 2)]
        let opt = try AdamW(a, AdamW.Options(lr: 0.01))
        try train(opt, a, 1...2)
        let good = Dictionary(uniqueKeysWithValues: try opt.state().map { ($0.name, $0.tensor) })
        func with(_ changes: [String: Tensor?]) -> [String: Tensor] {
            var s = good
            for (k, v) in changes { s[k] = v }
            return s
        }
        // Each bad state also carries a good-looking change (lr), which must not be applied.
        let lr: [String: Tensor?] = ["group1.lr": Tensor(scalar: 0.5)]
        let cases: [([String: Tensor?], String)] = [
            (["step": nil], "no 'step' entry"),
            (["exp_avg.2": T([1, 2])], "state entry 'exp_avg.2' has size 2 but parameter 2 has size 3"),
            (["exp_avg_sq.1": nil], "but no exp_avg_sq.1"),
            (["step.1": Tensor(scalar: -1)], "state entry 'step.1' must be a whole number"),
            (["exp_avg.3": T([1])], "the state has exp_avg.3 but this optimizer has 2 parameters"),
            (["group1.beta1": Tensor(scalar: 1)], "parameter group 1 of the state: beta1 must be a number in [0, 1), got 1"),
            (["group1.params": T([2, 1])], "holds parameters 2,1, this optimizer's holds 1,2"),
            (["group2.lr": Tensor(scalar: 1)], "the state has 2 parameter groups, this optimizer has 1"),
            (["momentum_buffer.1": T([2, 2], [1, 2, 3, 4])], "unknown state entry 'momentum_buffer.1'"),
        ]
        for (change, message) in cases {
            expectError(message) { try opt.loadState(with(lr.merging(change) { $1 })) }
        }
        let after = try opt.state()
        for e in after { #expect(bitwiseEqual(values(e.tensor), values(good[e.name]!)), "\(e.name)") }
        #expect(opt.learningRate() == 0.01)
    }

    @Test func resultsDoNotDependOnTheThreadCount() throws {
        func run() throws -> [[Float]] {
            let params = [param([1 << 20], seed: 7), param([100_003], seed: 8)]
            let adam = try AdamW([params[0]], AdamW.Options(lr: 0.01))
            let sgd = try SGD([params[1]], SGD.Options(lr: 0.1, momentum: 0.9, nesterov: true))
            var norms: [Float] = []
            for k in 0..<3 {
                setGrads(params, seed: UInt64(50 + k))
                norms.append(try GradClipping.clipGradNorm(params, maxNorm: 100))
                try adam.step()
                try sgd.step()
            }
            return params.map(values) + [norms]
        }
        let saved = Parallel.threads
        defer { Parallel.threads = saved }
        Parallel.threads = 1
        let one = try run()
        Parallel.threads = 2
        let two = try run()
        for (x, y) in zip(one, two) { #expect(bitwiseEqual(x, y)) }
    }
}

// SGDTests.swift: the SGD update against a scalar transcription of torch.optim.SGD's single-tensor loop.
// (Tests/lua/optim.lua checks the same against PyTorch's own numbers.)

import Testing
import TychoTensor
@testable import TychoTrain

/// torch.optim.SGD for one parameter, element by element in float32, in PyTorch's operation order.
struct SGDReference {
    var buffer: [Float]?

    mutating func step(_ p: inout [Float], _ g: [Float], _ o: SGD.Options) {
        var grad = g
        if o.weightDecay != 0 { for i in grad.indices { grad[i] = grad[i] + o.weightDecay * p[i] } }
        if o.momentum != 0 {
            if var b = buffer {
                let alpha = Float(1 - Double(o.dampening))
                for i in b.indices { b[i] = b[i] * o.momentum + alpha * grad[i] }
                buffer = b
            } else {
                buffer = grad
            }
            let b = buffer!
            if o.nesterov {
                for i in grad.indices { grad[i] = grad[i] + o.momentum * b[i] }
            } else {
                grad = b
            }
        }
        for i in p.indices { p[i] = p[i] + (-o.lr) * grad[i] }
    }
}

@Suite struct SGDTests {
    @Test func plainStepIsPMinusLrG() throws {
        let p = param([5], seed: 1)
        let before = values(p)
        let opt = try SGD([p], SGD.Options(lr: 0.5))
        p.grad = T([1, 2, 3, 4, -8])
        try opt.step()
        #expect(values(p) == zip(before, [1, 2, 3, 4, -8] as [Float]).map { $0 + (-0.5) * $1 })
    }

    @Test(arguments: [
        SGD.Options(lr: 0.1),
        SGD.Options(lr: 0.05, momentum: 0.9),
        SGD.Options(lr: 0.05, momentum: 0.9, weightDecay: 0.01, nesterov: true),
        SGD.Options(lr: 0.1, weightDecay: 0.1),
        SGD.Options(lr: 0.05, momentum: 0.8, dampening: 0.3, weightDecay: 0.02),
    ])
    func matchesTheReferenceBitwise(_ o: SGD.Options) throws {
        // Sizes around the 8-lane vectors: ragged ends, a scalar, and one large enough to run in parallel.
        let params = [param([3], seed: 2), param([3, 5], seed: 3), param([], seed: 4), param([70_001], seed: 5)]
        var ref = params.map { values($0) }
        var refs = Array(repeating: SGDReference(), count: params.count)
        let opt = try SGD(params, o)
        for step in 0..<4 {
            setGrads(params, seed: UInt64(10 + step), skip: step == 1 ? [0] : [])
            for (i, p) in params.enumerated() {
                if let g = p.grad { refs[i].step(&ref[i], values(g), o) }
            }
            try opt.step()
            for (i, p) in params.enumerated() {
                #expect(bitwiseEqual(values(p), ref[i]), "options \(o), step \(step), parameter \(i)")
            }
        }
    }

    @Test func optionsAreValidated() throws {
        let p = param([2], seed: 1)
        expectError("lr must be a non-negative number, got -1") { try SGD([p], SGD.Options(lr: -1)) }
        expectError("momentum must be a non-negative number") { try SGD([p], SGD.Options(momentum: -0.1)) }
        expectError("dampening must be a number in [0, 1], got 2") { try SGD([p], SGD.Options(dampening: 2)) }
        expectError("weight_decay must be a non-negative number") { try SGD([p], SGD.Options(weightDecay: -1)) }
        expectError("nesterov must be false unless momentum > 0 and dampening = 0") {
            try SGD([p], SGD.Options(momentum: 0.9, dampening: 0.1, nesterov: true))
        }
        expectError("lr must be a non-negative number, got inf") { try SGD([p], SGD.Options(lr: .infinity)) }
    }

    @Test func printsItsOptions() throws {
        let opt = try SGD([param([2], seed: 1), param([3], seed: 2)], SGD.Options(lr: 0.1, momentum: 0.9))
        #expect(opt.description == "SGD(lr=0.1, momentum=0.9, dampening=0, weight_decay=0, nesterov=false, 2 params)")
    }
}

func values(_ t: Tensor) -> [Float] { t.toArray() }

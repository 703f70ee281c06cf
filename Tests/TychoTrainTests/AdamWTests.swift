// AdamWTests.swift: the AdamW update against a scalar transcription of torch.optim.Adam's single-tensor loop
// with decoupled weight decay. (Tests/lua/optim.lua checks the same against PyTorch's own numbers.)

import Foundation
import Testing
import TychoTensor
@testable import TychoTrain

/// torch.optim.AdamW for one parameter, element by element in float32, in PyTorch's operation order.
struct AdamWReference {
    var m: [Float] = []
    var v: [Float] = []
    var t = 0

    mutating func step(_ p: inout [Float], _ g: [Float], _ o: AdamW.Options) {
        if m.isEmpty { m = Array(repeating: 0, count: p.count); v = m }
        t += 1
        if o.weightDecay != 0 {
            let decay = Float(1 - Double(o.lr) * Double(o.weightDecay))
            for i in p.indices { p[i] = p[i] * decay }
        }
        let w = Float(1 - Double(o.beta1))
        for i in m.indices {
            m[i] = Swift.abs(w) < 0.5 ? m[i] + w * (g[i] - m[i]) : g[i] - (g[i] - m[i]) * (1 - w)
            v[i] = v[i] * o.beta2 + Float(1 - Double(o.beta2)) * g[i] * g[i]
        }
        let bc1 = 1 - pow(Double(o.beta1), Double(t)), bc2 = 1 - pow(Double(o.beta2), Double(t))
        let stepSize = Float(-(Double(o.lr) / bc1)), bc2Sqrt = Float(pow(bc2, 0.5))
        for i in p.indices {
            let denom = v[i].squareRoot() / bc2Sqrt + o.eps
            p[i] = p[i] + stepSize * m[i] / denom
        }
    }
}

@Suite struct AdamWTests {
    @Test(arguments: [
        AdamW.Options(),
        AdamW.Options(lr: 0.01, beta1: 0.8, beta2: 0.95, eps: 1e-6, weightDecay: 0.1),
        AdamW.Options(lr: 0.02, beta1: 0.3, beta2: 0.5, eps: 1e-3, weightDecay: 0),   // the other lerp branch
    ])
    func matchesTheReferenceBitwise(_ o: AdamW.Options) throws {
        let params = [param([3], seed: 2), param([3, 5], seed: 3), param([], seed: 4), param([70_001], seed: 5)]
        var ref = params.map { values($0) }
        var refs = Array(repeating: AdamWReference(), count: params.count)
        let opt = try AdamW(params, o)
        for step in 0..<4 {
            setGrads(params, seed: UInt64(20 + step), skip: step == 1 ? [2] : [])
            for (i, p) in params.enumerated() {
                if let g = p.grad { refs[i].step(&ref[i], values(g), o) }
            }
            try opt.step()
            for (i, p) in params.enumerated() {
                #expect(bitwiseEqual(values(p), ref[i]), "options \(o), step \(step), parameter \(i)")
            }
        }
        // The skipped parameter took one step fewer.
        #expect(opt.stepCounts == [4, 4, 3, 4])
    }

    @Test func firstStepMovesByAboutLrTimesTheSign() throws {
        let p = T([0, 0, 0])
        try p.setRequiresGrad(true)
        let opt = try AdamW([p], AdamW.Options(lr: 0.1, weightDecay: 0))
        p.grad = T([3, -0.5, 1e-3])
        try opt.step()
        let got = values(p)
        #expect(Swift.abs(got[0] + 0.1) < 1e-6 && Swift.abs(got[1] - 0.1) < 1e-6 && Swift.abs(got[2] + 0.1) < 1e-5, "\(got)")
    }

    @Test func weightDecayIsDecoupled() throws {
        // A zero grad leaves the Adam part at zero: only p *= 1 - lr * wd remains.
        let p = T([2, -4])
        try p.setRequiresGrad(true)
        let opt = try AdamW([p], AdamW.Options(lr: 0.1, weightDecay: 0.5))
        p.grad = T([0, 0])
        try opt.step()
        let decay = Float(1 - Double(Float(0.1)) * Double(Float(0.5)))  // 1 - lr*wd in double, from float32 values
        #expect(values(p) == [2 * decay, -4 * decay])
    }

    @Test func optionsAreValidated() throws {
        let p = param([2], seed: 1)
        expectError("beta1 must be a number in [0, 1), got 1") { try AdamW([p], AdamW.Options(beta1: 1)) }
        expectError("beta2 must be a number in [0, 1), got -0.5") { try AdamW([p], AdamW.Options(beta2: -0.5)) }
        expectError("eps must be a positive number, got 0") { try AdamW([p], AdamW.Options(eps: 0)) }
        expectError("lr must be a non-negative number, got nan") { try AdamW([p], AdamW.Options(lr: .nan)) }
        expectError("weight_decay must be a non-negative number") { try AdamW([p], AdamW.Options(weightDecay: -1)) }
    }

    @Test func printsItsGroups() throws {
        let a = param([2], seed: 1), b = param([3], seed: 2), c = param([1], seed: 3)
        #expect(try AdamW([a, b]).description == "AdamW(lr=0.001, betas=(0.9, 0.999), eps=1e-08, weight_decay=0.01, 2 params)")
        let grouped = try AdamW(groups: [([a, b], AdamW.Options(lr: 0.01)), ([c], AdamW.Options(weightDecay: 0))])
        #expect(grouped.description == "AdamW(2 groups: (lr=0.01, betas=(0.9, 0.999), eps=1e-08, weight_decay=0.01, 2 params), (lr=0.001, betas=(0.9, 0.999), eps=1e-08, weight_decay=0, 1 param))")
    }
}

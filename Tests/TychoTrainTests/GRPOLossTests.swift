// GRPOLossTests.swift: GRPOLoss and GRPOAdvantages against an independent Double-precision reference of TRL 1.16's
// formulas (every loss type, token and sequence importance sampling, with and without the KL term), gradients
// against central differences of that reference, and the inputs they refuse. (Agreement with TRL's own code is
// Tests/lua/rft_losses.lua's job, on fixtures TRL wrote.)

import Foundation
import Testing
import TychoTensor
@testable import TychoTrain

struct TokenBatch {
    let b: Int, t: Int
    var lp: [Double], old: [Double], ref: [Double], adv: [Double], mask: [Double]

    static func make(seed: UInt64) -> TokenBatch {
        let b = 4, t = 5
        let f = { (v: [Float]) in v.map { Double($0) } }
        let lp = f(data(b * t, seed: seed, scale: 1.5)).map { $0 - 2 }
        let old = zip(lp, f(data(b * t, seed: seed + 1, scale: 0.4))).map { Double(Float($0 + $1)) }
        let ref = zip(lp, f(data(b * t, seed: seed + 2, scale: 0.5))).map { Double(Float($0 + $1)) }
        let adv = f(data(b, seed: seed + 3, scale: 1.5))
        let lengths = [5, 2, 4, 1]
        let mask = (0..<b * t).map { Double($0 % t < lengths[$0 / t] ? 1 : 0) }
        return TokenBatch(b: b, t: t, lp: lp.map { Double(Float($0)) }, old: old, ref: ref, adv: adv.map { Double(Float($0)) }, mask: mask)
    }

    func inputs() -> (GRPOLoss.Inputs, Tensor) {
        let logps = T([b, t], lp.map { Float($0) })
        // swiftlint:disable:next force_try
        try! logps.setRequiresGrad(true)
        var x = GRPOLoss.Inputs(logps: logps, advantages: T(adv.map { Float($0) }), mask: T([b, t], mask.map { Float($0) }))
        x.oldLogps = T([b, t], old.map { Float($0) })
        x.refLogps = T([b, t], ref.map { Float($0) })
        return (x, logps)
    }

    /// TRL 1.16's loss in Double, written from the formulas.
    func loss(_ o: GRPOLoss.Options, lp: [Double]) -> Double {
        let epsLow = o.epsilon, epsHigh = o.epsilonHigh ?? o.epsilon
        var rowSums = [Double](repeating: 0, count: b)
        var total = 0.0
        for i in 0..<b {
            let tokens = (0..<t).map { i * t + $0 }
            let count = tokens.reduce(0.0) { $0 + mask[$1] }
            let seqLog = tokens.reduce(0.0) { $0 + (lp[$1] - old[$1]) * mask[$1] } / Swift.max(count, 1)
            let seqW = Foundation.exp(Swift.min(Swift.max(tokens.reduce(0.0) { $0 + Swift.min(Swift.max(lp[$1] - old[$1], -20), 20) * mask[$1] }, Foundation.log(1e-8)), 20))
            let a = adv[i]
            for j in tokens {
                let r = o.importanceSampling == .token ? Foundation.exp(lp[j] - old[j]) : Foundation.exp(seqLog)
                var l: Double
                switch o.type {
                case .cispo:
                    l = -Swift.min(r, epsHigh) * a * lp[j]
                case .sapo:
                    let tau = a > 0 ? o.sapoTemperaturePos : o.sapoTemperatureNeg
                    l = -(4 / tau) / (1 + Foundation.exp(-tau * (r - 1))) * a
                case .vespo:
                    let (k, lam) = a >= 0 ? (o.vespoKPos, o.vespoLambdaPos) : (o.vespoKNeg, o.vespoLambdaNeg)
                    l = -Foundation.exp(lam + k * Foundation.log(seqW) - lam * seqW) * a * lp[j]
                default:
                    let r1 = o.delta.map { Swift.min(r, $0) } ?? r
                    l = -Swift.min(r1 * a, Swift.min(Swift.max(r, 1 - epsLow), 1 + epsHigh) * a)
                }
                if o.beta != 0 {
                    let d = ref[j] - lp[j]
                    var kl = Foundation.exp(d) - d - 1
                    if o.useBiasCorrectionKL { kl *= r }
                    l += o.beta * kl
                }
                rowSums[i] += l * mask[j]
                total += l * mask[j]
            }
        }
        let tokens = mask.reduce(0, +)
        switch o.type {
        case .grpo, .sapo:
            return (0..<b).map { i in rowSums[i] / Swift.max((0..<t).reduce(0.0) { $0 + mask[i * t + $1] }, 1) }.reduce(0, +) / Double(b)
        case .bnpo: return total / Swift.max(tokens, 1)
        case .drGrpo: return total / Double(b * (o.maxCompletionLength ?? 1))
        case .dapo, .cispo, .vespo: return total / Swift.max(o.numItemsInBatch ?? tokens, 1)
        case .luspo: return rowSums.reduce(0, +) / Double(b)
        }
    }

    /// Central differences of the reference, with the detached factors (cispo's and vespo's weights, old_logps)
    /// held at their values: the reference recomputes them from lp, so only the lp factors are varied here.
    func numericGrad(_ o: GRPOLoss.Options) -> [Double] {
        let h = 1e-5
        return (0..<lp.count).map { j in
            var up = lp, down = lp
            up[j] += h
            down[j] -= h
            return (loss(o, lp: up) - loss(o, lp: down)) / (2 * h)
        }
    }
}

@Suite struct GRPOLossTests {
    static let types = GRPOLossType.allCases

    @Test(arguments: types, GRPOImportanceSampling.allCases)
    func valuesMatchTheReference(type: GRPOLossType, level: GRPOImportanceSampling) throws {
        for beta in [0.0, 0.05] {
            let batch = TokenBatch.make(seed: 11)
            var o = GRPOLoss.Options()
            o.type = type
            o.importanceSampling = level
            o.beta = beta
            o.maxCompletionLength = 8
            o.epsilonHigh = type == .cispo ? 1.2 : 0.28
            let (x, _) = batch.inputs()
            let r = try GRPOLoss.compute(x, options: o)
            let want = batch.loss(o, lp: batch.lp)
            #expect(Swift.abs(Double(try r.loss.item()) - want) <= 1e-5 + 1e-5 * Swift.abs(want), "\(type) \(level) beta \(beta)")
        }
    }

    @Test(arguments: [GRPOLossType.dapo, .grpo, .bnpo, .drGrpo, .sapo, .luspo], GRPOImportanceSampling.allCases)
    func gradientsMatchCentralDifferences(type: GRPOLossType, level: GRPOImportanceSampling) throws {
        // The types whose every factor is differentiable in lp (cispo and vespo detach a weight computed from lp).
        let batch = TokenBatch.make(seed: 23)
        var o = GRPOLoss.Options()
        o.type = type
        o.importanceSampling = level
        o.beta = 0.05
        o.maxCompletionLength = 8
        let (x, logps) = batch.inputs()
        try GRPOLoss.compute(x, options: o).loss.backward()
        let g = try #require(logps.grad).toArray()
        let want = batch.numericGrad(o)
        for (a, w) in zip(g, want) {
            #expect(Swift.abs(Double(a) - w) <= 2e-4 + 1e-3 * Swift.abs(w), "\(type) \(level): \(a) vs \(w)")
        }
    }

    @Test func onPolicyValueAndMetrics() throws {
        // r = 1 everywhere: dapo's loss is -sum(A M) / sum(M); nothing is clipped.
        let x = GRPOLoss.Inputs(logps: T([2, 3], [-1, -2, -3, -1, -1, -1]), advantages: T([1, -2]),
                                mask: T([2, 3], [1, 1, 0, 1, 1, 1]))
        let r = try GRPOLoss.compute(x, options: GRPOLoss.Options())
        #expect(Swift.abs(try r.loss.item() - Float((-2.0 + 6.0) / 5.0)) < 1e-6)
        #expect(r.stats["clip_ratio/region_mean"] == 0)
        #expect(r.stats["completions/mean_length"] == 2.5)
        #expect(r.stats["kl"] == nil)
    }

    @Test func refusals() throws {
        let good = GRPOLoss.Inputs(logps: T([2, 2], [-1, -1, -1, -1]), advantages: T([1, 0]), mask: T([2, 2], [1, 1, 1, 0]))
        var o = GRPOLoss.Options()
        o.beta = 0.1
        expectError("beta > 0 needs ref_logps") { try GRPOLoss.compute(good, options: o) }
        o = GRPOLoss.Options()
        o.type = .drGrpo
        expectError("needs max_completion_length") { try GRPOLoss.compute(good, options: o) }
        var bad = good
        bad.mask = T([2, 2], [1, 2, 1, 0])
        expectError("mask must hold 0 and 1") { try GRPOLoss.compute(bad, options: GRPOLoss.Options()) }
        bad = good
        bad.advantages = T([3], [1, 2, 3])
        expectError("advantages must be a vector of 2") { try GRPOLoss.compute(bad, options: GRPOLoss.Options()) }
    }
}

@Suite struct GRPOAdvantagesTests {
    @Test func groupNormalisedWithNaN() throws {
        // Group 1: 1, NaN, 0.5 -> mean 0.75, std sqrt(0.125); group 2: all equal -> 0.
        let r = try GRPOAdvantages.compute(T([1, .nan, 0.5, 2, 2, 2]), options: .init(groupSize: 3))
        let a = r.advantages.toArray()
        let s = Float(0.125).squareRoot()
        #expect(Swift.abs(a[0] - 0.25 / (s + 1e-4)) < 1e-5)
        #expect(a[1] == 0 && a[3] == 0 && a[5] == 0)
        #expect(r.stats["frac_reward_zero_std"] == 0.5)
        #expect(r.stats["reward"] == 1.5)
    }

    @Test func refusals() {
        expectError("group_size 4 does not divide the 6 completions") {
            try GRPOAdvantages.compute(T([1, 2, 3, 4, 5, 6]), options: .init(groupSize: 4))
        }
        var o = GRPOAdvantages.Options(groupSize: 1)
        o.weights = [1, 2]
        expectError("weights has 2 values but rewards has 1 reward function") {
            try GRPOAdvantages.compute(T([1, 2]), options: o)
        }
    }
}

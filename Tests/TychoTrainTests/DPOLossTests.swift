// DPOLossTests.swift: DPOLoss against an independent Double-precision reference of every loss type (the formulas
// of TRL 1.16 as written in reference.md), its gradients against central differences of that reference, the
// metrics, the multi-loss total, WPO weights, and the options and inputs it refuses. (Agreement with TRL's own
// code is Tests/lua/dpo_losses.lua's job, on fixtures TRL wrote.)

import Foundation
import Testing
import TychoTensor
@testable import TychoTrain

/// Per-sequence inputs in Double, and the reference losses computed on them.
struct PairBatch {
    var pc: [Double], pr: [Double], rc: [Double], rr: [Double]
    var cl: [Double], rl: [Double]

    static func make(_ b: Int, seed: UInt64, spread: Float = 3) -> PairBatch {
        let pc = data(b, seed: seed, scale: 25).map { Double($0) - 30 }
        let pr = data(b, seed: seed + 1, scale: 25).map { Double($0) - 30 }
        let rc = zip(pc, data(b, seed: seed + 2, scale: spread)).map { $0 + Double($1) }
        let rr = zip(pr, data(b, seed: seed + 3, scale: spread)).map { $0 + Double($1) }
        let cl = data(b, seed: seed + 4, scale: 5).map { Double(Int(Swift.abs($0) * 2) + 1) }
        let rl = data(b, seed: seed + 5, scale: 5).map { Double(Int(Swift.abs($0) * 2) + 1) }
        // Round to float so the Double reference sees exactly the values the Float code does.
        func f(_ v: [Double]) -> [Double] { v.map { Double(Float($0)) } }
        return PairBatch(pc: f(pc), pr: f(pr), rc: f(rc), rr: f(rr), cl: cl, rl: rl)
    }

    func inputs() -> (DPOLoss.Inputs, Tensor, Tensor) {
        let a = T(pc.map { Float($0) }), b = T(pr.map { Float($0) })
        // swiftlint:disable:next force_try
        try! a.setRequiresGrad(true)
        // swiftlint:disable:next force_try
        try! b.setRequiresGrad(true)
        var x = DPOLoss.Inputs(policyChosen: a, policyRejected: b, refChosen: T(rc.map { Float($0) }),
                               refRejected: T(rr.map { Float($0) }))
        x.chosenLengths = T(cl.map { Float($0) })
        x.rejectedLengths = T(rl.map { Float($0) })
        return (x, a, b)
    }
}

enum Reference {
    static func sig(_ x: Double) -> Double { 1 / (1 + Foundation.exp(-x)) }
    static func logSig(_ x: Double) -> Double { Swift.min(x, 0) - Foundation.log1p(Foundation.exp(-Swift.abs(x))) }

    static func score(_ u: Double, _ o: DPOLoss.Options) -> Double {
        switch o.fDivergence {
        case .reverseKL: return u
        case .forwardKL: return 1 - Foundation.exp(-u)
        case .jsDivergence: return Foundation.log(2) + logSig(u)
        case .alphaDivergence:
            let a = o.fAlphaDivergenceCoef
            if Swift.abs(a - 1) < 1e-6 { return u }
            return (Foundation.exp(Swift.min((a - 1) * u, 80)) - 1) / (a - 1)
        }
    }

    /// The batch loss sum_k w_k mean(L_k) of TRL 1.16's formulas.
    static func loss(_ x: PairBatch, _ o: DPOLoss.Options) -> Double {
        let b = x.pc.count, beta = o.beta, eps = o.labelSmoothing
        let c = (0..<b).map { x.pc[$0] - x.rc[$0] }, r = (0..<b).map { x.pr[$0] - x.rr[$0] }
        let sc = c.map { score($0, o) }, sr = r.map { score($0, o) }
        let delta = (0..<b).map { sc[$0] - sr[$0] }
        let norm = (0..<b).map { sc[$0] / Swift.max(x.cl[$0], 1) - sr[$0] / Swift.max(x.rl[$0], 1) }
        var total = 0.0
        let weights = o.lossWeights ?? Array(repeating: 1, count: o.lossTypes.count)
        for (type, w) in zip(o.lossTypes, weights) {
            var l = [Double](repeating: 0, count: b)
            for i in 0..<b {
                let z = beta * delta[i]
                switch type {
                case .sigmoid: l[i] = -logSig(z)
                case .hinge: l[i] = Swift.max(0, 1 - z)
                case .ipo: l[i] = Foundation.pow(norm[i] - 1 / (2 * beta), 2)
                case .exoPair:
                    l[i] = sig(z) * (logSig(z) - Foundation.log1p(-eps)) + sig(-z) * (logSig(-z) - Foundation.log(eps))
                case .ncaPair:
                    l[i] = -logSig(beta * c[i]) - 0.5 * logSig(-beta * c[i]) - 0.5 * logSig(-beta * r[i])
                case .robust: l[i] = (-(1 - eps) * logSig(z) + eps * logSig(-z)) / (1 - 2 * eps)
                case .bcoPair: l[i] = -logSig(beta * c[i]) - logSig(-beta * r[i])
                case .sppoHard: l[i] = Foundation.pow(c[i] - 0.5 / beta, 2) + Foundation.pow(r[i] + 0.5 / beta, 2)
                case .aot, .aotUnpaired:
                    let (u, v) = type == .aot
                        ? ((0..<b).map { x.pc[$0] - x.pr[$0] }, (0..<b).map { x.rc[$0] - x.rr[$0] }) : (c, r)
                    let d = u.sorted()[i] - v.sorted()[i]
                    l[i] = -(1 - eps) * logSig(beta * d) - eps * logSig(-beta * d)
                case .apoZero: l[i] = (1 - sig(beta * c[i])) + sig(beta * r[i])
                case .apoDown: l[i] = sig(beta * c[i]) + (1 - sig(beta * (c[i] - r[i])))
                case .discopop:
                    let m = sig(z / o.discopopTau)
                    l[i] = (1 - m) * -logSig(z) + m * Foundation.exp(-z)
                case .sft: l[i] = -x.pc.reduce(0, +) / x.cl.reduce(0, +)
                case .sigmoidNorm: l[i] = -logSig(beta * norm[i])
                }
            }
            total += w * l.reduce(0, +) / Double(b)
        }
        return total
    }

    /// Central differences of `loss` with respect to pc and pr.
    static func grads(_ x: PairBatch, _ o: DPOLoss.Options, h: Double = 1e-4) -> ([Double], [Double]) {
        func d(_ which: WritableKeyPath<PairBatch, [Double]>, _ i: Int) -> Double {
            var up = x, down = x
            up[keyPath: which][i] += h
            down[keyPath: which][i] -= h
            return (loss(up, o) - loss(down, o)) / (2 * h)
        }
        return (x.pc.indices.map { d(\.pc, $0) }, x.pr.indices.map { d(\.pr, $0) })
    }
}

func options(_ types: [DPOLossType], beta: Double = 0.1, eps: Double = 0, f: FDivergence = .reverseKL,
             alpha: Double = 0.5, weights: [Double]? = nil) -> DPOLoss.Options {
    var o = DPOLoss.Options()
    o.lossTypes = types
    o.beta = beta
    o.labelSmoothing = eps
    o.fDivergence = f
    o.fAlphaDivergenceCoef = alpha
    o.lossWeights = weights
    return o
}

/// |a - b| <= tol (1 + |b|) for each pair.
func expectNear(_ a: [Float], _ b: [Double], tol: Double, _ label: String, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(a.count == b.count, "\(label): \(a.count) values vs \(b.count)", sourceLocation: sourceLocation)
    for (i, (x, y)) in zip(a, b).enumerated() {
        #expect(Swift.abs(Double(x) - y) <= tol * (1 + Swift.abs(y)), "\(label)[\(i)]: \(x) vs \(y)", sourceLocation: sourceLocation)
    }
}

@Suite struct DPOLossTests {
    static let smoothing: [DPOLossType: Double] = [.robust: 0.1, .exoPair: 1e-3, .aot: 0.2, .aotUnpaired: 0.2]

    /// Value and gradients of `o` on a batch against the Double reference.
    func check(_ o: DPOLoss.Options, b: Int = 6, seed: UInt64 = 1, spread: Float = 3, tol: Double = 2e-5,
               sourceLocation: SourceLocation = #_sourceLocation) throws {
        let batch = PairBatch.make(b, seed: seed, spread: spread)
        let (x, pc, pr) = batch.inputs()
        let r = try DPOLoss.compute(x, options: o)
        try r.loss.backward()
        let label = o.lossTypes.map(\.rawValue).joined(separator: "+") + " \(o.fDivergence.rawValue)"
        expectNear([try r.loss.item()], [Reference.loss(batch, o)], tol: tol, "\(label) loss", sourceLocation: sourceLocation)
        let (gc, gr) = Reference.grads(batch, o)
        expectNear(values(pc.grad ?? T(Array(repeating: 0, count: b))), gc, tol: 1e-3, "\(label) d/dpolicy_chosen", sourceLocation: sourceLocation)
        expectNear(values(pr.grad ?? T(Array(repeating: 0, count: b))), gr, tol: 1e-3, "\(label) d/dpolicy_rejected", sourceLocation: sourceLocation)
    }

    @Test(arguments: DPOLossType.allCases)
    func everyTypeMatchesTheReference(_ type: DPOLossType) throws {
        let eps = Self.smoothing[type] ?? 0
        try check(options([type], eps: eps), seed: 1)
        try check(options([type], beta: 0.5, eps: eps), b: 3, seed: 7)
        try check(options([type], beta: 0.02, eps: eps), b: 8, seed: 11, spread: 0.3)
    }

    @Test(arguments: [FDivergence.forwardKL, .jsDivergence, .alphaDivergence])
    func fDivergencesMatchTheReference(_ f: FDivergence) throws {
        for type in DPOLossType.allCases where type.supportsFDivergence {
            try check(options([type], eps: Self.smoothing[type] ?? 0, f: f), spread: 1)
        }
        try check(options([.sigmoid], f: .alphaDivergence, alpha: 0.3), spread: 1)
        try check(options([.sigmoid], f: .alphaDivergence, alpha: 1), spread: 1)   // reverse KL
    }

    @Test func weightedCombinations() throws {
        try check(options([.sigmoid, .bcoPair, .sft], weights: [0.8, 0.2, 1.0]))
        try check(options([.sigmoid, .sft], weights: [1, 0.5]))
        try check(options([.ipo, .hinge, .apoZero]))
        // The total is the weighted sum of the per-type means, and the terms come back per type.
        let (x, _, _) = PairBatch.make(4, seed: 3).inputs()
        let r = try DPOLoss.compute(x, options: options([.sigmoid, .hinge], weights: [2, -1]))
        let means = try r.losses.map { try $0.mean().item() }
        #expect(Swift.abs(try r.loss.item() - (2 * means[0] - means[1])) < 1e-6)
        #expect(r.losses.allSatisfy { !$0.requiresGrad && $0.shape == [4] })
    }

    @Test func rewardsAndStatsFollowTRL() throws {
        let batch = PairBatch.make(5, seed: 4)
        let (x, _, _) = batch.inputs()
        let r = try DPOLoss.compute(x, options: options([.sigmoid], beta: 0.2))
        let cr = (0..<5).map { 0.2 * (batch.pc[$0] - batch.rc[$0]) }, rr = (0..<5).map { 0.2 * (batch.pr[$0] - batch.rr[$0]) }
        expectNear(values(r.chosenRewards), cr, tol: 1e-6, "chosen rewards")
        expectNear(values(r.rejectedRewards), rr, tol: 1e-6, "rejected rewards")
        let mean = { (v: [Double]) in v.reduce(0, +) / Double(v.count) }
        let s = r.stats
        #expect(s.names == ["rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins", "logps/chosen", "logps/rejected"])
        expectNear([Float(s["rewards/chosen"]!), Float(s["rewards/rejected"]!), Float(s["rewards/margins"]!)],
                   [mean(cr), mean(rr), mean(zip(cr, rr).map { $0 - $1 })], tol: 1e-6, "reward means")
        // A float32 mean, widened, as TRL's `.mean().item()`.
        #expect(s["rewards/accuracies"]! == Double(Float(zip(cr, rr).filter { Float($0) > Float($1) }.count) / 5))
        expectNear([Float(s["logps/chosen"]!), Float(s["logps/rejected"]!)], [mean(batch.pc), mean(batch.pr)], tol: 1e-6, "logps")
    }

    @Test func aotSortsTheBatchAndRoutesGradientsBack() throws {
        // Policy margins 3, 1, 2 sort to 1, 2, 3; reference margins 0, 0, 0. Pair k's loss uses the k-th smallest,
        // so the gradient of each policy value depends on its rank, not its position.
        let pc = T([-7, -9, -8]), pr = T([-10, -10, -10])
        try pc.setRequiresGrad(true)
        var x = DPOLoss.Inputs(policyChosen: pc, policyRejected: pr, refChosen: T([-5, -5, -5]), refRejected: T([-5, -5, -5]))
        x.chosenLengths = nil
        var o = options([.aot], beta: 1)
        o.labelSmoothing = 0
        let r = try DPOLoss.compute(x, options: o)
        expectNear(values(r.losses[0]), [1, 2, 3].map { -Reference.logSig($0) }, tol: 1e-6, "sorted losses")
        try r.loss.backward()
        expectNear(values(pc.grad!), [3, 1, 2].map { -Reference.sig(-$0) / 3 }, tol: 1e-6, "gradient by rank")
    }

    @Test func wpoWeightsScaleEachPair() throws {
        let batch = PairBatch.make(4, seed: 5)
        var (x, pc, _) = batch.inputs()
        let lc: [Float] = [-3, -4, -2, -6], lr: [Float] = [-1, -5, -2, -3]
        x.chosenLogSumSqProbs = T(lc)
        x.rejectedLogSumSqProbs = T(lr)
        var o = options([.sigmoid])
        o.useWeighting = true
        let r = try DPOLoss.compute(x, options: o)
        let plain = try DPOLoss.compute(batch.inputs().0, options: options([.sigmoid]))
        let w = (0..<4).map {
            Foundation.exp((batch.pc[$0] - Double(lc[$0])) / batch.cl[$0]) * Foundation.exp((batch.pr[$0] - Double(lr[$0])) / batch.rl[$0])
        }
        expectNear(values(r.losses[0]), zip(values(plain.losses[0]), w).map { Double($0) * $1 }, tol: 1e-5, "weighted losses")
        // The weights carry no gradient: d/dpc is the weighted sigmoid gradient only.
        try r.loss.backward()
        let g = (0..<4).map { i -> Double in
            let margin: Double = (batch.pc[i] - batch.rc[i]) - (batch.pr[i] - batch.rr[i])
            return -Reference.sig(-0.1 * margin) * 0.1 * w[i] / 4
        }
        expectNear(values(pc.grad!), g, tol: 1e-5, "gradient without the weights' own")
    }

    @Test func discopopStaysFiniteWhereTheNaiveFormOverflows() throws {
        var x = DPOLoss.Inputs(policyChosen: T([-1, -1]), policyRejected: T([-1, -1]), refChosen: T([0, 0]), refRejected: T([-300, 300]))
        x.chosenLengths = nil
        let r = try DPOLoss.compute(x, options: options([.discopop], beta: 1))
        let l = values(r.losses[0])
        #expect(l[0].isFinite && l[1].isFinite, "\(l)")
        #expect(Swift.abs(l[0] - 300) < 1e-3, "z = -300: the logistic part, -log sigmoid(-300) = 300")
        #expect(l[1] >= 0 && l[1] < 1e-30, "z = 300: nothing")
    }

    @Test func optionsAreChecked() throws {
        func bad(_ fragment: String, _ change: (inout DPOLoss.Options) -> Void) {
            var o = DPOLoss.Options()
            change(&o)
            expectError(fragment) { try o.validate() }
        }
        bad("beta must be a positive finite number, got 0") { $0.beta = 0 }
        bad("beta must be a positive finite number, got inf") { $0.beta = .infinity }
        bad("beta must be a positive finite number, got nan") { $0.beta = .nan }
        bad("type must name at least one loss type") { $0.lossTypes = [] }
        bad("weights has 1 value but type names 2 loss types") { $0.lossTypes = [.sigmoid, .sft]; $0.lossWeights = [1] }
        bad("weights[2] must be a finite number, got inf") { $0.lossWeights = [1, .infinity]; $0.lossTypes = [.sigmoid, .ipo] }
        bad("label_smoothing is read only by") { $0.labelSmoothing = 0.1 }
        bad("label_smoothing must be a number in [0, 1), got -0.1") { $0.labelSmoothing = -0.1 }
        bad("label_smoothing must be a number in [0, 0.5) for the robust loss, got 0.5") { $0.lossTypes = [.robust]; $0.labelSmoothing = 0.5 }
        bad("label_smoothing must be greater than 0 for the exo_pair loss") { $0.lossTypes = [.exoPair] }
        bad("f_divergence_type 'js_divergence' works only with") { $0.lossTypes = [.aot]; $0.fDivergence = .jsDivergence }
        bad("f_alpha_divergence_coef must be a finite number, got nan") { $0.fAlphaDivergenceCoef = .nan }
        bad("discopop_tau must be a positive finite number, got -1") { $0.discopopTau = -1 }
        bad("use_weighting does not work with the aot_unpaired loss") { $0.useWeighting = true; $0.lossTypes = [.aotUnpaired] }
        bad("use_weighting does not work with the sft loss") { $0.useWeighting = true; $0.lossTypes = [.sigmoid, .sft] }
        // Smoothing used by one type of a combination is allowed.
        var ok = options([.sigmoid, .robust], eps: 0.2)
        try ok.validate()
        ok.lossTypes = DPOLossType.allCases.filter { $0 != .exoPair }
        try ok.validate()
    }

    @Test func inputsAreChecked() throws {
        let v3 = T([-1, -2, -3]), v2 = T([-1, -2])
        func run(_ x: DPOLoss.Inputs, _ o: DPOLoss.Options = DPOLoss.Options()) throws -> Any { try DPOLoss.compute(x, options: o) }
        expectError("policy_rejected has 2 elements but policy_chosen has 3") {
            try run(DPOLoss.Inputs(policyChosen: v3, policyRejected: v2, refChosen: v3, refRejected: v3))
        }
        expectError("ref_chosen has 2 elements") { try run(DPOLoss.Inputs(policyChosen: v3, policyRejected: v3, refChosen: v2, refRejected: v3)) }
        expectError("policy_chosen must be a vector of per-sequence log-probabilities (size B), got size 3x1") {
            try run(DPOLoss.Inputs(policyChosen: T([3, 1], [1, 2, 3]), policyRejected: v3, refChosen: v3, refRejected: v3))
        }
        expectError("policy_chosen is empty") {
            try run(DPOLoss.Inputs(policyChosen: T([]), policyRejected: T([]), refChosen: T([]), refRejected: T([])))
        }
        var x = DPOLoss.Inputs(policyChosen: v3, policyRejected: v3, refChosen: v3, refRejected: v3)
        expectError("the ipo loss needs chosen_lengths") { try run(x, options([.ipo])) }
        x.chosenLengths = T([1, 2, 3])
        expectError("the ipo loss needs rejected_lengths") { try run(x, options([.ipo])) }
        x.rejectedLengths = T([1, 2])
        expectError("rejected_lengths must be a vector of 3 completion token counts") { try run(x, options([.ipo])) }
        x.rejectedLengths = T([1, .nan, 2])
        expectError("rejected_lengths must hold token counts (integers >= 0), got nan at position 2") { try run(x, options([.ipo])) }
        x.rejectedLengths = T([0, 0, 0])
        _ = try run(x, options([.ipo]))   // counts of 0 are clamped to 1, as TRL does
        x.chosenLengths = T([0, 0, 0])
        expectError("the sft loss needs at least one chosen completion token") { try run(x, options([.sft])) }
        var w = options([.sigmoid]); w.useWeighting = true
        expectError("use_weighting needs chosen_log_sum_sq_probs") { try run(x, w) }
    }

    @Test func bcoPairHoldsNoState() throws {
        // TRL 1.16 dropped 0.2x's running reward mean: the same batch gives the same loss every call.
        let (x, _, _) = PairBatch.make(4, seed: 9).inputs()
        let a = try DPOLoss.compute(x, options: options([.bcoPair])).loss.item()
        let b = try DPOLoss.compute(x, options: options([.bcoPair])).loss.item()
        #expect(a == b)
    }
}

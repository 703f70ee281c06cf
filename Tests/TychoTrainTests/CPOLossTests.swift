// CPOLossTests.swift: CPOLoss (CPO, SimPO, AlphaPO) against a Double reference of TRL 1.16's cpo_loss and its
// NLL term, gradients by central differences, and refused options and inputs.

import Foundation
import Testing
import TychoTensor
@testable import TychoTrain

@Suite struct CPOLossTests {
    /// TRL's get_batch_loss_metrics loss in Double: mean(cpo_loss) + cpo_alpha * NLL.
    static func reference(_ x: PairBatch, _ o: CPOLoss.Options) -> Double {
        let avg = o.lossType.usesAverageLogps
        let b = x.pc.count, beta = o.beta, eps = o.labelSmoothing
        var total = 0.0
        for i in 0..<b {
            var w = avg ? x.pc[i] / x.cl[i] : x.pc[i], l = avg ? x.pr[i] / x.rl[i] : x.pr[i]
            if o.alpha != 0 {
                w = (1 - Foundation.exp(-o.alpha * w)) / o.alpha
                l = (1 - Foundation.exp(-o.alpha * l)) / o.alpha
            }
            var logits = w - l
            switch o.lossType {
            case .sigmoid, .simpo:
                if o.lossType == .simpo { logits -= o.simpoGamma / beta }
                total += -(1 - eps) * Reference.logSig(beta * logits) - eps * Reference.logSig(-beta * logits)
            case .hinge: total += Swift.max(0, 1 - beta * logits)
            case .ipo: total += Foundation.pow(logits - 1 / (2 * beta), 2)
            }
        }
        let nll = o.cpoAlpha == 0 ? 0 : -x.pc.reduce(0, +) / x.cl.reduce(0, +)
        return total / Double(b) + o.cpoAlpha * nll
    }

    static func grads(_ x: PairBatch, _ o: CPOLoss.Options, h: Double = 1e-4) -> ([Double], [Double]) {
        func d(_ which: WritableKeyPath<PairBatch, [Double]>, _ i: Int) -> Double {
            var up = x, down = x
            up[keyPath: which][i] += h
            down[keyPath: which][i] -= h
            return (reference(up, o) - reference(down, o)) / (2 * h)
        }
        return (x.pc.indices.map { d(\.pc, $0) }, x.pr.indices.map { d(\.pr, $0) })
    }

    func check(_ o: CPOLoss.Options, b: Int = 5, seed: UInt64 = 1, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let batch = PairBatch.make(b, seed: seed)
        let (d, pc, pr) = batch.inputs()
        var x = CPOLoss.Inputs(policyChosen: pc, policyRejected: pr)
        x.chosenLengths = d.chosenLengths
        x.rejectedLengths = d.rejectedLengths
        let r = try CPOLoss.compute(x, options: o)
        try r.loss.backward()
        let label = "\(o.lossType.rawValue) alpha \(o.alpha) cpo_alpha \(o.cpoAlpha)"
        expectNear([try r.loss.item()], [Self.reference(batch, o)], tol: 2e-5, "\(label) loss", sourceLocation: sourceLocation)
        let (gc, gr) = Self.grads(batch, o)
        expectNear(values(pc.grad!), gc, tol: 1e-3, "\(label) d/dchosen", sourceLocation: sourceLocation)
        expectNear(values(pr.grad!), gr, tol: 1e-3, "\(label) d/drejected", sourceLocation: sourceLocation)
        #expect(r.stats.names == ["rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins",
                                  "logps/chosen", "logps/rejected", "nll_loss"], sourceLocation: sourceLocation)
    }

    @Test(arguments: CPOLossType.allCases)
    func everyTypeMatchesTheReference(_ type: CPOLossType) throws {
        var o = CPOLoss.Options()
        o.lossType = type
        try check(o)
        o.cpoAlpha = 0
        o.beta = 0.5
        try check(o, b: 3, seed: 4)
        if type == .sigmoid || type == .simpo {
            o.labelSmoothing = 0.2
            try check(o, seed: 5)
        }
        o.alpha = 0.25
        o.labelSmoothing = 0
        try check(o, seed: 6)
    }

    @Test func simpoDefaultsArePureSimPO() throws {
        let o = CPOLoss.Options.simpo()
        #expect(o.lossType == .simpo && o.cpoAlpha == 0 && o.beta == 0.1 && o.simpoGamma == 0.5)
        try check(o)
    }

    @Test func averagesAreReportedForIpoAndSimpo() throws {
        var x = CPOLoss.Inputs(policyChosen: T([-10, -20]), policyRejected: T([-6, -30]))
        x.chosenLengths = T([5, 4])
        x.rejectedLengths = T([3, 10])
        var o = CPOLoss.Options.simpo()
        let r = try CPOLoss.compute(x, options: o)
        #expect(r.stats["logps/chosen"]! == -3.5 && r.stats["logps/rejected"]! == -2.5)
        #expect(r.stats["nll_loss"]! == 0)
        o.lossType = .sigmoid
        o.cpoAlpha = 1
        let s = try CPOLoss.compute(x, options: o)
        #expect(s.stats["logps/chosen"]! == -15)
        #expect(Swift.abs(s.stats["nll_loss"]! - 30.0 / 9) < 1e-6)
        x.nllLoss = Tensor(scalar: 1.25)
        #expect(try CPOLoss.compute(x, options: o).stats["nll_loss"]! == 1.25)
    }

    @Test func refusedOptionsAndInputs() throws {
        func bad(_ fragment: String, _ change: (inout CPOLoss.Options) -> Void) {
            var o = CPOLoss.Options()
            change(&o)
            expectError(fragment) { try o.validate() }
        }
        bad("beta must be a positive finite number, got -1") { $0.beta = -1 }
        bad("label_smoothing is read only by the sigmoid and simpo losses") { $0.lossType = .ipo; $0.labelSmoothing = 0.1 }
        bad("cpo_alpha must be a finite number, got nan") { $0.cpoAlpha = .nan }
        bad("simpo_gamma must be a finite number, got inf") { $0.simpoGamma = .infinity }
        bad("alpha must be a finite number, got -inf") { $0.alpha = -.infinity }
        var x = CPOLoss.Inputs(policyChosen: T([-1, -2]), policyRejected: T([-1, -2]))
        expectError("the NLL term (cpo_alpha is not 0; or pass nll_loss) needs chosen_lengths") { try CPOLoss.compute(x, options: CPOLoss.Options()) }
        expectError("the simpo loss (it compares average log-probs) needs chosen_lengths") { try CPOLoss.compute(x, options: .simpo()) }
        x.chosenLengths = T([1, 0])
        x.rejectedLengths = T([1, 1])
        expectError("chosen_lengths must be at least 1 where average log-probs are taken, got 0 at position 2") {
            try CPOLoss.compute(x, options: .simpo())
        }
        x.nllLoss = T([1, 2])
        expectError("nll_loss must be one number (a 0-dim tensor), got size 2") { try CPOLoss.compute(x, options: CPOLoss.Options()) }
    }
}

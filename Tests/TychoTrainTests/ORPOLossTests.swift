// ORPOLossTests.swift: ORPOLoss against a Double reference of TRL 1.16's odds_ratio_loss, its gradients, its
// statistics, and the inputs it refuses.

import Foundation
import Testing
import TychoTensor
@testable import TychoTrain

@Suite struct ORPOLossTests {
    static func log1mexp(_ x: Double) -> Double { Foundation.log(-Foundation.expm1(x)) }

    /// nll - beta * mean(log sigmoid(log_odds)) on average log-probs.
    static func reference(_ x: PairBatch, beta: Double, nll: Double) -> Double {
        var total = 0.0
        for i in x.pc.indices {
            let w = x.pc[i] / x.cl[i], l = x.pr[i] / x.rl[i]
            total += Reference.logSig((w - l) - (log1mexp(w) - log1mexp(l)))
        }
        return nll - beta * total / Double(x.pc.count)
    }

    @Test func matchesTheReferenceWithGradients() throws {
        for (b, seed, beta) in [(4, UInt64(1), 0.1), (1, 2, 0.5), (7, 3, 0.25)] {
            let batch = PairBatch.make(b, seed: seed)
            let (d, pc, pr) = batch.inputs()
            let nll = Tensor(scalar: 1.75)
            try nll.setRequiresGrad(true)
            var o = ORPOLoss.Options()
            o.beta = beta
            let r = try ORPOLoss.compute(ORPOLoss.Inputs(policyChosen: pc, policyRejected: pr, chosenLengths: d.chosenLengths!,
                                                         rejectedLengths: d.rejectedLengths!, nllLoss: nll), options: o)
            try r.loss.backward()
            expectNear([try r.loss.item()], [Self.reference(batch, beta: beta, nll: 1.75)], tol: 2e-5, "orpo loss")
            let h = 1e-4
            let gc = batch.pc.indices.map { i -> Double in
                var up = batch, down = batch
                up.pc[i] += h; down.pc[i] -= h
                return (Self.reference(up, beta: beta, nll: 1.75) - Self.reference(down, beta: beta, nll: 1.75)) / (2 * h)
            }
            expectNear(values(pc.grad!), gc, tol: 1e-3, "orpo d/dchosen")
            #expect(try nll.grad!.item() == 1, "the NLL enters with weight 1")
            #expect(r.stats.names == ["rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins",
                                      "logps/chosen", "logps/rejected", "nll_loss", "log_odds_ratio", "log_odds_chosen"])
            #expect(r.stats["nll_loss"]! == 1.75)
            // loss = nll - mean(losses), losses = beta * log_odds_ratio per pair.
            #expect(Swift.abs(r.stats["log_odds_ratio"]! * beta - Double(try r.losses.mean().item())) < 1e-6)
        }
    }

    @Test func refusedInputs() throws {
        let v = T([-2, -3])
        func run(_ cl: Tensor, _ nll: Tensor) throws -> Any {
            try ORPOLoss.compute(ORPOLoss.Inputs(policyChosen: v, policyRejected: v, chosenLengths: cl, rejectedLengths: T([1, 1]),
                                                 nllLoss: nll), options: ORPOLoss.Options())
        }
        expectError("chosen_lengths must be at least 1 where average log-probs are taken, got 0 at position 1") { try run(T([0, 1]), Tensor(scalar: 1)) }
        expectError("chosen_lengths must be a vector of 2 completion token counts") { try run(T([1]), Tensor(scalar: 1)) }
        expectError("nll_loss must be one number (a 0-dim tensor), got size 3") { try run(T([1, 1]), T([1, 2, 3])) }
        _ = try run(T([1, 1]), T([1]))   // a one-element vector is taken as the number
        var o = ORPOLoss.Options()
        o.beta = .nan
        expectError("beta must be a positive finite number, got nan") { try o.validate() }
    }
}

// ORPOLoss.swift: the odds-ratio preference objective of TRL 1.16's ORPOTrainer (trl.experimental.orpo), without a
// reference model.
//
// Shapes: B pairs; inputs are the policy's summed completion log-probs (B), completion token counts (B) and the
// NLL of the chosen sequences (0-dim). With l = sum / count the average per-token log-prob:
//   log_odds = (l_w - l_l) - (log(1 - e^l_w) - log(1 - e^l_l))
//   loss     = nll_loss - beta * mean_B(log sigmoid(log_odds))
// TRL's NLL is the mean cross-entropy over prompt *and* response tokens of the chosen sequences, which the
// per-sequence completion sums cannot give, so the caller computes it (with the model's cross-entropy) and
// passes it; it is added as given, graph and all.

import Foundation
import TychoTensor

public enum ORPOLoss {
    public struct Options: Sendable {
        /// lambda of the paper (TRL calls it beta).
        public var beta: Double = 0.1

        public init() {}

        public func validate() throws {
            try PreferenceInputs.check("beta", beta, "a positive finite number") { $0 > 0 }
        }
    }

    public struct Inputs {
        public var policyChosen: Tensor      // (B) summed completion log-probs
        public var policyRejected: Tensor    // (B)
        public var chosenLengths: Tensor     // (B) completion token counts, >= 1
        public var rejectedLengths: Tensor   // (B)
        public var nllLoss: Tensor           // 0-dim

        public init(policyChosen: Tensor, policyRejected: Tensor, chosenLengths: Tensor, rejectedLengths: Tensor,
                    nllLoss: Tensor) {
            self.policyChosen = policyChosen
            self.policyRejected = policyRejected
            self.chosenLengths = chosenLengths
            self.rejectedLengths = rejectedLengths
            self.nllLoss = nllLoss
        }
    }

    public struct Result {
        /// `nll_loss - mean_B(losses)`, 0-dim, differentiable.
        public let loss: Tensor
        /// `beta * log sigmoid(log_odds)` (B), without grad (TRL's `losses`, subtracted from the NLL).
        public let losses: Tensor
        public let chosenRewards: Tensor     // (B) beta * l_w, without grad
        public let rejectedRewards: Tensor   // (B)
        /// rewards/*, logps/* (averages), nll_loss, log_odds_ratio (mean log sigmoid(log_odds)), log_odds_chosen
        /// (mean log_odds).
        public let stats: LossStats
    }

    public static func compute(_ x: Inputs, options o: Options) throws -> Result {
        try o.validate()
        let b = try PreferenceInputs.vector(x.policyChosen, "policy_chosen")
        try PreferenceInputs.vector(x.policyRejected, "policy_rejected", count: b, other: "policy_chosen")
        let cl = try CPOLoss.positive(try PreferenceInputs.lengths(x.chosenLengths, "chosen_lengths", count: b, other: "policy_chosen"), "chosen_lengths")
        let rl = try CPOLoss.positive(try PreferenceInputs.lengths(x.rejectedLengths, "rejected_lengths", count: b, other: "policy_rejected"), "rejected_lengths")
        guard x.nllLoss.count == 1 else {
            throw LossError("nll_loss must be one number (a 0-dim tensor), got size \(Tensor.describe(x.nllLoss.shape))")
        }
        let nll = x.nllLoss.rank == 0 ? x.nllLoss : try x.nllLoss.reshape([])

        let chosen = try x.policyChosen.dividing(cl), rejected = try x.policyRejected.dividing(rl)   // (B) averages
        let logOdds = try chosen.subtracting(rejected)
            .subtracting(chosen.log1mexp().subtracting(rejected.log1mexp()))                      // (B)
        let ratio = try logOdds.logSigmoid()                                                       // (B)
        let beta = Float(o.beta)
        let losses = try ratio.multiplying(beta)
        let loss = try nll.subtracting(losses.mean())

        let chosenRewards = try GradMode.with(enabled: false) { try chosen.detach().multiplying(beta) }
        let rejectedRewards = try GradMode.with(enabled: false) { try rejected.detach().multiplying(beta) }
        var stats = try DPOLoss.rewardStats(chosenRewards: chosenRewards, rejectedRewards: rejectedRewards,
                                            chosenLogps: chosen, rejectedLogps: rejected)
        stats.set("nll_loss", Double(try nll.item()))
        stats.set("log_odds_ratio", try PreferenceInputs.mean(ratio))
        stats.set("log_odds_chosen", try PreferenceInputs.mean(logOdds))
        return Result(loss: loss, losses: losses.detach(), chosenRewards: chosenRewards,
                      rejectedRewards: rejectedRewards, stats: stats)
    }
}

// CPOLoss.swift: the reference-free CPO family of TRL 1.16's CPOTrainer (trl.experimental.cpo): CPO with its
// sigmoid, hinge and ipo losses, SimPO (`loss_type="simpo"`), and AlphaPO (`alpha != 0`, or `loss_type="alphapo"`).
//
// Shapes: B pairs; inputs are the policy's summed completion log-probs (B) and completion token counts (B). As in
// TRL, the ipo and simpo losses compare *average* per-token log-probs (sum / count), the others the sums, and
// the NLL term `cpo_alpha * NLL(y_w)` is the mean negative log-prob over every chosen completion token, which is
// `-sum_B(policy_chosen) / sum_B(chosen_lengths)`; a caller with its own NLL (a different mask) passes it.
//
// Loss per pair, with l_w, l_l the (average or summed) log-probs and r = l (or AlphaPO's (1 - e^(-alpha l))/alpha):
//   sigmoid  -(1-eps) log sigmoid(beta (r_w - r_l)) - eps log sigmoid(-beta (r_w - r_l))
//   simpo    the same with r_w - r_l - gamma/beta
//   hinge    max(0, 1 - beta (r_w - r_l))
//   ipo      (r_w - r_l - 1/(2 beta))^2
// and the batch loss is mean_B + cpo_alpha * NLL. AlphaPO's reward is computed as `(1 - e^(-alpha l)) / alpha`
// rather than TRL's `(1 - (e^l)^(-alpha)) / alpha`: equal where TRL's is finite, and still finite where e^l
// underflows (log-probs below about -87, where TRL's becomes infinite).

import Foundation
import TychoTensor

/// `CPOConfig.loss_type` of TRL 1.16 ("alphapo" is the sugar for simpo with cpo_alpha 0 and is mapped by the
/// caller, as CPOConfig does).
public enum CPOLossType: String, CaseIterable, Sendable {
    case sigmoid, hinge, ipo, simpo

    /// ipo and simpo compare average per-token log-probs.
    public var usesAverageLogps: Bool { self == .ipo || self == .simpo }

    public static let names = allCases.map(\.rawValue) + ["alphapo"]
}

public enum CPOLoss {
    /// TRL's CPOConfig fields that shape the loss, with its defaults (SimPO: `simpo()` below).
    public struct Options: Sendable {
        public var beta: Double = 0.1
        public var lossType: CPOLossType = .sigmoid
        public var labelSmoothing: Double = 0
        public var cpoAlpha: Double = 1
        public var simpoGamma: Double = 0.5
        /// AlphaPO's reward shape; 0 is the log-prob itself.
        public var alpha: Double = 0

        public init() {}

        /// Pure SimPO: loss_type simpo and cpo_alpha 0 (TRL's defaults otherwise: beta 0.1, simpo_gamma 0.5).
        public static func simpo() -> Options {
            var o = Options()
            o.lossType = .simpo
            o.cpoAlpha = 0
            return o
        }

        public func validate() throws {
            try PreferenceInputs.check("beta", beta, "a positive finite number") { $0 > 0 }
            try PreferenceInputs.check("label_smoothing", labelSmoothing, "a number in [0, 1)") { $0 >= 0 && $0 < 1 }
            if labelSmoothing != 0 && (lossType == .hinge || lossType == .ipo) {
                throw LossError("label_smoothing is read only by the sigmoid and simpo losses, got it with \(lossType.rawValue)")
            }
            try PreferenceInputs.check("cpo_alpha", cpoAlpha, "a finite number")
            try PreferenceInputs.check("simpo_gamma", simpoGamma, "a finite number")
            try PreferenceInputs.check("alpha", alpha, "a finite number")
        }
    }

    public struct Inputs {
        public var policyChosen: Tensor      // (B) summed completion log-probs
        public var policyRejected: Tensor    // (B)
        public var chosenLengths: Tensor?    // (B) completion token counts: needed for ipo/simpo and for the NLL
        public var rejectedLengths: Tensor?  // (B) needed for ipo/simpo
        /// A 0-dim NLL to use instead of the one computed from the chosen sums and counts.
        public var nllLoss: Tensor?

        public init(policyChosen: Tensor, policyRejected: Tensor) {
            self.policyChosen = policyChosen
            self.policyRejected = policyRejected
        }
    }

    public struct Result {
        /// `mean_B(losses) + cpo_alpha * nll`, 0-dim, differentiable.
        public let loss: Tensor
        public let losses: Tensor             // (B) per pair, without grad
        public let chosenRewards: Tensor      // (B) beta * r_w, without grad
        public let rejectedRewards: Tensor    // (B)
        /// rewards/chosen, rewards/rejected, rewards/accuracies, rewards/margins, logps/chosen, logps/rejected
        /// (averages for ipo and simpo, as TRL logs them), nll_loss.
        public let stats: LossStats
    }

    public static func compute(_ x: Inputs, options o: Options) throws -> Result {
        try o.validate()
        let b = try PreferenceInputs.vector(x.policyChosen, "policy_chosen")
        try PreferenceInputs.vector(x.policyRejected, "policy_rejected", count: b, other: "policy_chosen")
        let chosenLengths = try x.chosenLengths.map { try PreferenceInputs.lengths($0, "chosen_lengths", count: b, other: "policy_chosen") }
        let rejectedLengths = try x.rejectedLengths.map { try PreferenceInputs.lengths($0, "rejected_lengths", count: b, other: "policy_rejected") }

        // The log-probs the loss compares: averages for ipo and simpo (TRL's get_batch_logps(average_log_prob=True)).
        var chosen = x.policyChosen, rejected = x.policyRejected
        if o.lossType.usesAverageLogps {
            let what = "the \(o.lossType.rawValue) loss (it compares average log-probs)"
            chosen = try chosen.dividing(try positive(try PreferenceInputs.required(chosenLengths, "chosen_lengths", for: what), "chosen_lengths"))
            rejected = try rejected.dividing(try positive(try PreferenceInputs.required(rejectedLengths, "rejected_lengths", for: what), "rejected_lengths"))
        }
        let nll = try nllLoss(x, chosenLengths: chosenLengths, cpoAlpha: o.cpoAlpha)

        let beta = Float(o.beta)
        let chosenReward = o.alpha != 0 ? try alphaReward(chosen, o.alpha) : chosen
        let rejectedReward = o.alpha != 0 ? try alphaReward(rejected, o.alpha) : rejected
        var logits = try chosenReward.subtracting(rejectedReward)               // (B)
        let eps = o.labelSmoothing
        let losses: Tensor
        switch o.lossType {
        case .simpo, .sigmoid:
            if o.lossType == .simpo { logits = try logits.adding(-Float(o.simpoGamma / o.beta)) }
            losses = try logits.multiplying(beta).logSigmoid().negated().multiplying(Float(1 - eps))
                .subtracting(logits.multiplying(-beta).logSigmoid().multiplying(Float(eps)))
        case .hinge:
            losses = try logits.multiplying(beta).subtracted(from: 1).relu()
        case .ipo:
            losses = try logits.adding(-Float(1 / (2 * o.beta))).pow(2)
        }
        let loss = try losses.mean().adding(nll.multiplying(Float(o.cpoAlpha)))

        let chosenRewards = try GradMode.with(enabled: false) { try chosenReward.detach().multiplying(beta) }
        let rejectedRewards = try GradMode.with(enabled: false) { try rejectedReward.detach().multiplying(beta) }
        var stats = try DPOLoss.rewardStats(chosenRewards: chosenRewards, rejectedRewards: rejectedRewards,
                                            chosenLogps: chosen, rejectedLogps: rejected)
        stats.set("nll_loss", Double(try nll.item()))
        return Result(loss: loss, losses: losses.detach(), chosenRewards: chosenRewards,
                      rejectedRewards: rejectedRewards, stats: stats)
    }

    /// AlphaPO's reward `(1 - p^-alpha) / alpha` with p = e^l, as `(1 - e^(-alpha l)) / alpha` (B).
    static func alphaReward(_ l: Tensor, _ alpha: Double) throws -> Tensor {
        try l.multiplying(Float(-alpha)).exp().subtracted(from: 1).dividing(Float(alpha))
    }

    /// Counts used as divisors: every count must be at least 1 (TRL divides without clamping).
    static func positive(_ lengths: Tensor, _ name: String) throws -> Tensor {
        if let i = lengths.toArray().firstIndex(where: { $0 < 1 }) {
            throw LossError("\(name) must be at least 1 where average log-probs are taken, got 0 at position \(i + 1)")
        }
        return lengths
    }

    /// The NLL term: 0 when cpo_alpha is 0 (TRL skips it), the given one, or `-sum(chosen) / sum(chosen_lengths)`.
    static func nllLoss(_ x: Inputs, chosenLengths: Tensor?, cpoAlpha: Double) throws -> Tensor {
        if cpoAlpha == 0 { return Tensor(scalar: 0) }
        if let n = x.nllLoss {
            guard n.count == 1 else { throw LossError("nll_loss must be one number (a 0-dim tensor), got size \(Tensor.describe(n.shape))") }
            return n.rank == 0 ? n : try n.reshape([])
        }
        let lengths = try PreferenceInputs.required(chosenLengths, "chosen_lengths", for: "the NLL term (cpo_alpha is not 0; or pass nll_loss)")
        let tokens = lengths.toArray().reduce(0, +)
        guard tokens > 0 else { throw LossError("the NLL term needs at least one chosen completion token, got chosen_lengths that sum to 0") }
        return try x.policyChosen.sum().dividing(tokens).negated()
    }
}

// DPOLoss.swift: the DPO loss family of TRL 1.16's DPOTrainer (`loss_type`, `loss_weights`, `f_divergence_type`,
// `label_smoothing`, `discopop_tau`, `use_weighting`), on per-sequence log-probabilities.
//
// Shapes: B pairs. Inputs are vectors (B): summed completion log-probs of the policy (carrying its graph) and of
// the reference, and completion token counts where a loss type needs them. The result is the batch loss, a 0-dim
// tensor whose backward reaches the policy log-probs, with the per-pair losses, the implicit rewards and TRL's
// metrics.
//
// The arithmetic is TRL's, operation for operation, in float32: constants such as 1/(2 beta) are formed in double
// and rounded once, as Python does before handing a scalar to torch; log-sigmoid is the stable form; the total is
// `sum_k w_k * mean_batch(L_k)` accumulated in the order of the types.
//
// What this file refuses, and why:
// - token-level quantities: `sft` and WPO (`use_weighting`) need only per-sequence sums and token counts, which
//   the caller passes; the metrics TRL takes from logits (`logits/*`, `entropy`, `mean_token_accuracy`,
//   `num_tokens`) belong to whoever has the logits (the trainer).
// - `ld_alpha` (LD-DPO) changes how the per-sequence log-probs are summed, so it belongs to the log-prob
//   computation, not here.
// - `bco_pair` has no running reward mean in TRL 1.16 (0.2x kept one; 1.x dropped it), so this loss holds no
//   state between calls: every call is a pure function of its inputs.
// - removed TRL options (`rpo_alpha`: use types {"sigmoid", "sft"} with weights {1, alpha}; `reference_free`:
//   pass zeros as the reference log-probs).

import Foundation
import TychoTensor

/// A `DPOConfig.loss_type` of TRL 1.16.
public enum DPOLossType: String, CaseIterable, Sendable {
    case sigmoid, hinge, ipo
    case exoPair = "exo_pair", ncaPair = "nca_pair"
    case robust
    case bcoPair = "bco_pair", sppoHard = "sppo_hard"
    case aot, aotUnpaired = "aot_unpaired"
    case apoZero = "apo_zero", apoDown = "apo_down"
    case discopop, sft
    case sigmoidNorm = "sigmoid_norm"

    /// The types TRL lets a non-default f-divergence change (those built on the chosen-rejected score difference).
    public var supportsFDivergence: Bool {
        switch self {
        case .sigmoid, .sigmoidNorm, .hinge, .ipo, .exoPair, .robust, .discopop, .sft: return true
        default: return false
        }
    }

    /// The types that read `label_smoothing` (in TRL 1.16 `sigmoid` does not: it has no cDPO smoothing).
    public var usesLabelSmoothing: Bool {
        switch self {
        case .robust, .exoPair, .aot, .aotUnpaired: return true
        default: return false
        }
    }

    /// Whether the type needs the chosen / rejected completion token counts.
    var needsChosenLengths: Bool { self == .ipo || self == .sigmoidNorm || self == .sft }
    var needsRejectedLengths: Bool { self == .ipo || self == .sigmoidNorm }

    public static let names = allCases.map(\.rawValue)
}

/// `DPOConfig.f_divergence_type`: how a log-ratio u becomes the score the losses compare.
public enum FDivergence: String, CaseIterable, Sendable {
    /// `s = u` (standard DPO).
    case reverseKL = "reverse_kl"
    /// `s = 1 - e^-u`.
    case forwardKL = "forward_kl"
    /// `s = log 2 + log sigmoid(u)`.
    case jsDivergence = "js_divergence"
    /// `s = (e^((alpha-1) u) - 1) / (alpha-1)`, the exponent clamped at 80; reverse KL when |alpha - 1| < 1e-6.
    case alphaDivergence = "alpha_divergence"

    public static let names = allCases.map(\.rawValue)
}

public enum DPOLoss {
    /// TRL's DPOConfig fields that shape the loss, with its defaults.
    public struct Options: Sendable {
        public var beta: Double = 0.1
        public var lossTypes: [DPOLossType] = [.sigmoid]
        /// One weight per loss type; nil means 1 each.
        public var lossWeights: [Double]? = nil
        public var labelSmoothing: Double = 0
        public var fDivergence: FDivergence = .reverseKL
        public var fAlphaDivergenceCoef: Double = 0.5
        public var discopopTau: Double = 0.05
        /// WPO: multiply each pair's loss by w(y_w) w(y_l), w(y) = exp(mean over tokens of log p - log sum_v p_v^2).
        public var useWeighting = false

        public init() {}

        /// Throws InvalidOption (option ranges, as TRL checks them or as they must be for a finite loss) or
        /// LossError (combinations TRL rejects).
        public func validate() throws {
            try PreferenceInputs.check("beta", beta, "a positive finite number") { $0 > 0 }
            guard !lossTypes.isEmpty else { throw LossError("type must name at least one loss type") }
            if let w = lossWeights {
                guard w.count == lossTypes.count else {
                    throw LossError("weights has \(w.count) value\(w.count == 1 ? "" : "s") but type names \(lossTypes.count) loss type\(lossTypes.count == 1 ? "" : "s"); give one weight per type")
                }
                for (i, v) in w.enumerated() { try PreferenceInputs.check("weights[\(i + 1)]", v, "a finite number") }
            }
            try PreferenceInputs.check("label_smoothing", labelSmoothing, "a number in [0, 1)") { $0 >= 0 && $0 < 1 }
            if labelSmoothing != 0 && !lossTypes.contains(where: \.usesLabelSmoothing) {
                throw LossError("label_smoothing is read only by the robust, exo_pair, aot and aot_unpaired losses (TRL 1.16's sigmoid has no smoothing); got it with \(lossTypes.map(\.rawValue).joined(separator: ", "))")
            }
            if lossTypes.contains(.robust) {
                try PreferenceInputs.check("label_smoothing", labelSmoothing, "a number in [0, 0.5) for the robust loss") { $0 < 0.5 }
            }
            if lossTypes.contains(.exoPair) && labelSmoothing == 0 {
                throw InvalidOption("label_smoothing", "greater than 0 for the exo_pair loss (the EXO paper recommends 1e-3)", got: "0")
            }
            if fDivergence != .reverseKL, let bad = lossTypes.first(where: { !$0.supportsFDivergence }) {
                throw LossError("f_divergence_type '\(fDivergence.rawValue)' works only with the sigmoid, sigmoid_norm, hinge, ipo, exo_pair, robust, discopop and sft losses, got \(bad.rawValue); use reverse_kl with it")
            }
            try PreferenceInputs.check("f_alpha_divergence_coef", fAlphaDivergenceCoef, "a finite number")
            try PreferenceInputs.check("discopop_tau", discopopTau, "a positive finite number") { $0 > 0 }
            if useWeighting, let bad = lossTypes.first(where: { $0 == .aot || $0 == .aotUnpaired || $0 == .sft }) {
                throw LossError(bad == .sft
                    ? "use_weighting does not work with the sft loss (TRL 1.16 fails on it: the batch-wide term has no per-pair weight)"
                    : "use_weighting does not work with the \(bad.rawValue) loss: it sorts the batch, which would misalign per-pair weights")
            }
        }
    }

    /// The per-sequence inputs, all vectors (B).
    public struct Inputs {
        public var policyChosen: Tensor       // (B) sum of log p_theta over chosen completion tokens
        public var policyRejected: Tensor     // (B)
        public var refChosen: Tensor          // (B) the same under the reference model
        public var refRejected: Tensor        // (B)
        /// Completion token counts (B), needed by ipo, sigmoid_norm (both), sft (chosen) and use_weighting (both).
        public var chosenLengths: Tensor? = nil
        public var rejectedLengths: Tensor? = nil
        /// For use_weighting: per sequence, the sum over completion tokens of log sum_v p_v^2 (B), without grad.
        public var chosenLogSumSqProbs: Tensor? = nil
        public var rejectedLogSumSqProbs: Tensor? = nil

        public init(policyChosen: Tensor, policyRejected: Tensor, refChosen: Tensor, refRejected: Tensor) {
            self.policyChosen = policyChosen
            self.policyRejected = policyRejected
            self.refChosen = refChosen
            self.refRejected = refRejected
        }
    }

    public struct Result {
        /// The batch loss `sum_k w_k mean_B(L_k)`, 0-dim, differentiable.
        public let loss: Tensor
        /// `L_k` per pair (B), in the order of the loss types, without grad (after the WPO weights, before w_k).
        public let losses: [Tensor]
        /// The implicit rewards `beta * (policy - reference)` (B), without grad.
        public let chosenRewards: Tensor
        public let rejectedRewards: Tensor
        /// TRL's metrics: rewards/chosen, rewards/rejected, rewards/accuracies, rewards/margins, logps/chosen,
        /// logps/rejected.
        public let stats: LossStats
    }

    /// The DPO loss of TRL 1.16 on one batch.
    /// - Parameters:
    ///   - inputs: per-sequence log-probs (B) and, where needed, token counts.
    ///   - options: the loss types and their hyperparameters.
    public static func compute(_ inputs: Inputs, options: Options) throws -> Result {
        try options.validate()
        let x = inputs
        let b = try PreferenceInputs.vector(x.policyChosen, "policy_chosen")
        try PreferenceInputs.vector(x.policyRejected, "policy_rejected", count: b, other: "policy_chosen")
        try PreferenceInputs.vector(x.refChosen, "ref_chosen", count: b, other: "policy_chosen")
        try PreferenceInputs.vector(x.refRejected, "ref_rejected", count: b, other: "policy_chosen")
        let chosenLengths = try x.chosenLengths.map { try PreferenceInputs.lengths($0, "chosen_lengths", count: b, other: "policy_chosen") }
        let rejectedLengths = try x.rejectedLengths.map { try PreferenceInputs.lengths($0, "rejected_lengths", count: b, other: "policy_rejected") }
        for t in options.lossTypes {
            if t.needsChosenLengths { _ = try PreferenceInputs.required(chosenLengths, "chosen_lengths", for: "the \(t.rawValue) loss") }
            if t.needsRejectedLengths { _ = try PreferenceInputs.required(rejectedLengths, "rejected_lengths", for: "the \(t.rawValue) loss") }
        }

        let beta = Float(options.beta)
        let chosenLogratios = try x.policyChosen.subtracting(x.refChosen)        // (B)
        let rejectedLogratios = try x.policyRejected.subtracting(x.refRejected)  // (B)
        let chosenScores = try score(chosenLogratios, options)
        let rejectedScores = try score(rejectedLogratios, options)
        let deltaScore = try chosenScores.subtracting(rejectedScores)            // (B)
        let pairWeights = options.useWeighting
            ? try wpoWeights(x, chosenLengths: chosenLengths, rejectedLengths: rejectedLengths, count: b) : nil

        let terms = Terms(beta: beta, options: options, inputs: x, chosenLogratios: chosenLogratios,
                          rejectedLogratios: rejectedLogratios, chosenScores: chosenScores,
                          rejectedScores: rejectedScores, deltaScore: deltaScore,
                          chosenLengths: chosenLengths, rejectedLengths: rejectedLengths)
        var loss: Tensor?
        var losses: [Tensor] = []
        let weights = options.lossWeights ?? Array(repeating: 1, count: options.lossTypes.count)
        for (type, weight) in zip(options.lossTypes, weights) {
            var perPair = try terms.loss(type)                                    // (B)
            if let pairWeights { perPair = try perPair.multiplying(pairWeights) }
            losses.append(perPair.detach())
            let term = try perPair.mean().multiplying(Float(weight))
            loss = try loss.map { try $0.adding(term) } ?? term
        }

        let chosenRewards = try GradMode.with(enabled: false) { try chosenLogratios.detach().multiplying(beta) }
        let rejectedRewards = try GradMode.with(enabled: false) { try rejectedLogratios.detach().multiplying(beta) }
        let stats = try rewardStats(chosenRewards: chosenRewards, rejectedRewards: rejectedRewards,
                                    chosenLogps: x.policyChosen, rejectedLogps: x.policyRejected)
        // The loop ran at least once (validate rejects an empty type list).
        return Result(loss: loss ?? Tensor(scalar: 0), losses: losses, chosenRewards: chosenRewards,
                      rejectedRewards: rejectedRewards, stats: stats)
    }

    /// The six reward and log-prob metrics every paired objective logs (DPO, CPO, SimPO, ORPO).
    static func rewardStats(chosenRewards: Tensor, rejectedRewards: Tensor,
                            chosenLogps: Tensor, rejectedLogps: Tensor) throws -> LossStats {
        try GradMode.with(enabled: false) {
            var s = LossStats()
            s.set("rewards/chosen", try PreferenceInputs.mean(chosenRewards))
            s.set("rewards/rejected", try PreferenceInputs.mean(rejectedRewards))
            s.set("rewards/accuracies", try PreferenceInputs.fractionGreater(chosenRewards, rejectedRewards))
            s.set("rewards/margins", try PreferenceInputs.mean(try chosenRewards.subtracting(rejectedRewards)))
            s.set("logps/chosen", try PreferenceInputs.mean(chosenLogps.detach()))
            s.set("logps/rejected", try PreferenceInputs.mean(rejectedLogps.detach()))
            return s
        }
    }

    // MARK: scores and weights

    /// The f-divergence score of log-ratios u (B).
    static func score(_ u: Tensor, _ o: Options) throws -> Tensor {
        switch o.fDivergence {
        case .reverseKL:
            return u
        case .forwardKL:
            return try u.negated().exp().subtracted(from: 1)                      // 1 - e^-u
        case .jsDivergence:
            return try u.logSigmoid().adding(Float(Foundation.log(2.0)))          // log 2 + log sigmoid(u)
        case .alphaDivergence:
            let a = o.fAlphaDivergenceCoef
            if Swift.abs(a - 1) < 1e-6 { return u }
            let t = try u.multiplying(Float(a - 1)).clamp(min: nil, max: 80)     // exp stays finite in float32
            return try t.exp().adding(-1).multiplying(Float(1 / (a - 1)))
        }
    }

    /// WPO's per-pair weight w(y_w) w(y_l) (B), without grad.
    static func wpoWeights(_ x: Inputs, chosenLengths: Tensor?, rejectedLengths: Tensor?, count b: Int) throws -> Tensor {
        let what = "use_weighting"
        let cl = try PreferenceInputs.required(chosenLengths, "chosen_lengths", for: what)
        let rl = try PreferenceInputs.required(rejectedLengths, "rejected_lengths", for: what)
        guard let cs = x.chosenLogSumSqProbs, let rs = x.rejectedLogSumSqProbs else {
            throw LossError("use_weighting needs chosen_log_sum_sq_probs and rejected_log_sum_sq_probs (per sequence, the sum over completion tokens of log sum_v p_v^2)")
        }
        try PreferenceInputs.vector(cs, "chosen_log_sum_sq_probs", count: b, other: "policy_chosen")
        try PreferenceInputs.vector(rs, "rejected_log_sum_sq_probs", count: b, other: "policy_chosen")
        return try GradMode.with(enabled: false) {
            func weight(_ logps: Tensor, _ lss: Tensor, _ lengths: Tensor) throws -> Tensor {
                try logps.detach().subtracting(lss.detach()).dividing(lengths.clamp(min: 1, max: nil)).exp()
            }
            return try weight(x.policyChosen, cs, cl).multiplying(weight(x.policyRejected, rs, rl))
        }
    }

    // MARK: the per-pair losses

    /// The quantities the loss types are built from, and one function per type.
    struct Terms {
        let beta: Float
        let options: Options
        let inputs: Inputs
        let chosenLogratios: Tensor, rejectedLogratios: Tensor   // (B) policy - reference
        let chosenScores: Tensor, rejectedScores: Tensor         // (B) f-divergence scores
        let deltaScore: Tensor                                   // (B) chosen - rejected score
        let chosenLengths: Tensor?, rejectedLengths: Tensor?     // (B) token counts

        var eps: Double { options.labelSmoothing }

        /// The per-pair loss (B) of `type`.
        func loss(_ type: DPOLossType) throws -> Tensor {
            switch type {
            case .sigmoid:
                return try deltaScore.multiplying(beta).logSigmoid().negated()
            case .hinge:
                return try deltaScore.multiplying(beta).subtracted(from: 1).relu()
            case .ipo:
                // Length-normalised scores (TRL 1.x, confirmed with the IPO authors), then (delta - 1/(2 beta))^2.
                return try normalisedDelta().adding(-Float(1 / (2 * options.beta))).pow(2)
            case .exoPair:
                let e = Double(Float(eps))
                let z = try deltaScore.multiplying(beta), zn = try deltaScore.multiplying(-beta)
                let logPw = Float(Foundation.log1p(-e)), logPl = Float(Foundation.log(e))
                let winner = try z.sigmoid().multiplying(z.logSigmoid().adding(-logPw))
                let loser = try zn.sigmoid().multiplying(zn.logSigmoid().adding(-logPl))
                return try winner.adding(loser)
            case .ncaPair:
                let cr = try chosenLogratios.multiplying(beta), rr = try rejectedLogratios.multiplying(beta)
                return try cr.logSigmoid().negated()
                    .subtracting(cr.negated().logSigmoid().multiplying(0.5))
                    .subtracting(rr.negated().logSigmoid().multiplying(0.5))
            case .robust:
                let clean = try deltaScore.multiplying(beta).logSigmoid().multiplying(Float(-(1 - eps)))
                let flipped = try deltaScore.multiplying(-beta).logSigmoid().multiplying(Float(-eps))
                return try clean.subtracting(flipped).dividing(Float(1 - 2 * eps))
            case .bcoPair:
                let cr = try chosenLogratios.multiplying(beta), rr = try rejectedLogratios.multiplying(beta)
                return try cr.logSigmoid().negated().subtracting(rr.negated().logSigmoid())
            case .sppoHard:
                let half = Float(0.5 / options.beta)
                return try chosenLogratios.adding(-half).pow(2).adding(rejectedLogratios.adding(half).pow(2))
            case .aot:
                let logratios = try inputs.policyChosen.subtracting(inputs.policyRejected)
                let refLogratios = try inputs.refChosen.subtracting(inputs.refRejected)
                return try smoothedSigmoid(PreferenceInputs.sortedAscending(logratios)
                    .subtracting(PreferenceInputs.sortedAscending(refLogratios)))
            case .aotUnpaired:
                return try smoothedSigmoid(PreferenceInputs.sortedAscending(chosenLogratios)
                    .subtracting(PreferenceInputs.sortedAscending(rejectedLogratios)))
            case .apoZero:
                return try chosenLogratios.multiplying(beta).sigmoid().subtracted(from: 1)
                    .adding(rejectedLogratios.multiplying(beta).sigmoid())
            case .apoDown:
                return try chosenLogratios.multiplying(beta).sigmoid()
                    .adding(chosenLogratios.subtracting(rejectedLogratios).multiplying(beta).sigmoid().subtracted(from: 1))
            case .discopop:
                // (1-m)(-log sigmoid(z)) + m e^-z with m = sigmoid(z/tau). TRL forms e^-z and m apart, so below
                // z of about -88 it multiplies an infinite e^-z by a zero m and returns NaN; m e^-z is formed here as
                // exp(log sigmoid(z/tau) - z), equal to TRL's product wherever that is finite and finite beyond.
                let logits = try deltaScore.multiplying(beta)
                let scaled = try logits.dividing(Float(options.discopopTau))
                let logistic = try logits.logSigmoid().negated()
                let exponential = try scaled.logSigmoid().subtracting(logits).exp()
                return try logistic.multiplying(scaled.sigmoid().subtracted(from: 1)).adding(exponential)
            case .sft:
                // -mean over every chosen completion token of log p: the batch's summed log-probs over its token count.
                let lengths = try PreferenceInputs.required(chosenLengths, "chosen_lengths", for: "the sft loss")
                let tokens = lengths.toArray().reduce(0, +)
                guard tokens > 0 else { throw LossError("the sft loss needs at least one chosen completion token, got chosen_lengths that sum to 0") }
                return try inputs.policyChosen.sum().dividing(tokens).negated().expand([inputs.policyChosen.count])
            case .sigmoidNorm:
                return try normalisedDelta().multiplying(beta).logSigmoid().negated()
            }
        }

        /// `s(c)/|y_w| - s(r)/|y_l|` with counts clamped at 1 (B).
        func normalisedDelta() throws -> Tensor {
            let cl = try PreferenceInputs.required(chosenLengths, "chosen_lengths", for: "a length-normalised loss")
            let rl = try PreferenceInputs.required(rejectedLengths, "rejected_lengths", for: "a length-normalised loss")
            return try chosenScores.dividing(cl.clamp(min: 1, max: nil))
                .subtracting(rejectedScores.dividing(rl.clamp(min: 1, max: nil)))
        }

        /// `-(1-eps) log sigmoid(beta d) - eps log sigmoid(-beta d)` (B), the AOT losses' form.
        func smoothedSigmoid(_ d: Tensor) throws -> Tensor {
            try d.multiplying(beta).logSigmoid().negated().multiplying(Float(1 - eps))
                .subtracting(d.multiplying(-beta).logSigmoid().multiplying(Float(eps)))
        }
    }
}

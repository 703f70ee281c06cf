// GRPOLoss.swift: the policy losses of TRL 1.16's GRPOTrainer (`_compute_loss`), on per-token log-probabilities:
// every `loss_type` (dapo, grpo, bnpo, dr_grpo, cispo, sapo, luspo, vespo), token- or sequence-level importance
// sampling (GSPO), two-sided clipping (`delta`), the k3 KL estimate with TRL's bias correction, and TRL's metrics.
//
// Shapes: B completions, T completion positions. `logps` (B, T) are the policy's per-token log-probs and carry its
// graph; `oldLogps` (the sampling policy's, default logps without grad: TRL's num_iterations = 1), `refLogps` (the
// reference's, read when beta > 0), `mask` (1 on completion tokens, 0 on padding) and `entropies` are (B, T)
// without grad; advantages are (B) or (B, T). The loss is a 0-dim tensor whose backward reaches `logps`.
//
// The per-token term, with r = exp(logps - oldLogps) per token ("token") or r = exp(sum(M (logps - old)) /
// max(sum M, 1)) per sequence ("sequence", shape (B, 1)):
//   dapo grpo bnpo dr_grpo luspo  -min(r' A, clamp(r, 1 - epsilon, 1 + epsilon_high) A), r' = min(r, delta) when
//                                  delta is set (INTELLECT-2's two-sided clipping), else r
//   cispo                          -sg(min(r, epsilon_high)) A logps (MiniMax-M1's clipped IS weight, REINFORCE)
//   sapo                           -(4 / tau) sigmoid(tau (r - 1)) A, tau = sapo_temperature_pos if A > 0 else _neg
//   vespo                          -sg(phi) A logps, phi = e^lambda w^k e^(-lambda w) with w the sequence's summed
//                                  log-ratio exponentiated (each token's clamped to [-20, 20], the sum to
//                                  [log 1e-8, 20]); (k, lambda) = (vespo_k_pos, vespo_lambda_pos) if A >= 0 else
//                                  the _neg pair; NaN and infinite phi become 0 (TRL's get_gamma_weights)
// plus beta * KL_t when beta > 0, KL_t = exp(ref - logps) - (ref - logps) - 1 (Schulman's k3), multiplied by r
// (with its gradient) when use_bias_correction_kl (TRL's default; DeepSeek-V3.2's unbiased estimate).
//
// Aggregation over the mask M (TRL's, per loss type):
//   grpo, sapo                 mean_i( sum_t l M / max(sum_t M, 1) )
//   bnpo                       sum l M / max(sum M, 1)
//   dr_grpo                    sum l M / (B * max_completion_length)
//   dapo, cispo, vespo         sum l M / max(num_items_in_batch, 1); num_items_in_batch defaults to sum M (TRL's
//                              count of the generation batch's tokens: pass the total over every micro-batch of an
//                              accumulation window to match TRL under gradient accumulation)
//   luspo                      mean_i( sum_t l M )  (LUSPO: each sequence's loss scaled by its length)
// TRL divides the other types by the number of accumulation steps; that division is the trainer's, not done here.
//
// Metrics (TRL's names and formulas): `completions/mean_length`, `min_length`, `max_length` (from the mask's row
// sums; `clipped_ratio` and `*_terminated_length` too when the caller says which completions were truncated), `kl`
// (beta > 0), `entropy` (when entropies are given), and per loss type `clip_ratio/low_mean`, `high_mean`,
// `region_mean`, `low_min`, `high_max` (clipping types), `cispo_clip_ratio` (cispo) or `vespo/phi_seq_mean`
// (vespo). Means are TRL's `global_masked_mean` (over masked tokens, or over sequences for a (B, 1) quantity) and
// `masked_seq_mean` with NaN-ignoring min/max (an empty completion counts as NaN there).
//
// Not here, because they are not the loss's: the entropy bonus and top_entropy_quantile masking (they need the
// logits' entropies per step and state across steps), vLLM's importance-sampling correction and the off-policy
// sequence mask (they need the sampler's log-probs), the MoE auxiliary loss.

import Foundation
import TychoTensor

/// `GRPOConfig.loss_type` of TRL 1.16.
public enum GRPOLossType: String, CaseIterable, Sendable {
    case dapo, grpo, bnpo
    case drGrpo = "dr_grpo"
    case cispo, sapo, luspo, vespo

    /// The types built on PPO's clipped surrogate (the ones that log clip_ratio/*).
    public var clips: Bool {
        switch self {
        case .grpo, .bnpo, .drGrpo, .dapo, .luspo: return true
        default: return false
        }
    }

    public static let names = allCases.map(\.rawValue)
}

/// `GRPOConfig.importance_sampling_level`.
public enum GRPOImportanceSampling: String, CaseIterable, Sendable {
    case token, sequence
    public static let names = allCases.map(\.rawValue)
}

public enum GRPOLoss {
    /// GRPOConfig's fields that shape the loss, with TRL 1.16's defaults.
    public struct Options: Sendable {
        public var type: GRPOLossType = .dapo
        public var epsilon: Double = 0.2
        /// nil: epsilon.
        public var epsilonHigh: Double? = nil
        public var delta: Double? = nil
        public var beta: Double = 0
        public var importanceSampling: GRPOImportanceSampling = .token
        /// dr_grpo's constant (TRL's config default is 512; here it must be given for dr_grpo).
        public var maxCompletionLength: Int? = nil
        public var useBiasCorrectionKL = true
        public var sapoTemperaturePos: Double = 1.0
        public var sapoTemperatureNeg: Double = 1.05
        public var vespoKPos: Double = 2.0
        public var vespoLambdaPos: Double = 3.0
        public var vespoKNeg: Double = 3.0
        public var vespoLambdaNeg: Double = 2.0
        /// dapo / cispo / vespo's token count; nil: the mask's sum.
        public var numItemsInBatch: Double? = nil

        public init() {}

        public var epsilonLow: Double { epsilon }
        public var resolvedEpsilonHigh: Double { epsilonHigh ?? epsilon }

        /// Throws InvalidOption (values that cannot give a finite, meaningful loss) or LossError.
        public func validate() throws {
            try PreferenceInputs.check("epsilon", epsilon, "a finite number >= 0") { $0 >= 0 }
            if let e = epsilonHigh { try PreferenceInputs.check("epsilon_high", e, "a finite number >= 0") { $0 >= 0 } }
            if let d = delta { try PreferenceInputs.check("delta", d, "a positive finite number") { $0 > 0 } }
            try PreferenceInputs.check("beta", beta, "a finite number >= 0") { $0 >= 0 }
            if let m = maxCompletionLength, m < 1 {
                throw InvalidOption("max_completion_length", "a positive integer", got: String(m))
            }
            if type == .drGrpo && maxCompletionLength == nil {
                throw LossError("the dr_grpo loss needs max_completion_length (it divides the token sum by B * max_completion_length)")
            }
            try PreferenceInputs.check("sapo_temperature_pos", sapoTemperaturePos, "a positive finite number") { $0 > 0 }
            try PreferenceInputs.check("sapo_temperature_neg", sapoTemperatureNeg, "a positive finite number") { $0 > 0 }
            try PreferenceInputs.check("vespo_k_pos", vespoKPos, "a finite number")
            try PreferenceInputs.check("vespo_lambda_pos", vespoLambdaPos, "a finite number")
            try PreferenceInputs.check("vespo_k_neg", vespoKNeg, "a finite number")
            try PreferenceInputs.check("vespo_lambda_neg", vespoLambdaNeg, "a finite number")
            if let v = numItemsInBatch { try PreferenceInputs.check("num_items_in_batch", v, "a finite number >= 0") { $0 >= 0 } }
        }
    }

    /// The per-token inputs.
    public struct Inputs {
        public var logps: Tensor            // (B, T) the policy's, with its graph
        public var advantages: Tensor       // (B) or (B, T)
        public var mask: Tensor             // (B, T) 0/1
        public var oldLogps: Tensor? = nil  // (B, T); nil: logps without grad
        public var refLogps: Tensor? = nil  // (B, T); needed when beta > 0
        public var entropies: Tensor? = nil // (B, T); for the `entropy` metric
        /// Per completion, whether it was cut at the length limit (did not end with EOS); for completions/clipped_ratio.
        public var truncated: [Bool]? = nil

        public init(logps: Tensor, advantages: Tensor, mask: Tensor) {
            self.logps = logps
            self.advantages = advantages
            self.mask = mask
        }
    }

    public struct Result {
        /// The batch loss (0-dim), differentiable with respect to logps.
        public let loss: Tensor
        public let stats: LossStats
        /// The per-token loss before masking (B, T), or (B, 1) when every term is per sequence; without grad.
        public let perTokenLoss: Tensor
        /// The importance ratios r (B, T) or (B, 1) for "sequence", before delta; without grad.
        public let ratios: Tensor
        /// The per-token KL term (B, T) (times r with the bias correction), when beta > 0.
        public let kl: Tensor?
        /// 0/1 where the clipped surrogate clipped low (r < 1 - epsilon, A < 0), high (r > 1 + epsilon_high, A > 0),
        /// and either: the clipping types only.
        public let lowClipped: Tensor?
        public let highClipped: Tensor?
        public let regionClipped: Tensor?
        /// cispo: 0/1 where r > epsilon_high and A > 0.
        public let cispoClipped: Tensor?
        /// vespo: the sequence weights phi (B, 1).
        public let phi: Tensor?
    }

    // MARK: checks

    static func matrix(_ t: Tensor, _ name: String, like shape: [Int]?) throws {
        guard t.rank == 2 else {
            throw LossError("\(name) must be a matrix of per-token values (B, T), got size \(Tensor.describe(t.shape))")
        }
        if let shape, t.shape != shape {
            throw LossError("\(name) has size \(Tensor.describe(t.shape)) but logps has size \(Tensor.describe(shape))")
        }
    }

    static func validate(_ x: Inputs, _ o: Options) throws {
        try o.validate()
        try matrix(x.logps, "logps", like: nil)
        let shape = x.logps.shape, b = shape[0]
        guard b > 0, shape[1] > 0 else { throw LossError("logps is empty (size \(Tensor.describe(shape))): a batch needs at least one completion position") }
        try matrix(x.mask, "mask", like: shape)
        if let i = x.mask.toArray().firstIndex(where: { $0 != 0 && $0 != 1 }) {
            throw LossError("mask must hold 0 and 1 (1 on completion tokens), got \(x.mask.toArray()[i]) at row \(i / shape[1] + 1), column \(i % shape[1] + 1)")
        }
        if let t = x.oldLogps { try matrix(t, "old_logps", like: shape) }
        if let t = x.refLogps { try matrix(t, "ref_logps", like: shape) }
        if let t = x.entropies { try matrix(t, "entropies", like: shape) }
        let a = x.advantages
        guard (a.rank == 1 && a.count == b) || (a.rank == 2 && a.shape == shape) else {
            throw LossError("advantages must be a vector of \(b) (one per completion) or a matrix of size \(Tensor.describe(shape)) like logps, got size \(Tensor.describe(a.shape))")
        }
        if o.beta != 0 && x.refLogps == nil {
            throw LossError("beta > 0 needs ref_logps (the reference model's per-token log-probs) for the KL term")
        }
        if let t = x.truncated, t.count != b {
            throw LossError("truncated has \(t.count) value\(t.count == 1 ? "" : "s") but logps has \(b) completion\(b == 1 ? "" : "s")")
        }
    }

    // MARK: the loss

    public static func compute(_ x: Inputs, options o: Options) throws -> Result {
        try validate(x, o)
        let b = x.logps.shape[0]
        let logps = x.logps
        let mask = x.mask.detach()
        let old = (x.oldLogps ?? logps).detach()
        let advantages = x.advantages.rank == 1 ? try x.advantages.detach().unsqueeze(1) : x.advantages.detach()
        let epsLow = Float(1 - o.epsilonLow), epsHigh = Float(1 + o.resolvedEpsilonHigh)

        let logRatio = try logps.subtracting(old)                                           // (B, T)
        let logWeights: Tensor
        switch o.importanceSampling {
        case .token:
            logWeights = logRatio
        case .sequence:
            logWeights = try logRatio.multiplying(mask).sum(dim: 1)
                .dividing(mask.sum(dim: 1).clamp(min: 1, max: nil)).unsqueeze(1)          // (B, 1)
        }
        let coef1 = try logWeights.exp()

        var perTokenKL: Tensor?
        if o.beta != 0, let ref = x.refLogps?.detach() {
            let d = try ref.subtracting(logps)
            var kl = try d.exp().subtracting(d).adding(-1)
            if o.useBiasCorrectionKL { kl = try kl.multiplying(coef1) }
            perTokenKL = kl
        }

        var perTokenLoss: Tensor
        var clippedRatio = coef1     // the ratio the clip metrics test (after delta for the clipping types)
        var phi: Tensor?
        switch o.type {
        case .cispo:
            let clamped = try GradMode.with(enabled: false) {
                try coef1.clamp(min: nil, max: Float(o.resolvedEpsilonHigh))
            }.detach()
            perTokenLoss = try clamped.negated().multiplying(advantages).multiplying(logps)
        case .grpo, .bnpo, .drGrpo, .dapo, .luspo:
            let coef2 = try coef1.clamp(min: epsLow, max: epsHigh)
            if let delta = o.delta { clippedRatio = try coef1.clamp(min: nil, max: Float(delta)) }
            let loss1 = try clippedRatio.multiplying(advantages)
            let loss2 = try coef2.multiplying(advantages)
            perTokenLoss = try loss1.minimum(loss2).negated()
        case .sapo:
            let temperatures = try Tensor.where(try advantages.compared(.gt, 0),
                                                Tensor(scalar: Float(o.sapoTemperaturePos)),
                                                Tensor(scalar: Float(o.sapoTemperatureNeg)))
            let soft = try temperatures.multiplying(coef1.adding(-1)).sigmoid().multiplying(4).dividing(temperatures)
            perTokenLoss = try soft.negated().multiplying(advantages)
        case .vespo:
            let weights = try gammaWeights(advantages: advantages, logRatio: logRatio.detach(), mask: mask, options: o)
            phi = weights
            perTokenLoss = try weights.negated().multiplying(advantages).multiplying(logps)
        }
        if let kl = perTokenKL { perTokenLoss = try perTokenLoss.adding(kl.multiplying(Float(o.beta))) }

        let masked = try perTokenLoss.multiplying(mask)
        let loss: Tensor
        switch o.type {
        case .grpo, .sapo:
            loss = try masked.sum(dim: 1).dividing(mask.sum(dim: 1).clamp(min: 1, max: nil)).mean()
        case .bnpo:
            loss = try masked.sum().dividing(mask.sum().clamp(min: 1, max: nil))
        case .drGrpo:
            loss = try masked.sum().dividing(Float(Double(b) * Double(o.maxCompletionLength ?? 1)))   // no Int overflow
        case .dapo, .cispo, .vespo:
            let items = try o.numItemsInBatch.map { Float($0) } ?? (try mask.sum().item())
            loss = try masked.sum().dividing(Swift.max(items, 1))
        case .luspo:
            loss = try masked.sum(dim: 1).mean()
        }

        // Metrics and details, without grad.
        return try GradMode.with(enabled: false) {
            var stats = LossStats()
            let lengths = try mask.sum(dim: 1).toArray()
            stats.set("completions/mean_length", Double(Float(lengths.reduce(0.0) { $0 + Double($1) } / Double(b))))
            stats.set("completions/min_length", Double(lengths.min() ?? 0))
            stats.set("completions/max_length", Double(lengths.max() ?? 0))
            if let truncated = x.truncated {
                stats.set("completions/clipped_ratio", Double(Float(Double(truncated.filter { $0 }.count) / Double(b))))
                var terminated = zip(lengths, truncated).filter { !$0.1 }.map(\.0)
                if terminated.isEmpty { terminated = [0] }
                stats.set("completions/mean_terminated_length",
                          Double(Float(terminated.reduce(0.0) { $0 + Double($1) } / Double(terminated.count))))
                stats.set("completions/min_terminated_length", Double(terminated.min() ?? 0))
                stats.set("completions/max_terminated_length", Double(terminated.max() ?? 0))
            }
            if let kl = perTokenKL { stats.set("kl", try globalMaskedMean(kl.detach(), mask)) }
            if let e = x.entropies { stats.set("entropy", try globalMaskedMean(e.detach(), mask)) }

            var low: Tensor?, high: Tensor?, region: Tensor?, cispoClipped: Tensor?
            let r = clippedRatio.detach()
            if o.type.clips {
                let l = try r.compared(.lt, epsLow).multiplying(advantages.compared(.lt, 0))
                let h = try r.compared(.gt, epsHigh).multiplying(advantages.compared(.gt, 0))
                let either = try l.maximum(h)
                stats.set("clip_ratio/low_mean", try globalMaskedMean(l, mask))
                stats.set("clip_ratio/high_mean", try globalMaskedMean(h, mask))
                stats.set("clip_ratio/region_mean", try globalMaskedMean(either, mask))
                stats.set("clip_ratio/low_min", Double(nanExtreme(try maskedSeqMean(l, mask), largest: false)))
                stats.set("clip_ratio/high_max", Double(nanExtreme(try maskedSeqMean(h, mask), largest: true)))
                (low, high, region) = (l, h, either)
            } else if o.type == .cispo {
                let c = try r.compared(.gt, Float(o.resolvedEpsilonHigh)).multiplying(advantages.compared(.gt, 0))
                stats.set("cispo_clip_ratio", try globalMaskedMean(c, mask))
                cispoClipped = c
            } else if o.type == .vespo, let phi {
                stats.set("vespo/phi_seq_mean", try globalMaskedMean(phi, mask))
            }
            return Result(loss: loss, stats: stats, perTokenLoss: perTokenLoss.detach(), ratios: coef1.detach(),
                          kl: perTokenKL?.detach(), lowClipped: low, highClipped: high, regionClipped: region,
                          cispoClipped: cispoClipped, phi: phi)
        }
    }

    /// VESPO's sequence weights phi (B, 1) or (B, T) for per-token advantages, without grad (TRL's
    /// get_gamma_weights without a vLLM importance-sampling ratio).
    static func gammaWeights(advantages: Tensor, logRatio: Tensor, mask: Tensor, options o: Options) throws -> Tensor {
        try GradMode.with(enabled: false) {
            let lowerClamp = Float(Foundation.log(1e-8))
            let seq = try logRatio.clamp(min: -20, max: 20).multiplying(mask).sum(dim: 1, keepdim: true)   // (B, 1)
            let logW = try seq.clamp(min: lowerClamp, max: 20)
            let w = try logW.exp()
            let nonneg = try advantages.compared(.ge, 0)
            let k = try Tensor.where(nonneg, Tensor(scalar: Float(o.vespoKPos)), Tensor(scalar: Float(o.vespoKNeg)))
            let lambda = try Tensor.where(nonneg, Tensor(scalar: Float(o.vespoLambdaPos)), Tensor(scalar: Float(o.vespoLambdaNeg)))
                .clamp(min: 1e-4, max: nil)
            let logPhi = try lambda.adding(k.multiplying(logW)).subtracting(lambda.multiplying(w))
            return try logPhi.exp().map { $0.isFinite ? $0 : 0 }
        }
    }

    // MARK: TRL's metric reductions

    /// TRL's `global_masked_mean` on one process: over sequences for a (B, 1) quantity, else over masked positions.
    static func globalMaskedMean(_ x: Tensor, _ mask: Tensor) throws -> Double {
        if x.shape[1] == 1 {
            return Double(try x.sum().item() / Swift.max(Float(x.shape[0]), 1))
        }
        let total = try x.multiplying(mask).sum().item()
        return Double(total / Swift.max(try mask.sum().item(), 1))
    }

    /// TRL's `masked_seq_mean`: per sequence (B), over its masked positions (NaN for an empty one), or the (B, 1)
    /// values themselves.
    static func maskedSeqMean(_ x: Tensor, _ mask: Tensor) throws -> [Float] {
        if x.shape[1] == 1 { return try x.squeeze(1).contiguous().toArray() }
        let sums = try x.multiplying(mask).sum(dim: 1).toArray()
        let counts = try mask.sum(dim: 1).toArray()
        return zip(sums, counts).map { $0 / $1 }
    }

    /// TRL's nanmin / nanmax: the extreme of the non-NaN values, NaN when there are none.
    static func nanExtreme(_ v: [Float], largest: Bool) -> Float {
        let finite = v.filter { !$0.isNaN }
        guard let first = finite.first else { return .nan }
        return finite.dropFirst().reduce(first) { largest ? Swift.max($0, $1) : Swift.min($0, $1) }
    }
}

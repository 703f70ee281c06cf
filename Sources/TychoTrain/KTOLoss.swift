// KTOLoss.swift: the unpaired objective of TRL 1.16's KTOTrainer (`loss_type` "kto" or "apo_zero_unpaired",
// `desirable_weight`, `undesirable_weight`).
//
// Shapes: B examples, each a completion labelled desirable (true) or undesirable (false); inputs are summed
// completion log-probs of the policy and the reference (B), and for "kto" the KL estimate's inputs: the summed
// log-probs of mismatched (prompt, completion) pairs under the policy and the reference (K, usually B: TRL pairs
// each prompt with the next example's completion).
//   z0 = max(0, mean_K(policy_kl - ref_kl)), without grad (kto; 0 for apo_zero_unpaired)
//   desirable:   w_d (1 - sigmoid(beta (c - z0)))       (apo_zero_unpaired: w_d (1 - sigmoid(beta c)))
//   undesirable: w_u (1 - sigmoid(beta (z0 - r)))       (apo_zero_unpaired: w_u sigmoid(beta r))
// where c, r are the policy - reference log-ratios; the loss is the NaN-ignoring mean over the desirable losses
// followed by the undesirable ones (TRL's `torch.cat(...).nanmean()`). TRL averages z0 across devices too; on one
// process that is the mean above.

import Foundation
import TychoTensor

public enum KTOLossType: String, CaseIterable, Sendable {
    case kto
    case apoZeroUnpaired = "apo_zero_unpaired"

    public static let names = allCases.map(\.rawValue)
}

public enum KTOLoss {
    public struct Options: Sendable {
        public var beta: Double = 0.1
        public var lossType: KTOLossType = .kto
        public var desirableWeight: Double = 1
        public var undesirableWeight: Double = 1

        public init() {}

        public func validate() throws {
            try PreferenceInputs.check("beta", beta, "a positive finite number") { $0 > 0 }
            try PreferenceInputs.check("desirable_weight", desirableWeight, "a finite number >= 0") { $0 >= 0 }
            try PreferenceInputs.check("undesirable_weight", undesirableWeight, "a finite number >= 0") { $0 >= 0 }
        }
    }

    public struct Inputs {
        public var policy: Tensor        // (B) summed completion log-probs
        public var ref: Tensor           // (B)
        public var labels: [Bool]        // (B) true: desirable
        public var policyKL: Tensor?     // (K) mismatched pairs under the policy (kto only)
        public var refKL: Tensor?        // (K) the same under the reference

        public init(policy: Tensor, ref: Tensor, labels: [Bool]) {
            self.policy = policy
            self.ref = ref
            self.labels = labels
        }
    }

    public struct Result {
        /// The NaN-ignoring mean of `losses`, 0-dim, differentiable.
        public let loss: Tensor
        /// Weighted per-example losses, desirable examples first then undesirable ones, each in batch order
        /// (TRL's order), without grad.
        public let losses: Tensor
        /// beta * log-ratio of the desirable (undesirable) examples, in batch order, without grad; may be empty.
        public let chosenRewards: Tensor
        public let rejectedRewards: Tensor
        /// The reference point z0 (0 for apo_zero_unpaired).
        public let kl: Double
        /// kl, and where the batch has such examples rewards/chosen, logps/chosen, rewards/rejected,
        /// logps/rejected (NaN-ignoring sums over the count), rewards/margins (when it has both).
        public let stats: LossStats
    }

    public static func compute(_ x: Inputs, options o: Options) throws -> Result {
        try o.validate()
        let b = try PreferenceInputs.vector(x.policy, "policy")
        try PreferenceInputs.vector(x.ref, "ref", count: b, other: "policy")
        guard x.labels.count == b else {
            throw LossError("label has \(x.labels.count) value\(x.labels.count == 1 ? "" : "s") but policy has \(b)")
        }
        let kl: Float
        switch o.lossType {
        case .kto:
            guard let pk = x.policyKL, let rk = x.refKL else {
                throw LossError("the kto loss needs policy_kl and ref_kl: summed log-probs of mismatched (prompt, completion) pairs under the policy and the reference, for its KL estimate")
            }
            guard b > 1 else {
                throw LossError("the kto loss needs a batch of at least 2 examples (with 1 the KL estimate equals the implied reward)")
            }
            let k = try PreferenceInputs.vector(pk, "policy_kl")
            try PreferenceInputs.vector(rk, "ref_kl", count: k, other: "policy_kl")
            kl = try GradMode.with(enabled: false) { Swift.max(try pk.detach().subtracting(rk.detach()).mean().item(), 0) }
        case .apoZeroUnpaired:
            guard x.policyKL == nil, x.refKL == nil else {
                throw LossError("the apo_zero_unpaired loss has no KL estimate: drop policy_kl and ref_kl")
            }
            kl = 0
        }

        let beta = Float(o.beta)
        let chosenIndex = x.labels.indices.filter { x.labels[$0] }
        let rejectedIndex = x.labels.indices.filter { !x.labels[$0] }
        func pick(_ t: Tensor, _ index: [Int]) throws -> Tensor {
            try t.indexSelect(0, index: try Tensor(shape: [index.count], values: index.map { Float($0) }))
        }
        var parts: [Tensor] = []
        var chosenRewards = try Tensor.zeros([0]), rejectedRewards = try Tensor.zeros([0])
        var chosenLogps = chosenRewards, rejectedLogps = rejectedRewards
        if !chosenIndex.isEmpty {
            chosenLogps = try pick(x.policy, chosenIndex)
            let logratios = try chosenLogps.subtracting(pick(x.ref, chosenIndex))
            let losses = o.lossType == .kto
                ? try logratios.adding(-kl).multiplying(beta).sigmoid().subtracted(from: 1)
                : try logratios.multiplying(beta).sigmoid().subtracted(from: 1)
            parts.append(try losses.multiplying(Float(o.desirableWeight)))
            chosenRewards = try GradMode.with(enabled: false) { try logratios.detach().multiplying(beta) }
        }
        if !rejectedIndex.isEmpty {
            rejectedLogps = try pick(x.policy, rejectedIndex)
            let logratios = try rejectedLogps.subtracting(pick(x.ref, rejectedIndex))
            let losses = o.lossType == .kto
                ? try logratios.subtracted(from: kl).multiplying(beta).sigmoid().subtracted(from: 1)
                : try logratios.multiplying(beta).sigmoid()
            parts.append(try losses.multiplying(Float(o.undesirableWeight)))
            rejectedRewards = try GradMode.with(enabled: false) { try logratios.detach().multiplying(beta) }
        }
        let losses = parts.count == 1 ? parts[0] : try Tensor.cat(parts, dim: 0)
        let loss = try nanMean(losses)

        var stats = LossStats()
        stats.set("kl", Double(kl))
        func nanSumOver(_ t: Tensor, _ n: Int) -> Double {
            var s: Float = 0
            for v in t.toArray() where !v.isNaN { s += v }
            return Double(s) / Double(n)
        }
        if !chosenIndex.isEmpty {
            stats.set("rewards/chosen", nanSumOver(chosenRewards, chosenIndex.count))
            stats.set("logps/chosen", nanSumOver(chosenLogps, chosenIndex.count))
        }
        if !rejectedIndex.isEmpty {
            stats.set("rewards/rejected", nanSumOver(rejectedRewards, rejectedIndex.count))
            stats.set("logps/rejected", nanSumOver(rejectedLogps, rejectedIndex.count))
        }
        if let c = stats["rewards/chosen"], let r = stats["rewards/rejected"] { stats.set("rewards/margins", c - r) }
        return Result(loss: loss, losses: losses.detach(), chosenRewards: chosenRewards,
                      rejectedRewards: rejectedRewards, kl: Double(kl), stats: stats)
    }

    /// The mean of the non-NaN elements (NaN when all are NaN); NaN elements get no gradient.
    static func nanMean(_ t: Tensor) throws -> Tensor {
        let values = t.toArray()
        let n = values.filter { !$0.isNaN }.count
        if n == values.count { return try t.mean() }
        let kept = try Tensor.where(try t.compared(.eq, t), t, Tensor(scalar: 0))
        return try kept.sum().dividing(Float(n))
    }
}

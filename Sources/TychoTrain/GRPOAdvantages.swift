// GRPOAdvantages.swift: group-relative advantages of TRL 1.16's GRPOTrainer (`_generate_and_score_completions`):
// rewards of several reward functions combined with weights (`multi_objective_aggregation`), failed graders as NaN
// (TRL's `None`), `scale_rewards` "group" | "batch" | "none", and the reward metrics TRL logs.
//
// Shapes: N completions in N / G groups of G consecutive rows (G = `num_generations`, the group size), F reward
// functions. The rewards are a vector (N) for one function or a matrix (N, F); NaN marks a reward a function did not
// give (a grader that failed or returned None). Results are vectors (N) without grad: rewards are data, not a graph.
//
// The arithmetic is TRL's in float32, step for step: `nansum` over the weighted functions, `nanmean` and TRL's
// `nanstd` (Bessel-corrected over the non-NaN values, NaN for fewer than two), `std + 1e-4`, and
// `nan_to_num(nan=0)` on the advantages. Sums are formed in double and rounded once, so they are the correctly
// rounded float32 values (torch's float32 sums of a handful of values give the same, or differ in the last bit).
//
// - sum_then_normalize (default): R_i = nansum_k w_k r_ik; a row where every function is NaN is unscorable (R_i =
//   NaN, left out of the baselines); A_i = (R_i - nanmean_group R) / (std + 1e-4) with std the group's nanstd
//   ("group"), the batch's ("batch"), or no division ("none", where the group std still decides
//   frac_reward_zero_std).
// - normalize_then_sum (GDPO): each function is z-scored within its group, (r_ik - mean_k) / (std_k + 1e-4), the
//   z-scores are summed with the weights (nansum), and the sum is z-scored over the batch. `scale` is not read
//   (TRL ignores scale_rewards in this mode).
// - Unscorable rows get advantage 0. A group of size 1 has std 0 (TRL's eval path); a batch of one row too.
//
// Metrics (TRL's names): `rewards/<name>/mean`, `rewards/<name>/std` per function (nanmean/nanstd of its column),
// `reward` and `reward_std` (nanmean/nanstd of the weighted raw sum, unscorable rows left out, in both modes), and
// `frac_reward_zero_std` (the fraction of rows whose std is within 1e-8 of 0, torch.isclose's test; a NaN std is
// not zero).

import Foundation
import TychoTensor

/// `GRPOConfig.scale_rewards`: what divides the centred rewards.
public enum GRPORewardScale: String, CaseIterable, Sendable {
    case group, batch, none
    public static let names = allCases.map(\.rawValue)
}

/// `GRPOConfig.multi_objective_aggregation`: how several reward functions become one advantage.
public enum GRPORewardAggregation: String, CaseIterable, Sendable {
    case sumThenNormalize = "sum_then_normalize"
    case normalizeThenSum = "normalize_then_sum"
    public static let names = allCases.map(\.rawValue)
}

public enum GRPOAdvantages {
    public struct Options: Sendable {
        /// G, the completions per prompt (`num_generations`); must divide N.
        public var groupSize: Int
        public var scale: GRPORewardScale = .group
        public var aggregation: GRPORewardAggregation = .sumThenNormalize
        /// One weight per reward function (`reward_weights`); nil means 1 each.
        public var weights: [Double]? = nil
        /// One name per reward function, for the `rewards/<name>/*` metrics; nil means "1", "2", ...
        public var names: [String]? = nil

        public init(groupSize: Int) { self.groupSize = groupSize }
    }

    public struct Result {
        /// A_i (N), 0 for unscorable rows.
        public let advantages: Tensor
        /// The weighted raw reward sum per row (N), NaN where every function is NaN (what TRL logs as `reward`).
        public let rewards: Tensor
        /// The baseline subtracted from each row (N): its group's nanmean, or the batch's for normalize_then_sum.
        public let baseline: Tensor
        /// The std each row was scaled by, or tested for zero with "none" (N).
        public let std: Tensor
        /// 1 where that std is (close to) 0 (N).
        public let zeroStd: Tensor
        /// 1 where every reward function is NaN (N).
        public let unscorable: Tensor
        public let stats: LossStats
    }

    /// Computes the advantages of `rewards`, a vector (N) or a matrix (N, F). Throws LossError for shapes and
    /// options that do not fit.
    public static func compute(_ rewards: Tensor, options o: Options) throws -> Result {
        guard rewards.rank == 1 || rewards.rank == 2 else {
            throw LossError("rewards must be a vector (N) or a matrix (N, F) of rewards from F reward functions, got size \(Tensor.describe(rewards.shape))")
        }
        let n = rewards.shape[0], f = rewards.rank == 2 ? rewards.shape[1] : 1
        guard n > 0 else { throw LossError("rewards is empty: a batch needs at least one completion") }
        guard f > 0 else { throw LossError("rewards has no columns: give at least one reward function's rewards") }
        guard o.groupSize >= 1 else { throw LossError("group_size must be a positive integer, got \(o.groupSize)") }
        guard n % o.groupSize == 0 else {
            throw LossError("group_size \(o.groupSize) does not divide the \(n) completion\(n == 1 ? "" : "s"): the batch must hold whole groups of group_size completions per prompt")
        }
        let weights = try o.weights.map { w -> [Float] in
            guard w.count == f else {
                throw LossError("weights has \(w.count) value\(w.count == 1 ? "" : "s") but rewards has \(f) reward function\(f == 1 ? "" : "s") (columns); give one weight per function")
            }
            return try w.enumerated().map { i, v in
                try PreferenceInputs.check("weights[\(i + 1)]", v, "a finite number")
                return Float(v)
            }
        } ?? Array(repeating: 1, count: f)
        let names = o.names ?? (1...f).map { String($0) }
        guard names.count == f else {
            throw LossError("names has \(names.count) value\(names.count == 1 ? "" : "s") but rewards has \(f) reward function\(f == 1 ? "" : "s") (columns)")
        }
        let r = try rewards.contiguous().toArray()   // row-major (N, F)
        if let i = r.firstIndex(where: { $0.isInfinite }) {
            throw LossError("rewards must be finite numbers or NaN (a reward a function did not give), got \(r[i] > 0 ? "inf" : "-inf") at row \(i / f + 1)\(f > 1 ? ", column \(i % f + 1)" : "")")
        }
        let g = o.groupSize
        let unscorable = (0..<n).map { i in (0..<f).allSatisfy { r[i * f + $0].isNaN } }
        let col = { (k: Int) in (0..<n).map { r[$0 * f + k] } }

        // The weighted raw sum: TRL's `reward`, and the advantage's input for sum_then_normalize.
        var summed = (0..<n).map { i in nansum((0..<f).map { r[i * f + $0] * weights[$0] }) }
        for i in 0..<n where unscorable[i] { summed[i] = .nan }

        var advantages = [Float](repeating: 0, count: n)
        var baseline = [Float](repeating: 0, count: n)
        var std = [Float](repeating: 0, count: n)
        switch o.aggregation {
        case .sumThenNormalize:
            for start in stride(from: 0, to: n, by: g) {
                let m = nanmean(Array(summed[start..<start + g]))
                for i in start..<start + g { baseline[i] = m }
            }
            switch o.scale {
            case .group, .none:
                if g > 1 {
                    for start in stride(from: 0, to: n, by: g) {
                        let s = nanstd(Array(summed[start..<start + g]))
                        for i in start..<start + g { std[i] = s }
                    }
                }
            case .batch:
                if n > 1 { std = Array(repeating: nanstd(summed), count: n) }
            }
            for i in 0..<n {
                let centred = summed[i] - baseline[i]
                advantages[i] = o.scale == .none ? centred : centred / (std[i] + Float(1e-4))
            }
        case .normalizeThenSum:
            var z = [Float](repeating: 0, count: n * f)
            for k in 0..<f {
                let c = col(k)
                for start in stride(from: 0, to: n, by: g) {
                    let group = Array(c[start..<start + g])
                    let m = nanmean(group), s = g > 1 ? nanstd(group) : 0
                    for i in start..<start + g { z[i * f + k] = (c[i] - m) / (s + Float(1e-4)) }
                }
            }
            var total = (0..<n).map { i in nansum((0..<f).map { z[i * f + $0] * weights[$0] }) }
            for i in 0..<n where unscorable[i] { total[i] = .nan }
            let s = n > 1 ? nanstd(total) : 0
            let m = nanmean(total)
            for i in 0..<n {
                std[i] = s
                baseline[i] = m
                advantages[i] = (total[i] - m) / (s + Float(1e-4))
            }
        }
        for i in 0..<n where advantages[i].isNaN { advantages[i] = 0 }
        let zeroStd = std.map { Swift.abs($0) <= Float(1e-8) ? Float(1) : 0 }

        var stats = LossStats()
        for k in 0..<f {
            stats.set("rewards/\(names[k])/mean", Double(nanmean(col(k))))
            stats.set("rewards/\(names[k])/std", Double(nanstd(col(k))))
        }
        stats.set("reward", Double(nanmean(summed)))
        stats.set("reward_std", Double(nanstd(summed)))
        stats.set("frac_reward_zero_std", Double(Float(zeroStd.reduce(0.0) { $0 + Double($1) } / Double(n))))

        func vector(_ v: [Float]) throws -> Tensor { try Tensor(shape: [n], values: v) }
        return Result(advantages: try vector(advantages), rewards: try vector(summed), baseline: try vector(baseline),
                      std: try vector(std), zeroStd: try vector(zeroStd),
                      unscorable: try vector(unscorable.map { $0 ? 1 : 0 }), stats: stats)
    }

    // MARK: NaN-ignoring reductions, as torch.nansum / torch.nanmean / TRL's nanstd compute them in float32

    /// The sum of the non-NaN values (0 when there are none).
    static func nansum(_ v: [Float]) -> Float {
        Float(v.reduce(0.0) { $1.isNaN ? $0 : $0 + Double($1) })
    }

    /// The mean of the non-NaN values (NaN when there are none).
    static func nanmean(_ v: [Float]) -> Float {
        let count = v.reduce(0) { $1.isNaN ? $0 : $0 + 1 }
        return nansum(v) / Float(count)
    }

    /// TRL's `nanstd`: sqrt(nanmean((x - nanmean x)^2) * c / (c - 1)) over the c non-NaN values; NaN when c < 2.
    static func nanstd(_ v: [Float]) -> Float {
        let count = v.reduce(0) { $1.isNaN ? $0 : $0 + 1 }
        guard count > 1 else { return .nan }
        let m = nanmean(v)
        let variance = nanmean(v.map { ($0 - m) * ($0 - m) })
        return (variance * (Float(count) / Float(count - 1))).squareRoot()
    }
}

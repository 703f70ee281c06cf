// RFTLossBinding.swift: the GRPO functions of the Lua module `rft`: rft.advantages (group-relative advantages
// from one or several reward functions' rewards) and rft.loss (every GRPOTrainer loss type of TRL 1.16). The numeric
// work is TychoTrain's (GRPOAdvantages.swift, GRPOLoss.swift); this file reads the arguments and option tables into
// Swift and pushes back, as the `dpo` losses do,
//   rft.advantages   advantages (N), stats (reward, reward_std, frac_reward_zero_std, rewards/<name>/*), details
//   rft.loss         loss (0-dim, its backward reaches logps), stats (TRL's metric names), details (per-token
//                    tensors without grad)
// Option names are TRL's GRPOConfig fields, except `type` (loss_type), `importance_sampling`
// (importance_sampling_level), `scale` (scale_rewards), `aggregation` (multi_objective_aggregation) and
// `weights` (reward_weights). Unknown options are errors.
//
// The `rft` module is registered here with these functions alone for now; the graders join it through
// `RFTLossBinding.functions` when the two lists are merged.

import CLua
import CLuaShim
import TychoTensor
import TychoTrain

enum RFTLossBinding {
    /// Runs a TychoTrain call, turning its errors into binding errors; option errors name the table at `idx`.
    static func run<T>(_ a: LuaArgs, optionsAt idx: Int, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let e as LossError {
            throw LuaBindingError(e.message)
        } catch let e as InvalidOption {
            throw a.argumentError(idx, "a table whose field '\(e.field)' is \(e.requirement), got \(e.value)")
        }
    }

    /// A vector given as a tensor or a list of numbers, at argument `idx`.
    static func tensorOrList(_ a: LuaArgs, _ idx: Int, _ want: String) throws -> Tensor {
        if let t = a.tensorOrNil(idx) { return t }
        if a.lua.type(Int32(idx)) == LUA_TUSERDATA, a.lua.isFinalized(Int32(idx)) { return try a.tensor(idx) }
        guard a.lua.type(Int32(idx)) == LUA_TTABLE else { throw a.typeError(idx, want) }
        var values: [Float] = []
        for k in 0..<a.lua.rawLength(Int32(idx)) {
            _ = a.lua.rawGet(Int32(idx), index: k + 1)
            defer { a.lua.pop() }
            guard a.lua.type(-1) == LUA_TNUMBER, let v = a.lua.number(-1) else {
                throw a.argumentError(idx, "\(want), got \(a.lua.typeName(-1)) at position \(k + 1)")
            }
            values.append(Float(v))
        }
        return try Tensor(shape: [values.count], values: values)
    }

    /// Whether field `key` of the options table at `idx` is present.
    static func has(_ a: LuaArgs, _ idx: Int, _ key: String) -> Bool {
        guard !a.isNil(idx), a.lua.type(Int32(idx)) == LUA_TTABLE else { return false }
        let type = a.lua.rawGet(Int32(idx), field: key)
        a.lua.pop()
        return type != LUA_TNIL
    }

    /// A required tensor option.
    static func tensor(_ a: LuaArgs, _ key: String, _ what: String) throws -> Tensor {
        guard let t = try a.optionTensor(1, key) else { throw a.argumentError(1, "a table with \(key) = \(what)") }
        return t
    }

    /// A list of booleans (or 0/1 numbers), or a 1-D tensor of 0 and 1, in option `key`; nil when absent.
    static func flags(_ a: LuaArgs, _ key: String) throws -> [Bool]? {
        guard has(a, 1, key) else { return nil }
        let type = a.lua.rawGet(1, field: key)
        defer { a.lua.pop() }
        let want = "a list of booleans or a tensor of 0 and 1"
        var values: [Float] = []
        if let t = a.tensorOrNil(Int(a.lua.absolute(-1))) {
            guard t.rank == 1 else { throw a.argumentError(1, "a table whose field '\(key)' is \(want), got a tensor of size \(Tensor.describe(t.shape))") }
            values = t.toArray()
        } else if type == LUA_TTABLE {
            for k in 0..<a.lua.rawLength(-1) {
                _ = a.lua.rawGet(-1, index: k + 1)
                defer { a.lua.pop() }
                if a.lua.type(-1) == LUA_TBOOLEAN {
                    values.append(a.lua.bool(-1) ? 1 : 0)
                } else if a.lua.type(-1) == LUA_TNUMBER, let n = a.lua.number(-1) {
                    values.append(Float(n))
                } else {
                    throw a.argumentError(1, "a table whose field '\(key)' is \(want), got \(a.lua.typeName(-1)) at position \(k + 1)")
                }
            }
        } else {
            throw a.argumentError(1, "a table whose field '\(key)' is \(want), got \(a.lua.typeName(-1))")
        }
        if let i = values.firstIndex(where: { $0 != 0 && $0 != 1 }) {
            throw a.argumentError(1, "a table whose field '\(key)' is \(want), got \(values[i]) at position \(i + 1)")
        }
        return values.map { $0 == 1 }
    }

    // MARK: rft.advantages

    static let advantagesOptions: Set<String> = ["scale", "aggregation", "weights", "names"]

    static let advantages = LuaFunction("advantages", [.required("rewards", .any), .required("group_size", .integer),
                                                       .optional("options", .table)], doc: """
        Group-relative advantages as TRL 1.16's GRPOTrainer computes them; returns advantages, stats, details.
          adv, stats, details = rft.advantages(rewards, group_size, {scale="group", aggregation="sum_then_normalize",
            weights=, names=})
          rewards: a vector (N) or a list of numbers, or a matrix (N, F) with one column per reward function (grader);
            NaN (0/0) marks a reward a grader did not give (TRL's None). N completions in N / group_size groups of
            group_size consecutive rows (one prompt each); group_size must divide N.
          aggregation "sum_then_normalize" (default): R = nansum_k weights[k] r_k, a row with every reward NaN is
            unscorable (left out of the baselines, advantage 0); A = (R - group nanmean) / (std + 1e-4) with std the
            group's nanstd (scale "group"), the batch's ("batch"), or no division ("none").
          aggregation "normalize_then_sum" (GDPO): each column z-scored within its group, summed with the weights,
            the sum z-scored over the batch (scale is not read, as in TRL).
          weights: one per column (default 1 each); names: one per column for the stats (default "1", "2", ...).
          stats: rewards/<name>/mean, rewards/<name>/std, reward, reward_std, frac_reward_zero_std.
          details: rewards (N weighted sums, NaN if unscorable), baseline, std, zero_std, unscorable (N).
        """) { a in
        try a.checkOptions(3, allowed: advantagesOptions)
        let rewards = try tensorOrList(a, 1, "a tensor of rewards (N or N x F) or a list of numbers")
        let groupSize = try a.integer(2)
        guard groupSize >= 1 else { throw a.argumentError(2, "a positive integer (completions per prompt), got \(groupSize)") }
        var o = GRPOAdvantages.Options(groupSize: groupSize)
        if let v = try DPOBinding.choice(a, "scale", GRPORewardScale.names, as: GRPORewardScale.self, at: 3) { o.scale = v }
        if let v = try DPOBinding.choice(a, "aggregation", GRPORewardAggregation.names, as: GRPORewardAggregation.self, at: 3) {
            o.aggregation = v
        }
        o.weights = try a.optionNumbers(3, "weights")
        o.names = try DPOBinding.names(a, "names", at: 3)
        let r = try run(a, optionsAt: 3) { try GRPOAdvantages.compute(rewards, options: o) }
        guard a.lua.ensureStack(8) else { throw LuaBindingError("Lua stack overflow") }
        a.push(r.advantages)
        DPOBinding.push(a, r.stats)
        DPOBinding.pushDetails(a, [("rewards", r.rewards), ("baseline", r.baseline), ("std", r.std),
                                   ("zero_std", r.zeroStd), ("unscorable", r.unscorable)])
        return 3
    }

    // MARK: rft.loss

    static let lossOptions: Set<String> = [
        "logps", "old_logps", "ref_logps", "advantages", "mask", "entropies", "truncated", "type", "epsilon",
        "epsilon_high", "delta", "beta", "importance_sampling", "max_completion_length", "use_bias_correction_kl",
        "sapo_temperature_pos", "sapo_temperature_neg", "vespo_k_pos", "vespo_lambda_pos", "vespo_k_neg",
        "vespo_lambda_neg", "num_items_in_batch",
    ]

    static let loss = LuaFunction("loss", [.required("options", .table)], doc: """
        The GRPO policy loss of TRL 1.16's GRPOTrainer on B completions of T positions; returns loss, stats, details.
          loss, stats, details = rft.loss{logps=, old_logps=, ref_logps=, advantages=, mask=, type="dapo",
            epsilon=0.2, epsilon_high=epsilon, delta=, beta=0, importance_sampling="token", max_completion_length=,
            use_bias_correction_kl=true, sapo_temperature_pos=1, sapo_temperature_neg=1.05, vespo_k_pos=2,
            vespo_lambda_pos=3, vespo_k_neg=3, vespo_lambda_neg=2, num_items_in_batch=, entropies=, truncated=}
          logps: the policy's per-token log-probs (B x T, with the graph, e.g. from m:token_logprobs); old_logps: the
            sampling policy's (default logps without grad: one iteration per batch); ref_logps: the reference's
            (needed when beta > 0); mask: 1 on completion tokens, 0 on padding (B x T); advantages: B (or B x T).
          type: dapo grpo bnpo dr_grpo (needs max_completion_length) cispo sapo luspo vespo.
          importance_sampling: "token" (r per token) or "sequence" (GSPO: r = exp of the masked mean log-ratio).
          Clipping types (dapo grpo bnpo dr_grpo luspo): -min(r A, clamp(r, 1-epsilon, 1+epsilon_high) A), with r
            capped at delta first when delta is set. cispo: -sg(min(r, epsilon_high)) A logp. sapo: soft gates
            -(4/tau) sigmoid(tau (r-1)) A. vespo: -sg(phi) A logp with VESPO's gamma weights. beta > 0 adds beta
            times the k3 KL exp(ref-logp) - (ref-logp) - 1, times r when use_bias_correction_kl.
          Aggregation: grpo, sapo: mean over sequences of token means; bnpo: token mean; dr_grpo: sum /
            (B * max_completion_length); dapo, cispo, vespo: sum / num_items_in_batch (default the mask's sum; give
            the whole accumulation window's token count under gradient accumulation); luspo: mean of sequence sums.
          stats: completions/mean_length, min_length, max_length (and clipped_ratio, mean/min/max_terminated_length
            with truncated = a list of booleans, true for completions cut at the length limit), kl (beta > 0),
            entropy (with entropies, B x T), clip_ratio/low_mean, high_mean, region_mean, low_min, high_max
            (clipping types), cispo_clip_ratio (cispo), vespo/phi_seq_mean (vespo).
          details: per_token_loss, ratios (r before delta: B x T, or B x 1 per sequence), kl (beta > 0),
            low_clipped, high_clipped, region_clipped (0/1, clipping types), cispo_clipped, phi (vespo).
        """) { a in
        try a.checkOptions(1, allowed: lossOptions)
        var o = GRPOLoss.Options()
        if let v = try DPOBinding.choice(a, "type", GRPOLossType.names, as: GRPOLossType.self) { o.type = v }
        if let v = try a.optionNumber(1, "epsilon") { o.epsilon = v }
        o.epsilonHigh = try a.optionNumber(1, "epsilon_high")
        o.delta = try a.optionNumber(1, "delta")
        if let v = try a.optionNumber(1, "beta") { o.beta = v }
        if let v = try DPOBinding.choice(a, "importance_sampling", GRPOImportanceSampling.names, as: GRPOImportanceSampling.self) {
            o.importanceSampling = v
        }
        o.maxCompletionLength = try a.optionInteger(1, "max_completion_length")
        if let v = try a.optionBoolean(1, "use_bias_correction_kl") { o.useBiasCorrectionKL = v }
        if let v = try a.optionNumber(1, "sapo_temperature_pos") { o.sapoTemperaturePos = v }
        if let v = try a.optionNumber(1, "sapo_temperature_neg") { o.sapoTemperatureNeg = v }
        if let v = try a.optionNumber(1, "vespo_k_pos") { o.vespoKPos = v }
        if let v = try a.optionNumber(1, "vespo_lambda_pos") { o.vespoLambdaPos = v }
        if let v = try a.optionNumber(1, "vespo_k_neg") { o.vespoKNeg = v }
        if let v = try a.optionNumber(1, "vespo_lambda_neg") { o.vespoLambdaNeg = v }
        o.numItemsInBatch = try a.optionNumber(1, "num_items_in_batch")
        let logps = try tensor(a, "logps", "a tensor of per-token log-probs (B x T)")
        guard let advantages = try DPOBinding.vector(a, "advantages") else {
            throw a.argumentError(1, "a table with advantages = a tensor (B or B x T) or a list of numbers")
        }
        let mask = try tensor(a, "mask", "a tensor of 0 and 1 (B x T), 1 on completion tokens")
        var x = GRPOLoss.Inputs(logps: logps, advantages: advantages, mask: mask)
        x.oldLogps = try a.optionTensor(1, "old_logps")
        x.refLogps = try a.optionTensor(1, "ref_logps")
        x.entropies = try a.optionTensor(1, "entropies")
        x.truncated = try flags(a, "truncated")
        let r = try run(a, optionsAt: 1) { try GRPOLoss.compute(x, options: o) }
        var fields: [(String, Tensor)] = [("per_token_loss", r.perTokenLoss), ("ratios", r.ratios)]
        if let t = r.kl { fields.append(("kl", t)) }
        if let t = r.lowClipped { fields.append(("low_clipped", t)) }
        if let t = r.highClipped { fields.append(("high_clipped", t)) }
        if let t = r.regionClipped { fields.append(("region_clipped", t)) }
        if let t = r.cispoClipped { fields.append(("cispo_clipped", t)) }
        if let t = r.phi { fields.append(("phi", t)) }
        return try DPOBinding.results(a, loss: r.loss, stats: r.stats) { DPOBinding.pushDetails(a, fields) }
    }

    // MARK: registration

    /// The GRPO loss functions, for the `rft` module (RFTBinding.module).
    static let functions: [LuaFunction] = [advantages, loss]
}

// DPOBinding.swift: the loss functions of the Lua module `dpo`: dpo.loss (TRL's DPO loss family), dpo.cpo,
// dpo.simpo, dpo.orpo (reference-free) and dpo.kto (unpaired). The numeric work is TychoTrain's (DPOLoss.swift,
// CPOLoss.swift, ORPOLoss.swift, KTOLoss.swift); this file reads one option table into Swift and pushes back
//   loss     a 0-dim tensor carrying the graph to the policy log-probs (loss:backward())
//   stats    a table of numbers under TRL's metric names (rewards/chosen, logps/rejected, ...)
//   details  a table of per-example tensors without grad (losses, chosen_rewards, rejected_rewards, ...)
//
// Option names are TRL's (beta, label_smoothing, f_divergence_type, cpo_alpha, simpo_gamma, desirable_weight,
// ...), except `type`/`weights` for DPOConfig's loss_type/loss_weights. Unknown options are errors, so a typo is
// never a silently ignored setting. Other `dpo` functions (the trainer) join the module through `lossFunctions`.

import CLua
import CLuaShim
import TychoTensor
import TychoTrain

enum DPOBinding {
    // MARK: reading options

    /// Runs a TychoTrain call, turning its errors into binding errors that name the option at argument #1.
    static func run<T>(_ a: LuaArgs, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let e as LossError {
            throw LuaBindingError(e.message)
        } catch let e as InvalidOption {
            throw a.argumentError(1, "a table whose field '\(e.field)' is \(e.requirement), got \(e.value)")
        }
    }

    /// The required tensor option `key`.
    static func tensor(_ a: LuaArgs, _ key: String) throws -> Tensor {
        guard let t = try a.optionTensor(1, key) else {
            throw a.argumentError(1, "a table with \(key) = a tensor of per-sequence log-probs")
        }
        return t
    }

    /// A vector option given as a tensor or a list of numbers (token counts); nil when absent.
    static func vector(_ a: LuaArgs, _ key: String) throws -> Tensor? {
        guard !a.isNil(1), a.lua.type(1) == LUA_TTABLE else { return nil }
        let type = a.lua.rawGet(1, field: key)
        let isTensor = type == LUA_TUSERDATA && a.tensorOrNil(Int(a.lua.absolute(-1))) != nil
        a.lua.pop()
        if type == LUA_TNIL { return nil }
        if isTensor || type != LUA_TTABLE { return try a.optionTensor(1, key) }
        let values = try a.optionNumbers(1, key) ?? []
        return try Tensor(shape: [values.count], values: values.map { Float($0) })
    }

    /// The option `key` as a string or a list of strings (a list of one for a string).
    static func names(_ a: LuaArgs, _ key: String, at idx: Int = 1) throws -> [String]? {
        guard !a.isNil(idx), a.lua.type(Int32(idx)) == LUA_TTABLE else { return nil }
        let type = a.lua.rawGet(Int32(idx), field: key)
        defer { a.lua.pop() }
        switch type {
        case LUA_TNIL: return nil
        case LUA_TSTRING: return [a.lua.string(-1) ?? ""]
        case LUA_TTABLE:
            var out: [String] = []
            for k in 0..<a.lua.rawLength(-1) {
                _ = a.lua.rawGet(-1, index: k + 1)
                defer { a.lua.pop() }
                guard a.lua.type(-1) == LUA_TSTRING, let s = a.lua.string(-1) else {
                    throw a.argumentError(idx, "a table whose field '\(key)' is a string or a list of strings, got \(a.lua.typeName(-1)) at position \(k + 1)")
                }
                out.append(s)
            }
            guard !out.isEmpty else { throw a.argumentError(idx, "a table whose field '\(key)' is a string or a non-empty list of strings, got an empty table") }
            return out
        default:
            throw a.argumentError(idx, "a table whose field '\(key)' is a string or a list of strings, got \(a.lua.typeName(-1))")
        }
    }

    /// A single-choice option `key` among `choices` (nil when absent).
    static func choice<E: RawRepresentable>(_ a: LuaArgs, _ key: String, _ choices: [String], as: E.Type, at idx: Int = 1) throws -> E? where E.RawValue == String {
        guard let s = try a.optionString(idx, key) else { return nil }
        guard let v = E(rawValue: s) else {
            throw a.argumentError(idx, "a table whose field '\(key)' is one of \(choices.joined(separator: ", ")), got '\(s.prefix(40))'")
        }
        return v
    }

    /// A tensor-or-number option (nll_loss), as a tensor.
    static func scalar(_ a: LuaArgs, _ key: String) throws -> Tensor? {
        guard !a.isNil(1), a.lua.type(1) == LUA_TTABLE else { return nil }
        let type = a.lua.rawGet(1, field: key)
        let n = type == LUA_TNUMBER ? a.lua.number(-1) : nil
        a.lua.pop()
        if let n { return Tensor(scalar: Float(n)) }
        if type == LUA_TNIL { return nil }
        guard let t = try? a.optionTensor(1, key) else {
            throw a.argumentError(1, "a table whose field '\(key)' is a tensor or a number, got \(luaTypeName(a, key))")
        }
        return t
    }

    static func luaTypeName(_ a: LuaArgs, _ key: String) -> String {
        _ = a.lua.rawGet(1, field: key)
        defer { a.lua.pop() }
        return a.lua.typeName(-1)
    }

    /// KTO's labels: a list of booleans (or 0/1) or a tensor of 0/1.
    static func labels(_ a: LuaArgs, _ key: String) throws -> [Bool] {
        guard !a.isNil(1), a.lua.type(1) == LUA_TTABLE else { return [] }
        let type = a.lua.rawGet(1, field: key)
        defer { a.lua.pop() }
        let want = "a list of booleans (true: desirable) or a tensor of 0 and 1"
        if type == LUA_TNIL { throw a.argumentError(1, "a table with \(key) = \(want)") }
        var values: [Float] = []
        if let t = a.tensorOrNil(Int(a.lua.absolute(-1))) {
            guard t.rank == 1 else { throw a.argumentError(1, "a table whose field '\(key)' is \(want), got a tensor of size \(Tensor.describe(t.shape))") }
            values = t.toArray()
        } else if type == LUA_TTABLE {
            for k in 0..<a.lua.rawLength(-1) {
                _ = a.lua.rawGet(-1, index: k + 1)
                defer { a.lua.pop() }
                if a.lua.type(-1) == LUA_TBOOLEAN { values.append(a.lua.bool(-1) ? 1 : 0) } else if let n = a.lua.number(-1), a.lua.type(-1) == LUA_TNUMBER {
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

    // MARK: pushing results

    /// Pushes the stats table.
    static func push(_ a: LuaArgs, _ stats: LossStats) {
        a.lua.newTable(recordCount: Int32(stats.entries.count))
        for (name, value) in stats.entries {
            a.lua.push(value)
            a.lua.rawSet(-2, field: name)
        }
    }

    /// Pushes a details table from (name, tensor) fields and a list field `terms` when given.
    static func pushDetails(_ a: LuaArgs, _ fields: [(String, Tensor)], terms: [Tensor]? = nil, extra: [(String, Double)] = []) {
        a.lua.newTable(recordCount: Int32(fields.count + extra.count + 1))
        for (name, t) in fields {
            a.lua.push(tensor: t)
            a.lua.rawSet(-2, field: name)
        }
        for (name, v) in extra {
            a.lua.push(v)
            a.lua.rawSet(-2, field: name)
        }
        if let terms {
            a.lua.newTable(arrayCount: Int32(terms.count))
            for (k, t) in terms.enumerated() {
                a.lua.push(tensor: t)
                a.lua.rawSet(-2, index: k + 1)
            }
            a.lua.rawSet(-2, field: "terms")
        }
    }

    /// Pushes loss, stats, details; returns 3.
    static func results(_ a: LuaArgs, loss: Tensor, stats: LossStats, details: () -> Void) throws -> Int {
        guard a.lua.ensureStack(8) else { throw LuaBindingError("Lua stack overflow") }
        a.push(loss)
        push(a, stats)
        details()
        return 3
    }

    static func number(_ a: LuaArgs, _ key: String) throws -> Double? { try a.optionNumber(1, key) }

    // MARK: the functions

    static let lossOptions: Set<String> = [
        "policy_chosen", "policy_rejected", "ref_chosen", "ref_rejected", "beta", "type", "weights", "label_smoothing",
        "f_divergence_type", "f_alpha_divergence_coef", "discopop_tau", "use_weighting", "chosen_lengths",
        "rejected_lengths", "chosen_log_sum_sq_probs", "rejected_log_sum_sq_probs",
    ]

    static let loss = LuaFunction("loss", [.required("options", .table)], doc: """
        The DPO loss of TRL 1.16's DPOTrainer on one batch of B pairs; returns loss, stats, details.
          loss, stats, details = dpo.loss{policy_chosen=, policy_rejected=, ref_chosen=, ref_rejected=, beta=0.1,
            type="sigmoid", weights=, label_smoothing=0, f_divergence_type="reverse_kl", f_alpha_divergence_coef=0.5,
            discopop_tau=0.05, chosen_lengths=, rejected_lengths=, use_weighting=false,
            chosen_log_sum_sq_probs=, rejected_log_sum_sq_probs=}
          policy_*/ref_*: summed completion log-probs (B); the policy ones carry the graph (m:logprobs).
          type: sigmoid hinge ipo exo_pair nca_pair robust bco_pair sppo_hard aot aot_unpaired apo_zero apo_down
            discopop sft sigmoid_norm, or a list of them; weights: one per type (default 1 each), the loss is
            sum_k weights[k] * mean(L_k) (MPO; rpo = {"sigmoid", "sft"} with weights {1, alpha}).
          chosen_lengths/rejected_lengths: completion token counts (B), for ipo and sigmoid_norm (length-normalised),
            sft and use_weighting. label_smoothing: robust [0, 0.5), exo_pair (0, 1), aot, aot_unpaired.
          f_divergence_type: reverse_kl forward_kl js_divergence alpha_divergence (sigmoid, sigmoid_norm, hinge, ipo,
            exo_pair, robust, discopop, sft). use_weighting (WPO) needs the per-sequence sums of log sum_v p_v^2.
          stats: rewards/chosen rewards/rejected rewards/accuracies rewards/margins logps/chosen logps/rejected.
          details: losses (B, sum_k weights[k] L_k), terms (L_k per type), chosen_rewards, rejected_rewards (B).
        """) { a in
        try a.checkOptions(1, allowed: lossOptions)
        var o = DPOLoss.Options()
        if let v = try number(a, "beta") { o.beta = v }
        if let names = try names(a, "type") {
            o.lossTypes = try names.map { n in
                guard let t = DPOLossType(rawValue: n) else {
                    throw a.argumentError(1, "a table whose field 'type' names loss types among \(DPOLossType.names.joined(separator: ", ")), got '\(n.prefix(40))'")
                }
                return t
            }
        }
        o.lossWeights = try a.optionNumbers(1, "weights")
        if let v = try number(a, "label_smoothing") { o.labelSmoothing = v }
        if let v = try choice(a, "f_divergence_type", FDivergence.names, as: FDivergence.self) { o.fDivergence = v }
        if let v = try number(a, "f_alpha_divergence_coef") { o.fAlphaDivergenceCoef = v }
        if let v = try number(a, "discopop_tau") { o.discopopTau = v }
        if let v = try a.optionBoolean(1, "use_weighting") { o.useWeighting = v }
        var x = DPOLoss.Inputs(policyChosen: try tensor(a, "policy_chosen"), policyRejected: try tensor(a, "policy_rejected"),
                               refChosen: try tensor(a, "ref_chosen"), refRejected: try tensor(a, "ref_rejected"))
        x.chosenLengths = try vector(a, "chosen_lengths")
        x.rejectedLengths = try vector(a, "rejected_lengths")
        x.chosenLogSumSqProbs = try a.optionTensor(1, "chosen_log_sum_sq_probs")
        x.rejectedLogSumSqProbs = try a.optionTensor(1, "rejected_log_sum_sq_probs")
        let r = try run(a) { try DPOLoss.compute(x, options: o) }
        let weights = o.lossWeights ?? Array(repeating: 1, count: r.losses.count)
        let combined = try GradMode.with(enabled: false) {
            try zip(r.losses, weights).map { try $0.multiplying(Float($1)) }.dropFirst()
                .reduce(try r.losses[0].multiplying(Float(weights[0]))) { try $0.adding($1) }
        }
        return try results(a, loss: r.loss, stats: r.stats) {
            pushDetails(a, [("losses", combined), ("chosen_rewards", r.chosenRewards), ("rejected_rewards", r.rejectedRewards)],
                        terms: r.losses)
        }
    }

    static let cpoOptions: Set<String> = [
        "policy_chosen", "policy_rejected", "chosen_lengths", "rejected_lengths", "nll_loss", "beta", "loss_type",
        "label_smoothing", "cpo_alpha", "simpo_gamma", "alpha",
    ]

    /// Reads the CPO family's inputs and options over `base`, runs it and pushes the results.
    static func cpo(_ a: LuaArgs, base: CPOLoss.Options, allowed: Set<String>) throws -> Int {
        try a.checkOptions(1, allowed: allowed)
        var o = base
        if let v = try number(a, "beta") { o.beta = v }
        if let s = try a.optionString(1, "loss_type") {
            if s == "alphapo" {
                // CPOConfig's sugar: SimPO's loss without the NLL term.
                o.lossType = .simpo
                o.cpoAlpha = 0
            } else if let t = CPOLossType(rawValue: s) {
                o.lossType = t
            } else {
                throw a.argumentError(1, "a table whose field 'loss_type' is one of \(CPOLossType.names.joined(separator: ", ")), got '\(s.prefix(40))'")
            }
        }
        if let v = try number(a, "label_smoothing") { o.labelSmoothing = v }
        if let v = try number(a, "cpo_alpha") {
            if try a.optionString(1, "loss_type") == "alphapo" && v != 0 {
                throw a.argumentError(1, "a table whose field 'cpo_alpha' is 0 with loss_type alphapo (it means simpo without the NLL term), got \(v)")
            }
            o.cpoAlpha = v
        }
        if let v = try number(a, "simpo_gamma") { o.simpoGamma = v }
        if let v = try number(a, "alpha") { o.alpha = v }
        var x = CPOLoss.Inputs(policyChosen: try tensor(a, "policy_chosen"), policyRejected: try tensor(a, "policy_rejected"))
        x.chosenLengths = try vector(a, "chosen_lengths")
        x.rejectedLengths = try vector(a, "rejected_lengths")
        x.nllLoss = try scalar(a, "nll_loss")
        let r = try run(a) { try CPOLoss.compute(x, options: o) }
        return try results(a, loss: r.loss, stats: r.stats) {
            pushDetails(a, [("losses", r.losses), ("chosen_rewards", r.chosenRewards), ("rejected_rewards", r.rejectedRewards)])
        }
    }

    static let cpoFunction = LuaFunction("cpo", [.required("options", .table)], doc: """
        CPO of TRL 1.16's CPOTrainer (no reference model); returns loss, stats, details.
          loss, stats, details = dpo.cpo{policy_chosen=, policy_rejected=, chosen_lengths=, rejected_lengths=,
            beta=0.1, loss_type="sigmoid", label_smoothing=0, cpo_alpha=1, simpo_gamma=0.5, alpha=0, nll_loss=}
          loss_type: sigmoid hinge ipo simpo, or alphapo (simpo with cpo_alpha 0). ipo and simpo compare average
            log-probs (sum / length, so both lengths are needed); the loss is mean(L) + cpo_alpha * NLL with
            NLL = -sum(policy_chosen) / sum(chosen_lengths) unless nll_loss (a tensor or number) is given.
          alpha != 0: AlphaPO rewards (1 - p^-alpha) / alpha.
          stats: rewards/*, logps/* (averages for ipo and simpo), nll_loss. details: losses, chosen_rewards,
            rejected_rewards (B).
        """) { a in try cpo(a, base: CPOLoss.Options(), allowed: cpoOptions) }

    static let simpoFunction = LuaFunction("simpo", [.required("options", .table)], doc: """
        SimPO (TRL 1.16's CPOTrainer with loss_type "simpo" and cpo_alpha 0); returns loss, stats, details.
          loss, stats, details = dpo.simpo{policy_chosen=, policy_rejected=, chosen_lengths=, rejected_lengths=,
            beta=0.1, simpo_gamma=0.5, label_smoothing=0, cpo_alpha=0, alpha=0, nll_loss=}
          L = -(1-eps) log sigmoid(beta (l_w - l_l) - simpo_gamma) - eps log sigmoid(-(...)) with l the average
            log-prob (sum / length); cpo_alpha > 0 adds CPO's NLL term (CPO-SimPO); alpha != 0 is AlphaPO.
        """) { a in
        try cpo(a, base: CPOLoss.Options.simpo(), allowed: cpoOptions.subtracting(["loss_type"]))
    }

    static let orpoFunction = LuaFunction("orpo", [.required("options", .table)], doc: """
        ORPO of TRL 1.16's ORPOTrainer (no reference model); returns loss, stats, details.
          loss, stats, details = dpo.orpo{policy_chosen=, policy_rejected=, chosen_lengths=, rejected_lengths=,
            nll_loss=, beta=0.1}
          With l = sum / length the average log-prob, log_odds = (l_w - l_l) - (log(1-e^l_w) - log(1-e^l_l)) and
            loss = nll_loss - beta * mean(log sigmoid(log_odds)). nll_loss (a tensor or number) is the chosen
            sequences' mean cross-entropy over prompt and response, as TRL computes it: m:loss(ids, attention_mask).
          stats: rewards/*, logps/* (averages), nll_loss, log_odds_ratio, log_odds_chosen.
          details: losses (beta log sigmoid(log_odds)), chosen_rewards, rejected_rewards (B).
        """) { a in
        try a.checkOptions(1, allowed: ["policy_chosen", "policy_rejected", "chosen_lengths", "rejected_lengths", "nll_loss", "beta"])
        var o = ORPOLoss.Options()
        if let v = try number(a, "beta") { o.beta = v }
        let chosen = try tensor(a, "policy_chosen"), rejected = try tensor(a, "policy_rejected")
        guard let cl = try vector(a, "chosen_lengths"), let rl = try vector(a, "rejected_lengths") else {
            throw a.argumentError(1, "a table with chosen_lengths and rejected_lengths (ORPO compares average log-probs)")
        }
        guard let nll = try scalar(a, "nll_loss") else {
            throw a.argumentError(1, "a table with nll_loss = the chosen sequences' mean cross-entropy (a tensor or number)")
        }
        let x = ORPOLoss.Inputs(policyChosen: chosen, policyRejected: rejected, chosenLengths: cl, rejectedLengths: rl, nllLoss: nll)
        let r = try run(a) { try ORPOLoss.compute(x, options: o) }
        return try results(a, loss: r.loss, stats: r.stats) {
            pushDetails(a, [("losses", r.losses), ("chosen_rewards", r.chosenRewards), ("rejected_rewards", r.rejectedRewards)])
        }
    }

    static let ktoFunction = LuaFunction("kto", [.required("options", .table)], doc: """
        KTO of TRL 1.16's KTOTrainer on B unpaired examples; returns loss, stats, details.
          loss, stats, details = dpo.kto{policy=, ref=, label=, policy_kl=, ref_kl=, beta=0.1, loss_type="kto",
            desirable_weight=1, undesirable_weight=1}
          policy/ref: summed completion log-probs (B); label: true (desirable) or false per example (or a 0/1
            tensor). policy_kl/ref_kl (kto): summed log-probs of mismatched (prompt, completion) pairs, e.g. each
            prompt with the next example's completion; z0 = max(0, mean(policy_kl - ref_kl)), without grad.
          desirable: w_d (1 - sigmoid(beta (c - z0))); undesirable: w_u (1 - sigmoid(beta (z0 - r))); the loss is
            the NaN-ignoring mean. loss_type "apo_zero_unpaired": w_d (1 - sigmoid(beta c)), w_u sigmoid(beta r).
          stats: kl, rewards/chosen, logps/chosen, rewards/rejected, logps/rejected, rewards/margins (as present).
          details: losses (desirable then undesirable), chosen_rewards, rejected_rewards, kl.
        """) { a in
        try a.checkOptions(1, allowed: ["policy", "ref", "label", "policy_kl", "ref_kl", "beta", "loss_type", "desirable_weight", "undesirable_weight"])
        var o = KTOLoss.Options()
        if let v = try number(a, "beta") { o.beta = v }
        if let v = try choice(a, "loss_type", KTOLossType.names, as: KTOLossType.self) { o.lossType = v }
        if let v = try number(a, "desirable_weight") { o.desirableWeight = v }
        if let v = try number(a, "undesirable_weight") { o.undesirableWeight = v }
        var x = KTOLoss.Inputs(policy: try tensor(a, "policy"), ref: try tensor(a, "ref"), labels: try labels(a, "label"))
        x.policyKL = try a.optionTensor(1, "policy_kl")
        x.refKL = try a.optionTensor(1, "ref_kl")
        let r = try run(a) { try KTOLoss.compute(x, options: o) }
        return try results(a, loss: r.loss, stats: r.stats) {
            pushDetails(a, [("losses", r.losses), ("chosen_rewards", r.chosenRewards), ("rejected_rewards", r.rejectedRewards)],
                        extra: [("kl", r.kl)])
        }
    }

    // MARK: registration

    /// The loss functions, for the `dpo` module (the trainer's functions join them there).
    static let lossFunctions: [LuaFunction] = [loss, cpoFunction, simpoFunction, orpoFunction, ktoFunction]

    /// `dpo`: the losses, and PreferenceBinding's reference log-probs and TR-DPO sync.
    static let module = LuaModule(name: "dpo", doc: """
        Preference optimisation: TRL 1.16's losses on per-sequence log-probs (dpo.loss with every DPO loss type,
          dpo.cpo, dpo.simpo, dpo.orpo, dpo.kto), each returning loss, stats (TRL's metric names) and details;
          reference log-probs computed once and cached (dpo.reference_logprobs), TR-DPO syncing (dpo.sync_reference), and
          the trainer (dpo.trainer{...}: tr:fit(), tr:step(), tr:evaluate(), tr:info()) with checkpoints and rollbacks.
        """, functions: lossFunctions + PreferenceBinding.dpoFunctions + [DPOTrainerBinding.trainerFunction] + DPOTrainerBinding.methods)
}

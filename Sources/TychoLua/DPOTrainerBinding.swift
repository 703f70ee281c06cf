// DPOTrainerBinding.swift: `dpo.trainer{...}` and its methods (`tycho.DPOTrainer`). The loop, the data order,
// checkpoints and rollbacks are TychoTrain's DPOTrainer; this file reads the option table (objects by their
// metatables, the objective from TRL's option names), wires the trainer to the Lua state's random generator and
// to `io.write` for progress, and returns plain tables.

import CLua
import CLuaShim
import Foundation
import TychoNN
import TychoTensor
import TychoText
import TychoTrain

enum DPOTrainerBinding {
    static let metatable = "tycho.DPOTrainer"

    static func trainer(_ a: LuaArgs, _ idx: Int = 1) throws -> DPOTrainer {
        if let t = a.lua.object(Int32(idx), metatable: metatable, as: DPOTrainer.self) { return t }
        if a.lua.isFinalized(Int32(idx)) { throw a.argumentError(idx, "a live trainer, got one that was already collected") }
        throw a.typeError(idx, "a trainer (from dpo.trainer)")
    }

    /// Runs trainer code, turning its errors into Lua errors with their messages.
    static func run<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch let e as TrainerError { throw LuaBindingError(e.message) } catch let e as RecordError {
            throw LuaBindingError(e.message)
        } catch let e as OptimizerError { throw LuaBindingError(e.message) } catch let e as InvalidOption {
            throw LuaBindingError(e.description)
        } catch let e as TensorError { throw LuaBindingError(e.message) } catch let e as LossError {
            throw LuaBindingError(e.message)
        }
    }

    // MARK: reading the options

    /// The userdata object at field `key` of the options table, of type T (nil when absent).
    static func object<T: AnyObject>(_ a: LuaArgs, _ key: String, _ metatableName: String, _ want: String, as: T.Type,
                                     at idx: Int = 1) throws -> T? {
        guard !a.isNil(idx) else { return nil }
        defer { a.lua.pop() }
        guard a.lua.rawGet(Int32(idx), field: key) != LUA_TNIL else { return nil }
        guard let o = a.lua.object(-1, metatable: metatableName, as: T.self) else {
            throw a.argumentError(idx, "a table whose field '\(key)' is \(want), got \(a.lua.typeName(-1))")
        }
        return o
    }

    static func model(_ a: LuaArgs, _ key: String, at idx: Int = 1) throws -> LanguageModel? {
        guard let m = try object(a, key, NNBinding.metatable, "a language model (nn.gpt2, nn.llama, nn.load)", as: Module.self, at: idx) else { return nil }
        guard let lm = m as? LanguageModel else {
            throw a.argumentError(idx, "a table whose field '\(key)' is a language model (nn.gpt2, nn.llama, nn.load), got \(m.summary)")
        }
        return lm
    }

    static func preferences(_ a: LuaArgs, _ key: String) throws -> PreferenceData? {
        try object(a, key, PreferenceBinding.metatable, "preference data (data.preferences)", as: PreferenceData.self)
    }

    static let dpoOnly: Set<String> = ["loss_weights", "f_divergence_type", "f_alpha_divergence_coef", "discopop_tau"]
    static let cpoOnly: Set<String> = ["cpo_alpha", "simpo_gamma"]

    /// The objective from loss=, beta= and the loss options, checking that each given option applies.
    static func objective(_ a: LuaArgs, at idx: Int = 1) throws -> PreferenceObjective {
        guard !a.isNil(idx) else { return .dpo(DPOLoss.Options()) }  // no option table: TRL's defaults
        let names = try DPOBinding.names(a, "loss", at: idx) ?? ["sigmoid"]
        let beta = try a.optionNumber(idx, "beta")
        let smoothing = try a.optionNumber(idx, "label_smoothing")
        func refuse(_ keys: Set<String>, _ what: String) throws {
            for k in keys.sorted() {
                let present = a.lua.rawGet(Int32(idx), field: k) != LUA_TNIL
                a.lua.pop()
                if present { throw a.argumentError(idx, "a table without '\(k)': \(what) does not use it") }
            }
        }
        if names.count == 1, ["simpo", "cpo", "orpo"].contains(names[0]) {
            try refuse(dpoOnly, "loss \"\(names[0])\"")
            switch names[0] {
            case "orpo":
                try refuse(cpoOnly.union(["label_smoothing"]), "loss \"orpo\"")
                var o = ORPOLoss.Options()
                if let beta { o.beta = beta }
                return .orpo(o)
            default:
                var o = names[0] == "simpo" ? CPOLoss.Options.simpo() : CPOLoss.Options()
                if let beta { o.beta = beta }
                if let smoothing { o.labelSmoothing = smoothing }
                if let v = try a.optionNumber(idx, "cpo_alpha") { o.cpoAlpha = v }
                if let v = try a.optionNumber(idx, "simpo_gamma") { o.simpoGamma = v }
                return .cpo(o)
            }
        }
        try refuse(cpoOnly, "loss \"\(names.joined(separator: "+"))\"")
        var o = DPOLoss.Options()
        o.lossTypes = try names.map { n in
            guard let t = DPOLossType(rawValue: n) else {
                throw a.argumentError(idx, "a table whose field 'loss' names loss types among \(DPOLossType.names.joined(separator: ", ")), or is \"simpo\", \"cpo\" or \"orpo\", got '\(n.prefix(40))'")
            }
            return t
        }
        if let beta { o.beta = beta }
        if let smoothing { o.labelSmoothing = smoothing }
        o.lossWeights = try a.optionNumbers(idx, "loss_weights")
        if let v = try DPOBinding.choice(a, "f_divergence_type", FDivergence.names, as: FDivergence.self, at: idx) { o.fDivergence = v }
        if let v = try a.optionNumber(idx, "f_alpha_divergence_coef") { o.fAlphaDivergenceCoef = v }
        if let v = try a.optionNumber(idx, "discopop_tau") { o.discopopTau = v }
        do { try o.validate() } catch let e as LossError { throw LuaBindingError(e.message) } catch let e as InvalidOption {
            throw a.argumentError(idx, "a table whose field '\(e.field)' is \(e.requirement), got \(e.value)")
        }
        return .dpo(o)
    }

    /// sync_ref = true | {alpha=0.6, every=512}.
    static func syncRef(_ a: LuaArgs) throws -> (alpha: Double, every: Int)? {
        let t = a.lua.rawGet(1, field: "sync_ref")
        defer { a.lua.pop() }
        switch t {
        case LUA_TNIL: return nil
        case LUA_TBOOLEAN: return a.lua.bool(-1) ? (0.6, 512) : nil
        case LUA_TTABLE:
            let s = Int(a.lua.absolute(-1))
            try a.checkOptions(s, allowed: ["alpha", "every"])
            let alpha = try a.optionNumber(s, "alpha") ?? 0.6
            let every = try RunBinding.integerField(a, s, "every", min: 1) ?? 512
            return (alpha, every)
        default:
            throw a.argumentError(1, "a table whose field 'sync_ref' is true or a table {alpha=0.6, every=512}, got \(a.lua.typeName(-1))")
        }
    }

    static let options: Set<String> = [
        "policy", "reference", "train", "eval", "loss", "beta", "label_smoothing", "loss_weights", "f_divergence_type",
        "f_alpha_divergence_coef", "discopop_tau", "cpo_alpha", "simpo_gamma", "optimizer", "lr", "schedule", "batch_size",
        "grad_accum", "epochs", "max_steps", "eval_every", "eval_batch_size", "save_every", "checkpoints", "rollback", "run",
        "seed", "shuffle", "drop_last", "max_grad_norm", "disable_dropout", "sync_ref", "ref_cache", "resume", "progress",
        "log_every",
    ]

    // MARK: output

    /// Writes text with the global io.write (protected; a notebook or kernel may have replaced it) and flushes.
    static func write(_ lua: Lua, _ text: String) {
        guard lua.ensureStack(4) else { return }
        lua.pushGlobals()
        _ = lua.rawGet(-1, field: "io")
        tycho_remove(lua.L, -2)
        guard lua.type(-1) == LUA_TTABLE else { lua.pop(); return }
        _ = lua.rawGet(-1, field: "write")
        tycho_remove(lua.L, -2)
        guard lua.type(-1) == LUA_TFUNCTION else { lua.pop(); return }
        lua.push(text)
        if tycho_pcall(lua.L, 1, 0, 0) != LUA_OK { lua.pop() }
        fflush(stdout)
    }

    /// progress = "auto" (a bar on a terminal, lines otherwise), "bar", "lines" or false: the style, nil for none.
    static func progressStyle(_ a: LuaArgs) throws -> TrainingProgress.Style? {
        var style: TrainingProgress.Style? = isatty(STDOUT_FILENO) != 0 ? .bar : .lines
        switch a.lua.rawGet(1, field: "progress") {
        case LUA_TNIL: a.lua.pop()
        case LUA_TBOOLEAN:
            if !a.lua.bool(-1) { style = nil }
            a.lua.pop()
        case LUA_TSTRING:
            let s = a.lua.string(-1) ?? ""
            a.lua.pop()
            if s != "auto" {
                guard let st = TrainingProgress.Style(rawValue: s) else {
                    throw a.argumentError(1, "a table whose field 'progress' is \"auto\", \"bar\", \"lines\" or false, got \"\(s.prefix(40))\"")
                }
                style = st
            }
        default:
            let got = a.lua.typeName(-1)
            a.lua.pop()
            throw a.argumentError(1, "a table whose field 'progress' is \"auto\", \"bar\", \"lines\" or false, got \(got)")
        }
        return style
    }

    // MARK: dpo.trainer

    static let trainerFunction = LuaFunction("trainer", [.required("options", .table)], doc: """
        A preference-optimisation trainer, as TRL 1.16's DPOTrainer: dpo.trainer{policy=, reference=, train=, eval=,
          loss="sigmoid", beta=0.1, optimizer=, schedule=, batch_size=8, grad_accum=1, epochs=1, max_steps=, eval_every=,
          checkpoints=, rollback=, run=, seed=42}; then tr:fit(), or tr:step() and tr:evaluate() by hand.
          policy: the language model trained. reference: its frozen reference (default: a frozen copy of the policy as
            it is now; not needed when dpo.reference_logprobs attached log-probs to the data, or for simpo/cpo/orpo).
          train, eval: data.preferences objects. Reference log-probs are computed once (cached in ref_cache= when given).
          loss: a dpo.loss type (sigmoid hinge ipo exo_pair nca_pair robust bco_pair sppo_hard aot aot_unpaired apo_zero
            apo_down discopop sft sigmoid_norm) or a list of them with loss_weights= (MPO), or "simpo", "cpo", "orpo";
            with label_smoothing=, f_divergence_type=, f_alpha_divergence_coef=, discopop_tau= (dpo), cpo_alpha=,
            simpo_gamma= (simpo/cpo).
          optimizer: an optimizer over policy:parameters() (default: optim.adamw with lr= (default 1e-6, TRL's) and
            weight_decay 0). schedule: optim.schedule; step k runs at its rate for k - 1, as the HF Trainer does.
          Gradients are clipped to max_grad_norm=1 (false: off). Dropout is off while training (disable_dropout=true).
          shuffle=true (a permutation per epoch from seed), drop_last=false. sync_ref=true or {alpha=0.6, every=512}:
            TR-DPO reference syncing. eval_every: evaluate every N steps and after the last (eval_batch_size=).
          checkpoints: a ckpt.manager; saves at step 0, at each eval (or every save_every= steps) and at the end, with
            the data position; resume=true continues from its newest checkpoint, bit for bit. rollback: a ckpt.policy;
            a non-finite loss or an eval regression restores the last good checkpoint, lowers the learning rate and
            leaves out the rows of a failed batch. run: a run (run.start) that gets the metrics and events.
          progress="auto" (a bar on a terminal, lines otherwise), "bar", "lines" or false; log_every= (lines).
          Metrics: loss, rewards/chosen, rewards/rejected, rewards/accuracies, rewards/margins, logps/chosen,
            logps/rejected, grad_norm, learning_rate, epoch; evals: the same with eval_ in front.
        """) { a in
        try a.checkOptions(1, allowed: options)
        guard let policy = try model(a, "policy") else { throw a.argumentError(1, "a table with policy = the language model to train") }
        let reference = try model(a, "reference")
        guard let train = try preferences(a, "train") else { throw a.argumentError(1, "a table with train = preference data (data.preferences)") }
        let eval = try preferences(a, "eval")
        var o = DPOTrainer.Options()
        o.objective = try objective(a)
        if let v = try RunBinding.integerField(a, 1, "batch_size", min: 1) { o.batchSize = v }
        if let v = try RunBinding.integerField(a, 1, "grad_accum", min: 1) { o.gradAccum = v }
        if let v = try RunBinding.integerField(a, 1, "epochs", min: 1) { o.epochs = v }
        o.maxSteps = try RunBinding.integerField(a, 1, "max_steps", min: 1)
        o.evalEvery = try RunBinding.integerField(a, 1, "eval_every", min: 1)
        o.evalBatchSize = try RunBinding.integerField(a, 1, "eval_batch_size", min: 1)
        o.saveEvery = try RunBinding.integerField(a, 1, "save_every", min: 1)
        if let v = try RunBinding.integerField(a, 1, "seed", min: 0) { o.seed = UInt64(v) }
        if let v = try a.optionBoolean(1, "shuffle") { o.shuffle = v }
        if let v = try a.optionBoolean(1, "drop_last") { o.dropLast = v }
        if let v = try a.optionBoolean(1, "disable_dropout") { o.disableDropout = v }
        if let v = try a.optionBoolean(1, "resume") { o.resume = v }
        switch a.lua.rawGet(1, field: "max_grad_norm") {
        case LUA_TNIL: a.lua.pop()
        case LUA_TBOOLEAN:
            let on = a.lua.bool(-1)
            a.lua.pop()
            guard !on else { throw a.argumentError(1, "a table whose field 'max_grad_norm' is a positive number or false, got true") }
            o.maxGradNorm = nil
        default:
            a.lua.pop()
            guard let v = try a.optionNumber(1, "max_grad_norm"), v.isFinite, v > 0 else {
                throw a.argumentError(1, "a table whose field 'max_grad_norm' is a positive number or false")
            }
            o.maxGradNorm = v
        }
        o.syncRef = try syncRef(a)
        o.refCacheDir = try a.optionString(1, "ref_cache")
        // The optimizer: given, or TRL's default AdamW.
        var optimizer = try object(a, "optimizer", OptimBinding.optimizerMetatable, "an optimizer (optim.adamw, optim.sgd)", as: Optimizer.self)
        let lr = try a.optionNumber(1, "lr")
        if optimizer != nil, lr != nil { throw a.argumentError(1, "a table with optimizer= or lr= (the default optimizer's rate), not both") }
        if optimizer == nil {
            let rate = lr ?? 1e-6
            guard rate.isFinite, rate >= 0 else { throw a.argumentError(1, "a table whose field 'lr' is a non-negative number, got \(LuaArgs.formatNumber(rate))") }
            var ao = AdamW.Options(lr: Float(rate))
            ao.weightDecay = 0
            optimizer = try run { try AdamW(groups: [(params: policy.parameters().filter(\.requiresGrad), options: ao)]) }
        }
        guard let optimizer else { throw LuaBindingError("no optimizer") }
        let schedule = try object(a, "schedule", OptimBinding.scheduleMetatable, "a schedule (optim.schedule)", as: LRSchedule.self)
        let checkpoints = try object(a, "checkpoints", CkptBinding.managerMetatable, "a checkpoint manager (ckpt.manager)", as: CheckpointManager.self)
        let rollback = try object(a, "rollback", CkptBinding.policyMetatable, "a rollback policy (ckpt.policy)", as: RollbackPolicy.self)
        let runRecord = try object(a, "run", RunBinding.metatable, "a run (run.start)", as: RunRecord.self)
        let style = try progressStyle(a)
        let logEvery = try RunBinding.integerField(a, 1, "log_every", min: 1)
        let t = try run {
            try DPOTrainer(policy: policy, reference: reference, train: train, eval: eval, optimizer: optimizer, schedule: schedule,
                           checkpoints: checkpoints, rollback: rollback, run: runRecord, options: o)
        }
        let state = a.state
        t.captureGenerator = { [unowned state] in state.generator }
        t.restoreGenerator = { [unowned state] g in state.generator = g }
        if let style { t.progress = TrainingProgress(style: style, every: logEvery) { _ in } }
        a.lua.pushObject(t, metatable: metatable)
        return 1
    }

    // MARK: eval.preferences

    static let evalPreferencesOptions: Set<String> = [
        "reference", "loss", "beta", "label_smoothing", "loss_weights", "f_divergence_type", "f_alpha_divergence_coef",
        "discopop_tau", "cpo_alpha", "simpo_gamma", "batch_size",
    ]

    static let evalPreferences = LuaFunction("preferences", [.required("model", .any), .required("prefs", .any), .optional("options", .table, default: "{}")], doc: """
        Preference accuracy and margins of a model on held-out pairs: eval.preferences(model, prefs, {reference=, loss="sigmoid",
          beta=0.1, batch_size=8, ...}) returns {accuracy= (how often the chosen completion gets the higher implicit reward),
          margin= (mean reward margin), loss= (the objective's mean), pairs=, and every metric under TRL's eval names:
          eval_loss, eval_rewards/chosen, eval_rewards/rejected, eval_rewards/accuracies, eval_rewards/margins,
          eval_logps/chosen, eval_logps/rejected}. Rewards are beta * (log pi(y|x) - log pi_ref(y|x)): the reference
          log-probs come from reference= (computed per batch) or those attached to prefs (dpo.reference_logprobs).
          loss and its options as dpo.trainer's; with "simpo", "cpo" or "orpo" no reference is needed. No gradients,
          dropout off. tr:evaluate(prefs) gives the same numbers for a trainer's policy.
        """) { a in
        let module = try NNBinding.module(a, 1)
        guard let model = module as? LanguageModel else { throw a.argumentError(1, "a language model (nn.gpt2, nn.llama, nn.load), got \(module.summary)") }
        guard let prefs = a.lua.object(2, metatable: PreferenceBinding.metatable, as: PreferenceData.self) else {
            throw a.typeError(2, "preference data (data.preferences)")
        }
        try a.checkOptions(3, allowed: evalPreferencesOptions)
        let objective = try objective(a, at: 3)
        let reference = try DPOTrainerBinding.model(a, "reference", at: 3)
        let size = try RunBinding.integerField(a, 3, "batch_size", min: 1) ?? 8
        if objective.needsReference && reference == nil && (prefs.referenceChosen == nil || prefs.referenceRejected == nil) {
            throw a.argumentError(3, "a table with reference = the reference model: prefs has no reference log-probs attached (dpo.reference_logprobs)")
        }
        if reference === model { throw a.argumentError(3, "a reference other than the model itself") }
        let metrics = try run { try DPOTrainer.evaluate(policy: model, objective: objective, reference: reference, data: prefs, batchSize: size) }
        pushMetrics(a, metrics)
        func alias(_ name: String, _ key: String) {
            guard let v = metrics.first(where: { $0.0 == key })?.1 else { return }
            a.lua.push(v); a.lua.rawSet(-2, field: name)
        }
        alias("accuracy", "eval_rewards/accuracies")
        alias("margin", "eval_rewards/margins")
        alias("loss", "eval_loss")
        a.lua.push(prefs.count); a.lua.rawSet(-2, field: "pairs")
        return 1
    }

    // MARK: methods

    static func pushMetrics(_ a: LuaArgs, _ metrics: [(String, Double)]) {
        a.lua.newTable(recordCount: Int32(clamping: metrics.count + 4))
        for (k, v) in metrics {
            a.lua.push(v)
            a.lua.rawSet(-2, field: k)
        }
    }

    static func method(_ name: String, _ params: [LuaParam] = [], doc: String,
                       _ body: @escaping (LuaArgs, DPOTrainer) throws -> Int) -> LuaFunction {
        LuaFunction(name, [.required("self", .any)] + params, method: true, doc: doc) { a in
            let t = try trainer(a)
            // Progress goes through the calling thread's io.write (a coroutine's state differs from the main one).
            let lua = a.lua
            t.progress?.write = { s in write(lua, s) }
            // Ctrl-C while the trainer runs Swift code: it stops at the next step boundary.
            let interrupts = tycho_interrupt_count()
            t.shouldStop = { tycho_interrupt_count() != interrupts }
            defer {
                t.progress?.write = { _ in }
                t.shouldStop = nil
            }
            return try body(a, t)
        }
    }

    static let methods: [LuaFunction] = [
        method("step", doc: """
               One optimizer step (grad_accum micro-batches): returns its metrics {loss=, ["rewards/accuracies"]=, ...,
                 grad_norm=, learning_rate=, epoch=, step=, rows={source rows}}. A non-finite step is not applied: with a
                 rollback policy it rolls back and returns {step=, rolled_back_to=, cause=, rows=}; without one it is an error.
               """) { a, t in
            let r = try run { try t.takeStep() }
            guard a.lua.ensureStack(6) else { throw LuaBindingError("Lua stack overflow") }
            pushMetrics(a, r.metrics)
            a.lua.push(r.step); a.lua.rawSet(-2, field: "step")
            CkptBinding.pushIntegers(a, r.rows); a.lua.rawSet(-2, field: "rows")
            if let to = r.rolledBackTo {
                a.lua.push(to); a.lua.rawSet(-2, field: "rolled_back_to")
                a.lua.push(r.cause ?? ""); a.lua.rawSet(-2, field: "cause")
            }
            return 1
        },
        method("evaluate", [.optional("prefs", .any)], doc: """
               The objective on every pair of the eval data (or of prefs), without gradients, averaged over pairs:
                 {eval_loss=, ["eval_rewards/accuracies"]=, ["eval_rewards/margins"]=, ...}. Without prefs the result is
                 logged in the run at the current step.
               """) { a, t in
            let metrics: [(String, Double)]
            if a.isNil(2) {
                metrics = try run { try t.evaluate() }
            } else {
                guard let d = a.lua.object(2, metatable: PreferenceBinding.metatable, as: PreferenceData.self) else {
                    throw a.typeError(2, "preference data (data.preferences)")
                }
                metrics = try run { try t.evaluate(d) }
            }
            pushMetrics(a, metrics)
            return 1
        },
        method("fit", doc: """
               Trains to the last step (max_steps, or epochs), with evals, checkpoints and rollbacks as configured; returns
                 {steps= (taken by this call), resumed_from=, rollbacks={causes}, metrics={last step's}, eval={last eval},
                 seconds=}.
               """) { a, t in
            let r = try run { try t.fit() }
            guard a.lua.ensureStack(6) else { throw LuaBindingError("Lua stack overflow") }
            a.lua.newTable(recordCount: 6)
            a.lua.push(r.steps); a.lua.rawSet(-2, field: "steps")
            if let s = r.resumedFrom { a.lua.push(s); a.lua.rawSet(-2, field: "resumed_from") }
            a.lua.newTable(arrayCount: Int32(clamping: r.rollbacks.count))
            for (i, c) in r.rollbacks.enumerated() { a.lua.push(c); a.lua.rawSet(-2, index: i + 1) }
            a.lua.rawSet(-2, field: "rollbacks")
            pushMetrics(a, r.metrics); a.lua.rawSet(-2, field: "metrics")
            pushMetrics(a, r.eval); a.lua.rawSet(-2, field: "eval")
            a.lua.push(r.seconds); a.lua.rawSet(-2, field: "seconds")
            return 1
        },
        method("info", doc: """
               Where the trainer is: {step=, total_steps=, steps_per_epoch=, epoch= (1-based), batch= (next micro-batch of
                 the epoch, 1-based), objective=, rollbacks=, skipped_rows={source rows left out}, resumed_from=,
                 metrics={last step's}, eval={last eval's}}.
               """) { a, t in
            guard a.lua.ensureStack(6) else { throw LuaBindingError("Lua stack overflow") }
            a.lua.newTable(recordCount: 12)
            a.lua.push(t.step); a.lua.rawSet(-2, field: "step")
            a.lua.push(t.totalSteps); a.lua.rawSet(-2, field: "total_steps")
            a.lua.push(t.stepsPerEpoch); a.lua.rawSet(-2, field: "steps_per_epoch")
            a.lua.push(t.epoch + 1); a.lua.rawSet(-2, field: "epoch")
            a.lua.push(t.batchIndex + 1); a.lua.rawSet(-2, field: "batch")
            a.lua.push(t.options.objective.name); a.lua.rawSet(-2, field: "objective")
            a.lua.push(t.rollbackCauses.count); a.lua.rawSet(-2, field: "rollbacks")
            CkptBinding.pushIntegers(a, t.skippedRows.sorted().map { $0 + 1 }); a.lua.rawSet(-2, field: "skipped_rows")
            if let s = t.resumedFrom { a.lua.push(s); a.lua.rawSet(-2, field: "resumed_from") }
            pushMetrics(a, t.lastMetrics); a.lua.rawSet(-2, field: "metrics")
            pushMetrics(a, t.lastEval); a.lua.rawSet(-2, field: "eval")
            return 1
        },
    ]

    static let metamethods: [String: LuaFunction] = {
        let table: [String: LuaFunction] = [
            "__index": OptimBinding.indexMetamethod("a trainer"),
            "__tostring": LuaFunction("__tostring", [.required("self", .any)], doc: "DPOTrainer(objective, step N/M, P pairs).") { a in
                guard let t = a.lua.object(1, metatable: metatable, as: DPOTrainer.self) else { return a.push("DPOTrainer (released)") }
                return a.push("DPOTrainer(\(t.options.objective.name), step \(t.step)/\(t.totalSteps), \(t.train.count) pairs\(t.eval.map { ", \($0.count) eval pairs" } ?? ""))")
            },
            "__gc": LuaFunction("__gc", [.optional("self", .any)], doc: "Releases the trainer.") { a in
                a.lua.releaseObject(1, metatable: metatable)
                return 0
            },
        ]
        for f in table.values { f.module = "dpo" }
        return table
    }()

    static func register(in state: LuaState) {
        state.registerType(metatable: metatable, methods: methods, metamethods: metamethods)
    }
}

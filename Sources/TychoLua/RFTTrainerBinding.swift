// RFTTrainerBinding.swift: `rft.trainer{...}` and its methods (`tycho.RFTTrainer`). The loop is TychoTrain's
// RFTTrainer; this file reads the option table, turns the grader (an rft.grader object, or a Lua function run in
// the calling state) into the Swift closure the trainer calls, renders the prompts, and returns plain tables.

import CLua
import CLuaShim
import Foundation
import TychoNN
import TychoTensor
import TychoText
import TychoTrain

enum RFTTrainerBinding {
    static let metatable = "tycho.RFTTrainer"

    /// The Lua state a trainer's callbacks run in: the caller of the current method (a coroutine's differs).
    final class Caller {
        var lua: Lua?
        var key = ""
    }

    /// A trainer with the state its Lua callbacks need.
    final class TrainerObject {
        let trainer: RFTTrainer
        let caller: Caller
        init(_ trainer: RFTTrainer, _ caller: Caller) {
            self.trainer = trainer
            self.caller = caller
        }
    }

    static func object(_ a: LuaArgs, _ idx: Int = 1) throws -> TrainerObject {
        if let t = a.lua.object(Int32(idx), metatable: metatable, as: TrainerObject.self) { return t }
        if a.lua.isFinalized(Int32(idx)) { throw a.argumentError(idx, "a live trainer, got one that was already collected") }
        throw a.typeError(idx, "an RFT trainer (from rft.trainer)")
    }

    // MARK: reading the options

    static let options: Set<String> = [
        "policy", "reference", "tokenizer", "prompts", "validation", "prompt", "grader", "group_size", "batch_size",
        "iterations", "temperature", "top_p", "top_k", "max_completion_length", "mask_truncated", "beta", "loss", "epsilon",
        "epsilon_high", "delta", "importance_sampling", "scale_rewards", "optimizer", "lr", "schedule", "epochs", "max_steps",
        "seed", "shuffle", "max_grad_norm", "eval_every", "eval_samples", "eval_temperature", "save_every", "checkpoints",
        "rollback", "run", "resume", "progress", "log_every", "log_samples", "log_samples_every", "generation_batch",
    ]

    /// The prompts in option `key` (a list of items: tables or strings), rendered with `prompt` (a field name or a
    /// function(item) returning the text) and tokenized.
    static func prompts(_ a: LuaArgs, _ key: String, tokenizer: Tokenizer, field: String, function: Int32?, required: Bool) throws -> [RFTPrompt] {
        let lua = a.lua
        let t = lua.rawGet(1, field: key)
        defer { lua.pop() }
        if t == LUA_TNIL {
            if required { throw a.argumentError(1, "a table with \(key) = a list of items (tables with a '\(field)' field, or strings)") }
            return []
        }
        guard t == LUA_TTABLE else { throw a.argumentError(1, "a table whose field '\(key)' is a list of items, got \(lua.typeName(-1))") }
        let list = lua.absolute(-1)
        let n = lua.rawLength(list)
        if required && n == 0 { throw a.argumentError(1, "a table whose field '\(key)' is a non-empty list of items") }
        var out: [RFTPrompt] = []
        out.reserveCapacity(n)
        for i in 1...Swift.max(n, 1) where n > 0 {
            guard lua.ensureStack(6) else { throw LuaBindingError("Lua stack overflow") }
            let itemType = lua.rawGet(list, index: i)
            defer { lua.pop() }
            let itemIndex = lua.absolute(-1)
            let item = try RunBinding.json(a, itemIndex, what: "\(key)[\(i)]")
            var text: String
            if let function {
                lua.pushValue(function)
                lua.pushValue(itemIndex)
                if tycho_pcall(lua.L, 1, 1, 0) != LUA_OK {
                    let m = lua.string(-1) ?? "an error"
                    lua.pop()
                    throw LuaBindingError("the prompt function raised an error on \(key)[\(i)]: \(m)")
                }
                guard lua.type(-1) == LUA_TSTRING, let s = lua.string(-1) else {
                    let got = lua.typeName(-1)
                    lua.pop()
                    throw LuaBindingError("the prompt function returned \(got) for \(key)[\(i)], not a string")
                }
                text = s
                lua.pop()
            } else if itemType == LUA_TSTRING, let s = lua.string(itemIndex) {
                text = s
            } else {
                guard itemType == LUA_TTABLE, let s = item[field]?.stringValue else {
                    throw a.argumentError(1, "a table whose '\(key)' items are strings or tables with a string field '\(field)' (or give prompt = function(item)), item \(i) is not")
                }
                text = s
            }
            let ids = tokenizer.encode(text)
            guard !ids.isEmpty else { throw a.argumentError(1, "a table whose '\(key)' item \(i) has a prompt with tokens, got an empty one") }
            out.append(RFTPrompt(text: text, ids: ids, item: item))
        }
        return out
    }

    /// The grade closure for option `grader`: an rft.grader object, or a Lua function(output_text, item) returning a
    /// number (or true/false), kept in the registry under `caller.key` and run in the caller's state.
    static func grader(_ a: LuaArgs, caller: Caller) throws -> (String, JSONValue) -> (score: Double, error: String?) {
        let lua = a.lua
        let t = lua.rawGet(1, field: "grader")
        defer { lua.pop() }
        if let g = lua.object(-1, metatable: RFTBinding.metatable, as: RFTBinding.GraderObject.self) {
            let grader = g.grader
            return { text, item in
                let r = grader.run(sample: GraderSample(outputText: text, outputJSON: try? JSONParser.parse(text)), item: item)
                if let e = r.error { return (.nan, e.description) }
                return (r.score, nil)
            }
        }
        guard t == LUA_TFUNCTION else {
            if t == LUA_TNIL { throw a.argumentError(1, "a table with grader = an rft.grader object or a function(output_text, item) returning a score") }
            throw a.argumentError(1, "a table whose field 'grader' is an rft.grader object or a function, got \(lua.typeName(-1))")
        }
        lua.pushRegistry()
        lua.pushValue(-2)
        lua.rawSet(-2, field: caller.key)
        lua.pop()
        return { [caller] text, item in
            guard let lua = caller.lua, lua.ensureStack(8) else { return (.nan, "the grader cannot run outside a trainer call") }
            let top = lua.top
            defer { lua.top = top }
            lua.pushRegistry()
            _ = lua.rawGet(-1, field: caller.key)
            lua.push(text)
            do { try DataBinding.push(item, lua) } catch { return (.nan, "the item cannot be given to the grader: \(error)") }
            if tycho_pcall(lua.L, 2, 1, 0) != LUA_OK {
                let m = lua.type(-1) == LUA_TSTRING ? (lua.string(-1) ?? "error") : "a \(lua.typeName(-1)) error object"
                return (.nan, "the grader raised an error: \(m)")
            }
            switch lua.type(-1) {
            case LUA_TBOOLEAN: return (lua.bool(-1) ? 1 : 0, nil)
            case LUA_TNUMBER:
                let v = lua.number(-1) ?? .nan
                return v.isFinite ? (v, nil) : (.nan, "the grader returned \(v)")
            default: return (.nan, "the grader returned \(lua.typeName(-1)); it must return a number or true/false")
            }
        }
    }

    static func number(_ a: LuaArgs, _ key: String) throws -> Double? { try a.optionNumber(1, key) }

    static func choice<E: RawRepresentable>(_ a: LuaArgs, _ key: String, _ names: [String], _: E.Type) throws -> E? where E.RawValue == String {
        guard let s = try a.optionString(1, key) else { return nil }
        guard let v = E(rawValue: s) else {
            throw a.argumentError(1, "a table whose field '\(key)' is one of \(names.joined(separator: ", ")), got '\(s.prefix(40))'")
        }
        return v
    }

    // MARK: rft.trainer

    static let trainerFunction = LuaFunction("trainer", [.required("options", .table)], doc: """
        Reinforcement fine-tuning against a grader, as TRL 1.16's GRPOTrainer: rft.trainer{policy=, reference=, tokenizer=,
          prompts=, validation=, prompt="prompt", grader=, group_size=8, batch_size=4, iterations=1, temperature=1, top_p=1,
          top_k=0, max_completion_length=32, mask_truncated=true, beta=0, loss="dapo", epsilon=0.2, epsilon_high=, delta=,
          importance_sampling="token", scale_rewards="group", optimizer= (or lr=, default 1e-6), schedule=, epochs=1,
          max_steps=, seed=42, max_grad_norm=1, eval_every=, eval_samples=, eval_temperature=0, save_every=, checkpoints=,
          rollback=, run=, resume=true, progress="auto", log_samples=4, log_samples_every=10}; then tr:fit([steps]),
          tr:step(), tr:evaluate(), tr:samples(), tr:save(), tr:info().
          prompts, validation: lists of items (tables or strings; data.jsonl(path) reads a file); prompt: the item field
            holding the prompt text, or a function(item) returning it. The item is what graders see as item.
          grader: an rft.grader object (sandboxed Lua graders included), or a function(output_text, item) returning a
            score (true/false for 1/0) run in this state; a grader that fails scores NaN (counted, the step goes on).
          Each step samples group_size completions of batch_size prompts, grades them, computes group advantages
            (rft.advantages) and makes `iterations` updates with rft.loss (loss: dapo grpo bnpo dr_grpo cispo sapo luspo
            vespo; beta > 0 adds the k3 KL to reference). Metrics: loss, reward, reward_std, frac_reward_zero_std,
            completions/*, clip_ratio/*, kl, grader_errors, grad_norm, learning_rate.
          eval_every: every N steps (and after the last) valid_reward_mean on the validation prompts (one completion
            each, greedy unless eval_temperature > 0); checkpoints then carry it: give checkpoints = a folder path to keep
            the 3 best by it (OpenAI RFT's rule), or a ckpt.manager. rollback: a ckpt.policy (non-finite steps, or a
            regression of valid_reward_mean). tr:fit(n) runs n steps and saves (a pause); a new trainer resumes.
        """) { a in
        try a.checkOptions(1, allowed: options)
        guard let policy = try DPOTrainerBinding.model(a, "policy") else { throw a.argumentError(1, "a table with policy = the language model to train") }
        let reference = try DPOTrainerBinding.model(a, "reference")
        guard a.lua.rawGet(1, field: "tokenizer") != LUA_TNIL, let tokenizer = a.lua.object(-1, metatable: TokBinding.metatable, as: Tokenizer.self) else {
            let got = a.lua.typeName(-1)
            a.lua.pop()
            throw a.argumentError(1, "a table with tokenizer = a tokenizer (tok.load), got \(got)")
        }
        a.lua.pop()
        let caller = Caller()
        caller.key = "tycho.rft.grader.\(UUID().uuidString)"
        let grade = try grader(a, caller: caller)
        // The prompt field or function.
        var field = "prompt"
        var function: Int32?
        switch a.lua.rawGet(1, field: "prompt") {
        case LUA_TNIL: break
        case LUA_TSTRING: field = a.lua.string(-1) ?? "prompt"
        case LUA_TFUNCTION: function = a.lua.absolute(-1)
        default:
            let got = a.lua.typeName(-1)
            a.lua.pop()
            throw a.argumentError(1, "a table whose field 'prompt' is a field name or a function(item), got \(got)")
        }
        let train = try prompts(a, "prompts", tokenizer: tokenizer, field: field, function: function, required: true)
        let validation = try prompts(a, "validation", tokenizer: tokenizer, field: field, function: function, required: false)
        a.lua.pop()  // the prompt option
        var o = RFTTrainer.Options()
        if let v = try RunBinding.integerField(a, 1, "group_size", min: 2) { o.groupSize = v }
        if let v = try RunBinding.integerField(a, 1, "batch_size", min: 1) { o.batchSize = v }
        if let v = try RunBinding.integerField(a, 1, "iterations", min: 1) { o.iterations = v }
        if let v = try number(a, "temperature") { o.temperature = Float(v) }
        if let v = try number(a, "top_p") { o.topP = Float(v) }
        if let v = try RunBinding.integerField(a, 1, "top_k", min: 0) { o.topK = v }
        if let v = try RunBinding.integerField(a, 1, "max_completion_length", min: 1) { o.maxCompletionLength = v }
        if let v = try a.optionBoolean(1, "mask_truncated") { o.maskTruncated = v }
        if let v = try number(a, "beta") { o.loss.beta = v }
        if let v = try choice(a, "loss", GRPOLossType.names, GRPOLossType.self) { o.loss.type = v }
        if let v = try number(a, "epsilon") { o.loss.epsilon = v }
        if let v = try number(a, "epsilon_high") { o.loss.epsilonHigh = v }
        if let v = try number(a, "delta") { o.loss.delta = v }
        if let v = try choice(a, "importance_sampling", GRPOImportanceSampling.names, GRPOImportanceSampling.self) { o.loss.importanceSampling = v }
        if let v = try choice(a, "scale_rewards", GRPORewardScale.names, GRPORewardScale.self) { o.scale = v }
        if let v = try RunBinding.integerField(a, 1, "epochs", min: 1) { o.epochs = v }
        o.maxSteps = try RunBinding.integerField(a, 1, "max_steps", min: 1)
        if let v = try RunBinding.integerField(a, 1, "seed", min: 0) { o.seed = UInt64(v) }
        if let v = try a.optionBoolean(1, "shuffle") { o.shuffle = v }
        o.evalEvery = try RunBinding.integerField(a, 1, "eval_every", min: 1)
        o.evalSamples = try RunBinding.integerField(a, 1, "eval_samples", min: 1)
        if let v = try number(a, "eval_temperature") { o.evalTemperature = Float(v) }
        o.saveEvery = try RunBinding.integerField(a, 1, "save_every", min: 1)
        if let v = try a.optionBoolean(1, "resume") { o.resume = v }
        if let v = try RunBinding.integerField(a, 1, "log_samples", min: 0) { o.logSamples = v }
        if let v = try RunBinding.integerField(a, 1, "log_samples_every", min: 1) { o.logSamplesEvery = v }
        if let v = try RunBinding.integerField(a, 1, "generation_batch", min: 1) { o.generationBatch = v }
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
        var optimizer = try DPOTrainerBinding.object(a, "optimizer", OptimBinding.optimizerMetatable, "an optimizer (optim.adamw, optim.sgd)", as: Optimizer.self)
        let lr = try a.optionNumber(1, "lr")
        if optimizer != nil, lr != nil { throw a.argumentError(1, "a table with optimizer= or lr= (the default optimizer's rate), not both") }
        if optimizer == nil {
            let rate = lr ?? 1e-6
            guard rate.isFinite, rate >= 0 else { throw a.argumentError(1, "a table whose field 'lr' is a non-negative number, got \(LuaArgs.formatNumber(rate))") }
            var ao = AdamW.Options(lr: Float(rate))
            ao.weightDecay = 0
            optimizer = try DPOTrainerBinding.run { try AdamW(groups: [(params: policy.parameters().filter(\.requiresGrad), options: ao)]) }
        }
        guard let optimizer else { throw LuaBindingError("no optimizer") }
        let schedule = try DPOTrainerBinding.object(a, "schedule", OptimBinding.scheduleMetatable, "a schedule (optim.schedule)", as: LRSchedule.self)
        // checkpoints: a manager, or a folder for OpenAI's rule (the 3 best by valid_reward_mean, and the newest).
        var checkpoints: CheckpointManager?
        if a.lua.rawGet(1, field: "checkpoints") == LUA_TSTRING, let dir = a.lua.string(-1) {
            a.lua.pop()
            var co = CheckpointManager.Options(directory: dir)
            co.keepLast = 1
            co.keepBest = 3
            co.metric = "valid_reward_mean"
            co.mode = .max
            checkpoints = try DPOTrainerBinding.run { try CheckpointManager(co) }
        } else {
            a.lua.pop()
            checkpoints = try DPOTrainerBinding.object(a, "checkpoints", CkptBinding.managerMetatable, "a checkpoint manager (ckpt.manager) or a folder path", as: CheckpointManager.self)
        }
        let rollback = try DPOTrainerBinding.object(a, "rollback", CkptBinding.policyMetatable, "a rollback policy (ckpt.policy)", as: RollbackPolicy.self)
        let runRecord = try DPOTrainerBinding.object(a, "run", RunBinding.metatable, "a run (run.start)", as: RunRecord.self)
        if let runRecord, checkpoints?.run == nil { checkpoints?.run = runRecord }
        let style = try DPOTrainerBinding.progressStyle(a)
        let logEvery = try RunBinding.integerField(a, 1, "log_every", min: 1)
        let t = try DPOTrainerBinding.run {
            try RFTTrainer(policy: policy, reference: reference, tokenizer: tokenizer, prompts: train, validation: validation, grade: grade,
                           optimizer: optimizer, schedule: schedule, checkpoints: checkpoints, rollback: rollback, run: runRecord, options: o)
        }
        let state = a.state
        t.captureGenerator = { [unowned state] in state.generator }
        t.restoreGenerator = { [unowned state] g in state.generator = g }
        if let style {
            let p = TrainingProgress(style: style, every: logEvery) { _ in }
            p.barKeys = [("reward", "reward"), ("reward_std", "std"), ("loss", "loss")]
            p.lineKeys = ["reward", "reward_std", "frac_reward_zero_std", "completions/mean_length", "loss", "grad_norm"]
            t.progress = p
        }
        a.lua.pushObject(TrainerObject(t, caller), metatable: metatable)
        return 1
    }

    // MARK: methods

    static func method(_ name: String, _ params: [LuaParam] = [], doc: String,
                       _ body: @escaping (LuaArgs, RFTTrainer) throws -> Int) -> LuaFunction {
        LuaFunction(name, [.required("self", .any)] + params, method: true, doc: doc) { a in
            let o = try object(a)
            let t = o.trainer
            let lua = a.lua
            o.caller.lua = lua
            t.progress?.write = { s in DPOTrainerBinding.write(lua, s) }
            let interrupts = tycho_interrupt_count()
            t.shouldStop = { tycho_interrupt_count() != interrupts }
            defer {
                o.caller.lua = nil
                t.progress?.write = { _ in }
                t.shouldStop = nil
            }
            return try body(a, t)
        }
    }

    static func pushSamples(_ a: LuaArgs, _ samples: [RFTSample]) {
        let lua = a.lua
        lua.newTable(arrayCount: Int32(clamping: samples.count))
        for (i, s) in samples.enumerated() {
            lua.newTable(recordCount: 6)
            lua.push(s.prompt); lua.rawSet(-2, field: "prompt")
            lua.push(s.completion); lua.rawSet(-2, field: "completion")
            lua.push(s.score); lua.rawSet(-2, field: "score")
            lua.push(s.advantage); lua.rawSet(-2, field: "advantage")
            lua.push(s.truncated); lua.rawSet(-2, field: "truncated")
            if let e = s.error { lua.push(e); lua.rawSet(-2, field: "error") }
            lua.rawSet(-2, index: i + 1)
        }
    }

    static let methods: [LuaFunction] = [
        method("step", doc: """
               One step (generate, grade, `iterations` updates): returns its metrics {loss=, reward=, reward_std=, ...,
                 step=}; after a rollback {step=, rolled_back_to=, cause=}.
               """) { a, t in
            let r = try DPOTrainerBinding.run { try t.takeStep() }
            guard a.lua.ensureStack(6) else { throw LuaBindingError("Lua stack overflow") }
            DPOTrainerBinding.pushMetrics(a, r.metrics)
            a.lua.push(r.step); a.lua.rawSet(-2, field: "step")
            if let to = r.rolledBackTo {
                a.lua.push(to); a.lua.rawSet(-2, field: "rolled_back_to")
                a.lua.push(r.cause ?? ""); a.lua.rawSet(-2, field: "cause")
            }
            return 1
        },
        method("evaluate", doc: "The validation reward now: {valid_reward_mean=, valid_reward_std=, valid_grader_errors=, [\"valid_completions/mean_length\"]=}.") { a, t in
            DPOTrainerBinding.pushMetrics(a, try DPOTrainerBinding.run { try t.evaluate() })
            return 1
        },
        method("fit", [.optional("steps", .integer)], doc: """
               Trains to the last step, or `steps` more steps (then saves a checkpoint: a pause; a new trainer on the same
                 checkpoints resumes). Returns {steps=, resumed_from=, rollbacks={causes}, metrics=, eval=, seconds=, paused=}.
               """) { a, t in
            var limit: Int?
            if !a.isNil(2) {
                let n = try a.integer(2)
                guard n >= 1 else { throw a.argumentError(2, "a number of steps >= 1, got \(n)") }
                limit = n
            }
            let r = try DPOTrainerBinding.run { try t.fit(steps: limit) }
            guard a.lua.ensureStack(6) else { throw LuaBindingError("Lua stack overflow") }
            a.lua.newTable(recordCount: 7)
            a.lua.push(r.steps); a.lua.rawSet(-2, field: "steps")
            if let s = r.resumedFrom { a.lua.push(s); a.lua.rawSet(-2, field: "resumed_from") }
            a.lua.newTable(arrayCount: Int32(clamping: r.rollbacks.count))
            for (i, c) in r.rollbacks.enumerated() { a.lua.push(c); a.lua.rawSet(-2, index: i + 1) }
            a.lua.rawSet(-2, field: "rollbacks")
            DPOTrainerBinding.pushMetrics(a, r.metrics); a.lua.rawSet(-2, field: "metrics")
            DPOTrainerBinding.pushMetrics(a, r.eval); a.lua.rawSet(-2, field: "eval")
            a.lua.push(r.seconds); a.lua.rawSet(-2, field: "seconds")
            a.lua.push(r.paused); a.lua.rawSet(-2, field: "paused")
            return 1
        },
        method("samples", [.optional("n", .integer)], doc: """
               The last step's graded completions, {{prompt=, completion=, score=, advantage=, truncated=, error=}, ...}
                 (the first n when given); print them with print_samples or display them as a table in a notebook.
               """) { a, t in
            var s = t.lastSamples
            if !a.isNil(2) { s = Array(s.prefix(Swift.max(0, try a.integer(2)))) }
            pushSamples(a, s)
            return 1
        },
        method("save", doc: "Saves a checkpoint of the current step (a pause point).") { a, t in
            try DPOTrainerBinding.run { try t.saveCheckpoint() }
            return 0
        },
        method("info", doc: """
               Where the trainer is: {step=, total_steps=, epoch=, batch=, rollbacks=, resumed_from=, grader_errors=,
                 grader_error_examples={...}, metrics=, eval=}.
               """) { a, t in
            guard a.lua.ensureStack(6) else { throw LuaBindingError("Lua stack overflow") }
            a.lua.newTable(recordCount: 12)
            a.lua.push(t.step); a.lua.rawSet(-2, field: "step")
            a.lua.push(t.totalSteps); a.lua.rawSet(-2, field: "total_steps")
            a.lua.push(t.epoch + 1); a.lua.rawSet(-2, field: "epoch")
            a.lua.push(t.batchIndex + 1); a.lua.rawSet(-2, field: "batch")
            a.lua.push(t.rollbackCauses.count); a.lua.rawSet(-2, field: "rollbacks")
            if let s = t.resumedFrom { a.lua.push(s); a.lua.rawSet(-2, field: "resumed_from") }
            a.lua.push(t.graderErrors); a.lua.rawSet(-2, field: "grader_errors")
            a.lua.newTable(arrayCount: Int32(t.graderErrorExamples.count))
            for (i, e) in t.graderErrorExamples.enumerated() { a.lua.push(e); a.lua.rawSet(-2, index: i + 1) }
            a.lua.rawSet(-2, field: "grader_error_examples")
            DPOTrainerBinding.pushMetrics(a, t.lastMetrics); a.lua.rawSet(-2, field: "metrics")
            DPOTrainerBinding.pushMetrics(a, t.lastEval); a.lua.rawSet(-2, field: "eval")
            return 1
        },
    ]

    static let metamethods: [String: LuaFunction] = {
        let table: [String: LuaFunction] = [
            "__index": OptimBinding.indexMetamethod("an RFT trainer"),
            "__tostring": LuaFunction("__tostring", [.required("self", .any)], doc: "RFTTrainer(loss, step N/M, P prompts).") { a in
                guard let o = a.lua.object(1, metatable: metatable, as: TrainerObject.self) else { return a.push("RFTTrainer (released)") }
                let t = o.trainer
                return a.push("RFTTrainer(\(t.options.loss.type.rawValue), group \(t.options.groupSize), step \(t.step)/\(t.totalSteps), \(t.prompts.count) prompts\(t.validation.isEmpty ? "" : ", \(t.validation.count) validation"))")
            },
            "__gc": LuaFunction("__gc", [.optional("self", .any)], doc: "Releases the trainer and its grader function.") { a in
                if let o = a.lua.object(1, metatable: metatable, as: TrainerObject.self) {
                    a.lua.pushRegistry()
                    a.lua.pushNil()
                    a.lua.rawSet(-2, field: o.caller.key)
                    a.lua.pop()
                }
                a.lua.releaseObject(1, metatable: metatable)
                return 0
            },
        ]
        for f in table.values { f.module = "rft" }
        return table
    }()

    static func register(in state: LuaState) {
        state.registerType(metatable: metatable, methods: methods, metamethods: metamethods)
    }
}

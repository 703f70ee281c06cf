// RFTTrainer.swift: reinforcement fine-tuning against a grader, as TRL 1.16's GRPOTrainer runs it, with OpenAI
// RFT's validation reward and keep-best rule, checkpoints, rollbacks and a run record.
//
// One step: take `batchSize` prompts, sample `groupSize` completions of each with TychoInfer's generator
// (temperature, top_p, top_k, max_completion_length; seeded by the trainer's seed and the step, so a resumed run
// samples the same completions), grade every completion (a grader that fails gives NaN, counted: TRL's None),
// compute group-relative advantages (GRPOAdvantages), then `iterations` optimizer updates on that batch (TRL's
// num_iterations): the policy's per-token log-probs of the completions, the loss (GRPOLoss: dapo, grpo, bnpo,
// dr_grpo, cispo, sapo, luspo, vespo; token- or sequence-level importance sampling; k3 KL against the reference
// when beta > 0), backward, clipping, the optimizer. The sampling policy's log-probs (`old`) are computed once
// before the updates when iterations > 1 (with one update they equal the policy's, without grad).
// `maskTruncated` leaves completions that hit max_completion_length without a stop out of the loss (TRL's
// mask_truncated_completions); they still count in the rewards.
//
// Every `evalEvery` steps the policy answers the validation prompts (one completion each, greedy unless
// `evalTemperature` > 0) and `valid_reward_mean` is their mean grade (failed grades count 0 and are reported);
// checkpoints are saved then with it, so a manager with keep_best = 3 and metric valid_reward_mean keeps the three
// best (OpenAI RFT's rule), and a rollback policy on it rolls back a regression. Non-finite steps roll back as in
// DPOTrainer. Samples (prompt, completion, score, advantage) of each step are kept for a table and written to the
// run's events every `logSamplesEvery` steps.

import Foundation
import TychoInfer
import TychoNN
import TychoTensor
import TychoText

/// One prompt: its text, its ids, and the data item the grader sees as `item`.
public struct RFTPrompt {
    public var text: String
    public var ids: [Int]
    public var item: JSONValue

    public init(text: String, ids: [Int], item: JSONValue) {
        self.text = text
        self.ids = ids
        self.item = item
    }
}

/// A graded completion, for sample tables.
public struct RFTSample {
    public let prompt: String
    public let completion: String
    public let score: Double
    public let advantage: Double
    public let error: String?
    public let truncated: Bool
}

public final class RFTTrainer {
    public struct Options {
        /// Prompts per step; each gets groupSize completions.
        public var batchSize = 4
        public var groupSize = 8
        /// Optimizer updates per generated batch (TRL's num_iterations).
        public var iterations = 1
        public var temperature: Float = 1
        public var topP: Float = 1
        public var topK = 0
        public var maxCompletionLength = 32
        public var maskTruncated = true
        public var loss = GRPOLoss.Options()
        public var scale: GRPORewardScale = .group
        public var epochs = 1
        public var maxSteps: Int? = nil
        public var seed: UInt64 = 42
        public var shuffle = true
        public var maxGradNorm: Double? = 1
        public var evalEvery: Int? = nil
        /// Validation prompts per eval (nil: all).
        public var evalSamples: Int? = nil
        public var evalTemperature: Float = 0
        public var saveEvery: Int? = nil
        /// Completions decoded side by side.
        public var generationBatch = 32
        public var logSamples = 4
        public var logSamplesEvery = 10
        public var resume = true

        public init() {}
    }

    public let policy: LanguageModel
    public let reference: LanguageModel?
    public let tokenizer: Tokenizer
    public let prompts: [RFTPrompt]
    public let validation: [RFTPrompt]
    /// Grades one completion's text for a data item: a score, or an error message (the grade then counts as NaN).
    public let grade: (String, JSONValue) -> (score: Double, error: String?)
    public let optimizer: Optimizer
    public let schedule: LRSchedule?
    public let checkpoints: CheckpointManager?
    public let rollback: RollbackPolicy?
    public let run: RunRecord?
    public let options: Options
    public var captureGenerator: (() -> RandomGenerator)?
    public var restoreGenerator: ((RandomGenerator) -> Void)?
    public var progress: TrainingProgress?
    /// Asked before each step: true stops training with an "interrupted" error (Ctrl-C); the steps done are kept.
    public var shouldStop: (() -> Bool)?

    public private(set) var step = 0
    public private(set) var epoch = 0
    public private(set) var batchIndex = 0
    public private(set) var lastMetrics: [(String, Double)] = []
    public private(set) var lastEval: [(String, Double)] = []
    public private(set) var lastSamples: [RFTSample] = []
    public private(set) var rollbackCauses: [String] = []
    public private(set) var resumedFrom: Int?
    public private(set) var graderErrors = 0
    /// The first few grader error messages, for the user.
    public private(set) var graderErrorExamples: [String] = []

    public let batchesPerEpoch: Int
    public var totalSteps: Int { options.maxSteps ?? options.epochs * batchesPerEpoch }

    private let generator: Generator
    private var prepared = false
    private var plan: [[Int]] = []
    private var planEpoch = -1
    private var lastSavedStep: Int?

    public init(policy: LanguageModel, reference: LanguageModel?, tokenizer: Tokenizer, prompts: [RFTPrompt],
                validation: [RFTPrompt], grade: @escaping (String, JSONValue) -> (score: Double, error: String?), optimizer: Optimizer,
                schedule: LRSchedule?, checkpoints: CheckpointManager?, rollback: RollbackPolicy?, run: RunRecord?,
                options: Options) throws {
        let o = options
        guard o.batchSize >= 1 else { throw TrainerError("batch_size must be at least 1, got \(o.batchSize)") }
        guard o.groupSize >= 2 else { throw TrainerError("group_size must be at least 2 (advantages compare completions of a prompt), got \(o.groupSize)") }
        guard o.iterations >= 1 else { throw TrainerError("iterations must be at least 1, got \(o.iterations)") }
        guard o.maxCompletionLength >= 1 else { throw TrainerError("max_completion_length must be at least 1, got \(o.maxCompletionLength)") }
        guard o.temperature.isFinite, o.temperature > 0 else { throw TrainerError("temperature must be positive (sampling), got \(o.temperature)") }
        guard o.topP > 0, o.topP <= 1 else { throw TrainerError("top_p must be in (0, 1], got \(o.topP)") }
        guard o.topK >= 0 else { throw TrainerError("top_k must be at least 0, got \(o.topK)") }
        guard o.epochs >= 1 else { throw TrainerError("epochs must be at least 1, got \(o.epochs)") }
        if let m = o.maxSteps, m < 1 { throw TrainerError("max_steps must be at least 1, got \(m)") }
        if let e = o.evalEvery, e < 1 { throw TrainerError("eval_every must be at least 1, got \(e)") }
        if let e = o.evalSamples, e < 1 { throw TrainerError("eval_samples must be at least 1, got \(e)") }
        if let s = o.saveEvery, s < 1 { throw TrainerError("save_every must be at least 1, got \(s)") }
        guard o.evalTemperature.isFinite, o.evalTemperature >= 0 else { throw TrainerError("eval_temperature must be >= 0, got \(o.evalTemperature)") }
        if let g = o.maxGradNorm, !(g.isFinite && g > 0) { throw TrainerError("max_grad_norm must be a positive number, got \(g)") }
        guard o.generationBatch >= 1 else { throw TrainerError("generation_batch must be at least 1, got \(o.generationBatch)") }
        do { try o.loss.validate() } catch let e as LossError { throw TrainerError(e.message) }
        guard !prompts.isEmpty else { throw TrainerError("there are no training prompts") }
        if o.evalEvery != nil && validation.isEmpty { throw TrainerError("eval_every needs validation prompts (validation=)") }
        if o.loss.beta > 0 && reference == nil { throw TrainerError("beta > 0 needs a reference model (reference=) for the KL term") }
        if reference === policy { throw TrainerError("the reference is the policy itself: give a frozen copy (policy:clone():freeze())") }
        if rollback != nil && checkpoints == nil {
            throw TrainerError("a rollback policy needs a checkpoint manager to roll back to (checkpoints = ckpt.manager{...})")
        }
        let own = Set(policy.parameters().map { ObjectIdentifier($0) })
        if let i = optimizer.params.firstIndex(where: { !own.contains(ObjectIdentifier($0)) }) {
            throw TrainerError("parameter \(i + 1) of the optimizer is not a parameter of the policy (make it with optim.adamw(policy:parameters(), ...))")
        }
        for (i, p) in (prompts + validation).enumerated() where p.ids.isEmpty {
            throw TrainerError("prompt \(i + 1) has no tokens")
        }
        if let limit = policy.maxPositions, let long = (prompts + validation).first(where: { $0.ids.count + o.maxCompletionLength > limit }) {
            throw TrainerError("a prompt of \(long.ids.count) tokens plus max_completion_length \(o.maxCompletionLength) exceeds the model's \(limit) positions: \"\(long.text.prefix(40))\"")
        }
        self.policy = policy
        self.reference = reference
        self.tokenizer = tokenizer
        self.prompts = prompts
        self.validation = validation
        self.grade = grade
        self.optimizer = optimizer
        self.schedule = schedule
        self.checkpoints = checkpoints
        self.rollback = rollback
        self.run = run
        self.options = o
        batchesPerEpoch = (prompts.count + o.batchSize - 1) / o.batchSize
        do { generator = try Generator(model: policy, tokenizer: tokenizer) } catch let e as GenerationError { throw TrainerError(e.message) }
    }

    // MARK: state

    var objects: TrainingObjects { TrainingObjects(model: policy, optimizer: optimizer, schedule: schedule) }
    var dataPosition: JSONValue { .object([("epoch", .int(epoch)), ("batch", .int(batchIndex))]) }

    func prepare() throws {
        guard !prepared else { return }
        if let m = checkpoints {
            if options.resume, let latest = m.latest {
                let r = try m.load(.latest, into: objects, rng: captureGenerator != nil)
                if let g = r.generator { restoreGenerator?(g) }
                try restorePosition(step: latest.step, position: r.dataPosition)
                if let metric = rollback?.regression?.metric {
                    let best = m.entries.filter { !$0.superseded }.compactMap { e in e.metric(metric).map { (e.step, $0) } }
                        .sorted { (rollback?.regression?.mode ?? .max) == .min ? $0.1 < $1.1 : $0.1 > $1.1 }.first
                    if let best { rollback?.setBest(best.1, step: best.0) }
                }
                resumedFrom = latest.step
                lastSavedStep = latest.step
                progress?.note("resumed from \(m.path(of: latest)) (step \(latest.step) of \(totalSteps))")
                if let run, !run.isFinished { try run.event(kind: "resume", [("step", .int(latest.step)), ("path", .string(m.path(of: latest)))]) }
            } else if let latest = m.latest {
                throw TrainerError("\(m.directory) already holds checkpoints (the newest of step \(latest.step)); with resume = false a new run there would mix with them: give another folder")
            } else {
                try save(metrics: [])
            }
        }
        prepared = true
    }

    private func restorePosition(step s: Int, position: JSONValue) throws {
        guard let e = position["epoch"]?.intValue, let b = position["batch"]?.intValue, e >= 0, b >= 0 else {
            throw TrainerError("the checkpoint of step \(s) has no trainer data position (saved by another program?): \(position.line.prefix(80))")
        }
        step = s
        epoch = e
        batchIndex = b
    }

    func epochPlan(_ e: Int) -> [[Int]] {
        if planEpoch == e { return plan }
        var order = Array(0..<prompts.count)
        if options.shuffle {
            var g = RandomGenerator(seed: options.seed)
            for _ in 0...e { order = BatchPlan.shuffled(prompts.count) { Int(g.nextInt(below: UInt64($0))) } }
        }
        plan = BatchPlan.batches(order, batchSize: options.batchSize, dropLast: false)
        planEpoch = e
        return plan
    }

    // MARK: generation and grading

    /// Completions of `batch` (groupSize each when `n` is nil), in prompt order, grouped.
    func sample(_ batch: [RFTPrompt], n: Int, temperature: Float, seed: UInt64) throws -> [[Completion]] {
        var o = GenerationOptions()
        o.n = n
        o.maxTokens = options.maxCompletionLength
        o.temperature = temperature
        o.topP = temperature > 0 ? options.topP : 1
        o.topK = temperature > 0 ? options.topK : 0
        o.seed = seed
        let wasTraining = policy.isTraining
        policy.setTraining(false)
        defer { policy.setTraining(wasTraining) }
        do {
            return try GradMode.with(enabled: false) {
                try generator.generate(prompts: batch.map(\.ids), options: o, batchSize: Swift.min(options.generationBatch, batch.count * n)).completions
            }
        } catch let e as GenerationError {
            throw TrainerError("generation: \(e.message)")
        }
    }

    /// The grade of one completion: the score, or NaN and the error when the grader failed.
    func score(_ c: Completion, _ p: RFTPrompt) -> (Double, String?) {
        let r = grade(c.text, p.item)
        if let e = r.error {
            graderErrors += 1
            if graderErrorExamples.count < 5 { graderErrorExamples.append(e) }
            return (.nan, e)
        }
        guard r.score.isFinite else { return (.nan, "the grader returned \(r.score)") }
        return (r.score, nil)
    }

    /// Step seeds: a function of the trainer's seed and the step, so a resumed run samples what the uninterrupted
    /// one did.
    func seed(step k: Int, salt: UInt64) -> UInt64 {
        var g = RandomGenerator(seed: options.seed ^ (UInt64(k) &* 0x9E37_79B9_7F4A_7C15) ^ salt)
        return g.next()
    }

    // MARK: the batch as tensors

    struct Rollouts {
        var ids: Tensor        // (N, L) prompt + completion, right-padded
        var mask: Tensor       // (N, L - 1) 1 where the target token is a completion token counted in the loss
        var truncated: [Bool]
    }

    func rollouts(_ batch: [RFTPrompt], _ groups: [[Completion]]) throws -> Rollouts {
        var rows: [[Int]] = [], starts: [Int] = [], counted: [Bool] = [], truncated: [Bool] = []
        for (p, group) in zip(batch, groups) {
            for c in group {
                rows.append(p.ids + c.ids)
                starts.append(p.ids.count)
                let cut = c.finishReason == .length
                truncated.append(cut)
                counted.append(!(cut && options.maskTruncated) && !c.ids.isEmpty)
            }
        }
        let length = Swift.max(2, rows.map(\.count).max() ?? 2)
        let pad = Float(generator.eosTokenIDs.first ?? 0)
        var ids = [Float](repeating: pad, count: rows.count * length)
        var mask = [Float](repeating: 0, count: rows.count * (length - 1))
        for (r, row) in rows.enumerated() {
            for (t, id) in row.enumerated() { ids[r * length + t] = Float(id) }
            guard counted[r] else { continue }
            // target position t (predicting token t + 1) counts when token t + 1 is a completion token
            for t in (starts[r] - 1)..<(row.count - 1) { mask[r * (length - 1) + t] = 1 }
        }
        return Rollouts(ids: try Tensor(shape: [rows.count, length], values: ids),
                        mask: try Tensor(shape: [rows.count, length - 1], values: mask), truncated: truncated)
    }

    /// Per-token log-probs (N, L - 1) of `model` on the rollouts.
    func tokenLogps(_ model: LanguageModel, _ r: Rollouts) throws -> Tensor {
        try model.tokenLogProbs(r.ids, mask: nil, "rft").logp
    }

    // MARK: a step

    public struct StepResult {
        public let step: Int
        public let metrics: [(String, Double)]
        public let samples: [RFTSample]
        public let rolledBackTo: Int?
        public let cause: String?
    }

    @discardableResult
    public func takeStep() throws -> StepResult {
        try prepare()
        guard step < totalSteps else {
            throw TrainerError("training is done: \(step) of \(totalSteps) steps (raise max_steps or epochs for more)")
        }
        if shouldStop?() == true {
            throw TrainerError("interrupted! at step \(step) of \(totalSteps) (the steps done are kept; fit() or step() goes on from here)")
        }
        let k = step + 1
        if epochPlan(epoch).count <= batchIndex {
            epoch += 1
            batchIndex = 0
        }
        let batch = epochPlan(epoch)[batchIndex].map { prompts[$0] }
        batchIndex += 1
        let g = options.groupSize
        let groups = try sample(batch, n: g, temperature: options.temperature, seed: seed(step: k, salt: 1))
        // Grades, advantages.
        var scores: [Double] = [], errors: [String?] = []
        for (p, group) in zip(batch, groups) {
            for c in group {
                let (s, e) = score(c, p)
                scores.append(s)
                errors.append(e)
            }
        }
        var ao = GRPOAdvantages.Options(groupSize: g)
        ao.scale = options.scale
        let adv: GRPOAdvantages.Result
        do { adv = try GRPOAdvantages.compute(try Tensor(shape: [scores.count], values: scores.map(Float.init)), options: ao) } catch let e as LossError {
            throw TrainerError(e.message)
        }
        let r = try rollouts(batch, groups)
        let advantages = adv.advantages.toArray()
        var samples: [RFTSample] = []
        var i = 0
        for (p, group) in zip(batch, groups) {
            for c in group {
                samples.append(RFTSample(prompt: p.text, completion: c.text, score: scores[i], advantage: Double(advantages[i]),
                                         error: errors[i], truncated: r.truncated[i]))
                i += 1
            }
        }
        lastSamples = samples
        // The updates.
        let lr: Double
        if let schedule {
            lr = schedule.lr(at: k - 1)
            try optimizer.setLearningRate(Float(lr))
        } else {
            lr = Double(optimizer.learningRate())
        }
        let wasTraining = policy.isTraining
        policy.setTraining(false)  // no dropout in RL updates (TRL disables it)
        defer { policy.setTraining(wasTraining) }
        let old: Tensor? = options.iterations > 1 ? try GradMode.with(enabled: false) { try tokenLogps(policy, r) } : nil
        var refLogps: Tensor?
        if options.loss.beta > 0, let reference {
            let was = reference.isTraining
            reference.setTraining(false)
            defer { reference.setTraining(was) }
            refLogps = try GradMode.with(enabled: false) { try tokenLogps(reference, r) }
        }
        var lossValue = 0.0, norm = 0.0
        var stats: [(String, Double)] = []
        for _ in 0..<options.iterations {
            optimizer.zeroGrad()
            var x = GRPOLoss.Inputs(logps: try tokenLogps(policy, r), advantages: adv.advantages, mask: r.mask)
            x.oldLogps = old
            x.refLogps = refLogps
            x.truncated = r.truncated
            var lo = options.loss
            if lo.maxCompletionLength == nil { lo.maxCompletionLength = options.maxCompletionLength }
            let result: GRPOLoss.Result
            do { result = try GRPOLoss.compute(x, options: lo) } catch let e as LossError { throw TrainerError(e.message) }
            lossValue = Double(try result.loss.item())
            stats = result.stats.entries.map { ($0.name, $0.value) }
            guard lossValue.isFinite else { break }
            try result.loss.backward()
            norm = Double(try GradClipping.clipGradNorm(optimizer.params, maxNorm: Float(options.maxGradNorm ?? Double(Float.greatestFiniteMagnitude))))
            guard norm.isFinite else { break }
            try optimizer.step()
        }
        guard lossValue.isFinite && norm.isFinite else {
            optimizer.zeroGrad()
            let what = lossValue.isFinite ? "grad_norm is \(norm)" : "loss is \(lossValue)"
            let rows = batch.indices.map { epochPlan(epoch)[batchIndex - 1][$0] + 1 }
            guard let policy = rollback, let manager = checkpoints else {
                throw TrainerError("non-finite step \(k): \(what) on prompts \(rows.map(String.init).joined(separator: ", ")) (give rollback = ckpt.policy{} and checkpoints = ckpt.manager{...} to roll back and go on)")
            }
            guard let d = policy.check(step: k, loss: lossValue, metrics: [("grad_norm", norm)], batchRows: rows) else {
                throw TrainerError("non-finite step \(k): \(what), and the rollback policy does not act on non-finite values")
            }
            let to = try rollBack(d, manager)
            return StepResult(step: step, metrics: [], samples: samples, rolledBackTo: to, cause: d.cause)
        }
        step = k
        var metrics: [(String, Double)] = [("loss", lossValue)]
        metrics += adv.stats.entries.map { ($0.name, $0.value) }
        metrics += stats.filter { s in !metrics.contains { $0.0 == s.0 } }
        let failed = errors.filter { $0 != nil }.count
        metrics += [("grader_errors", Double(failed)), ("grad_norm", norm), ("learning_rate", lr),
                    ("epoch", Double(epoch) + Double(batchIndex) / Double(batchesPerEpoch))]
        lastMetrics = metrics
        try log(metrics)
        if let run, !run.isFinished, options.logSamples > 0, k % options.logSamplesEvery == 0 || k == 1 {
            try run.event(kind: "samples", [("step", .int(k)), ("samples", .array(samples.prefix(options.logSamples).map(RFTTrainer.json)))])
        }
        if let every = options.saveEvery, k % every == 0 { try save(metrics: [("loss", lossValue)]) }
        return StepResult(step: k, metrics: metrics, samples: samples, rolledBackTo: nil, cause: nil)
    }

    static func json(_ s: RFTSample) -> JSONValue {
        var f: [(String, JSONValue)] = [("prompt", .string(s.prompt)), ("completion", .string(s.completion)),
                                        ("score", .number(s.score)), ("advantage", .number(s.advantage)),
                                        ("truncated", .bool(s.truncated))]
        if let e = s.error { f.append(("error", .string(e))) }
        return .object(f)
    }

    private func log(_ metrics: [(String, Double)]) throws {
        guard let run, !run.isFinished else { return }
        try run.log(step: step, metrics.map { ($0.0, JSONValue.number($0.1)) })
    }

    @discardableResult
    private func rollBack(_ d: RollbackDecision, _ manager: CheckpointManager) throws -> Int {
        let r: CheckpointManager.Restored
        do {
            r = try manager.rollback(decision: d, step: nil, objects: objects, lrFactor: nil, rng: captureGenerator != nil)
        } catch let e as RecordError {
            throw TrainerError("\(d.cause); cannot roll back: \(e.message)")
        }
        if let g = r.generator { restoreGenerator?(g) }
        try restorePosition(step: r.entry.step, position: r.dataPosition)
        rollbackCauses.append(d.cause)
        lastSavedStep = r.entry.step
        progress?.note("rollback: \(d.cause); back to step \(r.entry.step), learning rate x\(PreferenceInputs.format(d.lrFactor)) (scale \(PreferenceInputs.format(r.lrScale)))")
        return r.entry.step
    }

    @discardableResult
    private func save(metrics: [(String, Double)]) throws -> CheckpointManager.Entry? {
        guard let m = checkpoints else { return nil }
        let e = try m.save(step: step, objects: objects, generator: captureGenerator?(),
                           metrics: metrics.map { ($0.0, JSONValue.number($0.1)) }, dataPosition: dataPosition)
        lastSavedStep = step
        return e
    }

    /// Saves a checkpoint now (to pause: a new trainer on the same folder resumes from it).
    public func saveCheckpoint() throws {
        try prepare()
        guard checkpoints != nil else { throw TrainerError("no checkpoint manager (checkpoints=) to save to") }
        if lastSavedStep != step { try save(metrics: lastMetrics.filter { $0.0 == "loss" }) }
    }

    // MARK: validation

    /// The validation reward: one completion per validation prompt (greedy unless evalTemperature > 0), graded;
    /// failed grades count 0. Metrics valid_reward_mean, valid_reward_std, valid_grader_errors,
    /// valid_completions/mean_length. Logged in the run at the current step.
    @discardableResult
    public func evaluate() throws -> [(String, Double)] {
        guard !validation.isEmpty else { throw TrainerError("no validation prompts: give validation = ... to rft.trainer") }
        try prepare()
        let items = Array(validation.prefix(options.evalSamples ?? validation.count))
        let groups = try sample(items, n: 1, temperature: options.evalTemperature, seed: seed(step: 0, salt: 2))
        var scores: [Double] = [], failed = 0, length = 0
        for (p, group) in zip(items, groups) {
            guard let c = group.first else { continue }
            let (s, e) = score(c, p)
            if e != nil { failed += 1 }
            scores.append(s.isFinite ? s : 0)
            length += c.ids.count
        }
        let n = Double(Swift.max(scores.count, 1))
        let mean = scores.reduce(0, +) / n
        let variance = scores.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Swift.max(n - 1, 1)
        let metrics: [(String, Double)] = [("valid_reward_mean", mean), ("valid_reward_std", variance.squareRoot()),
                                           ("valid_grader_errors", Double(failed)), ("valid_completions/mean_length", Double(length) / n)]
        lastEval = metrics
        try log(metrics)
        if let run, !run.isFinished { try run.event(kind: "eval", [("step", .int(step))] + metrics.map { ($0.0, JSONValue.number($0.1)) }) }
        return metrics
    }

    // MARK: the loop

    public struct FitResult {
        public let steps: Int
        public let resumedFrom: Int?
        public let rollbacks: [String]
        public let metrics: [(String, Double)]
        public let eval: [(String, Double)]
        public let seconds: Double
        public let paused: Bool
    }

    /// Trains to the last step, or for `steps` more steps (then saves a checkpoint and returns paused: a new
    /// trainer on the same folder resumes). Evals every evalEvery steps and after the last, with a checkpoint each.
    @discardableResult
    public func fit(steps limit: Int? = nil) throws -> FitResult {
        try prepare()
        let start = Date()
        let firstStep = step
        let stopAt = Swift.min(totalSteps, limit.map { step + $0 } ?? totalSteps)
        progress?.begin(total: totalSteps, at: step)
        defer { progress?.end() }
        if !validation.isEmpty, options.evalEvery != nil, step == 0, lastEval.isEmpty {
            let e = try evaluate()
            progress?.note("eval at step 0: " + TrainingProgress.describe(e, keys: ["valid_reward_mean", "valid_grader_errors"]))
            if checkpoints != nil { try save(metrics: e) }  // the starting point ranks with the others
        }
        while step < stopAt {
            let r = try takeStep()
            if r.rolledBackTo != nil {
                progress?.restart(at: step)
                continue
            }
            progress?.update(step: step, metrics: r.metrics)
            let last = step == totalSteps
            var evalMetrics: [(String, Double)] = []
            if !validation.isEmpty, let every = options.evalEvery, step % every == 0 || last {
                evalMetrics = try evaluate()
                progress?.note("eval at step \(step): " + TrainingProgress.describe(evalMetrics, keys: ["valid_reward_mean", "valid_grader_errors"]))
                if let policy = rollback, let manager = checkpoints,
                   let d = policy.check(step: step, loss: nil, metrics: evalMetrics, batchRows: []) {
                    try rollBack(d, manager)
                    progress?.restart(at: step)
                    continue
                }
            }
            if checkpoints != nil && (!evalMetrics.isEmpty || last || step == stopAt) && (lastSavedStep != step || !evalMetrics.isEmpty) {
                try save(metrics: evalMetrics + r.metrics.filter { $0.0 == "loss" || $0.0 == "reward" })
            }
        }
        return FitResult(steps: step - firstStep, resumedFrom: resumedFrom, rollbacks: rollbackCauses, metrics: lastMetrics,
                         eval: lastEval, seconds: Date().timeIntervalSince(start), paused: step < totalSteps)
    }
}

// DPOTrainer.swift: preference optimisation of a language model, step by step, as TRL 1.16's DPOTrainer runs it,
// with checkpoints, rollbacks and a run record.
//
// One optimizer step takes `gradAccum` micro-batches of `batchSize` pairs each, in TRL's concatenated layout
// (the B chosen sequences, then the B rejected): one policy forward over the 2B sequences gives their summed
// completion log-probs, the objective (DPOLoss, CPOLoss for CPO/SimPO, ORPOLoss) gives the loss, and the
// backward of loss / (micro-batches in the step) accumulates the gradients. Then the gradients are clipped to
// `maxGradNorm` (the norm before clipping is the `grad_norm` metric) and the optimizer steps with the learning
// rate the schedule gives for step k - 1, as the Hugging Face Trainer does (its k-th optimizer step runs with
// lr_lambda(k - 1)); `learning_rate` is the rate the step used. Metrics are TRL's names, averaged over the
// micro-batches of the step; eval metrics are the same names with `eval_` in front, averaged over pairs.
//
// Reference log-probs: those attached to the data (dpo.reference_logprobs) are used as they are; otherwise they
// are computed once from the reference model (a frozen copy of the policy as it was at the start when none is
// given) and attached, cached on disk when `refCacheDir` is set. With TR-DPO syncing (`syncRef`) the reference
// changes during training, so its log-probs are computed batch by batch instead.
//
// Data order: epoch e (0-based) visits the pairs in the e-th permutation drawn from a generator seeded with
// `seed` (or in file order without `shuffle`), cut into micro-batches; the position (epoch, next micro-batch) is
// saved with every checkpoint, so a resumed run sees exactly the batches the uninterrupted run would have.
//
// Rollbacks: a step whose loss or gradient norm is not finite is not applied. With a rollback policy and a
// checkpoint manager the trainer asks the policy, restores the last good checkpoint (model, optimizer, schedule,
// random generators, data position), lowers the learning rate by the policy's factor and from then on leaves out
// the data rows of the batch that failed (the manager keeps them, so a resumed run leaves them out too). An eval
// whose metric regressed beyond the policy's tolerance rolls back the same way. Without a policy a non-finite
// step is an error that names the step and the rows.

import Foundation
import TychoNN
import TychoTensor
import TychoText

/// What a preference trainer optimises.
public enum PreferenceObjective {
    /// TRL's DPO loss family (every loss type, MPO combinations, f-divergences); needs reference log-probs.
    case dpo(DPOLoss.Options)
    /// CPO and SimPO (CPOLoss.Options.simpo()); reference-free.
    case cpo(CPOLoss.Options)
    /// ORPO; reference-free, with the NLL of the chosen sequences from the same forward pass.
    case orpo(ORPOLoss.Options)

    public var needsReference: Bool {
        if case .dpo = self { return true }
        return false
    }

    /// A short name for summaries: "dpo (sigmoid)", "simpo", "cpo (sigmoid)", "orpo".
    public var name: String {
        switch self {
        case .dpo(let o): return "dpo (" + o.lossTypes.map(\.rawValue).joined(separator: "+") + ")"
        case .cpo(let o): return o.lossType == .simpo && o.cpoAlpha == 0 ? "simpo" : "cpo (\(o.lossType.rawValue))"
        case .orpo: return "orpo"
        }
    }
}

/// An error of the trainer that a user can act on (the message says what and where).
public struct TrainerError: Error, CustomStringConvertible, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

public final class DPOTrainer {
    public struct Options {
        public var objective: PreferenceObjective = .dpo(DPOLoss.Options())
        /// Pairs per micro-batch (TRL's per_device_train_batch_size).
        public var batchSize = 8
        /// Micro-batches per optimizer step (gradient_accumulation_steps).
        public var gradAccum = 1
        public var epochs = 1
        /// Optimizer steps in all (overrides epochs; the data wraps around into further epochs).
        public var maxSteps: Int? = nil
        /// Evaluate every this many steps (and after the last step) when eval data is given.
        public var evalEvery: Int? = nil
        /// Pairs per eval batch (default: batchSize).
        public var evalBatchSize: Int? = nil
        /// Save a checkpoint every this many steps (default: at each eval, and after the last step).
        public var saveEvery: Int? = nil
        public var seed: UInt64 = 42
        public var shuffle = true
        public var dropLast = false
        /// Clip the gradients' joint norm to this (nil: no clipping; grad_norm is still reported).
        public var maxGradNorm: Double? = 1
        /// Train with dropout off, as TRL's disable_dropout=True does by default.
        public var disableDropout = true
        /// TR-DPO: every `every` steps the reference becomes alpha * policy + (1 - alpha) * reference.
        public var syncRef: (alpha: Double, every: Int)? = nil
        /// Where reference log-probs are cached (nil: computed in memory only).
        public var refCacheDir: String? = nil
        /// Continue from the newest checkpoint of the manager, when it has one.
        public var resume = true

        public init() {}
    }

    /// One optimizer step's outcome.
    public struct StepResult {
        /// The step number after this call (unchanged by a rollback's restore only through `rolledBackTo`).
        public let step: Int
        /// TRL's metrics: loss, rewards/*, logps/*, grad_norm, learning_rate, epoch (empty after a rollback).
        public let metrics: [(String, Double)]
        /// Source rows (1-based) of the pairs the step used.
        public let rows: [Int]
        /// Set when the step was not finite and a rollback restored this checkpoint step.
        public let rolledBackTo: Int?
        public let cause: String?
    }

    public let policy: LanguageModel
    public private(set) var reference: LanguageModel?
    public let train: PreferenceData
    public let eval: PreferenceData?
    public let optimizer: Optimizer
    public let schedule: LRSchedule?
    public let checkpoints: CheckpointManager?
    public let rollback: RollbackPolicy?
    public let run: RunRecord?
    public let options: Options

    /// The random generator to save with checkpoints and to restore from them (the Lua state's).
    public var captureGenerator: (() -> RandomGenerator)?
    public var restoreGenerator: ((RandomGenerator) -> Void)?
    /// Progress output (a bar on a terminal, lines otherwise); nil: silent.
    public var progress: TrainingProgress?
    /// Asked before each step: true stops training with an "interrupted" error (Ctrl-C); the steps done are kept.
    public var shouldStop: (() -> Bool)?

    /// Optimizer steps done.
    public private(set) var step = 0
    /// The epoch (0-based) and its next micro-batch.
    public private(set) var epoch = 0
    public private(set) var batchIndex = 0
    /// Source rows (0-based) left out after non-finite steps.
    public private(set) var skippedRows = Set<Int>()
    public private(set) var lastMetrics: [(String, Double)] = []
    public private(set) var lastEval: [(String, Double)] = []
    /// Causes of the rollbacks this trainer made, oldest first.
    public private(set) var rollbackCauses: [String] = []
    /// The step the trainer resumed from (nil when it started fresh).
    public private(set) var resumedFrom: Int?

    /// Micro-batches in one epoch and optimizer steps in one epoch.
    public let microBatchesPerEpoch: Int
    public var stepsPerEpoch: Int { Swift.max(1, (microBatchesPerEpoch + options.gradAccum - 1) / options.gradAccum) }
    public var totalSteps: Int { options.maxSteps ?? options.epochs * stepsPerEpoch }

    private var prepared = false
    private var plan: [[Int]] = []
    private var planEpoch = -1
    private var lastSavedStep: Int?

    public init(policy: LanguageModel, reference: LanguageModel?, train: PreferenceData, eval: PreferenceData?,
                optimizer: Optimizer, schedule: LRSchedule?, checkpoints: CheckpointManager?, rollback: RollbackPolicy?,
                run: RunRecord?, options: Options) throws {
        let o = options
        guard o.batchSize >= 1 else { throw TrainerError("batch_size must be at least 1, got \(o.batchSize)") }
        guard o.gradAccum >= 1 else { throw TrainerError("grad_accum must be at least 1, got \(o.gradAccum)") }
        guard o.epochs >= 1 else { throw TrainerError("epochs must be at least 1, got \(o.epochs)") }
        if let m = o.maxSteps, m < 1 { throw TrainerError("max_steps must be at least 1, got \(m)") }
        if let e = o.evalEvery, e < 1 { throw TrainerError("eval_every must be at least 1, got \(e)") }
        if let e = o.evalBatchSize, e < 1 { throw TrainerError("eval_batch_size must be at least 1, got \(e)") }
        if let s = o.saveEvery, s < 1 { throw TrainerError("save_every must be at least 1, got \(s)") }
        if let g = o.maxGradNorm, !(g.isFinite && g > 0) { throw TrainerError("max_grad_norm must be a positive number, got \(g)") }
        if let s = o.syncRef {
            guard s.alpha.isFinite, s.alpha >= 0, s.alpha <= 1 else { throw TrainerError("sync_ref.alpha must be in [0, 1], got \(s.alpha)") }
            guard s.every >= 1 else { throw TrainerError("sync_ref.every must be at least 1, got \(s.every)") }
            guard o.objective.needsReference else { throw TrainerError("sync_ref needs a reference model: \(o.objective.name) has none") }
        }
        guard train.count >= 1 else { throw TrainerError("the training data has no pairs") }
        if let eval, eval.count == 0 { throw TrainerError("the eval data has no pairs") }
        if o.evalEvery != nil && eval == nil { throw TrainerError("eval_every needs eval data (eval=)") }
        if rollback != nil && checkpoints == nil {
            throw TrainerError("a rollback policy needs a checkpoint manager to roll back to (checkpoints = ckpt.manager{...})")
        }
        // The optimizer must update this policy's parameters, or training would silently change nothing.
        let own = Set(policy.parameters().map { ObjectIdentifier($0) })
        if let i = optimizer.params.firstIndex(where: { !own.contains(ObjectIdentifier($0)) }) {
            throw TrainerError("parameter \(i + 1) of the optimizer is not a parameter of the policy (make it with optim.adamw(policy:parameters(), ...))")
        }
        if reference === policy { throw TrainerError("the reference is the policy itself: give a frozen copy (policy:clone():freeze()) or none") }
        if let r = reference, r.vocabSize != policy.vocabSize {
            throw TrainerError("the reference's vocabulary (\(r.vocabSize)) differs from the policy's (\(policy.vocabSize))")
        }
        if let r = reference, let cp = o.refCacheDir, cp.isEmpty { _ = r; throw TrainerError("ref_cache must be a non-empty folder path") }
        self.policy = policy
        self.train = train
        self.eval = eval
        self.optimizer = optimizer
        self.schedule = schedule
        self.checkpoints = checkpoints
        self.rollback = rollback
        self.run = run
        self.options = o
        microBatchesPerEpoch = BatchPlan.batches(Array(0..<train.count), batchSize: o.batchSize, dropLast: o.dropLast).count
        guard microBatchesPerEpoch >= 1 else {
            throw TrainerError("drop_last leaves no batch: \(train.count) pairs, batch_size \(o.batchSize)")
        }
        // TRL's default reference: the policy as it is now, frozen (needed now, before training changes it).
        let needsModel = o.objective.needsReference
            && (o.syncRef != nil || train.referenceChosen == nil || (eval.map { $0.referenceChosen == nil } ?? false))
        if reference == nil && needsModel {
            guard let copy = try policy.copy() as? LanguageModel else { throw TrainerError("cannot copy the policy as a reference") }
            _ = copy.freeze()
            self.reference = copy
        } else {
            self.reference = reference
        }
    }

    // MARK: preparation

    /// Reference log-probs, the resume from the newest checkpoint, and the step-0 checkpoint: once, before the
    /// first step or eval.
    func prepare() throws {
        guard !prepared else { return }
        policy.setTraining(!options.disableDropout)
        if options.objective.needsReference && options.syncRef == nil {
            try attachReference(train, "training")
            if let eval { try attachReference(eval, "eval") }
        }
        if let m = checkpoints {
            if options.resume, let latest = m.latest {
                let r = try m.load(.latest, into: objects, rng: captureGenerator != nil)
                if let g = r.generator { restoreGenerator?(g) }
                try restorePosition(step: latest.step, position: r.dataPosition)
                skippedRows = Set(m.skippedRows.map { $0 - 1 })
                if let metric = rollback?.regression?.metric {
                    let best = m.entries.filter { !$0.superseded }.compactMap { e in e.metric(metric).map { (e.step, $0) } }
                        .sorted { (rollback?.regression?.mode ?? .max) == .min ? $0.1 < $1.1 : $0.1 > $1.1 }.first
                    if let best { rollback?.setBest(best.1, step: best.0) }
                }
                resumedFrom = latest.step
                lastSavedStep = latest.step
                progress?.note("resumed from \(m.path(of: latest)) (step \(latest.step) of \(totalSteps))")
                try run?.event(kind: "resume", [("step", .int(latest.step)), ("path", .string(m.path(of: latest)))])
            } else if let latest = m.latest {
                throw TrainerError("\(m.directory) already holds checkpoints (the newest of step \(latest.step)); with resume = false a new run there would mix with them: give another folder")
            } else {
                try save(metrics: [])
            }
        }
        prepared = true
    }

    private func attachReference(_ data: PreferenceData, _ what: String) throws {
        guard data.referenceChosen == nil || data.referenceRejected == nil else { return }
        guard let reference else { throw TrainerError("the \(what) data has no reference log-probs and there is no reference model") }
        let r = try ReferenceCache.logProbs(model: reference, data: data, cacheDir: options.refCacheDir,
                                            batchSize: options.evalBatchSize ?? options.batchSize)
        data.referenceChosen = r.chosen
        data.referenceRejected = r.rejected
        progress?.note("reference log-probs of \(data.count) \(what) pairs: " + (r.cached ? "read from \(r.path ?? "the cache")" : "\(r.forwardPasses) forward passes"))
    }

    /// What a checkpoint holds: the policy, optimizer and schedule, and a synced reference (it changes too).
    var objects: TrainingObjects {
        TrainingObjects(model: policy, optimizer: optimizer, schedule: schedule, reference: options.syncRef != nil ? reference : nil)
    }

    var dataPosition: JSONValue { .object([("epoch", .int(epoch)), ("batch", .int(batchIndex))]) }

    private func restorePosition(step s: Int, position: JSONValue) throws {
        guard let e = position["epoch"]?.intValue, let b = position["batch"]?.intValue, e >= 0, b >= 0 else {
            throw TrainerError("the checkpoint of step \(s) has no trainer data position (saved by another program?): \(position.line.prefix(80))")
        }
        step = s
        epoch = e
        batchIndex = b
    }

    /// The micro-batches (pair indices) of epoch `e`.
    func epochPlan(_ e: Int) -> [[Int]] {
        if planEpoch == e { return plan }
        var order = Array(0..<train.count)
        if options.shuffle {
            var g = RandomGenerator(seed: options.seed)
            for _ in 0...e { order = BatchPlan.shuffled(train.count) { Int(g.nextInt(below: UInt64($0))) } }
        }
        plan = BatchPlan.batches(order, batchSize: options.batchSize, dropLast: options.dropLast)
        planEpoch = e
        return plan
    }

    // MARK: the objective on one batch

    /// The objective's loss (differentiable when grad mode is on) and stats on pairs `pairs` of `data`.
    func batchLoss(_ data: PreferenceData, _ pairs: [Int]) throws -> (loss: Tensor, stats: LossStats) {
        try DPOTrainer.batchLoss(policy: policy, objective: options.objective, reference: options.syncRef != nil ? reference : nil,
                                 data: data, pairs)
    }

    /// The objective's loss and stats for `policy` on pairs `pairs` of `data`. The reference log-probs come from
    /// `reference` when given (computed on the batch, without gradients), else from those attached to the data.
    public static func batchLoss(policy: LanguageModel, objective: PreferenceObjective, reference: LanguageModel?,
                                 data: PreferenceData, _ pairs: [Int]) throws -> (loss: Tensor, stats: LossStats) {
        let b = data.batch(pairs)
        let n = b.size
        let ids = try Tensor(shape: [2 * n, b.length], values: b.ids)
        let mask = try Tensor(shape: [2 * n, b.length], values: b.mask)
        let chosenLengths = try Tensor(shape: [n], values: b.completionTokens[0..<n].map(Float.init))
        let rejectedLengths = try Tensor(shape: [n], values: b.completionTokens[n..<(2 * n)].map(Float.init))
        do {
            switch objective {
            case .dpo(let o):
                let logps = try policy.logprobs(ids, mask: mask)
                let refChosen: Tensor, refRejected: Tensor
                if let reference {
                    let wasTraining = reference.isTraining
                    reference.setTraining(false)
                    defer { reference.setTraining(wasTraining) }
                    let r = try GradMode.with(enabled: false) { try reference.logprobs(ids, mask: mask) }
                    refChosen = try r.narrow(0, start: 0, length: n)
                    refRejected = try r.narrow(0, start: n, length: n)
                } else {
                    guard let rc = data.referenceChosen, let rr = data.referenceRejected else {
                        throw TrainerError("the data has no reference log-probs")
                    }
                    refChosen = try Tensor(shape: [n], values: pairs.map { rc[$0] })
                    refRejected = try Tensor(shape: [n], values: pairs.map { rr[$0] })
                }
                var x = DPOLoss.Inputs(policyChosen: try logps.narrow(0, start: 0, length: n),
                                       policyRejected: try logps.narrow(0, start: n, length: n),
                                       refChosen: refChosen, refRejected: refRejected)
                x.chosenLengths = chosenLengths
                x.rejectedLengths = rejectedLengths
                let r = try DPOLoss.compute(x, options: o)
                return (r.loss, r.stats)
            case .cpo(let o):
                let logps = try policy.logprobs(ids, mask: mask)
                var x = CPOLoss.Inputs(policyChosen: try logps.narrow(0, start: 0, length: n),
                                       policyRejected: try logps.narrow(0, start: n, length: n))
                x.chosenLengths = chosenLengths
                x.rejectedLengths = rejectedLengths
                let r = try CPOLoss.compute(x, options: o)
                return (r.loss, r.stats)
            case .orpo(let o):
                // One forward: completion sums for the odds ratio, and the chosen sequences' NLL over every real
                // token after the first (prompt and completion), as TRL's ORPOTrainer computes it.
                let attention = try Tensor(shape: [2 * n, b.length], values: b.attention)
                let (logp, attn) = try policy.tokenLogProbs(ids, mask: attention, "orpo")
                let completion = try mask.narrow(1, start: 1, length: b.length - 1)
                let sums = try logp.multiplying(completion).sum(dim: 1)
                let chosenAttn = try attn.narrow(0, start: 0, length: n)
                let count = try GradMode.with(enabled: false) { try chosenAttn.sum().item() }
                guard count > 0 else { throw TrainerError("orpo: the chosen sequences have no tokens to predict") }
                let nll = try logp.narrow(0, start: 0, length: n).multiplying(chosenAttn).sum().multiplying(-1 / count)
                let x = ORPOLoss.Inputs(policyChosen: try sums.narrow(0, start: 0, length: n),
                                        policyRejected: try sums.narrow(0, start: n, length: n),
                                        chosenLengths: chosenLengths, rejectedLengths: rejectedLengths, nllLoss: nll)
                let r = try ORPOLoss.compute(x, options: o)
                return (r.loss, r.stats)
            }
        } catch let e as TensorError {
            throw TrainerError("pairs of rows \(DPOTrainer.rowList(b.rows.map { $0 + 1 })): \(e.message)")
        } catch let e as LossError {
            throw TrainerError(e.message)
        }
    }

    static func rowList(_ rows: [Int], limit: Int = 12) -> String {
        let s = rows.prefix(limit).map(String.init).joined(separator: ", ")
        return rows.count > limit ? s + ", ... (\(rows.count) rows)" : s
    }

    // MARK: steps

    /// One optimizer step (gradAccum micro-batches). A non-finite step rolls back when a policy is set and
    /// throws otherwise.
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
        let lr: Double
        if let schedule {
            lr = schedule.lr(at: k - 1)
            try optimizer.setLearningRate(Float(lr))
        } else {
            lr = Double(optimizer.learningRate())
        }
        optimizer.zeroGrad()
        if epochPlan(epoch).count <= batchIndex {
            epoch += 1
            batchIndex = 0
        }
        let micro = Swift.min(options.gradAccum, epochPlan(epoch).count - batchIndex)
        var rows: [Int] = []
        var lossSum = 0.0
        var statSums: [(String, Double)] = []
        var used = 0
        for _ in 0..<micro {
            let pairs = epochPlan(epoch)[batchIndex].filter { !skippedRows.contains(train.pairs[$0].row) }
            batchIndex += 1
            guard !pairs.isEmpty else { continue }
            rows += pairs.map { train.pairs[$0].row + 1 }
            let (loss, stats) = try batchLoss(train, pairs)
            lossSum += Double(try loss.item())
            if statSums.isEmpty {
                statSums = stats.entries.map { ($0.name, $0.value) }
            } else {
                for (i, e) in stats.entries.enumerated() where i < statSums.count { statSums[i].1 += e.value }
            }
            try (micro == 1 ? loss : loss.multiplying(1 / Float(micro))).backward()
            used += 1
        }
        guard used > 0 else {
            // Every pair of these micro-batches was left out after an earlier rollback: the step has no data.
            step = k
            lastMetrics = [("learning_rate", lr), ("epoch", epochValue)]
            return StepResult(step: k, metrics: lastMetrics, rows: [], rolledBackTo: nil, cause: nil)
        }
        let params = optimizer.params
        let norm = Double(try GradClipping.clipGradNorm(params, maxNorm: Float(options.maxGradNorm ?? Double(Float.greatestFiniteMagnitude))))
        let loss = lossSum / Double(used)
        guard loss.isFinite && norm.isFinite else {
            optimizer.zeroGrad()
            let what = loss.isFinite ? "grad_norm is \(norm)" : "loss is \(loss)"
            guard let policy = rollback, let manager = checkpoints else {
                throw TrainerError("non-finite step \(k): \(what) on rows \(DPOTrainer.rowList(rows)); the update was not applied (give rollback = ckpt.policy{} and checkpoints = ckpt.manager{...} to roll back and go on)")
            }
            guard let d = policy.check(step: k, loss: loss, metrics: [("grad_norm", norm)], batchRows: rows) else {
                throw TrainerError("non-finite step \(k): \(what) on rows \(DPOTrainer.rowList(rows)), and the rollback policy does not act on non-finite values (on_nonfinite = false)")
            }
            let to = try rollBack(d, manager)
            return StepResult(step: step, metrics: [], rows: rows, rolledBackTo: to, cause: d.cause)
        }
        try optimizer.step()
        step = k
        if let s = options.syncRef, k % s.every == 0, let reference {
            try ReferenceSync.sync(reference: reference, policy: policy, alpha: s.alpha)
        }
        var metrics: [(String, Double)] = [("loss", loss)]
        metrics += statSums.map { ($0.0, $0.1 / Double(used)) }
        metrics += [("grad_norm", norm), ("learning_rate", lr), ("epoch", epochValue)]
        lastMetrics = metrics
        try log(metrics)
        if let every = options.saveEvery, k % every == 0 { try save(metrics: [("loss", loss)]) }
        return StepResult(step: k, metrics: metrics, rows: rows, rolledBackTo: nil, cause: nil)
    }

    /// Epochs done, fractional.
    var epochValue: Double {
        Double(epoch) + Double(Swift.min(batchIndex, microBatchesPerEpoch)) / Double(microBatchesPerEpoch)
    }

    /// Acts on a rollback decision: restores the last good checkpoint and the data position; returns its step.
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
        skippedRows = Set(manager.skippedRows.map { $0 - 1 })
        rollbackCauses.append(d.cause)
        lastSavedStep = r.entry.step
        let rows = d.kind == .nonfinite && !d.batchRows.isEmpty ? "; leaving out rows \(DPOTrainer.rowList(d.batchRows))" : ""
        progress?.note("rollback: \(d.cause); back to step \(r.entry.step), learning rate x\(PreferenceInputs.format(d.lrFactor)) (scale \(PreferenceInputs.format(r.lrScale)))\(rows)")
        return r.entry.step
    }

    // MARK: evaluation

    /// The objective's loss and stats on every eval pair (no gradients, dropout off), averaged over pairs, named
    /// eval_loss, eval_rewards/accuracies, ... Logged in the run at the current step.
    @discardableResult
    public func evaluate() throws -> [(String, Double)] {
        guard let eval else { throw TrainerError("no eval data: give eval = prefs to dpo.trainer") }
        try prepare()
        let metrics = try evaluate(eval)
        lastEval = metrics
        try log(metrics)
        if let run, !run.isFinished {
            try run.event(kind: "eval", [("step", .int(step))] + metrics.map { ($0.0, JSONValue.number($0.1)) })
        }
        return metrics
    }

    /// Logs metrics at the current step in the run, while it is open (a finished run's record stays as it was).
    private func log(_ metrics: [(String, Double)]) throws {
        guard let run, !run.isFinished else { return }
        try run.log(step: step, metrics.map { ($0.0, JSONValue.number($0.1)) })
    }

    /// Eval metrics of `data`: the objective's loss and stats over every pair, without gradients.
    public func evaluate(_ data: PreferenceData) throws -> [(String, Double)] {
        if options.objective.needsReference && options.syncRef == nil { try attachReference(data, "eval") }
        return try DPOTrainer.evaluate(policy: policy, objective: options.objective, reference: options.syncRef != nil ? reference : nil,
                                       data: data, batchSize: options.evalBatchSize ?? options.batchSize)
    }

    /// The objective's loss and stats of `policy` on every pair of `data` (dropout off, no gradients), averaged over
    /// pairs and named eval_loss, eval_rewards/accuracies, ... Reference log-probs as in `batchLoss`.
    public static func evaluate(policy: LanguageModel, objective: PreferenceObjective, reference: LanguageModel?,
                                data: PreferenceData, batchSize size: Int) throws -> [(String, Double)] {
        guard size >= 1 else { throw TrainerError("batch_size must be at least 1, got \(size)") }
        let wasTraining = policy.isTraining
        policy.setTraining(false)
        defer { policy.setTraining(wasTraining) }
        var lossSum = 0.0
        var sums: [(String, Double)] = []
        try GradMode.with(enabled: false) {
            var start = 0
            while start < data.count {
                let end = Swift.min(start + size, data.count)
                let (loss, stats) = try batchLoss(policy: policy, objective: objective, reference: reference, data: data, Array(start..<end))
                let w = Double(end - start)
                lossSum += Double(try loss.item()) * w
                if sums.isEmpty { sums = stats.entries.map { ($0.name, 0) } }
                for (i, e) in stats.entries.enumerated() where i < sums.count { sums[i].1 += e.value * w }
                start = end
            }
        }
        let n = Double(Swift.max(data.count, 1))
        return [("eval_loss", lossSum / n)] + sums.map { ("eval_" + $0.0, $0.1 / n) }
    }

    // MARK: checkpoints

    @discardableResult
    private func save(metrics: [(String, Double)]) throws -> CheckpointManager.Entry? {
        guard let m = checkpoints else { return nil }
        let e = try m.save(step: step, objects: objects, generator: captureGenerator?(),
                           metrics: metrics.map { ($0.0, JSONValue.number($0.1)) }, dataPosition: dataPosition)
        lastSavedStep = step
        return e
    }

    // MARK: the loop

    /// What fit did.
    public struct FitResult {
        public let steps: Int
        public let resumedFrom: Int?
        public let rollbacks: [String]
        public let metrics: [(String, Double)]
        public let eval: [(String, Double)]
        public let seconds: Double
    }

    /// Trains to the last step: steps, evals every evalEvery steps and after the last, checkpoints at each eval
    /// (or every saveEvery steps) and at the end, rollbacks as the policy decides, progress as it goes.
    @discardableResult
    public func fit() throws -> FitResult {
        try prepare()
        let start = Date()
        let firstStep = step
        progress?.begin(total: totalSteps, at: step)
        defer { progress?.end() }
        while step < totalSteps {
            let r = try takeStep()
            if r.rolledBackTo != nil {
                progress?.restart(at: step)
                continue
            }
            progress?.update(step: step, metrics: r.metrics)
            let last = step == totalSteps
            var evalMetrics: [(String, Double)] = []
            if eval != nil, let every = options.evalEvery, step % every == 0 || last {
                evalMetrics = try evaluate()
                progress?.note("eval at step \(step): " + TrainingProgress.describe(evalMetrics, keys: TrainingProgress.evalKeys))
                if let policy = rollback, let manager = checkpoints,
                   let d = policy.check(step: step, loss: nil, metrics: evalMetrics, batchRows: r.rows) {
                    try rollBack(d, manager)
                    progress?.restart(at: step)
                    continue
                }
            }
            // Checkpoints at each eval (with its metrics, to rank by), unless save_every says otherwise (the step
            // saved those), and at the end.
            if checkpoints != nil && (!evalMetrics.isEmpty || last) && (lastSavedStep != step || !evalMetrics.isEmpty) {
                try save(metrics: evalMetrics + r.metrics.filter { $0.0 == "loss" })
            }
        }
        return FitResult(steps: step - firstStep, resumedFrom: resumedFrom, rollbacks: rollbackCauses, metrics: lastMetrics,
                         eval: lastEval, seconds: Date().timeIntervalSince(start))
    }
}

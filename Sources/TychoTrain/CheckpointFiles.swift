// CheckpointFiles.swift: the files of one checkpoint folder, in the layout of a Hugging Face Trainer checkpoint
// with the pickles replaced by safetensors and JSON (formats.md, "HF/TRL checkpoint layout"):
//
//   checkpoint-N/config.json            the model's Hugging Face config (language models: nn.load reads the folder)
//   checkpoint-N/model.safetensors      the parameters, F32, by their Hugging Face names
//   checkpoint-N/optimizer.safetensors  opt:state(): step, group hyperparameters, exp_avg.<i>, ... (float32)
//   checkpoint-N/scheduler.json         {kind, lr, warmup, total, min_lr, scale}
//   checkpoint-N/rng_state.json         {"generator": [4 words], "dropout": [[4 words], ...]} as 16-digit hex
//   checkpoint-N/trainer_state.json     global_step, metrics, log_history, data_position, lr_scale, best_*; last
//
// Writing only fills a folder; CheckpointManager writes into a temporary folder and renames it into place, which
// is what makes a checkpoint appear whole or not at all. Restoring checks everything it can (parameter names
// and sizes, the optimizer state, the schedule's kind) before it changes anything.
// What it refuses: restoring a checkpoint of another model shape, optimizer kind or schedule kind.

import Foundation
import TychoNN
import TychoTensor
import TychoText

/// The objects a checkpoint is saved from and restored into; any may be absent.
public struct TrainingObjects {
    public var model: Module?
    public var optimizer: Optimizer?
    public var schedule: LRSchedule?
    /// A reference model that changes during training (TR-DPO syncing), saved as reference.safetensors.
    public var reference: Module?

    public init(model: Module? = nil, optimizer: Optimizer? = nil, schedule: LRSchedule? = nil, reference: Module? = nil) {
        self.model = model
        self.optimizer = optimizer
        self.schedule = schedule
        self.reference = reference
    }
}

enum CheckpointFiles {
    static let trainerState = "trainer_state.json"

    // MARK: random state

    /// Every dropout layer's generator state, in the model's layer order.
    static func dropoutStates(_ model: Module?) -> [[UInt64]] {
        model?.dropoutLayers().map(\.generator.state) ?? []
    }

    static func hexWords(_ words: [UInt64]) -> JSONValue {
        .array(words.map { w in
            let h = String(w, radix: 16)
            return .string(String(repeating: "0", count: 16 - h.count) + h)
        })
    }

    static func words(_ v: JSONValue?, _ what: String) throws -> [UInt64] {
        guard let list = v?.arrayValue, list.count == 4 else { throw RecordError("\(what) must be a list of 4 hex words") }
        return try list.map { x in
            guard let s = x.stringValue, let w = UInt64(s, radix: 16) else { throw RecordError("\(what) must be a list of 4 hex words") }
            return w
        }
    }

    // MARK: writing

    /// Writes every file of a checkpoint into the existing folder `dir` (each file synced); trainer_state.json
    /// last.
    static func write(to dir: String, step: Int, objects o: TrainingObjects, generator: RandomGenerator?,
                      metrics: [(String, JSONValue)], dataPosition: JSONValue, lrScale: Double,
                      best: (step: Int, value: Double, dir: String)?, time: String) throws {
        if let model = o.model {
            if let lm = model as? LanguageModel {
                try HFCheckpoint.save(lm, to: dir)
            } else {
                try SafeTensors.save(model.namedParameters().map { (name: $0.0, tensor: $0.1) }, metadata: ["format": "pt"],
                                     to: dir + "/model.safetensors")
            }
        }
        if let reference = o.reference {
            try SafeTensors.save(reference.namedParameters().map { (name: $0.0, tensor: $0.1) }, metadata: ["format": "pt"],
                                 to: dir + "/reference.safetensors")
        }
        if let opt = o.optimizer {
            try SafeTensors.save(try opt.state(), metadata: ["format": "pt", "optimizer": opt.name], to: dir + "/optimizer.safetensors")
        }
        if let s = o.schedule {
            var fields: [(String, JSONValue)] = [("kind", .string(s.kind.rawValue)), ("lr", .double(s.lr)), ("warmup", .int(s.warmup)),
                                                 ("min_lr", .double(s.minLR)), ("scale", .double(s.scale))]
            fields.append(("total", s.total.map { .int($0) } ?? .null))
            try DurableFiles.writeText(JSONValue.object(fields).prettyText, to: dir + "/scheduler.json")
        }
        var rng: [(String, JSONValue)] = [("dropout", .array(dropoutStates(o.model).map(hexWords)))]
        rng.append(("generator", generator.map { hexWords($0.state) } ?? .null))
        try DurableFiles.writeText(JSONValue.object(rng).prettyText, to: dir + "/rng_state.json")

        var state: [(String, JSONValue)] = [
            ("global_step", .int(step)), ("time", .string(time)), ("metrics", .object(metrics)),
            ("log_history", .array([.object([("step", .int(step))] + metrics.filter { $0.0 != "step" })])),
            ("data_position", dataPosition), ("lr_scale", .double(lrScale)),
            ("learning_rate", o.optimizer.map { .double(Double($0.learningRate())) } ?? .null),
        ]
        state.append(("best_global_step", best.map { .int($0.step) } ?? .null))
        state.append(("best_metric", best.map { .number($0.value) } ?? .null))
        state.append(("best_model_checkpoint", best.map { .string($0.dir) } ?? .null))
        try DurableFiles.writeText(JSONValue.object(state).prettyText, to: dir + "/" + trainerState)
    }

    // MARK: restoring

    /// The tensors of `dir/file`, checked to be exactly the parameters of `model` (names and sizes).
    static func fittingTensors(_ dir: String, _ file: String, _ model: Module, _ what: String) throws -> [String: Tensor] {
        guard DurableFiles.exists(dir + "/" + file) else { throw RecordError("\(dir) holds no \(file)") }
        let tensors = try SafeTensors.load(path: dir + "/" + file).tensors
        let mine = model.namedParameters()
        let missing = mine.map(\.0).filter { tensors[$0] == nil }
        if !missing.isEmpty {
            throw RecordError("\(dir) does not fit \(what): it lacks \(missing.prefix(5).joined(separator: ", "))\(missing.count > 5 ? ", ..." : "")")
        }
        let names = Set(mine.map(\.0))
        let extra = tensors.keys.filter { !names.contains($0) }.sorted()
        if !extra.isEmpty {
            throw RecordError("\(dir) does not fit \(what): it holds \(extra.prefix(5).joined(separator: ", ")) that it does not have")
        }
        for (name, p) in mine {
            guard let t = tensors[name], t.shape == p.shape else {
                throw RecordError("\(dir) does not fit \(what): \(name) has size \(Tensor.describe(tensors[name]?.shape ?? [])) there, \(Tensor.describe(p.shape)) here")
            }
        }
        return tensors
    }

    /// What `restore` put back.
    struct Restored {
        var generator: RandomGenerator?
        var trainerState: JSONValue
        var scale: Double
    }

    /// Restores a checkpoint folder into `o` (only the objects given) and returns the saved generator (when
    /// `rng`); the learning rate resumes at `scale` (nil: as saved). Every file is read and checked first;
    /// nothing changes unless all of it fits.
    static func restore(from dir: String, into o: TrainingObjects, rng: Bool, scale: Double?) throws -> Restored {
        let state = try JSONValue.read(dir + "/" + trainerState)
        // Read and check.
        var modelTensors: [String: Tensor]?
        if let model = o.model { modelTensors = try fittingTensors(dir, "model.safetensors", model, "this model") }
        var referenceTensors: [String: Tensor]?
        if let reference = o.reference {
            guard DurableFiles.exists(dir + "/reference.safetensors") else {
                throw RecordError("\(dir) holds no reference.safetensors (it was saved without a synced reference)")
            }
            referenceTensors = try fittingTensors(dir, "reference.safetensors", reference, "the reference model")
        }
        var optimizerState: [String: Tensor]?
        if o.optimizer != nil {
            guard DurableFiles.exists(dir + "/optimizer.safetensors") else { throw RecordError("\(dir) holds no optimizer.safetensors (it was saved without an optimizer)") }
            optimizerState = try SafeTensors.load(path: dir + "/optimizer.safetensors").tensors
        }
        var savedScale: Double?
        if let s = o.schedule {
            guard DurableFiles.exists(dir + "/scheduler.json") else { throw RecordError("\(dir) holds no scheduler.json (it was saved without a schedule)") }
            let j = try JSONValue.read(dir + "/scheduler.json")
            guard j["kind"]?.stringValue == s.kind.rawValue else {
                throw RecordError("\(dir) was saved with a \(j["kind"]?.stringValue ?? "?") schedule, this one is \(s.kind.rawValue)")
            }
            savedScale = j["scale"]?.doubleValue ?? 1
        }
        var generator: RandomGenerator?
        var dropouts: [RandomGenerator] = []
        let layers = o.model?.dropoutLayers() ?? []
        if rng {
            let j = try JSONValue.read(dir + "/rng_state.json")
            if let g = j["generator"], !g.isNull {
                guard let gen = RandomGenerator(state: try words(g, "\(dir)/rng_state.json: generator")) else {
                    throw RecordError("\(dir)/rng_state.json: generator is not a valid state")
                }
                generator = gen
            }
            if o.model != nil {
                let saved = j["dropout"]?.arrayValue ?? []
                guard saved.count == layers.count else {
                    throw RecordError("\(dir)/rng_state.json has \(saved.count) dropout generator\(saved.count == 1 ? "" : "s"), this model has \(layers.count) dropout layer\(layers.count == 1 ? "" : "s")")
                }
                dropouts = try saved.map { w in
                    guard let g = RandomGenerator(state: try words(w, "\(dir)/rng_state.json: dropout")) else {
                        throw RecordError("\(dir)/rng_state.json: a dropout generator is not a valid state")
                    }
                    return g
                }
            }
        }
        // Apply: the optimizer validates everything before it changes anything, so it goes first.
        if let opt = o.optimizer, let st = optimizerState {
            do { try opt.loadState(st) } catch let e as OptimizerError { throw RecordError("\(dir)/optimizer.safetensors: \(e.message)") }
        }
        if let model = o.model, let t = modelTensors { try model.loadParameters(t) }
        if let reference = o.reference, let t = referenceTensors { try reference.loadParameters(t) }
        // The learning rate resumes at `scale` (lower than when saved after rollbacks to this checkpoint): the
        // schedule's scale, and the optimizer's rates in the ratio to the scale they were saved with.
        let atSave = state["lr_scale"]?.doubleValue ?? savedScale ?? 1
        let newScale = scale ?? atSave
        if let s = o.schedule { try s.setScale(newScale) }
        if let opt = o.optimizer, newScale != atSave, atSave > 0 {
            for g in 0..<opt.groupCount {
                try opt.setLearningRate(Float(Double(opt.learningRate(group: g)) * (newScale / atSave)), group: g)
            }
        }
        for (layer, g) in zip(layers, dropouts) { layer.generator = g }
        return Restored(generator: generator, trainerState: state, scale: newScale)
    }
}

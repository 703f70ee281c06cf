// CkptBinding.swift: the Lua module `ckpt`: checkpoint managers (`tycho.CheckpointManager`) and rollback policies
// (`tycho.RollbackPolicy`). The work is TychoTrain's CheckpointManager and RollbackPolicy; this file reads the
// objects (nn module, optimizer, schedule), metrics and decisions from Lua tables and returns plain tables.
//
// The API a trainer calls:
//   mgr = ckpt.manager{dir=, keep_last=, keep_best=3, metric=, mode="max", run=}
//   mgr:save{step=, model=, optimizer=, schedule=, metrics={...}, data_position=...}   -> entry
//   info = mgr:load("latest" | "best" | step, {model=, optimizer=, schedule=, rng=true}) -> {step, data_position, ...}
//   pol = ckpt.policy{on_nonfinite=true, on_regression={metric=, tolerance=0, mode=}, lr_factor=0.5, max_rollbacks=3}
//   d = pol:check{step=, loss=, metrics=, batch_rows=}                                  -> {action="ok"} or {action="rollback", ...}
//   info = mgr:rollback(d or step, {model=, optimizer=, schedule=, lr_factor=})        -> like load, plus cause, skipped_rows

import CLua
import CLuaShim
import TychoNN
import TychoTensor
import TychoText
import TychoTrain

enum CkptBinding {
    static let managerMetatable = "tycho.CheckpointManager"
    static let policyMetatable = "tycho.RollbackPolicy"

    static func manager(_ a: LuaArgs, _ idx: Int = 1) throws -> CheckpointManager {
        if let m = a.lua.object(Int32(idx), metatable: managerMetatable, as: CheckpointManager.self) { return m }
        if a.lua.isFinalized(Int32(idx)) { throw a.argumentError(idx, "a live checkpoint manager, got one that was already collected") }
        throw a.typeError(idx, "a checkpoint manager (from ckpt.manager)")
    }

    static func policy(_ a: LuaArgs, _ idx: Int = 1) throws -> RollbackPolicy {
        if let p = a.lua.object(Int32(idx), metatable: policyMetatable, as: RollbackPolicy.self) { return p }
        if a.lua.isFinalized(Int32(idx)) { throw a.argumentError(idx, "a live policy, got one that was already collected") }
        throw a.typeError(idx, "a rollback policy (from ckpt.policy)")
    }

    static func run<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch let e as RecordError { throw LuaBindingError(e.message) } catch let e as OptimizerError {
            throw LuaBindingError(e.message)
        } catch let e as InvalidOption { throw LuaBindingError(e.description) }
    }

    // MARK: reading arguments

    /// The objects named in the options table at idx: model (an nn module), optimizer, schedule.
    static func objects(_ a: LuaArgs, _ idx: Int) throws -> TrainingObjects {
        var o = TrainingObjects()
        guard !a.isNil(idx) else { return o }
        let lua = a.lua
        if lua.rawGet(Int32(idx), field: "model") != LUA_TNIL {
            guard let m = lua.object(-1, metatable: NNBinding.metatable, as: Module.self) else {
                let got = lua.typeName(-1); lua.pop()
                throw a.argumentError(idx, "a table whose field 'model' is an nn module, got \(got)")
            }
            o.model = m
        }
        lua.pop()
        if lua.rawGet(Int32(idx), field: "optimizer") != LUA_TNIL {
            guard let opt = lua.object(-1, metatable: OptimBinding.optimizerMetatable, as: Optimizer.self) else {
                let got = lua.typeName(-1); lua.pop()
                throw a.argumentError(idx, "a table whose field 'optimizer' is an optimizer (optim.adamw, optim.sgd), got \(got)")
            }
            o.optimizer = opt
        }
        lua.pop()
        if lua.rawGet(Int32(idx), field: "schedule") != LUA_TNIL {
            guard let s = lua.object(-1, metatable: OptimBinding.scheduleMetatable, as: LRSchedule.self) else {
                let got = lua.typeName(-1); lua.pop()
                throw a.argumentError(idx, "a table whose field 'schedule' is a schedule (optim.schedule), got \(got)")
            }
            o.schedule = s
        }
        lua.pop()
        return o
    }

    /// A checkpoint reference at idx: a step, "latest" or "best" (nil: `fallback`).
    static func reference(_ a: LuaArgs, _ idx: Int, fallback: CheckpointManager.Reference?) throws -> CheckpointManager.Reference {
        if a.isNil(idx), let fallback { return fallback }
        if let s = a.lua.string(Int32(idx)) {
            switch s {
            case "latest": return .latest
            case "best": return .best
            default: throw a.argumentError(idx, "a step, \"latest\" or \"best\", got \"\(s.prefix(40))\"")
            }
        }
        guard a.lua.type(Int32(idx)) == LUA_TNUMBER else { throw a.typeError(idx, "a step, \"latest\" or \"best\"") }
        let s = try a.integer(idx)
        guard s >= 0 else { throw a.argumentError(idx, "a step >= 0, got \(s)") }
        return .step(s)
    }

    /// A number or one-element tensor at the top of the stack.
    static func scalar(_ a: LuaArgs, _ what: String) throws -> Double {
        if let d = a.lua.number(-1) { return d }
        if let t = a.lua.object(-1, metatable: TensorBinding.metatable, as: Tensor.self), t.count == 1 { return Double(try t.item()) }
        throw LuaBindingError("\(what) must be a number or a one-element tensor, got \(a.lua.typeName(-1))")
    }

    /// A list of integers (batch rows) at the top of the stack.
    static func integers(_ a: LuaArgs, _ what: String) throws -> [Int] {
        let lua = a.lua
        if let t = lua.object(-1, metatable: TensorBinding.metatable, as: Tensor.self) {
            return try t.contiguous().toArray().map { v in
                guard v == v.rounded(), Swift.abs(v) < 1e9 else { throw LuaBindingError("\(what) must hold integers, got \(v)") }
                return Int(v)
            }
        }
        guard lua.type(-1) == LUA_TTABLE else { throw LuaBindingError("\(what) must be a list of integers, got \(lua.typeName(-1))") }
        var out: [Int] = []
        for k in 0..<lua.rawLength(-1) {
            _ = lua.rawGet(-1, index: k + 1)
            defer { lua.pop() }
            guard let v = lua.number(-1), v == v.rounded(), Swift.abs(v) < 9e15 else {
                throw LuaBindingError("\(what) must be a list of integers, got \(lua.typeName(-1)) at position \(k + 1)")
            }
            out.append(Int(v))
        }
        return out
    }

    // MARK: pushing results

    static func pushEntry(_ a: LuaArgs, _ m: CheckpointManager, _ e: CheckpointManager.Entry) throws {
        let lua = a.lua
        guard lua.ensureStack(8) else { throw LuaBindingError("Lua stack overflow") }
        lua.newTable(recordCount: 10)
        lua.push(e.step); lua.rawSet(-2, field: "step")
        try RunBinding.pushFields(a, e.metrics); lua.rawSet(-2, field: "metrics")
        lua.push(e.time); lua.rawSet(-2, field: "time")
        lua.push(m.path(of: e)); lua.rawSet(-2, field: "path")
        lua.push(e.approval != nil); lua.rawSet(-2, field: "approved")
        if let ap = e.approval {
            lua.newTable(recordCount: 3)
            lua.push(ap.by); lua.rawSet(-2, field: "by")
            lua.push(ap.note); lua.rawSet(-2, field: "note")
            lua.push(ap.time); lua.rawSet(-2, field: "time")
            lua.rawSet(-2, field: "approval")
        }
        lua.push(m.best?.folder == e.folder); lua.rawSet(-2, field: "best")
        lua.push(m.latest?.folder == e.folder); lua.rawSet(-2, field: "latest")
        lua.push(e.superseded); lua.rawSet(-2, field: "superseded")
        lua.push(e.lrScale); lua.rawSet(-2, field: "lr_scale")
    }

    static func pushRestored(_ a: LuaArgs, _ m: CheckpointManager, _ r: CheckpointManager.Restored) throws {
        try pushEntry(a, m, r.entry)
        try RunBinding.push(a, r.dataPosition); a.lua.rawSet(-2, field: "data_position")
        a.lua.push(r.lrScale); a.lua.rawSet(-2, field: "lr_scale")
    }

    static func pushIntegers(_ a: LuaArgs, _ xs: [Int]) {
        a.lua.newTable(arrayCount: Int32(clamping: xs.count))
        for (i, x) in xs.enumerated() { a.lua.push(x); a.lua.rawSet(-2, index: i + 1) }
    }

    // MARK: module functions

    static let managerOptions: Set<String> = ["dir", "keep_last", "keep_best", "metric", "mode", "run"]
    static let policyOptions: Set<String> = ["on_nonfinite", "on_regression", "lr_factor", "max_rollbacks"]

    static func mode(_ a: LuaArgs, _ idx: Int, _ s: String?) throws -> CheckpointManager.Mode? {
        guard let s else { return nil }
        guard let m = CheckpointManager.Mode(rawValue: s) else {
            throw a.argumentError(idx, "a table whose field 'mode' is \"max\" or \"min\", got \"\(s.prefix(40))\"")
        }
        return m
    }

    static let functions: [LuaFunction] = [
        LuaFunction("manager", [.required("options", .table)], doc: """
                    A folder of checkpoints: ckpt.manager{dir=, keep_last=nil (all), keep_best=3, metric=, mode="max", run=}.
                      Saves are atomic (a kill -9 leaves the last good checkpoint loadable); retention keeps the newest, the
                      keep_last most recent, the keep_best best by metric and every approved checkpoint. run= records
                      checkpoint, rollback and approval events in a run (run.start).
                    """) { a in
            try a.checkOptions(1, allowed: managerOptions)
            guard let dir = try a.optionString(1, "dir"), !dir.isEmpty else { throw a.argumentError(1, "a table with dir = a folder path") }
            var o = CheckpointManager.Options(directory: dir)
            o.keepLast = try RunBinding.integerField(a, 1, "keep_last", min: 1)
            o.keepBest = try RunBinding.integerField(a, 1, "keep_best", min: 0) ?? 3
            o.metric = try a.optionString(1, "metric")
            if o.metric == "" { throw a.argumentError(1, "a table whose field 'metric' is a non-empty name") }
            o.mode = try mode(a, 1, try a.optionString(1, "mode")) ?? .max
            var runRecord: RunRecord?
            if a.lua.rawGet(1, field: "run") != LUA_TNIL {
                guard let r = a.lua.object(-1, metatable: RunBinding.metatable, as: RunRecord.self) else {
                    let got = a.lua.typeName(-1); a.lua.pop()
                    throw a.argumentError(1, "a table whose field 'run' is a run (run.start), got \(got)")
                }
                runRecord = r
            }
            a.lua.pop()
            let m = try run { try CheckpointManager(o) }
            m.run = runRecord
            a.lua.pushObject(m, metatable: managerMetatable)
            return 1
        },
        LuaFunction("policy", [.optional("options", .table, default: "{on_nonfinite=true, on_regression=nil, lr_factor=0.5, max_rollbacks=3}")], doc: """
                    A rollback policy for a trainer to consult: ckpt.policy{on_nonfinite=true, on_regression={metric=,
                      tolerance=0, mode=}, lr_factor=0.5, max_rollbacks=3}. pol:check{step=, loss=, metrics=, batch_rows=}
                      answers {action="ok"} or {action="rollback", cause=, ...}; mgr:rollback(decision, objects) acts on it.
                      A regression is the metric worse than its best so far by more than tolerance; mode defaults to "min"
                      for losses and perplexities, else "max".
                    """) { a in
            try a.checkOptions(1, allowed: policyOptions)
            var regression: RollbackPolicy.Regression?
            if !a.isNil(1), a.lua.rawGet(1, field: "on_regression") != LUA_TNIL {
                defer { a.lua.pop() }
                guard a.lua.type(-1) == LUA_TTABLE else {
                    throw a.argumentError(1, "a table whose field 'on_regression' is a table {metric=, tolerance=, mode=}, got \(a.lua.typeName(-1))")
                }
                let t = a.lua.absolute(-1)
                var bad: String?
                a.lua.forEach(t) {
                    if a.lua.type(-2) == LUA_TSTRING, let k = a.lua.string(-2), ["metric", "tolerance", "mode"].contains(k) { return true }
                    bad = a.lua.type(-2) == LUA_TSTRING ? a.lua.string(-2) : "a \(a.lua.typeName(-2)) key"
                    return false
                }
                if let bad { throw a.argumentError(1, "a table whose field 'on_regression' has metric, tolerance and mode, got unknown option '\(bad)'") }
                guard a.lua.rawGet(t, field: "metric") == LUA_TSTRING, let metric = a.lua.string(-1), !metric.isEmpty else {
                    a.lua.pop()
                    throw a.argumentError(1, "a table whose field 'on_regression' has metric = a metric name")
                }
                a.lua.pop()
                var tolerance = 0.0
                let tt = a.lua.rawGet(t, field: "tolerance")
                if tt != LUA_TNIL {
                    guard let v = a.lua.number(-1) else { a.lua.pop(); throw a.argumentError(1, "a table whose field 'on_regression.tolerance' is a number") }
                    tolerance = v
                }
                a.lua.pop()
                var modeValue: CheckpointManager.Mode?
                if a.lua.rawGet(t, field: "mode") != LUA_TNIL {
                    guard let s = a.lua.string(-1), let m = CheckpointManager.Mode(rawValue: s) else {
                        a.lua.pop()
                        throw a.argumentError(1, "a table whose field 'on_regression.mode' is \"max\" or \"min\"")
                    }
                    modeValue = m
                }
                a.lua.pop()
                regression = RollbackPolicy.Regression(metric: metric, tolerance: tolerance, mode: modeValue)
            }
            let p = try run {
                try RollbackPolicy(onNonFinite: try a.optionBoolean(1, "on_nonfinite") ?? true, regression: regression,
                                   lrFactor: try a.optionNumber(1, "lr_factor") ?? 0.5,
                                   maxRollbacks: try RunBinding.integerField(a, 1, "max_rollbacks", min: 0) ?? 3)
            }
            a.lua.pushObject(p, metatable: policyMetatable)
            return 1
        },
        LuaFunction("is_manager", [.required("value", .any)], doc: "True when value is a checkpoint manager.") { a in
            a.push(a.lua.object(1, metatable: managerMetatable, as: CheckpointManager.self) != nil)
        },
        LuaFunction("is_policy", [.required("value", .any)], doc: "True when value is a rollback policy.") { a in
            a.push(a.lua.object(1, metatable: policyMetatable, as: RollbackPolicy.self) != nil)
        },
    ]

    // MARK: manager methods

    static func method(_ name: String, _ params: [LuaParam] = [], doc: String,
                       _ body: @escaping (LuaArgs, CheckpointManager) throws -> Int) -> LuaFunction {
        LuaFunction(name, [.required("self", .any)] + params, method: true, doc: doc) { a in try body(a, try manager(a)) }
    }

    static let saveOptions: Set<String> = ["step", "model", "optimizer", "schedule", "metrics", "data_position", "rng"]
    static let loadOptions: Set<String> = ["model", "optimizer", "schedule", "rng"]

    /// Sets the Lua state's generator from a restore.
    static func applyGenerator(_ a: LuaArgs, _ r: CheckpointManager.Restored) {
        if let g = r.generator { a.state.generator = g }
    }

    static let managerMethods: [LuaFunction] = [
        method("save", [.required("checkpoint", .table)], doc: """
               Saves a checkpoint atomically: mgr:save{step=, model=, optimizer=, schedule=, metrics={loss=...},
                 data_position=any JSON value, rng=true}. Writes DIR/checkpoint-STEP/ (a Hugging Face folder for language
                 models, optimizer.safetensors, scheduler.json, rng_state.json with the random generator and the model's
                 dropout generators, trainer_state.json), then applies retention. Returns the entry (as mgr:list gives).
               """) { a, m in
            try a.checkOptions(2, allowed: saveOptions)
            guard let step = try RunBinding.integerField(a, 2, "step") else { throw a.argumentError(2, "a table with step = an integer >= 0") }
            let objs = try objects(a, 2)
            var metrics: [(String, JSONValue)] = []
            if a.lua.rawGet(2, field: "metrics") != LUA_TNIL {
                defer { a.lua.pop() }
                metrics = try RunBinding.fields(a, -1, what: "metrics")
            } else { a.lua.pop() }
            var position: JSONValue = .null
            if a.lua.rawGet(2, field: "data_position") != LUA_TNIL {
                defer { a.lua.pop() }
                position = try RunBinding.json(a, -1, what: "data_position")
            } else { a.lua.pop() }
            let rng = try a.optionBoolean(2, "rng") ?? true
            let e = try run {
                try m.save(step: step, objects: objs, generator: rng ? a.state.generator : nil, metrics: metrics, dataPosition: position)
            }
            try pushEntry(a, m, e)
            return 1
        },
        method("load", [.optional("which", .any, default: "\"latest\""), .optional("into", .table)], doc: """
               Restores a checkpoint (a step, "latest" or "best") into the objects given: mgr:load("latest", {model=,
                 optimizer=, schedule=, rng=true}). Parameters, optimizer state, schedule scale, the random generator and
                 the dropout generators come back as saved, so training continues bit for bit. Everything is checked
                 before anything changes. Returns the entry with data_position and lr_scale.
               """) { a, m in
            let ref = try reference(a, 2, fallback: .latest)
            try a.checkOptions(3, allowed: loadOptions)
            let objs = try objects(a, 3)
            let rng = try a.optionBoolean(3, "rng") ?? true
            let r = try run { try m.load(ref, into: objs, rng: rng) }
            applyGenerator(a, r)
            try pushRestored(a, m, r)
            return 1
        },
        method("rollback", [.required("target", .any), .optional("into", .table)], doc: """
               Goes back to a checkpoint and continues from it: target is a step, or a decision from pol:check (then the
                 last good checkpoint for its cause). Restores it into {model=, optimizer=, schedule=}, multiplies the
                 learning rate by lr_factor (the decision's; or the option lr_factor=, default 1 for a step), marks newer
                 checkpoints superseded and records the event (cause, batch rows) in the index and the run. After
                 max_rollbacks policy rollbacks it raises an error instead. Returns the entry with data_position,
                 lr_scale, cause and skipped_rows (rows whose batches gave non-finite losses: leave them out).
               """) { a, m in
            try a.checkOptions(3, allowed: loadOptions.union(["lr_factor"]))
            let objs = try objects(a, 3)
            let rng = try a.optionBoolean(3, "rng") ?? true
            let factor = try a.optionNumber(3, "lr_factor")
            if let factor, !(factor.isFinite && factor > 0) {
                throw a.argumentError(3, "a table whose field 'lr_factor' is a positive number, got \(LuaArgs.formatNumber(factor))")
            }
            var decision: RollbackDecision?
            var step: Int?
            if a.lua.type(2) == LUA_TTABLE {
                decision = try readDecision(a, 2)
            } else {
                guard case .step(let s) = try reference(a, 2, fallback: nil) else {
                    throw a.argumentError(2, "a step or a decision from pol:check, got a string")
                }
                step = s
            }
            let r = try run { try m.rollback(decision: decision, step: step, objects: objs, lrFactor: factor, rng: rng) }
            applyGenerator(a, r)
            try pushRestored(a, m, r)
            a.lua.push(m.rollbacks.last?["cause"]?.stringValue ?? ""); a.lua.rawSet(-2, field: "cause")
            pushIntegers(a, m.skippedRows); a.lua.rawSet(-2, field: "skipped_rows")
            return 1
        },
        method("list", doc: "Every checkpoint, oldest first: {step, metrics, time, path, approved, approval, best, latest, superseded, lr_scale}.") { a, m in
            a.lua.newTable(arrayCount: Int32(clamping: m.entries.count))
            for (i, e) in m.entries.enumerated() {
                try pushEntry(a, m, e)
                a.lua.rawSet(-2, index: i + 1)
            }
            return 1
        },
        method("latest", doc: "The newest checkpoint the run continues from (an entry), or nil.") { a, m in
            guard let e = m.latest else { a.lua.pushNil(); return 1 }
            try pushEntry(a, m, e)
            return 1
        },
        method("best", doc: "The best checkpoint by the manager's metric (an entry), or nil.") { a, m in
            guard let e = m.best else { a.lua.pushNil(); return 1 }
            try pushEntry(a, m, e)
            return 1
        },
        method("promoted", doc: "The newest approved checkpoint (an entry), or nil.") { a, m in
            guard let e = m.promoted else { a.lua.pushNil(); return 1 }
            try pushEntry(a, m, e)
            return 1
        },
        method("approve", [.required("step", .integer), .required("review", .table)], doc: """
               Records a human review: mgr:approve(step, {by = "alice", note = "win rate 0.62 vs ref"}). Persisted in
                 DIR/checkpoints.json (and the run's events); approved checkpoints are never removed. Returns the entry.
               """) { a, m in
            let step = try a.integer(2)
            try a.checkOptions(3, allowed: ["by", "note"])
            guard let by = try a.optionString(3, "by"), !by.isEmpty else { throw a.argumentError(3, "a table with by = who reviewed it") }
            let note = try a.optionString(3, "note") ?? ""
            let e = try run { try m.approve(step: step, by: by, note: note) }
            try pushEntry(a, m, e)
            return 1
        },
        method("path", [.optional("which", .any, default: "\"latest\"")],
               doc: "The folder of a checkpoint (a step, \"latest\" or \"best\"); nn.load(mgr:path()) loads its model.") { a, m in
            let ref = try reference(a, 2, fallback: .latest)
            return a.push(m.path(of: try run { try m.entry(ref) }))
        },
        method("skipped_rows", doc: "Data rows of batches whose loss was not finite (from the rollbacks they caused).") { a, m in
            pushIntegers(a, m.skippedRows)
            return 1
        },
        method("rollbacks", doc: "The rollback events, oldest first: {trigger, cause, step, to_step, batch_rows, lr_factor, lr_scale, time}.") { a, m in
            a.lua.newTable(arrayCount: Int32(clamping: m.rollbacks.count))
            for (i, e) in m.rollbacks.enumerated() {
                try RunBinding.push(a, e)
                a.lua.rawSet(-2, index: i + 1)
            }
            return 1
        },
        method("dir", doc: "The manager's folder.") { a, m in a.push(m.directory) },
    ]

    /// A decision table (from pol:check) at idx as a RollbackDecision.
    static func readDecision(_ a: LuaArgs, _ idx: Int) throws -> RollbackDecision {
        let what = "argument #\(idx) (target)"
        guard let action = try a.optionString(idx, "action") else {
            throw a.argumentError(idx, "a step or a decision from pol:check (a table with action = \"rollback\")")
        }
        guard action == "rollback" else { throw LuaBindingError("\(what) is a decision that says \"\(action.prefix(20))\": there is nothing to roll back") }
        guard let kindName = try a.optionString(idx, "kind"), let kind = RollbackTrigger(rawValue: kindName) else {
            throw a.argumentError(idx, "a decision whose kind is \"nonfinite\" or \"regression\"")
        }
        guard let step = try RunBinding.integerField(a, idx, "step") else { throw a.argumentError(idx, "a decision with step = an integer") }
        guard let factor = try a.optionNumber(idx, "lr_factor"), factor.isFinite, factor > 0 else {
            throw a.argumentError(idx, "a decision with lr_factor = a positive number")
        }
        guard let maxRollbacks = try RunBinding.integerField(a, idx, "max_rollbacks") else {
            throw a.argumentError(idx, "a decision with max_rollbacks = an integer")
        }
        var rows: [Int] = []
        if a.lua.rawGet(Int32(idx), field: "batch_rows") != LUA_TNIL {
            defer { a.lua.pop() }
            rows = try integers(a, "\(what).batch_rows")
        } else { a.lua.pop() }
        return RollbackDecision(kind: kind, cause: try a.optionString(idx, "cause") ?? "\(kind.rawValue) at step \(step)", step: step,
                                batchRows: rows, metric: try a.optionString(idx, "metric"), value: try a.optionNumber(idx, "value"),
                                best: try a.optionNumber(idx, "best"), tolerance: try a.optionNumber(idx, "tolerance") ?? 0,
                                mode: try mode(a, idx, try a.optionString(idx, "mode")) ?? .max, lrFactor: factor,
                                maxRollbacks: maxRollbacks)
    }

    // MARK: policy methods

    static func policyMethod(_ name: String, _ params: [LuaParam] = [], doc: String,
                             _ body: @escaping (LuaArgs, RollbackPolicy) throws -> Int) -> LuaFunction {
        LuaFunction(name, [.required("self", .any)] + params, method: true, doc: doc) { a in try body(a, try policy(a)) }
    }

    static let policyMethods: [LuaFunction] = [
        policyMethod("check", [.required("state", .table)], doc: """
                     The decision for one step: pol:check{step=, loss=, metrics={...}, batch_rows={...}} returns
                       {action="ok"} or {action="rollback", kind="nonfinite"|"regression", cause=, step=, batch_rows=,
                       metric=, value=, best=, lr_factor=, max_rollbacks=}; give it to mgr:rollback. loss and metric values
                       are numbers or one-element tensors; the best eval metric so far is remembered.
                     """) { a, p in
            try a.checkOptions(2, allowed: ["step", "loss", "metrics", "batch_rows"])
            guard let step = try RunBinding.integerField(a, 2, "step") else { throw a.argumentError(2, "a table with step = an integer >= 0") }
            var loss: Double?
            if a.lua.rawGet(2, field: "loss") != LUA_TNIL {
                defer { a.lua.pop() }
                loss = try scalar(a, "argument #2 (state): field 'loss'")
            } else { a.lua.pop() }
            var metrics: [(String, Double)] = []
            if a.lua.rawGet(2, field: "metrics") != LUA_TNIL {
                defer { a.lua.pop() }
                for (k, v) in try RunBinding.fields(a, -1, what: "argument #2 (state): field 'metrics'") {
                    if let d = v.doubleValue { metrics.append((k, d)) }
                }
            } else { a.lua.pop() }
            var rows: [Int] = []
            if a.lua.rawGet(2, field: "batch_rows") != LUA_TNIL {
                defer { a.lua.pop() }
                rows = try integers(a, "argument #2 (state): field 'batch_rows'")
            } else { a.lua.pop() }
            let lua = a.lua
            guard let d = p.check(step: step, loss: loss, metrics: metrics, batchRows: rows) else {
                lua.newTable(recordCount: 1)
                lua.push("ok"); lua.rawSet(-2, field: "action")
                return 1
            }
            lua.newTable(recordCount: 12)
            lua.push("rollback"); lua.rawSet(-2, field: "action")
            lua.push(d.kind.rawValue); lua.rawSet(-2, field: "kind")
            lua.push(d.cause); lua.rawSet(-2, field: "cause")
            lua.push(d.step); lua.rawSet(-2, field: "step")
            pushIntegers(a, d.batchRows); lua.rawSet(-2, field: "batch_rows")
            if let m = d.metric { lua.push(m); lua.rawSet(-2, field: "metric") }
            if let v = d.value { lua.push(v); lua.rawSet(-2, field: "value") }
            if let b = d.best { lua.push(b); lua.rawSet(-2, field: "best") }
            lua.push(d.tolerance); lua.rawSet(-2, field: "tolerance")
            lua.push(d.mode.rawValue); lua.rawSet(-2, field: "mode")
            lua.push(d.lrFactor); lua.rawSet(-2, field: "lr_factor")
            lua.push(d.maxRollbacks); lua.rawSet(-2, field: "max_rollbacks")
            return 1
        },
        policyMethod("best_metric", doc: "The best value of the regression metric seen so far and its step (nil when none).") { a, p in
            guard let b = p.best else { a.lua.pushNil(); return 1 }
            a.push(b)
            a.push(p.bestStep ?? 0)
            return 2
        },
        policyMethod("set_best_metric", [.required("value", .number), .optional("step", .integer)],
                     doc: "Sets the best value seen (a resumed run continues with the best metric of its checkpoints).") { a, p in
            let v = try a.number(2)
            guard v.isFinite else { throw a.argumentError(2, "a finite number, got \(LuaArgs.formatNumber(v))") }
            p.setBest(v, step: try a.optionalInteger(3))
            return 0
        },
    ]

    static let managerMetamethods: [String: LuaFunction] = inModule([
        "__index": OptimBinding.indexMetamethod("a checkpoint manager"),
        "__tostring": LuaFunction("__tostring", [.required("self", .any)], doc: "CheckpointManager(DIR, N checkpoints, latest STEP).") { a in
            let m = try manager(a)
            let latest = m.latest.map { ", latest \($0.step)" } ?? ""
            let best = m.best.map { ", best \($0.step)" } ?? ""
            return a.push("CheckpointManager(\(m.directory), \(m.entries.count) checkpoint\(m.entries.count == 1 ? "" : "s")\(latest)\(best))")
        },
        "__gc": LuaFunction("__gc", [.optional("self", .any)], doc: "Releases the manager.") { a in
            a.lua.releaseObject(1, metatable: managerMetatable)
            return 0
        },
    ])

    static let policyMetamethods: [String: LuaFunction] = inModule([
        "__index": OptimBinding.indexMetamethod("a rollback policy"),
        "__tostring": LuaFunction("__tostring", [.required("self", .any)], doc: "RollbackPolicy(...).") { a in
            a.push(try policy(a).description)
        },
        "__gc": LuaFunction("__gc", [.optional("self", .any)], doc: "Releases the policy.") { a in
            a.lua.releaseObject(1, metatable: policyMetatable)
            return 0
        },
    ])

    static func inModule(_ table: [String: LuaFunction]) -> [String: LuaFunction] {
        for f in table.values { f.module = "ckpt" }
        return table
    }

    static let module = LuaModule(name: "ckpt",
                                  doc: "Checkpoints with atomic saves, retention, rollbacks and approvals (ckpt.manager), and rollback policies (ckpt.policy).",
                                  functions: functions + managerMethods + policyMethods)

    static func register(in state: LuaState) {
        state.registerType(metatable: managerMetatable, methods: managerMethods, metamethods: managerMetamethods)
        state.registerType(metatable: policyMetatable, methods: policyMethods, metamethods: policyMetamethods)
        state.register(module)
    }
}

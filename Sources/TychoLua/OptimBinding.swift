// OptimBinding.swift: the Lua module `optim`: optimizers (`tycho.Optimizer`), gradient clipping and learning-rate
// schedules (`tycho.Schedule`). The numeric work is TychoTrain's; this file reads Lua values into Swift and back.
//
// Parameters come in three forms, as in PyTorch: a list of tensors (or a table of name = tensor, taken in name
// order), an object with a `parameters` method returning one (an nn module; called in protected mode), or param
// groups `{ {params = ..., lr = ...}, {params = ...} }` whose fields override the options argument.

import CLua
import CLuaShim
import TychoTensor
import TychoTrain

enum OptimBinding {
    static let optimizerMetatable = "tycho.Optimizer"
    static let scheduleMetatable = "tycho.Schedule"
    /// Registry field holding `function(o)` that returns true and `o:parameters()` when o has that method.
    static let parametersCaller = "tycho.optim.parameters"

    // MARK: userdata

    static func optimizer(_ a: LuaArgs, _ idx: Int = 1) throws -> Optimizer {
        if let o = a.lua.object(Int32(idx), metatable: optimizerMetatable, as: Optimizer.self) { return o }
        if a.lua.type(Int32(idx)) == LUA_TUSERDATA, a.lua.isFinalized(Int32(idx)) {
            throw a.argumentError(idx, "a live optimizer, got one that was already collected")
        }
        throw a.typeError(idx, "an optimizer")
    }

    static func schedule(_ a: LuaArgs, _ idx: Int = 1) throws -> LRSchedule {
        if let s = a.lua.object(Int32(idx), metatable: scheduleMetatable, as: LRSchedule.self) { return s }
        if a.lua.type(Int32(idx)) == LUA_TUSERDATA, a.lua.isFinalized(Int32(idx)) {
            throw a.argumentError(idx, "a live schedule, got one that was already collected")
        }
        throw a.typeError(idx, "a schedule")
    }

    /// Runs a TychoTrain call, turning its errors into binding errors (prefixed with `context` when given).
    static func run<T>(_ context: String = "", _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let e as OptimizerError {
            throw LuaBindingError(context + e.message)
        } catch let e as InvalidOption {
            throw LuaBindingError(context + e.description)
        }
    }

    // MARK: parameters

    /// The parameter collection at `idx`: a list of tensors, a table of name = tensor (in name order), or (when
    /// `allowObject`) an object whose `parameters()` returns one of those. `what` starts every error message.
    static func tensors(_ a: LuaArgs, at idx: Int32, what: String, allowObject: Bool = true) throws -> [Tensor] {
        let lua = a.lua
        let t = lua.absolute(idx)
        guard lua.ensureStack(6) else { throw LuaBindingError("Lua stack overflow") }
        if lua.type(t) == LUA_TTABLE, lua.rawLength(t) > 0 {
            var out: [Tensor] = []
            for k in 1...lua.rawLength(t) {
                _ = lua.rawGet(t, index: k)
                defer { lua.pop() }
                guard let x = lua.object(-1, metatable: TensorBinding.metatable, as: Tensor.self) else {
                    let got = lua.isFinalized(-1) ? "a collected tensor" : lua.typeName(-1)
                    throw LuaBindingError("\(what) must be a list of tensors, got \(got) at position \(k)")
                }
                out.append(x)
            }
            return out
        }
        if allowObject, lua.type(t) == LUA_TTABLE || (lua.type(t) == LUA_TUSERDATA && a.tensorOrNil(Int(t)) == nil) {
            let top = lua.top
            defer { lua.top = top }
            lua.pushRegistry()
            _ = lua.rawGet(-1, field: parametersCaller)
            lua.pushValue(t)
            if let e = lua.protectedCall(nargs: 1, nresults: 2, traceback: false) {
                throw LuaBindingError("\(what): its parameters() method failed: \(e)")
            }
            if lua.bool(-2) {
                return try tensors(a, at: -1, what: "\(what):parameters()", allowObject: false)
            }
        }
        if lua.type(t) == LUA_TTABLE {
            var named: [(String, Tensor)] = []
            var problem: String?
            lua.forEach(t) {
                guard lua.type(-2) == LUA_TSTRING, let name = lua.string(-2),
                      let x = lua.object(-1, metatable: TensorBinding.metatable, as: Tensor.self) else {
                    problem = lua.type(-2) == LUA_TSTRING ? "\(lua.typeName(-1)) for \"\((lua.string(-2) ?? "").prefix(60))\"" : "a \(lua.typeName(-2)) key"
                    return false
                }
                named.append((name, x))
                return true
            }
            if let problem { throw LuaBindingError("\(what) must be a list of tensors or a table of name = tensor, got \(problem)") }
            return named.sorted { $0.0 < $1.0 }.map(\.1)
        }
        let got = a.tensorOrNil(Int(t)) != nil ? "a tensor (put it in a list: {t})" : lua.typeName(t)
        throw LuaBindingError("\(what) must be a list of tensors, param groups or an object with parameters(), got \(got)")
    }

    /// True when the table at idx is a list of param groups (its first element is a table, not a tensor).
    static func isGroupList(_ a: LuaArgs, _ idx: Int32) -> Bool {
        guard a.lua.type(idx) == LUA_TTABLE, a.lua.rawLength(idx) > 0 else { return false }
        let t = a.lua.rawGet(idx, index: 1)
        defer { a.lua.pop() }
        return t == LUA_TTABLE && a.lua.object(-1, metatable: TensorBinding.metatable, as: Tensor.self) == nil
    }

    /// Reads argument 1 as groups: each group's tensors and the stack index of its table (nil for a plain list).
    /// Group tables stay at their place in argument 1, so `body` reads their options while they are reachable.
    static func groups<R>(_ a: LuaArgs, allowed: Set<String>,
                          _ body: (_ tensors: [Tensor], _ group: Int, _ options: OptionSource?) throws -> R) throws -> [R] {
        let what = "argument #1 (params)"
        guard isGroupList(a, 1) else { return [try body(try tensors(a, at: 1, what: what), 0, nil)] }
        var out: [R] = []
        for k in 1...a.lua.rawLength(1) {
            let top = a.lua.top
            defer { a.lua.top = top }
            let type = a.lua.rawGet(1, index: k)
            let label = "\(what): param group \(k)"
            guard type == LUA_TTABLE, a.lua.object(-1, metatable: TensorBinding.metatable, as: Tensor.self) == nil else {
                throw LuaBindingError("\(what) must be a list of param groups (tables with params = ...), got \(a.lua.typeName(-1)) at position \(k)")
            }
            let g = a.lua.absolute(-1)
            let source = OptionSource(a: a, index: g, label: label)
            try source.check(allowed: allowed.union(["params"]))
            guard a.lua.rawGet(g, field: "params") != LUA_TNIL else {
                throw LuaBindingError("\(label) has no params field")
            }
            let ts = try tensors(a, at: -1, what: "\(label): field 'params'")
            out.append(try body(ts, k - 1, source))
        }
        return out
    }

    // MARK: options

    /// Option values from the options argument (#2) or from a param group table, with errors that name them.
    struct OptionSource {
        let a: LuaArgs
        let index: Int32
        /// nil for the options argument.
        let label: String?

        init(a: LuaArgs, index: Int32, label: String?) {
            self.a = a
            self.index = index
            self.label = label
        }

        /// The options argument #2.
        init(options a: LuaArgs) { self.init(a: a, index: 2, label: nil) }

        func error(_ key: String, _ want: String, _ got: String) -> LuaBindingError {
            if let label { return LuaBindingError("\(label): field '\(key)' must be \(want), got \(got)") }
            return a.argumentError(2, "a table whose field '\(key)' is \(want), got \(got)")
        }

        func check(allowed: Set<String>) throws {
            if label == nil { return try a.checkOptions(2, allowed: allowed) }
            var bad: String?
            a.lua.forEach(index) {
                if a.lua.type(-2) == LUA_TSTRING, let k = a.lua.string(-2), allowed.contains(k) { return true }
                bad = a.lua.type(-2) == LUA_TSTRING ? (a.lua.string(-2) ?? "?") : "a \(a.lua.typeName(-2)) key"
                return false
            }
            if let bad, let label {
                throw LuaBindingError("\(label) has unknown option '\(bad)' (options: \(allowed.sorted().joined(separator: ", ")))")
            }
        }

        private func field(_ key: String) -> Int32? {
            guard a.lua.type(index) == LUA_TTABLE else { return nil }
            let t = a.lua.rawGet(index, field: key)
            if t == LUA_TNIL { a.lua.pop(); return nil }
            return t
        }

        func number(_ key: String) throws -> Float? {
            if label == nil { return try a.optionNumber(2, key).map(Float.init) }
            guard let t = field(key) else { return nil }
            defer { a.lua.pop() }
            guard t == LUA_TNUMBER, let v = a.lua.number(-1) else { throw error(key, "a number", a.lua.typeName(-1)) }
            return Float(v)
        }

        func boolean(_ key: String) throws -> Bool? {
            if label == nil { return try a.optionBoolean(2, key) }
            guard let t = field(key) else { return nil }
            defer { a.lua.pop() }
            guard t == LUA_TBOOLEAN else { throw error(key, "a boolean", a.lua.typeName(-1)) }
            return a.lua.bool(-1)
        }

        func pair(_ key: String) throws -> (Float, Float)? {
            var values: [Double]?
            if label == nil {
                values = try a.optionNumbers(2, key)
            } else if let t = field(key) {
                defer { a.lua.pop() }
                guard t == LUA_TTABLE else { throw error(key, "two numbers {beta1, beta2}", a.lua.typeName(-1)) }
                var vs: [Double] = []
                for k in 0..<a.lua.rawLength(-1) {
                    _ = a.lua.rawGet(-1, index: k + 1)
                    defer { a.lua.pop() }
                    guard let v = a.lua.number(-1) else {
                        throw error(key, "two numbers {beta1, beta2}", "\(a.lua.typeName(-1)) at position \(k + 1)")
                    }
                    vs.append(v)
                }
                values = vs
            }
            guard let values else { return nil }
            guard values.count == 2 else {
                throw error(key, "two numbers {beta1, beta2}", "\(values.count) number\(values.count == 1 ? "" : "s")")
            }
            return (Float(values[0]), Float(values[1]))
        }

        /// Rethrows a core validation error in the words of this source.
        func invalid(_ e: InvalidOption) -> LuaBindingError {
            let key = e.field == "beta1" || e.field == "beta2" ? "betas" : e.field
            let want = e.field == "beta1" || e.field == "beta2" ? "\(e.requirement) for \(e.field)" : e.requirement
            return error(key, want, e.value)
        }
    }

    static let sgdOptions: Set<String> = ["lr", "momentum", "dampening", "weight_decay", "nesterov"]
    static let adamwOptions: Set<String> = ["lr", "betas", "eps", "weight_decay"]

    static func read(_ s: OptionSource, _ base: SGD.Options) throws -> SGD.Options {
        var o = base
        if let v = try s.number("lr") { o.lr = v }
        if let v = try s.number("momentum") { o.momentum = v }
        if let v = try s.number("dampening") { o.dampening = v }
        if let v = try s.number("weight_decay") { o.weightDecay = v }
        if let v = try s.boolean("nesterov") { o.nesterov = v }
        do { try o.validate() } catch let e as InvalidOption { throw s.invalid(e) }
        return o
    }

    static func read(_ s: OptionSource, _ base: AdamW.Options) throws -> AdamW.Options {
        var o = base
        if let v = try s.number("lr") { o.lr = v }
        if let (b1, b2) = try s.pair("betas") { o.beta1 = b1; o.beta2 = b2 }
        if let v = try s.number("eps") { o.eps = v }
        if let v = try s.number("weight_decay") { o.weightDecay = v }
        do { try o.validate() } catch let e as InvalidOption { throw s.invalid(e) }
        return o
    }

    /// Pushes a new optimizer.
    static func push(_ a: LuaArgs, _ o: Optimizer) -> Int {
        a.lua.pushObject(o, metatable: optimizerMetatable)
        return 1
    }

    // MARK: module functions

    static let constructors: [LuaFunction] = [
        LuaFunction("sgd", [.required("params", .any), .optional("options", .table, default: "{lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=false}")],
                    doc: """
                    Stochastic gradient descent with torch.optim.SGD's semantics (weight decay added to the grad,
                      momentum buffer = the first grad, then b = momentum*b + (1-dampening)*g; nesterov uses g + momentum*b).
                      params: a list of tensors, an object with parameters(), or param groups
                      {{params = {...}, lr = 0.1}, {params = {...}}} whose fields override options.
                      opt = optim.sgd(model:parameters(), {lr = 0.1, momentum = 0.9})
                    """) { a in
            try a.checkOptions(2, allowed: sgdOptions)
            let base = try read(OptionSource(options: a), SGD.Options())
            let groups = try groups(a, allowed: sgdOptions) { ts, _, src in
                (params: ts, options: try src.map { try read($0, base) } ?? base)
            }
            return push(a, try run { try SGD(groups: groups) })
        },
        LuaFunction("adamw", [.required("params", .any), .optional("options", .table, default: "{lr=1e-3, betas={0.9, 0.999}, eps=1e-8, weight_decay=0.01}")],
                    doc: """
                    Adam with decoupled weight decay, with torch.optim.AdamW's semantics (p *= 1 - lr*weight_decay,
                      then the bias-corrected Adam update; eps added to sqrt(v_hat)).
                      params: a list of tensors, an object with parameters(), or param groups
                      {{params = {...}, weight_decay = 0}, {params = {...}}} whose fields override options.
                      opt = optim.adamw(model:parameters(), {lr = 5e-6})
                    """) { a in
            try a.checkOptions(2, allowed: adamwOptions)
            let base = try read(OptionSource(options: a), AdamW.Options())
            let groups = try groups(a, allowed: adamwOptions) { ts, _, src in
                (params: ts, options: try src.map { try read($0, base) } ?? base)
            }
            return push(a, try run { try AdamW(groups: groups) })
        },
        LuaFunction("clip_grad_norm", [.required("params", .any), .required("max_norm", .number)],
                    doc: """
                    Scales the grads of params in place so that their joint L2 norm is at most max_norm and returns the
                      norm before clipping (torch.nn.utils.clip_grad_norm_: coefficient max_norm/(norm+1e-6), at most 1).
                      Parameters without a grad are skipped. params: the same forms as optim.adamw takes.
                    """) { a in
            let maxNorm = try a.number(2)
            guard maxNorm.isFinite, maxNorm >= 0 else { throw a.argumentError(2, "a non-negative number, got \(LuaArgs.formatNumber(maxNorm))") }
            let params = try groups(a, allowed: sgdOptions.union(adamwOptions)) { ts, _, _ in ts }.flatMap { $0 }
            return a.push(Double(try run { try GradClipping.clipGradNorm(params, maxNorm: Float(maxNorm)) }))
        },
        LuaFunction("schedule", [.required("options", .table)],
                    doc: """
                    A learning-rate schedule: optim.schedule{kind="cosine"|"linear"|"constant", lr=, warmup=0, total=, min_lr=0}.
                      s(step) or s:lr_at(step) is the rate at a 1-based step: linear warmup from 0 reaching lr at step warmup,
                      then cosine or linear decay reaching min_lr at step total (held after), or constant lr.
                      s(k) equals transformers' get_*_schedule_with_warmup after k scheduler steps.
                      s:apply(opt, step) sets every group's lr.
                    """) { a in
            try a.checkOptions(1, allowed: ["kind", "lr", "warmup", "total", "min_lr"])
            func integer(_ key: String) throws -> Int? {
                guard let v = try a.optionNumber(1, key) else { return nil }
                guard v == v.rounded(), Swift.abs(v) < 9e15 else {
                    throw a.argumentError(1, "a table whose field '\(key)' is an integer, got \(LuaArgs.formatNumber(v))")
                }
                return Int(v)
            }
            guard let kindName = try a.optionString(1, "kind") else {
                throw a.argumentError(1, "a table with kind = \"cosine\", \"linear\" or \"constant\"")
            }
            guard let kind = LRSchedule.Kind(rawValue: kindName) else {
                throw a.argumentError(1, "a table whose field 'kind' is \"cosine\", \"linear\" or \"constant\", got \"\(kindName.prefix(40))\"")
            }
            guard let lr = try a.optionNumber(1, "lr") else { throw a.argumentError(1, "a table with lr = a number") }
            let warmup = try integer("warmup") ?? 0
            let total = try integer("total")
            let minLR = try a.optionNumber(1, "min_lr") ?? 0
            do {
                let s = try LRSchedule(kind: kind, lr: lr, warmup: warmup, total: total, minLR: minLR)
                a.lua.pushObject(s, metatable: scheduleMetatable)
                return 1
            } catch let e as InvalidOption {
                throw a.argumentError(1, "a table whose field '\(e.field)' is \(e.requirement), got \(e.value)")
            }
        },
        LuaFunction("is_optimizer", [.required("value", .any)], doc: "True when value is an optimizer.") { a in
            a.push(a.lua.object(1, metatable: optimizerMetatable, as: Optimizer.self) != nil)
        },
    ]

    // MARK: optimizer methods

    static let selfParam = LuaParam.required("self", .any)

    static func method(_ name: String, _ params: [LuaParam] = [], doc: String,
                       _ body: @escaping (LuaArgs, Optimizer) throws -> Int) -> LuaFunction {
        LuaFunction(name, [selfParam] + params, method: true, doc: doc) { a in try body(a, try optimizer(a)) }
    }

    /// The 0-based group of an optional 1-based group argument at idx (nil when absent).
    static func groupArgument(_ a: LuaArgs, _ idx: Int, _ o: Optimizer) throws -> Int? {
        guard let g = try a.optionalInteger(idx) else { return nil }
        guard g >= 1 && g <= o.groupCount else {
            throw a.argumentError(idx, "a parameter group in 1..\(o.groupCount), got \(g)")
        }
        return g - 1
    }

    static let optimizerMethods: [LuaFunction] = [
        method("step", doc: "Updates every parameter that has a grad, in place (parameters whose grad is nil are skipped).") { a, o in
            try run { try o.step() }
            let kb = o.allocatedBytes / 1024
            if kb > 0 { _ = tycho_gc_step(a.lua.L, Int32(clamping: kb)) }
            return 0
        },
        method("zero_grad", doc: "Sets every parameter's grad to nil (PyTorch's set_to_none).") { _, o in
            o.zeroGrad()
            return 0
        },
        method("lr", [.optional("group", .integer, default: "1")],
               doc: "The learning rate of a parameter group: the float32 value the optimizer uses, as its shortest decimal (0.001, not 0.0010000000475).") { a, o in
            let lr = o.learningRate(group: try groupArgument(a, 2, o) ?? 0)
            return a.push(Double(lr.description) ?? Double(lr))
        },
        method("set_lr", [.required("lr", .number), .optional("group", .integer)],
               doc: "Sets the learning rate of one parameter group, or of every group when group is omitted.") { a, o in
            let lr = try a.number(2)
            guard lr.isFinite, lr >= 0 else { throw a.argumentError(2, "a non-negative number, got \(LuaArgs.formatNumber(lr))") }
            try run { try o.setLearningRate(Float(lr), group: try groupArgument(a, 3, o)) }
            return 0
        },
        method("state", doc: """
               A snapshot of the optimizer's state as a table of float32 tensors, ready for tensor.save:
                 step, group<g>.params, group<g>.lr (and the other hyperparameters), and per parameter i
                 exp_avg.<i>, exp_avg_sq.<i>, step.<i> (AdamW) or momentum_buffer.<i> (SGD).
                 tensor.save("opt.safetensors", opt:state())
               """) { a, o in
            let entries = try run { try o.state() }
            guard a.lua.ensureStack(4) else { throw LuaBindingError("Lua stack overflow") }
            a.lua.newTable(recordCount: Int32(clamping: entries.count))
            for (name, t) in entries {
                a.lua.push(tensor: t)
                a.lua.rawSet(-2, field: name)
            }
            return 1
        },
        method("load_state", [.required("state", .table), .optional("metadata", .any)],
               doc: """
               Restores a state from opt:state() (or tensor.load of a saved one: opt:load_state(tensor.load(path))
                 works, the metadata is ignored). Everything is checked (kind, groups, sizes) before anything changes.
               """) { a, o in
            var entries: [String: Tensor] = [:]
            for (name, t) in try TensorBinding.namedTensors(a, 2) { entries[name] = t }
            try run { try o.loadState(entries) }
            return 0
        },
    ]

    // MARK: schedule methods

    static func scheduleMethod(_ name: String, _ params: [LuaParam] = [], doc: String,
                               _ body: @escaping (LuaArgs, LRSchedule) throws -> Int) -> LuaFunction {
        LuaFunction(name, [selfParam] + params, method: true, doc: doc) { a in try body(a, try schedule(a)) }
    }

    /// The step argument at idx: an integer >= 0.
    static func stepArgument(_ a: LuaArgs, _ idx: Int) throws -> Int {
        let k = try a.integer(idx)
        guard k >= 0 else { throw a.argumentError(idx, "a step >= 0 (the first step is 1), got \(k)") }
        return k
    }

    static let scheduleMethods: [LuaFunction] = [
        scheduleMethod("lr_at", [.required("step", .integer)],
                       doc: "The learning rate at a 1-based step (also s(step)); step 0 is the start of the warmup.") { a, s in
            a.push(s.lr(at: try stepArgument(a, 2)))
        },
        scheduleMethod("scale", doc: "The factor on every rate (1 unless a rollback lowered it: ckpt's mgr:rollback multiplies it by lr_factor).") { a, s in
            a.push(s.scale)
        },
        scheduleMethod("set_scale", [.required("scale", .number)], doc: "Sets the factor on every rate (a positive number).") { a, s in
            let v = try a.number(2)
            guard v.isFinite, v > 0 else { throw a.argumentError(2, "a positive number, got \(LuaArgs.formatNumber(v))") }
            try run { try s.setScale(v) }
            return 0
        },
        scheduleMethod("apply", [.required("optimizer", .any), .required("step", .integer)],
                       doc: "Sets the lr of every parameter group of optimizer to this schedule's rate at step; returns it.") { a, s in
            let o = try optimizer(a, 2)
            let lr = s.lr(at: try stepArgument(a, 3))
            try run { try o.setLearningRate(Float(lr)) }
            return a.push(lr)
        },
    ]

    // MARK: metamethods

    static func indexMetamethod(_ what: String) -> LuaFunction {
        LuaFunction("__index", [.required("self", .any), .required("key", .any)], doc: "Methods of \(what).") { a in
            guard a.lua.getMetatable(1) else { a.lua.pushNil(); return 1 }
            _ = a.lua.rawGet(-1, field: "__methods")
            a.lua.pushValue(2)
            lua_rawget(a.lua.L, -2)
            return 1
        }
    }

    static let optimizerMetamethods: [String: LuaFunction] = inModule([
        "__index": indexMetamethod("an optimizer"),
        "__tostring": LuaFunction("__tostring", [.required("self", .any)],
                                  doc: "AdamW(lr=0.001, betas=(0.9, 0.999), eps=1e-08, weight_decay=0.01, 12 params).") { a in
            a.push(try optimizer(a).description)
        },
        "__gc": LuaFunction("__gc", [.optional("self", .any)], doc: "Releases the optimizer.") { a in
            a.lua.releaseObject(1, metatable: optimizerMetatable)
            return 0
        },
    ])

    static let scheduleMetamethods: [String: LuaFunction] = inModule([
        "__index": indexMetamethod("a schedule"),
        "__call": LuaFunction("__call", [.required("self", .any), .required("step", .integer)],
                              doc: "s(step): the learning rate at a 1-based step.") { a in
            a.push(try schedule(a).lr(at: try stepArgument(a, 2)))
        },
        "__tostring": LuaFunction("__tostring", [.required("self", .any)],
                                  doc: "Schedule(cosine, lr=0.001, warmup=100, total=1000, min_lr=0).") { a in
            a.push(try schedule(a).description)
        },
        "__gc": LuaFunction("__gc", [.optional("self", .any)], doc: "Releases the schedule.") { a in
            a.lua.releaseObject(1, metatable: scheduleMetatable)
            return 0
        },
    ])

    /// Metamethods belong to the module, so their errors read `optim.__call: ...`.
    static func inModule(_ table: [String: LuaFunction]) -> [String: LuaFunction] {
        for f in table.values { f.module = "optim" }
        return table
    }

    // MARK: registration

    static let module = LuaModule(name: "optim",
                                  doc: "Optimizers (sgd, adamw) with PyTorch's semantics, clip_grad_norm, and learning-rate schedules.",
                                  functions: constructors + optimizerMethods + scheduleMethods)

    /// Registers the `tycho.Optimizer` and `tycho.Schedule` types and the `optim` module in `state`.
    static func register(in state: LuaState) {
        state.registerType(metatable: optimizerMetatable, methods: optimizerMethods, metamethods: optimizerMetamethods)
        state.registerType(metatable: scheduleMetatable, methods: scheduleMethods, metamethods: scheduleMetamethods)
        state.register(module)
        // The protected helper that asks an object for its parameters (indexing it may run metamethods).
        let code = """
            return function(o)
              local ok, f = pcall(function() return o.parameters end)
              if not ok or type(f) ~= "function" then return false end
              return true, (f(o))
            end
            """
        if state.load(code, chunkName: "=optim") == nil, state.lua.protectedCall(nargs: 0, nresults: 1) == nil {
            state.lua.pushRegistry()
            state.lua.pushValue(-2)
            state.lua.rawSet(-2, field: parametersCaller)
            state.lua.pop(2)
        }
    }
}

// NNBinding.swift: the Lua module `nn` (layers, GPT-2 and Llama models, Hugging Face folders) and the methods of
// `tycho.Module` userdata. A module is callable: `m(x)`; a language model's call gives its logits.

import CLua
import CLuaShim
import TychoNN
import Foundation
import TychoTensor

enum NNBinding {
    static let metatable = "tycho.Module"

    static func module(_ a: LuaArgs, _ idx: Int = 1) throws -> Module {
        if let m = a.lua.object(Int32(idx), metatable: metatable, as: Module.self) { return m }
        if a.lua.isFinalized(Int32(idx)) { throw a.argumentError(idx, "a live module, got one that was already collected") }
        throw a.typeError(idx, "a module")
    }

    static func languageModel(_ a: LuaArgs, _ what: String) throws -> LanguageModel {
        let m = try module(a)
        guard let lm = m as? LanguageModel else {
            throw LuaBindingError("\(m.summary) is not a language model (\(what) needs nn.gpt2, nn.llama or nn.load)")
        }
        return lm
    }

    /// Pushes a module, telling Lua's collector about its parameters' memory.
    @discardableResult
    static func push(_ a: LuaArgs, _ m: Module) -> Int {
        let kb = m.parameters().reduce(0) { $0 + $1.storage.byteCount } / 1024
        for p in m.parameters() { p.storage.reportedToCollector = true }
        if kb > 0 { _ = tycho_gc_step(a.lua.L, Int32(clamping: kb)) }
        a.lua.pushObject(m, metatable: metatable)
        return 1
    }

    static func method(_ name: String, _ params: [LuaParam] = [], doc: String,
                       _ body: @escaping (LuaArgs, Module) throws -> Int) -> LuaFunction {
        LuaFunction(name, [.required("self", .any)] + params, method: true, doc: doc) { a in try body(a, try module(a)) }
    }

    static func returnSelf(_ a: LuaArgs) -> Int { a.lua.pushValue(1); return 1 }

    /// A positive integer option that must be present.
    static func required(_ a: LuaArgs, _ idx: Int, _ key: String) throws -> Int {
        guard let v = try a.optionInteger(idx, key) else { throw a.argumentError(idx, "a table with \(key) = a positive integer") }
        guard v > 0 else { throw a.argumentError(idx, "a table whose field '\(key)' is a positive integer, got \(v)") }
        return v
    }

    static func pushTensorList(_ a: LuaArgs, _ ts: [Tensor]) -> Int {
        a.lua.newTable(arrayCount: Int32(clamping: ts.count))
        for (i, t) in ts.enumerated() { a.push(t); a.lua.rawSet(-2, index: i + 1) }
        return 1
    }

    // MARK: methods

    static let methods: [LuaFunction] = [
        method("forward", [.required("input", .tensor)], doc: "Applies the module (the same as m(x)); a language model gives logits [B, T, V] for ids [B, T].") { a, m in
            a.push(try m.forward(a.tensor(2)))
        },
        method("parameters", doc: "The parameters (leaf tensors) as a list, in the order of named_parameters.") { a, m in
            pushTensorList(a, m.parameters())
        },
        method("named_parameters", doc: "The parameters by their Hugging Face names, as a table {name = tensor} (savable with tensor.save).") { a, m in
            let named = m.namedParameters()
            a.lua.newTable(recordCount: Int32(clamping: named.count))
            for (name, t) in named { a.push(t); a.lua.rawSet(-2, field: name) }
            return 1
        },
        method("parameter_names", doc: "The parameter names as a list, in order.") { a, m in
            let named = m.namedParameters()
            a.lua.newTable(arrayCount: Int32(clamping: named.count))
            for (i, (name, _)) in named.enumerated() { a.lua.push(name); a.lua.rawSet(-2, index: i + 1) }
            return 1
        },
        method("num_params", doc: "The number of parameter elements (a tied weight counts once).") { a, m in
            a.push(m.parameterCount)
        },
        method("train", [.optional("flag", .boolean, default: "true")], doc: "Sets training mode (dropout on) for the whole tree; returns self.") { a, m in
            m.setTraining(try a.boolean(2, default: true))
            return returnSelf(a)
        },
        method("eval", doc: "Sets evaluation mode (dropout off) for the whole tree; returns self.") { a, m in
            m.setTraining(false)
            return returnSelf(a)
        },
        method("is_training", doc: "True in training mode.") { a, m in a.push(m.isTraining) },
        method("zero_grad", doc: "Drops every parameter's gradient; returns self.") { a, m in
            m.zeroGrad()
            return returnSelf(a)
        },
        method("clone", doc: "A deep copy with its own parameters (policy:clone():freeze() is a frozen reference model).") { a, m in
            push(a, try m.copy())
        },
        method("freeze", doc: "Stops gradients for every parameter (requires_grad false, grads dropped); returns self.") { a, m in
            m.freeze()
            return returnSelf(a)
        },
        method("add", [.required("module", .any)], doc: "Appends a module to a sequential; returns self.") { a, m in
            guard let s = m as? Sequential else { throw LuaBindingError("add needs an nn.sequential, got \(m.summary)") }
            let child = try module(a, 2)
            guard !child.modules().contains(where: { $0 === s }) else { throw a.argumentError(2, "a module that does not contain this sequential") }
            s.append(child)
            return returnSelf(a)
        },
        method("load_parameters", [.required("tensors", .table)], doc: "Copies tensors by name (a table like named_parameters or tensor.load's) into the parameters; every parameter must be present with its size. Returns self.") { a, m in
            var source: [String: Tensor] = [:]
            var bad: String?
            a.lua.forEach(2) {
                guard a.lua.type(-2) == LUA_TSTRING, let k = a.lua.string(-2),
                      let t = a.lua.object(-1, metatable: TensorBinding.metatable, as: Tensor.self) else {
                    bad = "a table of named tensors, got a \(a.lua.typeName(-2)) key with a \(a.lua.typeName(-1)) value"
                    return false
                }
                source[k] = t
                return true
            }
            if let bad { throw a.argumentError(2, bad) }
            try m.loadParameters(source)
            return returnSelf(a)
        },
        // language models
        method("logits", [.required("ids", .tensor)], doc: "Logits [B, T, V] for token ids [B, T] (0-based Hugging Face ids).") { a, _ in
            a.push(try languageModel(a, "logits").logits(a.tensor(2)))
        },
        method("loss", [.required("ids", .tensor), .optional("mask", .tensor)],
               doc: "Mean next-token cross entropy over positions t >= 2 where mask is 1 (a 0-dim tensor; mask defaults to all ones).") { a, _ in
            let lm = try languageModel(a, "loss")
            return a.push(try lm.loss(a.tensor(2), mask: a.isNil(3) ? nil : a.tensor(3)))
        },
        method("logprobs", [.required("ids", .tensor), .optional("mask", .tensor)],
               doc: "Per-sequence sum of log p(token | tokens before it) over positions t >= 2 where mask is 1: a tensor [B]. Right padding (mask 0) changes nothing.") { a, _ in
            let lm = try languageModel(a, "logprobs")
            return a.push(try lm.logprobs(a.tensor(2), mask: a.isNil(3) ? nil : a.tensor(3)))
        },
        method("token_logprobs", [.required("ids", .tensor), .optional("mask", .tensor)],
               doc: "log p(ids[t] | ids[<t]) for t = 2..T as [B, T-1], and the matching mask [B, T-1] (per-token log-probs for RFT).") { a, _ in
            let lm = try languageModel(a, "token_logprobs")
            let (logp, mask) = try lm.tokenLogProbs(a.tensor(2), mask: a.isNil(3) ? nil : a.tensor(3), "token_logprobs")
            a.push(logp)
            a.push(mask)
            return 2
        },
        method("save", [.required("dir", .string), .optional("options", .table)],
               doc: "Writes a Hugging Face folder: config.json and model.safetensors (F32, atomic), or shards with an index when options.max_shard_mb is exceeded. transformers loads it.") { a, _ in
            let lm = try languageModel(a, "save")
            try a.checkOptions(3, allowed: ["max_shard_mb"])
            let mb = try a.optionNumber(3, "max_shard_mb")
            if let mb, !(mb > 0) { throw a.argumentError(3, "a positive max_shard_mb, got \(mb)") }
            try HFCheckpoint.save(lm, to: a.string(2), maxShardBytes: mb.map { Int($0 * 1_048_576) })
            return 0
        },
        method("config", doc: "The model's Hugging Face config as a table (model_type, vocab_size, ...).") { a, _ in
            let lm = try languageModel(a, "config")
            pushJSON(a, lm.configJSON())
            return 1
        },
    ]

    static func pushJSON(_ a: LuaArgs, _ value: Any) {
        switch value {
        case let b as Bool where type(of: value) == Bool.self: a.lua.push(b)
        case let i as Int: a.lua.push(i)
        case let d as Double: a.lua.push(d)
        case let s as String: a.lua.push(s)
        case let list as [Any]:
            a.lua.newTable(arrayCount: Int32(clamping: list.count))
            for (i, v) in list.enumerated() { pushJSON(a, v); a.lua.rawSet(-2, index: i + 1) }
        case let dict as [String: Any]:
            a.lua.newTable(recordCount: Int32(clamping: dict.count))
            for (k, v) in dict where !(v is NSNullLike) { pushJSON(a, v); a.lua.rawSet(-2, field: k) }
        default: a.lua.pushNil()
        }
    }

    static let metamethods: [String: LuaFunction] = {
        let table: [String: LuaFunction] = [
            "__index": LuaFunction("__index", [.required("self", .any), .required("key", .any)], doc: "Methods of a module.") { a in
                _ = try module(a)
                guard a.lua.getMetatable(1) else { a.lua.pushNil(); return 1 }
                _ = a.lua.rawGet(-1, field: "__methods")
                a.lua.pushValue(2)
                lua_rawget(a.lua.L, -2)
                return 1
            },
            "__call": LuaFunction("__call", [.required("self", .any), .required("input", .tensor)],
                                  doc: "m(x): applies the module; a language model gives logits for ids [B, T].") { a in
                a.push(try module(a).forward(a.tensor(2)))
            },
            "__tostring": LuaFunction("__tostring", [.required("self", .any)], doc: "The module tree.") { a in
                let m = try module(a)
                return a.push(m.describeTree() + (m.children.isEmpty ? "" : "\n\(m.parameterCount) parameters"))
            },
            "__gc": LuaFunction("__gc", [.optional("self", .any)], doc: "Releases the module.") { a in
                a.lua.releaseObject(1, metatable: metatable)
                return 0
            },
        ]
        for f in table.values { f.module = "nn" }
        return table
    }()

    // MARK: constructors

    static let constructors: [LuaFunction] = [
        LuaFunction("linear", [.required("in_features", .integer), .required("out_features", .integer), .optional("options", .table, default: "{bias=true}")],
                    doc: "y = x·Wᵀ + b with W [out, in] (PyTorch's nn.Linear, its initialisation).") { a in
            let i = try a.integer(1), o = try a.integer(2)
            try a.checkOptions(3, allowed: ["bias"])
            let bias = try a.optionBoolean(3, "bias") ?? true
            return push(a, try Linear(i, o, bias: bias, using: &a.state.generator))
        },
        LuaFunction("embedding", [.required("count", .integer), .required("dim", .integer)],
                    doc: "A table of count vectors of size dim, looked up by 0-based ids: ids of any size → size + {dim}.") { a in
            push(a, try Embedding(a.integer(1), a.integer(2), using: &a.state.generator))
        },
        LuaFunction("layernorm", [.required("dim", .integer), .optional("options", .table, default: "{eps=1e-5, affine=true}")],
                    doc: "Layer normalisation over the last dimension, with weight and bias.") { a in
            try a.checkOptions(2, allowed: ["eps", "affine"])
            return push(a, try LayerNorm(a.integer(1), eps: Float(try a.optionNumber(2, "eps") ?? 1e-5),
                                         affine: try a.optionBoolean(2, "affine") ?? true))
        },
        LuaFunction("rmsnorm", [.required("dim", .integer), .optional("options", .table, default: "{eps=1e-6}")],
                    doc: "RMS normalisation over the last dimension, with a weight (Llama's RMSNorm).") { a in
            try a.checkOptions(2, allowed: ["eps"])
            return push(a, try RMSNorm(a.integer(1), eps: Float(try a.optionNumber(2, "eps") ?? 1e-6)))
        },
        LuaFunction("dropout", [.optional("p", .number, default: "0.5")],
                    doc: "Zeroes elements with probability p in training mode (scaling the rest by 1/(1-p)); identity in eval mode.") { a in
            let p = try a.number(1, default: 0.5)
            return push(a, try Dropout(Float(p), generator: a.state.generator.split()))
        },
        LuaFunction("gelu", [.optional("approximate", .string, default: "\"none\"")],
                    doc: "GELU as a module: exact, or approximate=\"tanh\" (GPT-2's gelu_new).") { a in
            let mode = try a.string(1, default: "none")
            guard mode == "none" || mode == "tanh" else { throw a.argumentError(1, "\"none\" or \"tanh\", got \"\(mode)\"") }
            return push(a, Activation(mode == "tanh" ? .geluTanh : .gelu))
        },
        LuaFunction("silu", [], doc: "SiLU (x·sigmoid(x)) as a module.") { a in push(a, Activation(.silu)) },
        LuaFunction("relu", [], doc: "ReLU as a module.") { a in push(a, Activation(.relu)) },
        LuaFunction("tanh", [], doc: "tanh as a module.") { a in push(a, Activation(.tanh)) },
        LuaFunction("sigmoid", [], doc: "The logistic sigmoid as a module.") { a in push(a, Activation(.sigmoid)) },
        LuaFunction("sequential", [.optional("modules", .table)], doc: "Modules applied in order: nn.sequential{nn.linear(4, 8), nn.relu(), nn.linear(8, 2)}.") { a in
            var layers: [Module] = []
            if !a.isNil(1) {
                for k in 0..<a.lua.rawLength(1) {
                    _ = a.lua.rawGet(1, index: k + 1)
                    defer { a.lua.pop() }
                    guard let m = a.lua.object(-1, metatable: metatable, as: Module.self) else {
                        throw a.argumentError(1, "a list of modules, got \(a.lua.typeName(-1)) at position \(k + 1)")
                    }
                    layers.append(m)
                }
            }
            return push(a, Sequential(layers))
        },
        LuaFunction("attention", [.required("options", .table)],
                    doc: "Causal multi-head self-attention on [B, T, dim] (GPT-2 layout: c_attn and c_proj): nn.attention{dim=, heads=, dropout=0}.") { a in
            try a.checkOptions(1, allowed: ["dim", "heads", "dropout"])
            let dim = try required(a, 1, "dim"), heads = try required(a, 1, "heads")
            let p = try a.optionNumber(1, "dropout") ?? 0
            return push(a, try CausalSelfAttention.gpt2(dim: dim, heads: heads, dropout: Float(p), using: &a.state.generator))
        },
        LuaFunction("mlp", [.required("options", .table)],
                    doc: "A transformer MLP on [..., dim]: nn.mlp{dim=, hidden=4*dim, kind=\"gelu\"|\"swiglu\", dropout=0} (GPT-2's c_fc/c_proj with tanh GELU, or Llama's gate/up/down).") { a in
            try a.checkOptions(1, allowed: ["dim", "hidden", "kind", "dropout"])
            let dim = try required(a, 1, "dim")
            let hidden = try a.optionInteger(1, "hidden") ?? 4 * dim
            guard hidden > 0 else { throw a.argumentError(1, "a positive hidden size, got \(hidden)") }
            switch try a.optionString(1, "kind") ?? "gelu" {
            case "gelu": return push(a, try MLP.gelu(dim: dim, hidden: hidden, dropout: Float(try a.optionNumber(1, "dropout") ?? 0), using: &a.state.generator))
            case "swiglu": return push(a, try MLP.swiglu(dim: dim, hidden: hidden, using: &a.state.generator))
            case let k: throw a.argumentError(1, "kind \"gelu\" or \"swiglu\", got \"\(k)\"")
            }
        },
        LuaFunction("gpt2", [.required("options", .table)],
                    doc: "A randomly initialised GPT-2: nn.gpt2{vocab=, ctx=, dim=, layers=, heads=, dropout=0, inner=4*dim} (learned positions, pre-norm, tanh GELU, tied embeddings; Hugging Face's initialisation and names).") { a in
            try a.checkOptions(1, allowed: ["vocab", "ctx", "dim", "layers", "heads", "dropout", "inner"])
            var c = GPT2Config(vocab: try required(a, 1, "vocab"), ctx: try required(a, 1, "ctx"), dim: try required(a, 1, "dim"),
                               layers: try required(a, 1, "layers"), heads: try required(a, 1, "heads"))
            c.dropout = Float(try a.optionNumber(1, "dropout") ?? 0)
            c.inner = try a.optionInteger(1, "inner")
            return push(a, try GPT2(c, using: &a.state.generator))
        },
        LuaFunction("llama", [.required("options", .table)],
                    doc: "A randomly initialised Llama-family model: nn.llama{vocab=, ctx=, dim=, layers=, heads=, kv_heads=heads, hidden=, rope_theta=10000, norm_eps=1e-5, tie=false, qkv_bias=false, head_dim=dim/heads} (RMSNorm, RoPE, SwiGLU, grouped-query attention; qkv_bias gives Qwen2's layout).") { a in
            try a.checkOptions(1, allowed: ["vocab", "ctx", "dim", "layers", "heads", "kv_heads", "hidden", "rope_theta", "norm_eps", "tie", "qkv_bias", "head_dim"])
            let heads = try required(a, 1, "heads")
            var c = LlamaConfig(vocab: try required(a, 1, "vocab"), ctx: try required(a, 1, "ctx"), dim: try required(a, 1, "dim"),
                                layers: try required(a, 1, "layers"), heads: heads, kvHeads: try a.optionInteger(1, "kv_heads") ?? heads,
                                hidden: try required(a, 1, "hidden"))
            c.ropeTheta = try a.optionNumber(1, "rope_theta") ?? 10000
            c.normEps = Float(try a.optionNumber(1, "norm_eps") ?? 1e-5)
            c.tie = try a.optionBoolean(1, "tie") ?? false
            c.qkvBias = try a.optionBoolean(1, "qkv_bias") ?? false
            if c.qkvBias { c.modelType = "qwen2" }
            c.headDim = try a.optionInteger(1, "head_dim")
            return push(a, try Llama(c, using: &a.state.generator))
        },
        LuaFunction("load", [.required("dir", .string)],
                    doc: "Loads a Hugging Face model folder (config.json with model.safetensors or a sharded index) of the GPT-2 or Llama family (llama, mistral, qwen2).") { a in
            push(a, try HFCheckpoint.load(a.string(1)))
        },
        LuaFunction("is_module", [.required("value", .any)], doc: "True when value is an nn module.") { a in
            a.push(a.lua.object(1, metatable: metatable, as: Module.self) != nil)
        },
    ]

    static func register(in state: LuaState) {
        state.registerType(metatable: metatable, methods: methods, metamethods: metamethods)
        state.register(module)
    }

    static let module = LuaModule(name: "nn",
                                  doc: "Layers, GPT-2 and Llama models, and Hugging Face model folders. Modules are callable: m(x).",
                                  functions: constructors + methods)
}

/// NSNull without importing Foundation's name into every switch.
private typealias NSNullLike = NSNull

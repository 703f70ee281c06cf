// Llama.swift: the Llama architecture (RMSNorm, rotary positions, SwiGLU, grouped-query attention), the layout of
// Llama, SmolLM, TinyLlama and Mistral, and Qwen2's q/k/v biases; Hugging Face's tensor names
// (`model.layers.0.self_attn.q_proj.weight`, ...).

import Foundation
import TychoTensor

public struct LlamaConfig: Sendable, Equatable {
    public var vocab: Int
    public var ctx: Int
    public var dim: Int
    public var layers: Int
    public var heads: Int
    public var kvHeads: Int
    public var hidden: Int
    public var headDim: Int?
    public var ropeTheta: Double = 10000
    public var ropeScaling: RopeScaling?
    public var normEps: Float = 1e-5
    public var tie: Bool = false
    /// Qwen2's biases on q/k/v.
    public var qkvBias: Bool = false
    public var mlpBias: Bool = false
    public var modelType: String = "llama"
    public var bosTokenID: Int?
    public var eosTokenID: Int?

    public init(vocab: Int, ctx: Int, dim: Int, layers: Int, heads: Int, kvHeads: Int? = nil, hidden: Int) {
        self.vocab = vocab
        self.ctx = ctx
        self.dim = dim
        self.layers = layers
        self.heads = heads
        self.kvHeads = kvHeads ?? heads
        self.hidden = hidden
    }

    public var resolvedHeadDim: Int { headDim ?? dim / max(heads, 1) }

    func validate() throws {
        for (name, v) in [("vocab", vocab), ("ctx", ctx), ("dim", dim), ("layers", layers), ("heads", heads),
                          ("kv_heads", kvHeads), ("hidden", hidden)] where v <= 0 {
            throw TensorError("\(name) must be a positive integer, got \(v)")
        }
        guard heads % kvHeads == 0 else { throw TensorError("heads \(heads) is not a multiple of kv_heads \(kvHeads)") }
        if headDim == nil, dim % heads != 0 { throw TensorError("dim \(dim) is not a multiple of heads \(heads)") }
        guard resolvedHeadDim % 2 == 0 else { throw TensorError("head size \(resolvedHeadDim) must be even for rotary positions") }
        guard ropeTheta > 0, ropeTheta.isFinite else { throw TensorError("rope_theta must be positive, got \(ropeTheta)") }
        guard normEps >= 0 else { throw TensorError("norm_eps must be non-negative, got \(normEps)") }
    }
}

final class LlamaBlock: Module {
    let inputNorm: RMSNorm, attn: CausalSelfAttention, postNorm: RMSNorm, mlp: MLP

    init(inputNorm: RMSNorm, attn: CausalSelfAttention, postNorm: RMSNorm, mlp: MLP) {
        self.inputNorm = inputNorm; self.attn = attn; self.postNorm = postNorm; self.mlp = mlp
    }

    override var children: [(String, Module)] {
        [("input_layernorm", inputNorm), ("self_attn", attn), ("post_attention_layernorm", postNorm), ("mlp", mlp)]
    }
    override var summary: String { "LlamaDecoderLayer" }

    func forward(_ x: Tensor, rope: (cos: Tensor, sin: Tensor), keyMask: Tensor?) throws -> Tensor {
        let h = try x.adding(attn.forward(inputNorm.forward(x), rope: rope, keyMask: keyMask))
        return try h.adding(mlp.forward(postNorm.forward(h)))
    }

    override func copy() throws -> Module {
        LlamaBlock(inputNorm: try inputNorm.copy() as! RMSNorm, attn: try attn.copy() as! CausalSelfAttention,  // swiftlint:disable:this force_cast
                   postNorm: try postNorm.copy() as! RMSNorm, mlp: try mlp.copy() as! MLP).takeMode(of: self)  // swiftlint:disable:this force_cast
    }
}

/// `model.*`: embeddings, decoder layers and the final norm.
final class LlamaBody: Module {
    let embed: Embedding, layers: ModuleList, norm: RMSNorm

    init(embed: Embedding, layers: ModuleList, norm: RMSNorm) {
        self.embed = embed; self.layers = layers; self.norm = norm
    }

    override var children: [(String, Module)] { [("embed_tokens", embed), ("layers", layers), ("norm", norm)] }
    override var summary: String { "LlamaModel" }

    override func copy() throws -> Module {
        LlamaBody(embed: try embed.copy() as! Embedding, layers: try layers.copy() as! ModuleList,  // swiftlint:disable:this force_cast
                  norm: try norm.copy() as! RMSNorm).takeMode(of: self)  // swiftlint:disable:this force_cast
    }
}

public final class Llama: LanguageModel {
    public let config: LlamaConfig
    let body: LlamaBody
    /// The output projection [vocab, dim]; nil when tied to the embeddings.
    let lmHead: Linear?

    init(config: LlamaConfig, body: LlamaBody, lmHead: Linear?) {
        self.config = config
        self.body = body
        self.lmHead = lmHead
    }

    /// A randomly initialised model as Hugging Face initialises one: N(0, 0.02) weights, zero biases, unit norms.
    public convenience init(_ config: LlamaConfig, using g: inout RandomGenerator) throws {
        try config.validate()
        let std: Float = 0.02
        func normal(_ shape: [Int]) throws -> Tensor { try parameter(Tensor.randn(shape, using: &g).multiplying(std)) }
        let embed = Embedding(weight: try normal([config.vocab, config.dim]))
        var blocks: [Module] = []
        for _ in 0..<config.layers {
            let attn = try CausalSelfAttention.llama(dim: config.dim, heads: config.heads, kvHeads: config.kvHeads,
                                                     headDim: config.headDim, qkvBias: config.qkvBias, using: &g)
            let mlp = try MLP.swiglu(dim: config.dim, hidden: config.hidden, bias: config.mlpBias, using: &g)
            try GradMode.with(enabled: false) {
                for lin in attn.projections + mlp.projections {
                    try lin.weight.copy(from: Tensor.randn(lin.weight.shape, using: &g).multiplying(std))
                    lin.bias?.fill(0)
                }
            }
            blocks.append(LlamaBlock(inputNorm: try RMSNorm(config.dim, eps: config.normEps), attn: attn,
                                     postNorm: try RMSNorm(config.dim, eps: config.normEps), mlp: mlp))
        }
        let head = config.tie ? nil : Linear(weight: try normal([config.vocab, config.dim]), bias: nil)
        self.init(config: config, body: LlamaBody(embed: embed, layers: ModuleList(blocks), norm: try RMSNorm(config.dim, eps: config.normEps)),
                  lmHead: head)
    }

    override public var children: [(String, Module)] {
        [("model", body as Module)] + (lmHead.map { [("lm_head", $0 as Module)] } ?? [])
    }
    override public var summary: String {
        "Llama(vocab=\(config.vocab), dim=\(config.dim), layers=\(config.layers), heads=\(config.heads), kv_heads=\(config.kvHeads), hidden=\(config.hidden)\(config.tie ? ", tied" : ""))"
    }
    override public var vocabSize: Int { config.vocab }
    override public var modelType: String { config.modelType }

    override public func copy() throws -> Module {
        Llama(config: config, body: try body.copy() as! LlamaBody,  // swiftlint:disable:this force_cast
              lmHead: try lmHead.map { try $0.copy() as! Linear }).takeMode(of: self)  // swiftlint:disable:this force_cast
    }

    /// Final hidden states [B, T, dim] (after the last norm); positions start at `start`.
    public func hiddenStates(_ ids: Tensor, start: Int = 0, keyMask: Tensor? = nil) throws -> Tensor {
        let t = ids.shape[1]
        let rope = try Functional.ropeTables(headDim: config.resolvedHeadDim, start: start, count: t,
                                             theta: config.ropeTheta, scaling: config.ropeScaling)
        var x = try body.embed.forward(ids)
        for case let block as LlamaBlock in body.layers.items { x = try block.forward(x, rope: rope, keyMask: keyMask) }
        return try body.norm.forward(x)
    }

    override public func computeLogits(_ ids: Tensor) throws -> Tensor {
        let h = try hiddenStates(ids)
        return try Functional.linear(h, weight: lmHead?.weight ?? body.embed.weight, bias: nil, layout: .outIn)
    }

    override public func configJSON() -> [String: Any] {
        let arch = ["llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM", "mistral": "MistralForCausalLM"][config.modelType] ?? "LlamaForCausalLM"
        var j: [String: Any] = [
            "model_type": config.modelType, "architectures": [arch],
            "vocab_size": config.vocab, "max_position_embeddings": config.ctx, "hidden_size": config.dim,
            "num_hidden_layers": config.layers, "num_attention_heads": config.heads, "num_key_value_heads": config.kvHeads,
            "intermediate_size": config.hidden, "rope_theta": config.ropeTheta, "rms_norm_eps": Double(config.normEps),
            "tie_word_embeddings": config.tie, "hidden_act": "silu", "torch_dtype": "float32", "initializer_range": 0.02,
            "use_cache": true,
        ]
        if config.modelType == "llama" || config.modelType == "mistral" {
            j["attention_bias"] = config.qkvBias
            j["mlp_bias"] = config.mlpBias
        }
        if let hd = config.headDim { j["head_dim"] = hd }
        // transformers 5 reads rope_parameters; 4.x reads rope_theta and rope_scaling. Write both.
        var ropeParameters: [String: Any] = ["rope_theta": config.ropeTheta, "rope_type": "default"]
        if let s = config.ropeScaling {
            ropeParameters = ["rope_theta": config.ropeTheta, "rope_type": "llama3", "factor": s.factor, "low_freq_factor": s.lowFreqFactor,
                              "high_freq_factor": s.highFreqFactor, "original_max_position_embeddings": Int(s.originalMaxPositions)]
        }
        j["rope_parameters"] = ropeParameters
        if let s = config.ropeScaling {
            j["rope_scaling"] = ["rope_type": "llama3", "factor": s.factor, "low_freq_factor": s.lowFreqFactor,
                                 "high_freq_factor": s.highFreqFactor, "original_max_position_embeddings": Int(s.originalMaxPositions)]
        } else {
            j["rope_scaling"] = NSNull()
        }
        j["bos_token_id"] = config.bosTokenID.map { $0 as Any } ?? NSNull()
        j["eos_token_id"] = config.eosTokenID.map { $0 as Any } ?? NSNull()
        return j
    }
}

// GPT2.swift: the GPT-2 architecture (learned positions, pre-norm blocks, tanh GELU, tied embeddings), with
// Hugging Face's tensor names (`transformer.h.0.attn.c_attn.weight`, ...) and Conv1D weight layout.

import Foundation
import TychoTensor

public struct GPT2Config: Sendable, Equatable {
    public var vocab: Int
    public var ctx: Int
    public var dim: Int
    public var layers: Int
    public var heads: Int
    public var inner: Int?
    public var dropout: Float = 0
    public var eps: Float = 1e-5
    public var activation: Activation.Kind = .geluTanh
    public var bosTokenID: Int?
    public var eosTokenID: Int?

    public init(vocab: Int, ctx: Int, dim: Int, layers: Int, heads: Int, inner: Int? = nil, dropout: Float = 0) {
        self.vocab = vocab
        self.ctx = ctx
        self.dim = dim
        self.layers = layers
        self.heads = heads
        self.inner = inner
        self.dropout = dropout
    }

    func validate() throws {
        for (name, v) in [("vocab", vocab), ("ctx", ctx), ("dim", dim), ("layers", layers), ("heads", heads)] where v <= 0 {
            throw TensorError("\(name) must be a positive integer, got \(v)")
        }
        guard dim % heads == 0 else { throw TensorError("dim \(dim) is not a multiple of heads \(heads)") }
        if let inner, inner <= 0 { throw TensorError("inner size must be positive, got \(inner)") }
        guard dropout >= 0, dropout < 1 else { throw TensorError("dropout must be in [0, 1), got \(dropout)") }
    }
}

final class GPT2Block: Module {
    let ln1: LayerNorm, attn: CausalSelfAttention, ln2: LayerNorm, mlp: MLP

    init(ln1: LayerNorm, attn: CausalSelfAttention, ln2: LayerNorm, mlp: MLP) {
        self.ln1 = ln1; self.attn = attn; self.ln2 = ln2; self.mlp = mlp
    }

    override var children: [(String, Module)] { [("ln_1", ln1), ("attn", attn), ("ln_2", ln2), ("mlp", mlp)] }
    override var summary: String { "GPT2Block" }

    func forward(_ x: Tensor, keyMask: Tensor?) throws -> Tensor {
        let h = try x.adding(attn.forward(ln1.forward(x), rope: nil, keyMask: keyMask))
        return try h.adding(mlp.forward(ln2.forward(h)))
    }

    override func forward(_ x: Tensor) throws -> Tensor { try forward(x, keyMask: nil) }

    override func copy() throws -> Module {
        GPT2Block(ln1: try ln1.copy() as! LayerNorm, attn: try attn.copy() as! CausalSelfAttention,  // swiftlint:disable:this force_cast
                  ln2: try ln2.copy() as! LayerNorm, mlp: try mlp.copy() as! MLP).takeMode(of: self)  // swiftlint:disable:this force_cast
    }
}

/// `transformer.*`: embeddings, blocks and the final norm.
final class GPT2Body: Module {
    let wte: Embedding, wpe: Embedding, h: ModuleList, lnF: LayerNorm, drop: Dropout?

    init(wte: Embedding, wpe: Embedding, h: ModuleList, lnF: LayerNorm, drop: Dropout?) {
        self.wte = wte; self.wpe = wpe; self.h = h; self.lnF = lnF; self.drop = drop
    }

    override var children: [(String, Module)] { [("wte", wte), ("wpe", wpe), ("h", h), ("ln_f", lnF)] }
    override var summary: String { "GPT2Model" }

    override func copy() throws -> Module {
        GPT2Body(wte: try wte.copy() as! Embedding, wpe: try wpe.copy() as! Embedding,  // swiftlint:disable:this force_cast
                 h: try h.copy() as! ModuleList, lnF: try lnF.copy() as! LayerNorm,  // swiftlint:disable:this force_cast
                 drop: try drop.map { try $0.copy() as! Dropout }).takeMode(of: self)  // swiftlint:disable:this force_cast
    }
}

public final class GPT2: LanguageModel {
    public let config: GPT2Config
    let body: GPT2Body

    init(config: GPT2Config, body: GPT2Body) {
        self.config = config
        self.body = body
    }

    /// A randomly initialised GPT-2 as Hugging Face initialises one: N(0, 0.02) weights, zero biases, unit norms,
    /// and the residual projections (attn.c_proj, mlp.c_proj) scaled by 1/sqrt(2·layers).
    public convenience init(_ config: GPT2Config, using g: inout RandomGenerator) throws {
        try config.validate()
        let (c, std) = (config.dim, Float(0.02))
        func normal(_ shape: [Int], _ s: Float) throws -> Tensor { try parameter(Tensor.randn(shape, using: &g).multiplying(s)) }
        let wte = Embedding(weight: try normal([config.vocab, c], std))
        let wpe = Embedding(weight: try normal([config.ctx, c], std))
        var blocks: [Module] = []
        let projStd = std / Float(2 * config.layers).squareRoot()
        for _ in 0..<config.layers {
            let attn = try CausalSelfAttention.gpt2(dim: c, heads: config.heads, dropout: config.dropout, using: &g)
            let mlp = try MLP.gelu(dim: c, hidden: config.inner ?? 4 * c, activation: config.activation, dropout: config.dropout, using: &g)
            try GradMode.with(enabled: false) {
                for (lin, s) in [(attn.projections[0], std), (attn.projections[1], projStd), (mlp.projections[0], std), (mlp.projections[1], projStd)] {
                    try lin.weight.copy(from: Tensor.randn(lin.weight.shape, using: &g).multiplying(s))
                    lin.bias?.fill(0)
                }
            }
            blocks.append(GPT2Block(ln1: try LayerNorm(c, eps: config.eps), attn: attn, ln2: try LayerNorm(c, eps: config.eps), mlp: mlp))
        }
        let drop = config.dropout > 0 ? try Dropout(config.dropout, generator: g.split()) : nil
        self.init(config: config, body: GPT2Body(wte: wte, wpe: wpe, h: ModuleList(blocks), lnF: try LayerNorm(c, eps: config.eps), drop: drop))
    }

    override public var children: [(String, Module)] { [("transformer", body)] }
    override public var summary: String {
        "GPT2(vocab=\(config.vocab), ctx=\(config.ctx), dim=\(config.dim), layers=\(config.layers), heads=\(config.heads))"
    }
    override public var vocabSize: Int { config.vocab }
    override public var maxPositions: Int? { config.ctx }
    override public var modelType: String { "gpt2" }

    override public func copy() throws -> Module {
        GPT2(config: config, body: try body.copy() as! GPT2Body).takeMode(of: self)  // swiftlint:disable:this force_cast
    }

    /// Final hidden states [B, T, dim] (after ln_f).
    public func hiddenStates(_ ids: Tensor, keyMask: Tensor? = nil) throws -> Tensor {
        let t = ids.shape[1]
        let positions = try Tensor.arange(start: 0, end: Double(t), step: 1)
        var x = try body.wte.forward(ids).adding(body.wpe.forward(positions))
        if let drop = body.drop { x = try drop.forward(x) }
        for case let block as GPT2Block in body.h.items { x = try block.forward(x, keyMask: keyMask) }
        return try body.lnF.forward(x)
    }

    override public func computeLogits(_ ids: Tensor) throws -> Tensor {
        // Tied head: logits = h · wteᵀ.
        try Functional.linear(hiddenStates(ids), weight: body.wte.weight, bias: nil, layout: .outIn)
    }

    override public func configJSON() -> [String: Any] {
        var j: [String: Any] = [
            "model_type": "gpt2", "architectures": ["GPT2LMHeadModel"],
            "vocab_size": config.vocab, "n_positions": config.ctx, "n_ctx": config.ctx, "n_embd": config.dim,
            "n_layer": config.layers, "n_head": config.heads, "layer_norm_epsilon": Double(config.eps),
            "activation_function": config.activation == .geluTanh ? "gelu_new" : config.activation.rawValue,
            "resid_pdrop": Double(config.dropout), "embd_pdrop": Double(config.dropout), "attn_pdrop": Double(config.dropout),
            "tie_word_embeddings": true, "torch_dtype": "float32", "initializer_range": 0.02,
            "scale_attn_weights": true, "use_cache": true,
        ]
        j["n_inner"] = config.inner.map { $0 as Any } ?? NSNull()
        j["bos_token_id"] = config.bosTokenID.map { $0 as Any } ?? NSNull()
        j["eos_token_id"] = config.eosTokenID.map { $0 as Any } ?? NSNull()
        return j
    }
}

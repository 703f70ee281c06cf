// Attention.swift: causal multi-head self-attention (GPT-2's fused c_attn, or Llama's q/k/v/o projections with
// rotary embeddings and grouped-query heads) and the transformer MLPs (GPT-2's GELU MLP, Llama's SwiGLU).

import TychoTensor

public final class CausalSelfAttention: Module {
    public enum Style: Sendable { case gpt2, llama }

    public let style: Style
    public let heads: Int
    public let kvHeads: Int
    public let headDim: Int
    /// Projections: GPT-2 uses [cAttn, cProj]; Llama [q, k, v, o].
    let projections: [Linear]
    let dropout: Dropout?

    init(style: Style, heads: Int, kvHeads: Int, headDim: Int, projections: [Linear], dropout: Dropout?) {
        self.style = style
        self.heads = heads
        self.kvHeads = kvHeads
        self.headDim = headDim
        self.projections = projections
        self.dropout = dropout
    }

    /// GPT-2 attention: c_attn [dim, 3·dim] and c_proj [dim, dim] in Conv1D layout, with biases.
    public static func gpt2(dim: Int, heads: Int, dropout: Float, using g: inout RandomGenerator) throws -> CausalSelfAttention {
        guard heads > 0, dim > 0, dim % heads == 0 else {
            throw TensorError("attention: dim \(dim) must be a positive multiple of heads \(heads)")
        }
        let cAttn = try Linear(dim, 3 * dim, bias: true, layout: .inOut, using: &g)
        let cProj = try Linear(dim, dim, bias: true, layout: .inOut, using: &g)
        return CausalSelfAttention(style: .gpt2, heads: heads, kvHeads: heads, headDim: dim / heads, projections: [cAttn, cProj],
                                   dropout: dropout > 0 ? try Dropout(dropout, generator: g.split()) : nil)
    }

    /// Llama attention: q/k/v/o projections ([out, in]); q/k/v biases for Qwen2.
    public static func llama(dim: Int, heads: Int, kvHeads: Int, headDim: Int? = nil, qkvBias: Bool, outBias: Bool = false,
                             using g: inout RandomGenerator) throws -> CausalSelfAttention {
        let hd = headDim ?? (heads > 0 ? dim / heads : 0)
        guard heads > 0, kvHeads > 0, heads % kvHeads == 0, hd > 0, hd % 2 == 0 else {
            throw TensorError("attention: heads \(heads) must be a positive multiple of kv_heads \(kvHeads), with an even head size (got \(hd))")
        }
        if headDim == nil, dim % heads != 0 { throw TensorError("attention: dim \(dim) is not a multiple of heads \(heads)") }
        let q = try Linear(dim, heads * hd, bias: qkvBias, using: &g)
        let k = try Linear(dim, kvHeads * hd, bias: qkvBias, using: &g)
        let v = try Linear(dim, kvHeads * hd, bias: qkvBias, using: &g)
        let o = try Linear(heads * hd, dim, bias: outBias, using: &g)
        return CausalSelfAttention(style: .llama, heads: heads, kvHeads: kvHeads, headDim: hd, projections: [q, k, v, o], dropout: nil)
    }

    override public var children: [(String, Module)] {
        switch style {
        case .gpt2: return [("c_attn", projections[0]), ("c_proj", projections[1])]
        case .llama: return zip(["q_proj", "k_proj", "v_proj", "o_proj"], projections).map { ($0, $1 as Module) }
        }
    }

    override public var summary: String {
        "CausalSelfAttention(heads=\(heads), kv_heads=\(kvHeads), head_dim=\(headDim))"
    }

    override public func copy() throws -> Module {
        CausalSelfAttention(style: style, heads: heads, kvHeads: kvHeads, headDim: headDim,
                            projections: try projections.map { try $0.copy() as! Linear },  // swiftlint:disable:this force_cast
                            dropout: try dropout.map { try $0.copy() as! Dropout }).takeMode(of: self)  // swiftlint:disable:this force_cast
    }

    /// x: [B, T, dim] → [B, T, dim]. `rope` tables ([T, headDim]) for Llama style; `keyMask` [B, T].
    public func forward(_ x: Tensor, rope: (cos: Tensor, sin: Tensor)?, keyMask: Tensor? = nil) throws -> Tensor {
        guard x.rank == 3 else { throw TensorError("attention: input must be [batch, time, dim], got size \(Tensor.describe(x.shape))") }
        let (b, t) = (x.shape[0], x.shape[1])
        let o: Tensor                                                         // [B, H, T, D]
        switch style {
        case .gpt2:
            let qkv = try projections[0].forward(x)                              // [B, T, 3C]: q, k, v side by side
            if let rope {
                let heads3 = try qkv.view([b, t, 3, heads, headDim])
                let q = try Functional.rope(heads3.select(2, 0).transpose(1, 2), cos: rope.cos, sin: rope.sin)
                let k = try Functional.rope(heads3.select(2, 1).transpose(1, 2), cos: rope.cos, sin: rope.sin)
                o = try Functional.causalAttention(q: q, k: k, v: heads3.select(2, 2).transpose(1, 2), keyMask: keyMask)
            } else {
                // One attention node reads q, k, v from qkv (and its backward writes one gradient for all three).
                o = try Functional.causalAttention(qkv: qkv, heads: heads, keyMask: keyMask)
            }
        case .llama:
            var q = try projections[0].forward(x).view([b, t, heads, headDim]).transpose(1, 2)
            var k = try projections[1].forward(x).view([b, t, kvHeads, headDim]).transpose(1, 2)
            let v = try projections[2].forward(x).view([b, t, kvHeads, headDim]).transpose(1, 2)
            if let rope {
                q = try Functional.rope(q, cos: rope.cos, sin: rope.sin)
                k = try Functional.rope(k, cos: rope.cos, sin: rope.sin)
            }
            o = try Functional.causalAttention(q: q, k: k, v: v, keyMask: keyMask)
        }
        let merged = try o.transpose(1, 2).reshape([b, t, heads * headDim])
        let out = try projections[style == .gpt2 ? 1 : 3].forward(merged)
        return try dropout?.forward(out) ?? out
    }

    override public func forward(_ x: Tensor) throws -> Tensor {
        guard style == .gpt2 else {
            throw TensorError("attention: a Llama-style attention needs rotary tables; call it through its model")
        }
        return try forward(x, rope: nil)
    }
}

public final class MLP: Module {
    public enum Kind: Sendable { case gelu, swiglu }
    public let kind: Kind
    /// GELU: [c_fc, c_proj] (Conv1D layout); SwiGLU: [gate, up, down].
    let projections: [Linear]
    let activation: Activation
    let dropout: Dropout?

    init(kind: Kind, projections: [Linear], activation: Activation, dropout: Dropout?) {
        self.kind = kind
        self.projections = projections
        self.activation = activation
        self.dropout = dropout
    }

    /// GPT-2's MLP: c_fc [dim, hidden], activation (tanh GELU by default), c_proj [hidden, dim], with biases.
    public static func gelu(dim: Int, hidden: Int, activation: Activation.Kind = .geluTanh, dropout: Float,
                            using g: inout RandomGenerator) throws -> MLP {
        let fc = try Linear(dim, hidden, bias: true, layout: .inOut, using: &g)
        let proj = try Linear(hidden, dim, bias: true, layout: .inOut, using: &g)
        return MLP(kind: .gelu, projections: [fc, proj], activation: Activation(activation),
                   dropout: dropout > 0 ? try Dropout(dropout, generator: g.split()) : nil)
    }

    /// Llama's MLP: down(silu(gate(x)) · up(x)).
    public static func swiglu(dim: Int, hidden: Int, bias: Bool = false, using g: inout RandomGenerator) throws -> MLP {
        let gate = try Linear(dim, hidden, bias: bias, using: &g)
        let up = try Linear(dim, hidden, bias: bias, using: &g)
        let down = try Linear(hidden, dim, bias: bias, using: &g)
        return MLP(kind: .swiglu, projections: [gate, up, down], activation: Activation(.silu), dropout: nil)
    }

    override public var children: [(String, Module)] {
        switch kind {
        case .gelu: return [("c_fc", projections[0]), ("c_proj", projections[1])]
        case .swiglu: return zip(["gate_proj", "up_proj", "down_proj"], projections).map { ($0, $1 as Module) }
        }
    }

    override public var summary: String { kind == .gelu ? "MLP(\(activation.summary))" : "MLP(SwiGLU)" }

    override public func forward(_ x: Tensor) throws -> Tensor {
        switch kind {
        case .gelu:
            let h = try activation.forward(projections[0].forward(x))
            let out = try projections[1].forward(h)
            return try dropout?.forward(out) ?? out
        case .swiglu:
            let h = try projections[0].forward(x).silu().multiplying(projections[1].forward(x))
            return try projections[2].forward(h)
        }
    }

    override public func copy() throws -> Module {
        MLP(kind: kind, projections: try projections.map { try $0.copy() as! Linear },  // swiftlint:disable:this force_cast
            activation: activation, dropout: try dropout.map { try $0.copy() as! Dropout }).takeMode(of: self)  // swiftlint:disable:this force_cast
    }
}

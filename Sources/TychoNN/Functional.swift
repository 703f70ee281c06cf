// Functional.swift: the differentiable building blocks of the layers and models (linear, norms, embedding,
// causal attention, rotary embeddings, token log-probabilities, dropout), as functions of tensors.
//
// Each function checks its arguments and throws TensorError with a message for the user. Gradients flow through
// TychoTensor's autograd: either by composing recorded tensor ops, or through one recorded node whose backward is
// written beside its forward (the fused kernels in Fused*.swift).

import Foundation
import TychoTensor

/// How a linear layer's weight is stored.
public enum WeightLayout: Sendable {
    /// `[out, in]`: PyTorch's nn.Linear (Llama, Qwen2); y = x·Wᵀ + b.
    case outIn
    /// `[in, out]`: GPT-2's Conv1D; y = x·W + b.
    case inOut
}

public enum Functional {
    static func sizes(_ t: Tensor) -> String { Tensor.describe(t.shape) }

    /// y = x·Wᵀ + b (`.outIn`) or y = x·W + b (`.inOut`) over the last dimension of x.
    public static func linear(_ x: Tensor, weight: Tensor, bias: Tensor?, layout: WeightLayout = .outIn) throws -> Tensor {
        guard weight.rank == 2 else { throw TensorError("linear: weight must be 2-dimensional, got size \(sizes(weight))") }
        let (inFeatures, outFeatures) = layout == .outIn ? (weight.shape[1], weight.shape[0]) : (weight.shape[0], weight.shape[1])
        guard x.rank >= 1, x.shape[x.rank - 1] == inFeatures else {
            throw TensorError("linear: input of size \(sizes(x)) does not end in \(inFeatures) features (weight \(sizes(weight)))")
        }
        if let bias, bias.shape != [outFeatures] {
            throw TensorError("linear: bias of size \(sizes(bias)) given for \(outFeatures) outputs")
        }
        return try FusedLinear.forward(x, weight: weight, bias: bias, layout: layout)
    }

    /// Layer normalisation over the last dimension: (x - mean) / sqrt(var + eps) · weight + bias (biased variance).
    public static func layerNorm(_ x: Tensor, weight: Tensor?, bias: Tensor?, eps: Float) throws -> Tensor {
        guard x.rank >= 1 else { throw TensorError("layer_norm: input must have at least 1 dimension") }
        let c = x.shape[x.rank - 1]
        if let weight, weight.shape != [c] { throw TensorError("layer_norm: weight of size \(sizes(weight)) given for \(c) features") }
        if let bias, bias.shape != [c] { throw TensorError("layer_norm: bias of size \(sizes(bias)) given for \(c) features") }
        guard eps >= 0, eps.isFinite else { throw TensorError("layer_norm: eps must be a non-negative number, got \(eps)") }
        return try FusedNorm.layerNorm(x, weight: weight, bias: bias, eps: eps)
    }

    /// RMS normalisation over the last dimension: x / sqrt(mean(x²) + eps) · weight (Llama's RMSNorm).
    public static func rmsNorm(_ x: Tensor, weight: Tensor?, eps: Float) throws -> Tensor {
        guard x.rank >= 1 else { throw TensorError("rms_norm: input must have at least 1 dimension") }
        let c = x.shape[x.rank - 1]
        if let weight, weight.shape != [c] { throw TensorError("rms_norm: weight of size \(sizes(weight)) given for \(c) features") }
        guard eps >= 0, eps.isFinite else { throw TensorError("rms_norm: eps must be a non-negative number, got \(eps)") }
        return try FusedNorm.rmsNorm(x, weight: weight, eps: eps)
    }

    /// Rows of `weight` ([V, C]) picked by token ids (0-based values, any shape): the result has size ids + [C].
    public static func embedding(_ ids: Tensor, weight: Tensor) throws -> Tensor {
        guard weight.rank == 2 else { throw TensorError("embedding: weight must be 2-dimensional, got size \(sizes(weight))") }
        return try FusedEmbedding.forward(ids, weight: weight)
    }

    /// Causal scaled dot-product attention. q: [B, H, Tq, D]; k, v: [B, Hkv, Tk, D] with H a multiple of Hkv
    /// (grouped-query attention: query head h reads key/value head h / (H / Hkv)). Query i (0-based) sits at
    /// position i + queryOffset and attends keys 0...i + queryOffset; `keyMask` ([B, Tk], 1 = real, 0 = padding)
    /// hides padded keys. Scores are scaled by `scale` (default 1/sqrt(D)). A query that can see no key gets zeros.
    public static func causalAttention(q: Tensor, k: Tensor, v: Tensor, scale: Float? = nil,
                                       queryOffset: Int = 0, keyMask: Tensor? = nil) throws -> Tensor {
        guard q.rank == 4, k.rank == 4, v.rank == 4 else {
            throw TensorError("attention: q, k and v must be 4-dimensional [batch, heads, time, head_dim], got sizes \(sizes(q)), \(sizes(k)), \(sizes(v))")
        }
        let (b, h, _, d) = (q.shape[0], q.shape[1], q.shape[2], q.shape[3])
        let (hkv, tk) = (k.shape[1], k.shape[2])
        guard k.shape[0] == b, k.shape[3] == d, v.shape == k.shape else {
            throw TensorError("attention: sizes of q \(sizes(q)), k \(sizes(k)) and v \(sizes(v)) do not match")
        }
        guard hkv > 0, h % hkv == 0 else {
            throw TensorError("attention: \(h) query heads are not a multiple of \(hkv) key/value heads")
        }
        guard queryOffset >= 0 else { throw TensorError("attention: negative query offset \(queryOffset)") }
        if let keyMask, keyMask.shape != [b, tk] {
            throw TensorError("attention: key mask of size \(sizes(keyMask)) given for batch \(b) and \(tk) keys")
        }
        return try FusedAttention.forward(q: q, k: k, v: v, scale: scale ?? 1 / Float(d).squareRoot(),
                                          queryOffset: queryOffset, keyMask: keyMask)
    }

    /// Causal self-attention over a fused projection: qkv [B, T, 3·H·D] holds q, k and v side by side, each [H, D]
    /// per position (GPT-2's c_attn output); returns the heads' outputs as [B, H, T, D], as causalAttention(q:k:v:)
    /// of qkv's three [B, T, H, D] thirds transposed would, bit for bit. Its backward writes one [B, T, 3·H·D]
    /// gradient instead of three full-size ones that the graph would then add.
    public static func causalAttention(qkv: Tensor, heads: Int, scale: Float? = nil, keyMask: Tensor? = nil) throws -> Tensor {
        guard qkv.rank == 3, heads > 0, qkv.shape[2] % (3 * heads) == 0 else {
            throw TensorError("attention: qkv must be [batch, time, 3 * heads * head_dim] for \(heads) heads, got size \(sizes(qkv))")
        }
        let (b, t, d) = (qkv.shape[0], qkv.shape[1], qkv.shape[2] / (3 * heads))
        if let keyMask, keyMask.shape != [b, t] {
            throw TensorError("attention: key mask of size \(sizes(keyMask)) given for batch \(b) and \(t) keys")
        }
        return try FusedAttention.forward(qkv: qkv, heads: heads, scale: scale ?? 1 / Float(d).squareRoot(), keyMask: keyMask)
    }

    /// The rotary-embedding tables of Hugging Face's Llama for positions `start ..< start + count`: cos and sin of
    /// size [count, D], each row holding the angles twice (cat(freqs, freqs)); inv_freq_i = theta^(-2i/D).
    /// `scaling` applies Llama 3's frequency scaling when given.
    public static func ropeTables(headDim d: Int, start: Int, count: Int, theta: Double,
                                  scaling: RopeScaling? = nil) throws -> (cos: Tensor, sin: Tensor) {
        guard d > 0, d % 2 == 0 else { throw TensorError("rope: head dimension \(d) must be even") }
        guard start >= 0, count >= 0 else { throw TensorError("rope: bad position range") }
        var inv = (0..<(d / 2)).map { i in 1 / Foundation.pow(theta, Double(2 * i) / Double(d)) }
        if let scaling { inv = scaling.apply(inv) }
        // Angles as Hugging Face computes them: float32 inv_freq times float32 positions.
        let inv32 = inv.map { Float($0) }
        var cosv = [Float](repeating: 0, count: count * d), sinv = cosv
        for t in 0..<count {
            for i in 0..<(d / 2) {
                let angle = Float(start + t) * inv32[i]
                let c = Foundation.cos(angle), s = Foundation.sin(angle)
                cosv[t * d + i] = c; cosv[t * d + i + d / 2] = c
                sinv[t * d + i] = s; sinv[t * d + i + d / 2] = s
            }
        }
        return (try Tensor(shape: [count, d], values: cosv), try Tensor(shape: [count, d], values: sinv))
    }

    /// Rotary position embedding of x [B, H, T, D] with tables [T, D]: x·cos + rotate_half(x)·sin, where
    /// rotate_half(x) = cat(-x[..., D/2:], x[..., :D/2]) (Hugging Face's convention).
    public static func rope(_ x: Tensor, cos: Tensor, sin: Tensor) throws -> Tensor {
        guard x.rank == 4 else { throw TensorError("rope: input must be [batch, heads, time, head_dim], got size \(sizes(x))") }
        let (t, d) = (x.shape[2], x.shape[3])
        guard d % 2 == 0 else { throw TensorError("rope: head dimension \(d) must be even") }
        guard cos.shape == [t, d], sin.shape == [t, d] else {
            throw TensorError("rope: tables of size \(sizes(cos)) and \(sizes(sin)) given for \(t) positions of \(d) dimensions")
        }
        return try FusedRope.forward(x, cos: cos, sin: sin)
    }

    /// log softmax(logits)[target] for every row: logits [..., V], targets [...] (0-based ids) → [...].
    public static func tokenLogProbs(_ logits: Tensor, targets: Tensor) throws -> Tensor {
        guard logits.rank >= 1, Array(logits.shape.dropLast()) == targets.shape else {
            throw TensorError("token_logprobs: targets of size \(sizes(targets)) do not match logits of size \(sizes(logits))")
        }
        return try FusedCrossEntropy.tokenLogProbs(logits, targets: targets)
    }

    /// Inverted dropout: zeroes each element with probability p and scales the rest by 1/(1-p); identity when
    /// not training or p == 0.
    public static func dropout(_ x: Tensor, p: Float, training: Bool, generator: inout RandomGenerator) throws -> Tensor {
        guard p >= 0, p < 1 else { throw TensorError("dropout: probability must be in [0, 1), got \(p)") }
        if !training || p == 0 { return x }
        return try FusedDropout.forward(x, p: p, generator: &generator)
    }
}

/// Llama 3's rope scaling (`rope_scaling: {"rope_type": "llama3", factor, low_freq_factor, high_freq_factor,
/// original_max_position_embeddings}`), as transformers' `_compute_llama3_parameters`.
public struct RopeScaling: Sendable, Equatable {
    public var factor: Double
    public var lowFreqFactor: Double
    public var highFreqFactor: Double
    public var originalMaxPositions: Double

    public init(factor: Double, lowFreqFactor: Double, highFreqFactor: Double, originalMaxPositions: Double) {
        self.factor = factor
        self.lowFreqFactor = lowFreqFactor
        self.highFreqFactor = highFreqFactor
        self.originalMaxPositions = originalMaxPositions
    }

    func apply(_ inv: [Double]) -> [Double] {
        let lowWavelen = originalMaxPositions / lowFreqFactor
        let highWavelen = originalMaxPositions / highFreqFactor
        return inv.map { f in
            let wavelen = 2 * Double.pi / f
            if wavelen < highWavelen { return f }
            if wavelen > lowWavelen { return f / factor }
            let smooth = (originalMaxPositions / wavelen - lowFreqFactor) / (highFreqFactor - lowFreqFactor)
            return (1 - smooth) * f / factor + smooth * f
        }
    }
}

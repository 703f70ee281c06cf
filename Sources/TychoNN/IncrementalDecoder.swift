// IncrementalDecoder.swift: the forward pass of GPT-2 and Llama over new tokens only, with per-layer key/value
// caches (KVCache.swift): what generation runs at every step. The models themselves are untouched and stay usable
// as they are; a decoder reads their weights.
//
// Shapes: S slots, N new tokens in the step (all slots' together), C model dim, H heads, Hkv kv heads, D head
// size, V vocabulary, R logit rows asked for.
//   x            [N, C]         the new tokens of every slot in the step, slot after slot
//   q            [N, H·D], k, v [N, Hkv·D]   (GPT-2: column blocks of c_attn's [N, 3C])
//   logits       [R, V]         the last `logitRows` rows of each entry, in entry order
// A step: embeddings (GPT-2 adds the learned position of each row: its slot's length plus its index; Llama
// rotates q and k by the same per-row positions), then per layer: norm, projections batched over all N rows,
// keys and values appended to each slot's cache, attention of each slot's rows over its own cache, output
// projection, MLP batched over all N rows; the final norm and head only on the rows whose logits are asked for.
//
// Exactness (what the tests check bit for bit):
// - Every batched operation is row-wise (norms, activations, residual adds) or a product on CDecodeKernels'
//   gemm, which sums each element in a fixed order whatever the number of rows (OpenBLAS does not: its
//   small-matrix and blocked kernels round differently once k exceeds its block, and which one runs depends on
//   m·n·k). So a slot's rows give the same bits whatever the other slots hold. The weights are copied once, when
//   the decoder is made, into the kernel's packed layout (as [in, out]).
// - A slot's prompt rows attend through FusedAttention (one call per slot, as `m:logits` of that prompt alone);
//   later rows (decode steps, and draft tokens) through DecodeAttention one query row at a time, so verifying K
//   draft tokens at once gives the logits of K single steps bit for bit.
// - Against `m:logits` of the whole sequence (BLAS products), logits differ by float rounding only: about 1e-6.
// What it refuses to do: dropout (generation runs the model as in eval mode), autograd (it records nothing), and
// positions beyond GPT-2's learned table.

import Foundation
import TychoTensor

/// The new tokens of one slot in a decoder step.
public struct DecodeEntry: Sendable, Equatable {
    /// The cache slot (0-based).
    public var slot: Int
    /// Token ids appended to the slot, at positions length..<length + count.
    public var tokens: [Int]
    /// Logits are returned for the last `logitRows` tokens (1 for plain decoding, K + 1 to verify K drafts).
    public var logitRows: Int
    /// Leading tokens attended as a prompt (FusedAttention); only for an empty slot. nil: all tokens when the slot
    /// is empty, else none.
    public var prefillRows: Int?

    public init(slot: Int, tokens: [Int], logitRows: Int = 1, prefillRows: Int? = nil) {
        self.slot = slot
        self.tokens = tokens
        self.logitRows = logitRows
        self.prefillRows = prefillRows
    }
}

public final class IncrementalDecoder {
    public let model: LanguageModel
    public let cache: KVCache
    public let vocabSize: Int
    private let arch: Arch

    /// y = x·W + b with W packed (DecodeLinear).
    struct Projection {
        let weight: PackedWeight
        let bias: Tensor?

        /// A weight stored [out, in] (`.outIn`) or [in, out] (`.inOut`), packed as [in, out].
        init(_ weight: Tensor, bias: Tensor?, layout: WeightLayout) throws {
            self.weight = try PackedWeight(weight, transposed: layout == .outIn)
            self.bias = bias
        }

        init(_ lin: Linear) throws {
            try self.init(lin.weight, bias: lin.bias, layout: lin.layout)
        }

        func callAsFunction(_ x: Tensor) throws -> Tensor {
            try DecodeLinear.forward(x, weight: weight, bias: bias)
        }
    }

    struct GPT2Layer {
        let ln1: LayerNorm, cAttn: Projection, cProj: Projection, ln2: LayerNorm, fc: Projection, proj: Projection
        let activation: Activation
    }

    struct LlamaLayer {
        let inputNorm: RMSNorm, q: Projection, k: Projection, v: Projection, o: Projection
        let postNorm: RMSNorm, gate: Projection, up: Projection, down: Projection
    }

    enum Arch {
        case gpt2(wte: Tensor, wpe: Tensor, layers: [GPT2Layer], lnF: LayerNorm, head: Projection)
        case llama(embed: Tensor, layers: [LlamaLayer], norm: RMSNorm, head: Projection, cos: Tensor, sin: Tensor)
    }

    let heads: Int
    let scale: Float

    /// A decoder with an empty cache of `slots` sequences of up to `capacity` positions each.
    /// - Parameters:
    ///   - model: a GPT-2 or Llama-family model (its weights are copied as they are now, packed for the decode
    ///     kernels: make a new decoder after changing them).
    ///   - slots: sequences decoded side by side.
    ///   - capacity: positions per slot (at most the model's learned positions for GPT-2).
    public init(model: LanguageModel, slots: Int, capacity: Int) throws {
        self.model = model
        vocabSize = model.vocabSize
        if let limit = model.maxPositions, capacity > limit {
            throw TensorError("decoder: capacity \(capacity) exceeds the model's \(limit) positions")
        }
        switch model {
        case let g as GPT2:
            let c = g.config
            let blocks = g.body.h.items.compactMap { $0 as? GPT2Block }
            let layers = try blocks.map { b in
                GPT2Layer(ln1: b.ln1, cAttn: try Projection(b.attn.projections[0]), cProj: try Projection(b.attn.projections[1]),
                          ln2: b.ln2, fc: try Projection(b.mlp.projections[0]), proj: try Projection(b.mlp.projections[1]),
                          activation: b.mlp.activation)
            }
            let head = try Projection(g.body.wte.weight, bias: nil, layout: .outIn)
            arch = .gpt2(wte: g.body.wte.weight, wpe: g.body.wpe.weight, layers: layers, lnF: g.body.lnF, head: head)
            heads = c.heads
            cache = try KVCache(layers: c.layers, slots: slots, kvHeads: c.heads, headDim: c.dim / c.heads, capacity: capacity)
        case let l as Llama:
            let c = l.config
            let blocks = l.body.layers.items.compactMap { $0 as? LlamaBlock }
            let layers = try blocks.map { b in
                let a = b.attn.projections, m = b.mlp.projections
                return LlamaLayer(inputNorm: b.inputNorm, q: try Projection(a[0]), k: try Projection(a[1]), v: try Projection(a[2]),
                                  o: try Projection(a[3]), postNorm: b.postNorm, gate: try Projection(m[0]),
                                  up: try Projection(m[1]), down: try Projection(m[2]))
            }
            let head = try Projection(l.lmHead?.weight ?? l.body.embed.weight, bias: nil, layout: .outIn)
            let d = c.resolvedHeadDim
            // The cache first: it checks that `capacity` fits in memory before the tables are made.
            cache = try KVCache(layers: c.layers, slots: slots, kvHeads: c.kvHeads, headDim: d, capacity: capacity)
            let (cos, sin) = try Functional.ropeTables(headDim: d, start: 0, count: capacity, theta: c.ropeTheta,
                                                       scaling: c.ropeScaling)
            arch = .llama(embed: l.body.embed.weight, layers: layers, norm: l.body.norm, head: head, cos: cos, sin: sin)
            heads = c.heads
        default:
            throw TensorError("decoder: \(model.summary) is not a GPT-2 or Llama-family model")
        }
        scale = 1 / Float(cache.headDim).squareRoot()
    }

    public var slots: Int { cache.slots }
    public var capacity: Int { cache.capacity }

    /// Positions filled in `slot`.
    public func length(of slot: Int) -> Int { cache.lengths[slot] }

    /// Empties `slot` for a new sequence.
    public func reset(slot: Int) { cache.reset(slot) }

    /// Starts `target` from the first `count` positions of `source` (another sample of the same prompt).
    public func copyPrefix(from source: Int, to target: Int, count: Int) throws {
        try cache.copyPrefix(from: source, to: target, count: count)
    }

    /// Forgets positions `length...` of `slot` (rejected draft tokens).
    public func truncate(slot: Int, to length: Int) throws { try cache.truncate(slot, to: length) }

    /// Where each entry's rows sit in the step.
    struct Layout {
        var start: [Int] = []         // first row of each entry
        var base: [Int] = []          // the slot's length before the step
        var prefill: [Int] = []       // leading rows attended as a prompt
        var ids: [Float] = []         // [N]
        var positions: [Float] = []   // [N]
        var logitRows: [Float] = []   // [R]: rows whose logits are returned
        var rows: Int { ids.count }
    }

    func layout(_ entries: [DecodeEntry]) throws -> Layout {
        guard !entries.isEmpty else { throw TensorError("decoder: a step needs at least one entry") }
        var seen = Set<Int>()
        var out = Layout()
        for (i, e) in entries.enumerated() {
            guard e.slot >= 0, e.slot < cache.slots else { throw TensorError("decoder: entry \(i + 1): slot \(e.slot) out of range 0..<\(cache.slots)") }
            guard seen.insert(e.slot).inserted else { throw TensorError("decoder: slot \(e.slot) appears twice in one step") }
            guard !e.tokens.isEmpty else { throw TensorError("decoder: entry \(i + 1) has no tokens") }
            let base = cache.lengths[e.slot]
            guard e.tokens.count <= cache.capacity - base else {
                throw TensorError("decoder: slot \(e.slot) holds \(base) positions; \(e.tokens.count) more exceed its capacity \(cache.capacity)")
            }
            guard e.logitRows >= 0, e.logitRows <= e.tokens.count else {
                throw TensorError("decoder: entry \(i + 1) asks for \(e.logitRows) logit rows of \(e.tokens.count) tokens")
            }
            let prefill = e.prefillRows ?? (base == 0 ? e.tokens.count : 0)
            guard prefill >= 0, prefill <= e.tokens.count, prefill == 0 || base == 0 else {
                throw TensorError("decoder: entry \(i + 1): \(prefill) prefill rows, for a slot holding \(base) positions")
            }
            for t in e.tokens where !(t >= 0 && t < vocabSize) {
                throw TensorError("decoder: token id \(t) out of range for a vocabulary of \(vocabSize)")
            }
            out.start.append(out.rows)
            out.base.append(base)
            out.prefill.append(prefill)
            for r in (e.tokens.count - e.logitRows)..<e.tokens.count { out.logitRows.append(Float(out.rows + r)) }
            for (k, t) in e.tokens.enumerated() {
                out.ids.append(Float(t))
                out.positions.append(Float(base + k))
            }
        }
        return out
    }

    /// Runs the new tokens of each entry through the model, appending their keys and values to their slots, and
    /// returns the logits [R, V] of the last `logitRows` tokens of each entry, in entry order.
    public func step(_ entries: [DecodeEntry]) throws -> Tensor {
        let lay = try layout(entries)
        let logits = try GradMode.with(enabled: false) { () throws -> Tensor in
            switch arch {
            case let .gpt2(wte, wpe, layers, lnF, head):
                return try gpt2Step(entries, lay, wte: wte, wpe: wpe, layers: layers, lnF: lnF, head: head)
            case let .llama(embed, layers, norm, head, cos, sin):
                return try llamaStep(entries, lay, embed: embed, layers: layers, norm: norm, head: head, cos: cos, sin: sin)
            }
        }
        for (e, base) in zip(entries, lay.base) { cache.lengths[e.slot] = base + e.tokens.count }
        return logits
    }

    // MARK: models

    private func gpt2Step(_ entries: [DecodeEntry], _ lay: Layout, wte: Tensor, wpe: Tensor, layers: [GPT2Layer],
                          lnF: LayerNorm, head: Projection) throws -> Tensor {
        let n = lay.rows
        let ids = try Tensor(shape: [n], values: lay.ids), pos = try Tensor(shape: [n], values: lay.positions)
        var x = try Functional.embedding(ids, weight: wte).adding(Functional.embedding(pos, weight: wpe))   // [N, C]
        let c = x.shape[1]
        for (l, layer) in layers.enumerated() {
            let h = try layer.ln1.forward(x)
            let qkv = try layer.cAttn(h)                                                          // [N, 3C]
            let o = try attend(entries, lay, layer: l, q: qkv.narrow(1, start: 0, length: c),
                               k: qkv.narrow(1, start: c, length: c), v: qkv.narrow(1, start: 2 * c, length: c))
            x = try x.adding(layer.cProj(o))
            x = try x.adding(layer.proj(layer.activation.forward(layer.fc(layer.ln2.forward(x)))))
        }
        let last = try x.indexSelect(0, index: Tensor(shape: [lay.logitRows.count], values: lay.logitRows))   // [R, C]
        return try head(lnF.forward(last))
    }

    private func llamaStep(_ entries: [DecodeEntry], _ lay: Layout, embed: Tensor, layers: [LlamaLayer], norm: RMSNorm,
                           head: Projection, cos: Tensor, sin: Tensor) throws -> Tensor {
        let n = lay.rows
        let ids = try Tensor(shape: [n], values: lay.ids), pos = try Tensor(shape: [n], values: lay.positions)
        let cosRows = try cos.indexSelect(0, index: pos), sinRows = try sin.indexSelect(0, index: pos)   // [N, D]
        let d = cache.headDim, kvh = cache.kvHeads
        // Rotates rows [N, count·D] by their own positions (FusedRope on the [1, count, N, D] view).
        func rotate(_ t: Tensor, _ count: Int) throws -> Tensor {
            let r = try Functional.rope(t.view([1, n, count, d]).transpose(1, 2), cos: cosRows, sin: sinRows)
            return try r.transpose(1, 2).reshape([n, count * d])
        }
        var x = try Functional.embedding(ids, weight: embed)                                     // [N, C]
        for (l, layer) in layers.enumerated() {
            let h = try layer.inputNorm.forward(x)
            let q = try rotate(layer.q(h), heads), k = try rotate(layer.k(h), kvh)
            let o = try attend(entries, lay, layer: l, q: q, k: k, v: layer.v(h))
            x = try x.adding(layer.o(o))
            let h2 = try layer.postNorm.forward(x)
            x = try x.adding(layer.down(layer.gate(h2).silu().multiplying(layer.up(h2))))
        }
        let last = try x.indexSelect(0, index: Tensor(shape: [lay.logitRows.count], values: lay.logitRows))
        return try head(norm.forward(last))
    }

    // MARK: attention

    /// Appends each row's keys and values to its slot's cache, then attends each slot's rows over its cache:
    /// the prompt rows through FusedAttention, the others through DecodeAttention. q [N, H·D], k, v [N, Hkv·D]
    /// (rows of unit stride, any row stride). Returns o [N, H·D].
    private func attend(_ entries: [DecodeEntry], _ lay: Layout, layer: Int, q: Tensor, k: Tensor, v: Tensor) throws -> Tensor {
        let n = lay.rows, d = cache.headDim, kvh = cache.kvHeads, h = heads
        let ks = k.strides[0], vs = v.strides[0], qs = q.strides[0]
        precondition(k.strides[1] == 1 && v.strides[1] == 1 && q.strides[1] == 1, "decoder: rows of unit stride")
        let kp = UnsafePointer(k.basePointer), vp = UnsafePointer(v.basePointer), qp = UnsafePointer(q.basePointer)
        for (i, e) in entries.enumerated() {
            for r in 0..<e.tokens.count {
                let row = lay.start[i] + r, position = lay.base[i] + r
                for head in 0..<kvh {
                    cache.store(layer: layer, slot: e.slot, head: head, position: position,
                                key: kp + row * ks + head * d, value: vp + row * vs + head * d)
                }
            }
        }
        let o = try Tensor(uninitializedShape: [n, h * d])
        let op = o.basePointer
        var decodeRows: [DecodeAttention.Row] = []
        for (i, e) in entries.enumerated() {
            let start = lay.start[i], prefill = lay.prefill[i]
            if prefill > 0 {
                let qv = try Tensor(viewing: q.storage, shape: [1, h, prefill, d], strides: [prefill * qs, d, qs, 1],
                                    offset: q.offset + start * qs)
                let (kv, vv) = try cache.views(layer: layer, slot: e.slot, count: prefill)
                let out = try Functional.causalAttention(q: qv, k: kv, v: vv)
                let rows = try out.transpose(1, 2).contiguous()                     // [1, P, H, D]
                (op + start * h * d).update(from: rows.basePointer, count: prefill * h * d)
            }
            for r in prefill..<e.tokens.count {
                decodeRows.append(DecodeAttention.Row(query: qp + (start + r) * qs, out: op + (start + r) * h * d,
                                                      slot: e.slot, position: lay.base[i] + r))
            }
        }
        DecodeAttention.run(decodeRows, cache: cache, layer: layer, heads: h, scale: scale)
        return o
    }
}

extension LanguageModel {
    /// The end-of-sequence id from the model's config (Hugging Face's eos_token_id), if any.
    public var eosTokenID: Int? {
        switch self {
        case let g as GPT2: return g.config.eosTokenID
        case let l as Llama: return l.config.eosTokenID
        default: return nil
        }
    }
}

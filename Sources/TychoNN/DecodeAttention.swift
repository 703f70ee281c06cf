// DecodeAttention.swift: attention of the new queries of a sequence against its own KV cache, one query row at a
// time (the decode step, and the verification of draft tokens). Forward only: generation records no graph.
//
// Shapes: H query heads, Hkv key/value heads (rep = H / Hkv), D head size, Tmax cache capacity.
//   q row     H·D floats, head h at h·D (the query of one token at position P, after rotary embedding)
//   K         one layer of the slot's cache: head kv is a [D, Tmax] matrix, columns 0...P filled
//   V         head kv is a [Tmax, D] matrix, rows 0...P filled
//   out row   H·D floats
// Per head h (kv = h / rep):  s_j = scale · q_h·K[:, j] for j in 0...P;  p = softmax(s);  out_h = Σ_j p_j V[j].
// The products are CDecodeKernels' `scores` and `mix` (each element summed in a fixed order); the softmax is
// TychoTensor's row kernels. Every (row, head) is computed by one thread from its own query and its slot's cache
// only: a row's result never depends on the other rows or slots of the step, on how many rows the step has, or
// on the thread count. So verifying K draft tokens in one pass gives bit for bit the logits of K single steps,
// and a sequence decodes identically alone or in any batch. (A prompt goes through FusedAttention instead; see
// IncrementalDecoder.)

import CDecodeKernels
import TychoTensor

enum DecodeAttention {
    /// One query row: where its query is, where its output goes, its slot and position.
    struct Row {
        let query: UnsafePointer<Float>
        let out: UnsafeMutablePointer<Float>
        let slot: Int
        let position: Int
    }

    /// Runs every row of `rows` against layer `layer` of `cache` (whose positions 0...position are filled).
    static func run(_ rows: [Row], cache: KVCache, layer: Int, heads: Int, scale: Float) {
        guard !rows.isEmpty else { return }
        let d = cache.headDim, rep = heads / cache.kvHeads, ldk = cache.capacity
        let units = rows.count * heads
        let longest = rows.map(\.position).max()! + 1
        let kernels = tdk_active()!.pointee
        // Base pointers taken once: the loop below touches no Swift object.
        let keys = UnsafePointer(cache.keys(layer: layer, slot: 0, head: 0))
        let values = UnsafePointer(cache.values(layer: layer, slot: 0, head: 0))
        let headStride = d * ldk, kvh = cache.kvHeads
        rows.withUnsafeBufferPointer { rp in
            let body = { (range: Range<Int>) in
                let scores = UnsafeMutablePointer<Float>.allocate(capacity: longest)
                defer { scores.deallocate() }
                for u in range {
                    let row = rp[u / heads], h = u % heads, kv = h / rep
                    let n = row.position + 1
                    let kp = keys + (row.slot * kvh + kv) * headStride
                    let vp = values + (row.slot * kvh + kv) * headStride
                    kernels.scores(row.query + h * d, kp, ldk, d, n, scale, scores)
                    let m = RawKernels.rowMax(scores, n)
                    let sum = RawKernels.rowExp(scores, scores, n, shift: m)
                    Fused.scale(scores, n, by: 1 / sum)
                    kernels.mix(scores, vp, n, d, row.out + h * d)
                }
            }
            if units * 4 * d * longest < DecodeLinear.parallelWork { body(0..<units) } else {
                Parallel.forRanges(units, cost: 4 * d * longest, body)
            }
        }
    }
}

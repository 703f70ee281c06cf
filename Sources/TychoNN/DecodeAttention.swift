// DecodeAttention.swift: attention of the new queries of a sequence against its own KV cache, one query row at a
// time (the decode step, and the verification of draft tokens). Forward only: generation records no graph.
//
// Shapes: H query heads, Hkv key/value heads (rep = H / Hkv), D head size, Tmax cache capacity.
//   q row     H·D floats, head h at h·D (the query of one token at position P, after rotary embedding)
//   K, V      one layer of the slot's cache: head kv is a [Tmax, D] matrix, rows 0...P filled
//   out row   H·D floats
// Per head h (kv = h / rep):  s_j = scale · q_h·K[j] for j in 0...P;  p = softmax(s);  out_h = Σ_j p_j V[j].
// Every (row, head) is computed by one thread, in a fixed order, from its own query and its slot's cache only:
// a row's result never depends on the other rows or slots of the step, on how many rows the step has, or on
// the thread count. So verifying K draft tokens in one pass gives bit for bit the logits of K single steps,
// and a sequence decodes identically alone or in any batch. (The prompt goes through FusedAttention instead;
// see IncrementalDecoder.)

import TychoTensor

enum DecodeAttention {
    /// One query row: where its query is, where its output goes, its slot and position.
    struct Row {
        let query: UnsafePointer<Float>
        let out: UnsafeMutablePointer<Float>
        let slot: Int
        let position: Int
    }

    /// Runs every row of `rows` against layer `layer` of `cache` (whose rows 0...position are filled).
    static func run(_ rows: [Row], cache: KVCache, layer: Int, heads: Int, scale: Float) {
        guard !rows.isEmpty else { return }
        let d = cache.headDim, rep = heads / cache.kvHeads
        let keys = cache.keys[layer], values = cache.values[layer]
        let units = rows.count * heads
        let longest = rows.map(\.position).max()! + 1
        rows.withUnsafeBufferPointer { rp in
            Parallel.forRanges(units, cost: 4 * d * longest) { range in
                let scores = UnsafeMutablePointer<Float>.allocate(capacity: longest)
                defer { scores.deallocate() }
                for u in range {
                    let row = rp[u / heads], h = u % heads, kv = h / rep
                    let n = row.position + 1
                    let q = row.query + h * d, out = row.out + h * d
                    let kp = UnsafePointer(cache.row(keys, slot: row.slot, head: kv, position: 0))
                    let vp = UnsafePointer(cache.row(values, slot: row.slot, head: kv, position: 0))
                    for j in 0..<n { scores[j] = Fused.dot(q, kp + j * d, d) * scale }
                    let m = RawKernels.rowMax(scores, n)
                    let sum = RawKernels.rowExp(scores, scores, n, shift: m)
                    Fused.scale(scores, n, by: 1 / sum)
                    accumulate(scores, vp, n: n, d: d, into: out)
                }
            }
        }
    }

    /// out[0..<d] = Σ_j p[j] · V[j], j in order.
    @inline(__always)
    private static func accumulate(_ p: UnsafePointer<Float>, _ v: UnsafePointer<Float>, n: Int, d: Int,
                                   into out: UnsafeMutablePointer<Float>) {
        out.update(repeating: 0, count: d)
        var c = 0
        while c + 8 <= d {
            var acc = Lanes8(repeating: 0)
            for j in 0..<n { acc += Lanes8(repeating: p[j]) * load8(v + j * d + c) }
            store8(acc, out + c)
            c += 8
        }
        while c < d {
            var acc: Float = 0
            for j in 0..<n { acc += p[j] * v[j * d + c] }
            out[c] = acc
            c += 1
        }
    }
}

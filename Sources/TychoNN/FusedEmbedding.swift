// FusedEmbedding.swift: rows of an embedding table picked by token ids, forward and backward.
//
// Shapes: N = number of ids, V = vocabulary, C = channels.
//   ids [...] (0-based token ids as floats, any shape; each checked to be an integer in 0..<V)
//   weight [V, C] (any strides)
//   out [..., C]
// Backward: a dense dweight [V, C], zero except rows that were picked; row id_n gets dout[n] added, n in order.
// Columns are split across threads, so repeated ids sum in the same order for any thread count.

import TychoTensor

enum FusedEmbedding {
    static func forward(_ ids: Tensor, weight: Tensor) throws -> Tensor {
        let (vocab, c) = (weight.shape[0], weight.shape[1])
        let rows = try Fused.tokenIds(ids, vocab: vocab, op: "embedding", what: "token id")
        let n = rows.count
        let out = try Tensor(uninitializedShape: ids.shape + [c])            // [N, C]
        let (rs, cs) = (weight.strides[0], weight.strides[1])
        let wp = UnsafePointer(weight.basePointer), op = out.basePointer
        Parallel.forRanges(n, cost: c) { r in
            for k in r {
                let src = wp + rows[k] * rs, dst = op + k * c
                if cs == 1 { dst.update(from: src, count: c) } else { for j in 0..<c { dst[j] = src[j * cs] } }
            }
        }
        return out.recorded("embedding", [weight]) { g in
            let gc = try Fused.contiguous(g)                                  // dout [N, C]
            let gp = UnsafePointer(gc.basePointer)
            let dw = try Tensor(uninitializedShape: [vocab, c], zeroed: true) // dweight [V, C]
            let dp = dw.basePointer
            let block = 64
            Parallel.forRanges((c + block - 1) / block, cost: n * block) { r in
                let c0 = r.lowerBound * block, c1 = min(c, r.upperBound * block)
                for k in 0..<n {
                    let src = gp + k * c, dst = dp + rows[k] * c
                    for j in c0..<c1 { dst[j] += src[j] }
                }
            }
            return [dw]
        }
    }
}

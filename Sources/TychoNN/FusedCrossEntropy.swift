// FusedCrossEntropy.swift: log p(target) of every row of logits, forward and backward (llm.c's fused
// softmax + cross-entropy, without ever storing the softmax).
//
// Shapes: N rows, V classes.
//   logits [..., V] (rows read in place when the last dimension has stride 1, e.g. logits[:, :-1])
//   targets [...] (0-based ids as floats; each checked to be an integer in 0..<V)
//   out [...]: out[n] = logit[n, t_n] - lse_n, lse_n = m_n + log Σ_j exp(logit[n, j] - m_n), m_n the row max
//   lse [N]: saved by the forward
// Backward: dlogits[n, j] = g_n · (1[j == t_n] - exp(logit[n, j] - lse_n)), the softmax recomputed from the
// logits and lse.

import Foundation
import TychoTensor

enum FusedCrossEntropy {
    static func tokenLogProbs(_ logits: Tensor, targets: Tensor) throws -> Tensor {
        let v = logits.shape[logits.rank - 1]
        let ids = try Fused.tokenIds(targets, vocab: v, op: "token_logprobs", what: "target")
        let ls = try Fused.unitLastStride(logits)
        let offsets = Fused.rowOffsets(ls)
        let n = offsets.count
        let out = try Tensor(uninitializedShape: targets.shape)              // [N]
        let lse = try Tensor(uninitializedShape: [n])                         // [N]
        let lp = UnsafePointer(ls.basePointer), op = out.basePointer, sp = lse.basePointer
        Parallel.forRanges(n, cost: 2 * v) { r in
            for k in r {
                let row = lp + offsets[k]
                let (m, sum) = RawKernels.rowMaxExpSum(row, v)
                let logSum = Foundation.logf(sum)
                op[k] = (row[ids[k]] - m) - logSum
                sp[k] = m + logSum
            }
        }
        return out.recorded("token_logprobs", [logits], saving: [ls, lse]) { g in
            let gc = try Fused.contiguous(g)                                  // [N]
            let gp = UnsafePointer(gc.basePointer)
            let dl = try Tensor(uninitializedShape: logits.shape)             // dlogits [N, V]
            let dp = dl.basePointer
            Parallel.forRanges(n, cost: 2 * v) { r in
                for k in r {
                    let q = dp + k * v
                    _ = RawKernels.rowExp(lp + offsets[k], q, v, shift: sp[k])
                    Fused.scale(q, v, by: -gp[k])
                    q[ids[k]] += gp[k]
                }
            }
            return [dl]
        }
    }
}

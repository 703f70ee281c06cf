// FusedLinear.swift: y = x·Wᵀ + b or y = x·W + b, forward and backward, each product one sgemm.
//
// Shapes: N = product of x's leading dimensions, I = in features, O = out features.
//   x [..., I] read as X [N, I] (copied once if x is not contiguous)
//   W [O, I] (.outIn, PyTorch's nn.Linear) or [I, O] (.inOut, GPT-2's Conv1D); transposed views are read in place
//   b [O] or nil
//   y [..., O]
// Forward: y rows start as b, then one sgemm with beta = 1 adds X·op(W).
// Backward, only for the inputs that require grad:
//   dX = dY·W (.outIn) or dY·Wᵀ (.inOut)          one sgemm
//   dW = dYᵀ·X (.outIn) or Xᵀ·dY (.inOut)         one sgemm (transpose flags, no transposed copies)
//   db = column sums of dY, in Double, each column summed in row order by one thread (deterministic)

import TychoTensor

enum FusedLinear {
    static func forward(_ x: Tensor, weight: Tensor, bias: Tensor?, layout: WeightLayout) throws -> Tensor {
        let inF = x.shape[x.rank - 1]
        let outF = layout == .outIn ? weight.shape[0] : weight.shape[1]
        let rows = x.shape.dropLast().reduce(1, *)
        let xc = try Fused.contiguous(x)                                      // X [N, I]
        let (w, wTrans, ldw) = try Fused.blasReadable(weight, op: "linear")  // W as stored: [O, I] or [I, O]
        let bc = try bias.map { try Fused.contiguous($0) }                   // b [O]

        let y = try Tensor(uninitializedShape: Array(x.shape.dropLast()) + [outF])   // Y [N, O]
        let yp = y.basePointer
        if let bc {
            let bp = bc.basePointer
            for r in 0..<rows { (yp + r * outF).update(from: bp, count: outF) }
        }
        // op(B) = Wᵀ (.outIn: stored [O, I]) or W (.inOut: stored [I, O]).
        try RawKernels.sgemm(transA: false, transB: layout == .outIn ? !wTrans : wTrans,
                             m: rows, n: outF, k: inF, xc.basePointer, lda: max(inF, 1),
                             w.basePointer, ldb: ldw, beta: bc == nil ? 0 : 1, yp, ldc: max(outF, 1))

        let inputs = [x, weight] + (bias.map { [$0] } ?? [])
        return y.recorded("linear", inputs, saving: [xc, w]) { g in
            let gc = try Fused.contiguous(g)                                  // dY [N, O]
            let gp = gc.basePointer
            var dx: Tensor?, dw: Tensor?, db: Tensor?
            if x.requiresGrad {
                let t = try Tensor(uninitializedShape: x.shape)              // dX [N, I]
                try RawKernels.sgemm(transA: false, transB: layout == .outIn ? wTrans : !wTrans,
                                     m: rows, n: inF, k: outF, gp, lda: max(outF, 1),
                                     w.basePointer, ldb: ldw, t.basePointer, ldc: max(inF, 1))
                dx = t
            }
            if weight.requiresGrad {
                let t = try Tensor(uninitializedShape: weight.shape)
                if layout == .outIn {                                        // dW [O, I] = dYᵀ·X
                    try RawKernels.sgemm(transA: true, transB: false, m: outF, n: inF, k: rows,
                                         gp, lda: max(outF, 1), xc.basePointer, ldb: max(inF, 1),
                                         t.basePointer, ldc: max(inF, 1))
                } else {                                                     // dW [I, O] = Xᵀ·dY
                    try RawKernels.sgemm(transA: true, transB: false, m: inF, n: outF, k: rows,
                                         xc.basePointer, lda: max(inF, 1), gp, ldb: max(outF, 1),
                                         t.basePointer, ldc: max(outF, 1))
                }
                dw = t
            }
            if let bias, bias.requiresGrad {
                let t = try Tensor(uninitializedShape: [outF])
                columnSums(gp, rows: rows, cols: outF, into: t.basePointer)
                db = t
            }
            return [dx, dw] + (bias == nil ? [] : [db])
        }
    }

    /// out[j] = Σ_r p[r·cols + j], accumulated in Double in row order; columns are split across threads, so
    /// every column's sum is the same whatever the thread count (and whatever the blocks: each column alone is
    /// summed from row 0 down). Blocks of up to 512 columns read long runs of each row (one 64-column block at a
    /// time read the matrix in 256-byte pieces: 4-6x slower, measured at 4096 x 1536), 8 columns per step.
    static func columnSums(_ p: UnsafePointer<Float>, rows: Int, cols: Int, into out: UnsafeMutablePointer<Float>) {
        let perThread = (cols + Parallel.threads - 1) / Parallel.threads
        let block = min(512, max(64, (perThread + 7) / 8 * 8))
        let blocks = (cols + block - 1) / block
        Parallel.forRanges(blocks, cost: rows * block) { r in
            let acc = UnsafeMutablePointer<Double>.allocate(capacity: block)
            defer { acc.deallocate() }
            for blk in r {
                let c0 = blk * block, w = min(block, cols - c0)
                acc.update(repeating: 0, count: w)
                for row in 0..<rows {
                    let src = p + row * cols + c0
                    var j = 0
                    while j + 8 <= w {
                        let x = load8(src + j)
                        let lo = SIMD4<Double>(Double(x[0]), Double(x[1]), Double(x[2]), Double(x[3]))
                        let hi = SIMD4<Double>(Double(x[4]), Double(x[5]), Double(x[6]), Double(x[7]))
                        let d = UnsafeMutableRawPointer(acc + j)
                        d.storeBytes(of: d.loadUnaligned(as: SIMD4<Double>.self) + lo, as: SIMD4<Double>.self)
                        (d + 32).storeBytes(of: (d + 32).loadUnaligned(as: SIMD4<Double>.self) + hi, as: SIMD4<Double>.self)
                        j += 8
                    }
                    while j < w { acc[j] += Double(src[j]); j += 1 }
                }
                for j in 0..<w { out[c0 + j] = Float(acc[j]) }
            }
        }
    }
}

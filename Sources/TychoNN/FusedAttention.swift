// FusedAttention.swift: causal scaled dot-product attention with grouped-query heads, forward and backward
// (llm.c's attention_forward / attention_backward, with the products as sgemm calls).
//
// Shapes: B batch, H query heads, Hkv key/value heads (H = rep · Hkv), Tq queries, Tk keys, D head size.
//   q [B, H, Tq, D]; k, v [B, Hkv, Tk, D]: any strides whose [T, D] matrices BLAS can read (a transposed
//     [B, T, H, D] view included); others are copied once. Query head h reads key/value head h / rep.
//   keyMask [B, Tk] or nil: 0 hides a (padded) key
//   out [B, H, Tq, D], stored as [B, Tq, H, D] so that out.transpose(1, 2) is contiguous
//   lse [B, H, Tq]: log-sum-exp of each row of visible scores, saved for the backward (+inf for a row that sees
//     no key: its probabilities, output and gradients are all zero)
// Query i sees key j when j <= i + queryOffset and keyMask[b, j] != 0.
// Forward, per (b, h), per block of query rows [i0, i1) (keys beyond i1 - 1 + queryOffset are never read):
//   S = scale · Q[i0:i1] · K[:nk]ᵀ             sgemm
//   P = softmax of each row over its visible keys (hidden keys 0)
//   O[i0:i1] = P · V[:nk]                      sgemm
// Backward, per (b, kv head), query heads of the group in order, per block of rows:
//   S recomputed, P = exp(S - lse) on visible keys
//   dP = dO · Vᵀ,   dV += Pᵀ · dO,   dS = P ⊙ (dP - rowsum(dP ⊙ P)),   dQ = scale · dS · K,   dK += scale · dSᵀ · Q
// dK and dV accumulate over the group's heads and row blocks in a fixed order, so results do not depend on the
// thread count. Heads (backward: groups) run side by side on Tycho's worker threads with single-threaded sgemm
// when there are at least as many as threads; otherwise one after another with OpenBLAS's threads (the same
// products either way, and OpenBLAS's results do not depend on its thread count: DeterminismTests checks it).
// Measured at GPT-2 config B (B 8, T 256, 6 heads of 64, 2 threads): forward + backward 19 ms with heads side by
// side, 40 ms with heads in turn on threaded BLAS (products of 256 x 256 x 64 are too small to split well);
// row blocks of 32 to 128 rows are within noise of each other, whole-matrix products (no causal skipping) slower.

import Foundation
import TychoTensor

enum FusedAttention {
    /// Query rows per block.
    nonisolated(unsafe) static var rowBlock = 64
    /// Units (heads, or groups of heads) per thread from which they run in parallel with single-threaded BLAS.
    nonisolated(unsafe) static var parallelUnitsPerThread = 1

    /// The [T, D] matrices of one of q, k, v, dO as BLAS reads them.
    struct Operand {
        let tensor: Tensor                       // keeps the storage alive (maybe a copy)
        let base: UnsafeMutablePointer<Float>
        let batchStride: Int, headStride: Int, rowStride: Int
        let trans: Bool, ld: Int

        init(_ t: Tensor) throws {
            let (u, trans, ld) = try Fused.blasReadable(t, op: "attention")
            tensor = u
            base = u.basePointer
            (batchStride, headStride, rowStride) = (u.strides[0], u.strides[1], u.strides[2])
            (self.trans, self.ld) = (trans, ld)
        }

        /// The first element of row `row` of matrix (b, h).
        @inline(__always) func at(_ b: Int, _ h: Int, row: Int = 0) -> UnsafeMutablePointer<Float> {
            base + b * batchStride + h * headStride + row * rowStride
        }

        /// Scratch floats transposedB needs: D x Tk when the matrices are stored as rows, else none.
        static func transposeFloats(_ m: Operand, _ pr: Problem) -> Int { m.trans ? 0 : pr.d * pr.tk }

        /// Matrix (b, h) [Tk, D] as the B of products X · (it)ᵀ made without a transposed flag: its transpose
        /// [D, Tk], read in place when stored that way, else written once to `scratch` (RawKernels.sgemm would
        /// otherwise copy it for every row block: the same NN products, bit for bit, made once per unit).
        func transposedB(_ b: Int, _ h: Int, _ pr: Problem, into scratch: UnsafeMutablePointer<Float>)
            -> (base: UnsafePointer<Float>, ld: Int) {
            if trans { return (UnsafePointer(at(b, h)), ld) }
            RawKernels.transpose(at(b, h), rows: pr.tk, cols: pr.d, ld: ld, into: scratch, ldOut: max(pr.tk, 1))
            return (UnsafePointer(scratch), max(pr.tk, 1))
        }
    }

    /// What forward and backward share.
    struct Problem {
        let b: Int, h: Int, hkv: Int, tq: Int, tk: Int, d: Int
        let scale: Float, queryOffset: Int
        /// [B, Tk]: 0 for a visible key, -inf for a hidden one; nil without a mask.
        let maskBias: [Float]?

        var rep: Int { h / hkv }

        /// Keys a query row sees before masking: 0 ..< visible(i + 1) (checked against overflow).
        @inline(__always) func visible(_ rowEnd: Int) -> Int {
            queryOffset >= tk - rowEnd ? tk : rowEnd + queryOffset
        }

        /// Runs `unit(u, scratch)` for u in 0..<units, in parallel with single-threaded BLAS when there are
        /// enough units; `scratch` holds `scratchFloats` floats for the unit's use.
        func forUnits(_ units: Int, scratchFloats: Int, _ unit: (Int, UnsafeMutablePointer<Float>) throws -> Void) throws {
            var failure: Error?
            let lock = NSLock()
            func run(_ r: Range<Int>) {
                let scratch = UnsafeMutablePointer<Float>.allocate(capacity: max(scratchFloats, 1))
                defer { scratch.deallocate() }
                for u in r {
                    do { try unit(u, scratch) } catch {
                        lock.lock(); failure = error; lock.unlock()
                        return
                    }
                }
            }
            let threads = Parallel.threads
            if threads > 1 && units / threads >= FusedAttention.parallelUnitsPerThread {
                RawKernels.withSingleThreadedBLAS { Parallel.forRanges(units, cost: tq * tk * max(d, 1)) { run($0) } }
            } else {
                run(0..<units)
            }
            if let failure { throw failure }
        }

        /// Masked softmax of one row of scores in place: probabilities over keys 0..<nvis, zeros up to nk.
        /// Returns the row's log-sum-exp (+inf when it sees no key).
        @inline(__always)
        func softmaxRow(_ s: UnsafeMutablePointer<Float>, nvis: Int, nk: Int, bias: UnsafePointer<Float>?) -> Float {
            if let bias { for j in 0..<nvis { s[j] += bias[j] } }
            let m = RawKernels.rowMax(s, nvis)
            var lse = Float.infinity
            if m == -.infinity {
                s.update(repeating: 0, count: nk)
            } else {
                let sum = RawKernels.rowExp(s, s, nvis, shift: m)
                Fused.scale(s, nvis, by: 1 / sum)
                (s + nvis).update(repeating: 0, count: nk - nvis)
                lse = m + Foundation.logf(sum)
            }
            return lse
        }

        /// P = exp(S - lse) over keys 0..<nvis, zeros up to nk (the backward's recomputation).
        @inline(__always)
        func probabilitiesRow(_ s: UnsafeMutablePointer<Float>, nvis: Int, nk: Int, lse: Float, bias: UnsafePointer<Float>?) {
            if lse == .infinity {
                s.update(repeating: 0, count: nk)
                return
            }
            if let bias { for j in 0..<nvis { s[j] += bias[j] } }
            _ = RawKernels.rowExp(s, s, nvis, shift: lse)
            (s + nvis).update(repeating: 0, count: nk - nvis)
        }
    }

    static func forward(q: Tensor, k: Tensor, v: Tensor, scale: Float, queryOffset: Int, keyMask: Tensor?) throws -> Tensor {
        let f = try Forward(q: q, k: k, v: v, scale: scale, queryOffset: queryOffset, keyMask: keyMask)
        return f.out.recorded("attention", [q, k, v], saving: f.saved) { g in
            // Gradients are written by sgemm as row-major matrices: allocate4D gives rows of stride 1.
            let dq = q.requiresGrad ? try Fused.allocate4D(like: q, zeroed: true) : nil
            let dk = k.requiresGrad ? try Fused.allocate4D(like: k, zeroed: true) : nil
            let dv = v.requiresGrad ? try Fused.allocate4D(like: v, zeroed: true) : nil
            try f.backward(g, dq: dq, dk: dk, dv: dv)
            return [dq, dk, dv]
        }
    }

    /// Self-attention over GPT-2's fused projection: qkv [B, T, 3·H·D] holds q, k and v side by side (heads of D
    /// inside each), as c_attn writes them; out as forward's. One node with qkv as its input: the backward writes
    /// dQ, dK and dV into their thirds of one zeroed [B, T, 3·H·D] gradient (three `select` views would each
    /// allocate and zero a full-size gradient, copy their third into it, and the engine would add the three:
    /// about 3% of a GPT-2 training step). The same products as forward(q:k:v:), bit for bit.
    static func forward(qkv: Tensor, heads: Int, scale: Float, keyMask: Tensor?) throws -> Tensor {
        let (b, t, width) = (qkv.shape[0], qkv.shape[1], qkv.shape[2])
        let d = width / (3 * heads)
        let split = { (x: Tensor) throws -> (Tensor, Tensor, Tensor) in    // [B, H, T, D] views of x
            let v = try x.view([b, t, 3, heads, d])
            return (try v.select(2, 0).transpose(1, 2), try v.select(2, 1).transpose(1, 2), try v.select(2, 2).transpose(1, 2))
        }
        let (q, k, v) = try GradMode.with(enabled: false) { try split(Fused.contiguous(qkv)) }
        let f = try Forward(q: q, k: k, v: v, scale: scale, queryOffset: 0, keyMask: keyMask)
        return f.out.recorded("attention", [qkv], saving: f.saved) { g in
            let dqkv = try Tensor(uninitializedShape: [b, t, width], zeroed: true)
            let (dq, dk, dv) = try split(dqkv)
            try f.backward(g, dq: dq, dk: dk, dv: dv)
            return [dqkv]
        }
    }

    /// The forward pass, and what the backward reads.
    struct Forward {
        let pr: Problem
        let qm: Operand, km: Operand, vm: Operand
        let out: Tensor                                                       // [B, H, Tq, D] stored [B, Tq, H, D]
        let lse: Tensor                                                       // [B, H, Tq]

        /// Tensors the backward reads (for the graph's in-place checks).
        var saved: [Tensor] { [qm.tensor, km.tensor, vm.tensor, lse] }

        init(q: Tensor, k: Tensor, v: Tensor, scale: Float, queryOffset: Int, keyMask: Tensor?) throws {
            let pr = Problem(b: q.shape[0], h: q.shape[1], hkv: k.shape[1], tq: q.shape[2], tk: k.shape[2], d: q.shape[3],
                             scale: scale, queryOffset: queryOffset,
                             maskBias: keyMask.map { $0.toArray().map { $0 == 0 ? -Float.infinity : 0 } })
            let (b, h, tq, tk, d) = (pr.b, pr.h, pr.tq, pr.tk, pr.d)
            let qm = try Operand(q), km = try Operand(k), vm = try Operand(v)
            let out = try Fused.transposedBTHD([b, h, tq, d], zeroed: false)     // [B, H, Tq, D] stored [B, Tq, H, D]
            let lse = try Tensor(uninitializedShape: [b, h, tq])
            let op = out.basePointer, lp = lse.basePointer
            let ldo = max(h * d, 1)
            let br = max(1, min(FusedAttention.rowBlock, tq))
            try pr.maskBias.withOptionalBuffer { maskp in
                // Scratch: S [br, Tk], then Kᵀ [D, Tk] of the unit's key head.
                try pr.forUnits(b * h, scratchFloats: br * tk + Operand.transposeFloats(km, pr)) { u, s in
                    let bi = u / h, hi = u % h, kv = hi / pr.rep
                    let bias = maskp.map { $0 + bi * tk }
                    let kt = km.transposedB(bi, kv, pr, into: s + br * tk)
                    for i0 in stride(from: 0, to: tq, by: br) {
                        let rows = min(br, tq - i0)
                        let nk = pr.visible(i0 + rows)
                        let o = op + bi * tq * h * d + i0 * h * d + hi * d
                        // S [rows, nk] = scale · Q[i0:i0+rows] · K[:nk]ᵀ
                        try RawKernels.sgemm(transA: qm.trans, transB: false, m: rows, n: nk, k: d, alpha: scale,
                                             qm.at(bi, hi, row: i0), lda: qm.ld, kt.base, ldb: kt.ld,
                                             s, ldc: max(tk, 1))
                        for r in 0..<rows {
                            lp[u * tq + i0 + r] = pr.softmaxRow(s + r * tk, nvis: pr.visible(i0 + r + 1), nk: nk, bias: bias)
                        }
                        // O[i0:i0+rows] = P · V[:nk]
                        try RawKernels.sgemm(transA: false, transB: vm.trans, m: rows, n: d, k: nk,
                                             s, lda: max(tk, 1), vm.at(bi, kv), ldb: vm.ld, o, ldc: ldo)
                    }
                }
            }
            (self.pr, self.qm, self.km, self.vm, self.out, self.lse) = (pr, qm, km, vm, out, lse)
        }

        /// Adds the gradients of q, k, v (each nil when not wanted) for dO = g: dq, dk, dv are zeroed [B, H, T, D]
        /// tensors whose [T, D] matrices have rows of stride 1, written in place.
        func backward(_ g: Tensor, dq: Tensor?, dk: Tensor?, dv: Tensor?) throws {
            let (pr, qm, km, vm, lp) = (pr, qm, km, vm, lse.basePointer)
            let (b, h, tq, tk, d, scale) = (pr.b, pr.h, pr.tq, pr.tk, pr.d, pr.scale)
            let br = max(1, min(FusedAttention.rowBlock, tq))
            let gm = try Operand(g)                                           // dO [B, H, Tq, D]
            let wantQ = dq != nil, wantK = dk != nil
            let dqm = try dq.map { try Operand($0) }, dkm = try dk.map { try Operand($0) }
            let dvm = try dv.map { try Operand($0) }
            // sgemm writes the gradients in place, as row-major matrices.
            for (t, m) in [(dq, dqm), (dk, dkm), (dv, dvm)] {
                precondition(m.map { !$0.trans && $0.tensor === t } ?? true, "attention: gradient layout")
            }
            let rep = pr.rep
            try pr.maskBias.withOptionalBuffer { maskp in
                // Scratch: P [br, Tk] and dP / dS [br, Tk], then Kᵀ and Vᵀ [D, Tk] of the unit's head.
                let tf = Operand.transposeFloats(km, pr)
                try pr.forUnits(b * pr.hkv, scratchFloats: 2 * br * tk + tf + Operand.transposeFloats(vm, pr)) { u, scratch in
                    let bi = u / pr.hkv, kv = u % pr.hkv
                    let s = scratch, dps = scratch + br * tk
                    let bias = maskp.map { $0 + bi * tk }
                    let ldS = max(tk, 1)
                    let kt = km.transposedB(bi, kv, pr, into: scratch + 2 * br * tk)
                    let vt = vm.transposedB(bi, kv, pr, into: scratch + 2 * br * tk + tf)
                    for hi in (kv * rep)..<(kv * rep + rep) {
                        for i0 in stride(from: 0, to: tq, by: br) {
                            let rows = min(br, tq - i0)
                            let nk = pr.visible(i0 + rows)
                            if nk == 0 { continue }                          // dQ rows stay zero
                            try RawKernels.sgemm(transA: qm.trans, transB: false, m: rows, n: nk, k: d, alpha: scale,
                                                 qm.at(bi, hi, row: i0), lda: qm.ld, kt.base, ldb: kt.ld,
                                                 s, ldc: ldS)
                            for r in 0..<rows {
                                pr.probabilitiesRow(s + r * tk, nvis: pr.visible(i0 + r + 1), nk: nk,
                                                    lse: lp[(bi * h + hi) * tq + i0 + r], bias: bias)
                            }
                            // dP [rows, nk] = dO · V[:nk]ᵀ
                            try RawKernels.sgemm(transA: gm.trans, transB: false, m: rows, n: nk, k: d,
                                                 gm.at(bi, hi, row: i0), lda: gm.ld, vt.base, ldb: vt.ld,
                                                 dps, ldc: ldS)
                            if let dvm {  // dV[:nk] += Pᵀ · dO
                                try RawKernels.sgemm(transA: true, transB: gm.trans, m: nk, n: d, k: rows,
                                                     s, lda: ldS, gm.at(bi, hi, row: i0), ldb: gm.ld,
                                                     beta: 1, dvm.at(bi, kv), ldc: dvm.ld)
                            }
                            if !(wantQ || wantK) { continue }
                            // dS = P ⊙ (dP - rowsum(dP ⊙ P)), in place of dP
                            for r in 0..<rows {
                                let p = s + r * tk, dp = dps + r * tk
                                let c = Fused.dot(p, dp, nk)
                                let cv = Lanes8(repeating: c)
                                var j = 0
                                while j + 8 <= nk { store8(load8(p + j) * (load8(dp + j) - cv), dp + j); j += 8 }
                                while j < nk { dp[j] = p[j] * (dp[j] - c); j += 1 }
                            }
                            if let dqm {  // dQ[i0:i0+rows] = scale · dS · K[:nk]
                                try RawKernels.sgemm(transA: false, transB: km.trans, m: rows, n: d, k: nk, alpha: scale,
                                                     dps, lda: ldS, km.at(bi, kv), ldb: km.ld,
                                                     dqm.at(bi, hi, row: i0), ldc: dqm.ld)
                            }
                            if let dkm {  // dK[:nk] += scale · dSᵀ · Q[i0:i0+rows]
                                try RawKernels.sgemm(transA: true, transB: qm.trans, m: nk, n: d, k: rows, alpha: scale,
                                                     dps, lda: ldS, qm.at(bi, hi, row: i0), ldb: qm.ld,
                                                     beta: 1, dkm.at(bi, kv), ldc: dkm.ld)
                            }
                        }
                    }
                }
            }
        }
    }
}

fileprivate extension Optional where Wrapped == [Float] {
    /// Runs `body` with a pointer to the array's elements, or nil.
    func withOptionalBuffer<R>(_ body: (UnsafePointer<Float>?) throws -> R) rethrows -> R {
        switch self {
        case .some(let a): return try a.withUnsafeBufferPointer { try body($0.baseAddress) }
        case .none: return try body(nil)
        }
    }
}

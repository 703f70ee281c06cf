// Tensor+Raw.swift: raw-pointer building blocks for the fused kernels of higher floors (TychoNN's Fused*.swift).
//
// A checked sgemm with transpose flags and leading dimensions, a way to run single-threaded BLAS calls from
// Tycho's worker threads, checked strided views of a storage, and row-wise max / exp-sum on SIMD lanes (the
// only things above this floor cannot write themselves, since `vexp` is internal). Nothing here records
// autograd nodes: callers record one node per fused op.
// Additive only: no existing kernel calls into this file.

import COpenBLAS
import Foundation

public enum RawKernels {
    // MARK: BLAS

    /// C (m x n) = alpha · op(A) · op(B) + beta · C, all row-major. op(A) is m x k (A stored k x m when
    /// `transA`), op(B) is k x n (B stored n x k when `transB`); `lda`, `ldb`, `ldc` are the row strides of the
    /// stored matrices. With k == 0, C becomes beta · C. Throws when a size does not fit BLAS's 32-bit integers.
    public static func sgemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
                             _ a: UnsafePointer<Float>, lda: Int, _ b: UnsafePointer<Float>, ldb: Int,
                             beta: Float = 0, _ c: UnsafeMutablePointer<Float>, ldc: Int) throws {
        precondition(m >= 0 && n >= 0 && k >= 0, "sgemm: negative size")
        precondition(lda >= max(1, transA ? m : k) && ldb >= max(1, transB ? k : n) && ldc >= max(1, n),
                     "sgemm: leading dimension too small")
        let limit = Int(Int32.max)
        guard m < limit, n < limit, k < limit, lda < limit, ldb < limit, ldc < limit else {
            throw TensorError("matrix product of \(m)x\(k) and \(k)x\(n) exceeds BLAS's 32-bit sizes")
        }
        if m == 0 || n == 0 { return }
        if k == 0 {
            for i in 0..<m {
                let row = c + i * ldc
                if beta == 0 { row.update(repeating: 0, count: n) } else { for j in 0..<n { row[j] *= beta } }
            }
            return
        }
        RowInvariantGemm.sgemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a, lda: lda,
                               b, ldb: ldb, beta: beta, c, ldc: ldc)
    }

    /// out (cols x rows, row stride ldOut) = the transpose of the rows x cols matrix at b (row stride ld): the
    /// copy RawKernels.sgemm makes of B for each product with `transB` (and not `transA`), to keep rows of C
    /// independent of m. A kernel that multiplies by the same Bᵀ many times can make it once and pass
    /// `transB: false` (the same products, bit for bit).
    public static func transpose(_ b: UnsafePointer<Float>, rows: Int, cols: Int, ld: Int,
                                 into out: UnsafeMutablePointer<Float>, ldOut: Int) {
        precondition(rows >= 0 && cols >= 0 && ld >= cols && ldOut >= rows, "transpose: bad sizes")
        RowInvariantGemm.transpose(b, rows: rows, cols: cols, ld: ld, into: out, ldOut: ldOut)
    }

    /// Runs `body`, whose BLAS calls may run side by side on Tycho's worker threads. OpenBLAS always runs
    /// single-threaded (RowInvariantGemm.swift: Tycho splits large products over its own threads), so this only
    /// makes sure OpenBLAS is set up first.
    public static func withSingleThreadedBLAS<R>(_ body: () throws -> R) rethrows -> R {
        _ = BLASSetup.configured
        return try body()
    }

    // MARK: rows on SIMD lanes

    /// The largest of n floats (NaN ignored; -inf when there are none), lanes folded in a fixed order.
    public static func rowMax(_ p: UnsafePointer<Float>, _ n: Int) -> Float {
        var mv = SIMD8<Float>(repeating: -.infinity)
        var i = 0
        while i + 8 <= n {
            let v = UnsafeRawPointer(p + i).loadUnaligned(as: SIMD8<Float>.self)
            mv = mv.replacing(with: v, where: v .>= mv)
            i += 8
        }
        var m = -Float.infinity
        for l in 0..<8 { m = Swift.max(m, mv[l]) }
        while i < n { m = Swift.max(m, p[i]); i += 1 }
        return m
    }

    /// q[i] = exp(p[i] - shift) for n floats (q may be p), and their sum in a fixed order (8 lane sums, each
    /// over the elements i with the same i mod 8, combined pairwise).
    public static func rowExp(_ p: UnsafePointer<Float>, _ q: UnsafeMutablePointer<Float>, _ n: Int,
                              shift: Float) -> Float {
        for i in 0..<n { q[i] = p[i] - shift }
        vectorKernels.exp(q, q, n)
        return laneOrderedSum(q, n)
    }

    /// The maximum m of n floats (0 when all are -inf, as softmax takes it) and sum(exp(x - m)):
    /// log-sum-exp is m + log(sum).
    public static func rowMaxExpSum(_ p: UnsafePointer<Float>, _ n: Int) -> (max: Float, sum: Float) {
        var m = rowMax(p, n)
        if m == -.infinity { m = 0 }
        let chunk = 256
        var acc = SIMD8<Float>(repeating: 0)
        withUnsafeTemporaryAllocation(of: Float.self, capacity: chunk) { tmp in
            let t = tmp.baseAddress!
            var i = 0
            while i < n {
                let len = Swift.min(chunk, n - i)
                for j in 0..<len { t[j] = p[i + j] - m }
                vectorKernels.exp(t, t, len)
                var j = 0
                while j + 8 <= len {
                    acc += UnsafeRawPointer(t + j).loadUnaligned(as: SIMD8<Float>.self)
                    j += 8
                }
                for l in 0..<(len - j) { acc[l] += t[j + l] }
                i += len
            }
        }
        return (m, foldLanes(acc))
    }

    static func laneOrderedSum(_ p: UnsafePointer<Float>, _ n: Int) -> Float {
        var acc = SIMD8<Float>(repeating: 0)
        var i = 0
        while i + 8 <= n {
            acc += UnsafeRawPointer(p + i).loadUnaligned(as: SIMD8<Float>.self)
            i += 8
        }
        for l in 0..<(n - i) { acc[l] += p[i + l] }
        return foldLanes(acc)
    }

    @inline(__always)
    static func foldLanes(_ acc: SIMD8<Float>) -> Float {
        let h = acc.lowHalf + acc.highHalf
        let h2 = h.lowHalf + h.highHalf
        return h2[0] + h2[1]
    }
}

extension Tensor {
    /// A view of `storage` with the given shape, strides and offset (non-negative strides), checked to lie
    /// within the storage. Lets a kernel return a result laid out in another dimension order (for example an
    /// attention output [B, H, T, D] stored as [B, T, H, D]).
    public convenience init(viewing storage: TensorStorage, shape: [Int], strides: [Int], offset: Int) throws {
        guard shape.count == strides.count, offset >= 0, strides.allSatisfy({ $0 >= 0 }) else {
            throw TensorError("bad view: shape \(Tensor.describe(shape)) with strides \(strides) at offset \(offset)")
        }
        let n = try Tensor.checkedCount(shape)
        if n > 0 {
            var last = offset
            for d in 0..<shape.count {
                let (p, o) = (shape[d] - 1).multipliedReportingOverflow(by: strides[d])
                let (sum, o2) = last.addingReportingOverflow(p)
                guard !o, !o2 else { throw TensorError("bad view: strides \(strides) overflow") }
                last = sum
            }
            guard last < storage.count else {
                throw TensorError("bad view: size \(Tensor.describe(shape)) with strides \(strides) at offset \(offset) exceeds a storage of \(storage.count) elements")
            }
        }
        self.init(storage: storage, shape: shape, strides: strides, offset: offset)
    }
}

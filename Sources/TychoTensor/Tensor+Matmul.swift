// Tensor+Matmul.swift: matrix products through OpenBLAS's cblas_sgemm.
//
// Shapes follow torch.matmul: 1-D x 1-D is a dot product; a 1-D operand is a row (left) or column (right)
// vector that is removed from the result; otherwise a: (..., M, K), b: (..., K, N) -> (..., M, N) with the
// batch dimensions broadcast. Transposed views go to BLAS as they are (no copy) when their strides allow.

import COpenBLAS

extension Tensor {
    /// How BLAS can read a matrix view: its transposition flag and leading dimension, or nil if a copy is needed.
    private static func blasLayout(rows: Int, cols: Int, rowStride: Int, colStride: Int) -> (CBLAS_TRANSPOSE, Int)? {
        // BLAS takes 32-bit leading dimensions; wider views are copied first.
        guard rowStride < Int(Int32.max), colStride < Int(Int32.max) else { return nil }
        if colStride == 1 || cols <= 1, rowStride >= Swift.max(1, cols) { return (CblasNoTrans, Swift.max(rowStride, 1)) }
        if rowStride == 1 || rows <= 1, colStride >= Swift.max(1, rows) { return (CblasTrans, Swift.max(colStride, 1)) }
        return nil
    }

    public func matmul(_ other: Tensor) throws -> Tensor {
        guard rank >= 1, other.rank >= 1 else {
            throw TensorError("matmul needs tensors with at least 1 dimension, got sizes \(Tensor.describe(shape)) and \(Tensor.describe(other.shape))")
        }
        if rank == 1 && other.rank == 1 {
            guard shape[0] == other.shape[0] else {
                throw TensorError("shapes \(Tensor.describe(shape)) and \(Tensor.describe(other.shape)) cannot be multiplied")
            }
            let a = try contiguous(), b = try other.contiguous()
            var acc = 0.0
            for i in 0..<shape[0] { acc += Double(a.basePointer[i]) * Double(b.basePointer[i]) }
            return Tensor(scalar: Float(acc)).recorded("dot", [self, other]) { g in
                [self.requiresGrad ? try other.multiplying(g) : nil, other.requiresGrad ? try self.multiplying(g) : nil]
            }
        }
        let (a, b) = try GradMode.with(enabled: false) {
            (rank == 1 ? try unsqueeze(0) : self, other.rank == 1 ? try other.unsqueeze(1) : other)
        }
        let product = try Tensor.batchedMatmul(a, b, displayA: shape, displayB: other.shape)
        var outShape = product.shape
        if rank == 1 { outShape.remove(at: outShape.count - 2) }
        if other.rank == 1 { outShape.removeLast() }
        let out = outShape == product.shape ? product
            : Tensor(storage: product.storage, shape: outShape, strides: Tensor.contiguousStrides(outShape), offset: 0)
        return out.recorded("matmul", [self, other]) { g in
            // With the 1-D operands as matrices: dA = dC · Bᵀ, dB = Aᵀ · dC, batch dimensions summed by the engine.
            let g2 = try g.reshape(product.shape)
            let ga = self.requiresGrad ? try g2.matmul(b.transpose(b.rank - 2, b.rank - 1)).summed(to: a.shape).reshape(self.shape) : nil
            let gb = other.requiresGrad ? try a.transpose(a.rank - 2, a.rank - 1).matmul(g2).summed(to: b.shape).reshape(other.shape) : nil
            return [ga, gb]
        }
    }

    private static func batchedMatmul(_ a: Tensor, _ b: Tensor, displayA: [Int], displayB: [Int]) throws -> Tensor {
        let m = a.shape[a.rank - 2], k = a.shape[a.rank - 1]
        let k2 = b.shape[b.rank - 2], n = b.shape[b.rank - 1]
        guard k == k2 else {
            throw TensorError("shapes \(describe(displayA)) and \(describe(displayB)) cannot be multiplied")
        }
        guard m < Int(Int32.max), n < Int(Int32.max), k < Int(Int32.max) else {
            throw TensorError("matmul dimensions exceed BLAS's 32-bit limit")
        }
        let batchA = Array(a.shape.dropLast(2)), batchB = Array(b.shape.dropLast(2))
        let batch: [Int]
        do { batch = try broadcastShape(batchA, batchB) } catch {
            throw TensorError("shapes \(describe(displayA)) and \(describe(displayB)) cannot be multiplied (batch sizes do not broadcast)")
        }
        let out = try Tensor(uninitializedShape: batch + [m, n], zeroed: k == 0)
        if m == 0 || n == 0 || k == 0 || out.count == 0 { return out }

        // A contiguous left operand times a matrix shared by all batches: one sgemm over (batch*M, K).
        if batchB.allSatisfy({ $0 == 1 }) && a.isContiguous && batchA == batch {
            var bm = try b.reshapeTo2D()
            // An expanded (stride 0) or otherwise unusual right operand is copied, as in the general path.
            if blasLayout(rows: k, cols: n, rowStride: bm.strides[0], colStride: bm.strides[1]) == nil { bm = try bm.contiguous() }
            try gemm(a.basePointer, rows: a.count / k, cols: k, rowStride: k, colStride: 1,
                     bm.basePointer, bRows: k, bCols: n, bRowStride: bm.strides[0], bColStride: bm.strides[1],
                     out.basePointer)
            return out
        }

        var aa = a, bb = b
        if blasLayout(rows: m, cols: k, rowStride: a.strides[a.rank - 2], colStride: a.strides[a.rank - 1]) == nil { aa = try a.contiguous() }
        if blasLayout(rows: k, cols: n, rowStride: b.strides[b.rank - 2], colStride: b.strides[b.rank - 1]) == nil { bb = try b.contiguous() }
        let ea = try aa.expand(batch + [m, k]), eb = try bb.expand(batch + [k, n])
        let batchCount = batch.reduce(1, *)
        var idx = [Int](repeating: 0, count: batch.count)
        for bi in 0..<batchCount {
            var rem = bi
            for d in stride(from: batch.count - 1, through: 0, by: -1) { idx[d] = rem % batch[d]; rem /= batch[d] }
            var oa = ea.offset, ob = eb.offset
            for d in 0..<batch.count { oa += idx[d] * ea.strides[d]; ob += idx[d] * eb.strides[d] }
            let r = batch.count
            try gemm(ea.storage.pointer + oa, rows: m, cols: k, rowStride: ea.strides[r], colStride: ea.strides[r + 1],
                     eb.storage.pointer + ob, bRows: k, bCols: n, bRowStride: eb.strides[r], bColStride: eb.strides[r + 1],
                     out.basePointer + bi * m * n)
        }
        return out
    }

    /// A 2-D view of a tensor whose leading dimensions are all 1.
    private func reshapeTo2D() throws -> Tensor {
        let r = rank
        if r == 2 { return self }
        return Tensor(storage: storage, shape: [shape[r - 2], shape[r - 1]], strides: [strides[r - 2], strides[r - 1]], offset: offset)
    }

    /// C (rows x bCols, contiguous) = A (rows x cols) * B (bRows x bCols).
    private static func gemm(_ a: UnsafeMutablePointer<Float>, rows: Int, cols: Int, rowStride: Int, colStride: Int,
                             _ b: UnsafeMutablePointer<Float>, bRows: Int, bCols: Int, bRowStride: Int, bColStride: Int,
                             _ c: UnsafeMutablePointer<Float>) throws {
        _ = BLASSetup.configured
        guard let (ta, lda) = blasLayout(rows: rows, cols: cols, rowStride: rowStride, colStride: colStride),
              let (tb, ldb) = blasLayout(rows: bRows, cols: bCols, rowStride: bRowStride, colStride: bColStride),
              rows < Int(Int32.max) else {
            throw TensorError("matmul: operand layout not supported by BLAS")
        }
        RowInvariantGemm.sgemm(transA: ta == CblasTrans, transB: tb == CblasTrans, m: rows, n: bCols, k: cols, alpha: 1,
                               a, lda: lda, b, ldb: ldb, beta: 0, c, ldc: bCols)
    }
}

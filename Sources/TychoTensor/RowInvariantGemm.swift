// RowInvariantGemm.swift: cblas_sgemm whose rows of C do not depend on how many rows are computed together.
//
// Measured with Debian's OpenBLAS 0.3.21 (SkylakeX kernels): with B transposed (C = A·Bᵀ, "NT"), the same row of
// A gives results that differ in the last bits depending on m, the number of rows in the call; with B as stored
// ("NN") every row is bitwise the same for any m from 1 to 2048. A row of a right-padded batch, or a prompt alone
// versus inside a batch, must give exactly the same logits, so NT products copy Bᵀ into a scratch buffer (k x n,
// a small cost next to the product) and run as NN.

import COpenBLAS

enum RowInvariantGemm {
    static func sgemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                      _ a: UnsafePointer<Float>, lda: Int, _ b: UnsafePointer<Float>, ldb: Int,
                      beta: Float, _ c: UnsafeMutablePointer<Float>, ldc: Int) {
        _ = BLASSetup.configured
        if transB && !transA && k > 0 && n > 0 {
            let scratch = UnsafeMutablePointer<Float>.allocate(capacity: k * n)
            defer { scratch.deallocate() }
            // B is stored n x k (row stride ldb); scratch = Bᵀ, k x n, in 16 x 16 tiles for the caches.
            let tile = 16
            for j0 in stride(from: 0, to: n, by: tile) {
                for i0 in stride(from: 0, to: k, by: tile) {
                    for j in j0..<min(j0 + tile, n) {
                        let src = b + j * ldb
                        for i in i0..<min(i0 + tile, k) { scratch[i * n + j] = src[i] }
                    }
                }
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(m), Int32(n), Int32(k), alpha,
                        a, Int32(lda), scratch, Int32(n), beta, c, Int32(ldc))
            return
        }
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }
}

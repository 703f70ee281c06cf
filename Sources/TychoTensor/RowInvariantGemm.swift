// RowInvariantGemm.swift: cblas_sgemm whose rows of C do not depend on how many rows are computed together.
//
// Measured with Debian's OpenBLAS 0.3.21 (SkylakeX kernels): with B transposed (C = A·Bᵀ, "NT"), the same row of
// A gives results that differ in the last bits depending on m, the number of rows in the call; with B as stored
// ("NN") every row is bitwise the same for any m from 1 to 2048. A row of a right-padded batch, or a prompt alone
// versus inside a batch, must give exactly the same logits, so NT products copy Bᵀ into a scratch buffer (k x n,
// a small cost next to the product) and run as NN.
//
// Threads: OpenBLAS runs single-threaded (Parallel.swift); a large product is cut into blocks of rows of C whose
// boundaries depend only on the sizes, and the blocks run on Tycho's worker threads. Each block is one
// single-threaded OpenBLAS call, computed the same way by whichever thread runs it, so the result does not depend
// on the thread count.

import COpenBLAS
import CTensorKernels

enum RowInvariantGemm {
    /// Products with less work (m·n·k) than this run as one call.
    static let blockWork = 1 << 23
    /// Rows per block at least (OpenBLAS packs B once per call: fewer, taller blocks waste less), and at most
    /// this many blocks. Measured: with K >= 512, transposed-A products (TN) give rows that depend on the block's
    /// height, so blocks come from the sizes alone, never from the thread count.
    static let minimumBlockRows = 256
    static let maximumBlocks = 4

    static func sgemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                      _ a: UnsafePointer<Float>, lda: Int, _ b: UnsafePointer<Float>, ldb: Int,
                      beta: Float, _ c: UnsafeMutablePointer<Float>, ldc: Int) {
        _ = Parallel.threads  // sets OpenBLAS to one thread before the first call
        let work = m * n * k
        let blocks = work < blockWork ? 1 : min(max(m / minimumBlockRows, 1), maximumBlocks)
        if blocks <= 1 {
            single(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a, lda: lda, b, ldb: ldb,
                   beta: beta, c, ldc: ldc)
            return
        }
        // B transposed once for all blocks (see above), then NN blocks.
        var bb = b, ldbb = ldb, tb = transB
        var scratch: UnsafeMutablePointer<Float>?
        if transB && !transA {
            let s = transposed(b, rows: n, cols: k, ld: ldb)
            scratch = s
            bb = UnsafePointer(s); ldbb = n; tb = false
        }
        defer { scratch?.deallocate() }
        let bbc = bb, ldbc = ldbb, tbc = tb
        Parallel.forRanges(blocks, cost: blockWork) { r in
            for blk in r {
                let r0 = m * blk / blocks, r1 = m * (blk + 1) / blocks
                guard r0 < r1 else { continue }
                // Row r of op(A) is A + r·lda as stored, or column r (A + r) when A is stored transposed.
                let ap = transA ? a + r0 : a + r0 * lda
                single(transA: transA, transB: tbc, m: r1 - r0, n: n, k: k, alpha: alpha, ap, lda: lda, bbc, ldb: ldbc,
                       beta: beta, c + r0 * ldc, ldc: ldc)
            }
        }
    }

    /// Bᵀ of B stored rows x cols (row stride ld), as a new cols x rows matrix.
    static func transposed(_ b: UnsafePointer<Float>, rows n: Int, cols k: Int, ld: Int) -> UnsafeMutablePointer<Float> {
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: k * n)
        transpose(b, rows: n, cols: k, ld: ld, into: scratch, ldOut: n)
        return scratch
    }

    /// out (cols x rows, row stride ldOut) = Bᵀ of B stored rows x cols (row stride ld): CTensorKernels'
    /// tk_transpose (4 x 4 blocks of vector shuffles, about 3x faster than a scalar loop).
    static func transpose(_ b: UnsafePointer<Float>, rows n: Int, cols k: Int, ld: Int,
                          into out: UnsafeMutablePointer<Float>, ldOut: Int) {
        tk_transpose(b, n, k, ld, out, ldOut)
    }

    static func single(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                      _ a: UnsafePointer<Float>, lda: Int, _ b: UnsafePointer<Float>, ldb: Int,
                      beta: Float, _ c: UnsafeMutablePointer<Float>, ldc: Int) {
        _ = BLASSetup.configured
        if transB && !transA && k > 0 && n > 0 {
            // B is stored n x k (row stride ldb); scratch = Bᵀ, k x n.
            let scratch = transposed(b, rows: n, cols: k, ld: ldb)
            defer { scratch.deallocate() }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(m), Int32(n), Int32(k), alpha,
                        a, Int32(lda), scratch, Int32(n), beta, c, Int32(ldc))
            return
        }
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }
}

// CDecodeKernels.h: the products of generation's decode step (TychoNN's IncrementalDecoder), compiled for several
// x86-64 instruction sets and chosen at run time (dispatch.c, as CTensorKernels does).
//
// What makes them different from BLAS: every output element is one sum, accumulated by fused multiply-adds in
// a fixed order over its terms, starting from 0, whatever the sizes of the call, the split across threads or
// the instruction set. So a row of a product never depends on how many rows are computed with it (OpenBLAS
// 0.3.21 switches between its small-matrix and blocked kernels by m·n·k, and the two round differently once k
// exceeds its block), and the three variants give the same bits. Generation relies on that: a sequence's logits
// do not depend on the other sequences decoded beside it.
//
// Lengths, leading dimensions and strides are in elements; matrices are row-major. Outputs never overlap inputs.

#ifndef TYCHO_CDECODEKERNELS_H
#define TYCHO_CDECODEKERNELS_H

#ifdef __cplusplus
extern "C" {
#endif

/// Columns per packed weight panel (see tdk_pack).
#define TDK_PANEL 64

/// The packed form of a k x n row-major matrix w (row stride ldw): panel q (columns 64q ..< 64q + 64) is a
/// k x 64 row-major block at out + q * k * 64, zero beyond column n. `out` holds tdk_packed_count(k, n) floats.
/// Packed, a panel streams through the caches in order (rows of a wide matrix are pages apart).
void tdk_pack(const float *w, long ldw, long k, long n, float *out);
long tdk_packed_count(long k, long n);

typedef struct tdk_kernels {
    const char *name;  ///< "generic", "avx2" or "avx512"

    /// y[i][j] = (sum over p < k, in order, of x[i][p] * w[p][j]) + (bias ? bias[j] : 0), for i < m and the
    /// columns j of panels panel0 ..< panel1 (j < n). x is m x k (row stride ldx), w is k x n packed by tdk_pack,
    /// y is m x n (row stride ldy).
    void (*gemm)(const float *x, long ldx, const float *w, long k, long n, const float *bias, float *y, long ldy,
                 long m, long panel0, long panel1);

    /// s[j] = scale * (sum over c < d, in order, of q[c] * kt[c * ldk + j]) for j < n: one query against n keys
    /// stored transposed (key j is column j of a d x ldk matrix).
    void (*scores)(const float *q, const float *kt, long ldk, long d, long n, float scale, float *s);

    /// out[c] = sum over j < n, in order, of p[j] * v[j * d + c], for c < d: probabilities times value rows.
    void (*mix)(const float *p, const float *v, long n, long d, float *out);
} tdk_kernels;

/// The variant in use: the widest this CPU supports, capped by TYCHO_KERNELS ("generic", "avx2", "avx512") as
/// for CTensorKernels. Chosen once, on first use.
const tdk_kernels *tdk_active(void);

/// Variant `level` (0 generic, 1 avx2 + fma, 2 avx512), or NULL when this CPU (or build) lacks it.
const tdk_kernels *tdk_variant(int level);

#ifdef __cplusplus
}
#endif

#endif

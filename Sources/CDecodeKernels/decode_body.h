// decode_body.h: the decode kernels of CDecodeKernels.h, written once over clang vector types and included by one
// .c file per instruction set (kernels_generic.c, kernels_avx2.c, kernels_avx512.c).
//
// The including file defines, before including this one:
//   W                      floats per vector
//   FMA(a,b,c)             a * b + c rounded once (always fused: results must not depend on the variant)
//   TDK_TABLE, TDK_NAME    the tdk_kernels table to define and its name
//
// Every output element is accumulated in one place (a vector lane or a scalar), from 0, by FMA over its terms in
// order; register blocks, column panels, tails and thread splits only decide which lane does the work. So an
// element's bits depend on its own inputs alone (and equal across variants). Contraction is off: the bias add
// and the scaling stay separate roundings.

#pragma STDC FP_CONTRACT OFF
#pragma clang diagnostic ignored "-Wpsabi"

#include <math.h>

#if TDK_PANEL % (4 * W) != 0
#error "a packed panel must hold whole sub-panels"
#endif

typedef float vf __attribute__((ext_vector_type(W)));

static inline vf ld(const float *p) { vf v; __builtin_memcpy(&v, p, sizeof v); return v; }
static inline void st(float *p, vf v) { __builtin_memcpy(p, &v, sizeof v); }
static inline float fma1(float a, float b, float c) { return __builtin_elementwise_fma(a, b, c); }

// MARK: gemm

enum { NR = 4, NV = 4 };  // register block: NR rows x NV vectors of columns (a sub-panel of NV * W columns)

/// The first `m` (< W) floats at p, zeros after.
static inline vf ld_part(const float *p, long m) {
    float b[W];
    for (int i = 0; i < W; i++) b[i] = 0.0f;
    __builtin_memcpy(b, p, (unsigned long)m * sizeof(float));
    return ld(b);
}

/// Packed rows fetched ahead by the first row block of a panel (the weights come from L3; the other blocks find
/// them in L2). Measured on Emerald Rapids, config B shapes: +30% over the hardware prefetcher alone.
enum { PREFETCH_ROWS = 8 };

/// R rows x NV vectors of one packed panel (row stride TDK_PANEL): y[r][c] = sum_p x[r][p] * w[p][c] (+ bias[c])
/// for the first `cols` columns (the rest of the sub-panel is zero padding, computed and not stored). `ahead`:
/// prefetch the panel's rows further down (prefetches change no result).
static inline __attribute__((always_inline)) void gemm_block(const int R, const float *x, long ldx, const float *w,
                                                             const float *bias, float *y, long ldy, long k,
                                                             long cols, int ahead) {
    vf acc[NR][NV];
    for (int r = 0; r < R; r++)
        for (int v = 0; v < NV; v++) acc[r][v] = (vf)0.0f;
    for (long p = 0; p < k; p++) {
        const float *wp = w + p * TDK_PANEL;
        if (ahead)
            for (int c = 0; c < NV * W; c += 16) __builtin_prefetch(wp + PREFETCH_ROWS * TDK_PANEL + c);
        vf wv[NV];
        for (int v = 0; v < NV; v++) wv[v] = ld(wp + v * W);
        for (int r = 0; r < R; r++) {
            const vf xb = (vf)x[r * ldx + p];
            for (int v = 0; v < NV; v++) acc[r][v] = FMA(xb, wv[v], acc[r][v]);
        }
    }
    for (int v = 0; v < NV; v++) {
        const long c = v * W, left = cols - c;
        if (left <= 0) break;
        const vf b = bias ? (left >= W ? ld(bias + c) : ld_part(bias + c, left)) : (vf)0.0f;
        for (int r = 0; r < R; r++) {
            const vf out = bias ? acc[r][v] + b : acc[r][v];
            if (left >= W) {
                st(y + r * ldy + c, out);
            } else {
                float tmp[W];
                st(tmp, out);
                __builtin_memcpy(y + r * ldy + c, tmp, (unsigned long)left * sizeof(float));
            }
        }
    }
}

static void gemm(const float *x, long ldx, const float *w, long k, long n, const float *bias, float *y, long ldy,
                 long m, long panel0, long panel1) {
    for (long q = panel0; q < panel1; q++) {
        const float *wq = w + q * k * TDK_PANEL;
        const long j0 = q * TDK_PANEL;
        const long valid = n - j0 < TDK_PANEL ? n - j0 : TDK_PANEL;
        for (long s = 0; s < valid; s += NV * W) {
            const long cols = valid - s < NV * W ? valid - s : NV * W;
            const float *b = bias ? bias + j0 + s : 0;
            long i = 0;
            for (; i + NR <= m; i += NR)
                gemm_block(NR, x + i * ldx, ldx, wq + s, b, y + i * ldy + j0 + s, ldy, k, cols, i == 0);
            switch (m - i) {
            case 3: gemm_block(3, x + i * ldx, ldx, wq + s, b, y + i * ldy + j0 + s, ldy, k, cols, i == 0); break;
            case 2: gemm_block(2, x + i * ldx, ldx, wq + s, b, y + i * ldy + j0 + s, ldy, k, cols, i == 0); break;
            case 1: gemm_block(1, x + i * ldx, ldx, wq + s, b, y + i * ldy + j0 + s, ldy, k, cols, i == 0); break;
            default: break;
            }
        }
    }
}

// MARK: attention

static void scores(const float *q, const float *kt, long ldk, long d, long n, float scale, float *s) {
    long j = 0;
    const vf sv = (vf)scale;
    for (; j + 4 * W <= n; j += 4 * W) {
        vf a0 = (vf)0.0f, a1 = (vf)0.0f, a2 = (vf)0.0f, a3 = (vf)0.0f;
        for (long c = 0; c < d; c++) {
            const float *row = kt + c * ldk + j;
            const vf qb = (vf)q[c];
            a0 = FMA(qb, ld(row), a0);
            a1 = FMA(qb, ld(row + W), a1);
            a2 = FMA(qb, ld(row + 2 * W), a2);
            a3 = FMA(qb, ld(row + 3 * W), a3);
        }
        st(s + j, a0 * sv);
        st(s + j + W, a1 * sv);
        st(s + j + 2 * W, a2 * sv);
        st(s + j + 3 * W, a3 * sv);
    }
    for (; j + W <= n; j += W) {
        vf a = (vf)0.0f;
        for (long c = 0; c < d; c++) a = FMA((vf)q[c], ld(kt + c * ldk + j), a);
        st(s + j, a * sv);
    }
    for (; j < n; j++) {
        float a = 0.0f;
        for (long c = 0; c < d; c++) a = fma1(q[c], kt[c * ldk + j], a);
        s[j] = a * scale;
    }
}

static void mix(const float *p, const float *v, long n, long d, float *out) {
    long c = 0;
    for (; c + 4 * W <= d; c += 4 * W) {
        vf a0 = (vf)0.0f, a1 = (vf)0.0f, a2 = (vf)0.0f, a3 = (vf)0.0f;
        for (long j = 0; j < n; j++) {
            const float *row = v + j * d + c;
            const vf pb = (vf)p[j];
            a0 = FMA(pb, ld(row), a0);
            a1 = FMA(pb, ld(row + W), a1);
            a2 = FMA(pb, ld(row + 2 * W), a2);
            a3 = FMA(pb, ld(row + 3 * W), a3);
        }
        st(out + c, a0);
        st(out + c + W, a1);
        st(out + c + 2 * W, a2);
        st(out + c + 3 * W, a3);
    }
    for (; c + W <= d; c += W) {
        vf a = (vf)0.0f;
        for (long j = 0; j < n; j++) a = FMA((vf)p[j], ld(v + j * d + c), a);
        st(out + c, a);
    }
    for (; c < d; c++) {
        float a = 0.0f;
        for (long j = 0; j < n; j++) a = fma1(p[j], v[j * d + c], a);
        out[c] = a;
    }
}

const tdk_kernels TDK_TABLE = {
    .name = TDK_NAME,
    .gemm = gemm,
    .scores = scores,
    .mix = mix,
};

// kernels_avx512.c: the kernels for x86-64 CPUs with AVX-512 (F, DQ, BW, VL: Skylake-X and later, Zen 4).
#include "CTensorKernels.h"

#if defined(__x86_64__)
#include <immintrin.h>

#pragma clang attribute push(__attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,avx2,fma"))), \
                             apply_to = function)
#define W 16
#define FMA(a, b, c) __builtin_elementwise_fma((a), (b), (c))
#define TK_HAS_FMA 1
#define TK_SCALEF(u, q) ((vf)_mm512_scalef_ps((__m512)(u), (__m512)(q)))
#define TK_LOAD_PART(p, m, pad) \
    ((vf)_mm512_mask_loadu_ps(_mm512_set1_ps(pad), (__mmask16)((1u << (m)) - 1), (p)))
#define TK_STORE_PART(p, v, m) _mm512_mask_storeu_ps((p), (__mmask16)((1u << (m)) - 1), (__m512)(v))
#define TK_TABLE tk_kernels_avx512
#define TK_NAME "avx512"
#include "kernels_body.h"
#pragma clang attribute pop
#endif

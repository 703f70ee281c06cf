// kernels_avx2.c: the kernels for x86-64 CPUs with AVX2 and FMA (Haswell and later, Zen).
#include "CTensorKernels.h"

#if defined(__x86_64__)
#include <immintrin.h>

#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#define W 8
#define FMA(a, b, c) __builtin_elementwise_fma((a), (b), (c))
#define TK_HAS_FMA 1
// Lanes below m, as an integer mask (vmaskmovps: masked-off lanes are neither read nor written).
#define TK_LANES_BELOW(m) _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(m)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))
#define TK_LOAD_PART(p, m, pad)                                                                            \
    ((vf)_mm256_blendv_ps(_mm256_set1_ps(pad), _mm256_maskload_ps((p), TK_LANES_BELOW(m)),                 \
                          _mm256_castsi256_ps(TK_LANES_BELOW(m))))
#define TK_STORE_PART(p, v, m) _mm256_maskstore_ps((p), TK_LANES_BELOW(m), (__m256)(v))
#define TK_TABLE tk_kernels_avx2
#define TK_NAME "avx2"
#include "kernels_body.h"
#pragma clang attribute pop
#endif

// kernels_avx2.c: the decode kernels for x86-64 CPUs with AVX2 and FMA (Haswell and later, Zen).
#include "CDecodeKernels.h"

#if defined(__x86_64__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#define W 8
#define FMA(a, b, c) __builtin_elementwise_fma((a), (b), (c))
#define TDK_TABLE tdk_kernels_avx2
#define TDK_NAME "avx2"
#include "decode_body.h"
#pragma clang attribute pop
#endif

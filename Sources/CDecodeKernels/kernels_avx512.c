// kernels_avx512.c: the decode kernels for x86-64 CPUs with AVX-512F (Skylake-X and later, Zen 4).
#include "CDecodeKernels.h"

#if defined(__x86_64__)
#pragma clang attribute push(__attribute__((target("avx512f,avx2,fma"))), apply_to = function)
#define W 16
#define FMA(a, b, c) __builtin_elementwise_fma((a), (b), (c))
#define TDK_TABLE tdk_kernels_avx512
#define TDK_NAME "avx512"
#include "decode_body.h"
#pragma clang attribute pop
#endif

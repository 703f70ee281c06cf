// kernels_generic.c: the decode kernels for any CPU (baseline x86-64 has no FMA instruction: the fused
// multiply-adds go through the C library's fmaf, exact and slow, so results stay those of the other variants).
#include "CDecodeKernels.h"

#define W 4
#define FMA(a, b, c) __builtin_elementwise_fma((a), (b), (c))
#define TDK_TABLE tdk_kernels_generic
#define TDK_NAME "generic"
#include "decode_body.h"

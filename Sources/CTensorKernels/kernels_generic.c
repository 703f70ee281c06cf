// kernels_generic.c: the kernels for any CPU this target builds for (baseline x86-64: SSE2, no FMA; arm64).
#include "CTensorKernels.h"

#define W 8
#define FMA(a, b, c) ((a) * (b) + (c))
#define TK_TABLE tk_kernels_generic
#define TK_NAME "generic"
#include "kernels_body.h"

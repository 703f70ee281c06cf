// dispatch.c: picks the decode kernel variant for this CPU once, on first use (as CTensorKernels/dispatch.c).
// All variants give the same bits (see CDecodeKernels.h); the choice only changes speed.

#include "CDecodeKernels.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

extern const tdk_kernels tdk_kernels_generic;
#if defined(__x86_64__)
extern const tdk_kernels tdk_kernels_avx2;
extern const tdk_kernels tdk_kernels_avx512;
#endif

const tdk_kernels *tdk_variant(int level) {
    switch (level) {
    case 0:
        return &tdk_kernels_generic;
#if defined(__x86_64__)
    case 1:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? &tdk_kernels_avx2 : 0;
    case 2:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")
                   ? &tdk_kernels_avx512
                   : 0;
#endif
    default:
        return 0;
    }
}

static const tdk_kernels *choose(void) {
    int cap = 2;
    const char *env = getenv("TYCHO_KERNELS");
    if (env) {
        if (strcmp(env, "generic") == 0) cap = 0;
        else if (strcmp(env, "avx2") == 0) cap = 1;
    }
    for (int level = cap; level > 0; level--) {
        const tdk_kernels *k = tdk_variant(level);
        if (k) return k;
    }
    return &tdk_kernels_generic;
}

long tdk_packed_count(long k, long n) { return (n + TDK_PANEL - 1) / TDK_PANEL * TDK_PANEL * k; }

void tdk_pack(const float *w, long ldw, long k, long n, float *out) {
    const long panels = (n + TDK_PANEL - 1) / TDK_PANEL;
    for (long q = 0; q < panels; q++) {
        const long j0 = q * TDK_PANEL, cols = n - j0 < TDK_PANEL ? n - j0 : TDK_PANEL;
        float *dst = out + q * k * TDK_PANEL;
        for (long p = 0; p < k; p++) {
            memcpy(dst + p * TDK_PANEL, w + p * ldw + j0, (unsigned long)cols * sizeof(float));
            memset(dst + p * TDK_PANEL + cols, 0, (unsigned long)(TDK_PANEL - cols) * sizeof(float));
        }
    }
}

static _Atomic(const tdk_kernels *) active;

const tdk_kernels *tdk_active(void) {
    const tdk_kernels *k = atomic_load_explicit(&active, memory_order_acquire);
    if (!k) {
        k = choose();
        atomic_store_explicit(&active, k, memory_order_release);
    }
    return k;
}

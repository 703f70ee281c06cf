// dispatch.c: picks the kernel variant for this CPU once, on first use.
//
// x86-64: AVX-512 (F, DQ, BW, VL) if present, else AVX2 with FMA, else the generic build. The compiler
// runtime's __builtin_cpu_supports also checks that the OS saves the wide registers. TYCHO_KERNELS=generic,
// avx2 or avx512 caps the choice (to measure or test a narrower variant on a wide machine); a cap above what
// the CPU has, or an unknown value, is ignored.

#include "CTensorKernels.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

extern const tk_kernels tk_kernels_generic;
#if defined(__x86_64__)
extern const tk_kernels tk_kernels_avx2;
extern const tk_kernels tk_kernels_avx512;
#endif

const tk_kernels *tk_variant(int level) {
    switch (level) {
    case 0:
        return &tk_kernels_generic;
#if defined(__x86_64__)
    case 1:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? &tk_kernels_avx2 : 0;
    case 2:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
                       __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
                       __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")
                   ? &tk_kernels_avx512
                   : 0;
#endif
    default:
        return 0;
    }
}

static const tk_kernels *choose(void) {
    int cap = 2;
    const char *env = getenv("TYCHO_KERNELS");
    if (env) {
        if (strcmp(env, "generic") == 0) cap = 0;
        else if (strcmp(env, "avx2") == 0) cap = 1;
    }
    for (int level = cap; level > 0; level--) {
        const tk_kernels *k = tk_variant(level);
        if (k) return k;
    }
    return &tk_kernels_generic;
}

static _Atomic(const tk_kernels *) active;

const tk_kernels *tk_active(void) {
    const tk_kernels *k = atomic_load_explicit(&active, memory_order_acquire);
    if (!k) {
        // Racing first calls all compute the same answer.
        k = choose();
        atomic_store_explicit(&active, k, memory_order_release);
    }
    return k;
}

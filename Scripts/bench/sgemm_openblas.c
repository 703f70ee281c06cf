/* sgemm_openblas.c: OpenBLAS's own cblas_sgemm rate (GFLOP/s, medians), the ceiling for tensor matmul.
 * Same cases, timing method and output format as matmul.lua (see common.lua).
 *   cc -O2 -o /tmp/sgemm_openblas Scripts/bench/sgemm_openblas.c $(pkg-config --cflags --libs openblas)
 *   /tmp/sgemm_openblas [quick] [threads=1,2] [core=default]
 * By default it corrects OpenBLAS's kernel choice exactly as Tycho does (Sources/TychoTensor/BLASSetup.swift):
 * when OpenBLAS fell back to its generic Prescott kernels on a CPU with AVX-512 (or AVX2 + FMA) and
 * OPENBLAS_CORETYPE is unset, it selects SkylakeX (or Haswell). `core=default` keeps OpenBLAS's own choice.
 * The kernel family used is printed as core=NAME on every line.
 */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

extern void openblas_set_num_threads(int);
extern char *openblas_get_corename(void);
extern void gotoblas_dynamic_init(void);
extern void gotoblas_dynamic_quit(void);

static void fix_core(void) {
    if (getenv("OPENBLAS_CORETYPE") || strcasecmp(openblas_get_corename(), "prescott") != 0) return;
    __builtin_cpu_init();
    const char *core = NULL;
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
        core = "SkylakeX";
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        core = "Haswell";
    if (!core) return;
    setenv("OPENBLAS_CORETYPE", core, 0);
    gotoblas_dynamic_quit();
    gotoblas_dynamic_init();
    unsetenv("OPENBLAS_CORETYPE");
}

static int repeats = 7;
static double sample_seconds = 0.15;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* One call: C[i] = A[i] * B[i] for every batch entry, a fresh output each time as tensor matmul allocates one. */
static void run(int batch, int n, const float *a, const float *b) {
    float *c = malloc(sizeof(float) * (size_t)batch * n * n);
    for (int i = 0; i < batch; i++) {
        size_t o = (size_t)i * n * n;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a + o, n, b + o, n, 0.0f, c + o, n);
    }
    free(c);
}

static float *randn(size_t count) {
    float *p = malloc(sizeof(float) * count);
    for (size_t i = 0; i < count; i++) p[i] = (float)rand() / RAND_MAX * 2.0f - 1.0f;
    return p;
}

int main(int argc, char **argv) {
    int threads[8] = {1, 2}, nthreads = 2, quick = 0, keep_core = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "quick") == 0) { quick = 1; repeats = 3; sample_seconds = 0.05; }
        else if (strncmp(argv[i], "threads=", 8) == 0) {
            nthreads = 0;
            for (char *s = strtok(argv[i] + 8, ","); s && nthreads < 8; s = strtok(NULL, ",")) threads[nthreads++] = atoi(s);
        } else if (strncmp(argv[i], "repeats=", 8) == 0) repeats = atoi(argv[i] + 8);
        else if (strcmp(argv[i], "core=default") == 0) keep_core = 1;
    }
    if (!keep_core) fix_core();
    const char *impl = keep_core ? "openblas-default" : "openblas";
    struct { const char *name; int batch, n; } cases[] = {
        {"256", 1, 256}, {"512", 1, 512}, {"1024", 1, 1024}, {"2048", 1, 2048}, {"16x256", 16, 256},
    };
    int ncases = sizeof cases / sizeof cases[0];
    double samples[64];
    if (repeats > 64) repeats = 64;
    for (int t = 0; t < nthreads; t++) {
        openblas_set_num_threads(threads[t]);
        for (int k = 0; k < ncases; k++) {
            int batch = cases[k].batch, n = cases[k].n;
            if (quick && n == 2048) continue;
            size_t count = (size_t)batch * n * n;
            float *a = randn(count), *b = randn(count);
            run(batch, n, a, b);
            double t0 = now();
            run(batch, n, a, b);
            double once = now() - t0;
            if (once < 1e-7) once = 1e-7;
            int iters = (int)(sample_seconds / once + 0.5);
            if (iters < 1) iters = 1;
            for (int r = 0; r < repeats; r++) {
                double s = now();
                for (int i = 0; i < iters; i++) run(batch, n, a, b);
                samples[r] = (now() - s) / iters;
            }
            qsort(samples, repeats, sizeof(double), cmp);
            double med = repeats % 2 ? samples[repeats / 2] : (samples[repeats / 2 - 1] + samples[repeats / 2]) / 2;
            double flops = 2.0 * batch * n * n * (double)n;
            printf("bench=matmul impl=%s case=%s threads=%d median=%.2f min=%.2f max=%.2f unit=GFLOP/s core=%s\n",
                   impl, cases[k].name, threads[t], flops / med / 1e9, flops / samples[repeats - 1] / 1e9,
                   flops / samples[0] / 1e9, openblas_get_corename());
            fflush(stdout);
            free(a);
            free(b);
        }
    }
    return 0;
}

// kernels.c: every CTensorKernels kernel on its own, for each instruction-set variant this CPU runs.
//
//   clang -O2 -I Sources/CTensorKernels/include -o .build/kernels Scripts/bench/kernels.c
//       Sources/CTensorKernels/*.c -lm     (one command; clang: the kernels use its vector extensions)
//   .build/kernels [n=65536] [rounds=40]
//
// Inputs and outputs are preallocated arrays of n floats (65536: 256 KB each, in L2), about standard normal
// inputs (positive ones for log), softmax rows of 1024. The time is the calling thread's CPU time
// (CLOCK_THREAD_CPUTIME_ID) over `rounds` samples taken round-robin across kernels; the minimum is the figure
// to read on a shared VM (other load only ever adds time). It is the kernel's arithmetic alone, without
// allocation, page faults or threads, which elementwise.lua includes. One line per kernel and variant:
//   bench=kernels impl=avx512 case=gelu threads=1 median=0.52 min=0.49 unit=ns/elem n=65536

#include "CTensorKernels.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double cpu_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static const tk_kernels *k;
static const float *xs, *ps, *gs;
static float *ys;
static long n;

#define ROWS(f) for (long i = 0; i + 1024 <= n; i += 1024) f
static void b_exp(void) { k->exp(xs, ys, n); }
static void b_log(void) { k->log(ps, ys, n); }
static void b_tanh(void) { k->tanh(xs, ys, n); }
static void b_sigmoid(void) { k->sigmoid(xs, ys, n); }
static void b_silu(void) { k->silu(xs, ys, n); }
static void b_gelu(void) { k->gelu(xs, ys, n); }
static void b_gelu_tanh(void) { k->gelu_tanh(xs, ys, n); }
static void b_gelu_backward(void) { k->gelu_backward(xs, gs, ys, n); }
static void b_gelu_tanh_backward(void) { k->gelu_tanh_backward(xs, gs, ys, n); }
static void b_silu_backward(void) { k->silu_backward(xs, gs, ys, n); }
static void b_sigmoid_backward(void) { k->sigmoid_backward(ps, gs, ys, n); }
static void b_tanh_backward(void) { k->tanh_backward(ps, gs, ys, n); }
static void b_softmax(void) { ROWS(k->softmax_row(xs + i, ys + i, 1024)); }
static void b_log_softmax(void) { ROWS(k->log_softmax_row(xs + i, ys + i, 1024)); }
static void b_logsumexp(void) { ROWS(ys[i / 1024] = k->logsumexp(xs + i, 1024, 1)); }
static void b_softmax_backward(void) { ROWS(k->softmax_backward_row(ps + i, gs + i, ys + i, 1024)); }
static void b_log_softmax_backward(void) { ROWS(k->log_softmax_backward_row(xs + i, gs + i, ys + i, 1024)); }

static const struct { const char *name; void (*run)(void); } cases[] = {
    {"exp", b_exp}, {"log", b_log}, {"tanh", b_tanh}, {"sigmoid", b_sigmoid}, {"silu", b_silu},
    {"gelu", b_gelu}, {"gelu_tanh", b_gelu_tanh}, {"softmax", b_softmax}, {"log_softmax", b_log_softmax},
    {"logsumexp", b_logsumexp}, {"gelu_backward", b_gelu_backward}, {"gelu_tanh_backward", b_gelu_tanh_backward},
    {"silu_backward", b_silu_backward}, {"sigmoid_backward", b_sigmoid_backward},
    {"tanh_backward", b_tanh_backward}, {"softmax_backward", b_softmax_backward},
    {"log_softmax_backward", b_log_softmax_backward},
};
enum { NCASES = sizeof cases / sizeof cases[0] };

int main(int argc, char **argv) {
    n = 65536;
    int rounds = 40;
    for (int a = 1; a < argc; a++) {
        if (strncmp(argv[a], "n=", 2) == 0) n = atol(argv[a] + 2);
        else if (strncmp(argv[a], "rounds=", 7) == 0) rounds = atoi(argv[a] + 7);
    }
    n = n < 1024 ? 1024 : n / 1024 * 1024;
    float *x = malloc((size_t)n * sizeof(float)), *p = malloc((size_t)n * sizeof(float));
    float *g = malloc((size_t)n * sizeof(float));
    ys = malloc((size_t)n * sizeof(float));
    if (!x || !p || !g || !ys) return 1;
    srand(1);
    for (long i = 0; i < n; i++) {
        float u = 0;  // Irwin-Hall: about standard normal
        for (int j = 0; j < 12; j++) u += (float)rand() / (float)RAND_MAX;
        x[i] = u - 6;
        p[i] = fabsf(x[i]) * 0.2f + 0.01f;  // positive, and below 1 for the sigmoid / tanh backward
        g[i] = (float)rand() / (float)RAND_MAX - 0.5f;
    }
    xs = x, ps = p, gs = g;
    for (int level = 0; level <= 2; level++) {
        k = tk_variant(level);
        if (!k) continue;
        double *ns = malloc(sizeof(double) * NCASES * (size_t)rounds);
        if (!ns) return 1;
        int iters = (int)(1e6 / (double)n) + 1;
        for (int c = 0; c < NCASES; c++) cases[c].run();  // warm up
        for (int r = 0; r < rounds; r++) {
            for (int c = 0; c < NCASES; c++) {
                double t = cpu_seconds();
                for (int i = 0; i < iters; i++) cases[c].run();
                ns[c * rounds + r] = (cpu_seconds() - t) / iters / (double)n * 1e9;
            }
        }
        for (int c = 0; c < NCASES; c++) {
            double *v = ns + c * rounds;
            qsort(v, (size_t)rounds, sizeof(double), by_value);
            double median = rounds % 2 ? v[rounds / 2] : (v[rounds / 2 - 1] + v[rounds / 2]) / 2;
            printf("bench=kernels impl=%s case=%s threads=1 median=%.3f min=%.3f unit=ns/elem n=%ld\n", k->name,
                   cases[c].name, median, v[0], n);
        }
        free(ns);
        fflush(stdout);
    }
    return 0;
}

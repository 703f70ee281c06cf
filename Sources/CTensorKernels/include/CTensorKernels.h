// CTensorKernels.h: Tycho's transcendental and softmax kernels over contiguous float arrays, compiled for
// several x86-64 instruction sets and chosen at run time (see dispatch.c).
//
// Every kernel is pure and element-wise in the sense that matters for determinism: an output element depends
// only on its own input element (or its own row, for the row kernels), never on where an array, a thread's
// chunk or a vector starts. Ragged ends go through the same vector code, padded. So splitting work across
// threads never changes a result. Results do depend on the instruction set (FMA contracts some steps), so
// one machine gives one answer; all variants keep the same accuracy bounds (Tests/TychoTensorTests).
//
// Lengths and strides are in elements. Input and output may be the same array; other overlaps are not allowed.
// No -ffast-math: NaN and infinities behave as the comments say.

#ifndef TYCHO_CTENSORKERNELS_H
#define TYCHO_CTENSORKERNELS_H

#ifdef __cplusplus
extern "C" {
#endif

/// One instruction-set variant of every kernel.
typedef struct tk_kernels {
    const char *name;  ///< "generic", "avx2" or "avx512"
    int lanes;         ///< floats per vector in this variant

    // y[i] = f(x[i]) for i < n.
    void (*exp)(const float *x, float *y, long n);        ///< e^x, at most 1 ulp
    void (*log)(const float *x, float *y, long n);        ///< natural log; NaN below 0, -inf at 0
    void (*tanh)(const float *x, float *y, long n);
    void (*sigmoid)(const float *x, float *y, long n);    ///< 1 / (1 + e^-x)
    void (*silu)(const float *x, float *y, long n);       ///< x * sigmoid(x)
    void (*gelu)(const float *x, float *y, long n);       ///< x * Phi(x), through erfc
    void (*gelu_tanh)(const float *x, float *y, long n);  ///< x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))

    // out[i] = grad[i] * f'(...) for i < n: the backward of the functions above.
    void (*gelu_backward)(const float *x, const float *grad, float *out, long n);       ///< grad * gelu'(x)
    void (*gelu_tanh_backward)(const float *x, const float *grad, float *out, long n);  ///< grad * gelu_tanh'(x)
    void (*silu_backward)(const float *x, const float *grad, float *out, long n);       ///< grad * silu'(x)
    void (*sigmoid_backward)(const float *y, const float *grad, float *out, long n);    ///< grad * y (1 - y)
    void (*tanh_backward)(const float *y, const float *grad, float *out, long n);       ///< grad * (1 - y^2)

    // Rows of n contiguous elements.
    void (*softmax_row)(const float *x, float *y, long n);      ///< e^(x - max) / sum
    void (*log_softmax_row)(const float *x, float *y, long n);  ///< x - max - log(sum e^(x - max))
    /// log(sum(e^x)) of n elements `stride` apart (max ignores NaN; a NaN element makes the sum NaN).
    float (*logsumexp)(const float *x, long n, long stride);
    /// y (softmax output) and grad -> y * (grad - sum(grad * y)).
    void (*softmax_backward_row)(const float *y, const float *grad, float *out, long n);
    /// y (log_softmax output) and grad -> grad - e^y * sum(grad).
    void (*log_softmax_backward_row)(const float *y, const float *grad, float *out, long n);

    // Columns: `width` neighbouring columns (element [k][c] at k * stride + c, k < n), each a row of its own.
    void (*softmax_cols)(const float *x, float *y, long n, long stride, long width, int log);
    void (*softmax_backward_cols)(const float *y, const float *grad, float *out, long n, long stride, long width);
    void (*log_softmax_backward_cols)(const float *y, const float *grad, float *out, long n, long stride,
                                      long width);
} tk_kernels;

/// The variant in use: the widest this CPU supports, capped by the environment variable TYCHO_KERNELS
/// ("generic", "avx2" or "avx512") when it is set. Chosen once, on first use.
const tk_kernels *tk_active(void);

/// Variant `level` (0 generic, 1 avx2 + fma, 2 avx512), or NULL when this CPU (or build) lacks it.
const tk_kernels *tk_variant(int level);

/// out[i * ldo + j] = src[j * ld + i] for j < rows, i < cols: the transpose of a rows x cols matrix (row stride
/// ld >= cols) into a cols x rows one (row stride ldo >= rows). The arrays must not overlap. One build for
/// every CPU (transpose.c): it only moves floats.
void tk_transpose(const float *src, long rows, long cols, long ld, float *out, long ldo);

#ifdef __cplusplus
}
#endif

#endif

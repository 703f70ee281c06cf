// kernels_body.h: the kernels of CTensorKernels.h, written once over clang vector types and included by
// one .c file per instruction set (kernels_generic.c, kernels_avx2.c, kernels_avx512.c).
//
// The including file defines, before including this one:
//   W            floats per vector (8 or 16)
//   FMA(a,b,c)   a * b + c: fused where the target has FMA, else two roundings
//   TK_HAS_FMA   when FMA is fused (exact products by FMA instead of splitting)
//   TK_SCALEF    optionally, TK_SCALEF(u, q) = u * 2^q rounded once (AVX-512's vscalefps)
//   TK_LOAD_PART, TK_STORE_PART  optionally, masked loads and stores of the first m lanes
//   TK_TABLE     the name of the tk_kernels table to define, TK_NAME its name string
// and wraps the include in `#pragma clang attribute push(__attribute__((target(...))), apply_to = function)`
// so every function here is compiled for that instruction set.
//
// Rules that keep results deterministic and accurate:
// - Every step is lane-wise (no horizontal operation inside an element-wise function), and a ragged end is
//   copied into a padded vector and run through the same code, so an element's result never depends on its
//   position. The row kernels reduce in a fixed order that depends only on the row length.
// - No fast-math: contraction is off (FP_CONTRACT below) and FMA is used only where FMA() says so.
// - Polynomials and constants are those of the Swift code they replace (VectorMath.swift before this file),
//   except tanh and log, which are new (coefficients and error bounds in their comments).

#pragma STDC FP_CONTRACT OFF
// Vectors wider than the baseline target's registers are passed between static functions only (all inlined):
// the ABI note does not apply.
#pragma clang diagnostic ignored "-Wpsabi"

#include <math.h>
#include <stdint.h>

typedef float vf __attribute__((ext_vector_type(W)));
typedef int32_t vi __attribute__((ext_vector_type(W)));

// MARK: vector helpers

#define K(c) ((vf)(c))
#define KI(c) ((vi)(c))

static inline vf ld(const float *p) { vf v; __builtin_memcpy(&v, p, sizeof v); return v; }
static inline void st(float *p, vf v) { __builtin_memcpy(p, &v, sizeof v); }

/// The first `m` (< W) elements of p, the other lanes set to `pad` (never reading past p[m - 1]).
static inline vf ld_part(const float *p, long m, float pad) {
#ifdef TK_LOAD_PART
    return TK_LOAD_PART(p, m, pad);
#else
    float b[W];
    for (int k = 0; k < W; k++) b[k] = k < m ? p[k] : pad;
    return ld(b);
#endif
}

/// Stores the first `m` (< W) lanes.
static inline void st_part(float *p, vf v, long m) {
#ifdef TK_STORE_PART
    TK_STORE_PART(p, v, m);
#else
    float b[W];
    st(b, v);
    for (int k = 0; k < W; k++)
        if (k < m) p[k] = b[k];
#endif
}

/// W elements `s` apart (m of them, the rest `pad`).
static inline vf ld_strided(const float *p, long s, long m, float pad) {
    float b[W];
    for (int k = 0; k < W; k++) b[k] = k < m ? p[k * s] : pad;
    return ld(b);
}

static inline vi bits(vf x) { return (vi)x; }
static inline vf fbits(vi x) { return (vf)x; }
static inline vf sel(vi m, vf a, vf b) { return m ? a : b; }
static inline vf vabs(vf x) { return fbits(bits(x) & KI(0x7fffffff)); }
static inline vi is_nan(vf x) { return x != x; }

/// Running maximum as Swift.max(m, v) folds it: v >= m ? v : m (NaN never taken).
static inline vf fold_max(vf m, vf v) { return sel(v >= m, v, m); }

/// The largest lane, NaN ignored; -inf when all lanes are -inf or NaN.
static inline float hmax(vf v) {
    float b[W];
    st(b, v);
    float m = -INFINITY;
    for (int k = 0; k < W; k++) m = b[k] >= m ? b[k] : m;
    return m;
}

/// The sum of the lanes as a pairwise tree (lane k + lane k + W/2, ...): a fixed order.
static inline float hsum(vf v) {
    float b[W];
    st(b, v);
    for (int w = W / 2; w >= 1; w /= 2)
        for (int k = 0; k < w; k++) b[k] += b[k + w];
    return b[0];
}

// MARK: exp

/// e^(h + lo) for h + lo = x in [-104, 104]: Cody-Waite reduction by ln 2, a degree-6 polynomial on
/// [-ln2/2, ln2/2] (SLEEF's expf coefficients), then scaling by 2^q in two steps so that subnormal results
/// are rounded once. `lo` (a correction carried in extra precision) is added after the reduction.
static inline vf exp_core(vf h, vf x, vf lo, int has_lo) {
    const vf magic = K(12582912.0f);  // 1.5 * 2^23: adding it rounds to an integer
    vf shifted = FMA(x, K(1.44269504088896341f), magic);
    vf q = shifted - magic;
    vi qi = bits(shifted) - bits(magic);
    vf r = FMA(q, K(-0.693145751953125f), h);  // q * ln2hi is exact
    r = FMA(q, K(-1.428606765330187045e-06f), r);
    if (has_lo) r = r + lo;
    vf p = K(0.000198527617612853646278381f);
    p = FMA(p, r, K(0.00139304355252534151077271f));
    p = FMA(p, r, K(0.00833336077630519866943359f));
    p = FMA(p, r, K(0.0416664853692054748535156f));
    p = FMA(p, r, K(0.166666671633720397949219f));
    p = FMA(p, r, K(0.5f));
    vf u = FMA(r * r, p, r) + K(1.0f);
#ifdef TK_SCALEF
    (void)qi;
    return TK_SCALEF(u, q);  // u * 2^q rounded once, in one instruction: the same result as below
#else
    // u * 2^q as u * 2^(q>>1) * 2^(q - q>>1): each factor is a normal float for q in [-252, 254].
    vi q1 = qi >> 1, q2 = qi - q1;
    return u * fbits((q1 + 127) << 23) * fbits((q2 + 127) << 23);
#endif
}

/// e^x. NaN gives NaN, +inf (or overflow) +inf, -inf (or underflow) 0. At most 1 ulp.
static inline vf v_exp(vf x) {
    // Clamping keeps q in [-151, 151]; the ends over- or underflow through the scaling anyway.
    vf h = sel(x > K(104.0f), K(104.0f), x);
    h = sel(x < K(-104.0f), K(-104.0f), h);
    return sel(is_nan(x), x, exp_core(h, h, K(0.0f), 0));
}

// MARK: log

/// Natural logarithm: x = 2^k (1 + f) with 1 + f in [sqrt(2)/2, sqrt(2)) (musl's bit trick), then Cephes'
/// logf polynomial in f, with ln 2 split so that k ln2 adds exactly. NaN and x < 0 give NaN, 0 gives -inf,
/// +inf gives +inf; subnormal x are scaled by 2^23 first.
static inline vf v_log(vf x) {
    vi tiny = x < K(1.17549435e-38f);  // subnormal, zero or negative
    vf xs = sel(tiny, x * K(8388608.0f), x);
    vi ix = bits(xs) + KI(0x3f800000 - 0x3f3504f3);
    vi k = (ix >> 23) - KI(0x7f) - (tiny & KI(23));
    vf f = fbits((ix & KI(0x007fffff)) + KI(0x3f3504f3)) - K(1.0f);
    vf e = __builtin_convertvector(k, vf);
    vf z = f * f;
    vf p = K(7.0376836292e-2f);
    p = FMA(p, f, K(-1.1514610310e-1f));
    p = FMA(p, f, K(1.1676998740e-1f));
    p = FMA(p, f, K(-1.2420140846e-1f));
    p = FMA(p, f, K(1.4249322787e-1f));
    p = FMA(p, f, K(-1.6668057665e-1f));
    p = FMA(p, f, K(2.0000714765e-1f));
    p = FMA(p, f, K(-2.4999993993e-1f));
    p = FMA(p, f, K(3.3333331174e-1f));
    vf y = (f * z) * p;
    y = FMA(e, K(-2.12194440e-4f), y);
    y = FMA(z, K(-0.5f), y);
    vf r = f + y;
    r = FMA(e, K(0.693359375f), r);
    r = sel(x == K(INFINITY), x, r);
    r = sel(x == K(0.0f), K(-INFINITY), r);
    r = sel(x < K(0.0f), K(NAN), r);
    return sel(is_nan(x), x, r);
}

// MARK: tanh, sigmoid, silu

/// tanh(|x|) with the sign of x: for |x| < 0.625, a + a^3 P(a^2) with P a degree-4 fit (relative error
/// 4.4e-9 before rounding); above, 1 - 2 / (e^(2a) + 1), where the subtraction loses nothing (the result is
/// above 0.55).
static inline vf v_tanh(vf x) {
    vf a = vabs(x);
    vf z = x * x;
    vf p = K(-0.005704973034213116f);
    p = FMA(p, z, K(0.020639074154947163f));
    p = FMA(p, z, K(-0.053739710814860994f));
    p = FMA(p, z, K(0.13331442142290018f));
    p = FMA(p, z, K(-0.33333281939654075f));
    vf small = FMA(a * z, p, a);
    vf e = v_exp(a + a);
    vf big = K(1.0f) - K(2.0f) / (e + K(1.0f));
    vf r = sel(a < K(0.625f), small, big);
    return fbits(bits(r) | (bits(x) & KI((int32_t)0x80000000)));  // tanh(-x) = -tanh(x), -0 included
}

/// 1 / (1 + e^-x) as 1 / (1 + e^-|x|), or e^-|x| / (1 + e^-|x|) for x < 0: no overflow, no cancellation.
static inline vf v_sigmoid(vf x) {
    vf e = v_exp(-vabs(x));
    return sel(x < K(0.0f), e, K(1.0f)) / (K(1.0f) + e);
}

/// x / (1 + e^-x), through e^-|x| as sigmoid.
static inline vf v_silu(vf x) {
    vf e = v_exp(-vabs(x));
    return sel(x < K(0.0f), x * e, x) / (K(1.0f) + e);
}

// MARK: gelu

/// -a^2/2 as hi + lo, with lo the rounding error of hi (exact): through FMA where the target has it, else by
/// splitting a = ah + al with ah holding 12 significant bits, so that ah * ah is exact:
/// -a^2/2 = -ah^2/2 - al (a + ah)/2.
static inline void neg_half_square(vf a, vf *hi, vf *lo) {
#ifdef TK_HAS_FMA
    vf m = a * a;
    *hi = K(-0.5f) * m;
    *lo = K(-0.5f) * FMA(a, a, -m);
#else
    vf ah = fbits(bits(a) & KI(~0xfff));
    vf al = a - ah;
    *hi = K(-0.5f) * (ah * ah);
    *lo = K(-0.5f) * (al * (a + ah));
#endif
}

/// The largest |x| the gelu kernels evaluate erfc at: beyond it e^(-x^2/2) rounds to 0 (and gelu to x or -0),
/// and below it e^(-x^2/2 + p) stays in the range exp_core takes without clamping.
#define TK_GELU_CLAMP 14.4f

/// erfc(|x| / sqrt 2) (Numerical Recipes' Chebyshev fit `erfcc`, fractional error below 1.2e-7:
/// t e^(-z^2 + P(t)), t = 1 / (1 + z/2)), with e^(-x^2/2) evaluated from an exact split of x^2, so that large
/// |x| keep their relative accuracy. P by Estrin's scheme (shorter dependency chains than Horner's).
/// |x| is clamped at TK_GELU_CLAMP, where the result is 0.
static inline vf erfc_half_sqrt2(vf x) {
    vf a = vabs(x);
    a = sel(a > K(TK_GELU_CLAMP), K(TK_GELU_CLAMP), a);
    vf t = K(1.0f) / FMA(a, K(0.5f * 0.7071067811865475f), K(1.0f));
    vf t2 = t * t, t4 = t2 * t2, t8 = t4 * t4;
    vf p01 = FMA(K(1.00002368f), t, K(-1.26551223f));
    vf p23 = FMA(K(0.09678418f), t, K(0.37409196f));
    vf p45 = FMA(K(0.27886807f), t, K(-0.18628806f));
    vf p67 = FMA(K(1.48851587f), t, K(-1.13520398f));
    vf p89 = FMA(K(0.17087277f), t, K(-0.82215223f));
    vf p = FMA(FMA(p67, t2, p45), t4, FMA(p23, t2, p01));
    p = FMA(p89, t8, p);
    vf hi, lo;
    neg_half_square(a, &hi, &lo);
    lo = lo + p;
    // hi + lo >= -14.4^2/2 - 1.3 > -105: exp_core's range, NaN propagating.
    return t * exp_core(hi, hi + lo, lo, 1);
}

/// GELU, exact: x * Phi(x) = x/2 * erfc(-x / sqrt 2), from erfc on each side so that the negative tail keeps
/// its relative accuracy (1 + erf(x) would cancel). -inf gives NaN (-inf * 0), as PyTorch's does.
static inline vf v_gelu(vf x) {
    vf c = erfc_half_sqrt2(x);
    vf half = K(0.5f) * x;
    return sel(x < K(0.0f), half * c, half * (K(2.0f) - c));
}

/// GELU, tanh approximation (GPT-2's): x/2 * (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3), computed as
/// x / (1 + e^(-2u)), through e^(-2|u|) as sigmoid: no cancellation of 1 + tanh(u) for negative x.
static inline vf v_gelu_tanh(vf x) {
    vf u = K(0.7978845608028654f) * FMA(K(0.044715f) * x * x, x, x);
    vf e = v_exp(K(-2.0f) * vabs(u));
    return sel(u < K(0.0f), x * e, x) / (K(1.0f) + e);
}

// MARK: backward of the activations

/// gelu'(x) = Phi(x) + x phi(x), phi(x) = e^(-x^2/2) / sqrt(2 pi); Phi from erfc on each side, as forward,
/// and e^(-x^2/2) from the same exact split of x^2.
static inline vf v_gelu_grad(vf x) {
    vf c = erfc_half_sqrt2(x);
    vf cdf = sel(x < K(0.0f), K(0.5f) * c, FMA(K(-0.5f), c, K(1.0f)));
    vf a = vabs(x);
    a = sel(a > K(TK_GELU_CLAMP), K(TK_GELU_CLAMP), a);
    vf hi, lo;
    neg_half_square(a, &hi, &lo);
    vf pdf = K(0.3989422804014327f) * exp_core(hi, hi + lo, lo, 1);
    return FMA(x, pdf, cdf);
}

/// gelu_tanh'(x) = s + 2 x s (1 - s) u'(x), with s = sigmoid(2u) = (1 + tanh u) / 2 and
/// u' = sqrt(2/pi) (1 + 3 * 0.044715 x^2); s and 1 - s both come from e^(-2|u|) without cancellation.
static inline vf v_gelu_tanh_grad(vf x) {
    vf x2 = x * x;
    vf u = K(0.7978845608028654f) * FMA(K(0.044715f) * x2, x, x);
    vf e = v_exp(K(-2.0f) * vabs(u));
    vf inv = K(1.0f) / (K(1.0f) + e);
    vi neg = u < K(0.0f);
    vf s = sel(neg, e, K(1.0f)) * inv;
    vf oms = sel(neg, K(1.0f), e) * inv;
    vf du = K(0.7978845608028654f) * FMA(K(3.0f * 0.044715f), x2, K(1.0f));
    return FMA(K(2.0f) * x * s, oms * du, s);
}

/// silu'(x) = s (1 + x (1 - s)), s = sigmoid(x), with s and 1 - s from e^-|x|.
static inline vf v_silu_grad(vf x) {
    vf e = v_exp(-vabs(x));
    vf inv = K(1.0f) / (K(1.0f) + e);
    vi neg = x < K(0.0f);
    vf s = sel(neg, e, K(1.0f)) * inv;
    vf oms = sel(neg, K(1.0f), e) * inv;
    return s * FMA(x, oms, K(1.0f));
}

// MARK: element-wise drivers

#define TK_UNARY(name, fn)                                                                                  \
    static void name(const float *x, float *y, long n) {                                                    \
        long i = 0;                                                                                         \
        for (; i + 2 * W <= n; i += 2 * W) {                                                                \
            vf a = fn(ld(x + i)), b = fn(ld(x + i + W));                                                    \
            st(y + i, a);                                                                                   \
            st(y + i + W, b);                                                                               \
        }                                                                                                   \
        for (; i + W <= n; i += W) st(y + i, fn(ld(x + i)));                                                \
        if (i < n) st_part(y + i, fn(ld_part(x + i, n - i, 0.0f)), n - i);                                  \
    }

TK_UNARY(k_exp, v_exp)
TK_UNARY(k_log, v_log)
TK_UNARY(k_tanh, v_tanh)
TK_UNARY(k_sigmoid, v_sigmoid)
TK_UNARY(k_silu, v_silu)
TK_UNARY(k_gelu, v_gelu)
TK_UNARY(k_gelu_tanh, v_gelu_tanh)

/// out = grad * f(v), v the saved input or output.
#define TK_GRAD(name, expr)                                                                                 \
    static inline vf name##_v(vf v, vf g) { return expr; }                                                  \
    static void name(const float *v, const float *grad, float *out, long n) {                               \
        long i = 0;                                                                                         \
        for (; i + W <= n; i += W) st(out + i, name##_v(ld(v + i), ld(grad + i)));                        \
        if (i < n) st_part(out + i, name##_v(ld_part(v + i, n - i, 0.0f), ld_part(grad + i, n - i, 0.0f)), \
                           n - i);                                                                          \
    }

TK_GRAD(k_gelu_backward, g * v_gelu_grad(v))
TK_GRAD(k_gelu_tanh_backward, g * v_gelu_tanh_grad(v))
TK_GRAD(k_silu_backward, g * v_silu_grad(v))
TK_GRAD(k_sigmoid_backward, g * (v * (K(1.0f) - v)))
TK_GRAD(k_tanh_backward, g * FMA(-v, v, K(1.0f)))

// MARK: rows

/// The maximum of a row (NaN ignored): four running maxima, so the compare chain does not limit speed.
/// (Any fold order gives the same maximum.)
static inline float row_max(const float *x, long n) {
    vf m0 = K(-INFINITY), m1 = m0, m2 = m0, m3 = m0;
    long i = 0;
    for (; i + 4 * W <= n; i += 4 * W) {
        m0 = fold_max(m0, ld(x + i));
        m1 = fold_max(m1, ld(x + i + W));
        m2 = fold_max(m2, ld(x + i + 2 * W));
        m3 = fold_max(m3, ld(x + i + 3 * W));
    }
    for (; i + W <= n; i += W) m0 = fold_max(m0, ld(x + i));
    if (i < n) m0 = fold_max(m0, ld_part(x + i, n - i, -INFINITY));
    return hmax(fold_max(fold_max(m0, m1), fold_max(m2, m3)));
}

/// sum(e^(x - m)) of a row, storing e^(x - m) in y when y is not NULL. Two accumulators, added at the end.
static inline float row_exp_sum(const float *x, float *y, long n, float m) {
    vf mv = K(m), a0 = K(0.0f), a1 = K(0.0f);
    long i = 0;
    for (; i + 2 * W <= n; i += 2 * W) {
        vf e0 = v_exp(ld(x + i) - mv), e1 = v_exp(ld(x + i + W) - mv);
        a0 += e0;
        a1 += e1;
        if (y) { st(y + i, e0); st(y + i + W, e1); }
    }
    for (; i + W <= n; i += W) {
        vf e = v_exp(ld(x + i) - mv);
        a0 += e;
        if (y) st(y + i, e);
    }
    if (i < n) {
        vf e = v_exp(ld_part(x + i, n - i, -INFINITY) - mv);
        a1 += e;
        if (y) st_part(y + i, e, n - i);
    }
    return hsum(a0 + a1);
}

/// Softmax of a row: m = max (0 if all are -inf), e = e^(x - m), then e * (1 / sum(e)).
static void k_softmax_row(const float *x, float *y, long n) {
    float m = row_max(x, n);
    if (m == -INFINITY) m = 0;
    float inv = 1.0f / row_exp_sum(x, y, n, m);
    vf iv = K(inv);
    long i = 0;
    for (; i + W <= n; i += W) st(y + i, ld(y + i) * iv);
    if (i < n) st_part(y + i, ld_part(y + i, n - i, 0.0f) * iv, n - i);
}

/// Log-softmax of a row: (x - m) - log(sum(e^(x - m))).
static void k_log_softmax_row(const float *x, float *y, long n) {
    float m = row_max(x, n);
    if (m == -INFINITY) m = 0;
    vf mv = K(m), lse = K(logf(row_exp_sum(x, 0, n, m)));
    long i = 0;
    for (; i + W <= n; i += W) st(y + i, (ld(x + i) - mv) - lse);
    if (i < n) st_part(y + i, (ld_part(x + i, n - i, 0.0f) - mv) - lse, n - i);
}

/// log(sum(e^x)) of n elements s apart, as m + log(sum(e^(x - m))). Lanes hold W consecutive elements
/// whatever the stride, so a strided view and its contiguous copy give the same result.
static float k_logsumexp(const float *x, long n, long s) {
    float m;
    if (s == 1) {
        m = row_max(x, n);
    } else {
        vf mv = K(-INFINITY);
        for (long i = 0; i < n; i += W) mv = fold_max(mv, ld_strided(x + i * s, s, n - i < W ? n - i : W, -INFINITY));
        m = hmax(mv);
    }
    if (m == -INFINITY || m == INFINITY || m != m) return m;
    float sum;
    if (s == 1) {
        sum = row_exp_sum(x, 0, n, m);
    } else {
        // The same order as row_exp_sum: pairs of vectors into two accumulators, a lone last vector and the
        // padded end into the first and second.
        vf mv = K(m), a0 = K(0.0f), a1 = K(0.0f);
        long i = 0;
        for (; i + 2 * W <= n; i += 2 * W) {
            a0 += v_exp(ld_strided(x + i * s, s, W, 0.0f) - mv);
            a1 += v_exp(ld_strided(x + (i + W) * s, s, W, 0.0f) - mv);
        }
        for (; i + W <= n; i += W) a0 += v_exp(ld_strided(x + i * s, s, W, 0.0f) - mv);
        if (i < n) a1 += v_exp(ld_strided(x + i * s, s, n - i, -INFINITY) - mv);
        sum = hsum(a0 + a1);
    }
    return m + logf(sum);
}

/// sum(a * b) (b NULL: sum(a)) of a row, in four accumulators combined in a fixed order.
static inline float row_dot(const float *a, const float *b, long n) {
    vf s0 = K(0.0f), s1 = s0, s2 = s0, s3 = s0;
    long i = 0;
    if (b) {
        for (; i + 4 * W <= n; i += 4 * W) {
            s0 = FMA(ld(a + i), ld(b + i), s0);
            s1 = FMA(ld(a + i + W), ld(b + i + W), s1);
            s2 = FMA(ld(a + i + 2 * W), ld(b + i + 2 * W), s2);
            s3 = FMA(ld(a + i + 3 * W), ld(b + i + 3 * W), s3);
        }
        for (; i + W <= n; i += W) s0 = FMA(ld(a + i), ld(b + i), s0);
        if (i < n) s1 = FMA(ld_part(a + i, n - i, 0.0f), ld_part(b + i, n - i, 0.0f), s1);
    } else {
        for (; i + 4 * W <= n; i += 4 * W) {
            s0 += ld(a + i);
            s1 += ld(a + i + W);
            s2 += ld(a + i + 2 * W);
            s3 += ld(a + i + 3 * W);
        }
        for (; i + W <= n; i += W) s0 += ld(a + i);
        if (i < n) s1 += ld_part(a + i, n - i, 0.0f);
    }
    return hsum((s0 + s1) + (s2 + s3));
}

/// out = y * (grad - sum(grad * y)).
static void k_softmax_backward_row(const float *y, const float *g, float *out, long n) {
    vf d = K(row_dot(g, y, n));
    long i = 0;
    for (; i + W <= n; i += W) st(out + i, ld(y + i) * (ld(g + i) - d));
    if (i < n) st_part(out + i, ld_part(y + i, n - i, 0.0f) * (ld_part(g + i, n - i, 0.0f) - d), n - i);
}

/// out = grad - e^y * sum(grad).
static void k_log_softmax_backward_row(const float *y, const float *g, float *out, long n) {
    vf s = K(row_dot(g, 0, n));
    long i = 0;
    for (; i + W <= n; i += W) st(out + i, FMA(-v_exp(ld(y + i)), s, ld(g + i)));
    if (i < n) st_part(out + i, FMA(-v_exp(ld_part(y + i, n - i, 0.0f)), s, ld_part(g + i, n - i, 0.0f)), n - i);
}

// MARK: columns

// Blocks of W columns run side by side in the lanes, each lane its own row along k; every step is lane-wise,
// so a column's result does not depend on which block (or thread) it falls in.

#define TK_COLUMN_BLOCKS(body)                                                                              \
    for (long c = 0; c < width; c += W) {                                                                   \
        long cw = width - c < W ? width - c : W;                                                            \
        body                                                                                                \
    }

static inline vf col_ld(const float *p, long cw, float pad) { return cw == W ? ld(p) : ld_part(p, cw, pad); }
static inline void col_st(float *p, vf v, long cw) { if (cw == W) st(p, v); else st_part(p, v, cw); }

static void k_softmax_cols(const float *x, float *y, long n, long s, long width, int log) {
    TK_COLUMN_BLOCKS({
        const float *xc = x + c;
        float *yc = y + c;
        vf m = K(-INFINITY);
        for (long k = 0; k < n; k++) m = fold_max(m, col_ld(xc + k * s, cw, 0.0f));
        m = sel(m == K(-INFINITY), K(0.0f), m);
        vf acc = K(0.0f);
        for (long k = 0; k < n; k++) {
            vf e = v_exp(col_ld(xc + k * s, cw, 0.0f) - m);
            acc += e;
            if (!log) col_st(yc + k * s, e, cw);
        }
        if (log) {
            float b[W];
            st(b, acc);
            for (int l = 0; l < W; l++) b[l] = logf(b[l]);
            vf lse = ld(b);
            for (long k = 0; k < n; k++) col_st(yc + k * s, (col_ld(xc + k * s, cw, 0.0f) - m) - lse, cw);
        } else {
            vf inv = K(1.0f) / acc;
            for (long k = 0; k < n; k++) col_st(yc + k * s, col_ld(yc + k * s, cw, 0.0f) * inv, cw);
        }
    })
}

static void k_softmax_backward_cols(const float *y, const float *g, float *out, long n, long s, long width) {
    TK_COLUMN_BLOCKS({
        vf d = K(0.0f);
        for (long k = 0; k < n; k++) d = FMA(col_ld(g + c + k * s, cw, 0.0f), col_ld(y + c + k * s, cw, 0.0f), d);
        for (long k = 0; k < n; k++) {
            long o = c + k * s;
            col_st(out + o, col_ld(y + o, cw, 0.0f) * (col_ld(g + o, cw, 0.0f) - d), cw);
        }
    })
}

static void k_log_softmax_backward_cols(const float *y, const float *g, float *out, long n, long s, long width) {
    TK_COLUMN_BLOCKS({
        vf t = K(0.0f);
        for (long k = 0; k < n; k++) t += col_ld(g + c + k * s, cw, 0.0f);
        for (long k = 0; k < n; k++) {
            long o = c + k * s;
            col_st(out + o, FMA(-v_exp(col_ld(y + o, cw, 0.0f)), t, col_ld(g + o, cw, 0.0f)), cw);
        }
    })
}

// MARK: the table

const tk_kernels TK_TABLE = {
    .name = TK_NAME,
    .lanes = W,
    .exp = k_exp,
    .log = k_log,
    .tanh = k_tanh,
    .sigmoid = k_sigmoid,
    .silu = k_silu,
    .gelu = k_gelu,
    .gelu_tanh = k_gelu_tanh,
    .gelu_backward = k_gelu_backward,
    .gelu_tanh_backward = k_gelu_tanh_backward,
    .silu_backward = k_silu_backward,
    .sigmoid_backward = k_sigmoid_backward,
    .tanh_backward = k_tanh_backward,
    .softmax_row = k_softmax_row,
    .log_softmax_row = k_log_softmax_row,
    .logsumexp = k_logsumexp,
    .softmax_backward_row = k_softmax_backward_row,
    .log_softmax_backward_row = k_log_softmax_backward_row,
    .softmax_cols = k_softmax_cols,
    .softmax_backward_cols = k_softmax_backward_cols,
    .log_softmax_backward_cols = k_log_softmax_backward_cols,
};

// VectorMath.swift: exp and the functions built on it, on 8 floats at once.
//
// libm's expf, erff and tanhf are called one element at a time (3-10 ns each); these run on SIMD lanes and
// keep to about 1 ulp (exp) and a few ulp (sigmoid, silu, gelu) of the exact result, checked against
// double-precision references over the whole float range. Every function is pure and lane-wise: an element's
// result never depends on its neighbours or position, so splitting work across threads cannot change it.
//
// The build targets baseline x86-64 (SSE2, no FMA) and arm64; all steps use only add, mul, div, compare and
// integer bit operations, which lower to vector instructions on both.

typealias Lanes = SIMD8<Float>
typealias IntLanes = SIMD8<Int32>

@inline(__always) func bits(_ x: Lanes) -> IntLanes { unsafeBitCast(x, to: IntLanes.self) }
@inline(__always) func float(bits x: IntLanes) -> Lanes { unsafeBitCast(x, to: Lanes.self) }

/// |x| (clears the sign bit, so NaN stays NaN).
@inline(__always) func vabs(_ x: Lanes) -> Lanes { float(bits: bits(x) & IntLanes(repeating: 0x7fff_ffff)) }

/// e^x: Cody-Waite reduction by ln 2, then a degree-6 polynomial on [-ln2/2, ln2/2] (the coefficients of
/// SLEEF's expf), then scaling by 2^q in two steps so that subnormal results are rounded once.
/// NaN gives NaN, +inf (or overflow) gives +inf, -inf (or underflow) gives 0.
@inline(__always) func vexp(_ x: Lanes) -> Lanes {
    // Clamp so that q stays in [-151, 151]; the ends over- or underflow through the scaling anyway.
    let lim = Lanes(repeating: 104)
    let h = x.replacing(with: lim, where: x .> lim).replacing(with: -lim, where: x .< -lim)
    return vexpCore(h, h).replacing(with: x, where: x .!= x)  // NaN in, NaN out
}

/// e^(hi + lo), with `lo` a correction to `hi` carried in extra precision (|lo| < 2^-10 |hi|, or |lo| < 2).
/// (Kept apart from the one-argument form: with lo = 0 inlined, the optimiser scalarised the polynomial.)
@inline(__always) func vexp(_ hi: Lanes, _ lo: Lanes) -> Lanes {
    let x = hi + lo
    let lim = Lanes(repeating: 104)
    let out = (x .> lim) .| (x .< -lim)
    let h = hi.replacing(with: lim, where: x .> lim).replacing(with: -lim, where: x .< -lim)
    let l = lo.replacing(with: 0, where: out)
    return vexpCore(h, h + l, lo: l).replacing(with: x, where: x .!= x)
}

/// e^(h + lo) for h + lo = x in [-104, 104] (lo is added after the reduction).
@inline(__always) func vexpCore(_ h: Lanes, _ x: Lanes, lo: Lanes? = nil) -> Lanes {
    // q = round-to-nearest(x / ln 2), by adding and subtracting 1.5 * 2^23.
    let magic = Lanes(repeating: 12_582_912)
    let shifted = x * Lanes(repeating: 1.442_695_040_888_963_4) + magic
    let q = shifted - magic
    let qi = bits(shifted) &- bits(magic)
    // r = x - q ln2, with ln 2 split so that q * ln2Hi is exact.
    var r = h - q * Lanes(repeating: 0.693_145_751_953_125)
    r = r - q * Lanes(repeating: 1.428_606_765_330_187_045e-06)
    if let lo { r = r + lo }
    var p = Lanes(repeating: 0.000_198_527_617_612_853_646_278_381)
    p = p * r + Lanes(repeating: 0.001_393_043_552_525_341_510_772_71)
    p = p * r + Lanes(repeating: 0.008_333_360_776_305_198_669_433_59)
    p = p * r + Lanes(repeating: 0.041_666_485_369_205_474_853_515_6)
    p = p * r + Lanes(repeating: 0.166_666_671_633_720_397_949_219)
    p = p * r + Lanes(repeating: 0.5)
    let u = (r * r) * p + r + Lanes(repeating: 1)
    // u * 2^q as u * 2^(q>>1) * 2^(q - q>>1): each factor is a normal float for q in [-252, 254].
    let q1 = qi &>> 1, q2 = qi &- q1
    let bias = IntLanes(repeating: 127)
    return u * float(bits: (q1 &+ bias) &<< 23) * float(bits: (q2 &+ bias) &<< 23)
}

/// 1 / (1 + e^-x), without overflow for either sign.
@inline(__always) func vsigmoid(_ x: Lanes) -> Lanes {
    let e = vexp(-vabs(x))                 // in (0, 1]
    let d = Lanes(repeating: 1) + e
    return (Lanes(repeating: 1) / d).replacing(with: e / d, where: x .< 0)
}

/// x / (1 + e^-x).
@inline(__always) func vsilu(_ x: Lanes) -> Lanes {
    let e = vexp(-vabs(x))
    let d = Lanes(repeating: 1) + e
    return (x / d).replacing(with: x * e / d, where: x .< 0)
}

/// erfc(|x| / sqrt 2) (Numerical Recipes' Chebyshev fit `erfcc`, fractional error below 1.2e-7), with
/// e^(-x^2/2) evaluated from an exact split of x^2, so that large |x| keep their relative accuracy.
@inline(__always) func verfcHalfSqrt2(_ x: Lanes) -> Lanes {
    // erfc(11 / sqrt 2) < 1e-27 is still representable, but beyond 27 / sqrt 2 every result rounds to 0:
    // clamping there keeps inf out of the split below.
    let a = vabs(x).replacing(with: 27, where: vabs(x) .> 27)
    let z = a * Lanes(repeating: 0.707_106_781_186_547_5)
    let one = Lanes(repeating: 1)
    let t = one / (one + Lanes(repeating: 0.5) * z)
    var p = Lanes(repeating: 0.170_872_77)
    p = p * t + Lanes(repeating: -0.822_152_23)
    p = p * t + Lanes(repeating: 1.488_515_87)
    p = p * t + Lanes(repeating: -1.135_203_98)
    p = p * t + Lanes(repeating: 0.278_868_07)
    p = p * t + Lanes(repeating: -0.186_288_06)
    p = p * t + Lanes(repeating: 0.096_784_18)
    p = p * t + Lanes(repeating: 0.374_091_96)
    p = p * t + Lanes(repeating: 1.000_023_68)
    p = p * t + Lanes(repeating: -1.265_512_23)
    // a = ah + al with ah holding 12 significant bits, so ah * ah (and half of it) is exact:
    // -a^2/2 = -ah^2/2 - al (a + ah)/2.
    let ah = float(bits: bits(a) & IntLanes(repeating: ~0xfff))
    let al = a - ah
    let hi = Lanes(repeating: -0.5) * (ah * ah)
    let lo = p - Lanes(repeating: 0.5) * (al * (a + ah))
    return t * vexp(hi, lo)
}

/// GELU, exact form: x * Phi(x) = x/2 * erfc(-x / sqrt 2). Computed from erfc on each side, so the negative
/// tail keeps its relative accuracy (1 + erf(x) would cancel).
/// Near 0 (|x| < sqrt 2 / 2) it uses erf's Taylor series instead, which is more accurate there.
@inline(__always) func vgelu(_ x: Lanes) -> Lanes {
    let c = verfcHalfSqrt2(x)                                // erfc(|x| / sqrt 2)
    let half = Lanes(repeating: 0.5) * x
    let positive = half * (Lanes(repeating: 2) - c)          // x/2 * (1 + erf(x / sqrt 2))
    let far = positive.replacing(with: half * c, where: x .< 0)
    // erf(z) = 2/sqrt(pi) * sum (-1)^k z^(2k+1) / (k! (2k+1)), to k = 6 (truncation below 1e-9 for |z| < 1/2).
    let z = x * Lanes(repeating: 0.707_106_781_186_547_5)
    let z2 = z * z
    var e = Lanes(repeating: -1.0 / 9360)
    e = e * z2 + Lanes(repeating: 1.0 / 1320)
    e = e * z2 + Lanes(repeating: -1.0 / 216)
    e = e * z2 + Lanes(repeating: 1.0 / 42)
    e = e * z2 + Lanes(repeating: -1.0 / 10)
    e = e * z2 + Lanes(repeating: 1.0 / 3)
    e = e * z2 - Lanes(repeating: 1)
    let erf = Lanes(repeating: -1.128_379_167_095_512_6) * (z * e)
    let near = half * (Lanes(repeating: 1) + erf)
    return far.replacing(with: near, where: vabs(x) .< Lanes(repeating: 0.707_106_781_186_547_5))
}

/// GELU, tanh approximation (GPT-2's): x/2 * (1 + tanh(u)) with u = sqrt(2/pi) (x + 0.044715 x^3).
/// 1 + tanh(u) = 2 / (1 + e^(-2u)), computed as a sigmoid: the same function without the cancellation of
/// 1 + tanh(u) for negative x (and without overflow of e^(-2u)).
@inline(__always) func vgeluTanh(_ x: Lanes) -> Lanes {
    let u = Lanes(repeating: 0.797_884_560_802_865_4) * (x + Lanes(repeating: 0.044715) * x * x * x)
    let e = vexp(Lanes(repeating: -2) * vabs(u))
    let d = Lanes(repeating: 1) + e
    return (x / d).replacing(with: x * e / d, where: u .< 0)
}

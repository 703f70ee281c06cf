// FusedRope.swift: rotary position embedding (Hugging Face's rotate_half form), forward and backward in one
// pass each.
//
// Shapes: x [B, H, T, D] (any strides; a transposed [B, T, H, D] view is read in place and the result stored in
// the same order), cos, sin [T, D] (D even, half = D/2).
//   y = x ⊙ cos + R(x) ⊙ sin,   R(x) = cat(-x2, x1)   (x1 = x[..., :half], x2 = x[..., half:])
// so, per row, for i < half:
//   y[i]        = x[i] cos[i]               - x[i+half] sin[i]
//   y[i+half]   = x[i+half] cos[i+half]     + x[i] sin[i+half]
// Backward: dx = g ⊙ cos + Rᵀ(g ⊙ sin) with Rᵀ(u) = cat(u2, -u1):
//   dx[i]       = g[i] cos[i]               + g[i+half] sin[i+half]
//   dx[i+half]  = g[i+half] cos[i+half]     - g[i] sin[i]
// and, when the tables require grad, dcos = Σ_{B,H} g ⊙ x and dsin = Σ_{B,H} g ⊙ R(x) (each position summed
// by one thread over batch and heads in order).

import TychoTensor

enum FusedRope {
    static func forward(_ x: Tensor, cos: Tensor, sin: Tensor) throws -> Tensor {
        let (b, h, t, d) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let half = d / 2
        let xs = try Fused.unitLastStride(x)
        let cc = try Fused.contiguous(cos), sc = try Fused.contiguous(sin)   // [T, D]
        let y = try Fused.allocate4D(like: xs, zeroed: false)
        let cp = UnsafePointer(cc.basePointer), sp = UnsafePointer(sc.basePointer)
        rotate(UnsafePointer(xs.basePointer), xs.strides, into: y.basePointer, y.strides,
               b: b, h: h, t: t, half: half, cos: cp, sin: sp, inverse: false)

        return y.recorded("rope", [x, cos, sin], saving: [xs, cc, sc]) { g in
            let gs = try Fused.unitLastStride(g)
            let gp = UnsafePointer(gs.basePointer)
            var dx: Tensor?, dcos: Tensor?, dsin: Tensor?
            if x.requiresGrad {
                let out = try Fused.allocate4D(like: xs, zeroed: false)
                rotate(gp, gs.strides, into: out.basePointer, out.strides,
                       b: b, h: h, t: t, half: half, cos: cp, sin: sp, inverse: true)
                dx = out
            }
            if cos.requiresGrad || sin.requiresGrad {
                let dc = try Tensor(uninitializedShape: [t, d], zeroed: true)
                let ds = try Tensor(uninitializedShape: [t, d], zeroed: true)
                let dcp = dc.basePointer, dsp = ds.basePointer
                let xp = UnsafePointer(xs.basePointer), xst = xs.strides, gst = gs.strides
                Parallel.forRanges(t, cost: b * h * d * 2) { r in
                    for ti in r {
                        let oc = dcp + ti * d, os = dsp + ti * d
                        for bi in 0..<b {
                            for hi in 0..<h {
                                let xr = xp + bi * xst[0] + hi * xst[1] + ti * xst[2]
                                let gr = gp + bi * gst[0] + hi * gst[1] + ti * gst[2]
                                for i in 0..<half {
                                    oc[i] += gr[i] * xr[i]
                                    oc[i + half] += gr[i + half] * xr[i + half]
                                    os[i] -= gr[i] * xr[i + half]
                                    os[i + half] += gr[i + half] * xr[i]
                                }
                            }
                        }
                    }
                }
                dcos = cos.requiresGrad ? dc : nil
                dsin = sin.requiresGrad ? ds : nil
            }
            return [dx, dcos, dsin]
        }
    }

    /// The forward rotation of every row of `src` (or, with `inverse`, the backward map above) into `dst`.
    /// Both are [B, H, T, D] with last stride 1 and the given strides.
    private static func rotate(_ src: UnsafePointer<Float>, _ ss: [Int], into dst: UnsafeMutablePointer<Float>,
                               _ ds: [Int], b: Int, h: Int, t: Int, half: Int,
                               cos cp: UnsafePointer<Float>, sin sp: UnsafePointer<Float>, inverse: Bool) {
        let d = 2 * half
        Parallel.forRanges(b * h * t, cost: 2 * d) { r in
            for u in r {
                let ti = u % t, hi = (u / t) % h, bi = u / (t * h)
                let x = src + bi * ss[0] + hi * ss[1] + ti * ss[2]
                let y = dst + bi * ds[0] + hi * ds[1] + ti * ds[2]
                let c = cp + ti * d, s = sp + ti * d
                var i = 0
                if !inverse {
                    while i + 8 <= half {
                        let x1 = load8(x + i), x2 = load8(x + half + i)
                        store8(x1 * load8(c + i) - x2 * load8(s + i), y + i)
                        store8(x2 * load8(c + half + i) + x1 * load8(s + half + i), y + half + i)
                        i += 8
                    }
                    while i < half {
                        let x1 = x[i], x2 = x[half + i]
                        y[i] = x1 * c[i] - x2 * s[i]
                        y[half + i] = x2 * c[half + i] + x1 * s[half + i]
                        i += 1
                    }
                } else {
                    while i + 8 <= half {
                        let g1 = load8(x + i), g2 = load8(x + half + i)
                        store8(g1 * load8(c + i) + g2 * load8(s + half + i), y + i)
                        store8(g2 * load8(c + half + i) - g1 * load8(s + i), y + half + i)
                        i += 8
                    }
                    while i < half {
                        let g1 = x[i], g2 = x[half + i]
                        y[i] = g1 * c[i] + g2 * s[half + i]
                        y[half + i] = g2 * c[half + i] - g1 * s[i]
                        i += 1
                    }
                }
            }
        }
    }
}

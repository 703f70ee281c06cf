// FusedDropout.swift: inverted dropout, forward and backward in one pass each.
//
// Shapes: x [...] (any strides), out [...] contiguous.
// The mask takes one `nextUniform()` per element of x in row-major order (element kept when u < 1 - p), so the
// same generator state gives the same mask on every machine and thread count. Kept elements are scaled by
// 1 / (1 - p), as x · mask with mask = 1 / (1 - p) or 0 (the composite's product, bit for bit); the mask is
// saved for the backward: dx = g · mask.

import TychoTensor

enum FusedDropout {
    static func forward(_ x: Tensor, p: Float, generator: inout RandomGenerator) throws -> Tensor {
        let keep = 1 - p, scale = 1 / keep
        let xc = try Fused.contiguous(x)
        let n = xc.count
        let out = try Tensor(uninitializedShape: x.shape)
        // mask[i] = 1 / (1 - p) for kept elements, 0 for dropped ones: a multiplier, so no branches below.
        let mask = try Tensor(uninitializedShape: [n])
        let xp = xc.basePointer, op = out.basePointer, mp = mask.basePointer
        // nextUniform() is Float(next() >> 40) · 2^-24, and u < keep exactly when the 24-bit integer is below
        // ceil(keep · 2^24) (both sides exact in Float): the same stream and test, compared as integers without a
        // branch that mispredicts on dropped elements. The generator (about 2 ns an element) bounds this loop.
        let threshold = UInt64((Double(keep) * 0x1p24).rounded(.up))
        var gen = generator                      // a local copy: no exclusivity checks in the loop
        for i in 0..<n {
            let kept = ((gen.next() >> 40) &- threshold) >> 63     // 1 when below the threshold
            let m = scale * Float(kept)
            mp[i] = m
            op[i] = xp[i] * m
        }
        generator = gen
        return out.recorded("dropout", [x], saving: [mask]) { g in
            let gc = try Fused.contiguous(g)
            let dx = try Tensor(uninitializedShape: x.shape)
            let gp = gc.basePointer, dp = dx.basePointer
            Parallel.forRanges(n, cost: 2) { r in
                for i in r { dp[i] = gp[i] * mp[i] }
            }
            return [dx]
        }
    }
}

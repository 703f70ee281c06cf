// FusedDropout.swift: inverted dropout, forward and backward in one pass each.
//
// Shapes: x [...] (any strides), out [...] contiguous.
// The mask takes one `nextUniform()` per element of x in row-major order (element kept when u < 1 - p), so the
// same generator state gives the same mask on every machine and thread count. Kept elements are scaled by
// 1 / (1 - p). The mask is saved as one byte per element; backward: dx = g · mask · 1 / (1 - p).

import TychoTensor

enum FusedDropout {
    static func forward(_ x: Tensor, p: Float, generator: inout RandomGenerator) throws -> Tensor {
        let keep = 1 - p, scale = 1 / keep
        let xc = try Fused.contiguous(x)
        let n = xc.count
        let out = try Tensor(uninitializedShape: x.shape)
        var mask = [UInt8](repeating: 0, count: n)
        let xp = xc.basePointer, op = out.basePointer
        mask.withUnsafeMutableBufferPointer { m in
            for i in 0..<n {
                let kept = generator.nextUniform() < keep
                m[i] = kept ? 1 : 0
                op[i] = kept ? xp[i] * scale : 0
            }
        }
        return out.recorded("dropout", [x]) { g in
            let gc = try Fused.contiguous(g)
            let dx = try Tensor(uninitializedShape: x.shape)
            let gp = gc.basePointer, dp = dx.basePointer
            mask.withUnsafeBufferPointer { m in
                for i in 0..<n { dp[i] = m[i] != 0 ? gp[i] * scale : 0 }
            }
            return [dx]
        }
    }
}

// ClipGradNorm.swift: scaling gradients so that their joint L2 norm is at most max_norm, as
// torch.nn.utils.clip_grad_norm_ (norm_type 2, error_if_nonfinite false):
//
//   total = sqrt(sum over every grad of sum g^2)       parameters without a grad are skipped
//   coef  = min(max_norm * (1 / (total + 1e-6)), 1)    in float32, as PyTorch's tensor arithmetic
//   g     = g * coef                                   in place, unless coef is exactly 1
//
// The sums of squares are accumulated in double over fixed blocks of each grad, so the total does not depend on
// the thread count. A non-finite total is returned as it is and scales the grads to NaN, as PyTorch does.

import Foundation
import TychoTensor

public enum GradClipping {
    /// Elements per partial sum: block boundaries depend only on the grad's size.
    static let block = 1 << 16

    /// Scales the grads of `params` in place so that their joint L2 norm is at most `maxNorm`, returning the
    /// norm before clipping (float32, as PyTorch's result tensor).
    /// - Parameters:
    ///   - params: distinct tensors; those whose grad is nil are skipped.
    ///   - maxNorm: the largest norm allowed, finite and >= 0.
    public static func clipGradNorm(_ params: [Tensor], maxNorm: Float) throws -> Float {
        try InvalidOption.check("max_norm", maxNorm, atLeast: 0)
        try Optimizer.checkParameters(params, requireLeaves: false)
        var grads: [Tensor] = []
        for (i, p) in params.enumerated() {
            guard let g = p.grad else { continue }
            guard g.shape == p.shape else {
                throw OptimizerError("the grad of parameter \(i + 1) has size \(Tensor.describe(g.shape)) but the parameter has size \(Tensor.describe(p.shape))")
            }
            grads.append(g)
        }
        var sum = 0.0
        for g in grads { sum += try sumOfSquares(GradMode.with(enabled: false) { try g.contiguous() }) }
        let total = Float(sum.squareRoot())
        let reciprocal = 1 / (total + Float(1e-6))
        var coef = maxNorm * reciprocal
        if !coef.isNaN { coef = Swift.min(coef, 1) }
        if coef != 1 {
            for g in grads { try scale(g, by: coef) }
        }
        return total
    }

    /// The sum of the squares of a contiguous tensor's elements, in double.
    static func sumOfSquares(_ t: Tensor) -> Double {
        let p = UnsafePointer(t.basePointer), n = t.count
        let blocks = (n + block - 1) / block
        guard blocks > 1 else { return blockSum(p, n) }
        var partial = [Double](repeating: 0, count: blocks)
        partial.withUnsafeMutableBufferPointer { part in
            guard let out = part.baseAddress else { return }
            forChunks(blocks, cost: block) { r in
                for b in r { out[b] = blockSum(p + b * block, Swift.min(block, n - b * block)) }
            }
        }
        return partial.reduce(0, +)
    }

    @inline(__always)
    static func blockSum(_ p: UnsafePointer<Float>, _ n: Int) -> Double {
        var acc = SIMD8<Double>(repeating: 0)
        var j = 0
        while j + 8 <= n {
            let x = SIMD8<Double>(load8(p + j))
            acc += x * x
            j += 8
        }
        if j < n {
            let x = SIMD8<Double>(loadLanes(p + j, n - j))
            acc += x * x
        }
        return acc.sum()
    }

    /// g *= coef in place (a contiguous copy is written back for a strided grad), bumping its storage version.
    static func scale(_ g: Tensor, by coef: Float) throws {
        if !g.isContiguous {
            let scaled = try GradMode.with(enabled: false) { try g.multiplying(coef) }
            try GradMode.with(enabled: false) { try g.copy(from: scaled) }
            return
        }
        let p = g.basePointer
        forChunks(g.count, cost: 2) { r in
            var j = r.lowerBound
            while j + 8 <= r.upperBound {
                store8(load8(p + j) * coef, p + j)
                j += 8
            }
            if j < r.upperBound { storeLanes(loadLanes(p + j, r.upperBound - j) * coef, p + j, r.upperBound - j) }
        }
        g.storage.version &+= 1
    }
}

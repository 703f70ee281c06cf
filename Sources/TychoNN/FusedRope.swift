// FusedRope.swift: rotary position embedding (Hugging Face's rotate_half form), forward and backward.

import TychoTensor

enum FusedRope {
    static func forward(_ x: Tensor, cos: Tensor, sin: Tensor) throws -> Tensor {
        let d = x.shape[3], half = d / 2
        let x1 = try x.narrow(3, start: 0, length: half), x2 = try x.narrow(3, start: half, length: half)
        let rotated = try Tensor.cat([x2.negated(), x1], dim: 3)
        return try x.multiplying(cos).adding(rotated.multiplying(sin))
    }
}

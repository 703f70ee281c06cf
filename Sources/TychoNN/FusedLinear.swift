// FusedLinear.swift: y = x·Wᵀ + b or y = x·W + b, forward and backward.

import TychoTensor

enum FusedLinear {
    static func forward(_ x: Tensor, weight: Tensor, bias: Tensor?, layout: WeightLayout) throws -> Tensor {
        let w = layout == .outIn ? try weight.transpose(0, 1) : weight
        let y = try x.matmul(w)
        return try bias.map { try y.adding($0) } ?? y
    }
}

// FusedNorm.swift: layer norm and RMS norm over the last dimension, forward and backward.

import TychoTensor

enum FusedNorm {
    static func layerNorm(_ x: Tensor, weight: Tensor?, bias: Tensor?, eps: Float) throws -> Tensor {
        let d = x.rank - 1
        let centered = try x.subtracting(x.mean(dim: d, keepdim: true))
        let variance = try centered.multiplying(centered).mean(dim: d, keepdim: true)
        var y = try centered.dividing(variance.adding(eps).sqrt())
        if let weight { y = try y.multiplying(weight) }
        if let bias { y = try y.adding(bias) }
        return y
    }

    static func rmsNorm(_ x: Tensor, weight: Tensor?, eps: Float) throws -> Tensor {
        let d = x.rank - 1
        let ms = try x.multiplying(x).mean(dim: d, keepdim: true)
        var y = try x.dividing(ms.adding(eps).sqrt())
        if let weight { y = try y.multiplying(weight) }
        return y
    }
}

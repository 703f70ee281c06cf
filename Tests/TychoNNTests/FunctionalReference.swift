// FunctionalReference.swift: the composite implementations of Functional's building blocks, made only of
// recorded tensor ops (so their gradients come from TychoTensor's autograd). They were the bodies of the
// Fused* enums before the fused kernels replaced them; the tests check each fused op against them.

import TychoNN
import TychoTensor

enum Reference {
    static func linear(_ x: Tensor, weight: Tensor, bias: Tensor?, layout: WeightLayout) throws -> Tensor {
        let w = layout == .outIn ? try weight.transpose(0, 1) : weight
        let y = try x.matmul(w)
        return try bias.map { try y.adding($0) } ?? y
    }

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

    static func embedding(_ ids: Tensor, weight: Tensor) throws -> Tensor {
        let flat = try ids.reshape([ids.count])
        let rows = try weight.indexSelect(0, index: flat)
        return try rows.reshape(ids.shape + [weight.shape[1]])
    }

    static func attention(q: Tensor, k: Tensor, v: Tensor, scale: Float? = nil, queryOffset: Int = 0,
                          keyMask: Tensor? = nil) throws -> Tensor {
        let (b, h, tq, d) = (q.shape[0], q.shape[1], q.shape[2], q.shape[3])
        let (hkv, tk) = (k.shape[1], k.shape[2])
        var kk = k, vv = v
        if hkv != h {
            let rep = h / hkv
            kk = try k.unsqueeze(2).expand([b, hkv, rep, tk, d]).reshape([b, h, tk, d])
            vv = try v.unsqueeze(2).expand([b, hkv, rep, tk, d]).reshape([b, h, tk, d])
        }
        var scores = try q.matmul(kk.transpose(2, 3)).multiplying(scale ?? 1 / Float(d).squareRoot())
        // Hidden: key j > i + offset, or a padded key.
        var hidden = [Float](repeating: 0, count: b * tq * tk)
        let maskValues = keyMask?.toArray()
        for bi in 0..<b {
            for i in 0..<tq {
                for j in 0..<tk where j > i + queryOffset || (maskValues.map { $0[bi * tk + j] == 0 } ?? false) {
                    hidden[(bi * tq + i) * tk + j] = 1
                }
            }
        }
        let hiddenT = try Tensor(shape: [b, 1, tq, tk], values: hidden)
        scores = try scores.maskedFill(hiddenT, value: -.infinity)
        var probs = try scores.softmax(dim: 3)
        // Rows with every key hidden give NaN; they attend nothing.
        probs = try probs.maskedFill(try probs.compared(.ne, probs), value: 0)
        return try probs.matmul(vv)
    }

    static func rope(_ x: Tensor, cos: Tensor, sin: Tensor) throws -> Tensor {
        let d = x.shape[3], half = d / 2
        let x1 = try x.narrow(3, start: 0, length: half), x2 = try x.narrow(3, start: half, length: half)
        let rotated = try Tensor.cat([x2.negated(), x1], dim: 3)
        return try x.multiplying(cos).adding(rotated.multiplying(sin))
    }

    static func tokenLogProbs(_ logits: Tensor, targets: Tensor) throws -> Tensor {
        let v = logits.shape[logits.rank - 1]
        let rows = targets.count
        let flat = try logits.reshape([rows, v]).softmax(dim: 1, log: true)
        let picked = try flat.gather(1, index: targets.reshape([rows, 1]))
        return try picked.reshape(targets.shape)
    }

    static func dropout(_ x: Tensor, p: Float, training: Bool, generator: inout RandomGenerator) throws -> Tensor {
        if !training || p == 0 { return x }
        let keep = 1 - p
        var values = [Float](repeating: 0, count: x.count)
        for i in 0..<values.count { values[i] = generator.nextUniform() < keep ? 1 / keep : 0 }
        let mask = try Tensor(shape: x.shape, values: values)
        return try x.multiplying(mask)
    }
}

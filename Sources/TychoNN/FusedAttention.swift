// FusedAttention.swift: causal scaled dot-product attention with grouped-query heads, forward and backward.

import TychoTensor

enum FusedAttention {
    static func forward(q: Tensor, k: Tensor, v: Tensor, scale: Float, queryOffset: Int, keyMask: Tensor?) throws -> Tensor {
        let (b, h, tq, d) = (q.shape[0], q.shape[1], q.shape[2], q.shape[3])
        let (hkv, tk) = (k.shape[1], k.shape[2])
        var kk = k, vv = v
        if hkv != h {
            let rep = h / hkv
            kk = try k.unsqueeze(2).expand([b, hkv, rep, tk, d]).reshape([b, h, tk, d])
            vv = try v.unsqueeze(2).expand([b, hkv, rep, tk, d]).reshape([b, h, tk, d])
        }
        var scores = try q.matmul(kk.transpose(2, 3)).multiplying(scale)
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
}

// FusedEmbedding.swift: rows of an embedding table picked by token ids, forward and backward.

import TychoTensor

enum FusedEmbedding {
    static func forward(_ ids: Tensor, weight: Tensor) throws -> Tensor {
        let flat = try ids.reshape([ids.count])
        let rows = try weight.indexSelect(0, index: flat)
        return try rows.reshape(ids.shape + [weight.shape[1]])
    }
}

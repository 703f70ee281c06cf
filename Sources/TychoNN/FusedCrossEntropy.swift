// FusedCrossEntropy.swift: log p(target) of every row of logits, forward and backward.

import TychoTensor

enum FusedCrossEntropy {
    static func tokenLogProbs(_ logits: Tensor, targets: Tensor) throws -> Tensor {
        let v = logits.shape[logits.rank - 1]
        let rows = targets.count
        let flat = try logits.reshape([rows, v]).logSoftmax()
        let picked = try flat.gather(1, index: targets.reshape([rows, 1]))
        return try picked.reshape(targets.shape)
    }
}

extension Tensor {
    fileprivate func logSoftmax() throws -> Tensor { try softmax(dim: rank - 1, log: true) }
}

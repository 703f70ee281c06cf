// LanguageModel.swift: what GPT-2 and Llama share: token-id checks, logits, next-token loss and per-sequence
// log-probabilities (the quantity DPO and RFT are built on).
//
// Conventions (TRL's): for ids [B, T] and mask [B, T], position t (0-based, t >= 1) is predicted from the tokens
// before it, and counts when mask[b, t] == 1; position 0 never counts. Right padding changes nothing for the real
// positions, because attention is causal.

import Foundation
import TychoTensor

open class LanguageModel: Module {
    public var vocabSize: Int { 0 }
    /// Longest sequence the model accepts (nil: no hard limit, as with rotary positions).
    public var maxPositions: Int? { nil }
    /// Hugging Face `model_type`.
    public var modelType: String { "" }

    /// Logits [B, T, V] of checked ids [B, T]; subclasses implement.
    open func computeLogits(_ ids: Tensor) throws -> Tensor {
        throw TensorError("\(summary) has no language-model head")
    }

    /// The config.json a Hugging Face loader reads.
    open func configJSON() -> [String: Any] { [:] }

    /// ids as [B, T]: a 2-D tensor, or a 1-D one taken as one sequence; every id integral and in 0..<V.
    public func checkIds(_ ids: Tensor, _ what: String) throws -> Tensor {
        let x: Tensor
        switch ids.rank {
        case 1: x = try ids.view([1, ids.shape[0]])
        case 2: x = ids
        default: throw TensorError("\(what): ids must be [batch, time] (or one sequence), got size \(Tensor.describe(ids.shape))")
        }
        guard x.shape[1] > 0 else { throw TensorError("\(what): ids have no tokens") }
        if let limit = maxPositions, x.shape[1] > limit {
            throw TensorError("\(what): \(x.shape[1]) tokens exceed the model's \(limit) positions")
        }
        for v in x.toArray() where !(v >= 0 && v < Float(vocabSize) && v == v.rounded()) {
            throw TensorError("\(what): token id \(v) is not an integer in 0..\(vocabSize - 1)")
        }
        return x
    }

    public func logits(_ ids: Tensor) throws -> Tensor {
        try computeLogits(checkIds(ids, "logits"))
    }

    override open func forward(_ x: Tensor) throws -> Tensor { try logits(x) }

    /// A mask [B, T] (1 = counts) matching ids, or all ones.
    func checkMask(_ mask: Tensor?, _ ids: Tensor, _ what: String) throws -> Tensor {
        guard let mask else { return try Tensor.ones(ids.shape) }
        let m = mask.rank == 1 && ids.shape[0] == 1 ? try mask.view([1, mask.shape[0]]) : mask
        guard m.shape == ids.shape else {
            throw TensorError("\(what): mask of size \(Tensor.describe(mask.shape)) does not match ids of size \(Tensor.describe(ids.shape))")
        }
        return m
    }

    /// log p(ids[t] | ids[<t]) for t = 1..<T, as [B, T-1], and the matching mask [B, T-1].
    public func tokenLogProbs(_ ids: Tensor, mask: Tensor?, _ what: String) throws -> (logp: Tensor, mask: Tensor) {
        let x = try checkIds(ids, what)
        let m = try checkMask(mask, x, what)
        let t = x.shape[1]
        guard t >= 2 else { throw TensorError("\(what): need at least 2 tokens per sequence, got \(t)") }
        let logits = try computeLogits(x)                                      // [B, T, V]
        // Every position gets a target (the last one, which predicts nothing, id 0) and its log-prob is dropped
        // after: the fused op's backward then writes the [B, T, V] gradient of the logits itself. Narrowing the
        // logits to T - 1 positions first made the backward copy that gradient into a zeroed [B, T, V] tensor
        // (about 1% of a DPO step at GPT-2 config A); the extra rows cost 1/T of the op.
        let targets = try Tensor.cat([x.narrow(1, start: 1, length: t - 1), Tensor.zeros([x.shape[0], 1])], dim: 1)
        let logp = try Functional.tokenLogProbs(logits, targets: targets).narrow(1, start: 0, length: t - 1)
        return (logp, try m.narrow(1, start: 1, length: t - 1).contiguous())
    }

    /// Mean next-token cross entropy over the masked positions (a 0-dim tensor).
    public func loss(_ ids: Tensor, mask: Tensor?) throws -> Tensor {
        let (logp, m) = try tokenLogProbs(ids, mask: mask, "loss")
        let n = try m.sum().item()
        guard n > 0 else { throw TensorError("loss: the mask selects no target tokens") }
        return try logp.multiplying(m).sum().multiplying(-1 / n)
    }

    /// Per-sequence sum of log p(token) over positions where mask is 1: [B].
    public func logprobs(_ ids: Tensor, mask: Tensor?) throws -> Tensor {
        let (logp, m) = try tokenLogProbs(ids, mask: mask, "logprobs")
        return try logp.multiplying(m).sum(dim: 1)
    }
}

// TokenBatch.swift: supervised fine-tuning examples as token ids with a loss mask, and their padded batches.
//
// An example is a list of ids and a mask saying which tokens count in the loss: every token of a plain
// `text`, only the completion's tokens of a `prompt`/`completion` pair (TRL's completion_only_loss). The prompt
// and the completion are encoded separately and joined (with the post-processor's tokens around the pair), so
// the prompt's tokens are exactly those that generation will be given, and no token straddles the mask
// boundary. (TRL encodes prompt + completion as one text and masks as many tokens as the prompt alone has; the
// two differ only where a BPE merge would cross the boundary, e.g. a prompt ending in a space.) Truncation
// keeps the start (TRL's keep_start) and is counted, never silent. A batch is right-padded to its longest
// example. This file knows nothing of tensors: ids and mask come out as row-major Float arrays.
//
// Shapes: B examples in a batch, T the longest example's length.

/// One example: token ids (0-based Hugging Face ids) and which of them count in the loss.
public struct TokenizedExample: Equatable {
    public private(set) var ids: [Int]
    /// Parallel to `ids`: true where the token counts in the loss.
    public private(set) var mask: [Bool]
    /// True when `truncate(to:)` cut tokens off.
    public private(set) var truncated = false

    /// - Precondition: `ids` and `mask` have the same count (callers check user input first).
    public init(ids: [Int], mask: [Bool]) {
        precondition(ids.count == mask.count, "TokenizedExample: ids and mask differ in length")
        self.ids = ids
        self.mask = mask
    }

    /// An example whose tokens all count.
    public init(ids: [Int]) { self.init(ids: ids, mask: Array(repeating: true, count: ids.count)) }

    public var count: Int { ids.count }

    /// Keeps the first `maxLength` tokens (at least 0), recording whether any were cut.
    public mutating func truncate(to maxLength: Int) {
        let n = Swift.max(maxLength, 0)
        guard ids.count > n else { return }
        ids.removeSubrange(n...)
        mask.removeSubrange(n...)
        truncated = true
    }
}

extension Tokenizer {
    /// A plain-text example: every token counts. `addSpecial` adds the post-processor's tokens as `encode`.
    public func example(text: String, addSpecial: Bool = true) -> TokenizedExample {
        TokenizedExample(ids: encode(text, addSpecial: addSpecial))
    }

    /// A prompt/completion example: `[prefix] prompt completion [suffix]`, where prefix and suffix are the
    /// post-processor's tokens (with `addSpecial`). Only the completion and the suffix (an EOS, say) count.
    public func example(prompt: String, completion: String, addSpecial: Bool = true) -> TokenizedExample {
        let prefix = addSpecial ? postProcessor.prefix : []
        let suffix = addSpecial ? postProcessor.suffix : []
        let p = encode(prompt, addSpecial: false), c = encode(completion, addSpecial: false)
        let ids = prefix + p + c + suffix
        var mask = Array(repeating: false, count: prefix.count + p.count)
        mask += Array(repeating: true, count: c.count + suffix.count)
        return TokenizedExample(ids: ids, mask: mask)
    }

    /// The padding token's id: the lowest-numbered special token whose text contains "pad" in any case
    /// (`<|pad|>`, `<pad>`, `[PAD]`, `<|finetune_right_pad_id|>`), or nil. tokenizer.json rarely says which
    /// token pads (that lives in tokenizer_config.json), so this is a convention, not a lookup.
    public var padTokenID: Int? {
        specialTokens.filter { $0.content.lowercased().contains("pad") }.map(\.id).min()
    }
}

/// Examples right-padded into (B, T) arrays.
public struct TokenBatch {
    /// B, the number of examples.
    public let size: Int
    /// T, the longest example's length (0 when every example is empty).
    public let length: Int
    /// (B, T) row-major: each example's ids, then `padID`.
    public let ids: [Float]
    /// (B, T) row-major: 1 where a token counts in the loss, 0 on uncounted tokens and padding.
    public let mask: [Float]
    /// Each example's length before padding (after truncation).
    public let lengths: [Int]
    /// How many of the examples were truncated.
    public let truncated: Int

    /// Pads `examples` to the longest with `padID`. Ids are stored as Float values (exact below 2^24).
    public init(_ examples: [TokenizedExample], padID: Int) {
        let b = examples.count
        let t = examples.map(\.count).max() ?? 0
        var ids = [Float](repeating: Float(padID), count: b * t)
        var mask = [Float](repeating: 0, count: b * t)
        for (r, e) in examples.enumerated() {
            for (k, id) in e.ids.enumerated() {
                ids[r * t + k] = Float(id)
                if e.mask[k] { mask[r * t + k] = 1 }
            }
        }
        size = b
        length = t
        self.ids = ids
        self.mask = mask
        lengths = examples.map(\.count)
        truncated = examples.filter(\.truncated).count
    }
}

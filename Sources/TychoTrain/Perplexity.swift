// Perplexity.swift: the token-weighted perplexity of a causal language model, exp(total NLL / predicted tokens),
// as Hugging Face's guide "Perplexity of fixed-length models" computes it, with its sliding window for sequences
// longer than the window.
//
// Definitions. A sequence x_0 .. x_{L-1} predicts x_t from x_<t for t >= 1 (position 0 is never predicted). A
// sequence of at most `maxLength` tokens is one window. A longer one is cut as the guide's loop cuts it: for begin
// = 0, stride, 2·stride, ...: end = min(begin + maxLength, L); the window feeds x_begin ..< x_end and predicts the
// positions max(prevEnd, begin + 1) ..< end; prevEnd = end; stop after the window that reaches L. With
// stride < maxLength every position from 1 on is predicted exactly once, with at least maxLength - stride tokens
// of context once past the first window; stride == maxLength gives disjoint chunks, whose first tokens are not
// predicted at all (their window starts with them), as in the guide.
// An optional target mask restricts which positions count (a completion's perplexity); the others are context.
// Totals: NLL = Σ over counted positions of -log p(x_t | the window's tokens before t), summed in Double in a
// fixed order; tokens = their number; perplexity = exp(NLL / tokens), not a mean of per-sequence perplexities.
//
// The model runs without gradients in evaluation mode (its mode is restored). Windows of all sequences are
// batched `batchSize` at a time, right-padded with id 0 (attention is causal: real positions never see padding).
// What it refuses: ids outside the vocabulary, windows longer than the model takes, nothing to predict at all.

import Foundation
import TychoNN
import TychoTensor

/// One sequence of token ids, and which positions count as targets.
public struct PerplexitySequence: Equatable, Sendable {
    /// Token ids (0-based Hugging Face ids).
    public var ids: [Int]
    /// targets[t] == false: position t is context only. nil: every position from 1 on counts.
    public var targets: [Bool]?

    public init(ids: [Int], targets: [Bool]? = nil) {
        self.ids = ids
        self.targets = targets
    }
}

/// Tokens start ..< end are fed to the model; positions firstTarget ..< end are predicted.
public struct PerplexityWindow: Equatable, Sendable {
    public let start: Int
    public let end: Int
    public let firstTarget: Int

    public init(start: Int, end: Int, firstTarget: Int) {
        self.start = start
        self.end = end
        self.firstTarget = firstTarget
    }
}

public struct PerplexityResult: Equatable, Sendable {
    /// NLL summed over one sequence's counted positions, and their number.
    public struct SequenceTotal: Equatable, Sendable {
        public var nll = 0.0
        public var tokens = 0
    }

    /// Σ -log p over every counted position.
    public var totalNLL = 0.0
    /// Counted (predicted) positions.
    public var tokens = 0
    public var perSequence: [SequenceTotal] = []
    /// Windows run (sequences that fit are one window each; windows with nothing to predict are skipped).
    public var windows = 0
    public var forwardPasses = 0
    /// The window and stride used (nil window: whole sequences).
    public var maxLength: Int?
    public var stride: Int?

    /// Mean NLL per counted token.
    public var nll: Double { tokens > 0 ? totalNLL / Double(tokens) : .nan }
    public var perplexity: Double { exp(nll) }
}

public enum Perplexity {
    /// The window when none is given: the model's positions (GPT-2's n_positions, Llama's
    /// max_position_embeddings), as the guide takes `model.config.n_positions`.
    public static func defaultMaxLength(_ model: LanguageModel) -> Int? {
        if let p = model.maxPositions { return p }
        if let l = model as? Llama { return l.config.ctx }
        return nil
    }

    /// The stride when none is given: half the window (the guide's example: 1024 positions, stride 512).
    public static func defaultStride(maxLength: Int) -> Int { Swift.max(1, (maxLength + 1) / 2) }

    /// The guide's windows over a sequence of `length` tokens (none when it has fewer than 2 tokens).
    /// - Throws: `EvalError` unless maxLength >= 2 and 1 <= stride <= maxLength.
    public static func windows(length: Int, maxLength: Int, stride: Int) throws -> [PerplexityWindow] {
        guard maxLength >= 2 else { throw EvalError("max_length must be at least 2 (one token of context, one to predict), got \(maxLength)") }
        guard stride >= 1, stride <= maxLength else {
            throw EvalError("stride must be in 1..max_length (1..\(maxLength)), got \(stride)")
        }
        guard length >= 2 else { return [] }
        if length <= maxLength { return [PerplexityWindow(start: 0, end: length, firstTarget: 1)] }
        var out: [PerplexityWindow] = []
        var prevEnd = 0
        var begin = 0
        while begin < length {
            let end = Swift.min(begin + maxLength, length)
            let first = Swift.max(prevEnd, begin + 1)
            if first < end { out.append(PerplexityWindow(start: begin, end: end, firstTarget: first)) }
            prevEnd = end
            if end == length { break }
            begin += stride
        }
        return out
    }

    /// The perplexity of `model` over `sequences`.
    /// - Parameters:
    ///   - maxLength: the window; nil takes `defaultMaxLength(model)` (and no window when that is nil too).
    ///   - stride: the window's step; nil takes `defaultStride(maxLength:)`.
    ///   - batchSize: windows per forward pass.
    /// - Throws: `EvalError` for bad settings, bad ids or nothing to predict; the model's `TensorError`s.
    public static func evaluate(model: LanguageModel, sequences: [PerplexitySequence], maxLength: Int? = nil,
                                stride: Int? = nil, batchSize: Int = 8) throws -> PerplexityResult {
        guard batchSize >= 1 else { throw EvalError("batch_size must be a positive integer, got \(batchSize)") }
        let window = maxLength ?? defaultMaxLength(model)
        if let window, let limit = model.maxPositions, window > limit {
            throw EvalError("max_length \(window) exceeds the model's \(limit) positions")
        }
        let step = window.map { stride ?? defaultStride(maxLength: $0) }
        let vocab = model.vocabSize
        for (k, s) in sequences.enumerated() {
            if let t = s.targets, t.count != s.ids.count {
                throw EvalError("sequence \(k + 1): its target mask has \(t.count) entries for \(s.ids.count) tokens")
            }
            for (j, id) in s.ids.enumerated() where !(id >= 0 && id < vocab && id < (1 << 24)) {
                throw EvalError("sequence \(k + 1): token \(j + 1) is \(id), not an id in 0..\(vocab - 1)")
            }
        }
        // The plan: every window with something to predict, in sequence order.
        var jobs: [(sequence: Int, window: PerplexityWindow)] = []
        for (k, s) in sequences.enumerated() {
            let ws: [PerplexityWindow]
            if let window, let step {
                ws = try windows(length: s.ids.count, maxLength: window, stride: step)
            } else {
                ws = s.ids.count >= 2 ? [PerplexityWindow(start: 0, end: s.ids.count, firstTarget: 1)] : []
            }
            for w in ws where s.targets.map({ $0[w.firstTarget..<w.end].contains(true) }) ?? true {
                jobs.append((k, w))
            }
        }
        guard !jobs.isEmpty else {
            throw EvalError("nothing to predict: every sequence has fewer than 2 tokens or no target token after its first")
        }
        var result = PerplexityResult()
        result.perSequence = Array(repeating: PerplexityResult.SequenceTotal(), count: sequences.count)
        result.windows = jobs.count
        result.maxLength = window
        result.stride = step
        let wasTraining = model.isTraining
        model.setTraining(false)
        defer { model.setTraining(wasTraining) }
        try GradMode.with(enabled: false) {
            var first = 0
            while first < jobs.count {
                let batch = jobs[first ..< Swift.min(first + batchSize, jobs.count)]
                let b = batch.count
                let t = batch.reduce(2) { Swift.max($0, $1.window.end - $1.window.start) }
                var ids = [Float](repeating: 0, count: b * t)       // (B, T)
                var mask = [Float](repeating: 0, count: b * t)      // (B, T): 1 on counted targets
                for (row, job) in batch.enumerated() {
                    let s = sequences[job.sequence]
                    for p in job.window.start ..< job.window.end {
                        ids[row * t + p - job.window.start] = Float(s.ids[p])
                        if p >= job.window.firstTarget && (s.targets?[p] ?? true) { mask[row * t + p - job.window.start] = 1 }
                    }
                }
                let (logp, m) = try model.tokenLogProbs(try Tensor(shape: [b, t], values: ids),
                                                        mask: try Tensor(shape: [b, t], values: mask), "perplexity")
                let lp = try logp.contiguous().toArray()            // (B, T-1)
                let mm = try m.contiguous().toArray()               // (B, T-1)
                for (row, job) in batch.enumerated() {
                    var nll = 0.0, n = 0
                    for k in 0 ..< (t - 1) where mm[row * (t - 1) + k] != 0 {
                        nll -= Double(lp[row * (t - 1) + k])
                        n += 1
                    }
                    result.perSequence[job.sequence].nll += nll
                    result.perSequence[job.sequence].tokens += n
                }
                result.forwardPasses += 1
                first += b
            }
        }
        for s in result.perSequence {
            result.totalNLL += s.nll
            result.tokens += s.tokens
        }
        return result
    }
}

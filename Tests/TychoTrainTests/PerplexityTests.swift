// PerplexityTests.swift: the sliding windows against a direct transcription of Hugging Face's guide loop (label
// masks per window), and the perplexity against log-softmax of the model's logits summed in Double, window by
// window; batch-size invariance, target masks against m:logprobs, refusals. Agreement with transformers itself is
// checked by Tests/lua/eval.lua on fixtures from Tests/Fixtures/gen_eval_fixtures.py.

import Foundation
import Testing
import TychoNN
import TychoTensor
@testable import TychoTrain

@Suite struct PerplexityTests {
    static func model(seed: UInt64, ctx: Int = 32) throws -> GPT2 {
        var g = RandomGenerator(seed: seed)
        return try GPT2(GPT2Config(vocab: 50, ctx: ctx, dim: 16, layers: 1, heads: 2), using: &g)
    }

    static func ids(_ n: Int, seed: UInt64) -> [Int] {
        var g = RandomGenerator(seed: seed)
        return (0..<n).map { _ in Int(g.nextUniform() * 50) % 50 }
    }

    /// The guide's loop: per window, the labels that are not -100 after the model's internal shift, as absolute
    /// positions, with the window's bounds.
    static func guideLoop(length: Int, maxLength: Int, stride: Int) -> [(begin: Int, end: Int, predicted: [Int])] {
        var out: [(Int, Int, [Int])] = []
        var prevEnd = 0
        for begin in Swift.stride(from: 0, to: length, by: stride) {
            let end = Swift.min(begin + maxLength, length)
            let trgLen = end - prevEnd
            // target_ids[:, :-trg_len] = -100: the last trg_len labels of the window stay; the shift drops label 0
            let kept = Array((end - Swift.min(trgLen, end - begin))..<end)
            out.append((begin, end, kept.filter { $0 > begin }))
            prevEnd = end
            if end == length { break }
        }
        return out
    }

    @Test func windowsFollowTheGuideLoop() throws {
        for length in [0, 1, 2, 5, 16, 17, 40, 101] {
            for maxLength in [2, 3, 8, 16] {
                for stride in 1...maxLength {
                    let ws = try Perplexity.windows(length: length, maxLength: maxLength, stride: stride)
                    let mine = ws.map { ($0.start, $0.end, Array($0.firstTarget..<$0.end)) }
                    let guide = length <= maxLength
                        ? (length >= 2 ? [(0, length, Array(1..<length))] : [])
                        : Self.guideLoop(length: length, maxLength: maxLength, stride: stride).filter { !$0.predicted.isEmpty }
                    #expect(mine.count == guide.count, "L=\(length) W=\(maxLength) S=\(stride)")
                    for (m, g) in zip(mine, guide) {
                        #expect(m.0 == g.0 && m.1 == g.1 && m.2 == g.2, "L=\(length) W=\(maxLength) S=\(stride): \(m) vs \(g)")
                    }
                    let predicted = mine.flatMap(\.2)
                    #expect(Set(predicted).count == predicted.count, "no position twice")
                    if stride < maxLength && length >= 2 {
                        #expect(predicted == Array(1..<length), "every position from 1 once: L=\(length) W=\(maxLength) S=\(stride)")
                    }
                }
            }
        }
        expectError("stride must be in 1..max_length") { try Perplexity.windows(length: 10, maxLength: 4, stride: 5) }
        expectError("stride must be in 1..max_length") { try Perplexity.windows(length: 10, maxLength: 4, stride: 0) }
        expectError("max_length must be at least 2") { try Perplexity.windows(length: 10, maxLength: 1, stride: 1) }
    }

    /// Σ -log p over `positions` of `ids[begin..<end]` run alone, from log-softmax of the logits in Double.
    static func directNLL(_ m: LanguageModel, _ ids: [Int], begin: Int, end: Int, positions: [Int]) throws -> Double {
        let slice = Array(ids[begin..<end])
        let logits = try m.logits(Tensor(shape: [1, slice.count], values: slice.map(Float.init))).toArray()
        let v = m.vocabSize
        var nll = 0.0
        for p in positions {
            let row = (p - 1 - begin) * v
            let xs = (0..<v).map { Double(logits[row + $0]) }
            let mx = xs.max() ?? 0
            let lse = mx + log(xs.reduce(0) { $0 + exp($1 - mx) })
            nll += lse - xs[ids[p]]
        }
        return nll
    }

    @Test func perplexityEqualsLogSoftmaxWindowByWindow() throws {
        let m = try Self.model(seed: 3)
        let seqs = [Self.ids(12, seed: 1), Self.ids(1, seed: 2), Self.ids(32, seed: 3), Self.ids(77, seed: 4), Self.ids(2, seed: 5)]
        for (maxLength, stride) in [(32, 16), (32, 32), (10, 3), (2, 1)] {
            var want = 0.0, tokens = 0
            for s in seqs {
                let loop = s.count <= maxLength ? (s.count >= 2 ? [(0, s.count, Array(1..<s.count))] : [])
                                                : Self.guideLoop(length: s.count, maxLength: maxLength, stride: stride)
                for (b, e, ps) in loop where !ps.isEmpty {
                    want += try Self.directNLL(m, s, begin: b, end: e, positions: ps)
                    tokens += ps.count
                }
            }
            let r = try Perplexity.evaluate(model: m, sequences: seqs.map { PerplexitySequence(ids: $0) },
                                            maxLength: maxLength, stride: stride, batchSize: 3)
            #expect(r.tokens == tokens, "W=\(maxLength) S=\(stride)")
            #expect(Swift.abs(r.totalNLL - want) <= 1e-5 * want, "W=\(maxLength) S=\(stride): \(r.totalNLL) vs \(want)")
            #expect(Swift.abs(r.perplexity - exp(want / Double(tokens))) <= 1e-5 * r.perplexity)
            #expect(r.perSequence[1] == PerplexityResult.SequenceTotal(), "one token: nothing predicted")
            #expect(r.maxLength == maxLength && r.stride == stride)
        }
    }

    @Test func defaultsAndBatchSizes() throws {
        let m = try Self.model(seed: 4, ctx: 16)
        let seqs = [Self.ids(40, seed: 9), Self.ids(7, seed: 10)].map { PerplexitySequence(ids: $0) }
        let r1 = try Perplexity.evaluate(model: m, sequences: seqs, batchSize: 1)
        #expect(r1.maxLength == 16 && r1.stride == 8, "the model's positions, stride half of them")
        let explicit = try Perplexity.evaluate(model: m, sequences: seqs, maxLength: 16, stride: 8, batchSize: 64)
        #expect(Swift.abs(r1.totalNLL - explicit.totalNLL) <= 1e-6 * r1.totalNLL && r1.tokens == explicit.tokens)
        #expect(r1.forwardPasses == r1.windows && explicit.forwardPasses == 1)
        #expect(r1.tokens == 39 + 6)
    }

    @Test func targetMaskCountsOnlyMarkedTokens() throws {
        let m = try Self.model(seed: 5)
        let ids = Self.ids(20, seed: 11)
        let targets = (0..<20).map { $0 >= 8 && $0 != 13 }
        let r = try Perplexity.evaluate(model: m, sequences: [PerplexitySequence(ids: ids, targets: targets)], batchSize: 2)
        let mask = try Tensor(shape: [1, 20], values: targets.map { $0 ? 1 : 0 })
        let lp = try m.logprobs(Tensor(shape: [1, 20], values: ids.map(Float.init)), mask: mask).item()
        #expect(r.tokens == 11)
        #expect(Swift.abs(r.totalNLL + Double(lp)) <= 1e-4 * r.totalNLL, "\(r.totalNLL) vs \(-lp)")
    }

    @Test func modeAndGradientsUntouched() throws {
        let m = try Self.model(seed: 6)
        m.setTraining(true)
        _ = try Perplexity.evaluate(model: m, sequences: [PerplexitySequence(ids: Self.ids(9, seed: 1))])
        #expect(m.isTraining, "training mode restored")
        #expect(m.parameters().allSatisfy { $0.grad == nil })
        m.setTraining(false)
        _ = try Perplexity.evaluate(model: m, sequences: [PerplexitySequence(ids: Self.ids(9, seed: 1))])
        #expect(!m.isTraining)
    }

    @Test func refusals() throws {
        let m = try Self.model(seed: 7)
        expectError("token 2 is 50, not an id in 0..49") {
            try Perplexity.evaluate(model: m, sequences: [PerplexitySequence(ids: [1, 50, 2])])
        }
        expectError("nothing to predict") { try Perplexity.evaluate(model: m, sequences: [PerplexitySequence(ids: [3])]) }
        expectError("nothing to predict") {
            try Perplexity.evaluate(model: m, sequences: [PerplexitySequence(ids: [3, 4, 5], targets: [true, false, false])])
        }
        expectError("max_length 33 exceeds the model's 32 positions") {
            try Perplexity.evaluate(model: m, sequences: [PerplexitySequence(ids: [3, 4])], maxLength: 33)
        }
        expectError("target mask has 2 entries for 3 tokens") {
            try Perplexity.evaluate(model: m, sequences: [PerplexitySequence(ids: [3, 4, 5], targets: [true, true])])
        }
        expectError("batch_size must be a positive integer") {
            try Perplexity.evaluate(model: m, sequences: [PerplexitySequence(ids: [3, 4])], batchSize: 0)
        }
    }
}

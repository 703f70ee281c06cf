// IncrementalDecoderTests.swift: the KV-cache forward (IncrementalDecoder, KVCache, DecodeAttention) against the
// models' full forward.
//
// What must hold (IncrementalDecoder.swift's header): prompt and decode rows agree with the full forward to float
// rounding; a slot's logits are bitwise the same whatever other slots share the step and whatever their
// lengths; K draft tokens in one step give bitwise the logits of K single steps; a truncated slot decodes again
// as before. Checked on the three tiny Hugging Face fixtures, on random models with odd sizes (head size 6, one
// kv head, dims that are not multiples of 8), and on benchmark-sized ones (dim 128 and 384, MLP 512 and 1536:
// products whose k exceeds OpenBLAS's block, where its rows do depend on the batch).

import Foundation
import Testing
@testable import TychoNN
import TychoTensor

private let fixtures = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures/models")

private func models(large: Bool = false) throws -> [(String, LanguageModel)] {
    var out: [(String, LanguageModel)] = []
    for name in ["gpt2", "llama", "qwen2"] {
        out.append((name, try HFCheckpoint.load(fixtures.appendingPathComponent(name).path)))
    }
    var g = RandomGenerator(seed: 7)
    var gc = GPT2Config(vocab: 50, ctx: 40, dim: 18, layers: 2, heads: 3)
    gc.inner = 20
    out.append(("gpt2 odd", try GPT2(gc, using: &g)))
    var lc = LlamaConfig(vocab: 45, ctx: 40, dim: 20, layers: 2, heads: 4, kvHeads: 1, hidden: 28)
    lc.headDim = 6
    lc.qkvBias = true
    out.append(("llama odd", try Llama(lc, using: &g)))
    if large {
        out.append(("gpt2 dim 128", try GPT2(GPT2Config(vocab: 512, ctx: 64, dim: 128, layers: 1, heads: 4), using: &g)))
        var big = LlamaConfig(vocab: 300, ctx: 64, dim: 384, layers: 1, heads: 6, kvHeads: 2, hidden: 1536)
        big.tie = true
        out.append(("llama dim 384", try Llama(big, using: &g)))
    }
    for (_, m) in out { m.setTraining(false) }
    return out
}

private func sequence(_ seed: UInt64, _ count: Int, vocab: Int) -> [Int] {
    var g = RandomGenerator(seed: seed)
    return (0..<count).map { _ in Int(g.nextInt(below: UInt64(vocab))) }
}

private func fullLogits(_ m: LanguageModel, _ ids: [Int]) throws -> Tensor {
    try GradMode.with(enabled: false) { try m.logits(Tensor(shape: [1, ids.count], values: ids.map(Float.init))).select(0, 0) }
}

private func row(_ t: Tensor, _ r: Int) throws -> [Float] { try t.select(0, r).toArray() }

private func bits(_ v: [Float]) -> [UInt32] { v.map(\.bitPattern) }

private func maxDiff(_ a: [Float], _ b: [Float]) -> Float { zip(a, b).map { Swift.abs($0 - $1) }.max() ?? 0 }

@Suite struct IncrementalDecoderTests {
    @Test func promptLogitsAgreeWithTheFullForward() throws {
        for (name, m) in try models(large: true) {
            let ids = sequence(1, 13, vocab: m.vocabSize)
            let dec = try IncrementalDecoder(model: m, slots: 2, capacity: 20)
            let got = try dec.step([DecodeEntry(slot: 1, tokens: ids, logitRows: ids.count)])
            let want = try fullLogits(m, ids)
            #expect(got.shape == [ids.count, m.vocabSize], "\(name)")
            let d = maxDiff(got.toArray(), want.toArray())
            #expect(d < 1e-5, "\(name): prompt logits differ from logits() by \(d)")
            #expect(dec.length(of: 1) == ids.count && dec.length(of: 0) == 0, "\(name)")
        }
    }

    @Test func decodeRowsAgreeWithTheFullForward() throws {
        for (name, m) in try models(large: true) {
            let ids = sequence(2, 16, vocab: m.vocabSize)
            let dec = try IncrementalDecoder(model: m, slots: 1, capacity: 16)
            let want = try fullLogits(m, ids)
            _ = try dec.step([DecodeEntry(slot: 0, tokens: Array(ids[0..<5]))])
            var worst: Float = 0
            for t in 5..<16 {
                let got = try dec.step([DecodeEntry(slot: 0, tokens: [ids[t]])])
                worst = max(worst, maxDiff(try row(got, 0), try row(want, t)))
            }
            #expect(worst < 1e-5, "\(name): decode logits differ from logits() by \(worst)")
        }
    }

    @Test func aSlotGivesTheSameBitsWhateverSharesTheStep() throws {
        for (name, m) in try models(large: true) {
            let a = sequence(3, 9, vocab: m.vocabSize), b = sequence(4, 4, vocab: m.vocabSize)
            let c = sequence(5, 12, vocab: m.vocabSize)
            // Alone: a's prompt of 6, then three single tokens.
            let alone = try IncrementalDecoder(model: m, slots: 1, capacity: 24)
            var want: [[UInt32]] = [bits(try row(alone.step([DecodeEntry(slot: 0, tokens: Array(a[0..<6]))]), 0))]
            for t in 6..<9 { want.append(bits(try row(alone.step([DecodeEntry(slot: 0, tokens: [a[t]])]), 0))) }
            // Shared: a sits in slot 2 beside other slots that prefill, decode and verify drafts in the same steps.
            let dec = try IncrementalDecoder(model: m, slots: 3, capacity: 24)
            var got: [[UInt32]] = []
            var l = try dec.step([DecodeEntry(slot: 0, tokens: c), DecodeEntry(slot: 2, tokens: Array(a[0..<6])),
                                  DecodeEntry(slot: 1, tokens: b, logitRows: 2)])
            got.append(bits(try row(l, 1)))
            l = try dec.step([DecodeEntry(slot: 2, tokens: [a[6]]), DecodeEntry(slot: 0, tokens: [1, 2, 3], logitRows: 3)])
            got.append(bits(try row(l, 0)))
            l = try dec.step([DecodeEntry(slot: 1, tokens: [5]), DecodeEntry(slot: 2, tokens: [a[7]])])
            got.append(bits(try row(l, 1)))
            dec.reset(slot: 0)
            l = try dec.step([DecodeEntry(slot: 0, tokens: Array(c[0..<7]), logitRows: 0), DecodeEntry(slot: 2, tokens: [a[8]])])
            got.append(bits(try row(l, 0)))
            #expect(got == want, "\(name): slot logits depend on the other slots")
        }
    }

    @Test func draftTokensInOneStepEqualSingleSteps() throws {
        for (name, m) in try models(large: true) {
            let ids = sequence(6, 14, vocab: m.vocabSize)
            let single = try IncrementalDecoder(model: m, slots: 1, capacity: 14)
            var want: [[UInt32]] = [bits(try row(single.step([DecodeEntry(slot: 0, tokens: Array(ids[0..<4]))]), 0))]
            for t in 4..<14 { want.append(bits(try row(single.step([DecodeEntry(slot: 0, tokens: [ids[t]])]), 0))) }
            // The prompt with three drafts in the first step, then six drafts, then one.
            let spec = try IncrementalDecoder(model: m, slots: 1, capacity: 14)
            var got: [[UInt32]] = []
            var l = try spec.step([DecodeEntry(slot: 0, tokens: Array(ids[0..<7]), logitRows: 4, prefillRows: 4)])
            for r in 0..<4 { got.append(bits(try row(l, r))) }
            l = try spec.step([DecodeEntry(slot: 0, tokens: Array(ids[7..<13]), logitRows: 6)])
            for r in 0..<6 { got.append(bits(try row(l, r))) }
            l = try spec.step([DecodeEntry(slot: 0, tokens: [ids[13]])])
            got.append(bits(try row(l, 0)))
            #expect(got == want, "\(name): draft verification differs from single steps")
            // Rejecting drafts: truncate and decode again.
            try spec.truncate(slot: 0, to: 9)
            l = try spec.step([DecodeEntry(slot: 0, tokens: [ids[9], ids[10]], logitRows: 2)])
            #expect([bits(try row(l, 0)), bits(try row(l, 1))] == [want[6], want[7]], "\(name): after truncation")
        }
    }

    @Test func aCopiedPrefixDecodesAsItsOwnPrefill() throws {
        for (name, m) in try models(large: true) {
            let ids = sequence(8, 12, vocab: m.vocabSize)
            let dec = try IncrementalDecoder(model: m, slots: 3, capacity: 16)
            _ = try dec.step([DecodeEntry(slot: 0, tokens: Array(ids[0..<9])), DecodeEntry(slot: 1, tokens: [3, 4])])
            try dec.copyPrefix(from: 0, to: 2, count: 9)
            #expect(dec.length(of: 2) == 9)
            let shared = try dec.step([DecodeEntry(slot: 2, tokens: [ids[9], ids[10]], logitRows: 2)])
            let own = try IncrementalDecoder(model: m, slots: 1, capacity: 16)
            _ = try own.step([DecodeEntry(slot: 0, tokens: Array(ids[0..<9]))])
            let want = try own.step([DecodeEntry(slot: 0, tokens: [ids[9], ids[10]], logitRows: 2)])
            #expect(bits(shared.toArray()) == bits(want.toArray()), "\(name): copied prefix")
            #expect(throws: TensorError.self) { try dec.copyPrefix(from: 1, to: 2, count: 3) }
            #expect(throws: TensorError.self) { try dec.copyPrefix(from: 1, to: 1, count: 1) }
        }
    }

    @Test func badStepsThrow() throws {
        let (_, m) = try models()[0]
        let dec = try IncrementalDecoder(model: m, slots: 2, capacity: 8)
        #expect(throws: TensorError.self) { try dec.step([]) }
        #expect(throws: TensorError.self) { try dec.step([DecodeEntry(slot: 2, tokens: [1])]) }
        #expect(throws: TensorError.self) { try dec.step([DecodeEntry(slot: 0, tokens: [])]) }
        #expect(throws: TensorError.self) { try dec.step([DecodeEntry(slot: 0, tokens: [1]), DecodeEntry(slot: 0, tokens: [2])]) }
        #expect(throws: TensorError.self) { try dec.step([DecodeEntry(slot: 0, tokens: Array(repeating: 1, count: 9))]) }
        #expect(throws: TensorError.self) { try dec.step([DecodeEntry(slot: 0, tokens: [m.vocabSize])]) }
        #expect(throws: TensorError.self) { try dec.step([DecodeEntry(slot: 0, tokens: [1], logitRows: 2)]) }
        _ = try dec.step([DecodeEntry(slot: 0, tokens: [1, 2])])
        #expect(throws: TensorError.self) { try dec.step([DecodeEntry(slot: 0, tokens: [1], prefillRows: 1)]) }
        #expect(throws: TensorError.self) { try dec.truncate(slot: 0, to: 3) }
        #expect(throws: TensorError.self) { try IncrementalDecoder(model: m, slots: 1, capacity: 65) }
        #expect(throws: TensorError.self) { try IncrementalDecoder(model: m, slots: 0, capacity: 8) }
        #expect(throws: TensorError.self) { try IncrementalDecoder(model: GPT2ish(), slots: 1, capacity: 8) }
    }
}

/// A language model that is neither GPT-2 nor Llama.
private final class GPT2ish: LanguageModel {
    override var vocabSize: Int { 4 }
}

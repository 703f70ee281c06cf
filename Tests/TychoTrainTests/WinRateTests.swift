// WinRateTests.swift: verdict parsing, the tally (half weights with swap, win_rate = (wins + ties/2)/n = the mean of
// prompt scores, inconsistent swaps), and a run over two tiny models with scripted judges: swap order, failures
// counted, other errors rethrown.

import Testing
import TychoInfer
import TychoNN
import TychoTensor
import TychoText
@testable import TychoTrain

@Suite struct WinRateTests {
    @Test func verdicts() throws {
        #expect(try JudgeVerdict.parse(text: "a") == .a)
        #expect(try JudgeVerdict.parse(text: " B\n") == .b)
        #expect(try JudgeVerdict.parse(text: "TIE") == .tie)
        #expect(try JudgeVerdict.parse(number: 1) == .a)
        #expect(try JudgeVerdict.parse(number: 0) == .b)
        #expect(try JudgeVerdict.parse(number: 0.5) == .tie)
        expectError("must return \"a\", \"b\" or \"tie\"") { try JudgeVerdict.parse(text: "policy") }
        expectError("must be 1 (a wins), 0 (b wins) or 0.5 (tie)") { try JudgeVerdict.parse(number: 0.7) }
        expectError("must be 1 (a wins), 0 (b wins) or 0.5 (tie)") { try JudgeVerdict.parse(number: .nan) }
    }

    @Test func tallyWithoutSwap() {
        var t = WinRateTally()
        #expect(t.winRate == nil)
        #expect(t.add(first: .a) == 1)
        #expect(t.add(first: .a) == 1)
        #expect(t.add(first: .b) == 0)
        #expect(t.add(first: .tie) == 0.5)
        #expect(t.wins == 2 && t.losses == 1 && t.ties == 1 && t.n == 4 && t.inconsistent == 0)
        #expect(t.winRate == 2.5 / 4)
    }

    @Test func tallyWithSwapCountsHalves() {
        var t = WinRateTally()
        // a = policy says a, a = reference says b: the policy wins in both orders
        #expect(t.add(first: .a, swapped: .b) == 1)
        // always a: position bias, one win and one loss
        #expect(t.add(first: .a, swapped: .a) == 0.5)
        // a then tie: 3/4
        #expect(t.add(first: .a, swapped: .tie) == 0.75)
        // b then a: the reference wins twice
        #expect(t.add(first: .b, swapped: .a) == 0)
        #expect(t.wins == 1 + 0.5 + 0.5 && t.losses == 0.5 + 1 && t.ties == 0.5, "\(t)")
        #expect(t.n == 4 && t.inconsistent == 2)
        let scores = [1, 0.5, 0.75, 0]
        #expect(t.winRate == scores.reduce(0, +) / 4, "the mean of the prompt scores")
        #expect(t.winRate == (t.wins + t.ties / 2) / Double(t.n))
    }

    static func generators() throws -> (Generator, Generator, Tokenizer) {
        let tok = try Tokenizer.bytes(specialTokens: ["<|endoftext|>"])
        var g1 = RandomGenerator(seed: 11), g2 = RandomGenerator(seed: 12)
        let p = try GPT2(GPT2Config(vocab: 257, ctx: 32, dim: 16, layers: 1, heads: 2), using: &g1)
        let r = try GPT2(GPT2Config(vocab: 257, ctx: 32, dim: 16, layers: 1, heads: 2), using: &g2)
        return (try Generator(model: p, tokenizer: tok), try Generator(model: r, tokenizer: tok), tok)
    }

    static func prompts(_ tok: Tokenizer) -> [EvalPrompt] {
        ["Hello", "The cat", "x", "Once upon"].map { EvalPrompt(text: $0, ids: tok.encode($0, addSpecial: false)) }
    }

    static var options: GenerationOptions {
        var o = GenerationOptions()
        o.maxTokens = 5
        o.temperature = 0
        o.stopAtEOS = false
        return o
    }

    @Test func runJudgesBothOrdersAndCountsFailures() throws {
        let (p, r, tok) = try Self.generators()
        let ps = Self.prompts(tok)
        var calls: [(Int, String, String)] = []
        let res = try WinRate.run(policy: p, reference: r, prompts: ps, options: Self.options, batchSize: 2, swap: true) { i, _, a, b in
            calls.append((i, a, b))
            if i == 2 { throw EvalCallbackError("no opinion") }
            return .a
        }
        // prompt 3 (index 2) failed on its first call, so no second call for it
        #expect(calls.map(\.0) == [0, 0, 1, 1, 2, 3, 3])
        for k in [0, 2, 5] { #expect(calls[k].1 == calls[k + 1].2 && calls[k].2 == calls[k + 1].1, "swapped arguments") }
        let direct = try p.generate(prompts: ps.map(\.ids), options: Self.options)
        #expect(res.samples.map(\.policy) == direct.completions.map { $0[0].text }, "the policy's greedy completions")
        #expect(res.tally.n == 3 && res.errors == 1 && res.tally.winRate == 0.5 && res.tally.inconsistent == 3)
        #expect(res.firstError == "prompt 3: no opinion")
        #expect(res.samples[2].score == nil && res.samples[2].error == "no opinion")

        let noSwap = try WinRate.run(policy: p, reference: r, prompts: ps, options: Self.options, batchSize: 4, swap: false) { _, _, _, _ in .a }
        #expect(noSwap.tally.winRate == 1 && noSwap.tally.wins == 4)

        struct Stop: Error {}
        expectError("Stop") {
            try WinRate.run(policy: p, reference: r, prompts: ps, options: Self.options, batchSize: 4) { _, _, _, _ in throw Stop() }
        }
    }
}

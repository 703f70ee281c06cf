// GeneratorTests.swift: the Swift face of generation (Generator.swift) as the batch jobs use it: onFinish as
// samples finish, shouldStart stopping the schedule, per-request seeds independent of position and batch size,
// EOS from the model config and the tokenizer, request checks; and the sampler's rules on hand-made logits
// (Sampler.swift). Greedy against transformers, distributions and predicted outputs are in Tests/lua/infer.lua.

import Foundation
import Testing
@testable import TychoInfer
import TychoNN
import TychoTensor
import TychoText

private let fixtures = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures/models")

private func fixture(_ name: String) throws -> LanguageModel {
    try HFCheckpoint.load(fixtures.appendingPathComponent(name).path)
}

private func tokenizer() throws -> Tokenizer {
    try Tokenizer.load(path: fixtures.appendingPathComponent("tokenizer.json").path)
}

private func greedy(_ maxTokens: Int) -> GenerationOptions {
    var o = GenerationOptions()
    o.maxTokens = maxTokens
    o.temperature = 0
    o.stopAtEOS = false
    return o
}

@Suite struct GeneratorTests {
    @Test func onFinishReportsEverySampleOnceAsItFinishes() throws {
        let g = try Generator(model: try fixture("gpt2"), tokenizer: try tokenizer())
        var requests: [GenerationRequest] = []
        let maxTokens = [14, 2, 5, 3, 2]
        for (i, len) in [3, 9, 1, 5, 2].enumerated() {
            var o = greedy(maxTokens[i])
            o.n = i == 1 ? 2 : 1
            requests.append(GenerationRequest(prompt: Array(40..<(40 + len)), options: o))
        }
        var reported: [(Int, Int, Completion)] = []
        let result = try g.generate(requests: requests, batchSize: 2, onFinish: { r, s, c in
            reported.append((r, s, c))
        })
        #expect(reported.count == 6)
        #expect(Set(reported.map { "\($0.0)/\($0.1)" }).count == 6, "each sample once")
        for (r, s, c) in reported {
            #expect(result.completions[r][s] == c)
            #expect(c.ids.count == requests[r].options.maxTokens)
        }
        // Samples are reported as they finish, not in request order: request 1 (2 tokens) beside request 0 (14).
        #expect(reported.first!.0 == 1)
        #expect(reported.map(\.0) != reported.map(\.0).sorted())
        #expect(result.usage.promptTokens == 3 + 9 + 1 + 5 + 2)
        #expect(result.usage.completionTokens == 14 + 2 * 2 + 5 + 3 + 2)
        #expect(result.notStarted.isEmpty)
    }

    @Test func aThrowFromOnFinishStopsTheRun() throws {
        let g = try Generator(model: try fixture("gpt2"), tokenizer: try tokenizer())
        struct Stop: Error {}
        var calls = 0
        #expect(throws: Stop.self) {
            _ = try g.generate(prompts: [[1, 2], [3], [4, 5, 6]], options: greedy(4), batchSize: 1) { _, _, _ in
                calls += 1
                throw Stop()
            }
        }
        #expect(calls == 1)
    }

    @Test func shouldStartStopsSchedulingNewRequests() throws {
        let g = try Generator(model: try fixture("llama"), tokenizer: try tokenizer())
        let requests = (0..<6).map { i in GenerationRequest(prompt: [10 + i, 20], options: greedy(3)) }
        var asked: [Int] = []
        let result = try g.generate(requests: requests, batchSize: 2, shouldStart: { r in
            asked.append(r)
            return r < 3
        })
        #expect(asked == [0, 1, 2, 3])
        #expect(result.notStarted == [3, 4, 5])
        #expect(result.completions[0...2].allSatisfy { $0.count == 1 && $0[0].ids.count == 3 })
        #expect(result.completions[3...].allSatisfy { $0.isEmpty })
        #expect(result.usage.completionTokens == 9)
        #expect(result.usage.promptTokens == 6)
    }

    @Test func samplesDependOnTheRequestSeedNotOnPositionOrBatch() throws {
        let g = try Generator(model: try fixture("qwen2"), tokenizer: try tokenizer())
        var o = GenerationOptions()
        o.maxTokens = 7
        o.temperature = 0.9
        o.topK = 50
        o.n = 3
        o.stopAtEOS = false
        func request(_ prompt: [Int], seed: UInt64) -> GenerationRequest {
            var r = GenerationRequest(prompt: prompt, options: o)
            r.options.seed = seed
            return r
        }
        let a = request([5, 6, 7], seed: 11), b = request([9], seed: 12), c = request([1, 2, 3, 4, 5, 6], seed: 13)
        let one = try g.generate(requests: [a, b, c], batchSize: 1)
        let many = try g.generate(requests: [c, a, b, a], batchSize: 5)
        #expect(many.completions[1] == one.completions[0])
        #expect(many.completions[3] == one.completions[0])
        #expect(many.completions[2] == one.completions[1])
        #expect(many.completions[0] == one.completions[2])
    }

    @Test func eosComesFromTheConfigAndTheTokenizer() throws {
        // A GPT-2 whose config names, as EOS, the third token its greedy continuation emits.
        var config = GPT2Config(vocab: 40, ctx: 32, dim: 16, layers: 1, heads: 2)
        var rng = RandomGenerator(seed: 3)
        let plain = try GPT2(config, using: &rng)
        let g0 = try Generator(model: plain, tokenizer: nil)
        #expect(g0.eosTokenIDs.isEmpty)
        let full = try g0.generate(prompts: [[1, 2, 3]], options: greedy(12)).completions[0][0]
        let eos = full.ids[2]
        let first = full.ids.firstIndex(of: eos)!
        config.eosTokenID = eos
        rng = RandomGenerator(seed: 3)
        let withEOS = try GPT2(config, using: &rng)
        let g = try Generator(model: withEOS, tokenizer: nil)
        #expect(g.eosTokenIDs == [eos])
        var o = greedy(12)
        o.stopAtEOS = true
        let c = try g.generate(prompts: [[1, 2, 3]], options: o).completions[0][0]
        #expect(c.ids == Array(full.ids[0...first]))
        #expect(c.finishReason == .stop)
        // The fixtures' tokenizer has <|endoftext|> = 0; their configs say eos_token_id = 0 too.
        let gq = try Generator(model: try fixture("qwen2"), tokenizer: try tokenizer())
        #expect(gq.eosTokenIDs == [0])
    }

    @Test func llamaWithoutPositionLimitAndLongRuns() throws {
        let g = try Generator(model: try fixture("llama"), tokenizer: try tokenizer())
        // 100 new tokens after a prompt of 40: more than the config's 64 positions (rotary positions have no
        // hard limit, as in transformers).
        let c = try g.generate(prompts: [Array(100..<140)], options: greedy(100)).completions[0][0]
        #expect(c.ids.count == 100 && c.finishReason == .length)
    }

    @Test func requestsAreCheckedBeforeAnyWork() throws {
        let g = try Generator(model: try fixture("gpt2"), tokenizer: nil)
        var calls = 0
        func expectMessage(_ requests: [GenerationRequest], _ fragment: String, batch: Int = 4) {
            do {
                _ = try g.generate(requests: requests, batchSize: batch, onFinish: { _, _, _ in calls += 1 })
                Issue.record("no error for \(fragment)")
            } catch let e as GenerationError {
                #expect(e.message.contains(fragment), "\(e.message) lacks \(fragment)")
            } catch {
                Issue.record("unexpected \(error)")
            }
        }
        let ok = GenerationRequest(prompt: [1], options: greedy(2))
        expectMessage([ok, GenerationRequest(prompt: [], options: greedy(2))], "request 2: the prompt is empty")
        expectMessage([GenerationRequest(prompt: [384], options: greedy(2))], "not an id in 0..383")
        expectMessage([GenerationRequest(prompt: Array(repeating: 1, count: 65), options: greedy(2))], "at most 64")
        var o = greedy(2); o.stopStrings = ["x"]
        expectMessage([GenerationRequest(prompt: [1], options: o)], "stop strings need a tokenizer")
        o = greedy(2); o.prediction = .text("x")
        expectMessage([GenerationRequest(prompt: [1], options: o)], "needs a tokenizer")
        o = greedy(0)
        expectMessage([GenerationRequest(prompt: [1], options: o)], "max_tokens")
        o = greedy(2); o.topP = 0
        expectMessage([GenerationRequest(prompt: [1], options: o)], "top_p")
        expectMessage([ok], "batch_size", batch: 0)
        #expect(calls == 0)
        #expect(throws: GenerationError.self) { try Generator(model: LanguageModel(), tokenizer: nil) }
        #expect(try g.generate(requests: []).completions.isEmpty)
    }
}

@Suite struct SamplerTests {
    /// Runs `choose` on a row of logits.
    private func choose(_ logits: [Float], _ o: GenerationOptions, seen: [Bool] = [], draft: Int? = nil,
                        sample: Int = 0) -> (Int, Bool) {
        var s = Sampler(options: o, sample: sample)
        let scratch = SamplerScratch(vocab: logits.count)
        return logits.withUnsafeBufferPointer { s.choose($0.baseAddress!, seen: seen, draft: draft, scratch: scratch) }
    }

    /// The set of tokens `choose` can return, over many draws.
    private func support(_ logits: [Float], _ o: GenerationOptions, draws: Int = 400) -> Set<Int> {
        var out = Set<Int>()
        for k in 0..<draws { out.insert(choose(logits, o, sample: k).0) }
        return out
    }

    @Test func greedyTakesTheFirstMaximumAndThePenaltyAppliesHFsRule() {
        var o = GenerationOptions()
        o.temperature = 0
        #expect(choose([1, 3, 3, 2], o).0 == 1)
        o.repetitionPenalty = 2
        // 3 / 2 = 1.5 < 2 for the seen token 1; token 2 wins.
        #expect(choose([1, 3, 2.5, 2], o, seen: [false, true, false, false]).0 == 2)
        // Negative logits are multiplied: -1 * 2 = -2 < -1.5.
        #expect(choose([-1, -1.5, -3, -4], o, seen: [true, false, false, false]).0 == 1)
        #expect(choose([1, 3, 3, 2], o, draft: 1) == (1, true))
        #expect(choose([1, 3, 3, 2], o, draft: 2) == (1, false))
    }

    @Test func truncationsKeepTheDocumentedSets() {
        let logits: [Float] = [0, 1, 2, 3, 3, -1, 2.5]
        var o = GenerationOptions()
        o.topK = 2
        #expect(support(logits, o) == [3, 4])
        o.topK = 3                                  // ties at the boundary: 3, 4 and 6 (2.5)
        #expect(support(logits, o) == [3, 4, 6])
        o.topK = 0
        o.topP = 0.01                               // the best token alone (first on ties)
        #expect(support(logits, o) == [3])
        o.topP = 1
        o.minP = 0.5                                // exp(z - 3) >= 0.5: z >= 3 - ln 2 = 2.31
        #expect(support(logits, o) == [3, 4, 6])
        o.minP = 0
        o.temperature = 0.05                        // nearly greedy: the two maxima
        #expect(support(logits, o) == [3, 4])
    }

    @Test func topPAgreesWithAFullSortOnManyTokens() {
        var g = RandomGenerator(seed: 9)
        let logits = (0..<5000).map { _ in Float(g.nextUniform() * 12) }
        var o = GenerationOptions()
        o.topP = 0.6
        let top = Double(logits.max()!)
        let w = logits.map { Foundation.exp(Double($0) - top) }
        let order = w.indices.sorted { w[$0] > w[$1] || (w[$0] == w[$1] && $0 < $1) }
        let total = w.reduce(0, +)
        var kept = Set<Int>(), before = 0.0
        for i in order {
            if !kept.isEmpty && before >= 0.6 * total { break }
            kept.insert(i)
            before += w[i]
        }
        let got = support(logits, o, draws: 60)
        #expect(got.isSubset(of: kept))
        #expect(got.count > 30, "draws spread over the nucleus (\(got.count) distinct of \(kept.count))")
    }

    @Test func generatorsAreSeparatePerSeedAndSample() {
        var a = Sampler.generator(seed: 1, sample: 0), b = Sampler.generator(seed: 1, sample: 1)
        var c = Sampler.generator(seed: 2, sample: 0), d = Sampler.generator(seed: 1, sample: 0)
        let x = a.next()
        #expect(x != b.next() && x != c.next())
        #expect(x == d.next())
    }
}

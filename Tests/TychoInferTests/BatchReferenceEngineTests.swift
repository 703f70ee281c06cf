// BatchReferenceEngineTests.swift: the reference engine on the tiny fixture models: greedy output equals
// Hugging Face `generate` (the fixtures' `greedy` entries), a sequence's output does not depend on its batch,
// sampling is a function of the seed, stops, limits and refusals; and a whole job on a real model.

import Foundation
import Testing
import TychoNN
import TychoTensor
import TychoText
@testable import TychoInfer

enum BatchFixtures {
    static let models = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/models").path

    static func engine(_ name: String, eos: Set<Int>? = nil, rows: Int = 16) throws -> BatchReferenceEngine {
        let dir = models + "/" + name
        return BatchReferenceEngine(model: try HFCheckpoint.load(dir), tokenizer: try Tokenizer.load(path: dir + "/tokenizer.json"),
                                    eosIDs: eos ?? BatchEngines.eosIDs(modelFolder: dir), maxRows: rows)
    }

    /// The fixture's greedy cases: prompt ids and the 10 new ids Hugging Face generated.
    static func greedy(_ name: String) throws -> [(prompt: [Int], new: [Int])] {
        let data = try Data(contentsOf: URL(fileURLWithPath: models + "/\(name)_ref.json"))
        let json = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        return (json["greedy"] as! [[String: Any]]).map { ($0["prompt"] as! [Int], $0["new_tokens"] as! [Int]) }
    }
}

/// Collects an engine's reports.
func runEngine(_ engine: BatchEngine, _ requests: [BatchRequest]) -> [Int: Result<BatchResponse, Error>] {
    var out: [Int: Result<BatchResponse, Error>] = [:]
    engine.run(requests) { i, r in
        #expect(out[i] == nil, "request \(i) reported twice")
        out[i] = r
    }
    #expect(out.count == requests.count, "every request reported")
    return out
}

@Suite struct BatchReferenceEngineTests {
    func request(_ id: String, _ prompt: BatchPrompt, max: Int? = 10, temperature: Double = 0, topP: Double = 1,
                 n: Int = 1, stop: [String] = [], seed: UInt64 = 1) -> BatchRequest {
        BatchRequest(customID: id, prompt: prompt, maxTokens: max, temperature: temperature, topP: topP, n: n,
                     stop: stop, seed: seed)
    }

    @Test(arguments: ["gpt2", "llama", "qwen2"])
    func greedyEqualsHuggingFaceGenerate(_ name: String) throws {
        let engine = try BatchFixtures.engine(name, eos: [])  // the fixtures were generated without an EOS stop
        let cases = try BatchFixtures.greedy(name)
        let requests = cases.enumerated().map { k, c in request("g\(k)", .tokens(c.prompt)) }
        let results = runEngine(engine, requests)
        for (k, c) in cases.enumerated() {
            let r = try results[k]!.get()
            #expect(r.promptTokens == c.prompt.count)
            #expect(r.choices == [BatchChoice(text: try engine.tokenizer.decode(c.new), finishReason: .length, completionTokens: 10)],
                    "\(name) case \(k)")
        }
    }

    @Test func aSequenceDoesNotDependOnItsBatch() throws {
        let engine = try BatchFixtures.engine("gpt2", rows: 16)
        let requests = [
            request("a", .text("The quick brown fox"), max: 12),
            request("b", .text("x"), max: 20, temperature: 1, n: 3, seed: 5),
            request("c", .text("Licensed under the Apache License, Version 2.0"), max: 7, temperature: 0.8, topP: 0.9, seed: 9),
            request("d", .tokens([5, 6, 7, 8]), max: 15, temperature: 1.3, seed: 2),
        ]
        let together = runEngine(engine, requests)
        let narrow = try BatchFixtures.engine("gpt2", rows: 2)
        let inPairs = runEngine(narrow, requests)
        for (i, r) in requests.enumerated() {
            let alone = runEngine(engine, [r])
            #expect(try alone[0]!.get() == together[i]!.get(), "\(r.customID) alone vs in a batch of 4")
            #expect(try inPairs[i]!.get() == together[i]!.get(), "\(r.customID) with 2 rows at a time")
        }
    }

    @Test func samplingFollowsTheSeed() throws {
        let engine = try BatchFixtures.engine("gpt2", eos: [])
        let r = request("s", .text("Hello"), max: 12, temperature: 1, n: 3, seed: 7)
        let one = try runEngine(engine, [r])[0]!.get()
        let two = try runEngine(engine, [r])[0]!.get()
        #expect(one == two)
        #expect(Set(one.choices.map(\.text)).count > 1, "the choices of one request are different samples")
        var other = r
        other.seed = 8
        #expect(try runEngine(engine, [other])[0]!.get() != one)
        // A vanishing top_p keeps only the most likely token: greedy.
        let greedy = try runEngine(engine, [request("g", .text("Hello"), max: 12)])[0]!.get()
        let nucleus = try runEngine(engine, [request("g", .text("Hello"), max: 12, temperature: 1, topP: 1e-9, seed: 3)])[0]!.get()
        #expect(greedy.choices[0].text == nucleus.choices[0].text)
    }

    @Test func samplerPicksByTheDistribution() {
        var g = RandomGenerator(seed: 1)
        #expect(BatchSampler.pick([1, 3, 3, 2], temperature: 0, topP: 1, rng: &g) == 1, "greedy takes the first largest")
        var counts = [0, 0, 0]
        let logits: [Float] = [0, Float(log(3.0)), -50]
        for _ in 0..<4000 { counts[BatchSampler.pick(logits, temperature: 1, topP: 1, rng: &g)] += 1 }
        #expect(abs(Double(counts[1]) / 4000 - 0.75) < 0.03 && counts[2] == 0, "\(counts)")
        counts = [0, 0, 0]
        for _ in 0..<1000 { counts[BatchSampler.pick(logits, temperature: 1, topP: 0.7, rng: &g)] += 1 }
        #expect(counts == [0, 1000, 0], "top_p 0.7 keeps the 0.75 token alone")
        let text = "abc STOP def END"
        #expect(BatchSampler.firstStop(in: text, stops: ["END", "STOP"]).map { String(text[..<$0]) } == "abc ")
        #expect(BatchSampler.firstStop(in: text, stops: ["zzz"]) == nil)
    }

    @Test func stopsAndLimits() throws {
        let engine = try BatchFixtures.engine("gpt2", eos: [])
        let full = try runEngine(engine, [request("f", .text("Licensed"), max: 20)])[0]!.get().choices[0]
        #expect(full.finishReason == .length && full.completionTokens == 20)
        // A stop string taken from the middle of the greedy text cuts it there.
        let chars = Array(full.text)
        let stop = String(chars[chars.count / 2..<chars.count / 2 + 2])
        let cut = try runEngine(engine, [request("s", .text("Licensed"), max: 20, stop: [stop])])[0]!.get().choices[0]
        #expect(cut.finishReason == .stop && cut.completionTokens < 20)
        #expect(full.text.hasPrefix(cut.text) && !cut.text.contains(stop) && full.text.dropFirst(cut.text.count).hasPrefix(stop))
        // An EOS id ends the sequence and is not part of the text.
        let ids = engine.tokenizer.encode("Licensed")
        let first = try runEngine(engine, [request("t", .tokens(ids), max: 1)])[0]!.get()
        let eosEngine = BatchReferenceEngine(model: engine.model, tokenizer: engine.tokenizer, eosIDs: [ids.count > 0 ? try firstToken(engine, ids) : 0])
        let ended = try runEngine(eosEngine, [request("e", .tokens(ids), max: 20)])[0]!.get().choices[0]
        #expect(first.choices[0].completionTokens == 1)
        #expect(ended == BatchChoice(text: "", finishReason: .stop, completionTokens: 1))
        // The context (64 positions) caps the length; a prompt that fills it is refused, as are unknown ids.
        let long = Array(repeating: 5, count: 60)
        let capped = try runEngine(engine, [request("l", .tokens(long), max: 10)])[0]!.get().choices[0]
        #expect(capped.finishReason == .length && capped.completionTokens == 4)
        let results = runEngine(engine, [request("x", .tokens(Array(repeating: 5, count: 64))), request("y", .tokens([1, 999])),
                                         request("z", .text("")), request("ok", .text("a"), max: 2)])
        func failure(_ i: Int) -> BatchRequestError? {
            if case .failure(let e)? = results[i] { return e as? BatchRequestError }
            return nil
        }
        #expect(failure(0)?.code == "context_length_exceeded" && failure(0)?.retryable == false)
        #expect(failure(1)?.code == "invalid_prompt" && failure(1)?.message.contains("999") == true)
        #expect(failure(2)?.code == "invalid_prompt")
        #expect(try results[3]!.get().completionTokens == 2)
    }

    func firstToken(_ engine: BatchReferenceEngine, _ ids: [Int]) throws -> Int {
        let logits = try engine.model.logits(try Tensor(shape: [1, ids.count], values: ids.map(Float.init)))
        let last = try logits.select(0, 0).select(0, ids.count - 1).toArray()
        var g = RandomGenerator(seed: 0)
        return BatchSampler.pick(last, temperature: 0, topP: 1, rng: &g)
    }

    @Test func eosAndContextComeFromTheFolder() throws {
        #expect(BatchEngines.eosIDs(modelFolder: BatchFixtures.models + "/gpt2") == [0])
        #expect(BatchEngines.eosIDs(modelFolder: "/nonexistent") == [])
        let llama = try HFCheckpoint.load(BatchFixtures.models + "/llama")
        #expect(BatchEngines.contextLength(of: llama) == 64)
        #expect(BatchEngines.eosIDs(model: llama) == [0])
        #expect(BatchEngines.modelName(folder: "/a/b/gpt2/") == "gpt2")
    }

    @Test func aJobOnARealModel() throws {
        let dir = try BatchTestFiles.directory()
        try BatchTestFiles.write([
            BatchTestFiles.completion("a", "Licensed under", extra: #", "max_tokens": 8, "temperature": 0"#),
            BatchTestFiles.chat("b", "Hello", extra: #", "max_tokens": 6, "temperature": 0.9, "n": 2"#),
            BatchTestFiles.completion("c", "x", extra: #", "max_tokens": 80"#),
        ], to: dir + "/in.jsonl")
        var o = BatchJobOptions(input: dir + "/in.jsonl", output: dir + "/out.jsonl")
        o.modelName = "gpt2"
        let engine = try BatchFixtures.engine("gpt2")
        let s = try BatchJob.run(o, engine: engine)
        #expect(s.done == 3 && s.failed == 0)
        let lines = BatchTestFiles.lines(dir + "/out.jsonl")
        guard case .int(let used)? = try BatchTestFiles.field(lines[0], "response.body.usage.completion_tokens") else {
            Issue.record("no usage"); return
        }
        #expect(used >= 1 && used <= 8)
        #expect(try BatchTestFiles.string(lines[1], "response.body.model") == "gpt2")
        var o2 = o
        o2.output = dir + "/again.jsonl"
        _ = try BatchJob.run(o2, engine: try BatchFixtures.engine("gpt2", rows: 1))
        #expect(BatchTestFiles.text(dir + "/out.jsonl") == BatchTestFiles.text(dir + "/again.jsonl"))
    }
}

// BatchGeneratorEngineTests.swift: batch jobs on the KV-cache Generator give what the simple reference engine
// gives (greedy: the same text, finish reasons and token counts for every request, batched with mixed prompt
// lengths and refilled slots), refuse bad requests one by one, and report predicted-output counts.

import Foundation
import Testing
import TychoNN
import TychoTensor
import TychoText
@testable import TychoInfer

@Suite struct BatchGeneratorEngineTests {
    func request(_ id: String, _ prompt: BatchPrompt, max: Int? = 12, stop: [String] = [], prediction: String? = nil) -> BatchRequest {
        var r = BatchRequest(customID: id, prompt: prompt, maxTokens: max, temperature: 0, topP: 1, n: 1, stop: stop, seed: 1)
        r.prediction = prediction
        return r
    }

    @Test(arguments: ["gpt2", "llama", "qwen2"])
    func greedyMatchesTheReferenceEngine(_ name: String) throws {
        let reference = try BatchFixtures.engine(name, rows: 3)
        let dir = BatchFixtures.models + "/" + name
        let engine = try BatchGeneratorEngine(model: reference.model, tokenizer: reference.tokenizer,
                                              eosIDs: BatchEngines.eosIDs(modelFolder: dir), batchSize: 3)
        let texts = ["The licensor", "You may", "Subject to the terms and conditions of this License", "a", "Copyright (C)"]
        var requests = texts.enumerated().map { k, t in request("r\(k)", .text(t)) }
        requests.append(request("stop", .text("The licensor"), stop: ["e"]))
        requests.append(request("ids", .tokens([5, 17, 42, 99, 3])))
        let want = runEngine(reference, requests)
        let got = runEngine(engine, requests)
        for k in requests.indices {
            #expect(try got[k]!.get() == want[k]!.get(), "\(name) request \(requests[k].customID)")
        }
    }

    @Test func refusesBadRequestsOneByOne() throws {
        let reference = try BatchFixtures.engine("gpt2")
        let engine = try BatchGeneratorEngine(model: reference.model, tokenizer: reference.tokenizer, eosIDs: [], batchSize: 4)
        let requests = [request("ok", .text("You may")), request("empty", .tokens([])), request("bad", .tokens([1, 100_000])),
                        request("long", .tokens(Array(repeating: 3, count: 64))), request("ok2", .text("The"))]
        let got = runEngine(engine, requests)
        #expect((try? got[0]!.get()) != nil)
        #expect((try? got[4]!.get()) != nil)
        for k in 1...3 {
            guard case .failure(let e) = got[k]! else { Issue.record("request \(k) should fail"); continue }
            #expect((e as? BatchRequestError)?.retryable == false, "\(e)")
        }
    }

    @Test func predictedOutputsAreCountedAndChangeNothing() throws {
        let reference = try BatchFixtures.engine("gpt2")
        let engine = try BatchGeneratorEngine(model: reference.model, tokenizer: reference.tokenizer, eosIDs: [], batchSize: 2)
        let plain = try runEngine(engine, [request("p", .text("You may"))])[0]!.get()
        let text = plain.choices[0].text
        let predicted = try runEngine(engine, [request("p", .text("You may"), prediction: text)])[0]!.get()
        #expect(predicted.choices == plain.choices, "a prediction never changes greedy output")
        #expect((predicted.acceptedPredictionTokens ?? 0) > 0, "a perfect prediction is accepted")
        #expect(plain.acceptedPredictionTokens == nil)
    }
}

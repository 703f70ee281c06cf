// BatchGeneratorEngine.swift: batch jobs on the KV-cache Generator (continuous batching, predicted outputs).
//
// The adapter turns each checked BatchRequest into a GenerationRequest: prompt ids (the same checks and limits as
// BatchReferenceEngine: an empty prompt, an id outside the vocabulary or a prompt that fills the context fail
// for good), max_tokens (or the room left in the context), temperature, top_p, n, stop strings, the job's EOS ids,
// seed and prediction. A request is reported as soon as all of its n samples have finished. Requests the
// Generator refuses are reported as permanent `invalid_request_error`s one by one, so one bad request never
// fails the others; an error in the middle of generation fails the unreported requests as retryable.

import TychoNN
import TychoText

public final class BatchGeneratorEngine: BatchEngine {
    public let generator: Generator
    public let tokenizer: Tokenizer
    public let eosIDs: Set<Int>
    public let batchSize: Int
    private let reference: BatchReferenceEngine  // prompt checks and limits shared with the reference engine

    public init(model: LanguageModel, tokenizer: Tokenizer, eosIDs: Set<Int>, batchSize: Int) throws {
        generator = try Generator(model: model, tokenizer: tokenizer)
        self.tokenizer = tokenizer
        self.eosIDs = eosIDs
        self.batchSize = max(1, batchSize)
        reference = BatchReferenceEngine(model: model, tokenizer: tokenizer, eosIDs: eosIDs, maxRows: batchSize)
    }

    public func run(_ requests: [BatchRequest], onFinish: (Int, Result<BatchResponse, Error>) -> Void) {
        var accepted: [(index: Int, request: GenerationRequest, n: Int)] = []
        for (i, r) in requests.enumerated() {
            do {
                let ids = try reference.promptIDs(r)
                var o = GenerationOptions()
                var limit = r.maxTokens ?? (reference.contextLength.map { $0 - ids.count } ?? BatchReferenceEngine.fallbackMaxTokens)
                if let c = reference.contextLength { limit = min(limit, c - ids.count) }
                o.maxTokens = max(limit, 1)
                o.temperature = Float(r.temperature)
                o.topP = Float(r.topP)
                o.n = r.n
                o.stopStrings = r.stop
                o.stopIDs = eosIDs.sorted()
                o.seed = r.seed
                o.prediction = r.prediction.map { .text($0) }
                let g = GenerationRequest(prompt: ids, options: o)
                do { try generator.validate(g) } catch {
                    throw BatchRequestError(code: "invalid_request_error", message: "\(error)", retryable: false)
                }
                accepted.append((i, g, r.n))
            } catch {
                onFinish(i, .failure(error))
            }
        }
        guard !accepted.isEmpty else { return }
        var samples: [[Completion?]] = accepted.map { Array(repeating: nil, count: $0.n) }
        var left = accepted.map(\.n)
        var reported = Array(repeating: false, count: accepted.count)
        do {
            try withoutActuallyEscaping(onFinish) { onFinish in
            _ = try generator.generate(requests: accepted.map(\.request), batchSize: batchSize) { request, sample, completion in
                samples[request][sample] = completion
                left[request] -= 1
                guard left[request] == 0 else { return }
                reported[request] = true
                let done = samples[request].compactMap { $0 }
                let choices = done.map {
                    BatchChoice(text: $0.text, finishReason: $0.finishReason == .stop ? .stop : .length, completionTokens: $0.ids.count)
                }
                let usePrediction = accepted[request].request.options.prediction != nil
                onFinish(accepted[request].index, .success(BatchResponse(
                    choices: choices, promptTokens: accepted[request].request.prompt.count,
                    acceptedPredictionTokens: usePrediction ? done.reduce(0) { $0 + $1.acceptedPredictionTokens } : nil,
                    rejectedPredictionTokens: usePrediction ? done.reduce(0) { $0 + $1.rejectedPredictionTokens } : nil)))
            }
            }
        } catch {
            for (k, a) in accepted.enumerated() where !reported[k] { onFinish(a.index, .failure(error)) }
        }
    }
}

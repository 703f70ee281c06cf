// Generator.swift: batched generation with a KV cache and continuous batching, deterministic sampling, stop
// strings and tokens, and predicted outputs, over a GPT-2 or Llama-family model and a tokenizer.
//
// Swift API (what infer.generate and the batch jobs build on):
//
//   let g = try Generator(model: model, tokenizer: tokenizer)
//   var o = GenerationOptions(); o.maxTokens = 64; o.temperature = 0.7; o.n = 4; o.seed = 1
//   let result = try g.generate(requests: [GenerationRequest(prompt: ids, options: o), ...], batchSize: 16,
//                               shouldStart: { request in budgetLeft() },          // optional
//                               onFinish: { request, sample, completion in ... })  // optional
//   result.completions[request][sample]   // Completion: text, ids, logprob, tokenLogprobs, finishReason, ...
//   result.usage                          // prompt/completion tokens, seconds, tokens/s, prediction counts
//   result.notStarted                     // requests that shouldStart refused
//
// - `onFinish(request, sample, completion)` is called on the calling thread as soon as that sample finishes
//   (samples finish in any order; a request is complete when all its n samples have been reported). A throw from
//   it stops the run and is rethrown: samples already reported stay reported, the others are dropped.
// - `shouldStart(request)` is asked once per request, in order, just before its first sample would take a slot;
//   false stops scheduling (running samples finish; that request and all later ones are listed in notStarted).
// - Every request is checked before any work starts (`validate`); a bad one throws "request i: ..." (1-based).
//
// Scheduling: `batchSize` slots. The samples (request i, sample j) are queued in order; each takes a free slot,
// and a finished sample's slot is refilled from the queue at once (continuous batching). Every step runs one
// forward pass over all running slots (IncrementalDecoder): a new sample's whole prompt (with its first
// predicted tokens, if any), or a running sample's last token (with its draft tokens). The projections run
// batched over all those rows; attention runs per slot over its own cache. Samples of one prompt that start in
// the same step share its prefill: the others copy the first one's cache and logits (the same bits they would
// compute, so nothing changes but the time).
//
// Determinism: a sample's tokens depend only on the model, its prompt, its options and (seed, sample index):
// never on the batch size, the other requests, or the request's position. Logits of a slot do not depend on
// what shares the step (IncrementalDecoder is row-invariant, bit for bit), and each sample draws from its own
// generator, seeded by (options.seed, sample). Greedy output alone equals greedy output in any batch exactly.
//
// Stops: a sample ends at a stop token (options.stopIDs, and the EOS ids unless stopAtEOS is false) or when its
// text contains a stop string; the text is cut where the stop begins (OpenAI's rule) while ids keep every
// generated token (the stop token, or the tokens that spelled the stop string), so logprob covers ids. Else
// it ends after maxTokens tokens, or when the model's context is full, with finish reason "length".
//
// Predicted outputs (OpenAI's `prediction`): the predicted text is tokenized, and a pointer j marks the next
// predicted token expected. While in sync, a step feeds the sample's last token plus the drafts P[j ..< j+K]
// (K = min(tokens left in P, predictionWindow, max_tokens left - 1, cache room)) and gets logits for all of
// them in one pass. Row r's token is chosen exactly as without a prediction (greedy: argmax; so the output is
// identical to plain decoding, because draft rows give bit for bit the logits of single steps); drafts are
// accepted while they equal the chosen tokens; the first differing row's token is kept, the rest of the drafts
// are rejected and their cache entries dropped. j advances by the accepted drafts; if every draft was accepted,
// the extra token of the last row advances j too when it equals P[j], else (or on a rejection) the sample is
// out of sync. After every step out of sync, the last 3 output tokens are looked for in P[j...]; at the first
// match, ending at q, j = q + 1 and the sample is in sync again (re-sync after an edit, as OpenAI's predicted
// outputs do). usage counts accepted and rejected drafts. With temperature > 0 a draft d is accepted with
// probability p(d), else the token is drawn from p without d (speculative sampling with a point-mass draft):
// samples follow exactly the distribution of plain sampling (not the same samples: they draw differently).

import Foundation
import TychoNN
import TychoTensor
import TychoText

public final class Generator {
    public let model: LanguageModel
    public let tokenizer: Tokenizer?
    /// Ids that end a sample when `stopAtEOS`: the model config's eos_token_id and the tokenizer's special
    /// end tokens (`endNames`) that the model's vocabulary holds.
    public let eosTokenIDs: [Int]
    public let vocabSize: Int

    /// Special tokens taken as end of sequence when the tokenizer has them.
    public static let endNames = ["<|endoftext|>", "</s>", "<|end_of_text|>", "<|eot_id|>", "<|im_end|>", "<eos>", "<|end|>"]
    /// Output tokens matched against the prediction to re-sync.
    public static let resyncTokens = 3

    /// - Parameters:
    ///   - model: a GPT-2 or Llama-family model.
    ///   - tokenizer: decodes the output into text and encodes text predictions; without one, texts are empty
    ///     and stop strings and text predictions are errors.
    public init(model: LanguageModel, tokenizer: Tokenizer?) throws {
        guard model is GPT2 || model is Llama else {
            throw GenerationError("\(model.summary) is not a GPT-2 or Llama-family language model")
        }
        self.model = model
        self.tokenizer = tokenizer
        vocabSize = model.vocabSize
        var eos: [Int] = []
        if let id = model.eosTokenID, id >= 0, id < model.vocabSize { eos.append(id) }
        if let tokenizer {
            for t in tokenizer.specialTokens where Generator.endNames.contains(t.content) && t.id < model.vocabSize && !eos.contains(t.id) {
                eos.append(t.id)
            }
        }
        eosTokenIDs = eos
    }

    // MARK: checks

    /// Throws a message naming the first problem of `request`.
    public func validate(_ request: GenerationRequest) throws {
        try request.options.validate()
        guard !request.prompt.isEmpty else { throw GenerationError("the prompt is empty (it needs at least one token)") }
        for (k, t) in request.prompt.enumerated() where !(t >= 0 && t < vocabSize) {
            throw GenerationError("prompt token \(k + 1) is \(t), not an id in 0..\(vocabSize - 1)")
        }
        if let limit = model.maxPositions, request.prompt.count > limit {
            throw GenerationError("the prompt has \(request.prompt.count) tokens; the model takes at most \(limit)")
        }
        for t in request.options.stopIDs where !(t >= 0 && t < vocabSize) {
            throw GenerationError("stop token \(t) is not an id in 0..\(vocabSize - 1)")
        }
        if !request.options.stopStrings.isEmpty && tokenizer == nil {
            throw GenerationError("stop strings need a tokenizer")
        }
        _ = try predictionIDs(request.options)
    }

    func predictionIDs(_ o: GenerationOptions) throws -> [Int] {
        switch o.prediction {
        case nil: return []
        case .text(let s):
            guard let tokenizer else { throw GenerationError("a text prediction needs a tokenizer") }
            return tokenizer.encode(s, addSpecial: false).filter { $0 < vocabSize }
        case .ids(let ids):
            for t in ids where !(t >= 0 && t < vocabSize) {
                throw GenerationError("predicted token \(t) is not an id in 0..\(vocabSize - 1)")
            }
            return ids
        }
    }

    // MARK: text

    private var byteCache: [Int: [UInt8]] = [:]

    /// The bytes token `id` adds to the text (what Tokenizer.decode produces for it).
    func bytes(of id: Int) -> [UInt8] {
        if let b = byteCache[id] { return b }
        var b: [UInt8] = []
        if let tokenizer, let t = tokenizer.token(for: id) {
            switch tokenizer.decoder {
            case .byteLevel: b = ByteLevel.decode(t) ?? Array(t.utf8)
            case .none: b = Array(t.utf8)
            }
        }
        byteCache[id] = b
        return b
    }

    // MARK: generation

    /// Generates every sample of every request; see the file header for the callbacks and the guarantees.
    /// - Parameters:
    ///   - requests: prompts and their options.
    ///   - batchSize: slots, i.e. samples decoded side by side (at most the number of samples).
    ///   - shouldStart: asked before a request's first sample starts; false stops scheduling new requests.
    ///   - onFinish: called with (request, sample, completion) as each sample finishes.
    public func generate(requests: [GenerationRequest], batchSize: Int = 16,
                         shouldStart: ((Int) throws -> Bool)? = nil,
                         onFinish: ((Int, Int, Completion) throws -> Void)? = nil) throws -> GenerationResult {
        guard batchSize >= 1 else { throw GenerationError("batch_size must be a positive integer, got \(batchSize)") }
        var predictions: [[Int]] = []
        for (i, r) in requests.enumerated() {
            do {
                try validate(r)
                predictions.append(try predictionIDs(r.options))
            } catch let e as GenerationError {
                throw GenerationError("request \(i + 1): \(e.message)")
            }
        }
        let started = ProcessInfo.processInfo.systemUptime
        var result = GenerationResult(completions: requests.map { _ in [] }, usage: GenerationUsage(), notStarted: [])
        let samples = requests.reduce(0) { $0 + $1.options.n }
        guard samples > 0 else { return result }

        var capacity = requests.map { $0.prompt.count + $0.options.maxTokens - 1 }.max()!
        if let limit = model.maxPositions { capacity = min(capacity, limit) }
        let decoder = try IncrementalDecoder(model: model, slots: min(batchSize, samples), capacity: capacity)
        let scratch = SamplerScratch(vocab: vocabSize)
        var running = [RunningSample?](repeating: nil, count: decoder.slots)
        var nextRequest = 0, nextSample = 0, scheduling = true

        func finish(_ seq: RunningSample, slot: Int) throws {
            running[slot] = nil
            let c = seq.completion()
            result.completions[seq.request][seq.sample] = c
            result.usage.completionTokens += c.ids.count
            result.usage.acceptedPredictionTokens += c.acceptedPredictionTokens
            result.usage.rejectedPredictionTokens += c.rejectedPredictionTokens
            try onFinish?(seq.request, seq.sample, c)
        }

        while true {
            // Refill free slots from the queue.
            var prefilling: [Int: Int] = [:]        // request -> slot prefilling its prompt in this step
            for slot in 0..<running.count where running[slot] == nil && scheduling && nextRequest < requests.count {
                let r = requests[nextRequest]
                if nextSample == 0 {
                    if let shouldStart, try !shouldStart(nextRequest) {
                        scheduling = false
                        result.notStarted = Array(nextRequest..<requests.count)
                        break
                    }
                    result.usage.promptTokens += r.prompt.count
                    result.completions[nextRequest] = [Completion](repeating: Completion(text: "", ids: [], logprob: 0, finishReason: .length, promptTokens: r.prompt.count), count: r.options.n)
                }
                let seq = RunningSample(request: nextRequest, sample: nextSample, prompt: r.prompt, options: r.options,
                                   prediction: predictions[nextRequest], eos: eosTokenIDs, vocab: vocabSize)
                // Another sample of a prompt being prefilled in this step shares that prefill.
                if let leader = prefilling[nextRequest], predictions[nextRequest].isEmpty {
                    seq.follows = leader
                } else {
                    prefilling[nextRequest] = slot
                }
                running[slot] = seq
                decoder.reset(slot: slot)
                nextSample += 1
                if nextSample == r.options.n { nextRequest += 1; nextSample = 0 }
            }
            // This step's rows.
            var entries: [DecodeEntry] = []
            var stepSlots: [Int] = []
            for slot in 0..<running.count {
                guard let seq = running[slot], seq.follows == nil else { continue }
                let length = decoder.length(of: slot)
                let fed = seq.prefilled ? 1 : seq.prompt.count          // tokens fed before any draft
                if length + fed > decoder.capacity {                    // the context is full
                    seq.finishReason = .length
                    try finish(seq, slot: slot)
                    continue
                }
                seq.draft = seq.nextDraft(room: decoder.capacity - length - fed)
                let tokens = (seq.prefilled ? [seq.ids.last!] : seq.prompt) + seq.draft
                entries.append(DecodeEntry(slot: slot, tokens: tokens, logitRows: 1 + seq.draft.count,
                                           prefillRows: seq.prefilled ? 0 : seq.prompt.count))
                stepSlots.append(slot)
            }
            if entries.isEmpty {
                if running.allSatisfy({ $0 == nil }) && (!scheduling || nextRequest >= requests.count) { break }
                continue
            }
            let logits = try decoder.step(entries)
            result.usage.steps += 1
            let lp = UnsafePointer(logits.basePointer)
            // Followers: copy the leader's prompt, then choose their first token from its logits row.
            var firstRow: [Int: Int] = [:]
            var offset = 0
            for (entry, slot) in zip(entries, stepSlots) { firstRow[slot] = offset; offset += entry.logitRows }
            for slot in 0..<running.count {
                guard let seq = running[slot], let leader = seq.follows else { continue }
                seq.follows = nil
                try decoder.copyPrefix(from: leader, to: slot, count: seq.prompt.count)
                seq.prefilled = true
                _ = seq.consume(lp + firstRow[leader]! * vocabSize, rows: 1, vocab: vocabSize, scratch: scratch, bytes: bytes(of:))
                if seq.finishReason != nil { try finish(seq, slot: slot) }
            }
            var row = 0
            for (entry, slot) in zip(entries, stepSlots) {
                let seq = running[slot]!
                seq.prefilled = true
                let accepted = seq.consume(lp + row * vocabSize, rows: entry.logitRows, vocab: vocabSize,
                                           scratch: scratch, bytes: bytes(of:))
                row += entry.logitRows
                let dropped = seq.draft.count - accepted
                if dropped > 0 { try decoder.truncate(slot: slot, to: decoder.length(of: slot) - dropped) }
                if seq.finishReason != nil { try finish(seq, slot: slot) }
            }
        }
        result.usage.seconds = ProcessInfo.processInfo.systemUptime - started
        return result
    }

    /// Convenience: the same options for every prompt, request i seeded `options.seed + i`.
    public func generate(prompts: [[Int]], options: GenerationOptions, batchSize: Int = 16,
                         onFinish: ((Int, Int, Completion) throws -> Void)? = nil) throws -> GenerationResult {
        let requests = prompts.enumerated().map { i, p in
            var o = options
            o.seed = options.seed &+ UInt64(i)
            return GenerationRequest(prompt: p, options: o)
        }
        return try generate(requests: requests, batchSize: batchSize, onFinish: onFinish)
    }
}

/// One running sample: its output so far, stop state, sampler and prediction pointer. (Not named Sequence:
/// that would hide Swift.Sequence from the rest of the module.)
final class RunningSample {
    let request: Int, sample: Int
    let prompt: [Int]
    let options: GenerationOptions
    var sampler: Sampler
    var prefilled = false
    /// The slot prefilling this sample's prompt for it (another sample of the same request), until copied.
    var follows: Int?
    var ids: [Int] = []
    var tokenLogprobs: [Float] = []
    var logprob = 0.0
    var text: [UInt8] = []
    var textEnd: Int?
    var finishReason: FinishReason?
    let stopIDs: Set<Int>
    let stopBytes: [[UInt8]]
    /// Tokens of the prompt and output, for the repetition penalty (empty when it is off).
    var seen: [Bool]
    // Predicted outputs.
    let prediction: [Int]
    var pointer = 0
    var inSync = true
    var draft: [Int] = []
    var accepted = 0, rejected = 0

    init(request: Int, sample: Int, prompt: [Int], options: GenerationOptions, prediction: [Int], eos: [Int], vocab: Int) {
        self.request = request
        self.sample = sample
        self.prompt = prompt
        self.options = options
        self.prediction = prediction
        sampler = Sampler(options: options, sample: sample)
        stopIDs = Set(options.stopIDs + (options.stopAtEOS ? eos : []))
        stopBytes = options.stopStrings.map { Array($0.utf8) }
        seen = []
        if options.repetitionPenalty != 1 {
            seen = [Bool](repeating: false, count: vocab)
            for t in prompt { seen[t] = true }
        }
    }

    /// Draft tokens for the next step: predicted tokens from the pointer while in sync.
    func nextDraft(room: Int) -> [Int] {
        guard inSync, pointer < prediction.count else { return [] }
        let k = min(prediction.count - pointer, options.predictionWindow, options.maxTokens - ids.count - 1, room)
        return k > 0 ? Array(prediction[pointer..<(pointer + k)]) : []
    }

    /// Chooses tokens from `rows` rows of logits (the last fed token's, then one per draft), accepting drafts
    /// while they match; returns the number of drafts accepted.
    func consume(_ logits: UnsafePointer<Float>, rows: Int, vocab: Int, scratch: SamplerScratch,
                 bytes: (Int) -> [UInt8]) -> Int {
        var a = 0
        var lastRowToken: Int?
        for r in 0..<rows {
            let row = logits + r * vocab
            let d = r < draft.count ? draft[r] : nil
            let (token, isDraft) = sampler.choose(row, seen: seen, draft: d, scratch: scratch)
            emit(token, logprob: Sampler.logprob(row, vocab: vocab, token: token), bytes: bytes)
            if isDraft { a += 1 } else { lastRowToken = token }
            if finishReason != nil || !isDraft { break }
        }
        accepted += a
        rejected += draft.count - a
        if !prediction.isEmpty { advance(accepted: a, extra: lastRowToken) }
        return a
    }

    /// Moves the prediction pointer after a step (see the file header).
    private func advance(accepted a: Int, extra: Int?) {
        if inSync {
            pointer += a
            if a < draft.count {
                inSync = false
            } else if let t = extra {
                if pointer < prediction.count && prediction[pointer] == t { pointer += 1 } else { inSync = false }
            }
        }
        let n = Generator.resyncTokens
        guard !inSync, ids.count >= n, prediction.count - pointer >= n else { return }
        let anchor = ids[(ids.count - n)...]
        var q = pointer
        while q + n <= prediction.count {
            if prediction[q..<(q + n)].elementsEqual(anchor) {
                pointer = q + n
                inSync = true
                return
            }
            q += 1
        }
    }

    /// Appends a token and checks the stop conditions.
    private func emit(_ token: Int, logprob lp: Double, bytes: (Int) -> [UInt8]) {
        ids.append(token)
        logprob += lp
        if options.logprobs { tokenLogprobs.append(Float(lp)) }
        if !seen.isEmpty { seen[token] = true }
        if stopIDs.contains(token) {
            finishReason = .stop
            return
        }
        let before = text.count
        text += bytes(token)
        if !stopBytes.isEmpty, let at = firstStop(after: before) {
            textEnd = at
            finishReason = .stop
            return
        }
        if ids.count >= options.maxTokens { finishReason = .length }
    }

    /// The earliest offset of a stop string that ends after byte `before` (so it involves the new bytes).
    private func firstStop(after before: Int) -> Int? {
        let longest = stopBytes.map(\.count).max() ?? 0
        var p = max(0, before - longest + 1)
        while p < text.count {
            for s in stopBytes where p + s.count <= text.count && p + s.count > before {
                var k = 0
                while k < s.count && text[p + k] == s[k] { k += 1 }
                if k == s.count { return p }
            }
            p += 1
        }
        return nil
    }

    func completion() -> Completion {
        let end = textEnd ?? text.count
        return Completion(text: String(decoding: text[0..<end], as: UTF8.self), ids: ids, logprob: logprob,
                          tokenLogprobs: options.logprobs ? tokenLogprobs : nil, finishReason: finishReason ?? .length,
                          promptTokens: prompt.count, acceptedPredictionTokens: accepted, rejectedPredictionTokens: rejected)
    }
}

// BatchReferenceEngine.swift: a real but deliberately simple engine for batch jobs: every step runs the whole
// model over every active sequence (`LanguageModel.logits` on right-padded ids, no KV cache), then greedy-picks
// or samples each sequence's next token. It is correct and slow; the KV-cache Generator replaces it behind the
// same protocol (`BatchEngines.make` is the one place that chooses).
//
// What it guarantees: a sequence's tokens depend only on its own prompt, settings and seed, never on the
// other sequences of the batch (right padding changes no real position, the matrix products are
// row-invariant, and each choice has its own generator seeded from the request's seed and the choice index).
// Stops: an EOS id (not part of the text), a stop string (the text is cut before it), `max_tokens`, or the
// model's context. Sampling: temperature (0 is greedy) and top_p (nucleus), in Double. It refuses prompts
// with no tokens, ids outside the vocabulary, and prompts that fill the context (permanent errors).

import Foundation
import TychoNN
import TychoTensor
import TychoText

public final class BatchReferenceEngine: BatchEngine {
    public let model: LanguageModel
    public let tokenizer: Tokenizer
    public let eosIDs: Set<Int>
    /// Sequences (request choices) run together; finished ones are replaced from the queue.
    public let maxRows: Int
    /// The longest sequence the model takes, when known.
    public let contextLength: Int?
    /// New tokens for a request without max_tokens when the model has no known context.
    public static let fallbackMaxTokens = 256

    public init(model: LanguageModel, tokenizer: Tokenizer, eosIDs: Set<Int>, maxRows: Int = 16) {
        self.model = model
        self.tokenizer = tokenizer
        self.eosIDs = eosIDs
        self.maxRows = Swift.max(1, maxRows)
        self.contextLength = BatchEngines.contextLength(of: model)
    }

    /// One sequence being generated: choice `choice` of request `request`.
    struct Row {
        let request: Int
        let choice: Int
        var ids: [Int]
        var generated: [Int] = []
        let limit: Int
        var rng: RandomGenerator
        var text = ""
        var finish: BatchFinishReason? = nil
    }

    struct Pending {
        var choices: [BatchChoice?]
        var left: Int
        let promptTokens: Int
    }

    public func run(_ requests: [BatchRequest], onFinish: (Int, Result<BatchResponse, Error>) -> Void) {
        var queue: [Row] = []
        var pending: [Int: Pending] = [:]
        for (i, r) in requests.enumerated() {
            do {
                let ids = try promptIDs(r)
                var limit = r.maxTokens ?? (contextLength.map { $0 - ids.count } ?? BatchReferenceEngine.fallbackMaxTokens)
                if let c = contextLength { limit = Swift.min(limit, c - ids.count) }
                pending[i] = Pending(choices: Array(repeating: nil, count: r.n), left: r.n, promptTokens: ids.count)
                for c in 0..<r.n {
                    queue.append(Row(request: i, choice: c, ids: ids, limit: limit,
                                     rng: RandomGenerator(seed: BatchHash.mix(r.seed, UInt64(c)))))
                }
            } catch {
                onFinish(i, .failure(error))
            }
        }
        let wasTraining = model.modules().map(\.isTraining)
        model.setTraining(false)
        defer { for (m, flag) in zip(model.modules(), wasTraining) { m.setTraining(flag) } }

        var next = 0
        var active: [Row] = []
        while true {
            while active.count < maxRows && next < queue.count {
                active.append(queue[next])
                next += 1
            }
            if active.isEmpty { break }
            do {
                try GradMode.with(enabled: false) { try step(&active, requests) }
            } catch {
                // The model failed for the whole step: every request not yet reported fails (retryable).
                for (i, _) in pending.sorted(by: { $0.key < $1.key }) { onFinish(i, .failure(error)) }
                return
            }
            var still: [Row] = []
            for row in active {
                guard let finish = row.finish else { still.append(row); continue }
                guard var p = pending[row.request] else { continue }
                p.choices[row.choice] = BatchChoice(text: row.text, finishReason: finish, completionTokens: row.generated.count)
                p.left -= 1
                if p.left == 0 {
                    pending[row.request] = nil
                    onFinish(row.request, .success(BatchResponse(choices: p.choices.map { $0! }, promptTokens: p.promptTokens)))
                } else {
                    pending[row.request] = p
                }
            }
            active = still
        }
    }

    /// The prompt's token ids, checked.
    public func promptIDs(_ r: BatchRequest) throws -> [Int] {
        let ids: [Int]
        switch r.prompt {
        case .text(let s): ids = tokenizer.encode(s, addSpecial: r.addSpecialTokens)
        case .tokens(let t): ids = t
        }
        guard !ids.isEmpty else {
            throw BatchRequestError(code: "invalid_prompt", message: "the prompt has no tokens", retryable: false)
        }
        let v = model.vocabSize
        if let bad = ids.first(where: { $0 < 0 || $0 >= v }) {
            throw BatchRequestError(code: "invalid_prompt", message: "token id \(bad) is not in the model's vocabulary (0..\(v - 1))", retryable: false)
        }
        if let c = contextLength, ids.count >= c {
            throw BatchRequestError(code: "context_length_exceeded",
                                    message: "the prompt has \(ids.count) tokens; the model's context is \(c), which leaves no room to generate",
                                    retryable: false)
        }
        return ids
    }

    /// One token for every active row.
    func step(_ rows: inout [Row], _ requests: [BatchRequest]) throws {
        let width = rows.map(\.ids.count).max() ?? 0
        var flat = [Float](repeating: 0, count: rows.count * width)
        for (r, row) in rows.enumerated() {
            for (t, id) in row.ids.enumerated() { flat[r * width + t] = Float(id) }
        }
        let logits = try model.logits(try Tensor(shape: [rows.count, width], values: flat))  // [R, T, V]
        for r in rows.indices {
            let last = try logits.select(0, r).select(0, rows[r].ids.count - 1).toArray()  // [V]
            let req = requests[rows[r].request]
            let token = BatchSampler.pick(last, temperature: req.temperature, topP: req.topP, rng: &rows[r].rng)
            try advance(&rows[r], token: token, stops: req.stop)
        }
    }

    /// Appends `token` and decides whether the row is finished.
    func advance(_ row: inout Row, token: Int, stops: [String]) throws {
        row.generated.append(token)
        row.ids.append(token)
        if eosIDs.contains(token) {
            row.text = try tokenizer.decode(Array(row.generated.dropLast()))
            row.finish = .stop
            return
        }
        row.text = try tokenizer.decode(row.generated)
        if let cut = BatchSampler.firstStop(in: row.text, stops: stops) {
            row.text = String(row.text[..<cut])
            row.finish = .stop
            return
        }
        if row.generated.count >= row.limit { row.finish = .length }
    }
}

/// Token choice and stop-string search, shared by engines.
public enum BatchSampler {
    /// Greedy (temperature 0: the first largest logit) or a sample from softmax(logits / temperature), cut to
    /// the smallest set of most likely tokens whose probability reaches top_p.
    public static func pick(_ logits: [Float], temperature: Double, topP: Double, rng: inout RandomGenerator) -> Int {
        guard !logits.isEmpty else { return 0 }
        if temperature <= 0 {
            var best = 0
            for i in 1..<logits.count where logits[i] > logits[best] { best = i }
            return best
        }
        let scaled = logits.map { Double($0) / temperature }
        let m = scaled.max() ?? 0
        let p = scaled.map { exp($0 - m) }
        var order = Array(p.indices)
        var total = p.reduce(0, +)
        if topP < 1 {
            order.sort { p[$0] != p[$1] ? p[$0] > p[$1] : $0 < $1 }
            var kept = 0, cumulative = 0.0
            while kept < order.count {
                cumulative += p[order[kept]]
                kept += 1
                if cumulative >= topP * total { break }
            }
            order.removeSubrange(kept...)
            total = cumulative
        }
        let u = rng.nextOpenUniformDouble() * total
        var acc = 0.0
        for i in order {
            acc += p[i]
            if u < acc { return i }
        }
        return order.last ?? 0
    }

    /// Where the earliest stop string starts in `text`, if any occurs.
    public static func firstStop(in text: String, stops: [String]) -> String.Index? {
        var best: String.Index? = nil
        for s in stops where !s.isEmpty {
            if let r = text.range(of: s), best.map({ r.lowerBound < $0 }) ?? true { best = r.lowerBound }
        }
        return best
    }
}

/// Choosing and configuring the engine behind `tycho batch` and `infer.batch`.
public enum BatchEngines {
    /// The engine batch jobs run on: the KV-cache Generator (BatchGeneratorEngine); the reference loop when the
    /// model is not one the Generator runs.
    /// - Parameters:
    ///   - batchSize: sequences generated together.
    public static func make(model: LanguageModel, tokenizer: Tokenizer, eosIDs: Set<Int>, batchSize: Int) -> BatchEngine {
        if let engine = try? BatchGeneratorEngine(model: model, tokenizer: tokenizer, eosIDs: eosIDs, batchSize: batchSize) {
            return engine
        }
        return BatchReferenceEngine(model: model, tokenizer: tokenizer, eosIDs: eosIDs, maxRows: batchSize)
    }

    /// The longest sequence `model` takes: its position table, else config's max_position_embeddings.
    public static func contextLength(of model: LanguageModel) -> Int? {
        if let p = model.maxPositions { return p }
        return model.configJSON()["max_position_embeddings"] as? Int
    }

    /// End-of-sequence ids of a model folder: generation_config.json's `eos_token_id` (a number or a list),
    /// else config.json's.
    public static func eosIDs(modelFolder dir: String) -> Set<Int> {
        for file in ["generation_config.json", "config.json"] {
            guard let data = FileManager.default.contents(atPath: dir + "/" + file),
                  let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { continue }
            let ids = eosValue(object["eos_token_id"])
            if !ids.isEmpty { return ids }
        }
        return []
    }

    /// End-of-sequence ids from a model's own config (for a model built or loaded in Lua).
    public static func eosIDs(model: LanguageModel) -> Set<Int> { eosValue(model.configJSON()["eos_token_id"]) }

    static func eosValue(_ v: Any?) -> Set<Int> {
        if let i = v as? Int { return [i] }
        if let list = v as? [Int] { return Set(list) }
        return []
    }

    /// A model folder's name for response bodies: its last path component.
    public static func modelName(folder dir: String) -> String {
        var s = dir
        while s.count > 1 && s.hasSuffix("/") { s.removeLast() }
        return s.split(separator: "/").last.map(String.init) ?? s
    }
}

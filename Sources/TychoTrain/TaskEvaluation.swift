// TaskEvaluation.swift: task accuracy: one generated answer per item, graded by a caller's function.
//
// Each item's prompt is generated with TychoInfer's Generator (the engine of infer.generate): item i is seeded
// (seed + i), one sample, so an item's answer depends only on the model, its prompt and the options, never on the
// batch size or the other items; greedy (temperature 0) is the usual setting. After all answers exist, they are
// graded in item order. A grader says pass/fail (1 or 0) or gives a score in [0, 1].
// Totals: `correct` counts answers scored 1 (a pass), accuracy = correct / total; mean_score = Σ scores / total.
// An item whose grader failed (`EvalCallbackError`: it raised, or returned no verdict) counts in `total` with no
// credit, in `errors`, and its message is kept when it is the first; the eval goes on. Any other error from the
// grader (an interrupt) stops the eval.

import TychoInfer

/// What a grader says about one answer.
public enum GraderVerdict: Equatable, Sendable {
    /// Pass (1) or fail (0).
    case pass(Bool)
    /// A score in [0, 1].
    case score(Double)
}

/// A prompt as text (kept for the samples) and as the token ids generation starts from.
public struct EvalPrompt: Equatable, Sendable {
    public var text: String
    public var ids: [Int]

    public init(text: String, ids: [Int]) {
        self.text = text
        self.ids = ids
    }
}

/// One graded item.
public struct TaskSample: Equatable, Sendable {
    /// 0-based item index.
    public var item: Int
    public var prompt: String
    public var output: String
    public var finishReason: FinishReason
    /// nil when the grader failed.
    public var score: Double?
    public var error: String?
}

public struct TaskResult: Equatable, Sendable {
    public var total = 0
    public var correct = 0
    public var errors = 0
    public var scoreSum = 0.0
    /// The first grader failure, as "item i: message" (1-based).
    public var firstError: String?
    /// Every item in order (empty unless samples were kept).
    public var samples: [TaskSample] = []
    /// Generation totals (prompt and completion tokens, seconds).
    public var usage: GenerationUsage?

    public var accuracy: Double { total > 0 ? Double(correct) / Double(total) : .nan }
    public var meanScore: Double { total > 0 ? scoreSum / Double(total) : .nan }
}

public enum TaskEvaluation {
    /// A verdict's score; a number must be finite and in [0, 1].
    public static func score(_ v: GraderVerdict) throws -> Double {
        switch v {
        case .pass(let ok): return ok ? 1 : 0
        case .score(let s):
            guard s.isFinite, s >= 0, s <= 1 else {
                throw EvalCallbackError("the grader returned \(s); a score must be a number in [0, 1] (or true/false)")
            }
            return s
        }
    }

    /// Generates one answer per prompt and grades each.
    /// - Parameters:
    ///   - generator: the model and tokenizer to generate with.
    ///   - options: generation options; item i uses seed `options.seed + i` and n = 1.
    ///   - grade: (0-based item, answer text) -> verdict; throws `EvalCallbackError` to count a failure.
    /// - Throws: `EvalError` naming the first item the generator refuses; errors of generation; a grader's
    ///   error that is not an `EvalCallbackError`.
    public static func run(generator: Generator, prompts: [EvalPrompt], options: GenerationOptions, batchSize: Int,
                           keepSamples: Bool = true, grade: (Int, String) throws -> GraderVerdict) throws -> TaskResult {
        let generated = try generate(generator, prompts, options, batchSize: batchSize)
        var r = TaskResult()
        r.usage = generated.usage
        for (i, p) in prompts.enumerated() {
            guard let c = generated.completions[i].first else { throw EvalError("item \(i + 1): no answer was generated") }
            var sample = TaskSample(item: i, prompt: p.text, output: c.text, finishReason: c.finishReason, score: nil, error: nil)
            r.total += 1
            do {
                let s = try score(try grade(i, c.text))
                sample.score = s
                r.scoreSum += s
                if s == 1 { r.correct += 1 }
            } catch let e as EvalCallbackError {
                r.errors += 1
                sample.error = e.message
                if r.firstError == nil { r.firstError = "item \(i + 1): \(e.message)" }
            }
            if keepSamples { r.samples.append(sample) }
        }
        return r
    }

    /// One sample per prompt, prompt i seeded (options.seed + i); every request is checked first.
    static func generate(_ g: Generator, _ prompts: [EvalPrompt], _ options: GenerationOptions,
                         batchSize: Int) throws -> GenerationResult {
        guard batchSize >= 1 else { throw EvalError("batch_size must be a positive integer, got \(batchSize)") }
        var requests: [GenerationRequest] = []
        requests.reserveCapacity(prompts.count)
        for (i, p) in prompts.enumerated() {
            var o = options
            o.n = 1
            o.seed = options.seed &+ UInt64(i)
            let r = GenerationRequest(prompt: p.ids, options: o)
            do { try g.validate(r) } catch let e as GenerationError { throw EvalError("item \(i + 1): \(e.message)") }
            requests.append(r)
        }
        return try g.generate(requests: requests, batchSize: batchSize)
    }
}

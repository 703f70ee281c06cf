// WinRate.swift: the win rate of a policy against a reference model under a caller's judge.
//
// For each prompt both models generate one completion (the same options and seed for both: prompt i is seeded
// seed + i, greedy by default), then the judge compares them: judge(prompt, a, b) says "a", "b" or "tie". The
// policy's completion is a. With `swap`, the judge is asked again with a and b exchanged (the reference first), so
// a judge that prefers a position gives the policy a win in one order and a loss in the other: a tie overall.
// Tally: each of a prompt's k verdicts (k = 1, or 2 with swap) counts 1/k of a comparison, as a win, a loss or a
// tie for the policy; so with swap, wins, losses and ties are multiples of 0.5. n = prompts judged;
// win_rate = (wins + ties / 2) / n, the mean of the prompts' scores (1 win, 0 loss, 1/2 tie, averaged over the
// orders). `inconsistent` counts swapped prompts whose two verdicts disagree (position bias or noise).
// A prompt whose judge failed (`EvalCallbackError`) is left out of n and counted in errors (first message kept);
// the eval goes on. Any other error from the judge stops it.

import Foundation
import TychoInfer

/// A judge's answer: a's completion is better, b's is, or neither.
public enum JudgeVerdict: String, Equatable, Sendable {
    case a, b, tie

    /// "a", "b" or "tie" (any case, surrounding white space ignored).
    public static func parse(text: String) throws -> JudgeVerdict {
        let t = text.trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
        guard let v = JudgeVerdict(rawValue: t) else {
            throw EvalCallbackError("the judge returned \"\(text.prefix(40))\"; it must return \"a\", \"b\" or \"tie\" (or 1, 0, 0.5)")
        }
        return v
    }

    /// 1 (a wins), 0 (b wins) or 0.5 (tie).
    public static func parse(number: Double) throws -> JudgeVerdict {
        switch number {
        case 1: return .a
        case 0: return .b
        case 0.5: return .tie
        default: throw EvalCallbackError("the judge returned \(number); a number verdict must be 1 (a wins), 0 (b wins) or 0.5 (tie)")
        }
    }

    /// The score of the completion shown as a: 1, 0 or 0.5.
    public var scoreOfA: Double {
        switch self {
        case .a: return 1
        case .b: return 0
        case .tie: return 0.5
        }
    }
}

/// Wins, losses and ties of the policy over the prompts judged.
public struct WinRateTally: Equatable, Sendable {
    public private(set) var wins = 0.0
    public private(set) var losses = 0.0
    public private(set) var ties = 0.0
    /// Prompts judged.
    public private(set) var n = 0
    /// Swapped prompts whose two verdicts gave the policy different outcomes.
    public private(set) var inconsistent = 0

    public init() {}

    /// Adds one prompt: `first` judged with a = policy, `swapped` (when asked) with a = reference.
    /// Returns the policy's score for the prompt (the mean over the orders of 1 win, 0 loss, 1/2 tie).
    @discardableResult
    public mutating func add(first: JudgeVerdict, swapped: JudgeVerdict? = nil) -> Double {
        var scores = [first.scoreOfA]
        if let swapped { scores.append(1 - swapped.scoreOfA) }
        let weight = 1 / Double(scores.count)
        for s in scores {
            if s == 1 { wins += weight } else if s == 0 { losses += weight } else { ties += weight }
        }
        if scores.count == 2 && scores[0] != scores[1] { inconsistent += 1 }
        n += 1
        return scores.reduce(0, +) * weight
    }

    /// (wins + ties / 2) / n; nil when no prompt was judged.
    public var winRate: Double? { n > 0 ? (wins + ties / 2) / Double(n) : nil }
}

/// One prompt's completions and verdicts.
public struct WinRateSample: Equatable, Sendable {
    /// 0-based prompt index.
    public var item: Int
    public var prompt: String
    public var policy: String
    public var reference: String
    /// The verdicts as the judge gave them: with a = policy, then (with swap) with a = reference.
    public var verdicts: [JudgeVerdict] = []
    /// The policy's score for the prompt; nil when the judge failed.
    public var score: Double?
    public var error: String?
}

public struct WinRateResult: Equatable, Sendable {
    public var tally = WinRateTally()
    public var errors = 0
    /// The first judge failure, as "prompt i: message" (1-based).
    public var firstError: String?
    public var samples: [WinRateSample] = []
    public var policyUsage: GenerationUsage?
    public var referenceUsage: GenerationUsage?
}

public enum WinRate {
    /// Generates a completion from each model for each prompt and judges them.
    /// - Parameters:
    ///   - options: generation options for both models; prompt i uses seed `options.seed + i` and n = 1.
    ///   - swap: also judge with a and b exchanged, and average.
    ///   - judge: (0-based prompt, prompt text, a, b) -> verdict; throws `EvalCallbackError` to count a failure.
    public static func run(policy: Generator, reference: Generator, prompts: [EvalPrompt], options: GenerationOptions,
                           batchSize: Int, swap: Bool = true, keepSamples: Bool = true,
                           judge: (Int, String, String, String) throws -> JudgeVerdict) throws -> WinRateResult {
        let p = try TaskEvaluation.generate(policy, prompts, options, batchSize: batchSize)
        let r = try TaskEvaluation.generate(reference, prompts, options, batchSize: batchSize)
        var out = WinRateResult()
        out.policyUsage = p.usage
        out.referenceUsage = r.usage
        for (i, prompt) in prompts.enumerated() {
            guard let a = p.completions[i].first, let b = r.completions[i].first else {
                throw EvalError("prompt \(i + 1): no completion was generated")
            }
            var sample = WinRateSample(item: i, prompt: prompt.text, policy: a.text, reference: b.text)
            do {
                let first = try judge(i, prompt.text, a.text, b.text)
                sample.verdicts.append(first)
                var second: JudgeVerdict?
                if swap {
                    second = try judge(i, prompt.text, b.text, a.text)
                    sample.verdicts.append(second ?? .tie)
                }
                sample.score = out.tally.add(first: first, swapped: second)
            } catch let e as EvalCallbackError {
                out.errors += 1
                sample.error = e.message
                if out.firstError == nil { out.firstError = "prompt \(i + 1): \(e.message)" }
            }
            if keepSamples { out.samples.append(sample) }
        }
        return out
    }
}

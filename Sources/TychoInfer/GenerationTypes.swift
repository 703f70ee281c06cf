// GenerationTypes.swift: what a generation request asks for and what it gives back (options, requests,
// completions, usage), with the checks every request passes before any work starts.
//
// Names follow OpenAI's completions API (max_tokens, temperature, top_p, n, stop, seed, logprobs, prediction,
// finish_reason, usage) and Hugging Face's generate where OpenAI has none (top_k, min_p, repetition_penalty).

import Foundation

/// An error in a generation request or run, with a message for the user.
public struct GenerationError: Error, CustomStringConvertible, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// The expected output of a request (OpenAI's Predicted Outputs).
public enum Prediction: Sendable, Equatable {
    /// Text, encoded with the generator's tokenizer (no special tokens added).
    case text(String)
    /// Token ids.
    case ids([Int])
}

/// How one request is sampled and when its samples stop.
public struct GenerationOptions: Sendable, Equatable {
    /// New tokens per sample, at most (the stop token included).
    public var maxTokens = 16
    /// 0 picks the most likely token (greedy); otherwise logits are divided by it before sampling.
    public var temperature: Float = 1
    /// Keep only tokens whose logit is at least the k-th largest (ties kept); 0 = off.
    public var topK = 0
    /// Keep the most likely tokens whose probabilities sum to top_p (nucleus); 1 = off.
    public var topP: Float = 1
    /// Drop tokens less likely than min_p times the most likely one; 0 = off.
    public var minP: Float = 0
    /// Hugging Face's rule: a logit of a token already in the prompt or the output is divided by the penalty when
    /// positive, multiplied by it when negative; 1 = off.
    public var repetitionPenalty: Float = 1
    /// Samples of the prompt.
    public var n = 1
    /// Stop when the text contains one of these (the text is cut before it, as OpenAI does).
    public var stopStrings: [String] = []
    /// Stop after one of these token ids.
    public var stopIDs: [Int] = []
    /// Also stop after the end-of-sequence token(s) (`Generator.eosTokenIDs`).
    public var stopAtEOS = true
    /// Seed of the request: sample j draws from a generator seeded by (seed, j), so samples do not depend on the
    /// batch size, on the other requests, or on the request's place among them.
    public var seed: UInt64 = 0
    /// Keep each token's log-probability (`Completion.tokenLogprobs`).
    public var logprobs = false
    /// Predicted output: verified several tokens per step (output identical to running without it).
    public var prediction: Prediction?
    /// Most draft tokens verified in one step.
    public var predictionWindow = 32

    public init() {}

    /// The most samples of one request.
    public static let maxSamples = 1 << 20

    /// Throws a message naming the first bad option.
    public func validate() throws {
        guard maxTokens >= 1 else { throw GenerationError("max_tokens must be a positive integer, got \(maxTokens)") }
        guard temperature >= 0, temperature.isFinite else {
            throw GenerationError("temperature must be a finite number >= 0, got \(temperature)")
        }
        guard topK >= 0 else { throw GenerationError("top_k must be a non-negative integer (0 = off), got \(topK)") }
        guard topP > 0, topP <= 1 else { throw GenerationError("top_p must be in (0, 1], got \(topP)") }
        guard minP >= 0, minP <= 1 else { throw GenerationError("min_p must be in [0, 1], got \(minP)") }
        guard repetitionPenalty > 0, repetitionPenalty.isFinite else {
            throw GenerationError("repetition_penalty must be a positive number, got \(repetitionPenalty)")
        }
        guard n >= 1, n <= GenerationOptions.maxSamples else {
            throw GenerationError("n must be an integer in 1...\(GenerationOptions.maxSamples), got \(n)")
        }
        for s in stopStrings where s.isEmpty { throw GenerationError("stop strings must not be empty") }
        guard predictionWindow >= 1 else { throw GenerationError("prediction window must be positive, got \(predictionWindow)") }
    }
}

/// One prompt and how to sample it.
public struct GenerationRequest: Sendable, Equatable {
    /// Token ids (0-based Hugging Face ids), at least one.
    public var prompt: [Int]
    public var options: GenerationOptions

    public init(prompt: [Int], options: GenerationOptions = GenerationOptions()) {
        self.prompt = prompt
        self.options = options
    }
}

public enum FinishReason: String, Sendable, Equatable {
    /// A stop string or stop token (EOS included) ended the sample.
    case stop
    /// max_tokens was reached, or the model's context was full.
    case length
}

/// One sample of one request.
public struct Completion: Sendable, Equatable {
    /// The decoded output, cut before the stop string or stop token that ended it.
    public var text: String
    /// Every generated token, the stop token included (a stop string's tokens too): text is the decoding of ids
    /// cut where the stop begins.
    public var ids: [Int]
    /// Σ log p(token) over ids, under the model's own distribution (before temperature, truncation and penalty).
    public var logprob: Double
    /// log p of each token of ids, when `logprobs` was asked for.
    public var tokenLogprobs: [Float]?
    public var finishReason: FinishReason
    public var promptTokens: Int
    /// Predicted tokens accepted by verification (they are in ids).
    public var acceptedPredictionTokens = 0
    /// Predicted tokens verified and rejected (computed, then thrown away).
    public var rejectedPredictionTokens = 0
}

/// Totals of a run.
public struct GenerationUsage: Sendable, Equatable {
    /// Prompt tokens of the requests started (once per request, whatever n is).
    public var promptTokens = 0
    /// Generated tokens of every sample.
    public var completionTokens = 0
    public var totalTokens: Int { promptTokens + completionTokens }
    /// Wall-clock seconds of the run.
    public var seconds: Double = 0
    /// completionTokens / seconds.
    public var tokensPerSecond: Double { seconds > 0 ? Double(completionTokens) / seconds : 0 }
    public var acceptedPredictionTokens = 0
    public var rejectedPredictionTokens = 0
    /// Model steps (forward passes over the running slots).
    public var steps = 0
}

/// What `Generator.generate` returns.
public struct GenerationResult: Sendable {
    /// Per request, its n samples in order; empty for a request that was not started (see `notStarted`).
    public var completions: [[Completion]]
    public var usage: GenerationUsage
    /// Requests not started because `shouldStart` said no (in order).
    public var notStarted: [Int]
}

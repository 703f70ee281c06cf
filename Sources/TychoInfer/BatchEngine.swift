// BatchEngine.swift: the one thing a batch job needs from generation, as a small protocol.
//
// The job hands an engine a list of checked requests (at most its batch size) and the engine reports each
// request, by its index in that list, as soon as all of its choices are done, so the job can write the result
// at once. An engine reports every index exactly once, success or failure; the job treats a missing report as
// a retryable failure and ignores a second one. Engines run on the caller's thread and return when every
// request is reported.
//
// Errors: `BatchRequestError` carries an OpenAI-style code and whether trying again can help (a prompt longer
// than the context cannot; a crashed worker can). Any other error is taken as a retryable `server_error`.

/// Why a generation stopped: a stop string or EOS (`stop`), or the token limit or context (`length`).
public enum BatchFinishReason: String, Sendable {
    case stop, length
}

/// One generated sample.
public struct BatchChoice: Equatable, Sendable {
    public var text: String
    public var finishReason: BatchFinishReason
    /// Tokens generated for this choice (an EOS included, text after a stop string included).
    public var completionTokens: Int

    public init(text: String, finishReason: BatchFinishReason, completionTokens: Int) {
        self.text = text; self.finishReason = finishReason; self.completionTokens = completionTokens
    }
}

/// A finished request: its choices in order (index 0..<n) and its prompt's token count.
public struct BatchResponse: Equatable, Sendable {
    public var choices: [BatchChoice]
    public var promptTokens: Int
    /// Predicted Outputs counts, when the engine used `request.prediction` (nil: not reported).
    public var acceptedPredictionTokens: Int?
    public var rejectedPredictionTokens: Int?

    public init(choices: [BatchChoice], promptTokens: Int, acceptedPredictionTokens: Int? = nil,
                rejectedPredictionTokens: Int? = nil) {
        self.choices = choices; self.promptTokens = promptTokens
        self.acceptedPredictionTokens = acceptedPredictionTokens; self.rejectedPredictionTokens = rejectedPredictionTokens
    }

    public var completionTokens: Int { choices.reduce(0) { $0 + $1.completionTokens } }
}

/// A request's failure with an error code (`context_length_exceeded`, `invalid_prompt`, `server_error`).
public struct BatchRequestError: Error, Equatable, CustomStringConvertible {
    public var code: String
    public var message: String
    /// Whether another attempt may succeed.
    public var retryable: Bool

    public init(code: String, message: String, retryable: Bool) {
        self.code = code; self.message = message; self.retryable = retryable
    }

    public var description: String { message }

    /// The code, message and retryability of any error an engine reports.
    static func from(_ error: Error) -> BatchRequestError {
        if let e = error as? BatchRequestError { return e }
        return BatchRequestError(code: "server_error", message: "\(error)", retryable: true)
    }
}

/// Generation, as a batch job sees it.
public protocol BatchEngine {
    /// Runs `requests`, calling `onFinish(i, result)` once per index i of `requests` as soon as request i is
    /// done (all its `n` choices), in any order, before returning.
    func run(_ requests: [BatchRequest], onFinish: (Int, Result<BatchResponse, Error>) -> Void)
}

// EvalError.swift: the two errors of the evals (TaskEvaluation, WinRate, Perplexity).
//
// `EvalError` stops an eval: a bad input found before or during the work (a prompt the model cannot take, a token
// id out of range). `EvalCallbackError` is what a grader or judge closure throws for one item (the callback
// raised, or returned something that is not a verdict): the eval counts it, keeps the first message and goes
// on. Any other error a callback throws (an interrupt) stops the eval and is rethrown as it is.

public struct EvalError: Error, CustomStringConvertible, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

public struct EvalCallbackError: Error, CustomStringConvertible, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

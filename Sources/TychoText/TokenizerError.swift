// TokenizerError.swift: the error type of TychoText's tokenizers (data files throw JSONLinesError). Every
// failure (a malformed tokenizer.json, an unknown id, an unreadable file) is thrown as this, never trapped: the
// Lua edge turns it into a Lua error.

/// A tokenizer failure with a message that reads on its own (`tokenizer.json: model.vocab is missing`).
public struct TokenizerError: Error, CustomStringConvertible, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

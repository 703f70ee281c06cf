// Grader.swift: what a grader is for RFT: an object that scores one sampled answer against one data row, as
// OpenAI's graders do (`run` endpoint: a score and details). The built-in types are in Graders.swift (string_check,
// text_similarity, multi); a Lua function reaches the core as a `FunctionGrader` whose closure the Lua bridge
// builds (it runs the function in a sandboxed Lua state). JSON specs in OpenAI's format are GraderSpec.swift.
//
// A grader never throws while grading: a failure (a missing template variable, output that is not JSON, grader
// code that raised, looped or ran out of memory) is a result with `error` set and score 0, so a trainer counts
// it and goes on.

import TychoText

/// One sampled answer, as OpenAI's graders see it: `sample.output_text` and `sample.output_json`.
public struct GraderSample {
    public var outputText: String
    /// The answer as JSON when given (structured output); otherwise it is parsed from `outputText` on demand.
    public var outputJSON: JSONValue?

    public init(outputText: String, outputJSON: JSONValue? = nil) {
        self.outputText = outputText
        self.outputJSON = outputJSON
    }

    /// `sample.output_json`: the given JSON, or `outputText` parsed, or a sample_parse_error.
    public func json() throws -> JSONValue {
        if let outputJSON { return outputJSON }
        do {
            return try JSONParser.parse(outputText)
        } catch let e as JSONSyntaxError {
            throw GraderError(.sampleParseError, "sample.output_json: the output is not valid JSON (\(e.description))")
        }
    }
}

/// Why a grader could not score a sample. The kinds follow OpenAI's RFT error counters (sample_parse_error,
/// invalid_variable_error, other_error) with the sandbox's own failures apart.
public struct GraderError: Error, Equatable, CustomStringConvertible {
    public enum Kind: String, CaseIterable {
        /// `sample.output_json` was asked for and the output is not JSON.
        case sampleParseError = "sample_parse_error"
        /// A template variable the row (or the sample's JSON) does not have.
        case invalidVariableError = "invalid_variable_error"
        /// Grader code raised an error (a Lua grader), or returned something that is not a score.
        case runtimeError = "runtime_error"
        /// Grader code spent its instruction budget (an infinite loop).
        case budgetExceeded = "budget_exceeded"
        /// Grader code reached its memory cap.
        case memoryExceeded = "memory_exceeded"
        /// Anything else: a formula's division by zero, a non-finite score.
        case otherError = "other_error"
    }

    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { "\(kind.rawValue): \(message)" }
}

/// What a grader returns for one sample: a score (0 on error), details as ordered JSON fields (always `type` and
/// `name` first), and the error if the sample could not be graded.
public struct GraderResult {
    public var score: Double
    public var details: [(String, JSONValue)]
    public var error: GraderError?

    public init(score: Double, details: [(String, JSONValue)] = [], error: GraderError? = nil) {
        self.score = score
        self.details = details
        self.error = error
    }

    /// A failed result: score 0, the error, and `error`/`error_kind` in the details.
    public static func failure(_ error: GraderError, details: [(String, JSONValue)] = []) -> GraderResult {
        GraderResult(score: 0, details: details + [("error", .string(error.message)), ("error_kind", .string(error.kind.rawValue))],
                     error: error)
    }

    /// The details field `key`, if present.
    public func detail(_ key: String) -> JSONValue? { details.first { $0.0 == key }?.1 }
}

/// A template variable one grader (or one of its sub-graders, `grader` being its dotted path) reads.
public struct GraderVariableUse: Equatable {
    public var grader: String
    public var variable: GraderVariable
    public init(grader: String, variable: GraderVariable) {
        self.grader = grader
        self.variable = variable
    }
}

/// A grader: scores one sample against one data row (`item`, a JSON object).
public protocol Grader {
    /// OpenAI's type name: string_check, text_similarity, multi, lua.
    var type: String { get }
    var name: String { get }
    /// The template variables this grader and its sub-graders read (for validation against data).
    var variableUses: [GraderVariableUse] { get }
    /// The grader as a JSON spec in OpenAI's format (`GraderSpec.make` reads it back).
    var spec: JSONValue { get }
    func run(sample: GraderSample, item: JSONValue) -> GraderResult
}

extension Grader {
    /// The details every result starts with.
    var baseDetails: [(String, JSONValue)] { [("type", .string(type)), ("name", .string(name))] }
}

/// A grader whose work is a closure: how the Lua bridge hands a sandboxed Lua function to the core.
public struct FunctionGrader: Grader {
    public let type: String
    public let name: String
    public let spec: JSONValue
    public var variableUses: [GraderVariableUse] { [] }
    let body: (GraderSample, JSONValue) -> GraderResult

    /// - Parameters:
    ///   - type: the type name (details and spec), e.g. "lua".
    ///   - spec: the JSON spec that rebuilds this grader.
    ///   - body: grades one sample; it reports failures in its result, never by trapping. Its details follow
    ///     `type` and `name`, which this grader puts first.
    public init(type: String, name: String, spec: JSONValue, body: @escaping (GraderSample, JSONValue) -> GraderResult) {
        self.type = type
        self.name = name
        self.spec = spec
        self.body = body
    }

    public func run(sample: GraderSample, item: JSONValue) -> GraderResult {
        var r = body(sample, item)
        if r.error == nil && !r.score.isFinite {
            return .failure(GraderError(.otherError, "the score is not finite (\(r.score))"), details: baseDetails + r.details)
        }
        if r.error != nil { r.score = 0 }
        r.details = baseDetails + r.details
        return r
    }
}

// Graders.swift: OpenAI's built-in grader types: string_check (eq, ne, like, ilike on two rendered templates),
// text_similarity (a TextSimilarity metric, with an optional pass threshold) and multi (sub-graders by name,
// combined by a calculate_output formula). Each renders its templates per sample; a template or formula failure
// is that sample's error, never a thrown error.

import Foundation
import TychoText

/// A grader definition that cannot be used (reported when the grader is made, never while grading).
public struct GraderSpecError: Error, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

// MARK: string_check

public struct StringCheckGrader: Grader {
    public enum Operation: String, CaseIterable {
        /// input == reference
        case eq
        /// input != reference
        case ne
        /// the input contains the reference
        case like
        /// the input contains the reference, ignoring case
        case ilike
    }

    public let name: String
    public let input: GraderTemplate
    public let reference: GraderTemplate
    public let operation: Operation
    public var type: String { "string_check" }

    public init(name: String = "string_check", input: String = "{{sample.output_text}}", reference: String,
                operation: Operation = .eq) throws {
        self.name = name
        self.input = try GraderTemplate(input)
        self.reference = try GraderTemplate(reference)
        self.operation = operation
    }

    public var variableUses: [GraderVariableUse] {
        (input.variables + reference.variables).map { GraderVariableUse(grader: "", variable: $0) }
    }

    public var spec: JSONValue {
        .object([("type", .string(type)), ("name", .string(name)), ("input", .string(input.source)),
                 ("reference", .string(reference.source)), ("operation", .string(operation.rawValue))])
    }

    /// The operation on two strings, comparing code points (no Unicode normalisation, as in Python).
    public static func check(_ op: Operation, _ input: String, _ reference: String) -> Bool {
        switch op {
        case .eq: return input.utf8.elementsEqual(reference.utf8)
        case .ne: return !input.utf8.elementsEqual(reference.utf8)
        case .like: return contains(input, reference)
        case .ilike: return contains(input.lowercased(), reference.lowercased())
        }
    }

    static func contains(_ text: String, _ part: String) -> Bool {
        let t = Array(text.utf8), p = Array(part.utf8)
        if p.isEmpty { return true }
        return t.firstRange(of: p) != nil
    }

    public func run(sample: GraderSample, item: JSONValue) -> GraderResult {
        let details = baseDetails + [("operation", JSONValue.string(operation.rawValue))]
        do {
            let a = try input.render(sample: sample, item: item), b = try reference.render(sample: sample, item: item)
            return GraderResult(score: StringCheckGrader.check(operation, a, b) ? 1 : 0, details: details)
        } catch let e as GraderError {
            return .failure(e, details: details)
        } catch {
            return .failure(GraderError(.otherError, "\(error)"), details: details)
        }
    }
}

// MARK: text_similarity

public struct TextSimilarityGrader: Grader {
    public let name: String
    public let input: GraderTemplate
    public let reference: GraderTemplate
    public let metric: TextSimilarityMetric
    /// When set, details.passed says whether score >= passThreshold (the score itself is the similarity).
    public let passThreshold: Double?
    public var type: String { "text_similarity" }

    public init(name: String = "text_similarity", input: String = "{{sample.output_text}}", reference: String,
                metric: TextSimilarityMetric, passThreshold: Double? = nil) throws {
        self.name = name
        self.input = try GraderTemplate(input)
        self.reference = try GraderTemplate(reference)
        self.metric = metric
        if let t = passThreshold, !t.isFinite { throw GraderSpecError("pass_threshold must be a finite number, got \(t)") }
        self.passThreshold = passThreshold
    }

    public var variableUses: [GraderVariableUse] {
        (input.variables + reference.variables).map { GraderVariableUse(grader: "", variable: $0) }
    }

    public var spec: JSONValue {
        var kv: [(String, JSONValue)] = [("type", .string(type)), ("name", .string(name)), ("input", .string(input.source)),
                                         ("reference", .string(reference.source)), ("evaluation_metric", .string(metric.rawValue))]
        if let t = passThreshold { kv.append(("pass_threshold", .double(t))) }
        return .object(kv)
    }

    public func run(sample: GraderSample, item: JSONValue) -> GraderResult {
        var details = baseDetails + [("evaluation_metric", JSONValue.string(metric.rawValue))]
        do {
            let a = try input.render(sample: sample, item: item), b = try reference.render(sample: sample, item: item)
            let score = metric.score(a, b)
            if let t = passThreshold { details.append(("passed", .bool(score >= t))) }
            return GraderResult(score: score, details: details)
        } catch let e as GraderError {
            return .failure(e, details: details)
        } catch {
            return .failure(GraderError(.otherError, "\(error)"), details: details)
        }
    }
}

// MARK: multi

public struct MultiGrader: Grader {
    public let name: String
    /// The sub-graders by name, in the order they run (the binding sorts them by name).
    public let graders: [(name: String, grader: any Grader)]
    public let formula: GraderFormula
    public var type: String { "multi" }

    /// - Throws: `GraderSpecError` for a bad name (names are identifiers: letters, digits, _), a duplicate, or a
    ///   formula that does not parse or uses an unknown name.
    public init(name: String = "multi", graders: [(name: String, grader: any Grader)], calculateOutput: String) throws {
        guard !graders.isEmpty else { throw GraderSpecError("graders must name at least one grader") }
        var seen = Set<String>()
        for (n, _) in graders {
            guard let f = n.first, f.isASCII, f.isLetter || f == "_",
                  n.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }) else {
                throw GraderSpecError("grader names are identifiers (letters, digits and _, not first a digit), got '\(n.prefix(40))'")
            }
            guard !GraderFormula.functionNames.contains(n) else {
                throw GraderSpecError("'\(n)' is a calculate_output function and cannot name a grader")
            }
            guard seen.insert(n).inserted else { throw GraderSpecError("two graders are named '\(n)'") }
        }
        self.name = name
        self.graders = graders
        self.formula = try GraderFormula(calculateOutput, allowed: seen)
    }

    public var variableUses: [GraderVariableUse] {
        graders.flatMap { g in
            g.grader.variableUses.map { GraderVariableUse(grader: $0.grader.isEmpty ? g.name : "\(g.name).\($0.grader)", variable: $0.variable) }
        }
    }

    public var spec: JSONValue {
        .object([("type", .string(type)), ("name", .string(name)),
                 ("graders", .object(graders.map { ($0.name, $0.grader.spec) })), ("calculate_output", .string(formula.source))])
    }

    public func run(sample: GraderSample, item: JSONValue) -> GraderResult {
        var scores: [String: Double] = [:]
        var subScores: [(String, JSONValue)] = [], subDetails: [(String, JSONValue)] = []
        var firstError: GraderError? = nil
        for (n, g) in graders {
            let r = g.run(sample: sample, item: item)
            scores[n] = r.score
            subScores.append((n, .double(r.score)))
            subDetails.append((n, .object(r.details)))
            if let e = r.error, firstError == nil { firstError = GraderError(e.kind, "grader '\(n)': \(e.message)") }
        }
        let details = baseDetails + [("calculate_output", .string(formula.source)), ("sub_scores", .object(subScores)),
                                     ("sub_details", .object(subDetails))]
        if let firstError { return .failure(firstError, details: details) }
        do {
            return GraderResult(score: try formula.evaluate(scores), details: details)
        } catch let e as GraderError {
            return .failure(e, details: details)
        } catch {
            return .failure(GraderError(.otherError, "\(error)"), details: details)
        }
    }
}

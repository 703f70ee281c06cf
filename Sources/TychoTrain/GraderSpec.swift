// GraderSpec.swift: graders from OpenAI's JSON grader specs, and their validation against data.
//
//   {"type": "string_check", "name": "exact", "input": "{{sample.output_text}}", "reference": "{{item.answer}}",
//    "operation": "eq"}
//   {"type": "text_similarity", "input": ..., "reference": ..., "evaluation_metric": "bleu", "pass_threshold": 0.5}
//   {"type": "multi", "graders": {"a": {...}, "b": {...}}, "calculate_output": "0.5 * a + 0.5 * b"}
//   {"type": "lua", "source": "return function(sample, item) ... end", "instructions": 1e7, "memory_mb": 64}
//
// Defaults: input "{{sample.output_text}}", operation "eq", name the type. `metric` is accepted for
// `evaluation_metric`. A field the type does not have is an error (a typo is never ignored). Types Tycho cannot run
// (python, score_model, label_model, endpoint) are errors that say so. Lua graders need a factory from the Lua
// bridge (the core cannot run Lua).

import Foundation
import TychoText

/// A template variable the data does not provide, from `GraderSpec.problems`.
public struct GraderProblem: Equatable, CustomStringConvertible {
    /// The dotted path of the sub-grader that reads it ("" for the grader itself).
    public var grader: String
    public var variable: GraderVariable
    /// How many rows lack it, and the first one (0-based).
    public var missing: Int
    public var firstMissing: Int
    public var rows: Int

    public var description: String {
        let who = grader.isEmpty ? "" : "grader '\(grader)': "
        return "\(who){{\(variable)}} is missing from \(missing) of \(rows) row\(rows == 1 ? "" : "s") (first: row \(firstMissing + 1))"
    }
}

public enum GraderSpec {
    /// Makes a Lua grader from its spec fields (the bridge provides it): name, source, and the whole spec.
    public typealias LuaFactory = (_ name: String, _ source: String, _ spec: [(String, JSONValue)]) throws -> any Grader

    static let fields: [String: Set<String>] = [
        "string_check": ["type", "name", "input", "reference", "operation"],
        "text_similarity": ["type", "name", "input", "reference", "evaluation_metric", "metric", "pass_threshold"],
        "multi": ["type", "name", "graders", "calculate_output"],
        "lua": ["type", "name", "source", "instructions", "memory_mb"],
    ]
    static let unsupported: [String: String] = [
        "python": "python graders are not supported: Tycho runs Lua graders (type lua, with source)",
        "score_model": "score_model graders (a model as judge) are not supported yet",
        "label_model": "label_model graders (a model as judge) are not supported yet",
        "endpoint": "endpoint graders are not supported",
    ]

    /// The grader a JSON spec describes.
    /// - Throws: `GraderSpecError` naming the field (with its path inside multi graders).
    public static func make(_ spec: JSONValue, lua: LuaFactory? = nil) throws -> any Grader {
        try make(spec, path: "", lua: lua)
    }

    static func make(_ spec: JSONValue, path: String, lua: LuaFactory?) throws -> any Grader {
        func fail(_ m: String) -> GraderSpecError { GraderSpecError(path.isEmpty ? m : "\(path): \(m)") }
        guard case .object(let kv) = spec else { throw fail("a grader spec must be an object, got \(kind(spec))") }
        func field(_ k: String) -> JSONValue? { kv.first { $0.0 == k }?.1 }
        func string(_ k: String) throws -> String? {
            guard let v = field(k) else { return nil }
            guard case .string(let s) = v else { throw fail("field '\(k)' must be a string, got \(kind(v))") }
            return s
        }
        func number(_ k: String) throws -> Double? {
            switch field(k) {
            case nil: return nil
            case .int(let i)?: return Double(i)
            case .double(let d)?: return d
            case let v?: throw fail("field '\(k)' must be a number, got \(kind(v))")
            }
        }
        guard let type = try string("type") else { throw fail("a grader spec needs a 'type' (string_check, text_similarity, multi or lua)") }
        if let why = unsupported[type] { throw fail(why) }
        guard let allowed = fields[type] else {
            throw fail("unknown grader type '\(type.prefix(40))' (string_check, text_similarity, multi or lua)")
        }
        if let bad = kv.first(where: { !allowed.contains($0.0) }) {
            throw fail("\(type) has no field '\(bad.0.prefix(40))' (its fields are \(allowed.subtracting(["type"]).sorted().joined(separator: ", ")))")
        }
        let name = try string("name") ?? type
        do {
            switch type {
            case "string_check":
                guard let reference = try string("reference") else { throw fail("string_check needs a 'reference'") }
                var op = StringCheckGrader.Operation.eq
                if let s = try string("operation") {
                    guard let o = StringCheckGrader.Operation(rawValue: s) else {
                        throw fail("field 'operation' must be one of eq, ne, like, ilike, got '\(s.prefix(40))'")
                    }
                    op = o
                }
                return try StringCheckGrader(name: name, input: try string("input") ?? "{{sample.output_text}}",
                                             reference: reference, operation: op)
            case "text_similarity":
                guard let reference = try string("reference") else { throw fail("text_similarity needs a 'reference'") }
                let a = try string("evaluation_metric"), b = try string("metric")
                if let a, let b, a != b { throw fail("fields 'evaluation_metric' and 'metric' disagree ('\(a)', '\(b)')") }
                guard let m = a ?? b else {
                    throw fail("text_similarity needs an 'evaluation_metric' (\(TextSimilarityMetric.names.joined(separator: ", ")))")
                }
                guard let metric = TextSimilarityMetric(rawValue: m) else {
                    let meteor = m == "meteor" ? " (meteor needs WordNet and is not provided)" : ""
                    throw fail("field 'evaluation_metric' must be one of \(TextSimilarityMetric.names.joined(separator: ", ")), got '\(m.prefix(40))'\(meteor)")
                }
                return try TextSimilarityGrader(name: name, input: try string("input") ?? "{{sample.output_text}}",
                                                reference: reference, metric: metric, passThreshold: try number("pass_threshold"))
            case "multi":
                guard case .object(let subs)? = field("graders") else {
                    throw fail("multi needs 'graders', an object of graders by name")
                }
                guard let formula = try string("calculate_output") else { throw fail("multi needs a 'calculate_output' formula") }
                let graders = try subs.sorted { $0.0 < $1.0 }.map { (n, s) in
                    (name: n, grader: try make(s, path: path.isEmpty ? "graders.\(n)" : "\(path).graders.\(n)", lua: lua))
                }
                return try MultiGrader(name: name, graders: graders, calculateOutput: formula)
            default:  // lua
                guard let source = try string("source") else { throw fail("lua needs a 'source' (Lua code returning a function)") }
                guard let lua else { throw fail("lua graders can only be made through the Lua bridge (rft.grader.from_spec)") }
                return try lua(name, source, kv)
            }
        } catch let e as GraderSpecError {
            if e.message.hasPrefix(path) && !path.isEmpty { throw e }
            throw fail(e.message)
        }
    }

    static func kind(_ v: JSONValue) -> String {
        switch v {
        case .null: return "null"
        case .bool: return "a boolean"
        case .int, .double: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }

    /// The template variables `grader` reads that some of `items` (data rows) lack, one entry per (sub-grader,
    /// variable), in the order the grader uses them. Sample variables depend on the model's answer and are not
    /// checked here (a template that names an unknown one is already an error when the grader is made).
    public static func problems(of grader: any Grader, items: [JSONValue]) -> [GraderProblem] {
        var out: [GraderProblem] = []
        var seen = Set<String>()
        for use in grader.variableUses where use.variable.namespace == .item {
            let key = "\(use.grader)\u{0}\(use.variable)"
            guard seen.insert(key).inserted else { continue }
            var missing = 0, first = -1
            for (i, item) in items.enumerated() where !use.variable.isProvided(by: item) {
                missing += 1
                if first < 0 { first = i }
            }
            if missing > 0 {
                out.append(GraderProblem(grader: use.grader, variable: use.variable, missing: missing, firstMissing: first, rows: items.count))
            }
        }
        return out
    }
}

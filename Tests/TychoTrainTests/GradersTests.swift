// GradersTests.swift: string_check, text_similarity and multi (Graders.swift), graders from OpenAI's JSON specs and
// their validation against data (GraderSpec.swift), and the closure grader the Lua bridge builds (Grader.swift).

import Foundation
import Testing
import TychoText
@testable import TychoTrain

@Suite struct GradersTests {
    func json(_ s: String) -> JSONValue { try! JSONParser.parse(s) }

    @Test func stringCheckOperations() throws {
        let cases: [(StringCheckGrader.Operation, String, String, Double)] = [
            (.eq, "Paris", "Paris", 1), (.eq, "Paris", "paris", 0), (.ne, "a", "b", 1), (.ne, "a", "a", 0),
            (.like, "It is Paris.", "Paris", 1), (.like, "It is PARIS.", "Paris", 0), (.ilike, "It is PARIS.", "paris", 1),
            (.like, "x", "", 1), (.eq, "e\u{301}", "\u{e9}", 0),
        ]
        for (op, input, reference, want) in cases {
            let g = try StringCheckGrader(reference: "{{item.r}}", operation: op)
            let r = g.run(sample: GraderSample(outputText: input), item: .object([("r", .string(reference))]))
            #expect(r.score == want && r.error == nil, "\(op) \(input) \(reference)")
            #expect(r.detail("operation") == .string(op.rawValue) && r.detail("type") == .string("string_check"))
        }
        let g = try StringCheckGrader(reference: "{{item.missing}}")
        let r = g.run(sample: GraderSample(outputText: "x"), item: .object([]))
        #expect(r.score == 0 && r.error?.kind == .invalidVariableError && r.detail("error_kind") == .string("invalid_variable_error"))
    }

    @Test func textSimilarityThreshold() throws {
        let g = try TextSimilarityGrader(reference: "the cat sat on the mat", metric: .rouge1, passThreshold: 0.6)
        let r = g.run(sample: GraderSample(outputText: "the cat sat"), item: .object([]))
        #expect(abs(r.score - 2.0 / 3) < 1e-15 && r.detail("passed") == .bool(true))
        #expect(g.run(sample: GraderSample(outputText: "dog"), item: .object([])).detail("passed") == .bool(false))
        #expect(throws: GraderSpecError.self) { try TextSimilarityGrader(reference: "x", metric: .bleu, passThreshold: .nan) }
    }

    @Test func multiCombinesAndPropagatesErrors() throws {
        let one = FunctionGrader(type: "const", name: "one", spec: .null) { _, _ in GraderResult(score: 1) }
        let half = FunctionGrader(type: "const", name: "half", spec: .null) { _, _ in GraderResult(score: 0.5) }
        let bad = FunctionGrader(type: "const", name: "bad", spec: .null) { _, _ in .failure(GraderError(.runtimeError, "boom")) }
        let m = try MultiGrader(graders: [("a", one), ("b", half)], calculateOutput: "0.5 * a + 0.5 * b")
        let r = m.run(sample: GraderSample(outputText: ""), item: .object([]))
        #expect(r.score == 0.75 && r.error == nil)
        #expect(r.detail("sub_scores") == .object([("a", .double(1)), ("b", .double(0.5))]))
        let e = try MultiGrader(graders: [("a", one), ("z", bad)], calculateOutput: "a + z")
        let re = e.run(sample: GraderSample(outputText: ""), item: .object([]))
        #expect(re.score == 0 && re.error == GraderError(.runtimeError, "grader 'z': boom"))
        let d = try MultiGrader(graders: [("a", one)], calculateOutput: "a / (a - 1)")
        #expect(d.run(sample: GraderSample(outputText: ""), item: .object([])).error?.kind == .otherError)
        #expect(throws: GraderSpecError.self) { try MultiGrader(graders: [("a", one), ("a", half)], calculateOutput: "a") }
        #expect(throws: GraderSpecError.self) { try MultiGrader(graders: [("min", one)], calculateOutput: "1") }
        #expect(throws: GraderSpecError.self) { try MultiGrader(graders: [], calculateOutput: "1") }
    }

    @Test func functionGraderGuardsItsScore() {
        let inf = FunctionGrader(type: "lua", name: "inf", spec: .null) { _, _ in GraderResult(score: .infinity) }
        let r = inf.run(sample: GraderSample(outputText: ""), item: .object([]))
        #expect(r.score == 0 && r.error?.kind == .otherError && r.details.first?.1 == .string("lua"))
    }

    @Test func specsMakeGradersAndRoundTrip() throws {
        let spec = json(#"""
            {"type": "multi", "name": "combo", "calculate_output": "0.5 * e + 0.5 * t",
             "graders": {"e": {"type": "string_check", "input": "{{sample.output_text}}", "reference": "{{item.a}}", "operation": "ilike"},
                         "t": {"type": "text_similarity", "input": "{{sample.output_text}}", "reference": "{{item.a}}",
                               "evaluation_metric": "fuzzy_match", "pass_threshold": 0.5}}}
            """#)
        let g = try GraderSpec.make(spec)
        #expect(g.type == "multi" && g.name == "combo")
        let item = json(#"{"a": "AB"}"#)
        #expect(g.run(sample: GraderSample(outputText: "ab"), item: item).score == 0.5)
        let again = try GraderSpec.make(g.spec)
        #expect(again.spec == g.spec)
        #expect(again.run(sample: GraderSample(outputText: "ab"), item: item).score == 0.5)
        for (s, text) in [(#"{"type": "python", "source": "x"}"#, "python graders are not supported"),
                          (#"{"type": "string_check", "reference": "x", "operaton": "eq"}"#, "has no field 'operaton'"),
                          (#"{"type": "text_similarity", "reference": "x", "evaluation_metric": "meteor"}"#, "WordNet"),
                          (#"{"type": "text_similarity", "reference": "x", "metric": "bleu", "evaluation_metric": "gleu"}"#, "disagree"),
                          (#"{"type": "multi", "graders": {"a": {"type": "string_check"}}, "calculate_output": "a"}"#, "graders.a: string_check needs"),
                          (#"{"type": "multi", "graders": {"a": {"type": "string_check", "reference": "{{x}}"}}, "calculate_output": "a"}"#, "graders.a: '{{x}}'"),
                          (#"{"type": "lua", "source": "return function() end"}"#, "only be made through the Lua bridge"),
                          (#"["string_check"]"#, "must be an object")] {
            do {
                _ = try GraderSpec.make(json(s))
                Issue.record("\(s) made a grader")
            } catch let e as GraderSpecError {
                #expect(e.message.contains(text), "\(s): \(e.message)")
            }
        }
        let lua = try GraderSpec.make(json(#"{"type": "lua", "name": "L", "source": "src"}"#)) { name, source, _ in
            FunctionGrader(type: "lua", name: name, spec: .string(source)) { _, _ in GraderResult(score: 0.25) }
        }
        #expect(lua.name == "L" && lua.run(sample: GraderSample(outputText: ""), item: .object([])).score == 0.25)
    }

    @Test func problemsListMissingItemVariables() throws {
        let g = try GraderSpec.make(json(#"""
            {"type": "multi", "calculate_output": "q + r",
             "graders": {"q": {"type": "string_check", "reference": "{{item.answer}}", "input": "{{sample.output_json.k}}"},
                         "r": {"type": "text_similarity", "reference": "{{item.ref.text}} {{item.answer}}", "metric": "bleu"}}}
            """#))
        let rows = [json(#"{"answer": 1, "ref": {"text": "x"}}"#), json(#"{"answer": 2}"#), json("{}")]
        let p = GraderSpec.problems(of: g, items: rows)
        #expect(p.map(\.grader) == ["q", "r", "r"])
        #expect(p.map(\.variable.description) == ["item.answer", "item.ref.text", "item.answer"])
        #expect(p.map(\.missing) == [1, 2, 1] && p.map(\.firstMissing) == [2, 1, 2])
        #expect(p[0].description == "grader 'q': {{item.answer}} is missing from 1 of 3 rows (first: row 3)")
        #expect(GraderSpec.problems(of: g, items: [rows[0]]).isEmpty)
    }
}

// GraderTemplateTests.swift: OpenAI's {{namespace.path}} templates (GraderTemplate.swift): rendering, paths,
// errors when rendering (missing variables, answers that are not JSON) and when parsing.

import Foundation
import Testing
import TychoText
@testable import TychoTrain

@Suite struct GraderTemplateTests {
    let item = try! JSONParser.parse(#"{"answer": "Paris", "n": 3, "x": 1.5, "ok": true, "nil": null, "meta": {"tags": ["a", "b"]}, "list": [{"v": "first"}, {"v": "second"}]}"#)

    func render(_ t: String, _ output: String = "out") throws -> String {
        try GraderTemplate(t).render(sample: GraderSample(outputText: output), item: item)
    }

    @Test func rendersVariables() throws {
        #expect(try render("{{item.answer}}") == "Paris")
        #expect(try render("A: {{ item.answer }}.") == "A: Paris.")
        #expect(try render("{{item.n}}|{{item.x}}|{{item.ok}}|{{item.nil}}") == "3|1.5|true|null")
        #expect(try render("{{item.meta.tags}}") == #"["a", "b"]"#)
        #expect(try render("{{item.meta.tags[1]}}{{item.meta.tags.0}}") == "ba")
        #expect(try render("{{item.list[1].v}}") == "second")
        #expect(try render("<{{sample.output_text}}>") == "<out>")
        #expect(try render("{{sample.output_json.a[0]}}", #"{"a": [7]}"#) == "7")
        #expect(try render("no variables") == "no variables")
        let given = GraderSample(outputText: "not json", outputJSON: .object([("k", .string("v"))]))
        #expect(try GraderTemplate("{{sample.output_json.k}}").render(sample: given, item: item) == "v")
        #expect(try GraderTemplate("{{item.a}}{{sample.output_text}}").variables.map(\.description) == ["item.a", "sample.output_text"])
    }

    @Test func renderingErrors() {
        for (t, output, kind) in [("{{item.missing}}", "x", GraderError.Kind.invalidVariableError),
                                  ("{{item.meta.tags[5]}}", "x", .invalidVariableError),
                                  ("{{item.answer.deeper}}", "x", .invalidVariableError),
                                  ("{{sample.output_json.k}}", "not json", .sampleParseError),
                                  ("{{sample.output_json.k}}", "{}", .invalidVariableError)] {
            do {
                _ = try render(t, output)
                Issue.record("\(t) rendered")
            } catch let e as GraderError {
                #expect(e.kind == kind, "\(t): \(e)")
            } catch {
                Issue.record("\(t): \(error)")
            }
        }
    }

    @Test func parsingErrors() {
        for (t, text) in [("{{item.answer", "without a closing"), ("{{item}}", "name a variable"), ("{{answer}}", "namespace"),
                          ("{{sample.output}}", "sample variables are"), ("{{sample.output_text.x}}", "without fields"),
                          ("{{item.}}", "ends with '.'"), ("{{item..a}}", "empty name"), ("{{item.a[-1]}}", "non-negative index"),
                          ("{{item.a b}}", "unexpected ' '"), ("{{item.a[0]b}}", "expected '.' or '['")] {
            do {
                _ = try GraderTemplate(t)
                Issue.record("\(t) parsed")
            } catch let e as GraderSpecError {
                #expect(e.message.contains(text), "\(t): \(e.message)")
            } catch {
                Issue.record("\(t): \(error)")
            }
        }
    }
}

// TaskEvaluationTests.swift: answers equal the generator's own, verdicts become scores (pass/fail, numbers in
// [0, 1]), grader failures are counted with the first message kept, samples are optional, and a prompt the model
// cannot take is an error naming its item.

import Testing
import TychoInfer
@testable import TychoTrain

@Suite struct TaskEvaluationTests {
    @Test func verdictScores() throws {
        #expect(try TaskEvaluation.score(.pass(true)) == 1)
        #expect(try TaskEvaluation.score(.pass(false)) == 0)
        #expect(try TaskEvaluation.score(.score(0.25)) == 0.25)
        expectError("must be a number in [0, 1]") { try TaskEvaluation.score(.score(-0.1)) }
        expectError("must be a number in [0, 1]") { try TaskEvaluation.score(.score(.nan)) }
    }

    @Test func taskGradesAndCountsFailures() throws {
        let (p, _, tok) = try WinRateTests.generators()
        let ps = WinRateTests.prompts(tok)
        let outputs = try p.generate(prompts: ps.map(\.ids), options: WinRateTests.options, batchSize: 1).completions.map { $0[0].text }
        let res = try TaskEvaluation.run(generator: p, prompts: ps, options: WinRateTests.options, batchSize: 3) { i, out in
            #expect(out == outputs[i])
            switch i {
            case 0: return .pass(true)
            case 1: return .score(0.25)
            case 2: throw EvalCallbackError("bad item")
            default: return .score(1.5)
            }
        }
        #expect(res.total == 4 && res.correct == 1 && res.errors == 2)
        #expect(res.accuracy == 0.25 && res.meanScore == 1.25 / 4)
        #expect(res.firstError == "item 3: bad item")
        #expect(res.samples[3].error?.contains("must be a number in [0, 1]") == true)
        #expect(res.samples.map(\.output) == outputs)
        let quiet = try TaskEvaluation.run(generator: p, prompts: ps, options: WinRateTests.options, batchSize: 3, keepSamples: false) { _, _ in .pass(false) }
        #expect(quiet.samples.isEmpty && quiet.accuracy == 0)
        expectError("item 2: the prompt is empty") {
            try TaskEvaluation.run(generator: p, prompts: [ps[0], EvalPrompt(text: "", ids: [])], options: WinRateTests.options, batchSize: 1) { _, _ in .pass(true) }
        }
    }
}

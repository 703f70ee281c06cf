// BatchJobTests.swift: the batch runner on a deterministic fake engine: the output format, bad lines, retries,
// the budget, resuming after a crash (cut lines, finished ids, both files holding an id), determinism and the
// fatal errors. Kills of a real process are in TychoCLITests/BatchCommandTests.

import Foundation
import Testing
import TychoText
@testable import TychoInfer

@Suite struct BatchJobTests {
    typealias F = BatchTestFiles

    func options(_ dir: String, output: String = "out.jsonl") -> BatchJobOptions {
        var o = BatchJobOptions(input: dir + "/in.jsonl", output: dir + "/" + output)
        o.modelName = "fake"
        o.created = 1_700_000_000
        o.backoff = 0
        return o
    }

    @Test func writesResultsInTheOpenAIFormatInInputOrder() throws {
        let dir = try F.directory()
        try F.write([F.completion("a", "hello", extra: #", "max_tokens": 2"#),
                     F.chat("b", "hi", extra: #", "n": 2, "seed": 7"#),
                     F.completion("c", "x")], to: dir + "/in.jsonl")
        let engine = EchoEngine()
        let s = try BatchJob.run(options(dir), engine: engine)
        #expect(s.requests == 3 && s.done == 3 && s.failed == 0 && s.skipped == 0 && s.invalid == 0 && s.left == 0)
        #expect(s.complete && s.stoppedBy == nil)
        #expect(s.promptTokens == 5 + chatPromptLength("hi") + 1)
        #expect(s.completionTokens == 2 + 8 + 4)
        #expect(engine.calls == [["a", "b", "c"]])
        let lines = F.lines(dir + "/out.jsonl")
        #expect(lines.count == 3)
        #expect(try lines.map { try F.string($0, "custom_id") } == ["a", "b", "c"], "input order although the engine reported c, b, a")
        let ids = BatchIDs(jobID: s.jobID)
        let seedA = BatchHash.seed(0, "a") % 1000
        #expect(lines[0] == #"{"custom_id": "a", "error": null, "id": "\#(ids.lineID("a"))", "response": {"body": {"choices": [{"finish_reason": "length", "index": 0, "logprobs": null, "text": "hello #0/\#(seedA)"}], "created": 1700000000, "id": "\#(ids.completionID("a", .completions))", "model": "fake", "object": "text_completion", "usage": {"completion_tokens": 2, "prompt_tokens": 5, "total_tokens": 7}}, "request_id": "\#(ids.requestID("a"))", "status_code": 200}}"#)
        #expect(try F.string(lines[1], "response.body.object") == "chat.completion")
        let choices = try F.field(lines[1], "response.body.choices")
        guard case .array(let cs)? = choices else { Issue.record("no choices"); return }
        #expect(cs.count == 2)
        #expect(cs[1] == .object([("finish_reason", .string("stop")), ("index", .int(1)), ("logprobs", .null),
                                  ("message", .object([("content", .string(chatPrompt("hi") + " #1/7")), ("role", .string("assistant"))]))]))
        #expect(s.jobID.hasPrefix("batch_") && ids.lineID("a").hasPrefix("batch_req_") && ids.requestID("a").hasPrefix("req_"))
        #expect(ids.completionID("b", .chatCompletions).hasPrefix("chatcmpl-"))
        #expect(!F.exists(dir + "/out.errors.jsonl"), "no errors file without errors")
    }

    func chatPrompt(_ content: String) -> String {
        "<|im_start|>user\n\(content)<|im_end|>\n<|im_start|>assistant\n"
    }

    func chatPromptLength(_ content: String) -> Int { chatPrompt(content).count }

    @Test func reportsBadLinesWithTheirNumbersAndGoesOn() throws {
        let dir = try F.directory()
        try F.write([
            F.completion("a", "one"),                                              // 1
            #"{"custom_id": "x", "method": "POST", "url": "/v1/completions", "#,    // 2 bad JSON
            "   ",                                                                  // 3 blank: skipped
            #"{"method": "POST", "url": "/v1/completions", "body": {"prompt": "p"}}"#,  // 4 missing custom_id
            F.completion("a", "again"),                                            // 5 duplicate
            #"{"custom_id": "u", "method": "POST", "url": "/v1/edits", "body": {}}"#,  // 6 unknown url
            F.completion("t", "hot", extra: #", "temperature": 9"#),               // 7 bad body field
            F.completion("b", "two"),                                              // 8
            #"[1, 2]"#,                                                             // 9 not an object
        ], to: dir + "/in.jsonl")
        let s = try BatchJob.run(options(dir), engine: EchoEngine())
        #expect(s.done == 2 && s.requests == 2 && s.invalid == 6)
        #expect(s.invalidLines == [2, 4, 5, 6, 7, 9])
        let errors = F.lines(dir + "/out.errors.jsonl")
        #expect(errors.count == 6)
        let codes = try errors.map { try F.string($0, "error.code") ?? "?" }
        #expect(codes == ["invalid_json_line", "missing_custom_id", "duplicate_custom_id", "invalid_url", "invalid_value", "invalid_json_line"])
        #expect(try errors.map { try F.field($0, "error.line") } == [2, 4, 5, 6, 7, 9].map { JSONValue.int($0) })
        #expect(try F.string(errors[2], "error.message") == #"line 5: custom_id "a" is already used on line 1"#)
        #expect(try F.field(errors[0], "custom_id") == .null)
        #expect(try F.string(errors[4], "custom_id") == "t")
        #expect(try F.field(errors[4], "response") == .null)
        #expect(try F.string(errors[0], "error.message")?.hasPrefix("line 2: invalid JSON at column") == true)
        // A rerun reports the same lines in its summary, writes nothing twice and runs nothing.
        let before = (F.text(dir + "/out.jsonl"), F.text(dir + "/out.errors.jsonl"))
        let engine = EchoEngine()
        let again = try BatchJob.run(options(dir), engine: engine)
        #expect(again.invalid == 6 && again.skipped == 2 && again.done == 0 && engine.calls.isEmpty)
        #expect((F.text(dir + "/out.jsonl"), F.text(dir + "/out.errors.jsonl")) == before)
    }

    @Test func retriesWithBackoffThenReportsFailures() throws {
        let dir = try F.directory()
        try F.write(["a", "b", "c", "d"].map { F.completion($0, $0) }, to: dir + "/in.jsonl")
        let engine = EchoEngine()
        engine.failures = ["a": 2, "b": 5]
        engine.permanent = ["c"]
        var o = options(dir)
        o.backoff = 1
        o.maxBackoff = 1.5
        let clock = FakeClock()
        clock.install(&o)
        let s = try BatchJob.run(o, engine: engine)
        #expect(s.done == 2 && s.failed == 2 && s.retries == 4 && s.complete)
        #expect(clock.sleeps == [1, 1.5], "backoff 1 s, then 2 s capped at 1.5 s")
        #expect(engine.calls == [["a", "b", "c", "d"], ["a", "b"], ["a", "b"]])
        #expect(try F.lines(dir + "/out.jsonl").map { try F.string($0, "custom_id") } == ["a", "d"])
        let errors = F.lines(dir + "/out.errors.jsonl")
        #expect(try errors.map { try F.string($0, "custom_id") } == ["b", "c"])
        #expect(try F.string(errors[0], "error.code") == "server_error")
        #expect(try F.string(errors[0], "error.message") == "flaky (failed after 3 attempts)")
        #expect(try F.string(errors[1], "error.code") == "invalid_prompt")
        #expect(try F.string(errors[1], "error.message") == "refused (not retried: the error is permanent)")
        #expect(try F.field(errors[0], "error.line") == nil)
    }

    @Test func resultsAndFailuresAreWrittenTheMomentTheyFinish() throws {
        let dir = try F.directory()
        try F.write(["a", "b", "c", "d"].map { F.completion($0, $0) }, to: dir + "/in.jsonl")
        let engine = EchoEngine()
        engine.permanent = ["b"]
        var seen: [String: (Int, Int)] = [:]
        engine.beforeEach = { r in
            seen[r.customID] = (F.lines(dir + "/out.jsonl").count, F.lines(dir + "/out.errors.jsonl").count)
        }
        var o = options(dir)
        o.batchSize = 1
        _ = try BatchJob.run(o, engine: engine)
        #expect(seen["c"]! == (1, 1), "when c starts, a's result and b's failure are already on disk")
        #expect(seen["d"]! == (2, 1))
    }

    @Test func aRequestTheEngineNeverReportsIsRetriedThenFailed() throws {
        let dir = try F.directory()
        try F.write([F.completion("a", "a"), F.completion("b", "b")], to: dir + "/in.jsonl")
        let engine = EchoEngine()
        engine.forgotten = ["a"]
        var o = options(dir)
        o.maxAttempts = 2
        let s = try BatchJob.run(o, engine: engine)
        #expect(s.done == 1 && s.failed == 1 && s.retries == 1)
        #expect(try F.string(F.lines(dir + "/out.errors.jsonl")[0], "error.message") == "the engine did not report this request (failed after 2 attempts)")
    }

    @Test func tokenBudgetStopsSchedulingAndARerunContinues() throws {
        let dir = try F.directory()
        try F.write((0..<10).map { F.completion("r\($0)", "p") }, to: dir + "/in.jsonl")
        var o = options(dir)
        o.batchSize = 2
        o.maxTotalTokens = 12  // each request: 1 prompt + 4 completion tokens
        let s = try BatchJob.run(o, engine: EchoEngine())
        #expect(s.done == 4 && s.left == 6 && s.stoppedBy == "max_total_tokens" && !s.complete)
        #expect(s.totalTokens == 20)
        #expect(F.lines(dir + "/out.jsonl").count == 4)
        o.maxTotalTokens = nil
        let engine = EchoEngine()
        let rest = try BatchJob.run(o, engine: engine)
        #expect(rest.done == 6 && rest.skipped == 4 && rest.left == 0 && rest.complete)
        #expect(engine.calls.flatMap { $0 } == (4..<10).map { "r\($0)" })
        _ = try BatchJob.run(options(dir, output: "whole.jsonl"), engine: EchoEngine())
        #expect(F.text(dir + "/out.jsonl") == F.text(dir + "/whole.jsonl"))
    }

    @Test func timeBudgetStopsSchedulingAndARerunContinues() throws {
        let dir = try F.directory()
        try F.write((0..<10).map { F.completion("r\($0)", "p") }, to: dir + "/in.jsonl")
        var o = options(dir)
        o.batchSize = 1
        o.maxSeconds = 3.5
        let clock = FakeClock()
        clock.install(&o)
        let engine = EchoEngine()
        engine.beforeEach = { _ in clock.now += 1 }
        let s = try BatchJob.run(o, engine: engine)
        #expect(s.done == 4 && s.left == 6 && s.stoppedBy == "max_seconds")
        o.maxSeconds = nil
        let rest = try BatchJob.run(o, engine: engine)
        #expect(rest.done == 6 && rest.skipped == 4 && rest.complete)
        // A retry wait is cut short by the budget, and the waiting request is left for the rerun.
        let dir2 = try F.directory()
        try F.write([F.completion("a", "a")], to: dir2 + "/in.jsonl")
        var o2 = options(dir2)
        o2.backoff = 100
        o2.maxSeconds = 5
        let clock2 = FakeClock()
        clock2.install(&o2)
        let flaky = EchoEngine()
        flaky.failures = ["a": 1]
        let s2 = try BatchJob.run(o2, engine: flaky)
        #expect(s2.left == 1 && s2.failed == 0 && s2.stoppedBy == "max_seconds" && clock2.sleeps == [5])
    }

    @Test func resumesAfterACrashMidWrite() throws {
        let dir = try F.directory()
        try F.write((0..<6).map { F.completion("r\($0)", "p\($0)") }, to: dir + "/in.jsonl")
        _ = try BatchJob.run(options(dir, output: "whole.jsonl"), engine: EchoEngine())
        let whole = F.lines(dir + "/whole.jsonl")
        // What a killed job leaves: two results in finish order, and half of a third line.
        let crashed = whole[4] + "\n" + whole[1] + "\n" + whole[3].prefix(50)
        try crashed.write(toFile: dir + "/out.jsonl", atomically: true, encoding: .utf8)
        let engine = EchoEngine()
        let s = try BatchJob.run(options(dir), engine: engine)
        #expect(s.truncatedBytes == 50 && s.skipped == 2 && s.done == 4)
        #expect(engine.calls.flatMap { $0 } == ["r0", "r2", "r3", "r5"])
        #expect(F.text(dir + "/out.jsonl") == F.text(dir + "/whole.jsonl"), "every custom_id once, in input order")
        // A damaged line in the middle is dropped and its request runs again.
        try (whole[0] + "\n{\"custom_id\": \"r1\", garbage\n" + whole[2] + "\n").write(toFile: dir + "/out.jsonl", atomically: true, encoding: .utf8)
        let s2 = try BatchJob.run(options(dir), engine: EchoEngine())
        #expect(s2.skipped == 2 && s2.done == 4 && s2.truncatedBytes == 0)
        #expect(F.text(dir + "/out.jsonl") == F.text(dir + "/whole.jsonl"))
    }

    @Test func theOutputWinsOverTheErrorsFile() throws {
        let dir = try F.directory()
        try F.write(["a", "b", "c"].map { F.completion($0, $0) }, to: dir + "/in.jsonl")
        let first = try BatchJob.run(options(dir, output: "whole.jsonl"), engine: EchoEngine())
        let ids = BatchIDs(jobID: first.jobID)
        let whole = F.lines(dir + "/whole.jsonl")
        // Killed after a retried failure of "a" succeeded, before compaction: both files hold "a".
        try (whole[0] + "\n").write(toFile: dir + "/out.jsonl", atomically: true, encoding: .utf8)
        let failed = BatchRecord.failure(customID: "a", code: "server_error", message: "flaky (failed after 3 attempts)", ids: ids)
        let failedC = BatchRecord.failure(customID: "c", code: "server_error", message: "old", ids: ids)
        try ([failed, failedC].joined(separator: "\n") + "\n").write(toFile: dir + "/out.errors.jsonl", atomically: true, encoding: .utf8)
        let engine = EchoEngine()
        let s = try BatchJob.run(options(dir), engine: engine)
        #expect(s.skipped == 2 && s.done == 1 && engine.calls == [["b"]], "a has a result, c a failure: both finished")
        #expect(F.lines(dir + "/out.errors.jsonl") == [failedC], "a's stale failure is dropped")
        #expect(try F.lines(dir + "/out.jsonl").map { try F.string($0, "custom_id") } == ["a", "b"])
        // retry_failed runs c again; its success removes the failure.
        var o = options(dir)
        o.retryFailed = true
        let engine2 = EchoEngine()
        let s2 = try BatchJob.run(o, engine: engine2)
        #expect(s2.done == 1 && s2.skipped == 2 && engine2.calls == [["c"]])
        #expect(F.text(dir + "/out.errors.jsonl") == "")
        #expect(F.text(dir + "/out.jsonl") == F.text(dir + "/whole.jsonl"))
        // A failure retried and failing again keeps only its last report.
        try ([failedC].joined() + "\n").write(toFile: dir + "/out.errors.jsonl", atomically: true, encoding: .utf8)
        try (whole[0] + "\n" + whole[1] + "\n").write(toFile: dir + "/out.jsonl", atomically: true, encoding: .utf8)
        let engine3 = EchoEngine()
        engine3.permanent = ["c"]
        _ = try BatchJob.run(o, engine: engine3)
        let errs = F.lines(dir + "/out.errors.jsonl")
        #expect(errs.count == 1)
        #expect(try F.string(errs[0], "error.message") == "refused (not retried: the error is permanent)")
    }

    @Test func rerunsWriteTheSameBytes() throws {
        let dir = try F.directory()
        try F.write([F.completion("a", "a", extra: #", "temperature": 0.7"#), F.chat("b", "b"), "oops",
                     F.completion("c", "c")], to: dir + "/in.jsonl")
        let engine = EchoEngine()
        engine.permanent = ["c"]
        _ = try BatchJob.run(options(dir, output: "one.jsonl"), engine: engine)
        _ = try BatchJob.run(options(dir, output: "two.jsonl"), engine: engine)
        #expect(F.text(dir + "/one.jsonl") == F.text(dir + "/two.jsonl"))
        #expect(F.text(dir + "/one.errors.jsonl") == F.text(dir + "/two.errors.jsonl"))
        #expect(F.lines(dir + "/one.errors.jsonl").count == 2)
        // The job seed changes the derived seeds (and so the samples), not the ids.
        var o = options(dir, output: "three.jsonl")
        o.seed = 99
        _ = try BatchJob.run(o, engine: engine)
        let a1 = F.lines(dir + "/one.jsonl")[0], a3 = F.lines(dir + "/three.jsonl")[0]
        #expect(try F.string(a1, "id") == F.string(a3, "id"))
        #expect(a1 != a3)
        // created: SOURCE_DATE_EPOCH-free default is the input's modification time.
        #expect(BatchJob.defaultCreated(input: dir + "/in.jsonl") > 1_600_000_000)
    }

    @Test func fatalProblemsAreErrors() throws {
        let dir = try F.directory()
        #expect(throws: BatchJobError.self) { try BatchJob.run(options(dir), engine: EchoEngine()) }
        do {
            _ = try BatchJob.run(options(dir), engine: EchoEngine())
        } catch let e as BatchJobError {
            #expect(e.message.contains("in.jsonl: cannot read"))
        }
        try F.write([F.completion("a", "a")], to: dir + "/in.jsonl")
        var same = options(dir)
        same.output = dir + "/in.jsonl"
        #expect(throws: BatchJobError.self) { try BatchJob.run(same, engine: EchoEngine()) }
        var badErrors = options(dir)
        badErrors.errors = badErrors.output
        #expect(throws: BatchJobError.self) { try BatchJob.run(badErrors, engine: EchoEngine()) }
        var zero = options(dir)
        zero.maxAttempts = 0
        #expect(throws: BatchJobError.self) { try BatchJob.run(zero, engine: EchoEngine()) }
        // Another job holds the output: refused, and the file is left alone.
        let holder = try BatchFile(appending: dir + "/out.jsonl", lock: true)
        do {
            _ = try BatchJob.run(options(dir), engine: EchoEngine())
            Issue.record("a locked output was written")
        } catch let e as BatchJobError {
            #expect(e.message.contains("another batch job is writing"))
        }
        holder.close()
        #expect(try BatchJob.run(options(dir), engine: EchoEngine()).done == 1)
        #expect(BatchJobOptions.defaultErrorsPath(for: "x/out.jsonl") == "x/out.errors.jsonl")
        #expect(BatchJobOptions.defaultErrorsPath(for: "out.txt") == "out.txt.errors.jsonl")
    }

    @Test func progressIsReported() throws {
        let dir = try F.directory()
        try F.write((0..<3).map { F.completion("r\($0)", "p") }, to: dir + "/in.jsonl")
        var o = options(dir)
        var seen: [BatchProgress] = []
        o.progress = { seen.append($0) }
        _ = try BatchJob.run(o, engine: EchoEngine())
        #expect(seen.map(\.finished) == [0, 1, 2, 3])
        #expect(seen.allSatisfy { $0.total == 3 })
        #expect(seen.last?.completionTokens == 12)
    }

    @Test func faultHookParsesAndInjects() throws {
        #expect(try BatchFaultEngine.parseFaults("a=2, b c=1") == ["a": 2, "b c": 1])
        #expect(throws: BatchJobError.self) { try BatchFaultEngine.parseFaults("a") }
        let dir = try F.directory()
        try F.write([F.completion("a", "a"), F.completion("b", "b")], to: dir + "/in.jsonl")
        let hooked = BatchFaultEngine(wrapping: EchoEngine(), failures: ["a": 1, "b": 9])
        let s = try BatchJob.run(options(dir), engine: hooked)
        #expect(s.done == 1 && s.failed == 1 && s.retries == 3)
    }
}

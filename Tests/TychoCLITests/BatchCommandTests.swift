// BatchCommandTests.swift: `tycho batch` on the tiny GPT-2 fixture: a whole job, bad lines, failing requests
// (through the TYCHO_BATCH_TEST_FAULTS hook), the budget, fatal errors and exit codes, and SIGKILL at random
// moments followed by reruns, which must end with the same bytes as an uninterrupted run.

import Foundation
import Testing

@Suite struct BatchCommandTests {
    static let gpt2 = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/models/gpt2").path

    func directory() throws -> String {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("tycho-batch-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url.path
    }

    func completion(_ id: String, _ prompt: String, _ extra: String = "") -> String {
        #"{"custom_id": "\#(id)", "method": "POST", "url": "/v1/completions", "body": {"prompt": "\#(prompt)", "max_tokens": 6\#(extra)}}"#
    }

    func write(_ lines: [String], _ path: String) throws {
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
    }

    func read(_ path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }

    func lines(_ path: String) -> [String] { read(path).split(separator: "\n").map(String.init) }

    func customIDs(_ path: String) -> [String] {
        lines(path).compactMap { line in
            guard let d = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { return nil }
            return d["custom_id"] as? String
        }
    }

    func batch(_ dir: String, _ extra: [String] = [], output: String = "out.jsonl",
               env: [String: String] = [:]) throws -> TychoProcess.Result {
        try TychoProcess.run(["batch", dir + "/in.jsonl", "--model", BatchCommandTests.gpt2, "--output", dir + "/" + output,
                              "--backoff", "0"] + extra, environment: env)
    }

    @Test func runsAJobAndResumesIt() throws {
        let dir = try directory()
        try write([completion("a", "Licensed under", #", "temperature": 0"#),
                   #"{"custom_id": "b", "method": "POST", "url": "/v1/chat/completions", "body": {"messages": [{"role": "user", "content": "Hi"}], "max_completion_tokens": 4, "n": 2}}"#,
                   completion("c", "x", #", "stop": ["e"], "seed": 3"#)], dir + "/in.jsonl")
        let r = try batch(dir)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("batch: 3 done, 0 failed, 0 skipped (already finished), 0 invalid lines, 0 left"), "\(r.stdout)")
        #expect(r.stdout.contains("tokens/s"))
        #expect(customIDs(dir + "/out.jsonl") == ["a", "b", "c"])
        let first = try JSONSerialization.jsonObject(with: Data(lines(dir + "/out.jsonl")[1].utf8)) as! [String: Any]
        let response = first["response"] as! [String: Any]
        let body = response["body"] as! [String: Any]
        #expect(response["status_code"] as? Int == 200 && body["object"] as? String == "chat.completion")
        #expect(body["model"] as? String == "gpt2" && (body["choices"] as! [Any]).count == 2)
        #expect(!FileManager.default.fileExists(atPath: dir + "/out.errors.jsonl"))
        let before = read(dir + "/out.jsonl")
        let again = try batch(dir)
        #expect(again.status == 0 && again.stdout.contains("0 done, 0 failed, 3 skipped"), "\(again.stdout)")
        #expect(read(dir + "/out.jsonl") == before)
        // A second output from scratch is the same bytes (ids, created and samples are deterministic).
        #expect(try batch(dir, output: "two.jsonl").status == 0)
        #expect(read(dir + "/two.jsonl") == before)
    }

    @Test func reportsBadLinesAndFailingRequests() throws {
        let dir = try directory()
        try write([completion("a", "one"), "{broken", #"{"method": "POST", "url": "/v1/completions", "body": {"prompt": "p"}}"#,
                   completion("a", "dup"), #"{"custom_id": "u", "method": "POST", "url": "/v1/embeddings", "body": {}}"#,
                   completion("t", "hot", #", "temperature": 5"#), completion("flaky", "f"), completion("dead", "d"),
                   completion("long", String(repeating: "word ", count: 80))], dir + "/in.jsonl")
        let r = try batch(dir, ["--errors", dir + "/bad.jsonl", "--max-attempts", "3"],
                          env: ["TYCHO_BATCH_TEST_FAULTS": "flaky=2,dead=5"])
        #expect(r.status == 0, "completed with failures: exit 0 (\(r.stderr))")
        #expect(r.stdout.contains("batch: 2 done, 2 failed, 0 skipped (already finished), 5 invalid lines (lines 2, 3, 4, 5, 6), 0 left"), "\(r.stdout)")
        #expect(r.stdout.contains("retries: 4") && r.stdout.contains("errors: \(dir)/bad.jsonl"))
        #expect(customIDs(dir + "/out.jsonl") == ["a", "flaky"])
        let errors = lines(dir + "/bad.jsonl").map { try! JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        #expect(errors.count == 7)
        let codes = errors.map { ($0["error"] as! [String: Any])["code"] as! String }
        #expect(codes == ["invalid_json_line", "missing_custom_id", "duplicate_custom_id", "invalid_url", "invalid_value",
                          "server_error", "context_length_exceeded"])
        #expect(errors.prefix(5).map { ($0["error"] as! [String: Any])["line"] as? Int } == [2, 3, 4, 5, 6])
        #expect((errors[5]["error"] as! [String: Any])["message"] as? String == "injected failure (test hook) (failed after 3 attempts)")
        #expect(errors[5]["custom_id"] as? String == "dead" && errors[5]["response"] is NSNull)
        #expect(((errors[6]["error"] as! [String: Any])["message"] as! String).contains("not retried"))
    }

    @Test func theBudgetLeavesRequestsForTheRerun() throws {
        let dir = try directory()
        try write((0..<8).map { completion("r\($0)", "p\($0)") }, dir + "/in.jsonl")
        let stopped = try batch(dir, ["--max-total-tokens", "1", "--batch-size", "2"])
        #expect(stopped.status == 3, "\(stopped.stdout) \(stopped.stderr)")
        #expect(stopped.stdout.contains("stopped by --max-total-tokens: 6 requests left; rerun the same command to continue"), "\(stopped.stdout)")
        #expect(customIDs(dir + "/out.jsonl").count == 2)
        let none = try batch(dir, ["--max-seconds", "0"])
        #expect(none.status == 3 && none.stdout.contains("0 done") && none.stdout.contains("6 left"), "\(none.stdout)")
        let slow = try batch(dir, ["--max-seconds", "0.3", "--batch-size", "1"], env: ["TYCHO_BATCH_TEST_DELAY": "0.2"])
        #expect(slow.status == 3 && slow.stdout.contains("stopped by --max-seconds"), "\(slow.stdout)")
        let rest = try batch(dir)
        #expect(rest.status == 0 && rest.stdout.contains("0 left"), "\(rest.stdout)")
        #expect(try batch(dir, output: "whole.jsonl").status == 0)
        #expect(read(dir + "/out.jsonl") == read(dir + "/whole.jsonl"))
        #expect(customIDs(dir + "/out.jsonl") == (0..<8).map { "r\($0)" })
    }

    @Test func fatalErrorsExitWithOne() throws {
        let dir = try directory()
        let missing = try batch(dir)
        #expect(missing.status == 1 && missing.stderr.contains("tycho: batch: \(dir)/in.jsonl: cannot read"), "\(missing.stderr)")
        try write([completion("a", "a")], dir + "/in.jsonl")
        let badModel = try TychoProcess.run(["batch", dir + "/in.jsonl", "--model", dir, "--output", dir + "/o.jsonl"])
        #expect(badModel.status == 1 && badModel.stderr.contains("config.json"), "\(badModel.stderr)")
        let badTokenizer = try batch(dir, ["--tokenizer", dir + "/nope.json"])
        #expect(badTokenizer.status == 1 && badTokenizer.stderr.contains("nope.json"), "\(badTokenizer.stderr)")
        let badTemplate = try batch(dir, ["--chat-template", "jinja"])
        #expect(badTemplate.status != 0 && badTemplate.stderr.contains("--chat-template must be auto"), "\(badTemplate.stderr)")
        let noOutput = try TychoProcess.run(["batch", dir + "/in.jsonl", "--model", BatchCommandTests.gpt2])
        #expect(noOutput.status != 0 && noOutput.stderr.contains("--output"))
        let help = try TychoProcess.run(["help"])
        #expect(help.stdout.contains("tycho batch INPUT --model DIR --output OUT"))
    }

    /// Starts a job, kills it with SIGKILL after `after` seconds (if it is still running), and waits.
    func killAfter(_ after: Double, _ arguments: [String], env: [String: String]) throws -> Bool {
        let p = Process()
        p.executableURL = TychoProcess.executable
        p.arguments = arguments
        p.environment = ProcessInfo.processInfo.environment.merging(env) { $1 }
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        usleep(useconds_t(after * 1e6))
        let killed = p.isRunning && kill(p.processIdentifier, SIGKILL) == 0
        p.waitUntilExit()
        return killed
    }

    @Test func sigkillAtRandomMomentsLosesAndDuplicatesNothing() throws {
        let dir = try directory()
        var input = (0..<40).map { completion("r\($0)", "prompt \($0)", $0 % 3 == 0 ? #", "temperature": 0.9, "n": 2"# : "") }
        input.insert("garbage line", at: 7)
        input.insert(completion("r3", "duplicate"), at: 12)
        try write(input, dir + "/in.jsonl")
        // About 2 s of work; each killed run does at most 0.4 s of it, so most of the six kills land mid-run.
        let env = ["TYCHO_BATCH_TEST_DELAY": "0.05", "TYCHO_BATCH_TEST_FAULTS": "r5=1,r9=9"]
        let common = ["batch", dir + "/in.jsonl", "--model", BatchCommandTests.gpt2, "--backoff", "0", "--batch-size", "3"]
        // The uninterrupted run.
        let whole = try TychoProcess.run(common + ["--output", dir + "/whole.jsonl"], environment: env)
        #expect(whole.status == 0, "\(whole.stderr)")
        // Killed at random moments, rerun each time.
        var moments: [Double] = []
        var kills = 0
        for _ in 0..<6 {
            let t = Double.random(in: 0.05...0.4)
            moments.append(t)
            if try killAfter(t, common + ["--output", dir + "/out.jsonl"], env: env) { kills += 1 }
            let ids = customIDs(dir + "/out.jsonl")
            #expect(ids.count == Set(ids).count, "a duplicate after a kill at \(t) s: \(ids)")
        }
        // A power cut in the middle of a write leaves part of a line: the rerun cuts it and redoes that request.
        let partial = lines(dir + "/whole.jsonl")[38].prefix(60)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: dir + "/out.jsonl"))
        handle.seekToEndOfFile()
        handle.write(Data(partial.utf8))
        try handle.close()
        let last = try TychoProcess.run(common + ["--output", dir + "/out.jsonl"], environment: env)
        #expect(last.status == 0, "\(last.stderr)")
        #expect(last.stdout.contains("resumed: cut an incomplete last line (60 bytes)"), "\(last.stdout)")
        #expect(kills >= 4, "the job should be killed mid-run several times (moments \(moments))")
        let ids = customIDs(dir + "/out.jsonl")
        #expect(ids.count == 39 && Set(ids).count == 39, "every custom_id but the failing r9 exactly once")
        #expect(read(dir + "/out.jsonl") == read(dir + "/whole.jsonl"), "kills at \(moments)")
        #expect(read(dir + "/out.errors.jsonl") == read(dir + "/whole.errors.jsonl"), "kills at \(moments)")
        #expect(lines(dir + "/out.errors.jsonl").count == 3, "the garbage line, the duplicate, and r9")
    }
}

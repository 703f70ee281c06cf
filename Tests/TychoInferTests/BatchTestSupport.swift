// BatchTestSupport.swift: temporary files, input lines, a fake clock and a deterministic fake engine for the
// batch job tests.

import Foundation
import TychoText
@testable import TychoInfer

enum BatchTestFiles {
    /// A new empty directory under the temporary directory.
    static func directory() throws -> String {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("tycho-batch-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url.path
    }

    static func completion(_ id: String, _ prompt: String, extra: String = "") -> String {
        #"{"custom_id": "\#(id)", "method": "POST", "url": "/v1/completions", "body": {"model": "m", "prompt": "\#(prompt)"\#(extra)}}"#
    }

    static func chat(_ id: String, _ content: String, extra: String = "") -> String {
        #"{"custom_id": "\#(id)", "method": "POST", "url": "/v1/chat/completions", "body": {"messages": [{"role": "user", "content": "\#(content)"}]\#(extra)}}"#
    }

    static func write(_ lines: [String], to path: String) throws {
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
    }

    static func text(_ path: String) -> String {
        (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
    }

    static func lines(_ path: String) -> [String] {
        text(path).split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
    }

    static func exists(_ path: String) -> Bool { FileManager.default.fileExists(atPath: path) }

    /// A field of a JSON line by a dotted path (`response.body.usage.total_tokens`).
    static func field(_ line: String, _ path: String) throws -> JSONValue? {
        var v: JSONValue? = try JSONParser.parse(line)
        for key in path.split(separator: ".") {
            guard case .object(let kv)? = v else { return nil }
            v = kv.first { $0.0 == key }?.1
        }
        return v
    }

    static func string(_ line: String, _ path: String) throws -> String? {
        if case .string(let s)? = try field(line, path) { return s }
        return nil
    }
}

/// A clock that only moves when told (or when the job sleeps).
final class FakeClock {
    var now = 0.0
    var sleeps: [Double] = []

    func install(_ o: inout BatchJobOptions) {
        o.clock = { [unowned self] in self.now }
        o.sleep = { [unowned self] s in self.sleeps.append(s); self.now += s }
    }
}

/// A deterministic engine: choice k of a request is `<prompt> #k/<seed mod 1000>`, 4 completion tokens (fewer
/// with a smaller max_tokens, then finish "length"), one prompt token per character. It reports a call's
/// requests in reverse order, so the job's reordering is exercised.
final class EchoEngine: BatchEngine {
    /// custom_id -> retryable failures still to give.
    var failures: [String: Int] = [:]
    /// custom_ids that fail permanently.
    var permanent: Set<String> = []
    /// custom_ids the engine never reports.
    var forgotten: Set<String> = []
    /// custom_ids of each call.
    var calls: [[String]] = []
    /// Runs before each request is reported.
    var beforeEach: ((BatchRequest) -> Void)? = nil

    func run(_ requests: [BatchRequest], onFinish: (Int, Result<BatchResponse, Error>) -> Void) {
        calls.append(requests.map(\.customID))
        for i in requests.indices.reversed() {
            let r = requests[i]
            beforeEach?(r)
            if forgotten.contains(r.customID) { continue }
            if permanent.contains(r.customID) {
                onFinish(i, .failure(BatchRequestError(code: "invalid_prompt", message: "refused", retryable: false)))
                continue
            }
            if let n = failures[r.customID], n > 0 {
                failures[r.customID] = n - 1
                onFinish(i, .failure(BatchRequestError(code: "server_error", message: "flaky", retryable: true)))
                continue
            }
            onFinish(i, .success(EchoEngine.response(r)))
        }
    }

    static func response(_ r: BatchRequest) -> BatchResponse {
        let prompt: String
        switch r.prompt {
        case .text(let s): prompt = s
        case .tokens(let t): prompt = t.map(String.init).joined(separator: ",")
        }
        let tokens = Swift.min(4, r.maxTokens ?? 4)
        let choices = (0..<r.n).map { k in
            BatchChoice(text: "\(prompt) #\(k)/\(r.seed % 1000)", finishReason: tokens < 4 ? .length : .stop, completionTokens: tokens)
        }
        return BatchResponse(choices: choices, promptTokens: prompt.count)
    }
}

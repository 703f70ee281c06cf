// BatchRecord.swift: the lines a batch job writes, in the OpenAI Batch API output format, and the
// deterministic identifiers in them.
//
// Output file, one line per finished request:
//   {"custom_id": ..., "error": null, "id": "batch_req_...", "response": {"body": {"choices": [...],
//    "created": ..., "id": "cmpl-..." | "chatcmpl-...", "model": ..., "object": "text_completion" |
//    "chat.completion", "usage": {"completion_tokens", "prompt_tokens", "total_tokens"}}, "request_id":
//    "req_...", "status_code": 200}}
// Errors file, one line per failed request or invalid input line:
//   {"custom_id": ... | null, "error": {"code": ..., "message": ...}, "id": "batch_req_...", "response": null}
// An invalid input line's error also carries `line` (its 1-based number), as the `errors.data` entries of an
// OpenAI batch object do; a request's failure does not (its message says how many attempts were made).
//
// Keys are sorted (`JSONValue.line`), and every id is a hash of the job id and the custom_id (or the line
// number), and `created` is the job's, so rerunning a job writes the same bytes.

import TychoText

/// Small, stable hashes (FNV-1a 64 finished with splitmix64's mixer); not cryptographic.
public enum BatchHash {
    static let fnvPrime: UInt64 = 0x0000_0100_0000_01B3
    static let fnvOffset: UInt64 = 0xCBF2_9CE4_8422_2325

    /// splitmix64's finalizer: every input bit moves every output bit.
    public static func mix(_ a: UInt64, _ b: UInt64) -> UInt64 {
        var z = a &+ 0x9E37_79B9_7F4A_7C15 &* (b &+ 1)
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    static func fnv(_ bytes: some Swift.Sequence<UInt8>, basis: UInt64 = fnvOffset) -> UInt64 {
        var h = basis
        for b in bytes { h = (h ^ UInt64(b)) &* fnvPrime }
        return h
    }

    /// A request's default seed: the job seed mixed with the custom_id.
    public static func seed(_ jobSeed: UInt64, _ customID: String) -> UInt64 { mix(jobSeed, fnv(customID.utf8)) }

    /// 2 x 64 bits of `text` under `salt`, as 32 lower-case hex digits.
    static func hex(_ text: String, salt: UInt64) -> String {
        let h = fnv(text.utf8)
        return hex64(mix(h, salt)) + hex64(mix(h, salt ^ 0xA5A5_A5A5_A5A5_A5A5))
    }

    static func hex64(_ v: UInt64) -> String {
        let s = String(v, radix: 16)
        return String(repeating: "0", count: 16 - s.count) + s
    }

    /// FNV-1a of a file's bytes, read in chunks; nil when it cannot be read.
    static func file(_ path: String) -> UInt64? {
        guard let f = BatchFile(readOnly: path) else { return nil }
        var h = fnvOffset
        var failed = false
        f.chunks { chunk in h = fnv(chunk, basis: h) } onError: { failed = true }
        return failed ? nil : h
    }
}

/// The identifiers of one job. `jobID` is `batch_` and a hash of the input file's bytes.
public struct BatchIDs {
    public let jobID: String
    let salt: UInt64

    public init(jobID: String) {
        self.jobID = jobID
        self.salt = BatchHash.fnv(jobID.utf8)
    }

    /// The output line's `id`.
    public func lineID(_ customID: String) -> String { "batch_req_" + BatchHash.hex("c:" + customID, salt: salt).prefix(24) }
    /// The `id` of an invalid input line's report.
    public func invalidLineID(_ line: Int) -> String { "batch_req_" + BatchHash.hex("l:\(line)", salt: salt).prefix(24) }
    /// `response.request_id`.
    public func requestID(_ customID: String) -> String { "req_" + BatchHash.hex("r:" + customID, salt: salt) }
    /// `response.body.id`.
    public func completionID(_ customID: String, _ endpoint: BatchEndpoint) -> String {
        (endpoint == .completions ? "cmpl-" : "chatcmpl-") + BatchHash.hex("b:" + customID, salt: salt).prefix(24)
    }
}

public enum BatchRecord {
    /// The output line of a finished request (no newline).
    public static func success(_ request: BatchRequest, _ response: BatchResponse, ids: BatchIDs, model: String,
                               created: Int) -> String {
        let choices: [JSONValue] = response.choices.enumerated().map { k, c in
            switch request.endpoint {
            case .completions:
                return .object([("text", .string(c.text)), ("index", .int(k)), ("logprobs", .null),
                                ("finish_reason", .string(c.finishReason.rawValue))])
            case .chatCompletions:
                return .object([("index", .int(k)),
                                ("message", .object([("role", .string("assistant")), ("content", .string(c.text))])),
                                ("logprobs", .null), ("finish_reason", .string(c.finishReason.rawValue))])
            }
        }
        var usage: [(String, JSONValue)] = [
            ("prompt_tokens", .int(response.promptTokens)),
            ("completion_tokens", .int(response.completionTokens)),
            ("total_tokens", .int(response.promptTokens + response.completionTokens)),
        ]
        if response.acceptedPredictionTokens != nil || response.rejectedPredictionTokens != nil {
            usage.append(("completion_tokens_details", .object([
                ("accepted_prediction_tokens", .int(response.acceptedPredictionTokens ?? 0)),
                ("rejected_prediction_tokens", .int(response.rejectedPredictionTokens ?? 0)),
            ])))
        }
        let body: JSONValue = .object([
            ("id", .string(ids.completionID(request.customID, request.endpoint))),
            ("object", .string(request.endpoint.object)),
            ("created", .int(created)),
            ("model", .string(model)),
            ("choices", .array(choices)),
            ("usage", .object(usage)),
        ])
        return JSONValue.object([
            ("id", .string(ids.lineID(request.customID))),
            ("custom_id", .string(request.customID)),
            ("response", .object([("status_code", .int(200)), ("request_id", .string(ids.requestID(request.customID))),
                                  ("body", body)])),
            ("error", .null),
        ]).line
    }

    /// The errors-file line of a request that failed for good.
    public static func failure(customID: String, code: String, message: String, ids: BatchIDs) -> String {
        JSONValue.object([
            ("id", .string(ids.lineID(customID))),
            ("custom_id", .string(customID)),
            ("response", .null),
            ("error", .object([("code", .string(code)), ("message", .string(message))])),
        ]).line
    }

    /// The errors-file line of an invalid input line.
    public static func invalid(_ p: BatchInputProblem, ids: BatchIDs) -> String {
        JSONValue.object([
            ("id", .string(ids.invalidLineID(p.line))),
            ("custom_id", p.customID.map { .string($0) } ?? .null),
            ("response", .null),
            ("error", .object([("code", .string(p.code)), ("message", .string("line \(p.line): \(p.message)")),
                               ("line", .int(p.line))])),
        ]).line
    }

    /// What a line already in an output or errors file says: its custom_id, whether it is a result
    /// (`error` null) and, for an invalid-line report, the line number. nil for a line that is not a record.
    static func read(_ bytes: UnsafeRawBufferPointer) -> (customID: String?, isResult: Bool, line: Int?)? {
        guard let v = try? JSONParser.parse(bytes.bindMemory(to: UInt8.self)), case .object(let kv) = v else { return nil }
        let d = Dictionary(kv, uniquingKeysWith: { a, _ in a })
        var customID: String? = nil
        if case .string(let s)? = d["custom_id"] { customID = s }
        switch d["error"] {
        case .null?, nil:
            guard customID != nil, case .object? = d["response"] else { return nil }
            return (customID, true, nil)
        case .object(let e)?:
            let ed = Dictionary(e, uniquingKeysWith: { a, _ in a })
            if case .int(let line)? = ed["line"] { return (customID, false, line) }
            guard customID != nil else { return nil }
            return (customID, false, nil)
        default:
            return nil
        }
    }
}

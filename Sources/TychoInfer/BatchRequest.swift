// BatchRequest.swift: one line of an OpenAI Batch API input file, checked and turned into a request that an
// engine can run.
//
// A line is `{"custom_id": "req-1", "method": "POST", "url": "/v1/completions" | "/v1/chat/completions",
// "body": {...}}`. The body takes `prompt` (completions: a string or a list of token ids, or a list holding one
// of those) or `messages` (chat: role/content objects, rendered to a prompt by a `BatchChatTemplate`), and
// `model` (accepted, not checked), `max_tokens` / `max_completion_tokens`, `temperature`, `top_p`, `n`, `stop`,
// `seed` and `prediction`. Harmless bookkeeping fields (`user`, `metadata`, `store`, `service_tier`) are
// ignored; switches that must stay off here (`stream`, `logprobs`, `echo`, the penalties) are accepted only off;
// every other body field is an error rather than a silently ignored setting (other top-level keys beside
// custom_id, method, url and body are ignored). Checking needs no model: token ids
// are checked against the vocabulary by the engine. Duplicate custom_ids are the job's business (it sees every
// line).

import TychoText

/// The two endpoints a batch line may name.
public enum BatchEndpoint: String, Sendable {
    case completions = "/v1/completions"
    case chatCompletions = "/v1/chat/completions"

    /// The `object` of a response body.
    public var object: String { self == .completions ? "text_completion" : "chat.completion" }
}

/// What the engine is asked to continue: text (tokenized by the engine) or token ids (0-based HF values).
public enum BatchPrompt: Equatable, Sendable {
    case text(String)
    case tokens([Int])
}

/// One chat message, its content already flattened to text.
public struct BatchMessage: Equatable, Sendable {
    public var role: String
    public var content: String
    public init(role: String, content: String) { self.role = role; self.content = content }
}

/// A checked request, ready for an engine.
public struct BatchRequest: Sendable {
    public var customID: String
    /// The 1-based line of the input file.
    public var line: Int
    public var endpoint: BatchEndpoint
    /// For chat, the messages rendered by the job's template.
    public var prompt: BatchPrompt
    /// Whether the tokenizer adds its post-processor tokens (a BOS) to a text prompt: true for completions,
    /// the template's choice for chat (templates write their own BOS).
    public var addSpecialTokens: Bool
    /// The chat messages as given (empty for completions).
    public var messages: [BatchMessage]
    /// nil: until a stop, EOS or the model's context.
    public var maxTokens: Int?
    /// 0 is greedy.
    public var temperature: Double
    public var topP: Double
    /// Samples (choices) to generate.
    public var n: Int
    /// Stop strings: the request's, then the chat template's end-of-turn marker.
    public var stop: [String]
    /// The request's seed, or one derived from the job seed and custom_id, so a rerun samples the same.
    public var seed: UInt64
    /// `body.model`, as given.
    public var model: String?
    /// `body.prediction.content` (Predicted Outputs), for engines that use it.
    public var prediction: String?

    public init(customID: String, line: Int = 0, endpoint: BatchEndpoint = .completions, prompt: BatchPrompt,
                addSpecialTokens: Bool = true, messages: [BatchMessage] = [], maxTokens: Int? = 16,
                temperature: Double = 1, topP: Double = 1, n: Int = 1, stop: [String] = [], seed: UInt64 = 0,
                model: String? = nil, prediction: String? = nil) {
        self.customID = customID; self.line = line; self.endpoint = endpoint; self.prompt = prompt
        self.addSpecialTokens = addSpecialTokens; self.messages = messages; self.maxTokens = maxTokens
        self.temperature = temperature; self.topP = topP; self.n = n; self.stop = stop; self.seed = seed
        self.model = model; self.prediction = prediction
    }
}

/// Why an input line cannot run. `code` follows the OpenAI error codes' style.
public struct BatchInputProblem: Error, Equatable, CustomStringConvertible {
    public let line: Int
    /// The line's custom_id when it has a usable one.
    public let customID: String?
    public let code: String
    public let message: String

    public init(line: Int, customID: String?, code: String, message: String) {
        self.line = line; self.customID = customID; self.code = code; self.message = message
    }

    public var description: String { "line \(line): \(message)" }
}

public enum BatchRequestParser {
    /// Completions default to 16 new tokens (OpenAI's default); chat runs to a stop, EOS or the context.
    public static let defaultCompletionMaxTokens = 16
    public static let maxChoices = 128
    public static let maxStops = 4

    static let ignoredBodyFields: Set<String> = ["model", "user", "metadata", "store", "service_tier"]
    static let offSwitches: Set<String> = ["stream", "logprobs", "echo"]
    static let zeroPenalties: Set<String> = ["frequency_penalty", "presence_penalty"]
    static let commonFields: Set<String> = ["max_tokens", "max_completion_tokens", "temperature", "top_p", "n",
                                            "stop", "seed", "prediction", "stream_options"]
    static let chatRoles: Set<String> = ["system", "developer", "user", "assistant"]

    /// Checks one input row (a JSON object, line `line`) and builds its request.
    /// - Parameters:
    ///   - template: renders chat messages to a prompt.
    ///   - jobSeed: mixed with the custom_id to seed requests that give no `seed`.
    public static func parse(_ row: JSONValue, line: Int, template: BatchChatTemplate,
                             jobSeed: UInt64) -> Result<BatchRequest, BatchInputProblem> {
        var customID: String? = nil
        func problem(_ code: String, _ message: String) -> Result<BatchRequest, BatchInputProblem> {
            .failure(BatchInputProblem(line: line, customID: customID, code: code, message: message))
        }
        guard case .object(let top) = row else { return problem("invalid_json_line", "a line must be a JSON object") }
        let fields = Dictionary(top, uniquingKeysWith: { a, _ in a })
        switch fields["custom_id"] {
        case nil, .null?: return problem("missing_custom_id", "missing custom_id")
        case .string(let s)?:
            guard !s.isEmpty else { return problem("missing_custom_id", "custom_id is empty") }
            customID = s
        case let v?: return problem("invalid_value", "custom_id must be a string, got \(kind(v))")
        }
        switch fields["method"] {
        case .string("POST")?: break
        case nil, .null?: return problem("invalid_method", "missing method (must be \"POST\")")
        case let v?: return problem("invalid_method", "method must be \"POST\", got \(brief(v))")
        }
        let endpoint: BatchEndpoint
        switch fields["url"] {
        case .string(let u)?:
            guard let e = BatchEndpoint(rawValue: u) else {
                return problem("invalid_url", "url must be /v1/completions or /v1/chat/completions, got \(brief(.string(u)))")
            }
            endpoint = e
        case nil, .null?: return problem("invalid_url", "missing url (/v1/completions or /v1/chat/completions)")
        case let v?: return problem("invalid_url", "url must be a string, got \(kind(v))")
        }
        guard case .object(let bodyPairs)? = fields["body"] else {
            return problem("missing_required_parameter", fields["body"] == nil ? "missing body" : "body must be a JSON object, got \(kind(fields["body"]!))")
        }
        do {
            let request = try parseBody(bodyPairs, customID: customID!, line: line, endpoint: endpoint,
                                        template: template, jobSeed: jobSeed)
            return .success(request)
        } catch let e as BodyProblem {
            return problem(e.code, e.message)
        } catch {
            return problem("invalid_value", "\(error)")
        }
    }

    struct BodyProblem: Error {
        let code: String
        let message: String
        static func invalid(_ m: String) -> BodyProblem { BodyProblem(code: "invalid_value", message: m) }
    }

    static func parseBody(_ pairs: [(String, JSONValue)], customID: String, line: Int, endpoint: BatchEndpoint,
                          template: BatchChatTemplate, jobSeed: UInt64) throws -> BatchRequest {
        let body = Dictionary(pairs, uniquingKeysWith: { a, _ in a })
        let promptField = endpoint == .completions ? "prompt" : "messages"
        let wrongField = endpoint == .completions ? "messages" : "prompt"
        for (key, value) in pairs {
            if key == promptField || ignoredBodyFields.contains(key) || commonFields.contains(key) { continue }
            if key == wrongField {
                throw BodyProblem(code: "unsupported_parameter",
                                  message: "body.\(key) is for \(endpoint == .completions ? "/v1/chat/completions" : "/v1/completions"); \(endpoint.rawValue) takes body.\(promptField)")
            }
            if offSwitches.contains(key) {
                switch value {
                case .null, .bool(false): continue
                default: throw BodyProblem(code: "unsupported_parameter", message: "body.\(key) is not supported (only false or null)")
                }
            }
            if zeroPenalties.contains(key) {
                switch value {
                case .null: continue
                case .int(0): continue
                case .double(let d) where d == 0: continue
                default: throw BodyProblem(code: "unsupported_parameter", message: "body.\(key) is not supported (only 0 or null)")
                }
            }
            throw BodyProblem(code: "unsupported_parameter", message: "body.\(key) is not a supported field")
        }
        if let so = body["stream_options"], so != .null {
            throw BodyProblem(code: "unsupported_parameter", message: "body.stream_options is not supported (batch requests do not stream)")
        }
        var model: String? = nil
        switch body["model"] {
        case nil, .null?: break
        case .string(let s)?: model = s
        case let v?: throw BodyProblem.invalid("body.model must be a string, got \(kind(v))")
        }

        // The prompt.
        var prompt: BatchPrompt
        var messages: [BatchMessage] = []
        var addSpecial = true
        var stops: [String] = []
        switch endpoint {
        case .completions:
            guard let p = body["prompt"], p != .null else {
                throw BodyProblem(code: "missing_required_parameter", message: "missing body.prompt")
            }
            prompt = try parsePrompt(p)
        case .chatCompletions:
            guard let m = body["messages"], m != .null else {
                throw BodyProblem(code: "missing_required_parameter", message: "missing body.messages")
            }
            messages = try parseMessages(m)
            do {
                prompt = .text(try template.render(messages))
            } catch {
                throw BodyProblem.invalid("the \(template.name) chat template cannot render body.messages: \(error)")
            }
            addSpecial = template.addSpecialTokens
        }

        // Sampling and length.
        let maxTokens = try positiveInt(body["max_tokens"], "max_tokens")
        let maxCompletion = try positiveInt(body["max_completion_tokens"], "max_completion_tokens")
        if let a = maxTokens, let b = maxCompletion, a != b {
            throw BodyProblem.invalid("body.max_tokens (\(a)) and body.max_completion_tokens (\(b)) disagree; give one")
        }
        var limit = maxCompletion ?? maxTokens
        if limit == nil && endpoint == .completions { limit = defaultCompletionMaxTokens }
        let temperature = try number(body["temperature"], "temperature", default: 1)
        guard temperature >= 0 && temperature <= 2 else {
            throw BodyProblem.invalid("body.temperature must be in 0...2, got \(format(temperature))")
        }
        let topP = try number(body["top_p"], "top_p", default: 1)
        guard topP > 0 && topP <= 1 else {
            throw BodyProblem.invalid("body.top_p must be in (0, 1], got \(format(topP))")
        }
        let n = try positiveInt(body["n"], "n") ?? 1
        guard n <= maxChoices else { throw BodyProblem.invalid("body.n must be at most \(maxChoices), got \(n)") }
        stops = try parseStop(body["stop"])
        for s in template.stopStrings where endpoint == .chatCompletions && !stops.contains(s) { stops.append(s) }
        let seed: UInt64
        switch body["seed"] {
        case nil, .null?: seed = BatchHash.seed(jobSeed, customID)
        case .int(let i)?: seed = UInt64(bitPattern: Int64(i))
        case let v?: throw BodyProblem.invalid("body.seed must be an integer, got \(brief(v))")
        }
        var prediction: String? = nil
        switch body["prediction"] {
        case nil, .null?: break
        case .object(let kv)?:
            let d = Dictionary(kv, uniquingKeysWith: { a, _ in a })
            guard d["type"] == .string("content") else {
                throw BodyProblem.invalid("body.prediction.type must be \"content\"")
            }
            guard let c = d["content"] else { throw BodyProblem.invalid("body.prediction needs content") }
            prediction = try contentText(c, "body.prediction.content")
        case let v?: throw BodyProblem.invalid("body.prediction must be an object {type = \"content\", content = ...}, got \(kind(v))")
        }
        return BatchRequest(customID: customID, line: line, endpoint: endpoint, prompt: prompt,
                            addSpecialTokens: addSpecial, messages: messages, maxTokens: limit,
                            temperature: temperature, topP: topP, n: n, stop: stops, seed: seed, model: model,
                            prediction: prediction)
    }

    /// A string, a list of token ids, or a list holding exactly one of those.
    static func parsePrompt(_ v: JSONValue) throws -> BatchPrompt {
        switch v {
        case .string(let s): return .text(s)
        case .array(let xs):
            if xs.isEmpty { throw BodyProblem.invalid("body.prompt is an empty list") }
            if xs.allSatisfy({ if case .int = $0 { return true }; return false }) {
                return .tokens(try xs.enumerated().map { k, x in
                    guard case .int(let i) = x, i >= 0 else {
                        throw BodyProblem.invalid("body.prompt[\(k)] must be a token id (an integer >= 0), got \(brief(x))")
                    }
                    return i
                })
            }
            if xs.count == 1 {
                switch xs[0] {
                case .string, .array: return try parsePrompt(xs[0])
                default: break
                }
            }
            if xs.count > 1, xs.allSatisfy({ if case .string = $0 { return true }; if case .array = $0 { return true }; return false }) {
                throw BodyProblem(code: "unsupported_parameter",
                                  message: "body.prompt holds \(xs.count) prompts; give one prompt per line")
            }
            throw BodyProblem.invalid("body.prompt must be a string or a list of token ids")
        default:
            throw BodyProblem.invalid("body.prompt must be a string or a list of token ids, got \(kind(v))")
        }
    }

    static func parseMessages(_ v: JSONValue) throws -> [BatchMessage] {
        guard case .array(let xs) = v else { throw BodyProblem.invalid("body.messages must be a list, got \(kind(v))") }
        guard !xs.isEmpty else { throw BodyProblem.invalid("body.messages is empty") }
        return try xs.enumerated().map { k, x in
            guard case .object(let kv) = x else {
                throw BodyProblem.invalid("body.messages[\(k)] must be an object {role, content}, got \(kind(x))")
            }
            let d = Dictionary(kv, uniquingKeysWith: { a, _ in a })
            for (key, _) in kv where !["role", "content", "name"].contains(key) {
                throw BodyProblem(code: "unsupported_parameter", message: "body.messages[\(k)].\(key) is not supported")
            }
            guard case .string(let role)? = d["role"] else {
                throw BodyProblem.invalid("body.messages[\(k)].role must be a string")
            }
            guard chatRoles.contains(role) else {
                throw BodyProblem.invalid("body.messages[\(k)].role must be system, developer, user or assistant, got \(brief(.string(role)))")
            }
            guard let c = d["content"] else { throw BodyProblem.invalid("body.messages[\(k)] has no content") }
            return BatchMessage(role: role, content: try contentText(c, "body.messages[\(k)].content"))
        }
    }

    /// A string, or a list of `{type: "text", text}` parts joined.
    static func contentText(_ v: JSONValue, _ what: String) throws -> String {
        switch v {
        case .string(let s): return s
        case .array(let parts):
            var out = ""
            for (k, p) in parts.enumerated() {
                guard case .object(let kv) = p else { throw BodyProblem.invalid("\(what)[\(k)] must be a content part object") }
                let d = Dictionary(kv, uniquingKeysWith: { a, _ in a })
                guard d["type"] == .string("text"), case .string(let t)? = d["text"] else {
                    throw BodyProblem(code: "unsupported_parameter", message: "\(what)[\(k)]: only text parts ({type = \"text\", text = ...}) are supported")
                }
                out += t
            }
            return out
        default:
            throw BodyProblem.invalid("\(what) must be a string or a list of text parts, got \(kind(v))")
        }
    }

    static func parseStop(_ v: JSONValue?) throws -> [String] {
        switch v {
        case nil, .null?: return []
        case .string(let s)?:
            guard !s.isEmpty else { throw BodyProblem.invalid("body.stop must not be an empty string") }
            return [s]
        case .array(let xs)?:
            guard xs.count <= maxStops else { throw BodyProblem.invalid("body.stop takes at most \(maxStops) strings, got \(xs.count)") }
            return try xs.enumerated().map { k, x in
                guard case .string(let s) = x, !s.isEmpty else {
                    throw BodyProblem.invalid("body.stop[\(k)] must be a non-empty string, got \(brief(x))")
                }
                return s
            }
        case let x?: throw BodyProblem.invalid("body.stop must be a string or a list of strings, got \(kind(x))")
        }
    }

    static func positiveInt(_ v: JSONValue?, _ name: String) throws -> Int? {
        switch v {
        case nil, .null?: return nil
        case .int(let i)? where i >= 1: return i
        case .double(let d)? where d >= 1 && d == d.rounded() && d < 1e15: return Int(d)
        case let x?: throw BodyProblem.invalid("body.\(name) must be a positive integer, got \(brief(x))")
        }
    }

    static func number(_ v: JSONValue?, _ name: String, default d: Double) throws -> Double {
        switch v {
        case nil, .null?: return d
        case .int(let i)?: return Double(i)
        case .double(let x)?: return x
        case let x?: throw BodyProblem.invalid("body.\(name) must be a number, got \(brief(x))")
        }
    }

    // MARK: wording

    static func kind(_ v: JSONValue) -> String {
        switch v {
        case .object: return "an object"
        case .array: return "a list"
        case .string: return "a string"
        case .int, .double: return "a number"
        case .bool: return "a boolean"
        case .null: return "null"
        }
    }

    /// A short rendering of a value for messages: `"GET"`, `-1`, `true`, `a list`.
    static func brief(_ v: JSONValue) -> String {
        switch v {
        case .string(let s): return JSONValue.string(String(s.prefix(40))).line
        case .int, .double, .bool, .null: return v.line
        default: return kind(v)
        }
    }

    static func format(_ d: Double) -> String { JSONValue.double(d).line }
}

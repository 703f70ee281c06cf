// PreferenceRow.swift: one preference example as read from a data row, before tokenization.
//
// Three row layouts are accepted, each a JSON object (extra fields are ignored):
// - TRL, plain text:      {"prompt": "...", "chosen": "...", "rejected": "..."}
// - TRL, conversational:  {"prompt": [messages], "chosen": [messages], "rejected": [messages]}
// - TRL, implicit prompt: {"chosen": ..., "rejected": ...} (text or messages): the prompt is their shared start,
//                         found by TRL's `extract_prompt` (below)
// - OpenAI DPO fine-tuning: {"input": {"messages": [...]}, "preferred_output": [messages],
//                         "non_preferred_output": [messages]}, read as conversational with prompt = input.messages.
// A message is {"role": "...", "content": ...} where content is a string or a list of text parts
// ({"type": "text", "text": "..."}, joined without separator). Tool definitions, tool calls, images and null
// contents are refused: Tycho's chat layouts cannot render them, and dropping them silently would train on
// something else than the data says.

/// A problem with preference data; the message names the row (or file and line) and field.
public struct PreferenceDataError: Error, Equatable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// The layout a row was written in.
public enum PreferenceFormat: String, Sendable {
    /// TRL rows of plain strings (EOS text appended to the completions).
    case plain
    /// TRL rows of message lists, rendered with a chat template.
    case conversational
    /// OpenAI DPO fine-tuning rows (conversational).
    case openai

    public var isConversational: Bool { self != .plain }
}

/// One side of a row: plain text or chat messages.
public enum PreferenceText: Equatable, Sendable {
    case text(String)
    case messages([ChatMessage])
}

public struct PreferenceRow: Equatable, Sendable {
    public var prompt: PreferenceText
    public var chosen: PreferenceText
    public var rejected: PreferenceText
    public var format: PreferenceFormat
    /// True when the row had no prompt and it was extracted from chosen and rejected.
    public var implicitPrompt: Bool

    public init(prompt: PreferenceText, chosen: PreferenceText, rejected: PreferenceText,
                format: PreferenceFormat, implicitPrompt: Bool = false) {
        self.prompt = prompt; self.chosen = chosen; self.rejected = rejected
        self.format = format; self.implicitPrompt = implicitPrompt
    }

    /// Reads a row. Errors name the field (`chosen[2].content must be ...`); the caller adds the row's place.
    public static func parse(_ value: JSONValue) throws -> PreferenceRow {
        guard case .object(let pairs) = value else {
            throw PreferenceDataError("must be a JSON object (a table with named fields)")
        }
        var fields: [String: JSONValue] = [:]
        for (k, v) in pairs where fields[k] == nil { fields[k] = v }
        let openAIKeys = ["input", "preferred_output", "non_preferred_output"]
        if openAIKeys.contains(where: { fields[$0] != nil }) {
            return try parseOpenAI(fields)
        }
        guard let chosenValue = fields["chosen"], let rejectedValue = fields["rejected"] else {
            let missing = ["chosen", "rejected"].filter { fields[$0] == nil }.joined(separator: " and ")
            throw PreferenceDataError("has no \(missing) (rows are {prompt=, chosen=, rejected=} as in TRL, or OpenAI DPO rows {input=, preferred_output=, non_preferred_output=})")
        }
        let chosen = try side(chosenValue, "chosen")
        let rejected = try side(rejectedValue, "rejected")
        guard chosen.isMessages == rejected.isMessages else {
            throw PreferenceDataError("chosen and rejected must both be strings or both be message lists")
        }
        let format: PreferenceFormat = chosen.isMessages ? .conversational : .plain
        guard let promptValue = fields["prompt"], promptValue != .null else {
            let (p, c, r) = try extractPrompt(chosen, rejected)
            return PreferenceRow(prompt: p, chosen: c, rejected: r, format: format, implicitPrompt: true)
        }
        let prompt = try side(promptValue, "prompt")
        guard prompt.isMessages == chosen.isMessages else {
            throw PreferenceDataError("prompt, chosen and rejected must all be strings or all be message lists (prompt is \(prompt.isMessages ? "a message list" : "a string"), chosen is \(chosen.isMessages ? "a message list" : "a string"))")
        }
        return PreferenceRow(prompt: prompt, chosen: chosen, rejected: rejected, format: format)
    }

    static func parseOpenAI(_ fields: [String: JSONValue]) throws -> PreferenceRow {
        guard let input = fields["input"] else { throw PreferenceDataError("has preferred_output but no input (OpenAI DPO rows need input = {messages = {...}})") }
        guard case .object(let inputPairs) = input else {
            throw PreferenceDataError("input must be an object {messages = {...}}, got \(JSONLines.kindName(input))")
        }
        var inputFields: [String: JSONValue] = [:]
        for (k, v) in inputPairs where inputFields[k] == nil { inputFields[k] = v }
        if let tools = inputFields["tools"], tools != .null, tools != .array([]) {
            throw PreferenceDataError("input.tools is not supported: Tycho's chat templates do not render tool definitions")
        }
        guard let messages = inputFields["messages"] else { throw PreferenceDataError("input has no messages") }
        let prompt = try messageList(messages, "input.messages")
        guard let preferred = fields["preferred_output"] else { throw PreferenceDataError("has no preferred_output") }
        guard let nonPreferred = fields["non_preferred_output"] else { throw PreferenceDataError("has no non_preferred_output") }
        let chosen = try messageList(preferred, "preferred_output")
        let rejected = try messageList(nonPreferred, "non_preferred_output")
        return PreferenceRow(prompt: .messages(prompt), chosen: .messages(chosen), rejected: .messages(rejected),
                             format: .openai)
    }

    static func side(_ v: JSONValue, _ name: String) throws -> PreferenceText {
        switch v {
        case .string(let s): return .text(s)
        case .array: return .messages(try messageList(v, name))
        default: throw PreferenceDataError("\(name) must be a string or a list of messages, got \(JSONLines.kindName(v))")
        }
    }

    static func messageList(_ v: JSONValue, _ name: String) throws -> [ChatMessage] {
        guard case .array(let items) = v else {
            throw PreferenceDataError("\(name) must be a list of messages {role=, content=}, got \(JSONLines.kindName(v))")
        }
        guard !items.isEmpty else { throw PreferenceDataError("\(name) is an empty list of messages") }
        return try items.enumerated().map { k, item in try message(item, "\(name)[\(k + 1)]") }
    }

    static func message(_ v: JSONValue, _ name: String) throws -> ChatMessage {
        guard case .object(let pairs) = v else {
            throw PreferenceDataError("\(name) must be a message {role=, content=}, got \(JSONLines.kindName(v))")
        }
        var role: String? = nil
        var content: JSONValue? = nil
        for (k, x) in pairs {
            switch k {
            case "role":
                guard case .string(let s) = x, !s.isEmpty else {
                    throw PreferenceDataError("\(name).role must be a non-empty string, got \(JSONLines.kindName(x))")
                }
                role = s
            case "content": content = x
            case "tool_calls", "function_call":
                if x != .null && x != .array([]) {
                    throw PreferenceDataError("\(name).\(k) is not supported: Tycho's chat templates do not render tool calls")
                }
            default: break
            }
        }
        guard let role else { throw PreferenceDataError("\(name) has no role") }
        guard let content else { throw PreferenceDataError("\(name) has no content") }
        switch content {
        case .string(let s): return ChatMessage(role: role, content: s)
        case .array(let parts):
            var text = ""
            for (k, part) in parts.enumerated() {
                guard case .object(let kv) = part,
                      kv.contains(where: { $0.0 == "type" && $0.1 == .string("text") }),
                      let t = kv.first(where: { $0.0 == "text" })?.1, case .string(let s) = t else {
                    throw PreferenceDataError("\(name).content[\(k + 1)] must be a text part {type = \"text\", text = \"...\"} (images and other parts are not supported)")
                }
                text += s
            }
            return ChatMessage(role: role, content: text)
        default:
            throw PreferenceDataError("\(name).content must be a string or a list of text parts, got \(JSONLines.kindName(content))")
        }
    }

    /// TRL's `extract_prompt`: the shared start of chosen and rejected becomes the prompt. Texts compare by
    /// Unicode scalar (Python's str indexing), message lists by message; the first difference ends the prompt,
    /// moved back one place when the text before it is a space (so the completions keep their leading space).
    /// When one is a prefix of the other, TRL's loop ends on the last shared element, which goes to the
    /// completions. Tycho refuses rows with nothing shared (TRL would index from the end there).
    static func extractPrompt(_ chosen: PreferenceText, _ rejected: PreferenceText) throws
        -> (PreferenceText, PreferenceText, PreferenceText) {
        func split<T: Equatable>(_ c: [T], _ r: [T], isSpace: (T) -> Bool) throws -> Int {
            let n = Swift.min(c.count, r.count)
            guard n > 0 else {
                throw PreferenceDataError("has no prompt, and chosen or rejected is empty, so there is no shared start to take as the prompt")
            }
            var idx = n - 1
            for i in 0..<n where c[i] != r[i] {
                idx = i
                if i > 0 && isSpace(c[i - 1]) { idx = i - 1 }
                break
            }
            guard idx > 0 else {
                throw PreferenceDataError("has no prompt, and chosen and rejected share no start to take as the prompt; give a prompt field")
            }
            return idx
        }
        switch (chosen, rejected) {
        case (.text(let c), .text(let r)):
            let cs = Array(c.unicodeScalars), rs = Array(r.unicodeScalars)
            let idx = try split(cs, rs) { $0 == " " }
            func text(_ s: ArraySlice<Unicode.Scalar>) -> String {
                var v = String.UnicodeScalarView(); v.append(contentsOf: s); return String(v)
            }
            return (.text(text(cs[..<idx])), .text(text(cs[idx...])), .text(text(rs[idx...])))
        case (.messages(let c), .messages(let r)):
            let idx = try split(c, r) { _ in false }
            return (.messages(Array(c[..<idx])), .messages(Array(c[idx...])), .messages(Array(r[idx...])))
        default:
            throw PreferenceDataError("chosen and rejected must both be strings or both be message lists")
        }
    }
}

extension PreferenceText {
    var isMessages: Bool { if case .messages = self { return true }; return false }
}

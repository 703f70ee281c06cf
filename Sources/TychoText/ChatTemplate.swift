// ChatTemplate.swift: chat messages as the text a model reads, in the layouts Tycho knows.
//
// Hugging Face ships chat templates as Jinja programs (`chat_template` in tokenizer_config.json, or
// chat_template.jinja). Tycho does not run Jinja: it knows three layouts, picked by name or recognised in a model
// folder's template by its markers (`<|im_start|>` is ChatML, `<|start_header_id|>` is Llama 3); a folder
// without a template, or with one Tycho does not recognise, gets ChatML, the documented default.
// `render(_:addGenerationPrompt:)` is Jinja's `apply_chat_template(messages, add_generation_prompt=)`: the
// conversation, then (when asked) the opening of an assistant turn. Batch jobs (TychoInfer) render prompts with
// the generation prompt; preference data renders both (TRL tokenizes the prompt with it and prompt + completion
// without). `developer` messages render as `system`. A layout writes its own BOS where it has one, so the text is
// encoded without the tokenizer's special tokens (as transformers' apply_chat_template does).

import Foundation

/// One chat message, its content already flattened to text.
public struct ChatMessage: Equatable, Hashable, Sendable {
    public var role: String
    public var content: String
    public init(role: String, content: String) { self.role = role; self.content = content }
}

public enum ChatLayout: String, CaseIterable, Sendable {
    /// ChatML (Qwen, many fine-tunes): `<|im_start|>role\ncontent<|im_end|>\n` per message; the generation
    /// prompt is `<|im_start|>assistant\n`. No default system message is added.
    case chatml
    /// Llama 3 instruct: `<|begin_of_text|>`, then `<|start_header_id|>role<|end_header_id|>\n\n` + trimmed content +
    /// `<|eot_id|>` per message; the generation prompt is the assistant header. (Llama 3.1's date lines in the
    /// system turn are not written.)
    case llama3
    /// Plain text for models without chat tokens: `role: content\n` per message; the generation prompt is
    /// `assistant:`.
    case plain

    public static var names: [String] { allCases.map(\.rawValue) }

    static func role(_ role: String) -> String { role == "developer" ? "system" : role }

    /// The messages as text, followed by the opening of an assistant turn when `addGenerationPrompt`.
    public func render(_ messages: [ChatMessage], addGenerationPrompt: Bool) -> String {
        var s = ""
        switch self {
        case .chatml:
            for m in messages { s += "<|im_start|>\(ChatLayout.role(m.role))\n\(m.content)<|im_end|>\n" }
            if addGenerationPrompt { s += "<|im_start|>assistant\n" }
        case .llama3:
            s = "<|begin_of_text|>"
            for m in messages {
                let content = m.content.trimmingCharacters(in: .whitespacesAndNewlines)
                s += "<|start_header_id|>\(ChatLayout.role(m.role))<|end_header_id|>\n\n\(content)<|eot_id|>"
            }
            if addGenerationPrompt { s += "<|start_header_id|>assistant<|end_header_id|>\n\n" }
        case .plain:
            for m in messages { s += "\(ChatLayout.role(m.role)): \(m.content)\n" }
            if addGenerationPrompt { s += "assistant:" }
        }
        return s
    }

    /// Text that ends the assistant's turn (a stop string for generation).
    public var stopStrings: [String] {
        switch self {
        case .chatml: return ["<|im_end|>"]
        case .llama3: return ["<|eot_id|>"]
        case .plain: return ["\nuser:"]
        }
    }

    /// Whether a prompt in this layout should also get the tokenizer's own special tokens (a BOS): only the
    /// plain layout, which writes none.
    public var addSpecialTokens: Bool { self == .plain }

    /// The layout a model folder's template asks for, and a note when it had one Tycho did not recognise.
    /// Looks at `chat_template.jinja`, then `chat_template` in tokenizer_config.json (a string, or a list of
    /// named templates of which `default` or the first is taken).
    public static func detect(folder dir: String) -> (layout: ChatLayout, note: String?) {
        guard let source = templateSource(folder: dir) else { return (.chatml, nil) }
        if source.contains("<|im_start|>") { return (.chatml, nil) }
        if source.contains("<|start_header_id|>") { return (.llama3, nil) }
        return (.chatml, "\(dir) has a chat template Tycho does not recognise; using chatml (choose one with a chat template option)")
    }

    /// The Jinja source of a model folder's chat template, or nil.
    public static func templateSource(folder dir: String) -> String? {
        if let data = FileManager.default.contents(atPath: dir + "/chat_template.jinja") {
            return String(decoding: data, as: UTF8.self)
        }
        guard let data = FileManager.default.contents(atPath: dir + "/tokenizer_config.json"),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return nil }
        if let s = object["chat_template"] as? String { return s }
        if let list = object["chat_template"] as? [[String: Any]] {
            let entry = list.first { ($0["name"] as? String) == "default" } ?? list.first
            return entry?["template"] as? String
        }
        return nil
    }
}

/// A chat template as a value: a built-in layout, or a function (the Lua binding builds one from a Lua function).
public struct ChatRenderer {
    /// A short name for messages and cache keys (`chatml`, `function`).
    public let name: String
    let body: ([ChatMessage], Bool) throws -> String

    public init(name: String, _ body: @escaping (_ messages: [ChatMessage], _ addGenerationPrompt: Bool) throws -> String) {
        self.name = name
        self.body = body
    }

    public init(_ layout: ChatLayout) {
        self.init(name: layout.rawValue) { layout.render($0, addGenerationPrompt: $1) }
    }

    public func render(_ messages: [ChatMessage], addGenerationPrompt: Bool) throws -> String {
        try body(messages, addGenerationPrompt)
    }
}

// BatchChatTemplate.swift: turning chat messages into the prompt text a model continues.
//
// Hugging Face ships chat templates as Jinja programs (`chat_template` in tokenizer_config.json, or
// chat_template.jinja). Tycho does not run Jinja: it knows three layouts and picks one by name, or recognises a
// model folder's template by its markers (`<|im_start|>` is ChatML, `<|start_header_id|>` is Llama 3). A
// folder without a template, or with one it does not recognise, gets ChatML, the documented default. The
// protocol is the plug: any type (or a closure, `ClosureChatTemplate`) can render messages.
//
// Every layout ends with the opening of an assistant turn (add_generation_prompt) and names the marker that
// ends a turn, which the job adds to the request's stop strings. `developer` messages render as `system`.

import Foundation

/// Renders chat messages to a prompt.
public protocol BatchChatTemplate {
    /// A short name for messages and summaries (`chatml`).
    var name: String { get }
    /// The prompt: every message, then the opening of the assistant's turn.
    func render(_ messages: [BatchMessage]) throws -> String
    /// Text that ends the assistant's turn; generation stops there and the text is cut before it.
    var stopStrings: [String] { get }
    /// Whether the tokenizer should also add its own BOS (false when the layout writes one).
    var addSpecialTokens: Bool { get }
}

func chatRole(_ role: String) -> String { role == "developer" ? "system" : role }

/// ChatML (Qwen, many fine-tunes): `<|im_start|>user\nHi<|im_end|>\n` per message, then
/// `<|im_start|>assistant\n`. No default system message is added.
public struct ChatMLTemplate: BatchChatTemplate {
    public init() {}
    public var name: String { "chatml" }
    public func render(_ messages: [BatchMessage]) throws -> String {
        var s = ""
        for m in messages { s += "<|im_start|>\(chatRole(m.role))\n\(m.content)<|im_end|>\n" }
        return s + "<|im_start|>assistant\n"
    }
    public var stopStrings: [String] { ["<|im_end|>"] }
    public var addSpecialTokens: Bool { false }
}

/// Llama 3 instruct: `<|begin_of_text|>`, then `<|start_header_id|>role<|end_header_id|>\n\n` + trimmed content +
/// `<|eot_id|>` per message, then the assistant header. (Llama 3.1's date lines in the system turn are not
/// written.)
public struct Llama3ChatTemplate: BatchChatTemplate {
    public init() {}
    public var name: String { "llama3" }
    public func render(_ messages: [BatchMessage]) throws -> String {
        var s = "<|begin_of_text|>"
        for m in messages {
            let content = m.content.trimmingCharacters(in: .whitespacesAndNewlines)
            s += "<|start_header_id|>\(chatRole(m.role))<|end_header_id|>\n\n\(content)<|eot_id|>"
        }
        return s + "<|start_header_id|>assistant<|end_header_id|>\n\n"
    }
    public var stopStrings: [String] { ["<|eot_id|>"] }
    public var addSpecialTokens: Bool { false }
}

/// Plain text for models without chat tokens: `role: content\n` per message, then `assistant:`; a turn ends at
/// the next line that starts with `user:`.
public struct PlainChatTemplate: BatchChatTemplate {
    public init() {}
    public var name: String { "plain" }
    public func render(_ messages: [BatchMessage]) throws -> String {
        var s = ""
        for m in messages { s += "\(chatRole(m.role)): \(m.content)\n" }
        return s + "assistant:"
    }
    public var stopStrings: [String] { ["\nuser:"] }
    public var addSpecialTokens: Bool { true }
}

/// A template given as a function (the Lua binding builds one from a Lua function).
public struct ClosureChatTemplate: BatchChatTemplate {
    public let name: String
    public let stopStrings: [String]
    public let addSpecialTokens: Bool
    let body: ([BatchMessage]) throws -> String

    public init(name: String, stopStrings: [String] = [], addSpecialTokens: Bool = false,
                _ body: @escaping ([BatchMessage]) throws -> String) {
        self.name = name; self.stopStrings = stopStrings; self.addSpecialTokens = addSpecialTokens; self.body = body
    }

    public func render(_ messages: [BatchMessage]) throws -> String { try body(messages) }
}

public enum BatchChatTemplates {
    public static let names = ["chatml", "llama3", "plain"]

    /// A built-in template by name.
    public static func named(_ name: String) -> BatchChatTemplate? {
        switch name {
        case "chatml": return ChatMLTemplate()
        case "llama3": return Llama3ChatTemplate()
        case "plain": return PlainChatTemplate()
        default: return nil
        }
    }

    /// The template a model folder asks for, and a note when it had one Tycho did not recognise.
    /// Looks at `chat_template.jinja`, then `chat_template` in tokenizer_config.json (a string, or a list of
    /// named templates of which `default` or the first is taken).
    public static func detect(modelFolder dir: String) -> (template: BatchChatTemplate, note: String?) {
        guard let source = templateSource(dir) else { return (ChatMLTemplate(), nil) }
        if source.contains("<|im_start|>") { return (ChatMLTemplate(), nil) }
        if source.contains("<|start_header_id|>") { return (Llama3ChatTemplate(), nil) }
        return (ChatMLTemplate(), "\(dir) has a chat template Tycho does not recognise; using chatml (choose one with a chat template option)")
    }

    static func templateSource(_ dir: String) -> String? {
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

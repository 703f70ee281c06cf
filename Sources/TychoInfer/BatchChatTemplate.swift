// BatchChatTemplate.swift: turning chat messages into the prompt text a model continues.
//
// The layouts themselves (ChatML, Llama 3, plain) and the detection of a model folder's template live one floor
// down, in TychoText's ChatTemplate.swift, shared with preference data; this file adapts them to batch jobs.
// Tycho does not run Jinja: a folder without a template, or with one it does not recognise, gets ChatML, the
// documented default. The protocol is the plug: any type (or a closure, `ClosureChatTemplate`) can render
// messages.
//
// Every layout ends with the opening of an assistant turn (add_generation_prompt) and names the marker that
// ends a turn, which the job adds to the request's stop strings. `developer` messages render as `system`.

import Foundation
import TychoText

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

extension BatchChatTemplate {
    /// The messages as TychoText chat messages.
    static func chatMessages(_ messages: [BatchMessage]) -> [ChatMessage] {
        messages.map { ChatMessage(role: $0.role, content: $0.content) }
    }
}

/// ChatML (Qwen, many fine-tunes): `<|im_start|>user\nHi<|im_end|>\n` per message, then
/// `<|im_start|>assistant\n`. No default system message is added.
public struct ChatMLTemplate: BatchChatTemplate {
    public init() {}
    public var name: String { "chatml" }
    public func render(_ messages: [BatchMessage]) throws -> String {
        ChatLayout.chatml.render(Self.chatMessages(messages), addGenerationPrompt: true)
    }
    public var stopStrings: [String] { ChatLayout.chatml.stopStrings }
    public var addSpecialTokens: Bool { ChatLayout.chatml.addSpecialTokens }
}

/// Llama 3 instruct: `<|begin_of_text|>`, then `<|start_header_id|>role<|end_header_id|>\n\n` + trimmed content +
/// `<|eot_id|>` per message, then the assistant header. (Llama 3.1's date lines in the system turn are not
/// written.)
public struct Llama3ChatTemplate: BatchChatTemplate {
    public init() {}
    public var name: String { "llama3" }
    public func render(_ messages: [BatchMessage]) throws -> String {
        ChatLayout.llama3.render(Self.chatMessages(messages), addGenerationPrompt: true)
    }
    public var stopStrings: [String] { ChatLayout.llama3.stopStrings }
    public var addSpecialTokens: Bool { ChatLayout.llama3.addSpecialTokens }
}

/// Plain text for models without chat tokens: `role: content\n` per message, then `assistant:`; a turn ends at
/// the next line that starts with `user:`.
public struct PlainChatTemplate: BatchChatTemplate {
    public init() {}
    public var name: String { "plain" }
    public func render(_ messages: [BatchMessage]) throws -> String {
        ChatLayout.plain.render(Self.chatMessages(messages), addGenerationPrompt: true)
    }
    public var stopStrings: [String] { ChatLayout.plain.stopStrings }
    public var addSpecialTokens: Bool { ChatLayout.plain.addSpecialTokens }
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

    /// The template a model folder asks for, and a note when it had one Tycho did not recognise
    /// (TychoText's `ChatLayout.detect(folder:)`).
    public static func detect(modelFolder dir: String) -> (template: BatchChatTemplate, note: String?) {
        let (layout, note) = ChatLayout.detect(folder: dir)
        return (named(layout.rawValue) ?? ChatMLTemplate(), note)
    }
}

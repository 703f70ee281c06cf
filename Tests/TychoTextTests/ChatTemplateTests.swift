// ChatTemplateTests.swift: the three chat layouts with and without the generation prompt (the Jinja templates in
// Tests/Fixtures/dpo_data/dpo_data_ref.json render the same text through transformers), and folder detection.

import Foundation
import Testing
@testable import TychoText

@Suite struct ChatTemplateTests {
    let messages = [ChatMessage(role: "developer", content: "Be brief."), ChatMessage(role: "user", content: " Hi \n"),
                    ChatMessage(role: "assistant", content: "Hello")]

    @Test func chatml() {
        let body = "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n Hi \n<|im_end|>\n<|im_start|>assistant\nHello<|im_end|>\n"
        #expect(ChatLayout.chatml.render(messages, addGenerationPrompt: false) == body)
        #expect(ChatLayout.chatml.render(messages, addGenerationPrompt: true) == body + "<|im_start|>assistant\n")
        #expect(ChatLayout.chatml.stopStrings == ["<|im_end|>"])
        #expect(!ChatLayout.chatml.addSpecialTokens)
    }

    @Test func llama3TrimsContents() {
        let body = "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
            + "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHello<|eot_id|>"
        #expect(ChatLayout.llama3.render(messages, addGenerationPrompt: false) == body)
        #expect(ChatLayout.llama3.render(messages, addGenerationPrompt: true)
                == body + "<|start_header_id|>assistant<|end_header_id|>\n\n")
        #expect(ChatLayout.llama3.render([], addGenerationPrompt: false) == "<|begin_of_text|>")
    }

    @Test func plain() {
        #expect(ChatLayout.plain.render(messages, addGenerationPrompt: false) == "system: Be brief.\nuser:  Hi \n\nassistant: Hello\n")
        #expect(ChatLayout.plain.render(Array(messages.prefix(2)), addGenerationPrompt: true) == "system: Be brief.\nuser:  Hi \n\nassistant:")
        #expect(ChatLayout.plain.addSpecialTokens)
    }

    @Test func renderersWrapLayoutsAndFunctions() throws {
        #expect(try ChatRenderer(.llama3).render(messages, addGenerationPrompt: true) == ChatLayout.llama3.render(messages, addGenerationPrompt: true))
        #expect(ChatRenderer(.plain).name == "plain")
        let f = ChatRenderer(name: "function") { m, g in "\(m.count)\(g)" }
        #expect(try f.render(messages, addGenerationPrompt: false) == "3false")
    }

    @Test func detectionFromAFolder() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect(ChatLayout.detect(folder: dir.path).layout == .chatml && ChatLayout.detect(folder: dir.path).note == nil)
        try #"{"chat_template": [{"name": "tool_use", "template": "x"}, {"name": "default", "template": "<|start_header_id|>"}]}"#
            .write(to: dir.appendingPathComponent("tokenizer_config.json"), atomically: true, encoding: .utf8)
        #expect(ChatLayout.detect(folder: dir.path).layout == .llama3)
        try "{% for m in messages %}{{ m.content }}{% endfor %}".write(to: dir.appendingPathComponent("chat_template.jinja"), atomically: true, encoding: .utf8)
        let odd = ChatLayout.detect(folder: dir.path)
        #expect(odd.layout == .chatml && odd.note?.contains("does not recognise") == true, "chat_template.jinja wins, and is unknown")
    }
}

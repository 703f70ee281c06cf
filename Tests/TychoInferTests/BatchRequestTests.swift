// BatchRequestTests.swift: checking OpenAI Batch API input lines, one kind of mistake per case, and the chat
// templates.

import Foundation
import Testing
import TychoText
@testable import TychoInfer

@Suite struct BatchRequestTests {
    func parse(_ line: String, template: BatchChatTemplate = ChatMLTemplate()) throws -> Result<BatchRequest, BatchInputProblem> {
        BatchRequestParser.parse(try JSONParser.parse(line), line: 7, template: template, jobSeed: 42)
    }

    func problem(_ line: String) throws -> BatchInputProblem? {
        if case .failure(let p) = try parse(line) { return p }
        return nil
    }

    @Test func completionWithDefaults() throws {
        let r = try parse(#"{"custom_id": "a", "method": "POST", "url": "/v1/completions", "body": {"model": "m", "prompt": "Hello"}}"#).get()
        #expect(r.customID == "a" && r.line == 7 && r.endpoint == .completions)
        #expect(r.prompt == .text("Hello") && r.addSpecialTokens)
        #expect(r.maxTokens == 16 && r.temperature == 1 && r.topP == 1 && r.n == 1 && r.stop.isEmpty)
        #expect(r.seed == BatchHash.seed(42, "a"))
        #expect(r.model == "m")
    }

    @Test func completionWithTokensAndSettings() throws {
        let r = try parse(#"{"custom_id": "b", "method": "POST", "url": "/v1/completions", "body": {"prompt": [[5, 6, 7]], "max_tokens": 3, "temperature": 0, "top_p": 0.5, "n": 2, "stop": ["x", "y"], "seed": -1, "stream": false, "logprobs": null, "user": "u", "presence_penalty": 0}}"#).get()
        #expect(r.prompt == .tokens([5, 6, 7]))
        #expect(r.maxTokens == 3 && r.temperature == 0 && r.topP == 0.5 && r.n == 2 && r.stop == ["x", "y"])
        #expect(r.seed == UInt64.max)
        let one = try parse(#"{"custom_id": "c", "method": "POST", "url": "/v1/completions", "body": {"prompt": ["only"], "stop": "z"}}"#).get()
        #expect(one.prompt == .text("only") && one.stop == ["z"])
    }

    @Test func chatRendersWithTheTemplate() throws {
        let line = #"{"custom_id": "c", "method": "POST", "url": "/v1/chat/completions", "body": {"messages": [{"role": "developer", "content": "Be brief."}, {"role": "user", "content": [{"type": "text", "text": "Hi "}, {"type": "text", "text": "there"}]}], "max_completion_tokens": 5, "stop": "END"}}"#
        let r = try parse(line).get()
        #expect(r.endpoint == .chatCompletions && r.maxTokens == 5 && !r.addSpecialTokens)
        #expect(r.prompt == .text("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n"))
        #expect(r.stop == ["END", "<|im_end|>"])
        #expect(r.messages == [BatchMessage(role: "developer", content: "Be brief."), BatchMessage(role: "user", content: "Hi there")])
        let llama = try parse(line, template: Llama3ChatTemplate()).get()
        #expect(llama.prompt == .text("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"))
        #expect(llama.stop == ["END", "<|eot_id|>"])
        let plain = try parse(line, template: PlainChatTemplate()).get()
        #expect(plain.prompt == .text("system: Be brief.\nuser: Hi there\nassistant:") && plain.addSpecialTokens)
        // Chat without a limit runs to a stop, EOS or the context.
        let open = try parse(#"{"custom_id": "d", "method": "POST", "url": "/v1/chat/completions", "body": {"messages": [{"role": "user", "content": "x"}]}}"#).get()
        #expect(open.maxTokens == nil)
        let custom = ClosureChatTemplate(name: "mine", stopStrings: ["##"]) { ms in ms.map(\.content).joined(separator: "|") }
        #expect(try parse(line, template: custom).get().prompt == .text("Be brief.|Hi there"))
    }

    @Test func eachKindOfBadLineHasItsCode() throws {
        let cases: [(String, String, String)] = [
            (#"{"method": "POST", "url": "/v1/completions", "body": {"prompt": "x"}}"#, "missing_custom_id", "missing custom_id"),
            (#"{"custom_id": "", "method": "POST", "url": "/v1/completions", "body": {"prompt": "x"}}"#, "missing_custom_id", "custom_id is empty"),
            (#"{"custom_id": 3, "method": "POST", "url": "/v1/completions", "body": {"prompt": "x"}}"#, "invalid_value", "custom_id must be a string, got a number"),
            (#"{"custom_id": "a", "method": "GET", "url": "/v1/completions", "body": {"prompt": "x"}}"#, "invalid_method", #"method must be "POST", got "GET""#),
            (#"{"custom_id": "a", "url": "/v1/completions", "body": {"prompt": "x"}}"#, "invalid_method", "missing method"),
            (#"{"custom_id": "a", "method": "POST", "url": "/v1/embeddings", "body": {"prompt": "x"}}"#, "invalid_url", #"got "/v1/embeddings""#),
            (#"{"custom_id": "a", "method": "POST", "body": {"prompt": "x"}}"#, "invalid_url", "missing url"),
            (#"{"custom_id": "a", "method": "POST", "url": "/v1/completions"}"#, "missing_required_parameter", "missing body"),
            (#"{"custom_id": "a", "method": "POST", "url": "/v1/completions", "body": []}"#, "missing_required_parameter", "body must be a JSON object"),
            (#"{"custom_id": "a", "method": "POST", "url": "/v1/completions", "body": {}}"#, "missing_required_parameter", "missing body.prompt"),
            (#"{"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": {"prompt": "x"}}"#, "unsupported_parameter", "body.prompt is for /v1/completions"),
            (#"{"custom_id": "a", "method": "POST", "url": "/v1/completions", "body": {"prompt": "x", "temperature": 3}}"#, "invalid_value", "body.temperature must be in 0...2, got 3"),
            (#"{"custom_id": "a", "method": "POST", "url": "/v1/completions", "body": {"prompt": "x", "temperature": "hot"}}"#, "invalid_value", "body.temperature must be a number"),
            (#"{"custom_id": "a", "method": "POST", "url": "/v1/completions", "body": {"prompt": "x", "top_p": 0}}"#, "invalid_value", "body.top_p must be in (0, 1]"),
            (#"{"custom_id": "a", "method": "POST", "url": "/v1/completions", "body": {"prompt": "x", "n": 0}}"#, "invalid_value", "body.n must be a positive integer, got 0"),
            (#"{"custom_id": "a", "method": "POST", "url": "/v1/completions", "body": {"prompt": "x", "max_tokens": 2.5}}"#, "invalid_value", "body.max_tokens must be a positive integer, got 2.5"),
            (#"{"custom_id": "a", "method": "POST", "url": "/v1/completions", "body": {"prompt": "x", "max_tokens": 2, "max_completion_tokens": 3}}"#, "invalid_value", "disagree"),
            (#"{"custom_id": "a", "method": "POST", "url": "/v1/completions", "body": {"prompt": "x", "stop": ["a", "b", "c", "d", "e"]}}"#, "invalid_value", "at most 4"),
            (#"{"custom_id": "a", "method": "POST", "url": "/v1/completions", "body": {"prompt": "x", "stop": [""]}}"#, "invalid_value", "body.stop[0] must be a non-empty string"),
            (#"{"custom_id": "a", "method": "POST", "url": "/v1/completions", "body": {"prompt": "x", "seed": 1.5}}"#, "invalid_value", "body.seed must be an integer"),
            (#"{"custom_id": "a", "method": "POST", "url": "/v1/completions", "body": {"prompt": "x", "stream": true}}"#, "unsupported_parameter", "body.stream is not supported"),
            (#"{"custom_id": "a", "method": "POST", "url": "/v1/completions", "body": {"prompt": "x", "top_k": 5}}"#, "unsupported_parameter", "body.top_k is not a supported field"),
            (#"{"custom_id": "a", "method": "POST", "url": "/v1/completions", "body": {"prompt": ["x", "y"]}}"#, "unsupported_parameter", "holds 2 prompts"),
            (#"{"custom_id": "a", "method": "POST", "url": "/v1/completions", "body": {"prompt": [1, -2]}}"#, "invalid_value", "body.prompt[1] must be a token id (an integer >= 0), got -2"),
            (#"{"custom_id": "a", "method": "POST", "url": "/v1/completions", "body": {"prompt": 5}}"#, "invalid_value", "got a number"),
            (#"{"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": {"messages": []}}"#, "invalid_value", "body.messages is empty"),
            (#"{"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": {"messages": [{"role": "robot", "content": "x"}]}}"#, "invalid_value", "role must be system, developer, user or assistant"),
            (#"{"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": {"messages": [{"role": "user"}]}}"#, "invalid_value", "has no content"),
            (#"{"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": {"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}}"#, "unsupported_parameter", "only text parts"),
        ]
        for (line, code, text) in cases {
            let p = try #require(try problem(line), "accepted: \(line)")
            #expect(p.code == code, "\(line): \(p.code) \(p.message)")
            #expect(p.message.contains(text), "\(line): \(p.message)")
            #expect(p.line == 7)
        }
        // The custom_id is kept when it was readable, so the report names the request.
        #expect(try problem(#"{"custom_id": "q", "method": "POST", "url": "/x", "body": {}}"#)?.customID == "q")
    }

    @Test func templatesAreFoundInModelFolders() throws {
        let dir = try BatchTestFiles.directory()
        #expect(BatchChatTemplates.detect(modelFolder: dir).template.name == "chatml")
        #expect(BatchChatTemplates.detect(modelFolder: dir).note == nil)
        try #"{"chat_template": "{{ bos_token }}<|start_header_id|>..."}"#.write(toFile: dir + "/tokenizer_config.json", atomically: true, encoding: .utf8)
        #expect(BatchChatTemplates.detect(modelFolder: dir).template.name == "llama3")
        try #"{"chat_template": [{"name": "tool_use", "template": "x"}, {"name": "default", "template": "<|im_start|>"}]}"#.write(toFile: dir + "/tokenizer_config.json", atomically: true, encoding: .utf8)
        #expect(BatchChatTemplates.detect(modelFolder: dir).template.name == "chatml")
        try "{% for m in messages %}[[{{ m.content }}]]{% endfor %}".write(toFile: dir + "/chat_template.jinja", atomically: true, encoding: .utf8)
        let odd = BatchChatTemplates.detect(modelFolder: dir)
        #expect(odd.template.name == "chatml" && odd.note?.contains("does not recognise") == true)
        #expect(BatchChatTemplates.named("plain")?.name == "plain" && BatchChatTemplates.named("jinja") == nil)
    }
}

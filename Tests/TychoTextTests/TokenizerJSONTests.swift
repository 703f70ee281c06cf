// TokenizerJSONTests.swift: corrupt and unsupported tokenizer.json files are errors that name the problem.

import Foundation
import Testing
@testable import TychoText

@Suite struct TokenizerJSONTests {
    static let model = #""model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": [["a", "b"]]}"#

    static let bad: [(String, String)] = [
        ("", "not valid JSON"),
        ("{", "not valid JSON"),
        ("[1, 2]", "top level"),
        ("{}", "model is missing"),
        (#"{"model": {"type": "WordPiece", "vocab": {}}}"#, "not supported"),
        (#"{"model": {"type": "BPE"}}"#, "model.vocab"),
        (#"{"model": {"type": "BPE", "vocab": {"a": "x"}, "merges": []}}"#, "must be an integer"),
        (#"{"model": {"type": "BPE", "vocab": {"a": 1.5}, "merges": []}}"#, "must be an integer"),
        (#"{"model": {"type": "BPE", "vocab": {"a": -1}, "merges": []}}"#, "negative id"),
        (#"{"model": {"type": "BPE", "vocab": {"a": 0, "b": 0}, "merges": []}}"#, "is given to both"),
        (#"{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [["a", "b"]]}}"#, "not in the vocabulary"),
        (#"{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": [["a", "b"]]}}"#, "merged token"),
        (#"{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a b c"]}}"#, "two tokens"),
        (#"{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [3]}}"#, "model.merges[1]"),
        (#"{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": {}}}"#, "must be a list"),
        (#"{"model": {"type": "BPE", "vocab": {}, "merges": [], "dropout": 0.1}}"#, "dropout"),
        (#"{"model": {"type": "BPE", "vocab": {}, "merges": [], "unk_token": "<unk>"}}"#, "unk_token"),
        (#"{"model": {"type": "BPE", "vocab": {}, "merges": [], "continuing_subword_prefix": "@@"}}"#, "continuing_subword_prefix"),
        ("{\(model), \"added_tokens\": [{\"id\": 5}]}", "added_tokens[1].content"),
        ("{\(model), \"added_tokens\": [{\"id\": 0, \"content\": \"zz\"}]}", "the vocabulary has"),
        ("{\(model), \"added_tokens\": 7}", "added_tokens must be a list"),
        ("{\(model), \"normalizer\": {\"type\": \"Lowercase\"}}", "normalizer type"),
        ("{\(model), \"pre_tokenizer\": {\"type\": \"Whitespace\"}}", "pre_tokenizer type"),
        ("{\(model), \"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"Regex\": \"(\"}, \"behavior\": \"Isolated\"}}", "unsupported pre-tokenizer regex"),
        ("{\(model), \"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"Regex\": \"a\"}, \"behavior\": \"Contiguous\"}}", "behavior"),
        ("{\(model), \"pre_tokenizer\": {\"type\": \"Sequence\"}}", "pretokenizers"),
        ("{\(model), \"pre_tokenizer\": {\"type\": \"ByteLevel\", \"use_regex\": 3}}", "use_regex"),
        ("{\(model), \"post_processor\": {\"type\": \"BertProcessing\"}}", "post_processor type"),
        ("{\(model), \"post_processor\": {\"type\": \"TemplateProcessing\", \"single\": [{\"SpecialToken\": {\"id\": \"<s>\"}}]}}", "unknown"),
        ("{\(model), \"decoder\": {\"type\": \"WordPiece\"}}", "decoder type"),
        ("{\(model), \"decoder\": 5}", "decoder must be an object"),
    ]

    @Test func corruptFilesAreErrors() {
        for (text, fragment) in Self.bad {
            do {
                _ = try Tokenizer.load(json: Data(text.utf8))
                Issue.record("no error for \(text)")
            } catch let e as TokenizerError {
                #expect(e.message.contains(fragment), "\(text): \(e.message) lacks \(fragment)")
            } catch {
                Issue.record("unexpected error \(error) for \(text)")
            }
        }
    }

    /// Every prefix of a real file (a truncated download) is an error, never a crash.
    @Test func truncatedFilesAreErrors() throws {
        let data = try #require(FileManager.default.contents(atPath: Fixtures.path("llama3.json")))
        for n in stride(from: 0, to: data.count, by: max(1, data.count / 60)) {
            #expect(throws: TokenizerError.self) { try Tokenizer.load(json: data.prefix(n)) }
        }
        #expect(throws: TokenizerError.self) { try Tokenizer.load(path: "/nonexistent/tokenizer.json") }
    }

    /// A Swift Regex fallback for unknown Split patterns, and the minimal valid file.
    @Test func otherPatternsAndMinimalFile() throws {
        let t = try Tokenizer.load(json: Data("{\(Self.model), \"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"Regex\": \"b+\"}, \"behavior\": \"Isolated\"}}".utf8))
        #expect(t.encode("ab") == [0, 1])
        let m = try Tokenizer.load(json: Data("{\(Self.model)}".utf8))
        #expect(m.encode("ab") == [2])
        #expect(try m.decode([2, 0]) == "ab a")  // no decoder: tokens joined with spaces
    }
}

// BPETrainerTests.swift: the bytes tokenizer and train_bpe: determinism, saving and loading back, errors.

import Foundation
import Testing
@testable import TychoText

@Suite struct BPETrainerTests {
    static var corpus: String { Fixtures.path("corpus.txt") }

    @Test func bytesTokenizer() throws {
        let t = try Tokenizer.bytes(specialTokens: ["<|endoftext|>", "<|pad|>"])
        #expect(t.vocabSize == 258)
        #expect(t.encode("hé<|endoftext|>") == [0x68, 0xC3, 0xA9, 256])
        #expect(t.encode("") == [])
        #expect(try t.decode([0x68, 0xC3, 0xA9, 256, 257]) == "hé<|endoftext|><|pad|>")
        #expect(try t.decode([0x68, 256], skipSpecial: true) == "h")
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let p = dir.appendingPathComponent("bytes.json").path
        try t.save(path: p)
        let back = try Tokenizer.load(path: p)
        for c in Fixtures.cases { #expect(back.encode(c.text) == t.encode(c.text)) }
        #expect(throws: TokenizerError.self) { try Tokenizer.bytes(specialTokens: ["a"]) }
        #expect(throws: TokenizerError.self) { try Tokenizer.bytes(specialTokens: [""]) }
    }

    @Test func trainingIsDeterministicAndRoundTrips() throws {
        let specials = ["<|endoftext|>", "<|pad|>"]
        let a = try BPETrainer.train(files: [Self.corpus], vocabSize: 600, specialTokens: specials)
        let b = try BPETrainer.train(files: [Self.corpus], vocabSize: 600, specialTokens: specials)
        #expect(a.jsonData() == b.jsonData())
        #expect(a.vocabSize <= 600 && a.vocabSize > 400)
        #expect(a.id(for: "<|endoftext|>") == 0 && a.id(for: "<|pad|>") == 1)
        #expect(a.model.merges.count == a.vocabSize - 258)
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let p = dir.appendingPathComponent("trained.json").path
        try a.save(path: p)
        let back = try Tokenizer.load(path: p)
        var total = 0
        for c in Fixtures.cases {
            let ids = a.encode(c.text)
            total += ids.count
            #expect(back.encode(c.text) == ids)
            #expect(try a.decode(ids) == c.text)
        }
        // Merges compress: fewer ids than bytes on the corpus itself.
        let text = try String(contentsOfFile: Self.corpus, encoding: .utf8)
        #expect(a.encode(text).count * 10 < text.utf8.count * 7)
        #expect(a.encode("a<|endoftext|>b") == [a.id(for: "a"), 0, a.id(for: "b")].compactMap { $0 })
    }

    @Test func trainingErrors() throws {
        #expect(throws: TokenizerError.self) { try BPETrainer.train(texts: ["abc"], vocabSize: 100) }
        #expect(throws: TokenizerError.self) { try BPETrainer.train(texts: ["abc"], vocabSize: 300, specialTokens: ["x", "x"]) }
        #expect(throws: TokenizerError.self) { try BPETrainer.train(files: [], vocabSize: 300) }
        #expect(throws: TokenizerError.self) { try BPETrainer.train(files: ["/nonexistent/file.txt"], vocabSize: 300) }
        let t = try BPETrainer.train(texts: [""], vocabSize: 300)
        #expect(t.vocabSize == 256)
    }
}

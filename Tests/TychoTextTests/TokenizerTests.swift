// TokenizerTests.swift: encode and decode against `tokenizers` on the fixture cases, for the GPT-2 style and
// the Llama-3 style files; merges in both JSON formats; added and special tokens; errors.

import Foundation
import Testing
@testable import TychoText

@Suite struct TokenizerTests {
    @Test func fixturesArePresent() {
        #expect(Fixtures.cases.count >= 30)
        #expect(Fixtures.fuzz.count >= 100)
    }

    @Test(arguments: Fixtures.names)
    func sameIdsAsTokenizers(_ name: String) throws {
        let tok = try Fixtures.tokenizer(name)
        for (k, c) in Fixtures.cases.enumerated() {
            let e = try #require(c.expected[name])
            let label = "\(name) case \(k + 1) \(c.text.prefix(30).debugDescription)"
            _ = compareIDs(label, tok.encode(c.text, addSpecial: false), e.ids)
            _ = compareIDs(label + " add_special", tok.encode(c.text, addSpecial: true), e.idsSpecial)
            #expect(try tok.decode(e.idsSpecial) == e.decode, "\(label) decode")
            #expect(try tok.decode(e.idsSpecial, skipSpecial: true) == e.decodeSkip, "\(label) decode skip")
            #expect(try tok.decode(tok.encode(c.text, addSpecial: false)) == c.text, "\(label) round trip")
        }
    }

    @Test func vocabularyAndSpecials() throws {
        let g = try Fixtures.tokenizer("gpt2")
        let info = try #require(Fixtures.data["info"] as? [String: Any])
        let sizes = try #require(info["vocab_size"] as? [String: Int])
        #expect(g.vocabSize == sizes["gpt2"])
        #expect(try Fixtures.tokenizer("llama3").vocabSize == sizes["llama3"])
        #expect(g.id(for: "<|endoftext|>") == 0)
        #expect(g.token(for: 0) == "<|endoftext|>")
        #expect(g.isSpecial(0) && g.isSpecial(1))
        let tool = try #require(g.id(for: "<tool>"))
        #expect(!g.isSpecial(tool))
        #expect(g.id(for: "Ġ") != nil)
        #expect(g.id(for: "no such token") == nil)
        #expect(g.token(for: 100_000) == nil)
        #expect(throws: TokenizerError.self) { try g.decode([0, 100_000]) }
        #expect(throws: TokenizerError.self) { try g.decode([-1]) }
    }

    /// Merges written as "a b" strings (tokenizers before 0.20) give the same ids as [a, b] pairs.
    @Test func oldMergesFormat() throws {
        let data = try #require(FileManager.default.contents(atPath: Fixtures.path("gpt2.json")))
        var top = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        var model = try #require(top["model"] as? [String: Any])
        let pairs = try #require(model["merges"] as? [[String]])
        #expect(!pairs.contains { $0[0].contains(" ") || $0[1].contains(" ") })
        model["merges"] = pairs.map { "\($0[0]) \($0[1])" }
        top["model"] = model
        let old = try Tokenizer.load(json: JSONSerialization.data(withJSONObject: top))
        let new = try Fixtures.tokenizer("gpt2")
        for c in Fixtures.cases { #expect(old.encode(c.text) == new.encode(c.text)) }
    }

    @Test func savedLoadedFileRoundTrips() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        for name in Fixtures.names {
            let t = try Fixtures.tokenizer(name)
            let p = dir.appendingPathComponent("\(name).json").path
            try t.save(path: p)
            let back = try Tokenizer.load(path: p)
            for c in Fixtures.cases { #expect(back.encode(c.text) == t.encode(c.text)) }
        }
    }

    @Test func addedTokenFlags() throws {
        var vocab: [String: Int] = [:]
        for b in 0..<256 { vocab[String(ByteLevel.byteToScalar[b])] = b }
        let model = try BPEModel(vocab: vocab, merges: [])
        let added = [AddedToken(id: 256, content: "<s>", special: true, lstrip: true, rstrip: true),
                     AddedToken(id: 257, content: "cat", special: false, singleWord: true)]
        let t = try Tokenizer(model: model, addedTokens: added, preTokenizer: [.byteLevel(addPrefixSpace: false, useRegex: true)])
        #expect(t.encode("a  <s>  b") == [97, 256, 98])
        #expect(t.encode("cat concat cats") == [257, 32, 99, 111, 110, 99, 97, 116, 32, 99, 97, 116, 115])
        #expect(try t.decode([256, 97], skipSpecial: true) == "a")
    }

    @Test func invalidUTF8DecodesToReplacement() throws {
        let t = try Tokenizer.bytes()
        #expect(try t.decode([0x68, 0xFF, 0x69]) == "h\u{FFFD}i")
        #expect(try t.decode([0xE4, 0xBD]) == "\u{FFFD}")
    }
}

@Suite struct BPEMergeTests {
    /// The heap merge (long pre-tokens) and the scan merge (short ones) give the same ids.
    @Test(arguments: Fixtures.names)
    func heapAgreesWithScan(_ name: String) throws {
        let t = try Fixtures.tokenizer(name)
        var g = PreTokenizerTests.SplitMix(state: 7)
        let words = Fixtures.cases.flatMap { preTokenize($0.text, steps: t.preTokenizer) }
        for w in words {
            let s = t.model.symbols(w)
            guard s.count > 1 else { continue }
            #expect(t.model.mergeByHeap(s) == t.model.mergeByScan(s), "\(w)")
        }
        let alphabet = Array("abcdeéthe ing的😀12".unicodeScalars).map { String($0) }
        for _ in 0..<200 {
            let w = ByteLevel.encode((0..<Int.random(in: 2...80, using: &g)).map { _ in alphabet.randomElement(using: &g) ?? "a" }.joined().utf8)
            let s = t.model.symbols(w)
            #expect(t.model.mergeByHeap(s) == t.model.mergeByScan(s), "\(w)")
        }
    }

    /// One very long pre-token (no spaces) encodes in well under a second and round trips.
    @Test func longPreTokens() throws {
        let t = try Fixtures.tokenizer("gpt2")
        for text in [String(repeating: "x", count: 100_000), String(repeating: "ab", count: 50_000),
                     String(repeating: "的", count: 30_000)] {
            let start = Date()
            let ids = t.encode(text)
            #expect(Date().timeIntervalSince(start) < 2)
            #expect(try t.decode(ids) == text)
        }
    }
}

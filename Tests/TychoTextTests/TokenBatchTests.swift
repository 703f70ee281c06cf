// TokenBatchTests.swift: SFT examples (text, prompt/completion masking, truncation), padding into batches,
// and the batch plan (Fisher-Yates order, drop_last).

import Testing
@testable import TychoText

@Suite struct TokenBatchTests {
    @Test func textAndPromptCompletion() throws {
        let t = try Fixtures.tokenizer("gpt2")
        let text = t.example(text: "Hello world")
        #expect(text.ids == t.encode("Hello world"))
        #expect(text.mask.allSatisfy { $0 })
        let pc = t.example(prompt: "Question: what is 2+2?", completion: " Four.")
        let p = t.encode("Question: what is 2+2?", addSpecial: false), c = t.encode(" Four.", addSpecial: false)
        #expect(pc.ids == p + c)
        #expect(pc.mask == Array(repeating: false, count: p.count) + Array(repeating: true, count: c.count))
    }

    @Test func postProcessorTokensAroundThePair() throws {
        let l = try Fixtures.tokenizer("llama3")
        let bos = try #require(l.postProcessor.prefix.first)
        let pc = l.example(prompt: "Hi", completion: " there")
        #expect(pc.ids.first == bos)
        #expect(pc.mask.first == false)
        #expect(pc.ids == [bos] + l.encode("Hi", addSpecial: false) + l.encode(" there", addSpecial: false))
        #expect(l.example(prompt: "Hi", completion: " there", addSpecial: false).ids.first != bos)
    }

    @Test func truncationKeepsTheStart() {
        var e = TokenizedExample(ids: [5, 6, 7, 8], mask: [false, true, true, true])
        e.truncate(to: 10)
        #expect(!e.truncated && e.count == 4)
        e.truncate(to: 2)
        #expect(e.truncated && e.ids == [5, 6] && e.mask == [false, true])
    }

    @Test func paddedBatch() {
        var long = TokenizedExample(ids: [1, 2, 3, 4], mask: [false, true, true, true])
        long.truncate(to: 3)
        let b = TokenBatch([TokenizedExample(ids: [9]), long, TokenizedExample(ids: [])], padID: 7)
        #expect(b.size == 3 && b.length == 3)
        #expect(b.ids == [9, 7, 7, 1, 2, 3, 7, 7, 7])
        #expect(b.mask == [1, 0, 0, 0, 1, 1, 0, 0, 0])
        #expect(b.lengths == [1, 3, 0])
        #expect(b.truncated == 1)
        let empty = TokenBatch([TokenizedExample(ids: [])], padID: 0)
        #expect(empty.length == 0 && empty.ids.isEmpty)
    }

    @Test func padToken() throws {
        #expect(try Fixtures.tokenizer("gpt2").padTokenID == 1)  // <|pad|>
        #expect(try Tokenizer.bytes(specialTokens: ["<|endoftext|>"]).padTokenID == nil)
        #expect(try Tokenizer.bytes(specialTokens: ["<s>", "[PAD]", "<pad>"]).padTokenID == 257)
    }

    @Test func shuffleIsFisherYatesOverTheDraws() {
        // With draws that always return 0, each step swaps position i with 0.
        #expect(BatchPlan.shuffled(4) { _ in 0 } == [1, 2, 3, 0])
        // With draws that return bound - 1, nothing moves.
        #expect(BatchPlan.shuffled(5) { $0 - 1 } == [0, 1, 2, 3, 4])
        var bounds: [Int] = []
        _ = BatchPlan.shuffled(5) { bounds.append($0); return 0 }
        #expect(bounds == [5, 4, 3, 2])
        #expect(BatchPlan.shuffled(0) { _ in 0 } == [])
        #expect(BatchPlan.shuffled(1) { _ in 0 } == [0])
        // A permutation for any draw sequence.
        var x: UInt64 = 12345
        let order = BatchPlan.shuffled(1000) { bound in
            x = x &* 6364136223846793005 &+ 1442695040888963407
            return Int((x >> 33) % UInt64(bound))
        }
        #expect(order.sorted() == Array(0..<1000))
        #expect(order != Array(0..<1000))
    }

    @Test func batches() {
        let order = Array(0..<7)
        #expect(BatchPlan.batches(order, batchSize: 3, dropLast: false) == [[0, 1, 2], [3, 4, 5], [6]])
        #expect(BatchPlan.batches(order, batchSize: 3, dropLast: true) == [[0, 1, 2], [3, 4, 5]])
        #expect(BatchPlan.batches(order, batchSize: 7, dropLast: true) == [order])
        #expect(BatchPlan.batches(order, batchSize: 8, dropLast: true) == [])
        #expect(BatchPlan.batches(order, batchSize: 8, dropLast: false) == [order])
        #expect(BatchPlan.batches([], batchSize: 2, dropLast: false) == [])
    }
}

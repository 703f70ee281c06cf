// PreferenceDataTests.swift: reading preference rows (TRL plain, conversational, implicit prompt, OpenAI DPO),
// TRL 1.16's tokenization rules (EOS text, common-prefix split, drop and truncation), the batch layout, the
// hashes that key reference caches, and audits. The exact ids against TRL itself are checked by
// Tests/lua/preferences.lua on the fixtures of gen_dpo_data_fixtures.py.

import Foundation
import Testing
@testable import TychoText

@Suite struct PreferenceDataTests {
    static func json(_ s: String) -> JSONValue { try! JSONParser.parse(s) }

    func make(_ rows: [String], _ configure: (inout PreferenceOptions) -> Void = { _ in }) throws -> PreferenceData {
        var o = PreferenceOptions()
        o.eosToken = "<|endoftext|>"
        configure(&o)
        return try PreferenceData(rows: rows.map(Self.json), places: rows.indices.map { "row \($0 + 1)" },
                                  tokenizer: try Fixtures.tokenizer("gpt2"), options: o, source: "rows")
    }

    func error(_ rows: [String], _ configure: (inout PreferenceOptions) -> Void = { _ in }) -> String {
        do { _ = try make(rows, configure); return "no error" } catch { return "\(error)" }
    }

    // MARK: rows

    @Test func rowLayouts() throws {
        let plain = try PreferenceRow.parse(Self.json(#"{"prompt": "P", "chosen": "a", "rejected": "b", "extra": 1}"#))
        #expect(plain == PreferenceRow(prompt: .text("P"), chosen: .text("a"), rejected: .text("b"), format: .plain))
        let chat = try PreferenceRow.parse(Self.json(#"{"prompt": [{"role": "user", "content": "P"}], "chosen": [{"role": "assistant", "content": "a"}], "rejected": [{"role": "assistant", "content": "b"}]}"#))
        #expect(chat.format == .conversational)
        let openai = try PreferenceRow.parse(Self.json(#"{"input": {"messages": [{"role": "user", "content": [{"type": "text", "text": "P"}]}], "parallel_tool_calls": true}, "preferred_output": [{"role": "assistant", "content": "a"}], "non_preferred_output": [{"role": "assistant", "content": "b"}]}"#))
        #expect(openai.format == .openai)
        #expect(openai.prompt == chat.prompt && openai.chosen == chat.chosen && openai.rejected == chat.rejected)
    }

    @Test func implicitPromptIsTRLsExtractPrompt() throws {
        func split(_ c: String, _ r: String) throws -> [String] {
            let row = try PreferenceRow.parse(.object([("chosen", .string(c)), ("rejected", .string(r))]))
            #expect(row.implicitPrompt)
            return [row.prompt, row.chosen, row.rejected].map { if case .text(let s) = $0 { return s }; return "?" }
        }
        #expect(try split("Q: hi A", "Q: hi B") == ["Q: hi", " A", " B"], "the space before the difference goes to the completions")
        #expect(try split("Q:A", "Q:B") == ["Q:", "A", "B"])
        #expect(try split("same", "same") == ["sam", "e", "e"], "no difference: TRL's loop stops on the last shared scalar")
        #expect(try split("é中x", "é中y") == ["é中", "x", "y"], "Unicode scalars, as Python indexes str")
        #expect(throws: PreferenceDataError.self) { try split("abc", "xbc") }
        let m = { (r: String, c: String) in JSONValue.object([("role", .string(r)), ("content", .string(c))]) }
        let row = try PreferenceRow.parse(.object([("chosen", .array([m("user", "Q"), m("assistant", "A")])),
                                                   ("rejected", .array([m("user", "Q"), m("assistant", "B")]))]))
        #expect(row.prompt == .messages([ChatMessage(role: "user", content: "Q")]))
        #expect(row.chosen == .messages([ChatMessage(role: "assistant", content: "A")]))
    }

    // MARK: tokenization

    @Test func plainRowsFollowTRL() throws {
        let tok = try Fixtures.tokenizer("gpt2")
        let d = try make([#"{"prompt": "Hello", "chosen": " world", "rejected": " there<|endoftext|>"}"#])
        let p = d.pairs[0]
        let eos = try #require(tok.id(for: "<|endoftext|>"))
        #expect(p.prompt.map(Int.init) == tok.encode("Hello"))
        #expect(p.chosen.map(Int.init) == Array(tok.encode("Hello world<|endoftext|>").dropFirst(p.prompt.count)))
        #expect(p.chosen.last.map(Int.init) == eos && p.rejected.last.map(Int.init) == eos)
        #expect(p.rejected.filter { Int($0) == eos }.count == 1, "an EOS already there is not doubled")
        #expect(!p.truncated && d.dropped.isEmpty)
    }

    @Test func theCompletionStartsWhereTheTokensDiverge() throws {
        // The model fixtures' tokenizer: "The licence says " alone ends with a space token, which merges with the
        // completion's first word when they are tokenized together (TRL's fixture row 1 shows the same).
        let path = Fixtures.directory.deletingLastPathComponent().appendingPathComponent("models/tokenizer.json").path
        let tok = try Tokenizer.load(path: path)
        var o = PreferenceOptions()
        o.eosToken = "<|endoftext|>"
        let row = Self.json(#"{"prompt": "The licence says ", "chosen": "you may copy it.", "rejected": "nothing"}"#)
        let d = try PreferenceData(rows: [row], places: ["row 1"], tokenizer: tok, options: o, source: "rows")
        let alone = tok.encode("The licence says "), whole = tok.encode("The licence says you may copy it.<|endoftext|>")
        #expect(alone.last != whole[alone.count - 1], "the space merges across the boundary")
        #expect(d.pairs[0].prompt.map(Int.init) == Array(alone.dropLast()), "the prompt's last token is left out (TRL's common_prefix_length)")
        #expect((d.pairs[0].prompt + d.pairs[0].chosen).map(Int.init) == whole)
    }

    @Test func conversationalRowsUseTheTemplateWithoutSpecialTokens() throws {
        let tok = try Fixtures.tokenizer("llama3")
        var o = PreferenceOptions()
        o.chatTemplate = ChatRenderer(.llama3)
        let row = #"{"prompt": [{"role": "user", "content": "Hi"}], "chosen": [{"role": "assistant", "content": "Yo"}], "rejected": [{"role": "assistant", "content": "No"}]}"#
        let d = try PreferenceData(rows: [Self.json(row)], places: ["row 1"], tokenizer: tok, options: o, source: "rows")
        let full = ChatLayout.llama3.render([ChatMessage(role: "user", content: "Hi"), ChatMessage(role: "assistant", content: "Yo")], addGenerationPrompt: false)
        #expect((d.pairs[0].prompt + d.pairs[0].chosen).map(Int.init) == tok.encode(full, addSpecial: false))
        #expect(d.pairs[0].prompt.first.map(Int.init) == tok.id(for: "<|begin_of_text|>"), "one BOS, the template's")
        #expect(d.format == .conversational)
    }

    @Test func dropAndTruncation() throws {
        let rows = [#"{"prompt": "one two three four five six", "chosen": " seven", "rejected": " eight"}"#,
                    #"{"prompt": "a", "chosen": " b c d e f g h i j k l m n", "rejected": " z"}"#]
        let full = try make(rows) { $0.maxLength = nil }
        let n0 = full.pairs[0].prompt.count
        let start = try make(rows) { $0.maxLength = n0 }
        #expect(start.dropped.map(\.row) == [0], "a prompt of max_length tokens is dropped (keep_start)")
        #expect(start.pairs.map(\.row) == [1] && start.pairs[0].truncated)
        let s = start.sequence(0, chosen: true)
        #expect(s.count == n0 && s.ids == Array((full.pairs[1].prompt + full.pairs[1].chosen).prefix(n0)).map(Int.init))
        let end = try make(rows) { $0.maxLength = n0; $0.truncation = .keepEnd }
        #expect(end.dropped.isEmpty && end.count == 2)
        let e = end.sequence(0, chosen: true)
        #expect(e.ids == Array((full.pairs[0].prompt + full.pairs[0].chosen).suffix(n0)).map(Int.init))
        #expect(e.mask.last == true && e.mask.first == false)
        #expect(end.lossNote?.contains("truncated") == true && full.lossNote == nil)
        #expect(start.lossNote?.contains("dropped") == true)
        let limits = try make(rows) { $0.maxLength = nil; $0.maxPromptLength = 2; $0.maxCompletionLength = 3 }
        #expect(limits.pairs[0].prompt == Array(full.pairs[0].prompt.suffix(2)))
        #expect(limits.pairs[1].chosen == Array(full.pairs[1].chosen.prefix(3)))
        #expect(limits.truncatedCount == 2)
    }

    @Test func batchesAreTRLsConcatenatedLayout() throws {
        let d = try make([#"{"prompt": "Hi", "chosen": " a b c", "rejected": " d"}"#,
                          #"{"prompt": "Hello there", "chosen": " e", "rejected": " f g"}"#])
        let b = d.batch([1, 0])
        #expect(b.size == 2 && b.pairs == [1, 0] && b.rows == [1, 0])
        let seqs = [d.sequence(1, chosen: true), d.sequence(0, chosen: true), d.sequence(1, chosen: false), d.sequence(0, chosen: false)]
        #expect(b.length == seqs.map(\.count).max())
        for (r, e) in seqs.enumerated() {
            let row = Array(b.ids[(r * b.length)..<((r + 1) * b.length)])
            #expect(Array(row.prefix(e.count)) == e.ids.map(Float.init))
            #expect(row.dropFirst(e.count).allSatisfy { Int($0) == d.defaultPadID })
            #expect(b.completionTokens[r] == e.mask.filter { $0 }.count)
            #expect(Array(b.attention[(r * b.length)..<((r + 1) * b.length)]).reduce(0, +) == Float(e.count))
        }
        let tok = try Fixtures.tokenizer("gpt2")
        #expect(d.defaultPadID == tok.padTokenID, "the tokenizer's <|pad|>")
        var o = PreferenceOptions()
        o.eosToken = "<|endoftext|>"
        let bytes = try PreferenceData(rows: [Self.json(#"{"prompt": "a", "chosen": "b", "rejected": "c"}"#)], places: ["row 1"],
                                       tokenizer: try Tokenizer.bytes(specialTokens: ["<|endoftext|>"]), options: o, source: "rows")
        #expect(bytes.defaultPadID == 256, "no pad token: the EOS id (TRL)")
    }

    @Test func hashesFollowTheirInputs() throws {
        let rows = [#"{"prompt": "Hi", "chosen": " a", "rejected": " b"}"#]
        let a = try make(rows), b = try make([#"{"rejected": " b", "chosen": " a", "prompt": "Hi"}"#])
        #expect(a.rowsHash == b.rowsHash && a.tokensHash == b.tokensHash, "key order is not content")
        let c = try make(rows) { $0.maxLength = 100 }
        #expect(c.rowsHash == a.rowsHash && c.tokensHash != a.tokensHash, "settings are part of the tokens hash")
        let d = try make([#"{"prompt": "Hi", "chosen": " a", "rejected": " c"}"#])
        #expect(d.rowsHash != a.rowsHash && d.tokensHash != a.tokensHash)
        #expect(a.tokenizerHash.count == 64)
    }

    @Test func errorsNameTheRowAndField() {
        #expect(error([#"{"prompt": "a", "chosen": "b"}"#]).hasPrefix("row 1: has no rejected"))
        #expect(error([#"{"prompt": "a", "chosen": "b", "rejected": "c"}"#, #"{"prompt": "a", "chosen": 1, "rejected": "c"}"#])
                == "row 2: chosen must be a string or a list of messages, got the number 1")
        #expect(error([#"{"prompt": [{"role": "user", "content": "a"}], "chosen": [{"role": "assistant", "content": "b"}], "rejected": [{"role": "assistant", "content": "c"}]}"#,
                       #"{"prompt": "a", "chosen": "b", "rejected": "c"}"#]).contains("row 2 is plain text but row 1 is conversational"))
        #expect(error([#"{"prompt": "a", "chosen": "b", "rejected": "c"}"#]) { $0.eosToken = nil }.contains("give eos_token"))
        #expect(error([]) { $0.maxLength = 0 }.contains("max_length must be at least 1"))
        let failing = ChatRenderer(name: "f") { _, _ in throw PreferenceDataError("no") }
        #expect(error([#"{"prompt": [{"role": "user", "content": "a"}], "chosen": [{"role": "assistant", "content": "b"}], "rejected": [{"role": "assistant", "content": "c"}]}"#]) { $0.chatTemplate = failing } == "row 1: no")
    }

    // MARK: subsets and splits

    /// 10 rows over 4 prompts (P0 x4, P1 x3, P2 x2, P3 x1).
    func tenPairs(_ configure: (inout PreferenceOptions) -> Void = { _ in }) throws -> PreferenceData {
        let prompts = ["P0", "P1", "P0", "P2", "P1", "P0", "P3", "P2", "P1", "P0"]
        return try make(prompts.enumerated().map { #"{"prompt": "\#($1)", "chosen": " yes \#($0)", "rejected": " no"}"# }, configure)
    }

    /// A fixed draw for shuffles (a small LCG), so tests need no generator.
    static func draws(_ seed: UInt64) -> (Int) -> Int {
        var x = seed
        return { bound in x = x &* 6364136223846793005 &+ 1442695040888963407; return Int((x >> 33) % UInt64(bound)) }
    }

    @Test func subsetKeepsRowsReferenceAndOptions() throws {
        let d = try tenPairs { $0.maxLength = 50 }
        d.referenceChosen = (0..<10).map { Float($0) }
        d.referenceRejected = (0..<10).map { Float(-$0) }
        let s = try d.subset([7, 2, 4])
        #expect(s.count == 3 && s.pairs.map(\.row) == [7, 2, 4], "source rows kept, in the order given")
        #expect(s.pairs.map(\.chosen) == [7, 2, 4].map { d.pairs[$0].chosen })
        #expect(s.referenceChosen == [7, 2, 4] && s.referenceRejected == [-7, -2, -4], "reference values follow their pairs")
        #expect(s.options.maxLength == 50 && s.sourceRows == 10 && s.tokenizerHash == d.tokenizerHash && s.source == d.source)
        #expect(s.rowsHash != d.rowsHash && s.tokensHash != d.tokensHash, "hashes of its own")
        #expect(try d.subset([2, 4, 7]).tokensHash != s.tokensHash, "order is part of the data")
        #expect(try d.subset([7, 2, 4]).rowsHash == s.rowsHash, "and a function of the pairs chosen")
        let all = try d.subset(Array(0..<10))
        #expect(all.rowsHash == d.rowsHash && all.tokensHash == d.tokensHash, "every pair in order: the same data")
        #expect(s.summary.contains("a subset of 3 of 10 pairs"), "\(s.summary)")
        #expect(try d.subset([]).count == 0)
        let bare = try tenPairs()
        #expect(try bare.subset([1]).referenceChosen == nil, "nothing attached, nothing carried")
        #expect(throws: PreferenceDataError("pair number 11 at position 2 is not in 1..10")) { try d.subset([0, 10]) }
        #expect(throws: PreferenceDataError("pair number 0 at position 1 is not in 1..10")) { try d.subset([-1]) }
        #expect(throws: PreferenceDataError("pair number 3 is given twice (at position 3)")) { try d.subset([2, 1, 2]) }
    }

    @Test func splitByPromptSharesNoPrompt() throws {
        let d = try tenPairs()
        for seed: UInt64 in 1...20 {
            let (a, b) = try d.splitIndices(first: 7, byPrompt: true, draw: Self.draws(seed))
            #expect(Set(a).isDisjoint(with: b) && a.count + b.count == 10, "seed \(seed): a partition")
            #expect(a == a.sorted() && b == b.sorted(), "data-set order")
            #expect(Swift.abs(a.count - 7) <= 2, "seed \(seed): about the asked size (half the largest group): \(a.count)")
            #expect(Set(a.map { d.pairs[$0].promptKey }).isDisjoint(with: b.map { d.pairs[$0].promptKey }), "seed \(seed): no shared prompt")
            let (train, held) = try d.split(first: 7, byPrompt: true, draw: Self.draws(seed), label: "test")
            #expect(train.pairs.map(\.row) == a && held.pairs.map(\.row) == b)
            #expect(PreferenceAudit(train: train, eval: held).evalSharedPromptRows.isEmpty, "data.audit agrees")
        }
        let x = try d.splitIndices(first: 5, byPrompt: true, draw: Self.draws(3))
        let y = try d.splitIndices(first: 5, byPrompt: true, draw: Self.draws(3))
        #expect(x == y, "the same draws, the same split")
        let orders = Set((1...20).map { try! d.splitIndices(first: 5, byPrompt: true, draw: Self.draws(UInt64($0))).first })
        #expect(orders.count > 1, "other draws, other splits")
        // in order: the groups by first appearance (P0, P1, P2, P3)
        let (a, b) = try d.splitIndices(first: 5, byPrompt: true, draw: nil)
        #expect(a == [0, 2, 5, 9] && b == [1, 3, 4, 6, 7, 8], "P0 (4 pairs) is closer to 5 than P0 + P1 (7)")
        let (a6, _) = try d.splitIndices(first: 6, byPrompt: true, draw: nil)
        #expect(a6 == [0, 1, 2, 4, 5, 8, 9], "|7 - 6| = 1 beats |4 - 6| = 2")
        let (a55, _) = try d.splitIndices(first: 8, byPrompt: true, draw: nil)
        #expect(a55.count == 7, "a tie between 7 and 9 pairs: the smaller first part")
        let (p, q) = try d.splitIndices(first: 4, byPrompt: false, draw: nil)
        #expect(p == [0, 1, 2, 3] && q == [4, 5, 6, 7, 8, 9], "pair by pair, exactly the count")
        let shuffled = try d.splitIndices(first: 6, byPrompt: false, draw: Self.draws(9))
        #expect(shuffled.first.count == 6 && shuffled.second.count == 4)
    }

    @Test func splitPartsKeepReferenceAndHashes() throws {
        let d = try tenPairs()
        d.referenceChosen = (0..<10).map { Float($0) }
        d.referenceRejected = (0..<10).map { Float(100 + $0) }
        let (a, b) = try d.split(first: 6, byPrompt: false, draw: Self.draws(5), label: "0.6, seed 5")
        #expect(a.referenceChosen == a.pairs.map { Float($0.row) } && b.referenceRejected == b.pairs.map { Float(100 + $0.row) })
        #expect(a.rowsHash != b.rowsHash && a.tokensHash != b.tokensHash && a.rowsHash != d.rowsHash)
        #expect(a.summary.contains("part 1 of a split of 10 pairs (0.6, seed 5)"), "\(a.summary)")
        #expect(b.dropped.isEmpty && a.sourceRows == 10)
    }

    @Test func splitErrors() throws {
        let d = try tenPairs()
        #expect(throws: PreferenceDataError("the first part must have 1..9 of the 10 pairs, got 10")) { try d.splitIndices(first: 10, byPrompt: false, draw: nil) }
        #expect(throws: PreferenceDataError("the first part must have 1..9 of the 10 pairs, got 0")) { try d.splitIndices(first: 0, byPrompt: false, draw: nil) }
        let one = try make([#"{"prompt": "P", "chosen": " a", "rejected": " b"}"#])
        #expect(throws: PreferenceDataError("cannot split 1 pair into two non-empty parts")) { try one.splitIndices(first: 1, byPrompt: false, draw: nil) }
        let same = try make((0..<3).map { #"{"prompt": "P", "chosen": " a\#($0)", "rejected": " b"}"# })
        #expect(throws: PreferenceDataError("all 3 pairs have the same prompt, so keeping each prompt's pairs on one side (by_prompt) leaves one part empty; set by_prompt = false")) {
            try same.splitIndices(first: 1, byPrompt: true, draw: nil)
        }
        #expect(try same.splitIndices(first: 2, byPrompt: false, draw: nil) == ([0, 1], [2]))
        // two groups of 5 and 1: a cut always leaves both parts non-empty, even far from the asked size
        let lopsided = try make((0..<6).map { #"{"prompt": "\#($0 < 5 ? "A" : "B")", "chosen": " a\#($0)", "rejected": " b"}"# })
        let (x, y) = try lopsided.splitIndices(first: 1, byPrompt: true, draw: nil)
        #expect(x == [0, 1, 2, 3, 4] && y == [5], "\(x) \(y)")
        let (u, v) = try lopsided.splitIndices(first: 5, byPrompt: true, draw: { _ in 0 })
        #expect(u == [5] && v == [0, 1, 2, 3, 4], "shuffled to B, A: \(u) \(v)")
    }

    // MARK: audit

    @Test func auditCountsWhatMisleads() throws {
        let train = try make([#"{"prompt": "Q1", "chosen": " long long long", "rejected": " x"}"#,
                              #"{"prompt": "Q2", "chosen": " same", "rejected": " same"}"#,
                              #"{"prompt": "Q1", "chosen": " long long long", "rejected": " x"}"#,
                              #"{"prompt": "Q1", "chosen": " x", "rejected": " long long long"}"#])
        let eval = try make([#"{"prompt": "Q2", "chosen": " y", "rejected": " z"}"#, #"{"prompt": "Q7", "chosen": " y", "rejected": " z"}"#,
                             #"{"prompt": "Q1", "chosen": " long long long", "rejected": " x"}"#])
        let a = PreferenceAudit(train: train, eval: eval)
        #expect(a.pairs == 4 && a.chosenLonger == 2 && a.rejectedLonger == 1 && a.sameLength == 1)
        #expect(a.identicalRows == [1])
        #expect(a.duplicateRows.map(\.row) == [2] && a.duplicateRows.map(\.first) == [0])
        #expect(a.contradictoryRows.map(\.row) == [3] && a.contradictoryRows.map(\.other) == [0])
        #expect(a.evalPairs == 3 && a.evalSharedPromptRows == [0, 2] && a.sharedPrompts == 2 && a.evalLeakedRows == [2])
        #expect(a.warnings.count == 5, "\(a.warnings)")
        #expect(a.report().contains("contradictions   1 (row 4 swaps row 1)"))
        let clean = PreferenceAudit(train: try make([#"{"prompt": "Q", "chosen": " a", "rejected": " b"}"#]))
        #expect(clean.warnings.isEmpty && clean.report().contains("No problems found."))
    }
}

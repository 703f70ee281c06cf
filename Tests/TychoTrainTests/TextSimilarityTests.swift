// TextSimilarityTests.swift: the metrics of TextSimilarity.swift by hand, their tokenizers against the tokens the
// reference packages give (values from Tests/Fixtures/gen_grader_fixtures.py), and the bit-parallel LCS against a
// plain dynamic program. (Tests/lua/rft_graders.lua checks every fixture pair and metric.)

import Foundation
import Testing
@testable import TychoTrain

@Suite struct TextSimilarityTests {
    @Test func fuzzyMatchIsRapidfuzzRatio() {
        let kitten: Double = (1 - 5.0 / 13) * 100 / 100
        #expect(TextSimilarity.fuzzyRatio("kitten", "sitting") == kitten)
        #expect(TextSimilarity.fuzzyRatio("", "") == 1)
        #expect(TextSimilarity.fuzzyRatio("abc", "") == 0)
        #expect(TextSimilarity.fuzzyRatio("this is a test", "this is a test!") == 0.9655172413793103)  // fuzz.ratio 96.55172413793103
        #expect(TextSimilarity.fuzzyRatio("h\u{e9}llo", "hello") == 0.8)  // code points, as Python's str
    }

    @Test func bitParallelLCSEqualsTheDynamicProgram() {
        func dp(_ a: [UInt8], _ b: [UInt8]) -> Int {
            var prev = Array(repeating: 0, count: b.count + 1)
            for x in a {
                var cur = [0]
                for (j, y) in b.enumerated() { cur.append(x == y ? prev[j] + 1 : max(prev[j + 1], cur[j])) }
                prev = cur
            }
            return prev[b.count]
        }
        var rng = SystemRandomNumberGenerator()
        for trial in 0..<200 {
            let n = trial % 3 == 0 ? Int.random(in: 60...200, using: &rng) : Int.random(in: 0...70, using: &rng)
            let a = (0..<n).map { _ in UInt8.random(in: 97...100, using: &rng) }
            let b = (0..<Int.random(in: 0...150, using: &rng)).map { _ in UInt8.random(in: 97...101, using: &rng) }
            #expect(TextSimilarity.lcsLength(a, b) == dp(a, b), "trial \(trial)")
        }
    }

    @Test func tokenizer13aFollowsSacrebleu() {
        // sacrebleu.tokenizers.tokenizer_13a.Tokenizer13a()(s.rstrip()).split(), from the fixture script
        #expect(TextSimilarity.tokenize13a("Hello, world. It costs $3.50, or 3,000.25 in total!") ==
                ["Hello", ",", "world", ".", "It", "costs", "$", "3.50", ",", "or", "3,000.25", "in", "total", "!"])
        #expect(TextSimilarity.tokenize13a("U.S.A. vs. U.K.: e-mail 1-2 pm") ==
                ["U", ".", "S", ".", "A", ".", "vs", ".", "U", ".", "K", ".", ":", "e-mail", "1", "-", "2", "pm"])
        #expect(TextSimilarity.tokenize13a("x &amp; y &lt; z &amp;lt;") == ["x", "&", "y", "<", "z", "<"])
        #expect(TextSimilarity.tokenize13a("line one-\ncontinued\nline two <skipped> end") ==
                ["line", "onecontinued", "line", "two", "end"])
        #expect(TextSimilarity.tokenize13a("don't (ever)") == ["don't", "(", "ever", ")"])
        #expect(TextSimilarity.tokenize13a("tabs\tand\u{a0}nbsp") == ["tabs", "and", "nbsp"])
        #expect(TextSimilarity.tokenize13a("") == [])
    }

    @Test func rougeTokenizerFollowsRougeScore() {
        #expect(TextSimilarity.rougeTokens("ROUGE is a set of metrics; ROUGE-L uses the LCS.") ==
                ["rouge", "is", "a", "set", "of", "metrics", "rouge", "l", "uses", "the", "lcs"])
        #expect(TextSimilarity.rougeTokens("caf\u{e9} na\u{ef}ve") == ["caf", "na", "ve"])
        #expect(TextSimilarity.rougeTokens("\u{130}stanbul \u{212a}") == ["i", "stanbul", "k"])  // Python's lower()
    }

    @Test func metricsByHand() {
        let hyp = "the cat sat", ref = "the cat sat on the mat"
        #expect(abs(TextSimilarity.sentenceBLEU(hyp, ref) - exp(-1.0)) < 1e-15)  // all precisions 1, brevity e^(1-6/3)
        #expect(TextSimilarity.sentenceBLEU("", "x") == 0)
        #expect(TextSimilarity.sentenceBLEU("the cat sat on the mat", ref) == 1.0000000000000004)  // as sacrebleu
        #expect(TextSimilarity.sentenceGLEU(hyp, ref) == 6.0 / 18)
        #expect(TextSimilarity.sentenceGLEU("", "") == 0)
        #expect(TextSimilarity.rougeN(hyp, ref, n: 1) == 2 * 1 * 0.5 / 1.5)
        #expect(TextSimilarity.rougeN(hyp, ref, n: 2) == 2 * 1 * 0.4 / 1.4)
        #expect(TextSimilarity.rougeN(hyp, ref, n: 4) == 0)
        #expect(TextSimilarity.rougeL("police killed the gunman", "the gunman killed the police") == 2 * 0.5 * 0.4 / 0.9)
        #expect(TextSimilarity.rougeL("", ref) == 0)
        // canonically equivalent but different code points are different tokens, as in Python
        #expect(TextSimilarity.sentenceBLEU("e\u{301}t\u{e9}", "\u{e9}t\u{e9}") == 0)
    }

    @Test func everyMetricHasAName() {
        #expect(TextSimilarityMetric.names == ["fuzzy_match", "bleu", "gleu", "rouge_1", "rouge_2", "rouge_3", "rouge_4", "rouge_5", "rouge_l"])
        for m in TextSimilarityMetric.allCases {
            #expect(abs(m.score("one two three four five six", "one two three four five six") - 1) < 1e-12, "\(m)")
        }
    }
}

// PreTokenizerTests.swift: the hand scanners against two oracles: the pre-token pieces `tokenizers` produced
// for fuzzed strings (fixtures), and Swift Regex running the same patterns on seeded random text.

import Foundation
import Testing
@testable import TychoText

@Suite struct PreTokenizerTests {
    static let gpt2Steps: [PreTokenizerStep] = [.byteLevel(addPrefixSpace: false, useRegex: true)]
    static let llama3Steps: [PreTokenizerStep] = [.split(.llama3(maxDigits: 3), .isolated),
                                                  .byteLevel(addPrefixSpace: false, useRegex: false)]

    @Test func piecesMatchTokenizers() {
        for (k, f) in Fixtures.fuzz.enumerated() {
            #expect(preTokenize(f.text, steps: Self.gpt2Steps) == f.pieces["gpt2"], "gpt2 fuzz \(k + 1) \(f.text.debugDescription)")
            #expect(preTokenize(f.text, steps: Self.llama3Steps) == f.pieces["llama3"], "llama3 fuzz \(k + 1) \(f.text.debugDescription)")
        }
    }

    @Test func knownSplits() {
        func pieces(_ s: String, _ p: SplitPattern) -> [String] { PreTokenizerStep.split(s, p, .isolated) }
        #expect(pieces("Hello  world's   \n\n x", .gpt2) == ["Hello", " ", " world", "'s", "   \n\n", " x"])
        #expect(pieces("12345 abc\r\n\r\n  def", .llama3(maxDigits: 3)) == ["123", "45", " abc", "\r\n\r\n", " ", " def"])
        #expect(pieces("12345", .llama3(maxDigits: 1)) == ["1", "2", "3", "4", "5"])
        #expect(pieces("I'M HE'LL", .llama3(maxDigits: 3)) == ["I", "'M", " HE", "'LL"])
        #expect(pieces("I'M", .gpt2) == ["I", "'", "M"])
        #expect(pieces("", .gpt2).isEmpty)
    }

    /// A small seeded generator (SplitMix64), so failures reproduce.
    struct SplitMix: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    static let alphabet: [Unicode.Scalar] = Array("aZé中😀1٣½ \t\n\r'stSLlmdRVE.!-_,€«Ⅻ²ᵢ".unicodeScalars)
        + ["\u{A0}", "\u{3000}", "\u{2009}", "\u{200D}", "\u{FE0F}", "\u{301}", "\u{1F1EB}", "\u{2028}", "\u{B}", "\u{C}"]

    static func randomText(_ g: inout SplitMix) -> String {
        var v = String.UnicodeScalarView()
        for _ in 0..<Int.random(in: 0...30, using: &g) { v.append(alphabet.randomElement(using: &g) ?? "a") }
        return String(v)
    }

    @Test(arguments: [("gpt2", SplitPattern.gpt2Pattern), ("llama3", SplitPattern.llama3Pattern), ("qwen2", SplitPattern.qwen2Pattern)])
    func scannerMatchesSwiftRegex(_ name: String, _ pattern: String) throws {
        let scanner = try SplitPattern.fromRegex(pattern)
        if case .regex = scanner { Issue.record("\(name): no hand scanner"); return }
        let oracle = SplitPattern.regex(pattern, try Regex(pattern).matchingSemantics(.unicodeScalar))
        var g = SplitMix(state: 20261127)
        for _ in 0..<400 {
            let s = Self.randomText(&g)
            let sc = Array(s.unicodeScalars)
            let a = scanner.matches(in: sc), b = oracle.matches(in: sc)
            if a != b {
                Issue.record("\(name) \(s.debugDescription): scanner \(a) regex \(b)")
                return
            }
        }
    }

    /// SmolLM's Sequence[Digits, ByteLevel]; expected pieces from `tokenizers` 0.23.3.
    @Test func digitsPreTokenizer() throws {
        let text = "abc 12345 x٣½9 7"
        for (individual, want) in [(true, ["abc", "Ġ", "1", "2", "3", "4", "5", "Ġx", "Ù£", "Â½", "9", "Ġ", "7"]),
                                   (false, ["abc", "Ġ", "12345", "Ġx", "Ù£Â½9", "Ġ", "7"])] {
            let json = """
                {"model": {"type": "BPE", "vocab": {}, "merges": []}, "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
                 {"type": "Digits", "individual_digits": \(individual)},
                 {"type": "ByteLevel", "add_prefix_space": false, "use_regex": true}]}}
                """
            let t = try Tokenizer.load(json: Data(json.utf8))
            #expect(preTokenize(text, steps: t.preTokenizer) == want)
            t.sourceJSON = nil
            let back = try Tokenizer.load(json: t.jsonData())
            #expect(preTokenize(text, steps: back.preTokenizer) == want)
        }
    }

    @Test func byteLevelMap() {
        #expect(ByteLevel.byteToScalar[0x20] == "\u{120}")
        #expect(ByteLevel.byteToScalar[0x0A] == "\u{10A}")
        #expect(ByteLevel.byteToScalar[Int(UInt8(ascii: "A"))] == "A")
        #expect(Set(ByteLevel.byteToScalar).count == 256)
        let all = (0...255).map { UInt8($0) }
        #expect(ByteLevel.decode(ByteLevel.encode(all)) == all)
        #expect(ByteLevel.decode("中") == nil)
    }
}

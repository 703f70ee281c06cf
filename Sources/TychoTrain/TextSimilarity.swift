// TextSimilarity.swift: the metrics of OpenAI's text_similarity grader, each a pure function of (input, reference)
// with a score in [0, 1], written to match the Python packages that define them (Tests/Fixtures/
// gen_grader_fixtures.py checks every one on the same pairs):
//
//   fuzzy_match   rapidfuzz's fuzz.ratio / 100: the normalized Indel similarity of the two strings' code points,
//                 1 - (len1 + len2 - 2 LCS) / (len1 + len2) (1 for two empty strings). OpenAI documents
//                 fuzzy_match as "using rapidfuzz".
//   bleu          sacrebleu's sentence_bleu with its defaults / 100: tokenizer 13a, 4-grams, exp smoothing,
//                 effective order, brevity penalty.
//   gleu          nltk's sentence_gleu (1- to 4-grams) on the 13a tokens, as Hugging Face evaluate's google_bleu:
//                 matches / max(hypothesis n-grams, reference n-grams).
//   rouge_1..5    Google's rouge-score RougeScorer (default tokenizer, no stemming): the n-gram F-measure.
//   rouge_l       the same with the longest common subsequence of tokens.
// METEOR needs WordNet and is not provided.
//
// Strings are handled as Unicode code points, as Python's str is. The LCS is the bit-parallel algorithm of
// Allison and Dix (also rapidfuzz's), so long answers cost (n m / 64) word operations.

import Foundation

public enum TextSimilarityMetric: String, CaseIterable {
    case fuzzyMatch = "fuzzy_match"
    case bleu
    case gleu
    case rouge1 = "rouge_1"
    case rouge2 = "rouge_2"
    case rouge3 = "rouge_3"
    case rouge4 = "rouge_4"
    case rouge5 = "rouge_5"
    case rougeL = "rouge_l"

    public static var names: [String] { allCases.map(\.rawValue) }

    /// The metric's score of `input` against `reference`, in [0, 1].
    public func score(_ input: String, _ reference: String) -> Double {
        switch self {
        case .fuzzyMatch: return TextSimilarity.fuzzyRatio(input, reference)
        case .bleu: return TextSimilarity.sentenceBLEU(input, reference)
        case .gleu: return TextSimilarity.sentenceGLEU(input, reference)
        case .rouge1: return TextSimilarity.rougeN(input, reference, n: 1)
        case .rouge2: return TextSimilarity.rougeN(input, reference, n: 2)
        case .rouge3: return TextSimilarity.rougeN(input, reference, n: 3)
        case .rouge4: return TextSimilarity.rougeN(input, reference, n: 4)
        case .rouge5: return TextSimilarity.rougeN(input, reference, n: 5)
        case .rougeL: return TextSimilarity.rougeL(input, reference)
        }
    }
}

public enum TextSimilarity {
    // MARK: fuzzy_match (rapidfuzz fuzz.ratio)

    /// rapidfuzz's `fuzz.ratio(a, b) / 100`.
    public static func fuzzyRatio(_ a: String, _ b: String) -> Double {
        let x = Array(a.unicodeScalars), y = Array(b.unicodeScalars)
        let total = x.count + y.count
        if total == 0 { return 1 }
        let distance = total - 2 * lcsLength(x, y)
        let ratio = (1.0 - Double(distance) / Double(total)) * 100  // fuzz.ratio's own arithmetic, to the last bit
        return ratio / 100
    }

    /// The length of the longest common subsequence (Allison-Dix bit-vector algorithm over 64-bit words).
    static func lcsLength<T: Hashable>(_ a: [T], _ b: [T]) -> Int {
        let (s1, s2) = a.count <= b.count ? (a, b) : (b, a)  // bits for the shorter
        let m = s1.count
        if m == 0 { return 0 }
        let words = (m + 63) / 64
        var masks: [T: [UInt64]] = [:]
        for (i, c) in s1.enumerated() {
            masks[c, default: Array(repeating: 0, count: words)][i / 64] |= 1 << UInt64(i % 64)
        }
        var s = Array(repeating: UInt64.max, count: words)
        for c in s2 {
            guard let pm = masks[c] else { continue }
            var carry: UInt64 = 0
            for w in 0..<words {
                let u = s[w] & pm[w]
                let (sum1, o1) = s[w].addingReportingOverflow(u)
                let (sum2, o2) = sum1.addingReportingOverflow(carry)
                carry = (o1 || o2) ? 1 : 0
                s[w] = sum2 | (s[w] & ~pm[w])
            }
        }
        var zeros = 0
        for w in 0..<words {
            let bits = w == words - 1 && m % 64 != 0 ? m % 64 : 64
            let valid: UInt64 = bits == 64 ? .max : (1 << UInt64(bits)) - 1
            zeros += (~s[w] & valid).nonzeroBitCount
        }
        return zeros
    }

    // MARK: Python's whitespace (str.split() and str.rstrip())

    static func isPythonSpace(_ u: Unicode.Scalar) -> Bool {
        switch u.value {
        case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000:
            return true
        default:
            return false
        }
    }

    /// `str.split()`: maximal runs of non-whitespace code points.
    static func pythonSplit(_ s: [Unicode.Scalar]) -> [String] {
        var out: [String] = []
        var cur = String.UnicodeScalarView()
        for u in s {
            if isPythonSpace(u) {
                if !cur.isEmpty { out.append(String(cur)); cur = String.UnicodeScalarView() }
            } else {
                cur.append(u)
            }
        }
        if !cur.isEmpty { out.append(String(cur)) }
        return out
    }

    // MARK: sacrebleu's 13a tokenizer

    static func replacing(_ s: [Unicode.Scalar], _ what: String, with: String) -> [Unicode.Scalar] {
        let w = Array(what.unicodeScalars), r = Array(with.unicodeScalars)
        guard !w.isEmpty, s.count >= w.count else { return s }
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(s.count)
        var i = 0
        while i < s.count {
            if i + w.count <= s.count && s[i] == w[0] && Array(s[i..<(i + w.count)]) == w {
                out += r
                i += w.count
            } else {
                out.append(s[i])
                i += 1
            }
        }
        return out
    }

    static func isDigit(_ u: Unicode.Scalar) -> Bool { u.value >= 0x30 && u.value <= 0x39 }

    /// A two-character regex rule `(A)(B)` -> `pre \1 mid \2 post`, applied left to right without overlaps as
    /// Python's re.sub does.
    static func pairRule(_ s: [Unicode.Scalar], _ first: (Unicode.Scalar) -> Bool, _ second: (Unicode.Scalar) -> Bool,
                         _ build: (Unicode.Scalar, Unicode.Scalar, inout [Unicode.Scalar]) -> Void) -> [Unicode.Scalar] {
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(s.count + 16)
        var i = 0
        while i < s.count {
            if i + 1 < s.count && first(s[i]) && second(s[i + 1]) {
                build(s[i], s[i + 1], &out)
                i += 2
            } else {
                out.append(s[i])
                i += 1
            }
        }
        return out
    }

    /// sacrebleu's `Tokenizer13a()(line.rstrip())`: the tokens of `text`.
    public static func tokenize13a(_ text: String) -> [String] {
        var s = Array(text.unicodeScalars)
        while let last = s.last, isPythonSpace(last) { s.removeLast() }  // BLEU._preprocess_segment's rstrip()
        s = replacing(s, "<skipped>", with: "")
        s = replacing(s, "-\n", with: "")
        s = replacing(s, "\n", with: " ")
        if s.contains("&") {
            s = replacing(s, "&quot;", with: "\"")
            s = replacing(s, "&amp;", with: "&")
            s = replacing(s, "&lt;", with: "<")
            s = replacing(s, "&gt;", with: ">")
        }
        let space: Unicode.Scalar = " "
        // ([\{-\~\[-\` -\&\(-\+\:-\@\/]) -> ' \1 '
        var t: [Unicode.Scalar] = [space]
        t.reserveCapacity(s.count * 2)
        for u in s {
            switch u.value {
            case 0x7B...0x7E, 0x5B...0x60, 0x20...0x26, 0x28...0x2B, 0x3A...0x40, 0x2F:
                t += [space, u, space]
            default:
                t.append(u)
            }
        }
        t.append(space)
        let periodComma: (Unicode.Scalar) -> Bool = { $0 == "." || $0 == "," }
        // ([^0-9])([\.,]) -> '\1 \2 '
        t = pairRule(t, { !isDigit($0) }, periodComma) { a, b, out in out += [a, space, b, space] }
        // ([\.,])([^0-9]) -> ' \1 \2'
        t = pairRule(t, periodComma, { !isDigit($0) }) { a, b, out in out += [space, a, space, b] }
        // ([0-9])(-) -> '\1 \2 '
        t = pairRule(t, isDigit, { $0 == "-" }) { a, b, out in out += [a, space, b, space] }
        return pythonSplit(t)
    }

    // MARK: n-grams

    /// Counts of the n-grams of `tokens` for each n in `orders`. Keys are the UTF-8 bytes of the tokens joined
    /// with a space (which no token has): bytes, because Swift's String equality is canonical equivalence
    /// ("e\u{301}" == "\u{e9}") and Python's is code points.
    static func ngramCounts(_ tokens: [String], orders: ClosedRange<Int>) -> [Int: [[UInt8]: Int]] {
        let bytes = tokens.map { Array($0.utf8) }
        var out: [Int: [[UInt8]: Int]] = [:]
        for n in orders {
            var c: [[UInt8]: Int] = [:]
            if bytes.count >= n {
                for i in 0...(bytes.count - n) {
                    var key = bytes[i]
                    for t in bytes[(i + 1)..<(i + n)] { key.append(0x20); key += t }
                    c[key, default: 0] += 1
                }
            }
            out[n] = c
        }
        return out
    }

    // MARK: bleu (sacrebleu sentence_bleu)

    /// sacrebleu's `sentence_bleu(input, [reference]).score / 100` with its defaults.
    public static func sentenceBLEU(_ input: String, _ reference: String) -> Double {
        let hyp = tokenize13a(input), ref = tokenize13a(reference)
        let maxOrder = 4
        let h = ngramCounts(hyp, orders: 1...maxOrder), r = ngramCounts(ref, orders: 1...maxOrder)
        var correct = Array(repeating: 0, count: maxOrder), total = correct
        for n in 1...maxOrder {
            let refCounts = r[n] ?? [:]
            for (g, count) in h[n] ?? [:] {
                total[n - 1] += count
                if let rc = refCounts[g] { correct[n - 1] += Swift.min(count, rc) }
            }
        }
        return bleuScore(correct: correct, total: total, sysLength: hyp.count, refLength: ref.count) / 100
    }

    /// sacrebleu's `BLEU.compute_bleu` with smooth_method "exp" and effective_order, on the 0-100 scale.
    static func bleuScore(correct: [Int], total: [Int], sysLength: Int, refLength: Int) -> Double {
        var bp = 1.0
        if sysLength < refLength { bp = sysLength > 0 ? exp(1 - Double(refLength) / Double(sysLength)) : 0 }
        if !correct.contains(where: { $0 != 0 }) { return 0 }
        var precisions = Array(repeating: 0.0, count: correct.count)
        var smooth = 1.0
        var effectiveOrder = correct.count
        for n in 1...correct.count {
            if total[n - 1] == 0 { break }
            effectiveOrder = n
            if correct[n - 1] == 0 {
                smooth *= 2
                precisions[n - 1] = 100.0 / (smooth * Double(total[n - 1]))
            } else {
                precisions[n - 1] = 100.0 * Double(correct[n - 1]) / Double(total[n - 1])
            }
        }
        var logSum = 0.0
        for p in precisions[..<effectiveOrder] { logSum += p == 0 ? -9_999_999_999 : log(p) }
        return bp * exp(logSum / Double(effectiveOrder))
    }

    // MARK: gleu (nltk sentence_gleu on 13a tokens)

    /// nltk's `sentence_gleu([reference_tokens], input_tokens)` with 1- to 4-grams, tokens from `tokenize13a`.
    public static func sentenceGLEU(_ input: String, _ reference: String) -> Double {
        let hyp = tokenize13a(input), ref = tokenize13a(reference)
        let h = ngramCounts(hyp, orders: 1...4), r = ngramCounts(ref, orders: 1...4)
        var tp = 0, tpfp = 0, tpfn = 0
        for n in 1...4 {
            let hc = h[n] ?? [:], rc = r[n] ?? [:]
            tpfp += hc.values.reduce(0, +)
            tpfn += rc.values.reduce(0, +)
            for (g, c) in hc { if let k = rc[g] { tp += Swift.min(c, k) } }
        }
        let all = Swift.max(tpfp, tpfn)
        return all == 0 ? 0 : Double(tp) / Double(all)
    }

    // MARK: rouge (Google's rouge-score)

    /// rouge-score's default tokenizer: lowercase, non-[a-z0-9] runs to spaces, split.
    public static func rougeTokens(_ text: String) -> [String] {
        var tokens: [String] = []
        var cur = String.UnicodeScalarView()
        for u in text.lowercased().unicodeScalars {
            if (u.value >= 0x61 && u.value <= 0x7A) || isDigit(u) {
                cur.append(u)
            } else if !cur.isEmpty {
                tokens.append(String(cur))
                cur = String.UnicodeScalarView()
            }
        }
        if !cur.isEmpty { tokens.append(String(cur)) }
        return tokens
    }

    static func fmeasure(_ precision: Double, _ recall: Double) -> Double {
        precision + recall > 0 ? 2 * precision * recall / (precision + recall) : 0
    }

    /// rouge-score's `rougeN` F-measure of input (prediction) against reference (target).
    public static func rougeN(_ input: String, _ reference: String, n: Int) -> Double {
        let pred = ngramCounts(rougeTokens(input), orders: n...n)[n] ?? [:]
        let target = ngramCounts(rougeTokens(reference), orders: n...n)[n] ?? [:]
        var overlap = 0
        for (g, c) in target { overlap += Swift.min(c, pred[g] ?? 0) }
        let predCount = pred.values.reduce(0, +), targetCount = target.values.reduce(0, +)
        let precision = Double(overlap) / Double(Swift.max(predCount, 1))
        let recall = Double(overlap) / Double(Swift.max(targetCount, 1))
        return fmeasure(precision, recall)
    }

    /// rouge-score's `rougeL` F-measure (longest common subsequence of tokens).
    public static func rougeL(_ input: String, _ reference: String) -> Double {
        let pred = rougeTokens(input), target = rougeTokens(reference)
        if pred.isEmpty || target.isEmpty { return 0 }
        let lcs = Double(lcsLength(target, pred))
        return fmeasure(lcs / Double(pred.count), lcs / Double(target.count))
    }
}

// BPETrainer.swift: trains a byte-level BPE tokenizer from local text (GPT-2 layout).
//
// Ids: the special tokens first (0, 1, ...), then the 256 byte characters in byte order, then one id per
// merge. The text is split at special tokens, pre-tokenized with the GPT-2 regex and counted per distinct
// pre-token; each step merges the most frequent adjacent pair. Ties go to the pair whose (left, right) bytes
// sort first, so training is deterministic on every machine. Pair counts are updated only in the words that
// hold the merged pair. Training stops at `vocabSize` or when no pair occurs `minFrequency` times.

import Foundation

public enum BPETrainer {
    /// Trains on the contents of UTF-8 text files.
    public static func train(files: [String], vocabSize: Int, specialTokens: [String] = [],
                             minFrequency: Int = 2) throws -> Tokenizer {
        guard !files.isEmpty else { throw TokenizerError("no training files given") }
        var texts: [String] = []
        for f in files {
            guard let data = FileManager.default.contents(atPath: f) else { throw TokenizerError("cannot read \(f)") }
            guard let s = String(data: data, encoding: .utf8) else { throw TokenizerError("\(f) is not UTF-8 text") }
            texts.append(s)
        }
        return try train(texts: texts, vocabSize: vocabSize, specialTokens: specialTokens, minFrequency: minFrequency)
    }

    /// Trains on strings.
    /// - Parameters:
    ///   - vocabSize: the final vocabulary size, special tokens and the 256 bytes included.
    ///   - specialTokens: added tokens with ids 0, 1, ...; never split, never merged.
    ///   - minFrequency: the least count a pair needs to be merged.
    public static func train(texts: [String], vocabSize: Int, specialTokens: [String] = [],
                             minFrequency: Int = 2) throws -> Tokenizer {
        let base = specialTokens.count + 256
        guard vocabSize >= base else {
            throw TokenizerError("vocab_size must be at least \(base) (256 bytes + \(specialTokens.count) special tokens), got \(vocabSize)")
        }
        guard vocabSize <= 1 << 20 else { throw TokenizerError("vocab_size must be at most \(1 << 20), got \(vocabSize)") }
        guard minFrequency >= 1 else { throw TokenizerError("min_frequency must be at least 1, got \(minFrequency)") }
        var seen = Set<String>()
        for s in specialTokens {
            guard !s.isEmpty else { throw TokenizerError("special tokens must not be empty") }
            guard seen.insert(s).inserted else { throw TokenizerError("special token \(s.debugDescription) is given twice") }
        }

        // Vocabulary: specials, then bytes.
        var tokens: [String] = specialTokens           // id -> byte-level string
        var tokBytes: [[UInt8]] = specialTokens.map { Array($0.utf8) }
        var vocab: [String: Int] = [:]
        for (i, s) in specialTokens.enumerated() { vocab[s] = i }
        for b in 0..<256 {
            let s = String(ByteLevel.byteToScalar[b])
            vocab[s] = tokens.count
            tokens.append(s)
            tokBytes.append([UInt8(b)])
        }

        // Distinct pre-tokens with their counts.
        let splitter = try Tokenizer(model: BPEModel(vocab: [:], merges: []),
                                     addedTokens: specialTokens.enumerated().map { AddedToken(id: $0.offset, content: $0.element, special: true) },
                                     preTokenizer: [.byteLevel(addPrefixSpace: false, useRegex: true)])
        var counts: [String: Int] = [:]
        for text in texts {
            for case .text(let seg) in splitter.splitAdded(text) {
                for w in preTokenize(seg, steps: splitter.preTokenizer) { counts[w, default: 0] += 1 }
            }
        }
        let wordList = counts.keys.sorted()
        var words: [[Int]] = wordList.map { w in w.unicodeScalars.map { vocab[String($0)] ?? 0 } }
        let freq: [Int] = wordList.map { counts[$0] ?? 0 }

        // Pair counts and the words each pair occurs in.
        var pairCount: [UInt64: Int] = [:]
        var pairWords: [UInt64: Set<Int>] = [:]
        func addPairs(_ w: Int, _ sign: Int) {
            let s = words[w]
            guard s.count > 1 else { return }
            for i in 0..<(s.count - 1) {
                let k = BPEModel.key(s[i], s[i + 1])
                pairCount[k, default: 0] += sign * freq[w]
                if sign > 0 { pairWords[k, default: []].insert(w) }
            }
        }
        for w in words.indices { addPairs(w, 1) }

        var merges: [(String, String)] = []
        while vocab.count < vocabSize {
            var best: UInt64? = nil, bestCount = 0
            for (k, c) in pairCount where c >= minFrequency {
                if c > bestCount { best = k; bestCount = c; continue }
                if c == bestCount, let b = best, less(k, b, tokBytes) { best = k }
            }
            guard let pair = best else { break }
            let a = Int(pair >> 32), b = Int(pair & 0xFFFF_FFFF)
            let merged = tokens[a] + tokens[b]
            if let existing = vocab[merged], existing < specialTokens.count {
                pairCount[pair] = nil  // bytes that spell a special token are never merged into it
                continue
            }
            let newId: Int
            if let existing = vocab[merged] { newId = existing } else {
                newId = tokens.count
                vocab[merged] = newId
                tokens.append(merged)
                tokBytes.append(tokBytes[a] + tokBytes[b])
            }
            merges.append((tokens[a], tokens[b]))
            for w in (pairWords[pair] ?? []).sorted() {
                let s = words[w]
                guard s.count > 1 else { continue }
                addPairs(w, -1)
                var out: [Int] = []
                out.reserveCapacity(s.count)
                var i = 0
                while i < s.count {
                    if i + 1 < s.count && s[i] == a && s[i + 1] == b { out.append(newId); i += 2 } else { out.append(s[i]); i += 1 }
                }
                words[w] = out
                addPairs(w, 1)
            }
            pairCount[pair] = nil
            pairWords[pair] = nil
        }

        let model = try BPEModel(vocab: vocab, merges: merges)
        return try Tokenizer(model: model,
                             addedTokens: specialTokens.enumerated().map { AddedToken(id: $0.offset, content: $0.element, special: true) },
                             preTokenizer: [.byteLevel(addPrefixSpace: false, useRegex: true)])
    }

    /// Tie-break: the pair whose left bytes, then right bytes, sort first.
    static func less(_ x: UInt64, _ y: UInt64, _ bytes: [[UInt8]]) -> Bool {
        let xa = bytes[Int(x >> 32)], ya = bytes[Int(y >> 32)]
        if xa != ya { return xa.lexicographicallyPrecedes(ya) }
        return bytes[Int(x & 0xFFFF_FFFF)].lexicographicallyPrecedes(bytes[Int(y & 0xFFFF_FFFF)])
    }
}

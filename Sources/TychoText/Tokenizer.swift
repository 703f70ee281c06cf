// Tokenizer.swift: a Hugging Face style tokenizer: added tokens, normalizer, pre-tokenizer, BPE, post-processor
// and decoder, with the pipeline of `tokenizers`' `encode` and `decode`.
//
// encode: added tokens (specials and others) are found in the raw text first (leftmost, longest); the text
// between them is normalized (only NFC is supported), pre-tokenized and run through BPE; the post-processor
// then adds template tokens (BOS) when asked. decode: ids -> tokens (specials optionally skipped), then the
// ByteLevel decoder maps characters back to bytes, read as UTF-8 with U+FFFD for invalid sequences.
// Ids are Hugging Face ids: 0-based values, never shifted.

import Foundation

/// A token added on top of the model's vocabulary (`added_tokens` in tokenizer.json).
public struct AddedToken: Equatable {
    public var id: Int
    public var content: String
    public var special: Bool
    public var singleWord = false
    public var lstrip = false
    public var rstrip = false
    public var normalized = false

    public init(id: Int, content: String, special: Bool, singleWord: Bool = false, lstrip: Bool = false,
                rstrip: Bool = false, normalized: Bool = false) {
        self.id = id; self.content = content; self.special = special
        self.singleWord = singleWord; self.lstrip = lstrip; self.rstrip = rstrip; self.normalized = normalized
    }
}

public enum Normalizer: Equatable {
    case nfc
}

public enum Decoder: Equatable {
    /// Characters back to bytes, then UTF-8.
    case byteLevel
    /// No decoder: tokens joined with spaces (what `tokenizers` does without one).
    case none
}

/// The post-processor's effect on a single sequence: tokens before and after it.
public struct PostProcessor: Equatable {
    public var prefix: [Int] = []
    public var suffix: [Int] = []
    public init(prefix: [Int] = [], suffix: [Int] = []) { self.prefix = prefix; self.suffix = suffix }
}

public final class Tokenizer {
    public let model: BPEModel
    public let addedTokens: [AddedToken]
    public let normalizer: Normalizer?
    public let preTokenizer: [PreTokenizerStep]
    public let postProcessor: PostProcessor
    public let decoder: Decoder
    /// What kind of tokenizer this is, for printing (`BPE`, `bytes`).
    public let kind: String
    /// The tokenizer.json this was loaded from (saved back verbatim), or nil when made in Swift.
    public internal(set) var sourceJSON: Data?

    let addedById: [Int: AddedToken]
    let addedByContent: [String: AddedToken]
    /// Added tokens longest first, for leftmost-longest matching.
    let addedByLength: [AddedToken]
    /// Added tokens grouped by their first scalar.
    let addedByFirst: [Unicode.Scalar: [AddedToken]]

    public init(model: BPEModel, addedTokens: [AddedToken] = [], normalizer: Normalizer? = nil,
                preTokenizer: [PreTokenizerStep], postProcessor: PostProcessor = PostProcessor(),
                decoder: Decoder = .byteLevel, kind: String = "BPE") throws {
        self.model = model
        self.addedTokens = addedTokens
        self.normalizer = normalizer
        self.preTokenizer = preTokenizer
        self.postProcessor = postProcessor
        self.decoder = decoder
        self.kind = kind
        var byId: [Int: AddedToken] = [:], byContent: [String: AddedToken] = [:]
        for t in addedTokens {
            guard !t.content.isEmpty else { throw TokenizerError("added_tokens: token \(t.id) has empty content") }
            guard t.id >= 0 else { throw TokenizerError("added_tokens: \(t.content.debugDescription) has a negative id \(t.id)") }
            if let m = model.idToToken[t.id], m != t.content {
                throw TokenizerError("added_tokens: id \(t.id) is \(t.content.debugDescription) but the vocabulary has \(m.debugDescription)")
            }
            byId[t.id] = t
            byContent[t.content] = t
        }
        addedById = byId
        addedByContent = byContent
        addedByLength = addedTokens.sorted { $0.content.unicodeScalars.count > $1.content.unicodeScalars.count }
        var first: [Unicode.Scalar: [AddedToken]] = [:]
        for t in addedByLength { if let f = t.content.unicodeScalars.first { first[f, default: []].append(t) } }
        addedByFirst = first
        for id in postProcessor.prefix + postProcessor.suffix where token(for: id) == nil {
            throw TokenizerError("post_processor: token id \(id) is not in the vocabulary")
        }
    }

    // MARK: vocabulary

    /// One more than the largest id (of the model or an added token): the embedding size a model needs.
    public var vocabSize: Int {
        max((model.idToToken.keys.max() ?? -1), (addedById.keys.max() ?? -1)) + 1
    }

    public func id(for token: String) -> Int? { addedByContent[token]?.id ?? model.vocab[token] }

    public func token(for id: Int) -> String? { addedById[id]?.content ?? model.idToToken[id] }

    public func isSpecial(_ id: Int) -> Bool { addedById[id]?.special ?? false }

    public var specialTokens: [AddedToken] { addedTokens.filter(\.special) }

    // MARK: encode

    /// The ids of `text`.
    /// - Parameters:
    ///   - addSpecial: add the post-processor's tokens (a BOS for Llama-3 style files; nothing for GPT-2).
    public func encode(_ text: String, addSpecial: Bool = true) -> [Int] {
        var ids: [Int] = []
        for segment in splitAdded(text) {
            switch segment {
            case .added(let id): ids.append(id)
            case .text(let s):
                let normalized = normalizer == .nfc ? s.precomposedStringWithCanonicalMapping : s
                for piece in preTokenize(normalized, steps: preTokenizer) { ids += model.tokenize(piece) }
            }
        }
        return addSpecial ? postProcessor.prefix + ids + postProcessor.suffix : ids
    }

    enum Segment: Equatable { case text(String), added(Int) }

    /// Splits text at added tokens, leftmost first and longest at a position. `lstrip`/`rstrip` tokens also
    /// take the whitespace beside them; `single_word` ones match only between non-word characters.
    func splitAdded(_ text: String) -> [Segment] {
        guard !addedTokens.isEmpty else { return text.isEmpty ? [] : [.text(text)] }
        let sc = Array(text.unicodeScalars)
        var out: [Segment] = []
        var textStart = 0, i = 0
        func emitText(_ a: Int, _ b: Int) {
            guard b > a else { return }
            var v = String.UnicodeScalarView(); v.append(contentsOf: sc[a..<b]); out.append(.text(String(v)))
        }
        func isWord(_ j: Int) -> Bool {
            guard j >= 0 && j < sc.count else { return false }
            let c = ScalarClass(sc[j])
            return c == .letter || c == .number || sc[j] == "_"
        }
        while i < sc.count {
            var matched: (AddedToken, Int)? = nil
            if let candidates = addedByFirst[sc[i]] {
                for t in candidates {
                    let tc = Array(t.content.unicodeScalars)
                    guard i + tc.count <= sc.count, Array(sc[i..<i + tc.count]) == tc else { continue }
                    if t.singleWord && (isWord(i - 1) || isWord(i + tc.count)) { continue }
                    matched = (t, i + tc.count)
                    break
                }
            }
            guard let (t, end0) = matched else { i += 1; continue }
            var start = i, end = end0
            if t.lstrip { while start > textStart && sc[start - 1].properties.isWhitespace { start -= 1 } }
            if t.rstrip { while end < sc.count && sc[end].properties.isWhitespace { end += 1 } }
            emitText(textStart, start)
            out.append(.added(t.id))
            textStart = end
            i = end
        }
        emitText(textStart, sc.count)
        return out
    }

    // MARK: decode

    /// The text of `ids`.
    /// - Parameters:
    ///   - skipSpecial: leave out special added tokens.
    /// - Throws: when an id is not in the vocabulary.
    public func decode(_ ids: [Int], skipSpecial: Bool = false) throws -> String {
        var tokens: [String] = []
        tokens.reserveCapacity(ids.count)
        for (k, id) in ids.enumerated() {
            guard let t = token(for: id) else {
                throw TokenizerError("id \(id) at position \(k + 1) is not in the vocabulary (size \(vocabSize))")
            }
            if skipSpecial && isSpecial(id) { continue }
            tokens.append(t)
        }
        switch decoder {
        case .none:
            return tokens.joined(separator: " ")
        case .byteLevel:
            var bytes: [UInt8] = []
            for t in tokens { bytes += ByteLevel.decode(t) ?? Array(t.utf8) }
            return String(decoding: bytes, as: UTF8.self)
        }
    }
}

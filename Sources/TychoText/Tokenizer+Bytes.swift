// Tokenizer+Bytes.swift: the bytes tokenizer: id b for byte b (0...255), then the special tokens from 256 on.
//
// It is a byte-level BPE with no merges and the identity vocabulary, so it saves as an ordinary
// tokenizer.json that `tokenizers` (and `Tokenizer.load`) reads back with the same ids.

extension Tokenizer {
    /// A tokenizer whose ids are the UTF-8 bytes of the text, plus `specialTokens` numbered from 256.
    public static func bytes(specialTokens: [String] = []) throws -> Tokenizer {
        var vocab: [String: Int] = [:]
        for b in 0..<256 { vocab[String(ByteLevel.byteToScalar[b])] = b }
        var added: [AddedToken] = []
        for (k, s) in specialTokens.enumerated() {
            guard !s.isEmpty else { throw TokenizerError("special token \(k + 1) is empty") }
            guard vocab[s] == nil else { throw TokenizerError("special token \(s.debugDescription) is given twice or is a byte") }
            vocab[s] = 256 + k
            added.append(AddedToken(id: 256 + k, content: s, special: true))
        }
        return try Tokenizer(model: BPEModel(vocab: vocab, merges: []), addedTokens: added,
                             preTokenizer: [.byteLevel(addPrefixSpace: false, useRegex: false)], kind: "bytes")
    }
}

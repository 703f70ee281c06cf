// Tokenizer+JSON.swift: reading and writing Hugging Face tokenizer.json (see formats.md 2.2).
//
// Reads model type BPE with merges as "a b" strings (before tokenizers 0.20) or [a, b] pairs (after), the
// ByteLevel / Split / Sequence pre-tokenizers, NFC or no normalizer, ByteLevel / TemplateProcessing / Sequence
// post-processors and the ByteLevel decoder. Anything else is a clear error naming the key, not a silent
// difference from `tokenizers`. A loaded file is saved back verbatim; a tokenizer made in Swift (bytes,
// train_bpe) is written in the layout `tokenizers` writes, atomically.

import Foundation

extension Tokenizer {
    /// Loads a tokenizer.json file.
    public static func load(path: String) throws -> Tokenizer {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw TokenizerError("cannot read \(path): \((error as NSError).localizedDescription)")
        }
        do {
            return try load(json: data)
        } catch let e as TokenizerError {
            throw TokenizerError("\(path): \(e.message)")
        }
    }

    /// Parses the contents of a tokenizer.json.
    public static func load(json data: Data) throws -> Tokenizer {
        let root: Any
        do {
            root = try JSONSerialization.jsonObject(with: data, options: [])
        } catch {
            throw TokenizerError("not valid JSON (\((error as NSError).localizedDescription))")
        }
        guard let top = root as? [String: Any] else { throw TokenizerError("the top level is not a JSON object") }
        guard let modelJSON = top["model"] as? [String: Any] else { throw TokenizerError("model is missing or not an object") }
        let model = try parseModel(modelJSON)
        let added = try parseAddedTokens(top["added_tokens"])
        let normalizer = try parseNormalizer(top["normalizer"])
        let pre = try parsePreTokenizer(top["pre_tokenizer"], key: "pre_tokenizer")
        let tmp = try Tokenizer(model: model, addedTokens: added, preTokenizer: [])
        let post = try parsePostProcessor(top["post_processor"], key: "post_processor", tokenizer: tmp)
        let decoder = try parseDecoder(top["decoder"])
        let t = try Tokenizer(model: model, addedTokens: added, normalizer: normalizer, preTokenizer: pre,
                              postProcessor: post, decoder: decoder)
        t.sourceJSON = data
        return t
    }

    // MARK: parts

    static func isNull(_ v: Any?) -> Bool { v == nil || v is NSNull }

    static func int(_ v: Any?, _ key: String) throws -> Int {
        guard let n = v as? NSNumber, let i = Int(exactly: n.doubleValue) else {
            throw TokenizerError("\(key) must be an integer")
        }
        return i
    }

    static func bool(_ v: Any?, _ key: String, default d: Bool) throws -> Bool {
        if isNull(v) { return d }
        guard let b = v as? Bool else { throw TokenizerError("\(key) must be true or false") }
        return b
    }

    static func string(_ v: Any?, _ key: String) throws -> String {
        guard let s = v as? String else { throw TokenizerError("\(key) must be a string") }
        return s
    }

    static func parseModel(_ m: [String: Any]) throws -> BPEModel {
        if let type = m["type"] {
            guard let t = type as? String, t == "BPE" else {
                throw TokenizerError("model.type \(String(describing: type).debugDescription) is not supported (only BPE)")
            }
        }
        guard let vocabJSON = m["vocab"] as? [String: Any] else { throw TokenizerError("model.vocab is missing or not an object") }
        var vocab: [String: Int] = [:]
        vocab.reserveCapacity(vocabJSON.count)
        for (tok, v) in vocabJSON { vocab[tok] = try int(v, "model.vocab[\(tok.debugDescription)]") }
        guard let mergesJSON = (isNull(m["merges"]) ? [] : m["merges"]) as? [Any] else {
            throw TokenizerError("model.merges must be a list")
        }
        var merges: [(String, String)] = []
        merges.reserveCapacity(mergesJSON.count)
        for (k, x) in mergesJSON.enumerated() {
            if let s = x as? String {
                let parts = s.split(separator: " ", omittingEmptySubsequences: false)
                guard parts.count == 2 else {
                    throw TokenizerError("model.merges[\(k + 1)] \(s.debugDescription) is not two tokens separated by one space")
                }
                merges.append((String(parts[0]), String(parts[1])))
            } else if let p = x as? [Any], p.count == 2, let a = p[0] as? String, let b = p[1] as? String {
                merges.append((a, b))
            } else {
                throw TokenizerError("model.merges[\(k + 1)] must be a string \"a b\" or a pair [\"a\", \"b\"]")
            }
        }
        if !isNull(m["dropout"]) {
            guard let d = m["dropout"] as? NSNumber, d.doubleValue == 0 else {
                throw TokenizerError("model.dropout is not supported (BPE dropout is for training)")
            }
        }
        for key in ["continuing_subword_prefix", "end_of_word_suffix"] where !isNull(m[key]) {
            guard let s = m[key] as? String, s.isEmpty else { throw TokenizerError("model.\(key) is not supported") }
        }
        let unk: String? = isNull(m["unk_token"]) ? nil : try string(m["unk_token"], "model.unk_token")
        return try BPEModel(vocab: vocab, merges: merges,
                            ignoreMerges: try bool(m["ignore_merges"], "model.ignore_merges", default: false),
                            byteFallback: try bool(m["byte_fallback"], "model.byte_fallback", default: false),
                            unkToken: unk, fuseUnk: try bool(m["fuse_unk"], "model.fuse_unk", default: false))
    }

    static func parseAddedTokens(_ v: Any?) throws -> [AddedToken] {
        if isNull(v) { return [] }
        guard let list = v as? [Any] else { throw TokenizerError("added_tokens must be a list") }
        return try list.enumerated().map { k, x in
            let key = "added_tokens[\(k + 1)]"
            guard let o = x as? [String: Any] else { throw TokenizerError("\(key) must be an object") }
            return AddedToken(id: try int(o["id"], "\(key).id"), content: try string(o["content"], "\(key).content"),
                              special: try bool(o["special"], "\(key).special", default: false),
                              singleWord: try bool(o["single_word"], "\(key).single_word", default: false),
                              lstrip: try bool(o["lstrip"], "\(key).lstrip", default: false),
                              rstrip: try bool(o["rstrip"], "\(key).rstrip", default: false),
                              normalized: try bool(o["normalized"], "\(key).normalized", default: false))
        }
    }

    static func typeOf(_ v: Any?, _ key: String) throws -> (String, [String: Any]) {
        guard let o = v as? [String: Any] else { throw TokenizerError("\(key) must be an object or null") }
        guard let t = o["type"] as? String else { throw TokenizerError("\(key).type is missing") }
        return (t, o)
    }

    static func parseNormalizer(_ v: Any?) throws -> Normalizer? {
        if isNull(v) { return nil }
        let (t, o) = try typeOf(v, "normalizer")
        switch t {
        case "NFC": return .nfc
        case "Sequence":
            let list = (o["normalizers"] as? [Any]) ?? []
            let parts = try list.map { try parseNormalizer($0) }.compactMap { $0 }
            guard parts.count <= 1 else { throw TokenizerError("normalizer: only one NFC step is supported") }
            return parts.first
        default: throw TokenizerError("normalizer type \(t.debugDescription) is not supported (only NFC)")
        }
    }

    static func parsePreTokenizer(_ v: Any?, key: String) throws -> [PreTokenizerStep] {
        if isNull(v) { return [] }
        let (t, o) = try typeOf(v, key)
        switch t {
        case "ByteLevel":
            return [.byteLevel(addPrefixSpace: try bool(o["add_prefix_space"], "\(key).add_prefix_space", default: false),
                               useRegex: try bool(o["use_regex"], "\(key).use_regex", default: true))]
        case "Split":
            guard let p = o["pattern"] as? [String: Any] else { throw TokenizerError("\(key).pattern must be an object") }
            let pattern: SplitPattern
            if let re = p["Regex"] as? String { pattern = try SplitPattern.fromRegex(re) }
            else if let s = p["String"] as? String { pattern = .literal(s) }
            else { throw TokenizerError("\(key).pattern must hold Regex or String") }
            let behaviorName = (o["behavior"] as? String) ?? "Isolated"
            guard let behavior = SplitBehavior(rawValue: behaviorName) else {
                throw TokenizerError("\(key).behavior \(behaviorName.debugDescription) is not supported (Isolated, Removed)")
            }
            guard try !bool(o["invert"], "\(key).invert", default: false) else {
                throw TokenizerError("\(key).invert = true is not supported")
            }
            return [.split(pattern, behavior)]
        case "Digits":
            return [.split(.digits(individual: try bool(o["individual_digits"], "\(key).individual_digits", default: false)), .isolated)]
        case "Sequence":
            guard let list = o["pretokenizers"] as? [Any] else { throw TokenizerError("\(key).pretokenizers must be a list") }
            return try list.enumerated().flatMap { k, x in try parsePreTokenizer(x, key: "\(key).pretokenizers[\(k + 1)]") }
        default:
            throw TokenizerError("\(key) type \(t.debugDescription) is not supported (ByteLevel, Split, Digits, Sequence)")
        }
    }

    static func parsePostProcessor(_ v: Any?, key: String, tokenizer: Tokenizer) throws -> PostProcessor {
        if isNull(v) { return PostProcessor() }
        let (t, o) = try typeOf(v, key)
        switch t {
        case "ByteLevel": return PostProcessor()  // offsets only
        case "TemplateProcessing":
            guard let single = o["single"] as? [Any] else { throw TokenizerError("\(key).single must be a list") }
            let specials = o["special_tokens"] as? [String: Any] ?? [:]
            var out = PostProcessor(), seenSequence = false
            for (k, piece) in single.enumerated() {
                let pk = "\(key).single[\(k + 1)]"
                guard let p = piece as? [String: Any] else { throw TokenizerError("\(pk) must be an object") }
                if p["Sequence"] != nil {
                    guard !seenSequence else { throw TokenizerError("\(pk): more than one sequence in a single template") }
                    seenSequence = true
                } else if let st = p["SpecialToken"] as? [String: Any] {
                    let name = try string(st["id"], "\(pk).SpecialToken.id")
                    var ids: [Int]
                    if let entry = specials[name] as? [String: Any], let list = entry["ids"] as? [Any] {
                        ids = try list.map { try int($0, "\(key).special_tokens[\(name.debugDescription)].ids") }
                    } else if let id = tokenizer.id(for: name) {
                        ids = [id]
                    } else {
                        throw TokenizerError("\(pk): special token \(name.debugDescription) is unknown")
                    }
                    if seenSequence { out.suffix += ids } else { out.prefix += ids }
                    ids = []
                } else {
                    throw TokenizerError("\(pk) must be a Sequence or a SpecialToken")
                }
            }
            return out
        case "Sequence":
            guard let list = o["processors"] as? [Any] else { throw TokenizerError("\(key).processors must be a list") }
            var out = PostProcessor()
            for (k, x) in list.enumerated() {
                let p = try parsePostProcessor(x, key: "\(key).processors[\(k + 1)]", tokenizer: tokenizer)
                out.prefix += p.prefix
                out.suffix += p.suffix
            }
            return out
        default:
            throw TokenizerError("\(key) type \(t.debugDescription) is not supported (ByteLevel, TemplateProcessing, Sequence)")
        }
    }

    static func parseDecoder(_ v: Any?) throws -> Decoder {
        if isNull(v) { return .none }
        let (t, _) = try typeOf(v, "decoder")
        guard t == "ByteLevel" else { throw TokenizerError("decoder type \(t.debugDescription) is not supported (only ByteLevel)") }
        return .byteLevel
    }

    // MARK: write

    /// The tokenizer.json text: the loaded file as it was, or this tokenizer in `tokenizers`' layout.
    public func jsonData() -> Data {
        if let d = sourceJSON { return d }
        return Data(jsonValue().text.utf8)
    }

    /// Writes tokenizer.json atomically (a temporary file renamed over the target).
    public func save(path: String) throws {
        do {
            try jsonData().write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw TokenizerError("cannot write \(path): \((error as NSError).localizedDescription)")
        }
    }

    func jsonValue() -> JSONValue {
        let byteLevel: [(String, JSONValue)] = [("type", .string("ByteLevel")), ("add_prefix_space", .bool(true)),
                                                ("trim_offsets", .bool(true)), ("use_regex", .bool(true))]
        func pre(_ s: PreTokenizerStep) -> JSONValue {
            switch s {
            case .byteLevel(let prefix, let useRegex):
                return .object([("type", .string("ByteLevel")), ("add_prefix_space", .bool(prefix)),
                                ("trim_offsets", .bool(true)), ("use_regex", .bool(useRegex))])
            case .split(.digits(let individual), _):
                return .object([("type", .string("Digits")), ("individual_digits", .bool(individual))])
            case .split(let p, let b):
                let pattern: JSONValue
                if case .literal(let s) = p { pattern = .object([("String", .string(s))]) }
                else { pattern = .object([("Regex", .string(p.source))]) }
                return .object([("type", .string("Split")), ("pattern", pattern),
                                ("behavior", .string(b.rawValue)), ("invert", .bool(false))])
            }
        }
        let preJSON: JSONValue = preTokenizer.isEmpty ? .null : preTokenizer.count == 1 ? pre(preTokenizer[0])
            : .object([("type", .string("Sequence")), ("pretokenizers", .array(preTokenizer.map(pre)))])
        var post: JSONValue = .object(byteLevel)
        if !postProcessor.prefix.isEmpty || !postProcessor.suffix.isEmpty {
            func piece(_ id: Int) -> JSONValue {
                .object([("SpecialToken", .object([("id", .string(token(for: id) ?? "")), ("type_id", .int(0))]))])
            }
            let single = postProcessor.prefix.map(piece)
                + [.object([("Sequence", .object([("id", .string("A")), ("type_id", .int(0))]))])]
                + postProcessor.suffix.map(piece)
            let names = Array(Set(postProcessor.prefix + postProcessor.suffix)).sorted()
            let specials: [(String, JSONValue)] = names.map { id in
                let t = token(for: id) ?? ""
                return (t, .object([("id", .string(t)), ("ids", .array([.int(id)])), ("tokens", .array([.string(t)]))]))
            }
            post = .object([("type", .string("TemplateProcessing")), ("single", .array(single)),
                            ("pair", .array(single)), ("special_tokens", .object(specials))])
        }
        let vocabList = model.vocab.sorted { $0.value < $1.value }.map { ($0.key, JSONValue.int($0.value)) }
        let modelJSON: JSONValue = .object([
            ("type", .string("BPE")), ("dropout", .null),
            ("unk_token", model.unkToken.map(JSONValue.string) ?? .null),
            ("continuing_subword_prefix", .null), ("end_of_word_suffix", .null),
            ("fuse_unk", .bool(model.fuseUnk)), ("byte_fallback", .bool(model.byteFallback)),
            ("ignore_merges", .bool(model.ignoreMerges)),
            ("vocab", .object(vocabList)),
            ("merges", .array(model.merges.map { .array([.string($0.0), .string($0.1)]) })),
        ])
        let added: [JSONValue] = addedTokens.map { t in
            .object([("id", .int(t.id)), ("content", .string(t.content)), ("single_word", .bool(t.singleWord)),
                     ("lstrip", .bool(t.lstrip)), ("rstrip", .bool(t.rstrip)), ("normalized", .bool(t.normalized)),
                     ("special", .bool(t.special))])
        }
        return .object([
            ("version", .string("1.0")), ("truncation", .null), ("padding", .null),
            ("added_tokens", .array(added)),
            ("normalizer", normalizer == .nfc ? .object([("type", .string("NFC"))]) : .null),
            ("pre_tokenizer", preJSON),
            ("post_processor", post),
            ("decoder", decoder == .byteLevel ? .object(byteLevel) : .null),
            ("model", modelJSON),
        ])
    }
}

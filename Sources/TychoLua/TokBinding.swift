// TokBinding.swift: the Lua module `tok` and the methods of tokenizer userdata (`tycho.Tokenizer`).
//
// Token ids are values, not indices: they keep their Hugging Face numbering (0-based) in every table this
// module takes or returns. Texts must be valid UTF-8 (a Lua string is bytes; `tokenizers` takes Unicode text),
// so a string that is not is an error rather than a silently different encoding.

import CLua
import CLuaShim
import TychoTensor
import TychoText

enum TokBinding {
    static let metatable = "tycho.Tokenizer"

    // MARK: helpers

    static func tokenizer(_ a: LuaArgs, _ idx: Int = 1) throws -> Tokenizer {
        if let t = a.lua.object(Int32(idx), metatable: metatable, as: Tokenizer.self) { return t }
        if a.lua.type(Int32(idx)) == LUA_TUSERDATA, a.lua.isFinalized(Int32(idx)) {
            throw a.argumentError(idx, "a live tokenizer, got one that was already collected")
        }
        throw a.typeError(idx, "a tokenizer")
    }

    /// Runs a TychoText call, turning its errors into binding errors.
    static func run<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch let e as TokenizerError { throw LuaBindingError(e.message) }
    }

    /// The UTF-8 text at idx (a Lua string that is valid UTF-8).
    static func text(_ a: LuaArgs, _ idx: Int) throws -> String {
        guard a.lua.type(Int32(idx)) == LUA_TSTRING else { throw a.typeError(idx, "a string") }
        var len = 0
        guard let p = lua_tolstring(a.lua.L, Int32(idx), &len) else { throw a.typeError(idx, "a string") }
        let bytes = UnsafeRawBufferPointer(start: p, count: len)
        guard let s = String(validating: bytes, as: UTF8.self) else {
            throw a.argumentError(idx, "valid UTF-8 text, got a string with invalid UTF-8 bytes")
        }
        return s
    }

    /// Checks that the options table at idx (if any) has only the keys `allowed`, for typo safety.
    static func checkOptions(_ a: LuaArgs, _ idx: Int, _ allowed: Set<String>) throws {
        guard !a.isNil(idx) else { return }
        guard a.lua.type(Int32(idx)) == LUA_TTABLE else { throw a.typeError(idx, "a table of options") }
        var bad: String? = nil
        a.lua.forEach(Int32(idx)) {
            if a.lua.type(-2) == LUA_TSTRING, let k = a.lua.string(-2), allowed.contains(k) { return true }
            bad = a.lua.type(-2) == LUA_TSTRING ? (a.lua.string(-2) ?? "?") : "a \(a.lua.typeName(-2)) key"
            return false
        }
        if let bad {
            throw a.argumentError(idx, "a table of options (\(allowed.sorted().joined(separator: ", "))), got unknown option '\(bad)'")
        }
    }

    /// The boolean option `key` of the options table at idx.
    static func boolOption(_ a: LuaArgs, _ idx: Int, _ key: String, default d: Bool) throws -> Bool {
        guard !a.isNil(idx) else { return d }
        let t = a.lua.rawGet(Int32(idx), field: key)
        defer { a.lua.pop() }
        if t == LUA_TNIL { return d }
        guard t == LUA_TBOOLEAN else { throw a.argumentError(idx, "a table whose field '\(key)' is a boolean, got \(a.lua.typeName(-1))") }
        return a.lua.bool(-1)
    }

    /// A list of strings in field `key` of the table at idx (a string counts as a list of one).
    static func stringListOption(_ a: LuaArgs, _ idx: Int, _ key: String) throws -> [String]? {
        let t = a.lua.rawGet(Int32(idx), field: key)
        defer { a.lua.pop() }
        if t == LUA_TNIL { return nil }
        if t == LUA_TSTRING { return [try text(a, -1)] }
        guard t == LUA_TTABLE else { throw a.argumentError(idx, "a table whose field '\(key)' is a list of strings, got \(a.lua.typeName(-1))") }
        var out: [String] = []
        for k in 0..<a.lua.rawLength(-1) {
            _ = a.lua.rawGet(-1, index: k + 1)
            defer { a.lua.pop() }
            guard a.lua.type(-1) == LUA_TSTRING, let s = a.lua.string(-1) else {
                throw a.argumentError(idx, "a table whose field '\(key)' is a list of strings, got \(a.lua.typeName(-1)) at position \(k + 1)")
            }
            out.append(s)
        }
        return out
    }

    static func intOption(_ a: LuaArgs, _ idx: Int, _ key: String) throws -> Int? {
        let t = a.lua.rawGet(Int32(idx), field: key)
        defer { a.lua.pop() }
        if t == LUA_TNIL { return nil }
        guard let v = a.lua.number(-1), v == v.rounded(), Swift.abs(v) < 9e15 else {
            throw a.argumentError(idx, "a table whose field '\(key)' is an integer, got \(a.lua.typeName(-1))")
        }
        return Int(v)
    }

    /// Token ids from a Lua list of integers or a 1-D tensor, each checked against the vocabulary.
    static func ids(_ a: LuaArgs, _ idx: Int, _ tok: Tokenizer) throws -> [Int] {
        let size = tok.vocabSize
        func check(_ v: Double, _ k: Int) throws -> Int {
            guard v == v.rounded(), v >= 0, v < Double(size), tok.token(for: Int(v)) != nil else {
                throw a.argumentError(idx, "a list of token ids in 0..\(size - 1), got \(LuaArgs.formatNumber(v)) at position \(k + 1)")
            }
            return Int(v)
        }
        if let t = a.tensorOrNil(idx) {
            guard t.rank <= 1 else { throw a.argumentError(idx, "a list of token ids or a 1-D tensor, got a \(t.rank)-D tensor") }
            return try t.toArray().enumerated().map { k, v in try check(Double(v), k) }
        }
        guard a.lua.type(Int32(idx)) == LUA_TTABLE else { throw a.typeError(idx, "a list of token ids") }
        var out: [Int] = []
        let n = a.lua.rawLength(Int32(idx))
        out.reserveCapacity(n)
        for k in 0..<n {
            _ = a.lua.rawGet(Int32(idx), index: k + 1)
            defer { a.lua.pop() }
            guard let v = a.lua.number(-1) else {
                throw a.argumentError(idx, "a list of token ids, got \(a.lua.typeName(-1)) at position \(k + 1)")
            }
            out.append(try check(v, k))
        }
        return out
    }

    static func pushIds(_ a: LuaArgs, _ ids: [Int]) -> Int {
        a.lua.newTable(arrayCount: Int32(clamping: ids.count))
        for (k, id) in ids.enumerated() { a.lua.push(id); a.lua.rawSet(-2, index: k + 1) }
        return 1
    }

    static func describe(_ t: Tokenizer) -> String {
        let specials = t.specialTokens.count
        return "Tokenizer(\(t.kind), vocab \(t.vocabSize), \(specials) special token\(specials == 1 ? "" : "s"))"
    }

    // MARK: methods

    static let selfParam = LuaParam.required("self", .any)

    static func method(_ name: String, _ params: [LuaParam] = [], doc: String,
                       _ body: @escaping (LuaArgs, Tokenizer) throws -> Int) -> LuaFunction {
        LuaFunction(name, [selfParam] + params, method: true, doc: doc) { a in try body(a, try tokenizer(a)) }
    }

    static let methods: [LuaFunction] = [
        method("encode", [.required("text", .string), .optional("options", .table, default: "{add_special=true}")],
               doc: "The token ids of text (a list of 0-based Hugging Face ids). Special tokens written in the text become their ids. add_special adds the post-processor's tokens (a BOS for Llama-3 style files, nothing for GPT-2).") { a, t in
            let s = try text(a, 2)
            try checkOptions(a, 3, ["add_special"])
            return pushIds(a, t.encode(s, addSpecial: try boolOption(a, 3, "add_special", default: true)))
        },
        method("decode", [.required("ids", .any), .optional("options", .table, default: "{skip_special=false}")],
               doc: "The text of a list of token ids (or a 1-D tensor of ids). skip_special leaves out special tokens.") { a, t in
            let list = try ids(a, 2, t)
            try checkOptions(a, 3, ["skip_special"])
            return a.push(try run { try t.decode(list, skipSpecial: try boolOption(a, 3, "skip_special", default: false)) })
        },
        method("vocab_size", doc: "One more than the largest token id: the embedding size a model needs.") { a, t in
            a.push(t.vocabSize)
        },
        method("token_to_id", [.required("token", .string)], doc: "The id of a token (as spelled in the vocabulary, e.g. 'Ġthe'), or nil.") { a, t in
            guard let id = t.id(for: try text(a, 2)) else { a.lua.pushNil(); return 1 }
            return a.push(id)
        },
        method("id_to_token", [.required("id", .integer)], doc: "The token (as spelled in the vocabulary) of an id in 0..vocab_size()-1.") { a, t in
            let id = try a.integer(2)
            guard id >= 0, let s = t.token(for: id) else {
                throw a.argumentError(2, "a token id in 0..\(t.vocabSize - 1), got \(id)")
            }
            return a.push(s)
        },
        method("special_tokens", doc: "The special tokens as a table {token = id}.") { a, t in
            let specials = t.specialTokens
            a.lua.newTable(recordCount: Int32(clamping: specials.count))
            for s in specials { a.lua.push(s.id); a.lua.rawSet(-2, field: s.content) }
            return 1
        },
        method("save", [.required("path", .string)], doc: "Writes the tokenizer as a Hugging Face tokenizer.json (atomically).") { a, t in
            let path = try a.string(2)
            try run { try t.save(path: path) }
            return 0
        },
    ]

    static let metamethods: [String: LuaFunction] = {
        let table: [String: LuaFunction] = [
            "__index": LuaFunction("__index", [.required("self", .any), .required("key", .any)], doc: "Methods of a tokenizer.") { a in
                _ = try tokenizer(a)
                guard a.lua.getMetatable(1) else { a.lua.pushNil(); return 1 }
                _ = a.lua.rawGet(-1, field: "__methods")
                a.lua.pushValue(2)
                lua_rawget(a.lua.L, -2)
                return 1
            },
            "__tostring": LuaFunction("__tostring", [.required("self", .any)], doc: "Tokenizer(kind, vocab N, K special tokens).") { a in
                a.push(describe(try tokenizer(a)))
            },
            "__gc": LuaFunction("__gc", [.optional("self", .any)], doc: "Releases the tokenizer.") { a in
                a.lua.releaseObject(1, metatable: metatable)
                return 0
            },
        ]
        for f in table.values { f.module = "tok" }
        return table
    }()

    // MARK: module

    /// Pushes a tokenizer, telling Lua's collector roughly what its tables hold (about 100 bytes per token
    /// and merge), so a loop that loads tokenizers collects the old ones.
    static func push(_ a: LuaArgs, _ t: Tokenizer) -> Int {
        let kb = (t.model.vocab.count + t.model.merges.count) / 10
        if kb > 0 { _ = tycho_gc_step(a.lua.L, Int32(clamping: kb)) }
        a.lua.pushObject(t, metatable: metatable)
        return 1
    }

    static let constructors: [LuaFunction] = [
        LuaFunction("bytes", [.optional("options", .table, default: "{special_tokens={'<|endoftext|>'}}")],
                    doc: "A tokenizer whose ids are the UTF-8 bytes (0..255), then the special tokens from 256 on.") { a in
            try checkOptions(a, 1, ["special_tokens"])
            let specials = a.isNil(1) ? nil : try stringListOption(a, 1, "special_tokens")
            return push(a, try run { try Tokenizer.bytes(specialTokens: specials ?? ["<|endoftext|>"]) })
        },
        LuaFunction("load", [.required("path", .string)],
                    doc: "Loads a Hugging Face tokenizer.json (byte-level BPE: GPT-2, Llama-3, SmolLM, Qwen2 style).") { a in
            let path = try a.string(1)
            return push(a, try run { try Tokenizer.load(path: path) })
        },
        LuaFunction("train_bpe", [.required("options", .table)],
                    doc: "Trains a byte-level BPE (GPT-2 pre-tokenizer) on local UTF-8 text files: tok.train_bpe{files={...}, vocab_size=N, special_tokens={'<|endoftext|>'}, min_frequency=2}. Special tokens get ids 0, 1, ...; deterministic.") { a in
            try checkOptions(a, 1, ["files", "vocab_size", "special_tokens", "min_frequency"])
            guard let files = try stringListOption(a, 1, "files"), !files.isEmpty else {
                throw a.argumentError(1, "a table with files = a list of text files")
            }
            guard let size = try intOption(a, 1, "vocab_size") else {
                throw a.argumentError(1, "a table with vocab_size = an integer")
            }
            let specials = try stringListOption(a, 1, "special_tokens") ?? []
            let minFrequency = try intOption(a, 1, "min_frequency") ?? 2
            return push(a, try run {
                try BPETrainer.train(files: files, vocabSize: size, specialTokens: specials, minFrequency: minFrequency)
            })
        },
        LuaFunction("is_tokenizer", [.required("value", .any)], doc: "True when value is a tokenizer.") { a in
            a.push(a.lua.object(1, metatable: metatable, as: Tokenizer.self) != nil)
        },
    ]

    /// Registers the `tycho.Tokenizer` type and the `tok` module in `state`.
    static func register(in state: LuaState) {
        state.registerType(metatable: metatable, methods: methods, metamethods: metamethods)
        state.register(module)
    }

    static let module = LuaModule(name: "tok",
                                  doc: "Tokenizers: byte-level BPE from Hugging Face tokenizer.json, bytes, and train_bpe. Ids are 0-based Hugging Face ids.",
                                  functions: constructors + methods)
}

// InferBinding.swift: the Lua module `infer`: batched generation (TychoInfer's Generator).
//
//   r = infer.generate(model, tokenizer, prompts, {max_tokens = 64, temperature = 0.7, n = 4, seed = 1})
//   r[i][j]   sample j of prompt i: {text =, ids = {...}, logprob =, finish_reason = "stop" | "length",
//             logprobs = {...} (with logprobs = true), accepted_prediction_tokens =, rejected_prediction_tokens =
//             (with a prediction)}
//   r.usage   {prompt_tokens, completion_tokens, total_tokens, seconds, tokens_per_s, steps,
//             accepted_prediction_tokens, rejected_prediction_tokens}
// Prompts are a string, a list of token ids, or a list of those (a 1-D tensor of ids counts as a list of ids).
// Token ids are 0-based Hugging Face ids. Prompt i is seeded (seed + i - 1), so a prompt's samples do not depend
// on the batch size or on the other prompts.

import CLua
import CLuaShim
import TychoInfer
import TychoNN
import TychoTensor
import TychoText

enum InferBinding {
    static let optionNames: Set<String> = [
        "max_tokens", "temperature", "top_k", "top_p", "min_p", "repetition_penalty", "n", "stop", "ignore_eos",
        "seed", "batch_size", "logprobs", "prediction", "add_special",
    ]

    // MARK: reading arguments

    /// UTF-8 text of the string at stack index `idx`, or nil when it is not valid UTF-8.
    static func utf8(_ lua: Lua, _ idx: Int32) -> String? {
        var len = 0
        guard lua.type(idx) == LUA_TSTRING, let p = lua_tolstring(lua.L, idx, &len) else { return nil }
        return String(validating: UnsafeRawBufferPointer(start: p, count: len), as: UTF8.self)
    }

    /// Token ids from the list at stack index `idx` (absolute), each an integer; `what` names it in errors.
    static func idList(_ a: LuaArgs, _ idx: Int32, arg: Int, what: String) throws -> [Int] {
        if let t = a.lua.object(idx, metatable: TensorBinding.metatable, as: Tensor.self) {
            guard t.rank == 1 else { throw a.argumentError(arg, "\(what) as a 1-D tensor of ids, got a \(t.rank)-D tensor") }
            return try t.toArray().map { v in
                guard v == v.rounded(), v >= 0, v < 1e9 else { throw a.argumentError(arg, "\(what) of non-negative integer ids, got \(v)") }
                return Int(v)
            }
        }
        let n = a.lua.rawLength(idx)
        var out: [Int] = []
        out.reserveCapacity(n)
        for k in 1...max(n, 1) where k <= n {
            _ = a.lua.rawGet(idx, index: k)
            defer { a.lua.pop() }
            guard let v = a.lua.number(-1), v == v.rounded(), v >= 0, v < 1e15 else {
                let got = a.lua.number(-1).map { LuaArgs.formatNumber($0) } ?? a.lua.typeName(-1)
                throw a.argumentError(arg, "\(what) of non-negative integer ids, got \(got) at position \(k)")
            }
            out.append(Int(v))
        }
        return out
    }

    /// The prompts at argument 3 as token ids.
    static func prompts(_ a: LuaArgs, _ tok: Tokenizer, addSpecial: Bool) throws -> [[Int]] {
        let idx: Int32 = 3
        func encode(_ at: Int32, _ position: Int?) throws -> [Int] {
            guard let s = utf8(a.lua, at) else {
                throw a.argumentError(3, "valid UTF-8 text\(position.map { " at position \($0)" } ?? ""), got a string with invalid UTF-8 bytes")
            }
            return tok.encode(s, addSpecial: addSpecial)
        }
        switch a.lua.type(idx) {
        case LUA_TSTRING:
            return [try encode(idx, nil)]
        case LUA_TUSERDATA where a.tensorOrNil(3) != nil:
            return [try idList(a, idx, arg: 3, what: "a prompt")]
        case LUA_TTABLE:
            let n = a.lua.rawLength(idx)
            guard n > 0 else { throw a.argumentError(3, "a prompt or a non-empty list of prompts, got an empty table") }
            _ = a.lua.rawGet(idx, index: 1)
            let single = a.lua.type(-1) == LUA_TNUMBER
            a.lua.pop()
            if single { return [try idList(a, idx, arg: 3, what: "a list")] }
            var out: [[Int]] = []
            for k in 1...n {
                _ = a.lua.rawGet(idx, index: k)
                defer { a.lua.pop() }
                let top = a.lua.absolute(-1)
                switch a.lua.type(top) {
                case LUA_TSTRING: out.append(try encode(top, k))
                case LUA_TTABLE: out.append(try idList(a, top, arg: 3, what: "prompt \(k) as a list"))
                case LUA_TUSERDATA where a.lua.object(top, metatable: TensorBinding.metatable, as: Tensor.self) != nil:
                    out.append(try idList(a, top, arg: 3, what: "prompt \(k)"))
                default:
                    throw a.argumentError(3, "a list of prompts (strings or lists of token ids), got \(a.lua.typeName(top)) at position \(k)")
                }
            }
            return out
        default:
            throw a.typeError(3, "a prompt (a string or a list of token ids) or a list of prompts")
        }
    }

    /// The `stop` option of the table at argument `idx`: strings and token ids (a string or an id alone is a list
    /// of one). nil when absent.
    static func stopOption(_ a: LuaArgs, at idx: Int = 4) throws -> (strings: [String], ids: [Int])? {
        guard !a.isNil(idx) else { return nil }
        let t = a.lua.rawGet(Int32(idx), field: "stop")
        defer { a.lua.pop() }
        let top = a.lua.absolute(-1)
        var strings: [String] = [], ids: [Int] = []
        func add(_ at: Int32, _ position: Int?) throws {
            let where_ = position.map { " at position \($0)" } ?? ""
            switch a.lua.type(at) {
            case LUA_TSTRING:
                guard let s = utf8(a.lua, at), !s.isEmpty else {
                    throw a.argumentError(idx, "a table whose field 'stop' holds non-empty UTF-8 strings, got an empty or invalid string\(where_)")
                }
                strings.append(s)
            case LUA_TNUMBER:
                guard let v = a.lua.number(at), v == v.rounded(), v >= 0, v < 1e15 else {
                    throw a.argumentError(idx, "a table whose field 'stop' holds token ids (non-negative integers), got \(LuaArgs.formatNumber(a.lua.number(at) ?? 0))\(where_)")
                }
                ids.append(Int(v))
            default:
                throw a.argumentError(idx, "a table whose field 'stop' holds strings and token ids, got \(a.lua.typeName(at))\(where_)")
            }
        }
        switch t {
        case LUA_TNIL: return nil
        case LUA_TTABLE:
            let n = a.lua.rawLength(top)
            for k in 1...max(n, 1) where k <= n {
                _ = a.lua.rawGet(top, index: k)
                defer { a.lua.pop() }
                try add(a.lua.absolute(-1), k)
            }
        default: try add(top, nil)
        }
        return (strings, ids)
    }

    /// The `prediction` option: a string, a list of token ids, or OpenAI's {type = "content", content = "..."}.
    static func predictionOption(_ a: LuaArgs, at idx: Int = 4) throws -> Prediction? {
        guard !a.isNil(idx) else { return nil }
        let t = a.lua.rawGet(Int32(idx), field: "prediction")
        defer { a.lua.pop() }
        let top = a.lua.absolute(-1)
        switch t {
        case LUA_TNIL: return nil
        case LUA_TSTRING:
            guard let s = utf8(a.lua, top) else { throw a.argumentError(idx, "a table whose field 'prediction' is valid UTF-8 text") }
            return .text(s)
        case LUA_TTABLE:
            if a.lua.rawGet(top, field: "content") == LUA_TSTRING, let s = utf8(a.lua, -1) {
                a.lua.pop()
                return .text(s)
            }
            a.lua.pop()
            return .ids(try idList(a, top, arg: idx, what: "a table whose field 'prediction' is a string or a list"))
        default:
            throw a.argumentError(idx, "a table whose field 'prediction' is a string, a list of token ids or {type = \"content\", content = \"...\"}, got \(a.lua.typeName(top))")
        }
    }

    /// Generation options from the table at argument `idx` (4 for infer.generate), starting from `base`; `allowed`
    /// names the keys the caller accepts (the eval functions take a subset and their own).
    static func options(_ a: LuaArgs, at idx: Int = 4, allowed: Set<String> = optionNames,
                        base: GenerationOptions = GenerationOptions()) throws -> (GenerationOptions, batchSize: Int, addSpecial: Bool) {
        try a.checkOptions(idx, allowed: allowed)
        var o = base
        func int(_ key: String, min lo: Int, _ phrase: String) throws -> Int? {
            guard let v = try a.optionInteger(idx, key) else { return nil }
            guard v >= lo else { throw a.argumentError(idx, "a table whose field '\(key)' is \(phrase), got \(v)") }
            return v
        }
        func num(_ key: String, _ phrase: String, _ ok: (Double) -> Bool) throws -> Float? {
            guard let v = try a.optionNumber(idx, key) else { return nil }
            guard ok(v) else { throw a.argumentError(idx, "a table whose field '\(key)' is \(phrase), got \(LuaArgs.formatNumber(v))") }
            return Float(v)
        }
        if let v = try int("max_tokens", min: 1, "a positive integer") { o.maxTokens = v }
        if let v = try num("temperature", "a number >= 0 (0 = greedy)", { $0 >= 0 && $0.isFinite }) { o.temperature = v }
        if let v = try int("top_k", min: 0, "a non-negative integer (0 = off)") { o.topK = v }
        if let v = try num("top_p", "a number in (0, 1]", { $0 > 0 && $0 <= 1 }) { o.topP = v }
        if let v = try num("min_p", "a number in [0, 1]", { $0 >= 0 && $0 <= 1 }) { o.minP = v }
        if let v = try num("repetition_penalty", "a positive number (1 = off)", { $0 > 0 && $0.isFinite }) { o.repetitionPenalty = v }
        if let v = try int("n", min: 1, "a positive integer") {
            guard v <= GenerationOptions.maxSamples else {
                throw a.argumentError(idx, "a table whose field 'n' is at most \(GenerationOptions.maxSamples), got \(v)")
            }
            o.n = v
        }
        if let stop = try stopOption(a, at: idx) {
            o.stopStrings = stop.strings
            o.stopIDs = stop.ids
            if stop.strings.isEmpty && stop.ids.isEmpty { o.stopAtEOS = false }   // stop = {}: no stop at all
        }
        if try a.optionBoolean(idx, "ignore_eos") == true { o.stopAtEOS = false }
        if let v = try a.optionInteger(idx, "seed") {
            o.seed = UInt64(bitPattern: Int64(v))
        } else {
            o.seed = a.state.generator.next()     // follows tensor.manual_seed
        }
        o.logprobs = try a.optionBoolean(idx, "logprobs") ?? false
        o.prediction = try predictionOption(a, at: idx)
        let batch = try int("batch_size", min: 1, "a positive integer") ?? 16
        return (o, batch, try a.optionBoolean(idx, "add_special") ?? true)
    }

    // MARK: results

    static func push(_ a: LuaArgs, _ c: Completion, prediction: Bool) {
        let l = a.lua
        l.newTable(recordCount: 7)
        l.push(c.text); l.rawSet(-2, field: "text")
        _ = TokBinding.pushIds(a, c.ids); l.rawSet(-2, field: "ids")
        l.push(c.logprob); l.rawSet(-2, field: "logprob")
        l.push(c.finishReason.rawValue); l.rawSet(-2, field: "finish_reason")
        if let lps = c.tokenLogprobs {
            l.newTable(arrayCount: Int32(clamping: lps.count))
            for (k, v) in lps.enumerated() { l.push(Double(v)); l.rawSet(-2, index: k + 1) }
            l.rawSet(-2, field: "logprobs")
        }
        if prediction {
            l.push(c.acceptedPredictionTokens); l.rawSet(-2, field: "accepted_prediction_tokens")
            l.push(c.rejectedPredictionTokens); l.rawSet(-2, field: "rejected_prediction_tokens")
        }
    }

    static func push(_ a: LuaArgs, _ u: GenerationUsage) {
        let l = a.lua
        l.newTable(recordCount: 9)
        for (k, v) in [("prompt_tokens", u.promptTokens), ("completion_tokens", u.completionTokens),
                       ("total_tokens", u.totalTokens), ("steps", u.steps),
                       ("accepted_prediction_tokens", u.acceptedPredictionTokens),
                       ("rejected_prediction_tokens", u.rejectedPredictionTokens)] {
            l.push(v); l.rawSet(-2, field: k)
        }
        l.push(u.seconds); l.rawSet(-2, field: "seconds")
        l.push(u.tokensPerSecond); l.rawSet(-2, field: "tokens_per_s")
    }

    // MARK: module

    static let generate = LuaFunction(
        "generate",
        [.required("model", .any), .required("tokenizer", .any), .required("prompts", .any),
         .optional("options", .table, default: "{}")],
        doc: """
        Generates continuations of prompts (a string, a list of token ids, or a list of those) with a KV cache and \
        continuous batching. Options: max_tokens=16, temperature=1 (0 = greedy), top_k=0, top_p=1, min_p=0, \
        repetition_penalty=1, n=1 (samples per prompt), stop (strings and token ids; EOS always stops unless \
        ignore_eos=true; stop={} stops on nothing), seed (default: drawn from tensor.manual_seed's generator), \
        batch_size=16, logprobs=false, prediction (expected text: verified several tokens per step, same output), \
        add_special=true (how string prompts are encoded). Returns r with r[i][j] = {text, ids, logprob, \
        finish_reason, logprobs?} for sample j of prompt i, and r.usage = {prompt_tokens, completion_tokens, \
        total_tokens, seconds, tokens_per_s, accepted_prediction_tokens, rejected_prediction_tokens, steps}.
        """
    ) { a in
        let m = try NNBinding.module(a, 1)
        guard let lm = m as? LanguageModel, lm is GPT2 || lm is Llama else {
            throw a.argumentError(1, "a GPT-2 or Llama-family language model, got \(m.summary)")
        }
        let tok = try TokBinding.tokenizer(a, 2)
        let (options, batchSize, addSpecial) = try options(a)
        do { try options.validate() } catch let e as GenerationError { throw a.argumentError(4, "valid options: \(e.message)") }
        let prompts = try prompts(a, tok, addSpecial: addSpecial)
        let generator = try Generator(model: lm, tokenizer: tok)
        var requests: [GenerationRequest] = []
        for (i, p) in prompts.enumerated() {
            var o = options
            o.seed = options.seed &+ UInt64(i)
            let r = GenerationRequest(prompt: p, options: o)
            do { try generator.validate(r) } catch let e as GenerationError {
                throw LuaBindingError(prompts.count == 1 ? e.message : "prompt \(i + 1): \(e.message)")
            }
            requests.append(r)
        }
        let result = try generator.generate(requests: requests, batchSize: batchSize)
        let l = a.lua
        l.newTable(arrayCount: Int32(clamping: prompts.count), recordCount: 1)
        for (i, samples) in result.completions.enumerated() {
            l.newTable(arrayCount: Int32(clamping: samples.count))
            for (j, c) in samples.enumerated() {
                push(a, c, prediction: options.prediction != nil)
                l.rawSet(-2, index: j + 1)
            }
            l.rawSet(-2, index: i + 1)
        }
        push(a, result.usage)
        l.rawSet(-2, field: "usage")
        return 1
    }

    static let module = LuaModule(name: "infer",
                                  doc: "Generation: batched sampling with a KV cache, continuous batching, stop strings, predicted outputs.",
                                  functions: [generate, BatchBinding.batchFunction])

    static func register(in state: LuaState) { state.register(module) }
}

// EvalBinding.swift: the Lua module `eval`: task accuracy under a grader, win rate under a judge, perplexity, and
// side-by-side comparison tables of models and runs.
//
//   r = eval.task(m, t, items, {grader = function(output, item) return output:find(item.answer) ~= nil end})
//   w = eval.win_rate(policy, ref, t, prompts, {judge = function(prompt, a, b) return #a > #b and "a" or "b" end})
//   p = eval.perplexity(m, t, {"some text", "more text"})        -- p.perplexity, p.nll, p.tokens
//   eval.compare({policy = m1, ref = m2, "runs/dpo-1"}, {ppl = function(m) ... end, "loss"})
//
// The work is TychoTrain's (TaskEvaluation, WinRate, Perplexity, ComparisonTable); generation is TychoInfer's
// Generator, read with infer.generate's option reader (InferBinding.options), so `eval.task` and `infer.generate`
// give the same text for the same prompt and options. This file reads items, prompts and options, and turns the Lua
// grader, judge and column functions into Swift closures that call them protected: a callback that raises becomes
// an `EvalCallbackError` (counted, or an ERR cell), never a longjmp through Swift. An interrupt (Ctrl-C) raised
// inside a callback stops the whole eval. `functions` is the module's list; other files may add to it (the
// trainer's `eval.preferences`).

import CLua
import CLuaShim
import Foundation
import TychoInfer
import TychoNN
import TychoTensor
import TychoText
import TychoTrain

enum EvalBinding {
    /// The generation options the evals take (infer.generate's, without n, logprobs and prediction).
    static let generationOptions: Set<String> = [
        "max_tokens", "temperature", "top_k", "top_p", "min_p", "repetition_penalty", "stop", "ignore_eos", "seed",
        "batch_size", "add_special",
    ]
    static let taskOptions = generationOptions.union(["prompt", "grader", "keep_samples"])
    static let winRateOptions = generationOptions.union(["prompt", "judge", "swap", "keep_samples"])
    static let perplexityOptions: Set<String> = ["batch_size", "max_length", "stride", "add_special"]
    static let compareOptions: Set<String> = ["print", "format", "title", "dir"]

    /// Evals answer greedily and at more length than infer.generate's defaults.
    static var evalDefaults: GenerationOptions {
        var o = GenerationOptions()
        o.maxTokens = 32
        o.temperature = 0
        return o
    }

    // MARK: helpers

    /// Runs a core call, turning its errors into binding errors.
    static func run<T>(_ body: () throws -> T) throws -> T {
        do { return try body() }
        catch let e as EvalError { throw LuaBindingError(e.message) }
        catch let e as GenerationError { throw LuaBindingError(e.message) }
        catch let e as TensorError { throw LuaBindingError(e.message) }
        catch let e as TokenizerError { throw LuaBindingError(e.message) }
        catch let e as JSONLinesError { throw LuaBindingError(e.description) }
    }

    /// A GPT-2 or Llama-family model at argument idx (what the Generator runs).
    static func generationModel(_ a: LuaArgs, _ idx: Int) throws -> LanguageModel {
        let m = try NNBinding.module(a, idx)
        guard let lm = m as? LanguageModel, lm is GPT2 || lm is Llama else {
            throw a.argumentError(idx, "a GPT-2 or Llama-family language model, got \(m.summary)")
        }
        return lm
    }

    static func set(_ lua: Lua, _ key: String, _ value: Int) { lua.push(value); lua.rawSet(-2, field: key) }
    static func set(_ lua: Lua, _ key: String, _ value: Double) { lua.push(value); lua.rawSet(-2, field: key) }
    static func set(_ lua: Lua, _ key: String, _ value: String) { lua.push(value); lua.rawSet(-2, field: key) }

    /// The message of the error object on top of the stack (popped); an interrupt stops the eval instead.
    static func callbackFailure(_ lua: Lua, _ what: String) throws -> EvalCallbackError {
        let message = lua.type(-1) == LUA_TSTRING ? (lua.string(-1) ?? "error") : "a \(lua.typeName(-1)) error object"
        lua.pop()
        if message.hasSuffix("interrupted!") { throw LuaBindingError("interrupted!") }
        return EvalCallbackError("the \(what) raised an error: \(message)")
    }

    /// The function in option `key` of the table at idx, left on the stack; returns its absolute index.
    static func functionOption(_ a: LuaArgs, _ idx: Int, _ key: String, _ meaning: String) throws -> Int32 {
        let t = a.lua.rawGet(Int32(idx), field: key)
        guard t == LUA_TFUNCTION else {
            let got = a.lua.typeName(-1)
            a.lua.pop()
            if t == LUA_TNIL { throw a.argumentError(idx, "a table with \(key) = \(meaning)") }
            throw a.argumentError(idx, "a table whose field '\(key)' is \(meaning), got \(got)")
        }
        return a.lua.absolute(-1)
    }

    // MARK: items and prompts

    /// The items at argument idx: a list of tables or strings, or a JSONL file (its rows pushed as a new list).
    /// Returns the absolute stack index of the list and its length.
    static func items(_ a: LuaArgs, _ idx: Int, what: String) throws -> (Int32, Int) {
        let lua = a.lua
        if lua.type(Int32(idx)) == LUA_TSTRING {
            let path = try a.string(idx)
            guard FileManager.default.fileExists(atPath: path) else {
                throw a.argumentError(idx, "a list of \(what) or a JSONL file, got '\(path.prefix(200))', which does not exist")
            }
            let reader = try run { try JSONLinesReader(path: path) }
            lua.newTable()
            let list = lua.absolute(-1)
            var n = 0
            while let (_, row) = try run({ try reader.next() }) {
                try DataBinding.push(row, lua)
                n += 1
                lua.rawSet(list, index: n)
            }
            guard n > 0 else { throw a.argumentError(idx, "a JSONL file with at least one row, got '\(path.prefix(200))', which has none") }
            return (list, n)
        }
        guard lua.type(Int32(idx)) == LUA_TTABLE else { throw a.typeError(idx, "a list of \(what) or a JSONL file path") }
        let n = lua.rawLength(Int32(idx))
        var keys = 0
        lua.forEach(Int32(idx)) { keys += 1; return true }
        guard n > 0 else {
            throw a.argumentError(idx, keys == 0 ? "a non-empty list of \(what), got an empty table"
                                                 : "a list of \(what), got a table with named fields (one item? put it in a list: {item})")
        }
        guard keys == n else { throw a.argumentError(idx, "a list of \(what) (entries 1..n), got a table with holes or other keys") }
        return (Int32(idx), n)
    }

    /// How an item gives its prompt: a field of the item table, or a function of the item.
    enum PromptSource {
        case field(String)
        case function(Int32)
    }

    /// The `prompt` option of the table at idx: a field name (default "prompt") or a function(item).
    static func promptSource(_ a: LuaArgs, _ idx: Int) throws -> PromptSource {
        let t = a.lua.rawGet(Int32(idx), field: "prompt")
        switch t {
        case LUA_TNIL:
            a.lua.pop()
            return .field("prompt")
        case LUA_TSTRING:
            let s = a.lua.string(-1) ?? "prompt"
            a.lua.pop()
            return .field(s)
        case LUA_TFUNCTION:
            return .function(a.lua.absolute(-1))        // stays on the stack while the eval runs
        default:
            let got = a.lua.typeName(-1)
            a.lua.pop()
            throw a.argumentError(idx, "a table whose field 'prompt' is a field name or a function(item) returning the prompt, got \(got)")
        }
    }

    /// Prompt k (1-based) of the items list at `list`: the item itself when it is a string and the prompt is a
    /// field, else the item's field, or what the prompt function returns for it.
    static func promptText(_ a: LuaArgs, list: Int32, _ k: Int, _ source: PromptSource, arg: Int) throws -> String {
        let lua = a.lua
        guard lua.ensureStack(6) else { throw LuaBindingError("Lua stack overflow") }
        let top = lua.top
        defer { lua.top = top }
        _ = lua.rawGet(list, index: k)
        let item = lua.absolute(-1)
        switch source {
        case .field(let name):
            if lua.type(item) == LUA_TSTRING {
                guard let s = DataBinding.utf8String(lua, item) else {
                    throw a.argumentError(arg, "a list whose prompts are valid UTF-8 text, got invalid UTF-8 bytes at item \(k)")
                }
                return s
            }
            guard lua.type(item) == LUA_TTABLE else {
                throw a.argumentError(arg, "a list of strings or tables with a '\(name)' field, got \(lua.typeName(item)) at item \(k)")
            }
            let t = lua.rawGet(item, field: name)
            guard t == LUA_TSTRING, let s = DataBinding.utf8String(lua, -1) else {
                throw a.argumentError(arg, "a list of items whose field '\(name)' is a string of UTF-8 text, got \(t == LUA_TSTRING ? "invalid UTF-8" : lua.typeName(-1)) at item \(k)")
            }
            return s
        case .function(let f):
            lua.pushValue(f)
            lua.pushValue(item)
            if tycho_pcall(lua.L, 1, 1, 0) != LUA_OK {
                let failure = try callbackFailure(lua, "prompt function")
                throw LuaBindingError("item \(k): \(failure.message)")
            }
            guard lua.type(-1) == LUA_TSTRING, let s = DataBinding.utf8String(lua, -1) else {
                throw LuaBindingError("item \(k): the prompt function must return a string of UTF-8 text, got \(lua.typeName(-1))")
            }
            return s
        }
    }

    /// Every item's prompt, as text and as ids.
    static func prompts(_ a: LuaArgs, list: Int32, count: Int, _ source: PromptSource, arg: Int, tokenizer: Tokenizer,
                        addSpecial: Bool) throws -> [EvalPrompt] {
        var out: [EvalPrompt] = []
        out.reserveCapacity(count)
        for k in 1...count {
            let text = try promptText(a, list: list, k, source, arg: arg)
            out.append(EvalPrompt(text: text, ids: tokenizer.encode(text, addSpecial: addSpecial)))
        }
        return out
    }

    /// Generation options at idx (evals' defaults: greedy, 32 tokens), checked.
    static func generation(_ a: LuaArgs, _ idx: Int, allowed: Set<String>) throws -> (GenerationOptions, batchSize: Int, addSpecial: Bool) {
        let (o, batch, addSpecial) = try InferBinding.options(a, at: idx, allowed: allowed, base: evalDefaults)
        do { try o.validate() } catch let e as GenerationError { throw a.argumentError(idx, "valid options: \(e.message)") }
        return (o, batch, addSpecial)
    }

    // MARK: eval.task

    /// A grader calling the Lua function at `grader` with (output, item); it returns true/false or a score.
    static func luaGrader(_ lua: Lua, grader: Int32, list: Int32) -> (Int, String) throws -> GraderVerdict {
        return { i, output in
            guard lua.ensureStack(6) else { throw EvalCallbackError("Lua stack overflow") }
            let top = lua.top
            defer { lua.top = top }
            lua.pushValue(grader)
            lua.push(output)
            _ = lua.rawGet(list, index: i + 1)
            if tycho_pcall(lua.L, 2, 1, 0) != LUA_OK { throw try callbackFailure(lua, "grader") }
            switch lua.type(-1) {
            case LUA_TBOOLEAN: return .pass(lua.bool(-1))
            case LUA_TNUMBER: return .score(lua.number(-1) ?? .nan)
            default: throw EvalCallbackError("the grader returned \(lua.typeName(-1)); it must return true/false or a score in [0, 1]")
            }
        }
    }

    static func push(_ lua: Lua, _ r: TaskResult, keepSamples: Bool) {
        lua.newTable(recordCount: 9)
        set(lua, "accuracy", r.accuracy)
        set(lua, "mean_score", r.meanScore)
        set(lua, "correct", r.correct)
        set(lua, "total", r.total)
        set(lua, "errors", r.errors)
        if let e = r.firstError { set(lua, "first_error", e) }
        if keepSamples {
            lua.newTable(arrayCount: Int32(clamping: r.samples.count))
            for (k, s) in r.samples.enumerated() {
                lua.newTable(recordCount: 6)
                set(lua, "item_index", s.item + 1)
                set(lua, "prompt", s.prompt)
                set(lua, "output", s.output)
                set(lua, "finish_reason", s.finishReason.rawValue)
                if let v = s.score { set(lua, "score", v) }
                if let e = s.error { set(lua, "error", e) }
                lua.rawSet(-2, index: k + 1)
            }
            lua.rawSet(-2, field: "samples")
        }
    }

    static let task = LuaFunction(
        "task",
        [.required("model", .any), .required("tokenizer", .any), .required("items", .any), .required("options", .table)],
        doc: """
        Task accuracy: generates an answer for each item and grades it. eval.task(model, tokenizer, items, {grader=function(output, item) ... end, prompt="prompt", max_tokens=32, temperature=0, top_k=0, top_p=1, min_p=0, repetition_penalty=1, stop=, ignore_eos=false, seed=, batch_size=16, add_special=true, keep_samples=true}).
          items: a list of tables (or strings) or a JSONL file. prompt: the field holding each item's prompt text, or a function(item) returning it (a string item is its own prompt).
          Generation is infer.generate's (greedy by default; item i is seeded seed + i - 1, so results repeat under a seed and do not depend on batch_size).
          grader(output_text, item) returns true/false or a score in [0, 1]. A grader that raises, or returns anything else, counts as an error for that item (no credit; first_error keeps the first message) and the eval goes on.
          Returns {accuracy = correct/total, mean_score = sum of scores/total, correct = (items scored 1), total, errors, first_error, samples = {{item_index, prompt, output, score, error, finish_reason}, ...}}.
        """
    ) { a in
        let lm = try generationModel(a, 1)
        let tok = try TokBinding.tokenizer(a, 2)
        let (options, batchSize, addSpecial) = try generation(a, 4, allowed: taskOptions)
        let keep = try a.optionBoolean(4, "keep_samples") ?? true
        let grader = try functionOption(a, 4, "grader", "a function(output, item) returning true/false or a score in [0, 1]")
        let source = try promptSource(a, 4)
        let (list, n) = try items(a, 3, what: "items")
        let ps = try prompts(a, list: list, count: n, source, arg: 3, tokenizer: tok, addSpecial: addSpecial)
        let generator = try run { try Generator(model: lm, tokenizer: tok) }
        let result = try run {
            try TaskEvaluation.run(generator: generator, prompts: ps, options: options, batchSize: batchSize,
                                   keepSamples: keep, grade: luaGrader(a.lua, grader: grader, list: list))
        }
        push(a.lua, result, keepSamples: keep)
        return 1
    }

    // MARK: eval.win_rate

    /// A judge calling the Lua function at `judge` with (prompt, a, b, item); it returns "a", "b", "tie" or 1/0/0.5.
    static func luaJudge(_ lua: Lua, judge: Int32, list: Int32) -> (Int, String, String, String) throws -> JudgeVerdict {
        return { i, prompt, x, y in
            guard lua.ensureStack(8) else { throw EvalCallbackError("Lua stack overflow") }
            let top = lua.top
            defer { lua.top = top }
            lua.pushValue(judge)
            lua.push(prompt)
            lua.push(x)
            lua.push(y)
            _ = lua.rawGet(list, index: i + 1)
            if tycho_pcall(lua.L, 4, 1, 0) != LUA_OK { throw try callbackFailure(lua, "judge") }
            switch lua.type(-1) {
            case LUA_TSTRING: return try JudgeVerdict.parse(text: lua.string(-1) ?? "")
            case LUA_TNUMBER: return try JudgeVerdict.parse(number: lua.number(-1) ?? .nan)
            default: throw EvalCallbackError("the judge returned \(lua.typeName(-1)); it must return \"a\", \"b\" or \"tie\" (or 1, 0, 0.5)")
            }
        }
    }

    static func push(_ lua: Lua, _ r: WinRateResult, swap: Bool, keepSamples: Bool) {
        lua.newTable(recordCount: 10)
        if let w = r.tally.winRate { set(lua, "win_rate", w) }
        set(lua, "wins", r.tally.wins)
        set(lua, "losses", r.tally.losses)
        set(lua, "ties", r.tally.ties)
        set(lua, "n", r.tally.n)
        set(lua, "errors", r.errors)
        if swap { set(lua, "inconsistent", r.tally.inconsistent) }
        if let e = r.firstError { set(lua, "first_error", e) }
        if keepSamples {
            lua.newTable(arrayCount: Int32(clamping: r.samples.count))
            for (k, s) in r.samples.enumerated() {
                lua.newTable(recordCount: 7)
                set(lua, "item_index", s.item + 1)
                set(lua, "prompt", s.prompt)
                set(lua, "policy", s.policy)
                set(lua, "reference", s.reference)
                lua.newTable(arrayCount: Int32(s.verdicts.count))
                for (j, v) in s.verdicts.enumerated() { lua.push(v.rawValue); lua.rawSet(-2, index: j + 1) }
                lua.rawSet(-2, field: "verdicts")
                if let v = s.score { set(lua, "score", v) }
                if let e = s.error { set(lua, "error", e) }
                lua.rawSet(-2, index: k + 1)
            }
            lua.rawSet(-2, field: "samples")
        }
    }

    static let winRate = LuaFunction(
        "win_rate",
        [.required("policy", .any), .required("reference", .any), .required("tokenizer", .any), .required("prompts", .any),
         .required("options", .table)],
        doc: """
        Win rate of a policy against a reference under a judge. eval.win_rate(policy, reference, tokenizer, prompts, {judge=function(prompt, a, b, item) ... end, swap=true, prompt="prompt", max_tokens=32, temperature=0, seed=, stop=, batch_size=16, keep_samples=true, ...infer.generate's sampling options}).
          prompts: a list of strings, or of items whose prompt is a field or a function(item) (option prompt), or a JSONL file. Both models generate one completion per prompt with the same options and seeds (greedy by default).
          judge(prompt, a, b, item) returns "a", "b" or "tie" (or 1, 0, 0.5: a wins, b wins, tie); a is the policy's completion. With swap=true the judge is asked again with a and b exchanged and each order counts half, so a judge that always prefers one position scores a tie (inconsistent counts prompts whose two verdicts disagree).
          A judge that raises or returns anything else counts as an error; that prompt is left out of n.
          Returns {win_rate = (wins + ties/2)/n, wins, losses, ties (multiples of 0.5 with swap), n, errors, first_error, inconsistent, samples = {{item_index, prompt, policy, reference, verdicts, score, error}, ...}}.
        """
    ) { a in
        let policy = try generationModel(a, 1)
        let reference = try generationModel(a, 2)
        let tok = try TokBinding.tokenizer(a, 3)
        let (options, batchSize, addSpecial) = try generation(a, 5, allowed: winRateOptions)
        let keep = try a.optionBoolean(5, "keep_samples") ?? true
        let swap = try a.optionBoolean(5, "swap") ?? true
        let judge = try functionOption(a, 5, "judge", "a function(prompt, a, b, item) returning \"a\", \"b\" or \"tie\"")
        let source = try promptSource(a, 5)
        let (list, n) = try items(a, 4, what: "prompts")
        let ps = try prompts(a, list: list, count: n, source, arg: 4, tokenizer: tok, addSpecial: addSpecial)
        let gp = try run { try Generator(model: policy, tokenizer: tok) }
        let gr = try run { try Generator(model: reference, tokenizer: tok) }
        let result = try run {
            try WinRate.run(policy: gp, reference: gr, prompts: ps, options: options, batchSize: batchSize, swap: swap,
                            keepSamples: keep, judge: luaJudge(a.lua, judge: judge, list: list))
        }
        push(a.lua, result, swap: swap, keepSamples: keep)
        return 1
    }

    // MARK: eval.perplexity

    /// Token ids from a tensor (1-D: one sequence; 2-D: one per row), checked to be non-negative integers.
    static func tensorSequences(_ a: LuaArgs, _ t: Tensor, arg: Int, _ where_: String) throws -> [[Int]] {
        guard t.rank == 1 || t.rank == 2 else {
            throw a.argumentError(arg, "token ids as a 1-D or 2-D tensor, got a \(t.rank)-D tensor\(where_)")
        }
        let values = try t.contiguous().toArray()
        for v in values where !(v >= 0 && v == v.rounded() && v < Float(DataBinding.maxTokenID)) {
            throw a.argumentError(arg, "a tensor of token ids (non-negative integers), got \(v)\(where_)")
        }
        if t.rank == 1 { return [values.map { Int($0) }] }
        let cols = t.shape[1]
        return (0..<t.shape[0]).map { r in values[(r * cols)..<((r + 1) * cols)].map { Int($0) } }
    }

    /// A batch table {ids = tensor, mask = tensor?} (what data.batches gives): each row a sequence whose targets are
    /// where mask is 1, cut after its last target (right padding).
    static func batchSequences(_ a: LuaArgs, _ at: Int32, arg: Int, _ where_: String) throws -> [PerplexitySequence] {
        let lua = a.lua
        let top = lua.top
        defer { lua.top = top }
        _ = lua.rawGet(at, field: "ids")
        guard let ids = lua.object(-1, metatable: TensorBinding.metatable, as: Tensor.self) else {
            throw a.argumentError(arg, "a batch whose field 'ids' is a tensor of token ids, got \(lua.typeName(-1))\(where_)")
        }
        let rows = try tensorSequences(a, ids, arg: arg, where_)
        _ = lua.rawGet(at, field: "mask")
        if lua.isNoneOrNil(-1) { return rows.map { PerplexitySequence(ids: $0) } }
        guard let mask = lua.object(-1, metatable: TensorBinding.metatable, as: Tensor.self) else {
            throw a.argumentError(arg, "a batch whose field 'mask' is a tensor, got \(lua.typeName(-1))\(where_)")
        }
        guard mask.shape == ids.shape else {
            throw a.argumentError(arg, "a batch whose mask matches its ids, got mask \(Tensor.describe(mask.shape)) and ids \(Tensor.describe(ids.shape))\(where_)")
        }
        let m = try mask.contiguous().toArray()
        let width = rows.first?.count ?? 0
        return rows.enumerated().map { r, row in
            let targets = (0..<width).map { m[r * width + $0] != 0 }
            let last = (targets.lastIndex(of: true) ?? -1) + 1
            return PerplexitySequence(ids: Array(row[..<last]), targets: Array(targets[..<last]))
        }
    }

    /// The sequences at argument 3: a text file path, a tensor of ids, a batch table, one list of ids, or a list of
    /// texts, id lists, tensors and batches.
    static func sequences(_ a: LuaArgs, tokenizer: Tokenizer?, addSpecial: Bool) throws -> [PerplexitySequence] {
        let lua = a.lua
        func encode(_ text: String, _ where_: String) throws -> PerplexitySequence {
            guard let tokenizer else {
                throw a.argumentError(2, "a tokenizer to encode texts\(where_.isEmpty ? "" : " (texts given\(where_))"), got nil")
            }
            return PerplexitySequence(ids: tokenizer.encode(text, addSpecial: addSpecial))
        }
        func one(_ at: Int32, _ k: Int?) throws -> [PerplexitySequence] {
            let where_ = k.map { " at position \($0)" } ?? ""
            switch lua.type(at) {
            case LUA_TSTRING:
                guard let s = DataBinding.utf8String(lua, at) else {
                    throw a.argumentError(3, "valid UTF-8 text, got a string with invalid UTF-8 bytes\(where_)")
                }
                return [try encode(s, where_)]
            case LUA_TUSERDATA:
                guard let t = lua.object(at, metatable: TensorBinding.metatable, as: Tensor.self) else {
                    throw a.argumentError(3, "texts or token ids, got \(lua.isFinalized(at) ? "a collected tensor" : lua.typeName(at))\(where_)")
                }
                return try tensorSequences(a, t, arg: 3, where_).map { PerplexitySequence(ids: $0) }
            case LUA_TTABLE:
                if lua.rawGet(at, field: "ids") != LUA_TNIL {
                    lua.pop()
                    return try batchSequences(a, at, arg: 3, where_)
                }
                lua.pop()
                return [PerplexitySequence(ids: try InferBinding.idList(a, at, arg: 3, what: "a list\(where_)"))]
            default:
                throw a.argumentError(3, "texts, token ids or batches, got \(lua.typeName(at))\(where_)")
            }
        }
        switch lua.type(3) {
        case LUA_TSTRING:
            let path = try a.string(3)
            guard let data = FileManager.default.contents(atPath: path) else {
                throw a.argumentError(3, "a list of texts or a readable text file, got '\(path.prefix(200))', which cannot be read")
            }
            guard let text = String(data: data, encoding: .utf8) else {
                throw a.argumentError(3, "a text file of UTF-8 text, got '\(path.prefix(200))', which is not")
            }
            return [try encode(text, " in a file")]
        case LUA_TUSERDATA:
            return try one(3, nil)
        case LUA_TTABLE:
            let n = lua.rawLength(3)
            if n == 0 {
                if lua.rawGet(3, field: "ids") != LUA_TNIL { lua.pop(); return try one(3, nil) }
                lua.pop()
                throw a.argumentError(3, "a non-empty list of texts or token ids, got an empty table")
            }
            _ = lua.rawGet(3, index: 1)
            let ids = lua.type(-1) == LUA_TNUMBER
            lua.pop()
            if ids { return try one(3, nil) }
            var out: [PerplexitySequence] = []
            for k in 1...n {
                _ = lua.rawGet(3, index: k)
                defer { lua.pop() }
                out += try one(lua.absolute(-1), k)
            }
            return out
        default:
            throw a.typeError(3, "a list of texts, token ids (tables or tensors), batches, or a text file path")
        }
    }

    static let perplexity = LuaFunction(
        "perplexity",
        [.required("model", .any), .optional("tokenizer", .any), .required("texts", .any),
         .optional("options", .table, default: "{}")],
        doc: """
        Perplexity: exp(total NLL / predicted tokens) over texts, as Hugging Face's perplexity guide computes it. eval.perplexity(model, tokenizer_or_nil, texts, {batch_size=8, max_length=, stride=, add_special=true}).
          texts: a list of strings (each encoded alone with add_special), a text file path (one long text), token ids (a list, a 1-D tensor, a 2-D tensor of rows), a batch {ids=, mask=} (mask 1 marks the tokens that count; the rest is context or padding), or a list of those. The tokenizer may be nil when no text is given.
          Each sequence predicts its tokens from the second on, token-weighted over all sequences (not a mean of per-text perplexities). A sequence longer than max_length (default: the model's positions) is cut into the guide's sliding windows: windows start every stride tokens (default max_length/2), each predicts only the tokens the previous window did not, with the context before them in its window. stride=max_length gives disjoint chunks (their first tokens are not predicted).
          Runs without gradients in evaluation mode. Returns {perplexity, nll (mean per token), tokens, total_nll, windows, forward_passes, max_length, stride, per_sequence = {{total_nll, tokens, nll, perplexity}, ...}}.
        """
    ) { a in
        let m = try NNBinding.module(a, 1)
        guard let lm = m as? LanguageModel, lm.vocabSize > 0 else {
            throw a.argumentError(1, "a language model (nn.gpt2, nn.llama or nn.load), got \(m.summary)")
        }
        let tok = a.isNil(2) ? nil : try TokBinding.tokenizer(a, 2)
        try a.checkOptions(4, allowed: perplexityOptions)
        func positive(_ key: String, min lo: Int) throws -> Int? {
            guard let v = try a.optionInteger(4, key) else { return nil }
            guard v >= lo else { throw a.argumentError(4, "a table whose field '\(key)' is an integer >= \(lo), got \(v)") }
            return v
        }
        let batchSize = try positive("batch_size", min: 1) ?? 8
        let maxLength = try positive("max_length", min: 2)
        let stride = try positive("stride", min: 1)
        if let maxLength, let limit = lm.maxPositions, maxLength > limit {
            throw a.argumentError(4, "a table whose field 'max_length' is at most the model's \(limit) positions, got \(maxLength)")
        }
        if let stride {
            guard let window = maxLength ?? Perplexity.defaultMaxLength(lm) else {
                throw a.argumentError(4, "a table with max_length when stride is given (this model has no position limit)")
            }
            guard stride <= window else {
                throw a.argumentError(4, "a table whose field 'stride' is at most max_length (\(window)), got \(stride)")
            }
        }
        let addSpecial = try a.optionBoolean(4, "add_special") ?? true
        let seqs = try sequences(a, tokenizer: tok, addSpecial: addSpecial)
        let r = try run { try Perplexity.evaluate(model: lm, sequences: seqs, maxLength: maxLength, stride: stride, batchSize: batchSize) }
        let lua = a.lua
        lua.newTable(recordCount: 9)
        set(lua, "perplexity", r.perplexity)
        set(lua, "nll", r.nll)
        set(lua, "tokens", r.tokens)
        set(lua, "total_nll", r.totalNLL)
        set(lua, "windows", r.windows)
        set(lua, "forward_passes", r.forwardPasses)
        if let v = r.maxLength { set(lua, "max_length", v) }
        if let v = r.stride { set(lua, "stride", v) }
        lua.newTable(arrayCount: Int32(clamping: r.perSequence.count))
        for (k, s) in r.perSequence.enumerated() {
            lua.newTable(recordCount: 4)
            set(lua, "total_nll", s.nll)
            set(lua, "tokens", s.tokens)
            if s.tokens > 0 {
                set(lua, "nll", s.nll / Double(s.tokens))
                set(lua, "perplexity", exp(s.nll / Double(s.tokens)))
            }
            lua.rawSet(-2, index: k + 1)
        }
        lua.rawSet(-2, field: "per_sequence")
        return 1
    }

    // MARK: eval.compare

    /// A row of the comparison: its name and what it is.
    enum EntryKind {
        case model
        case run(RunHistory)
    }

    /// A column: a metric of runs, or a Lua function (its index in the functions list) with the fields to take.
    enum ColumnKind {
        case metric(String)
        case function(Int, fields: [String]?)
    }

    /// A run named by `s`: a run folder, or DIR/s.
    static func runHistory(_ a: LuaArgs, _ s: String, dir: String, arg: Int, _ where_: String) throws -> RunHistory {
        let candidates = [s, (dir.hasSuffix("/") ? dir : dir + "/") + s]
        for c in candidates where FileManager.default.fileExists(atPath: c + "/manifest.json") {
            do { return try RunHistory.load(directory: c) } catch {
                throw a.argumentError(arg, "readable runs, but \(c) cannot be read: \(error)\(where_)")
            }
        }
        throw a.argumentError(arg, "models or runs; '\(s.prefix(200))' is neither a run folder nor a run in \(dir)/ (no manifest.json)\(where_)")
    }

    /// Reads the entries at argument 1 into names and kinds, their values into a new list on the stack (returned).
    static func entries(_ a: LuaArgs, dir: String) throws -> (names: [String], kinds: [EntryKind], values: Int32) {
        let lua = a.lua
        guard lua.type(1) == LUA_TTABLE else { throw a.typeError(1, "a list or a name -> value table of models and runs") }
        var names: [String] = [], kinds: [EntryKind] = []
        lua.newTable()
        let values = lua.absolute(-1)
        /// The value on top of the stack as an entry (popped into `values`); without a name, a model is "model k"
        /// and a run has its own name.
        func add(_ name: String?, _ where_: String) throws {
            let v = lua.absolute(-1)
            if lua.object(v, metatable: NNBinding.metatable, as: Module.self) != nil {
                kinds.append(.model)
                names.append(name ?? "model \(names.count + 1)")
            } else if lua.type(v) == LUA_TSTRING, let s = lua.string(v) {
                let h = try runHistory(a, s, dir: dir, arg: 1, where_)
                kinds.append(.run(h))
                names.append(name ?? h.name)
            } else {
                let got = lua.isFinalized(v) ? "a collected module" : lua.typeName(v)
                throw a.argumentError(1, "models (nn modules), run names or {name, value} pairs, got \(got)\(where_)")
            }
            lua.rawSet(values, index: names.count)
        }
        let n = lua.rawLength(1)
        var keys = 0
        lua.forEach(1) { keys += 1; return true }
        if n > 0 {
            guard keys == n else { throw a.argumentError(1, "a list (entries 1..n) or a table of named entries, not both") }
            for k in 1...n {
                _ = lua.rawGet(1, index: k)
                let top = lua.absolute(-1)
                let where_ = " at position \(k)"
                if lua.type(top) == LUA_TTABLE {
                    // {name, value}
                    guard lua.rawLength(top) == 2, lua.rawGet(top, index: 1) == LUA_TSTRING, let name = lua.string(-1) else {
                        throw a.argumentError(1, "models, run names or {name, value} pairs, got a table that is not a {name, value} pair\(where_)")
                    }
                    lua.pop()
                    _ = lua.rawGet(top, index: 2)
                    try add(name, where_)
                    lua.pop()
                } else {
                    try add(nil, where_)
                }
            }
        } else {
            guard keys > 0 else { throw a.argumentError(1, "a non-empty list or table of models and runs, got an empty table") }
            var keyNames: [String] = []
            var bad: String?
            lua.forEach(1) {
                guard lua.type(-2) == LUA_TSTRING, let k = lua.string(-2) else { bad = lua.typeName(-2); return false }
                keyNames.append(k)
                return true
            }
            if let bad { throw a.argumentError(1, "a list or a table with names as keys, got a \(bad) key") }
            for k in keyNames.sorted() {
                _ = lua.rawGet(1, field: k)
                try add(k, " at '\(k)'")
            }
        }
        return (names, kinds, values)
    }

    /// Reads the columns at argument 2; column functions go into a new list on the stack (returned).
    static func columns(_ a: LuaArgs) throws -> (specs: [(String, ColumnKind)], functions: Int32) {
        let lua = a.lua
        lua.newTable()
        let functions = lua.absolute(-1)
        var nf = 0
        var specs: [(String, ColumnKind)] = []
        /// The column value on top of the stack (popped), named `name`.
        func add(_ name: String) throws {
            defer { lua.pop() }
            let v = lua.absolute(-1)
            switch lua.type(v) {
            case LUA_TSTRING:
                specs.append((name, .metric(lua.string(v) ?? name)))
            case LUA_TFUNCTION:
                lua.pushValue(v)
                nf += 1
                lua.rawSet(functions, index: nf)
                specs.append((name, .function(nf, fields: nil)))
            case LUA_TTABLE:
                guard lua.rawGet(v, index: 1) == LUA_TFUNCTION else {
                    lua.pop()
                    throw a.argumentError(2, "a table whose column '\(name)' is a function, a metric name or {function, \"field\", ...}")
                }
                nf += 1
                lua.rawSet(functions, index: nf)
                var fields: [String] = []
                let len = lua.rawLength(v)
                for k in 2...max(len, 2) where k <= len {
                    _ = lua.rawGet(v, index: k)
                    defer { lua.pop() }
                    guard lua.type(-1) == LUA_TSTRING, let f = lua.string(-1) else {
                        throw a.argumentError(2, "a table whose column '\(name)' lists field names after its function, got \(lua.typeName(-1)) at position \(k)")
                    }
                    fields.append(f)
                }
                specs.append((name, .function(nf, fields: fields.isEmpty ? nil : fields)))
            default:
                throw a.argumentError(2, "a table whose column '\(name)' is a function, a metric name or {function, \"field\", ...}, got \(lua.typeName(v))")
            }
        }
        let n = lua.rawLength(2)
        for k in 1...max(n, 1) where k <= n {
            _ = lua.rawGet(2, index: k)
            guard lua.type(-1) == LUA_TSTRING, let s = lua.string(-1) else {
                let got = lua.typeName(-1)
                lua.pop()
                throw a.argumentError(2, "a table whose list part holds metric names, got \(got) at position \(k) (name functions: {name = function(m) ... end})")
            }
            lua.pop()
            specs.append((s, .metric(s)))
        }
        var named: [String] = []
        var bad: String?
        lua.forEach(2) {
            if lua.type(-2) == LUA_TNUMBER, let i = lua.integer(-2), i >= 1, i <= n { return true }
            guard lua.type(-2) == LUA_TSTRING, let k = lua.string(-2) else { bad = lua.typeName(-2); return false }
            named.append(k)
            return true
        }
        if let bad { throw a.argumentError(2, "a table of columns with names as keys, got a \(bad) key") }
        for name in named.sorted() {
            _ = lua.rawGet(2, field: name)
            try add(name)
        }
        guard !specs.isEmpty else { throw a.argumentError(2, "a table of at least one column, got an empty table") }
        return (specs, functions)
    }

    /// A number from the value at idx: a number or a one-element tensor.
    static func numberValue(_ lua: Lua, _ idx: Int32) -> Double? {
        if lua.type(idx) == LUA_TNUMBER { return lua.number(idx) }
        if let t = lua.object(idx, metatable: TensorBinding.metatable, as: Tensor.self), t.count == 1 {
            return (try? t.item()).map(Double.init)
        }
        return nil
    }

    /// Calls column function `f` with (value, name) and reads its result.
    static func columnValue(_ lua: Lua, functions: Int32, _ f: Int, values: Int32, row: Int, name: String,
                            fields: [String]?) throws -> ComparisonTable.Value {
        guard lua.ensureStack(8) else { return .error("Lua stack overflow") }
        let top = lua.top
        defer { lua.top = top }
        _ = lua.rawGet(functions, index: f)
        _ = lua.rawGet(values, index: row + 1)
        lua.push(name)
        if tycho_pcall(lua.L, 2, 1, 0) != LUA_OK { return .error(try callbackFailure(lua, "column function").message) }
        let r = lua.absolute(-1)
        if lua.isNoneOrNil(r) { return .missing }
        if let x = numberValue(lua, r) { return .number(x) }
        guard lua.type(r) == LUA_TTABLE else {
            return .error("the column function returned \(lua.typeName(r)), not a number or a table of numbers")
        }
        var d: [String: Double] = [:]
        if let fields {
            for k in fields {
                _ = lua.rawGet(r, field: k)
                if let x = numberValue(lua, -1) { d[k] = x }
                lua.pop()
            }
        } else {
            var keys: [String] = []
            lua.forEach(r) {
                if lua.type(-2) == LUA_TSTRING, let k = lua.string(-2), numberValue(lua, -1) != nil { keys.append(k) }
                return true
            }
            for k in keys {
                _ = lua.rawGet(r, field: k)
                if let x = numberValue(lua, -1) { d[k] = x }
                lua.pop()
            }
        }
        return .fields(d)
    }

    static let compare = LuaFunction(
        "compare",
        [.required("entries", .table), .required("columns", .table), .optional("options", .table, default: "{}")],
        doc: """
        A side-by-side table of models and runs. eval.compare(entries, columns, {print=true, format="text", title=, dir="runs"}).
          entries: a list of models (nn modules), run names or run folders (written by run.start; a name is looked up in dir) and {name, value} pairs, or a name -> value table (rows sorted by name). Rows keep the list's order.
          columns: metric names (a run's last logged value; "-" for models) in the list part, and name = function(value, row_name) pairs: the function gets the entry as given and returns a number (or a one-element tensor), a table of numbers (one column per numeric field, "name/field"), or nil ("-"). name = {function, "field", ...} takes just those fields (one field keeps the column's name). A function that raises shows ERR in its row, with the message under the table; the others go on.
          format: "text" (aligned, for a terminal), "markdown" or "html" (notebooks). Returns {rows = {names}, columns = {names}, values = {{column = number}, ...} per row, errors = {{row, column, message}, ...}, text = the table as printed}.
        """
    ) { a in
        try a.checkOptions(3, allowed: compareOptions)
        let doPrint = try a.optionBoolean(3, "print") ?? true
        let title = try a.optionString(3, "title")
        let dir = try a.optionString(3, "dir") ?? "runs"
        let formatName = try a.optionString(3, "format") ?? "text"
        guard let format = ComparisonTable.Format(rawValue: formatName) else {
            throw a.argumentError(3, "a table whose field 'format' is \"text\", \"markdown\" or \"html\", got '\(formatName.prefix(40))'")
        }
        let (names, kinds, values) = try entries(a, dir: dir)
        let (specs, functions) = try columns(a)
        let lua = a.lua
        var results: [[ComparisonTable.Value]] = []
        for (i, kind) in kinds.enumerated() {
            var row: [ComparisonTable.Value] = []
            for (_, column) in specs {
                switch (column, kind) {
                case (.metric(let metric), .run(let h)):
                    row.append(h.last(metric).map { .number($0) } ?? .missing)
                case (.metric, .model):
                    row.append(.missing)
                case (.function(let f, let fields), _):
                    row.append(try columnValue(lua, functions: functions, f, values: values, row: i, name: names[i], fields: fields))
                }
            }
            results.append(row)
        }
        let specList = specs.map { name, kind -> ComparisonTable.ColumnSpec in
            if case .function(_, let fields) = kind { return ComparisonTable.ColumnSpec(name, fields: fields) }
            return ComparisonTable.ColumnSpec(name)
        }
        let table = ComparisonTable.assemble(title: title, rows: names, specs: specList, values: results)
        let text = table.render(format)
        if doPrint { PreferenceBinding.say(lua, text) }
        lua.newTable(recordCount: 5)
        lua.newTable(arrayCount: Int32(clamping: names.count))
        for (i, n) in names.enumerated() { lua.push(n); lua.rawSet(-2, index: i + 1) }
        lua.rawSet(-2, field: "rows")
        lua.newTable(arrayCount: Int32(clamping: table.columns.count))
        for (j, c) in table.columns.enumerated() { lua.push(c); lua.rawSet(-2, index: j + 1) }
        lua.rawSet(-2, field: "columns")
        lua.newTable(arrayCount: Int32(clamping: names.count))
        for (i, row) in table.cells.enumerated() {
            lua.newTable(recordCount: Int32(clamping: row.count))
            for (j, c) in row.enumerated() where j < table.columns.count {
                if case .number(let x) = c { lua.push(x); lua.rawSet(-2, field: table.columns[j]) }
            }
            lua.rawSet(-2, index: i + 1)
        }
        lua.rawSet(-2, field: "values")
        lua.newTable(arrayCount: Int32(clamping: table.notes.count))
        for (k, n) in table.notes.enumerated() {
            lua.newTable(recordCount: 3)
            set(lua, "row", names[n.row])
            set(lua, "column", n.column)
            set(lua, "message", n.message)
            lua.rawSet(-2, index: k + 1)
        }
        lua.rawSet(-2, field: "errors")
        set(lua, "text", text)
        return 1
    }

    // MARK: module

    /// The module's functions; other files append theirs (the trainer's eval.preferences).
    static let functions: [LuaFunction] = [task, winRate, perplexity, compare, DPOTrainerBinding.evalPreferences]

    static let module = LuaModule(name: "eval",
                                  doc: "Evals: preference accuracy and margins (eval.preferences), task accuracy with a grader, win rate under a judge, perplexity, side-by-side comparison tables.",
                                  functions: functions)

    static func register(in state: LuaState) { state.register(module) }
}

// BatchBinding.swift: `infer.batch{...}`, a resumable OpenAI Batch API job run from Lua (TychoInfer's BatchJob;
// this file reads the option table, loads or takes the model and tokenizer, and returns the summary as a table).
//
// `batchFunction` is declared here on its own so that it can join the `infer` module that InferBinding.swift
// declares (generation); until then `module` registers an `infer` module holding only `batch`. A chat template
// may be a Lua function: it reaches the job as a Swift closure that calls it protected, and its error makes
// that one input line invalid, never the job.

import CLua
import CLuaShim
import TychoInfer
import TychoNN
import TychoTensor
import TychoText

enum BatchBinding {
    static let options: Set<String> = ["input", "output", "errors", "model", "tokenizer", "max_attempts", "backoff",
                                       "max_total_tokens", "max_seconds", "batch_size", "seed", "chat_template",
                                       "retry_failed", "model_name"]

    static let batchFunction = LuaFunction("batch", [.required("options", .table)], doc: """
        Runs (or resumes) a batch job: infer.batch{input=, output=, errors=OUTPUT with .errors.jsonl, model=, tokenizer=DIR/tokenizer.json, max_attempts=3, backoff=1, max_total_tokens=, max_seconds=, batch_size=8, seed=0, chat_template="auto", retry_failed=false, model_name=}.
        input: a JSONL file of OpenAI Batch API requests (/v1/completions or /v1/chat/completions). Results go to output in the OpenAI batch output format; failed requests and invalid lines to errors. Rerunning skips custom_ids already finished; the budget (max_total_tokens, max_seconds) stops starting requests and leaves the rest for a rerun.
        model: a model folder or an nn language model (then tokenizer= is required); tokenizer: a tokenizer or a tokenizer.json path. chat_template: "auto", "chatml", "llama3", "plain", or a function(messages) returning the prompt text.
        Returns the summary: {done, failed, skipped, invalid, invalid_lines, left, retries, requests, prompt_tokens, completion_tokens, total_tokens, seconds, tokens_per_second, complete, stopped_by, truncated_bytes, job_id, output, errors}.
        """) { a in
        try a.checkOptions(1, allowed: options)
        guard let input = try a.optionString(1, "input") else { throw a.argumentError(1, "a table with input = a JSONL file path") }
        guard let output = try a.optionString(1, "output") else { throw a.argumentError(1, "a table with output = a JSONL file path") }
        var o = BatchJobOptions(input: input, output: output, errors: try a.optionString(1, "errors"))
        if let v = try a.optionInteger(1, "max_attempts") {
            guard v >= 1 else { throw a.argumentError(1, "a table whose field 'max_attempts' is at least 1, got \(v)") }
            o.maxAttempts = v
        }
        if let v = try a.optionNumber(1, "backoff") {
            guard v >= 0, v.isFinite else { throw a.argumentError(1, "a table whose field 'backoff' is a number of seconds >= 0, got \(LuaArgs.formatNumber(v))") }
            o.backoff = v
        }
        if let v = try a.optionInteger(1, "max_total_tokens") {
            guard v >= 0 else { throw a.argumentError(1, "a table whose field 'max_total_tokens' is >= 0, got \(v)") }
            o.maxTotalTokens = v
        }
        if let v = try a.optionNumber(1, "max_seconds") {
            guard v >= 0 else { throw a.argumentError(1, "a table whose field 'max_seconds' is >= 0, got \(LuaArgs.formatNumber(v))") }
            o.maxSeconds = v
        }
        if let v = try a.optionInteger(1, "batch_size") {
            guard v >= 1 else { throw a.argumentError(1, "a table whose field 'batch_size' is at least 1, got \(v)") }
            o.batchSize = v
        }
        if let v = try a.optionInteger(1, "seed") { o.seed = UInt64(bitPattern: Int64(v)) }
        if let v = try a.optionBoolean(1, "retry_failed") { o.retryFailed = v }

        // The model: a folder or a language-model userdata; the tokenizer: a path or a userdata.
        let lm: LanguageModel
        var folder: String? = nil
        let modelType = a.lua.rawGet(1, field: "model")
        if modelType == LUA_TSTRING, let path = a.lua.string(-1) {
            a.lua.pop()
            folder = path
            lm = try load { try HFCheckpoint.load(path) }
        } else {
            let m = a.lua.object(-1, metatable: NNBinding.metatable, as: Module.self)
            let typeName = a.lua.typeName(-1)
            a.lua.pop()
            guard let m else { throw a.argumentError(1, "a table whose field 'model' is a model folder or an nn language model, got \(modelType == LUA_TNIL ? "nil" : typeName)") }
            guard let l = m as? LanguageModel else {
                throw a.argumentError(1, "a table whose field 'model' is a language model (nn.gpt2, nn.llama or nn.load), got \(m.summary)")
            }
            lm = l
        }
        let tok: Tokenizer
        let tokType = a.lua.rawGet(1, field: "tokenizer")
        if tokType == LUA_TSTRING, let path = a.lua.string(-1) {
            a.lua.pop()
            tok = try load { try Tokenizer.load(path: path) }
        } else if tokType == LUA_TNIL {
            a.lua.pop()
            guard let folder else { throw a.argumentError(1, "a table with tokenizer = a tokenizer or a tokenizer.json path (needed when model is not a folder)") }
            tok = try load { try Tokenizer.load(path: folder + "/tokenizer.json") }
        } else {
            let t = a.lua.object(-1, metatable: TokBinding.metatable, as: Tokenizer.self)
            let typeName = a.lua.typeName(-1)
            a.lua.pop()
            guard let t else { throw a.argumentError(1, "a table whose field 'tokenizer' is a tokenizer or a tokenizer.json path, got \(typeName)") }
            tok = t
        }
        o.modelName = try a.optionString(1, "model_name") ?? folder.map(BatchEngines.modelName(folder:)) ?? (lm.modelType.isEmpty ? "tycho" : lm.modelType)

        // The chat template: a name, or a Lua function kept at a fixed stack slot for the job's duration.
        let templateType = a.lua.rawGet(1, field: "chat_template")
        if templateType == LUA_TFUNCTION {
            o.chatTemplate = luaTemplate(a.lua, functionAt: a.lua.top)  // stays on the stack until we return
        } else {
            defer { a.lua.pop() }
            let name = templateType == LUA_TNIL ? "auto" : (templateType == LUA_TSTRING ? a.lua.string(-1) ?? "" : "")
            if templateType != LUA_TNIL && templateType != LUA_TSTRING {
                throw a.argumentError(1, "a table whose field 'chat_template' is a template name or a function, got \(a.lua.typeName(-1))")
            }
            if name == "auto" {
                o.chatTemplate = folder.map { BatchChatTemplates.detect(modelFolder: $0).template } ?? ChatMLTemplate()
            } else if let t = BatchChatTemplates.named(name) {
                o.chatTemplate = t
            } else {
                throw a.argumentError(1, "a table whose field 'chat_template' is auto, \(BatchChatTemplates.names.joined(separator: ", ")) or a function, got '\(name)'")
            }
        }

        let eos = folder.map { BatchEngines.eosIDs(modelFolder: $0) } ?? BatchEngines.eosIDs(model: lm)
        let engine = BatchEngines.make(model: lm, tokenizer: tok, eosIDs: eos, batchSize: o.batchSize)
        let summary: BatchSummary
        do { summary = try BatchJob.run(o, engine: engine) } catch let e as BatchJobError { throw LuaBindingError(e.message) }
        pushSummary(a.lua, summary, o)
        return 1
    }

    static func load<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch let e as TokenizerError { throw LuaBindingError(e.message) }
        catch let e as TensorError { throw LuaBindingError(e.message) }
    }

    /// A template calling the Lua function at stack slot `index` with the messages as a list of
    /// {role=, content=} tables; it must return a string.
    static func luaTemplate(_ lua: Lua, functionAt index: Int32) -> BatchChatTemplate {
        ClosureChatTemplate(name: "function", stopStrings: [], addSpecialTokens: false) { messages in
            guard lua.ensureStack(6) else { throw LuaBindingError("Lua stack overflow") }
            let top = lua.top
            defer { lua.pop(lua.top - top) }
            lua.pushValue(index)
            lua.newTable(arrayCount: Int32(clamping: messages.count))
            for (k, m) in messages.enumerated() {
                lua.newTable(recordCount: 2)
                lua.push(m.role); lua.rawSet(-2, field: "role")
                lua.push(m.content); lua.rawSet(-2, field: "content")
                lua.rawSet(-2, index: k + 1)
            }
            if tycho_pcall(lua.L, 1, 1, 0) != LUA_OK {
                throw TemplateError(message: lua.type(-1) == LUA_TSTRING ? lua.string(-1) ?? "error" : "a \(lua.typeName(-1)) error")
            }
            guard lua.type(-1) == LUA_TSTRING, let s = lua.string(-1) else {
                throw TemplateError(message: "the chat_template function must return a string, got \(lua.typeName(-1))")
            }
            return s
        }
    }

    struct TemplateError: Error, CustomStringConvertible {
        let message: String
        var description: String { message }
    }

    static func pushSummary(_ lua: Lua, _ s: BatchSummary, _ o: BatchJobOptions) {
        lua.newTable(recordCount: 20)
        let ints: [(String, Int)] = [("done", s.done), ("failed", s.failed), ("skipped", s.skipped), ("invalid", s.invalid),
                                     ("left", s.left), ("retries", s.retries), ("requests", s.requests),
                                     ("prompt_tokens", s.promptTokens), ("completion_tokens", s.completionTokens),
                                     ("total_tokens", s.totalTokens), ("truncated_bytes", s.truncatedBytes)]
        for (k, v) in ints { lua.push(v); lua.rawSet(-2, field: k) }
        lua.push(s.seconds); lua.rawSet(-2, field: "seconds")
        lua.push(s.tokensPerSecond); lua.rawSet(-2, field: "tokens_per_second")
        lua.push(s.complete); lua.rawSet(-2, field: "complete")
        if let stop = s.stoppedBy { lua.push(stop); lua.rawSet(-2, field: "stopped_by") }
        lua.push(s.jobID); lua.rawSet(-2, field: "job_id")
        lua.push(o.output); lua.rawSet(-2, field: "output")
        lua.push(o.errorsPath); lua.rawSet(-2, field: "errors")
        lua.newTable(arrayCount: Int32(clamping: s.invalidLines.count))
        for (k, line) in s.invalidLines.enumerated() { lua.push(line); lua.rawSet(-2, index: k + 1) }
        lua.rawSet(-2, field: "invalid_lines")
    }

    /// Until InferBinding's `infer` module exists on this branch: `infer` with `batch` alone.
    static let module = LuaModule(name: "infer", doc: "Inference: resumable batch jobs in the OpenAI Batch API format (infer.batch).",
                                  functions: [batchFunction])
}

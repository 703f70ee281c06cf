// PreferenceBinding.swift: preference data from Lua (`data.preferences`, `data.audit`, the `tycho.Preferences`
// type) and the reference functions of the `dpo` module (`dpo.reference_logprobs`, `dpo.sync_reference`).
//
// The work is TychoText's (PreferenceData, PreferenceAudit, ChatLayout) and TychoTrain's (ReferenceCache,
// ReferenceSync); this file reads options, resolves the tokenizer, EOS text and chat template a model folder
// gives, and converts results to Lua values. `dataFunctions` join the `data` module (DataBinding.module);
// `dpoFunctions` join the `dpo` module that DPOBinding.swift declares. A Lua chat template function reaches
// TychoText as a closure that calls it protected while `data.preferences` runs.

import CLua
import CLuaShim
import Foundation
import TychoNN
import TychoTensor
import TychoText
import TychoTrain

enum PreferenceBinding {
    static let metatable = "tycho.Preferences"
    static let batchesMetatable = "tycho.PreferenceBatches"
    /// Error prefix of the methods: `data.preferences.batch: ...`.
    static let methodModule = "data.preferences"

    static let options: Set<String> = ["tokenizer", "max_length", "max_prompt_length", "max_completion_length",
                                       "truncation", "chat_template", "eos_token", "pad_id", "quiet"]

    // MARK: helpers

    static func data(_ a: LuaArgs, _ idx: Int = 1) throws -> PreferenceData {
        if let d = a.lua.object(Int32(idx), metatable: metatable, as: PreferenceData.self) { return d }
        if a.lua.isFinalized(Int32(idx)) { throw a.argumentError(idx, "live preference data, got data that was already collected") }
        throw a.typeError(idx, "preference data (data.preferences)")
    }

    static func run<T>(_ body: () throws -> T) throws -> T {
        do { return try body() }
        catch let e as PreferenceDataError { throw LuaBindingError(e.message) }
        catch let e as TokenizerError { throw LuaBindingError(e.message) }
        catch let e as JSONLinesError { throw LuaBindingError(e.description) }
        catch let e as TensorError { throw LuaBindingError(e.message) }
    }

    /// Calls the global `print` with `text`, protected (the REPL or a kernel may have replaced print).
    static func say(_ lua: Lua, _ text: String) {
        guard lua.ensureStack(3) else { return }
        lua.pushGlobals()
        _ = lua.rawGet(-1, field: "print")
        tycho_remove(lua.L, -2)
        guard lua.type(-1) == LUA_TFUNCTION else { lua.pop(); return }
        lua.push(text)
        if tycho_pcall(lua.L, 1, 0, 0) != LUA_OK { lua.pop() }
    }

    static func pushInts(_ lua: Lua, _ xs: [Int]) {
        lua.newTable(arrayCount: Int32(clamping: xs.count))
        for (k, x) in xs.enumerated() { lua.push(x); lua.rawSet(-2, index: k + 1) }
    }

    static func pushInts(_ lua: Lua, _ xs: [Int32]) { pushInts(lua, xs.map(Int.init)) }

    static func set(_ lua: Lua, _ key: String, _ value: Int) { lua.push(value); lua.rawSet(-2, field: key) }
    static func set(_ lua: Lua, _ key: String, _ value: Double) { lua.push(value); lua.rawSet(-2, field: key) }
    static func set(_ lua: Lua, _ key: String, _ value: String) { lua.push(value); lua.rawSet(-2, field: key) }
    static func set(_ lua: Lua, _ key: String, _ value: Bool) { lua.push(value); lua.rawSet(-2, field: key) }

    /// A length option: a positive integer, `false` for no limit, or absent (the default).
    static func lengthOption(_ a: LuaArgs, _ idx: Int, _ key: String, minimum: Int) throws -> Int?? {
        let t = a.lua.rawGet(Int32(idx), field: key)
        defer { a.lua.pop() }
        if t == LUA_TNIL { return .none }
        if t == LUA_TBOOLEAN && !a.lua.bool(-1) { return .some(nil) }
        guard t == LUA_TNUMBER, let v = a.lua.number(-1), v == v.rounded(), Swift.abs(v) < 9e15 else {
            throw a.argumentError(idx, "a table whose field '\(key)' is an integer (or false for no limit), got \(t == LUA_TBOOLEAN ? "true" : a.lua.typeName(-1))")
        }
        guard Int(v) >= minimum else {
            throw a.argumentError(idx, "a table whose field '\(key)' is at least \(minimum), got \(Int(v))")
        }
        return .some(Int(v))
    }

    // MARK: tokenizer, EOS and chat template

    /// The `tokenizer` option: a tokenizer, or a path to a tokenizer.json or to a model folder holding one.
    /// Returns the tokenizer and the folder it came from (where tokenizer_config.json and templates live).
    static func tokenizerOption(_ a: LuaArgs, _ idx: Int) throws -> (Tokenizer, folder: String?) {
        let t = a.lua.rawGet(Int32(idx), field: "tokenizer")
        defer { a.lua.pop() }
        if let tok = a.lua.object(-1, metatable: TokBinding.metatable, as: Tokenizer.self) { return (tok, nil) }
        if t == LUA_TSTRING, let path = a.lua.string(-1) {
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
                throw a.argumentError(idx, "a table whose field 'tokenizer' is a tokenizer, a tokenizer.json or a model folder, got '\(path)', which does not exist")
            }
            let file = isDir.boolValue ? path + "/tokenizer.json" : path
            let folder = isDir.boolValue ? path : (path as NSString).deletingLastPathComponent
            let tok = try run { try Tokenizer.load(path: file) }
            return (tok, folder.isEmpty ? "." : folder)
        }
        if t == LUA_TNIL { throw a.argumentError(idx, "a table with tokenizer = a tokenizer (tok.load), a tokenizer.json or a model folder") }
        if a.lua.isFinalized(-1) { throw a.argumentError(idx, "a table whose field 'tokenizer' is a live tokenizer, got one that was already collected") }
        throw a.argumentError(idx, "a table whose field 'tokenizer' is a tokenizer, a tokenizer.json or a model folder, got \(a.lua.typeName(-1))")
    }

    /// The EOS text TRL appends to plain completions (`tokenizer.eos_token`): tokenizer_config.json's eos_token,
    /// else the token of config.json's (or generation_config.json's) eos_token_id, in the tokenizer's folder;
    /// else the one special token named like an EOS (`<|endoftext|>`, `</s>`, `<|end_of_text|>`, `<eos>`).
    static func defaultEOS(_ tok: Tokenizer, folder: String?) -> String? {
        if let folder {
            func json(_ name: String) -> [String: Any]? {
                guard let d = FileManager.default.contents(atPath: folder + "/" + name) else { return nil }
                return try? JSONSerialization.jsonObject(with: d) as? [String: Any]
            }
            if let config = json("tokenizer_config.json") {
                if let s = config["eos_token"] as? String { return s }
                if let o = config["eos_token"] as? [String: Any], let s = o["content"] as? String { return s }
            }
            for name in ["generation_config.json", "config.json"] {
                guard let c = json(name) else { continue }
                let id = (c["eos_token_id"] as? Int) ?? (c["eos_token_id"] as? [Int])?.first
                if let id, let s = tok.token(for: id) { return s }
            }
        }
        let names: Set<String> = ["<|endoftext|>", "</s>", "<|end_of_text|>", "<eos>", "<|eos|>"]
        let found = tok.specialTokens.filter { names.contains($0.content) }
        return found.count == 1 ? found[0].content : nil
    }

    /// A chat template calling the Lua function at stack slot `index` with (messages, add_generation_prompt);
    /// it must return a string.
    static func luaTemplate(_ lua: Lua, functionAt index: Int32) -> ChatRenderer {
        ChatRenderer(name: "function") { messages, addGenerationPrompt in
            guard lua.ensureStack(6) else { throw PreferenceDataError("Lua stack overflow") }
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
            lua.push(addGenerationPrompt)
            if tycho_pcall(lua.L, 2, 1, 0) != LUA_OK {
                throw PreferenceDataError("the chat_template function failed: " + (lua.type(-1) == LUA_TSTRING ? lua.string(-1) ?? "error" : "a \(lua.typeName(-1)) error"))
            }
            guard lua.type(-1) == LUA_TSTRING, let s = DataBinding.utf8String(lua, -1) else {
                throw PreferenceDataError("the chat_template function must return a string of UTF-8 text, got \(lua.typeName(-1))")
            }
            return s
        }
    }

    // MARK: rows

    /// The rows of argument 1 (a JSONL path or a list of row tables) and how errors name each.
    static func rows(_ a: LuaArgs) throws -> (rows: [JSONValue], places: [String], source: String) {
        if a.lua.type(1) == LUA_TSTRING {
            let path = try a.string(1)
            let reader = try run { try JSONLinesReader(path: path) }
            var rows: [JSONValue] = [], places: [String] = []
            while let (line, row) = try run({ try reader.next() }) {
                rows.append(row)
                places.append("\(path):\(line)")
            }
            return (rows, places, path)
        }
        guard a.lua.type(1) == LUA_TTABLE else { throw a.typeError(1, "a JSONL file path or a list of rows") }
        let n = try DataBinding.listCount(a, 1)
        var rows: [JSONValue] = [], places: [String] = []
        rows.reserveCapacity(n)
        for r in 1...Swift.max(n, 1) where r <= n {
            _ = a.lua.rawGet(1, index: r)
            defer { a.lua.pop() }
            rows.append(try DataBinding.rowValue(a.lua, -1, number: r))
            places.append("row \(r)")
        }
        return (rows, places, "rows")
    }

    // MARK: data functions

    static let preferencesFunction = LuaFunction("preferences", [.required("path_or_rows", .any), .required("options", .table)], doc: """
        Preference pairs tokenized as TRL's DPOTrainer (1.16) does: data.preferences(path_or_rows, {tokenizer=, max_length=1024, max_prompt_length=, max_completion_length=, truncation="keep_start", chat_template="auto", eos_token=, pad_id=, quiet=false}).
          Rows (a JSONL file or a list of tables): TRL's {prompt=, chosen=, rejected=} as strings or as message lists {{role=, content=}, ...}, TRL's implicit-prompt {chosen=, rejected=}, or OpenAI DPO rows {input={messages=}, preferred_output=, non_preferred_output=}.
          Plain rows: chosen and rejected get the EOS text (eos_token; default from the tokenizer's folder or its <|endoftext|>-like special token); the prompt and prompt+completion are tokenized whole and split where they stop agreeing. Conversational rows: rendered by chat_template ("auto": the tokenizer folder's ChatML or Llama 3 template, else chatml; "chatml", "llama3", "plain", or a function(messages, add_generation_prompt) returning text).
          tokenizer: a tokenizer, a tokenizer.json or a model folder. max_length (false: no limit) cuts each prompt+completion: keep_start keeps the first tokens and drops rows whose prompt alone fills max_length, keep_end keeps the last. max_prompt_length / max_completion_length (TRL 0.x rules, off by default) keep a prompt's end and a completion's start.
          Truncated and dropped rows are counted in p:info() and printed unless quiet. Returns a preference data object: #p pairs, p:pair(i), p:batch(indices), p:batches{batch_size=}, p:split(0.9, {seed=}), p:subset(indices), p:info(), p:reference().
        """) { a in
        try a.checkOptions(2, allowed: options)
        let (rows, places, source) = try rows(a)
        let (tok, folder) = try tokenizerOption(a, 2)
        var o = PreferenceOptions()
        if let v = try lengthOption(a, 2, "max_length", minimum: 1) { o.maxLength = v }
        if let v = try lengthOption(a, 2, "max_prompt_length", minimum: 0) { o.maxPromptLength = v }
        if let v = try lengthOption(a, 2, "max_completion_length", minimum: 1) { o.maxCompletionLength = v }
        if let t = try a.optionString(2, "truncation") {
            guard let mode = PreferenceTruncation(rawValue: t) else {
                throw a.argumentError(2, "a table whose field 'truncation' is \"keep_start\" or \"keep_end\", got \"\(t)\"")
            }
            o.truncation = mode
        }
        let quiet = try a.optionBoolean(2, "quiet") ?? false
        if let e = try a.optionString(2, "eos_token") {
            guard tok.id(for: e) != nil else {
                throw a.argumentError(2, "a table whose field 'eos_token' is a token of the tokenizer, got \"\(e)\"")
            }
            o.eosToken = e
        } else {
            o.eosToken = defaultEOS(tok, folder: folder)
        }
        if let p = try a.optionInteger(2, "pad_id") {
            guard p >= 0, tok.token(for: p) != nil else {
                throw a.argumentError(2, "a table whose field 'pad_id' is a token id of the tokenizer (0..\(tok.vocabSize - 1)), got \(p)")
            }
            o.padID = p
        }
        // The chat template: a name, or a Lua function kept on the stack while the rows are tokenized.
        let templateType = a.lua.rawGet(2, field: "chat_template")
        if templateType == LUA_TFUNCTION {
            o.chatTemplate = luaTemplate(a.lua, functionAt: a.lua.top)  // stays on the stack until we return
        } else {
            defer { a.lua.pop() }
            guard templateType == LUA_TNIL || templateType == LUA_TSTRING else {
                throw a.argumentError(2, "a table whose field 'chat_template' is a template name or a function, got \(a.lua.typeName(-1))")
            }
            let name = templateType == LUA_TNIL ? "auto" : a.lua.string(-1) ?? ""
            if name == "auto" {
                if let folder {
                    let (layout, note) = ChatLayout.detect(folder: folder)
                    o.chatTemplate = ChatRenderer(layout)
                    if let note, !quiet { say(a.lua, "data.preferences: " + note) }
                } else {
                    o.chatTemplate = ChatRenderer(.chatml)
                }
            } else if let layout = ChatLayout(rawValue: name) {
                o.chatTemplate = ChatRenderer(layout)
            } else {
                throw a.argumentError(2, "a table whose field 'chat_template' is auto, \(ChatLayout.names.joined(separator: ", ")) or a function, got '\(name)'")
            }
        }
        let d = try run { try PreferenceData(rows: rows, places: places, tokenizer: tok, options: o, source: source) }
        if !quiet, let note = d.lossNote { say(a.lua, "data.preferences: " + note) }
        let kb = d.pairs.reduce(0) { $0 + ($1.prompt.count + $1.chosen.count + $1.rejected.count) * 4 } / 1024
        if kb > 0 { _ = tycho_gc_step(a.lua.L, Int32(clamping: kb)) }
        a.lua.pushObject(d, metatable: metatable)
        return 1
    }

    static let auditFunction = LuaFunction("audit", [.required("prefs", .any), .optional("eval_prefs", .any), .optional("options", .table, default: "{print=false}")], doc: """
        What can mislead preference optimisation, before training: data.audit(prefs[, eval_prefs][, {print=true}]).
          Returns {pairs=, length_bias={chosen_longer=, rejected_longer=, same_length= (fractions of pairs), mean_chosen_tokens=, mean_rejected_tokens=}, identical=, identical_rows=, duplicates=, duplicate_rows={{row=, first=}, ...}, contradictions=, contradiction_rows={{row=, other=}, ...}, truncated=, truncated_rows=, dropped=, dropped_rows=, warnings={...}, report=text}; with eval_prefs also eval_pairs=, shared_prompts= (eval pairs whose prompt is in the training data), shared_prompt_rows=, distinct_shared_prompts=, eval_leaked= (eval pairs identical to a training pair), eval_leaked_rows=.
          Lengths are completion tokens (EOS included, before truncation); rows are 1-based source rows. print=true prints the report.
        """) { a in
        let train = try data(a, 1)
        var eval: PreferenceData? = nil
        var optionsIndex = 3
        if a.lua.type(2) == LUA_TTABLE && a.isNil(3) {
            optionsIndex = 2
        } else if !a.isNil(2) {
            eval = try data(a, 2)
        }
        if optionsIndex == 3 && !a.isNil(3) && a.lua.type(3) != LUA_TTABLE { throw a.typeError(3, "a table of options") }
        try a.checkOptions(optionsIndex, allowed: ["print"])
        let printIt = try a.optionBoolean(optionsIndex, "print") ?? false
        let audit = PreferenceAudit(train: train, eval: eval)
        let lua = a.lua
        guard lua.ensureStack(8) else { throw LuaBindingError("Lua stack overflow") }
        lua.newTable(recordCount: 24)
        set(lua, "pairs", audit.pairs)
        lua.newTable(recordCount: 5)
        set(lua, "chosen_longer", audit.chosenLongerFraction)
        set(lua, "rejected_longer", audit.rejectedLongerFraction)
        set(lua, "same_length", audit.sameLengthFraction)
        set(lua, "mean_chosen_tokens", audit.meanChosenTokens)
        set(lua, "mean_rejected_tokens", audit.meanRejectedTokens)
        lua.rawSet(-2, field: "length_bias")
        func rowList(_ key: String, _ rows: [Int]) { pushInts(lua, rows.map { $0 + 1 }); lua.rawSet(-2, field: key) }
        func pairList(_ key: String, _ items: [(Int, Int)], _ second: String) {
            lua.newTable(arrayCount: Int32(clamping: items.count))
            for (k, (r, o)) in items.enumerated() {
                lua.newTable(recordCount: 2)
                set(lua, "row", r + 1)
                set(lua, second, o + 1)
                lua.rawSet(-2, index: k + 1)
            }
            lua.rawSet(-2, field: key)
        }
        set(lua, "identical", audit.identicalRows.count); rowList("identical_rows", audit.identicalRows)
        set(lua, "duplicates", audit.duplicateRows.count); pairList("duplicate_rows", audit.duplicateRows.map { ($0.row, $0.first) }, "first")
        set(lua, "contradictions", audit.contradictoryRows.count); pairList("contradiction_rows", audit.contradictoryRows.map { ($0.row, $0.other) }, "other")
        set(lua, "truncated", audit.truncatedRows.count); rowList("truncated_rows", audit.truncatedRows)
        set(lua, "dropped", audit.dropped.count); rowList("dropped_rows", audit.dropped.map(\.row))
        if let e = audit.evalPairs {
            set(lua, "eval_pairs", e)
            set(lua, "shared_prompts", audit.evalSharedPromptRows.count); rowList("shared_prompt_rows", audit.evalSharedPromptRows)
            set(lua, "distinct_shared_prompts", audit.sharedPrompts)
            set(lua, "eval_leaked", audit.evalLeakedRows.count); rowList("eval_leaked_rows", audit.evalLeakedRows)
        }
        lua.newTable(arrayCount: Int32(clamping: audit.warnings.count))
        for (k, w) in audit.warnings.enumerated() { lua.push(w); lua.rawSet(-2, index: k + 1) }
        lua.rawSet(-2, field: "warnings")
        let report = audit.report()
        set(lua, "report", report)
        if printIt { say(lua, report.hasSuffix("\n") ? String(report.dropLast()) : report) }
        return 1
    }

    /// Functions for the `data` module.
    static let dataFunctions: [LuaFunction] = [preferencesFunction, auditFunction]

    // MARK: methods

    static func method(_ name: String, _ params: [LuaParam] = [], doc: String,
                       _ body: @escaping (LuaArgs, PreferenceData) throws -> Int) -> LuaFunction {
        let f = LuaFunction(name, [.required("self", .any)] + params, method: true, doc: doc) { a in try body(a, try data(a)) }
        f.module = methodModule
        return f
    }

    /// A 1-based pair number at idx, returned 0-based.
    static func pairIndex(_ a: LuaArgs, _ idx: Int, _ d: PreferenceData) throws -> Int {
        let i = try a.integer(idx)
        guard i >= 1 && i <= d.count else {
            throw a.argumentError(idx, d.count == 0 ? "a pair number, but the data has no pairs" : "a pair number in 1..\(d.count), got \(i)")
        }
        return i - 1
    }

    /// Pushes the batch table of pairs `indices` (0-based).
    static func pushBatch(_ a: LuaArgs, _ d: PreferenceData, _ indices: [Int]) throws {
        let b = d.batch(indices)
        let lua = a.lua
        guard lua.ensureStack(8) else { throw LuaBindingError("Lua stack overflow") }
        let ids = try Tensor(shape: [2 * b.size, b.length], values: b.ids)        // (2B, T)
        let mask = try Tensor(shape: [2 * b.size, b.length], values: b.mask)      // (2B, T)
        let attention = try Tensor(shape: [2 * b.size, b.length], values: b.attention)
        lua.newTable(recordCount: 16)
        a.push(ids); lua.rawSet(-2, field: "ids")
        a.push(mask); lua.rawSet(-2, field: "mask")
        a.push(attention); lua.rawSet(-2, field: "attention_mask")
        a.push(try ids.narrow(0, start: 0, length: b.size)); lua.rawSet(-2, field: "chosen_ids")          // (B, T)
        a.push(try mask.narrow(0, start: 0, length: b.size)); lua.rawSet(-2, field: "chosen_mask")
        a.push(try ids.narrow(0, start: b.size, length: b.size)); lua.rawSet(-2, field: "rejected_ids")
        a.push(try mask.narrow(0, start: b.size, length: b.size)); lua.rawSet(-2, field: "rejected_mask")
        let tokens = b.completionTokens.map(Float.init)
        a.push(try Tensor(shape: [b.size], values: Array(tokens[0..<b.size]))); lua.rawSet(-2, field: "chosen_lengths")
        a.push(try Tensor(shape: [b.size], values: Array(tokens[b.size...]))); lua.rawSet(-2, field: "rejected_lengths")
        pushInts(lua, b.rows.map { $0 + 1 }); lua.rawSet(-2, field: "rows")
        pushInts(lua, b.pairs.map { $0 + 1 }); lua.rawSet(-2, field: "pairs")
        set(lua, "size", b.size)
        if let rc = d.referenceChosen, let rr = d.referenceRejected {
            a.push(try Tensor(shape: [b.size], values: b.pairs.map { rc[$0] })); lua.rawSet(-2, field: "ref_chosen")
            a.push(try Tensor(shape: [b.size], values: b.pairs.map { rr[$0] })); lua.rawSet(-2, field: "ref_rejected")
        }
    }

    static let methods: [LuaFunction] = [
        method("size", doc: "The number of pairs (also #p).") { a, d in a.push(d.count) },
        method("pair", [.required("i", .integer)], doc: """
            Pair i as TRL's dataset holds it: {row= (1-based source row), prompt_ids=, chosen_ids=, rejected_ids= (0-based token ids; chosen_ids and rejected_ids are the completions, EOS included), truncated=, chosen={ids=, mask=}, rejected={ids=, mask=} (the sequences after max_length, mask 1 on completion tokens)}.
            """) { a, d in
            let i = try pairIndex(a, 2, d)
            let p = d.pairs[i]
            let lua = a.lua
            guard lua.ensureStack(6) else { throw LuaBindingError("Lua stack overflow") }
            lua.newTable(recordCount: 7)
            set(lua, "row", p.row + 1)
            pushInts(lua, p.prompt); lua.rawSet(-2, field: "prompt_ids")
            pushInts(lua, p.chosen); lua.rawSet(-2, field: "chosen_ids")
            pushInts(lua, p.rejected); lua.rawSet(-2, field: "rejected_ids")
            set(lua, "truncated", p.truncated)
            for (key, side) in [("chosen", true), ("rejected", false)] {
                let e = d.sequence(i, chosen: side)
                lua.newTable(recordCount: 2)
                pushInts(lua, e.ids); lua.rawSet(-2, field: "ids")
                pushInts(lua, e.mask.map { $0 ? 1 : 0 }); lua.rawSet(-2, field: "mask")
                lua.rawSet(-2, field: key)
            }
            return 1
        },
        method("batch", [.required("indices", .table)], doc: """
            Pairs (a list of 1-based pair numbers) as one batch in TRL's concatenated layout: {ids=, mask=, attention_mask= (2B x T: the B chosen sequences, then the B rejected), chosen_ids=, chosen_mask=, rejected_ids=, rejected_mask= (B x T views of them), chosen_lengths=, rejected_lengths= (completion tokens, B), rows=, pairs= (1-based), size=B, and ref_chosen=, ref_rejected= (B) once dpo.reference_logprobs attached them}.
              mask is 1 on completion tokens (prompt and padding 0), so m:logprobs(batch.ids, batch.mask) gives the 2B summed log-probs TRL computes; ids are right-padded with the pad id.
            """) { a, d in
            let n = a.lua.rawLength(2)
            guard n > 0 else { throw a.argumentError(2, "a non-empty list of pair numbers") }
            var indices: [Int] = []
            for k in 1...n {
                _ = a.lua.rawGet(2, index: k)
                defer { a.lua.pop() }
                guard let v = a.lua.number(-1), v == v.rounded(), v >= 1, v <= Double(d.count) else {
                    throw a.argumentError(2, "a list of pair numbers in 1..\(d.count), got \(a.lua.number(-1).map(LuaArgs.formatNumber) ?? a.lua.typeName(-1)) at position \(k)")
                }
                indices.append(Int(v) - 1)
            }
            try pushBatch(a, d, indices)
            return 1
        },
        method("batches", [.required("options", .table)], doc: """
            Iterates over batches of pairs: for i, batch in p:batches{batch_size=8, shuffle=false, seed=, drop_last=false} do ... end. Each batch is as p:batch gives it. The shuffle is data.batches' (Fisher-Yates fixed by seed; without seed, from tensor.manual_seed's generator).
            """) { a, d in
            try a.checkOptions(2, allowed: ["batch_size", "shuffle", "seed", "drop_last"])
            guard let size = try a.optionInteger(2, "batch_size") else { throw a.argumentError(2, "a table with batch_size = an integer") }
            guard size >= 1 else { throw a.argumentError(2, "a table whose field 'batch_size' is at least 1, got \(size)") }
            let shuffle = try a.optionBoolean(2, "shuffle") ?? false
            let dropLast = try a.optionBoolean(2, "drop_last") ?? false
            let seed = try a.optionInteger(2, "seed")
            var order = Array(0..<d.count)
            if shuffle {
                if let seed {
                    var g = RandomGenerator(seed: UInt64(bitPattern: Int64(seed)))
                    order = BatchPlan.shuffled(d.count) { Int(g.nextInt(below: UInt64($0))) }
                } else {
                    let state = a.state
                    order = BatchPlan.shuffled(d.count) { Int(state.generator.nextInt(below: UInt64($0))) }
                }
            }
            let it = BatchIterator(data: d, plan: BatchPlan.batches(order, batchSize: size, dropLast: dropLast))
            a.lua.push(batchesStep)
            a.lua.pushObject(it, metatable: batchesMetatable)
            a.lua.push(0)
            return 3
        },
        method("subset", [.required("indices", .table)], doc: """
            The pairs at indices (a list of 1-based pair numbers, each at most once, in the order given) as new preference data: p:subset({3, 1, 4}).
              The pairs keep their source rows (numbered in the original file), the options and any reference log-probs dpo.reference_logprobs attached; the rows and tokens hashes are recomputed, so reference caches tell subsets apart. Dropped rows stay the original's.
            """) { a, d in
            let n = a.lua.rawLength(2)
            var indices: [Int] = []
            indices.reserveCapacity(n)
            for k in 1...Swift.max(n, 1) where k <= n {
                _ = a.lua.rawGet(2, index: k)
                defer { a.lua.pop() }
                guard let v = a.lua.number(-1), v == v.rounded(), v >= 1, v <= Double(d.count) else {
                    throw a.argumentError(2, d.count == 0 ? "a list of pair numbers, but the data has no pairs" : "a list of pair numbers in 1..\(d.count), got \(a.lua.number(-1).map(LuaArgs.formatNumber) ?? a.lua.typeName(-1)) at position \(k)")
                }
                indices.append(Int(v) - 1)
            }
            let s: PreferenceData
            do { s = try d.subset(indices) } catch let e as PreferenceDataError { throw a.argumentError(2, "a list of distinct pair numbers: \(e.message)") }
            a.lua.pushObject(s, metatable: metatable)
            return 1
        },
        method("split", [.required("fraction_or_count", .number), .optional("options", .table, default: "{seed=nil, shuffle=true, by_prompt=true}")], doc: """
            Cuts the pairs in two: local train, held_out = p:split(0.9, {seed = 1, shuffle = true, by_prompt = true}).
              fraction_or_count: the first part's share of the pairs, a fraction in (0, 1) (floor(fraction * #p) pairs), or a whole number of pairs in 1..#p-1.
              by_prompt=true keeps all pairs of a prompt (data.audit's prompt comparison) on one side, so the second part shares no prompt with the first; the (shuffled) prompt groups are cut where the first part's size is closest to the asked one, so it can be off by half a group. by_prompt=false gives exactly the size. shuffle=true takes pairs (or prompt groups) in a random order fixed by seed (without seed, from tensor.manual_seed's generator); shuffle=false in data-set order. Each part keeps its pairs in data-set order, their source rows, the options and any attached reference log-probs, with hashes of its own (as p:subset).
            """) { a, d in
            let x = try a.number(2)
            try a.checkOptions(3, allowed: ["seed", "shuffle", "by_prompt"])
            let shuffle = try a.optionBoolean(3, "shuffle") ?? true
            let byPrompt = try a.optionBoolean(3, "by_prompt") ?? true
            let seed = try a.optionInteger(3, "seed")
            guard d.count >= 2 else { throw a.argumentError(1, "preference data of at least 2 pairs to split, got \(d.count)") }
            let first: Int
            let label: String
            if x.isFinite && x == x.rounded() && x >= 1 {
                guard x <= Double(d.count - 1) else {
                    throw a.argumentError(2, "a fraction in (0, 1) or a pair count in 1..\(d.count - 1), got \(LuaArgs.formatNumber(x))")
                }
                first = Int(x)
                label = "\(first) pairs"
            } else {
                guard x.isFinite, x > 0, x < 1 else {
                    throw a.argumentError(2, "a fraction in (0, 1) or a pair count in 1..\(d.count - 1), got \(LuaArgs.formatNumber(x))")
                }
                first = Int((x * Double(d.count) + 1e-9).rounded(.down))
                guard first >= 1, first < d.count else {
                    throw a.argumentError(2, "a fraction of the \(d.count) pairs that leaves both parts non-empty, got \(LuaArgs.formatNumber(x)) (\(first) pairs in the first part)")
                }
                label = "\(LuaArgs.formatNumber(x))"
            }
            var draw: ((Int) -> Int)? = nil
            var how = label
            if shuffle {
                if let seed {
                    var g = RandomGenerator(seed: UInt64(bitPattern: Int64(seed)))
                    draw = { Int(g.nextInt(below: UInt64($0))) }
                    how += ", seed \(seed)"
                } else {
                    let state = a.state
                    draw = { Int(state.generator.nextInt(below: UInt64($0))) }
                    how += ", shuffled"
                }
            } else {
                how += ", in order"
            }
            if byPrompt { how += ", by prompt" }
            let (train, held) = try run { try d.split(first: first, byPrompt: byPrompt, draw: draw, label: how) }
            a.lua.pushObject(train, metatable: metatable)
            a.lua.pushObject(held, metatable: metatable)
            return 2
        },
        method("info", doc: """
            What the data holds and how it was made: {pairs=, source_rows=, derivation= (for p:subset and p:split parts), format= ("plain", "conversational", "openai"), truncated=, truncated_rows=, dropped=, dropped_rows=, drop_reasons=, max_length=, max_prompt_length=, max_completion_length=, truncation=, eos_token=, chat_template=, pad_id=, settings=, rows_hash=, tokenizer_hash=, tokens_hash=, source=} (rows 1-based; absent limits are nil).
            """) { a, d in
            let lua = a.lua
            guard lua.ensureStack(6) else { throw LuaBindingError("Lua stack overflow") }
            lua.newTable(recordCount: 22)
            set(lua, "pairs", d.count)
            set(lua, "source_rows", d.sourceRows)
            set(lua, "format", d.format.rawValue)
            set(lua, "truncated", d.truncatedCount)
            pushInts(lua, d.pairs.filter(\.truncated).map { $0.row + 1 }); lua.rawSet(-2, field: "truncated_rows")
            set(lua, "dropped", d.dropped.count)
            pushInts(lua, d.dropped.map { $0.row + 1 }); lua.rawSet(-2, field: "dropped_rows")
            lua.newTable(arrayCount: Int32(clamping: d.dropped.count))
            for (k, x) in d.dropped.enumerated() { lua.push(x.reason); lua.rawSet(-2, index: k + 1) }
            lua.rawSet(-2, field: "drop_reasons")
            let o = d.options
            if let v = o.maxLength { set(lua, "max_length", v) }
            if let v = o.maxPromptLength { set(lua, "max_prompt_length", v) }
            if let v = o.maxCompletionLength { set(lua, "max_completion_length", v) }
            set(lua, "truncation", o.truncation.rawValue)
            if let e = o.eosToken { set(lua, "eos_token", e) }
            set(lua, "chat_template", o.chatTemplate.name)
            set(lua, "pad_id", d.defaultPadID)
            set(lua, "settings", o.settingsDescription)
            set(lua, "rows_hash", d.rowsHash)
            set(lua, "tokenizer_hash", d.tokenizerHash)
            set(lua, "tokens_hash", d.tokensHash)
            set(lua, "source", d.source)
            if let v = d.derivation { set(lua, "derivation", v) }
            return 1
        },
        method("reference", doc: "The reference log-probs dpo.reference_logprobs attached: {chosen=Tensor(N), rejected=Tensor(N)}, or nil.") { a, d in
            guard let c = d.referenceChosen, let r = d.referenceRejected else { a.lua.pushNil(); return 1 }
            a.lua.newTable(recordCount: 2)
            a.push(try Tensor(shape: [c.count], values: c)); a.lua.rawSet(-2, field: "chosen")
            a.push(try Tensor(shape: [r.count], values: r)); a.lua.rawSet(-2, field: "rejected")
            return 1
        },
        method("set_reference", [.required("chosen", .any), .required("rejected", .any)], doc: """
            Attaches reference log-probs computed elsewhere (e.g. by another program, or a TRL precompute): p:set_reference(chosen, rejected), each a tensor or a list of N numbers (summed completion log-probs, pair order); nil, nil detaches them. Batches then carry ref_chosen and ref_rejected, and dpo.trainer uses them as they are.
            """) { a, d in
            if a.isNil(2) && a.isNil(3) {
                d.referenceChosen = nil
                d.referenceRejected = nil
                return 0
            }
            func values(_ idx: Int) throws -> [Float] {
                let want = "a tensor or a list of \(d.count) numbers (one per pair)"
                var out: [Float]
                if let t = a.tensorOrNil(idx) {
                    guard t.count == d.count, t.rank <= 1 else { throw a.argumentError(idx, "\(want), got a tensor of size \(Tensor.describe(t.shape))") }
                    out = try t.contiguous().toArray()
                } else if a.lua.type(Int32(idx)) == LUA_TTABLE {
                    out = []
                    for k in 0..<a.lua.rawLength(Int32(idx)) {
                        _ = a.lua.rawGet(Int32(idx), index: k + 1)
                        defer { a.lua.pop() }
                        guard a.lua.type(-1) == LUA_TNUMBER, let v = a.lua.number(-1) else {
                            throw a.argumentError(idx, "\(want), got \(a.lua.typeName(-1)) at position \(k + 1)")
                        }
                        out.append(Float(v))
                    }
                    guard out.count == d.count else { throw a.argumentError(idx, "\(want), got \(out.count) numbers") }
                } else {
                    throw a.typeError(idx, want)
                }
                return out
            }
            let c = try values(2), r = try values(3)
            d.referenceChosen = c
            d.referenceRejected = r
            return 0
        },
    ]

    static func describe(_ d: PreferenceData) -> String { "data.preferences: \(d.summary)" }

    static let metamethods: [String: LuaFunction] = {
        let table: [String: LuaFunction] = [
            "__index": LuaFunction("__index", [.required("self", .any), .required("key", .any)], doc: "Methods of preference data.") { a in
                _ = try data(a)
                guard a.lua.getMetatable(1) else { a.lua.pushNil(); return 1 }
                _ = a.lua.rawGet(-1, field: "__methods")
                a.lua.pushValue(2)
                lua_rawget(a.lua.L, -2)
                return 1
            },
            "__len": LuaFunction("__len", [.required("self", .any), .optional("other", .any)], doc: "The number of pairs.") { a in
                a.push(try data(a).count)
            },
            "__tostring": LuaFunction("__tostring", [.required("self", .any)], doc: "data.preferences: N pairs from M rows (format), K truncated, D dropped.") { a in
                guard let d = a.lua.object(1, metatable: metatable, as: PreferenceData.self) else { return a.push("data.preferences (released)") }
                return a.push(describe(d))
            },
            "__gc": LuaFunction("__gc", [.optional("self", .any)], doc: "Releases the data.") { a in
                a.lua.releaseObject(1, metatable: metatable)
                return 0
            },
        ]
        for f in table.values { f.module = methodModule }
        return table
    }()

    // MARK: the batches iterator

    final class BatchIterator {
        let data: PreferenceData
        let plan: [[Int]]
        var next = 0
        init(data: PreferenceData, plan: [[Int]]) { self.data = data; self.plan = plan }
    }

    static let batchesStep: LuaFunction = {
        let f = LuaFunction("batches", [.required("state", .any), .optional("control", .any)], doc: "The step function of a p:batches loop: the batch number and the batch, or nil at the end.") { a in
            guard let it = a.lua.object(1, metatable: batchesMetatable, as: BatchIterator.self) else {
                throw a.typeError(1, "a preference batches iterator")
            }
            guard it.next < it.plan.count else { a.lua.pushNil(); return 1 }
            let indices = it.plan[it.next]
            it.next += 1
            a.lua.push(it.next)
            try pushBatch(a, it.data, indices)
            return 2
        }
        f.module = methodModule
        return f
    }()

    static let batchesMetamethods: [String: LuaFunction] = {
        let table: [String: LuaFunction] = [
            "__tostring": LuaFunction("__tostring", [.required("self", .any)], doc: "A short description.") { a in
                guard let it = a.lua.object(1, metatable: batchesMetatable, as: BatchIterator.self) else { return a.push("preference batches (released)") }
                return a.push("preference batches: \(it.next) of \(it.plan.count) done")
            },
            "__gc": LuaFunction("__gc", [.optional("self", .any)], doc: "Releases the iterator.") { a in
                a.lua.releaseObject(1, metatable: batchesMetatable)
                return 0
            },
        ]
        for f in table.values { f.module = methodModule }
        return table
    }()

    // MARK: dpo functions

    static func languageModel(_ a: LuaArgs, _ idx: Int) throws -> LanguageModel {
        let m = try NNBinding.module(a, idx)
        guard let lm = m as? LanguageModel else {
            throw a.argumentError(idx, "a language model (nn.gpt2, nn.llama or nn.load), got \(m.summary)")
        }
        return lm
    }

    static let referenceLogprobsFunction = LuaFunction("reference_logprobs", [.required("ref_model", .any), .required("prefs", .any), .optional("options", .table, default: "{cache_dir=nil, batch_size=8, attach=true, quiet=false}")], doc: """
        The reference model's summed completion log-probs of every pair, computed once without gradients (evaluation mode, batches of batch_size pairs, one forward pass each) and cached: dpo.reference_logprobs(ref_model, prefs, {cache_dir=, batch_size=8, attach=true, quiet=false}).
          Returns {chosen=Tensor(N), rejected=Tensor(N), cached= (true when read from cache_dir), forward_passes= (0 when cached), path=, key=, parts={weights=, rows=, tokenizer=, settings=, tokens=, ...}}.
          The cache file cache_dir/ref_logps-<key>.safetensors is keyed by SHA-256 of the reference weights, the data rows, the tokenizer, the length settings and the tokens: any change computes anew. attach=true stores the values in prefs, so its batches carry ref_chosen and ref_rejected. Without cache_dir nothing is written.
        """) { a in
        let model = try languageModel(a, 1)
        let d = try data(a, 2)
        try a.checkOptions(3, allowed: ["cache_dir", "batch_size", "attach", "quiet"])
        let dir = try a.optionString(3, "cache_dir")
        let size = try a.optionInteger(3, "batch_size") ?? 8
        guard size >= 1 else { throw a.argumentError(3, "a table whose field 'batch_size' is at least 1, got \(size)") }
        let attach = try a.optionBoolean(3, "attach") ?? true
        let quiet = try a.optionBoolean(3, "quiet") ?? false
        if let bad = d.pairs.lazy.flatMap({ $0.prompt + $0.chosen + $0.rejected }).first(where: { Int($0) >= model.vocabSize }) {
            throw LuaBindingError("the data has token id \(bad) but the model's vocabulary has \(model.vocabSize) ids (a different tokenizer?)")
        }
        let r = try run { try ReferenceCache.logProbs(model: model, data: d, cacheDir: dir, batchSize: size) }
        if attach {
            d.referenceChosen = r.chosen
            d.referenceRejected = r.rejected
        }
        if !quiet {
            let place = r.path.map { " (\($0))" } ?? ""
            say(a.lua, r.cached ? "dpo.reference_logprobs: \(d.count) pairs read from the cache\(place)"
                : "dpo.reference_logprobs: \(d.count) pairs in \(r.forwardPasses) forward pass\(r.forwardPasses == 1 ? "" : "es")\(r.path == nil ? "" : ", cached" + place)")
        }
        let lua = a.lua
        guard lua.ensureStack(6) else { throw LuaBindingError("Lua stack overflow") }
        lua.newTable(recordCount: 7)
        a.push(try Tensor(shape: [r.chosen.count], values: r.chosen)); lua.rawSet(-2, field: "chosen")
        a.push(try Tensor(shape: [r.rejected.count], values: r.rejected)); lua.rawSet(-2, field: "rejected")
        set(lua, "cached", r.cached)
        set(lua, "forward_passes", r.forwardPasses)
        if let p = r.path { set(lua, "path", p) }
        set(lua, "key", r.key)
        lua.newTable(recordCount: Int32(r.parts.count))
        for (k, v) in r.parts { set(lua, k, v) }
        lua.rawSet(-2, field: "parts")
        return 1
    }

    static let syncReferenceFunction = LuaFunction("sync_reference", [.required("ref", .any), .required("policy", .any), .optional("alpha", .number, default: "0.6")], doc: """
        TR-DPO's reference update, in place: every parameter of ref becomes alpha*policy + (1-alpha)*ref (TRL's sync_ref_model rule, bit for bit: ref*float(1-alpha), then a fused multiply-add of policy*alpha). Returns ref. Parameters are matched by name; both must be the same architecture and sizes.
          Cached reference log-probs no longer describe a synced reference: recompute them (the weights hash changes, so the cache does not reuse them).
        """) { a in
        let ref = try NNBinding.module(a, 1)
        let policy = try NNBinding.module(a, 2)
        let alpha = try a.number(3, default: 0.6)
        guard alpha.isFinite, alpha >= 0, alpha <= 1 else { throw a.argumentError(3, "a number in 0..1, got \(LuaArgs.formatNumber(alpha))") }
        try run { try ReferenceSync.sync(reference: ref, policy: policy, alpha: alpha) }
        a.lua.pushValue(1)
        return 1
    }

    /// Functions for the `dpo` module (DPOBinding.module joins them to the losses).
    static let dpoFunctions: [LuaFunction] = [referenceLogprobsFunction, syncReferenceFunction]

    /// Registers the `tycho.Preferences` type and its batch iterator in `state`. `data.preferences` and
    /// `data.audit` are registered with the `data` module (DataBinding.module), `dpo.reference_logprobs` and
    /// `dpo.sync_reference` with the `dpo` module (DPOBinding.module).
    static func register(in state: LuaState) {
        state.registerType(metatable: metatable, methods: methods, metamethods: metamethods)
        let lua = state.lua
        _ = luaL_newmetatable(lua.L, batchesMetatable)
        for (key, f) in batchesMetamethods {
            lua.push(f)
            lua.rawSet(-2, field: key)
        }
        lua.pop()
    }
}

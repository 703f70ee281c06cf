// RFTBinding.swift: the Lua module `rft` and its sub-table `rft.grader`: OpenAI-style graders for reinforcement
// fine-tuning. The grading is TychoTrain's (Grader.swift, Graders.swift, TextSimilarity.swift, GraderFormula.swift,
// GraderTemplate.swift, GraderSpec.swift); this file builds graders from Lua values and runs them:
//
//   g = rft.grader.string_check{input=, reference=, operation="eq"|"ne"|"like"|"ilike"}
//   g = rft.grader.text_similarity{input=, reference=, metric="bleu", pass_threshold=}
//   g = rft.grader.lua(function(sample, item) ... end)   -- or source text, or {file=}; run sandboxed
//   g = rft.grader.multi{graders={a=g1, b=g2}, formula="0.5 * a + 0.5 * b"}
//   g = rft.grader.from_spec(table_or_json)                -- OpenAI's JSON grader spec
//   score, details = g:run(sample, item)                   -- sample: a string or {output_text=, output_json=}
//   ok, problems = rft.grader.validate(g, rows)            -- template variables the rows lack
//
// Graders are userdata (`tycho.Grader`) holding a Swift `Grader`, so a trainer gets the same object from Swift.
// A Lua grader reaches the core as a FunctionGrader whose closure runs the function's source in a fresh sandboxed
// state (LuaSandbox.swift): the function itself never runs in the host. Its source is recovered from
// debug information (the file and lines where it was defined); its upvalues are not carried over, so a function
// that uses local variables of its enclosing code is refused with their names.
//
// Other rft functions (advantages, losses) join the module through `functions`; grader constructors through
// `graderFunctions`.

import CLua
import CLuaShim
import Foundation
import TychoText
import TychoTrain

enum RFTBinding {
    static let metatable = "tycho.Grader"

    /// The Swift grader inside a userdata.
    final class GraderObject {
        let grader: any Grader
        init(_ grader: any Grader) { self.grader = grader }
    }

    static func graderObject(_ a: LuaArgs, _ idx: Int = 1) throws -> GraderObject {
        if let g = a.lua.object(Int32(idx), metatable: metatable, as: GraderObject.self) { return g }
        if a.lua.isFinalized(Int32(idx)) { throw a.argumentError(idx, "a live grader, got one that was already collected") }
        throw a.typeError(idx, "a grader (from rft.grader.*)")
    }

    static func push(_ a: LuaArgs, _ g: any Grader) -> Int {
        a.lua.pushObject(GraderObject(g), metatable: metatable)
        return 1
    }

    /// Runs a construction, turning definition errors into binding errors.
    static func build<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let e as GraderSpecError {
            throw LuaBindingError(e.message)
        } catch let e as GraderError {
            throw LuaBindingError(e.message)
        }
    }

    // MARK: Lua values -> JSON

    /// The value at idx as JSON, or a binding error naming `what` and the field.
    static func json(_ a: LuaArgs, _ idx: Int32, what: String) throws -> JSONValue {
        var visiting = Set<UnsafeRawPointer>()
        do {
            return try DataBinding.jsonValue(a.lua, idx, path: "", depth: 0, visiting: &visiting)
        } catch let u as DataBinding.Unwritable {
            throw LuaBindingError(u.path.isEmpty ? "\(what): \(u.message)" : "\(what): field \(u.path): \(u.message)")
        }
    }

    // MARK: graders from Lua values

    /// A grader from the value at idx: a grader userdata, a spec table (whose multi graders may hold grader
    /// userdata or spec tables), or a JSON string.
    static func grader(_ a: LuaArgs, _ idx: Int32, path: String) throws -> any Grader {
        let lua = a.lua
        let idx = lua.absolute(idx)
        func fail(_ m: String) -> LuaBindingError { LuaBindingError(path.isEmpty ? m : "\(path): \(m)") }
        if let g = lua.object(idx, metatable: metatable, as: GraderObject.self) { return g.grader }
        if lua.isFinalized(idx) { throw fail("a grader that was already collected") }
        if let s = lua.string(idx) {
            let spec: JSONValue
            do { spec = try JSONParser.parse(s) } catch { throw fail("a grader spec string must be JSON: \(error)") }
            return try build { try GraderSpec.make(spec, lua: luaFactory) }
        }
        guard lua.type(idx) == LUA_TTABLE else {
            throw fail("a grader must be a grader object, a spec table or a JSON string, got \(lua.typeName(idx))")
        }
        _ = lua.rawGet(idx, field: "type")
        let type = lua.string(-1)
        lua.pop()
        if type == "multi" { return try multi(a, idx, path: path) }
        let spec = try json(a, idx, what: path.isEmpty ? "the grader spec" : path)
        do {
            return try GraderSpec.make(spec, lua: luaFactory)
        } catch let e as GraderSpecError {
            throw fail(e.message)
        }
    }

    /// A multi grader from the table at idx: graders (by name), formula or calculate_output, name.
    static func multi(_ a: LuaArgs, _ idx: Int32, path: String) throws -> any Grader {
        let lua = a.lua
        func fail(_ m: String) -> LuaBindingError { LuaBindingError(path.isEmpty ? m : "\(path): \(m)") }
        var formula: String?, name = "multi"
        var subs: [(name: String, grader: any Grader)] = []
        var problem: Error?
        let allowed: Set<String> = ["type", "name", "graders", "formula", "calculate_output"]
        lua.forEach(idx) {
            guard let k = lua.type(-2) == LUA_TSTRING ? lua.string(-2) : nil, allowed.contains(k) else {
                let k = lua.type(-2) == LUA_TSTRING ? "'\(lua.string(-2) ?? "")'" : "a \(lua.typeName(-2)) key"
                problem = fail("multi has no field \(k) (its fields are calculate_output or formula, graders, name)")
                return false
            }
            switch k {
            case "type":
                if lua.string(-1) != "multi" { problem = fail("field 'type' must be \"multi\"") }
            case "name":
                if let s = lua.string(-1) { name = s } else { problem = fail("field 'name' must be a string, got \(lua.typeName(-1))") }
            case "formula", "calculate_output":
                guard let s = lua.string(-1) else { problem = fail("field '\(k)' must be a string, got \(lua.typeName(-1))"); break }
                if let f = formula, f != s { problem = fail("fields 'formula' and 'calculate_output' disagree"); break }
                formula = s
            default:  // graders
                guard lua.type(-1) == LUA_TTABLE else {
                    problem = fail("field 'graders' must be a table of graders by name, got \(lua.typeName(-1))")
                    break
                }
                var names: [String] = []
                lua.forEach(-1) {
                    guard lua.type(-2) == LUA_TSTRING, let n = lua.string(-2) else {
                        problem = fail("field 'graders' must have names as keys, got a \(lua.typeName(-2)) key")
                        return false
                    }
                    names.append(n)
                    return true
                }
                for n in names.sorted() where problem == nil {
                    _ = lua.rawGet(-1, field: n)
                    do {
                        subs.append((name: n, grader: try grader(a, -1, path: path.isEmpty ? "graders.\(n)" : "\(path).graders.\(n)")))
                    } catch {
                        problem = error
                    }
                    lua.pop()
                }
            }
            return problem == nil
        }
        if let problem { throw problem }
        guard !subs.isEmpty else { throw fail("multi needs graders = a table of graders by name, e.g. {a = g1, b = g2}") }
        guard let formula else { throw fail("multi needs a formula (calculate_output), e.g. \"0.5 * a + 0.5 * b\"") }
        do {
            return try MultiGrader(name: name, graders: subs, calculateOutput: formula)
        } catch let e as GraderSpecError {
            throw fail(e.message)
        }
    }

    /// A constructor's option table as a spec of `type` (a `type` field, if given, must agree).
    static func typedSpec(_ a: LuaArgs, _ type: String) throws -> JSONValue {
        guard case .object(var kv) = try json(a, 1, what: "argument #1 (options)") else {
            throw a.argumentError(1, "a table of options with named fields, got a list")
        }
        if let t = kv.first(where: { $0.0 == "type" }) {
            guard t.1 == .string(type) else { throw a.argumentError(1, "a table whose field 'type' is \"\(type)\" or absent") }
            kv.removeAll { $0.0 == "type" }
        }
        return .object([("type", .string(type))] + kv)
    }

    // MARK: Lua graders

    /// Makes JSON specs of type lua (from_spec, multi sub-specs): a sandboxed grader of the spec's source.
    static let luaFactory: GraderSpec.LuaFactory = { name, source, kv in
        var limits = SandboxLimits()
        for (k, v) in kv {
            let n: Double?
            switch v {
            case .int(let i): n = Double(i)
            case .double(let d): n = d
            default: n = nil
            }
            if k == "instructions" {
                guard let n, n >= 1, n == n.rounded(), n < 9e15 else { throw GraderSpecError("field 'instructions' must be an integer >= 1") }
                limits.instructions = Int(n)
            } else if k == "memory_mb" {
                guard let n, n > 0, n < 1e9 else { throw GraderSpecError("field 'memory_mb' must be a number > 0") }
                limits.memoryBytes = Int(n * 1_048_576)
            }
        }
        return try makeLuaGrader(name: name, source: LuaGraderSource(text: source, chunkName: "=[grader \(name)]"), limits: limits)
    }

    /// Checks the source in a sandbox (it must compile and yield a function) and wraps it as a grader.
    static func makeLuaGrader(name: String, source: LuaGraderSource, limits: SandboxLimits) throws -> any Grader {
        do {
            try LuaSandbox.check(source, limits)
        } catch let e as GraderError {
            throw GraderSpecError("the grader's code failed when loaded in the sandbox: \(e.message)")
        }
        let spec: JSONValue = .object([("type", .string("lua")), ("name", .string(name)), ("source", .string(source.text)),
                                       ("instructions", .int(limits.instructions)), ("memory_mb", .double(limits.memoryMB))])
        return FunctionGrader(type: "lua", name: name, spec: spec) { sample, item in
            LuaSandbox.grade(source, limits, sample: sample, item: item)
        }
    }

    /// The sandbox limits in the options table at idx (instructions, memory_mb).
    static func limits(_ a: LuaArgs, _ idx: Int) throws -> SandboxLimits {
        var l = SandboxLimits()
        if let n = try a.optionNumber(idx, "instructions") {
            guard n >= 1, n == n.rounded(), n < 9e15 else {
                throw a.argumentError(idx, "a table whose field 'instructions' is an integer >= 1, got \(LuaArgs.formatNumber(n))")
            }
            l.instructions = Int(n)
        }
        if let n = try a.optionNumber(idx, "memory_mb") {
            guard n > 0, n < 1e9 else { throw a.argumentError(idx, "a table whose field 'memory_mb' is a number > 0, got \(LuaArgs.formatNumber(n))") }
            l.memoryBytes = Int(n * 1_048_576)
        }
        return l
    }

    /// A grader file's text as a source (a first line starting with '#' is blanked, as lua does).
    static func fileSource(_ path: String) throws -> LuaGraderSource {
        guard let data = FileManager.default.contents(atPath: path) else { throw LuaBindingError("cannot read the grader file '\(path)'") }
        var text = String(decoding: data, as: UTF8.self)
        if text.hasPrefix("#") { text = String(text.drop { $0 != "\n" }) }
        return LuaGraderSource(text: text, chunkName: "@\(path)")
    }

    // MARK: recovering a function's source

    static func isWordByte(_ b: UInt8) -> Bool {
        (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x5F
    }

    /// Byte offsets where the keyword `word` starts in `line`.
    static func keywordOffsets(_ word: String, in line: [UInt8]) -> [Int] {
        let w = Array(word.utf8)
        guard line.count >= w.count else { return [] }
        var out: [Int] = []
        for i in 0...(line.count - w.count) where Array(line[i..<(i + w.count)]) == w {
            if i > 0 && isWordByte(line[i - 1]) { continue }
            if i + w.count < line.count && isWordByte(line[i + w.count]) { continue }
            out.append(i)
        }
        return out
    }

    /// The source of the Lua function at idx, recovered from where it was defined and checked in a sandbox: the
    /// text from its `function` keyword to its `end`, as a chunk `return function ... end` padded with newlines
    /// so line numbers in errors are the file's.
    static func functionSource(_ a: LuaArgs, _ idx: Int) throws -> LuaGraderSource {
        let lua = a.lua
        var info = tycho_funcinfo_t()
        guard tycho_funcinfo(lua.L, Int32(idx), &info) != 0, let src = info.source else {
            throw a.argumentError(idx, "a Lua function whose definition can be found")
        }
        if info.isC != 0 { throw a.argumentError(idx, "a Lua function, got a C function") }
        var outer: [String] = []
        if info.nups > 0 {
            for n in 1...info.nups {
                if let p = lua_getupvalue(lua.L, Int32(idx), n) {
                    let name = String(cString: p)
                    lua.pop()
                    if name != "_ENV" { outer.append("'\(name)'") }
                }
            }
        }
        if !outer.isEmpty {
            throw LuaBindingError("the function uses \(outer.joined(separator: ", ")) from the code around it, which a sandboxed grader cannot see (only its own text is carried over): define \(outer.count == 1 ? "it" : "them") inside the function, or pass values through the item")
        }
        let source = String(decoding: UnsafeRawBufferPointer(start: src, count: info.srclen), as: UTF8.self)
        let advice = "pass the grader's source text, rft.grader.lua[[return function(sample, item) ... end]], or a file, rft.grader.lua{file = \"grader.lua\"}"
        if source.hasPrefix("=") {
            throw LuaBindingError("the text of this function is not available (it was defined in the REPL or in a chunk named \(source)): \(advice)")
        }
        if info.linedefined <= 0 { throw LuaBindingError("a main chunk cannot be a grader: \(advice)") }
        let text: String
        let place: String
        if source.hasPrefix("@") {
            let path = String(source.dropFirst())
            guard let data = FileManager.default.contents(atPath: path) else {
                throw LuaBindingError("cannot read '\(path)', where the function was defined: \(advice)")
            }
            text = String(decoding: data, as: UTF8.self)
            place = path
        } else {
            text = source
            place = "its chunk"
        }
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map { Array($0.utf8) }
        let first = Int(info.linedefined), last = Int(info.lastlinedefined)
        let range = "lines \(first)-\(last) of \(place)"
        guard first >= 1, last >= first, last <= lines.count else {
            throw LuaBindingError("the function's \(range) are not in the file (was it changed since it was loaded?): \(advice)")
        }
        let starts = keywordOffsets("function", in: lines[first - 1])
        let ends = keywordOffsets("end", in: lines[last - 1])
        var found: [String] = []
        let padding = String(repeating: "\n", count: first - 1)
        for s in starts {
            // `function name(...)` / `function a.b(...)`: keep `function(...)`; `function a:b(x)`: `function(self, x)`
            var head = Array(lines[first - 1][s...])
            var j = 8
            while j < head.count && (head[j] == 0x20 || head[j] == 0x09) { j += 1 }
            var k = j
            while k < head.count && (isWordByte(head[k]) || head[k] == 0x2E || head[k] == 0x3A) { k += 1 }
            if k > j {
                if head[j..<k].contains(0x3A), k < head.count, head[k] == 0x28 {
                    var m = k + 1
                    while m < head.count && (head[m] == 0x20 || head[m] == 0x09) { m += 1 }
                    let noParams = m < head.count && head[m] == 0x29
                    head = Array("function(self\(noParams ? "" : ", ")".utf8) + head[(k + 1)...]
                } else {
                    head = Array("function".utf8) + head[k...]
                }
            }
            for e in ends.reversed() {
                var body: [UInt8]
                if first == last {
                    guard e >= s + 8 else { continue }
                    let cut = head.count - (lines[first - 1].count - (e + 3))
                    guard cut > 0 && cut <= head.count else { continue }
                    body = Array(head[..<cut])
                } else {
                    body = head
                    for l in first..<(last - 1) { body += [0x0A] + lines[l] }
                    body += [0x0A] + lines[last - 1][..<(e + 3)]
                }
                let candidate = padding + "return " + String(decoding: body, as: UTF8.self)
                if candidateMatches(candidate, chunkName: source, info: info) && !found.contains(candidate) { found.append(candidate) }
            }
        }
        guard !found.isEmpty else {
            throw LuaBindingError("could not find the function's text on \(range) (was the file changed since it was loaded?): \(advice)")
        }
        guard found.count == 1 else {
            throw LuaBindingError("more than one function could be the one on \(range): put the grader function on lines of its own, or \(advice)")
        }
        return LuaGraderSource(text: found[0], chunkName: source)
    }

    /// True when `candidate` compiles in a sandbox and returns exactly one function defined on the same lines with
    /// the same parameters as the original.
    static func candidateMatches(_ candidate: String, chunkName: String, info: tycho_funcinfo_t) -> Bool {
        let limits = SandboxLimits(instructions: 100_000, memoryBytes: 16 << 20 + candidate.utf8.count * 8)
        return (try? LuaSandbox.with(limits) { lua -> Bool in
            try LuaSandbox.enforced(lua, limits) {
                var text = candidate
                let status = text.withUTF8 { buf in
                    buf.withMemoryRebound(to: CChar.self) { c in luaL_loadbufferx(lua.L, c.baseAddress, c.count, chunkName, "t") }
                }
                return status == LUA_OK ? tycho_pcall(lua.L, 0, LUA_MULTRET, 0) : status
            }
            guard lua.top == 1, lua.type(1) == LUA_TFUNCTION else { return false }
            var ci = tycho_funcinfo_t()
            guard tycho_funcinfo(lua.L, 1, &ci) != 0 else { return false }
            return ci.linedefined == info.linedefined && ci.lastlinedefined == info.lastlinedefined
                && ci.nparams == info.nparams && ci.isvararg == info.isvararg
        }) ?? false
    }

    // MARK: samples and items

    /// A sample: a string (the output text) or a table {output_text=, output_json=}.
    static func sample(_ a: LuaArgs, _ idx: Int) throws -> GraderSample {
        if let s = a.lua.string(Int32(idx)) { return GraderSample(outputText: s) }
        guard a.lua.type(Int32(idx)) == LUA_TTABLE else {
            throw a.typeError(idx, "a string (the output text) or a table {output_text=, output_json=}")
        }
        try a.checkOptions(idx, allowed: ["output_text", "output_json"])
        let text = try a.optionString(idx, "output_text")
        var outputJSON: JSONValue? = nil
        if a.lua.rawGet(Int32(idx), field: "output_json") != LUA_TNIL {
            defer { a.lua.pop() }
            outputJSON = try json(a, -1, what: "argument #\(idx) (sample): output_json")
        } else {
            a.lua.pop()
        }
        guard text != nil || outputJSON != nil else {
            throw a.argumentError(idx, "a table with output_text (a string) or output_json")
        }
        return GraderSample(outputText: text ?? outputJSON?.line ?? "", outputJSON: outputJSON)
    }

    /// An item (a data row): a table with named fields, or nil for an empty row.
    static func item(_ a: LuaArgs, _ idx: Int) throws -> JSONValue {
        if a.isNil(idx) { return .object([]) }
        guard a.lua.type(Int32(idx)) == LUA_TTABLE else { throw a.typeError(idx, "a table (a data row)") }
        let v = try json(a, Int32(idx), what: "argument #\(idx) (item)")
        guard case .object = v else { throw a.argumentError(idx, "a table with named fields (a data row), got a list") }
        return v
    }

    /// Pushes score and details.
    static func pushResult(_ a: LuaArgs, _ r: GraderResult) throws -> Int {
        guard a.lua.ensureStack(8) else { throw LuaBindingError("Lua stack overflow") }
        a.lua.push(r.score)
        try DataBinding.push(.object(r.details), a.lua)
        return 2
    }

    // MARK: the functions

    static let stringCheck = LuaFunction("string_check", [.required("options", .table)], doc: """
        OpenAI's string_check grader: 1 when the check holds, else 0.
          g = rft.grader.string_check{input="{{sample.output_text}}", reference=, operation="eq", name="string_check"}
          operation: eq (input == reference), ne, like (the input contains the reference), ilike (contains,
            ignoring case); strings compare as code points. input and reference are templates: {{item.field}},
            {{item.a.b}}, {{item.list[0]}}, {{sample.output_text}}, {{sample.output_json.field}}.
          score, details = g:run(sample, item)
        """) { a in
        let spec = try typedSpec(a, "string_check")
        return push(a, try build { try GraderSpec.make(spec) })
    }

    static let textSimilarity = LuaFunction("text_similarity", [.required("options", .table)], doc: """
        OpenAI's text_similarity grader: the score is the similarity in [0, 1].
          g = rft.grader.text_similarity{input="{{sample.output_text}}", reference=, metric=, pass_threshold=,
            name="text_similarity"}   (evaluation_metric= is accepted for metric)
          metric: fuzzy_match (rapidfuzz fuzz.ratio / 100), bleu (sacrebleu sentence_bleu / 100), gleu (nltk
            sentence_gleu on 13a tokens), rouge_1 .. rouge_5, rouge_l (rouge-score F-measure). pass_threshold, when
            given, adds details.passed = score >= pass_threshold.
        """) { a in
        let spec = try typedSpec(a, "text_similarity")
        return push(a, try build { try GraderSpec.make(spec) })
    }

    static let luaFunction = LuaFunction("lua", [.required("grader", .any), .optional("options", .table)], doc: """
        A grader written in Lua, run sandboxed: g = rft.grader.lua(function(sample, item) return score end).
          rft.grader.lua(fn[, {name=, instructions=, memory_mb=}])   fn's text is taken from the file it was defined
            in (upvalues are not carried over: a function that uses outer locals is refused; a function typed in the
            REPL has no text, so pass text or a file)
          rft.grader.lua(source[, options])   Lua text that returns the function or defines grade(sample, item)
          rft.grader.lua{file=|source=, name="lua", instructions=1e7, memory_mb=64}
          The function gets sample = {output_text=, output_json=} and the item as plain tables (JSON null is `null`)
            and returns a number (or a boolean) and optionally a details table (details.returned); details also
            hold instructions (spent, in steps of 1000) and memory_kb (the peak). It runs in a
            fresh Lua state each time, with base (no dofile, loadfile), string, table, math, utf8 and coroutine:
            no io, os, debug, package or require; load takes text only; print goes to details.log. An error, an
            endless loop (the instruction budget) or a memory bomb (the cap) is that sample's error
            (details.error, details.error_kind), never the caller's.
        """) { a in
        var limitsIdx = 2
        let source: LuaGraderSource
        var name = "lua"
        switch a.lua.type(1) {
        case LUA_TFUNCTION:
            try a.checkOptions(2, allowed: ["name", "instructions", "memory_mb"])
            name = try a.optionString(2, "name") ?? name
            source = try functionSource(a, 1)
        case LUA_TSTRING:
            try a.checkOptions(2, allowed: ["name", "instructions", "memory_mb"])
            name = try a.optionString(2, "name") ?? name
            source = LuaGraderSource(text: try a.string(1), chunkName: "=[grader \(name)]")
        case LUA_TTABLE:
            guard a.isNil(2) else { throw a.argumentError(2, "absent when argument #1 is an options table, got \(a.typeName(2))") }
            limitsIdx = 1
            try a.checkOptions(1, allowed: ["file", "source", "name", "instructions", "memory_mb"])
            name = try a.optionString(1, "name") ?? name
            switch (try a.optionString(1, "file"), try a.optionString(1, "source")) {
            case (let f?, nil): source = try fileSource(f)
            case (nil, let s?): source = LuaGraderSource(text: s, chunkName: "=[grader \(name)]")
            default: throw a.argumentError(1, "a table with file = a path or source = Lua text (one of them)")
            }
        default:
            throw a.typeError(1, "a function, Lua source text or a table {file=} / {source=}")
        }
        let limits = try limits(a, limitsIdx)
        do {
            return push(a, try build { try makeLuaGrader(name: name, source: source, limits: limits) })
        } catch let e as LuaBindingError {
            if a.lua.type(1) == LUA_TSTRING, let s = a.lua.string(1), !s.contains("\n"), s.hasSuffix(".lua") {
                throw LuaBindingError("\(e.message) (to load a file, use rft.grader.lua{file = \"\(s)\"})")
            }
            throw e
        }
    }

    static let multiFunction = LuaFunction("multi", [.required("options", .table)], doc: """
        OpenAI's multi grader: sub-graders by name combined by a formula (calculate_output).
          g = rft.grader.multi{graders={a=g1, b={type="string_check", ...}}, formula="0.5 * a + 0.5 * b", name="multi"}
          formula (or calculate_output): numbers, the graders' names, + - * / ^ (right-associative; -2^2 = -4),
            parentheses, min, max, abs, floor, ceil, exp, sqrt, log. A sub-grader's error, a division by zero or a
            non-finite result is the sample's error. details.sub_scores and details.sub_details hold each grader's.
        """) { a in
        push(a, try multi(a, 1, path: ""))
    }

    static let fromSpec = LuaFunction("from_spec", [.required("spec", .any)], doc: """
        A grader from OpenAI's JSON grader spec, as a table or a JSON string:
          {type="string_check", name=, input=, reference=, operation=}
          {type="text_similarity", name=, input=, reference=, evaluation_metric=, pass_threshold=}
          {type="multi", name=, graders={name=spec, ...}, calculate_output=}
          {type="lua", name=, source=, instructions=, memory_mb=}   (OpenAI's python graders are not supported)
          g:spec() gives a grader's spec back.
        """) { a in
        guard a.lua.type(1) == LUA_TTABLE || a.lua.type(1) == LUA_TSTRING else {
            throw a.typeError(1, "a spec table or a JSON string")
        }
        return push(a, try grader(a, 1, path: ""))
    }

    static let validate = LuaFunction("validate", [.required("grader", .any), .optional("rows", .table)], doc: """
        Checks a grader (or a spec) against data: ok, problems = rft.grader.validate(g, rows).
          rows: a list of data rows (tables), or one row. problems lists the {{item...}} template variables some
            rows lack, one entry per grader and variable: {grader=, variable=, missing=, rows=, first=, message=}
            (grader: the sub-grader's dotted path inside a multi, "" for g itself; first: the first row lacking it).
          A spec that cannot make a grader is an error; sample variables depend on the model and are not checked.
        """) { a in
        let g = try grader(a, 1, path: "")
        var rows: [JSONValue] = []
        if !a.isNil(2) {
            let n = a.lua.rawLength(2)
            if n == 0 {
                rows = [try item(a, 2)]
            } else {
                for k in 1...n {
                    _ = a.lua.rawGet(2, index: k)
                    defer { a.lua.pop() }
                    guard a.lua.type(-1) == LUA_TTABLE else {
                        throw a.argumentError(2, "a list of rows (tables), got \(a.lua.typeName(-1)) at position \(k)")
                    }
                    let v = try json(a, -1, what: "argument #2 (rows): row \(k)")
                    guard case .object = v else { throw a.argumentError(2, "a list of rows with named fields, got a list at position \(k)") }
                    rows.append(v)
                }
            }
        }
        let problems = GraderSpec.problems(of: g, items: rows)
        guard a.lua.ensureStack(8) else { throw LuaBindingError("Lua stack overflow") }
        a.lua.push(problems.isEmpty)
        a.lua.newTable(arrayCount: Int32(clamping: problems.count))
        for (k, p) in problems.enumerated() {
            try DataBinding.push(.object([("grader", .string(p.grader)), ("variable", .string(p.variable.description)),
                                          ("missing", .int(p.missing)), ("rows", .int(p.rows)), ("first", .int(p.firstMissing + 1)),
                                          ("message", .string(p.description))]), a.lua)
            a.lua.rawSet(-2, index: k + 1)
        }
        return 2
    }

    // MARK: methods

    static func method(_ name: String, _ params: [LuaParam] = [], doc: String,
                       _ body: @escaping (LuaArgs, any Grader) throws -> Int) -> LuaFunction {
        LuaFunction(name, [.required("self", .any)] + params, method: true, doc: doc) { a in try body(a, try graderObject(a).grader) }
    }

    static let methods: [LuaFunction] = [
        method("run", [.required("sample", .any), .optional("item", .table)], doc: """
               Grades one sample against one data row: score, details = g:run(sample, item).
                 sample: the model's answer as a string, or {output_text=, output_json=} (output_json defaults to the
                 text parsed as JSON). item: the row (a table; nil for an empty row). details: type, name and the
                 grader's own fields; on failure score is 0 and details.error / details.error_kind say why
                 (sample_parse_error, invalid_variable_error, runtime_error, budget_exceeded, memory_exceeded,
                 other_error).
               """) { a, g in
            let s = try sample(a, 2)
            let i = try item(a, 3)
            return try pushResult(a, g.run(sample: s, item: i))
        },
        method("spec", doc: "The grader as OpenAI's JSON spec (a table; rft.grader.from_spec makes it again).") { a, g in
            try DataBinding.push(g.spec, a.lua)
            return 1
        },
    ]

    static let metamethods: [String: LuaFunction] = {
        let table: [String: LuaFunction] = [
            "__index": OptimBinding.indexMetamethod("a grader"),
            "__tostring": LuaFunction("__tostring", [.required("self", .any)], doc: "Grader(type 'name').") { a in
                guard let g = a.lua.object(1, metatable: metatable, as: GraderObject.self) else { return a.push("Grader (released)") }
                return a.push("Grader(\(g.grader.type) '\(g.grader.name)')")
            },
            "__gc": LuaFunction("__gc", [.optional("self", .any)], doc: "Releases the grader.") { a in
                a.lua.releaseObject(1, metatable: metatable)
                return 0
            },
        ]
        for f in table.values { f.module = "rft.grader" }
        return table
    }()

    // MARK: registration

    /// The grader constructors and helpers of `rft.grader`.
    static let graderFunctions: [LuaFunction] = [stringCheck, textSimilarity, luaFunction, multiFunction, fromSpec, validate]

    /// The functions of `rft` itself (advantages and losses join here).
    static let functions: [LuaFunction] = RFTLossBinding.functions + [RFTTrainerBinding.trainerFunction] + RFTTrainerBinding.methods

    static let graderModule = LuaModule(name: "rft.grader", doc: """
        RFT graders as OpenAI defines them (string_check, text_similarity, multi, and sandboxed Lua graders instead of
          python): g:run(sample, item) gives a score and details; from_spec reads OpenAI's JSON specs; validate checks
          templates against data.
        """, functions: graderFunctions + methods)

    static let module = LuaModule(name: "rft", doc: """
        Reinforcement fine-tuning as TRL's GRPOTrainer with OpenAI RFT's graders: rft.trainer{...} (tr:fit(), tr:step(),
          tr:evaluate(), tr:samples()), rft.advantages and rft.loss (every TRL 1.16 GRPO loss type), and graders
          (rft.grader.string_check, text_similarity, lua (sandboxed), multi, from_spec, validate).
        """, functions: functions)

    static func register(in state: LuaState) {
        state.registerType(metatable: metatable, methods: methods, metamethods: metamethods)
        state.register(module)
        state.register(graderModule, global: false)
        // rft.grader = package.loaded["rft.grader"]
        let lua = state.lua
        lua.pushRegistry()
        _ = lua.rawGet(-1, field: "_LOADED")
        _ = lua.rawGet(-1, field: "rft.grader")
        _ = lua.rawGet(-2, field: "rft")
        lua.pushValue(-2)
        lua.rawSet(-2, field: "grader")
        lua.pop(4)
    }
}

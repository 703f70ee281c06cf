// LuaSandbox.swift: runs untrusted grader code (rft.grader.lua) in a separate, sandboxed Lua state: CLuaShim's
// Sandbox.c gives it its own allocator with a byte cap, a count hook spending an instruction budget, and only
// the safe libraries (no io, os, debug, package, require, dofile, loadfile; `load` of text only); its string
// pattern functions (SandboxPatterns.c) charge their matching steps to the same budget.
//
// Every run makes a fresh state, compiles the grader's source, calls it with deep copies of the sample and the
// item (plain tables; JSON null is the sandbox's `null`), reads the score back with non-raising probes and closes
// the state. So runs share nothing (a grader that broke its globals or hit its cap cannot affect the next
// sample), and one grader may run on several threads at once. The cap and the budget are enforced only while
// grader code runs; the host pushes the arguments with them off (outside protected mode a refused allocation
// would abort), so the arguments count toward the cap but cannot fail to arrive.
//
// A failure is a GraderResult with its error (runtime_error, budget_exceeded, memory_exceeded), never a thrown
// error or a crash: training goes on.

import CLua
import CLuaShim
import Foundation
import TychoText
import TychoTrain

/// The limits of one sandboxed run.
public struct SandboxLimits: Equatable {
    /// VM instructions the grader may run (loading its chunk included); counted in steps of 1000.
    public var instructions: Int
    /// Bytes the sandbox's state may hold (libraries and arguments included).
    public var memoryBytes: Int

    public static let defaultInstructions = 10_000_000
    public static let defaultMemoryMB = 64.0

    public init(instructions: Int = SandboxLimits.defaultInstructions, memoryBytes: Int = Int(SandboxLimits.defaultMemoryMB * 1_048_576)) {
        self.instructions = instructions
        self.memoryBytes = memoryBytes
    }

    var memoryMB: Double { Double(memoryBytes) / 1_048_576 }
}

/// Grader code: Lua text that returns the grader function, or defines a global `grade(sample, item)`.
public struct LuaGraderSource {
    public let text: String
    /// The chunk name errors cite: "@path" for a file, "=[grader NAME]" for text.
    public let chunkName: String

    public init(text: String, chunkName: String) {
        self.text = text
        self.chunkName = chunkName
    }
}

enum LuaSandbox {
    /// A fresh sandbox with its libraries open, passed to `body` and closed after it.
    static func with<R>(_ limits: SandboxLimits, _ body: (Lua) throws -> R) throws -> R {
        guard let L = tycho_sandbox_new(max(limits.memoryBytes, 0), Int64(max(limits.instructions, 1))) else {
            throw GraderError(.otherError, "cannot create a sandboxed Lua state")
        }
        defer { tycho_sandbox_close(L) }
        let lua = Lua(L)
        if tycho_sandbox_open(L) != LUA_OK {
            let message = lua.string(-1) ?? "cannot open the sandbox's libraries"
            throw GraderError(.otherError, "sandbox: \(message)")
        }
        return try body(lua)
    }

    /// Runs `call` (a protected call) with the cap and budget on; classifies a failure.
    static func enforced(_ lua: Lua, _ limits: SandboxLimits, _ call: () -> Int32) throws {
        tycho_sandbox_enforce(lua.L, 1)
        let status = call()
        tycho_sandbox_enforce(lua.L, 0)
        guard status != LUA_OK else { return }
        let killed = tycho_sandbox_killed(lua.L, status)
        let message = errorText(lua, -1)
        lua.pop()
        switch Int(killed) {
        case TYCHO_SANDBOX_BUDGET:
            throw GraderError(.budgetExceeded, "the instruction budget of \(limits.instructions) was spent (an endless loop?); raise it with instructions=")
        case TYCHO_SANDBOX_MEMORY:
            let mb = String(format: "%g", limits.memoryMB)
            throw GraderError(.memoryExceeded, "the memory cap of \(mb) MB was reached (a request of \(tycho_sandbox_refused_bytes(lua.L)) bytes refused); raise it with memory_mb=")
        default:
            throw GraderError(.runtimeError, message)
        }
    }

    /// The error object at idx as text, without running any of its metamethods.
    static func errorText(_ lua: Lua, _ idx: Int32) -> String {
        if let s = lua.string(idx) { return s }
        if let n = lua.number(idx) { return LuaArgs.formatNumber(n) }
        return "(error object is a \(lua.typeName(idx)) value)"
    }

    /// Compiles and runs `source` in the sandbox and leaves the grader function on the stack.
    static func loadGrader(_ lua: Lua, _ source: LuaGraderSource, _ limits: SandboxLimits) throws {
        var status: Int32 = LUA_OK
        try enforced(lua, limits) {
            var text = source.text
            status = text.withUTF8 { buf in
                buf.withMemoryRebound(to: CChar.self) { c in luaL_loadbufferx(lua.L, c.baseAddress, c.count, source.chunkName, "t") }
            }
            return status == LUA_OK ? tycho_pcall(lua.L, 0, 1, 0) : status
        }
        if lua.type(-1) == LUA_TFUNCTION { return }
        lua.pop()
        lua.pushGlobals()
        _ = lua.rawGet(-1, field: "grade")  // raw: never runs the grader's metamethods outside protected mode
        tycho_remove(lua.L, -2)
        if lua.type(-1) == LUA_TFUNCTION { return }
        lua.pop()
        throw GraderError(.runtimeError, "the grader's code must return a function(sample, item) or define a global function grade(sample, item)")
    }

    /// Checks that `source` compiles and yields a grader function (run when a grader is made).
    static func check(_ source: LuaGraderSource, _ limits: SandboxLimits) throws {
        try with(limits) { lua in try loadGrader(lua, source, limits) }
    }

    /// Grades one sample: the grader's score and its details (instructions spent, peak memory, print log, and the
    /// table it returned as a second result under `returned`).
    static func grade(_ source: LuaGraderSource, _ limits: SandboxLimits, sample: GraderSample, item: JSONValue) -> GraderResult {
        do {
            return try with(limits) { lua in
                var outcome: Result<(Double, JSONValue?), GraderError>
                do {
                    outcome = .success(try call(lua, source, limits, sample: sample, item: item))
                } catch let e as GraderError {
                    outcome = .failure(e)
                }
                var details: [(String, JSONValue)] = [("instructions", .int(Int(tycho_sandbox_instructions(lua.L)))),
                                                      ("memory_kb", .int(Int(tycho_sandbox_peak_bytes(lua.L) / 1024)))]
                if let log = printLog(lua) { details.append(("log", .string(log))) }
                switch outcome {
                case .success(let (score, returned)):
                    if let returned { details.append(("returned", returned)) }
                    return GraderResult(score: score, details: details)
                case .failure(let e):
                    return .failure(e, details: details)
                }
            }
        } catch let e as GraderError {
            return .failure(e)
        } catch {
            return .failure(GraderError(.otherError, "\(error)"))
        }
    }

    /// Loads the grader and calls it; returns the score and the second result (as JSON) if any.
    static func call(_ lua: Lua, _ source: LuaGraderSource, _ limits: SandboxLimits, sample: GraderSample,
                     item: JSONValue) throws -> (Double, JSONValue?) {
        try loadGrader(lua, source, limits)
        guard lua.ensureStack(8) else { throw GraderError(.otherError, "sandbox: Lua stack overflow") }
        pushSample(lua, sample)
        push(lua, item, depth: 0)
        try enforced(lua, limits) { tycho_pcall(lua.L, 2, 2, 0) }
        defer { lua.pop(2) }
        let score: Double
        switch lua.type(-2) {
        case LUA_TNUMBER: score = lua.number(-2) ?? .nan
        case LUA_TBOOLEAN: score = lua.bool(-2) ? 1 : 0
        default:
            throw GraderError(.runtimeError, "the grader returned \(lua.typeName(-2)), expected a number (the score) or a boolean")
        }
        guard score.isFinite else { throw GraderError(.runtimeError, "the grader returned \(score.isNaN ? "nan" : "\(score)"), expected a finite number") }
        return (score, lua.isNoneOrNil(-1) ? nil : json(lua, -1, depth: 0))
    }

    /// The lines `print` logged, joined; nil when none.
    static func printLog(_ lua: Lua) -> String? {
        guard tycho_sandbox_pushlog(lua.L) == LUA_TTABLE else { lua.pop(); return nil }
        defer { lua.pop() }
        let n = lua.rawLength(-1)
        guard n > 0 else { return nil }
        var out = ""
        for k in 1...n {
            _ = lua.rawGet(-1, index: k)
            out += lua.string(-1) ?? ""
            lua.pop()
        }
        return out
    }

    // MARK: push (host -> sandbox), with the cap off

    static func pushSample(_ lua: Lua, _ sample: GraderSample) {
        lua.newTable(recordCount: 2)
        lua.push(sample.outputText)
        lua.rawSet(-2, field: "output_text")
        if let j = try? sample.json() {
            push(lua, j, depth: 1)
            lua.rawSet(-2, field: "output_json")
        }
    }

    /// Pushes JSON as plain tables; null is a NULL light userdata (the sandbox's global `null`).
    static func push(_ lua: Lua, _ v: JSONValue, depth: Int) {
        switch v {
        case .null: lua_pushlightuserdata(lua.L, nil)
        case .bool(let b): lua.push(b)
        case .int(let i): lua.push(i)
        case .double(let d): lua.push(d)
        case .string(let s): lua.push(s)
        case .array(let xs):
            guard lua.ensureStack(4) else { lua.pushNil(); return }
            lua.newTable(arrayCount: Int32(clamping: xs.count))
            for (k, x) in xs.enumerated() {
                push(lua, x, depth: depth + 1)
                lua.rawSet(-2, index: k + 1)
            }
        case .object(let kv):
            guard lua.ensureStack(4) else { lua.pushNil(); return }
            lua.newTable(recordCount: Int32(clamping: kv.count))
            for (key, x) in kv {
                push(lua, x, depth: depth + 1)
                lua.rawSet(-2, field: key)
            }
        }
    }

    // MARK: read (sandbox -> host), non-raising

    static let maxDepth = 16
    static let maxEntries = 1000

    /// The value at idx as JSON: tables with keys 1..n are arrays, other tables objects (number keys written as
    /// text, other keys skipped); functions and the like become their type name; NaN and infinities text.
    static func json(_ lua: Lua, _ idx: Int32, depth: Int) -> JSONValue {
        let idx = lua.absolute(idx)
        switch lua.type(idx) {
        case LUA_TNIL: return .null
        case LUA_TBOOLEAN: return .bool(lua.bool(idx))
        case LUA_TNUMBER:
            if lua.isInteger(idx), let i = lua.integer(idx) { return .int(i) }
            let d = lua.number(idx) ?? .nan
            return d.isFinite ? .double(d) : .string("\(d)")
        case LUA_TSTRING: return .string(lua.string(idx) ?? "")
        case LUA_TLIGHTUSERDATA where lua_touserdata(lua.L, idx) == nil: return .null
        case LUA_TTABLE:
            guard depth < maxDepth, lua.ensureStack(6) else { return .string("(a table nested too deep)") }
            var pairs: [(String, JSONValue)] = []
            var isArray = true
            lua.forEach(idx) {
                let key: String
                switch lua.type(-2) {
                case LUA_TSTRING: key = lua.string(-2) ?? ""; isArray = false
                case LUA_TNUMBER:
                    if lua.isInteger(-2), let i = lua.integer(-2) { key = String(i) } else { key = "\(lua.number(-2) ?? .nan)"; isArray = false }
                default: return true
                }
                pairs.append((key, json(lua, -1, depth: depth + 1)))
                return pairs.count < maxEntries
            }
            if isArray && !pairs.isEmpty {
                var byIndex: [Int: JSONValue] = [:]
                for (k, v) in pairs { if let i = Int(k) { byIndex[i] = v } }
                if (1...pairs.count).allSatisfy({ byIndex[$0] != nil }) {
                    return .array((1...pairs.count).compactMap { byIndex[$0] })
                }
            }
            return .object(pairs.sorted { $0.0 < $1.0 })
        default: return .string(lua.typeName(idx))
        }
    }
}

/// Sandboxed Lua graders for Swift callers (rft.grader.lua makes the same objects).
public enum LuaGraders {
    /// A grader running `source` (Lua text that returns the grader function or defines `grade(sample, item)`) in a
    /// fresh sandboxed state per sample.
    /// - Throws: `GraderSpecError` when the source does not compile or yield a function in the sandbox.
    public static func make(name: String = "lua", source: String, limits: SandboxLimits = SandboxLimits()) throws -> any Grader {
        try RFTBinding.makeLuaGrader(name: name, source: LuaGraderSource(text: source, chunkName: "=[grader \(name)]"), limits: limits)
    }

    /// For `GraderSpec.make(spec, lua: LuaGraders.specFactory)`: specs of type lua with source, instructions, memory_mb.
    public static let specFactory: GraderSpec.LuaFactory = RFTBinding.luaFactory
}

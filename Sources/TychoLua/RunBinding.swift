// RunBinding.swift: the Lua module `run`: run records (`tycho.Run`), the folder runs/NAME/ with manifest.json,
// metrics.jsonl and events.jsonl that TychoTrain's RunRecord writes. This file reads Lua values into JSON and
// back; the `ckpt` module shares its readers for metrics tables.
//
// Metric values may be numbers (NaN and infinities included: they are written as "NaN", "Infinity"), strings,
// booleans or one-element tensors (a loss tensor is logged as its value); nested tables are written as JSON.

import CLua
import CLuaShim
import Foundation
import TychoTensor
import TychoText
import TychoTrain

enum RunBinding {
    static let metatable = "tycho.Run"

    static func record(_ a: LuaArgs, _ idx: Int = 1) throws -> RunRecord {
        if let r = a.lua.object(Int32(idx), metatable: metatable, as: RunRecord.self) { return r }
        if a.lua.isFinalized(Int32(idx)) { throw a.argumentError(idx, "a live run, got one that was already collected") }
        throw a.typeError(idx, "a run (from run.start)")
    }

    /// Runs a TychoTrain call, turning its errors into binding errors.
    static func run<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch let e as RecordError { throw LuaBindingError(e.message) }
    }

    // MARK: Lua -> JSON

    /// The value at idx as JSON (any table JSON can hold), or an error naming `what`.
    static func json(_ a: LuaArgs, _ idx: Int32, what: String) throws -> JSONValue {
        if a.lua.type(idx) == LUA_TNUMBER, let d = a.lua.number(idx), !d.isFinite { return .number(d) }
        if let t = a.lua.object(idx, metatable: TensorBinding.metatable, as: Tensor.self) {
            guard t.count == 1 else { throw LuaBindingError("\(what) must be a number or a one-element tensor, got a tensor of size \(Tensor.describe(t.shape))") }
            return .number(Double(try t.item()))
        }
        var visiting = Set<UnsafeRawPointer>()
        do {
            return try DataBinding.jsonValue(a.lua, idx, path: "", depth: 1, visiting: &visiting)
        } catch let u as DataBinding.Unwritable {
            throw LuaBindingError(u.path.isEmpty ? "\(what): \(u.message)" : "\(what).\(u.path): \(u.message)")
        }
    }

    /// The string-keyed fields of the table at idx, sorted by name, except `skip`; values through `json`.
    static func fields(_ a: LuaArgs, _ idx: Int32, what: String, skip: Set<String> = []) throws -> [(String, JSONValue)] {
        let t = a.lua.absolute(idx)
        guard a.lua.type(t) == LUA_TTABLE else { throw LuaBindingError("\(what) must be a table, got \(a.lua.typeName(t))") }
        guard a.lua.ensureStack(8) else { throw LuaBindingError("Lua stack overflow") }
        var keys: [String] = []
        var badKey: String?
        a.lua.forEach(t) {
            guard a.lua.type(-2) == LUA_TSTRING, let k = a.lua.string(-2) else {
                badKey = a.lua.typeName(-2)
                return false
            }
            if !skip.contains(k) { keys.append(k) }
            return true
        }
        if let badKey { throw LuaBindingError("\(what) must have names as keys, got a \(badKey) key") }
        var out: [(String, JSONValue)] = []
        for k in keys.sorted() {
            _ = a.lua.rawGet(t, field: k)
            defer { a.lua.pop() }
            out.append((k, try json(a, -1, what: "\(what).\(k)")))
        }
        return out
    }

    /// An integer field of the table at idx, checked.
    static func integerField(_ a: LuaArgs, _ idx: Int, _ key: String, min: Int = 0) throws -> Int? {
        guard let v = try a.optionNumber(idx, key) else { return nil }
        guard v == v.rounded(), Swift.abs(v) < 9e15, Int(v) >= min else {
            throw a.argumentError(idx, "a table whose field '\(key)' is an integer >= \(min), got \(LuaArgs.formatNumber(v))")
        }
        return Int(v)
    }

    // MARK: JSON -> Lua

    /// Pushes JSON, with the strings "NaN", "Infinity", "-Infinity" of numeric fields as numbers.
    static func push(_ a: LuaArgs, _ v: JSONValue) throws {
        try DataBinding.push(v, a.lua)
    }

    static func pushFields(_ a: LuaArgs, _ kv: [(String, JSONValue)]) throws {
        a.lua.newTable(recordCount: Int32(clamping: kv.count))
        for (k, v) in kv {
            if let d = v.doubleValue, case .string = v { a.lua.push(d) } else { try push(a, v) }
            a.lua.rawSet(-2, field: k)
        }
    }

    /// `arg[0]` when it names a readable file (the script `tycho run` runs).
    static func scriptPath(_ a: LuaArgs) -> String? {
        let lua = a.lua
        let top = lua.top
        defer { lua.top = top }
        lua.pushGlobals()
        guard lua.rawGet(-1, field: "arg") == LUA_TTABLE else { return nil }
        _ = lua.rawGet(-1, index: 0)
        guard let s = lua.string(-1), s != "-", FileManager.default.isReadableFile(atPath: s) else { return nil }
        return s
    }

    // MARK: functions

    static let startOptions: Set<String> = ["name", "config", "dir", "seed", "script", "resume"]

    static let functions: [LuaFunction] = [
        LuaFunction("start", [.optional("options", .table, default: "{name=, config={}, dir=\"runs\", seed=, script=arg[0], resume=false}")],
                    doc: """
                    Starts a run record: the folder DIR/NAME/ with manifest.json (script path and sha256, config, seed, data
                      hashes, Tycho version, git commit, start and end time, status), metrics.jsonl and events.jsonl. A taken
                      name gets a suffix (NAME-2); resume=true continues the run NAME when it exists. seed defaults to
                      config.seed; script to the running script (arg[0]).
                      r = run.start{name = "dpo-beta0.1", config = {beta = 0.1, lr = 5e-6}, seed = 1}
                    """) { a in
            try a.checkOptions(1, allowed: startOptions)
            var o = RunRecord.Options()
            o.name = try a.optionString(1, "name")
            o.root = try a.optionString(1, "dir") ?? "runs"
            guard !o.root.isEmpty else { throw a.argumentError(1, "a table whose field 'dir' is a non-empty path") }
            o.resume = try a.optionBoolean(1, "resume") ?? false
            if !a.isNil(1) {
                if a.lua.rawGet(1, field: "config") != LUA_TNIL {
                    guard a.lua.type(-1) == LUA_TTABLE else {
                        let got = a.lua.typeName(-1)
                        a.lua.pop()
                        throw a.argumentError(1, "a table whose field 'config' is a table, got \(got)")
                    }
                    let v = try json(a, -1, what: "config")
                    o.config = v.arrayValue?.isEmpty == true ? .object([]) : v
                    guard o.config.objectValue != nil else {
                        a.lua.pop()
                        throw a.argumentError(1, "a table whose field 'config' is a table of named values, got a list")
                    }
                }
                a.lua.pop()
                if a.lua.rawGet(1, field: "seed") != LUA_TNIL {
                    guard a.lua.type(-1) == LUA_TNUMBER, let s = a.lua.integer(-1) else {
                        let got = a.lua.typeName(-1)
                        a.lua.pop()
                        throw a.argumentError(1, "a table whose field 'seed' is an integer, got \(got)")
                    }
                    o.seed = .int(s)
                }
                a.lua.pop()
            }
            o.script = try a.optionString(1, "script") ?? scriptPath(a)
            o.tychoVersion = LuaState.version
            o.command = CommandLine.arguments
            let r = try run { try RunRecord.start(o) }
            a.lua.pushObject(r, metatable: metatable)
            return 1
        },
        LuaFunction("is_run", [.required("value", .any)], doc: "True when value is a run record.") { a in
            a.push(a.lua.object(1, metatable: metatable, as: RunRecord.self) != nil)
        },
    ]

    static func method(_ name: String, _ params: [LuaParam] = [], doc: String,
                       _ body: @escaping (LuaArgs, RunRecord) throws -> Int) -> LuaFunction {
        LuaFunction(name, [.required("self", .any)] + params, method: true, doc: doc) { a in try body(a, try record(a)) }
    }

    static let methods: [LuaFunction] = [
        method("log", [.required("values", .table)], doc: """
               Appends one line to metrics.jsonl (synced): r:log{step = 12, loss = 0.69, ["rewards/margins"] = 0.1}. step is
                 required; values are numbers (NaN allowed), strings, booleans or one-element tensors.
               """) { a, r in
            guard let step = try integerField(a, 2, "step") else { throw a.argumentError(2, "a table with step = an integer >= 0") }
            let values = try fields(a, 2, what: "values", skip: ["step"])
            try run { try r.log(step: step, values) }
            return 0
        },
        method("event", [.required("event", .table)], doc: """
               Appends one line to events.jsonl (synced): r:event{kind = "eval", step = 100, accuracy = 0.62}. kind is a
                 string (checkpoint, rollback, eval, approval, or your own).
               """) { a, r in
            guard let kind = try a.optionString(2, "kind"), !kind.isEmpty else { throw a.argumentError(2, "a table with kind = a non-empty string") }
            let values = try fields(a, 2, what: "event", skip: ["kind"])
            try run { try r.event(kind: kind, values) }
            return 0
        },
        method("add_data", [.required("path", .string)], doc: "Records a data file's path, size and sha256 in the manifest; returns the sha256.") { a, r in
            a.push(try run { try r.addData(path: try a.string(2)) })
        },
        method("finish", [.optional("status", .string, default: "\"finished\"")],
               doc: "Records the end time and the status (\"finished\" or \"failed\") and releases the run; later writes are errors.") { a, r in
            try run { try r.finish(status: try a.string(2, default: "finished")) }
            return 0
        },
        method("name", doc: "The run's name (with its suffix, when the name was taken).") { a, r in a.push(r.name) },
        method("dir", doc: "The run's folder (DIR/NAME).") { a, r in a.push(r.directory) },
        method("manifest", doc: "The manifest as a table.") { a, r in
            try push(a, r.manifest)
            return 1
        },
        method("resumed", doc: "True when run.start{resume=true} continued an existing run.") { a, r in a.push(r.resumed) },
    ]

    static let metamethods: [String: LuaFunction] = {
        let table: [String: LuaFunction] = [
            "__index": OptimBinding.indexMetamethod("a run"),
            "__tostring": LuaFunction("__tostring", [.required("self", .any)], doc: "Run(NAME, DIR).") { a in
                let r = try record(a)
                return a.push("Run(\(r.name), \(r.directory)\(r.isFinished ? ", finished" : ""))")
            },
            "__gc": LuaFunction("__gc", [.optional("self", .any)], doc: "Releases the run (its lock).") { a in
                a.lua.releaseObject(1, metatable: metatable)
                return 0
            },
        ]
        for f in table.values { f.module = "run" }
        return table
    }()

    static let module = LuaModule(name: "run",
                                  doc: "Run records: run.start{name=, config=} makes runs/NAME/ with manifest.json, metrics.jsonl and events.jsonl; `tycho runs` lists them.",
                                  functions: functions + [plotFunction] + methods)

    static func register(in state: LuaState) {
        state.registerType(metatable: metatable, methods: methods, metamethods: metamethods)
        state.register(module)
    }
}

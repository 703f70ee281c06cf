// REPL.swift: the interactive loop, in the small steps of lua.c:
// read a line; try `return <line>;`; else keep reading while the chunk is incomplete (`<eof>`); call it
// with a traceback handler and Ctrl-C armed; print every result with the pretty-printer.
// Additions from trepl: a trailing `;` suppresses printing, `?` / `? topic` for help, `_LAST`.

import CLua
import CLuaShim
import Foundation
import TychoLua

final class REPL {
    let state: LuaState
    let reader: LineReader
    var lua: Lua { state.lua }

    init(state: LuaState) {
        self.state = state
        self.reader = LineReader(state: state)
        state.register(REPLBinding.module, global: false)
        let lua = state.lua
        lua.pushGlobals()
        for f in REPLBinding.module.functions { lua.push(f); lua.rawSet(-2, field: f.name) }
        if let f = REPLBinding.module.function(named: "no_colors") { lua.push(f); lua.rawSet(-2, field: "noColors") }
        lua.newTable()
        lua.rawSet(-2, field: "_RESULTS")
        var names = Set<String>(["_LAST", "_RESULTS"])
        lua.forEach(-1) { if let k = lua.string(-2) { names.insert(k) }; return true }
        lua.pop()
        replSettings.startupGlobals = names
        replSettings.colors = isatty(STDOUT_FILENO) != 0 && ProcessInfo.processInfo.environment["NO_COLOR"] == nil
            && ProcessInfo.processInfo.environment["TERM"] != "dumb"
    }

    func run() {
        print("Tycho \(LuaState.version) (\(LuaState.luaVersion)) | help(), help(tensor), Ctrl-D to quit")
        while true {
            guard let chunk = readChunk() else { print(""); return }
            evaluate(chunk)
        }
    }

    // MARK: read

    /// The prompt: `_PROMPT`/`_PROMPT2` globals when set, as lua.c does.
    func prompt(continuation: Bool) -> String {
        state.globalString(continuation ? "_PROMPT2" : "_PROMPT") ?? (continuation ? ">> " : "> ")
    }

    /// A complete chunk (text and whether it is an expression), or nil at end of input.
    func readChunk() -> (code: String, isExpression: Bool, source: String)? {
        guard var line = reader.readLine(prompt: prompt(continuation: false)) else { return nil }
        if line.hasPrefix("=") { line = "return " + line.dropFirst() }
        let trimmed = line.trimmingCharacters(in: .whitespaces)
        if trimmed.hasPrefix("$") {
            reader.addHistory(line)
            return (String(trimmed.dropFirst()), false, "$")
        }
        if trimmed == "?" { line = "help()" } else if trimmed.hasPrefix("? ") {
            line = "help(\(LuaStateQuote.quote(String(trimmed.dropFirst(2)).trimmingCharacters(in: .whitespaces))))"
        }
        if trimmed.hasPrefix("local ") {
            FileHandle.standardError.write(Data("tycho: locals do not survive across lines in interactive mode\n".utf8))
        }
        // Expression first.
        if state.load("return \(line);", chunkName: "=stdin") == nil {
            lua.pop()
            reader.addHistory(line)
            return (line, true, line)
        }
        // Statement, possibly continued over several lines.
        var code = line
        while true {
            if let err = state.load(code, chunkName: "=stdin") {
                if err.hasSuffix("<eof>"), let more = reader.readLine(prompt: prompt(continuation: true)) {
                    code += "\n" + more
                    continue
                }
            } else {
                lua.pop()
            }
            reader.addHistory(code)
            return (code, false, code)
        }
    }

    // MARK: evaluate and print

    func evaluate(_ chunk: (code: String, isExpression: Bool, source: String)) {
        if chunk.source == "$" { shell(chunk.code); return }
        let suppress = chunk.code.trimmingCharacters(in: .whitespaces).hasSuffix(";")
        let text = chunk.isExpression ? "return \(chunk.code);" : chunk.code
        let base = lua.top
        if let err = state.load(text, chunkName: "=stdin") {
            report(err)
            return
        }
        tycho_interrupt_arm(lua.L)
        let err = lua.protectedCall(nargs: 0)
        tycho_interrupt_disarm()
        if let err { report(err); lua.top = base; return }
        let n = lua.top - base
        if n > 0 {
            remember(base + 1)
            if !suppress {
                var options = PrettyOptions()
                options.depth = replSettings.printLevel
                options.colors = replSettings.colors
                let parts = (1...n).map { state.pretty(base + $0, options: options) }
                // Tab-separated like lua.c, or one per line when any is multi-line (tensors).
                print(parts.joined(separator: parts.contains { $0.contains("\n") } ? "\n" : "\t"))
            }
        }
        lua.top = base
        fflush(stdout)
    }

    /// Sets `_LAST` to the value at idx and appends it to `_RESULTS` (trepl).
    func remember(_ index: Int32) {
        let idx = lua.absolute(index)
        lua.pushGlobals()
        let g = lua.absolute(-1)
        lua.pushValue(idx); lua.rawSet(g, field: "_LAST")
        if lua.rawGet(g, field: "_RESULTS") == LUA_TTABLE {
            lua.pushValue(idx)
            lua.rawSet(-2, index: lua.rawLength(-2) + 1)
        }
        lua.top = g - 1
    }

    /// `$ cmd`: runs a shell command, prints its output and keeps it in `_LAST`.
    func shell(_ command: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        let aliases = ["ls": "ls --color=auto -F", "ll": "ls -lhF", "la": "ls -lahF"]
        let words = command.trimmingCharacters(in: .whitespaces).split(separator: " ", maxSplits: 1).map(String.init)
        var cmd = command
        if let first = words.first, let alias = aliases[first] { cmd = alias + (words.count > 1 ? " " + words[1] : "") }
        p.arguments = ["-c", cmd]
        let out = Pipe()
        p.standardOutput = out
        do { try p.run() } catch { report("cannot run /bin/sh: \(error)"); return }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        print(text, terminator: "")
        lua.push(text)
        remember(-1)
        lua.pop()
    }

    func report(_ message: String) {
        fflush(stdout)
        FileHandle.standardError.write((message + "\n").data(using: .utf8) ?? Data())
    }
}

/// Lua string quoting for rewriting `? topic` into `help("topic")`.
enum LuaStateQuote {
    static func quote(_ s: String) -> String {
        "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }
}

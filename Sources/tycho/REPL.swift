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
            lua.pushValue(base + 1)
            lua.pushGlobals(); tycho_insert(lua.L, -2); lua.rawSet(-2, field: "_LAST"); lua.pop()
            if !suppress {
                let parts = (1...n).map { state.pretty(base + $0) }
                // Tab-separated like lua.c, or one per line when any is multi-line (tensors).
                print(parts.joined(separator: parts.contains { $0.contains("\n") } ? "\n" : "\t"))
            }
        }
        lua.top = base
        fflush(stdout)
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

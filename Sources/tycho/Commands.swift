// Commands.swift: the command line, as thin as lua.c's main.
//   tycho                      REPL on a terminal; otherwise runs stdin as a script
//   tycho run FILE [ARGS...]   runs a script with `arg` set as lua does
//   tycho -e CODE              runs a chunk (repeatable; -i enters the REPL afterwards)
//   tycho help [TOPIC]         prints help on a module or function
//   tycho batch INPUT --model DIR --output OUT   runs an OpenAI Batch API file (BatchCommand.swift)
//   tycho runs [--dir runs] | tycho runs show NAME   lists run records, shows one (RunsCommand.swift)
//   tycho notebook run NB.ipynb | tycho notebook new NB.ipynb   runs or makes a notebook (NotebookCommand.swift)
//   tycho kernel -f FILE | tycho kernel install        the Jupyter kernel (KernelCommand.swift)
//   tycho --version
// Exit status 0, or 1 with the Lua error and traceback on stderr (batch: see BatchCommand.swift).

import ArgumentParser
import CLua
import CLuaShim
import Foundation
import TychoLua

/// Writes an error like lua.c's `l_message`.
func reportError(_ message: String) {
    fflush(stdout)
    FileHandle.standardError.write("tycho: \(message)\n".data(using: .utf8) ?? Data())
}

func makeState() throws -> LuaState {
    do { return try LuaState() } catch { throw ExitCode(1) }
}

/// Sets the global `arg` table: arg[0] = script, arg[1..] = args, negative indices for what came before.
func setArgTable(_ state: LuaState, script: String, args: [String], before: [String]) {
    let lua = state.lua
    lua.newTable(arrayCount: Int32(args.count), recordCount: Int32(before.count + 1))
    for (i, a) in before.enumerated() { lua.push(a); lua.rawSet(-2, index: i - before.count) }
    lua.push(script); lua.rawSet(-2, index: 0)
    for (i, a) in args.enumerated() { lua.push(a); lua.rawSet(-2, index: i + 1) }
    lua.pushGlobals(); tycho_insert(lua.L, -2); lua.rawSet(-2, field: "arg"); lua.pop()
}

/// Runs a loaded chunk (on the stack) with `args` as `...`, Ctrl-C armed. Returns false on error.
func callChunk(_ state: LuaState, args: [String]) -> Bool {
    for a in args { state.lua.push(a) }
    tycho_interrupt_arm(state.lua.L)
    let err = state.lua.protectedCall(nargs: Int32(args.count), nresults: 0)
    tycho_interrupt_disarm()
    if let err { reportError(err); return false }
    return true
}

/// Runs `code` named `chunkName`. Returns false on error (already reported).
func runCode(_ state: LuaState, _ code: String, chunkName: String, args: [String] = []) -> Bool {
    if let err = state.load(code, chunkName: chunkName) { reportError(err); return false }
    return callChunk(state, args: args)
}

struct Tycho: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tycho",
        abstract: "A Lua 5.4 workbench for preference-optimization research.",
        discussion: "With no arguments on a terminal, opens the REPL; with stdin not a terminal, runs stdin as a script. `tycho help [TOPIC]` prints help on Lua modules and functions.",
        version: LuaState.version,
        subcommands: [Run.self, Batch.self, Runs.self, NotebookCommand.self, KernelCommand.self])

    @Option(name: .customShort("e"), help: ArgumentHelp("Run a chunk of Lua code (repeatable).", valueName: "code"))
    var chunks: [String] = []

    @Flag(name: .customShort("i"), help: "Enter the REPL after running -e chunks.")
    var interactive = false

    func run() throws {
        let state = try makeState()
        for (i, c) in chunks.enumerated() where !runCode(state, c, chunkName: "=(command line \(i + 1))") {
            throw ExitCode(1)
        }
        if !chunks.isEmpty && !interactive { return }
        if isatty(STDIN_FILENO) != 0 {
            REPL(state: state).run()
            return
        }
        // Not a terminal: stdin is the script.
        let data = FileHandle.standardInput.readDataToEndOfFile()
        setArgTable(state, script: "-", args: [], before: [CommandLine.arguments[0]])
        if !runCode(state, String(decoding: data, as: UTF8.self), chunkName: "=stdin") { throw ExitCode(1) }
    }
}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run a Lua script with arguments (`-` reads the script from stdin).")

    @Argument(help: "The script to run.")
    var file: String

    @Argument(parsing: .captureForPassthrough, help: "Arguments passed to the script as `arg` and `...`.")
    var args: [String] = []

    func run() throws {
        let state = try makeState()
        setArgTable(state, script: file, args: args, before: [CommandLine.arguments[0], "run"])
        if file == "-" {
            let data = FileHandle.standardInput.readDataToEndOfFile()
            if !runCode(state, String(decoding: data, as: UTF8.self), chunkName: "=stdin", args: args) { throw ExitCode(1) }
            return
        }
        guard FileManager.default.isReadableFile(atPath: file) else {
            reportError("cannot open \(file)")
            throw ExitCode(1)
        }
        let status = luaL_loadfilex(state.lua.L, file, nil)
        if status != LUA_OK {
            reportError(state.lua.string(-1) ?? "cannot load \(file)")
            throw ExitCode(1)
        }
        if !callChunk(state, args: args) { throw ExitCode(1) }
    }
}

/// `tycho help [TOPIC]`: handled before argument parsing, since the parser owns `help` for its own use.
func helpCommand(_ topics: [String]) -> Int32 {
    guard let state = try? LuaState() else { return 1 }
    if topics.isEmpty {
        print(state.overview)
        print("\nCommands: tycho [-e CODE] [-i] | tycho run FILE [ARGS...] | tycho batch INPUT --model DIR --output OUT | tycho runs [show NAME] [--dir runs] | tycho notebook run NB.ipynb | tycho notebook new NB.ipynb | tycho kernel install | tycho help [TOPIC] | tycho --version")
        return 0
    }
    var status: Int32 = 0
    for t in topics {
        if let text = state.helpText(topic: t) { print(text) } else {
            reportError("no help for '\(t)' (tycho help lists the modules)")
            status = 1
        }
    }
    return status
}

// REPLTests.swift: drives the `tycho` REPL in a real terminal (tmux): multi-line input, expression printing,
// completion of `tensor.ra<TAB>`, an error followed by a working line, Ctrl-C interrupting a loop, history.

import Foundation
import Testing

/// A tmux session on a private server socket, running one program.
final class TmuxSession {
    let socket = "tycho-test-\(UUID().uuidString.prefix(8))"
    let name = "repl"

    static var available: Bool { FileManager.default.isExecutableFile(atPath: "/usr/bin/tmux") }

    init(command: String) throws {
        try tmux(["new-session", "-d", "-s", name, "-x", "160", "-y", "60", command])
    }

    deinit { try? tmux(["kill-server"]) }

    /// Runs a tmux command through `system()` (fork, exec, waitpid). Foundation's Process is not used: it
    /// watches a descriptor that tmux's daemonised server inherits, so waiting for the client never ends.
    @discardableResult
    func tmux(_ args: [String]) throws -> String {
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("tmux-out-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: output) }
        let quoted = (["/usr/bin/tmux", "-L", socket] + args).map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }
        let status = system(quoted.joined(separator: " ") + " </dev/null >'\(output.path)' 2>/dev/null")
        guard status == 0 || args.first == "kill-server" else {
            throw TmuxError(message: "tmux \(args.first ?? "") exited with \(status)")
        }
        return (try? String(contentsOf: output, encoding: .utf8)) ?? ""
    }

    struct TmuxError: Error { let message: String }

    func type(_ text: String) throws { try tmux(["send-keys", "-t", name, "-l", text]) }
    func key(_ k: String) throws { try tmux(["send-keys", "-t", name, k]) }
    func line(_ text: String) throws { try type(text); try key("Enter") }
    func screen() throws -> String { try tmux(["capture-pane", "-p", "-J", "-S", "-200", "-t", name]) }

    /// Waits until the screen satisfies `predicate`; returns the screen.
    @discardableResult
    func waitFor(_ what: String, timeout: Double = 10, _ predicate: (String) -> Bool) throws -> String {
        let deadline = Date().addingTimeInterval(timeout)
        var s = ""
        while Date() < deadline {
            s = try screen()
            if predicate(s) { return s }
            Thread.sleep(forTimeInterval: 0.05)
        }
        Issue.record("timed out waiting for \(what); screen:\n\(s)")
        return s
    }

    func waitFor(_ text: String, timeout: Double = 10) throws -> String {
        try waitFor("'\(text)'", timeout: timeout) { $0.contains(text) }
    }
}

@Suite(.serialized) struct REPLTests {
    @Test(.enabled(if: TmuxSession.available, "tmux is not installed (apt-get install tmux)"))
    func interactiveSession() throws {
        let history = FileManager.default.temporaryDirectory.appendingPathComponent("tycho-history-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: history) }
        let session = try TmuxSession(command: "env TYCHO_HISTORY=\(history.path) \(TychoProcess.executable.path)")
        try session.waitFor("Tycho ")

        // An expression typed alone prints its value; tensors print Torch-style.
        try session.line("1 + 1")
        try session.waitFor("1 + 1\n2\n")
        try session.line("tensor.ones(2, 3) * 3")
        try session.waitFor("[tensor float32 of size 2x3]")
        #expect(try session.screen().contains("3 3 3\n3 3 3\n"))

        // Multi-line input continues while the chunk is incomplete.
        try session.line("for i = 1, 3 do")
        try session.waitFor(">> ")
        try session.line("print(i * 10)")
        try session.line("end")
        try session.waitFor("10\n20\n30\n")

        // Tables are pretty-printed, cycles included.
        try session.line("t = {1, 2, name = 'x'}; t.self = t")
        try session.line("t")
        try session.waitFor("{1, 2, name = \"x\", self = <cycle>}")

        // Completion of tensor.ra<TAB> extends to the common prefix and lists the choices.
        try session.type("tensor.ra")
        try session.key("Tab")
        try session.waitFor("tensor.randint(")
        #expect(try session.screen().contains("> tensor.rand"))
        #expect(try session.screen().contains("tensor.randn("))
        try session.key("C-u")

        // Method completion on a userdata through its metatable.
        try session.line("x = tensor.zeros(2)")
        try session.type("x:resh")
        try session.key("Tab")
        try session.waitFor("> x:reshape(")
        try session.key("C-u")

        // An error prints its message and traceback, and the next line works.
        try session.line("error('oops')")
        try session.waitFor("stack traceback:")
        #expect(try session.screen().contains("stdin:1: oops"))
        try session.line("print('still ' .. 'alive')")
        try session.waitFor("still alive")

        // A binding error is a Lua error too.
        try session.line("tensor.ones(2, 3):matmul(tensor.ones(4, 1))")
        try session.waitFor("tensor.matmul: shapes 2x3 and 4x1 cannot be multiplied")

        // Ctrl-C interrupts a running chunk and the REPL goes on.
        try session.line("while true do end")
        Thread.sleep(forTimeInterval: 0.5)
        try session.key("C-c")
        try session.waitFor("interrupted!")
        try session.line("print('after ' .. 'interrupt')")
        try session.waitFor("after interrupt")

        // trepl's helpers: who(), setprintlevel, `$ cmd` into _LAST, file names completed inside strings.
        try session.line("deep = {a = {b = {c = {d = 1}}}}")
        try session.line("who()")
        try session.waitFor("who() listing deep") { $0.split(separator: "\n").contains { $0.hasPrefix("deep ") && $0.hasSuffix(" table") } }
        try session.line("setprintlevel(1)")
        try session.line("deep")
        try session.waitFor("{a = {...}}")
        try session.line("$ echo from the shell")
        try session.line("_LAST:upper()")
        try session.waitFor("FROM THE SHELL")
        try session.type("dofile(\"Scripts/dem")
        try session.key("Tab")
        try session.waitFor("dofile(\"Scripts/demo.lua")
        try session.key("C-u")

        // help() prints the doc from the binding table.
        try session.line("help(tensor.randint)")
        try session.waitFor("Random integers in [low, high) (high exclusive).")

        // Ctrl-D quits; the history kept the multi-line chunk as one entry.
        try session.key("C-d")
        Thread.sleep(forTimeInterval: 0.3)
        let saved = try String(contentsOf: history, encoding: .utf8)
        #expect(saved.contains("for i = 1, 3 do\nprint(i * 10)\nend"))
        #expect(saved.contains("1 + 1"))
    }
}

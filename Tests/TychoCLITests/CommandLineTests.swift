// CommandLineTests.swift: `tycho -e`, `tycho run`, stdin scripts, `--version`, `tycho help`, exit codes.

import Foundation
import Testing

@Suite struct CommandLineTests {
    @Test func evaluatesChunks() throws {
        let r = try TychoProcess.run(["-e", "print(tensor.ones(2, 3):sum():item())", "-e", "print(2 ^ 10)"])
        #expect(r.status == 0)
        #expect(r.stdout == "6.0\n1024.0\n")
    }

    @Test func errorExitsWithOneAndTraceback() throws {
        let r = try TychoProcess.run(["-e", "local function f() error('boom') end f()"])
        #expect(r.status == 1)
        #expect(r.stderr.contains("boom"))
        #expect(r.stderr.contains("stack traceback:"))
        #expect(r.stdout.isEmpty)
    }

    @Test func bindingErrorNamesFunctionAndArgument() throws {
        let r = try TychoProcess.run(["-e", "tensor.zeros(2, -3)"])
        #expect(r.status == 1)
        #expect(r.stderr.contains("tensor.zeros: argument #2 (size) must be a non-negative integer, got -3"))
    }

    @Test func runsScriptWithArgumentsAndStdin() throws {
        let script = try TychoProcess.temporaryFile("""
            local a, b = ...
            print(arg[0] ~= nil, arg[1], arg[2], a, b, #arg)
            local total = 0
            for line in io.lines() do total = total + tonumber(line) end
            print(total)
            """)
        defer { try? FileManager.default.removeItem(at: script) }
        let r = try TychoProcess.run(["run", script.path, "x", "--flag"], input: "1\n2\n3\n")
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout == "true\tx\t--flag\tx\t--flag\t2\n6\n")
    }

    @Test func scriptErrorReportsFileAndLine() throws {
        let script = try TychoProcess.temporaryFile("print('before')\nlocal t = nil\nprint(t.x)\n")
        defer { try? FileManager.default.removeItem(at: script) }
        let r = try TychoProcess.run(["run", script.path])
        #expect(r.status == 1)
        #expect(r.stdout == "before\n")
        #expect(r.stderr.contains(":3: attempt to index a nil value"))
    }

    @Test func missingScriptFails() throws {
        let r = try TychoProcess.run(["run", "/nonexistent/script.lua"])
        #expect(r.status == 1)
        #expect(r.stderr.contains("cannot open /nonexistent/script.lua"))
    }

    @Test func syntaxErrorFails() throws {
        let script = try TychoProcess.temporaryFile("for i = 1, do\n")
        defer { try? FileManager.default.removeItem(at: script) }
        let r = try TychoProcess.run(["run", script.path])
        #expect(r.status == 1)
        #expect(r.stderr.contains("unexpected symbol"))
    }

    @Test func stdinIsTheScriptWhenNotATerminal() throws {
        let r = try TychoProcess.run([], input: "x = tensor.arange(4)\nprint(x:sum():item())\n")
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout == "6.0\n")
        let bad = try TychoProcess.run([], input: "error('from stdin')\n")
        #expect(bad.status == 1)
        #expect(bad.stderr.contains("stdin:1: from stdin"))
    }

    @Test func versionAndHelp() throws {
        let v = try TychoProcess.run(["--version"])
        #expect(v.status == 0)
        #expect(v.stdout.hasPrefix("0."))
        let h = try TychoProcess.run(["help", "tensor.narrow"])
        #expect(h.status == 0)
        #expect(h.stdout.contains("tensor.narrow(self, dim, start, length)"))
        let m = try TychoProcess.run(["help", "tensor"])
        #expect(m.stdout.contains("tensor.randint(low, high, size...)"))
        let overview = try TychoProcess.run(["help"])
        #expect(overview.stdout.contains("tensor"))
        let unknown = try TychoProcess.run(["help", "no.such.thing"])
        #expect(unknown.status == 1)
    }

    @Test func requireFindsBuiltInModules() throws {
        let r = try TychoProcess.run(["-e", "local t = require 'tensor'; print(t == tensor, t.zeros == tensor.zeros)"])
        #expect(r.stdout == "true\ttrue\n")
    }
}

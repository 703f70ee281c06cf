// NotebookTests.swift: `tycho notebook run` and `tycho notebook new` through the command line (outputs, counts,
// errors, --allow-errors, --timeout, papermill-style --param, stable rewrites), the kernel through jupyter_client
// (Tests/Notebooks/check_kernel.py) and jupyter_kernel_test (kernel_conformance.py), and every notebook in Notebooks/ re-executed by the runner and then by nbclient
// through the kernel, with the two compared (Tests/Notebooks/check_notebooks.py).
// The Python checks need python3 with nbformat, jupyter_client, nbclient and jupyter_kernel_test (Scripts/test.sh
// installs them in .venv); they
// are skipped, saying so, only when python3 itself is missing.

import Foundation
import Testing

enum NotebookSupport {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    static func temporaryDirectory(_ name: String) throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tycho-\(name)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    /// A notebook file with these code cells (source, tags).
    static func write(_ cells: [(String, [String])], to url: URL) throws {
        let list: [[String: Any]] = cells.enumerated().map { i, c in
            ["cell_type": "code", "id": "c\(i + 1)", "metadata": c.1.isEmpty ? [:] : ["tags": c.1], "source": c.0,
             "outputs": [], "execution_count": NSNull()]
        }
        let nb: [String: Any] = ["cells": list, "metadata": [:], "nbformat": 4, "nbformat_minor": 5]
        try JSONSerialization.data(withJSONObject: nb).write(to: url)
    }

    static func read(_ url: URL) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
    }

    static func cells(_ nb: [String: Any]) -> [[String: Any]] { nb["cells"] as? [[String: Any]] ?? [] }

    static func joined(_ v: Any?) -> String {
        if let s = v as? String { return s }
        return (v as? [String])?.joined() ?? ""
    }

    static func outputs(_ cell: [String: Any]) -> [[String: Any]] { cell["outputs"] as? [[String: Any]] ?? [] }

    /// The repo's .venv/bin/python3 (Scripts/test.sh makes it), else python3 on PATH.
    static func python() -> String? {
        let venv = repo.appendingPathComponent(".venv/bin/python3").path
        if FileManager.default.isExecutableFile(atPath: venv) { return venv }
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":") {
            let p = "\(dir)/python3"
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        return nil
    }

    /// Runs a command, returning its status and combined output.
    static func run(_ executable: String, _ arguments: [String], environment: [String: String] = [:], cwd: URL? = nil) throws -> (Int32, String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        p.environment = env
        if let cwd { p.currentDirectoryURL = cwd }
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        p.standardInput = FileHandle.nullDevice
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// Installs the two kernelspecs (signal and message interrupts) under `prefix`; returns JUPYTER_PATH.
    static func installKernels(_ prefix: URL) throws -> String {
        for extra in [[], ["--name", "tycho-message", "--interrupt-mode", "message"]] {
            let r = try TychoProcess.run(["kernel", "install", "--prefix", prefix.path] + extra)
            #expect(r.status == 0, "\(r.stderr)")
        }
        return prefix.appendingPathComponent("share/jupyter").path
    }
}

@Suite struct NotebookRunnerTests {
    typealias S = NotebookSupport

    @Test func runsCellsInOrderWithStreamsResultsDisplaysAndCounts() throws {
        let dir = try S.temporaryDirectory("nb")
        defer { try? FileManager.default.removeItem(at: dir) }
        let nb = dir.appendingPathComponent("a.ipynb")
        try S.write([
            ("print('hi', 1)\nio.write('x')\nio.stderr:write('err\\n')\nprint('bye')", []),
            ("x = 20\nx + 22", []),
            ("  \n", []),
            ("local t = {a = 1}\nt -- the table", []),
            ("display({{name = 'a', acc = 0.5}}, {columns = {'name', 'acc'}})", []),
            ("os.execute('echo from-child')", []),
            ("f = io.open('here.txt', 'w') f:write('ok') f:close()", []),
            ("print('skipped')", ["skip-execution"]),
            ("y = 1;", []),
        ], to: nb)
        let r = try TychoProcess.run(["notebook", "run", nb.path])
        #expect(r.status == 0, "\(r.stderr)")
        let cells = S.cells(try S.read(nb))
        let out0 = S.outputs(cells[0])
        #expect(out0.count == 3)
        #expect(out0.map { $0["name"] as? String } == ["stdout", "stderr", "stdout"])
        #expect(S.joined(out0[0]["text"]) == "hi\t1\nx")
        #expect(S.joined(out0[2]["text"]) == "bye\n")
        #expect(cells[0]["execution_count"] as? Int == 1)
        let result = S.outputs(cells[1])
        #expect(result.first?["output_type"] as? String == "execute_result")
        #expect(S.joined((result.first?["data"] as? [String: Any])?["text/plain"]) == "42")
        #expect(result.first?["execution_count"] as? Int == 2)
        #expect(cells[2]["execution_count"] is NSNull, "an empty cell is not executed (nbclient skips it too)")
        #expect(S.joined((S.outputs(cells[3]).first?["data"] as? [String: Any])?["text/plain"]) == "{a = 1}")
        #expect(cells[3]["execution_count"] as? Int == 3)
        let shown = S.outputs(cells[4]).first
        #expect(shown?["output_type"] as? String == "display_data")
        let html = S.joined((shown?["data"] as? [String: Any])?["text/html"])
        #expect(html.contains("<td style=\"text-align: right\">0.5000</td>"))
        #expect(S.joined(S.outputs(cells[5]).first?["text"]) == "from-child\n", "a child process's output lands in its cell")
        #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("here.txt").path), "cells run in the notebook's folder")
        #expect(cells[7]["execution_count"] is NSNull && S.outputs(cells[7]).isEmpty, "skip-execution")
        #expect(S.outputs(cells[8]).isEmpty, "a trailing ; shows nothing")
        let meta = try S.read(nb)["metadata"] as? [String: Any]
        #expect((meta?["kernelspec"] as? [String: Any])?["name"] as? String == "tycho")
        #expect((meta?["language_info"] as? [String: Any])?["name"] as? String == "lua")
    }

    @Test func stopsAtTheFirstErrorUnlessErrorsAreAllowed() throws {
        let dir = try S.temporaryDirectory("nb")
        defer { try? FileManager.default.removeItem(at: dir) }
        let nb = dir.appendingPathComponent("e.ipynb")
        let cells: [(String, [String])] = [("print('one')", []), ("error('boom')", []), ("io.read()", ["raises-exception"]), ("print('three')", [])]
        try S.write(cells, to: nb)
        let out = dir.appendingPathComponent("out.ipynb")
        let r = try TychoProcess.run(["notebook", "run", nb.path, "--output", out.path])
        #expect(r.status == 1)
        #expect(r.stderr.contains("cell 2 failed: LuaError: In[2]:1: boom"), "\(r.stderr)")
        var got = S.cells(try S.read(out))
        let err = S.outputs(got[1]).first
        #expect(err?["output_type"] as? String == "error" && err?["ename"] as? String == "LuaError")
        #expect((err?["evalue"] as? String) == "In[2]:1: boom")
        #expect((err?["traceback"] as? [String])?.first == "LuaError: In[2]:1: boom")
        #expect(got[3]["execution_count"] is NSNull && S.outputs(got[3]).isEmpty, "nothing runs after the error")
        #expect(S.outputs(try S.cells(S.read(nb))[0]).isEmpty, "--output leaves the input as it was")

        let r2 = try TychoProcess.run(["notebook", "run", nb.path, "--output", out.path, "--allow-errors"])
        #expect(r2.status == 0, "\(r2.stderr)")
        got = S.cells(try S.read(out))
        #expect((S.outputs(got[2]).first?["evalue"] as? String)?.contains("no standard input") == true, "io.read is an error, never a hang")
        #expect(S.joined(S.outputs(got[3]).first?["text"]) == "three\n")
        #expect(got[3]["execution_count"] as? Int == 4)

        // raises-exception lets that one cell fail without --allow-errors.
        try S.write([cells[2], cells[3]], to: nb)
        let r3 = try TychoProcess.run(["notebook", "run", nb.path])
        #expect(r3.status == 0, "\(r3.stderr)")
    }

    @Test func syntaxErrorsAndTimeouts() throws {
        let dir = try S.temporaryDirectory("nb")
        defer { try? FileManager.default.removeItem(at: dir) }
        let nb = dir.appendingPathComponent("t.ipynb")
        try S.write([("x = = 1", []), ("while true do end", []), ("print('after')", [])], to: nb)
        let started = Date()
        let r = try TychoProcess.run(["notebook", "run", nb.path, "--allow-errors", "--timeout", "0.5"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(Date().timeIntervalSince(started) < 30)
        let cells = S.cells(try S.read(nb))
        #expect(S.outputs(cells[0]).first?["ename"] as? String == "SyntaxError")
        #expect(S.outputs(cells[1]).first?["ename"] as? String == "CellTimeoutError")
        #expect(S.joined(S.outputs(cells[2]).first?["text"]) == "after\n", "the state survives an interrupted cell")
    }

    @Test func injectsParametersPapermillsWay() throws {
        let dir = try S.temporaryDirectory("nb")
        defer { try? FileManager.default.removeItem(at: dir) }
        let nb = dir.appendingPathComponent("p.ipynb")
        try S.write([("print('first')", []), ("n = 1\nname = 'a'", ["parameters"]), ("print(n, name, quick, rate)", [])], to: nb)
        let args = ["notebook", "run", nb.path, "--param", "n=3", "--param", "name=it's \"x\"", "--param", "quick=true", "--param", "rate=1e-3"]
        let r = try TychoProcess.run(args)
        #expect(r.status == 0, "\(r.stderr)")
        var book = try S.read(nb)
        var cells = S.cells(book)
        #expect(cells.count == 4)
        #expect(cells[2]["id"] as? String == "injected-parameters")
        #expect(((cells[2]["metadata"] as? [String: Any])?["tags"] as? [String]) == ["injected-parameters"])
        #expect(S.joined(cells[2]["source"]) == "-- Parameters\nn = 3\nname = \"it's \\\"x\\\"\"\nquick = true\nrate = 1e-3")
        #expect(S.joined(S.outputs(cells[3]).first?["text"]) == "3\tit's \"x\"\ttrue\t0.001\n")
        let params = ((book["metadata"] as? [String: Any])?["papermill"] as? [String: Any])?["parameters"] as? [String: Any]
        #expect(params?["n"] as? Int == 3 && params?["quick"] as? Bool == true)
        // A second injection replaces the first.
        let r2 = try TychoProcess.run(["notebook", "run", nb.path, "--param", "n=4"])
        #expect(r2.status == 0, "\(r2.stderr)")
        book = try S.read(nb)
        cells = S.cells(book)
        #expect(cells.count == 4)
        let printed = S.joined(S.outputs(cells[3]).first?["text"])
        #expect(printed.hasPrefix("4\ta\tnil"))
        // Without a parameters cell the injected cell comes first.
        try S.write([("print(n)", [])], to: nb)
        _ = try TychoProcess.run(["notebook", "run", nb.path, "--param", "n=5"])
        cells = S.cells(try S.read(nb))
        #expect(cells.first?["id"] as? String == "injected-parameters")
        #expect(S.joined(S.outputs(cells[1]).first?["text"]) == "5\n")
        let bad = try TychoProcess.run(["notebook", "run", nb.path, "--param", "not a name=1"])
        #expect(bad.status == 1)
    }

    @Test func rewritesAreStableAndNewNotebooksAreEmpty() throws {
        let dir = try S.temporaryDirectory("nb")
        defer { try? FileManager.default.removeItem(at: dir) }
        let nb = dir.appendingPathComponent("new.ipynb")
        let r = try TychoProcess.run(["notebook", "new", nb.path])
        #expect(r.status == 0, "\(r.stderr)")
        let fresh = try String(contentsOf: nb, encoding: .utf8)
        #expect(fresh.hasPrefix("{\n \"cells\": [\n  {\n   \"cell_type\": \"code\",\n"), "one-space indent, sorted keys")
        #expect(fresh.hasSuffix("}\n"))
        #expect(try TychoProcess.run(["notebook", "new", nb.path]).status == 1, "never overwrites without --force")
        try S.write([("print('line 1\\nline 2')\nt = {['é'] = 'ü'}\nt", [])], to: nb)
        #expect(try TychoProcess.run(["notebook", "run", nb.path]).status == 0)
        let once = try Data(contentsOf: nb)
        #expect(try TychoProcess.run(["notebook", "run", nb.path]).status == 0)
        #expect(try Data(contentsOf: nb) == once, "re-running an unchanged notebook writes the same bytes")
        let text = String(decoding: once, as: UTF8.self)
        #expect(text.contains("\"line 1\\n\",\n      \"line 2\\n\""), "stream text split in lines")
        #expect(text.contains("é"), "non-ASCII kept as it is")
    }
}

@Suite(.serialized) struct NotebookJupyterTests {
    typealias S = NotebookSupport

    @Test func kernelSpeaksTheProtocolToJupyterClient() throws {
        guard let python = S.python() else {
            print("NotebookJupyterTests: skipped: python3 is not installed (Scripts/test.sh installs nbformat, jupyter_client, nbclient for it)")
            return
        }
        let dir = try S.temporaryDirectory("kernel")
        defer { try? FileManager.default.removeItem(at: dir) }
        let jupyterPath = try S.installKernels(dir)
        let spec = try String(contentsOf: dir.appendingPathComponent("share/jupyter/kernels/tycho/kernel.json"), encoding: .utf8)
        #expect(spec.contains("\"{connection_file}\"") && spec.contains("\"interrupt_mode\": \"signal\""))
        let script = S.repo.appendingPathComponent("Tests/Notebooks/check_kernel.py").path
        let env = ["JUPYTER_PATH": jupyterPath, "JUPYTER_RUNTIME_DIR": dir.appendingPathComponent("runtime").path]
        let (status, output) = try S.run(python, [script], environment: env)
        #expect(status == 0, "check_kernel.py:\n\(output)")
        // jupyter_kernel_test's ready-made acceptance test.
        let conformance = S.repo.appendingPathComponent("Tests/Notebooks/kernel_conformance.py").path
        let (status2, output2) = try S.run(python, [conformance], environment: env)
        #expect(status2 == 0, "kernel_conformance.py:\n\(output2)")
    }

    @Test func everyNotebookRunsInTheRunnerAndThroughTheKernelWithTheSameOutputs() throws {
        let dir = try S.temporaryDirectory("notebooks")
        defer { try? FileManager.default.removeItem(at: dir) }
        // A copy of Notebooks/ beside a link to Scripts/, so the runs they make stay out of the repo.
        let fm = FileManager.default
        let work = dir.appendingPathComponent("Notebooks")
        try fm.createDirectory(at: work, withIntermediateDirectories: true)
        try fm.createSymbolicLink(at: dir.appendingPathComponent("Scripts"), withDestinationURL: S.repo.appendingPathComponent("Scripts"))
        try fm.createSymbolicLink(at: dir.appendingPathComponent("Tests"), withDestinationURL: S.repo.appendingPathComponent("Tests"))
        let source = S.repo.appendingPathComponent("Notebooks")
        let names = try fm.contentsOfDirectory(atPath: source.path).sorted()
        for n in names where !n.hasPrefix(".") && (n.hasSuffix(".ipynb") || n.hasSuffix(".lua") || n.hasSuffix(".jsonl")) {
            try fm.copyItem(at: source.appendingPathComponent(n), to: work.appendingPathComponent(n))
        }
        let notebooks = names.filter { $0.hasSuffix(".ipynb") }
        #expect(notebooks.count >= 2)
        let outDir = dir.appendingPathComponent("out")
        try fm.createDirectory(at: outDir, withIntermediateDirectories: true)
        var written: [String] = []
        for n in notebooks {
            let out = outDir.appendingPathComponent(n).path
            let started = Date()
            let r = try TychoProcess.run(["notebook", "run", work.appendingPathComponent(n).path, "--output", out, "--param", "quick=true"])
            #expect(r.status == 0, "\(n) failed in the runner:\n\(r.stderr)")
            #expect(Date().timeIntervalSince(started) < 120, "\(n) is quick with quick=true")
            if r.status == 0 { written.append(out) }
        }
        guard let python = S.python() else {
            print("NotebookJupyterTests: the nbformat and nbclient checks skipped: python3 is not installed")
            return
        }
        let jupyterPath = try S.installKernels(dir.appendingPathComponent("prefix"))
        let script = S.repo.appendingPathComponent("Tests/Notebooks/check_notebooks.py").path
        let (status, output) = try S.run(python, [script, "--cwd", work.path] + written,
                                         environment: ["JUPYTER_PATH": jupyterPath, "JUPYTER_RUNTIME_DIR": dir.appendingPathComponent("runtime").path])
        #expect(status == 0, "check_notebooks.py:\n\(output)")
    }
}

// NotebookCommand.swift: `tycho notebook run NB.ipynb [--output OUT.ipynb] [--timeout S] [--allow-errors]
// [--param NAME=VALUE ...]` and `tycho notebook new NAME.ipynb`.
// Exit status: 0 when every cell ran (or errors were allowed), 1 when a cell failed (the notebook is still
// written, with the error in that cell) or the notebook could not be read or written.

import ArgumentParser
import Foundation
import TychoLua

struct NotebookCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "notebook",
        abstract: "Run Jupyter notebooks headlessly, or make a new one.",
        subcommands: [NotebookRun.self, NotebookNew.self])
}

struct NotebookRun: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Execute a notebook's code cells in order and write their outputs.",
        discussion: "The cells run in one Lua state, in the notebook's folder, as the Jupyter kernel runs them. Without --output the notebook is rewritten in place.")

    @Argument(help: "The notebook (.ipynb, nbformat 4).")
    var notebook: String

    @Option(name: .shortAndLong, help: "Where to write the executed notebook (default: in place).")
    var output: String?

    @Option(help: "Seconds a cell may run before it is interrupted (default: none).")
    var timeout: Double?

    @Flag(help: "Go on after a cell fails (the error is kept in its outputs).")
    var allowErrors = false

    @Option(name: .customLong("param"), help: ArgumentHelp("A parameter, papermill's way: NAME=VALUE, injected after the cell tagged `parameters` (repeatable).", valueName: "NAME=VALUE"))
    var params: [String] = []

    func run() throws {
        var parameters: [(String, String)] = []
        for p in params {
            guard let eq = p.firstIndex(of: "=") else {
                reportError("--param \(p): expected NAME=VALUE")
                throw ExitCode(1)
            }
            parameters.append((String(p[..<eq]), String(p[p.index(after: eq)...])))
        }
        let inputURL = URL(fileURLWithPath: notebook).standardizedFileURL
        let outputURL = output.map { URL(fileURLWithPath: $0).standardizedFileURL } ?? inputURL
        var nb: Notebook
        do {
            nb = try Notebook.read(inputURL.path)
            if !parameters.isEmpty { try NotebookRunner.inject(parameters, into: &nb, inputPath: notebook, outputPath: output ?? notebook) }
        } catch {
            reportError("\(error)")
            throw ExitCode(1)
        }
        // The cells run in the notebook's folder, as Jupyter starts kernels there.
        let folder = inputURL.deletingLastPathComponent().path
        guard FileManager.default.changeCurrentDirectoryPath(folder) else {
            reportError("cannot enter \(folder)")
            throw ExitCode(1)
        }
        let capture = DescriptorCapture()
        let state = try makeState()
        let executor = CellExecutor(state: state)
        let io = CollectingIO(capture: capture)
        var runner = NotebookRunner()
        runner.allowErrors = allowErrors
        runner.timeout = timeout
        runner.log = { capture.log("notebook: " + $0) }
        let started = Date()
        let outcome = runner.run(nb, executor: executor, io: io)
        capture.sink = nil
        do { try outcome.notebook.write(to: outputURL.path) } catch {
            capture.log("tycho: \(error)")
            throw ExitCode(1)
        }
        let elapsed = NotebookRunner.seconds(Date().timeIntervalSince(started))
        if let e = outcome.error, let cell = outcome.failedCell {
            capture.log("tycho: \(notebook): cell \(cell + 1) failed: \(e.ename): \(e.evalue)\nwrote \(outputURL.path) (stopped after \(outcome.executed) cells, \(elapsed) s)")
            throw ExitCode(1)
        }
        capture.log("notebook: ran \(outcome.executed) cells in \(elapsed) s; wrote \(outputURL.path)")
    }
}

struct NotebookNew: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "new",
        abstract: "Make an empty Tycho notebook (the kernelspec `tycho`, one empty code cell).")

    @Argument(help: "The notebook to create (.ipynb).")
    var notebook: String

    @Flag(help: "Replace the file when it exists.")
    var force = false

    func run() throws {
        if FileManager.default.fileExists(atPath: notebook) && !force {
            reportError("\(notebook) exists (--force replaces it)")
            throw ExitCode(1)
        }
        let nb = Notebook(metadata: .object([("kernelspec", Notebook.kernelspec), ("language_info", Notebook.languageInfo)]),
                          cells: [Notebook.newCell(type: "code", source: "", id: Notebook.makeID(index: 0, source: "", taken: []))])
        do { try nb.write(to: notebook) } catch {
            reportError("\(error)")
            throw ExitCode(1)
        }
    }
}

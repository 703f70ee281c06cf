// NotebookRunner.swift: `tycho notebook run`: executes a notebook's code cells in order in one Lua state, as
// nbclient would through the kernel (the same CellExecutor, the same counts, the same skipped cells), and puts the
// outputs in the cells. Parameters are injected papermill's way (a cell tagged `injected-parameters` after the
// one tagged `parameters`, or first). Stops at the first error unless errors are allowed (or the cell is tagged
// `raises-exception`), as nbclient does; a per-cell timeout interrupts the cell.

import CLuaShim
import Foundation
import TychoLua
import TychoText
import TychoTrain

extension CellOutput {
    /// The output as nbformat stores it (and, without `output_type`, as the kernel's message content).
    func json(executionCount: Int?) -> JSONValue {
        switch self {
        case .stream(let name, let text):
            return .object([("name", .string(name)), ("output_type", .string("stream")), ("text", .string(text))])
        case .displayData(let b):
            return .object([("data", b.json), ("metadata", .object([])), ("output_type", .string("display_data"))])
        case .executeResult(let b):
            return .object([("data", b.json), ("execution_count", executionCount.map { .int($0) } ?? .null), ("metadata", .object([])),
                            ("output_type", .string("execute_result"))])
        case .error(let e):
            return .object([("ename", .string(e.ename)), ("evalue", .string(e.evalue)), ("output_type", .string("error")),
                            ("traceback", .array(e.traceback.map { .string($0) }))])
        }
    }
}

extension MimeBundle {
    var json: JSONValue { .object(data.map { ($0.0, .string($0.1)) }) }
}

/// Collects one cell's outputs, merging consecutive stream pieces of the same name (as they would read).
final class CollectingIO: CellIO {
    private let lock = NSLock()
    private(set) var outputs: [CellOutput] = []
    weak var capture: DescriptorCapture?

    init(capture: DescriptorCapture?) {
        self.capture = capture
        capture?.sink = { [weak self] fd, text in self?.append(.stream(name: fd == STDERR_FILENO ? "stderr" : "stdout", text: text)) }
    }

    func output(_ output: CellOutput) {
        capture?.drain()
        append(output)
    }

    func append(_ output: CellOutput) {
        lock.lock()
        defer { lock.unlock() }
        if case .stream(let name, let text) = output, case .stream(let last, let before)? = outputs.last, last == name {
            outputs[outputs.count - 1] = .stream(name: name, text: before + text)
        } else {
            outputs.append(output)
        }
    }

    /// The outputs so far (after draining the descriptors), and a fresh start.
    func take() -> [CellOutput] {
        capture?.drain()
        lock.lock()
        defer { lock.unlock() }
        let out = outputs
        outputs = []
        return out
    }

    var allowsInput: Bool { false }
    func readInput(prompt: String, password: Bool) -> String? { nil }
}

struct NotebookRunner {
    var allowErrors = false
    var timeout: Double?
    var parameters: [(String, String)] = []
    var log: (String) -> Void = { _ in }

    struct Outcome {
        var notebook: Notebook
        var executed = 0
        var failedCell: Int?
        var error: CellError?
    }

    // MARK: parameters (papermill's convention, with Lua assignments)

    /// A parameter's value as Lua source and as JSON (papermill's CLI rules: numbers, booleans, nil, else a string).
    static func parameterValue(_ raw: String) -> (lua: String, json: JSONValue) {
        switch raw {
        case "true": return ("true", .bool(true))
        case "false": return ("false", .bool(false))
        case "nil": return ("nil", .null)
        default: break
        }
        if let i = Int(raw) { return (raw, .int(i)) }
        if let d = Double(raw), d.isFinite, raw.first.map({ $0.isNumber || $0 == "-" || $0 == "." || $0 == "+" }) == true {
            return (raw.hasPrefix("+") ? String(raw.dropFirst()) : raw, .double(d))
        }
        var q = "\""
        for u in raw.unicodeScalars {
            switch u {
            case "\"": q += "\\\""
            case "\\": q += "\\\\"
            case "\n": q += "\\n"
            case "\r": q += "\\r"
            default: if u.value < 32 { q += "\\\(u.value)" } else { q.unicodeScalars.append(u) }
            }
        }
        return (q + "\"", .string(raw))
    }

    static func tags(_ cell: JSONValue) -> [String] { cell["metadata"]?["tags"]?.arrayValue?.compactMap(\.stringValue) ?? [] }

    /// Puts the injected-parameters cell in place (replacing one left by an earlier run).
    static func inject(_ parameters: [(String, String)], into nb: inout Notebook, inputPath: String, outputPath: String) throws {
        for (name, _) in parameters where !isLuaName(name) {
            throw NotebookError("--param \(name)=...: not a Lua name")
        }
        nb.cells.removeAll { tags($0).contains("injected-parameters") }
        let values = parameters.map { ($0.0, parameterValue($0.1)) }
        let source = (["-- Parameters"] + values.map { "\($0.0) = \($0.1.lua)" }).joined(separator: "\n")
        let at = nb.cells.firstIndex { tags($0).contains("parameters") }.map { $0 + 1 } ?? 0
        var taken = Set(nb.cells.compactMap { $0["id"]?.stringValue })
        let id = taken.contains("injected-parameters") ? Notebook.makeID(index: at, source: source, taken: taken) : "injected-parameters"
        taken.insert(id)
        nb.cells.insert(Notebook.newCell(type: "code", source: source, id: id, tags: ["injected-parameters"]), at: at)
        let defaults: JSONValue = .object([])
        nb.metadata = nb.metadata.setting("papermill", .object([
            ("default_parameters", defaults), ("input_path", .string(inputPath)), ("output_path", .string(outputPath)),
            ("parameters", .object(values.map { ($0.0, $0.1.json) })),
        ]))
    }

    static func isLuaName(_ s: String) -> Bool {
        guard let f = s.unicodeScalars.first, f == "_" || (f.isASCII && CharacterSet.letters.contains(f)) else { return false }
        return s.unicodeScalars.allSatisfy { $0 == "_" || ($0.isASCII && CharacterSet.alphanumerics.contains($0)) }
    }

    // MARK: running

    /// Runs the notebook's code cells with `executor`; outputs land in the returned notebook.
    func run(_ input: Notebook, executor: CellExecutor, io: CollectingIO) -> Outcome {
        var outcome = Outcome(notebook: input)
        executor.io = io
        let codeCells = input.cells.indices.filter { input.cells[$0]["cell_type"]?.stringValue == "code" }
        // Every cell that will run starts clean (papermill's rule: no stale output survives a stop).
        for i in codeCells where !NotebookRunner.tags(input.cells[i]).contains("skip-execution") {
            outcome.notebook.cells[i] = input.cells[i].setting("outputs", .array([])).setting("execution_count", .null)
        }
        var count = 0
        let timer = CellTimer()
        for (k, i) in codeCells.enumerated() {
            let cell = input.cells[i]
            let tags = NotebookRunner.tags(cell)
            let source = cell["source"]?.stringValue ?? ""
            if tags.contains("skip-execution") || source.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { continue }
            count += 1
            let started = Date()
            timer.start(timeout)
            var error = executor.execute(source, name: "In[\(count)]")
            let timedOut = timer.stop()
            var outputs = io.take()
            if timedOut, error != nil {
                let e = CellError(ename: "CellTimeoutError", evalue: "the cell ran longer than the timeout of \(NotebookRunner.seconds(timeout ?? 0)) s",
                                  traceback: ["CellTimeoutError: the cell ran longer than the timeout of \(NotebookRunner.seconds(timeout ?? 0)) s"])
                outputs = outputs.map { if case .error = $0 { return .error(e) }; return $0 }
                error = e
            }
            outcome.executed += 1
            outcome.notebook.cells[i] = cell.setting("outputs", .array(outputs.map { $0.json(executionCount: count) })).setting("execution_count", .int(count))
            let elapsed = Date().timeIntervalSince(started)
            log("cell \(k + 1)/\(codeCells.count) In[\(count)] \(error == nil ? "ok" : "error") \(NotebookRunner.seconds(elapsed)) s")
            if let error, !(allowErrors || tags.contains("raises-exception")) {
                outcome.failedCell = i
                outcome.error = error
                break
            }
        }
        outcome.notebook.metadata = outcome.notebook.metadata.setting("kernelspec", Notebook.kernelspec).setting("language_info", Notebook.languageInfo)
        return outcome
    }

    static func seconds(_ s: Double) -> String { String(format: s < 10 ? "%.2f" : "%.1f", s) }
}

/// Interrupts the running cell when its time is up.
final class CellTimer {
    private let lock = NSLock()
    private var generation = 0
    private var fired = false

    func start(_ timeout: Double?) {
        lock.lock()
        generation += 1
        fired = false
        let g = generation
        lock.unlock()
        guard let timeout, timeout > 0 else { return }
        DispatchQueue.global().asyncAfter(deadline: .now() + timeout) { [weak self] in
            guard let self else { return }
            self.lock.lock()
            defer { self.lock.unlock() }
            guard self.generation == g else { return }
            self.fired = true
            tycho_interrupt_request()
        }
    }

    /// Ends the cell's clock; true when it had fired.
    func stop() -> Bool {
        lock.lock()
        defer { lock.unlock() }
        generation += 1
        return fired
    }
}

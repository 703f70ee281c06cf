// Kernel.swift: `tycho kernel -f CONNECTION_FILE`, a Jupyter kernel in the Tycho process (xeus's design: native,
// in-process, on libzmq). Sockets: shell (ROUTER) served by the main thread, which owns the Lua state and runs
// cells through the same CellExecutor as `tycho notebook run`; control (ROUTER) on its own thread, so shutdown and
// interrupt work while a cell runs; heartbeat (REP) echoing on its own thread; iopub (PUB) shared under a lock;
// stdin (ROUTER) for io.read's input_request. Status busy/idle surrounds every request. Stream output is buffered
// and published as it comes (at least every 50 ms). Interrupts: SIGINT (interrupt_mode "signal") or
// interrupt_request on control ("message"); both set the Lua hook that raises "interrupted!".
// What it refuses: messages with a bad or replayed signature and malformed frames are logged and ignored; no user
// code and no message ends the process except shutdown_request.

import CLuaShim
import CZMQ
import Foundation
import TychoLua
import TychoText
import TychoTrain

final class Kernel {
    let session: KernelSession
    let context: ZMQContext
    let shell, control, iopub, stdin, heartbeat: ZMQSocket
    let capture: DescriptorCapture
    let state: LuaState
    let executor: CellExecutor
    private(set) var io: KernelIO!
    var executionCount = 0
    /// This session's inputs (execution count, code, the result's text), for history_request (session 0 is the
    /// current one).
    var history: [(line: Int, code: String, output: String?)] = []
    let kernelID = UUID().uuidString.lowercased()
    private let iopubLock = NSLock()
    private var iopubOpen = true
    private let flagLock = NSLock()
    private var stopping = false
    private let controlDone = DispatchSemaphore(value: 0)
    private let heartbeatDone = DispatchSemaphore(value: 0)

    static let banner = "Tycho \(LuaState.version) (Lua 5.4): a Lua workbench for preference-optimization research. help() lists the modules."

    init(connection: ConnectionInfo, capture: DescriptorCapture) throws {
        self.capture = capture
        session = KernelSession(key: connection.key)
        context = try ZMQContext()
        shell = try ZMQSocket(context, type: ZMQ_ROUTER)
        control = try ZMQSocket(context, type: ZMQ_ROUTER)
        stdin = try ZMQSocket(context, type: ZMQ_ROUTER)
        iopub = try ZMQSocket(context, type: ZMQ_PUB)
        heartbeat = try ZMQSocket(context, type: ZMQ_REP)
        for (socket, channel) in [(shell, "shell"), (control, "control"), (stdin, "stdin"), (iopub, "iopub"), (heartbeat, "hb")] {
            try socket.bind(connection.endpoint(channel))
        }
        state = try LuaState()
        executor = CellExecutor(state: state)
        session.log = { [capture] in capture.log("tycho kernel: " + $0) }
        io = KernelIO(kernel: self)
        executor.io = io
        capture.sink = { [weak self] fd, text in
            guard let self else { return }
            if !self.io.appendStream(fd == STDERR_FILENO ? "stderr" : "stdout", text) { capture.log(text) }
        }
    }

    var isStopping: Bool {
        flagLock.lock()
        defer { flagLock.unlock() }
        return stopping
    }

    func log(_ message: String) { capture.log("tycho kernel: " + message) }

    // MARK: sending

    func publish(_ type: String, _ content: JSONValue, parent: KernelMessage?) {
        iopubLock.lock()
        defer { iopubLock.unlock() }
        guard iopubOpen else { return }
        let topic = Array("kernel.\(kernelID).\(type)".utf8)
        iopub.send([topic] + session.frames(type, content: content, parent: parent, identities: []))
    }

    func status(_ s: String, parent: KernelMessage?) {
        publish("status", .object([("execution_state", .string(s))]), parent: parent)
    }

    func reply(_ socket: ZMQSocket, to msg: KernelMessage, _ content: JSONValue) {
        let type = msg.type.hasSuffix("_request") ? String(msg.type.dropLast("_request".count)) + "_reply" : msg.type + "_reply"
        socket.send(session.frames(type, content: content, parent: msg, identities: msg.identities))
    }

    // MARK: the threads

    /// Serves until shutdown_request; returns when the sockets are closed.
    func run() {
        tycho_interrupt_set_persistent(1)
        let hb = heartbeat
        let hbDone = heartbeatDone
        Thread {
            while let frames = hb.receive() { hb.send(frames) }
            hb.close()
            hbDone.signal()
        }.start()
        Thread { [self] in controlLoop() }.start()
        Thread { [weak self] in
            while let self, !self.isStopping {
                self.io.flush()
                usleep(50_000)
            }
        }.start()
        status("starting", parent: nil)
        log("started (\(Kernel.banner.prefix(20))...), session \(session.session)")
        while !isStopping {
            guard shell.poll(milliseconds: 100) else { continue }
            guard let frames = shell.receive() else { break }
            guard let msg = session.parse(frames) else { continue }
            handleShell(msg)
        }
        finish()
    }

    private func controlLoop() {
        while !isStopping, let frames = control.receive() {
            guard let msg = session.parse(frames) else { continue }
            status("busy", parent: msg)
            switch msg.type {
            case "shutdown_request":
                let restart = msg.content["restart"]?.boolValue ?? false
                let content: JSONValue = .object([("restart", .bool(restart)), ("status", .string("ok"))])
                reply(control, to: msg, content)
                publish("shutdown_reply", content, parent: msg)
                status("idle", parent: msg)
                requestStop()
            case "interrupt_request":
                tycho_interrupt_request()
                reply(control, to: msg, .object([("status", .string("ok"))]))
            case "kernel_info_request":
                reply(control, to: msg, kernelInfo)
            default:
                log("ignored \(msg.type) on control")
            }
            if !isStopping { status("idle", parent: msg) }
        }
        control.close()
        controlDone.signal()
    }

    /// Ends the shell loop: interrupts a running cell, and leaves at once after 3 s if the cell does not return.
    func requestStop() {
        flagLock.lock()
        stopping = true
        flagLock.unlock()
        tycho_interrupt_request()
        DispatchQueue.global().asyncAfter(deadline: .now() + 3) { _exit(0) }
    }

    private func finish() {
        io.flush()
        shell.close()
        stdin.close()
        _ = controlDone.wait(timeout: .now() + 1)
        iopubLock.lock()
        iopubOpen = false
        iopub.close()
        iopubLock.unlock()
        context.shutdown()
        _ = heartbeatDone.wait(timeout: .now() + 1)
        log("shut down")
    }

    // MARK: shell requests

    func handleShell(_ msg: KernelMessage) {
        status("busy", parent: msg)
        defer { status("idle", parent: msg) }
        switch msg.type {
        case "kernel_info_request": reply(shell, to: msg, kernelInfo)
        case "execute_request": execute(msg)
        case "is_complete_request":
            let code = msg.content["code"]?.stringValue ?? ""
            let c = executor.completeness(code)
            var content: [(String, JSONValue)] = [("status", .string(c.rawValue))]
            if c == .incomplete { content.append(("indent", .string(""))) }
            reply(shell, to: msg, .object(content))
        case "complete_request":
            let code = msg.content["code"]?.stringValue ?? ""
            let cursor = msg.content["cursor_pos"]?.intValue ?? code.unicodeScalars.count
            let r = executor.completions(code, cursor: cursor)
            reply(shell, to: msg, .object([("cursor_end", .int(r.end)), ("cursor_start", .int(r.start)),
                                           ("matches", .array(r.matches.map { .string($0) })), ("metadata", .object([])), ("status", .string("ok"))]))
        case "inspect_request":
            let code = msg.content["code"]?.stringValue ?? ""
            let cursor = msg.content["cursor_pos"]?.intValue ?? code.unicodeScalars.count
            let text = executor.inspect(code, cursor: cursor)
            reply(shell, to: msg, .object([("data", text.map { .object([("text/plain", .string($0))]) } ?? .object([])),
                                           ("found", .bool(text != nil)), ("metadata", .object([])), ("status", .string("ok"))]))
        case "history_request":
            let withOutput = msg.content["output"]?.boolValue ?? false
            reply(shell, to: msg, .object([("history", .array(historyEntries(msg.content).map { e in
                .array([.int(0), .int(e.line), withOutput ? .array([.string(e.code), e.output.map { .string($0) } ?? .null]) : .string(e.code)])
            })), ("status", .string("ok"))]))
        case "comm_info_request":
            reply(shell, to: msg, .object([("comms", .object([])), ("status", .string("ok"))]))
        case "shutdown_request":
            let restart = msg.content["restart"]?.boolValue ?? false
            let content: JSONValue = .object([("restart", .bool(restart)), ("status", .string("ok"))])
            reply(shell, to: msg, content)
            publish("shutdown_reply", content, parent: msg)
            requestStop()
        default:
            log("ignored \(msg.type) on shell")
        }
    }

    /// The entries a history_request asks for: `tail` (the last n), `range` (lines start..<stop of session 0 or
    /// this session) or `search` (a glob pattern, the last n, `unique` dropping repeats).
    func historyEntries(_ c: JSONValue) -> [(line: Int, code: String, output: String?)] {
        let n = c["n"]?.intValue
        func last(_ xs: [(line: Int, code: String, output: String?)]) -> [(line: Int, code: String, output: String?)] { n.map { Array(xs.suffix(max($0, 0))) } ?? xs }
        switch c["hist_access_type"]?.stringValue {
        case "tail": return last(history)
        case "range":
            let session = c["session"]?.intValue ?? 0
            guard session == 0 || session == 1 else { return [] }
            let start = c["start"]?.intValue ?? 1
            let stop = c["stop"]?.intValue ?? Int.max
            return history.filter { $0.line >= start && $0.line < stop }
        case "search":
            let pattern = c["pattern"]?.stringValue ?? "*"
            var found = history.filter { fnmatch(pattern, $0.code, 0) == 0 }
            if c["unique"]?.boolValue == true {
                var seen = Set<String>()
                found = found.reversed().filter { seen.insert($0.code).inserted }.reversed()
            }
            return last(found)
        default: return []
        }
    }

    var kernelInfo: JSONValue {
        .object([
            ("banner", .string(Kernel.banner)), ("debugger", .bool(false)), ("help_links", .array([])),
            ("implementation", .string("tycho")), ("implementation_version", .string(LuaState.version)),
            ("language_info", Notebook.languageInfo), ("protocol_version", .string(KernelSession.protocolVersion)),
            ("status", .string("ok")), ("supported_features", .array([])),
        ])
    }

    func execute(_ msg: KernelMessage) {
        let code = msg.content["code"]?.stringValue ?? ""
        let silent = msg.content["silent"]?.boolValue ?? false
        let storeHistory = silent ? false : (msg.content["store_history"]?.boolValue ?? true)
        let stopOnError = msg.content["stop_on_error"]?.boolValue ?? true
        if storeHistory {
            executionCount += 1
            history.append((executionCount, code, nil))
        }
        if !silent { publish("execute_input", .object([("code", .string(code)), ("execution_count", .int(executionCount))]), parent: msg) }
        io.begin(msg, silent: silent, allowStdin: msg.content["allow_stdin"]?.boolValue ?? false)
        let error = executor.execute(code, name: "In[\(executionCount)]")
        io.end()
        var content: [(String, JSONValue)] = [("execution_count", .int(executionCount)), ("payload", .array([])),
                                               ("user_expressions", userExpressions(msg.content["user_expressions"]))]
        if let error {
            content += [("ename", .string(error.ename)), ("evalue", .string(error.evalue)), ("status", .string("error")),
                        ("traceback", .array(error.traceback.map { .string($0) }))]
        } else {
            content.append(("status", .string("ok")))
        }
        // Requests queued behind a failed cell are aborted before its reply goes out, so that nothing the client
        // sends after seeing the error is caught by the abort.
        if error != nil && stopOnError && !silent { abortQueued() }
        reply(shell, to: msg, .object(content))
    }

    func userExpressions(_ v: JSONValue?) -> JSONValue {
        guard let kv = v?.objectValue else { return .object([]) }
        return .object(kv.map { name, expr in
            switch executor.evaluate(expr.stringValue ?? "") {
            case .success(let text):
                return (name, .object([("data", .object([("text/plain", .string(text))])), ("metadata", .object([])), ("status", .string("ok"))]))
            case .failure(let e):
                return (name, .object([("ename", .string(e.ename)), ("evalue", .string(e.evalue)), ("status", .string("error")),
                                       ("traceback", .array(e.traceback.map { .string($0) }))]))
            }
        })
    }

    /// After a failed cell, the execute_requests already waiting are answered `aborted` (ipykernel's rule, which
    /// JupyterLab's Run All relies on); other requests waiting are served.
    func abortQueued() {
        while shell.poll(milliseconds: 0), let frames = shell.receive() {
            guard let msg = session.parse(frames) else { continue }
            guard msg.type == "execute_request" else { handleShell(msg); continue }
            status("busy", parent: msg)
            reply(shell, to: msg, .object([("execution_count", .int(executionCount)), ("status", .string("aborted"))]))
            status("idle", parent: msg)
        }
    }

    // MARK: stdin

    /// Asks the front end for a line (input_request on stdin); nil when interrupted or shutting down.
    func requestInput(prompt: String, password: Bool, parent: KernelMessage) -> String? {
        stdin.send(session.frames("input_request", content: .object([("password", .bool(password)), ("prompt", .string(prompt))]),
                                  parent: parent, identities: parent.identities))
        let interrupts = tycho_interrupt_count()
        while !isStopping && tycho_interrupt_count() == interrupts {
            guard stdin.poll(milliseconds: 100) else { continue }
            guard let frames = stdin.receive() else { return nil }
            guard let reply = session.parse(frames), reply.type == "input_reply" else { continue }
            return reply.content["value"]?.stringValue ?? ""
        }
        return nil
    }
}

/// The kernel's side of a running cell: outputs to iopub with the request as parent, streams buffered.
final class KernelIO: CellIO {
    unowned let kernel: Kernel
    private let lock = NSLock()
    private var parent: KernelMessage?
    private var silent = false
    private var stdinAllowed = false
    private var streamName = ""
    private var streamText = ""

    init(kernel: Kernel) { self.kernel = kernel }

    func begin(_ msg: KernelMessage, silent: Bool, allowStdin: Bool) {
        kernel.capture.drain()  // stray output from before belongs to no cell
        lock.lock()
        parent = msg
        self.silent = silent
        stdinAllowed = allowStdin
        lock.unlock()
    }

    func end() {
        kernel.capture.drain()
        flush()
        lock.lock()
        parent = nil
        lock.unlock()
    }

    func output(_ output: CellOutput) {
        kernel.capture.drain()
        if case .stream(let name, let text) = output {
            _ = appendStream(name, text)
            return
        }
        flush()
        lock.lock()
        let parent = self.parent, silent = self.silent
        lock.unlock()
        guard let parent, !silent else { return }
        switch output {
        case .stream: break
        case .displayData(let b):
            kernel.publish("display_data", .object([("data", b.json), ("metadata", .object([])), ("transient", .object([]))]), parent: parent)
        case .executeResult(let b):
            if let i = kernel.history.indices.last, kernel.history[i].line == kernel.executionCount { kernel.history[i].output = b["text/plain"] }
            kernel.publish("execute_result", .object([("data", b.json), ("execution_count", .int(kernel.executionCount)), ("metadata", .object([]))]), parent: parent)
        case .error(let e):
            kernel.publish("error", .object([("ename", .string(e.ename)), ("evalue", .string(e.evalue)),
                                             ("traceback", .array(e.traceback.map { .string($0) }))]), parent: parent)
        }
    }

    /// Adds stream text to the buffer; false when no cell is running (the caller logs it instead).
    @discardableResult
    func appendStream(_ name: String, _ text: String) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        guard parent != nil else { return false }
        if name != streamName { flushLocked() }
        streamName = name
        streamText += text
        if streamText.utf8.count > 1 << 16 { flushLocked() }
        return true
    }

    func flush() {
        lock.lock()
        flushLocked()
        lock.unlock()
    }

    private func flushLocked() {
        guard !streamText.isEmpty else { return }
        if let parent, !silent {
            kernel.publish("stream", .object([("name", .string(streamName)), ("text", .string(streamText))]), parent: parent)
        }
        streamText = ""
    }

    var allowsInput: Bool {
        lock.lock()
        defer { lock.unlock() }
        return stdinAllowed && parent != nil
    }

    func readInput(prompt: String, password: Bool) -> String? {
        flush()
        lock.lock()
        let parent = self.parent
        lock.unlock()
        guard let parent else { return nil }
        return kernel.requestInput(prompt: prompt, password: password, parent: parent)
    }
}

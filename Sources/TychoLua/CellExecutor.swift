// CellExecutor.swift: runs notebook cells in one LuaState: the single evaluation path of the notebook runner
// (`tycho notebook run`) and the Jupyter kernel (`tycho kernel`), so the two cannot give different outputs.
//
// A cell runs as lua.c runs a line, widened to a cell: `return <cell>` is tried first; otherwise, when the cell's
// last statement is an expression, the statements before it run and its value is the cell's result (as IPython
// shows a trailing expression). A trailing `;` suppresses the result. The call has a traceback handler and Ctrl-C
// armed. Output never reaches the process's descriptors: `print`, `io.write`, `io.stdout`/`io.stderr` writes and
// `io.stdin` reads are routed to the executor's `CellIO` (a C stdio stream with callbacks swapped into Lua's own
// file handles, so every path through the io library is seen in order). `display(x)` sends rich output.
// What it refuses: `os.exit` (it would take the kernel down), and `io.read` where the front end allows no input
// (nbclient never does): that is a Lua error, never a hang.

import CLua
import CLuaShim
import Foundation

/// A MIME bundle: (type, text) pairs in the order they were produced.
public struct MimeBundle: Equatable {
    public var data: [(String, String)]
    public init(_ data: [(String, String)]) { self.data = data }
    public subscript(mime: String) -> String? { data.first { $0.0 == mime }?.1 }
    public static func == (a: MimeBundle, b: MimeBundle) -> Bool {
        a.data.count == b.data.count && zip(a.data, b.data).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
    }
}

/// A Lua error as Jupyter shows it.
public struct CellError: Error, Equatable {
    public var ename: String
    public var evalue: String
    public var traceback: [String]
    public init(ename: String, evalue: String, traceback: [String]) {
        self.ename = ename
        self.evalue = evalue
        self.traceback = traceback
    }
}

/// One output of a cell, in nbformat's four kinds (`execute_result` gets its count from the caller).
public enum CellOutput: Equatable {
    case stream(name: String, text: String)
    case displayData(MimeBundle)
    case executeResult(MimeBundle)
    case error(CellError)
}

/// Where a cell's outputs go, and where its input comes from.
public protocol CellIO: AnyObject {
    /// Called as outputs happen (streams in pieces, as written).
    func output(_ output: CellOutput)
    /// False where no input can be asked for (the headless runner, nbclient's `allow_stdin = False`).
    var allowsInput: Bool { get }
    /// One line typed by the user (without its newline), or nil for end of input.
    func readInput(prompt: String, password: Bool) -> String?
}

public final class CellExecutor {
    public let state: LuaState
    public weak var io: CellIO?
    var lua: Lua { state.lua }
    /// Lua functions installed by this executor (Lua holds them unretained).
    private var functions: [LuaFunction] = []
    private var captured: [(handle: String, original: UnsafeMutablePointer<FILE>, mine: UnsafeMutablePointer<FILE>)] = []
    private var stdinFile: UnsafeMutablePointer<FILE>?
    /// Bytes of a UTF-8 sequence cut by a write, per stream, kept for the next write.
    private var pending: [Int32: [UInt8]] = [:]
    private var inputBuffer: [UInt8] = []

    /// Installs the capture, `print`, `display`, the stdin guard and the `os.exit` guard in `state`.
    public init(state: LuaState) {
        self.state = state
        installFunctions()
        installStreams()
    }

    deinit {
        let top = lua.top
        for c in captured {
            lua.pushGlobals()
            if lua.rawGet(-1, field: "io") == LUA_TTABLE, lua.rawGet(-1, field: c.handle) == LUA_TUSERDATA {
                _ = tycho_file_handle_swap(lua.L, -1, c.original)
            }
            lua.top = top
            fclose(c.mine)
        }
    }

    // MARK: running a cell

    /// Runs `code` as a cell; outputs go to `io` as they happen. Returns the error (already sent to `io` as an
    /// `error` output), or nil. `name` is the chunk name in messages (`In[3]:2: ...`).
    @discardableResult
    public func execute(_ code: String, name: String) -> CellError? {
        let chunkName = "=" + name
        let base = lua.top
        defer {
            flushPending()
            lua.top = base
        }
        guard let showsResult = compile(code, chunkName: chunkName) else {
            // Not valid Lua: the statement parser's message is the one to show.
            let message = state.load(code, chunkName: chunkName) ?? "syntax error"
            let e = CellError(ename: "SyntaxError", evalue: message, traceback: ["SyntaxError: " + message])
            io?.output(.error(e))
            return e
        }
        tycho_interrupt_arm(lua.L)
        let failure = lua.protectedCall(nargs: 0)
        tycho_interrupt_disarm()
        flushPending()
        if let failure {
            let e = CellExecutor.cellError(failure)
            io?.output(.error(e))
            return e
        }
        let n = lua.top - base
        if n > 0 && showsResult {
            let parts = (1...n).map { state.pretty(base + $0) }
            let text = parts.joined(separator: parts.contains { $0.contains("\n") } ? "\n" : "\t")
            rememberLast(base + 1)
            io?.output(.executeResult(MimeBundle([("text/plain", text)])))
        }
        return nil
    }

    /// Compiles the cell and leaves its chunk on the stack; returns whether its results are shown (not after a
    /// trailing `;`), or nil when the cell is not valid Lua (nothing pushed).
    private func compile(_ code: String, chunkName: String) -> Bool? {
        let trimmed = code.trimmingCharacters(in: .whitespacesAndNewlines)
        let suppress = trimmed.hasSuffix(";")
        if !suppress, state.load("return \(code);", chunkName: chunkName) == nil { return true }
        let statements = state.load(code, chunkName: chunkName) == nil
        if statements { lua.pop() }
        if !suppress, let joined = trailingExpression(code, chunkName: chunkName),
           state.load(joined, chunkName: chunkName) == nil { return true }
        guard statements, state.load(code, chunkName: chunkName) == nil else { return nil }
        return !suppress
    }

    /// The cell rewritten to return its trailing expression: the shortest tail of lines that is an expression
    /// while the lines before it are complete statements (blank and comment lines at the end stay after the
    /// `return`). Nil when the cell does not end with an expression.
    private func trailingExpression(_ code: String, chunkName: String) -> String? {
        var lines = code.components(separatedBy: "\n")
        var trailer: [String] = []
        while let last = lines.last, CellExecutor.isBlankOrComment(last) { trailer.insert(lines.removeLast(), at: 0) }
        guard !lines.isEmpty else { return nil }
        for k in 1...lines.count {
            let head = lines[..<(lines.count - k)].joined(separator: "\n")
            let tail = lines[(lines.count - k)...].joined(separator: "\n")
            guard state.load("return \(tail)\n;", chunkName: chunkName) == nil else { continue }
            lua.pop()
            guard state.load(head, chunkName: chunkName) == nil else { continue }
            lua.pop()
            return head + (head.isEmpty ? "" : "\n") + "return \(tail)\n;" + (trailer.isEmpty ? "" : "\n" + trailer.joined(separator: "\n"))
        }
        return nil
    }

    static func isBlankOrComment(_ line: String) -> Bool {
        let t = line.trimmingCharacters(in: .whitespaces)
        return t.isEmpty || (t.hasPrefix("--") && !t.hasPrefix("--[["))
    }

    /// A Lua error message with its traceback, as Jupyter's ename / evalue / traceback lines.
    static func cellError(_ message: String) -> CellError {
        var parts = message.components(separatedBy: "\nstack traceback:\n")
        let evalue = parts.removeFirst()
        var frames = parts.first.map { $0.components(separatedBy: "\n") } ?? []
        // The last frames are the executor's own call ("[C]: in ?").
        while let last = frames.last, last.trimmingCharacters(in: .whitespaces) == "[C]: in ?" { frames.removeLast() }
        let ename = evalue.hasSuffix("interrupted!") ? "Interrupted" : "LuaError"
        var traceback = ["\(ename): \(evalue)"]
        if !frames.isEmpty {
            traceback.append("stack traceback:")
            traceback += frames.map { $0.hasPrefix("\t") ? "  " + $0.dropFirst() : $0 }
        }
        return CellError(ename: ename, evalue: evalue, traceback: traceback)
    }

    /// `_LAST` holds the cell's first result, as in the REPL.
    private func rememberLast(_ idx: Int32) {
        let i = lua.absolute(idx)
        lua.pushGlobals()
        lua.pushValue(i)
        lua.rawSet(-2, field: "_LAST")
        lua.pop()
    }

    /// The value of `expression` as the REPL prints it, without outputs (the kernel's user_expressions).
    public func evaluate(_ expression: String) -> Result<String, CellError> {
        let top = lua.top
        defer { lua.top = top }
        if let e = state.load("return \(expression);", chunkName: "=expression") {
            return .failure(CellError(ename: "SyntaxError", evalue: e, traceback: ["SyntaxError: " + e]))
        }
        if let e = lua.protectedCall(nargs: 0) { return .failure(CellExecutor.cellError(e)) }
        let n = lua.top - top
        return .success(n > 0 ? (1...n).map { state.pretty(top + $0) }.joined(separator: "\t") : "")
    }

    // MARK: completeness, completion, inspection (the REPL's rules)

    public enum Completeness: String { case complete, incomplete, invalid }

    /// `complete` when the code compiles (as an expression or statements), `incomplete` when it only lacks its
    /// end (the parser stopped at `<eof>`, as lua.c's continuation rule), else `invalid`.
    public func completeness(_ code: String) -> Completeness {
        let top = lua.top
        defer { lua.top = top }
        if code.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { return .complete }
        if state.load("return \(code);", chunkName: "=cell") == nil { return .complete }
        guard let e = state.load(code, chunkName: "=cell") else { return .complete }
        if e.hasSuffix("<eof>") { return .incomplete }
        // An expression cut short (`1 +`) ends at <eof> only without the `;` the expression rule adds.
        let asExpression = state.load("return \(code)", chunkName: "=cell")
        return asExpression?.hasSuffix("<eof>") == true ? .incomplete : .invalid
    }

    /// Completions at `cursor` (in Unicode scalars): full replacements of the text from `start` to `end`.
    /// Inside an unclosed string literal, file names.
    public func completions(_ code: String, cursor: Int) -> (matches: [String], start: Int, end: Int) {
        let scalars = Array(code.unicodeScalars)
        let cursor = min(max(cursor, 0), scalars.count)
        var view = String.UnicodeScalarView()
        view.append(contentsOf: scalars[..<cursor])
        let before = String(view)
        let line = before.components(separatedBy: "\n").last ?? ""
        if let prefix = CellExecutor.openString(line) {
            let matches = CellExecutor.fileCompletions(prefix)
            return (matches, cursor - prefix.unicodeScalars.count, cursor)
        }
        let start = LuaState.completionStart(line)
        let word = String(Array(line)[start...])
        return (state.completions(for: word), cursor - word.unicodeScalars.count, cursor)
    }

    /// The text of an unclosed string literal at the end of `line`, or nil outside strings.
    static func openString(_ line: String) -> String? {
        var quote: Character? = nil
        var text = ""
        for c in line {
            if let q = quote {
                if c == q { quote = nil } else { text.append(c) }
            } else if c == "\"" || c == "'" {
                quote = c
                text = ""
            }
        }
        return quote == nil ? nil : text
    }

    static func fileCompletions(_ prefix: String) -> [String] {
        let dir = prefix.contains("/") ? String(prefix[...prefix.lastIndex(of: "/")!]) : ""
        let stem = String(prefix.dropFirst(dir.count))
        let fm = FileManager.default
        guard let names = try? fm.contentsOfDirectory(atPath: dir.isEmpty ? "." : dir) else { return [] }
        return names.filter { $0.hasPrefix(stem) && (stem.hasPrefix(".") || !$0.hasPrefix(".")) }.sorted().map { name in
            var isDir: ObjCBool = false
            _ = fm.fileExists(atPath: (dir.isEmpty ? "" : dir) + name, isDirectory: &isDir)
            return dir + name + (isDir.boolValue ? "/" : "")
        }
    }

    /// Help on the name at `cursor`: a built-in's or a module's help text, else the value's type and text.
    public func inspect(_ code: String, cursor: Int) -> String? {
        let scalars = Array(code.unicodeScalars)
        let cursor = min(max(cursor, 0), scalars.count)
        func isName(_ u: Unicode.Scalar) -> Bool { u == "_" || u == "." || u == ":" || (u.isASCII && CharacterSet.alphanumerics.contains(u)) }
        var s = cursor, e = cursor
        while s > 0 && isName(scalars[s - 1]) { s -= 1 }
        while e < scalars.count && isName(scalars[e]) { e += 1 }
        // With the cursor just after `f(`, the name before the parenthesis.
        if s == e, cursor > 0, scalars[cursor - 1] == "(" {
            e = cursor - 1
            s = e
            while s > 0 && isName(scalars[s - 1]) { s -= 1 }
        }
        var view = String.UnicodeScalarView()
        view.append(contentsOf: scalars[s..<e])
        let name = String(view).trimmingCharacters(in: CharacterSet(charactersIn: ".:"))
        guard !name.isEmpty else { return nil }
        if let text = state.helpText(topic: name) { return text }
        let path = name.replacingOccurrences(of: ":", with: ".")
        let parts = path.split(separator: ".").map(String.init)
        guard parts.allSatisfy({ LuaState.isIdentifier($0) }) else { return nil }
        let top = lua.top
        defer { lua.top = top }
        guard state.load("return \(path)", chunkName: "=inspect") == nil,
              lua.protectedCall(nargs: 0, nresults: 1, traceback: false) == nil,
              lua.type(-1) != LUA_TNIL else { return nil }
        if let b = tycho_tobinding(lua.L, -1) { return Unmanaged<LuaFunction>.fromOpaque(b).takeUnretainedValue().helpText }
        if lua.type(-1) == LUA_TTABLE {
            lua.pushRegistry()
            if lua.rawGet(-1, field: "tycho.modules") == LUA_TTABLE {
                lua.pushValue(-3)
                lua_rawget(lua.L, -2)
                if let m = lua.string(-1), let module = state.modules[m] { return state.moduleHelp(module) }
            }
            lua.top = top + 1
        }
        var options = PrettyOptions()
        options.depth = 2
        return "\(name): \(lua.typeName(-1))\n\(state.pretty(-1, options: options))"
    }

    // MARK: the functions a notebook sees

    private func installFunctions() {
        let print = LuaFunction("print", [.optional("...", .rest)], doc: "Prints its arguments (tostring, tab-separated) to the cell's output.") { [weak self] a in
            var parts: [String] = []
            for i in 1...max(a.count, 1) where i <= a.count { parts.append(a.lua.toDisplayString(Int32(i))) }
            self?.emit(stream: 1, text: parts.joined(separator: "\t") + "\n")
            return 0
        }
        let display = DisplayBinding.function { [weak self] bundle in
            self?.flushPending()
            self?.io?.output(.displayData(bundle))
        }
        let checkInput = LuaFunction("read", doc: "Guards io.read: an error where the front end allows no input.") { [weak self] _ in
            guard let self, let io = self.io, io.allowsInput else {
                throw LuaBindingError("no standard input here (the notebook runner and nbclient run without one; in JupyterLab io.read asks for a line)")
            }
            if let f = self.stdinFile { clearerr(f) }
            return 0
        }
        checkInput.module = "io"
        let exit = LuaFunction("exit", [.optional("...", .rest)], doc: "Not available in a notebook: restart the kernel instead.") { _ in
            throw LuaBindingError("not available in a notebook (restart the kernel instead)")
        }
        exit.module = "os"
        functions = [print, display, checkInput, exit]
        lua.pushGlobals()
        lua.push(print); lua.rawSet(-2, field: "print")
        lua.push(display); lua.rawSet(-2, field: "display")
        if lua.rawGet(-1, field: "os") == LUA_TTABLE { lua.push(exit); lua.rawSet(-2, field: "exit") }
        lua.pop(2)
        // io.read and io.lines() (standard input) pass the guard first.
        lua.push(checkInput)
        let guardCode = """
            local check = ...
            local read, lines = io.read, io.lines
            io.read = function(...) check() return read(...) end
            io.lines = function(file, ...) if file == nil then check() end return lines(file, ...) end
            """
        if state.load(guardCode, chunkName: "=(notebook)") == nil {
            tycho_insert(lua.L, -2)
            _ = lua.protectedCall(nargs: 1, nresults: 0)
        } else {
            lua.pop()
        }
    }

    private func installStreams() {
        let ctx = Unmanaged.passUnretained(self).toOpaque()
        let write: tycho_capture_write_fn = { ctx, stream, buf, n in
            guard let ctx, let buf else { return -1 }
            let me = Unmanaged<CellExecutor>.fromOpaque(ctx).takeUnretainedValue()
            me.emit(stream: stream, bytes: UnsafeRawBufferPointer(start: buf, count: n))
            return n
        }
        let read: tycho_capture_read_fn = { ctx, buf, n in
            guard let ctx, let buf else { return -1 }
            let me = Unmanaged<CellExecutor>.fromOpaque(ctx).takeUnretainedValue()
            return me.readInput(into: buf, count: n)
        }
        let top = lua.top
        defer { lua.top = top }
        for (handle, stream) in [("stdout", Int32(1)), ("stderr", Int32(2)), ("stdin", Int32(0))] {
            lua.pushGlobals()
            guard lua.rawGet(-1, field: "io") == LUA_TTABLE, lua.rawGet(-1, field: handle) == LUA_TUSERDATA else { lua.top = top; continue }
            guard let mine = tycho_capture_open(ctx, stream, stream == 0 ? nil : write, stream == 0 ? read : nil) else { lua.top = top; continue }
            if let original = tycho_file_handle_swap(lua.L, -1, mine) {
                captured.append((handle, original, mine))
                if stream == 0 { stdinFile = mine }
            } else {
                fclose(mine)
            }
            lua.top = top
        }
    }

    // MARK: streams

    func emit(stream: Int32, text: String) {
        flushPending(stream)
        io?.output(.stream(name: stream == 2 ? "stderr" : "stdout", text: text))
    }

    /// Writes arrive as bytes; a UTF-8 sequence cut at the end waits for the next write.
    func emit(stream: Int32, bytes: UnsafeRawBufferPointer) {
        var data = pending[stream] ?? []
        data.append(contentsOf: bytes)
        var cut = data.count
        // Back up over an incomplete trailing sequence (at most 3 bytes).
        var i = data.count - 1
        while i >= 0 && i >= data.count - 4 {
            let b = data[i]
            if b & 0xC0 == 0x80 { i -= 1; continue }
            let need = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 1
            if data.count - i < need { cut = i }
            break
        }
        pending[stream] = Array(data[cut...])
        guard cut > 0 else { return }
        io?.output(.stream(name: stream == 2 ? "stderr" : "stdout", text: String(decoding: data[..<cut], as: UTF8.self)))
    }

    func flushPending(_ stream: Int32? = nil) {
        for s in stream.map({ [$0] }) ?? [1, 2] {
            guard let bytes = pending[s], !bytes.isEmpty else { continue }
            pending[s] = []
            io?.output(.stream(name: s == 2 ? "stderr" : "stdout", text: String(decoding: bytes, as: UTF8.self)))
        }
    }

    /// Fills stdin reads a line at a time from the front end.
    func readInput(into buf: UnsafeMutablePointer<CChar>, count: Int) -> Int {
        if inputBuffer.isEmpty {
            flushPending()
            guard let io, io.allowsInput, let line = io.readInput(prompt: "", password: false) else { return 0 }
            inputBuffer = Array((line + "\n").utf8)
        }
        let n = min(count, inputBuffer.count)
        inputBuffer.withUnsafeBytes { src in
            guard let base = src.baseAddress else { return }
            UnsafeMutableRawPointer(buf).copyMemory(from: base, byteCount: n)
        }
        inputBuffer.removeFirst(n)
        return n
    }
}

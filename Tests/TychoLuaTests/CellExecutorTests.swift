// CellExecutorTests.swift: how a notebook cell runs (TychoLua's CellExecutor, shared by `tycho notebook run` and
// the kernel): which value a cell shows, captured output in order, display bundles, errors, completeness,
// completion positions in Unicode scalars, and inspection. Serialized: executing a cell arms the process-wide
// Ctrl-C hook.

import Testing
import TychoLua

final class RecordingIO: CellIO {
    var outputs: [CellOutput] = []
    func output(_ output: CellOutput) { outputs.append(output) }
    var allowsInput = false
    var lines: [String] = []
    func readInput(prompt: String, password: Bool) -> String? { lines.isEmpty ? nil : lines.removeFirst() }

    /// Stream pieces merged, as a notebook stores them.
    var merged: [CellOutput] {
        var out: [CellOutput] = []
        for o in outputs {
            if case .stream(let n, let t) = o, case .stream(let m, let before)? = out.last, m == n {
                out[out.count - 1] = .stream(name: n, text: before + t)
            } else {
                out.append(o)
            }
        }
        return out
    }
}

@Suite(.serialized) struct CellExecutorTests {
    func make() throws -> (CellExecutor, RecordingIO) {
        let x = CellExecutor(state: try LuaState())
        let io = RecordingIO()
        x.io = io
        return (x, io)
    }

    func result(_ code: String) throws -> String? {
        let (x, io) = try make()
        #expect(x.execute(code, name: "In[1]") == nil)
        for case .executeResult(let b) in io.outputs { return b["text/plain"] }
        return nil
    }

    @Test func theValueACellShows() throws {
        #expect(try result("1 + 1") == "2")
        #expect(try result("x = 20\nx + 22") == "42")
        #expect(try result("local t = {a = 1}\nt.b = 2\nt -- a comment\n\n") == "{a = 1, b = 2}")
        #expect(try result("t = {\n  1,\n  2,\n}") == nil, "an assignment shows nothing")
        #expect(try result("t = {1, 2}\n{\n  t[1],\n  t[2] * 10,\n}") == "{1, 20}", "a multi-line trailing expression")
        #expect(try result("for i = 1, 2 do\n  local y = i\nend") == nil)
        #expect(try result("f = function() return 5 end\nf();") == nil, "a trailing ; shows nothing")
        #expect(try result("return 1, 'two'") == "1\ttwo")
        #expect(try result("string.format('%d', 3)") == "3")
    }

    @Test func outputIsCapturedInOrder() throws {
        let (x, io) = try make()
        #expect(x.execute("print('a', 1)\nio.write('b')\nio.stderr:write('c\\n')\nio.stdout:write('é')\nprint()", name: "In[1]") == nil)
        #expect(io.merged == [.stream(name: "stdout", text: "a\t1\nb"), .stream(name: "stderr", text: "c\n"), .stream(name: "stdout", text: "é\n")])
    }

    @Test func errorsAndInterrupts() throws {
        let (x, io) = try make()
        let e = try #require(x.execute("local function f() error('boom') end\nf()", name: "In[3]"))
        #expect(e.ename == "LuaError" && e.evalue == "In[3]:1: boom")
        #expect(e.traceback.first == "LuaError: In[3]:1: boom" && e.traceback.contains("stack traceback:"))
        #expect(io.outputs.last == .error(e))
        let s = try #require(x.execute("x = = 1", name: "In[4]"))
        #expect(s.ename == "SyntaxError" && s.evalue.hasPrefix("In[4]:1:"))
        let exit = try #require(x.execute("os.exit(0)", name: "In[5]"))
        #expect(exit.evalue.contains("os.exit: not available in a notebook"))
        let read = try #require(x.execute("io.read()", name: "In[6]"))
        #expect(read.evalue.contains("io.read: no standard input here"))
        #expect(x.execute("y = 1", name: "In[7]") == nil, "the state survives errors")
    }

    @Test func inputComesFromTheFrontEnd() throws {
        let (x, io) = try make()
        io.allowsInput = true
        io.lines = ["first line", "42"]
        #expect(x.execute("a = io.read()\nb = io.read('n')\nc = io.read()\nd = io.read()", name: "In[1]") == nil)
        #expect(x.evaluate("a") == .success("first line"))
        #expect(x.evaluate("b") == .success("42"))
        #expect(x.evaluate("c") == .success(""), "the rest of the number's line")
        #expect(x.evaluate("d == nil") == .success("true"), "end of input")
    }

    @Test func displayBundles() throws {
        let (x, io) = try make()
        #expect(x.execute("""
            display({{name = 'a', acc = 0.5}, {name = 'b<', acc = 1}}, {columns = {'name', 'acc'}, title = 'T'})
            display({loss = 0.25, steps = 3})
            display(tensor.arange(6):view(2, 3))
            display('<svg xmlns="http://www.w3.org/2000/svg"></svg>')
            display('<b>x</b>', 'text/html')
            display(42)
            """, name: "In[1]") == nil)
        var bundles: [MimeBundle] = []
        for case .displayData(let b) in io.outputs { bundles.append(b) }
        #expect(bundles.count == 6)
        #expect(bundles[0]["text/plain"] == "T\nname     acc\na     0.5000\nb<         1")
        #expect(bundles[0]["text/html"]?.contains("<caption>T</caption>") == true)
        #expect(bundles[0]["text/html"]?.contains("<td style=\"text-align: left\">b&lt;</td>") == true)
        #expect(bundles[1]["text/plain"] == "name    value\nloss   0.2500\nsteps       3")
        #expect(bundles[2]["text/html"]?.contains("[tensor float32 of size 2x3]") == true)
        #expect(bundles[3]["image/svg+xml"] != nil)
        #expect(bundles[4]["text/html"] == "<b>x</b>")
        #expect(bundles[5].data.map(\.0) == ["text/plain"] && bundles[5]["text/plain"] == "42")
        let bad = try #require(x.execute("display(1, {colour = 1})", name: "In[2]"))
        #expect(bad.evalue.contains("display: argument #2 (options)"))
    }

    @Test func completenessCompletionAndInspection() throws {
        let (x, _) = try make()
        #expect(x.completeness("x = 1") == .complete)
        #expect(x.completeness("1 +") == .incomplete)
        #expect(x.completeness("for i = 1, 2 do") == .incomplete)
        #expect(x.completeness("x = = 1") == .invalid)
        let code = "s = 'é' tensor.ze"
        let c = x.completions(code, cursor: code.unicodeScalars.count)
        #expect(c.matches.contains("tensor.zeros("))
        #expect(c.start == 8 && c.end == 17, "positions count Unicode scalars")
        #expect(x.inspect("tensor.zeros(2)", cursor: 3)?.hasPrefix("tensor.zeros(") == true)
        #expect(x.inspect("help(tensor.narrow", cursor: 18)?.contains("narrow") == true)
        #expect(x.execute("answer = 42", name: "In[1]") == nil)
        #expect(x.inspect("answer", cursor: 6) == "answer: number\n42")
        #expect(x.inspect("no_such_name", cursor: 3) == nil)
    }
}

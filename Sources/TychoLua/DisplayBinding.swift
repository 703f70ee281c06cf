// DisplayBinding.swift: `display(x)`, the notebook's rich output (IPython's display()). It turns a Lua value into
// a MIME bundle: tables of records and 1-D/2-D tensors as `text/html` tables (with an aligned `text/plain`
// twin), SVG text and run records (their loss and reward curves) as `image/svg+xml`, anything else as the REPL
// prints it. The bundle goes to the cell's output through the closure the CellExecutor gives.
// What it refuses: nothing it can show as text; options it does not know are errors.

import CLua
import CLuaShim
import Foundation
import TychoTensor
import TychoTrain

enum DisplayBinding {
    static let maxRows = 60
    static let maxColumns = 30

    /// The `display` function of one executor; `send` receives each bundle.
    static func function(_ send: @escaping (MimeBundle) -> Void) -> LuaFunction {
        LuaFunction("display", [.required("value", .any), .optional("options", .any, default: "{}")], doc: """
            Shows a value in the notebook, richer than print: display(x[, {mime=, columns=, title=}]).
              Tables of records ({ {name="a", acc=0.9}, ... }) and 1-D/2-D tensors show as HTML tables (columns= orders
              and picks the fields; title= a caption); a table of named values as a two-column table; an SVG string or a
              run record (its loss and reward curves, as run.plot) as an image; display(s, "text/html") (or "text/markdown",
              "image/svg+xml", ...) sends a string as that type; anything else as the REPL prints it.
            """) { a in
            send(try bundle(a))
            return 0
        }
    }

    struct Options {
        var mime: String?
        var columns: [String]?
        var title: String?
    }

    static func options(_ a: LuaArgs) throws -> Options {
        var o = Options()
        if a.isNil(2) { return o }
        if let s = a.lua.string(2) { o.mime = s; return o }
        guard a.lua.type(2) == LUA_TTABLE else { throw a.typeError(2, "a MIME type or a table {mime=, columns=, title=}") }
        try a.checkOptions(2, allowed: ["mime", "columns", "title"])
        o.mime = try a.optionString(2, "mime")
        o.title = try a.optionString(2, "title")
        if a.lua.rawGet(2, field: "columns") != LUA_TNIL {
            defer { a.lua.pop() }
            guard a.lua.type(-1) == LUA_TTABLE else { throw a.argumentError(2, "a table whose field 'columns' is a list of names") }
            var names: [String] = []
            for i in 1...max(a.lua.rawLength(-1), 1) where i <= a.lua.rawLength(-1) {
                _ = a.lua.rawGet(-1, index: i)
                defer { a.lua.pop() }
                guard let s = a.lua.string(-1) else { throw a.argumentError(2, "a table whose field 'columns' is a list of names") }
                names.append(s)
            }
            o.columns = names
        } else {
            a.lua.pop()
        }
        return o
    }

    static func bundle(_ a: LuaArgs) throws -> MimeBundle {
        let o = try options(a)
        let lua = a.lua
        let state = a.state
        if let mime = o.mime {
            guard let s = lua.string(1) else { throw a.typeError(1, "a string (with a MIME type given)") }
            guard mime.contains("/") else { throw a.argumentError(2, "a MIME type such as \"text/html\", got \"\(mime.prefix(40))\"") }
            return mime == "text/plain" ? MimeBundle([(mime, s)]) : MimeBundle([(mime, s), ("text/plain", "[\(mime)]")])
        }
        if let s = lua.string(1) {
            return isSVG(s) ? MimeBundle([("image/svg+xml", s), ("text/plain", "[SVG image]")]) : MimeBundle([("text/plain", s)])
        }
        if let t = a.tensorOrNil(1), (1...2).contains(t.rank), t.count > 0 {
            return MimeBundle([("text/html", tensorHTML(t, title: o.title)), ("text/plain", (o.title.map { $0 + "\n" } ?? "") + t.format())])
        }
        if let r = lua.object(1, metatable: RunBinding.metatable, as: RunRecord.self) {
            let svg = try RunBinding.plotSVG(directory: r.directory, metrics: nil, title: o.title)
            return MimeBundle([("image/svg+xml", svg), ("text/plain", lua.toDisplayString(1))])
        }
        if lua.type(1) == LUA_TTABLE, let table = try tableRows(a, columns: o.columns) {
            return MimeBundle([("text/html", html(table, title: o.title)), ("text/plain", plain(table, title: o.title))])
        }
        return MimeBundle([("text/plain", state.pretty(1))])
    }

    static func isSVG(_ s: String) -> Bool {
        let head = s.prefix(400).trimmingCharacters(in: .whitespacesAndNewlines)
        return head.hasPrefix("<svg") || (head.hasPrefix("<?xml") && head.contains("<svg"))
    }

    // MARK: tables

    /// A table to show: a header and rows of (text, is-number) cells.
    struct Grid {
        var header: [String]
        var rows: [[(String, Bool)]]
        var rowLabels: [String]?
        var omitted = 0
    }

    /// The value at idx as cell text.
    static func cell(_ lua: Lua, _ state: LuaState, _ idx: Int32) -> (String, Bool) {
        switch lua.type(idx) {
        case LUA_TNIL, LUA_TNONE: return ("", false)
        case LUA_TNUMBER:
            if lua.isInteger(idx), let i = lua.integer(idx) { return (String(i), true) }
            return (number(lua.number(idx) ?? .nan), true)
        case LUA_TSTRING: return (lua.string(idx) ?? "", false)
        case LUA_TBOOLEAN: return (lua.bool(idx) ? "true" : "false", false)
        default:
            if let t = lua.object(idx, metatable: TensorBinding.metatable, as: Tensor.self) {
                if t.count == 1, let v = try? t.contiguous().toArray().first { return (number(Double(v)), true) }
                return ("tensor(\(Tensor.describe(t.shape)))", false)
            }
            var o = PrettyOptions()
            o.depth = 1
            o.width = 60
            return (state.pretty(idx, options: o), false)
        }
    }

    /// A number as a table shows it: integers whole, others with 4 decimals (or in exponent form).
    static func number(_ v: Double) -> String {
        if v.isNaN { return "nan" }
        if v.isInfinite { return v > 0 ? "inf" : "-inf" }
        if v == v.rounded() && Swift.abs(v) < 1e15 { return String(Int(v)) }
        let a = Swift.abs(v)
        if a >= 1e6 || a < 1e-3 { return String(format: "%.3e", v) }
        return String(format: "%.4f", v)
    }

    /// Records (a list of tables), a table of named values, or a list of values; nil for other tables.
    static func tableRows(_ a: LuaArgs, columns: [String]?) throws -> Grid? {
        let lua = a.lua
        let state = a.state
        guard lua.ensureStack(10) else { return nil }
        let n = lua.rawLength(1)
        var stringKeys: [String] = []
        var otherKeys = 0
        lua.forEach(1) {
            if let k = lua.string(-2) { stringKeys.append(k) } else if !(lua.isInteger(-2) && (lua.integer(-2) ?? 0) >= 1 && (lua.integer(-2) ?? 0) <= n) { otherKeys += 1 }
            return true
        }
        if n > 0 && stringKeys.isEmpty && otherKeys == 0 {
            // A list: of records, or of plain values.
            var allRecords = true
            var keys = Set<String>()
            for i in 1...n {
                _ = lua.rawGet(1, index: i)
                defer { lua.pop() }
                guard lua.type(-1) == LUA_TTABLE, lua.object(-1, metatable: TensorBinding.metatable, as: Tensor.self) == nil else { allRecords = false; continue }
                lua.forEach(-1) { if let k = lua.string(-2) { keys.insert(k) }; return true }
            }
            if allRecords && !keys.isEmpty {
                let header = columns ?? keys.sorted()
                var grid = Grid(header: header, rows: [])
                for i in 1...n {
                    if grid.rows.count >= maxRows { grid.omitted += 1; continue }
                    _ = lua.rawGet(1, index: i)
                    let r = lua.absolute(-1)
                    grid.rows.append(header.map { h in
                        _ = lua.rawGet(r, field: h)
                        defer { lua.pop() }
                        return cell(lua, state, -1)
                    })
                    lua.pop()
                }
                return grid
            }
            var grid = Grid(header: ["value"], rows: [], rowLabels: [])
            for i in 1...n {
                if grid.rows.count >= maxRows { grid.omitted += 1; continue }
                _ = lua.rawGet(1, index: i)
                grid.rows.append([cell(lua, state, -1)])
                grid.rowLabels?.append(String(i))
                lua.pop()
            }
            return grid
        }
        if n == 0 && !stringKeys.isEmpty && otherKeys == 0 {
            // Named values: one row each, sorted by name (or in the order of columns=).
            let names = columns ?? stringKeys.sorted()
            var grid = Grid(header: ["name", "value"], rows: [])
            for k in names {
                if grid.rows.count >= maxRows { grid.omitted += 1; continue }
                _ = lua.rawGet(1, field: k)
                grid.rows.append([(k, false), cell(lua, state, -1)])
                lua.pop()
            }
            return grid
        }
        return nil
    }

    static func tensorHTML(_ t: Tensor, title: String?) -> String {
        let values = (try? t.contiguous().toArray()) ?? []
        let rows = t.rank == 1 ? 1 : t.shape[0]
        let cols = t.rank == 1 ? t.shape[0] : t.shape[1]
        let fmt = Tensor.numberFormatForDisplay(values)
        var grid = Grid(header: (1...cols).prefix(maxColumns).map(String.init), rows: [], rowLabels: [])
        for r in 0..<min(rows, maxRows) {
            grid.rows.append((0..<min(cols, maxColumns)).map { c in (fmt(values[r * cols + c]), true) })
            grid.rowLabels?.append(String(r + 1))
        }
        grid.omitted = max(0, rows - maxRows)
        var caption = title ?? ""
        if !caption.isEmpty { caption += " " }
        caption += "[tensor float32 of size \(Tensor.describe(t.shape))]" + (cols > maxColumns ? ", first \(maxColumns) columns" : "")
        return html(grid, title: caption)
    }

    static func escape(_ s: String) -> String {
        var out = ""
        for c in s {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            default: out.append(c)
            }
        }
        return out
    }

    static func html(_ g: Grid, title: String?) -> String {
        var out = "<table>\n"
        if let title { out += "<caption>\(escape(title))</caption>\n" }
        out += "<thead><tr>" + (g.rowLabels != nil ? "<th></th>" : "") + g.header.map { "<th>\(escape($0))</th>" }.joined() + "</tr></thead>\n<tbody>\n"
        for (i, row) in g.rows.enumerated() {
            out += "<tr>"
            if let labels = g.rowLabels { out += "<th>\(escape(labels[i]))</th>" }
            out += row.map { $0.1 ? "<td style=\"text-align: right\">\(escape($0.0))</td>" : "<td style=\"text-align: left\">\(escape($0.0))</td>" }.joined()
            out += "</tr>\n"
        }
        out += "</tbody>\n</table>\n"
        if g.omitted > 0 { out += "<p>... \(g.omitted) more rows</p>\n" }
        return out
    }

    /// The same table as aligned text (numbers right-aligned).
    static func plain(_ g: Grid, title: String?) -> String {
        let labels = g.rowLabels
        let labelWidth = labels.map { $0.map(\.count).max() ?? 0 } ?? 0
        var widths = g.header.map(\.count)
        for row in g.rows { for (j, c) in row.enumerated() { widths[j] = max(widths[j], c.0.split(separator: "\n").map(\.count).max() ?? 0) } }
        func pad(_ s: String, _ w: Int, right: Bool) -> String {
            let fill = String(repeating: " ", count: max(0, w - s.count))
            return right ? fill + s : s + fill
        }
        var lines: [String] = []
        if let title { lines.append(title) }
        let lead = labels != nil ? String(repeating: " ", count: labelWidth) + "  " : ""
        lines.append(lead + g.header.enumerated().map { pad($0.1, widths[$0.0], right: g.rows.first?[$0.0].1 ?? false) }.joined(separator: "  "))
        for (i, row) in g.rows.enumerated() {
            let head = labels.map { pad($0[i], labelWidth, right: true) + "  " } ?? ""
            let text = row.enumerated().map { pad($0.1.0.replacingOccurrences(of: "\n", with: " "), widths[$0.0], right: $0.1.1) }.joined(separator: "  ")
            lines.append(head + text)
        }
        if g.omitted > 0 { lines.append("... \(g.omitted) more rows") }
        return lines.map { $0.replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression) }.joined(separator: "\n")
    }
}

extension Tensor {
    /// The formatter the tensor printer uses, for table cells.
    static func numberFormatForDisplay(_ values: [Float]) -> (Float) -> String {
        let finite = values.filter { $0.isFinite }
        if finite.allSatisfy({ $0 == $0.rounded() }) && (finite.map { Swift.abs($0) }.max() ?? 0) < 1e9 {
            return { $0.isFinite ? String(Int($0)) : DisplayBinding.number(Double($0)) }
        }
        return { DisplayBinding.number(Double($0)) }
    }
}

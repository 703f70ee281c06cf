// ComparisonTable.swift: a side-by-side table of numbers (rows = models or runs, columns = metrics), as eval.compare
// prints it: aligned plain text for a terminal, Markdown and HTML for notebooks.
//
// `assemble` turns what each column gave for each row into cells: a column whose function returns a table of
// numbers becomes one column per field (`name/field`), every numeric field or the fields asked for. A cell is a
// number, missing (`-`: the metric does not apply or was never logged) or an error (`ERR`, with the message listed
// under the table). Numbers are formatted per column: integers as integers; otherwise one number of decimals for
// the whole column (about 4 significant digits for its largest value, at least 2 for its smallest nonzero one, at
// most 6), or scientific notation when the column's values are below 1e-3 or from 1e6 up; nan and inf as such.
// What it refuses: nothing; it only lays out what it is given.

import Foundation

public struct ComparisonTable: Equatable, Sendable {
    public enum Cell: Equatable, Sendable {
        case number(Double)
        case missing
        case error(String)
    }

    public enum Format: String, CaseIterable, Sendable {
        case text, markdown, html
    }

    /// An error shown under the table: row index (0-based), the column it came from, the message.
    public struct Note: Equatable, Sendable {
        public var row: Int
        public var column: String
        public var message: String

        public init(row: Int, column: String, message: String) {
            self.row = row
            self.column = column
            self.message = message
        }
    }

    public var title: String?
    /// The first column's header.
    public var rowHeader = "name"
    public var rows: [String]
    public var columns: [String]
    /// cells[row][column]
    public var cells: [[Cell]]
    /// Errors listed under the table; when empty, every error cell is listed under its column's name.
    public var notes: [Note] = []

    public init(title: String? = nil, rows: [String], columns: [String], cells: [[Cell]], notes: [Note] = []) {
        self.title = title
        self.rows = rows
        self.columns = columns
        self.cells = cells
        self.notes = notes
    }

    // MARK: assembling columns

    /// What one column gave for one row.
    public enum Value: Equatable, Sendable {
        case number(Double)
        /// A table of named numbers.
        case fields([String: Double])
        case missing
        case error(String)
    }

    /// A column as asked for: its name and, optionally, the fields to take from a table result.
    public struct ColumnSpec: Equatable, Sendable {
        public var name: String
        /// nil: a number, or every numeric field of a table (sorted by name).
        public var fields: [String]?

        public init(_ name: String, fields: [String]? = nil) {
            self.name = name
            self.fields = fields
        }
    }

    /// The table of `values[row][spec]`. A spec with one field asked for keeps its name; with several, or with every
    /// field of table results, it becomes `name/field` columns (and a plain `name` column too when some row gave a
    /// number).
    public static func assemble(title: String? = nil, rows: [String], specs: [ColumnSpec],
                                values: [[Value]]) -> ComparisonTable {
        var columns: [String] = []
        var cells = Array(repeating: [Cell](), count: rows.count)
        var notes: [Note] = []
        for (j, spec) in specs.enumerated() {
            func value(_ i: Int) -> Value { j < values[i].count ? values[i][j] : .missing }
            // (column name, which field: nil = the plain number)
            var parts: [(String, String?)] = []
            if let fields = spec.fields {
                parts = fields.count == 1 ? [(spec.name, fields[0])] : fields.map { ("\(spec.name)/\($0)", $0) }
            } else {
                var hasNumber = false
                var names = Set<String>()
                for i in rows.indices {
                    switch value(i) {
                    case .number: hasNumber = true
                    case .fields(let d): names.formUnion(d.keys)
                    case .missing, .error: break
                    }
                }
                if hasNumber || names.isEmpty { parts.append((spec.name, nil)) }
                for f in names.sorted() { parts.append(("\(spec.name)/\(f)", f)) }
            }
            for i in rows.indices {
                let v = value(i)
                if case .error(let message) = v { notes.append(Note(row: i, column: spec.name, message: message)) }
                for (_, field) in parts {
                    switch v {
                    case .error(let message): cells[i].append(.error(message))
                    case .missing: cells[i].append(.missing)
                    case .number(let x):
                        // a number fills the plain column, or the one column of a single-field spec
                        cells[i].append(field == nil || parts.count == 1 && spec.fields != nil ? .number(x) : .missing)
                    case .fields(let d):
                        cells[i].append(field.flatMap { d[$0] }.map { Cell.number($0) } ?? .missing)
                    }
                }
            }
            columns += parts.map(\.0)
        }
        return ComparisonTable(title: title, rows: rows, columns: columns, cells: cells, notes: notes)
    }

    // MARK: numbers

    /// The column's numbers as text (see the file's comment for the rules).
    public static func formatColumn(_ xs: [Double]) -> [String] {
        let finite = xs.filter { $0.isFinite }
        func special(_ x: Double) -> String { x.isNaN ? "nan" : (x > 0 ? "inf" : "-inf") }
        if finite.allSatisfy({ $0 == $0.rounded() && Swift.abs($0) < 1e15 }) {
            return xs.map { $0.isFinite ? String(Int($0)) : special($0) }
        }
        let maxAbs = finite.map { Swift.abs($0) }.max() ?? 0
        if maxAbs >= 1e6 || maxAbs < 1e-3 {
            return xs.map { $0.isFinite ? String(format: "%.3e", $0) : special($0) }
        }
        var decimals = 3 - Int(floor(log10(maxAbs)))
        if let minNonZero = finite.map({ Swift.abs($0) }).filter({ $0 > 0 }).min() {
            decimals = Swift.max(decimals, 1 - Int(floor(log10(minNonZero))))
        }
        decimals = Swift.min(Swift.max(decimals, 0), 6)
        return xs.map { $0.isFinite ? String(format: "%.\(decimals)f", $0) : special($0) }
    }

    /// Every cell as text: formatted numbers, `-` when missing, `ERR` for errors.
    public func cellTexts() -> [[String]] {
        var out = rows.map { _ in [String]() }
        for j in columns.indices {
            var numbers: [Double] = []
            for i in rows.indices { if j < cells[i].count, case .number(let x) = cells[i][j] { numbers.append(x) } }
            var formatted = ComparisonTable.formatColumn(numbers).makeIterator()
            for i in rows.indices {
                let cell = j < cells[i].count ? cells[i][j] : .missing
                switch cell {
                case .number: out[i].append(formatted.next() ?? "?")
                case .missing: out[i].append("-")
                case .error: out[i].append("ERR")
                }
            }
        }
        return out
    }

    /// The notes to print: `notes`, or one per error cell when there are none.
    public func errorNotes() -> [Note] {
        if !notes.isEmpty { return notes }
        var out: [Note] = []
        for (i, row) in cells.enumerated() {
            for (j, c) in row.enumerated() {
                if case .error(let m) = c, j < columns.count { out.append(Note(row: i, column: columns[j], message: m)) }
            }
        }
        return out
    }

    static func firstLine(_ s: String) -> String {
        String(s.split(separator: "\n", omittingEmptySubsequences: false).first ?? "")
    }

    // MARK: rendering

    public func render(_ format: Format) -> String {
        switch format {
        case .text: return renderText()
        case .markdown: return renderMarkdown()
        case .html: return renderHTML()
        }
    }

    /// Aligned columns: names left, numbers right, a dashed rule under the header, errors listed below.
    func renderText() -> String {
        let body = cellTexts()
        let header = [rowHeader] + columns
        var widths = header.map { $0.count }
        for (i, name) in rows.enumerated() {
            widths[0] = Swift.max(widths[0], name.count)
            for (j, s) in body[i].enumerated() { widths[j + 1] = Swift.max(widths[j + 1], s.count) }
        }
        func pad(_ s: String, _ w: Int, left: Bool) -> String {
            let fill = String(repeating: " ", count: Swift.max(0, w - s.count))
            return left ? s + fill : fill + s
        }
        func line(_ parts: [String]) -> String {
            parts.enumerated().map { pad($1, widths[$0], left: $0 == 0) }.joined(separator: "  ")
                .replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression)
        }
        var lines: [String] = []
        if let title { lines.append(title) }
        lines.append(line(header))
        lines.append(widths.map { String(repeating: "-", count: $0) }.joined(separator: "  "))
        for (i, name) in rows.enumerated() { lines.append(line([name] + body[i])) }
        let errs = errorNotes()
        if !errs.isEmpty {
            lines.append("")
            for n in errs { lines.append("ERR \(rowName(n.row)), \(n.column): \(ComparisonTable.firstLine(n.message))") }
        }
        return lines.joined(separator: "\n")
    }

    func rowName(_ i: Int) -> String { i >= 0 && i < rows.count ? rows[i] : "?" }

    static func markdownEscape(_ s: String) -> String {
        s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "|", with: "\\|")
            .replacingOccurrences(of: "\n", with: " ")
    }

    /// A GitHub-flavoured Markdown table, numbers right-aligned.
    func renderMarkdown() -> String {
        let body = cellTexts()
        var lines: [String] = []
        if let title { lines += ["**\(ComparisonTable.markdownEscape(title))**", ""] }
        lines.append("| " + ([rowHeader] + columns).map(ComparisonTable.markdownEscape).joined(separator: " | ") + " |")
        lines.append("| :--- |" + String(repeating: " ---: |", count: columns.count))
        for (i, name) in rows.enumerated() {
            lines.append("| " + ([name] + body[i]).map(ComparisonTable.markdownEscape).joined(separator: " | ") + " |")
        }
        let errs = errorNotes()
        if !errs.isEmpty {
            lines.append("")
            for n in errs {
                lines.append("- ERR \(ComparisonTable.markdownEscape(rowName(n.row))), \(ComparisonTable.markdownEscape(n.column)): \(ComparisonTable.markdownEscape(ComparisonTable.firstLine(n.message)))")
            }
        }
        return lines.joined(separator: "\n")
    }

    static func htmlEscape(_ s: String) -> String {
        var out = ""
        for c in s {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(c)
            }
        }
        return out
    }

    /// An HTML table (a caption for the title; an error cell carries its message as a tooltip), errors in a list.
    func renderHTML() -> String {
        let e = ComparisonTable.htmlEscape
        let body = cellTexts()
        var lines = ["<table class=\"tycho-compare\">"]
        if let title { lines.append("<caption>\(e(title))</caption>") }
        lines.append("<thead><tr><th style=\"text-align:left\">\(e(rowHeader))</th>"
            + columns.map { "<th style=\"text-align:right\">\(e($0))</th>" }.joined() + "</tr></thead>")
        lines.append("<tbody>")
        for (i, name) in rows.enumerated() {
            var tds = "<td style=\"text-align:left\">\(e(name))</td>"
            for (j, s) in body[i].enumerated() {
                if j < cells[i].count, case .error(let m) = cells[i][j] {
                    tds += "<td style=\"text-align:right\" title=\"\(e(ComparisonTable.firstLine(m)))\">\(e(s))</td>"
                } else {
                    tds += "<td style=\"text-align:right\">\(e(s))</td>"
                }
            }
            lines.append("<tr>\(tds)</tr>")
        }
        lines.append("</tbody>")
        lines.append("</table>")
        let errs = errorNotes()
        if !errs.isEmpty {
            lines.append("<ul class=\"tycho-compare-errors\">")
            for n in errs { lines.append("<li>ERR \(e(rowName(n.row))), \(e(n.column)): \(e(ComparisonTable.firstLine(n.message)))</li>") }
            lines.append("</ul>")
        }
        return lines.joined(separator: "\n")
    }
}

// ComparisonTableTests.swift: number formatting per column, assembling columns from numbers and tables of fields
// (every field, chosen fields, errors, missing values), and the text, Markdown and HTML renderings, exactly.

import Testing
@testable import TychoTrain

@Suite struct ComparisonTableTests {
    @Test func numberFormatting() {
        #expect(ComparisonTable.formatColumn([1, 20, -3]) == ["1", "20", "-3"])
        #expect(ComparisonTable.formatColumn([0.5, 0.25]) == ["0.5000", "0.2500"])
        #expect(ComparisonTable.formatColumn([12.345, 3]) == ["12.35", "3.00"])
        // the smallest nonzero value keeps 2 significant digits
        #expect(ComparisonTable.formatColumn([827.05, 0.0123]) == ["827.050", "0.012"])
        #expect(ComparisonTable.formatColumn([1234.5, 2.25]) == ["1234.5", "2.2"])
        #expect(ComparisonTable.formatColumn([2.5e7, 1.5]) == ["2.500e+07", "1.500e+00"])
        #expect(ComparisonTable.formatColumn([1e-5, 0]) == ["1.000e-05", "0.000e+00"])
        #expect(ComparisonTable.formatColumn([.nan, .infinity, -.infinity, 0.5]) == ["nan", "inf", "-inf", "0.5000"])
        #expect(ComparisonTable.formatColumn([.nan, 2]) == ["nan", "2"])
        #expect(ComparisonTable.formatColumn([]) == [])
    }

    @Test func assembleColumns() {
        typealias V = ComparisonTable.Value
        let specs = [ComparisonTable.ColumnSpec("loss"), ComparisonTable.ColumnSpec("task"),
                     ComparisonTable.ColumnSpec("pick", fields: ["b"]), ComparisonTable.ColumnSpec("two", fields: ["a", "z"])]
        let values: [[V]] = [
            [.number(0.5), .fields(["accuracy": 0.75, "total": 4]), .fields(["a": 1, "b": 2]), .fields(["a": 1])],
            [.missing, .error("boom\ntraceback"), .number(7), .number(8)],
            [.number(0.25), .fields(["accuracy": 0.5, "errors": 1]), .missing, .error("bad")],
        ]
        let t = ComparisonTable.assemble(title: "t", rows: ["p", "q", "r"], specs: specs, values: values)
        #expect(t.columns == ["loss", "task/accuracy", "task/errors", "task/total", "pick", "two/a", "two/z"])
        #expect(t.cells[0] == [.number(0.5), .number(0.75), .missing, .number(4), .number(2), .number(1), .missing])
        #expect(t.cells[1] == [.missing, .error("boom\ntraceback"), .error("boom\ntraceback"), .error("boom\ntraceback"),
                               .number(7), .missing, .missing])
        #expect(t.cells[2] == [.number(0.25), .number(0.5), .number(1), .missing, .missing, .error("bad"), .error("bad")])
        #expect(t.notes == [ComparisonTable.Note(row: 1, column: "task", message: "boom\ntraceback"),
                            ComparisonTable.Note(row: 2, column: "two", message: "bad")])
        // a column whose rows give nothing keeps its name
        let empty = ComparisonTable.assemble(rows: ["p"], specs: [ComparisonTable.ColumnSpec("x")], values: [[.missing]])
        #expect(empty.columns == ["x"] && empty.cells == [[.missing]])
        // a number beside fields: the plain column first
        let mixed = ComparisonTable.assemble(rows: ["p", "q"], specs: [ComparisonTable.ColumnSpec("m")],
                                             values: [[.number(1)], [.fields(["k": 2])]])
        #expect(mixed.columns == ["m", "m/k"] && mixed.cells == [[.number(1), .missing], [.missing, .number(2)]])
    }

    static var sample: ComparisonTable {
        ComparisonTable.assemble(title: "dpo sweep", rows: ["policy", "reference|old"],
                                 specs: [ComparisonTable.ColumnSpec("loss"), ComparisonTable.ColumnSpec("acc"),
                                         ComparisonTable.ColumnSpec("n")],
                                 values: [[.number(0.4127), .number(0.625), .number(12)],
                                          [.number(0.69314), .error("no <data>\nat line 3"), .missing]])
    }

    @Test func text() {
        let want = """
        dpo sweep
        name             loss     acc   n
        -------------  ------  ------  --
        policy         0.4127  0.6250  12
        reference|old  0.6931     ERR   -

        ERR reference|old, acc: no <data>
        """
        #expect(Self.sample.render(.text) == want)
    }

    @Test func markdown() {
        let want = """
        **dpo sweep**

        | name | loss | acc | n |
        | :--- | ---: | ---: | ---: |
        | policy | 0.4127 | 0.6250 | 12 |
        | reference\\|old | 0.6931 | ERR | - |

        - ERR reference\\|old, acc: no <data>
        """
        #expect(Self.sample.render(.markdown) == want)
    }

    @Test func html() {
        let h = Self.sample.render(.html)
        #expect(h.hasPrefix("<table class=\"tycho-compare\">\n<caption>dpo sweep</caption>\n"))
        #expect(h.contains("<thead><tr><th style=\"text-align:left\">name</th><th style=\"text-align:right\">loss</th>"))
        #expect(h.contains("<tr><td style=\"text-align:left\">policy</td><td style=\"text-align:right\">0.4127</td>"))
        #expect(h.contains("<td style=\"text-align:right\" title=\"no &lt;data&gt;\">ERR</td>"))
        #expect(h.contains("<li>ERR reference|old, acc: no &lt;data&gt;</li>"))
        #expect(h.hasSuffix("</ul>"))
    }

    @Test func notesFromCellsWhenNoneGiven() {
        let t = ComparisonTable(rows: ["a"], columns: ["x"], cells: [[.error("oops")]])
        #expect(t.render(.text) == "name    x\n----  ---\na     ERR\n\nERR a, x: oops")
    }
}

// JSONLinesTests.swift: reading JSONL files row by row: blank lines, CRLF, BOM, a last line without a
// newline, lines longer than the read buffer, and errors that name the file and line.

import Foundation
import Testing
@testable import TychoText

@Suite struct JSONLinesTests {
    func write(_ text: String, _ name: String = "rows.jsonl") throws -> String {
        let dir = try Fixtures.temporaryDirectory()
        let path = dir.appendingPathComponent(name).path
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    func readError(_ path: String) -> JSONLinesError? {
        do { _ = try JSONLines.read(path: path); return nil } catch { return error as? JSONLinesError }
    }

    @Test func rowsAndLineNumbers() throws {
        let path = try write("\u{FEFF}{\"a\": 1}\n\n   \n{\"b\": \"x\"}\r\n\t\n{\"c\": null}")
        let reader = try JSONLinesReader(path: path)
        var got: [(Int, JSONValue)] = []
        while let (line, row) = try reader.next() { got.append((line, row)) }
        #expect(got.map(\.0) == [1, 4, 6])
        #expect(got.map(\.1) == [.object([("a", .int(1))]), .object([("b", .string("x"))]), .object([("c", .null)])])
        #expect(reader.rowCount == 3)
        #expect(try reader.next() == nil)
        reader.close()
        reader.close()
        #expect(try JSONLines.read(path: try write("")).isEmpty)
        #expect(try JSONLines.read(path: try write("\n\n")).isEmpty)
    }

    @Test func longLinesCrossTheBuffer() throws {
        let long = String(repeating: "é", count: 100_000)  // 200 kB, several buffer fills
        var text = ""
        for k in 0..<5 { text += "{\"k\": \(k), \"s\": \"\(long)\"}\n" }
        let rows = try JSONLines.read(path: try write(text))
        #expect(rows.count == 5)
        #expect(rows[4] == .object([("k", .int(4)), ("s", .string(long))]))
    }

    @Test func errorsNameFileAndLine() throws {
        let bad = try write("{\"a\": 1}\n\n{\"a\": 2,}\n{\"a\": 3}\n", "bad.jsonl")
        let e = try #require(readError(bad))
        #expect(e.line == 3)
        #expect(e.description == "\(bad):3: invalid JSON at column 9: expected a string key after ',', got '}'")
        let notObject = try write("{\"a\": 1}\n[1, 2]\n")
        #expect(readError(notObject)?.description == "\(notObject):2: expected a JSON object (a row with named fields), got an array")
        #expect(readError(try write("\"text\"\n"))?.message.hasSuffix("got a string") == true)
        #expect(readError(try write("3.5\n"))?.message.hasSuffix("got the number 3.5") == true)
        let missing = "/nonexistent-dir/x.jsonl"
        #expect(readError(missing) == JSONLinesError(path: missing, line: nil, message: "cannot open: No such file or directory"))
        let dir = try Fixtures.temporaryDirectory().path
        #expect(readError(dir) == JSONLinesError(path: dir, line: nil, message: "is a directory"))
    }

    @Test func streamingStopsAtTheBadLine() throws {
        let path = try write("{\"a\": 1}\n{\"a\": 2}\n{oops}\n{\"a\": 4}\n")
        let reader = try JSONLinesReader(path: path)
        #expect(try reader.next()?.line == 1)
        #expect(try reader.next()?.line == 2)
        #expect(throws: JSONLinesError.self) { try reader.next() }
        #expect(reader.lineNumber == 3)
    }

    @Test func textWritesOneSortedLinePerRow() throws {
        let rows: [JSONValue] = [.object([("b", .int(1)), ("a", .string("x"))]), .object([])]
        let text = JSONLines.text(rows)
        #expect(text == "{\"a\": \"x\", \"b\": 1}\n{}\n")
        #expect(try JSONLines.read(path: try write(text)).map(\.line) == rows.map(\.line))
    }
}

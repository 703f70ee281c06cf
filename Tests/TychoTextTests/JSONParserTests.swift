// JSONParserTests.swift: JSONParser on valid JSON (integers vs floats, escapes, nesting) and on every kind of
// malformed input, with the column each error names.

import Testing
@testable import TychoText

@Suite struct JSONParserTests {
    func parse(_ s: String) throws -> JSONValue { try JSONParser.parse(s) }

    func syntaxError(_ s: String) -> JSONSyntaxError? {
        do { _ = try parse(s); return nil } catch let e as JSONSyntaxError { return e } catch { return nil }
    }

    @Test func scalars() throws {
        #expect(try parse("null") == .null)
        #expect(try parse(" true ") == .bool(true))
        #expect(try parse("false") == .bool(false))
        #expect(try parse("\"hi\"") == .string("hi"))
        #expect(try parse("0") == .int(0))
        #expect(try parse("-0") == .int(0))
        #expect(try parse("42") == .int(42))
        #expect(try parse("-17") == .int(-17))
        #expect(try parse("1.0") == .double(1.0))
        #expect(try parse("1e2") == .double(100))
        #expect(try parse("-2.5E-3") == .double(-0.0025))
        #expect(try parse("9223372036854775807") == .int(Int.max))
        #expect(try parse("-9223372036854775808") == .int(Int.min))
        #expect(try parse("9223372036854775808") == .double(9223372036854775808.0))
        #expect(try parse("123456789012345678901234567890") == .double(1.2345678901234568e29))
    }

    @Test func containers() throws {
        let v = try parse(#"{"a": [1, 2.5, "x", null, true, {}], "b": {"c": []}}"#)
        #expect(v == .object([("a", .array([.int(1), .double(2.5), .string("x"), .null, .bool(true), .object([])])),
                              ("b", .object([("c", .array([]))]))]))
        #expect(try parse("[]") == .array([]))
        #expect(try parse(" { } ") == .object([]))
    }

    @Test func strings() throws {
        #expect(try parse(#""a\"b\\c\/d\n\t\r\b\f""#) == .string("a\"b\\c/d\n\t\r\u{8}\u{C}"))
        #expect(try parse(#""\u00e9\u4e2d""#) == .string("é中"))
        #expect(try parse(#""\ud83d\ude00""#) == .string("😀"))
        #expect(try parse("\"héllo 中 😀\"") == .string("héllo 中 😀"))
        #expect(try parse(#""\u0000""#) == .string("\u{0}"))
    }

    @Test func deepNesting() throws {
        let ok = String(repeating: "[", count: JSONParser.maxDepth) + String(repeating: "]", count: JSONParser.maxDepth)
        _ = try parse(ok)
        let deep = String(repeating: "[", count: JSONParser.maxDepth + 1) + String(repeating: "]", count: JSONParser.maxDepth + 1)
        #expect(syntaxError(deep)?.message.contains("nesting deeper than") == true)
        // Far deeper input is refused without exhausting the stack.
        #expect(syntaxError(String(repeating: "{\"a\":", count: 100_000)) != nil)
    }

    @Test func errorsNameTheColumn() {
        let cases: [(String, Int, String)] = [
            ("", 1, "expected a value, got the end of the line"),
            ("{", 2, "expected a string key, got the end of the line"),
            (#"{"a" 1}"#, 6, "expected ':' after the key \"a\", got '1'"),
            (#"{"a": 1 "b": 2}"#, 9, "expected ',' or '}' after a value in an object, got '\"'"),
            (#"{"a": 1,}"#, 9, "expected a string key after ',', got '}'"),
            ("[1, 2", 6, "expected ',' or ']' after a value in an array, got the end of the line"),
            ("[1,]", 4, "expected a value, got ']'"),
            ("{'a': 1}", 2, "expected a string key, got '''"),
            (#"{"a": tru}"#, 7, "expected a value (true, false or null are spelled in lower case), got 't'"),
            (#"{"a": True}"#, 7, "expected a value, got 'T'"),
            (#"{"a": NaN}"#, 7, "expected a value, got 'N'"),
            (#"{"a": 01}"#, 7, "invalid number: leading zeros are not allowed"),
            (#"{"a": 1.}"#, 7, "invalid number: a digit must follow '.'"),
            (#"{"a": -}"#, 7, "invalid number: a digit must follow '-'"),
            (#"{"a": 1e}"#, 7, "invalid number: the exponent has no digits"),
            (#"{"a": 1e999}"#, 7, "number 1e999 is out of range for a double"),
            (#"{"a": "x}"#, 7, "unterminated string (opened at column 7)"),
            ("{\"a\": \"x\ny\"}", 9, "control character byte 0x0A in a string"),
            (#"{"a": "\x"}"#, 8, "invalid escape '\\x' in a string"),
            (#"{"a": "\u12"}"#, 8, "invalid \\u escape (four hex digits expected)"),
            (#"{"a": "\ud800"}"#, 8, "unpaired surrogate \\ud800 in a string"),
            (#"{"a": "\udc00x"}"#, 8, "unpaired surrogate \\udc00 in a string"),
            (#"{"a": 1, "a": 2}"#, 10, "duplicate key \"a\""),
            (#"{"a": 1} x"#, 10, "unexpected 'x' after the value"),
            (#"{"a": 1}{"#, 9, "unexpected '{' after the value"),
            ("[1] // comment", 5, "unexpected '/' after the value"),
        ]
        for (text, column, fragment) in cases {
            let e = syntaxError(text)
            #expect(e?.column == column, "\(text.debugDescription): column \(e?.column ?? -1), expected \(column)")
            #expect(e?.message.contains(fragment) == true, "\(text.debugDescription): \(e?.message ?? "no error")")
        }
    }

    @Test func invalidUTF8() {
        let bytes: [UInt8] = Array("{\"a\": \"".utf8) + [0xC3, 0x28] + Array("\"}".utf8)
        let e = bytes.withUnsafeBufferPointer { b -> JSONSyntaxError? in
            do { _ = try JSONParser.parse(b); return nil } catch { return error as? JSONSyntaxError }
        }
        #expect(e?.message == "invalid UTF-8 in the string")
        #expect(e?.column == 7)
        let outside: [UInt8] = [0x7B, 0xC3, 0xA9, 0x7D]
        let e2 = outside.withUnsafeBufferPointer { b -> JSONSyntaxError? in
            do { _ = try JSONParser.parse(b); return nil } catch { return error as? JSONSyntaxError }
        }
        #expect(e2?.message == "expected a string key, got byte 0xC3")
    }

    @Test func duplicateKeysInLargeObjects() {
        var s = "{"
        for k in 0..<20 { s += "\"k\(k)\": \(k), " }
        s += "\"k13\": 0}"
        #expect(syntaxError(s)?.message == "duplicate key \"k13\"")
    }

    @Test func lineRenderingRoundTrips() throws {
        let text = #"{"z": [1, 2.5, -0.001, 1e+300, "a\"b\n\u0001é", null, false], "a": {"y": 3.0, "b": []}, "m": 9223372036854775807}"#
        let v = try parse(text)
        let line = v.line
        #expect(line == #"{"a": {"b": [], "y": 3.0}, "m": 9223372036854775807, "z": [1, 2.5, -0.001, 1e+300, "a\"b\n\u0001é", null, false]}"#)
        let back = try parse(line)
        #expect(back.line == line)
        if case .object(let kv) = back, case .array(let z) = kv.first(where: { $0.0 == "z" })?.1 {
            #expect(z[1] == .double(2.5) && z[0] == .int(1))
        } else {
            Issue.record("round trip lost the structure: \(line)")
        }
    }
}

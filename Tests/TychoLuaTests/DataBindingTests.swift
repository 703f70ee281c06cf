// DataBindingTests.swift: the `data` module as the REPL sees it: help and completion from its declarations,
// data.null per state, and a JSONL written from Lua read back by TychoText.

import Foundation
import Testing
import TychoLua
import TychoText

@Suite struct DataBindingTests {
    @Test func helpAndCompletion() throws {
        let state = try LuaState()
        #expect(state.completions(for: "data.js") == ["data.jsonl(", "data.jsonl_rows("])
        #expect(state.completions(for: "data.wr") == ["data.write_jsonl("])
        #expect(state.completions(for: "data.nu") == ["data.null"])
        #expect(state.completions(for: "da") == ["data."])
        let help = try #require(state.helpText(topic: "data.batches"))
        #expect(help.hasPrefix("data.batches(rows, options)\n"))
        #expect(help.contains("batch_size"))
        #expect(state.helpText(topic: "data")?.contains("data.jsonl_rows(path)") == true)
    }

    @Test func nullSurvivesTheModuleFieldBeingReplaced() throws {
        // data.null lives in the registry; a script that overwrites the module field does not break reading
        // or writing nulls.
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tycho-data-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("null.jsonl").path
        let state = try LuaState()
        #expect(state.execute("""
            local n = data.null
            assert(tostring(n) == 'data.null' and require('data').null == n)
            data.null = nil
            data.write_jsonl('\(path)', {{a = n}})
            assert(data.jsonl('\(path)')[1].a == n)
            """) == nil)
        #expect(try JSONLines.read(path: path) == [.object([("a", .null)])])
    }

    @Test func linesWrittenFromLuaReadBackInSwift() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tycho-data-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("rows.jsonl").path
        let state = try LuaState()
        #expect(state.execute("data.write_jsonl('\(path)', {{b = 1, a = {1.5, data.null}}, {text = 'é'}})") == nil)
        let rows = try JSONLines.read(path: path)
        #expect(rows == [.object([("a", .array([.double(1.5), .null])), ("b", .int(1))]), .object([("text", .string("é"))])])
    }
}

// LuaSandboxTests.swift: sandboxed Lua graders from Swift (LuaSandbox.swift), as the RFT trainer calls them: from a
// JSON spec, on several threads at once, and through their failures.

import Foundation
import Testing
import TychoLua
import TychoText
import TychoTrain

@Suite struct LuaSandboxTests {
    @Test func specWithALuaGraderRunsFromSwift() throws {
        let spec = try JSONParser.parse(#"""
            {"type": "multi", "calculate_output": "0.5 * exact + 0.5 * len",
             "graders": {"exact": {"type": "string_check", "reference": "{{item.answer}}"},
                         "len": {"type": "lua", "source": "return function(s, i) return #s.output_text <= i.max and 1 or 0 end"}}}
            """#)
        let g = try GraderSpec.make(spec, lua: LuaGraders.specFactory)
        let item = try JSONParser.parse(#"{"answer": "Paris", "max": 5}"#)
        #expect(g.run(sample: GraderSample(outputText: "Paris"), item: item).score == 1)
        #expect(g.run(sample: GraderSample(outputText: "Lyon, France"), item: item).score == 0)
    }

    @Test func gradersRunOnManyThreadsAtOnce() throws {
        let g = try LuaGraders.make(source: "return function(s, i) local n = 0 for k = 1, #s.output_text do n = n + k end return n end")
        let scores = UnsafeMutableBufferPointer<Double>.allocate(capacity: 64)
        defer { scores.deallocate() }
        DispatchQueue.concurrentPerform(iterations: 64) { k in
            scores[k] = g.run(sample: GraderSample(outputText: String(repeating: "x", count: k)), item: .object([])).score
        }
        for k in 0..<64 { #expect(scores[k] == Double(k * (k + 1) / 2), "sample \(k)") }
    }

    @Test func failuresAreResults() throws {
        let limits = SandboxLimits(instructions: 100_000, memoryBytes: 8 << 20)
        for (source, kind) in [("return function() while true do end end", GraderError.Kind.budgetExceeded),
                               ("return function() return #string.rep('x', 1e8) end", .memoryExceeded),
                               ("return function() return io.open('/etc/passwd') end", .runtimeError)] {
            let g = try LuaGraders.make(source: source, limits: limits)
            let r = g.run(sample: GraderSample(outputText: ""), item: .object([]))
            #expect(r.score == 0 && r.error?.kind == kind, "\(source): \(String(describing: r.error))")
        }
        #expect(throws: GraderSpecError.self) { try LuaGraders.make(source: "return 1") }
    }
}

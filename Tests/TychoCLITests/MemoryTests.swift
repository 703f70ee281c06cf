// MemoryTests.swift: Lua's collector sees tensor memory, so a loop making 1 MB temporaries keeps its
// resident memory flat (the Torch7 heap-tracking problem).

import Foundation
import Testing

@Suite struct MemoryTests {
    @Test func temporariesInALoopKeepResidentMemoryFlat() throws {
        let script = """
            local function rss()
              for line in io.lines("/proc/self/status") do
                local kb = line:match("^VmRSS:%s+(%d+)")
                if kb then return tonumber(kb) end
              end
            end
            tensor.set_num_threads(1)
            local x = tensor.ones(262144)  -- 1 MB
            for i = 1, 2000 do local y = x + 1 end
            local before = rss()
            for i = 1, 100000 do local y = x + 1 end
            local after = rss()
            print(before, after)
            """
        let r = try TychoProcess.run(["-e", script])
        #expect(r.status == 0, "\(r.stderr)")
        let fields = r.stdout.split(whereSeparator: { $0 == "\t" || $0 == "\n" }).compactMap { Double($0) }
        try #require(fields.count == 2)
        let growthMB = (fields[1] - fields[0]) / 1024
        print("RSS before \(fields[0]) kB, after 100,000 x 1 MB temporaries \(fields[1]) kB (growth \(growthMB) MB)")
        // Without heap tracking this loop would hold ~100 GB; allow allocator slack of 64 MB.
        #expect(growthMB < 64)
    }
}

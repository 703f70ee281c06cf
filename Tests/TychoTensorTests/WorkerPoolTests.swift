// WorkerPoolTests.swift: Parallel.forRanges from several threads at once, and nested, still covers every
// index exactly once (WorkerPool.swift runs one job at a time; other callers run their chunks themselves).

import Foundation
import Testing
import TychoTensor

@Suite struct WorkerPoolTests {
    @Test func concurrentAndNestedCallsCoverEveryIndexOnce() {
        let callers = 4, count = 1 << 18, rounds = 50
        let counts = UnsafeMutablePointer<UInt8>.allocate(capacity: callers * count)
        counts.initialize(repeating: 0, count: callers * count)
        defer { counts.deallocate() }
        DispatchQueue.concurrentPerform(iterations: callers) { k in
            let mine = counts + k * count
            for r in 0..<rounds {
                if r % 2 == 0 {
                    Parallel.forRanges(count) { range in for i in range { mine[i] &+= 1 } }
                } else {
                    // Nested: each outer range splits again.
                    Parallel.forRanges(4, cost: count / 4) { outer in
                        for q in outer {
                            let base = q * (count / 4)
                            Parallel.forRanges(count / 4) { range in for i in range { mine[base + i] &+= 1 } }
                        }
                    }
                }
            }
        }
        var bad = 0
        for i in 0..<(callers * count) where counts[i] != UInt8(rounds) { bad += 1 }
        #expect(bad == 0, "\(bad) indices not covered exactly \(rounds) times")
    }
}

// ParallelTests.swift: results do not depend on the thread count (Parallel.swift).
//
// `Parallel.threads` is process-wide and tests run concurrently, so everything that changes it lives in this
// one test, which restores it. Other tests may run meanwhile on either setting; by design that changes only
// their speed, never their results.

import Testing
import TychoTensor

@Suite struct ParallelTests {
    /// Results of kernels that split their work, on inputs large enough to be split.
    private func workload() throws -> [[Float]] {
        let x = data([1 << 20], seed: 11, scale: 3)      // 4 MB: well past the parallel threshold
        let m = try x.view([1024, 1024])
        let col = data([1024, 1], seed: 12)
        return [
            [try x.sum().item()],
            [try x.mean().item()],
            values(try x.exp()),
            values(try m.adding(col)),                    // broadcast rows
            values(try m.transpose(0, 1).multiplying(m)), // strided operand
            values(try m.sum(dim: 0)),
            values(try m.sum(dim: 1)),
            values(try m.softmax(dim: 1)),
            values(try m.logSumExp(dim: 0)),
            values(try m.extreme(dim: 1, largest: true).indices),
            values(try m.transpose(0, 1).contiguous()),
            values(try x.gelu()),
            values(try m.softmax(dim: 0, log: true)),
            values(try Tensor.geluBackward(x: x, grad: x.exp(), approximateTanh: true)),
            values(try Tensor.softmaxBackward(y: m.softmax(dim: 1), grad: m, dim: 1)),
            values(try Tensor.logSoftmaxBackward(y: m.softmax(dim: 0, log: true), grad: m, dim: 0)),
        ]
    }

    @Test func singleAndMultiThreadedResultsAreBitwiseEqual() throws {
        let saved = Parallel.threads
        defer { Parallel.threads = saved }
        Parallel.threads = 1
        let one = try workload()
        Parallel.threads = 2
        #expect(Parallel.threads == 2)
        let two = try workload()
        #expect(one.count == two.count)
        for (k, (a, b)) in zip(one, two).enumerated() {
            #expect(a.count == b.count)
            let same = zip(a, b).allSatisfy { $0.bitPattern == $1.bitPattern }
            #expect(same, "result \(k) differs between 1 and 2 threads")
        }
    }

    @Test func forRangesCoversEveryIndexOnce() {
        for count in [0, 1, 7, 100_000, 1 << 20] {
            var seen = [UInt8](repeating: 0, count: count)
            seen.withUnsafeMutableBufferPointer { p in
                let base = p.baseAddress
                Parallel.forRanges(count) { r in for i in r { base![i] += 1 } }
            }
            #expect(seen.allSatisfy { $0 == 1 }, "count \(count)")
        }
    }
}

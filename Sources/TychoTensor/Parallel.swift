// Parallel.swift: how many threads Tycho's kernels and OpenBLAS use, and the one parallel loop.
//
// Work is split into chunks whose boundaries depend only on the problem size, never on the thread count,
// so results are bitwise identical whatever `threads` is.

import Dispatch
import Foundation
import COpenBLAS

public enum Parallel {
    nonisolated(unsafe) private static var _threads: Int = {
        // OpenBLAS itself stays on one thread: its idle threads spin for a long time after every call and
        // starve Tycho's workers; large products are split over Tycho's threads instead (RowInvariantGemm).
        openblas_set_num_threads(1)
        return max(1, ProcessInfo.processInfo.activeProcessorCount)
    }()

    /// Threads used by Tycho's kernels, matrix products included.
    public static var threads: Int {
        get { _threads }
        set { _threads = max(1, newValue) }
    }

    /// Below this many elements of work a kernel runs on the calling thread.
    public static let grain = 1 << 15

    /// Calls `body` on consecutive ranges covering `0..<count`, in parallel when the work is large.
    /// `cost` is the number of elements touched per unit of `count`.
    @inline(__always)
    public static func forRanges(_ count: Int, cost: Int = 1, _ body: (Range<Int>) -> Void) {
        let work = count * max(cost, 1)
        let t = threads
        if t <= 1 || work < 2 * grain || count < 2 {
            if count > 0 { body(0..<count) }
            return
        }
        let chunks = min(t * 4, count, work / grain)
        if chunks <= 1 { body(0..<count); return }
        withoutActuallyEscaping(body) { body in
            let chunk = { (c: Int) in
                let lo = count * c / chunks
                let hi = count * (c + 1) / chunks
                if lo < hi { body(lo..<hi) }
            }
            #if os(Linux)
            // Tycho's own workers (WorkerPool.swift); when they are busy with another call, run here.
            if !WorkerPool.shared.run(chunks: chunks, helpers: t - 1, chunk) {
                for c in 0..<chunks { chunk(c) }
            }
            #else
            DispatchQueue.concurrentPerform(iterations: chunks, execute: chunk)
            #endif
        }
    }
}

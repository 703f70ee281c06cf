// BatchFaultEngine.swift: a test hook. Wraps an engine to make chosen requests fail a given number of times
// and to slow every request down, so that retries, the errors file and kills at random moments can be tested
// with a real engine underneath. It changes no result: a request that does not fail is passed through.
//
// The `tycho batch` command installs it only when the environment variables TYCHO_BATCH_TEST_FAULTS
// (`id=count,id=count`: fail custom_id `id` its first `count` attempts in this process) or
// TYCHO_BATCH_TEST_DELAY (seconds to wait after each finished request) are set. It is not a user feature.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

public final class BatchFaultEngine: BatchEngine {
    let inner: BatchEngine
    /// custom_id -> failures still to inject.
    public private(set) var failuresLeft: [String: Int]
    /// Seconds to wait after each finished request.
    let delay: Double

    public init(wrapping inner: BatchEngine, failures: [String: Int] = [:], delay: Double = 0) {
        self.inner = inner
        self.failuresLeft = failures
        self.delay = delay
    }

    /// Parses `id=count,id=count` (whitespace around items is ignored).
    /// - Throws: `BatchJobError` for an item that is not `id=count` with count >= 0.
    public static func parseFaults(_ spec: String) throws -> [String: Int] {
        var out: [String: Int] = [:]
        for item in spec.split(separator: ",") {
            let t = trimSpaces(item)
            guard let eq = t.lastIndex(of: "="), let n = Int(t[t.index(after: eq)...]), n >= 0, eq > t.startIndex else {
                throw BatchJobError("test hook TYCHO_BATCH_TEST_FAULTS: expected id=count items, got '\(t)'")
            }
            out[String(t[..<eq])] = n
        }
        return out
    }

    public func run(_ requests: [BatchRequest], onFinish: (Int, Result<BatchResponse, Error>) -> Void) {
        var passed: [Int] = []
        for (i, r) in requests.enumerated() {
            if let left = failuresLeft[r.customID], left > 0 {
                failuresLeft[r.customID] = left - 1
                onFinish(i, .failure(BatchRequestError(code: "server_error", message: "injected failure (test hook)", retryable: true)))
                pause()
            } else {
                passed.append(i)
            }
        }
        guard !passed.isEmpty else { return }
        inner.run(passed.map { requests[$0] }) { k, result in
            guard k >= 0 && k < passed.count else { return }
            onFinish(passed[k], result)
            pause()
        }
    }

    func pause() {
        if delay > 0 { usleep(useconds_t(Swift.min(delay, 60) * 1e6)) }
    }
}

private func trimSpaces(_ t: Substring) -> String {
    var s = t
    while s.first == " " { s.removeFirst() }
    while s.last == " " { s.removeLast() }
    return String(s)
}

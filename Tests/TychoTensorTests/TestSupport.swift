// TestSupport.swift: the comparison helper the TychoTensor tests share.
//
// Like llm.c's checker, a failed comparison reports its label, the first few values as OK / NOT OK, and the
// largest difference. Tolerance is absolute plus relative: |got - want| <= tol + tol * |want|.

import Testing
import TychoTensor

/// Row-major values of a tensor.
func values(_ t: Tensor) -> [Float] { t.toArray() }

/// A tensor from a shape and values (the test's own data, so a failure here is a test bug).
func T(_ shape: [Int], _ values: [Float]) -> Tensor {
    // swiftlint:disable:next force_try
    try! Tensor(shape: shape, values: values)
}

/// A 1-D tensor.
func T(_ values: [Float]) -> Tensor { T([values.count], values) }

/// Deterministic test data that does not touch the global random generator (Lua tests seed it).
func data(_ shape: [Int], seed: UInt64 = 1, scale: Float = 1) -> Tensor {
    var g = RandomGenerator(seed: seed)
    let n = shape.reduce(1, *)
    return T(shape, (0..<n).map { _ in (g.nextUniform() * 2 - 1) * scale })
}

/// Checks shape and values of `got` against `want`.
func expectClose(_ got: Tensor, _ wantShape: [Int], _ want: [Float], tol: Float = 1e-6, _ label: String = "",
                 sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(got.shape == wantShape, "\(label): shape \(got.shape) != \(wantShape)", sourceLocation: sourceLocation)
    expectClose(values(got), want, tol: tol, label, sourceLocation: sourceLocation)
}

func expectClose(_ got: [Float], _ want: [Float], tol: Float = 1e-6, _ label: String = "",
                 sourceLocation: SourceLocation = #_sourceLocation) {
    guard got.count == want.count else {
        Issue.record("\(label): \(got.count) values, expected \(want.count)", sourceLocation: sourceLocation)
        return
    }
    var maxdiff: Float = 0
    var ok = true
    for (g, w) in zip(got, want) {
        if w.isNaN { ok = ok && g.isNaN; continue }
        if w.isInfinite { ok = ok && g == w; continue }
        let d = Swift.abs(g - w)
        maxdiff = Swift.max(maxdiff, d)
        if !(d <= tol + tol * Swift.abs(w)) { ok = false }
    }
    if !ok {
        var report = ["\(label):"]
        for i in 0..<Swift.min(5, got.count) {
            let d = Swift.abs(got[i] - want[i])
            let good = d <= tol + tol * Swift.abs(want[i]) || (got[i].isNaN && want[i].isNaN) || got[i] == want[i]
            report.append("  \(good ? "OK " : "NOT OK") \(got[i]) \(want[i])")
        }
        report.append("  maxdiff \(maxdiff)")
        Issue.record(Comment(rawValue: report.joined(separator: "\n")), sourceLocation: sourceLocation)
    }
}

/// Expects `body` to throw a `TensorError` whose message contains `fragment`.
func expectTensorError(_ fragment: String, sourceLocation: SourceLocation = #_sourceLocation,
                       _ body: () throws -> Any) {
    do {
        _ = try body()
        Issue.record("expected an error containing '\(fragment)'", sourceLocation: sourceLocation)
    } catch let e as TensorError {
        #expect(e.message.contains(fragment), "'\(e.message)' lacks '\(fragment)'", sourceLocation: sourceLocation)
    } catch {
        Issue.record("unexpected error \(error)", sourceLocation: sourceLocation)
    }
}

// TestSupport.swift: helpers the TychoTrain tests share: tensors from values, deterministic data, parameters with
// grads, and error expectations.

import Testing
import TychoTensor
import TychoTrain

/// A tensor from a shape and values (the test's own data, so a failure here is a test bug).
func T(_ shape: [Int], _ values: [Float]) -> Tensor {
    // swiftlint:disable:next force_try
    try! Tensor(shape: shape, values: values)
}

func T(_ values: [Float]) -> Tensor { T([values.count], values) }

/// Deterministic values in [-scale, scale) that do not touch any shared generator.
func data(_ n: Int, seed: UInt64, scale: Float = 1) -> [Float] {
    var g = RandomGenerator(seed: seed)
    return (0..<n).map { _ in (g.nextUniform() * 2 - 1) * scale }
}

/// A leaf parameter that requires grad.
func param(_ shape: [Int], seed: UInt64) -> Tensor {
    let t = T(shape, data(shape.reduce(1, *), seed: seed))
    // swiftlint:disable:next force_try
    try! t.setRequiresGrad(true)
    return t
}

/// Sets each parameter's grad (nil: none) to deterministic values drawn from `seed`.
func setGrads(_ params: [Tensor], seed: UInt64, skip: Set<Int> = [], scale: Float = 1) {
    for (i, p) in params.enumerated() {
        p.grad = skip.contains(i) ? nil : T(p.shape, data(p.count, seed: seed &+ UInt64(i) &* 7919, scale: scale))
    }
}

/// Expects `body` to throw an error whose description contains `fragment`.
func expectError(_ fragment: String, sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Any) {
    do {
        _ = try body()
        Issue.record("expected an error containing '\(fragment)'", sourceLocation: sourceLocation)
    } catch {
        let text = "\(error)"
        #expect(text.contains(fragment), "'\(text)' lacks '\(fragment)'", sourceLocation: sourceLocation)
    }
}

/// Bitwise equality of float arrays (NaN-free data).
func bitwiseEqual(_ a: [Float], _ b: [Float]) -> Bool {
    a.count == b.count && zip(a, b).allSatisfy { $0.bitPattern == $1.bitPattern }
}

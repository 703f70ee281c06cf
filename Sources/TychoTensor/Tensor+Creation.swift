// Tensor+Creation.swift: constructors (zeros, ones, full, arange, linspace, eye) and random tensors.

import Foundation

extension Tensor {
    public static func zeros(_ shape: [Int]) throws -> Tensor { try Tensor(uninitializedShape: shape, zeroed: true) }

    public static func full(_ shape: [Int], value: Float) throws -> Tensor {
        if value == 0 { return try zeros(shape) }
        let t = try Tensor(uninitializedShape: shape)
        t.fill(value)
        return t
    }

    public static func ones(_ shape: [Int]) throws -> Tensor { try full(shape, value: 1) }

    /// `start, start+step, ...` up to but excluding `end` (PyTorch's arange).
    public static func arange(start: Double, end: Double, step: Double) throws -> Tensor {
        guard step != 0, step.isFinite, start.isFinite, end.isFinite else {
            throw TensorError("arange needs finite bounds and a non-zero step")
        }
        guard (end - start) / step >= 0 else {
            throw TensorError("arange: step \(step) does not lead from \(start) to \(end)")
        }
        let steps = ((end - start) / step).rounded(.up)
        guard steps < 1e15 else { throw TensorError("arange: \(steps) values are too many") }
        let n = Int(steps)
        let t = try Tensor(uninitializedShape: [n])
        for i in 0..<n { t.basePointer[i] = Float(start + Double(i) * step) }
        return t
    }

    /// `steps` evenly spaced values from `start` to `end` inclusive.
    public static func linspace(start: Double, end: Double, steps: Int) throws -> Tensor {
        guard steps >= 0 else { throw TensorError("linspace: steps must be non-negative") }
        let t = try Tensor(uninitializedShape: [steps])
        if steps == 1 { t.basePointer[0] = Float(start) }
        if steps > 1 {
            let h = (end - start) / Double(steps - 1)
            // Fill from both ends, as PyTorch does, so the last value is exactly `end`.
            for i in 0..<steps {
                t.basePointer[i] = Float(i < steps / 2 ? start + h * Double(i) : end - h * Double(steps - 1 - i))
            }
        }
        return t
    }

    /// An n x m matrix with ones on the diagonal.
    public static func eye(_ n: Int, _ m: Int? = nil) throws -> Tensor {
        let cols = m ?? n
        let t = try zeros([n, cols])
        for i in 0..<Swift.min(n, cols) { t.basePointer[i * cols + i] = 1 }
        return t
    }

    /// Uniform in [0, 1), from the process-wide generator.
    public static func rand(_ shape: [Int]) throws -> Tensor { try rand(shape, using: &GlobalRandom.generator) }

    /// Standard normal, from the process-wide generator.
    public static func randn(_ shape: [Int]) throws -> Tensor { try randn(shape, using: &GlobalRandom.generator) }

    /// Integers uniform in [low, high), from the process-wide generator.
    public static func randint(low: Int, high: Int, shape: [Int]) throws -> Tensor {
        try randint(low: low, high: high, shape: shape, using: &GlobalRandom.generator)
    }

    /// Uniform in [0, 1).
    public static func rand(_ shape: [Int], using generator: inout RandomGenerator) throws -> Tensor {
        let t = try Tensor(uninitializedShape: shape)
        let p = t.basePointer
        for i in 0..<t.count { p[i] = generator.nextUniform() }
        return t
    }

    /// Standard normal.
    public static func randn(_ shape: [Int], using generator: inout RandomGenerator) throws -> Tensor {
        let t = try Tensor(uninitializedShape: shape)
        let p = t.basePointer, n = t.count
        var i = 0
        while i < n {
            let (z0, z1) = generator.nextNormalPair()
            p[i] = Float(z0)
            if i + 1 < n { p[i + 1] = Float(z1) }
            i += 2
        }
        return t
    }

    /// Integers uniform in [low, high).
    public static func randint(low: Int, high: Int, shape: [Int], using generator: inout RandomGenerator) throws -> Tensor {
        guard high > low else { throw TensorError("randint: high (\(high)) must be greater than low (\(low))") }
        guard Swift.abs(low) <= 1 << 24, Swift.abs(high) <= 1 << 24 else {
            throw TensorError("randint: bounds must lie within +-2^24 to be exact in float32")
        }
        let t = try Tensor(uninitializedShape: shape)
        let p = t.basePointer, span = UInt64(high - low)
        for i in 0..<t.count { p[i] = Float(low + Int(generator.nextInt(below: span))) }
        return t
    }
}

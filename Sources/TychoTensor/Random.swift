// Random.swift: Tycho's random number generator (xoshiro256** seeded by splitmix64).
//
// Identical sequences on every machine for the same seed: integer arithmetic only, floats derived from the
// top 24 bits, normals by Box-Muller in Double. Generation is single-threaded, in row-major order.

public struct RandomGenerator {
    private var s: (UInt64, UInt64, UInt64, UInt64)

    public init(seed: UInt64) {
        var x = seed
        func splitmix() -> UInt64 {
            x &+= 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        s = (splitmix(), splitmix(), splitmix(), splitmix())
    }

    /// The four 64-bit words of the generator's state, to save it and restore it exactly (`init(state:)`).
    public var state: [UInt64] { [s.0, s.1, s.2, s.3] }

    /// A generator continuing from a saved `state`; nil unless it is four words, not all zero (a state
    /// xoshiro256** never reaches).
    public init?(state: [UInt64]) {
        guard state.count == 4, state.contains(where: { $0 != 0 }) else { return nil }
        s = (state[0], state[1], state[2], state[3])
    }

    @inline(__always)
    private static func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }

    public mutating func next() -> UInt64 {
        let result = RandomGenerator.rotl(s.1 &* 5, 7) &* 9
        let t = s.1 << 17
        s.2 ^= s.0
        s.3 ^= s.1
        s.1 ^= s.2
        s.0 ^= s.3
        s.2 ^= t
        s.3 = RandomGenerator.rotl(s.3, 45)
        return result
    }

    /// Uniform in [0, 1) with 24 random bits (every float32 multiple of 2^-24).
    public mutating func nextUniform() -> Float { Float(next() >> 40) * 0x1p-24 }

    /// Uniform in (0, 1) with 53 random bits, never 0.
    public mutating func nextOpenUniformDouble() -> Double { (Double(next() >> 11) + 0.5) * 0x1p-53 }

    /// Standard normal pair by Box-Muller.
    public mutating func nextNormalPair() -> (Double, Double) {
        let u1 = nextOpenUniformDouble(), u2 = nextOpenUniformDouble()
        let r = (-2 * _log(u1)).squareRoot()
        let theta = 2 * Double.pi * u2
        return (r * _cos(theta), r * _sin(theta))
    }

    /// Uniform integer in [0, bound) without modulo bias (Lemire's method).
    public mutating func nextInt(below bound: UInt64) -> UInt64 {
        precondition(bound > 0)
        var m = next().multipliedFullWidth(by: bound)
        if m.low < bound {
            let threshold = (0 &- bound) % bound
            while m.low < threshold { m = next().multipliedFullWidth(by: bound) }
        }
        return m.high
    }
}

import Foundation
@inline(__always) private func _log(_ x: Double) -> Double { Foundation.log(x) }
@inline(__always) private func _cos(_ x: Double) -> Double { Foundation.cos(x) }
@inline(__always) private func _sin(_ x: Double) -> Double { Foundation.sin(x) }

/// The process-wide generator behind `tensor.rand`, `randn` and `randint`.
public enum GlobalRandom {
    nonisolated(unsafe) public static var generator = RandomGenerator(seed: 0x7479_6368_6f)  // "tycho"
    public static func seed(_ seed: UInt64) { generator = RandomGenerator(seed: seed) }
}

// VectorMathTests.swift: accuracy of the SIMD exp family (VectorMath.swift) against double precision.
//
// Inputs sweep float bit patterns evenly across each range (about 400,000 values per function), so every
// binade is covered; errors are measured in ulps of the correctly rounded float result.

import Foundation
import Testing
import TychoTensor

@Suite struct VectorMathTests {
    /// About `count` floats spread evenly over the bit patterns of [lo, hi] (lo < 0 < hi), plus the ends.
    private func sweep(_ lo: Float, _ hi: Float, count: Int = 400_000) -> [Float] {
        func ordinal(_ f: Float) -> Int64 { f.sign == .minus ? -Int64(f.bitPattern & 0x7fff_ffff) : Int64(f.bitPattern) }
        func float(_ k: Int64) -> Float { k < 0 ? -Float(bitPattern: UInt32(-k)) : Float(bitPattern: UInt32(k)) }
        let a = ordinal(lo), b = ordinal(hi)
        let step = max(1, (b - a) / Int64(count))
        return stride(from: a, through: b, by: Int(step)).map(float) + [hi, 0, -0.0]
    }

    private func ulpError(_ got: Float, _ want: Double) -> Double {
        let w = Float(want)
        if w.isInfinite || got.isInfinite { return got == w ? 0 : .infinity }
        let ulp = max(Double(Swift.abs(w).ulp), Double(Float.leastNonzeroMagnitude))
        return Swift.abs(Double(got) - want) / ulp
    }

    /// The largest ulp error of `op` over `xs` against `reference`, and where it occurs.
    private func worst(_ xs: [Float], _ op: (Tensor) throws -> Tensor, _ reference: (Double) -> Double) throws -> (Double, Float) {
        let got = try op(T(xs)).toArray()
        var e = 0.0, at: Float = 0
        for (x, g) in zip(xs, got) {
            let u = ulpError(g, reference(Double(x)))
            if u > e { e = u; at = x }
        }
        return (e, at)
    }

    @Test func expIsWithinOneUlp() throws {
        let (e, at) = try worst(sweep(-104, 89), { try $0.exp() }, { Foundation.exp($0) })
        #expect(e <= 1, "exp: \(e) ulp at \(at)")
        let special = try T([.nan, .infinity, -.infinity, 89, -104, 0]).exp().toArray()
        #expect(special[0].isNaN)
        #expect(special[1] == .infinity && special[2] == 0 && special[3] == .infinity && special[4] == 0 && special[5] == 1)
    }

    @Test func sigmoidAndSilu() throws {
        let (es, xs) = try worst(sweep(-87, 87), { try $0.sigmoid() }, { 1 / (1 + Foundation.exp(-$0)) })
        #expect(es <= 3, "sigmoid: \(es) ulp at \(xs)")
        // silu's results are normal floats down to x = -87 (below, x * e^x is subnormal).
        let (ef, xf) = try worst(sweep(-80, 87), { try $0.silu() }, { $0 / (1 + Foundation.exp(-$0)) })
        #expect(ef <= 4, "silu: \(ef) ulp at \(xf)")
        let special = try T([.nan, .infinity, -.infinity]).sigmoid().toArray()
        #expect(special[0].isNaN && special[1] == 1 && special[2] == 0)
    }

    @Test func geluExactKeepsRelativeAccuracyInTheTail() throws {
        // x * Phi(x) = x/2 * erfc(-x / sqrt 2); results are normal floats down to x = -13.
        let (e, at) = try worst(sweep(-13, 20), { try $0.gelu() }, { 0.5 * $0 * erfc(-$0 / 2.0.squareRoot()) })
        #expect(e <= 12, "gelu: \(e) ulp at \(at)")
        let special = try T([.nan, .infinity, 1000, -1000]).gelu().toArray()
        #expect(special[0].isNaN && special[1] == .infinity && special[2] == 1000 && special[3] == 0)
    }

    @Test func geluTanh() throws {
        // x/2 (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3). For x < -3 the float rounding of u itself
        // (shared by any float implementation) dominates: relative error about 1e-7 * |2u|.
        func reference(_ x: Double) -> Double {
            x / (1 + Foundation.exp(-2 * 0.7978845608028654 * (x + 0.044715 * x * x * x)))
        }
        let (e, at) = try worst(sweep(-3, 20), { try $0.gelu(approximateTanh: true) }, reference)
        #expect(e <= 12, "gelu tanh: \(e) ulp at \(at)")
        let xs = sweep(-9, -3, count: 50_000)
        let got = try T(xs).gelu(approximateTanh: true).toArray()
        for (x, g) in zip(xs, got) {
            let want = reference(Double(x))
            #expect(Swift.abs(Double(g) - want) <= 2e-5 * Swift.abs(want), "gelu tanh at \(x): \(g) vs \(want)")
            if Swift.abs(Double(g) - want) > 2e-5 * Swift.abs(want) { break }
        }
    }
}

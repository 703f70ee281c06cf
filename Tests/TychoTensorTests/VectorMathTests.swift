// VectorMathTests.swift: accuracy of the transcendental kernels (CTensorKernels, through VectorMath.swift)
// against double precision, for the variant in use (through Tensor) and for every variant this CPU can run
// (through the C tables directly), so the generic build is checked on an AVX-512 machine too.
//
// Inputs sweep float bit patterns evenly across each range (about 400,000 values per function), so every
// binade is covered; errors are measured in ulps of the correctly rounded float result.

import CTensorKernels
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

    /// Every positive finite float's binades, about `count` values spread evenly over the bit patterns.
    private func positiveSweep(count: Int = 400_000) -> [Float] {
        let top = Int(Float.greatestFiniteMagnitude.bitPattern)
        return stride(from: 1, through: top, by: top / count).map { Float(bitPattern: UInt32($0)) }
            + [.greatestFiniteMagnitude, .leastNormalMagnitude, 1]
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

    @Test func logIsWithinOneUlp() throws {
        let (e, at) = try worst(positiveSweep(), { try $0.log() }, { Foundation.log($0) })
        #expect(e <= 1, "log: \(e) ulp at \(at)")
        let special = try T([.nan, .infinity, -.infinity, 0, -0.0, -1, 1]).log().toArray()
        #expect(special[0].isNaN && special[1] == .infinity && special[2].isNaN)
        #expect(special[3] == -.infinity && special[4] == -.infinity && special[5].isNaN && special[6] == 0)
    }

    @Test func tanh() throws {
        let (e, at) = try worst(sweep(-10, 10), { try $0.tanh() }, { Foundation.tanh($0) })
        #expect(e <= 2, "tanh: \(e) ulp at \(at)")
        let special = try T([.nan, .infinity, -.infinity, -0.0, 100, -100]).tanh().toArray()
        #expect(special[0].isNaN && special[1] == 1 && special[2] == -1)
        #expect(special[3] == 0 && special[3].sign == .minus && special[4] == 1 && special[5] == -1)
    }

    // MARK: every variant

    typealias Kernel = @convention(c) (UnsafePointer<Float>?, UnsafeMutablePointer<Float>?, Int) -> Void

    /// The kernel variants this CPU can run: generic always, avx2 and avx512 where present.
    private var variants: [tk_kernels] { (0...2).compactMap { tk_variant(Int32($0))?.pointee } }

    private func run(_ kernel: Kernel, _ xs: [Float]) -> [Float] {
        var ys = [Float](repeating: 0, count: xs.count)
        xs.withUnsafeBufferPointer { x in ys.withUnsafeMutableBufferPointer { y in kernel(x.baseAddress, y.baseAddress, xs.count) } }
        return ys
    }

    private func worst(_ xs: [Float], _ kernel: Kernel, _ reference: (Double) -> Double) -> (Double, Float) {
        var e = 0.0, at: Float = 0
        for (x, g) in zip(xs, run(kernel, xs)) {
            let u = ulpError(g, reference(Double(x)))
            if u > e { e = u; at = x }
        }
        return (e, at)
    }

    @Test func everyVariantKeepsTheBounds() {
        let names = variants.map { String(cString: $0.name) }
        #expect(names.first == "generic")
        for k in variants {
            let name = String(cString: k.name)
            let cases: [(String, Kernel, [Float], (Double) -> Double, Double)] = [
                ("exp", k.exp, sweep(-104, 89), { Foundation.exp($0) }, 1),
                ("log", k.log, positiveSweep(), { Foundation.log($0) }, 1),
                ("tanh", k.tanh, sweep(-10, 10), { Foundation.tanh($0) }, 2),
                ("sigmoid", k.sigmoid, sweep(-87, 87), { 1 / (1 + Foundation.exp(-$0)) }, 3),
                ("silu", k.silu, sweep(-80, 87), { $0 / (1 + Foundation.exp(-$0)) }, 4),
                ("gelu", k.gelu, sweep(-13, 20), { 0.5 * $0 * erfc(-$0 / 2.0.squareRoot()) }, 12),
                ("gelu_tanh", k.gelu_tanh, sweep(-3, 20),
                 { $0 / (1 + Foundation.exp(-2 * 0.7978845608028654 * ($0 + 0.044715 * $0 * $0 * $0))) }, 12),
            ]
            for (f, kernel, xs, reference, bound) in cases {
                let (e, at) = worst(xs, kernel, reference)
                #expect(e <= bound, "\(name) \(f): \(e) ulp at \(at)")
            }
            let special = run(k.exp, [.nan, .infinity, -.infinity])
            #expect(special[0].isNaN && special[1] == .infinity && special[2] == 0, "\(name) exp specials")
        }
    }

    /// An element's result does not depend on where it sits in the array (vector body or padded end):
    /// what makes results independent of how work is split across threads.
    @Test func resultsDoNotDependOnPosition() {
        var g = RandomGenerator(seed: 5)
        let xs = (0..<101).map { _ in (g.nextUniform() * 2 - 1) * 12 }
        for k in variants {
            for kernel in [k.exp, k.log, k.tanh, k.sigmoid, k.silu, k.gelu, k.gelu_tanh] as [Kernel?] {
                let whole = run(kernel!, xs)
                for start in [1, 3, 17, 50] {
                    let part = run(kernel!, Array(xs[start...]))
                    #expect(zip(whole[start...], part).allSatisfy { $0.bitPattern == $1.bitPattern || ($0.isNaN && $1.isNaN) },
                            "\(String(cString: k.name)) differs from offset \(start)")
                }
            }
        }
    }

    @Test func rowKernelsOfEveryVariant() {
        var g = RandomGenerator(seed: 6)
        for n in [1, 5, 16, 17, 40, 1000] {
            let xs = (0..<n).map { _ in (g.nextUniform() * 2 - 1) * 20 }
            let m = Double(xs.max()!)
            let z = xs.reduce(0.0) { $0 + Foundation.exp(Double($1) - m) }
            let soft = xs.map { Float(Foundation.exp(Double($0) - m) / z) }
            let logSoft = xs.map { Float(Double($0) - m - Foundation.log(z)) }
            for k in variants {
                var y = [Float](repeating: 0, count: n)
                y.withUnsafeMutableBufferPointer { k.softmax_row(xs, $0.baseAddress, n) }
                expectClose(y, soft, tol: 1e-6, "\(String(cString: k.name)) softmax n=\(n)")
                y.withUnsafeMutableBufferPointer { k.log_softmax_row(xs, $0.baseAddress, n) }
                expectClose(y, logSoft, tol: 1e-6, "\(String(cString: k.name)) log_softmax n=\(n)")
                let lse = k.logsumexp(xs, n, 1)
                expectClose([lse], [Float(m + Foundation.log(z))], tol: 1e-6, "\(String(cString: k.name)) logsumexp n=\(n)")
                // The same elements 3 apart give the same bits.
                var spread = [Float](repeating: .nan, count: 3 * n)
                for i in 0..<n { spread[3 * i] = xs[i] }
                #expect(k.logsumexp(spread, n, 3).bitPattern == lse.bitPattern)
            }
        }
    }
}

// DecodeLinearTests.swift: CDecodeKernels' products (through DecodeLinear and the attention kernels) against a
// Double reference, row by row invariance for any number of rows, and the same bits from every instruction-set
// variant this machine has (generic, AVX2, AVX-512).

import CDecodeKernels
import Foundation
import Testing
@testable import TychoNN
import TychoTensor

private func random(_ shape: [Int], seed: UInt64) throws -> Tensor {
    var g = RandomGenerator(seed: seed)
    let n = shape.reduce(1, *)
    return try Tensor(shape: shape, values: (0..<n).map { _ in g.nextUniform() * 2 - 1 })
}

private func bits(_ t: Tensor) -> [UInt32] { t.toArray().map(\.bitPattern) }

@Suite struct DecodeLinearTests {
    /// (k, n) pairs: tails of every width, k beyond OpenBLAS's block.
    static let shapes = [(1, 1), (7, 5), (32, 96), (128, 512), (512, 128), (100, 77), (1536, 384), (384, 1152), (33, 1000)]

    @Test func agreesWithADoubleReference() throws {
        for (k, n) in DecodeLinearTests.shapes {
            let x = try random([5, k], seed: 1), w = try random([k, n], seed: 2), b = try random([n], seed: 3)
            let y = try DecodeLinear.forward(x, weight: PackedWeight(w, transposed: false), bias: b).toArray()
            let xv = x.toArray(), wv = w.toArray(), bv = b.toArray()
            var worst = 0.0
            for i in 0..<5 {
                for j in 0..<n {
                    var acc = Double(bv[j]), size = Swift.abs(Double(bv[j]))
                    for p in 0..<k {
                        let t = Double(xv[i * k + p]) * Double(wv[p * n + j])
                        acc += t
                        size += Swift.abs(t)
                    }
                    worst = max(worst, Swift.abs(acc - Double(y[i * n + j])) / max(size, 1e-30))
                }
            }
            // Error relative to the sum of |terms| (the bound of recursive summation is k·2^-24 of it).
            #expect(worst < 1e-6, "k \(k) n \(n): relative error \(worst)")
        }
    }

    @Test func aRowGivesTheSameBitsForAnyNumberOfRows() throws {
        for (k, n) in DecodeLinearTests.shapes {
            let x = try random([70, k], seed: 4), w = try PackedWeight(random([k, n], seed: 5), transposed: false)
            let b = try random([n], seed: 6)
            let all = try DecodeLinear.forward(x, weight: w, bias: b)
            for m in [1, 2, 3, 4, 5, 9, 16, 33] {
                let part = try DecodeLinear.forward(x.narrow(0, start: 70 - m, length: m), weight: w, bias: b)
                #expect(bits(part) == bits(try all.narrow(0, start: 70 - m, length: m).contiguous()), "k \(k) n \(n) m \(m)")
            }
            let saved = Parallel.threads
            Parallel.threads = 1
            let one = try DecodeLinear.forward(x, weight: w, bias: b)
            Parallel.threads = saved
            #expect(bits(one) == bits(all), "k \(k) n \(n): thread count")
        }
    }

    @Test func everyVariantGivesTheSameBits() throws {
        let variants = (0...2).compactMap { tdk_variant(Int32($0))?.pointee }
        #expect(variants.count >= 1)
        for (k, n) in DecodeLinearTests.shapes {
            let x = try random([6, k], seed: 7), w = try PackedWeight(random([k, n], seed: 8), transposed: false)
            let b = try random([n], seed: 9)
            var outs: [[UInt32]] = []
            for v in variants {
                var y = [Float](repeating: 0, count: 6 * n)
                x.toArray().withUnsafeBufferPointer { xp in
                    w.storage.toArray().withUnsafeBufferPointer { wp in
                        b.toArray().withUnsafeBufferPointer { bp in
                            y.withUnsafeMutableBufferPointer { yp in
                                v.gemm(xp.baseAddress, k, wp.baseAddress, k, n, bp.baseAddress, yp.baseAddress, n, 6, 0, w.panels)
                            }
                        }
                    }
                }
                outs.append(y.map(\.bitPattern))
            }
            #expect(Set(outs.map { $0.hashValue }).count == 1, "k \(k) n \(n): variants \(variants.map { String(cString: $0.name) }) differ")
            // scores and mix as well: one query against n keys of size k (transposed), and n values.
            var s = [[UInt32]](), mixes = [[UInt32]]()
            let q = try random([k], seed: 10).toArray(), kt = try random([k, n], seed: 11).toArray()
            let p = try random([n], seed: 12).toArray(), vals = try random([n, k], seed: 13).toArray()
            for v in variants {
                var sc = [Float](repeating: 0, count: n), mo = [Float](repeating: 0, count: k)
                v.scores(q, kt, n, k, n, 0.3, &sc)
                v.mix(p, vals, n, k, &mo)
                s.append(sc.map(\.bitPattern))
                mixes.append(mo.map(\.bitPattern))
            }
            #expect(Set(s.map { $0.hashValue }).count == 1 && Set(mixes.map { $0.hashValue }).count == 1, "k \(k) n \(n): attention kernels differ")
        }
    }
}

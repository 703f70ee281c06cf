// TensorMatmulTests.swift: matmul shapes, batching and operand layouts (Tensor+Matmul.swift).

import Testing
import TychoTensor

/// The plain triple loop, in Double, for contiguous (M, K) x (K, N).
private func reference(_ a: [Float], _ b: [Float], m: Int, k: Int, n: Int) -> [Float] {
    var out = [Float](repeating: 0, count: m * n)
    for i in 0..<m {
        for j in 0..<n {
            var acc = 0.0
            for p in 0..<k { acc += Double(a[i * k + p]) * Double(b[p * n + j]) }
            out[i * n + j] = Float(acc)
        }
    }
    return out
}

@Suite struct TensorMatmulTests {
    @Test func smallAnalytic() throws {
        let a = T([2, 2], [1, 2, 3, 4]), b = T([2, 2], [5, 6, 7, 8])
        expectClose(try a.matmul(b), [2, 2], [19, 22, 43, 50], tol: 0)
        expectClose(try T([1, 2, 3]).matmul(T([4, 5, 6])), [], [32], tol: 0)
        expectClose(try T([1, 1]).matmul(a), [2], [4, 6], tol: 0)
        expectClose(try a.matmul(T([1, 1])), [2], [3, 7], tol: 0)
        expectClose(try a.matmul(try Tensor.eye(2)), [2, 2], [1, 2, 3, 4], tol: 0)
    }

    @Test func agreesWithReference() throws {
        // The large shapes run the BLAS kernels that tile and thread (both cores), not only the edge cases.
        for (m, k, n) in [(1, 1, 1), (3, 4, 5), (17, 33, 9), (64, 64, 64), (1, 100, 1), (256, 300, 200), (130, 1024, 70)] {
            let a = data([m, k], seed: UInt64(m)), b = data([k, n], seed: UInt64(n + 100))
            // Float32 sums of k products carry rounding error of order sqrt(k) * 2^-24 * sum(abs(terms)): about 1e-5
            // absolute at k = 1024 here, so long sums get a looser bound.
            let tol: Float = k > 256 ? 1e-4 : 1e-5
            expectClose(try a.matmul(b), [m, n], reference(values(a), values(b), m: m, k: k, n: n), tol: tol,
                        "\(m)x\(k) * \(k)x\(n)")
        }
    }

    @Test func batchedWithBroadcasting() throws {
        let a = data([2, 3, 4], seed: 1), b = data([4, 5], seed: 2)
        let ab = try a.matmul(b)
        #expect(ab.shape == [2, 3, 5])
        for i in 0..<2 {
            expectClose(try ab.select(0, i), [3, 5], values(try a.select(0, i).matmul(b)), tol: 0, "batch \(i)")
        }
        let c = data([1, 3, 4], seed: 3), d = data([2, 4, 5], seed: 4)
        let cd = try c.matmul(d)
        #expect(cd.shape == [2, 3, 5])
        for i in 0..<2 {
            expectClose(try cd.select(0, i), [3, 5], values(try c.select(0, 0).matmul(d.select(0, i))), tol: 1e-6)
        }
        #expect(try data([4], seed: 5).matmul(d).shape == [2, 5])
        #expect(try d.matmul(data([5], seed: 6)).shape == [2, 4])
        #expect(try data([3, 1, 2, 4]).matmul(data([2, 4, 6])).shape == [3, 2, 2, 6])
    }

    @Test func transposedAndStridedOperands() throws {
        let a = data([4, 3], seed: 7), b = data([5, 4], seed: 8)
        let at = try a.transpose(0, 1), bt = try b.transpose(0, 1)  // (3, 4), (4, 5): read by BLAS as transposed
        let want = try at.contiguous().matmul(bt.contiguous())
        expectClose(try at.matmul(bt), [3, 5], values(want), tol: 1e-6, "both transposed")
        let narrow = try data([3, 8], seed: 9).narrow(1, start: 2, length: 4)  // row stride 8
        expectClose(try narrow.matmul(bt), [3, 5], values(try narrow.contiguous().matmul(bt)), tol: 1e-6, "narrowed")
        let batchT = try data([2, 5, 4], seed: 10).transpose(1, 2)  // (2, 4, 5)
        expectClose(try data([2, 3, 4], seed: 11).matmul(batchT), [2, 3, 5],
                    values(try data([2, 3, 4], seed: 11).matmul(batchT.contiguous())), tol: 1e-6, "batched transposed")
        // Stride-0 operands (expanded) must be copied for BLAS, in both code paths.
        let col = try T([4, 1], [1, 2, 3, 4]).expand([4, 5])
        expectClose(try data([3, 4]).matmul(col), [3, 5], values(try data([3, 4]).matmul(col.contiguous())), tol: 1e-6,
                    "expanded right operand")
        expectClose(try data([2, 3, 4]).matmul(col), [2, 3, 5], values(try data([2, 3, 4]).matmul(col.contiguous())),
                    tol: 1e-6, "batched with expanded right operand")
        let row = try T([1, 4], [1, -1, 2, 0]).expand([3, 4])
        expectClose(try row.matmul(data([4, 2])), [3, 2], values(try row.contiguous().matmul(data([4, 2]))), tol: 1e-6,
                    "expanded left operand")
    }

    /// RawKernels.transpose (CTensorKernels' tk_transpose: 4 x 4 vector blocks, 16 source rows at a time) on
    /// sizes around its block edges, with padded row strides whose padding must stay untouched.
    @Test func rawTranspose() {
        for (rows, cols) in [(1, 1), (3, 5), (4, 4), (16, 4), (17, 33), (40, 7), (64, 256), (33, 64)] {
            let ld = cols + 3, ldOut = rows + 5
            let src = (0..<(rows * ld)).map { Float($0) * 0.5 - 7 }
            var out = [Float](repeating: -1, count: cols * ldOut)
            src.withUnsafeBufferPointer { s in
                out.withUnsafeMutableBufferPointer { o in
                    RawKernels.transpose(s.baseAddress!, rows: rows, cols: cols, ld: ld, into: o.baseAddress!, ldOut: ldOut)
                }
            }
            var bad = 0
            for i in 0..<cols {
                for j in 0..<ldOut where out[i * ldOut + j] != (j < rows ? src[j * ld + i] : -1) { bad += 1 }
            }
            #expect(bad == 0, "transpose \(rows)x\(cols): \(bad) wrong elements")
        }
    }

    @Test func emptyDimensions() throws {
        expectClose(try Tensor.zeros([3, 0]).matmul(try Tensor.zeros([0, 2])), [3, 2], [0, 0, 0, 0, 0, 0], tol: 0)
        #expect(try Tensor.zeros([0, 4]).matmul(data([4, 2])).shape == [0, 2])
        #expect(try data([2, 4]).matmul(try Tensor.zeros([4, 0])).shape == [2, 0])
    }

    @Test func shapeErrors() {
        expectTensorError("cannot be multiplied") { try T([2, 3], [1, 2, 3, 4, 5, 6]).matmul(T([2, 3], [1, 2, 3, 4, 5, 6])) }
        expectTensorError("cannot be multiplied") { try T([1, 2, 3]).matmul(T([1, 2])) }
        expectTensorError("at least 1 dimension") { try Tensor(scalar: 1).matmul(T([1])) }
        expectTensorError("batch sizes do not broadcast") { try data([2, 3, 4]).matmul(data([3, 4, 5])) }
    }
}

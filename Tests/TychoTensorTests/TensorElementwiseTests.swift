// TensorElementwiseTests.swift: element-wise math and broadcasting (Tensor+Elementwise.swift), analytic values.

import Foundation
import Testing
import TychoTensor

@Suite struct TensorElementwiseTests {
    @Test func broadcastingShapes() throws {
        let a = T([3, 1], [1, 2, 3]), b = T([1, 4], [10, 20, 30, 40])
        expectClose(try a.adding(b), [3, 4], [11, 21, 31, 41, 12, 22, 32, 42, 13, 23, 33, 43])
        let c = T([2, 3, 4], (0..<24).map(Float.init)), d = T([4], [1, 2, 3, 4])
        let cd = try c.multiplying(d)
        #expect(cd.shape == [2, 3, 4])
        #expect(values(cd).prefix(8) == [0, 2, 6, 12, 4, 10, 18, 28])
        #expect(try d.subtracting(c).shape == [2, 3, 4])
        #expect(try Tensor(scalar: 2).adding(a).shape == [3, 1])
        #expect(try a.adding(T([2], [1, 2])).shape == [3, 2])
        expectTensorError("sizes 3x1 and 2x4 cannot be broadcast together") { try a.adding(try Tensor.zeros([2, 4])) }
        expectTensorError("cannot be broadcast") { try c.adding(T([3], [1, 2, 3])) }
    }

    @Test func scalarArithmetic() throws {
        let a = T([1, 2, 4])
        expectClose(try a.adding(1), [3], [2, 3, 5])
        expectClose(try a.multiplying(-2), [3], [-2, -4, -8])
        expectClose(try a.subtracted(from: 10), [3], [9, 8, 6])
        expectClose(try a.divided(into: 8), [3], [8, 4, 2])
        expectClose(try a.negated(), [3], [-1, -2, -4])
        expectClose(try a.dividing(T([2])), [3], [0.5, 1, 2])
    }

    @Test func powFastPathsAgreeWithPowf() throws {
        let a = T([0.25, 1, 2.5, 9])
        for e: Float in [2, 0.5, 1, 3, -1, 0] {
            expectClose(try a.pow(e), [4], values(a).map { Foundation.powf($0, e) }, tol: 1e-6, "pow \(e)")
        }
        expectClose(try a.pow(T([2])), [4], [0.0625, 1, 6.25, 81])
        expectClose(try T([1, 2, 3]).raising(2), [3], [2, 4, 8])
        #expect(try T([-8]).pow(1.0 / 3).item().isNaN, "negative base, fractional power")
    }

    @Test func maximumMinimumPropagateNaN() throws {
        let a = T([1, .nan, 3, -1]), b = T([2, 0, .nan, -2])
        expectClose(try a.maximum(b), [4], [2, .nan, .nan, -1])
        expectClose(try a.minimum(b), [4], [1, .nan, .nan, -2])
    }

    @Test func unaryAnalytic() throws {
        let x = T([-2, -0.5, 0, 0.5, 2])
        expectClose(try x.abs(), [5], [2, 0.5, 0, 0.5, 2])
        expectClose(try x.relu(), [5], [0, 0, 0, 0.5, 2])
        expectClose(try x.exp(), [5], [0.13533528, 0.60653066, 1, 1.6487213, 7.389056])
        expectClose(try T([1, Float(M_E), 0]).log(), [3], [0, 1, -.infinity])
        expectClose(try T([4, 0, 2]).sqrt(), [3], [2, 0, 1.4142135])
        expectClose(try x.tanh(), [5], [-0.9640276, -0.46211716, 0, 0.46211716, 0.9640276])
        expectClose(try x.sigmoid(), [5], [0.11920292, 0.37754068, 0.5, 0.62245935, 0.8807971])
        expectClose(try x.silu(), [5], [-0.23840584, -0.18877034, 0, 0.31122968, 1.7615942])
        // GELU exact: x * Phi(x); Phi(2) = 0.97724987.
        expectClose(try x.gelu(), [5], [-0.04550026, -0.15426877, 0, 0.34573123, 1.9544997])
        expectClose(try x.gelu(approximateTanh: true), [5], [-0.04540231, -0.15428599, 0, 0.34571401, 1.9545977])
        expectClose(try T([-1, 3]).sqrt(), [2], [.nan, 1.7320508])
    }

    @Test func extremeInputsStayFinite() throws {
        let big = T([-1000, -100, 100, 1000])
        expectClose(try big.sigmoid(), [4], [0, 0, 1, 1])
        expectClose(try big.silu(), [4], [0, 0, 100, 1000])
        expectClose(try big.tanh(), [4], [-1, -1, 1, 1])
        expectClose(try big.gelu(), [4], [0, 0, 100, 1000])
        expectClose(try big.gelu(approximateTanh: true), [4], [0, 0, 100, 1000])
        #expect(values(try T([.nan]).relu())[0].isNaN, "relu keeps NaN, as PyTorch does")
    }

    @Test func clamp() throws {
        let x = T([-3, -1, 0, 2, .nan])
        expectClose(try x.clamp(min: -1, max: 1), [5], [-1, -1, 0, 1, .nan])
        expectClose(try x.clamp(min: 0, max: nil), [5], [0, 0, 0, 2, .nan])
        expectClose(try x.clamp(min: nil, max: -2), [5], [-3, -2, -2, -2, .nan])
        expectTensorError("min 1.0 is greater than max 0.0") { try x.clamp(min: 1, max: 0) }
    }

    @Test func comparisons() throws {
        let a = T([1, 2, 3]), b = T([2, 2, 2])
        let expected: [Tensor.Comparison: [Float]] = [
            .eq: [0, 1, 0], .ne: [1, 0, 1], .lt: [1, 0, 0], .le: [1, 1, 0], .gt: [0, 0, 1], .ge: [0, 1, 1],
        ]
        for c in Tensor.Comparison.allCases {
            expectClose(try a.compared(c, b), [3], expected[c]!, tol: 0, "\(c)")
            expectClose(try a.compared(c, 2), [3], expected[c]!, tol: 0, "\(c) scalar")
        }
        expectClose(try T([.nan]).compared(.ne, T([.nan])), [1], [1], tol: 0, "NaN != NaN")
        #expect(try T([3, 1], [1, 2, 3]).compared(.lt, T([1, 2], [2, 3])).shape == [3, 2])
    }

    @Test func whereSelectsWithoutLeaking() throws {
        let cond = T([1, 0, 1, 0])
        let out = try Tensor.where(cond, T([1, .infinity, 3, .nan]), T([.infinity, 2, -.infinity, 4]))
        expectClose(out, [4], [1, 2, 3, 4], tol: 0)
        let b = try Tensor.where(T([2, 1], [1, 0]), T([1, 3], [1, 2, 3]), Tensor(scalar: -1))
        expectClose(b, [2, 3], [1, 2, 3, -1, -1, -1], tol: 0)
        expectTensorError("cannot be broadcast") { try Tensor.where(T([1, 0]), T([1, 2, 3]), T([1])) }
    }

    @Test func fill() throws {
        let t = try Tensor.full([2, 2], value: 3)
        t.fill(-1)
        #expect(values(t) == [-1, -1, -1, -1])
    }
}

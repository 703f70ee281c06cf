// TensorReduceTests.swift: sums, means, variances, extremes, logsumexp, softmax (Tensor+Reduce.swift).

import Foundation
import Testing
import TychoTensor

@Suite struct TensorReduceTests {
    let x = T([2, 3], [1, 2, 3, 4, 5, 6])

    @Test func sumAndMean() throws {
        #expect(try x.sum().item() == 21)
        expectClose(try x.sum(dim: 0), [3], [5, 7, 9])
        expectClose(try x.sum(dim: 1, keepdim: true), [2, 1], [6, 15])
        #expect(try x.mean().item() == 3.5)
        expectClose(try x.mean(dim: 0), [3], [2.5, 3.5, 4.5])
        expectClose(try x.mean(dim: 1, keepdim: true), [2, 1], [2, 5])
        expectTensorError("mean of an empty tensor") { try Tensor.zeros([0]).mean() }
        expectTensorError("mean over an empty dimension") { try Tensor.zeros([0, 2]).mean(dim: 0) }
        expectTensorError("dimension 3 out of range") { try x.sum(dim: 2) }
    }

    @Test func largeSumsAccumulateInDouble() throws {
        // 2^24 + 1 ones: a float32 running sum would stop at 2^24.
        let n = (1 << 24) + 1
        let ones = try Tensor.ones([n])
        #expect(try ones.sum().item() == Float(n))
        // The arithmetic series 0 + 1 + ... + (n-1) in one row and along a dimension.
        let a = try Tensor.arange(start: 0, end: 4096, step: 1)
        #expect(try a.sum().item() == 4096 * 4095 / 2)
        #expect(try a.view([64, 64]).sum(dim: 0).sum().item() == 4096 * 4095 / 2)
    }

    @Test func varianceAndStd() throws {
        let v = T([1, 2, 3, 4])
        expectClose([try v.variance().item()], [5.0 / 3.0])
        expectClose([try v.variance(unbiased: false).item()], [1.25])
        expectClose([try v.standardDeviation().item()], [Float((5.0 / 3.0).squareRoot())])
        expectClose(try x.variance(dim: 1), [2], [1, 1])
        expectClose(try x.standardDeviation(dim: 0, keepdim: true), [1, 3], [2.1213203, 2.1213203, 2.1213203])
        #expect(try T([7]).variance().item().isNaN, "unbiased variance of one value is NaN, as in PyTorch")
        expectTensorError("variance of an empty tensor") { try Tensor.zeros([0]).variance() }
        // A large offset does not destroy the variance (two-pass, in double).
        expectClose([try T([1e6 + 1, 1e6 + 2, 1e6 + 3]).variance().item()], [1])
    }

    @Test func extremesAndTies() throws {
        let t = T([2, 3], [1, 5, 5, 7, -1, 7])
        let (v, i) = try t.extreme(dim: 1, largest: true)
        expectClose(v, [2], [5, 7], tol: 0)
        expectClose(i, [2], [1, 0], tol: 0, "the first of tied maxima")
        let (mv, mi) = try t.extreme(dim: 0, keepdim: true, largest: false)
        expectClose(mv, [1, 3], [1, -1, 5], tol: 0)
        expectClose(mi, [1, 3], [0, 1, 0], tol: 0)
        let all = try t.extreme(largest: true)
        #expect(all.value == 7 && all.index == 3)
        let low = try t.extreme(largest: false)
        #expect(low.value == -1 && low.index == 4)
        let nan = try T([1, .nan, 3]).extreme(largest: true)
        #expect(nan.value.isNaN && nan.index == 1, "NaN wins, as in PyTorch")
        expectTensorError("max of an empty tensor") { try Tensor.zeros([0]).extreme(largest: true) }
        expectTensorError("min over an empty dimension") { try Tensor.zeros([2, 0]).extreme(dim: 1, largest: false) }
    }

    @Test func logSumExp() throws {
        expectClose([try Tensor.zeros([5]).logSumExp().item()], [Float(Foundation.log(5.0))])
        expectClose(try T([2, 2], [1000, 1000, -1000, -1000]).logSumExp(dim: 1), [2],
                    [1000 + Float(Foundation.log(2.0)), -1000 + Float(Foundation.log(2.0))], tol: 1e-6)
        expectClose([try T([-.infinity, -.infinity]).logSumExp().item()], [-.infinity])
        expectClose([try T([.infinity, 1]).logSumExp().item()], [.infinity])
        expectClose([try Tensor.zeros([0]).logSumExp().item()], [-.infinity])
    }

    @Test func softmax() throws {
        let t = T([2, 3], [1, 2, 3, 1000, 1000, 1000])
        let s = try t.softmax(dim: 1)
        let e = [Float(Foundation.exp(-2.0)), Float(Foundation.exp(-1.0)), 1]
        let z = e.reduce(0, +)
        expectClose(s, [2, 3], e.map { $0 / z } + [1.0 / 3, 1.0 / 3, 1.0 / 3])
        let ls = try t.softmax(dim: 1, log: true)
        expectClose(ls, [2, 3], values(s).map { Foundation.logf($0) }, tol: 1e-6)
        expectClose(try t.softmax(dim: 0).sum(dim: 0), [3], [1, 1, 1])
        // A row of only -inf has no distribution: NaN, as in PyTorch; its neighbours are unaffected.
        let ninf = try T([2, 2], [-.infinity, -.infinity, 0, 0]).softmax(dim: 1)
        expectClose(ninf, [2, 2], [.nan, .nan, 0.5, 0.5])
        expectTensorError("out of range") { try t.softmax(dim: 2) }
    }
}

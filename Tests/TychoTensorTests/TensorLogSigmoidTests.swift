// TensorLogSigmoidTests.swift: log-sigmoid, softplus and log1mexp (Tensor+LogSigmoid.swift) against references in
// Double, in their tails where the naive compositions fail, and their gradients against the analytic derivative
// and central finite differences.

import Foundation
import Testing
import TychoTensor

@Suite struct TensorLogSigmoidTests {
    // MARK: references in Double (naive where that is exact enough: these run on doubles)

    static func logSigmoid(_ x: Double) -> Double { x < 0 ? x - Foundation.log1p(Foundation.exp(x)) : -Foundation.log1p(Foundation.exp(-x)) }
    static func softplus(_ x: Double) -> Double { x > 0 ? x + Foundation.log1p(Foundation.exp(-x)) : Foundation.log1p(Foundation.exp(x)) }
    static func log1mexp(_ x: Double) -> Double { Foundation.log(-Foundation.expm1(x)) }

    static func numericGrad(_ f: (Double) -> Double, _ x: Double, h: Double = 1e-6) -> Double {
        (f(x + h) - f(x - h)) / (2 * h)
    }

    /// Inputs over the range that matters, the far tails included.
    let xs: [Float] = (0..<241).map { Float($0 - 120) / 4 } + [-1e4, -200, -104, 104, 200, 1e4, 1e-6, -1e-6, 0]

    /// The gradient of sum(f(x) * w) with respect to x, through the autograd engine.
    func grad(_ x: [Float], _ w: [Float], _ f: (Tensor) throws -> Tensor) throws -> [Float] {
        let t = T(x)
        try t.setRequiresGrad(true)
        try f(t).multiplying(T(w)).sum().backward()
        return values(try #require(t.grad))
    }

    @Test func logSigmoidIsExactInBothTails() throws {
        let got = values(try T(xs).logSigmoid())
        expectClose(got, xs.map { Float(Self.logSigmoid(Double($0))) }, tol: 1e-7, "log_sigmoid")
        // The composition loses the tails: log(sigmoid(-200)) is -inf, log(sigmoid(30)) is 0.
        #expect(got[xs.firstIndex(of: -200)!] == -200)
        #expect(got[xs.firstIndex(of: 30)!] < 0 && got[xs.firstIndex(of: 30)!] > -1e-12)
        #expect(got[xs.firstIndex(of: 1e4)!] == 0)
    }

    @Test func softplusIsExactEverywhere() throws {
        let got = values(try T(xs).softplus())
        expectClose(got, xs.map { Float(Self.softplus(Double($0))) }, tol: 1e-7, "softplus")
        #expect(got[xs.firstIndex(of: 200)!] == 200)
        #expect(got[xs.firstIndex(of: -200)!] == 0, "softplus(-200) = e^-200 rounds to float 0, never negative")
    }

    @Test func log1mexpIsExactOnBothBranches() throws {
        let neg = xs.filter { $0 < 0 }
        let got = values(try T(neg).log1mexp())
        expectClose(got, neg.map { Float(Self.log1mexp(Double($0))) }, tol: 1e-7, "log1mexp")
        // Near 0 the cancellation branch matters: log(1 - e^-1e-6) = log(1e-6) - 5e-7.
        #expect(Swift.abs(got[neg.firstIndex(of: -1e-6)!] - Float(Foundation.log(1e-6))) < 1e-5)
        let edge = values(try T([0, 1]).log1mexp())
        #expect(edge[0] == -.infinity && edge[1].isNaN)
    }

    @Test func gradientsAreTheAnalyticDerivatives() throws {
        let w = values(data([xs.count], seed: 5))
        let sig = { (x: Double) in 1 / (1 + Foundation.exp(-x)) }
        expectClose(try grad(xs, w) { try $0.logSigmoid() }, zip(xs, w).map { Float(sig(-Double($0)) * Double($1)) },
                    tol: 1e-6, "log_sigmoid'")
        expectClose(try grad(xs, w) { try $0.softplus() }, zip(xs, w).map { Float(sig(Double($0)) * Double($1)) },
                    tol: 1e-6, "softplus'")
        let neg = xs.filter { $0 < 0 }
        let wn = Array(w.prefix(neg.count))
        expectClose(try grad(neg, wn) { try $0.log1mexp() },
                    zip(neg, wn).map { Float(-1 / Foundation.expm1(-Double($0)) * Double($1)) }, tol: 1e-6, "log1mexp'")
        // The analytic formulas are the forwards' derivatives.
        for v in stride(from: -8.0, through: 8.0, by: 0.41) {
            #expect(Swift.abs(Self.numericGrad(Self.logSigmoid, v) - sig(-v)) < 1e-8, "log_sigmoid' at \(v)")
            #expect(Swift.abs(Self.numericGrad(Self.softplus, v) - sig(v)) < 1e-8, "softplus' at \(v)")
            if v < -0.01 {
                #expect(Swift.abs(Self.numericGrad(Self.log1mexp, v) + 1 / Foundation.expm1(-v)) < 1e-6 * (1 + Swift.abs(1 / Foundation.expm1(-v))),
                        "log1mexp' at \(v)")
            }
        }
    }

    @Test func tailGradientsAreFinite() throws {
        let g = try grad([-1e4, 1e4, -200, 200], [1, 1, 1, 1]) { try $0.logSigmoid() }
        #expect(g == [1, 0, 1, 0])
        let s = try grad([-1e4, 1e4], [1, 1]) { try $0.softplus() }
        #expect(s == [0, 1])
    }

    @Test func nanPropagatesAndNoGraphWithoutGrad() throws {
        #expect(values(try T([.nan]).logSigmoid())[0].isNaN)
        #expect(values(try T([.nan]).softplus())[0].isNaN)
        #expect(!(try T([1, 2]).logSigmoid()).requiresGrad)
    }
}

// TensorActivationGradTests.swift: the backward kernels of Tensor+ActivationGrad.swift against references in
// Double: the analytic derivative, and central finite differences of the forward evaluated in Double.

import Foundation
import Testing
import TychoTensor

@Suite struct TensorActivationGradTests {
    // MARK: references in Double

    static let k = (2 / Double.pi).squareRoot()

    static func gelu(_ x: Double) -> Double { 0.5 * x * erfc(-x / 2.0.squareRoot()) }
    static func geluGrad(_ x: Double) -> Double {
        0.5 * erfc(-x / 2.0.squareRoot()) + x * Foundation.exp(-0.5 * x * x) / (2 * Double.pi).squareRoot()
    }
    static func geluTanh(_ x: Double) -> Double { x / (1 + Foundation.exp(-2 * k * (x + 0.044715 * x * x * x))) }
    static func geluTanhGrad(_ x: Double) -> Double {
        let u = k * (x + 0.044715 * x * x * x)
        let s = 1 / (1 + Foundation.exp(-2 * u)), oms = 1 / (1 + Foundation.exp(2 * u))
        return s + 2 * x * s * oms * k * (1 + 3 * 0.044715 * x * x)
    }
    static func sigmoid(_ x: Double) -> Double { 1 / (1 + Foundation.exp(-x)) }
    static func silu(_ x: Double) -> Double { x * sigmoid(x) }
    static func siluGrad(_ x: Double) -> Double { sigmoid(x) * (1 + x / (1 + Foundation.exp(x))) }

    /// Central difference of `f` at x.
    static func numericGrad(_ f: (Double) -> Double, _ x: Double, h: Double = 1e-5) -> Double {
        (f(x + h) - f(x - h)) / (2 * h)
    }

    /// Inputs across the range that matters, the tails included, and a length with a ragged end.
    let xs: [Float] = (0..<301).map { Float($0 - 150) / 12.5 } + [1e-3, -1e-3, 0]

    // MARK: element-wise activations

    @Test func geluBackwardExact() throws {
        let x = T(xs), g = data([xs.count], seed: 3)
        let got = try Tensor.geluBackward(x: x, grad: g)
        let want = zip(xs, values(g)).map { Float(Double($1) * Self.geluGrad(Double($0))) }
        expectClose(got, [xs.count], want, tol: 2e-6, "gelu'")
        // The analytic formula is the forward's derivative.
        for v in stride(from: -6.0, through: 6.0, by: 0.37) {
            #expect(Swift.abs(Self.numericGrad(Self.gelu, v) - Self.geluGrad(v)) < 1e-8, "gelu' at \(v)")
        }
        // Relative accuracy in the negative tail, where the derivative is tiny.
        let tail = (0..<200).map { -1.5 - Float($0) * 0.04 }
        let ones = try Tensor.ones([tail.count])
        let gt = values(try Tensor.geluBackward(x: T(tail), grad: ones))
        for (v, d) in zip(tail, gt) {
            let w = Self.geluGrad(Double(v))
            #expect(Swift.abs(Double(d) - w) <= 1e-5 * Swift.abs(w), "gelu' at \(v): \(d) vs \(w)")
        }
    }

    @Test func geluBackwardTanh() throws {
        let x = T(xs), g = data([xs.count], seed: 4)
        let got = try Tensor.geluBackward(x: x, grad: g, approximateTanh: true)
        let want = zip(xs, values(g)).map { Float(Double($1) * Self.geluTanhGrad(Double($0))) }
        expectClose(got, [xs.count], want, tol: 2e-6, "gelu_tanh'")
        for v in stride(from: -6.0, through: 6.0, by: 0.37) {
            #expect(Swift.abs(Self.numericGrad(Self.geluTanh, v) - Self.geluTanhGrad(v)) < 1e-8, "gelu_tanh' at \(v)")
        }
    }

    @Test func siluBackward() throws {
        let x = T(xs), g = data([xs.count], seed: 5)
        let got = try Tensor.siluBackward(x: x, grad: g)
        let want = zip(xs, values(g)).map { Float(Double($1) * Self.siluGrad(Double($0))) }
        expectClose(got, [xs.count], want, tol: 2e-6, "silu'")
        for v in stride(from: -6.0, through: 6.0, by: 0.37) {
            #expect(Swift.abs(Self.numericGrad(Self.silu, v) - Self.siluGrad(v)) < 1e-8, "silu' at \(v)")
        }
    }

    @Test func sigmoidAndTanhBackward() throws {
        let x = T(xs), g = data([xs.count], seed: 6)
        let s = try x.sigmoid(), t = try x.tanh()
        let gs = try Tensor.sigmoidBackward(y: s, grad: g)
        let gt = try Tensor.tanhBackward(y: t, grad: g)
        let gv = values(g)
        expectClose(gs, [xs.count], zip(values(s), gv).map { y, g in Float(Double(g) * Double(y) * (1 - Double(y))) },
                    tol: 1e-6, "sigmoid'")
        expectClose(gt, [xs.count], zip(values(t), gv).map { y, g in Float(Double(g) * (1 - Double(y) * Double(y))) },
                    tol: 1e-6, "tanh'")
        // Against the derivative of the forward itself.
        expectClose(gs, [xs.count], zip(xs, gv).map { x, g in
            Float(Double(g) * Self.numericGrad(Self.sigmoid, Double(x)))
        }, tol: 1e-5, "sigmoid' vs finite differences")
        expectClose(gt, [xs.count], zip(xs, gv).map { x, g in
            Float(Double(g) * Self.numericGrad(Foundation.tanh, Double(x)))
        }, tol: 1e-5, "tanh' vs finite differences")
    }

    @Test func elementwiseShapesLayoutsAndErrors() throws {
        let x = data([6, 9], seed: 7, scale: 4), g = data([6, 9], seed: 8)
        let viaView = try Tensor.siluBackward(x: x.transpose(0, 1), grad: g.transpose(0, 1))
        let viaCopy = try Tensor.siluBackward(x: x.transpose(0, 1).contiguous(), grad: g.transpose(0, 1).contiguous())
        #expect(viaView.shape == [9, 6] && viaView.isContiguous)
        #expect(values(viaView) == values(viaCopy))
        #expect(try Tensor.tanhBackward(y: Tensor.zeros([0, 3]), grad: Tensor.zeros([0, 3])).shape == [0, 3])
        expectTensorError("geluBackward: x has size 6x9 but grad has size 9x6") {
            try Tensor.geluBackward(x: x, grad: g.transpose(0, 1))
        }
        expectTensorError("sigmoidBackward: y has size") { try Tensor.sigmoidBackward(y: x, grad: T([1])) }
    }

    // MARK: softmax and log-softmax

    /// For every row along `dim` of a contiguous `shape`: the flat indices of its elements.
    static func rows(_ shape: [Int], _ dim: Int) -> [[Int]] {
        let n = shape[dim]
        let inner = shape[(dim + 1)...].reduce(1, *), outer = shape[..<dim].reduce(1, *)
        var out: [[Int]] = []
        for o in 0..<outer {
            for i in 0..<inner { out.append((0..<n).map { o * n * inner + $0 * inner + i }) }
        }
        return out
    }

    /// Double softmax (or log-softmax) of one row.
    static func softmax(_ x: [Double], log: Bool) -> [Double] {
        let m = x.max()!
        let z = x.reduce(0) { $0 + Foundation.exp($1 - m) }
        return x.map { log ? $0 - m - Foundation.log(z) : Foundation.exp($0 - m) / z }
    }

    /// Checks softmaxBackward or logSoftmaxBackward on `shape` along `dim` against the analytic formula in
    /// Double (from the same float y) and against finite differences of Σ grad * softmax(x) in Double.
    func checkSoftmaxBackward(_ shape: [Int], _ dim: Int, log: Bool) throws {
        let x = data(shape, seed: UInt64(7 + dim), scale: 3), g = data(shape, seed: UInt64(20 + dim))
        let y = try x.softmax(dim: dim, log: log)
        let got = log ? try Tensor.logSoftmaxBackward(y: y, grad: g, dim: dim)
                      : try Tensor.softmaxBackward(y: y, grad: g, dim: dim)
        let xv = values(x).map(Double.init), yv = values(y).map(Double.init), gv = values(g).map(Double.init)
        var analytic = [Float](repeating: 0, count: xv.count), numeric = analytic
        for row in Self.rows(shape, dim) {
            if log {
                let s = row.reduce(0) { $0 + gv[$1] }
                for i in row { analytic[i] = Float(gv[i] - Foundation.exp(yv[i]) * s) }
            } else {
                let s = row.reduce(0) { $0 + gv[$1] * yv[$1] }
                for i in row { analytic[i] = Float(yv[i] * (gv[i] - s)) }
            }
            let xr = row.map { xv[$0] }, gr = row.map { gv[$0] }
            func loss(_ v: [Double]) -> Double { zip(Self.softmax(v, log: log), gr).reduce(0) { $0 + $1.0 * $1.1 } }
            for (k, i) in row.enumerated() {
                var plus = xr, minus = xr
                plus[k] += 1e-5
                minus[k] -= 1e-5
                numeric[i] = Float((loss(plus) - loss(minus)) / 2e-5)
            }
        }
        let label = "\(log ? "log_softmax" : "softmax")' \(shape) dim \(dim)"
        expectClose(got, shape, analytic, tol: 1e-6, label)
        expectClose(got, shape, numeric, tol: 1e-5, label + " vs finite differences")
    }

    @Test func softmaxBackwardAlongEveryDimension() throws {
        for log in [false, true] {
            try checkSoftmaxBackward([3, 37], 1, log: log)     // rows with a ragged end
            try checkSoftmaxBackward([70, 3], 0, log: log)     // 3 columns
            try checkSoftmaxBackward([5, 70], 0, log: log)     // 70 columns: a block of 64 and a ragged one
            try checkSoftmaxBackward([2, 5, 19], 1, log: log)
            try checkSoftmaxBackward([2, 5, 19], 2, log: log)
            try checkSoftmaxBackward([2, 5, 19], 0, log: log)
            try checkSoftmaxBackward([4], 0, log: log)
        }
    }

    @Test func softmaxBackwardLayoutsAndErrors() throws {
        let x = data([8, 12], seed: 9, scale: 2), g = data([8, 12], seed: 10)
        let y = try x.softmax(dim: 1)
        // A transposed view gives what its contiguous copy gives.
        let viaView = try Tensor.softmaxBackward(y: y.transpose(0, 1), grad: g.transpose(0, 1), dim: 1)
        let viaCopy = try Tensor.softmaxBackward(y: y.transpose(0, 1).contiguous(),
                                                 grad: g.transpose(0, 1).contiguous(), dim: 1)
        #expect(values(viaView) == values(viaCopy))
        // Each row's gradient sums to zero (softmax is invariant to adding a constant to the row).
        let rowSums = values(try Tensor.softmaxBackward(y: y, grad: g, dim: 1).sum(dim: 1))
        #expect(rowSums.allSatisfy { Swift.abs($0) < 1e-6 })
        expectTensorError("softmaxBackward: y has size 8x12 but grad has size 12x8") {
            try Tensor.softmaxBackward(y: y, grad: g.transpose(0, 1), dim: 1)
        }
        expectTensorError("out of range") { try Tensor.logSoftmaxBackward(y: y, grad: g, dim: 2) }
    }
}

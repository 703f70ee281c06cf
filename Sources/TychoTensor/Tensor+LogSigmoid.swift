// Tensor+LogSigmoid.swift: log-sigmoid, softplus and log(1 - e^x), the log-space functions preference losses are
// made of, each computed without overflow or cancellation and with its backward beside it.
//
// `log(sigmoid(x))` composed from `sigmoid` and `log` returns -inf once sigmoid(x) underflows (x below about -104)
// and loses every digit where sigmoid(x) rounds to 1; these forms stay exact in both tails. Each element is
// computed in Double and rounded once to Float, so results are within half an ulp of the true value (PyTorch's
// float kernels are within a few). Element-wise and small: the losses apply them to per-sequence vectors (B), so a
// scalar loop is enough and no SIMD kernel is kept for them.

import Foundation

extension Tensor {
    /// `log(1 / (1 + e^-x))` as `min(x, 0) - log1p(e^-|x|)` (PyTorch's form). Gradient: `sigmoid(-x)`.
    public func logSigmoid() throws -> Tensor {
        try map { Tensor.logSigmoid(Double($0)) }.recorded("log_sigmoid", [self]) { g in
            [try g.multiplying(try self.map { Float(1 / (1 + Foundation.exp(Double($0)))) })]
        }
    }

    /// `log(1 + e^x)` as `max(x, 0) + log1p(e^-|x|)` (no threshold: exact everywhere). Gradient: `sigmoid(x)`.
    public func softplus() throws -> Tensor {
        try map { x in
            let d = Double(x)
            return Float(Swift.max(d, 0) + Foundation.log1p(Foundation.exp(-Swift.abs(d))))
        }.recorded("softplus", [self]) { g in
            [try g.multiplying(try self.map { Float(1 / (1 + Foundation.exp(-Double($0)))) })]
        }
    }

    /// `log(1 - e^x)` for x <= 0 (-inf at 0, NaN above): `log(-expm1(x))` for x > -ln 2, else `log1p(-e^x)`, the
    /// branch TRL's ORPO uses to avoid cancellation. Gradient: `-e^x / (1 - e^x)`, computed as `-1 / expm1(-x)`.
    public func log1mexp() throws -> Tensor {
        try map { x in
            let d = Double(x)
            return Float(d > -0.6931471805599453 ? Foundation.log(-Foundation.expm1(d)) : Foundation.log1p(-Foundation.exp(d)))
        }.recorded("log1mexp", [self]) { g in
            [try g.multiplying(try self.map { Float(-1 / Foundation.expm1(-Double($0))) })]
        }
    }

    /// `min(x, 0) - log1p(e^-|x|)` in Double, rounded once.
    @inline(__always)
    static func logSigmoid(_ d: Double) -> Float {
        Float(Swift.min(d, 0) - Foundation.log1p(Foundation.exp(-Swift.abs(d))))
    }
}

// Tensor+Elementwise.swift: unary and binary element-wise math with NumPy/PyTorch broadcasting.
// All results are new contiguous tensors. Kernels run on `stridedRows`, in parallel for large inputs.

import Foundation

extension Tensor {
    // MARK: the two maps every element-wise op is built from

    /// `f` applied to every element.
    @inline(__always)
    public func map(_ f: (Float) -> Float) throws -> Tensor {
        let out = try Tensor(uninitializedShape: shape)
        let src = basePointer, dst = out.basePointer
        stridedRows(shape: shape, strides: [out.strides, strides]) { o0, o1, _, n, s0, s1, _ in
            let d = dst + o0, s = src + o1
            if s0 == 1 && s1 == 1 {
                for i in 0..<n { d[i] = f(s[i]) }
            } else {
                for i in 0..<n { d[i * s0] = f(s[i * s1]) }
            }
        }
        return out
    }

    /// `f` applied to pairs of elements of `self` and `other` broadcast together.
    @inline(__always)
    public func zipMap(_ other: Tensor, _ f: (Float, Float) -> Float) throws -> Tensor {
        let shape = try Tensor.broadcastShape(self.shape, other.shape)
        let out = try Tensor(uninitializedShape: shape)
        let a = basePointer, b = other.basePointer, dst = out.basePointer
        stridedRows(shape: shape,
                    strides: [out.strides, broadcastStrides(to: shape), other.broadcastStrides(to: shape)]) {
            o0, o1, o2, n, s0, s1, s2 in
            let d = dst + o0, x = a + o1, y = b + o2
            if s0 == 1 && s1 == 1 && s2 == 1 {
                for i in 0..<n { d[i] = f(x[i], y[i]) }
            } else if s0 == 1 && s1 == 1 && s2 == 0 {
                let c = y[0]
                for i in 0..<n { d[i] = f(x[i], c) }
            } else if s0 == 1 && s1 == 0 && s2 == 1 {
                let c = x[0]
                for i in 0..<n { d[i] = f(c, y[i]) }
            } else {
                for i in 0..<n { d[i * s0] = f(x[i * s1], y[i * s2]) }
            }
        }
        return out
    }

    // MARK: arithmetic

    // Named operations run on the SIMD kernels of ElementwiseKernels.swift; each computes what the comment
    // beside it says, element by element.

    public func adding(_ o: Tensor) throws -> Tensor { try apply(o, Ops.Add()) }
    public func subtracting(_ o: Tensor) throws -> Tensor { try apply(o, Ops.Sub()) }
    public func multiplying(_ o: Tensor) throws -> Tensor { try apply(o, Ops.Mul()) }
    public func dividing(_ o: Tensor) throws -> Tensor { try apply(o, Ops.Div()) }
    public func adding(_ c: Float) throws -> Tensor { try apply(Ops.Right(op: Ops.Add(), c: Lanes(repeating: c))) }
    public func multiplying(_ c: Float) throws -> Tensor { try apply(Ops.Right(op: Ops.Mul(), c: Lanes(repeating: c))) }
    /// `c - self`.
    public func subtracted(from c: Float) throws -> Tensor { try apply(Ops.Left(op: Ops.Sub(), c: Lanes(repeating: c))) }
    /// `c / self`.
    public func divided(into c: Float) throws -> Tensor { try apply(Ops.Left(op: Ops.Div(), c: Lanes(repeating: c))) }
    public func negated() throws -> Tensor { try apply(Ops.Negate()) }

    public func pow(_ e: Float) throws -> Tensor {
        if e == 2 { return try apply(Ops.Square()) }        // x * x
        if e == 0.5 { return try apply(Ops.Sqrt()) }        // x.squareRoot()
        if e == 1 { return try apply(Ops.Identity()) }
        return try apply(Ops.PowScalar(e: e))               // powf(x, e)
    }
    public func pow(_ e: Tensor) throws -> Tensor { try apply(e, Ops.Lanewise2(f: Foundation.powf)) }
    /// `c ^ self`.
    public func raising(_ c: Float) throws -> Tensor { try apply(Ops.RaiseScalar(c: c)) }
    /// (x.isNaN || x >= y) ? x : y
    public func maximum(_ o: Tensor) throws -> Tensor { try apply(o, Ops.Maximum()) }
    /// (x.isNaN || x <= y) ? x : y
    public func minimum(_ o: Tensor) throws -> Tensor { try apply(o, Ops.Minimum()) }

    // MARK: unary functions

    // exp and the functions built on it use VectorMath.swift (about 1 ulp for exp, a few for the others);
    // log and tanh call libm per element.

    public func exp() throws -> Tensor { try apply(Ops.Exp()) }
    public func log() throws -> Tensor { try apply(Ops.Lanewise(f: Foundation.logf)) }
    public func sqrt() throws -> Tensor { try apply(Ops.Sqrt()) }
    public func abs() throws -> Tensor { try apply(Ops.Abs()) }
    public func tanh() throws -> Tensor { try apply(Ops.Lanewise(f: Foundation.tanhf)) }
    /// 1 / (1 + e^-x), computed as e^x / (1 + e^x) for negative x.
    public func sigmoid() throws -> Tensor { try apply(Ops.Sigmoid()) }
    /// x if x > 0 or NaN, else 0.
    public func relu() throws -> Tensor { try apply(Ops.Relu()) }
    /// GELU, exact (x * Phi(x), through erfc) or with the tanh approximation GPT-2 uses.
    public func gelu(approximateTanh: Bool = false) throws -> Tensor {
        if approximateTanh { return try apply(Ops.GeluTanh()) }
        return try apply(Ops.Gelu())
    }
    /// x * sigmoid(x).
    public func silu() throws -> Tensor { try apply(Ops.Silu()) }
    /// Clamps into [low, high]; either bound may be absent. NaN stays NaN.
    public func clamp(min low: Float?, max high: Float?) throws -> Tensor {
        if let low, let high, low > high { throw TensorError("clamp: min \(low) is greater than max \(high)") }
        let lo = low ?? -.infinity, hi = high ?? .infinity
        return try apply(Ops.Clamp(low: Lanes(repeating: lo), high: Lanes(repeating: hi)))
    }

    // MARK: comparisons (1 where true, 0 where false)

    public enum Comparison: String, CaseIterable { case eq, ne, lt, le, gt, ge }

    @inline(__always)
    static func compare(_ c: Comparison, _ x: Float, _ y: Float) -> Float {
        switch c {
        case .eq: return x == y ? 1 : 0
        case .ne: return x != y ? 1 : 0
        case .lt: return x < y ? 1 : 0
        case .le: return x <= y ? 1 : 0
        case .gt: return x > y ? 1 : 0
        case .ge: return x >= y ? 1 : 0
        }
    }

    public func compared(_ c: Comparison, _ other: Tensor) throws -> Tensor {
        try apply(other, Ops.Compare(c: c))
    }

    public func compared(_ c: Comparison, _ v: Float) throws -> Tensor {
        try apply(Ops.CompareScalar(c: c, v: Lanes(repeating: v)))
    }

    /// `a` where `condition` is non-zero, else `b`; all three broadcast together.
    public static func `where`(_ condition: Tensor, _ a: Tensor, _ b: Tensor) throws -> Tensor {
        let shape = try broadcastShape(try broadcastShape(condition.shape, a.shape), b.shape)
        let c = try condition.expand(shape).contiguous()
        let picked = try c.zipMap(try a.expand(shape)) { cond, x in cond != 0 ? x : 0 }
        let keep = try c.zipMap(try b.expand(shape)) { cond, y in cond != 0 ? 0 : y }
        // Select rather than add, so infinities and NaNs in the unpicked branch never leak.
        let out = picked
        let pc = c.basePointer, po = out.basePointer, pk = keep.basePointer
        for i in 0..<out.count where pc[i] == 0 { po[i] = pk[i] }
        return out
    }
}

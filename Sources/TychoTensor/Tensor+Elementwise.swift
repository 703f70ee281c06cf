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

    // Each op records its backward (Autograd.swift) when an input requires grad; gradients of broadcast
    // inputs are summed back to their shapes by the engine.

    public func adding(_ o: Tensor) throws -> Tensor {
        try apply(o, Ops.Add()).recorded("add", [self, o]) { g in [g, g] }
    }
    public func subtracting(_ o: Tensor) throws -> Tensor {
        try apply(o, Ops.Sub()).recorded("sub", [self, o]) { g in [g, o.requiresGrad ? try g.negated() : nil] }
    }
    public func multiplying(_ o: Tensor) throws -> Tensor {
        try apply(o, Ops.Mul()).recorded("mul", [self, o]) { g in
            [self.requiresGrad ? try g.multiplying(o) : nil, o.requiresGrad ? try g.multiplying(self) : nil]
        }
    }
    public func dividing(_ o: Tensor) throws -> Tensor {
        try apply(o, Ops.Div()).recorded("div", [self, o]) { g in
            let ga = try g.dividing(o)
            // d(x/y)/dy = -x/y^2 = -(g/y) * x/y
            return [ga, o.requiresGrad ? try ga.multiplying(self).dividing(o).negated() : nil]
        }
    }
    public func adding(_ c: Float) throws -> Tensor {
        try apply(Ops.Right(op: Ops.Add(), c: Lanes(repeating: c))).recorded("add", [self]) { g in [g] }
    }
    public func multiplying(_ c: Float) throws -> Tensor {
        try apply(Ops.Right(op: Ops.Mul(), c: Lanes(repeating: c))).recorded("mul", [self]) { g in [try g.multiplying(c)] }
    }
    public func dividing(_ c: Float) throws -> Tensor {
        try apply(Ops.Right(op: Ops.Div(), c: Lanes(repeating: c))).recorded("div", [self]) { g in [try g.dividing(c)] }
    }
    /// `c - self`.
    public func subtracted(from c: Float) throws -> Tensor {
        try apply(Ops.Left(op: Ops.Sub(), c: Lanes(repeating: c))).recorded("sub", [self]) { g in [try g.negated()] }
    }
    /// `c / self`.
    public func divided(into c: Float) throws -> Tensor {
        let out = try apply(Ops.Left(op: Ops.Div(), c: Lanes(repeating: c)))
        return out.recorded("div", [self], saving: [out]) { g in [try g.multiplying(out).dividing(self).negated()] }
    }
    public func negated() throws -> Tensor {
        try apply(Ops.Negate()).recorded("neg", [self]) { g in [try g.negated()] }
    }

    public func pow(_ e: Float) throws -> Tensor {
        let out: Tensor
        if e == 2 { out = try apply(Ops.Square()) }         // x * x
        else if e == 0.5 { out = try apply(Ops.Sqrt()) }    // x.squareRoot()
        else if e == 1 { out = try apply(Ops.Identity()) }
        else { out = try apply(Ops.PowScalar(e: e)) }       // powf(x, e)
        return out.recorded("pow", [self]) { g in
            if e == 0 { return [try g.multiplying(0)] }
            if e == 1 { return [g] }
            if e == 2 { return [try g.multiplying(self).multiplying(2)] }
            return [try g.multiplying(self.apply(Ops.PowScalar(e: e - 1))).multiplying(e)]
        }
    }
    public func pow(_ e: Tensor) throws -> Tensor {
        let out = try apply(e, Ops.Lanewise2(f: Foundation.powf))
        return out.recorded("pow", [self, e], saving: [out]) { g in
            // d/dx x^e = e x^(e-1); d/de x^e = x^e log x (0 where x == 0 and e > 0, as PyTorch).
            let gx = self.requiresGrad
                ? try g.multiplying(try self.zipMap(e) { x, p in p == 0 ? 0 : p * Foundation.powf(x, p - 1) }) : nil
            let ge = e.requiresGrad
                ? try g.multiplying(try out.zipMap(self) { y, x in x == 0 ? 0 : y * Foundation.logf(x) }) : nil
            return [gx, ge]
        }
    }
    /// `c ^ self`.
    public func raising(_ c: Float) throws -> Tensor {
        let out = try apply(Ops.RaiseScalar(c: c))
        return out.recorded("pow", [self], saving: [out]) { g in [try g.multiplying(out).multiplying(Foundation.logf(c))] }
    }
    /// (x.isNaN || x >= y) ? x : y
    public func maximum(_ o: Tensor) throws -> Tensor {
        try apply(o, Ops.Maximum()).recorded("maximum", [self, o]) { g in try Tensor.extremumGrads(g, self, o, largest: true) }
    }
    /// (x.isNaN || x <= y) ? x : y
    public func minimum(_ o: Tensor) throws -> Tensor {
        try apply(o, Ops.Minimum()).recorded("minimum", [self, o]) { g in try Tensor.extremumGrads(g, self, o, largest: false) }
    }

    /// PyTorch's rule: the gradient goes to the larger (smaller) input, split in half on ties.
    static func extremumGrads(_ g: Tensor, _ a: Tensor, _ b: Tensor, largest: Bool) throws -> [Tensor?] {
        let wa = try a.zipMap(b) { x, y in
            if x.isNaN { return 1 }
            if y.isNaN { return 0 }
            return x == y ? 0.5 : ((largest ? x > y : x < y) ? 1 : 0)
        }
        let ga = try g.multiplying(wa)
        return [a.requiresGrad ? ga : nil, b.requiresGrad ? try g.subtracting(ga) : nil]
    }

    // MARK: unary functions

    // exp, log, tanh and the functions built on exp run on CTensorKernels (VectorMath.swift): about 1 ulp for
    // exp and log, a few for the others.

    public func exp() throws -> Tensor {
        let out = try apply(Ops.Exp())
        return out.recorded("exp", [self], saving: [out]) { g in [try g.multiplying(out)] }
    }
    public func log() throws -> Tensor {
        try apply(Ops.Log()).recorded("log", [self]) { g in [try g.dividing(self)] }
    }
    public func sqrt() throws -> Tensor {
        let out = try apply(Ops.Sqrt())
        return out.recorded("sqrt", [self], saving: [out]) { g in [try g.dividing(out).multiplying(0.5)] }
    }
    public func abs() throws -> Tensor {
        try apply(Ops.Abs()).recorded("abs", [self]) { g in
            [try g.multiplying(try self.map { $0 > 0 ? 1 : ($0 < 0 ? -1 : 0) })]
        }
    }
    public func tanh() throws -> Tensor {
        let out = try apply(Ops.Tanh())
        return out.recorded("tanh", [self], saving: [out]) { g in [try Tensor.tanhBackward(y: out, grad: g.expand(out.shape))] }
    }
    /// 1 / (1 + e^-x), computed as e^x / (1 + e^x) for negative x.
    public func sigmoid() throws -> Tensor {
        let out = try apply(Ops.Sigmoid())
        return out.recorded("sigmoid", [self], saving: [out]) { g in [try Tensor.sigmoidBackward(y: out, grad: g.expand(out.shape))] }
    }
    /// x if x > 0 or NaN, else 0.
    public func relu() throws -> Tensor {
        try apply(Ops.Relu()).recorded("relu", [self]) { g in [try g.multiplying(try self.map { $0 > 0 ? 1 : 0 })] }
    }
    /// GELU, exact (x * Phi(x), through erfc) or with the tanh approximation GPT-2 uses.
    public func gelu(approximateTanh: Bool = false) throws -> Tensor {
        let out = approximateTanh ? try apply(Ops.GeluTanh()) : try apply(Ops.Gelu())
        return out.recorded("gelu", [self]) { g in
            [try Tensor.geluBackward(x: self, grad: g.expand(self.shape), approximateTanh: approximateTanh)]
        }
    }
    /// x * sigmoid(x).
    public func silu() throws -> Tensor {
        try apply(Ops.Silu()).recorded("silu", [self]) { g in [try Tensor.siluBackward(x: self, grad: g.expand(self.shape))] }
    }
    /// Clamps into [low, high]; either bound may be absent. NaN stays NaN.
    public func clamp(min low: Float?, max high: Float?) throws -> Tensor {
        if let low, let high, low > high { throw TensorError("clamp: min \(low) is greater than max \(high)") }
        let lo = low ?? -.infinity, hi = high ?? .infinity
        return try apply(Ops.Clamp(low: Lanes(repeating: lo), high: Lanes(repeating: hi))).recorded("clamp", [self]) { g in
            [try g.multiplying(try self.map { $0 >= lo && $0 <= hi ? 1 : 0 })]
        }
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
        return out.recorded("where", [a, b]) { g in
            let zero = Tensor(scalar: 0)
            return [a.requiresGrad ? try Tensor.where(c, g, zero) : nil,
                    b.requiresGrad ? try Tensor.where(c, zero, g) : nil]
        }
    }
}

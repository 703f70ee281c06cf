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

    public func adding(_ o: Tensor) throws -> Tensor { try zipMap(o) { $0 + $1 } }
    public func subtracting(_ o: Tensor) throws -> Tensor { try zipMap(o) { $0 - $1 } }
    public func multiplying(_ o: Tensor) throws -> Tensor { try zipMap(o) { $0 * $1 } }
    public func dividing(_ o: Tensor) throws -> Tensor { try zipMap(o) { $0 / $1 } }
    public func adding(_ c: Float) throws -> Tensor { try map { $0 + c } }
    public func multiplying(_ c: Float) throws -> Tensor { try map { $0 * c } }
    /// `c - self`.
    public func subtracted(from c: Float) throws -> Tensor { try map { c - $0 } }
    /// `c / self`.
    public func divided(into c: Float) throws -> Tensor { try map { c / $0 } }
    public func negated() throws -> Tensor { try map { -$0 } }

    public func pow(_ e: Float) throws -> Tensor {
        if e == 2 { return try map { $0 * $0 } }
        if e == 0.5 { return try map { $0.squareRoot() } }
        if e == 1 { return try map { $0 } }
        return try map { Foundation.powf($0, e) }
    }
    public func pow(_ e: Tensor) throws -> Tensor { try zipMap(e) { Foundation.powf($0, $1) } }
    /// `c ^ self`.
    public func raising(_ c: Float) throws -> Tensor { try map { Foundation.powf(c, $0) } }
    public func maximum(_ o: Tensor) throws -> Tensor { try zipMap(o) { ($0.isNaN || $0 >= $1) ? $0 : $1 } }
    public func minimum(_ o: Tensor) throws -> Tensor { try zipMap(o) { ($0.isNaN || $0 <= $1) ? $0 : $1 } }

    // MARK: unary functions

    public func exp() throws -> Tensor { try map { Foundation.expf($0) } }
    public func log() throws -> Tensor { try map { Foundation.logf($0) } }
    public func sqrt() throws -> Tensor { try map { $0.squareRoot() } }
    public func abs() throws -> Tensor { try map { Swift.abs($0) } }
    public func tanh() throws -> Tensor { try map { Foundation.tanhf($0) } }
    public func sigmoid() throws -> Tensor {
        try map { x in x >= 0 ? 1 / (1 + Foundation.expf(-x)) : Foundation.expf(x) / (1 + Foundation.expf(x)) }
    }
    public func relu() throws -> Tensor { try map { $0 > 0 ? $0 : ($0.isNaN ? $0 : 0) } }
    /// GELU, exact (erf) or with the tanh approximation GPT-2 uses.
    public func gelu(approximateTanh: Bool = false) throws -> Tensor {
        if approximateTanh {
            let k: Float = 0.7978845608028654  // sqrt(2/pi)
            return try map { x in 0.5 * x * (1 + Foundation.tanhf(k * (x + 0.044715 * x * x * x))) }
        }
        return try map { x in 0.5 * x * (1 + Foundation.erff(x * 0.7071067811865476)) }
    }
    public func silu() throws -> Tensor {
        try map { x in x >= 0 ? x / (1 + Foundation.expf(-x)) : x * Foundation.expf(x) / (1 + Foundation.expf(x)) }
    }
    /// Clamps into [low, high]; either bound may be absent.
    public func clamp(min low: Float?, max high: Float?) throws -> Tensor {
        if let low, let high, low > high { throw TensorError("clamp: min \(low) is greater than max \(high)") }
        let lo = low ?? -.infinity, hi = high ?? .infinity
        return try map { x in x.isNaN ? x : Swift.min(Swift.max(x, lo), hi) }
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
        switch c {
        case .eq: return try zipMap(other) { $0 == $1 ? 1 : 0 }
        case .ne: return try zipMap(other) { $0 != $1 ? 1 : 0 }
        case .lt: return try zipMap(other) { $0 < $1 ? 1 : 0 }
        case .le: return try zipMap(other) { $0 <= $1 ? 1 : 0 }
        case .gt: return try zipMap(other) { $0 > $1 ? 1 : 0 }
        case .ge: return try zipMap(other) { $0 >= $1 ? 1 : 0 }
        }
    }

    public func compared(_ c: Comparison, _ v: Float) throws -> Tensor {
        switch c {
        case .eq: return try map { $0 == v ? 1 : 0 }
        case .ne: return try map { $0 != v ? 1 : 0 }
        case .lt: return try map { $0 < v ? 1 : 0 }
        case .le: return try map { $0 <= v ? 1 : 0 }
        case .gt: return try map { $0 > v ? 1 : 0 }
        case .ge: return try map { $0 >= v ? 1 : 0 }
        }
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

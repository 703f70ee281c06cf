// Tensor+Reduce.swift: reductions over all elements or along one dimension, softmax and log-softmax.
//
// Along a dimension, the tensor is viewed as (outer, n, inner) and each output reads one strided vector of
// n elements. Sums accumulate in Double. Full reductions over large tensors add fixed-size chunk partials
// in order, so the result does not depend on the thread count.

import Foundation

extension Tensor {
    /// The (outer, n, inner) split of a contiguous tensor around `dim`.
    func split(around dim: Int) -> (outer: Int, n: Int, inner: Int) {
        let outer = shape[0..<dim].reduce(1, *)
        let inner = shape[(dim + 1)...].reduce(1, *)
        return (outer, shape[dim], inner)
    }

    func reducedShape(_ dim: Int, keepdim: Bool) -> [Int] {
        var s = shape
        if keepdim { s[dim] = 1 } else { s.remove(at: dim) }
        return s
    }

    /// For every output position, `f(pointer, n, stride)` over the vector along `dim`.
    @inline(__always)
    func reduce(dim: Int, keepdim: Bool, _ f: (UnsafePointer<Float>, Int, Int) -> Float) throws -> Tensor {
        try checkDim(dim)
        let c = contiguous()
        let (outer, n, inner) = c.split(around: dim)
        let out = try Tensor(uninitializedShape: reducedShape(dim, keepdim: keepdim))
        let src = UnsafePointer(c.basePointer), dst = out.basePointer
        Parallel.forRanges(outer * inner, cost: n) { r in
            for j in r {
                let o = j / inner, i = j % inner
                dst[j] = f(src + o * n * inner + i, n, inner)
            }
        }
        return out
    }

    /// Full reduction: `chunk(p, n)` over fixed-size chunks, combined in order by `combine`.
    @inline(__always)
    func reduceAll(_ chunk: (UnsafePointer<Float>, Int) -> Double, _ combine: (Double, Double) -> Double,
                   initial: Double) -> Double {
        let c = contiguous()
        let p = UnsafePointer(c.basePointer), n = c.count
        let size = 1 << 16
        let chunks = (n + size - 1) / size
        if chunks <= 1 { return combine(initial, chunk(p, n)) }
        var partial = [Double](repeating: 0, count: chunks)
        partial.withUnsafeMutableBufferPointer { part in
            let pp = part.baseAddress!
            Parallel.forRanges(chunks, cost: size) { r in
                for k in r { pp[k] = chunk(p + k * size, Swift.min(size, n - k * size)) }
            }
        }
        return partial.reduce(initial, combine)
    }

    // MARK: sum, mean, var, std

    @inline(__always)
    static func vectorSum(_ p: UnsafePointer<Float>, _ n: Int, _ s: Int) -> Double {
        var a0 = 0.0, a1 = 0.0, a2 = 0.0, a3 = 0.0
        var i = 0
        if s == 1 {
            while i + 4 <= n {
                a0 += Double(p[i]); a1 += Double(p[i + 1]); a2 += Double(p[i + 2]); a3 += Double(p[i + 3])
                i += 4
            }
        }
        while i < n { a0 += Double(p[i * s]); i += 1 }
        return (a0 + a1) + (a2 + a3)
    }

    public func sum() -> Tensor {
        Tensor(scalar: Float(reduceAll({ Tensor.vectorSum($0, $1, 1) }, +, initial: 0)))
    }

    public func sum(dim: Int, keepdim: Bool = false) throws -> Tensor {
        try reduce(dim: dim, keepdim: keepdim) { p, n, s in Float(Tensor.vectorSum(p, n, s)) }
    }

    public func mean() throws -> Tensor {
        guard count > 0 else { throw TensorError("mean of an empty tensor") }
        return Tensor(scalar: Float(reduceAll({ Tensor.vectorSum($0, $1, 1) }, +, initial: 0) / Double(count)))
    }

    public func mean(dim: Int, keepdim: Bool = false) throws -> Tensor {
        try checkDim(dim)
        guard shape[dim] > 0 else { throw TensorError("mean over an empty dimension") }
        return try reduce(dim: dim, keepdim: keepdim) { p, n, s in Float(Tensor.vectorSum(p, n, s) / Double(n)) }
    }

    @inline(__always)
    static func vectorVariance(_ p: UnsafePointer<Float>, _ n: Int, _ s: Int, unbiased: Bool) -> Double {
        let m = vectorSum(p, n, s) / Double(n)
        var acc = 0.0
        for i in 0..<n { let d = Double(p[i * s]) - m; acc += d * d }
        let denominator = unbiased ? n - 1 : n
        return denominator > 0 ? acc / Double(denominator) : .nan
    }

    public func variance(unbiased: Bool = true) throws -> Tensor {
        guard count > 0 else { throw TensorError("variance of an empty tensor") }
        let c = contiguous()
        return Tensor(scalar: Float(Tensor.vectorVariance(c.basePointer, c.count, 1, unbiased: unbiased)))
    }

    public func variance(dim: Int, keepdim: Bool = false, unbiased: Bool = true) throws -> Tensor {
        try checkDim(dim)
        guard shape[dim] > 0 else { throw TensorError("variance over an empty dimension") }
        return try reduce(dim: dim, keepdim: keepdim) { p, n, s in
            Float(Tensor.vectorVariance(p, n, s, unbiased: unbiased))
        }
    }

    public func standardDeviation(unbiased: Bool = true) throws -> Tensor {
        try variance(unbiased: unbiased).sqrt()
    }

    public func standardDeviation(dim: Int, keepdim: Bool = false, unbiased: Bool = true) throws -> Tensor {
        try variance(dim: dim, keepdim: keepdim, unbiased: unbiased).sqrt()
    }

    // MARK: max, min, argmax, argmin

    /// Index of the largest (or smallest) element; NaN wins, as in PyTorch; the first on ties.
    @inline(__always)
    static func vectorArgExtreme(_ p: UnsafePointer<Float>, _ n: Int, _ s: Int, largest: Bool) -> Int {
        var best = 0
        var v = p[0]
        if v.isNaN { return 0 }
        for i in 1..<Swift.max(n, 1) {
            let x = p[i * s]
            if x.isNaN { return i }
            if largest ? x > v : x < v { v = x; best = i }
        }
        return best
    }

    /// Values and 0-based indices of the largest (or smallest) elements along `dim`.
    public func extreme(dim: Int, keepdim: Bool = false, largest: Bool) throws -> (values: Tensor, indices: Tensor) {
        try checkDim(dim)
        guard shape[dim] > 0 else { throw TensorError("\(largest ? "max" : "min") over an empty dimension") }
        let indices = try reduce(dim: dim, keepdim: keepdim) { p, n, s in
            Float(Tensor.vectorArgExtreme(p, n, s, largest: largest))
        }
        let values = try reduce(dim: dim, keepdim: keepdim) { p, n, s in
            p[Tensor.vectorArgExtreme(p, n, s, largest: largest) * s]
        }
        return (values, indices)
    }

    /// The largest (or smallest) element and its 0-based flat index.
    public func extreme(largest: Bool) throws -> (value: Float, index: Int) {
        guard count > 0 else { throw TensorError("\(largest ? "max" : "min") of an empty tensor") }
        let c = contiguous()
        let i = Tensor.vectorArgExtreme(c.basePointer, c.count, 1, largest: largest)
        return (c.basePointer[i], i)
    }

    // MARK: logsumexp, softmax, log_softmax

    @inline(__always)
    static func vectorLogSumExp(_ p: UnsafePointer<Float>, _ n: Int, _ s: Int) -> Float {
        var m = -Float.infinity
        for i in 0..<n { m = Swift.max(m, p[i * s]) }
        if m == -.infinity || m.isNaN || m == .infinity { return m.isNaN ? .nan : m }
        var acc: Float = 0
        for i in 0..<n { acc += Foundation.expf(p[i * s] - m) }
        return m + Foundation.logf(acc)
    }

    public func logSumExp(dim: Int, keepdim: Bool = false) throws -> Tensor {
        try reduce(dim: dim, keepdim: keepdim) { p, n, s in Tensor.vectorLogSumExp(p, n, s) }
    }

    public func logSumExp() throws -> Tensor {
        let c = contiguous()
        return Tensor(scalar: Tensor.vectorLogSumExp(c.basePointer, c.count, 1))
    }

    /// Softmax (or log-softmax) along `dim`; the result has this tensor's shape.
    public func softmax(dim: Int, log: Bool = false) throws -> Tensor {
        try checkDim(dim)
        let c = contiguous()
        let (outer, n, inner) = c.split(around: dim)
        let out = try Tensor(uninitializedShape: shape)
        let src = c.basePointer, dst = out.basePointer
        Parallel.forRanges(outer * inner, cost: n * 3) { r in
            for j in r {
                let o = j / inner, i = j % inner
                let base = o * n * inner + i
                let p = src + base, q = dst + base, s = inner
                var m = -Float.infinity
                for k in 0..<n { m = Swift.max(m, p[k * s]) }
                if m == -.infinity { m = 0 }
                var acc: Float = 0
                for k in 0..<n { let e = Foundation.expf(p[k * s] - m); q[k * s] = e; acc += e }
                if log {
                    let lse = Foundation.logf(acc)
                    for k in 0..<n { q[k * s] = p[k * s] - m - lse }
                } else {
                    let inv = 1 / acc
                    for k in 0..<n { q[k * s] *= inv }
                }
            }
        }
        return out
    }
}

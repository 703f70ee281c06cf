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
        let c = try contiguous()
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
                   initial: Double) throws -> Double {
        let c = try contiguous()
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
        var i = 0
        var total = 0.0
        if s == 1 && n >= 16 {
            // 16 double accumulators in two SIMD vectors: the float-to-double conversions vectorise.
            var a = SIMD8<Double>(repeating: 0), b = SIMD8<Double>(repeating: 0)
            while i + 16 <= n {
                a += SIMD8<Double>(loadLanes(p + i))
                b += SIMD8<Double>(loadLanes(p + i + 8))
                i += 16
            }
            total = (a + b).sum()
        }
        var a0 = 0.0, a1 = 0.0, a2 = 0.0, a3 = 0.0
        if s == 1 {
            while i + 4 <= n {
                a0 += Double(p[i]); a1 += Double(p[i + 1]); a2 += Double(p[i + 2]); a3 += Double(p[i + 3])
                i += 4
            }
        }
        while i < n { a0 += Double(p[i * s]); i += 1 }
        return total + ((a0 + a1) + (a2 + a3))
    }

    // Backward of a reduction along `dim`: the result's gradient, with the reduced dimension put back, broadcast
    // over the input (the engine expands nothing itself, so expand here).
    func spreadGrad(_ g: Tensor, dim: Int, keepdim: Bool) throws -> Tensor {
        try (keepdim ? g : g.unsqueeze(dim)).expand(shape)
    }

    public func sum() throws -> Tensor {
        let inShape = shape
        return Tensor(scalar: Float(try reduceAll({ Tensor.vectorSum($0, $1, 1) }, +, initial: 0)))
            .recorded("sum", [self]) { g in [try g.expand(inShape)] }
    }

    public func sum(dim: Int, keepdim: Bool = false) throws -> Tensor {
        try reduce(dim: dim, keepdim: keepdim) { p, n, s in Float(Tensor.vectorSum(p, n, s)) }
            .recorded("sum", [self]) { g in [try self.spreadGrad(g, dim: dim, keepdim: keepdim)] }
    }

    public func mean() throws -> Tensor {
        guard count > 0 else { throw TensorError("mean of an empty tensor") }
        let inShape = shape, n = Float(count)
        return Tensor(scalar: Float(try reduceAll({ Tensor.vectorSum($0, $1, 1) }, +, initial: 0) / Double(count)))
            .recorded("mean", [self]) { g in [try g.multiplying(1 / n).expand(inShape)] }
    }

    public func mean(dim: Int, keepdim: Bool = false) throws -> Tensor {
        try checkDim(dim)
        guard shape[dim] > 0 else { throw TensorError("mean over an empty dimension") }
        let n = Float(shape[dim])
        return try reduce(dim: dim, keepdim: keepdim) { p, n, s in Float(Tensor.vectorSum(p, n, s) / Double(n)) }
            .recorded("mean", [self]) { g in [try self.spreadGrad(g.multiplying(1 / n), dim: dim, keepdim: keepdim)] }
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
        let c = try contiguous()
        let denominator = Float(unbiased ? count - 1 : count)
        return Tensor(scalar: Float(Tensor.vectorVariance(c.basePointer, c.count, 1, unbiased: unbiased)))
            .recorded("var", [self]) { g in
                // d var / dx = 2 (x - mean) / denominator
                [try self.subtracting(self.mean()).multiplying(g).multiplying(2 / denominator)]
            }
    }

    public func variance(dim: Int, keepdim: Bool = false, unbiased: Bool = true) throws -> Tensor {
        try checkDim(dim)
        guard shape[dim] > 0 else { throw TensorError("variance over an empty dimension") }
        let denominator = Float(unbiased ? shape[dim] - 1 : shape[dim])
        return try reduce(dim: dim, keepdim: keepdim) { p, n, s in
            Float(Tensor.vectorVariance(p, n, s, unbiased: unbiased))
        }.recorded("var", [self]) { g in
            let centered = try self.subtracting(self.mean(dim: dim, keepdim: true))
            return [try centered.multiplying(self.spreadGrad(g, dim: dim, keepdim: keepdim)).multiplying(2 / denominator)]
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
        let inShape = shape
        values.recorded(largest ? "max" : "min", [self]) { g in
            let full = try Tensor(uninitializedShape: inShape, zeroed: true)
            let idx = keepdim ? indices : try indices.unsqueeze(dim)
            let gk = keepdim ? g : try g.unsqueeze(dim)
            try full.scatterAdd(dim, index: idx, source: gk)
            return [full]
        }
        return (values, indices)
    }

    /// The largest (or smallest) element and its 0-based flat index.
    public func extreme(largest: Bool) throws -> (value: Float, index: Int) {
        guard count > 0 else { throw TensorError("\(largest ? "max" : "min") of an empty tensor") }
        let c = try contiguous()
        let i = Tensor.vectorArgExtreme(c.basePointer, c.count, 1, largest: largest)
        return (c.basePointer[i], i)
    }

    // MARK: logsumexp, softmax, log_softmax

    /// log(sum(exp(x))) of n elements s apart, as m + log(sum(exp(x - m))) with m the maximum (NaN ignored
    /// when finding it; a NaN element makes the sum NaN). A C kernel (VectorMath.swift): its vectors hold
    /// consecutive elements whatever the stride, so views and copies agree.
    @inline(__always)
    static func vectorLogSumExp(_ p: UnsafePointer<Float>, _ n: Int, _ s: Int) -> Float {
        vectorKernels.logsumexp(p, n, s)
    }

    public func logSumExp(dim: Int, keepdim: Bool = false) throws -> Tensor {
        try reduce(dim: dim, keepdim: keepdim) { p, n, s in Tensor.vectorLogSumExp(p, n, s) }
            .recorded("logsumexp", [self]) { g in
                [try self.softmax(dim: dim).multiplying(self.spreadGrad(g, dim: dim, keepdim: keepdim))]
            }
    }

    public func logSumExp() throws -> Tensor {
        let c = try contiguous()
        return Tensor(scalar: Tensor.vectorLogSumExp(c.basePointer, c.count, 1))
            .recorded("logsumexp", [self]) { g in
                let flat = try self.reshape([self.count]).softmax(dim: 0).reshape(self.shape)
                return [try flat.multiplying(g)]
            }
    }

    /// Softmax (or log-softmax) along `dim`; the result has this tensor's shape.
    /// Rows along the last dimension run in SIMD lanes along the row; along another dimension, neighbouring
    /// columns run side by side in the lanes. Either way each output depends only on its own row.
    public func softmax(dim: Int, log: Bool = false) throws -> Tensor {
        try checkDim(dim)
        let c = try contiguous()
        let (outer, n, inner) = c.split(around: dim)
        let out = try Tensor(uninitializedShape: shape)
        let src = UnsafePointer(c.basePointer), dst = out.basePointer
        if inner == 1 {
            Parallel.forRanges(outer, cost: n * 3) { r in
                for o in r { Tensor.softmaxRow(src + o * n, dst + o * n, n, log: log) }
            }
        } else {
            let block = 64
            let blocks = (inner + block - 1) / block
            Parallel.forRanges(outer * blocks, cost: n * 3 * block) { r in
                for j in r {
                    let o = j / blocks, i = (j % blocks) * block
                    let base = o * n * inner + i
                    Tensor.softmaxColumns(src + base, dst + base, n, inner, count: Swift.min(block, inner - i), log: log)
                }
            }
        }
        return out.recorded(log ? "log_softmax" : "softmax", [self], saving: [out]) { g in
            let ge = try g.expand(out.shape)
            if log { return [try Tensor.logSoftmaxBackward(y: out, grad: ge, dim: dim)] }   // g - softmax * sum(g)
            return [try Tensor.softmaxBackward(y: out, grad: ge, dim: dim)]                // y * (g - sum(g * y))
        }
    }

    /// Softmax of one contiguous row of n elements: m = max (0 if all are -inf), e = exp(x - m),
    /// then e * (1 / sum(e)), or (x - m) - log(sum(e)). A C kernel (VectorMath.swift).
    @inline(__always)
    static func softmaxRow(_ p: UnsafePointer<Float>, _ q: UnsafeMutablePointer<Float>, _ n: Int, log: Bool) {
        if log { vectorKernels.log_softmax_row(p, q, n) } else { vectorKernels.softmax_row(p, q, n) }
    }

    /// Softmax along a strided dimension for `count` neighbouring columns at once, one per vector lane
    /// (each column's result is its own: lanes never mix). A C kernel (VectorMath.swift).
    @inline(__always)
    static func softmaxColumns(_ p: UnsafePointer<Float>, _ q: UnsafeMutablePointer<Float>, _ n: Int, _ s: Int,
                               count: Int, log: Bool) {
        vectorKernels.softmax_cols(p, q, n, s, count, log ? 1 : 0)
    }
}

// FusedSupport.swift: what the fused kernels (Fused*.swift) share.
//
// How BLAS reads a tensor's last two dimensions in place, copies that leave no trace in the graph, rows of a
// tensor as pointers, loops over chunks whose boundaries depend only on the problem size (so reductions give the
// same bits for any thread count), token-id validation, and small SIMD row loops. Nothing here records autograd
// nodes.

import TychoTensor

typealias Lanes8 = SIMD8<Float>

@inline(__always) func load8(_ p: UnsafePointer<Float>) -> Lanes8 {
    UnsafeRawPointer(p).loadUnaligned(as: Lanes8.self)
}

@inline(__always) func store8(_ v: Lanes8, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: Lanes8.self)
}

/// The sum of the lanes, in a fixed order.
@inline(__always) func laneTotal(_ v: Lanes8) -> Float {
    let a = v.lowHalf + v.highHalf
    let b = a.lowHalf + a.highHalf
    return b[0] + b[1]
}

enum Fused {
    // MARK: layouts

    /// How BLAS reads the matrix formed by the last two dimensions of `t` in place: stored transposed or not,
    /// and the leading dimension; nil when it cannot (the caller copies).
    static func blasLayout(_ t: Tensor) -> (trans: Bool, ld: Int)? {
        let r = t.rank
        let rows = t.shape[r - 2], cols = t.shape[r - 1]
        let rs = t.strides[r - 2], cs = t.strides[r - 1]
        guard rs < Int(Int32.max), cs < Int(Int32.max) else { return nil }
        if cs == 1 || cols <= 1, rs >= max(1, cols) || rows <= 1 { return (false, max(rs, cols, 1)) }
        if rs == 1 || rows <= 1, cs >= max(1, rows) || cols <= 1 { return (true, max(cs, rows, 1)) }
        return nil
    }

    /// `t` itself when BLAS can read its last two dimensions in place, else an unrecorded contiguous copy, with
    /// the layout; throws when even the copy is too wide for BLAS's 32-bit leading dimensions.
    static func blasReadable(_ t: Tensor, op: String) throws -> (Tensor, trans: Bool, ld: Int) {
        if let (trans, ld) = blasLayout(t) { return (t, trans, ld) }
        let c = try contiguous(t)
        guard let (trans, ld) = blasLayout(c) else {
            throw TensorError("\(op): a matrix of size \(Tensor.describe(Array(t.shape.suffix(2)))) is too large for BLAS")
        }
        return (c, trans, ld)
    }

    /// `t` if contiguous, else a contiguous copy that is not recorded (the fused op records one node itself).
    static func contiguous(_ t: Tensor) throws -> Tensor {
        if t.isContiguous { return t }
        return try GradMode.with(enabled: false) { try t.clone() }
    }

    /// A tensor whose last dimension has stride 1 (or size <= 1): `t` itself or an unrecorded copy.
    static func unitLastStride(_ t: Tensor) throws -> Tensor {
        if t.rank == 0 || t.strides[t.rank - 1] == 1 || t.shape[t.rank - 1] <= 1 { return t }
        return try contiguous(t)
    }

    /// Storage offsets (from `basePointer`) of each row along the last dimension of `t`, in row-major order.
    static func rowOffsets(_ t: Tensor) -> [Int] {
        let lead = Array(t.shape.dropLast()), strides = Array(t.strides.dropLast())
        let n = lead.reduce(1, *)
        var out = [Int](repeating: 0, count: n)
        if n == 0 { return out }
        var index = [Int](repeating: 0, count: lead.count)
        var o = 0
        for r in 0..<n {
            out[r] = o
            var d = lead.count - 1
            while d >= 0 {
                index[d] += 1
                o += strides[d]
                if index[d] < lead[d] { break }
                o -= strides[d] * lead[d]
                index[d] = 0
                d -= 1
            }
        }
        return out
    }

    /// A new [B, H, T, D] tensor (zeroed when asked) stored in the dimension order of `like` when `like` is a
    /// transposed [B, T, H, D] view (as the models make q, k and v), else contiguous. Either way the last
    /// dimension has stride 1 and the [T, D] matrices have row stride `strides[2]`.
    static func allocate4D(like: Tensor, zeroed: Bool) throws -> Tensor {
        let s = like.shape
        if like.strides[3] == 1 || s[3] <= 1, s[1] > 1, s[2] > 1, like.strides[1] < like.strides[2] {
            return try transposedBTHD(s, zeroed: zeroed)
        }
        return try Tensor(uninitializedShape: s, zeroed: zeroed)
    }

    /// A new tensor of size [B, H, T, D] stored as [B, T, H, D].
    static func transposedBTHD(_ s: [Int], zeroed: Bool) throws -> Tensor {
        let storage = try TensorStorage(count: Tensor.checkedCount(s), zeroed: zeroed)
        return try Tensor(viewing: storage, shape: s, strides: [s[2] * s[1] * s[3], s[3], s[1] * s[3], 1], offset: 0)
    }

    // MARK: loops

    /// Calls `body(chunk, rows)` for the chunks of `size` consecutive rows covering `0..<count`, in parallel.
    /// Chunk boundaries depend only on `count` and `size`, so per-chunk partial results combined in chunk order
    /// are the same for any thread count. `cost` is the work of one row, in elements.
    @inline(__always)
    static func forChunks(_ count: Int, size: Int, cost: Int, _ body: (Int, Range<Int>) -> Void) {
        let size = max(size, 1)
        let chunks = (count + size - 1) / size
        Parallel.forRanges(chunks, cost: size * max(cost, 1)) { r in
            for c in r { body(c, (c * size)..<min(count, (c + 1) * size)) }
        }
    }

    /// Rows per chunk for per-chunk partial sums: about 16K elements of work each.
    static func chunkRows(_ width: Int) -> Int { max(1, (1 << 14) / max(width, 1)) }

    // MARK: token ids

    /// The values of `ids` as 0-based positions in `0..<vocab`, or an error naming the first bad one.
    static func tokenIds(_ ids: Tensor, vocab: Int, op: String, what: String) throws -> [Int] {
        let values = ids.toArray()
        var out = [Int](repeating: 0, count: values.count)
        for (n, v) in values.enumerated() {
            guard v.isFinite, v == v.rounded(), Swift.abs(v) < 1e15 else {
                throw TensorError("\(op): \(what) \(v) is not an integer")
            }
            let i = Int(v)
            guard i >= 0 && i < vocab else {
                throw TensorError("\(op): \(what) \(i) out of range for a vocabulary of \(vocab)")
            }
            out[n] = i
        }
        return out
    }

    // MARK: rows

    /// Σ p[i] · q[i] over n floats, lanes then tail, in a fixed order.
    @inline(__always)
    static func dot(_ p: UnsafePointer<Float>, _ q: UnsafePointer<Float>, _ n: Int) -> Float {
        var acc = Lanes8(repeating: 0)
        var i = 0
        while i + 8 <= n { acc += load8(p + i) * load8(q + i); i += 8 }
        var s = laneTotal(acc)
        while i < n { s += p[i] * q[i]; i += 1 }
        return s
    }

    /// p[i] *= c over n floats.
    @inline(__always)
    static func scale(_ p: UnsafeMutablePointer<Float>, _ n: Int, by c: Float) {
        let cv = Lanes8(repeating: c)
        var i = 0
        while i + 8 <= n { store8(load8(p + i) * cv, p + i); i += 8 }
        while i < n { p[i] *= c; i += 1 }
    }
}

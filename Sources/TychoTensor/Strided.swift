// Strided.swift: the loop every element-wise kernel runs on.
//
// Up to three operands (an output and two inputs) share one iteration shape; each has its own strides
// (0 on broadcast dimensions). Dimensions are coalesced where all operands allow it, so contiguous and
// simply broadcast cases run as few long rows. Rows are split across threads by `Parallel.forRanges`.

struct StridedLayout {
    var shape: [Int]
    var strides: [[Int]]  // per operand

    /// Drops size-1 dimensions and merges neighbours that are contiguous for every operand.
    init(shape: [Int], strides: [[Int]]) {
        var sh: [Int] = []
        var st: [[Int]] = Array(repeating: [], count: strides.count)
        for d in 0..<shape.count where shape[d] != 1 {
            if !sh.isEmpty, strides.indices.allSatisfy({ strides[$0][d] * shape[d] == st[$0][st[$0].count - 1] }) {
                sh[sh.count - 1] *= shape[d]
                for k in strides.indices { st[k][st[k].count - 1] = strides[k][d] }
            } else {
                sh.append(shape[d])
                for k in strides.indices { st[k].append(strides[k][d]) }
            }
        }
        if sh.isEmpty {
            sh = [1]
            for k in strides.indices { st[k] = [1] }
        }
        self.shape = sh
        self.strides = st
    }
}

/// The work done on one innermost row by `stridedRows`: offsets and inner strides of up to three operands.
///
/// Hot kernels are types conforming to this protocol rather than closures: `stridedRows` is then specialised
/// for each kernel, including the copy of its loop that runs on worker threads. (A closure reached from a
/// parallel chunk is an opaque value there: a per-element function inside it costs an indirect call per
/// element, which made two threads slower than one.)
protocol RowKernel {
    func row(_ o0: Int, _ o1: Int, _ o2: Int, _ n: Int, _ s0: Int, _ s1: Int, _ s2: Int)
}

/// A closure as a row kernel, for loops whose per-row body does its own per-element work.
struct ClosureRowKernel: RowKernel {
    let body: (_ o0: Int, _ o1: Int, _ o2: Int, _ n: Int, _ s0: Int, _ s1: Int, _ s2: Int) -> Void
    @inline(__always)
    func row(_ o0: Int, _ o1: Int, _ o2: Int, _ n: Int, _ s0: Int, _ s1: Int, _ s2: Int) {
        body(o0, o1, o2, n, s0, s1, s2)
    }
}

/// Runs `row(offsets, n, innerStrides)` over every innermost row of the layout. `offsets` and
/// `innerStrides` hold one entry per operand (as a fixed triple; unused operands get 0).
@inline(__always)
func stridedRows(shape: [Int], strides: [[Int]],
                 _ row: (_ o0: Int, _ o1: Int, _ o2: Int, _ n: Int, _ s0: Int, _ s1: Int, _ s2: Int) -> Void) {
    withoutActuallyEscaping(row) { row in
        stridedRows(shape: shape, strides: strides, ClosureRowKernel(body: row))
    }
}

/// `stridedRows` with a kernel type: the loop is specialised for `K`, on every thread.
@inline(__always)
func stridedRows<K: RowKernel>(shape: [Int], strides: [[Int]], _ kernel: K) {
    var padded = strides
    while padded.count < 3 { padded.append([Int](repeating: 0, count: shape.count)) }
    let layout = StridedLayout(shape: shape, strides: padded)
    let sh = layout.shape, st = layout.strides
    let rank = sh.count
    let inner = sh[rank - 1]
    let i0 = st[0][rank - 1], i1 = st[1][rank - 1], i2 = st[2][rank - 1]
    if sh.contains(0) { return }
    if rank == 1 {
        // One long row: split it.
        Parallel.forRanges(inner) { r in
            kernel.row(r.lowerBound * i0, r.lowerBound * i1, r.lowerBound * i2, r.count, i0, i1, i2)
        }
        return
    }
    let outerShape = Array(sh[0..<(rank - 1)])
    let rows = outerShape.reduce(1, *)
    Parallel.forRanges(rows, cost: inner) { r in
        // Multi-index of the first row in this range.
        var idx = [Int](repeating: 0, count: rank - 1)
        var rem = r.lowerBound
        for d in stride(from: rank - 2, through: 0, by: -1) {
            idx[d] = rem % outerShape[d]
            rem /= outerShape[d]
        }
        var o0 = 0, o1 = 0, o2 = 0
        for d in 0..<(rank - 1) {
            o0 += idx[d] * st[0][d]; o1 += idx[d] * st[1][d]; o2 += idx[d] * st[2][d]
        }
        for _ in r {
            kernel.row(o0, o1, o2, inner, i0, i1, i2)
            // Advance the outer multi-index like an odometer.
            var d = rank - 2
            while d >= 0 {
                idx[d] += 1
                o0 += st[0][d]; o1 += st[1][d]; o2 += st[2][d]
                if idx[d] < outerShape[d] { break }
                o0 -= st[0][d] * idx[d]; o1 -= st[1][d] * idx[d]; o2 -= st[2][d] * idx[d]
                idx[d] = 0
                d -= 1
            }
        }
    }
}

extension Tensor {
    /// Copies `source` (same element count; broadcast to this shape if shapes differ) into this view.
    func copyElements(from source: Tensor) {
        let src = source.shape == shape ? source : (try? source.expand(shape)) ?? source
        let dst = basePointer, sp = src.basePointer
        stridedRows(shape: shape, strides: [strides, src.strides]) { o0, o1, _, n, s0, s1, _ in
            if s0 == 1 && s1 == 1 {
                (dst + o0).update(from: sp + o1, count: n)
            } else {
                var a = o0, b = o1
                for _ in 0..<n { dst[a] = sp[b]; a += s0; b += s1 }
            }
        }
    }

    /// Copies `source` into this view, broadcasting it to this view's shape.
    public func copy(from source: Tensor) throws {
        guard source.shape == shape || Tensor.broadcastable(source.shape, to: shape) else {
            throw TensorError("cannot copy a tensor of size \(Tensor.describe(source.shape)) into size \(Tensor.describe(shape))")
        }
        // Copy through a temporary when the two share storage, so overlapping views read old values.
        let src = source.storage === storage ? try source.clone() : source
        copyElements(from: src)
        storage.version &+= 1
    }

    /// Sets every element of this view to `value`.
    public func fill(_ value: Float) {
        storage.version &+= 1
        let dst = basePointer
        stridedRows(shape: shape, strides: [strides]) { o0, _, _, n, s0, _, _ in
            if s0 == 1 {
                (dst + o0).update(repeating: value, count: n)
            } else {
                var a = o0
                for _ in 0..<n { dst[a] = value; a += s0 }
            }
        }
    }
}

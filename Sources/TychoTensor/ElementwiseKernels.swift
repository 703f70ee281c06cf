// ElementwiseKernels.swift: the SIMD loops behind Tycho's element-wise operations.
//
// Each operation is a small type (`UnaryOp`, `BinaryOp`) working on 8 lanes, so the loops below are
// specialised for it on every thread (see `RowKernel`). Every element goes through the lane function, the
// ragged end of a row and strided rows included (gathered into a padded vector), so an element's result
// never depends on where a row or a thread's chunk starts: 1 and 2 threads give bitwise equal results.
// Transcendental operations hand contiguous runs (and gathered blocks of strided rows) to a C kernel instead,
// which keeps the same property (VectorMath.swift).

import Foundation

// MARK: lane loads and stores

@inline(__always) func loadLanes(_ p: UnsafePointer<Float>) -> Lanes {
    UnsafeRawPointer(p).loadUnaligned(as: Lanes.self)
}

@inline(__always) func storeLanes(_ v: Lanes, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: Lanes.self)
}

/// `count` (<= 8) elements `stride` apart, the other lanes set to `pad`.
@inline(__always) func gatherLanes(_ p: UnsafePointer<Float>, _ stride: Int, count: Int = 8,
                                   pad: Float = 0) -> Lanes {
    var v = Lanes(repeating: pad)
    for k in 0..<count { v[k] = p[k * stride] }
    return v
}

/// Stores the first `count` (<= 8) lanes `stride` apart.
@inline(__always) func scatterLanes(_ v: Lanes, _ p: UnsafeMutablePointer<Float>, _ stride: Int, count: Int = 8) {
    for k in 0..<count { p[k * stride] = v[k] }
}

// MARK: operations

/// A function of one float, applied lane-wise to 8 floats.
protocol UnaryOp {
    func callAsFunction(_ x: Lanes) -> Lanes
    /// A C kernel over contiguous runs (CTensorKernels) that computes this function instead of the lane
    /// function, or nil. Strided rows are gathered into blocks for it, so every element takes one path.
    var run: RunKernel? { get }
}

extension UnaryOp {
    @inline(__always) var run: RunKernel? { nil }
}

/// A function of two floats, applied lane-wise.
protocol BinaryOp { func callAsFunction(_ x: Lanes, _ y: Lanes) -> Lanes }

enum Ops {
    struct Add: BinaryOp { @inline(__always) func callAsFunction(_ x: Lanes, _ y: Lanes) -> Lanes { x + y } }
    struct Sub: BinaryOp { @inline(__always) func callAsFunction(_ x: Lanes, _ y: Lanes) -> Lanes { x - y } }
    struct Mul: BinaryOp { @inline(__always) func callAsFunction(_ x: Lanes, _ y: Lanes) -> Lanes { x * y } }
    struct Div: BinaryOp { @inline(__always) func callAsFunction(_ x: Lanes, _ y: Lanes) -> Lanes { x / y } }
    /// x where x is NaN or x >= y, else y (PyTorch's maximum: NaN wins).
    struct Maximum: BinaryOp {
        @inline(__always) func callAsFunction(_ x: Lanes, _ y: Lanes) -> Lanes {
            y.replacing(with: x, where: (x .!= x) .| (x .>= y))
        }
    }
    struct Minimum: BinaryOp {
        @inline(__always) func callAsFunction(_ x: Lanes, _ y: Lanes) -> Lanes {
            y.replacing(with: x, where: (x .!= x) .| (x .<= y))
        }
    }
    /// 1 where the comparison holds, else 0.
    struct Compare: BinaryOp {
        let c: Tensor.Comparison
        @inline(__always) func callAsFunction(_ x: Lanes, _ y: Lanes) -> Lanes {
            let mask: SIMDMask<IntLanes>
            switch c {
            case .eq: mask = x .== y
            case .ne: mask = x .!= y
            case .lt: mask = x .< y
            case .le: mask = x .<= y
            case .gt: mask = x .> y
            case .ge: mask = x .>= y
            }
            return Lanes(repeating: 0).replacing(with: 1, where: mask)
        }
    }
    /// A C function of two floats (libm's), lane by lane.
    struct Lanewise2: BinaryOp {
        let f: @convention(c) (Float, Float) -> Float
        @inline(__always) func callAsFunction(_ x: Lanes, _ y: Lanes) -> Lanes {
            var r = x
            for k in 0..<8 { r[k] = f(x[k], y[k]) }
            return r
        }
    }

    /// `op(x, c)` for a constant c.
    struct Right<Op: BinaryOp>: UnaryOp {
        let op: Op, c: Lanes
        @inline(__always) func callAsFunction(_ x: Lanes) -> Lanes { op(x, c) }
    }
    /// `op(c, x)` for a constant c.
    struct Left<Op: BinaryOp>: UnaryOp {
        let op: Op, c: Lanes
        @inline(__always) func callAsFunction(_ x: Lanes) -> Lanes { op(c, x) }
    }

    struct Identity: UnaryOp { @inline(__always) func callAsFunction(_ x: Lanes) -> Lanes { x } }
    struct Negate: UnaryOp { @inline(__always) func callAsFunction(_ x: Lanes) -> Lanes { -x } }
    struct Square: UnaryOp { @inline(__always) func callAsFunction(_ x: Lanes) -> Lanes { x * x } }
    struct Sqrt: UnaryOp { @inline(__always) func callAsFunction(_ x: Lanes) -> Lanes { x.squareRoot() } }
    struct Abs: UnaryOp { @inline(__always) func callAsFunction(_ x: Lanes) -> Lanes { vabs(x) } }
    /// x if x > 0 or NaN, else +0.
    struct Relu: UnaryOp {
        @inline(__always) func callAsFunction(_ x: Lanes) -> Lanes { x.replacing(with: 0, where: x .<= 0) }
    }
    // The transcendental functions are C kernels (VectorMath.swift); their lane functions call the same code.
    struct Exp: UnaryOp {
        @inline(__always) var run: RunKernel? { vectorKernels.exp }
        @inline(__always) func callAsFunction(_ x: Lanes) -> Lanes { runLanes(vectorKernels.exp, x) }
    }
    struct Log: UnaryOp {
        @inline(__always) var run: RunKernel? { vectorKernels.log }
        @inline(__always) func callAsFunction(_ x: Lanes) -> Lanes { runLanes(vectorKernels.log, x) }
    }
    struct Tanh: UnaryOp {
        @inline(__always) var run: RunKernel? { vectorKernels.tanh }
        @inline(__always) func callAsFunction(_ x: Lanes) -> Lanes { runLanes(vectorKernels.tanh, x) }
    }
    struct Sigmoid: UnaryOp {
        @inline(__always) var run: RunKernel? { vectorKernels.sigmoid }
        @inline(__always) func callAsFunction(_ x: Lanes) -> Lanes { runLanes(vectorKernels.sigmoid, x) }
    }
    struct Silu: UnaryOp {
        @inline(__always) var run: RunKernel? { vectorKernels.silu }
        @inline(__always) func callAsFunction(_ x: Lanes) -> Lanes { runLanes(vectorKernels.silu, x) }
    }
    struct Gelu: UnaryOp {
        @inline(__always) var run: RunKernel? { vectorKernels.gelu }
        @inline(__always) func callAsFunction(_ x: Lanes) -> Lanes { runLanes(vectorKernels.gelu, x) }
    }
    struct GeluTanh: UnaryOp {
        @inline(__always) var run: RunKernel? { vectorKernels.gelu_tanh }
        @inline(__always) func callAsFunction(_ x: Lanes) -> Lanes { runLanes(vectorKernels.gelu_tanh, x) }
    }
    /// Swift.min(Swift.max(x, low), high), NaN kept.
    struct Clamp: UnaryOp {
        let low: Lanes, high: Lanes
        @inline(__always) func callAsFunction(_ x: Lanes) -> Lanes {
            let m = x.replacing(with: low, where: low .>= x)
            return m.replacing(with: high, where: high .< m)
        }
    }
    /// powf(x, e) for a constant e, lane by lane.
    struct PowScalar: UnaryOp {
        let e: Float
        @inline(__always) func callAsFunction(_ x: Lanes) -> Lanes {
            var r = x
            for k in 0..<8 { r[k] = Foundation.powf(x[k], e) }
            return r
        }
    }
    /// powf(c, x) for a constant c, lane by lane.
    struct RaiseScalar: UnaryOp {
        let c: Float
        @inline(__always) func callAsFunction(_ x: Lanes) -> Lanes {
            var r = x
            for k in 0..<8 { r[k] = Foundation.powf(c, x[k]) }
            return r
        }
    }
    /// 1 where `x <op> c` holds, else 0.
    struct CompareScalar: UnaryOp {
        let c: Tensor.Comparison, v: Lanes
        @inline(__always) func callAsFunction(_ x: Lanes) -> Lanes { Compare(c: c)(x, v) }
    }
    /// A C function of one float (libm's), lane by lane.
    struct Lanewise: UnaryOp {
        let f: @convention(c) (Float) -> Float
        @inline(__always) func callAsFunction(_ x: Lanes) -> Lanes {
            var r = x
            for k in 0..<8 { r[k] = f(x[k]) }
            return r
        }
    }
}

// MARK: row kernels

struct UnaryRows<F: UnaryOp>: RowKernel {
    let f: F
    let dst: UnsafeMutablePointer<Float>
    let src: UnsafePointer<Float>

    /// Strided rows go through a C kernel in blocks of this many elements.
    static var block: Int { 256 }

    @inline(__always)
    func row(_ o0: Int, _ o1: Int, _ o2: Int, _ n: Int, _ s0: Int, _ s1: Int, _ s2: Int) {
        let d = dst + o0, s = src + o1
        if let kernel = f.run {
            if s0 == 1 && s1 == 1 { kernel(s, d, n); return }
            withUnsafeTemporaryAllocation(of: Float.self, capacity: Self.block) { buffer in
                let b = buffer.baseAddress!
                var i = 0
                while i < n {
                    let m = Swift.min(Self.block, n - i)
                    for k in 0..<m { b[k] = s[(i + k) * s1] }
                    kernel(b, b, m)
                    for k in 0..<m { d[(i + k) * s0] = b[k] }
                    i += m
                }
            }
            return
        }
        var i = 0
        if s0 == 1 && s1 == 1 {
            while i + 8 <= n { storeLanes(f(loadLanes(s + i)), d + i); i += 8 }
        } else {
            while i + 8 <= n { scatterLanes(f(gatherLanes(s + i * s1, s1)), d + i * s0, s0); i += 8 }
        }
        if i < n {
            let m = n - i
            scatterLanes(f(gatherLanes(s + i * s1, s1, count: m)), d + i * s0, s0, count: m)
        }
    }
}

struct BinaryRows<F: BinaryOp>: RowKernel {
    let f: F
    let dst: UnsafeMutablePointer<Float>
    let a: UnsafePointer<Float>
    let b: UnsafePointer<Float>

    @inline(__always)
    func row(_ o0: Int, _ o1: Int, _ o2: Int, _ n: Int, _ s0: Int, _ s1: Int, _ s2: Int) {
        let d = dst + o0, x = a + o1, y = b + o2
        var i = 0
        if s0 == 1 && s1 == 1 && s2 == 1 {
            while i + 8 <= n { storeLanes(f(loadLanes(x + i), loadLanes(y + i)), d + i); i += 8 }
        } else if s0 == 1 && s1 == 1 && s2 == 0 {
            let c = Lanes(repeating: y[0])
            while i + 8 <= n { storeLanes(f(loadLanes(x + i), c), d + i); i += 8 }
        } else if s0 == 1 && s1 == 0 && s2 == 1 {
            let c = Lanes(repeating: x[0])
            while i + 8 <= n { storeLanes(f(c, loadLanes(y + i)), d + i); i += 8 }
        } else {
            while i + 8 <= n {
                scatterLanes(f(gatherLanes(x + i * s1, s1), gatherLanes(y + i * s2, s2)), d + i * s0, s0)
                i += 8
            }
        }
        if i < n {
            let m = n - i
            scatterLanes(f(gatherLanes(x + i * s1, s1, count: m), gatherLanes(y + i * s2, s2, count: m)),
                         d + i * s0, s0, count: m)
        }
    }
}

extension Tensor {
    /// `f` applied to every element, into a new contiguous tensor.
    @inline(__always)
    func apply<F: UnaryOp>(_ f: F) throws -> Tensor {
        let out = try Tensor(uninitializedShape: shape)
        stridedRows(shape: shape, strides: [out.strides, strides],
                    UnaryRows(f: f, dst: out.basePointer, src: UnsafePointer(basePointer)))
        return out
    }

    /// `f` applied to pairs of elements of `self` and `other` broadcast together.
    @inline(__always)
    func apply<F: BinaryOp>(_ other: Tensor, _ f: F) throws -> Tensor {
        let shape = try Tensor.broadcastShape(self.shape, other.shape)
        let out = try Tensor(uninitializedShape: shape)
        stridedRows(shape: shape,
                    strides: [out.strides, broadcastStrides(to: shape), other.broadcastStrides(to: shape)],
                    BinaryRows(f: f, dst: out.basePointer, a: UnsafePointer(basePointer),
                               b: UnsafePointer(other.basePointer)))
        return out
    }
}

// VectorMath.swift: the lane types of Tycho's Swift kernels, and the Swift face of CTensorKernels.
//
// exp, log, tanh, sigmoid, silu, gelu (both forms), their backward formulas, and softmax, log-softmax and
// logsumexp of a row are C kernels (Sources/CTensorKernels), compiled for generic x86-64, AVX2 + FMA and
// AVX-512 and chosen at run time: Swift's SIMD code for wide vectors was poor (building this module for
// AVX-512 gave exp only 1.7x), and one Swift build cannot use AVX-512 on the CPUs that have it and still run
// on those that do not. Accuracy bounds are checked against double precision for every variant the machine
// supports (VectorMathTests.swift).
//
// Every C kernel gives each element a result that depends only on its own input (or its row), whatever the
// array's start or length, so splitting work across threads never changes a result.

import CTensorKernels

typealias Lanes = SIMD8<Float>
typealias IntLanes = SIMD8<Int32>

@inline(__always) func bits(_ x: Lanes) -> IntLanes { unsafeBitCast(x, to: IntLanes.self) }
@inline(__always) func float(bits x: IntLanes) -> Lanes { unsafeBitCast(x, to: Lanes.self) }

/// |x| (clears the sign bit, so NaN stays NaN).
@inline(__always) func vabs(_ x: Lanes) -> Lanes { float(bits: bits(x) & IntLanes(repeating: 0x7fff_ffff)) }

/// The kernel variant for this CPU (chosen once; TYCHO_KERNELS=generic|avx2|avx512 caps it).
let vectorKernels: tk_kernels = tk_active().pointee

/// `y[i] = f(x[i])` over a contiguous run of n floats (x and y may be the same array).
typealias RunKernel = @convention(c) (UnsafePointer<Float>?, UnsafeMutablePointer<Float>?, Int) -> Void

/// `out[i] = grad[i] * f'(v[i])` over contiguous runs, v the saved input or output.
typealias GradKernel = @convention(c) (UnsafePointer<Float>?, UnsafePointer<Float>?, UnsafeMutablePointer<Float>?,
                                       Int) -> Void

/// A run kernel applied to 8 lanes (the same code path, so the same results, as for a whole array).
@inline(__always) func runLanes(_ kernel: RunKernel, _ x: Lanes) -> Lanes {
    var v = x
    withUnsafeMutableBytes(of: &v) { raw in
        let p = raw.baseAddress!.assumingMemoryBound(to: Float.self)
        kernel(p, p, 8)
    }
    return v
}

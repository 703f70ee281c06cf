// DecodeLinear.swift: y = x·W + b for generation's decode step, on CDecodeKernels' gemm, whose rows never depend
// on how many rows are computed together (OpenBLAS's do, once k exceeds its block: see CDecodeKernels.h).
//
// Shapes: N rows, I in features, O out features.
//   x [N, I] (rows of unit stride, any row stride); W [I, O] packed in panels of 64 columns (PackedWeight, made
//   once per decoder); b [O] or nil; y [N, O] new.
// Threads split the panels; each element is summed by one thread in the same order, so results do not depend on
// the thread count either. Forward only: nothing is recorded.

import CDecodeKernels
import TychoTensor

/// A weight [I, O] in CDecodeKernels' packed layout.
struct PackedWeight {
    let inFeatures: Int
    let outFeatures: Int
    let storage: Tensor                 // [tdk_packed_count(I, O)]

    /// Packs `w` read as [I, O]: a matrix stored [I, O] (`transposed` false) or [O, I] (true).
    init(_ w: Tensor, transposed: Bool) throws {
        guard w.rank == 2 else { throw TensorError("decode linear: weight must be 2-dimensional, got size \(Tensor.describe(w.shape))") }
        let m = try GradMode.with(enabled: false) { try (transposed ? w.transpose(0, 1) : w).contiguous() }
        inFeatures = m.shape[0]
        outFeatures = m.shape[1]
        storage = try Tensor(uninitializedShape: [max(tdk_packed_count(inFeatures, outFeatures), 1)])
        tdk_pack(m.basePointer, max(outFeatures, 1), inFeatures, outFeatures, storage.basePointer)
    }

    var panels: Int { (outFeatures + Int(TDK_PANEL) - 1) / Int(TDK_PANEL) }
}

enum DecodeLinear {
    /// Below this many multiply-adds a product runs on the calling thread: a decode step makes a few dozen small
    /// products, and waking a second thread for each costs more than it saves (measured on config A).
    nonisolated(unsafe) static var parallelWork = 1 << 21

    static func forward(_ x: Tensor, weight: PackedWeight, bias: Tensor?) throws -> Tensor {
        let (k, o) = (weight.inFeatures, weight.outFeatures)
        guard x.rank == 2, x.shape[1] == k else {
            throw TensorError("decode linear: input of size \(Tensor.describe(x.shape)) for \(k) in features")
        }
        if let bias, bias.shape != [o] { throw TensorError("decode linear: bias of size \(Tensor.describe(bias.shape)) for \(o) outputs") }
        let n = x.shape[0]
        let xs = x.strides[1] == 1 || k <= 1 ? x : try GradMode.with(enabled: false) { try x.contiguous() }
        let bc = try bias.map { b in try GradMode.with(enabled: false) { try b.contiguous() } }
        let y = try Tensor(uninitializedShape: [n, o])
        if n == 0 || o == 0 { return y }
        let xp = UnsafePointer(xs.basePointer), wp = UnsafePointer(weight.storage.basePointer)
        let bp = bc.map { UnsafePointer($0.basePointer) }, yp = y.basePointer
        let ldx = max(xs.strides[0], k)
        let gemm = tdk_active()!.pointee.gemm!
        let run = { (r: Range<Int>) in gemm(xp, ldx, wp, k, o, bp, yp, o, n, r.lowerBound, r.upperBound) }
        if n * k * o < DecodeLinear.parallelWork {
            run(0..<weight.panels)
        } else {
            Parallel.forRanges(weight.panels, cost: n * k * Int(TDK_PANEL), run)
        }
        return y
    }
}

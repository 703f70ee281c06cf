// FusedNorm.swift: layer norm and RMS norm over the last dimension, forward and backward (llm.c's
// layernorm_forward / layernorm_backward, one pass over each row).
//
// Shapes: N rows of C features.
//   x [..., C] (rows read in place when the last dimension has stride 1), weight [C] or nil, bias [C] or nil
//   mean [N], rstd [N]: saved by the forward for the backward (RMS norm saves rstd only)
// Row statistics accumulate in Double. Rows are split across threads; dweight and dbias are summed per fixed
// chunk of rows and the chunk partials added in chunk order, so any thread count gives the same bits.

import Foundation
import TychoTensor

enum FusedNorm {
    /// y = (x - mean) · rstd · weight + bias, rstd = 1 / sqrt(var + eps) with the biased variance.
    static func layerNorm(_ x: Tensor, weight: Tensor?, bias: Tensor?, eps: Float) throws -> Tensor {
        try normalize(x, weight: weight, bias: bias, eps: eps, centered: true)
    }

    /// y = x · rstd · weight, rstd = 1 / sqrt(mean(x²) + eps).
    static func rmsNorm(_ x: Tensor, weight: Tensor?, eps: Float) throws -> Tensor {
        try normalize(x, weight: weight, bias: nil, eps: eps, centered: false)
    }

    private static func normalize(_ x: Tensor, weight: Tensor?, bias: Tensor?, eps: Float, centered: Bool) throws -> Tensor {
        let c = x.shape[x.rank - 1]
        let xs = try Fused.unitLastStride(x)
        let offsets = Fused.rowOffsets(xs)
        let n = offsets.count
        let wc = try weight.map { try Fused.contiguous($0) }, bc = try bias.map { try Fused.contiguous($0) }
        let y = try Tensor(uninitializedShape: x.shape)                      // [N, C]
        let mean = try Tensor(uninitializedShape: [n]), rstd = try Tensor(uninitializedShape: [n])
        let xp = UnsafePointer(xs.basePointer), yp = y.basePointer
        let wp = wc.map { UnsafePointer($0.basePointer) }, bp = bc.map { UnsafePointer($0.basePointer) }
        let mp = mean.basePointer, rp = rstd.basePointer
        let op = name(centered)

        Parallel.forRanges(n, cost: 3 * c) { rows in
            for r in rows {
                let p = xp + offsets[r], q = yp + r * c
                // mean and variance in Double, two passes (no cancellation)
                let m = centered ? rowSum(p, c, center: nil) / Double(max(c, 1)) : 0
                let v = rowSum(p, c, center: m) / Double(max(c, 1))
                let mf = Float(m), rs = Float(1 / (v + Double(eps)).squareRoot())
                mp[r] = mf; rp[r] = rs
                let mv = Lanes8(repeating: mf), rv = Lanes8(repeating: rs)
                var i = 0
                while i + 8 <= c {
                    var h = (load8(p + i) - mv) * rv
                    if let wp { h *= load8(wp + i) }
                    if let bp { h += load8(bp + i) }
                    store8(h, q + i)
                    i += 8
                }
                while i < c {
                    var h = (p[i] - mf) * rs
                    if let wp { h *= wp[i] }
                    if let bp { h += bp[i] }
                    q[i] = h
                    i += 1
                }
            }
        }

        let inputs = [x] + (weight.map { [$0] } ?? []) + (bias.map { [$0] } ?? [])
        return y.recorded(op, inputs, saving: [xs, mean, rstd]) { g in
            let gc = try Fused.contiguous(g)                                 // dY [N, C]
            let gp = UnsafePointer(gc.basePointer)
            let wantX = x.requiresGrad, wantW = weight?.requiresGrad ?? false, wantB = bias?.requiresGrad ?? false
            let dx = wantX ? try Tensor(uninitializedShape: x.shape) : nil
            let dxp = dx?.basePointer
            // Per-chunk partial sums of dweight and dbias: [chunks, C] each.
            let chunkRows = Fused.chunkRows(c)
            let chunks = (n + chunkRows - 1) / chunkRows
            let partW = wantW ? try Tensor(uninitializedShape: [chunks, c], zeroed: true) : nil
            let partB = wantB ? try Tensor(uninitializedShape: [chunks, c], zeroed: true) : nil
            let pwp = partW?.basePointer, pbp = partB?.basePointer

            Fused.forChunks(n, size: chunkRows, cost: 4 * c) { chunk, rows in
                let accW = pwp.map { $0 + chunk * c }, accB = pbp.map { $0 + chunk * c }
                for r in rows {
                    let p = xp + offsets[r], gr = gp + r * c
                    let mv = Lanes8(repeating: mp[r]), rv = Lanes8(repeating: rp[r])
                    let mf = mp[r], rs = rp[r]
                    if let accB {
                        var i = 0
                        while i + 8 <= c { store8(load8(accB + i) + load8(gr + i), accB + i); i += 8 }
                        while i < c { accB[i] += gr[i]; i += 1 }
                    }
                    if let accW {
                        var i = 0
                        while i + 8 <= c { store8(load8(accW + i) + load8(gr + i) * ((load8(p + i) - mv) * rv), accW + i); i += 8 }
                        while i < c { accW[i] += gr[i] * ((p[i] - mf) * rs); i += 1 }
                    }
                    guard let dxp else { continue }
                    // dnorm = weight · dy; dx = (dnorm - mean(dnorm) - norm · mean(dnorm · norm)) · rstd
                    // (RMS norm: no mean(dnorm) term).
                    var sumD = Lanes8(repeating: 0), sumDN = Lanes8(repeating: 0)
                    var i = 0
                    while i + 8 <= c {
                        var dn = load8(gr + i)
                        if let wp { dn *= load8(wp + i) }
                        sumD += dn
                        sumDN += dn * ((load8(p + i) - mv) * rv)
                        i += 8
                    }
                    var sD = laneTotal(sumD), sDN = laneTotal(sumDN)
                    while i < c {
                        var dn = gr[i]
                        if let wp { dn *= wp[i] }
                        sD += dn
                        sDN += dn * ((p[i] - mf) * rs)
                        i += 1
                    }
                    let inv = 1 / Float(c)
                    let meanD = centered ? sD * inv : 0, meanDN = sDN * inv
                    let mdv = Lanes8(repeating: meanD), mdnv = Lanes8(repeating: meanDN)
                    let q = dxp + r * c
                    i = 0
                    while i + 8 <= c {
                        var dn = load8(gr + i)
                        if let wp { dn *= load8(wp + i) }
                        let norm = (load8(p + i) - mv) * rv
                        store8((dn - mdv - norm * mdnv) * rv, q + i)
                        i += 8
                    }
                    while i < c {
                        var dn = gr[i]
                        if let wp { dn *= wp[i] }
                        let norm = (p[i] - mf) * rs
                        q[i] = (dn - meanD - norm * meanDN) * rs
                        i += 1
                    }
                }
            }
            let dw = try partW.map { try sumChunks($0, chunks: chunks, width: c) }
            let db = try partB.map { try sumChunks($0, chunks: chunks, width: c) }
            return [dx] + (weight == nil ? [] : [dw]) + (bias == nil ? [] : [db])
        }
    }

    /// Σ x (center nil) or Σ (x - center)² over a row, in Double on 8 lanes folded in a fixed order.
    @inline(__always)
    private static func rowSum(_ p: UnsafePointer<Float>, _ c: Int, center: Double?) -> Double {
        var acc = SIMD8<Double>(repeating: 0)
        var i = 0
        if let center {
            let cv = SIMD8<Double>(repeating: center)
            while i + 8 <= c { let d = SIMD8<Double>(load8(p + i)) - cv; acc += d * d; i += 8 }
        } else {
            while i + 8 <= c { acc += SIMD8<Double>(load8(p + i)); i += 8 }
        }
        let a = acc.lowHalf + acc.highHalf
        let b = a.lowHalf + a.highHalf
        var s = b[0] + b[1]
        while i < c {
            let d = Double(p[i]) - (center ?? 0)
            s += center == nil ? Double(p[i]) : d * d
            i += 1
        }
        return s
    }

    private static func name(_ centered: Bool) -> String { centered ? "layer_norm" : "rms_norm" }

    /// The [C] sum of the rows of a [chunks, C] tensor of partials, added in chunk order.
    private static func sumChunks(_ part: Tensor, chunks: Int, width c: Int) throws -> Tensor {
        let out = try Tensor(uninitializedShape: [c], zeroed: true)
        let o = out.basePointer, p = part.basePointer
        for k in 0..<chunks {
            let row = p + k * c
            for i in 0..<c { o[i] += row[i] }
        }
        return out
    }
}

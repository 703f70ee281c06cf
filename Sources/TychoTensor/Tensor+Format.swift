// Tensor+Format.swift: Torch7-style printing.
//
//  0.4412 -1.2030  0.0917
// -0.3321  0.7765  1.9012
// [tensor float32 of size 2x3]
//
// One number format for the whole tensor (integers when every value is integral), columns right-aligned,
// 1-D tensors as a column, higher ranks as 2-D slices headed `(i,j,.,.) =`. Large tensors are summarised
// with the first and last `edge` entries of each long dimension.

import Foundation

extension Tensor {
    public static let summaryThreshold = 1000
    public static let summaryEdge = 3

    /// Positions to show along a dimension of `size`, with -1 standing for "...".
    static func shownPositions(_ size: Int, summarise: Bool) -> [Int] {
        if !summarise || size <= 2 * summaryEdge { return Array(0..<size) }
        return Array(0..<summaryEdge) + [-1] + Array((size - summaryEdge)..<size)
    }

    /// The number formatter for a set of values.
    static func numberFormat(_ values: [Float]) -> (Float) -> String {
        let finite = values.filter { $0.isFinite }
        let maxAbs = finite.map { Swift.abs($0) }.max() ?? 0
        let minAbs = finite.map { Swift.abs($0) }.filter { $0 > 0 }.min() ?? 0
        func special(_ v: Float) -> String? {
            if v.isNaN { return "nan" }
            if v.isInfinite { return v > 0 ? "inf" : "-inf" }
            return nil
        }
        if finite.allSatisfy({ $0 == $0.rounded() }) && maxAbs < 1e9 {
            return { v in special(v) ?? String(Int(v)) }
        }
        if maxAbs >= 1e5 || (minAbs > 0 && minAbs < 1e-4) {
            return { v in special(v) ?? String(format: "%.4e", Double(v)) }
        }
        return { v in special(v) ?? String(format: "%.4f", Double(v)) }
    }

    /// The Torch-style text of this tensor, footer included.
    public func format() -> String {
        let footer = "[tensor float32 of size \(Tensor.describe(shape))]"
        if rank == 0 { return "\(Tensor.numberFormat([storage.pointer[offset]])(storage.pointer[offset]))\n\(footer)" }
        if count == 0 { return footer }
        let summarise = count > Tensor.summaryThreshold
        let shown = shape.map { Tensor.shownPositions($0, summarise: summarise) }
        // Gather the values that will be printed, to choose one format and width.
        var values: [Float] = []
        func collect(_ dim: Int, _ off: Int) {
            if dim == rank { values.append(storage.pointer[off]); return }
            for p in shown[dim] where p >= 0 { collect(dim + 1, off + p * strides[dim]) }
        }
        collect(0, offset)
        let fmt = Tensor.numberFormat(values)
        let width = values.map { fmt($0).count }.max() ?? 1
        func cell(_ v: Float) -> String {
            let s = fmt(v)
            return String(repeating: " ", count: width - s.count) + s
        }
        var lines: [String] = []
        func matrix(_ off: Int, rowDim: Int) {
            if rowDim == rank - 1 {  // 1-D: a column
                for p in shown[rowDim] { lines.append(p < 0 ? String(repeating: " ", count: width - 3) + "..." : cell(storage.pointer[off + p * strides[rowDim]])) }
                return
            }
            let colDim = rowDim + 1
            for r in shown[rowDim] {
                if r < 0 { lines.append("..."); continue }
                let row = shown[colDim].map { c in
                    c < 0 ? String(repeating: " ", count: width - 3) + "..." : cell(storage.pointer[off + r * strides[rowDim] + c * strides[colDim]])
                }
                lines.append(row.joined(separator: " "))
            }
        }
        if rank <= 2 {
            matrix(offset, rowDim: 0)
        } else {
            var prefix: [Int] = []
            func slices(_ dim: Int, _ off: Int) {
                if dim == rank - 2 {
                    let head = "(" + prefix.map { String($0 + 1) }.joined(separator: ",") + ",.,.) = "
                    if !lines.isEmpty { lines.append("") }
                    lines.append(head)
                    matrix(off, rowDim: dim)
                    return
                }
                for p in shown[dim] {
                    if p < 0 { lines.append(""); lines.append("..."); continue }
                    prefix.append(p)
                    slices(dim + 1, off + p * strides[dim])
                    prefix.removeLast()
                }
            }
            slices(0, offset)
        }
        lines.append(footer)
        return lines.joined(separator: "\n")
    }
}

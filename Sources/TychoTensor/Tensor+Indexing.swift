// Tensor+Indexing.swift: cat, stack, gather, index_select, masked_fill.
// Index tensors hold integral float values; `base` says whether they count from 0 or 1. Every index is
// range-checked and the first bad one is named in the error.

extension Tensor {
    /// Concatenates along `dim`; all tensors have the same rank and equal sizes elsewhere.
    public static func cat(_ tensors: [Tensor], dim: Int) throws -> Tensor {
        guard let first = tensors.first else { throw TensorError("cat needs at least one tensor") }
        try first.checkDim(dim)
        var total = 0
        for (i, t) in tensors.enumerated() {
            guard t.rank == first.rank else {
                throw TensorError("tensor \(i + 1) has \(t.rank) dimensions, tensor 1 has \(first.rank)")
            }
            for d in 0..<t.rank where d != dim && t.shape[d] != first.shape[d] {
                throw TensorError("tensor \(i + 1) has size \(describe(t.shape)), which does not match \(describe(first.shape)) outside dimension \(dim + 1)")
            }
            total += t.shape[dim]
        }
        var shape = first.shape
        shape[dim] = total
        let out = try Tensor(uninitializedShape: shape)
        var at = 0
        var starts: [Int] = []
        try GradMode.with(enabled: false) {
            for t in tensors {
                starts.append(at)
                try out.narrow(dim, start: at, length: t.shape[dim]).copyElements(from: t)
                at += t.shape[dim]
            }
        }
        return out.recorded("cat", tensors) { g in
            try zip(tensors, starts).map { t, start in
                t.requiresGrad ? try g.narrow(dim, start: start, length: t.shape[dim]) : nil
            }
        }
    }

    /// Stacks same-shaped tensors along a new dimension `dim` (0...rank).
    public static func stack(_ tensors: [Tensor], dim: Int) throws -> Tensor {
        guard let first = tensors.first else { throw TensorError("stack needs at least one tensor") }
        for (i, t) in tensors.enumerated() where t.shape != first.shape {
            throw TensorError("tensor \(i + 1) has size \(describe(t.shape)), tensor 1 has \(describe(first.shape))")
        }
        try first.checkDim(dim, first.rank + 1)
        return try cat(tensors.map { try $0.unsqueeze(dim) }, dim: dim)
    }

    /// Converts an index value to a 0-based position, checking it is integral and within `0..<size`.
    @inline(__always)
    static func position(_ v: Float, base: Int, size: Int, what: String) throws -> Int {
        guard v.isFinite, v == v.rounded(), Swift.abs(v) < 1e9 else {
            throw TensorError("\(what) \(v) is not an integer")
        }
        let i = Int(v) - base
        guard i >= 0 && i < size else {
            throw TensorError("\(what) \(Int(v)) out of range for dimension of size \(size)")
        }
        return i
    }

    /// `out[i][j][k] = self[index[i][j][k]][j][k]` for dim 0 (and likewise for other dims).
    public func gather(_ dim: Int, index: Tensor, base: Int = 0) throws -> Tensor {
        try checkDim(dim)
        guard index.rank == rank else {
            throw TensorError("index has \(index.rank) dimensions, input has \(rank)")
        }
        for d in 0..<rank where d != dim && index.shape[d] > shape[d] {
            throw TensorError("index size \(Tensor.describe(index.shape)) exceeds input size \(Tensor.describe(shape)) in dimension \(d + 1)")
        }
        let out = try Tensor(uninitializedShape: index.shape)
        let idx = try index.contiguous()
        let ip = idx.basePointer, op = out.basePointer
        let istr = Tensor.contiguousStrides(index.shape)
        for flat in 0..<out.count {
            var o = offset
            for d in 0..<rank {
                if d == dim {
                    o += try Tensor.position(ip[flat], base: base, size: shape[dim], what: "index") * strides[d]
                } else {
                    o += ((flat / istr[d]) % index.shape[d]) * strides[d]
                }
            }
            op[flat] = storage.pointer[o]
        }
        let inShape = shape
        return out.recorded("gather", [self]) { g in
            let full = try Tensor(uninitializedShape: inShape, zeroed: true)
            try full.scatterAdd(dim, index: index, source: g, base: base)
            return [full]
        }
    }

    /// `self[index[i][j][k]][j][k] += source[i][j][k]` for dim 0 (and likewise for other dims), in place:
    /// the backward of gather. `index` and `source` have the same shape.
    public func scatterAdd(_ dim: Int, index: Tensor, source: Tensor, base: Int = 0) throws {
        try checkDim(dim)
        try checkInPlace("scatter_add")
        guard index.rank == rank, source.shape == index.shape else {
            throw TensorError("scatter_add: index of size \(Tensor.describe(index.shape)) and source of size \(Tensor.describe(source.shape)) must have the same size and \(rank) dimensions")
        }
        for d in 0..<rank where d != dim && index.shape[d] > shape[d] {
            throw TensorError("index size \(Tensor.describe(index.shape)) exceeds size \(Tensor.describe(shape)) in dimension \(d + 1)")
        }
        let idx = try index.contiguous(), src = try source.contiguous()
        let ip = idx.basePointer, sp = src.basePointer
        let istr = Tensor.contiguousStrides(index.shape)
        // Validate every index before writing anything, so a bad index leaves the tensor unchanged.
        var offsets = [Int](repeating: 0, count: index.count)
        for flat in 0..<index.count {
            var o = offset
            for d in 0..<rank {
                if d == dim {
                    o += try Tensor.position(ip[flat], base: base, size: shape[dim], what: "index") * strides[d]
                } else {
                    o += ((flat / istr[d]) % index.shape[d]) * strides[d]
                }
            }
            offsets[flat] = o
        }
        for flat in 0..<index.count { storage.pointer[offsets[flat]] += sp[flat] }
        storage.version &+= 1
    }

    /// The slices at the positions of a 1-D `index` along `dim`.
    public func indexSelect(_ dim: Int, index: Tensor, base: Int = 0) throws -> Tensor {
        try checkDim(dim)
        guard index.rank <= 1 else { throw TensorError("index must be 1-dimensional, got size \(Tensor.describe(index.shape))") }
        let positions = try index.toArray().map { try Tensor.position($0, base: base, size: self.shape[dim], what: "index") }
        var shape = self.shape
        shape[dim] = positions.count
        let out = try Tensor(uninitializedShape: shape)
        try GradMode.with(enabled: false) {
            for (k, p) in positions.enumerated() {
                try out.select(dim, k).copyElements(from: try select(dim, p))
            }
        }
        let inShape = self.shape
        return out.recorded("index_select", [self]) { g in
            // Rows picked more than once get the sum of their gradients.
            let full = try Tensor(uninitializedShape: inShape, zeroed: true)
            for (k, p) in positions.enumerated() {
                let row = try full.select(dim, p)
                try row.copy(from: row.adding(g.select(dim, k)))
            }
            return [full]
        }
    }

    /// A copy with `value` wherever `mask` (broadcast to this shape) is non-zero.
    public func maskedFill(_ mask: Tensor, value: Float) throws -> Tensor {
        guard Tensor.broadcastable(mask.shape, to: shape) else {
            throw TensorError("mask of size \(Tensor.describe(mask.shape)) does not broadcast to size \(Tensor.describe(shape))")
        }
        return try zipMap(mask) { x, m in m != 0 ? value : x }
            .recorded("masked_fill", [self]) { g in [try g.maskedFill(mask, value: 0)] }
    }
}

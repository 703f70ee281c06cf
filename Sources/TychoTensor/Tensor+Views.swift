// Tensor+Views.swift: operations that return a view sharing storage (view, transpose, narrow, ...).
// Dimensions are 0-based here; every function checks its arguments and throws.

extension Tensor {
    func checkDim(_ dim: Int, _ rank: Int? = nil) throws {
        let r = rank ?? self.rank
        guard dim >= 0 && dim < r else {
            throw TensorError("dimension \(dim + 1) out of range for a tensor with \(r) dimension\(r == 1 ? "" : "s")")
        }
    }

    /// Resolves one `-1` entry of `sizes` against `count`.
    static func inferShape(_ sizes: [Int], count: Int) throws -> [Int] {
        var shape = sizes
        let unknown = sizes.indices.filter { sizes[$0] == -1 }
        guard unknown.count <= 1 else { throw TensorError("only one size can be -1") }
        for s in sizes where s < -1 { throw TensorError("invalid size \(s)") }
        if let u = unknown.first {
            // Checked: the other sizes come from the user and their product may overflow.
            let known = try Tensor.checkedCount(sizes.enumerated().filter { $0.offset != u }.map(\.element))
            guard known > 0, count % known == 0 else {
                throw TensorError("shape \(Tensor.describe(sizes.map { $0 == -1 ? -1 : $0 })) is invalid for \(count) elements")
            }
            shape[u] = count / known
        }
        let n = try Tensor.checkedCount(shape)
        guard n == count else {
            throw TensorError("shape \(Tensor.describe(shape)) is invalid for \(count) elements")
        }
        return shape
    }

    /// A view with a new shape over the same elements; needs a contiguous tensor.
    public func view(_ sizes: [Int]) throws -> Tensor {
        let shape = try Tensor.inferShape(sizes, count: count)
        guard isContiguous else {
            throw TensorError("view needs a contiguous tensor; use reshape or contiguous()")
        }
        let inShape = self.shape
        return Tensor(storage: storage, shape: shape, strides: Tensor.contiguousStrides(shape), offset: offset)
            .recorded("view", [self]) { g in [try g.reshape(inShape)] }
    }

    /// Like `view`, copying first when the tensor is not contiguous.
    public func reshape(_ sizes: [Int]) throws -> Tensor {
        let shape = try Tensor.inferShape(sizes, count: count)
        if isContiguous { return try view(shape) }
        let inShape = self.shape
        return try GradMode.with(enabled: false) { try clone().view(shape) }
            .recorded("reshape", [self]) { g in [try g.reshape(inShape)] }
    }

    public func transpose(_ d0: Int, _ d1: Int) throws -> Tensor {
        try checkDim(d0); try checkDim(d1)
        var sh = shape, st = strides
        sh.swapAt(d0, d1); st.swapAt(d0, d1)
        return Tensor(storage: storage, shape: sh, strides: st, offset: offset)
            .recorded("transpose", [self]) { g in [try g.transpose(d0, d1)] }
    }

    public func permute(_ dims: [Int]) throws -> Tensor {
        guard dims.count == rank, Set(dims) == Set(0..<rank) else {
            throw TensorError("permutation \(dims.map { $0 + 1 }) is not a permutation of 1..\(rank)")
        }
        var inverse = dims
        for (i, d) in dims.enumerated() { inverse[d] = i }
        return Tensor(storage: storage, shape: dims.map { shape[$0] }, strides: dims.map { strides[$0] }, offset: offset)
            .recorded("permute", [self]) { g in [try g.permute(inverse)] }
    }

    /// Elements `start ..< start+length` along `dim`.
    public func narrow(_ dim: Int, start: Int, length: Int) throws -> Tensor {
        try checkDim(dim)
        guard start >= 0, length >= 0, start + length <= shape[dim] else {
            throw TensorError("range \(start + 1)..\(start + length) out of bounds for dimension \(dim + 1) of size \(shape[dim])")
        }
        var sh = shape
        sh[dim] = length
        let inShape = shape
        return Tensor(storage: storage, shape: sh, strides: strides, offset: offset + start * strides[dim])
            .recorded("narrow", [self]) { g in
                let full = try Tensor(uninitializedShape: inShape, zeroed: true)
                try full.narrow(dim, start: start, length: length).copy(from: g)
                return [full]
            }
    }

    /// The slice at `index` along `dim`, with that dimension removed.
    public func select(_ dim: Int, _ index: Int) throws -> Tensor {
        try checkDim(dim)
        guard index >= 0 && index < shape[dim] else {
            throw TensorError("index \(index + 1) out of range for dimension \(dim + 1) of size \(shape[dim])")
        }
        var sh = shape, st = strides
        sh.remove(at: dim); st.remove(at: dim)
        let inShape = shape
        return Tensor(storage: storage, shape: sh, strides: st, offset: offset + index * strides[dim])
            .recorded("select", [self]) { g in
                let full = try Tensor(uninitializedShape: inShape, zeroed: true)
                try full.select(dim, index).copy(from: g)
                return [full]
            }
    }

    /// Removes every size-1 dimension, or only `dim` if given (a no-op when that size is not 1).
    public func squeeze(_ dim: Int? = nil) throws -> Tensor {
        var sh: [Int] = [], st: [Int] = []
        if let dim { try checkDim(dim) }
        for d in 0..<rank where !(shape[d] == 1 && (dim == nil || dim == d)) {
            sh.append(shape[d]); st.append(strides[d])
        }
        let inShape = shape
        return Tensor(storage: storage, shape: sh, strides: st, offset: offset)
            .recorded("squeeze", [self]) { g in [try g.reshape(inShape)] }
    }

    /// Inserts a size-1 dimension at `dim` (0...rank).
    public func unsqueeze(_ dim: Int) throws -> Tensor {
        try checkDim(dim, rank + 1)
        var sh = shape, st = strides
        let s = dim < rank ? strides[dim] * shape[dim] : 1
        sh.insert(1, at: dim); st.insert(s, at: dim)
        let inShape = shape
        return Tensor(storage: storage, shape: sh, strides: st, offset: offset)
            .recorded("unsqueeze", [self]) { g in [try g.reshape(inShape)] }
    }

    /// Broadcasts size-1 dimensions (and new leading ones) to `sizes`; -1 keeps a size.
    public func expand(_ sizes: [Int]) throws -> Tensor {
        guard sizes.count >= rank else {
            throw TensorError("cannot expand size \(Tensor.describe(shape)) to fewer dimensions (\(sizes.count))")
        }
        let lead = sizes.count - rank
        var sh = [Int](repeating: 0, count: sizes.count), st = sh
        for d in 0..<sizes.count {
            let want = sizes[d]
            if d < lead {
                guard want >= 0 else { throw TensorError("size -1 is not allowed for a new leading dimension") }
                sh[d] = want; st[d] = 0
            } else {
                let have = shape[d - lead]
                if want == -1 || want == have {
                    sh[d] = have; st[d] = strides[d - lead]
                } else if have == 1 && want >= 0 {
                    sh[d] = want; st[d] = 0
                } else {
                    throw TensorError("cannot expand size \(Tensor.describe(shape)) to \(Tensor.describe(sizes))")
                }
            }
        }
        _ = try Tensor.checkedCount(sh)
        // The engine sums the gradient back over the broadcast dimensions.
        return Tensor(storage: storage, shape: sh, strides: st, offset: offset).recorded("expand", [self]) { g in [g] }
    }

    // MARK: broadcasting

    static func broadcastShape(_ a: [Int], _ b: [Int]) throws -> [Int] {
        let r = max(a.count, b.count)
        var out = [Int](repeating: 1, count: r)
        for i in 0..<r {
            let x = i < r - a.count ? 1 : a[i - (r - a.count)]
            let y = i < r - b.count ? 1 : b[i - (r - b.count)]
            guard x == y || x == 1 || y == 1 else {
                throw TensorError("sizes \(Tensor.describe(a)) and \(Tensor.describe(b)) cannot be broadcast together")
            }
            out[i] = x == 1 ? y : x
        }
        return out
    }

    static func broadcastable(_ from: [Int], to: [Int]) -> Bool {
        (try? broadcastShape(from, to)) == to
    }

    /// Strides of this tensor seen with `shape` (which it must broadcast to): 0 on broadcast dimensions.
    func broadcastStrides(to shape: [Int]) -> [Int] {
        let lead = shape.count - rank
        return (0..<shape.count).map { d in
            d < lead ? 0 : (self.shape[d - lead] == 1 && shape[d] != 1 ? 0 : strides[d - lead])
        }
    }
}

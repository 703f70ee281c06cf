// Tensor+ActivationGrad.swift: the backward formulas of the activations and of softmax / log-softmax, as
// fused kernels for the autograd engine and hand-written backward passes.
//
// Each function takes the tensors the forward saved (its input x, or its output y) and the gradient of the
// result, of the same shape, and returns a new contiguous tensor: the gradient of the input. Nothing is
// accumulated or recorded here (the caller adds the result where it belongs, and these functions are not
// themselves differentiable). Inputs of any layout are accepted; non-contiguous ones are copied first.
// The arithmetic runs on CTensorKernels (VectorMath.swift), in parallel over fixed chunks or whole rows, so
// the result does not depend on the thread count.

extension Tensor {
    // MARK: element-wise activations

    /// `grad * d/dx gelu(x)`: exact, `Phi(x) + x phi(x)`, or for the tanh approximation (GPT-2's `gelu_new`).
    /// - Parameters:
    ///   - x: the forward's input.
    ///   - grad: the gradient of `gelu(x)`, same shape as `x`.
    ///   - approximateTanh: the form the forward used.
    public static func geluBackward(x: Tensor, grad: Tensor, approximateTanh: Bool = false) throws -> Tensor {
        try elementwiseGrad("geluBackward", "x", x, grad,
                            approximateTanh ? vectorKernels.gelu_tanh_backward : vectorKernels.gelu_backward)
    }

    /// `grad * d/dx silu(x)` = `grad * s (1 + x (1 - s))` with `s = sigmoid(x)`.
    /// - Parameters:
    ///   - x: the forward's input.
    ///   - grad: the gradient of `silu(x)`, same shape as `x`.
    public static func siluBackward(x: Tensor, grad: Tensor) throws -> Tensor {
        try elementwiseGrad("siluBackward", "x", x, grad, vectorKernels.silu_backward)
    }

    /// `grad * y (1 - y)`.
    /// - Parameters:
    ///   - y: the forward's output, `sigmoid(x)`.
    ///   - grad: the gradient of `y`, same shape.
    public static func sigmoidBackward(y: Tensor, grad: Tensor) throws -> Tensor {
        try elementwiseGrad("sigmoidBackward", "y", y, grad, vectorKernels.sigmoid_backward)
    }

    /// `grad * (1 - y^2)`.
    /// - Parameters:
    ///   - y: the forward's output, `tanh(x)`.
    ///   - grad: the gradient of `y`, same shape.
    public static func tanhBackward(y: Tensor, grad: Tensor) throws -> Tensor {
        try elementwiseGrad("tanhBackward", "y", y, grad, vectorKernels.tanh_backward)
    }

    // MARK: softmax and log-softmax

    /// `y * (grad - sum(grad * y, dim, keepdim))`, the gradient of `softmax(x, dim)` with respect to x.
    /// - Parameters:
    ///   - y: the forward's output, `softmax(x, dim)`.
    ///   - grad: the gradient of `y`, same shape.
    ///   - dim: the dimension the softmax ran along (0-based).
    public static func softmaxBackward(y: Tensor, grad: Tensor, dim: Int) throws -> Tensor {
        try rowGrad("softmaxBackward", y, grad, dim,
                    row: vectorKernels.softmax_backward_row, columns: vectorKernels.softmax_backward_cols)
    }

    /// `grad - exp(y) * sum(grad, dim, keepdim)`, the gradient of `log_softmax(x, dim)` with respect to x.
    /// - Parameters:
    ///   - y: the forward's output, `log_softmax(x, dim)`.
    ///   - grad: the gradient of `y`, same shape.
    ///   - dim: the dimension the log-softmax ran along (0-based).
    public static func logSoftmaxBackward(y: Tensor, grad: Tensor, dim: Int) throws -> Tensor {
        try rowGrad("logSoftmaxBackward", y, grad, dim,
                    row: vectorKernels.log_softmax_backward_row, columns: vectorKernels.log_softmax_backward_cols)
    }

    // MARK: drivers

    static func checkSameShape(_ name: String, _ label: String, _ v: Tensor, _ grad: Tensor) throws {
        guard v.shape == grad.shape else {
            throw TensorError("\(name): \(label) has size \(describe(v.shape)) but grad has size \(describe(grad.shape))")
        }
    }

    /// `kernel(v, grad, out, n)` over fixed chunks of the flattened tensors.
    static func elementwiseGrad(_ name: String, _ label: String, _ v: Tensor, _ grad: Tensor,
                                _ kernel: GradKernel) throws -> Tensor {
        try checkSameShape(name, label, v, grad)
        let a = try v.contiguous(), g = try grad.contiguous()
        let out = try Tensor(uninitializedShape: v.shape)
        let pa = UnsafePointer(a.basePointer), pg = UnsafePointer(g.basePointer), po = out.basePointer
        // cost 4: the transcendental kernels take several times a memory-bound loop's time per element.
        Parallel.forRanges(out.count, cost: 4) { r in
            kernel(pa + r.lowerBound, pg + r.lowerBound, po + r.lowerBound, r.count)
        }
        return out
    }

    /// Softmax-style backward along `dim`: whole rows when `dim` is the last (contiguous) dimension, else blocks
    /// of neighbouring columns, each column a row of its own.
    static func rowGrad(_ name: String, _ y: Tensor, _ grad: Tensor, _ dim: Int,
                        row: @convention(c) (UnsafePointer<Float>?, UnsafePointer<Float>?,
                                             UnsafeMutablePointer<Float>?, Int) -> Void,
                        columns: @convention(c) (UnsafePointer<Float>?, UnsafePointer<Float>?,
                                                 UnsafeMutablePointer<Float>?, Int, Int, Int) -> Void) throws -> Tensor {
        try checkSameShape(name, "y", y, grad)
        try y.checkDim(dim)
        let a = try y.contiguous(), g = try grad.contiguous()
        let (outer, n, inner) = a.split(around: dim)
        let out = try Tensor(uninitializedShape: y.shape)
        let pa = UnsafePointer(a.basePointer), pg = UnsafePointer(g.basePointer), po = out.basePointer
        if inner == 1 {
            Parallel.forRanges(outer, cost: n * 3) { r in
                for o in r { row(pa + o * n, pg + o * n, po + o * n, n) }
            }
        } else {
            let block = 64
            let blocks = (inner + block - 1) / block
            Parallel.forRanges(outer * blocks, cost: n * 3 * block) { r in
                for j in r {
                    let o = j / blocks, i = (j % blocks) * block
                    let base = o * n * inner + i
                    columns(pa + base, pg + base, po + base, n, inner, Swift.min(block, inner - i))
                }
            }
        }
        return out
    }
}

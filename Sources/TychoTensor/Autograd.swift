// Autograd.swift: reverse-mode automatic differentiation on `Tensor`.
//
// An operation whose inputs require grad records a `GradNode` on its result: the inputs that need a gradient and
// a closure that maps the result's gradient to theirs. `backward()` walks the recorded graph once in reverse
// topological order, sums gradients that meet at a tensor, reduces broadcast gradients back to each input's shape,
// and accumulates into `grad` of leaf tensors (those created by the user with requires_grad). Each op keeps its
// backward beside its forward (Tensor+Elementwise.swift, Tensor+Reduce.swift, ...).
//
// Rules, as in PyTorch: the graph is freed after one backward unless `retainGraph`; a leaf that requires grad
// cannot be modified in place while grad mode is on; a tensor that a backward closure reads and that was modified
// in place after it was recorded makes `backward` throw instead of returning wrong gradients (storage versions).

import Foundation

/// Whether operations record the graph, per thread (Lua states run on one thread; tests run on many).
public enum GradMode {
    private static let key: pthread_key_t = {
        var k = pthread_key_t()
        pthread_key_create(&k, nil)
        return k
    }()

    public static var isEnabled: Bool { pthread_getspecific(key) == nil }

    /// Runs `body` with recording turned off (or on), restoring the previous mode afterwards.
    public static func with<R>(enabled: Bool, _ body: () throws -> R) rethrows -> R {
        let previous = pthread_getspecific(key)
        pthread_setspecific(key, enabled ? nil : UnsafeRawPointer(bitPattern: 1))
        defer { pthread_setspecific(key, previous) }
        return try body()
    }
}

/// One recorded operation: how to turn the gradient of its result into gradients of its inputs.
final class GradNode {
    let name: String
    /// The inputs, nil where an input does not require grad.
    private(set) var inputs: [Tensor?]
    private var backward: ((Tensor) throws -> [Tensor?])?
    /// Storages the closure reads, with their versions when recorded.
    private let saved: [(TensorStorage, Int)]

    init(name: String, inputs: [Tensor?], saved: [Tensor], backward: @escaping (Tensor) throws -> [Tensor?]) {
        self.name = name
        self.inputs = inputs
        self.backward = backward
        self.saved = saved.map { ($0.storage, $0.storage.version) }
    }

    var isFreed: Bool { backward == nil }

    func apply(_ grad: Tensor) throws -> [Tensor?] {
        guard let backward else {
            throw TensorError("backward: the graph through \(name) was already used by an earlier backward; pass retain_graph to backward twice")
        }
        for (s, v) in saved where s.version != v {
            throw TensorError("backward: a tensor that \(name) needs for its gradient was modified in place after it was used")
        }
        return try backward(grad)
    }

    func free() {
        backward = nil
        inputs = inputs.map { _ in nil }
    }
}

extension Tensor {
    /// True when the current grad mode records operations on any of `inputs`.
    @inline(__always)
    public static func recording(_ inputs: Tensor...) -> Bool {
        GradMode.isEnabled && inputs.contains { $0.requiresGrad }
    }

    /// Records `backward` on this freshly computed result of `name` applied to `inputs`, when grad mode is on
    /// and an input requires grad. `backward` receives this result's gradient and returns one gradient per input
    /// (nil for inputs that need none); a gradient may have any shape that broadcasts to its input's shape.
    /// `saving` lists tensors the closure reads besides the inputs (for example the result itself).
    @discardableResult
    public func recorded(_ name: String, _ inputs: [Tensor], saving: [Tensor] = [],
                  _ backward: @escaping (Tensor) throws -> [Tensor?]) -> Tensor {
        guard GradMode.isEnabled, inputs.contains(where: { $0.requiresGrad }) else { return self }
        // An operation that returned one of its inputs unchanged adds nothing to the graph.
        guard !inputs.contains(where: { $0 === self }) else { return self }
        requiresGrad = true
        gradNode = GradNode(name: name, inputs: inputs.map { $0.requiresGrad ? $0 : nil },
                            saved: inputs + saving, backward: backward)
        return self
    }

    /// A leaf is a tensor no recorded operation produced; only leaves accumulate `grad`.
    public var isLeaf: Bool { gradNode == nil }

    /// Marks a leaf as needing gradients (or not).
    public func setRequiresGrad(_ flag: Bool) throws {
        guard isLeaf else {
            throw TensorError("requires_grad can only be changed on a leaf tensor; use detach() to start from a result")
        }
        requiresGrad = flag
    }

    /// A tensor sharing this one's storage, outside the graph.
    public func detach() -> Tensor {
        Tensor(storage: storage, shape: shape, strides: strides, offset: offset)
    }

    /// Throws when modifying this tensor in place would corrupt the graph; call before any in-place write.
    public func checkInPlace(_ what: String) throws {
        if requiresGrad && GradMode.isEnabled {
            throw TensorError("\(what): cannot modify a tensor that requires grad in place; use tensor.no_grad or detach()")
        }
    }

    /// The gradient reduced to `target` (summing broadcast dimensions).
    public func summed(to target: [Int]) throws -> Tensor {
        if shape == target { return self }
        var g = self
        while g.rank > target.count { g = try g.sum(dim: 0) }
        for d in 0..<target.count where target[d] == 1 && g.shape[d] != 1 {
            g = try g.sum(dim: d, keepdim: true)
        }
        guard g.shape == target else {
            throw TensorError("backward: gradient of size \(Tensor.describe(shape)) does not reduce to size \(Tensor.describe(target))")
        }
        return g
    }

    /// Computes the gradient of this tensor with respect to every leaf that requires grad and adds it to their
    /// `grad`. `gradient` (this tensor's shape) is required unless this tensor has one element.
    public func backward(_ gradient: Tensor? = nil, retainGraph: Bool = false) throws {
        guard requiresGrad else {
            throw TensorError("backward: this tensor does not require grad (no input of its computation requires grad)")
        }
        let seed: Tensor
        if let gradient {
            guard gradient.shape == shape else {
                throw TensorError("backward: gradient of size \(Tensor.describe(gradient.shape)) given for a tensor of size \(Tensor.describe(shape))")
            }
            seed = try gradient.contiguous()
        } else {
            guard count == 1 else {
                throw TensorError("backward: a gradient must be given for a tensor of size \(Tensor.describe(shape)) (only one-element tensors default to 1)")
            }
            seed = try Tensor.ones(shape)
        }
        try GradMode.with(enabled: false) {
            // Post-order walk (inputs before results), iterative so deep graphs cannot overflow the stack.
            var order: [Tensor] = []
            var seen = Set<ObjectIdentifier>()
            var stack: [(Tensor, Int)] = [(self, 0)]
            seen.insert(ObjectIdentifier(self))
            while let (t, next) = stack.popLast() {
                let inputs = t.gradNode?.inputs ?? []
                if next < inputs.count {
                    stack.append((t, next + 1))
                    if let child = inputs[next], seen.insert(ObjectIdentifier(child)).inserted {
                        stack.append((child, 0))
                    }
                } else {
                    order.append(t)
                }
            }
            var grads: [ObjectIdentifier: Tensor] = [ObjectIdentifier(self): seed]
            for t in order.reversed() {
                guard let g = grads.removeValue(forKey: ObjectIdentifier(t)) else { continue }
                guard let node = t.gradNode else {
                    try t.accumulateGrad(g)
                    continue
                }
                let inputs = node.inputs
                let inputGrads = try node.apply(g)
                for (i, input) in inputs.enumerated() {
                    guard let input, i < inputGrads.count, let gi = inputGrads[i] else { continue }
                    let r = try gi.summed(to: input.shape)
                    let key = ObjectIdentifier(input)
                    grads[key] = try grads[key].map { try $0.adding(r) } ?? r
                }
                if !retainGraph { node.free() }
            }
        }
    }

    /// Adds `g` into this leaf's `grad`, which Tycho owns (a fresh contiguous tensor).
    private func accumulateGrad(_ g: Tensor) throws {
        guard requiresGrad else { return }
        if let existing = grad, existing.shape == shape, existing.isContiguous, existing.offset == 0,
           existing.storage.count == existing.count {
            let src = try g.contiguous()
            let p = existing.basePointer, q = src.basePointer
            for i in 0..<count { p[i] += q[i] }
            existing.storage.version &+= 1
        } else {
            grad = try g.clone()
        }
    }
}

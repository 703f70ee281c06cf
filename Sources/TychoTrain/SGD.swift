// SGD.swift: stochastic gradient descent with momentum, dampening, weight decay and Nesterov momentum, exactly as
// torch.optim.SGD computes it (its single-tensor path, the one PyTorch runs on CPU), element by element in float32:
//
//   g = grad + weight_decay * p                      when weight_decay != 0
//   b = g                                            the first step with momentum (momentum_buffer = a copy of g)
//   b = b * momentum + (1 - dampening) * g           later steps (PyTorch's buf.mul_(momentum).add_(g, alpha))
//   g = g + momentum * b  (nesterov)   or   g = b    when momentum != 0
//   p = p - lr * g                                   (param.add_(g, alpha=-lr))
//
// State per parameter: momentum_buffer (the parameter's size), only when momentum != 0.

import Foundation
import TychoTensor

public final class SGD: Optimizer {
    /// The hyperparameters of one parameter group, with PyTorch's defaults.
    public struct Options: Equatable {
        public var lr: Float
        public var momentum: Float
        public var dampening: Float
        public var weightDecay: Float
        public var nesterov: Bool

        public init(lr: Float = 1e-3, momentum: Float = 0, dampening: Float = 0, weightDecay: Float = 0,
                    nesterov: Bool = false) {
            self.lr = lr
            self.momentum = momentum
            self.dampening = dampening
            self.weightDecay = weightDecay
            self.nesterov = nesterov
        }

        /// Throws `InvalidOption` for values PyTorch refuses (and for non-finite ones and dampening outside [0, 1]).
        public func validate() throws {
            try InvalidOption.check("lr", lr, atLeast: 0)
            try InvalidOption.check("momentum", momentum, atLeast: 0)
            try InvalidOption.check("dampening", dampening, atLeast: 0, atMost: 1)
            try InvalidOption.check("weight_decay", weightDecay, atLeast: 0)
            if nesterov && (momentum <= 0 || dampening != 0) {
                throw InvalidOption("nesterov", "false unless momentum > 0 and dampening = 0", got: "true")
            }
        }
    }

    /// The options of each group.
    public private(set) var options: [Options]
    /// momentum_buffer of each parameter (nil until its first step with momentum).
    var momentumBuffers: [Tensor?]
    /// Buffers allocated by this step, which take a copy of the grad instead of the momentum update.
    private var fresh: Set<Int> = []

    /// One group of parameters.
    public convenience init(_ params: [Tensor], _ options: Options = Options()) throws {
        try self.init(groups: [(params, options)])
    }

    /// Several groups, each with its own options (PyTorch's param groups).
    public init(groups: [(params: [Tensor], options: Options)]) throws {
        for g in groups { try g.options.validate() }
        options = groups.map(\.options)
        momentumBuffers = []
        try super.init(name: "SGD", groups: groups.map(\.params))
        momentumBuffers = Array(repeating: nil, count: params.count)
    }

    override func prepareState(_ i: Int) throws -> Int {
        guard options[group(of: i)].momentum != 0, momentumBuffers[i] == nil else { return 0 }
        let b = try Tensor(uninitializedShape: params[i].shape)
        momentumBuffers[i] = b
        fresh.insert(i)
        return b.storage.byteCount
    }

    override func update(_ i: Int, grad: Tensor) {
        let o = options[group(of: i)]
        let p = params[i].basePointer, g = UnsafePointer(grad.basePointer), n = params[i].count
        let k = Kernel(wd: o.weightDecay, momentum: o.momentum, alpha: Float(1 - Double(o.dampening)),
                       nesterov: o.nesterov, negLR: -o.lr, first: fresh.remove(i) != nil)
        guard let buffer = o.momentum != 0 ? momentumBuffers[i]?.basePointer : nil else {
            forChunks(n, cost: 3) { r in
                var j = r.lowerBound
                while j + 8 <= r.upperBound {
                    store8(k.plain(load8(p + j), load8(g + j)), p + j)
                    j += 8
                }
                if j < r.upperBound {
                    let c = r.upperBound - j
                    storeLanes(k.plain(loadLanes(p + j, c), loadLanes(g + j, c)), p + j, c)
                }
            }
            return
        }
        forChunks(n, cost: 5) { r in
            var j = r.lowerBound
            while j + 8 <= r.upperBound {
                let (pv, bv) = k.withMomentum(load8(p + j), load8(g + j), load8(buffer + j))
                store8(pv, p + j)
                store8(bv, buffer + j)
                j += 8
            }
            if j < r.upperBound {
                let c = r.upperBound - j
                let (pv, bv) = k.withMomentum(loadLanes(p + j, c), loadLanes(g + j, c), loadLanes(buffer + j, c))
                storeLanes(pv, p + j, c)
                storeLanes(bv, buffer + j, c)
            }
        }
    }

    /// The SGD update of 8 elements, with the scalars of one parameter's step.
    struct Kernel {
        let wd: Float, momentum: Float, alpha: Float, nesterov: Bool, negLR: Float
        /// The buffer's first step: it becomes a copy of the grad.
        let first: Bool

        /// (p, g) -> p, without momentum.
        @inline(__always) func plain(_ p: Lanes, _ g: Lanes) -> Lanes {
            p + negLR * (wd != 0 ? g + wd * p : g)
        }

        /// (p, g, buffer) -> updated (p, buffer).
        @inline(__always) func withMomentum(_ p: Lanes, _ g: Lanes, _ b: Lanes) -> (Lanes, Lanes) {
            let gd = wd != 0 ? g + wd * p : g
            let bNew = first ? gd : b * momentum + alpha * gd
            return (p + negLR * (nesterov ? gd + momentum * bNew : bNew), bNew)
        }
    }

    override func hyperparameters(_ g: Int) -> [(name: String, value: Float)] {
        let o = options[g]
        return [("lr", o.lr), ("momentum", o.momentum), ("dampening", o.dampening),
                ("weight_decay", o.weightDecay), ("nesterov", o.nesterov ? 1 : 0)]
    }

    override func prepareHyperparameters(_ g: Int, _ values: [String: Float]) throws -> () -> Void {
        let nesterov = values["nesterov"] ?? 0
        guard nesterov == 0 || nesterov == 1 else { throw InvalidOption("nesterov", "0 or 1", got: formatValue(nesterov)) }
        let o = Options(lr: values["lr"] ?? 0, momentum: values["momentum"] ?? 0, dampening: values["dampening"] ?? 0,
                        weightDecay: values["weight_decay"] ?? 0, nesterov: nesterov == 1)
        try o.validate()
        return { self.options[g] = o }
    }

    override func describeGroup(_ g: Int) -> String {
        let o = options[g]
        return "lr=\(formatValue(o.lr)), momentum=\(formatValue(o.momentum)), dampening=\(formatValue(o.dampening)), weight_decay=\(formatValue(o.weightDecay)), nesterov=\(o.nesterov)"
    }

    override func bufferShapes(_ i: Int) -> [(name: String, shape: [Int])] {
        [("momentum_buffer", params[i].shape)]
    }

    override func buffers(_ i: Int) -> [String: Tensor]? {
        guard !fresh.contains(i) else { return nil }  // allocated by a step that failed before filling it
        return momentumBuffers[i].map { ["momentum_buffer": $0] }
    }

    override func setBuffers(_ i: Int, _ buffers: [String: Tensor]?) {
        momentumBuffers[i] = buffers?["momentum_buffer"]
        fresh.remove(i)
    }
}

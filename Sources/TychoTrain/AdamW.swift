// AdamW.swift: Adam with decoupled weight decay, exactly as torch.optim.AdamW computes it (Adam's single-tensor
// path with decoupled_weight_decay=True, the one PyTorch runs on CPU), element by element in float32:
//
//   t = t + 1                                          per parameter: parameters skipped (nil grad) do not count
//   p = p * (1 - lr * weight_decay)                    when weight_decay != 0, before the Adam update
//   m = lerp(m, g, 1 - beta1)                          m + w (g - m) for w < 0.5, else g - (g - m)(1 - w)
//   v = v * beta2 + (1 - beta2) * g * g
//   denom = sqrt(v) / sqrt(1 - beta2^t) + eps
//   p = p + (-lr / (1 - beta1^t)) * m / denom
//
// Scalars (1 - lr*wd, the bias corrections, the step size) are computed in double from the float32
// hyperparameters and rounded to float32 once, as PyTorch does with its Python-float hyperparameters.
// State per parameter: step (0-dim), exp_avg and exp_avg_sq (the parameter's size).

import Foundation
import TychoTensor

public final class AdamW: Optimizer {
    /// The hyperparameters of one parameter group, with PyTorch's defaults.
    public struct Options: Equatable {
        public var lr: Float
        public var beta1: Float
        public var beta2: Float
        public var eps: Float
        public var weightDecay: Float

        public init(lr: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999, eps: Float = 1e-8,
                    weightDecay: Float = 0.01) {
            self.lr = lr
            self.beta1 = beta1
            self.beta2 = beta2
            self.eps = eps
            self.weightDecay = weightDecay
        }

        /// Throws `InvalidOption` for values PyTorch refuses, for non-finite ones and for eps <= 0.
        public func validate() throws {
            try InvalidOption.check("lr", lr, atLeast: 0)
            try InvalidOption.check("beta1", beta1, atLeast: 0, atMost: 1, openHigh: true)
            try InvalidOption.check("beta2", beta2, atLeast: 0, atMost: 1, openHigh: true)
            try InvalidOption.check("eps", eps, atLeast: 0, openLow: true)
            try InvalidOption.check("weight_decay", weightDecay, atLeast: 0)
        }
    }

    /// The options of each group.
    public private(set) var options: [Options]
    /// Per parameter: the number of steps it took part in, and its moments (nil before its first step).
    var stepCounts: [Int]
    var expAvg: [Tensor?]
    var expAvgSq: [Tensor?]

    /// One group of parameters.
    public convenience init(_ params: [Tensor], _ options: Options = Options()) throws {
        try self.init(groups: [(params, options)])
    }

    /// Several groups, each with its own options (PyTorch's param groups).
    public init(groups: [(params: [Tensor], options: Options)]) throws {
        for g in groups { try g.options.validate() }
        options = groups.map(\.options)
        stepCounts = []
        expAvg = []
        expAvgSq = []
        try super.init(name: "AdamW", groups: groups.map(\.params))
        stepCounts = Array(repeating: 0, count: params.count)
        expAvg = Array(repeating: nil, count: params.count)
        expAvgSq = Array(repeating: nil, count: params.count)
    }

    override func prepareState(_ i: Int) throws -> Int {
        guard expAvg[i] == nil || expAvgSq[i] == nil else { return 0 }
        let shape = params[i].shape
        let m = try Tensor(uninitializedShape: shape, zeroed: true)
        let v = try Tensor(uninitializedShape: shape, zeroed: true)
        expAvg[i] = m
        expAvgSq[i] = v
        stepCounts[i] = 0
        return m.storage.byteCount + v.storage.byteCount
    }

    override func update(_ i: Int, grad: Tensor) {
        guard let expAvg = expAvg[i], let expAvgSq = expAvgSq[i] else { return }  // prepared by step()
        let o = options[group(of: i)]
        stepCounts[i] += 1
        let p = params[i].basePointer, g = UnsafePointer(grad.basePointer), n = params[i].count
        let m = expAvg.basePointer, v = expAvgSq.basePointer

        let k = Kernel(options: o, step: Double(stepCounts[i]))
        forChunks(n, cost: 7) { r in
            // Whole vectors, then the ragged end through the same lane function (zero-padded).
            var j = r.lowerBound
            while j + 8 <= r.upperBound {
                let (pv, mv, vv) = k(load8(p + j), load8(g + j), load8(m + j), load8(v + j))
                store8(pv, p + j)
                store8(mv, m + j)
                store8(vv, v + j)
                j += 8
            }
            if j < r.upperBound {
                let c = r.upperBound - j
                let (pv, mv, vv) = k(loadLanes(p + j, c), loadLanes(g + j, c), loadLanes(m + j, c), loadLanes(v + j, c))
                storeLanes(pv, p + j, c)
                storeLanes(mv, m + j, c)
                storeLanes(vv, v + j, c)
            }
        }
    }

    /// The AdamW update of 8 elements, with the scalars of one parameter's step.
    struct Kernel {
        let decays: Bool, decay: Float       // p *= 1 - lr * wd
        let w: Float, small: Bool, oneMinusW: Float  // lerp weight 1 - beta1 and PyTorch's branch on it
        let beta2: Float, c2: Float          // v = v * beta2 + (1 - beta2) * g * g
        let bc2Sqrt: Float, eps: Float       // denom = sqrt(v) / sqrt(1 - beta2^t) + eps
        let negStepSize: Float               // -lr / (1 - beta1^t)

        init(options o: Options, step t: Double) {
            decays = o.weightDecay != 0
            decay = Float(1 - Double(o.lr) * Double(o.weightDecay))
            w = Float(1 - Double(o.beta1))
            small = Swift.abs(w) < 0.5
            oneMinusW = 1 - w
            beta2 = o.beta2
            c2 = Float(1 - Double(o.beta2))
            let biasCorrection1 = 1 - pow(Double(o.beta1), t)
            let biasCorrection2 = 1 - pow(Double(o.beta2), t)
            negStepSize = Float(-(Double(o.lr) / biasCorrection1))
            bc2Sqrt = Float(pow(biasCorrection2, 0.5))
            eps = o.eps
        }

        /// (p, g, m, v) -> updated (p, m, v).
        @inline(__always)
        func callAsFunction(_ p: Lanes, _ g: Lanes, _ m: Lanes, _ v: Lanes) -> (Lanes, Lanes, Lanes) {
            let pd = decays ? p * decay : p
            let d = g - m
            let mNew = small ? m + w * d : g - d * oneMinusW
            let vNew = v * beta2 + c2 * g * g
            let denom = vNew.squareRoot() / bc2Sqrt + eps
            return (pd + negStepSize * mNew / denom, mNew, vNew)
        }
    }

    override func hyperparameters(_ g: Int) -> [(name: String, value: Float)] {
        let o = options[g]
        return [("lr", o.lr), ("beta1", o.beta1), ("beta2", o.beta2), ("eps", o.eps), ("weight_decay", o.weightDecay)]
    }

    override func prepareHyperparameters(_ g: Int, _ values: [String: Float]) throws -> () -> Void {
        let o = Options(lr: values["lr"] ?? 0, beta1: values["beta1"] ?? 0, beta2: values["beta2"] ?? 0,
                        eps: values["eps"] ?? 0, weightDecay: values["weight_decay"] ?? 0)
        try o.validate()
        return { self.options[g] = o }
    }

    override func describeGroup(_ g: Int) -> String {
        let o = options[g]
        return "lr=\(formatValue(o.lr)), betas=(\(formatValue(o.beta1)), \(formatValue(o.beta2))), eps=\(formatValue(o.eps)), weight_decay=\(formatValue(o.weightDecay))"
    }

    override func bufferShapes(_ i: Int) -> [(name: String, shape: [Int])] {
        [("step", []), ("exp_avg", params[i].shape), ("exp_avg_sq", params[i].shape)]
    }

    override var countNames: Set<String> { ["step"] }

    override func buffers(_ i: Int) -> [String: Tensor]? {
        guard let m = expAvg[i], let v = expAvgSq[i] else { return nil }
        return ["step": Tensor(scalar: Float(stepCounts[i])), "exp_avg": m, "exp_avg_sq": v]
    }

    override func setBuffers(_ i: Int, _ buffers: [String: Tensor]?) {
        expAvg[i] = buffers?["exp_avg"]
        expAvgSq[i] = buffers?["exp_avg_sq"]
        stepCounts[i] = buffers?["step"].flatMap { try? Optimizer.count($0, "step") } ?? 0
    }
}

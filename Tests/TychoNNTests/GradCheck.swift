// GradCheck.swift: what the Functional tests share: random inputs, running a function on fresh leaves to get its
// output and the gradients of a random weighted sum of it, a comparison that prints like llm.c's checker, and a
// Lua-free finite-difference gradient check.

import Testing
import TychoTensor

/// One input of a checked function: its values, and whether it requires grad.
struct Input {
    var shape: [Int]
    var values: [Float]
    var grad: Bool

    /// Uniform values in [-scale, scale) from `seed` (never the global generator).
    init(_ shape: [Int], seed: UInt64, scale: Float = 1, grad: Bool = true) {
        var g = RandomGenerator(seed: seed)
        self.shape = shape
        self.values = (0..<shape.reduce(1, *)).map { _ in (g.nextUniform() * 2 - 1) * scale }
        self.grad = grad
    }

    init(_ shape: [Int], values: [Float], grad: Bool = false) {
        self.shape = shape
        self.values = values
        self.grad = grad
    }

    func leaf() throws -> Tensor {
        let t = try Tensor(shape: shape, values: values)
        if grad { try t.setRequiresGrad(true) }
        return t
    }
}

/// The output of `f` on fresh leaves made from `inputs`, and the gradient of Σ out ⊙ W (W uniform random from
/// `weightSeed`) with respect to each input that requires grad.
struct Evaluation {
    var out: Tensor
    var grads: [[Float]?]
}

func evaluate(_ inputs: [Input], weightSeed: UInt64 = 99, _ f: ([Tensor]) throws -> Tensor) throws -> Evaluation {
    let leaves = try inputs.map { try $0.leaf() }
    let out = try f(leaves)
    if out.requiresGrad {
        let w = try Input(out.shape, seed: weightSeed, grad: false).leaf()
        try out.backward(w)
    }
    return Evaluation(out: out, grads: leaves.map { $0.requiresGrad ? ($0.grad?.toArray() ?? [Float](repeating: 0, count: $0.count)) : nil })
}

/// Checks a fused op against its reference: output values and every input gradient.
func expectSame(_ fused: Evaluation, _ reference: Evaluation, tol: Float = 1e-5, _ label: String,
                sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(fused.out.shape == reference.out.shape, "\(label): shape \(fused.out.shape) != \(reference.out.shape)",
            sourceLocation: sourceLocation)
    compare(fused.out.toArray(), reference.out.toArray(), tol: tol, "\(label) out", sourceLocation: sourceLocation)
    for (i, (a, b)) in zip(fused.grads, reference.grads).enumerated() {
        guard let a, let b else {
            #expect(a == nil && b == nil, "\(label): input \(i) gradient present in only one", sourceLocation: sourceLocation)
            continue
        }
        compare(a, b, tol: tol, "\(label) grad \(i)", sourceLocation: sourceLocation)
    }
}

/// |got - want| <= tol + tol · |want| for every element (NaN matches NaN); on failure reports the label, the
/// first values as OK / NOT OK and the largest difference.
func compare(_ got: [Float], _ want: [Float], tol: Float, _ label: String,
             sourceLocation: SourceLocation = #_sourceLocation) {
    guard got.count == want.count else {
        Issue.record("\(label): \(got.count) values, expected \(want.count)", sourceLocation: sourceLocation)
        return
    }
    var maxdiff: Float = 0
    var bad = -1
    for (i, (g, w)) in zip(got, want).enumerated() {
        if w.isNaN || g.isNaN {
            if !(w.isNaN && g.isNaN) && bad < 0 { bad = i }
            continue
        }
        let d = Swift.abs(g - w)
        maxdiff = Swift.max(maxdiff, d)
        if !(d <= tol + tol * Swift.abs(w)) && bad < 0 { bad = i }
    }
    guard bad >= 0 else { return }
    var report = ["\(label):"]
    let start = Swift.max(0, bad - 2)
    for i in start..<Swift.min(start + 5, got.count) {
        let ok = Swift.abs(got[i] - want[i]) <= tol + tol * Swift.abs(want[i]) || (got[i].isNaN && want[i].isNaN)
        report.append("  [\(i)] \(ok ? "OK    " : "NOT OK") \(got[i]) \(want[i])")
    }
    report.append("  maxdiff \(maxdiff)")
    Issue.record(Comment(rawValue: report.joined(separator: "\n")), sourceLocation: sourceLocation)
}

/// Bitwise equality of two evaluations (outputs and gradients).
func expectBitwiseEqual(_ a: Evaluation, _ b: Evaluation, _ label: String,
                        sourceLocation: SourceLocation = #_sourceLocation) {
    func same(_ x: [Float], _ y: [Float]) -> Bool {
        x.count == y.count && zip(x, y).allSatisfy { $0.bitPattern == $1.bitPattern }
    }
    #expect(same(a.out.toArray(), b.out.toArray()), "\(label): outputs differ", sourceLocation: sourceLocation)
    for (i, (x, y)) in zip(a.grads, b.grads).enumerated() {
        #expect(same(x ?? [], y ?? []), "\(label): gradient \(i) differs", sourceLocation: sourceLocation)
    }
}

/// Finite-difference gradient check in float32: for up to `perInput` elements of each input that requires
/// grad, the central difference (L(x + h) - L(x - h)) / 2h of L = Σ out ⊙ W (summed in Double) against the
/// gradient from backward: |fd - analytic| <= tol · (1 + |analytic|).
func gradcheck(_ inputs: [Input], h: Float = 1e-2, tol: Float = 1e-2, perInput: Int = 24, _ label: String,
               sourceLocation: SourceLocation = #_sourceLocation, _ f: ([Tensor]) throws -> Tensor) throws {
    let analytic = try evaluate(inputs, f)
    let w = try Input(analytic.out.shape, seed: 99, grad: false).leaf().toArray()
    func loss(_ xs: [Input]) throws -> Double {
        let out = try GradMode.with(enabled: false) { try f(try xs.map { try $0.leaf() }) }
        return zip(out.toArray(), w).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
    }
    for (k, input) in inputs.enumerated() where input.grad {
        guard let grad = analytic.grads[k] else { continue }
        let n = input.values.count
        let step = Swift.max(1, n / perInput)
        for i in stride(from: 0, to: n, by: step) {
            var plus = inputs, minus = inputs
            plus[k].values[i] += h
            minus[k].values[i] -= h
            let fd = Float((try loss(plus) - loss(minus)) / Double(2 * h))
            let an = grad[i]
            #expect(Swift.abs(fd - an) <= tol * (1 + Swift.abs(an)),
                    "\(label): input \(k) element \(i): finite difference \(fd), backward \(an)", sourceLocation: sourceLocation)
        }
    }
}

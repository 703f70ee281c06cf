// ClipGradNormTests.swift: the joint L2 norm against a double-precision sum, the clip coefficient, skipped
// parameters and refused arguments.

import Foundation
import Testing
import TychoTensor
@testable import TychoTrain

@Suite struct ClipGradNormTests {
    @Test func normAndScalingMatchTheDefinition() throws {
        // One grad spans several 65536-element blocks and a ragged end.
        let params = [param([200_003], seed: 1), param([7], seed: 2), param([], seed: 3)]
        setGrads(params, seed: 9, scale: 0.01)
        let grads = params.map { values($0.grad!) }
        let exact = grads.joined().reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
        let total = try GradClipping.clipGradNorm(params, maxNorm: 1)
        #expect(Swift.abs(Double(total) - exact) <= 1e-6 * exact, "\(total) vs \(exact)")
        let coef = Swift.min(1 * (1 / (total + Float(1e-6))), 1)
        #expect(coef < 1)
        for (p, g) in zip(params, grads) { #expect(values(p.grad!) == g.map { $0 * coef }) }
        // The clipped norm is max_norm (up to the 1e-6 and rounding).
        let again = try GradClipping.clipGradNorm(params, maxNorm: 1)
        #expect(Swift.abs(again - 1) < 1e-5)
    }

    @Test func gradsUnderTheLimitAreUntouched() throws {
        let p = param([5], seed: 1)
        p.grad = T([3, 4, 0, 0, 0])
        let v = p.grad!.storage.version
        #expect(try GradClipping.clipGradNorm([p], maxNorm: 10) == 5)
        #expect(values(p.grad!) == [3, 4, 0, 0, 0])
        #expect(p.grad!.storage.version == v)
        #expect(try GradClipping.clipGradNorm([p], maxNorm: 1) == 5)
        #expect(p.grad!.storage.version != v, "an in-place scale bumps the version")
    }

    @Test func missingGradsAndEmptyLists() throws {
        let a = param([2], seed: 1), b = param([2], seed: 2)
        a.grad = T([0, 2])
        #expect(try GradClipping.clipGradNorm([a, b], maxNorm: 1) == 2)
        #expect(b.grad == nil)
        #expect(try GradClipping.clipGradNorm([], maxNorm: 1) == 0)
        // Parameters that do not require grad are fine for clipping.
        let plain = T([1, 1])
        plain.grad = T([0, 0])
        #expect(try GradClipping.clipGradNorm([plain], maxNorm: 0) == 0)
    }

    @Test func nonFiniteNormsPropagateAsInPyTorch() throws {
        let a = param([2], seed: 1)
        a.grad = T([.infinity, 1])
        #expect(try GradClipping.clipGradNorm([a], maxNorm: 1) == .infinity)
        #expect(values(a.grad!)[0].isNaN && values(a.grad!)[1] == 0)
    }

    @Test func argumentsAreChecked() throws {
        let a = param([2], seed: 1)
        expectError("max_norm must be a non-negative number, got -1") { try GradClipping.clipGradNorm([a], maxNorm: -1) }
        expectError("parameter 2 is the same tensor as parameter 1") { try GradClipping.clipGradNorm([a, a], maxNorm: 1) }
        a.grad = T([1, 2, 3])
        expectError("the grad of parameter 1 has size 3 but the parameter has size 2") {
            try GradClipping.clipGradNorm([a], maxNorm: 1)
        }
    }
}

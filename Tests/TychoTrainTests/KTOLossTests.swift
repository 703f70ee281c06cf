// KTOLossTests.swift: KTOLoss against a Double reference of TRL 1.16's KTO and apo_zero_unpaired losses: the KL
// reference point (clamped, without grad), the order of the per-example losses, NaN-ignoring mean, statistics for
// batches with one kind of example only, and refused inputs.

import Foundation
import Testing
import TychoTensor
@testable import TychoTrain

@Suite struct KTOLossTests {
    struct Batch {
        var p: [Double], r: [Double], labels: [Bool], kp: [Double], kr: [Double]
    }

    static func make(_ labels: [Bool], seed: UInt64, klShift: Float = 0) -> Batch {
        let b = labels.count
        func f(_ v: [Float]) -> [Double] { v.map { Double($0) } }
        let p = f(data(b, seed: seed, scale: 20).map { $0 - 30 })
        let r = zip(p, f(data(b, seed: seed + 1, scale: 3))).map { Double(Float($0 + $1)) }
        let kp = f(data(b, seed: seed + 2, scale: 20).map { $0 - 30 })
        let kr = zip(kp, f(data(b, seed: seed + 3, scale: 2))).map { Double(Float($0 + $1 + Double(klShift))) }
        return Batch(p: p, r: r, labels: labels, kp: kp, kr: kr)
    }

    static func reference(_ x: Batch, _ o: KTOLoss.Options) -> Double {
        let kl = o.lossType == .kto ? Swift.max(0, zip(x.kp, x.kr).map { $0 - $1 }.reduce(0, +) / Double(x.kp.count)) : 0
        var losses: [Double] = []
        for i in x.p.indices where x.labels[i] {
            let c = x.p[i] - x.r[i]
            losses.append(o.desirableWeight * (1 - Reference.sig(o.beta * (o.lossType == .kto ? c - kl : c))))
        }
        for i in x.p.indices where !x.labels[i] {
            let c = x.p[i] - x.r[i]
            losses.append(o.undesirableWeight * (o.lossType == .kto ? 1 - Reference.sig(o.beta * (kl - c)) : Reference.sig(o.beta * c)))
        }
        return losses.reduce(0, +) / Double(losses.count)
    }

    func run(_ x: Batch, _ o: KTOLoss.Options) throws -> (KTOLoss.Result, Tensor) {
        let p = T(x.p.map { Float($0) })
        try p.setRequiresGrad(true)
        var i = KTOLoss.Inputs(policy: p, ref: T(x.r.map { Float($0) }), labels: x.labels)
        if o.lossType == .kto {
            i.policyKL = T(x.kp.map { Float($0) })
            i.refKL = T(x.kr.map { Float($0) })
        }
        return (try KTOLoss.compute(i, options: o), p)
    }

    @Test func matchesTheReferenceWithGradients() throws {
        let T_ = true, F_ = false
        let cases: [([Bool], Float, KTOLossType, Double, Double, Double)] = [
            ([T_, F_, T_, T_, F_, F_], 0, .kto, 0.1, 1, 1),
            ([T_, F_, F_, T_], 6, .kto, 0.1, 1, 1),      // KL below 0: clamped
            ([F_, T_, T_, F_, T_], -6, .kto, 0.5, 1.33, 0.7),
            ([T_, T_, T_], 0, .kto, 0.1, 1, 1),
            ([F_, F_], 0, .kto, 0.1, 1, 1),
            ([T_, F_, T_, F_], 0, .apoZeroUnpaired, 0.2, 1, 1),
            ([F_], 0, .apoZeroUnpaired, 0.3, 1, 2),
        ]
        for (k, (labels, shift, type, beta, dw, uw)) in cases.enumerated() {
            var o = KTOLoss.Options()
            o.lossType = type
            o.beta = beta
            o.desirableWeight = dw
            o.undesirableWeight = uw
            let x = Self.make(labels, seed: UInt64(10 * k + 1), klShift: shift)
            let (r, p) = try run(x, o)
            try r.loss.backward()
            expectNear([try r.loss.item()], [Self.reference(x, o)], tol: 2e-6, "case \(k) loss")
            let h = 1e-4
            let g = x.p.indices.map { i -> Double in
                var up = x, down = x
                up.p[i] += h; down.p[i] -= h
                return (Self.reference(up, o) - Self.reference(down, o)) / (2 * h)
            }
            expectNear(values(p.grad!), g, tol: 1e-3, "case \(k) gradient (the KL point carries none)")
            let hasChosen = labels.contains(true), hasRejected = labels.contains(false)
            #expect((r.stats["rewards/chosen"] != nil) == hasChosen && (r.stats["rewards/rejected"] != nil) == hasRejected)
            #expect((r.stats["rewards/margins"] != nil) == (hasChosen && hasRejected))
            #expect(r.stats["kl"] != nil && r.stats["rewards/accuracies"] == nil, "KTO logs kl and no accuracy")
            if shift == 6 { #expect(r.kl == 0, "negative KL estimate clamped to 0") }
            if shift == -6 { #expect(r.kl > 0) }
        }
    }

    @Test func lossesComeDesirableFirstAndNaNIsIgnored() throws {
        var o = KTOLoss.Options()
        o.lossType = .apoZeroUnpaired
        o.beta = 1
        var x = KTOLoss.Inputs(policy: T([-1, -2, .nan, -4]), ref: T([-1, -1, -1, -1]), labels: [false, true, true, false])
        let r = try KTOLoss.compute(x, options: o)
        let l = values(r.losses)
        #expect(Swift.abs(l[0] - Float(1 - Reference.sig(-1))) < 1e-6 && l[1].isNaN)
        #expect(Swift.abs(l[2] - Float(Reference.sig(0))) < 1e-6 && Swift.abs(l[3] - Float(Reference.sig(-3))) < 1e-6)
        #expect(Swift.abs(try r.loss.item() - (l[0] + l[2] + l[3]) / 3) < 1e-6, "NaN-ignoring mean")
        x.labels = [true, true, true, true]
        #expect(try KTOLoss.compute(x, options: o).stats["rewards/chosen"]!.isFinite, "nansum over the count")
    }

    @Test func refusedInputs() throws {
        let v = T([-1, -2, -3])
        var x = KTOLoss.Inputs(policy: v, ref: v, labels: [true, false])
        expectError("label has 2 values but policy has 3") { try KTOLoss.compute(x, options: KTOLoss.Options()) }
        x.labels = [true, false, true]
        expectError("the kto loss needs policy_kl and ref_kl") { try KTOLoss.compute(x, options: KTOLoss.Options()) }
        x.policyKL = v
        x.refKL = T([1])
        expectError("ref_kl has 1 element but policy_kl has 3") { try KTOLoss.compute(x, options: KTOLoss.Options()) }
        var apo = KTOLoss.Options()
        apo.lossType = .apoZeroUnpaired
        expectError("the apo_zero_unpaired loss has no KL estimate") { try KTOLoss.compute(x, options: apo) }
        let one = KTOLoss.Inputs(policy: T([-1]), ref: T([-1]), labels: [true])
        var withKL = one
        withKL.policyKL = v
        withKL.refKL = v
        expectError("the kto loss needs a batch of at least 2 examples") { try KTOLoss.compute(withKL, options: KTOLoss.Options()) }
        _ = try KTOLoss.compute(one, options: apo)
        var o = KTOLoss.Options()
        o.undesirableWeight = -1
        expectError("undesirable_weight must be a finite number >= 0, got -1") { try o.validate() }
    }
}

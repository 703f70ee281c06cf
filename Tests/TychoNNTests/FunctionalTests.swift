// FunctionalTests.swift: each fused building block of Functional.swift against its composite reference
// (FunctionalReference.swift): output values and the gradient of a random weighted sum for every input, over
// layouts (non-contiguous views, both weight layouts), options (bias, GQA, query offset, key masks) and batch
// shapes; then finite-difference gradient checks on small shapes, argument errors, and bitwise determinism at 1
// and 2 threads.

import Testing
@testable import TychoNN
import TychoTensor

// MARK: linear

@Suite struct LinearTests {
    @Test(arguments: [WeightLayout.outIn, .inOut], [false, true])
    func matchesReference(layout: WeightLayout, withBias: Bool) throws {
        let (inF, outF) = (7, 6)
        let wShape = layout == .outIn ? [outF, inF] : [inF, outF]
        for xShape in [[5, 7], [2, 3, 5, 7], [7]] {
            var inputs = [Input(xShape, seed: 1), Input(wShape, seed: 2)]
            if withBias { inputs.append(Input([outF], seed: 3)) }
            let f = { (fn: (Tensor, Tensor, Tensor?) throws -> Tensor) in
                try evaluate(inputs) { t in try fn(t[0], t[1], withBias ? t[2] : nil) }
            }
            let fused = try f { try Functional.linear($0, weight: $1, bias: $2, layout: layout) }
            let ref = try f { try Reference.linear($0, weight: $1, bias: $2, layout: layout) }
            expectSame(fused, ref, "linear \(layout) bias \(withBias) x \(xShape)")
        }
    }

    /// A transposed input and a weight that is a transposed view (as a tied embedding used as an output layer).
    @Test func stridedInputAndWeight() throws {
        let inputs = [Input([2, 7, 4], seed: 4), Input([7, 6], seed: 5), Input([6], seed: 6)]
        for layout in [WeightLayout.outIn, .inOut] {
            let f = { (fn: (Tensor, Tensor, Tensor?) throws -> Tensor) in
                try evaluate(inputs) { t in
                    // x [2, 4, 7] (a transpose), W [6, 7] or [7, 6] as views
                    let w = layout == .outIn ? try t[1].transpose(0, 1) : try t[1].transpose(0, 1).contiguous().transpose(0, 1)
                    return try fn(try t[0].transpose(1, 2), w, t[2])
                }
            }
            let fused = try f { try Functional.linear($0, weight: $1, bias: $2, layout: layout) }
            let ref = try f { try Reference.linear($0, weight: $1, bias: $2, layout: layout) }
            expectSame(fused, ref, "linear strided \(layout)")
        }
    }

    @Test func onlySomeInputsRequireGrad() throws {
        for mask in [[true, false, false], [false, true, false], [false, false, true]] {
            var inputs = [Input([3, 5], seed: 7), Input([4, 5], seed: 8), Input([4], seed: 9)]
            for i in 0..<3 { inputs[i].grad = mask[i] }
            let fused = try evaluate(inputs) { t in try Functional.linear(t[0], weight: t[1], bias: t[2]) }
            let ref = try evaluate(inputs) { t in try Reference.linear(t[0], weight: t[1], bias: t[2], layout: .outIn) }
            expectSame(fused, ref, "linear grads \(mask)")
        }
    }

    /// The bias gradient is each column of dY summed in Double from the first row down, rounded once: bit for bit
    /// the plain loop, on widths that span several blocks of columns and end between SIMD steps.
    @Test func biasGradientSumsEachColumnInRowOrder() {
        for (rows, cols) in [(37, 1100), (5, 13), (300, 96), (1, 7)] {
            var g = RandomGenerator(seed: UInt64(cols))
            let dy = (0..<(rows * cols)).map { _ in (g.nextUniform() * 2 - 1) * 1000 }
            var want = [Float](repeating: 0, count: cols)
            for j in 0..<cols {
                var acc = 0.0
                for r in 0..<rows { acc += Double(dy[r * cols + j]) }
                want[j] = Float(acc)
            }
            var got = [Float](repeating: .nan, count: cols)
            dy.withUnsafeBufferPointer { p in
                got.withUnsafeMutableBufferPointer { o in FusedLinear.columnSums(p.baseAddress!, rows: rows, cols: cols, into: o.baseAddress!) }
            }
            #expect(got == want, "column sums \(rows)x\(cols)")
        }
    }

    @Test func emptyBatch() throws {
        let fused = try evaluate([Input([0, 5], seed: 1), Input([3, 5], seed: 2), Input([3], seed: 3)]) { t in
            try Functional.linear(t[0], weight: t[1], bias: t[2])
        }
        #expect(fused.out.shape == [0, 3])
        #expect(fused.grads[1] == [Float](repeating: 0, count: 15))
    }

    @Test func gradcheck() throws {
        for layout in [WeightLayout.outIn, .inOut] {
            let w = layout == .outIn ? [3, 4] : [4, 3]
            try TychoNNTests.gradcheck([Input([2, 2, 4], seed: 1), Input(w, seed: 2), Input([3], seed: 3)], "linear \(layout)") { t in
                try Functional.linear(t[0], weight: t[1], bias: t[2], layout: layout)
            }
        }
    }
}

// MARK: norms

@Suite struct NormTests {
    @Test(arguments: [[4, 37], [2, 3, 16], [1, 8], [3, 1]])
    func layerNormMatchesReference(shape: [Int]) throws {
        let c = shape.last!
        for (withW, withB) in [(true, true), (false, false), (true, false), (false, true)] {
            var inputs = [Input(shape, seed: 1, scale: 3)]
            inputs[0].values = inputs[0].values.map { $0 + 2 }    // a mean far from 0
            if withW { inputs.append(Input([c], seed: 2)) }
            if withB { inputs.append(Input([c], seed: 3)) }
            let split = { (t: [Tensor]) in (t[0], withW ? t[1] : nil, withB ? t[withW ? 2 : 1] : nil) }
            let fused = try evaluate(inputs) { t in let (x, w, b) = split(t); return try Functional.layerNorm(x, weight: w, bias: b, eps: 1e-5) }
            let ref = try evaluate(inputs) { t in let (x, w, b) = split(t); return try Reference.layerNorm(x, weight: w, bias: b, eps: 1e-5) }
            expectSame(fused, ref, tol: 2e-5, "layer_norm \(shape) w \(withW) b \(withB)")
        }
    }

    @Test(arguments: [[4, 37], [2, 3, 16], [3, 1]])
    func rmsNormMatchesReference(shape: [Int]) throws {
        for withW in [true, false] {
            let inputs = [Input(shape, seed: 4, scale: 2)] + (withW ? [Input([shape.last!], seed: 5)] : [])
            let fused = try evaluate(inputs) { t in try Functional.rmsNorm(t[0], weight: withW ? t[1] : nil, eps: 1e-6) }
            let ref = try evaluate(inputs) { t in try Reference.rmsNorm(t[0], weight: withW ? t[1] : nil, eps: 1e-6) }
            expectSame(fused, ref, tol: 2e-5, "rms_norm \(shape) w \(withW)")
        }
    }

    @Test func stridedInput() throws {
        let inputs = [Input([2, 24, 5], seed: 6), Input([5], seed: 7), Input([5], seed: 8)]
        let fused = try evaluate(inputs) { t in try Functional.layerNorm(t[0].narrow(1, start: 3, length: 20), weight: t[1], bias: t[2], eps: 1e-5) }
        let ref = try evaluate(inputs) { t in try Reference.layerNorm(t[0].narrow(1, start: 3, length: 20), weight: t[1], bias: t[2], eps: 1e-5) }
        expectSame(fused, ref, tol: 2e-5, "layer_norm narrowed")
        let fusedT = try evaluate(inputs) { t in try Functional.rmsNorm(t[0].transpose(1, 2), weight: nil, eps: 1e-6) }
        let refT = try evaluate(inputs) { t in try Reference.rmsNorm(t[0].transpose(1, 2), weight: nil, eps: 1e-6) }
        expectSame(fusedT, refT, tol: 2e-5, "rms_norm transposed")
    }

    @Test func gradcheck() throws {
        try TychoNNTests.gradcheck([Input([3, 6], seed: 1), Input([6], seed: 2), Input([6], seed: 3)], "layer_norm") { t in
            try Functional.layerNorm(t[0], weight: t[1], bias: t[2], eps: 1e-5)
        }
        try TychoNNTests.gradcheck([Input([3, 6], seed: 4), Input([6], seed: 5)], "rms_norm") { t in
            try Functional.rmsNorm(t[0], weight: t[1], eps: 1e-6)
        }
    }
}

// MARK: embedding

@Suite struct EmbeddingTests {
    @Test func matchesReference() throws {
        let ids = Input([2, 5], values: [3, 0, 10, 3, 3, 7, 1, 0, 10, 2])
        let fused = try evaluate([ids, Input([11, 13], seed: 1)]) { t in try Functional.embedding(t[0], weight: t[1]) }
        let ref = try evaluate([ids, Input([11, 13], seed: 1)]) { t in try Reference.embedding(t[0], weight: t[1]) }
        expectSame(fused, ref, tol: 0, "embedding")
        // A transposed table.
        let fusedT = try evaluate([ids, Input([13, 11], seed: 2)]) { t in try Functional.embedding(t[0], weight: t[1].transpose(0, 1)) }
        let refT = try evaluate([ids, Input([13, 11], seed: 2)]) { t in try Reference.embedding(t[0], weight: t[1].transpose(0, 1)) }
        expectSame(fusedT, refT, tol: 0, "embedding transposed table")
    }

    @Test func badIdsAreNamed() throws {
        let w = try Input([5, 3], seed: 1).leaf()
        for (value, fragment) in [(5 as Float, "token id 5 out of range for a vocabulary of 5"), (-1, "token id -1 out of range"),
                                  (1.5, "token id 1.5 is not an integer"), (.nan, "is not an integer"), (1e30, "is not an integer")] {
            do {
                _ = try Functional.embedding(try Tensor(shape: [3], values: [0, value, 1]), weight: w)
                Issue.record("no error for id \(value)")
            } catch let e as TensorError {
                #expect(e.message.contains(fragment), "\(e.message)")
                #expect(e.message.hasPrefix("embedding:"), "\(e.message)")
            }
        }
    }

    @Test func gradcheck() throws {
        try TychoNNTests.gradcheck([Input([4], values: [1, 2, 1, 0]), Input([3, 4], seed: 1)], "embedding") { t in
            try Functional.embedding(t[0], weight: t[1])
        }
    }
}

// MARK: attention

/// One attention configuration: sizes, options, and whether q, k, v are transposed [B, T, H, D] views.
struct AttentionCase: CustomStringConvertible, Sendable {
    var b = 2, h = 4, hkv = 4, tq = 13, tk = 13, d = 8
    var offset = 0
    var scale: Float?
    var mask: [Float]?
    var transposed = false
    var grads = [true, true, true]

    var description: String {
        "B\(b) H\(h)/\(hkv) Tq\(tq) Tk\(tk) D\(d) off\(offset)\(mask == nil ? "" : " mask")\(transposed ? " views" : "")\(scale.map { " scale \($0)" } ?? "") grads \(grads)"
    }

    var inputs: [Input] {
        var q = transposed ? Input([b, tq, h, d], seed: 1) : Input([b, h, tq, d], seed: 1)
        var k = transposed ? Input([b, tk, hkv, d], seed: 2) : Input([b, hkv, tk, d], seed: 2)
        var v = transposed ? Input([b, tk, hkv, d], seed: 3) : Input([b, hkv, tk, d], seed: 3)
        (q.grad, k.grad, v.grad) = (grads[0], grads[1], grads[2])
        return [q, k, v]
    }

    func run(_ t: [Tensor], _ f: (Tensor, Tensor, Tensor, Float?, Int, Tensor?) throws -> Tensor) throws -> Tensor {
        let m = try mask.map { try Tensor(shape: [b, tk], values: $0) }
        if transposed {
            return try f(t[0].transpose(1, 2), t[1].transpose(1, 2), t[2].transpose(1, 2), scale, offset, m)
        }
        return try f(t[0], t[1], t[2], scale, offset, m)
    }

    func fused(_ t: [Tensor]) throws -> Tensor {
        try run(t) { try Functional.causalAttention(q: $0, k: $1, v: $2, scale: $3, queryOffset: $4, keyMask: $5) }
    }

    func reference(_ t: [Tensor]) throws -> Tensor {
        try run(t) { try Reference.attention(q: $0, k: $1, v: $2, scale: $3, queryOffset: $4, keyMask: $5) }
    }
}

/// Key masks for batch 2 and `tk` keys: batch 0 left-padded by 3 keys, batch 1 with holes.
func paddedMask(_ tk: Int) -> [Float] {
    (0..<tk).map { $0 < 3 ? 0 : 1 } + (0..<tk).map { $0 % 4 == 1 ? 0 : 1 }
}

let attentionCases: [AttentionCase] = [
    AttentionCase(),
    AttentionCase(transposed: true),
    AttentionCase(h: 4, hkv: 2, transposed: true),                               // GQA 2
    AttentionCase(h: 8, hkv: 2, d: 16, transposed: true),                        // GQA 4
    AttentionCase(h: 8, hkv: 2, tq: 5, tk: 12, offset: 7),                       // cached decoding: Tq < Tk
    AttentionCase(h: 4, hkv: 1, tq: 3, tk: 12, offset: 2, transposed: true),     // offset < Tk - Tq
    AttentionCase(tq: 9, tk: 9, mask: paddedMask(9)),                            // rows that see no key
    AttentionCase(h: 4, hkv: 2, tq: 4, tk: 10, offset: 6, mask: paddedMask(10), transposed: true),
    AttentionCase(tq: 6, tk: 6, offset: 100),                                    // every key visible
    AttentionCase(b: 1, h: 2, hkv: 2, tq: 150, tk: 150, d: 12, transposed: true),  // several row blocks
    AttentionCase(b: 1, h: 2, hkv: 1, tq: 70, tk: 140, offset: 70, mask: [Float]((0..<140).map { $0 % 9 == 0 ? 0 : 1 })),
    AttentionCase(scale: 0.3),
    AttentionCase(h: 4, hkv: 2, grads: [true, false, false]),
    AttentionCase(h: 4, hkv: 2, grads: [false, true, false]),
    AttentionCase(h: 4, hkv: 2, grads: [false, false, true]),
    AttentionCase(b: 1, h: 1, hkv: 1, tq: 4, tk: 0, d: 8),                       // no keys
]

@Suite struct AttentionTests {
    @Test(arguments: attentionCases)
    func matchesReference(_ c: AttentionCase) throws {
        let fused = try evaluate(c.inputs, c.fused)
        let ref = try evaluate(c.inputs, c.reference)
        expectSame(fused, ref, tol: 1e-5, "attention \(c)")
    }

    /// GPT-2's fused form (qkv [B, T, 3·H·D] in, one gradient out) against the same attention on qkv's three
    /// thirds as views: the same bits, forward and backward, with and without a key mask, over several row blocks.
    @Test func fusedQKVMatchesSelectedViews() throws {
        for (b, t, h, d, mask) in [(2, 13, 4, 8, nil), (2, 9, 2, 4, paddedMask(9)), (1, 150, 2, 12, nil)] as [(Int, Int, Int, Int, [Float]?)] {
            let input = [Input([b, t, 3 * h * d], seed: 21)]
            let m = try mask.map { try Tensor(shape: [b, t], values: $0) }
            let merge = { (o: Tensor) in try o.transpose(1, 2).reshape([b, t, h * d]) }
            let fused = try evaluate(input) { x in try merge(Functional.causalAttention(qkv: x[0], heads: h, keyMask: m)) }
            let views = try evaluate(input) { x in
                let v = try x[0].view([b, t, 3, h, d])
                return try merge(Functional.causalAttention(q: v.select(2, 0).transpose(1, 2), k: v.select(2, 1).transpose(1, 2),
                                                            v: v.select(2, 2).transpose(1, 2), keyMask: m))
            }
            expectBitwiseEqual(fused, views, "qkv B\(b) T\(t) H\(h) D\(d)\(mask == nil ? "" : " mask")")
        }
        #expect(throws: TensorError.self) { try Functional.causalAttention(qkv: Tensor.zeros([2, 3, 10]), heads: 2) }
    }

    /// The result is [B, H, Tq, D] stored as [B, Tq, H, D]: transposing it back gives a contiguous tensor.
    @Test func outputLayout() throws {
        let c = AttentionCase(transposed: true)
        let out = try GradMode.with(enabled: false) { try c.fused(try c.inputs.map { try $0.leaf() }) }
        #expect(out.shape == [2, 4, 13, 8])
        #expect(try out.transpose(1, 2).isContiguous)
    }

    /// Gradients arriving in other layouts: through the models' transpose + reshape (rows of H·D floats), and
    /// from a sum (a broadcast gradient with zero strides).
    @Test func gradientLayouts() throws {
        let c = AttentionCase(h: 4, hkv: 2, transposed: true)
        let merge = { (o: Tensor) in try o.transpose(1, 2).reshape([c.b, c.tq, c.h * c.d]) }
        expectSame(try evaluate(c.inputs) { try merge(c.fused($0)) }, try evaluate(c.inputs) { try merge(c.reference($0)) },
                   "attention merged heads")
        expectSame(try evaluate(c.inputs) { try c.fused($0).sum() }, try evaluate(c.inputs) { try c.reference($0).sum() },
                   tol: 1e-4, "attention sum")
    }

    @Test func gradcheck() throws {
        for c in [AttentionCase(b: 1, h: 2, hkv: 1, tq: 3, tk: 5, d: 4, offset: 2, mask: [0, 1, 1, 0, 1]),
                  AttentionCase(b: 1, h: 2, hkv: 2, tq: 4, tk: 4, d: 3, transposed: true)] {
            try TychoNNTests.gradcheck(c.inputs, "attention \(c)", c.fused)
        }
    }
}

// MARK: rope

@Suite struct RopeTests {
    @Test func matchesReference() throws {
        let (cos, sin) = try Functional.ropeTables(headDim: 20, start: 3, count: 5, theta: 10_000)
        let tables = [Input([5, 20], values: cos.toArray()), Input([5, 20], values: sin.toArray())]
        for transposed in [false, true] {
            let x = transposed ? Input([2, 5, 3, 20], seed: 1) : Input([2, 3, 5, 20], seed: 1)
            let view = { (t: Tensor) in transposed ? try t.transpose(1, 2) : t }
            let fused = try evaluate([x] + tables) { t in try Functional.rope(try view(t[0]), cos: t[1], sin: t[2]) }
            let ref = try evaluate([x] + tables) { t in try Reference.rope(try view(t[0]), cos: t[1], sin: t[2]) }
            expectSame(fused, ref, tol: 1e-6, "rope transposed \(transposed)")
        }
        // Tables that require grad.
        let inputs = [Input([2, 3, 4, 6], seed: 2), Input([4, 6], seed: 3), Input([4, 6], seed: 4)]
        let fused = try evaluate(inputs) { t in try Functional.rope(t[0], cos: t[1], sin: t[2]) }
        let ref = try evaluate(inputs) { t in try Reference.rope(t[0], cos: t[1], sin: t[2]) }
        expectSame(fused, ref, tol: 1e-5, "rope with table gradients")
    }

    @Test func oddHeadDimensionIsAnError() throws {
        #expect(throws: TensorError.self) {
            try Functional.rope(try Tensor.zeros([1, 1, 2, 3]), cos: try Tensor.zeros([2, 3]), sin: try Tensor.zeros([2, 3]))
        }
    }

    @Test func gradcheck() throws {
        try TychoNNTests.gradcheck([Input([1, 2, 3, 4], seed: 1), Input([3, 4], seed: 2), Input([3, 4], seed: 3)], "rope") { t in
            try Functional.rope(t[0], cos: t[1], sin: t[2])
        }
    }
}

// MARK: token log-probabilities

@Suite struct TokenLogProbsTests {
    @Test func matchesReference() throws {
        for (shape, v) in [([2, 5], 11), ([7], 37), ([3, 2, 2], 8), ([4], 1)] {
            var g = RandomGenerator(seed: 5)
            let targets = Input(shape, values: (0..<shape.reduce(1, *)).map { _ in Float(g.nextInt(below: UInt64(v))) })
            let inputs = [Input(shape + [v], seed: 1, scale: 4), targets]
            let fused = try evaluate(inputs) { t in try Functional.tokenLogProbs(t[0], targets: t[1]) }
            let ref = try evaluate(inputs) { t in try Reference.tokenLogProbs(t[0], targets: t[1]) }
            expectSame(fused, ref, tol: 1e-5, "token_logprobs \(shape) V \(v)")
        }
    }

    /// Shifted logits (logits[:, :-1]) are read in place; targets may be a view too.
    @Test func stridedLogits() throws {
        let inputs = [Input([2, 6, 9], seed: 2, scale: 3), Input([2, 6], values: [1, 2, 3, 4, 5, 6, 0, 8, 7, 6, 5, 4])]
        let f = { (fn: (Tensor, Tensor) throws -> Tensor) in
            try evaluate(inputs) { t in try fn(t[0].narrow(1, start: 0, length: 5), t[1].narrow(1, start: 1, length: 5)) }
        }
        let fused = try f { try Functional.tokenLogProbs($0, targets: $1) }
        let ref = try f { try Reference.tokenLogProbs($0, targets: $1) }
        expectSame(fused, ref, tol: 1e-5, "token_logprobs shifted")
    }

    @Test func badTargetsAreNamed() throws {
        let logits = try Tensor.zeros([3, 4])
        for (value, fragment) in [(4 as Float, "target 4 out of range for a vocabulary of 4"), (0.5, "target 0.5 is not an integer")] {
            do {
                _ = try Functional.tokenLogProbs(logits, targets: try Tensor(shape: [3], values: [0, value, 1]))
                Issue.record("no error for target \(value)")
            } catch let e as TensorError {
                #expect(e.message.contains(fragment), "\(e.message)")
            }
        }
    }

    @Test func gradcheck() throws {
        try TychoNNTests.gradcheck([Input([3, 5], seed: 1, scale: 2), Input([3], values: [4, 0, 2])], "token_logprobs") { t in
            try Functional.tokenLogProbs(t[0], targets: t[1])
        }
    }
}

// MARK: dropout

@Suite struct DropoutTests {
    @Test func matchesReference() throws {
        for p: Float in [0.1, 0.5] {
            let inputs = [Input([3, 40], seed: 1)]
            var g1 = RandomGenerator(seed: 42), g2 = RandomGenerator(seed: 42)
            let fused = try evaluate(inputs) { t in try Functional.dropout(t[0].transpose(0, 1), p: p, training: true, generator: &g1) }
            let ref = try evaluate(inputs) { t in try Reference.dropout(t[0].transpose(0, 1), p: p, training: true, generator: &g2) }
            expectSame(fused, ref, tol: 0, "dropout \(p)")
            #expect(g1.next() == g2.next(), "the generator advanced differently")
        }
    }

    @Test func gradcheck() throws {
        try TychoNNTests.gradcheck([Input([3, 7], seed: 1)], "dropout") { t in
            var g = RandomGenerator(seed: 3)   // the same mask on every evaluation
            return try Functional.dropout(t[0], p: 0.3, training: true, generator: &g)
        }
    }

    @Test func identityWhenNotTraining() throws {
        let x = try Input([4], seed: 1).leaf()
        var g = RandomGenerator(seed: 1)
        #expect(try Functional.dropout(x, p: 0.5, training: false, generator: &g) === x)
        #expect(try Functional.dropout(x, p: 0, training: true, generator: &g) === x)
    }
}

// MARK: determinism

/// Every fused op, forward and backward, at sizes large enough to be split across threads.
private func determinismWorkload() throws -> [Evaluation] {
    var out: [Evaluation] = []
    out.append(try evaluate([Input([300, 96], seed: 1), Input([160, 96], seed: 2), Input([160], seed: 3)]) { t in
        try Functional.linear(t[0], weight: t[1], bias: t[2])
    })
    out.append(try evaluate([Input([700, 96], seed: 4), Input([96], seed: 5), Input([96], seed: 6)]) { t in
        try Functional.layerNorm(t[0], weight: t[1], bias: t[2], eps: 1e-5)
    })
    out.append(try evaluate([Input([700, 96], seed: 7), Input([96], seed: 8)]) { t in
        try Functional.rmsNorm(t[0], weight: t[1], eps: 1e-5)
    })
    var g = RandomGenerator(seed: 9)
    let ids = Input([600], values: (0..<600).map { _ in Float(g.nextInt(below: 50)) })
    out.append(try evaluate([ids, Input([50, 128], seed: 10)]) { t in try Functional.embedding(t[0], weight: t[1]) })
    out.append(try evaluate([Input([300, 257], seed: 11, scale: 3), ids.prefix(300, below: 257)]) { t in
        try Functional.tokenLogProbs(t[0], targets: t[1])
    })
    let (cos, sin) = try Functional.ropeTables(headDim: 32, start: 0, count: 64, theta: 10_000)
    out.append(try evaluate([Input([2, 64, 4, 32], seed: 12), Input([64, 32], values: cos.toArray(), grad: true),
                             Input([64, 32], values: sin.toArray(), grad: true)]) { t in
        try Functional.rope(t[0].transpose(1, 2), cos: t[1], sin: t[2])
    })
    out.append(try evaluate([Input([2, 96, 3 * 4 * 32], seed: 13)]) { t in try Functional.causalAttention(qkv: t[0], heads: 4) })
    for c in [AttentionCase(b: 2, h: 4, hkv: 4, tq: 96, tk: 96, d: 32, transposed: true),
              AttentionCase(b: 2, h: 8, hkv: 2, tq: 40, tk: 96, d: 32, offset: 56, mask: paddedMask(96))] {
        out.append(try evaluate(c.inputs, c.fused))
    }
    return out
}

extension Input {
    /// The first n values as ids below `bound` (for targets of a smaller vocabulary).
    func prefix(_ n: Int, below bound: Int) -> Input {
        Input([n], values: values.prefix(n).map { Float(Int($0) % bound) })
    }
}

@Suite(.serialized) struct DeterminismTests {
    @Test func sameBitsAtOneAndTwoThreads() throws {
        let saved = Parallel.threads
        defer { Parallel.threads = saved }
        Parallel.threads = 1
        let one = try determinismWorkload()
        Parallel.threads = 2
        let two = try determinismWorkload()
        // Attention heads one after another, each product on two OpenBLAS threads.
        let savedUnits = FusedAttention.parallelUnitsPerThread
        FusedAttention.parallelUnitsPerThread = .max
        defer { FusedAttention.parallelUnitsPerThread = savedUnits }
        let twoBLAS = try determinismWorkload()
        for (k, (a, b)) in zip(one, two).enumerated() { expectBitwiseEqual(a, b, "workload \(k), 1 vs 2 threads") }
        for (k, (a, b)) in zip(one, twoBLAS).enumerated() { expectBitwiseEqual(a, b, "workload \(k), 1 thread vs threaded BLAS") }
    }
}

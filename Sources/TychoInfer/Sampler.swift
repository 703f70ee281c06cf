// Sampler.swift: one token from one row of logits: Hugging Face's processors in Hugging Face's order
// (repetition penalty, then temperature, top-k, top-p, min-p), greedy or a draw from the sample's own generator,
// and the token's log-probability under the model's unprocessed distribution.
//
// Rules (the tests compare empirical frequencies against these exactly):
//   penalty      s_i = l_i / r if l_i > 0 else l_i · r, for every token i already in the prompt or the output
//   greedy       argmax_i s_i, the first index on ties (torch.argmax)
//   temperature  z_i = s_i / T
//   top_k        keep z_i >= the k-th largest z (ties at the boundary kept)
//   top_p        over the kept tokens by decreasing z (index order on ties), keep a token while the probability
//                of the tokens before it is < top_p (the first is always kept)
//   min_p        keep p_i >= min_p · max p (on what is left)
//   draw         u uniform in [0, 1); the first kept token in index order whose cumulative mass exceeds u · total
// A predicted token d (speculative sampling with a point-mass draft, Leviathan et al. 2023): accepted when
// u < p(d); otherwise the token is drawn from p with d removed. Either way the token follows p exactly.
// No full sort unless top_p needs one: greedy is one pass; top_k selects with a heap; top_p sorts only the
// tokens within a factor of the best that already hold enough mass.

import Foundation
import TychoTensor

/// Scratch buffers shared by the samples processed one after another (one per generate call).
final class SamplerScratch {
    let vocab: Int
    let scores: UnsafeMutablePointer<Float>        // processed logits [V]
    let weights: UnsafeMutablePointer<Double>      // unnormalised kept probabilities [V] (0 = dropped)
    var order: [Int] = []

    init(vocab: Int) {
        self.vocab = vocab
        scores = .allocate(capacity: vocab)
        weights = .allocate(capacity: vocab)
    }

    deinit {
        scores.deallocate()
        weights.deallocate()
    }
}

/// A sample's sampling state: its options and its own random generator.
struct Sampler {
    let options: GenerationOptions
    var generator: RandomGenerator

    /// The generator of sample `sample` of a request seeded `seed` (splitmix64 of both, so neighbouring seeds and
    /// samples give unrelated streams).
    static func generator(seed: UInt64, sample: Int) -> RandomGenerator {
        var z = seed &+ 0x9E37_79B9_7F4A_7C15 &* (UInt64(truncatingIfNeeded: sample) &+ 1)
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return RandomGenerator(seed: z ^ (z >> 31) ^ seed)
    }

    init(options: GenerationOptions, sample: Int) {
        self.options = options
        generator = Sampler.generator(seed: options.seed, sample: sample)
    }

    /// Uniform in [0, 1) with 53 bits.
    mutating func uniform() -> Double { Double(generator.next() >> 11) * 0x1p-53 }

    /// log softmax(logits)[token], in Double.
    static func logprob(_ logits: UnsafePointer<Float>, vocab: Int, token: Int) -> Double {
        let (m, sum) = RawKernels.rowMaxExpSum(logits, vocab)
        return Double(logits[token]) - (Double(m) + Foundation.log(Double(sum)))
    }

    /// The next token from a row of logits [V]. `seen` marks tokens of the prompt and output (for the penalty);
    /// `draft` is a predicted token to accept or reject. Returns the token and whether it is the accepted draft.
    mutating func choose(_ logits: UnsafePointer<Float>, seen: [Bool], draft: Int?, scratch: SamplerScratch) -> (token: Int, acceptedDraft: Bool) {
        let v = scratch.vocab
        var s = logits
        if options.repetitionPenalty != 1 {
            let r = options.repetitionPenalty, out = scratch.scores
            out.update(from: logits, count: v)
            for i in 0..<min(v, seen.count) where seen[i] { out[i] = out[i] > 0 ? out[i] / r : out[i] * r }
            s = UnsafePointer(out)
        }
        if options.temperature == 0 {
            var best = 0
            var bv = s[0]
            for i in 1..<v where s[i] > bv || (bv.isNaN && !s[i].isNaN) { best = i; bv = s[i] }
            return (best, best == draft)
        }
        let total = keptWeights(s, scratch: scratch)
        let w = scratch.weights
        if let d = draft, total > 0 {
            let u = uniform()
            if u * total < w[d] { return (d, true) }
            if total - w[d] > 0 {
                let rest = total - w[d]
                return (draw(w, v: v, target: uniform() * rest, skip: d), false)
            }
        }
        return (draw(w, v: v, target: uniform() * total, skip: nil), false)
    }

    /// The first index (skipping `skip`) whose cumulative weight exceeds `target`; the last positive one if
    /// rounding runs past the end.
    private func draw(_ w: UnsafeMutablePointer<Double>, v: Int, target: Double, skip: Int?) -> Int {
        var acc = 0.0
        var last = -1
        for i in 0..<v where w[i] > 0 && i != skip {
            acc += w[i]
            last = i
            if acc > target { return i }
        }
        return max(last, 0)
    }

    /// Fills scratch.weights with exp(z_i - max z) for kept tokens (0 for dropped) and returns their sum.
    private func keptWeights(_ s: UnsafePointer<Float>, scratch: SamplerScratch) -> Double {
        let v = scratch.vocab, w = scratch.weights
        let t = Double(options.temperature)
        var top = -Double.infinity
        for i in 0..<v where !s[i].isNaN { top = max(top, Double(s[i]) / t) }
        if top == -.infinity {   // nothing finite: uniform over the vocabulary
            for i in 0..<v { w[i] = 1 }
            return Double(v)
        }
        // top_k: the k-th largest z by a min-heap of the k best.
        var kth = -Double.infinity
        if options.topK > 0 && options.topK < v {
            kth = kthLargest(s, v: v, k: options.topK, temperature: t)
        }
        var total = 0.0
        for i in 0..<v {
            let z = Double(s[i]) / t
            let e = z >= kth && !z.isNaN ? Foundation.exp(z - top) : 0
            w[i] = e
            total += e
        }
        if options.topP < 1 { total = nucleus(w, v: v, total: total, scratch: scratch) }
        if options.minP > 0 {
            // The best token has weight 1 (exp(0)) and survives top-k and top-p.
            let floor = Double(options.minP)
            total = 0
            for i in 0..<v {
                if w[i] < floor { w[i] = 0 }
                total += w[i]
            }
        }
        return total
    }

    private func kthLargest(_ s: UnsafePointer<Float>, v: Int, k: Int, temperature t: Double) -> Double {
        var heap: [Double] = []
        heap.reserveCapacity(k)
        func siftDown(_ start: Int) {
            var i = start
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < heap.count && heap[l] < heap[m] { m = l }
                if r < heap.count && heap[r] < heap[m] { m = r }
                if m == i { return }
                heap.swapAt(i, m)
                i = m
            }
        }
        for i in 0..<v {
            let z = s[i].isNaN ? -Double.infinity : Double(s[i]) / t
            if heap.count < k {
                heap.append(z)
                var c = heap.count - 1
                while c > 0 {
                    let p = (c - 1) / 2
                    if heap[p] <= heap[c] { break }
                    heap.swapAt(p, c)
                    c = p
                }
            } else if z > heap[0] {
                heap[0] = z
                siftDown(0)
            }
        }
        return heap[0]
    }

    /// Zeroes the weights outside the nucleus; returns the kept total.
    private func nucleus(_ w: UnsafeMutablePointer<Double>, v: Int, total: Double, scratch: SamplerScratch) -> Double {
        let need = Double(options.topP) * total
        // Candidates: tokens within a factor of the best (weight 1), widened until they hold `need`. Tokens
        // outside all rank below every candidate, so once the candidates hold `need` the nucleus is among them.
        var floor = 1e-3
        var order = scratch.order
        while true {
            order.removeAll(keepingCapacity: true)
            var mass = 0.0
            for i in 0..<v where w[i] >= floor && w[i] > 0 {
                order.append(i)
                mass += w[i]
            }
            if mass >= need || floor == 0 { break }
            floor = floor > 1e-30 ? floor * 1e-3 : 0
        }
        order.sort { w[$0] > w[$1] || (w[$0] == w[$1] && $0 < $1) }
        var cut = order.count, before = 0.0
        for (k, i) in order.enumerated() {
            if k > 0 && before >= need { cut = k; break }
            before += w[i]
        }
        for i in order[cut...] { w[i] = 0 }
        scratch.order = order
        var kept = 0.0
        for i in 0..<v {
            if w[i] < floor { w[i] = 0 }
            kept += w[i]
        }
        return kept
    }
}

// FusedBenchmarks.swift: forward + backward time of each fused op against its composite reference at GPT-2
// "config B" sizes (batch 8, T 256, dim 384, 6 heads of 64, MLP 1536, vocabulary 512). Prints medians; asserts
// nothing about time. Off unless TYCHO_BENCH is set; meant for a release build:
//
//   TYCHO_BENCH=1 [TYCHO_BENCH_THREADS=n] swift test -c release -Xswiftc -enable-testing --scratch-path .build-rel --filter FusedBenchmarks

import Foundation
import Testing
@testable import TychoNN
import TychoTensor

private let benchEnabled = ProcessInfo.processInfo.environment["TYCHO_BENCH"] != nil

private func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

/// Median milliseconds of forward and of forward + backward, for each of `fs`, over fresh gradients (leaves made
/// once). Runs alternate between the functions, so that the machine's noise hits them alike.
private func time(_ inputs: [Input], runs: Int = 9, _ fs: [([Tensor]) throws -> Tensor]) throws -> [(fwd: Double, total: Double)] {
    let leaves = try inputs.map { try $0.leaf() }
    let probe = try GradMode.with(enabled: false) { try fs[0](leaves) }
    let w = try Input(probe.shape, seed: 7, grad: false).leaf()
    var fwd = [[Double]](repeating: [], count: fs.count), total = fwd
    for i in 0..<(runs + 1) {
        for (k, f) in fs.enumerated() {
            for l in leaves { l.grad = nil }
            let t0 = now()
            let out = try f(leaves)
            let t1 = now()
            if out.requiresGrad { try out.backward(w) }
            let t2 = now()
            if i > 0 { fwd[k].append(t1 - t0); total[k].append(t2 - t0) }   // the first round warms up
        }
    }
    return (0..<fs.count).map { (fwd[$0].sorted()[runs / 2] * 1000, total[$0].sorted()[runs / 2] * 1000) }
}

/// Times `fused` and `reference` on the same inputs and prints one line.
private func compareTimes(_ name: String, _ inputs: [Input], runs: Int = 9, fused: @escaping ([Tensor]) throws -> Tensor,
                          reference: @escaping ([Tensor]) throws -> Tensor) throws {
    let r = try time(inputs, runs: runs, [fused, reference])
    report(name, fused: r[0], reference: r[1])
}

private func report(_ name: String, fused: (fwd: Double, total: Double), reference: (fwd: Double, total: Double)) {
    let line = String(format: "%-26@ fused fwd %6.2f  fwd+bwd %6.2f ms | composite fwd %6.2f  fwd+bwd %6.2f ms | x%.1f",
                      name as NSString, fused.fwd, fused.total, reference.fwd, reference.total, reference.total / fused.total)
    print(line)
}

@Suite(.serialized, .enabled(if: benchEnabled)) struct FusedBenchmarks {
    @Test func configB() throws {
        let (b, t, c, nh, hd, mlp, v) = (8, 256, 384, 6, 64, 1536, 512)
        let saved = Parallel.threads
        defer { Parallel.threads = saved }
        if let n = ProcessInfo.processInfo.environment["TYCHO_BENCH_THREADS"].flatMap({ Int($0) }) { Parallel.threads = n }
        print("threads \(Parallel.threads), BLAS \(BLASSetup.coreName)")

        // linear: c_fc (Conv1D [C, 4C] with bias), lm_head (nn.Linear [V, C], no bias)
        let fc = [Input([b, t, c], seed: 1), Input([c, mlp], seed: 2, scale: 0.05), Input([mlp], seed: 3)]
        try compareTimes("linear c_fc 384->1536 +b", fc,
                         fused: { try Functional.linear($0[0], weight: $0[1], bias: $0[2], layout: .inOut) },
                         reference: { try Reference.linear($0[0], weight: $0[1], bias: $0[2], layout: .inOut) })
        let head = [Input([b, t, c], seed: 4), Input([v, c], seed: 5, scale: 0.05)]
        try compareTimes("linear lm_head 384->512", head,
                         fused: { try Functional.linear($0[0], weight: $0[1], bias: nil) },
                         reference: { try Reference.linear($0[0], weight: $0[1], bias: nil, layout: .outIn) })

        let ln = [Input([b, t, c], seed: 6), Input([c], seed: 7), Input([c], seed: 8)]
        try compareTimes("layer_norm", ln,
                         fused: { try Functional.layerNorm($0[0], weight: $0[1], bias: $0[2], eps: 1e-5) },
                         reference: { try Reference.layerNorm($0[0], weight: $0[1], bias: $0[2], eps: 1e-5) })
        try compareTimes("rms_norm", Array(ln.prefix(2)),
                         fused: { try Functional.rmsNorm($0[0], weight: $0[1], eps: 1e-5) },
                         reference: { try Reference.rmsNorm($0[0], weight: $0[1], eps: 1e-5) })

        var g = RandomGenerator(seed: 9)
        let ids = Input([b, t], values: (0..<(b * t)).map { _ in Float(g.nextInt(below: UInt64(v))) })
        try compareTimes("embedding", [ids, Input([v, c], seed: 10)],
                         fused: { try Functional.embedding($0[0], weight: $0[1]) },
                         reference: { try Reference.embedding($0[0], weight: $0[1]) })

        // attention on transposed [B, T, H, D] views, as the models make them
        let qkv = [Input([b, t, nh, hd], seed: 11), Input([b, t, nh, hd], seed: 12), Input([b, t, nh, hd], seed: 13)]
        let views = { (x: [Tensor]) in (try x[0].transpose(1, 2), try x[1].transpose(1, 2), try x[2].transpose(1, 2)) }
        try compareTimes("attention", qkv, runs: 7,
                         fused: { x in let (q, k, vv) = try views(x); return try Functional.causalAttention(q: q, k: k, v: vv) },
                         reference: { x in let (q, k, vv) = try views(x); return try Reference.attention(q: q, k: k, v: vv) })

        let (cosT, sinT) = try Functional.ropeTables(headDim: hd, start: 0, count: t, theta: 10_000)
        let rope = [qkv[0], Input([t, hd], values: cosT.toArray()), Input([t, hd], values: sinT.toArray())]
        try compareTimes("rope", rope,
                         fused: { try Functional.rope($0[0].transpose(1, 2), cos: $0[1], sin: $0[2]) },
                         reference: { try Reference.rope($0[0].transpose(1, 2), cos: $0[1], sin: $0[2]) })

        try compareTimes("token_logprobs", [Input([b, t, v], seed: 14, scale: 3), ids],
                         fused: { try Functional.tokenLogProbs($0[0], targets: $0[1]) },
                         reference: { try Reference.tokenLogProbs($0[0], targets: $0[1]) })

        var g1 = RandomGenerator(seed: 1), g2 = RandomGenerator(seed: 1)
        try compareTimes("dropout 0.1", [Input([b, t, c], seed: 15)], runs: 31,
                         fused: { try Functional.dropout($0[0], p: 0.1, training: true, generator: &g1) },
                         reference: { try Reference.dropout($0[0], p: 0.1, training: true, generator: &g2) })
    }

    /// Attention's threading and row-block choices, runs interleaved so that the machine's noise hits them alike.
    @Test func attentionVariants() throws {
        let (b, t, nh, hd) = (8, 256, 6, 64)
        let qkv = [Input([b, t, nh, hd], seed: 11), Input([b, t, nh, hd], seed: 12), Input([b, t, nh, hd], seed: 13)]
        let savedBlock = FusedAttention.rowBlock, savedUnits = FusedAttention.parallelUnitsPerThread
        defer { FusedAttention.rowBlock = savedBlock; FusedAttention.parallelUnitsPerThread = savedUnits }
        var configs: [(units: Int, block: Int)] = []
        for units in [1, Int.max] { for block in [32, 64, 128, 256] { configs.append((units, block)) } }
        let fns = configs.map { config in
            { (x: [Tensor]) throws -> Tensor in
                FusedAttention.rowBlock = config.block
                FusedAttention.parallelUnitsPerThread = config.units
                return try Functional.causalAttention(q: try x[0].transpose(1, 2), k: try x[1].transpose(1, 2), v: try x[2].transpose(1, 2))
            }
        }
        let r = try time(qkv, runs: 15, fns)
        for (config, t) in zip(configs, r) {
            print(String(format: "attention %@ block %3d: fwd %6.2f  fwd+bwd %6.2f ms",
                         config.units == 1 ? "heads on Tycho's threads    " : "heads in turn, BLAS threads" as NSString,
                         config.block, t.fwd, t.total))
        }
    }
}

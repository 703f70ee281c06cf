// CheckpointManagerTests.swift: the checkpoint manager from Swift: a GPT-2 with dropout and AdamW saved and
// restored into fresh objects continues bit for bit; retention's promises hold over random save sequences
// (the newest, the keep_last most recent, the keep_best best and every approved checkpoint survive, nothing
// else); a policy's decision rolls back to the last good checkpoint with a lower learning rate.

import Foundation
import Testing
import TychoNN
import TychoTensor
import TychoText
@testable import TychoTrain

@Suite struct CheckpointManagerTests {
    func model(seed: UInt64) throws -> GPT2 {
        var g = RandomGenerator(seed: seed)
        var c = GPT2Config(vocab: 24, ctx: 8, dim: 8, layers: 1, heads: 2)
        c.dropout = 0.1
        return try GPT2(c, using: &g)
    }

    /// One AdamW step on a fixed batch; returns the loss.
    func step(_ m: GPT2, _ opt: AdamW, _ ids: Tensor) throws -> Float {
        opt.zeroGrad()
        let loss = try m.loss(ids, mask: nil)
        try loss.backward()
        try opt.step()
        return try loss.item()
    }

    @Test func restoredObjectsContinueBitForBit() throws {
        let dir = try temporaryDirectory("ckpt")
        var g = RandomGenerator(seed: 3)
        let ids = try Tensor.randint(low: 0, high: 24, shape: [2, 8], using: &g)
        let m = try model(seed: 1)
        let opt = try AdamW(m.parameters(), AdamW.Options(lr: 1e-2))
        let sched = try LRSchedule(kind: .cosine, lr: 1e-2, warmup: 1, total: 20)
        let mgr = try CheckpointManager(CheckpointManager.Options(directory: dir))
        var losses: [Float] = []
        for k in 1...6 {
            try opt.setLearningRate(Float(sched.lr(at: k)))
            losses.append(try step(m, opt, ids))
            if k == 3 {
                try mgr.save(step: 3, objects: TrainingObjects(model: m, optimizer: opt, schedule: sched), generator: g,
                             metrics: [("loss", .double(Double(losses[2])))], dataPosition: .object([("k", .int(3))]))
            }
        }
        #expect(!m.dropoutLayers().isEmpty, "GPT-2 with dropout has dropout layers")
        let m2 = try model(seed: 99)
        let opt2 = try AdamW(m2.parameters(), AdamW.Options(lr: 5))
        let sched2 = try LRSchedule(kind: .cosine, lr: 1e-2, warmup: 1, total: 20)
        let r = try CheckpointManager(CheckpointManager.Options(directory: dir)).load(.latest, into: TrainingObjects(model: m2, optimizer: opt2, schedule: sched2))
        #expect(r.entry.step == 3 && r.dataPosition == .object([("k", .int(3))]) && r.generator?.state == g.state)
        for k in 4...6 {
            try opt2.setLearningRate(Float(sched2.lr(at: k)))
            let l = try step(m2, opt2, ids)
            #expect(l.bitPattern == losses[k - 1].bitPattern, "step \(k): \(l) vs \(losses[k - 1])")
        }
    }

    @Test func retentionKeepsWhatItPromises() throws {
        var g = RandomGenerator(seed: 11)
        let m = try model(seed: 2)
        for trial in 0..<6 {
            let dir = try temporaryDirectory("retention")
            var o = CheckpointManager.Options(directory: dir)
            o.keepLast = Int(g.nextInt(below: 3)) + 1
            o.keepBest = Int(g.nextInt(below: 3))
            o.metric = "score"
            o.mode = trial % 2 == 0 ? .max : .min
            let mgr = try CheckpointManager(o)
            var scores: [Int: Double] = [:]
            var approved = Set<Int>()
            for s in 1...14 {
                let v = Double(g.nextInt(below: 1000))
                scores[s] = v
                try mgr.save(step: s, objects: TrainingObjects(model: m), generator: nil, metrics: [("score", .double(v))], dataPosition: .null)
                if g.nextInt(below: 5) == 0 {
                    try mgr.approve(step: s, by: "t", note: "")
                    approved.insert(s)
                }
                let kept = Set(mgr.entries.map(\.step))
                let best = scores.keys.sorted { a, b in
                    let (x, y) = (scores[a]!, scores[b]!)
                    return x != y ? (o.mode == .max ? x > y : x < y) : a > b
                }.prefix(o.keepBest)
                let expected = Set(((s - o.keepLast! + 1)...s).filter { $0 >= 1 }).union(best).union(approved)
                #expect(kept == expected, "trial \(trial) step \(s): kept \(kept.sorted()) expected \(expected.sorted())")
                let folders = Set(try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasPrefix("checkpoint-") })
                #expect(folders == Set(expected.map { "checkpoint-\($0)" }), "the folders on disk match the index")
                // the survivors of retention, removed from `scores` when gone for good
                for k in scores.keys where !kept.contains(k) { scores[k] = nil }
            }
        }
    }

    @Test func policyDecisionRollsBackToTheLastGoodCheckpoint() throws {
        let dir = try temporaryDirectory("policy")
        let m = try model(seed: 5)
        let opt = try AdamW(m.parameters(), AdamW.Options(lr: 1e-2))
        let sched = try LRSchedule(kind: .constant, lr: 1e-2)
        var o = CheckpointManager.Options(directory: dir)
        o.metric = "eval_loss"
        o.mode = .min
        let mgr = try CheckpointManager(o)
        let policy = try RollbackPolicy(regression: .init(metric: "eval_loss", tolerance: 0.05), lrFactor: 0.5, maxRollbacks: 1)
        let objects = TrainingObjects(model: m, optimizer: opt, schedule: sched)
        for (s, v) in [(10, 1.0), (20, 0.8), (30, 0.83)] {
            #expect(policy.check(step: s, loss: 1, metrics: [("eval_loss", v)], batchRows: []) == nil)
            try mgr.save(step: s, objects: objects, generator: nil, metrics: [("eval_loss", .double(v))], dataPosition: .int(s))
        }
        let d = try #require(policy.check(step: 40, loss: 1, metrics: [("eval_loss", 0.9)], batchRows: [1, 2]))
        #expect(d.kind == .regression && d.best == 0.8)
        try mgr.save(step: 40, objects: objects, generator: nil, metrics: [("eval_loss", .double(0.9))], dataPosition: .int(40))
        let r = try mgr.rollback(decision: d, step: nil, objects: objects, lrFactor: nil)
        #expect(r.entry.step == 30, "the newest checkpoint within the tolerance of the best")
        #expect(r.dataPosition == .int(30))
        #expect(sched.scale == 0.5 && opt.learningRate() == Float(0.005))
        #expect(mgr.latest?.step == 30)
        #expect(mgr.entries.first { $0.step == 40 }?.superseded == true, "the regressed checkpoint left the line (kept as one of the 3 best)")
        // A second rollback goes past max_rollbacks = 1.
        #expect(throws: RecordError.self) { try mgr.rollback(decision: d, step: nil, objects: objects, lrFactor: nil) }
    }
}

// LRScheduleTests.swift: the schedule formulas (LRSchedule.swift) at their landmarks, transformers' lambdas
// transcribed for min_lr = 0, and refused arguments. (Tests/lua/optim.lua compares with transformers' values.)

import Foundation
import Testing
@testable import TychoTrain

@Suite struct LRScheduleTests {
    /// transformers' _get_cosine_schedule_with_warmup_lr_lambda times the base lr (num_cycles 0.5).
    func transformersCosine(_ k: Int, lr: Double, warmup: Int, total: Int) -> Double {
        if k < warmup { return lr * (Double(k) / Double(max(1, warmup))) }
        let progress = Double(k - warmup) / Double(max(1, total - warmup))
        let factor = 0.5 * (1.0 + cos(Double.pi * 0.5 * 2.0 * progress))
        return lr * max(0, factor * (1 - 0) + 0)
    }

    /// transformers' _get_linear_schedule_with_warmup_lr_lambda times the base lr.
    func transformersLinear(_ k: Int, lr: Double, warmup: Int, total: Int) -> Double {
        if k < warmup { return lr * (Double(k) / Double(max(1, warmup))) }
        return lr * max(0.0, Double(total - k) / Double(max(1, total - warmup)))
    }

    @Test func cosineAndLinearEqualTransformersUpToTotal() throws {
        for (warmup, total) in [(0, 1), (10, 100), (7, 7), (3, 50)] {
            let c = try LRSchedule(kind: .cosine, lr: 3e-4, warmup: warmup, total: total)
            let l = try LRSchedule(kind: .linear, lr: 3e-4, warmup: warmup, total: total)
            for k in 0...total {
                #expect(c.lr(at: k) == transformersCosine(k, lr: 3e-4, warmup: warmup, total: total), "cosine \(warmup) \(total) at \(k)")
                #expect(l.lr(at: k) == transformersLinear(k, lr: 3e-4, warmup: warmup, total: total), "linear \(warmup) \(total) at \(k)")
            }
        }
    }

    @Test func landmarks() throws {
        let s = try LRSchedule(kind: .cosine, lr: 1, warmup: 4, total: 14, minLR: 0.1)
        #expect(s.lr(at: 0) == 0 && s.lr(at: 2) == 0.5 && s.lr(at: 4) == 1)
        #expect(Swift.abs(s.lr(at: 9) - 0.55) < 1e-15)
        #expect(s.lr(at: 14) == 0.1 && s.lr(at: 15) == 0.1 && s.lr(at: 10_000) == 0.1)
        #expect(s.lr(at: -5) == 0)
        let c = try LRSchedule(kind: .constant, lr: 0.3, warmup: 3)
        #expect(c.lr(at: 1) == 0.3 * (1.0 / 3.0) && c.lr(at: 3) == 0.3 && c.lr(at: 99) == 0.3)
        let l = try LRSchedule(kind: .linear, lr: 2, warmup: 0, total: 4, minLR: 1)
        #expect(l.lr(at: 0) == 2 && l.lr(at: 2) == 1.5 && l.lr(at: 4) == 1 && l.lr(at: 8) == 1)
        #expect(s.description == "Schedule(cosine, lr=1, warmup=4, total=14, min_lr=0.1)")
        #expect(c.description == "Schedule(constant, lr=0.3, warmup=3)")
    }

    @Test func argumentsAreChecked() throws {
        expectError("lr must be a non-negative number") { try LRSchedule(kind: .cosine, lr: -1, total: 5) }
        expectError("lr must be a non-negative number") { try LRSchedule(kind: .cosine, lr: .nan, total: 5) }
        expectError("warmup must be a non-negative integer, got -1") { try LRSchedule(kind: .constant, lr: 1, warmup: -1) }
        expectError("total must be the step at which the linear decay ends") { try LRSchedule(kind: .linear, lr: 1) }
        expectError("total must be an integer >= 1 and >= warmup (5), got 4") { try LRSchedule(kind: .cosine, lr: 1, warmup: 5, total: 4) }
        expectError("min_lr must be a number in [0, lr], got 2") { try LRSchedule(kind: .cosine, lr: 1, total: 4, minLR: 2) }
        expectError("min_lr must be 0 for a constant schedule") { try LRSchedule(kind: .constant, lr: 1, minLR: 0.5) }
    }
}

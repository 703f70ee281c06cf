// LRSchedule.swift: learning rate as a function of the step: linear warmup, then cosine or linear decay, or
// constant, as transformers' get_cosine_schedule_with_warmup / get_linear_schedule_with_warmup /
// get_constant_schedule_with_warmup.
//
// With k the step (1-based: k = 1 is the first optimizer step; k = 0 is allowed and gives the warmup's start),
// W = warmup and T = total:
//
//   k < W:                 lr * (k / max(1, W))
//   constant, k >= W:      lr
//   linear,   W <= k:      min_lr + (lr - min_lr) * max(0, (T - k) / max(1, T - W))
//   cosine,   W <= k <= T: min_lr + (lr - min_lr) * 0.5 * (1 + cos(pi * (k - W) / max(1, T - W)))
//   cosine,   k > T:       min_lr
//
// so the warmup reaches lr at step W and the decay reaches min_lr at step T, held after (when T = W there is no
// decay: cosine gives lr at step T, linear min_lr, as transformers' formulas do). Step indexing relative to
// transformers: lr_at(k) equals base_lr * lr_lambda(k), the learning rate its LambdaLR holds after k calls to
// scheduler.step(). The HF Trainer's k-th optimizer step runs with lr_lambda(k - 1) (its first step uses lr 0 when
// warmup > 0), and transformers 5.24 logs that rate as learning_rate at global_step k (it reads it after
// optimizer.step() and before scheduler.step(); Tests/Fixtures/dpo_train's warmup case logs 0, 1e-3, 5e-4); to
// replay such a run, apply lr_at(k - 1) before step k. With min_lr = 0 the values equal transformers' bit for bit up to T; past T,
// transformers' cosine rises again (cos beyond pi), Tycho's stays at min_lr. With min_lr > 0 the cosine matches
// get_cosine_with_min_lr_schedule_with_warmup up to rounding.

import Foundation

public final class LRSchedule: CustomStringConvertible {
    public enum Kind: String, CaseIterable {
        case cosine, linear, constant
    }

    public let kind: Kind
    public let lr: Double
    public let warmup: Int
    public let total: Int?
    public let minLR: Double
    /// A factor on every rate the schedule gives (1 unless a rollback lowered it: CheckpointManager multiplies it
    /// by the rollback policy's lr_factor). Set it with `setScale`.
    public private(set) var scale: Double = 1

    /// Sets `scale`, a finite positive number.
    public func setScale(_ s: Double) throws {
        guard s.isFinite, s > 0 else { throw InvalidOption("scale", "a positive number", got: "\(s)") }
        scale = s
    }

    /// - Parameters:
    ///   - kind: cosine, linear or constant (after the warmup).
    ///   - lr: the peak learning rate, finite and >= 0.
    ///   - warmup: steps of linear warmup from 0, >= 0.
    ///   - total: the step at which the decay reaches minLR; required for cosine and linear, >= warmup and >= 1.
    ///   - minLR: the final learning rate of cosine and linear, in [0, lr]; must be 0 for constant.
    public init(kind: Kind, lr: Double, warmup: Int = 0, total: Int? = nil, minLR: Double = 0) throws {
        guard lr.isFinite, lr >= 0 else { throw InvalidOption("lr", "a non-negative number", got: "\(lr)") }
        guard warmup >= 0 else { throw InvalidOption("warmup", "a non-negative integer", got: "\(warmup)") }
        if let total {
            guard total >= 1, total >= warmup else {
                throw InvalidOption("total", "an integer >= 1 and >= warmup (\(warmup))", got: "\(total)")
            }
        } else if kind != .constant {
            throw InvalidOption("total", "the step at which the \(kind.rawValue) decay ends (an integer)", got: "nil")
        }
        guard minLR.isFinite, minLR >= 0, minLR <= lr else {
            throw InvalidOption("min_lr", "a number in [0, lr]", got: "\(minLR)")
        }
        if kind == .constant && minLR != 0 {
            throw InvalidOption("min_lr", "0 for a constant schedule", got: "\(minLR)")
        }
        self.kind = kind
        self.lr = lr
        self.warmup = warmup
        self.total = total
        self.minLR = minLR
    }

    /// The learning rate at step `step` (steps before 0 count as 0), times `scale`.
    public func lr(at step: Int) -> Double {
        let base = baseLR(at: step)
        return scale == 1 ? base : base * scale
    }

    /// The rate of the formulas above, without `scale`.
    public func baseLR(at step: Int) -> Double {
        let k = Swift.max(step, 0)
        if k < warmup { return lr * (Double(k) / Double(Swift.max(1, warmup))) }
        let t = total ?? k
        let span = Double(Swift.max(1, t - warmup))
        let factor: Double
        switch kind {
        case .constant:
            return lr
        case .linear:
            factor = Swift.max(0.0, Double(t - k) / span)
        case .cosine:
            factor = k > t ? 0 : 0.5 * (1.0 + cos(Double.pi * (Double(k - warmup) / span)))
        }
        return minLR + (lr - minLR) * factor
    }

    /// `Schedule(cosine, lr=0.001, warmup=100, total=1000, min_lr=0)`.
    public var description: String {
        func f(_ v: Double) -> String { v == v.rounded() && Swift.abs(v) < 1e15 ? String(Int(v)) : "\(v)" }
        var s = "Schedule(\(kind.rawValue), lr=\(f(lr)), warmup=\(warmup)"
        if let total { s += ", total=\(total)" }
        if kind != .constant { s += ", min_lr=\(f(minLR))" }
        if scale != 1 { s += ", scale=\(f(scale))" }
        return s + ")"
    }
}

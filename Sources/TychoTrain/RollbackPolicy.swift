// RollbackPolicy.swift: when a training run should go back to its last good checkpoint.
//
// A trainer consults the policy after every step (and after every eval) with the loss, the metrics it has and
// the data rows of the batch. The policy answers ok, or rollback with a cause:
//   - nonfinite:  the loss or any metric is NaN or infinite (on_nonfinite, on by default);
//   - regression: the watched eval metric is worse than the best value seen so far by more than `tolerance`
//                 (absolute; mode "max" means higher is better, "min" lower).
// The policy only decides; CheckpointManager.rollback acts on the decision (restores the checkpoint, applies
// lr_factor, records the event, and refuses once max_rollbacks rollbacks were made).
// What it refuses: lr_factor outside (0, 1], a negative tolerance or max_rollbacks.

public enum RollbackTrigger: String {
    case nonfinite, regression
}

/// A policy's answer that asks for a rollback: what went wrong, where, and how to recover.
public struct RollbackDecision {
    public var kind: RollbackTrigger
    /// A sentence for people: `loss is nan at step 17`.
    public var cause: String
    public var step: Int
    /// The data rows of the batch that triggered it.
    public var batchRows: [Int]
    public var metric: String?
    public var value: Double?
    public var best: Double?
    public var tolerance: Double
    public var mode: CheckpointManager.Mode
    public var lrFactor: Double
    public var maxRollbacks: Int

    public init(kind: RollbackTrigger, cause: String, step: Int, batchRows: [Int], metric: String? = nil, value: Double? = nil,
                best: Double? = nil, tolerance: Double = 0, mode: CheckpointManager.Mode = .max, lrFactor: Double, maxRollbacks: Int) {
        self.kind = kind
        self.cause = cause
        self.step = step
        self.batchRows = batchRows
        self.metric = metric
        self.value = value
        self.best = best
        self.tolerance = tolerance
        self.mode = mode
        self.lrFactor = lrFactor
        self.maxRollbacks = maxRollbacks
    }
}

public final class RollbackPolicy: CustomStringConvertible {
    public struct Regression {
        public var metric: String
        public var tolerance: Double
        public var mode: CheckpointManager.Mode

        public init(metric: String, tolerance: Double = 0, mode: CheckpointManager.Mode? = nil) {
            self.metric = metric
            self.tolerance = tolerance
            self.mode = mode ?? Regression.defaultMode(metric)
        }

        /// Losses and perplexities are better low; everything else (accuracies, rewards, win rates) high.
        public static func defaultMode(_ metric: String) -> CheckpointManager.Mode {
            let m = metric.lowercased()
            return m.contains("loss") || m.contains("perplexity") || m.hasSuffix("ppl") ? .min : .max
        }
    }

    public let onNonFinite: Bool
    public let regression: Regression?
    public let lrFactor: Double
    public let maxRollbacks: Int
    /// The best value of the regression metric seen so far.
    public private(set) var best: Double?
    public private(set) var bestStep: Int?

    public init(onNonFinite: Bool = true, regression: Regression? = nil, lrFactor: Double = 0.5, maxRollbacks: Int = 3) throws {
        guard lrFactor.isFinite, lrFactor > 0, lrFactor <= 1 else {
            throw RecordError("lr_factor must be a number in (0, 1], got \(lrFactor)")
        }
        guard maxRollbacks >= 0 else { throw RecordError("max_rollbacks must be a non-negative integer, got \(maxRollbacks)") }
        if let r = regression {
            guard !r.metric.isEmpty else { throw RecordError("on_regression.metric must be a non-empty name") }
            guard r.tolerance.isFinite, r.tolerance >= 0 else {
                throw RecordError("on_regression.tolerance must be a non-negative number, got \(r.tolerance)")
            }
        }
        self.onNonFinite = onNonFinite
        self.regression = regression
        self.lrFactor = lrFactor
        self.maxRollbacks = maxRollbacks
    }

    static func show(_ v: Double) -> String {
        if v.isNaN { return "nan" }
        if v.isInfinite { return v > 0 ? "inf" : "-inf" }
        return "\(v)"
    }

    /// The decision for one step: nil when all is well, else the rollback to make.
    public func check(step: Int, loss: Double?, metrics: [(String, Double)], batchRows: [Int]) -> RollbackDecision? {
        func decision(_ kind: RollbackTrigger, _ cause: String, metric: String? = nil, value: Double? = nil) -> RollbackDecision {
            RollbackDecision(kind: kind, cause: cause, step: step, batchRows: batchRows, metric: metric, value: value, best: best,
                             tolerance: regression?.tolerance ?? 0, mode: regression?.mode ?? .max, lrFactor: lrFactor,
                             maxRollbacks: maxRollbacks)
        }
        if onNonFinite {
            if let loss, !loss.isFinite { return decision(.nonfinite, "loss is \(RollbackPolicy.show(loss)) at step \(step)", metric: "loss", value: loss) }
            for (name, v) in metrics where !v.isFinite {
                return decision(.nonfinite, "\(name) is \(RollbackPolicy.show(v)) at step \(step)", metric: name, value: v)
            }
        }
        if let r = regression, let v = metrics.last(where: { $0.0 == r.metric })?.1, v.isFinite {
            if let b = best {
                let worse = r.mode == .max ? v < b - r.tolerance : v > b + r.tolerance
                if worse {
                    return decision(.regression, "\(r.metric) regressed to \(v) at step \(step) (best \(b) at step \(bestStep ?? 0), tolerance \(r.tolerance))",
                                    metric: r.metric, value: v)
                }
            }
            if best == nil || (r.mode == .max ? v > best! : v < best!) {
                best = v
                bestStep = step
            }
        }
        return nil
    }

    /// Sets the best value seen (a resumed run continues with the best of its checkpoints).
    public func setBest(_ value: Double?, step: Int?) {
        best = value
        bestStep = step
    }

    public var description: String {
        var parts = ["on_nonfinite=\(onNonFinite)"]
        if let r = regression { parts.append("on_regression={metric=\(r.metric), tolerance=\(r.tolerance), mode=\(r.mode.rawValue)}") }
        parts.append("lr_factor=\(lrFactor)")
        parts.append("max_rollbacks=\(maxRollbacks)")
        return "RollbackPolicy(\(parts.joined(separator: ", ")))"
    }
}

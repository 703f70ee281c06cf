// TrainingProgress.swift: what a trainer shows while it runs. On a terminal, one line redrawn in place:
//
//   step  37/120 [#########...............] loss 0.5731  acc 0.781  margin 0.412 | 4.2 step/s  ETA 0:19
//
// elsewhere (a pipe, a log file, a notebook), a plain line every `every` steps and after the last:
//
//   step 40/120  loss 0.5731  rewards/accuracies 0.781  rewards/margins 0.412  grad_norm 1.234  lr 1.00e-04  4.2 step/s  ETA 0:19
//
// Notes (evals, rollbacks, resumes) go on lines of their own; on a terminal the bar is cleared first and redrawn
// after. The rate counts the steps since `begin` (or the last restart) over the wall time since then.

import Foundation

public final class TrainingProgress {
    public enum Style: String, CaseIterable {
        case bar, lines
    }

    public let style: Style
    /// Steps between lines in the lines style (nil: about 20 lines in all).
    public let every: Int?
    /// Where the text goes (a binding points it at the caller's output).
    public var write: (String) -> Void
    var total = 0
    var startStep = 0
    var startTime = Date()
    var barShown = false
    var lastBar = ""

    public init(style: Style, every: Int? = nil, write: @escaping (String) -> Void) {
        self.style = style
        self.every = every.map { Swift.max(1, $0) }
        self.write = write
    }

    /// The metrics the bar shows, in order: name in the metrics, label on the bar (DPO's by default).
    public var barKeys = [("loss", "loss"), ("rewards/accuracies", "acc"), ("rewards/margins", "margin")]
    /// The metrics a progress line shows, in order.
    public var lineKeys = ["loss", "rewards/accuracies", "rewards/margins", "grad_norm"]
    public static let evalKeys = ["eval_loss", "eval_rewards/accuracies", "eval_rewards/margins"]

    public func begin(total: Int, at step: Int) {
        self.total = total
        restart(at: step)
    }

    /// Starts the rate over (after a rollback moved the step back).
    public func restart(at step: Int) {
        startStep = step
        startTime = Date()
    }

    public func update(step: Int, metrics: [(String, Double)]) {
        let rate = self.rate(step)
        switch style {
        case .bar:
            let width = 24
            let filled = total > 0 ? Swift.min(width, step * width / total) : width
            let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
            let digits = String(total).count
            var s = "step \(TrainingProgress.pad(String(step), digits))/\(total) [\(bar)]"
            for (key, label) in barKeys {
                if let v = metrics.last(where: { $0.0 == key })?.1 { s += " \(label) \(TrainingProgress.format(v))" }
            }
            s += " | " + TrainingProgress.speed(rate, remaining: total - step)
            lastBar = s
            write("\r\u{1B}[2K" + s)
            barShown = true
        case .lines:
            let n = every ?? Swift.max(1, total / 20)
            guard step % n == 0 || step == total else { return }
            var s = "step \(step)/\(total)  " + TrainingProgress.describe(metrics, keys: lineKeys)
            if let lr = metrics.last(where: { $0.0 == "learning_rate" })?.1 { s += "  lr " + String(format: "%.2e", lr) }
            s += "  " + TrainingProgress.speed(rate, remaining: total - step)
            write(s + "\n")
        }
    }

    /// A line of its own (an eval, a rollback).
    public func note(_ text: String) {
        if style == .bar && barShown {
            write("\r\u{1B}[2K" + text + "\n" + lastBar)
        } else {
            write(text + "\n")
        }
    }

    public func end() {
        if style == .bar && barShown { write("\n") }
        barShown = false
    }

    func rate(_ step: Int) -> Double {
        let dt = Date().timeIntervalSince(startTime)
        return dt > 0 ? Double(step - startStep) / dt : 0
    }

    static func speed(_ rate: Double, remaining: Int) -> String {
        guard rate > 0, rate.isFinite else { return "-- step/s" }
        let r = rate >= 10 ? String(format: "%.0f", rate) : rate >= 1 ? String(format: "%.1f", rate) : String(format: "%.2f", rate)
        return "\(r) step/s  ETA \(clock(Double(Swift.max(0, remaining)) / rate))"
    }

    /// m:ss or h:mm:ss.
    static func clock(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
    }

    static func pad(_ s: String, _ width: Int) -> String { String(repeating: " ", count: Swift.max(0, width - s.count)) + s }

    /// Four significant digits, or an exponent for very small and very large values.
    public static func format(_ v: Double) -> String {
        if v.isNaN { return "nan" }
        if v.isInfinite { return v > 0 ? "inf" : "-inf" }
        let a = Swift.abs(v)
        if a != 0 && (a < 1e-3 || a >= 1e5) { return String(format: "%.3e", v) }
        return String(format: "%.4f", v)
    }

    /// "name value  name value" for the keys present.
    public static func describe(_ metrics: [(String, Double)], keys: [String]) -> String {
        keys.compactMap { k in metrics.last(where: { $0.0 == k }).map { "\(k) \(format($0.1))" } }.joined(separator: "  ")
    }
}

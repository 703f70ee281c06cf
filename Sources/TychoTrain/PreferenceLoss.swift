// PreferenceLoss.swift: what the preference losses share (DPOLoss, CPOLoss, ORPOLoss, KTOLoss): their error type,
// the ordered statistics they report under TRL's metric names, and the checks on their per-sequence inputs.
//
// Shape vocabulary: B = pairs in the batch (or examples, for the unpaired KTO). Every input is a vector (B) of
// per-sequence log-probabilities, `sum over completion tokens of log p(token)` (prompt and padding masked), or of
// completion token counts. The losses are compositions of TychoTensor's recorded ops, so their gradients come from
// the autograd engine; nothing here is hand-differentiated.

import Foundation
import TychoTensor

/// A failure of a loss call (sizes that do not match, a missing input), with a message meant for the user.
public struct LossError: Error, CustomStringConvertible, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Scalar statistics under TRL's metric names (`rewards/chosen`, `logps/rejected`, ...), in the order computed.
public struct LossStats: CustomStringConvertible {
    public private(set) var entries: [(name: String, value: Double)] = []

    public init() {}

    public subscript(name: String) -> Double? { entries.first { $0.name == name }?.value }

    public var names: [String] { entries.map(\.name) }

    mutating func set(_ name: String, _ value: Double) {
        if let i = entries.firstIndex(where: { $0.name == name }) { entries[i].value = value } else { entries.append((name, value)) }
    }

    /// `rewards/chosen=0.1, ...`
    public var description: String { entries.map { "\($0.name)=\($0.value)" }.joined(separator: ", ") }
}

/// Checks on the inputs every preference loss takes.
enum PreferenceInputs {
    /// Throws unless `t` is a vector (B) with `count` elements (any count >= 1 when nil); returns its count.
    /// `other` names the input whose count is expected, for the message.
    @discardableResult
    static func vector(_ t: Tensor, _ name: String, count: Int? = nil, other: String = "") throws -> Int {
        guard t.rank == 1 else {
            throw LossError("\(name) must be a vector of per-sequence log-probabilities (size B), got size \(Tensor.describe(t.shape))")
        }
        if let count, t.count != count {
            throw LossError("\(name) has \(t.count) element\(t.count == 1 ? "" : "s") but \(other) has \(count)")
        }
        guard t.count > 0 else { throw LossError("\(name) is empty: a batch needs at least one sequence") }
        return t.count
    }

    /// Checks completion token counts: a vector (B) of finite integers >= 0. Returns them as a detached tensor.
    static func lengths(_ t: Tensor, _ name: String, count: Int, other: String) throws -> Tensor {
        guard t.rank == 1, t.count == count else {
            throw LossError("\(name) must be a vector of \(count) completion token counts (one per sequence of \(other)), got size \(Tensor.describe(t.shape))")
        }
        for (i, v) in t.toArray().enumerated() where !(v.isFinite && v >= 0 && v == v.rounded()) {
            throw LossError("\(name) must hold token counts (integers >= 0), got \(v) at position \(i + 1)")
        }
        return t.detach()
    }

    /// The lengths `name` when given, else an error saying which loss needs them.
    static func required(_ t: Tensor?, _ name: String, for what: String) throws -> Tensor {
        guard let t else { throw LossError("\(what) needs \(name) (completion token counts per sequence)") }
        return t
    }

    /// The mean of a tensor as TRL logs it: the float32 mean, widened.
    static func mean(_ t: Tensor) throws -> Double {
        Double(try GradMode.with(enabled: false) { try t.mean() }.item())
    }

    /// The fraction of positions where `a > b` (TRL's `(a > b).float().mean()`).
    static func fractionGreater(_ a: Tensor, _ b: Tensor) throws -> Double {
        try mean(try a.compared(.gt, b))
    }

    /// `t` sorted ascending along its only dimension, as a differentiable gather (the gradient goes back to the
    /// position each value came from). NaN sorts last, as in torch.sort.
    static func sortedAscending(_ t: Tensor) throws -> Tensor {
        let v = t.toArray()
        let order = v.indices.sorted { i, j in
            let a = v[i], b = v[j]
            if a.isNaN || b.isNaN { return !a.isNaN && b.isNaN }
            return a < b || (a == b && i < j)
        }
        return try t.indexSelect(0, index: try Tensor(shape: [order.count], values: order.map { Float($0) }))
    }

    /// Throws unless `v` is finite and `valid(v)`, with InvalidOption's wording: `<field> must be <requirement>`.
    static func check(_ field: String, _ v: Double, _ requirement: String, _ valid: (Double) -> Bool = { _ in true }) throws {
        guard v.isFinite, valid(v) else { throw InvalidOption(field, requirement, got: format(v)) }
    }

    /// A number as people write it: `0.1`, `1e-08`, `2`, `inf`, `nan`.
    static func format(_ v: Double) -> String {
        if v.isNaN { return "nan" }
        if v.isInfinite { return v > 0 ? "inf" : "-inf" }
        if v == v.rounded(), Swift.abs(v) < 1e15 { return String(Int(v)) }
        return "\(v)"
    }
}

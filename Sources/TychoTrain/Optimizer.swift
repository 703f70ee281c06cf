// Optimizer.swift: what every optimizer shares: parameter groups, the step loop, zero_grad, learning rates, and
// the state (a flat list of named tensors) that saves and restores an optimizer exactly.
//
// Semantics are PyTorch's (torch.optim): a parameter whose grad is nil is skipped by `step`; `zeroGrad` sets grads
// to nil (set_to_none); per-parameter state appears the first time a parameter has a grad. Parameters must be
// contiguous leaf tensors that require grad, each given once, no two sharing memory. Hyperparameters are float32
// values, like every number in the core, so saving and loading the state restores them bit for bit and a resumed
// optimizer continues exactly as one that never stopped. What this file refuses: sparse or non-float grads,
// closures, amsgrad/maximize/foreach switches (one fused loop per tensor is always used).
//
// Parameters are numbered from 1 across all groups in state names and messages, as Lua lists are.
//
// State names (all values are float32 tensors, so the table saves as safetensors directly):
//   step                      0-dim: how many times `step()` ran
//   group<g>.params           1-D: the (1-based) numbers of the parameters in group g
//   group<g>.<hyperparameter> 0-dim: lr, weight_decay, ... of group g (booleans as 0/1)
//   <buffer>.<i>              the per-parameter state of parameter i (exp_avg.3, momentum_buffer.1, step.2 ...)

import Foundation
import TychoTensor

/// A failure of an optimizer call, with a message meant for the user.
public struct OptimizerError: Error, CustomStringConvertible, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// A hyperparameter outside its allowed range: `<field> must be <requirement>, got <value>`.
public struct InvalidOption: Error, CustomStringConvertible, Equatable {
    public let field: String
    public let requirement: String
    public let value: String
    public init(_ field: String, _ requirement: String, got value: String) {
        self.field = field
        self.requirement = requirement
        self.value = value
    }
    public var description: String { "\(field) must be \(requirement), got \(value)" }

    /// Throws unless `v` is finite and at least `low` (and at most `high`, when given).
    static func check(_ field: String, _ v: Float, atLeast low: Float, atMost high: Float? = nil,
                      openLow: Bool = false, openHigh: Bool = false) throws {
        let lowOK = openLow ? v > low : v >= low
        let highOK = high.map { openHigh ? v < $0 : v <= $0 } ?? true
        guard v.isFinite, lowOK, highOK else {
            let range: String
            if let high {
                range = "a number in \(openLow ? "(" : "[")\(formatValue(low)), \(formatValue(high))\(openHigh ? ")" : "]")"
            } else {
                range = openLow ? "a positive number" : (low == 0 ? "a non-negative number" : "a number >= \(formatValue(low))")
            }
            throw InvalidOption(field, range, got: formatValue(v))
        }
    }
}

/// A float32 hyperparameter as people write it: `0.001`, `1e-08`, `0` (not `0.0`).
func formatValue(_ v: Float) -> String {
    if v.isFinite, v == v.rounded(), Swift.abs(v) < 1e7 { return String(Int(v)) }
    return v.description
}

/// The shared machinery of SGD and AdamW. Subclasses provide the update and their state buffers.
public class Optimizer: CustomStringConvertible {
    /// "SGD" or "AdamW".
    public let name: String
    /// Every parameter, group after group.
    public let params: [Tensor]
    /// For each group, the indices into `params` of its parameters.
    public let groups: [Range<Int>]
    /// How many times `step()` ran.
    public internal(set) var steps = 0
    /// Bytes of state the last `step()` allocated (for telling a garbage collector about them).
    public private(set) var allocatedBytes = 0

    init(name: String, groups paramGroups: [[Tensor]]) throws {
        self.name = name
        var all: [Tensor] = []
        var ranges: [Range<Int>] = []
        for g in paramGroups {
            ranges.append(all.count..<(all.count + g.count))
            all += g
        }
        try Optimizer.checkParameters(all, requireLeaves: true)
        guard !all.isEmpty else { throw OptimizerError("got an empty parameter list") }
        for (g, r) in ranges.enumerated() where r.isEmpty {
            throw OptimizerError("parameter group \(g + 1) has no parameters")
        }
        self.params = all
        self.groups = ranges
    }

    /// Checks that `params` are distinct tensors not sharing memory, and (for optimizers) contiguous leaves that
    /// require grad.
    public static func checkParameters(_ params: [Tensor], requireLeaves: Bool) throws {
        var seen: [ObjectIdentifier: Int] = [:]
        var storages: [ObjectIdentifier: Int] = [:]
        for (i, p) in params.enumerated() {
            if let j = seen.updateValue(i, forKey: ObjectIdentifier(p)) {
                throw OptimizerError("parameter \(i + 1) is the same tensor as parameter \(j + 1); give each parameter once")
            }
            guard requireLeaves else { continue }
            guard p.requiresGrad else {
                throw OptimizerError("parameter \(i + 1) does not require grad; only tensors that require grad can be optimized (requires_grad(true))")
            }
            guard p.isLeaf else {
                throw OptimizerError("parameter \(i + 1) is not a leaf (it was computed by a recorded operation); optimize the tensor it came from")
            }
            guard p.isContiguous else {
                throw OptimizerError("parameter \(i + 1) is not contiguous (size \(Tensor.describe(p.shape)), strides \(p.strides.map(String.init).joined(separator: ","))); make it contiguous before it requires grad")
            }
            if p.count > 0, let j = storages.updateValue(i, forKey: ObjectIdentifier(p.storage)) {
                throw OptimizerError("parameters \(j + 1) and \(i + 1) share memory; an optimizer would update it twice")
            }
        }
    }

    // MARK: the step

    /// Updates every parameter that has a grad, in place (bumping its storage version so that autograd refuses
    /// graphs that saved the old values). Grads are checked before anything is written, so a failed step changes
    /// nothing.
    public func step() throws {
        var work: [(index: Int, grad: Tensor)] = []
        for (i, p) in params.enumerated() {
            guard let g = p.grad else { continue }
            guard g.shape == p.shape else {
                throw OptimizerError("the grad of parameter \(i + 1) has size \(Tensor.describe(g.shape)) but the parameter has size \(Tensor.describe(p.shape))")
            }
            work.append((i, try GradMode.with(enabled: false) { try g.contiguous() }))
        }
        allocatedBytes = 0
        for (i, _) in work { allocatedBytes += try prepareState(i) }
        for (i, g) in work {
            update(i, grad: g)
            params[i].storage.version &+= 1
        }
        steps += 1
    }

    /// Sets every parameter's grad to nil (PyTorch's zero_grad(set_to_none=True)).
    public func zeroGrad() {
        for p in params { p.grad = nil }
    }

    /// The group of parameter `i` (0-based).
    func group(of i: Int) -> Int {
        groups.firstIndex { $0.contains(i) } ?? 0
    }

    // MARK: subclass hooks

    /// Allocates the state of parameter `i` if it has none yet, returning the bytes allocated; called for every
    /// parameter with a grad before any update.
    func prepareState(_ i: Int) throws -> Int { 0 }

    /// The update of parameter `i` with its contiguous grad; cannot fail.
    func update(_ i: Int, grad: Tensor) {}

    /// The hyperparameters of group `g` (0-based), in the order they print, without `params`.
    func hyperparameters(_ g: Int) -> [(name: String, value: Float)] { [] }

    /// Validates `values` (one per name of `hyperparameters`) as the options of group `g`, returning a closure
    /// that installs them, so that nothing changes until the whole state is known to be good.
    func prepareHyperparameters(_ g: Int, _ values: [String: Float]) throws -> () -> Void { {} }

    /// Names of per-parameter state entries with the shape each must have for parameter `i`.
    func bufferShapes(_ i: Int) -> [(name: String, shape: [Int])] { [] }

    /// The per-parameter entries that count steps (0-dim, whole numbers).
    var countNames: Set<String> { [] }

    /// The per-parameter state of parameter `i`, or nil if it has none yet.
    func buffers(_ i: Int) -> [String: Tensor]? { nil }

    /// Replaces the state of parameter `i` (nil: no state) with validated, freshly copied tensors.
    func setBuffers(_ i: Int, _ buffers: [String: Tensor]?) {}

    /// The description of group `g`'s hyperparameters: `lr=0.001, betas=(0.9, 0.999), ...`.
    func describeGroup(_ g: Int) -> String {
        hyperparameters(g).map { "\($0.name)=\(formatValue($0.value))" }.joined(separator: ", ")
    }

    // MARK: learning rates

    public var groupCount: Int { groups.count }

    /// The learning rate of group `group` (0-based).
    public func learningRate(group: Int = 0) -> Float {
        hyperparameters(group).first { $0.name == "lr" }?.value ?? 0
    }

    /// Sets the learning rate of one group (0-based), or of every group when `group` is nil.
    public func setLearningRate(_ lr: Float, group: Int? = nil) throws {
        try InvalidOption.check("lr", lr, atLeast: 0)
        if let group, !groups.indices.contains(group) {
            throw OptimizerError("no parameter group \(group + 1) (the optimizer has \(groups.count))")
        }
        for g in groups.indices where group == nil || group == g {
            var values = Dictionary(uniqueKeysWithValues: hyperparameters(g).map { ($0.name, $0.value) })
            values["lr"] = lr
            try prepareHyperparameters(g, values)()
        }
    }

    // MARK: state

    /// A snapshot of the optimizer's state: named float32 tensors, copies that later steps do not change.
    public func state() throws -> [(name: String, tensor: Tensor)] {
        var out: [(name: String, tensor: Tensor)] = [("step", Tensor(scalar: Float(steps)))]
        for (g, r) in groups.enumerated() {
            out.append(("group\(g + 1).params", try Tensor(shape: [r.count], values: r.map { Float($0 + 1) })))
            for h in hyperparameters(g) { out.append(("group\(g + 1).\(h.name)", Tensor(scalar: h.value))) }
        }
        for i in params.indices {
            guard let b = buffers(i) else { continue }
            for (name, _) in bufferShapes(i) {
                guard let t = b[name] else { continue }
                out.append(("\(name).\(i + 1)", try GradMode.with(enabled: false) { try t.clone() }))
            }
        }
        return out
    }

    /// Restores a state written by `state()` (of an optimizer of the same kind over parameters of the same sizes
    /// in the same groups). Everything is validated before anything changes; the tensors are copied.
    public func loadState(_ entries: [String: Tensor]) throws {
        // Sort the entries by what they name.
        var groupEntries: [Int: [String: Tensor]] = [:]
        var paramEntries: [Int: [String: Tensor]] = [:]
        let bufferNames = Set(params.indices.flatMap { bufferShapes($0).map(\.name) })
            .union(bufferShapes(0).map(\.name))
        for (key, t) in entries where key != "step" {
            let parts = key.split(separator: ".", maxSplits: 1).map(String.init)
            if parts.count == 2, parts[0].hasPrefix("group"), let g = Int(parts[0].dropFirst(5)), g >= 1 {
                groupEntries[g, default: [:]][parts[1]] = t
                continue
            }
            if parts.count == 2, bufferNames.contains(parts[0]), let i = Int(parts[1]), i >= 1 {
                guard i <= params.count else {
                    throw OptimizerError("the state has \(key) but this optimizer has \(params.count) parameters")
                }
                paramEntries[i, default: [:]][parts[0]] = t
                continue
            }
            throw OptimizerError("unknown state entry '\(key)' (is this the state of a \(name)?)")
        }
        guard let stepTensor = entries["step"] else {
            throw OptimizerError("the state has no 'step' entry (is this the state of a \(name)?)")
        }
        let loadedSteps = try Optimizer.count(stepTensor, "step")

        // Groups: the same count, the same parameters, valid hyperparameters.
        let stateGroups = groupEntries.keys.max() ?? 0
        guard stateGroups == groups.count, groupEntries.count == groups.count else {
            throw OptimizerError("the state has \(groupEntries.count) parameter group\(groupEntries.count == 1 ? "" : "s"), this optimizer has \(groups.count)")
        }
        var installs: [() -> Void] = []
        for (g, r) in groups.enumerated() {
            var e = groupEntries[g + 1] ?? [:]
            let label = "group\(g + 1)"
            guard let list = e.removeValue(forKey: "params") else {
                throw OptimizerError("the state has no '\(label).params' entry")
            }
            let expected = r.map { Float($0 + 1) }
            guard list.rank == 1, list.count == r.count else {
                throw OptimizerError("parameter group \(g + 1) of the state has \(list.count) parameter\(list.count == 1 ? "" : "s"), this optimizer's has \(r.count)")
            }
            guard list.toArray() == expected else {
                throw OptimizerError("parameter group \(g + 1) of the state holds parameters \(list.toArray().map { formatValue($0) }.joined(separator: ",")), this optimizer's holds \(expected.map { formatValue($0) }.joined(separator: ","))")
            }
            var values: [String: Float] = [:]
            for h in hyperparameters(g) {
                guard let t = e.removeValue(forKey: h.name) else {
                    throw OptimizerError("the state has no '\(label).\(h.name)' entry (is this the state of a \(name)?)")
                }
                guard t.count == 1 else {
                    throw OptimizerError("state entry '\(label).\(h.name)' must hold one number, got size \(Tensor.describe(t.shape))")
                }
                values[h.name] = try t.item()
            }
            if let extra = e.keys.sorted().first {
                throw OptimizerError("unknown state entry '\(label).\(extra)' (is this the state of a \(name)?)")
            }
            do {
                installs.append(try prepareHyperparameters(g, values))
            } catch let err as InvalidOption {
                throw OptimizerError("parameter group \(g + 1) of the state: \(err)")
            }
        }

        // Per-parameter buffers: all of a parameter's or none, each the right size.
        var newBuffers: [[String: Tensor]?] = Array(repeating: nil, count: params.count)
        for (i, e) in paramEntries {
            let k = i - 1
            var copies: [String: Tensor] = [:]
            for (bname, shape) in bufferShapes(k) {
                guard let t = e[bname] else {
                    let have = e.keys.sorted().map { "\($0).\(i)" }.joined(separator: ", ")
                    throw OptimizerError("the state has \(have) but no \(bname).\(i)")
                }
                guard t.shape == shape else {
                    throw OptimizerError("state entry '\(bname).\(i)' has size \(Tensor.describe(t.shape)) but \(countNames.contains(bname) ? "must hold one number (size ())" : "parameter \(i) has size \(Tensor.describe(shape))")")
                }
                if countNames.contains(bname) { _ = try Optimizer.count(t, "\(bname).\(i)") }
                copies[bname] = try GradMode.with(enabled: false) { try t.clone() }
            }
            if let extra = Set(e.keys).subtracting(bufferShapes(k).map(\.name)).sorted().first {
                throw OptimizerError("unknown state entry '\(extra).\(i)' (is this the state of a \(name)?)")
            }
            newBuffers[k] = copies
        }

        // Commit.
        steps = loadedSteps
        for install in installs { install() }
        for i in params.indices { setBuffers(i, newBuffers[i]) }
    }

    /// The non-negative whole number held by a one-element state tensor.
    static func count(_ t: Tensor, _ label: String) throws -> Int {
        guard t.count == 1 else {
            throw OptimizerError("state entry '\(label)' must hold one number, got size \(Tensor.describe(t.shape))")
        }
        let v = try t.item()
        guard v.isFinite, v >= 0, v == v.rounded(), v <= 16_777_216 else {
            throw OptimizerError("state entry '\(label)' must be a whole number of steps in 0...2^24, got \(formatValue(v))")
        }
        return Int(v)
    }

    // MARK: printing

    /// `AdamW(lr=0.001, betas=(0.9, 0.999), eps=1e-08, weight_decay=0.01, 12 params)`; several groups are listed
    /// one by one.
    public var description: String {
        let counts = groups.map { "\($0.count) param\($0.count == 1 ? "" : "s")" }
        if groups.count == 1 { return "\(name)(\(describeGroup(0)), \(counts[0]))" }
        let parts = groups.indices.map { "(\(describeGroup($0)), \(counts[$0]))" }
        return "\(name)(\(groups.count) groups: \(parts.joined(separator: ", ")))"
    }
}

// MARK: kernels' shared pieces

/// Eight float32 lanes: every update runs the same lane-wise IEEE operations on whole vectors and on the ragged
/// end, so an element's result never depends on where a thread's chunk starts.
typealias Lanes = SIMD8<Float>

@inline(__always) func load8(_ p: UnsafePointer<Float>) -> Lanes {
    UnsafeRawPointer(p).loadUnaligned(as: Lanes.self)
}

@inline(__always) func store8(_ v: Lanes, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: Lanes.self)
}

/// Splits `0..<count` into chunks processed in parallel for large tensors (Parallel.swift).
@inline(__always) func forChunks(_ count: Int, cost: Int, _ body: (Range<Int>) -> Void) {
    Parallel.forRanges(count, cost: cost, body)
}

/// Up to 8 floats from `p`, the other lanes zero (the ragged end of a range).
@inline(__always) func loadLanes(_ p: UnsafePointer<Float>, _ count: Int) -> Lanes {
    if count == 8 { return load8(p) }
    var v = Lanes(repeating: 0)
    for k in 0..<count { v[k] = p[k] }
    return v
}

/// Stores the first `count` lanes of `v` at `p`.
@inline(__always) func storeLanes(_ v: Lanes, _ p: UnsafeMutablePointer<Float>, _ count: Int) {
    if count == 8 { store8(v, p); return }
    for k in 0..<count { p[k] = v[k] }
}

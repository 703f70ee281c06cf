// ReferenceSync.swift: TR-DPO's reference update (Gorbatovski et al. 2024, TRL's `sync_ref_model`): every so
// many steps the reference moves towards the policy, `ref ← alpha·policy + (1 − alpha)·ref`.
//
// The arithmetic is TRL's `SyncRefModelCallback._sync_target_model`, `ref.mul_(1 - alpha).add_(policy,
// alpha=alpha)` on float32 tensors: `r' = r · float(1 − alpha)` (the scale computed in double, then rounded),
// then `r'' = fma(p, float(alpha), r')` (PyTorch's CPU add with alpha is a fused multiply-add), so the result
// equals PyTorch's bit for bit. Parameters are matched by name and must have the same sizes. Cached reference
// log-probs are stale after a sync (TRL refuses sync_ref_model with precompute_ref_log_probs).

import TychoNN
import TychoTensor

public enum ReferenceSync {
    /// Moves every parameter of `reference` towards the same-named parameter of `policy`, in place.
    /// - Parameters:
    ///   - alpha: the policy's weight, in 0...1 (TRL's ref_model_mixup_alpha, 0.6 by default).
    /// - Throws: `TensorError` when alpha is out of range or the two models' parameters differ in names or sizes
    ///   (nothing is changed then).
    public static func sync(reference: Module, policy: Module, alpha: Double) throws {
        guard alpha.isFinite, alpha >= 0, alpha <= 1 else {
            throw TensorError("alpha must be in 0..1, got \(alpha)")
        }
        let ref = reference.namedParameters()
        let pol = Dictionary(policy.namedParameters(), uniquingKeysWith: { a, _ in a })
        guard ref.count == pol.count else {
            throw TensorError("the reference has \(ref.count) parameters and the policy \(pol.count); they must be the same model")
        }
        var pairs: [(Tensor, Tensor)] = []
        for (name, r) in ref {
            guard let p = pol[name] else { throw TensorError("the policy has no parameter \(name)") }
            guard p.shape == r.shape else {
                throw TensorError("parameter \(name) has size \(Tensor.describe(r.shape)) in the reference and \(Tensor.describe(p.shape)) in the policy")
            }
            guard r.isContiguous else { throw TensorError("parameter \(name) of the reference is not contiguous") }
            pairs.append((r, try p.contiguous()))
        }
        let scale = Float(1 - alpha), a = Float(alpha)
        for (r, p) in pairs where r !== p {
            let rp = r.basePointer, pp = UnsafePointer(p.basePointer), n = r.count
            forChunks(n, cost: 3) { range in
                var j = range.lowerBound
                while j + 8 <= range.upperBound {
                    store8((load8(rp + j) * scale).addingProduct(load8(pp + j), a), rp + j)
                    j += 8
                }
                if j < range.upperBound {
                    let c = range.upperBound - j
                    storeLanes((loadLanes(rp + j, c) * scale).addingProduct(loadLanes(pp + j, c), a), rp + j, c)
                }
            }
            r.storage.version &+= 1  // autograd refuses graphs that saw the old values
        }
    }
}

/// TR-DPO's reference update as the trainer calls it: `reference ← alpha·policy + (1 − alpha)·reference`, in
/// place (`ReferenceSync.sync`).
public func syncReference(policy: Module, reference: Module, alpha: Double) throws {
    try ReferenceSync.sync(reference: reference, policy: policy, alpha: alpha)
}

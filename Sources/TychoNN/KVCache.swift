// KVCache.swift: the keys and values of every layer for incremental decoding, one region per sequence slot.
//
// Shapes: L layers, S slots, Hkv key/value heads, Tmax capacity (positions per slot), D head size.
//   keys[l]      [S, Hkv, D, Tmax]: slot s, head h is a [D, Tmax] matrix whose column t is position t's key
//                (stored transposed, so one query's scores are contiguous vector products over the positions)
//   values[l]    [S, Hkv, Tmax, D]: slot s, head h is a [Tmax, D] matrix whose row t is position t's value
//   lengths[s]   positions filled in slot s; its next token sits at position lengths[s]
// A slot is one running sequence (continuous batching refills a finished slot with the next one). Each slot
// has its own length; nothing here knows about the others. Keys are stored after rotary embedding (Llama).
// What it refuses to do: grow. The capacity is fixed when the cache is made (IncrementalDecoder sizes it).

import TychoTensor

public final class KVCache {
    public let layers: Int
    public let slots: Int
    public let kvHeads: Int
    public let headDim: Int
    public let capacity: Int
    /// Positions filled per slot.
    public internal(set) var lengths: [Int]
    /// Per layer, [S, Hkv, D, Tmax] (keys) and [S, Hkv, Tmax, D] (values).
    let keys: [Tensor]
    let values: [Tensor]

    /// An empty cache.
    /// - Parameters:
    ///   - layers: transformer layers.
    ///   - slots: sequences decoded side by side.
    ///   - kvHeads: key/value heads per layer.
    ///   - headDim: size of one head.
    ///   - capacity: positions per slot (prompt, generated tokens and any draft tokens).
    public init(layers: Int, slots: Int, kvHeads: Int, headDim: Int, capacity: Int) throws {
        guard layers > 0, slots > 0, kvHeads > 0, headDim > 0, capacity > 0 else {
            throw TensorError("kv cache: sizes must be positive (layers \(layers), slots \(slots), kv heads \(kvHeads), head size \(headDim), capacity \(capacity))")
        }
        let shape = [slots, kvHeads, capacity, headDim]
        let perLayer = try Tensor.checkedCount(shape)
        let keyShape = [slots, kvHeads, headDim, capacity]
        let (total, overflow) = perLayer.multipliedReportingOverflow(by: 2 * layers)
        guard !overflow, total <= TensorStorage.maximumBytes / MemoryLayout<Float>.stride else {
            throw TensorError("kv cache: \(slots) slots of \(capacity) positions need more memory than this machine has")
        }
        self.layers = layers
        self.slots = slots
        self.kvHeads = kvHeads
        self.headDim = headDim
        self.capacity = capacity
        lengths = [Int](repeating: 0, count: slots)
        keys = try (0..<layers).map { _ in try Tensor(uninitializedShape: keyShape) }
        values = try (0..<layers).map { _ in try Tensor(uninitializedShape: shape) }
    }

    /// Bytes held by the keys and values.
    public var byteCount: Int { 2 * layers * slots * kvHeads * capacity * headDim * MemoryLayout<Float>.stride }

    /// Empties a slot for a new sequence.
    public func reset(_ slot: Int) { lengths[slot] = 0 }

    /// Forgets positions `length...` of a slot (rejected draft tokens); `length` must not exceed its length.
    public func truncate(_ slot: Int, to length: Int) throws {
        guard slot >= 0, slot < slots else { throw TensorError("kv cache: slot \(slot) out of range 0..<\(slots)") }
        guard length >= 0, length <= lengths[slot] else {
            throw TensorError("kv cache: cannot truncate slot \(slot) of length \(lengths[slot]) to \(length)")
        }
        lengths[slot] = length
    }

    /// Copies positions 0..<count of slot `source` into slot `target` (every layer) and sets target's length: a
    /// second sample of the same prompt starts from the first one's prompt instead of recomputing it (the bits are
    /// those its own prefill would give, as every row is computed independently of the others).
    public func copyPrefix(from source: Int, to target: Int, count: Int) throws {
        guard source >= 0, source < slots, target >= 0, target < slots, source != target else {
            throw TensorError("kv cache: bad slots \(source) -> \(target) for \(slots) slots")
        }
        guard count >= 0, count <= lengths[source] else {
            throw TensorError("kv cache: slot \(source) holds \(lengths[source]) positions, not \(count)")
        }
        for l in 0..<layers {
            for h in 0..<kvHeads {
                let ks = keys(layer: l, slot: source, head: h), kt = keys(layer: l, slot: target, head: h)
                for c in 0..<headDim { (kt + c * capacity).update(from: ks + c * capacity, count: count) }
                values(layer: l, slot: target, head: h).update(from: values(layer: l, slot: source, head: h), count: count * headDim)
            }
        }
        lengths[target] = count
    }

    /// The [D, Tmax] key matrix of head `head` of slot `slot` in layer `layer` (column t is position t).
    @inline(__always)
    func keys(layer: Int, slot: Int, head: Int) -> UnsafeMutablePointer<Float> {
        keys[layer].basePointer + (slot * kvHeads + head) * headDim * capacity
    }

    /// The [Tmax, D] value matrix of head `head` of slot `slot` in layer `layer` (row t is position t).
    @inline(__always)
    func values(layer: Int, slot: Int, head: Int) -> UnsafeMutablePointer<Float> {
        values[layer].basePointer + (slot * kvHeads + head) * capacity * headDim
    }

    /// Stores a key and a value (D floats each) at `position` of a slot's head.
    @inline(__always)
    func store(layer: Int, slot: Int, head: Int, position: Int, key: UnsafePointer<Float>, value: UnsafePointer<Float>) {
        let k = keys(layer: layer, slot: slot, head: head) + position
        for c in 0..<headDim { k[c * capacity] = key[c] }
        (values(layer: layer, slot: slot, head: head) + position * headDim).update(from: value, count: headDim)
    }

    /// The [1, Hkv, count, D] views of positions 0..<count of a slot's keys and values (what FusedAttention reads;
    /// the keys' view is transposed, which it reads in place).
    func views(layer: Int, slot: Int, count: Int) throws -> (keys: Tensor, values: Tensor) {
        let k = try Tensor(viewing: keys[layer].storage, shape: [1, kvHeads, count, headDim],
                           strides: [kvHeads * headDim * capacity, headDim * capacity, 1, capacity],
                           offset: keys[layer].offset + slot * kvHeads * headDim * capacity)
        let v = try Tensor(viewing: values[layer].storage, shape: [1, kvHeads, count, headDim],
                           strides: [kvHeads * capacity * headDim, capacity * headDim, headDim, 1],
                           offset: values[layer].offset + slot * kvHeads * capacity * headDim)
        return (k, v)
    }
}

// Tensor.swift: Tycho's float32 n-dimensional array, its storage, shapes and strides.
//
// The numeric core knows nothing of Lua. Dimensions and indices here are 0-based; the Lua bridge converts
// Lua's 1-based ones at the boundary and checks them there, so the messages it gives name what the user typed.
// Every function reachable from user input validates and `throws`; traps are kept for internal invariants.

import Foundation

/// A failure in a tensor operation, with a message meant for the user.
public struct TensorError: Error, CustomStringConvertible, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// A contiguous, 64-byte aligned buffer of `Float`s owned by one or more tensors (views share it).
public final class TensorStorage {
    public let pointer: UnsafeMutablePointer<Float>
    public let count: Int
    /// Set by the bridge once Lua's collector has been told about this buffer.
    public var reportedToCollector = false
    /// Bumped by every in-place write, so autograd can tell when a tensor it saved has changed.
    public var version = 0

    /// Largest single buffer Tycho will try to allocate: the machine's physical memory.
    public static let maximumBytes = Int(clamping: ProcessInfo.processInfo.physicalMemory)

    /// Allocates `count` floats, zero-filled when `zeroed`.
    public init(count: Int, zeroed: Bool = false) throws {
        guard count >= 0 else { throw TensorError("negative element count \(count)") }
        let (bytes, overflow) = max(count, 1).multipliedReportingOverflow(by: MemoryLayout<Float>.stride)
        guard !overflow, bytes <= TensorStorage.maximumBytes else {
            throw TensorError("cannot allocate \(count) elements: more than this machine's memory")
        }
        var raw: UnsafeMutableRawPointer?
        pooled = bytes >= BufferPool.minimumBytes
        if pooled {
            raw = BufferPool.allocate(bytes: bytes, zeroed: zeroed)
        } else if zeroed {
            raw = calloc(bytes, 1)
        } else if posix_memalign(&raw, 64, bytes) != 0 {
            raw = nil
        }
        guard let raw else { throw TensorError("cannot allocate \(bytes) bytes") }
        self.pointer = raw.bindMemory(to: Float.self, capacity: max(count, 1))
        self.count = count
    }

    public var byteCount: Int { count * MemoryLayout<Float>.stride }

    /// True for buffers from (and returned to) `BufferPool`.
    private let pooled: Bool

    deinit {
        if pooled { BufferPool.release(pointer, bytes: count * MemoryLayout<Float>.stride) } else { free(pointer) }
    }
}

/// A float32 tensor: a strided view into a `TensorStorage`.
public final class Tensor {
    public let storage: TensorStorage
    public let shape: [Int]
    public let strides: [Int]
    public let offset: Int

    // Autograd (Autograd.swift): set by recorded operations and `setRequiresGrad`.
    public internal(set) var requiresGrad = false
    /// The accumulated gradient of a leaf after `backward`.
    public var grad: Tensor?
    /// How this tensor was computed, for tensors produced by recorded operations.
    var gradNode: GradNode?

    /// A view; the caller guarantees the view stays within `storage`.
    init(storage: TensorStorage, shape: [Int], strides: [Int], offset: Int) {
        self.storage = storage
        self.shape = shape
        self.strides = strides
        self.offset = offset
    }

    /// A new contiguous tensor with uninitialised contents (zeroed when asked).
    public init(uninitializedShape shape: [Int], zeroed: Bool = false) throws {
        let n = try Tensor.checkedCount(shape)
        self.storage = try TensorStorage(count: n, zeroed: zeroed)
        self.shape = shape
        self.strides = Tensor.contiguousStrides(shape)
        self.offset = 0
    }

    /// A new contiguous tensor holding `values` in row-major order.
    public convenience init(shape: [Int], values: [Float]) throws {
        try self.init(uninitializedShape: shape)
        guard values.count == count else {
            throw TensorError("\(values.count) values given for shape \(Tensor.describe(shape))")
        }
        values.withUnsafeBufferPointer { src in
            if let base = src.baseAddress { storage.pointer.update(from: base, count: values.count) }
        }
    }

    /// A 0-dimensional tensor holding one value.
    public convenience init(scalar: Float) {
        // A one-element allocation cannot fail short of the process being out of memory.
        // swiftlint:disable:next force_try
        try! self.init(shape: [], values: [scalar])
    }

    public var rank: Int { shape.count }
    public var count: Int { shape.reduce(1, *) }
    public var isContiguous: Bool { strides == Tensor.contiguousStrides(shape) || count <= 1 }
    /// Pointer to element [0, 0, ...] of this view.
    public var basePointer: UnsafeMutablePointer<Float> { storage.pointer + offset }

    // MARK: shapes

    public static func contiguousStrides(_ shape: [Int]) -> [Int] {
        var strides = [Int](repeating: 1, count: shape.count)
        var acc = 1
        for d in stride(from: shape.count - 1, through: 0, by: -1) {
            strides[d] = acc
            acc *= max(shape[d], 1)
        }
        return strides
    }

    /// The number of elements of `shape`, or an error on negative sizes or overflow.
    /// The product with empty dimensions counted as 1 is bounded too, so that `contiguousStrides` of any
    /// accepted shape (even one with no elements, like 0x1e12x1e12) cannot overflow.
    public static func checkedCount(_ shape: [Int]) throws -> Int {
        var n = 1, span = 1
        for s in shape {
            guard s >= 0 else { throw TensorError("negative size \(s) in shape \(describe(shape))") }
            let (p, o) = span.multipliedReportingOverflow(by: Swift.max(s, 1))
            guard !o, p <= TensorStorage.maximumBytes / 4 else {
                throw TensorError("shape \(describe(shape)) is too large")
            }
            span = p
            n *= s  // n <= span
        }
        return n
    }

    /// `2x3x4`, or `()` for a scalar.
    public static func describe(_ shape: [Int]) -> String {
        shape.isEmpty ? "()" : shape.map(String.init).joined(separator: "x")
    }

    // MARK: element access

    /// Offset into storage of the element at a full 0-based index.
    func storageOffset(_ index: [Int]) -> Int {
        var o = offset
        for d in 0..<index.count { o += index[d] * strides[d] }
        return o
    }

    /// The value of a one-element tensor.
    public func item() throws -> Float {
        guard count == 1 else {
            throw TensorError("item() needs a tensor with one element, got size \(Tensor.describe(shape))")
        }
        return storage.pointer[offset]
    }

    /// All elements in row-major order.
    public func toArray() -> [Float] {
        let n = count
        return [Float](unsafeUninitializedCapacity: n) { buffer, initialized in
            if let dst = buffer.baseAddress, n > 0 {
                let src = basePointer
                let outStrides = Tensor.contiguousStrides(shape)
                stridedRows(shape: shape, strides: [outStrides, strides]) { o0, o1, _, len, s0, s1, _ in
                    for i in 0..<len { dst[o0 + i * s0] = src[o1 + i * s1] }
                }
            }
            initialized = n
        }
    }

    /// This tensor if contiguous, else a contiguous copy.
    /// Throws when the copy cannot be allocated (an expanded view can stand for far more than it stores).
    public func contiguous() throws -> Tensor {
        if isContiguous { return self }
        return try clone()
    }

    /// A contiguous copy with its own storage. Throws when the copy cannot be allocated.
    public func clone() throws -> Tensor {
        let out = try Tensor(uninitializedShape: shape)
        out.copyElements(from: self)
        return out.recorded("clone", [self]) { g in [g] }
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String { format() }
}

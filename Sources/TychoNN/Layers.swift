// Layers.swift: linear, embedding, layer norm, RMS norm, dropout and activation modules.
//
// Initialisation follows PyTorch's defaults (nn.Linear: U(-1/sqrt(in), 1/sqrt(in)) for weight and bias;
// nn.Embedding: N(0, 1); norms: weight 1, bias 0); the models re-initialise as Hugging Face does.

import Foundation
import TychoTensor

/// A new leaf parameter that requires grad.
func parameter(_ t: Tensor) throws -> Tensor {
    try t.setRequiresGrad(true)
    return t
}

public final class Linear: Module {
    public let weight: Tensor
    public let bias: Tensor?
    public let layout: WeightLayout

    public var inFeatures: Int { layout == .outIn ? weight.shape[1] : weight.shape[0] }
    public var outFeatures: Int { layout == .outIn ? weight.shape[0] : weight.shape[1] }

    public init(weight: Tensor, bias: Tensor?, layout: WeightLayout = .outIn) {
        self.weight = weight
        self.bias = bias
        self.layout = layout
    }

    public convenience init(_ inFeatures: Int, _ outFeatures: Int, bias: Bool = true, layout: WeightLayout = .outIn,
                            using g: inout RandomGenerator) throws {
        guard inFeatures > 0, outFeatures > 0 else {
            throw TensorError("linear: sizes must be positive, got \(inFeatures) and \(outFeatures)")
        }
        let bound = 1 / Float(inFeatures).squareRoot()
        let shape = layout == .outIn ? [outFeatures, inFeatures] : [inFeatures, outFeatures]
        let w = try Tensor.rand(shape, using: &g).multiplying(2 * bound).adding(-bound)
        let b = bias ? try Tensor.rand([outFeatures], using: &g).multiplying(2 * bound).adding(-bound) : nil
        self.init(weight: try parameter(w), bias: try b.map(parameter), layout: layout)
    }

    override public var ownParameters: [(String, Tensor)] { [("weight", weight)] + (bias.map { [("bias", $0)] } ?? []) }
    override public var summary: String { "Linear(in=\(inFeatures), out=\(outFeatures), bias=\(bias != nil))" }

    override public func forward(_ x: Tensor) throws -> Tensor {
        try Functional.linear(x, weight: weight, bias: bias, layout: layout)
    }

    override public func copy() throws -> Module {
        Linear(weight: try Module.copyParameter(weight), bias: try bias.map(Module.copyParameter), layout: layout).takeMode(of: self)
    }
}

public final class Embedding: Module {
    public let weight: Tensor

    public init(weight: Tensor) { self.weight = weight }

    public convenience init(_ count: Int, _ dim: Int, using g: inout RandomGenerator) throws {
        guard count > 0, dim > 0 else { throw TensorError("embedding: sizes must be positive, got \(count) and \(dim)") }
        self.init(weight: try parameter(Tensor.randn([count, dim], using: &g)))
    }

    override public var ownParameters: [(String, Tensor)] { [("weight", weight)] }
    override public var summary: String { "Embedding(\(weight.shape[0]), \(weight.shape[1]))" }

    /// Token ids (0-based values) of any size → that size + [dim].
    override public func forward(_ ids: Tensor) throws -> Tensor { try Functional.embedding(ids, weight: weight) }

    override public func copy() throws -> Module { Embedding(weight: try Module.copyParameter(weight)).takeMode(of: self) }
}

public final class LayerNorm: Module {
    public let weight: Tensor?
    public let bias: Tensor?
    public let eps: Float

    public init(weight: Tensor?, bias: Tensor?, eps: Float) {
        self.weight = weight
        self.bias = bias
        self.eps = eps
    }

    public convenience init(_ dim: Int, eps: Float = 1e-5, affine: Bool = true) throws {
        guard dim > 0 else { throw TensorError("layernorm: size must be positive, got \(dim)") }
        self.init(weight: affine ? try parameter(Tensor.ones([dim])) : nil,
                  bias: affine ? try parameter(Tensor.zeros([dim])) : nil, eps: eps)
    }

    override public var ownParameters: [(String, Tensor)] {
        (weight.map { [("weight", $0)] } ?? []) + (bias.map { [("bias", $0)] } ?? [])
    }
    override public var summary: String { "LayerNorm(\(weight?.shape[0] ?? 0), eps=\(eps))" }

    override public func forward(_ x: Tensor) throws -> Tensor {
        try Functional.layerNorm(x, weight: weight, bias: bias, eps: eps)
    }

    override public func copy() throws -> Module {
        LayerNorm(weight: try weight.map(Module.copyParameter), bias: try bias.map(Module.copyParameter), eps: eps).takeMode(of: self)
    }
}

public final class RMSNorm: Module {
    public let weight: Tensor
    public let eps: Float

    public init(weight: Tensor, eps: Float) {
        self.weight = weight
        self.eps = eps
    }

    public convenience init(_ dim: Int, eps: Float = 1e-6) throws {
        guard dim > 0 else { throw TensorError("rmsnorm: size must be positive, got \(dim)") }
        self.init(weight: try parameter(Tensor.ones([dim])), eps: eps)
    }

    override public var ownParameters: [(String, Tensor)] { [("weight", weight)] }
    override public var summary: String { "RMSNorm(\(weight.shape[0]), eps=\(eps))" }

    override public func forward(_ x: Tensor) throws -> Tensor { try Functional.rmsNorm(x, weight: weight, eps: eps) }

    override public func copy() throws -> Module {
        RMSNorm(weight: try Module.copyParameter(weight), eps: eps).takeMode(of: self)
    }
}

public final class Dropout: Module {
    public let p: Float
    /// Masks come from the module's own generator, seeded when it is made (from tensor.manual_seed's stream).
    public var generator: RandomGenerator

    public init(_ p: Float, generator: RandomGenerator) throws {
        guard p >= 0, p < 1 else { throw TensorError("dropout: probability must be in [0, 1), got \(p)") }
        self.p = p
        self.generator = generator
    }

    override public var summary: String { "Dropout(p=\(p))" }

    override public func forward(_ x: Tensor) throws -> Tensor {
        try Functional.dropout(x, p: p, training: isTraining, generator: &generator)
    }

    override public func copy() throws -> Module { try Dropout(p, generator: generator).takeMode(of: self) }
}

public final class Activation: Module {
    public enum Kind: String, CaseIterable, Sendable {
        case gelu, geluTanh = "gelu_tanh", silu, relu, tanh, sigmoid
    }
    public let kind: Kind

    public init(_ kind: Kind) { self.kind = kind }

    override public var summary: String { kind.rawValue.uppercased() == "GELU_TANH" ? "GELU(tanh)" : kind.rawValue.uppercased() }

    override public func forward(_ x: Tensor) throws -> Tensor {
        switch kind {
        case .gelu: return try x.gelu()
        case .geluTanh: return try x.gelu(approximateTanh: true)
        case .silu: return try x.silu()
        case .relu: return try x.relu()
        case .tanh: return try x.tanh()
        case .sigmoid: return try x.sigmoid()
        }
    }

    override public func copy() throws -> Module { Activation(kind).takeMode(of: self) }
}

extension RandomGenerator {
    /// An independent generator split off this one (for a dropout layer's masks).
    public mutating func split() -> RandomGenerator { RandomGenerator(seed: next()) }
}

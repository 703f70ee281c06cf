// Module.swift: the base of every layer and model: parameters with Hugging Face names, children, training mode,
// deep copies and freezing. Layers are Swift classes; the Lua module `nn` wraps them as `tycho.Module` userdata.

import TychoTensor

open class Module {
    /// Training mode (dropout active); `train()`/`eval()` set it for the whole tree.
    public private(set) var isTraining = true

    public init() {}

    /// The parameters this module owns directly, in a stable order, by local name ("weight", "bias").
    open var ownParameters: [(String, Tensor)] { [] }

    /// Direct sub-modules by local name; names join with "." into Hugging Face tensor names.
    open var children: [(String, Module)] { [] }

    /// A short description: `Linear(in=32, out=96, bias=true)`.
    open var summary: String { String(describing: type(of: self)) }

    /// Applies the module to one tensor. Containers and models override it; others throw.
    open func forward(_ x: Tensor) throws -> Tensor {
        throw TensorError("\(summary) cannot be applied to a tensor")
    }

    /// A deep copy with its own parameter storage (same requires-grad flags, training mode and values).
    open func copy() throws -> Module {
        throw TensorError("\(summary) cannot be copied")
    }

    // MARK: the tree

    /// Every parameter with its full name, each tensor once (a tied weight appears under its first name).
    public func namedParameters() -> [(String, Tensor)] {
        var out: [(String, Tensor)] = []
        var seen = Set<ObjectIdentifier>()
        func walk(_ m: Module, _ prefix: String) {
            for (name, t) in m.ownParameters where seen.insert(ObjectIdentifier(t)).inserted {
                out.append((prefix + name, t))
            }
            for (name, child) in m.children { walk(child, prefix + name + ".") }
        }
        walk(self, "")
        return out
    }

    public func parameters() -> [Tensor] { namedParameters().map(\.1) }

    public var parameterCount: Int { parameters().reduce(0) { $0 + $1.count } }

    /// Every module of the tree, this one first.
    public func modules() -> [Module] {
        var out: [Module] = [self]
        for (_, c) in children { out += c.modules() }
        return out
    }

    /// Training mode (dropout on) or evaluation mode for the whole tree, including the dropout layers that layers
    /// keep as fields rather than children (GPT-2's embedding, attention and MLP dropout).
    public func setTraining(_ flag: Bool) {
        for m in modules() { m.isTraining = flag }
        for d in dropoutLayers() { d.isTraining = flag }
    }

    public func zeroGrad() {
        for p in parameters() { p.grad = nil }
    }

    /// Stops gradients for every parameter (a frozen reference model); returns self.
    @discardableResult
    public func freeze() -> Module {
        for p in parameters() {
            try? p.setRequiresGrad(false)  // parameters are leaves
            p.grad = nil
        }
        return self
    }

    /// A fresh leaf with the values of `t` and its requires-grad flag.
    public static func copyParameter(_ t: Tensor) throws -> Tensor {
        let c = try GradMode.with(enabled: false) { try t.detach().clone() }
        try c.setRequiresGrad(t.requiresGrad)
        return c
    }

    /// Copies the training flag of `other` onto this copy.
    public func takeMode(of other: Module) -> Self {
        setTraining(other.isTraining)
        return self
    }

    /// Copies values from `source` (same names and sizes) into this module's parameters in place.
    public func loadParameters(_ source: [String: Tensor], strict: Bool = true) throws {
        let mine = namedParameters()
        if strict {
            let missing = mine.map(\.0).filter { source[$0] == nil }
            if !missing.isEmpty {
                throw TensorError("missing parameter\(missing.count == 1 ? "" : "s"): \(missing.prefix(8).joined(separator: ", "))\(missing.count > 8 ? ", ..." : "")")
            }
        }
        for (name, p) in mine {
            guard let t = source[name] else { continue }
            guard t.shape == p.shape else {
                throw TensorError("parameter \(name) has size \(Tensor.describe(p.shape)), the source has \(Tensor.describe(t.shape))")
            }
        }
        try GradMode.with(enabled: false) {
            for (name, p) in mine { if let t = source[name] { try p.copy(from: t) } }
        }
    }

    /// A readable tree like PyTorch's module printout.
    public func describeTree(indent: String = "") -> String {
        let kids = children
        if kids.isEmpty { return summary }
        var s = summary + " {\n"
        for (name, c) in kids { s += indent + "  (\(name)): " + c.describeTree(indent: indent + "  ") + "\n" }
        return s + indent + "}"
    }
}

/// Modules applied one after the other.
public final class Sequential: Module {
    public private(set) var layers: [Module]

    public init(_ layers: [Module]) { self.layers = layers }

    public func append(_ m: Module) { layers.append(m) }

    override public var children: [(String, Module)] { layers.enumerated().map { (String($0.offset), $0.element) } }
    override public var summary: String { "Sequential" }

    override public func forward(_ x: Tensor) throws -> Tensor {
        var h = x
        for m in layers { h = try m.forward(h) }
        return h
    }

    override public func copy() throws -> Module {
        try Sequential(layers.map { try $0.copy() }).takeMode(of: self)
    }
}

/// A numbered list of modules (the `h.0`, `h.1`, ... of a transformer); not callable.
public final class ModuleList: Module {
    public let items: [Module]
    public init(_ items: [Module]) { self.items = items }
    override public var children: [(String, Module)] { items.enumerated().map { (String($0.offset), $0.element) } }
    override public var summary: String { "ModuleList" }
    override public func copy() throws -> Module { try ModuleList(items.map { try $0.copy() }).takeMode(of: self) }
}

// Module+Dropout.swift: the dropout layers of a module tree, including those that layers keep as fields rather
// than as children (GPT-2's embedding dropout, attention and MLP residual dropout). Each holds its own random
// generator, so saving and restoring them is what makes a resumed run with dropout continue bit for bit.

extension Module {
    /// Every dropout layer of the tree, in a fixed order (the tree's order, a layer's hidden dropout after it).
    public func dropoutLayers() -> [Dropout] {
        var out: [Dropout] = []
        var seen = Set<ObjectIdentifier>()
        func add(_ d: Dropout?) {
            if let d, seen.insert(ObjectIdentifier(d)).inserted { out.append(d) }
        }
        for m in modules() {
            switch m {
            case let d as Dropout: add(d)
            case let b as GPT2Body: add(b.drop)
            case let a as CausalSelfAttention: add(a.dropout)
            case let p as MLP: add(p.dropout)
            default: break
            }
        }
        return out
    }
}

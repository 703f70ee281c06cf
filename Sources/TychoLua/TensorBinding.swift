// TensorBinding.swift: the Lua module `tensor` and the methods of tensor userdata.
//
// Lua conventions at this edge: dimensions and indices are 1-based (negative ones count from the end),
// sizes come as numbers or one table, full reductions return 0-dimensional tensors, `max`/`min` along a
// dimension return values and 1-based indices. Each entry is one declaration: name, parameters, doc, call.

import CLua
import CLuaShim
import TychoTensor

enum TensorBinding {
    static let metatable = "tycho.Tensor"

    // MARK: helpers

    static func t(_ a: LuaArgs) throws -> Tensor { try a.tensor(1) }

    /// Reads a nested table of numbers (or a number) at idx into a shape and row-major values.
    static func readNested(_ a: LuaArgs, _ idx: Int32) throws -> (shape: [Int], values: [Float]) {
        let lua = a.lua
        if let n = lua.number(idx) { return ([], [Float(n)]) }
        if let t = lua.object(idx, metatable: metatable, as: Tensor.self) { return (t.shape, t.toArray()) }
        guard lua.type(idx) == LUA_TTABLE else { throw a.typeError(1, "a table of numbers") }
        // A C function is only promised LUA_MINSTACK (20) slots; the walks below hold one per nesting level.
        guard lua.ensureStack(40) else { throw LuaBindingError("Lua stack overflow") }
        var shape: [Int] = []
        var values: [Float] = []
        // Discover the shape by following first elements.
        lua.pushValue(idx)
        var depth = 0
        while lua.type(-1) == LUA_TTABLE {
            guard depth < 32 else { lua.pop(Int32(depth + 1)); throw a.argumentError(1, "nested less than 32 levels deep") }
            let n = lua.rawLength(-1)
            shape.append(n)
            if n == 0 { break }
            _ = lua.rawGet(-1, index: 1)
            depth += 1
        }
        lua.pop(Int32(depth + 1))
        _ = try Tensor.checkedCount(shape)
        func walk(_ level: Int, _ path: [Int]) throws {
            let n = lua.rawLength(-1)
            guard lua.type(-1) == LUA_TTABLE, n == shape[level] else {
                throw a.argumentError(1, "a rectangular nested table; element \(path.map(String.init).joined(separator: ",")) does not match size \(Tensor.describe(shape))")
            }
            for k in 1...max(n, 1) where k <= n {
                _ = lua.rawGet(-1, index: k)
                defer { lua.pop() }
                if level == shape.count - 1 {
                    guard let v = lua.number(-1) else {
                        throw a.argumentError(1, "a table of numbers; element \((path + [k]).map(String.init).joined(separator: ",")) is \(lua.typeName(-1))")
                    }
                    values.append(Float(v))
                } else {
                    try walk(level + 1, path + [k])
                }
            }
        }
        lua.pushValue(idx)
        defer { lua.pop() }
        if shape.last != 0 || shape.count == 1 { try walk(0, []) }
        return (shape, values)
    }

    static func pushTable(_ a: LuaArgs, _ t: Tensor) throws {
        let lua = a.lua
        // One table per dimension is on the stack at once; a C function is only promised 20 slots.
        guard lua.ensureStack(Int32(clamping: t.rank + 8)) else {
            throw LuaBindingError("cannot build nested tables for a tensor with \(t.rank) dimensions")
        }
        if t.rank == 0 { lua.push(Double(t.storage.pointer[t.offset])); return }
        func build(_ dim: Int, _ off: Int) {
            lua.newTable(arrayCount: Int32(t.shape[dim]))
            for i in 0..<t.shape[dim] {
                let o = off + i * t.strides[dim]
                if dim == t.rank - 1 { lua.push(Double(t.storage.pointer[o])) } else { build(dim + 1, o) }
                lua.rawSet(-2, index: i + 1)
            }
        }
        build(0, t.offset)
    }

    /// Pushes an index tensor (0-based positions) converted to 1-based values.
    static func pushIndices(_ a: LuaArgs, _ t: Tensor) throws -> Int { a.push(try t.adding(1)) }

    /// A binary operator on tensors and numbers in either order.
    static func binary(_ a: LuaArgs, _ op: (Tensor, Tensor) throws -> Tensor,
                       scalarRight: ((Tensor, Float) throws -> Tensor)? = nil,
                       scalarLeft: ((Float, Tensor) throws -> Tensor)? = nil) throws -> Int {
        if let x = a.tensorOrNil(1) {
            if let n = a.lua.number(2), let f = scalarRight { return a.push(try f(x, Float(n))) }
            return a.push(try op(x, try a.tensorOrScalar(2)))
        }
        if let n = a.lua.number(1), let y = a.tensorOrNil(2) {
            if let f = scalarLeft { return a.push(try f(Float(n), y)) }
            return a.push(try op(Tensor(scalar: Float(n)), y))
        }
        throw a.typeError(a.tensorOrNil(1) == nil && a.lua.number(1) == nil ? 1 : 2, "a tensor or number")
    }

    static let dimDoc = "Dimensions are 1-based; negative ones count from the end."

    // MARK: creation

    static let creation: [LuaFunction] = [
        LuaFunction("new", [.required("data", .any)],
                    doc: "A tensor from a nested table of numbers (or a number, or a tensor to copy).\n  tensor.new{{1, 2}, {3, 4}} is 2x2.") { a in
            let (shape, values) = try readNested(a, 1)
            return a.push(try Tensor(shape: shape, values: values))
        },
        LuaFunction("zeros", [.required("size", .sizes)], doc: "A tensor of zeros. Sizes as numbers or a table: zeros(2, 3) == zeros{2, 3}.") { a in
            a.push(try Tensor.zeros(a.sizes(from: 1)))
        },
        LuaFunction("ones", [.required("size", .sizes)], doc: "A tensor of ones.") { a in
            a.push(try Tensor.ones(a.sizes(from: 1)))
        },
        LuaFunction("full", [.required("size", .table), .required("value", .number)], doc: "A tensor of `size` (a table) filled with `value`.") { a in
            a.push(try Tensor.full(sizesTable(a, 1), value: a.float(2)))
        },
        LuaFunction("arange", [.required("start", .number), .optional("end", .number), .optional("step", .number, default: "1")],
                    doc: "Values from start up to (not including) end by step; arange(n) is 0, 1, ..., n-1 (values, as in PyTorch).") { a in
            let start: Double, end: Double
            if a.isNil(2) { start = 0; end = try a.number(1) } else { start = try a.number(1); end = try a.number(2) }
            let step = try a.number(3, default: 1)
            guard step != 0 else { throw a.argumentError(3, "non-zero, got 0") }
            guard (end - start) / step <= 1e10 else { throw LuaBindingError("too many values") }
            return a.push(try Tensor.arange(start: start, end: end, step: step))
        },
        LuaFunction("linspace", [.required("start", .number), .required("end", .number), .optional("steps", .integer, default: "100")],
                    doc: "`steps` evenly spaced values from start to end inclusive.") { a in
            let steps = try a.integer(3, default: 100)
            guard steps >= 0 else { throw a.argumentError(3, "a non-negative integer, got \(steps)") }
            return a.push(try Tensor.linspace(start: a.number(1), end: a.number(2), steps: steps))
        },
        LuaFunction("eye", [.required("n", .integer), .optional("m", .integer)], doc: "An n x m (default n x n) identity matrix.") { a in
            let n = try a.integer(1), m = try a.integer(2, default: n)
            guard n >= 0 else { throw a.argumentError(1, "a non-negative integer, got \(n)") }
            guard m >= 0 else { throw a.argumentError(2, "a non-negative integer, got \(m)") }
            _ = try Tensor.checkedCount([n, m])
            return a.push(try Tensor.eye(n, m))
        },
        LuaFunction("rand", [.required("size", .sizes)], doc: "Uniform random numbers in [0, 1). Seeded by tensor.manual_seed.") { a in
            let shape = try a.sizes(from: 1)
            return a.push(try Tensor.rand(shape, using: &a.state.generator))
        },
        LuaFunction("randn", [.required("size", .sizes)], doc: "Standard normal random numbers. Seeded by tensor.manual_seed.") { a in
            let shape = try a.sizes(from: 1)
            return a.push(try Tensor.randn(shape, using: &a.state.generator))
        },
        LuaFunction("randint", [.required("low", .integer), .required("high", .integer), .required("size", .sizes)],
                    doc: "Random integers in [low, high) (high exclusive).") { a in
            let low = try a.integer(1), high = try a.integer(2)
            guard high > low else { throw a.argumentError(2, "greater than low (\(low)), got \(high)") }
            let shape = try a.sizes(from: 3)
            return a.push(try Tensor.randint(low: low, high: high, shape: shape, using: &a.state.generator))
        },
        LuaFunction("manual_seed", [.required("seed", .integer)], doc: "Seeds the random generator: the same seed gives the same numbers on every machine.") { a in
            a.state.generator = RandomGenerator(seed: UInt64(bitPattern: Int64(try a.integer(1))))
            return 0
        },
        LuaFunction("set_num_threads", [.required("n", .integer)], doc: "Threads used by OpenBLAS and Tycho's kernels.") { a in
            let n = try a.integer(1)
            guard n >= 1 && n <= 256 else { throw a.argumentError(1, "an integer in 1..256, got \(n)") }
            Parallel.threads = n
            return 0
        },
        LuaFunction("num_threads", doc: "Threads used by OpenBLAS and Tycho's kernels.") { a in a.push(Parallel.threads) },
        LuaFunction("is_tensor", [.required("value", .any)], doc: "True when value is a tensor.") { a in
            a.push(a.tensorOrNil(1) != nil)
        },
        LuaFunction("cat", [.required("tensors", .table), .optional("dim", .integer, default: "1")],
                    doc: "Concatenates a list of tensors along dim.") { a in
            let ts = try a.tensorList(1)
            guard let first = ts.first else { throw a.argumentError(1, "a non-empty table of tensors, got an empty one") }
            let d = a.isNil(2) ? 0 : try a.dim(2, rank: first.rank)
            return a.push(try Tensor.cat(ts, dim: d))
        },
        LuaFunction("stack", [.required("tensors", .table), .optional("dim", .integer, default: "1")],
                    doc: "Stacks same-sized tensors along a new dimension dim.") { a in
            let ts = try a.tensorList(1)
            guard let first = ts.first else { throw a.argumentError(1, "a non-empty table of tensors, got an empty one") }
            let d = a.isNil(2) ? 0 : try a.dim(2, rank: first.rank, extra: true)
            return a.push(try Tensor.stack(ts, dim: d))
        },
        LuaFunction("where", [.required("condition", .tensor), .required("x", .tensorOrNumber), .required("y", .tensorOrNumber)],
                    doc: "Elements of x where condition is non-zero, else of y (all broadcast together).") { a in
            a.push(try Tensor.where(a.tensor(1), a.tensorOrScalar(2), a.tensorOrScalar(3)))
        },
    ]

    /// Sizes from a table argument at idx.
    static func sizesTable(_ a: LuaArgs, _ idx: Int) throws -> [Int] {
        guard a.lua.type(Int32(idx)) == LUA_TTABLE else { throw a.typeError(idx, "a table of sizes") }
        let n = a.lua.rawLength(Int32(idx))
        var out: [Int] = []
        for k in 0..<n {
            _ = a.lua.rawGet(Int32(idx), index: k + 1)
            defer { a.lua.pop() }
            guard let v = a.lua.number(-1), v == v.rounded(), v >= 0, v < 9e15 else {
                throw a.argumentError(idx, "a table of non-negative integers, got \(a.lua.typeName(-1)) at position \(k + 1)")
            }
            out.append(Int(v))
        }
        return out
    }
}

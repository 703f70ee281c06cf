// TensorBinding+Methods.swift: tensor methods (`t:sum(2)`), also callable as `tensor.sum(t, 2)`.

import CLua
import CLuaShim
import TychoTensor

extension TensorBinding {
    static let selfParam = LuaParam.required("self", .tensor)

    static func method(_ name: String, _ params: [LuaParam] = [], doc: String,
                       _ body: @escaping (LuaArgs, Tensor) throws -> Int) -> LuaFunction {
        LuaFunction(name, [selfParam] + params, method: true, doc: doc) { a in try body(a, try a.tensor(1)) }
    }

    static func unary(_ name: String, doc: String, _ f: @escaping (Tensor) throws -> Tensor) -> LuaFunction {
        method(name, doc: doc) { a, t in a.push(try f(t)) }
    }

    static func comparison(_ c: Tensor.Comparison) -> LuaFunction {
        method(c.rawValue, [.required("other", .tensorOrNumber)],
               doc: "1 where `self \(c.rawValue) other` holds, else 0 (broadcasting).") { a, t in
            if let n = a.lua.number(2) { return a.push(try t.compared(c, Float(n))) }
            return a.push(try t.compared(c, a.tensor(2)))
        }
    }

    /// A reduction with optional dim and keepdim; the full reduction when dim is nil.
    static func reduction(_ name: String, doc: String, all: @escaping (Tensor) throws -> Tensor,
                          along: @escaping (Tensor, Int, Bool) throws -> Tensor) -> LuaFunction {
        method(name, [.optional("dim", .integer), .optional("keepdim", .boolean, default: "false")], doc: doc + " " + dimDoc) { a, t in
            if a.isNil(2) { return a.push(try all(t)) }
            let d = try a.dim(2, rank: t.rank)
            return a.push(try along(t, d, try a.boolean(3, default: false)))
        }
    }

    static func extreme(_ name: String, largest: Bool) -> LuaFunction {
        method(name, [.optional("dim", .integer), .optional("keepdim", .boolean, default: "false")],
               doc: "The \(largest ? "largest" : "smallest") element (a 0-dim tensor), or along dim: values and their 1-based indices. \(dimDoc)") { a, t in
            if a.isNil(2) { return a.push(Tensor(scalar: try t.extreme(largest: largest).value)) }
            let (v, i) = try t.extreme(dim: a.dim(2, rank: t.rank), keepdim: a.boolean(3, default: false), largest: largest)
            a.push(v)
            _ = try pushIndices(a, i)
            return 2
        }
    }

    static func argExtreme(_ name: String, largest: Bool) -> LuaFunction {
        method(name, [.optional("dim", .integer), .optional("keepdim", .boolean, default: "false")],
               doc: "The 1-based index of the \(largest ? "largest" : "smallest") element (flat, a number), or a tensor of indices along dim.") { a, t in
            if a.isNil(2) { return a.push(try t.extreme(largest: largest).index + 1) }
            let (_, i) = try t.extreme(dim: a.dim(2, rank: t.rank), keepdim: a.boolean(3, default: false), largest: largest)
            return try pushIndices(a, i)
        }
    }

    static let methods: [LuaFunction] = [
        // MARK: inspect
        method("shape", doc: "The sizes as a Lua table, e.g. {2, 3}.") { a, t in
            a.lua.newTable(arrayCount: Int32(t.rank))
            for (i, s) in t.shape.enumerated() { a.lua.push(s); a.lua.rawSet(-2, index: i + 1) }
            return 1
        },
        method("size", [.optional("dim", .integer)], doc: "The size of dimension dim, or all sizes as a table. \(dimDoc)") { a, t in
            if a.isNil(2) {
                a.lua.newTable(arrayCount: Int32(t.rank))
                for (i, s) in t.shape.enumerated() { a.lua.push(s); a.lua.rawSet(-2, index: i + 1) }
                return 1
            }
            return a.push(t.shape[try a.dim(2, rank: t.rank)])
        },
        method("stride", [.optional("dim", .integer)], doc: "The stride of dimension dim (in elements), or all strides as a table.") { a, t in
            if a.isNil(2) {
                a.lua.newTable(arrayCount: Int32(t.rank))
                for (i, s) in t.strides.enumerated() { a.lua.push(s); a.lua.rawSet(-2, index: i + 1) }
                return 1
            }
            return a.push(t.strides[try a.dim(2, rank: t.rank)])
        },
        method("dim", doc: "The number of dimensions.") { a, t in a.push(t.rank) },
        method("numel", doc: "The number of elements.") { a, t in a.push(t.count) },
        method("item", doc: "The value of a one-element tensor, as a number.") { a, t in a.push(try t.item()) },
        method("totable", doc: "The values as nested Lua tables (a number for a 0-dim tensor).") { a, t in
            try pushTable(a, t); return 1
        },
        method("is_contiguous", doc: "True when the elements are laid out densely in row-major order.") { a, t in a.push(t.isContiguous) },
        // MARK: views
        method("view", [.required("size", .sizes)], doc: "A view with new sizes (one may be -1); needs a contiguous tensor.") { a, t in
            a.push(try t.view(a.sizes(from: 2, allowInfer: true)))
        },
        method("reshape", [.required("size", .sizes)], doc: "Like view, copying when the tensor is not contiguous.") { a, t in
            a.push(try t.reshape(a.sizes(from: 2, allowInfer: true)))
        },
        method("transpose", [.required("dim1", .integer), .required("dim2", .integer)], doc: "A view with two dimensions swapped.") { a, t in
            a.push(try t.transpose(a.dim(2, rank: t.rank), a.dim(3, rank: t.rank)))
        },
        method("t", doc: "The transpose of a 2-D tensor (a view).") { a, t in
            guard t.rank == 2 else { throw LuaBindingError("t() needs a 2-D tensor, got size \(Tensor.describe(t.shape)); use transpose") }
            return a.push(try t.transpose(0, 1))
        },
        method("permute", [.required("dims", .sizes)], doc: "A view with dimensions reordered: permute(2, 1, 3).") { a, t in
            let dims = try a.sizes(from: 2)
            guard dims.count == t.rank else { throw LuaBindingError("expected \(t.rank) dimensions, got \(dims.count)") }
            return a.push(try t.permute(dims.map { $0 - 1 }))
        },
        method("narrow", [.required("dim", .integer), .required("start", .integer), .required("length", .integer)],
               doc: "A view of `length` elements from index `start` (1-based) along dim.") { a, t in
            let d = try a.dim(2, rank: t.rank)
            let start = try a.integer(3), length = try a.integer(4)
            guard start >= 1 && start <= t.shape[d] + 1 else { throw a.argumentError(3, "an index in 1..\(t.shape[d]), got \(start)") }
            guard length >= 0 && start - 1 + length <= t.shape[d] else {
                throw a.argumentError(4, "a length in 0..\(t.shape[d] - start + 1), got \(length)")
            }
            return a.push(try t.narrow(d, start: start - 1, length: length))
        },
        method("select", [.required("dim", .integer), .required("index", .integer)],
               doc: "The slice at 1-based `index` along dim, with that dimension removed (a view).") { a, t in
            let d = try a.dim(2, rank: t.rank)
            let i = try a.integer(3)
            let z = i < 0 ? t.shape[d] + i : i - 1
            guard z >= 0 && z < t.shape[d] else { throw a.argumentError(3, "an index in 1..\(t.shape[d]), got \(i)") }
            return a.push(try t.select(d, z))
        },
        method("squeeze", [.optional("dim", .integer)], doc: "Removes size-1 dimensions (or only dim).") { a, t in
            a.push(try t.squeeze(a.optionalDim(2, rank: t.rank)))
        },
        method("unsqueeze", [.required("dim", .integer)], doc: "Inserts a size-1 dimension at dim (1..dim()+1).") { a, t in
            a.push(try t.unsqueeze(a.dim(2, rank: t.rank, extra: true)))
        },
        method("expand", [.required("size", .sizes)], doc: "A broadcast view to larger sizes (-1 keeps a size).") { a, t in
            a.push(try t.expand(a.sizes(from: 2, allowInfer: true)))
        },
        method("contiguous", doc: "This tensor if contiguous, else a contiguous copy.") { a, t in a.push(try t.contiguous()) },
        method("clone", doc: "A contiguous copy with its own storage.") { a, t in a.push(try t.clone()) },
        method("fill", [.required("value", .number)], doc: "Sets every element to value, in place; returns self.") { a, t in
            try t.checkInPlace("fill")
            t.fill(try a.float(2)); a.lua.pushValue(1); return 1
        },
        method("copy", [.required("source", .tensor)], doc: "Copies source (broadcast to self's size) into self, in place; returns self.") { a, t in
            try t.checkInPlace("copy")
            try t.copy(from: a.tensor(2)); a.lua.pushValue(1); return 1
        },
        // MARK: arithmetic
        LuaFunction("add", [.required("self", .tensorOrNumber), .required("other", .tensorOrNumber)], method: true, doc: "self + other, broadcasting.") { a in
            try binary(a, { try $0.adding($1) }, scalarRight: { try $0.adding($1) }, scalarLeft: { try $1.adding($0) })
        },
        LuaFunction("sub", [.required("self", .tensorOrNumber), .required("other", .tensorOrNumber)], method: true, doc: "self - other, broadcasting.") { a in
            try binary(a, { try $0.subtracting($1) }, scalarRight: { try $0.adding(-$1) }, scalarLeft: { try $1.subtracted(from: $0) })
        },
        LuaFunction("mul", [.required("self", .tensorOrNumber), .required("other", .tensorOrNumber)], method: true, doc: "self * other, element-wise with broadcasting.") { a in
            try binary(a, { try $0.multiplying($1) }, scalarRight: { try $0.multiplying($1) }, scalarLeft: { try $1.multiplying($0) })
        },
        LuaFunction("div", [.required("self", .tensorOrNumber), .required("other", .tensorOrNumber)], method: true, doc: "self / other, element-wise with broadcasting.") { a in
            try binary(a, { try $0.dividing($1) }, scalarRight: { try $0.dividing($1) }, scalarLeft: { try $1.divided(into: $0) })
        },
        LuaFunction("pow", [.required("self", .tensorOrNumber), .required("exponent", .tensorOrNumber)], method: true, doc: "self ^ exponent, element-wise with broadcasting.") { a in
            try binary(a, { try $0.pow($1) }, scalarRight: { try $0.pow($1) }, scalarLeft: { try $1.raising($0) })
        },
        method("neg", doc: "-self.") { a, t in a.push(try t.negated()) },
        method("maximum", [.required("other", .tensorOrNumber)], doc: "Element-wise maximum, broadcasting.") { a, t in
            a.push(try t.maximum(a.tensorOrScalar(2)))
        },
        method("minimum", [.required("other", .tensorOrNumber)], doc: "Element-wise minimum, broadcasting.") { a, t in
            a.push(try t.minimum(a.tensorOrScalar(2)))
        },
        unary("exp", doc: "e^x element-wise.") { try $0.exp() },
        unary("log", doc: "Natural logarithm element-wise.") { try $0.log() },
        unary("sqrt", doc: "Square root element-wise.") { try $0.sqrt() },
        unary("abs", doc: "Absolute value element-wise.") { try $0.abs() },
        unary("tanh", doc: "Hyperbolic tangent element-wise.") { try $0.tanh() },
        unary("sigmoid", doc: "1 / (1 + e^-x) element-wise.") { try $0.sigmoid() },
        unary("relu", doc: "max(x, 0) element-wise.") { try $0.relu() },
        unary("silu", doc: "x * sigmoid(x) element-wise.") { try $0.silu() },
        method("gelu", [.optional("approximate", .string, default: "\"none\"")],
               doc: "GELU element-wise: exact (erf), or approximate=\"tanh\" as GPT-2 uses.") { a, t in
            let mode = try a.string(2, default: "none")
            guard mode == "none" || mode == "tanh" else { throw a.argumentError(2, "\"none\" or \"tanh\", got \"\(mode)\"") }
            return a.push(try t.gelu(approximateTanh: mode == "tanh"))
        },
        method("clamp", [.optional("min", .number), .optional("max", .number)], doc: "Clamps into [min, max]; either bound may be nil.") { a, t in
            let lo = try a.optionalNumber(2).map(Float.init), hi = try a.optionalNumber(3).map(Float.init)
            if let lo, let hi, lo > hi { throw a.argumentError(3, "at least min (\(lo)), got \(hi)") }
            return a.push(try t.clamp(min: lo, max: hi))
        },
        comparison(.eq), comparison(.ne), comparison(.lt), comparison(.le), comparison(.gt), comparison(.ge),
        method("masked_fill", [.required("mask", .tensor), .required("value", .number)],
               doc: "A copy with value wherever mask (broadcast to self's size) is non-zero.") { a, t in
            a.push(try t.maskedFill(a.tensor(2), value: a.float(3)))
        },
        // MARK: reductions
        reduction("sum", doc: "Sum of all elements (a 0-dim tensor), or along dim.", all: { try $0.sum() },
                  along: { try $0.sum(dim: $1, keepdim: $2) }),
        reduction("mean", doc: "Mean of all elements, or along dim.", all: { try $0.mean() },
                  along: { try $0.mean(dim: $1, keepdim: $2) }),
        reduction("var", doc: "Unbiased variance (n-1), of all elements or along dim.", all: { try $0.variance() },
                  along: { try $0.variance(dim: $1, keepdim: $2) }),
        reduction("std", doc: "Unbiased standard deviation, of all elements or along dim.", all: { try $0.standardDeviation() },
                  along: { try $0.standardDeviation(dim: $1, keepdim: $2) }),
        reduction("logsumexp", doc: "log(sum(exp(x))) computed stably, of all elements or along dim.", all: { try $0.logSumExp() },
                  along: { try $0.logSumExp(dim: $1, keepdim: $2) }),
        extreme("max", largest: true), extreme("min", largest: false),
        argExtreme("argmax", largest: true), argExtreme("argmin", largest: false),
        method("softmax", [.optional("dim", .integer, default: "-1")], doc: "Softmax along dim (default: the last). \(dimDoc)") { a, t in
            guard t.rank > 0 else { throw LuaBindingError("softmax needs at least 1 dimension") }
            return a.push(try t.softmax(dim: a.isNil(2) ? t.rank - 1 : a.dim(2, rank: t.rank)))
        },
        method("log_softmax", [.optional("dim", .integer, default: "-1")], doc: "Log-softmax along dim (default: the last). \(dimDoc)") { a, t in
            guard t.rank > 0 else { throw LuaBindingError("log_softmax needs at least 1 dimension") }
            return a.push(try t.softmax(dim: a.isNil(2) ? t.rank - 1 : a.dim(2, rank: t.rank), log: true))
        },
        // MARK: products and indexing
        method("matmul", [.required("other", .tensor)],
               doc: "Matrix product (torch.matmul): 1-D dot, 2-D, and batched 3-D+ with batch broadcasting, through BLAS sgemm.") { a, t in
            a.push(try t.matmul(a.tensor(2)))
        },
        method("gather", [.required("dim", .integer), .required("index", .tensor)],
               doc: "out[i][j] = self[i][index[i][j]] for dim 2 (and likewise for other dims); index values are 1-based.") { a, t in
            a.push(try t.gather(a.dim(2, rank: t.rank), index: a.tensor(3), base: 1))
        },
        method("index_select", [.required("dim", .integer), .required("index", .tensor)],
               doc: "The slices at the 1-based positions of a 1-D index along dim.") { a, t in
            a.push(try t.indexSelect(a.dim(2, rank: t.rank), index: a.tensor(3), base: 1))
        },
    ] + autogradMethods

    static let module: LuaModule = {
        let names = Set(creation.map(\.name))
        return LuaModule(name: "tensor",
                         doc: "Float32 n-dimensional tensors on OpenBLAS. Indices and dimensions are 1-based.",
                         functions: creation + io + rngFunctions + [noGrad, enableGrad, gradEnabled] + methods.filter { !names.contains($0.name) })
    }()
}

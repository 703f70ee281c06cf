// SafeTensorsBinding.swift: `tensor.save` and `tensor.load`, safetensors files from Lua.
//
// The format work is TychoNN's (SafeTensors.swift); this file only reads Lua tables into Swift values and back.
// Names are the table's string keys; metadata is a table of strings only, as the format allows.

import CLua
import CLuaShim
import TychoNN
import TychoTensor

extension TensorBinding {
    static let io: [LuaFunction] = [
        LuaFunction("save", [.required("path", .string), .required("tensors", .table), .optional("metadata", .table)],
                    doc: """
                    Writes {name = tensor, ...} to a safetensors file as float32, replacing it atomically.
                      metadata: an optional table of string = string, stored as the header's __metadata__.
                      tensor.save("w.safetensors", {weight = w, bias = b}, {format = "pt"})
                    """) { a in
            let path = try a.string(1)
            let tensors = try namedTensors(a, 2)
            let metadata = a.isNil(3) ? nil : try stringTable(a, 3)
            try SafeTensors.save(tensors, metadata: metadata, to: path)
            return 0
        },
        LuaFunction("load", [.required("path", .string)],
                    doc: """
                    Reads a safetensors file: returns a table {name = tensor, ...} and its metadata table (empty when
                      the file has none). F32, F16, BF16, F64 and integer tensors are converted to float32.
                      local w, meta = tensor.load("model.safetensors")
                    """) { a in
            let file = try SafeTensorsFile(path: try a.string(1))
            let lua = a.lua
            guard lua.ensureStack(4) else { throw LuaBindingError("Lua stack overflow") }
            lua.newTable(recordCount: Int32(clamping: file.entries.count))
            for e in file.entries {
                lua.push(tensor: try file.tensor(e.name))
                lua.rawSet(-2, field: e.name)
            }
            let metadata = file.metadata ?? [:]
            lua.newTable(recordCount: Int32(clamping: metadata.count))
            for (k, v) in metadata {
                lua.push(v)
                lua.rawSet(-2, field: k)
            }
            return 2
        },
    ]

    /// The string-keyed tensors of the table at idx.
    static func namedTensors(_ a: LuaArgs, _ idx: Int) throws -> [(name: String, tensor: Tensor)] {
        var out: [(name: String, tensor: Tensor)] = []
        var problem: LuaBindingError?
        a.lua.forEach(Int32(idx)) {
            guard let name = a.lua.type(-2) == LUA_TSTRING ? a.lua.string(-2) : nil else {
                problem = a.argumentError(idx, "a table of name = tensor, got a \(a.lua.typeName(-2)) key")
                return false
            }
            guard let t = a.lua.object(-1, metatable: metatable, as: Tensor.self) else {
                let what = a.lua.isFinalized(-1) ? "a collected tensor" : a.lua.typeName(-1)
                problem = a.argumentError(idx, "a table of name = tensor, got \(what) for \"\(name.prefix(60))\"")
                return false
            }
            out.append((name, t))
            return true
        }
        if let problem { throw problem }
        return out
    }

    /// The table at idx as string -> string.
    static func stringTable(_ a: LuaArgs, _ idx: Int) throws -> [String: String] {
        var out: [String: String] = [:]
        var problem: LuaBindingError?
        a.lua.forEach(Int32(idx)) {
            guard let key = a.lua.type(-2) == LUA_TSTRING ? a.lua.string(-2) : nil else {
                problem = a.argumentError(idx, "a table of string = string, got a \(a.lua.typeName(-2)) key")
                return false
            }
            guard let value = a.lua.type(-1) == LUA_TSTRING ? a.lua.string(-1) : nil else {
                problem = a.argumentError(idx, "a table of string = string, got \(a.lua.typeName(-1)) for \"\(key.prefix(60))\"")
                return false
            }
            out[key] = value
            return true
        }
        if let problem { throw problem }
        return out
    }
}

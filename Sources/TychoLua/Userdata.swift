// Userdata.swift: Swift objects in Lua full userdata.
//
// The block holds one retained `Unmanaged` pointer. `__gc` releases it and clears the slot, so a second
// finalisation is harmless and a method called on a finalised object is a Lua error, never a crash.
// Each type has one metatable in the registry under a stable name (`tycho.Tensor`, ...).

import CLua
import CLuaShim
import TychoTensor

extension Lua {
    /// Pushes `object` as a new full userdata with the registered metatable `metatable`.
    public func pushObject(_ object: AnyObject, metatable: String) {
        // Lua's allocator aborts rather than returning NULL, so this cannot fail in practice.
        guard let block = tycho_newuserdata(L, MemoryLayout<UnsafeMutableRawPointer?>.size) else { pushNil(); return }
        block.storeBytes(of: Unmanaged.passRetained(object).toOpaque(), as: UnsafeMutableRawPointer?.self)
        pushRegistry()
        _ = rawGet(-1, field: metatable)
        tycho_remove(L, -2)
        lua_setmetatable(L, -2)
    }

    /// The object in the userdata at idx when it carries metatable `metatable` and is still live.
    public func object<T: AnyObject>(_ idx: Int32, metatable: String, as: T.Type) -> T? {
        guard type(idx) == LUA_TUSERDATA, let block = luaL_testudata(L, idx, metatable) else { return nil }
        guard let p = block.load(as: UnsafeMutableRawPointer?.self) else { return nil }
        return Unmanaged<AnyObject>.fromOpaque(p).takeUnretainedValue() as? T
    }

    /// True for a Tycho userdata whose object was already released.
    public func isFinalized(_ idx: Int32) -> Bool {
        guard type(idx) == LUA_TUSERDATA, lua_rawlen(L, idx) == MemoryLayout<UnsafeMutableRawPointer?>.size,
              let block = lua_touserdata(L, idx) else { return false }
        return block.load(as: UnsafeMutableRawPointer?.self) == nil
    }

    /// Releases the object in the userdata at idx (the `__gc` of every Tycho type).
    public func releaseObject(_ idx: Int32, metatable: String) {
        guard type(idx) == LUA_TUSERDATA, let block = luaL_testudata(L, idx, metatable) else { return }
        if let p = block.load(as: UnsafeMutableRawPointer?.self) {
            block.storeBytes(of: nil, as: UnsafeMutableRawPointer?.self)
            Unmanaged<AnyObject>.fromOpaque(p).release()
        }
    }

    /// Pushes a tensor, telling Lua's collector about its storage the first time it is seen, so that loops
    /// making temporaries collect them (Torch7's heap tracking).
    public func push(tensor t: Tensor) {
        if !t.storage.reportedToCollector {
            t.storage.reportedToCollector = true
            let kb = t.storage.byteCount / 1024
            if kb > 0 { _ = tycho_gc_step(L, Int32(min(kb, Int(Int32.max)))) }
        }
        pushObject(t, metatable: TensorBinding.metatable)
    }
}

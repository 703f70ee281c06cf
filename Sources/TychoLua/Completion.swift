// Completion.swift: REPL completion of globals, keywords, table fields and userdata methods.
//
// Given the text before the cursor, finds the trailing dotted/colon path (`tensor.ra`, `x:su`), resolves
// its head through raw table reads (following `__index` tables up to 20 levels, and `__methods` of Tycho
// userdata), and returns the candidates that extend the last part. Suffixes follow Mike Pall's readline
// patch: `.` after a table, `(` after a function, `:` after a userdata with methods.

import CLua
import CLuaShim

extension LuaState {
    static let keywords = ["and", "break", "do", "else", "elseif", "end", "false", "for", "function", "goto",
                           "if", "in", "local", "nil", "not", "or", "repeat", "return", "then", "true", "until", "while"]

    /// The start (in characters) of the expression being completed in `line`.
    public static func completionStart(_ line: String) -> Int {
        let chars = Array(line)
        var i = chars.count
        while i > 0 {
            let c = chars[i - 1]
            if c.isLetter || c.isNumber || c == "_" || c == "." || c == ":" { i -= 1 } else { break }
        }
        return i
    }

    /// Full replacement candidates for the expression `word` (e.g. "tensor.ra" -> ["tensor.rand", ...]).
    public func completions(for word: String) -> [String] {
        let top = lua.top
        defer { lua.top = top }
        guard lua.ensureStack(20) else { return [] }
        // Split into the resolved head and the prefix to complete.
        let sepIndex = word.lastIndex(where: { $0 == "." || $0 == ":" })
        let head = sepIndex.map { String(word[..<$0]) } ?? ""
        let sep = sepIndex.map { word[$0] }
        let prefix = sepIndex.map { String(word[word.index(after: $0)...]) } ?? word
        var candidates: [(String, Int32, Bool)] = []  // name, value type, has methods

        if head.isEmpty {
            lua.pushGlobals()
            collectKeys(lua.absolute(-1), prefix: prefix, into: &candidates, methodsOnly: false)
            for k in LuaState.keywords where k.hasPrefix(prefix) { candidates.append((k, LUA_TNONE, false)) }
        } else {
            guard resolve(head) else { return [] }
            let v = lua.absolute(-1)
            if lua.type(v) == LUA_TTABLE && sep == "." {
                collectKeys(v, prefix: prefix, into: &candidates, methodsOnly: false)
            }
            // Methods through the metatable (userdata or tables with __index).
            if lua.getMetatable(v) {
                let mt = lua.absolute(-1)
                if lua.rawGet(mt, field: "__methods") == LUA_TTABLE {
                    collectKeys(lua.absolute(-1), prefix: prefix, into: &candidates, methodsOnly: true)
                }
                lua.pop()
                if lua.rawGet(mt, field: "__index") == LUA_TTABLE {
                    followIndex(lua.absolute(-1), prefix: prefix, into: &candidates, depth: 0)
                }
                lua.pop()
            }
        }
        var seen = Set<String>()
        var out: [String] = []
        for (name, type, hasMethods) in candidates.sorted(by: { $0.0 < $1.0 }) where seen.insert(name).inserted {
            var suffix = ""
            if type == LUA_TTABLE { suffix = "." } else if type == LUA_TFUNCTION { suffix = "(" } else if type == LUA_TUSERDATA && hasMethods { suffix = ":" }
            let base = head.isEmpty ? "" : head + String(sep ?? ".")
            out.append(base + name + suffix)
        }
        return out
    }

    /// Pushes the value at a dotted path (`a.b:c` treated as `a.b.c`), returning false when it is not found.
    private func resolve(_ path: String) -> Bool {
        let parts = path.split(whereSeparator: { $0 == "." || $0 == ":" }).map(String.init)
        guard !parts.isEmpty, parts.allSatisfy({ LuaState.isIdentifier($0) }) else { return false }
        lua.pushGlobals()
        for part in parts {
            let cur = lua.absolute(-1)
            var found = false
            if lua.type(cur) == LUA_TTABLE {
                found = lua.rawGet(cur, field: part) != LUA_TNIL
                if !found { lua.pop() }
            }
            if !found, lua.getMetatable(cur) {
                let mt = lua.absolute(-1)
                if lua.rawGet(mt, field: "__methods") == LUA_TTABLE, lua.rawGet(-1, field: part) != LUA_TNIL {
                    found = true
                    tycho_replace(lua.L, mt)
                    lua.top = mt
                } else {
                    lua.top = mt - 1
                }
            }
            if !found { return false }
            tycho_remove(lua.L, cur)
        }
        return true
    }

    private func collectKeys(_ t: Int32, prefix: String, into out: inout [(String, Int32, Bool)], methodsOnly: Bool) {
        lua.forEach(t) {
            if let k = lua.string(-2), k.hasPrefix(prefix), LuaState.isIdentifier(k), !(k.hasPrefix("_") && !prefix.hasPrefix("_")) {
                let type = lua.type(-1)
                if !methodsOnly || type == LUA_TFUNCTION {
                    var hasMethods = false
                    if type == LUA_TUSERDATA, lua.getMetatable(-1) {
                        hasMethods = lua.rawGet(-1, field: "__methods") == LUA_TTABLE
                        lua.pop(2)
                    }
                    out.append((k, type, hasMethods))
                }
            }
            return true
        }
    }

    private func followIndex(_ t: Int32, prefix: String, into out: inout [(String, Int32, Bool)], depth: Int) {
        guard depth < 20 else { return }
        collectKeys(t, prefix: prefix, into: &out, methodsOnly: false)
        if lua.getMetatable(t) {
            if lua.rawGet(-1, field: "__index") == LUA_TTABLE { followIndex(lua.absolute(-1), prefix: prefix, into: &out, depth: depth + 1) }
            lua.pop(2)
        }
    }
}

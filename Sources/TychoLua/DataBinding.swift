// DataBinding.swift: the Lua module `data`: JSONL files in and out, and batches of rows for training.
//
// The format work is TychoText's (JSONParser, JSONLines, TokenBatch, BatchPlan); this file converts between
// Lua values and `JSONValue`, reads rows and options from Lua tables, and writes files atomically with
// TychoNN's AtomicFile. JSON null is the sentinel `data.null` (a unique userdata printing as `data.null`), so
// a key whose value is null is still present in its table, and an array with nulls keeps its length.
// Iterators are full userdata (`tycho.JSONLReader`, `tycho.Batches`) passed as the generic-for state to one
// step function each; a JSONL reader is also the loop's to-be-closed value, so `break` closes its file.

import CLua
import CLuaShim
import TychoNN
import TychoTensor
import TychoText

enum DataBinding {
    static let nullMetatable = "tycho.Null"
    static let readerMetatable = "tycho.JSONLReader"
    static let batchesMetatable = "tycho.Batches"
    /// Registry field holding this state's `data.null`.
    static let nullKey = "tycho.data.null"
    /// Token ids are stored in float32 tensors, exact below 2^24.
    static let maxTokenID = 1 << 24

    // MARK: null

    static func pushNull(_ lua: Lua) {
        lua.pushRegistry()
        _ = lua.rawGet(-1, field: nullKey)
        tycho_remove(lua.L, -2)
    }

    static func isNull(_ lua: Lua, _ idx: Int32) -> Bool {
        guard lua.type(idx) == LUA_TUSERDATA else { return false }
        let i = lua.absolute(idx)
        pushNull(lua)
        defer { lua.pop() }
        return lua_rawequal(lua.L, i, -1) != 0
    }

    // MARK: JSON -> Lua

    /// Pushes `v` as a Lua value: objects as tables with string keys, arrays as sequences, null as data.null.
    static func push(_ v: JSONValue, _ lua: Lua) throws {
        switch v {
        case .null: pushNull(lua)
        case .bool(let b): lua.push(b)
        case .int(let i): lua.push(i)
        case .double(let d): lua.push(d)
        case .string(let s): lua.push(s)
        case .array(let xs):
            guard lua.ensureStack(4) else { throw LuaBindingError("Lua stack overflow") }
            lua.newTable(arrayCount: Int32(clamping: xs.count))
            for (k, x) in xs.enumerated() {
                try push(x, lua)
                lua.rawSet(-2, index: k + 1)
            }
        case .object(let kv):
            guard lua.ensureStack(4) else { throw LuaBindingError("Lua stack overflow") }
            lua.newTable(recordCount: Int32(clamping: kv.count))
            for (key, x) in kv {
                try push(x, lua)
                lua.rawSet(-2, field: key)
            }
        }
    }

    static func run<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch let e as JSONLinesError { throw LuaBindingError(e.description) }
    }

    // MARK: Lua -> JSON

    /// Why a value cannot be written, and where in its row (`messages[2].content`; empty for the row).
    struct Unwritable: Error {
        let path: String
        let message: String
    }

    /// The value at idx as JSON. Tables with string keys are objects, tables with keys 1..n are arrays, an
    /// empty table is an array (`[]`) below the row; anything JSON cannot hold is an `Unwritable`.
    static func jsonValue(_ lua: Lua, _ idx: Int32, path: String, depth: Int,
                          visiting: inout Set<UnsafeRawPointer>) throws -> JSONValue {
        let idx = lua.absolute(idx)
        func fail(_ m: String) -> Unwritable { Unwritable(path: path, message: m) }
        switch lua.type(idx) {
        case LUA_TBOOLEAN: return .bool(lua.bool(idx))
        case LUA_TNUMBER:
            if lua.isInteger(idx), let i = lua.integer(idx) { return .int(i) }
            let d = lua.number(idx) ?? .nan
            guard d.isFinite else {
                throw fail("\(d.isNaN ? "nan" : d > 0 ? "inf" : "-inf") cannot be written as JSON (it has no NaN or infinities)")
            }
            return .double(d)
        case LUA_TSTRING:
            guard let s = utf8String(lua, idx) else {
                throw fail("a string with invalid UTF-8 bytes cannot be written as JSON")
            }
            return .string(s)
        case LUA_TUSERDATA:
            if isNull(lua, idx) { return .null }
            if lua.object(idx, metatable: TensorBinding.metatable, as: Tensor.self) != nil {
                throw fail("a tensor cannot be written as JSON (convert it with t:totable())")
            }
            throw fail("a userdata value cannot be written as JSON (only data.null can)")
        case LUA_TTABLE:
            return try tableValue(lua, idx, path: path, depth: depth, visiting: &visiting)
        default:
            throw fail("a \(lua.typeName(idx)) value cannot be written as JSON")
        }
    }

    /// The string at idx when it is valid UTF-8 (JSON text is Unicode; a Lua string is bytes).
    static func utf8String(_ lua: Lua, _ idx: Int32) -> String? {
        guard lua.type(idx) == LUA_TSTRING else { return nil }
        var len = 0
        guard let p = lua_tolstring(lua.L, idx, &len) else { return nil }
        return String(validating: UnsafeRawBufferPointer(start: p, count: len), as: UTF8.self)
    }

    static func tableValue(_ lua: Lua, _ idx: Int32, path: String, depth: Int,
                           visiting: inout Set<UnsafeRawPointer>) throws -> JSONValue {
        func fail(_ m: String) -> Unwritable { Unwritable(path: path, message: m) }
        guard depth < JSONParser.maxDepth else { throw fail("tables nested deeper than \(JSONParser.maxDepth) levels cannot be written as JSON") }
        guard lua.ensureStack(6) else { throw LuaBindingError("Lua stack overflow") }
        guard let p = lua_topointer(lua.L, idx) else { throw fail("an unreadable table") }
        guard visiting.insert(p).inserted else { throw fail("a table that contains itself cannot be written as JSON") }
        defer { visiting.remove(p) }
        // Classify the keys: all strings (an object) or exactly 1..n (an array).
        var count = 0, strings = 0, integers = 0, largest = 0
        var odd: String? = nil
        var badKey = false
        lua.forEach(idx) {
            count += 1
            if lua.type(-2) == LUA_TSTRING {
                strings += 1
                if !badKey, utf8String(lua, -2) == nil { badKey = true }
            } else if lua.isInteger(-2), let k = lua.integer(-2), k >= 1 {
                integers += 1
                largest = Swift.max(largest, k)
            } else {
                odd = lua.type(-2) == LUA_TNUMBER ? "the key \(lua.toDisplayString(-2))" : "a \(lua.typeName(-2)) key"
                return false
            }
            return true
        }
        if let odd { throw fail("a table with \(odd) cannot be written as JSON") }
        if badKey { throw fail("a key with invalid UTF-8 bytes cannot be written as JSON") }
        if strings > 0 && integers > 0 {
            throw fail("a table with both list entries and named fields cannot be written as JSON")
        }
        if integers > 0 {
            guard largest == integers else {
                throw fail("a list with holes (\(integers) entries, largest index \(largest)) cannot be written as JSON")
            }
            var items: [JSONValue] = []
            items.reserveCapacity(integers)
            for k in 1...integers {
                _ = lua.rawGet(idx, index: k)
                defer { lua.pop() }
                items.append(try jsonValue(lua, -1, path: "\(path)[\(k)]", depth: depth + 1, visiting: &visiting))
            }
            return .array(items)
        }
        if strings == 0 { return depth == 0 ? .object([]) : .array([]) }
        var pairs: [(String, JSONValue)] = []
        pairs.reserveCapacity(strings)
        var problem: Error? = nil
        lua.forEach(idx) {
            let key = utf8String(lua, -2) ?? ""
            do {
                let sub = path.isEmpty ? key : "\(path).\(key)"
                pairs.append((key, try jsonValue(lua, -1, path: sub, depth: depth + 1, visiting: &visiting)))
                return true
            } catch {
                problem = error
                return false
            }
        }
        if let problem { throw problem }
        return .object(pairs)
    }

    /// Row `number` (at idx) as a JSON object, or a binding error naming the row and field.
    static func rowValue(_ lua: Lua, _ idx: Int32, number: Int) throws -> JSONValue {
        guard lua.type(idx) == LUA_TTABLE else {
            throw LuaBindingError("row \(number) must be a table (a JSON object), got \(lua.typeName(idx))")
        }
        var visiting = Set<UnsafeRawPointer>()
        do {
            let v = try jsonValue(lua, idx, path: "", depth: 0, visiting: &visiting)
            guard case .object = v else {
                throw LuaBindingError("row \(number) must be a table with named fields (a JSON object), got a list")
            }
            return v
        } catch let u as Unwritable {
            throw LuaBindingError(u.path.isEmpty ? "row \(number): \(u.message)" : "row \(number): field \(u.path): \(u.message)")
        }
    }

    // MARK: argument helpers

    /// The length of the list of rows at idx, refusing tables with other keys (a single row passed alone,
    /// or a list with holes).
    static func listCount(_ a: LuaArgs, _ idx: Int) throws -> Int {
        let n = a.lua.rawLength(Int32(idx))
        var total = 0
        a.lua.forEach(Int32(idx)) { total += 1; return true }
        if total != n {
            if n == 0 {
                throw a.argumentError(idx, "a list of rows, got a table with named fields (one row? put it in a list: {row})")
            }
            throw a.argumentError(idx, "a list of rows (entries 1..n), got a table with holes or other keys")
        }
        return n
    }

    /// The UTF-8 string field `key` of the table at idx, nil when absent.
    static func stringField(_ lua: Lua, _ idx: Int32, _ key: String, row: Int) throws -> String? {
        let t = lua.rawGet(idx, field: key)
        defer { lua.pop() }
        if t == LUA_TNIL { return nil }
        guard t == LUA_TSTRING else { throw LuaBindingError("row \(row): \(key) must be a string, got \(lua.typeName(-1))") }
        guard let s = utf8String(lua, -1) else {
            throw LuaBindingError("row \(row): \(key) must be valid UTF-8 text, got a string with invalid UTF-8 bytes")
        }
        return s
    }

    /// The list of integers in field `key` of the table at idx (nil when absent), each in `range`.
    static func intListField(_ lua: Lua, _ idx: Int32, _ key: String, row: Int, range: ClosedRange<Int>,
                             what: String) throws -> [Int]? {
        let t = lua.rawGet(idx, field: key)
        defer { lua.pop() }
        if t == LUA_TNIL { return nil }
        guard t == LUA_TTABLE else { throw LuaBindingError("row \(row): \(key) must be a list of \(what)s, got \(lua.typeName(-1))") }
        let n = lua.rawLength(-1)
        var out: [Int] = []
        out.reserveCapacity(n)
        for k in 0..<n {
            _ = lua.rawGet(-1, index: k + 1)
            defer { lua.pop() }
            let v: Double
            if lua.type(-1) == LUA_TBOOLEAN && what == "mask value" {
                v = lua.bool(-1) ? 1 : 0
            } else if let x = lua.number(-1) {
                v = x
            } else {
                throw LuaBindingError("row \(row): \(key)[\(k + 1)] must be a \(what) in \(range.lowerBound)..\(range.upperBound), got \(lua.typeName(-1))")
            }
            guard v == v.rounded(), v >= Double(range.lowerBound), v <= Double(range.upperBound) else {
                throw LuaBindingError("row \(row): \(key)[\(k + 1)] must be a \(what) in \(range.lowerBound)..\(range.upperBound), got \(LuaArgs.formatNumber(v))")
            }
            out.append(Int(v))
        }
        return out
    }

    // MARK: token rows

    /// What a token-mode row holds.
    enum Source {
        case text(String)
        case pair(prompt: String, completion: String)
        case ids([Int], mask: [Bool])
    }

    /// Reads row `number` (at idx) of a token batch: `{ids=, [mask=]}`, or with a tokenizer also `{text=}`
    /// or `{prompt=, completion=}`.
    static func source(_ lua: Lua, _ idx: Int32, number r: Int, tokenizer: Tokenizer?) throws -> Source {
        let idx = lua.absolute(idx)
        guard lua.type(idx) == LUA_TTABLE else {
            let what = lua.type(idx) == LUA_TNIL ? "nil (the rows table changed while iterating?)" : lua.typeName(idx)
            throw LuaBindingError("row \(r) must be a table, got \(what)")
        }
        let text = try stringField(lua, idx, "text", row: r)
        let prompt = try stringField(lua, idx, "prompt", row: r)
        let completion = try stringField(lua, idx, "completion", row: r)
        let hasIds = lua.rawGet(idx, field: "ids") != LUA_TNIL
        lua.pop()
        if hasIds {
            guard text == nil && prompt == nil && completion == nil else {
                throw LuaBindingError("row \(r) has both ids and text or prompt/completion; give one")
            }
            let top = (tokenizer?.vocabSize ?? maxTokenID) - 1
            let ids = try intListField(lua, idx, "ids", row: r, range: 0...top, what: "token id") ?? []
            if let t = tokenizer, let bad = ids.firstIndex(where: { t.token(for: $0) == nil }) {
                throw LuaBindingError("row \(r): ids[\(bad + 1)] = \(ids[bad]) is not in the tokenizer's vocabulary")
            }
            let mask = try intListField(lua, idx, "mask", row: r, range: 0...1, what: "mask value")
            if let mask, mask.count != ids.count {
                throw LuaBindingError("row \(r): mask must have as many entries as ids (\(mask.count) vs \(ids.count))")
            }
            return .ids(ids, mask: mask.map { $0.map { $0 == 1 } } ?? Array(repeating: true, count: ids.count))
        }
        guard tokenizer != nil else {
            throw LuaBindingError("row \(r) has no ids (without a tokenizer option, rows must be {ids = {...}[, mask = {...}]})")
        }
        if let text {
            guard prompt == nil && completion == nil else {
                throw LuaBindingError("row \(r) has both text and prompt/completion; give one")
            }
            return .text(text)
        }
        if let prompt, let completion { return .pair(prompt: prompt, completion: completion) }
        if prompt != nil { throw LuaBindingError("row \(r) has a prompt but no completion") }
        if completion != nil { throw LuaBindingError("row \(r) has a completion but no prompt") }
        let messages = lua.rawGet(idx, field: "messages") != LUA_TNIL
        lua.pop()
        throw LuaBindingError("row \(r) needs text, or prompt and completion (strings)"
            + (messages ? "; conversational rows (messages) need a chat template, which tok does not have yet" : ""))
    }

    static func example(_ s: Source, _ it: BatchIterator) throws -> TokenizedExample {
        var e: TokenizedExample
        switch (s, it.tokenizer) {
        case (.text(let text), let t?): e = t.example(text: text, addSpecial: it.addSpecial)
        case (.pair(let p, let c), let t?): e = t.example(prompt: p, completion: c, addSpecial: it.addSpecial)
        case (.ids(let ids, let mask), _): e = TokenizedExample(ids: ids, mask: mask)
        default: throw LuaBindingError("a text row without a tokenizer")  // `source` refuses these first
        }
        if let m = it.maxLength { e.truncate(to: m) }
        return e
    }

    // MARK: iterators

    /// The state of one `data.batches` loop: which rows go in each batch, and how token batches are made.
    /// The rows table itself is the userdata's user value, so it lives as long as the iterator.
    final class BatchIterator {
        let plan: [[Int]]
        var next = 0
        let tokenMode: Bool
        let tokenizer: Tokenizer?
        let maxLength: Int?
        let addSpecial: Bool
        let padID: Int

        init(plan: [[Int]], tokenMode: Bool, tokenizer: Tokenizer?, maxLength: Int?, addSpecial: Bool, padID: Int) {
            self.plan = plan; self.tokenMode = tokenMode; self.tokenizer = tokenizer
            self.maxLength = maxLength; self.addSpecial = addSpecial; self.padID = padID
        }
    }

    static let iteratorParams: [LuaParam] = [.required("state", .any), .optional("control", .any)]

    /// The step of `data.jsonl_rows`: (row number, row, line number), or nil at the end.
    static let jsonlStep: LuaFunction = {
        let f = LuaFunction("jsonl_rows", iteratorParams, doc: "The step function of a data.jsonl_rows loop: returns the row number, the row and its line number, or nil at the end.") { a in
            guard let reader = a.lua.object(1, metatable: readerMetatable, as: JSONLinesReader.self) else {
                throw a.typeError(1, "a data.jsonl_rows reader")
            }
            guard let (line, row) = try run({ try reader.next() }) else {
                reader.close()
                a.lua.pushNil()
                return 1
            }
            a.lua.push(reader.rowCount)
            try push(row, a.lua)
            a.lua.push(line)
            return 3
        }
        f.module = "data"
        return f
    }()

    /// The step of `data.batches`: (batch number, batch), or nil at the end.
    static let batchesStep: LuaFunction = {
        let f = LuaFunction("batches", iteratorParams, doc: "The step function of a data.batches loop: returns the batch number and the batch, or nil at the end.") { a in
            guard let it = a.lua.object(1, metatable: batchesMetatable, as: BatchIterator.self) else {
                throw a.typeError(1, "a data.batches iterator")
            }
            guard it.next < it.plan.count else { a.lua.pushNil(); return 1 }
            let lua = a.lua
            guard lua.ensureStack(8) else { throw LuaBindingError("Lua stack overflow") }
            guard tycho_getuservalue(lua.L, 1) == LUA_TTABLE else { throw LuaBindingError("the iterator lost its rows") }
            let rows = lua.absolute(-1)
            let indices = it.plan[it.next]
            it.next += 1
            if !it.tokenMode {
                lua.push(it.next)
                lua.newTable(arrayCount: Int32(clamping: indices.count))
                for (k, i) in indices.enumerated() {
                    guard lua.rawGet(rows, index: i + 1) != LUA_TNIL else {
                        throw LuaBindingError("row \(i + 1) is missing (the rows table changed while iterating?)")
                    }
                    lua.rawSet(-2, index: k + 1)
                }
                return 2
            }
            var examples: [TokenizedExample] = []
            examples.reserveCapacity(indices.count)
            for i in indices {
                _ = lua.rawGet(rows, index: i + 1)
                defer { lua.pop() }
                examples.append(try example(try source(lua, -1, number: i + 1, tokenizer: it.tokenizer), it))
            }
            let batch = TokenBatch(examples, padID: it.padID)
            lua.push(it.next)
            lua.newTable(recordCount: 5)
            a.push(try Tensor(shape: [batch.size, batch.length], values: batch.ids))  // (B, T)
            lua.rawSet(-2, field: "ids")
            a.push(try Tensor(shape: [batch.size, batch.length], values: batch.mask))  // (B, T)
            lua.rawSet(-2, field: "mask")
            lua.newTable(arrayCount: Int32(clamping: indices.count))
            for (k, i) in indices.enumerated() {
                _ = lua.rawGet(rows, index: i + 1)
                lua.rawSet(-2, index: k + 1)
            }
            lua.rawSet(-2, field: "rows")
            lua.newTable(arrayCount: Int32(clamping: indices.count))
            for (k, n) in batch.lengths.enumerated() { lua.push(n); lua.rawSet(-2, index: k + 1) }
            lua.rawSet(-2, field: "lengths")
            lua.push(batch.truncated)
            lua.rawSet(-2, field: "truncated")
            return 2
        }
        f.module = "data"
        return f
    }()

    // MARK: metamethods

    static func metamethods(_ metatable: String, describe: @escaping (LuaArgs) -> String,
                            close: ((LuaArgs) -> Void)? = nil) -> [String: LuaFunction] {
        var table: [String: LuaFunction] = [
            "__tostring": LuaFunction("__tostring", [.required("self", .any)], doc: "A short description.") { a in
                a.push(describe(a))
            },
            "__gc": LuaFunction("__gc", [.optional("self", .any)], doc: "Releases the iterator.") { a in
                a.lua.releaseObject(1, metatable: metatable)
                return 0
            },
        ]
        if let close {
            table["__close"] = LuaFunction("__close", [.optional("self", .any), .optional("error", .any)],
                                           doc: "Closes the file when a loop over it ends.") { a in
                close(a)
                return 0
            }
        }
        for f in table.values { f.module = "data" }
        return table
    }

    static let readerMetamethods = metamethods(readerMetatable, describe: { a in
        guard let r = a.lua.object(1, metatable: readerMetatable, as: JSONLinesReader.self) else { return "data.jsonl_rows reader (released)" }
        return "data.jsonl_rows(\"\(r.path)\"): \(r.isClosed ? "closed" : "at line \(r.lineNumber)")"
    }, close: { a in
        a.lua.object(1, metatable: readerMetatable, as: JSONLinesReader.self)?.close()
    })

    static let batchesMetamethods = metamethods(batchesMetatable, describe: { a in
        guard let it = a.lua.object(1, metatable: batchesMetatable, as: BatchIterator.self) else { return "data.batches iterator (released)" }
        return "data.batches iterator: \(it.next) of \(it.plan.count) batches done"
    })

    static let nullMetamethods: [String: LuaFunction] = {
        let f = LuaFunction("__tostring", [.required("self", .any)], doc: "data.null prints as data.null.") { a in a.push("data.null") }
        f.module = "data"
        return ["__tostring": f]
    }()

    // MARK: module

    static let functions: [LuaFunction] = [
        LuaFunction("jsonl", [.required("path", .string)], doc: """
            Reads a JSONL file (one JSON object per line) into a list of rows. Objects become tables with string
              keys, arrays 1-based lists, integers integers and other numbers floats, null becomes data.null.
              Blank lines are skipped; a line that is not valid JSON or not an object is an error naming the
              file and line (path:17: ...). For files too large to hold, use data.jsonl_rows.
              rows = data.jsonl("train.jsonl"); print(#rows, rows[1].prompt)
            """) { a in
            let path = try a.string(1)
            let reader = try run { try JSONLinesReader(path: path) }
            let lua = a.lua
            lua.newTable()
            while let (_, row) = try run({ try reader.next() }) {
                try push(row, lua)
                lua.rawSet(-2, index: reader.rowCount)
            }
            return 1
        },
        LuaFunction("jsonl_rows", [.required("path", .string)], doc: """
            Iterates over the rows of a JSONL file, reading one line at a time (for files too large to hold):
              for i, row, line in data.jsonl_rows("train.jsonl") do ... end
              i counts rows (blank lines skipped), line is the file's line number. Rows are converted as by
              data.jsonl; a bad line is an error naming the file and line. Leaving the loop closes the file.
            """) { a in
            let path = try a.string(1)
            let reader = try run { try JSONLinesReader(path: path) }
            let lua = a.lua
            lua.push(jsonlStep)
            lua.pushObject(reader, metatable: readerMetatable)
            lua.push(0)
            lua.pushValue(-2)  // the reader again, as the loop's to-be-closed value
            return 4
        },
        LuaFunction("write_jsonl", [.required("path", .string), .required("rows", .table)], doc: """
            Writes a list of rows to a JSONL file, one JSON object per line, replacing it atomically (a
              temporary file in the same directory, flushed and renamed). Returns the number of rows written.
              Keys are written sorted, so the same rows give the same bytes. Tables with string keys become
              objects, lists arrays (an empty table is [] inside a row), data.null null. Functions, tensors,
              other userdata, cycles, NaN and infinities, mixed or holey tables are errors naming the row and
              field; the file is then left as it was.
            """) { a in
            let path = try a.string(1)
            let n = try listCount(a, 2)
            let lua = a.lua
            try AtomicFile.write(to: path) { sink in
                var buffer: [UInt8] = []
                buffer.reserveCapacity(1 << 16)
                for r in 1...Swift.max(n, 1) where r <= n {
                    _ = lua.rawGet(2, index: r)
                    defer { lua.pop() }
                    let line = try rowValue(lua, -1, number: r).line
                    buffer.append(contentsOf: line.utf8)
                    buffer.append(0x0A)
                    if buffer.count >= 1 << 20 {
                        try sink.write(buffer)
                        buffer.removeAll(keepingCapacity: true)
                    }
                }
                try sink.write(buffer)
            }
            return a.push(n)
        },
        LuaFunction("batches", [.required("rows", .table), .required("options", .table)], doc: """
            Iterates over batches of rows: for i, batch in data.batches(rows, {batch_size = 8}) do ... end
              options: batch_size (required), shuffle=false, seed (an integer; without it shuffling draws from
              the generator tensor.manual_seed seeds), drop_last=false (drop a last, smaller batch).
              The shuffled order is a Fisher-Yates shuffle fixed by the seed: the same on every run.
              Each batch is a list of rows. With tokenizer= (or rows that are {ids = {...}[, mask = {...}]})
              a batch is a table {ids = Tensor(B, T), mask = Tensor(B, T), rows = {...}, lengths = {...},
              truncated = n}: rows {text = s} count every token, rows {prompt = p, completion = c} only the
              completion's (prompt and completion encoded separately, so the prompt's tokens are those
              generation sees). Right-padded with pad_id (default: the tokenizer's pad token, a special token
              named like <pad> or <|pad|>, else 0); mask is 1 on counted tokens, 0 on prompt and padding.
              max_length= keeps each row's first tokens and counts the cut rows in truncated. add_special=true
              is passed to encode. Token ids are 0-based values, stored as float32.
            """) { a in
            let n = try listCount(a, 1)
            try TokBinding.checkOptions(a, 2, ["batch_size", "shuffle", "seed", "drop_last", "tokenizer",
                                                "max_length", "add_special", "pad_id"])
            guard let batchSize = try TokBinding.intOption(a, 2, "batch_size") else {
                throw a.argumentError(2, "a table with batch_size = an integer")
            }
            guard batchSize >= 1 else { throw a.argumentError(2, "a table with batch_size >= 1, got \(batchSize)") }
            let shuffle = try TokBinding.boolOption(a, 2, "shuffle", default: false)
            let dropLast = try TokBinding.boolOption(a, 2, "drop_last", default: false)
            let seed = try TokBinding.intOption(a, 2, "seed")
            let tokenizer = try tokenizerOption(a, 2)
            let maxLength = try TokBinding.intOption(a, 2, "max_length")
            if let m = maxLength, m < 1 { throw a.argumentError(2, "a table with max_length >= 1, got \(m)") }
            let addSpecialGiven = try TokBinding.boolOption(a, 2, "add_special", default: true)
            if tokenizer == nil, optionPresent(a, 2, "add_special") {
                throw a.argumentError(2, "a table with a tokenizer when add_special is given")
            }
            let padGiven = try TokBinding.intOption(a, 2, "pad_id")
            let limit = (tokenizer?.vocabSize ?? maxTokenID) - 1
            if let p = padGiven, p < 0 || p > limit {
                throw a.argumentError(2, "a table with pad_id in 0..\(limit), got \(p)")
            }
            let lua = a.lua
            // Token mode: a tokenizer, or rows that already hold ids.
            var tokenMode = tokenizer != nil
            if !tokenMode && n > 0 {
                if lua.rawGet(1, index: 1) == LUA_TTABLE {
                    tokenMode = lua.rawGet(-1, field: "ids") != LUA_TNIL
                    lua.pop()
                }
                lua.pop()
            }
            if !tokenMode && (maxLength != nil || padGiven != nil) {
                throw a.argumentError(2, "a table with a tokenizer (or rows with ids) when max_length or pad_id is given")
            }
            // Check every token row now, so a bad row fails before training starts, not at its batch.
            if tokenMode {
                for r in 1...Swift.max(n, 1) where r <= n {
                    _ = lua.rawGet(1, index: r)
                    defer { lua.pop() }
                    _ = try source(lua, -1, number: r, tokenizer: tokenizer)
                }
            }
            var order = Array(0..<n)
            if shuffle {
                if let seed {
                    var g = RandomGenerator(seed: UInt64(bitPattern: Int64(seed)))
                    order = BatchPlan.shuffled(n) { Int(g.nextInt(below: UInt64($0))) }
                } else {
                    let state = a.state
                    order = BatchPlan.shuffled(n) { Int(state.generator.nextInt(below: UInt64($0))) }
                }
            }
            let it = BatchIterator(plan: BatchPlan.batches(order, batchSize: batchSize, dropLast: dropLast),
                                   tokenMode: tokenMode, tokenizer: tokenizer, maxLength: maxLength,
                                   addSpecial: addSpecialGiven, padID: padGiven ?? tokenizer?.padTokenID ?? 0)
            lua.push(batchesStep)
            lua.pushObject(it, metatable: batchesMetatable)
            lua.pushValue(1)
            _ = tycho_setuservalue(lua.L, -2)  // the iterator keeps the rows table alive
            lua.push(0)
            return 3
        },
    ]

    /// True when the options table at idx has field `key`.
    static func optionPresent(_ a: LuaArgs, _ idx: Int, _ key: String) -> Bool {
        guard !a.isNil(idx) else { return false }
        let t = a.lua.rawGet(Int32(idx), field: key)
        a.lua.pop()
        return t != LUA_TNIL
    }

    /// The `tokenizer` option of the options table at idx.
    static func tokenizerOption(_ a: LuaArgs, _ idx: Int) throws -> Tokenizer? {
        let t = a.lua.rawGet(Int32(idx), field: "tokenizer")
        defer { a.lua.pop() }
        if t == LUA_TNIL { return nil }
        if let tok = a.lua.object(-1, metatable: TokBinding.metatable, as: Tokenizer.self) { return tok }
        if a.lua.isFinalized(-1) {
            throw a.argumentError(idx, "a table whose field 'tokenizer' is a live tokenizer, got one that was already collected")
        }
        throw a.argumentError(idx, "a table whose field 'tokenizer' is a tokenizer (tok.load), got \(a.lua.typeName(-1))")
    }

    static let module = LuaModule(name: "data", doc: "JSONL data files and training batches: jsonl, jsonl_rows, write_jsonl, batches; preference pairs: preferences, audit; data.null stands for JSON null.",
                                  functions: functions + PreferenceBinding.dataFunctions)

    /// Registers the `data` module, its iterator types and this state's `data.null` in `state`.
    static func register(in state: LuaState) {
        let lua = state.lua
        // Types without methods: no `__methods` table, so completion does not offer `x:` after them.
        for (name, metamethods) in [(readerMetatable, readerMetamethods), (batchesMetatable, batchesMetamethods),
                                    (nullMetatable, nullMetamethods)] {
            _ = luaL_newmetatable(lua.L, name)
            for (key, f) in metamethods {
                lua.push(f)
                lua.rawSet(-2, field: key)
            }
            lua.pop()
        }
        // data.null: a zero-size userdata, unique per state, kept in the registry.
        _ = tycho_newuserdata(lua.L, 0)
        lua.pushRegistry()
        _ = lua.rawGet(-1, field: nullMetatable)
        tycho_remove(lua.L, -2)
        lua_setmetatable(lua.L, -2)
        lua.pushRegistry()
        lua.pushValue(-2)
        lua.rawSet(-2, field: nullKey)
        lua.pop()
        state.register(module)
        // package.loaded.data.null = data.null
        lua.pushRegistry()
        _ = lua.rawGet(-1, field: "_LOADED")
        _ = lua.rawGet(-1, field: module.name)
        lua.pushValue(-4)
        lua.rawSet(-2, field: "null")
        lua.pop(4)
    }
}

// LuaFileTests.swift: runs every Tests/lua/*.lua file through a fresh LuaState.
//
// The Lua files use a small assertion library defined in `LuaHarness.prelude` (check, check_eq, check_close,
// check_error, test). Each assertion is counted; a file passes when it made at least one assertion and
// none failed, and did not raise.

import Foundation
import Testing
import TychoLua

enum LuaHarness {
    static let luaDirectory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("lua")

    static func files() -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: luaDirectory.path)) ?? []
        return names.filter { $0.hasSuffix(".lua") }.sorted()
    }

    static let prelude = #"""
    local T = {passed = 0, failed = 0, failures = {}, current = nil}
    _TEST = T
    local function where()
      for level = 3, 12 do
        local info = debug.getinfo(level, "Sl")
        if info and info.what ~= "C" and not info.short_src:find("harness") then
          return info.short_src .. ":" .. (info.currentline or 0)
        end
      end
      return "?"
    end
    local function record(ok, msg)
      if ok then T.passed = T.passed + 1 return true end
      T.failed = T.failed + 1
      local label = T.current and ("[" .. T.current .. "] ") or ""
      T.failures[#T.failures + 1] = where() .. ": " .. label .. tostring(msg or "check failed")
      return false
    end
    function check(cond, msg) return record(cond and true or false, msg) end
    function check_eq(a, b, msg)
      return record(a == b, (msg or "check_eq") .. ": expected " .. tostring(b) .. ", got " .. tostring(a))
    end
    local function flatten(x, out)
      out = out or {}
      if type(x) == "number" then out[#out + 1] = x
      elseif tensor.is_tensor(x) then
        local t = x:dim() == 0 and {x:item()} or x:contiguous():view(-1):totable()
        for _, v in ipairs(t) do out[#out + 1] = v end
      elseif type(x) == "table" then for _, v in ipairs(x) do flatten(v, out) end
      else error("check_close: cannot compare a " .. type(x)) end
      return out
    end
    local function shape_of(x)
      if tensor.is_tensor(x) then return table.concat(x:shape(), "x") end
      return nil
    end
    -- Compares numbers, tensors or nested tables elementwise: |a - b| <= atol + rtol * |b|.
    function check_close(a, b, tol, msg)
      tol = tol or 1e-5
      local sa, sb = shape_of(a), shape_of(b)
      if sa and sb and sa ~= sb then
        return record(false, (msg or "check_close") .. ": shape " .. sa .. " vs " .. sb)
      end
      local fa, fb = flatten(a), flatten(b)
      if #fa ~= #fb then
        return record(false, (msg or "check_close") .. ": " .. #fa .. " values vs " .. #fb)
      end
      local worst, at = 0, nil
      for i = 1, #fa do
        local x, y = fa[i], fb[i]
        local bad
        if y ~= y then bad = x == x
        elseif y == math.huge or y == -math.huge then bad = x ~= y
        else
          local d = math.abs(x - y)
          bad = not (d <= tol + tol * math.abs(y))
          if d > worst then worst = d end
        end
        if bad and not at then at = i end
      end
      return record(at == nil, (msg or "check_close") .. (at and (": element " .. at .. " is " .. tostring(fa[at])
        .. ", expected " .. tostring(fb[at])) or "") .. " (maxdiff " .. worst .. ")")
    end
    -- Expects fn to raise an error whose message contains `fragment` (plain text).
    function check_error(fn, fragment, msg)
      local ok, err = pcall(fn)
      if ok then return record(false, (msg or "check_error") .. ": no error raised") end
      err = tostring(err)
      if fragment and not err:find(fragment, 1, true) then
        return record(false, (msg or "check_error") .. ": error '" .. err .. "' lacks '" .. fragment .. "'")
      end
      return record(true)
    end
    function test(name, fn)
      T.current = name
      local ok, err = xpcall(fn, debug.traceback)
      if not ok then record(false, "error: " .. tostring(err)) end
      T.current = nil
    end
    """#

    /// Runs one file; returns (passed, failed, messages).
    static func run(_ name: String) throws -> (Int, Int, [String]) {
        let state = try LuaState()
        let dir = luaDirectory.path
        if let e = state.execute("package.path = '\(dir)/?.lua;' .. package.path; TEST_DIR = '\(dir)'", chunkName: "=harness") {
            return (0, 1, [e])
        }
        if let e = state.execute(prelude, chunkName: "=harness") { return (0, 1, [e]) }
        var messages: [String] = []
        if let e = state.executeFile("\(dir)/\(name)") { messages.append("raised: \(e)") }
        guard state.execute("""
            local T = _TEST
            _TEST_SUMMARY = T.passed .. "\\n" .. T.failed .. "\\n" .. table.concat(T.failures, "\\n")
            """, chunkName: "=harness") == nil else { return (0, 1, ["no summary"]) }
        let summary = try #require(state.globalString("_TEST_SUMMARY"))
        let parts = summary.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let passed = Int(parts[0]) ?? 0, failed = Int(parts[1]) ?? 0
        messages += parts.dropFirst(2).filter { !$0.isEmpty }
        return (passed, failed + (messages.count > max(failed, 0) ? 1 : 0), messages)
    }
}

@Suite struct LuaFileTests {
    @Test(arguments: LuaHarness.files())
    func luaFile(_ name: String) throws {
        let (passed, failed, messages) = try LuaHarness.run(name)
        print("lua: \(name): \(passed) passed, \(failed) failed")
        for m in messages { Issue.record("\(name): \(m)") }
        #expect(failed == 0)
        #expect(passed > 0, "\(name) made no assertion")
    }
}

-- safetensors.lua: tensor.save and tensor.load.
--
-- Round trips of random, strided, expanded, 0-dim and empty tensors with metadata; bad arguments; the files
-- the reference library wrote (Tests/Fixtures/safetensors, values in expected.lua, from the committed
-- gen_safetensors_fixtures.py); and damaged files, which must give Lua errors naming the file, never a crash.

local FIX = TEST_DIR .. "/../Fixtures/safetensors/"
local EXPECTED = dofile(FIX .. "expected.lua")

-- A fresh temporary path (os.tmpname creates the file; save replaces it).
local temps = {}
local function tmp()
  local p = os.tmpname()
  temps[#temps + 1] = p
  return p
end

local function write_bytes(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end

local function read_bytes(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

-- Header length, header text and data of a file's bytes.
local function split(bytes)
  local n = string.unpack("<I8", bytes)
  return n, bytes:sub(9, 8 + n), bytes:sub(9 + n)
end

local function with_header(header, data) return string.pack("<I8", #header) .. header .. data end

local function count(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n
end

-- MARK: round trips

test("save and load random and strided tensors", function()
  tensor.manual_seed(7)
  local m = tensor.randn(3, 4, 5)
  local ts = {
    ["h.0.mlp.c_fc.weight"] = tensor.randn(4, 16),
    transposed = m:transpose(1, 3),
    narrowed = m:narrow(2, 2, 2),
    selected = m:select(3, 2),
    expanded = tensor.new{{1}, {2}, {3}}:expand(3, 4),
    scalar = tensor.new(-1.5),
    empty = tensor.zeros(0, 3),
    wide = tensor.rand(2, 0, 7),
    ["name with \"quotes\", é and \n"] = tensor.arange(5),
  }
  local path = tmp()
  tensor.save(path, ts, {format = "pt", step = "100", ["ключ"] = "значение ✓", empty = ""})
  local loaded, meta = tensor.load(path)
  check_eq(count(loaded), count(ts), "tensor count")
  for name, t in pairs(ts) do
    local got = loaded[name]
    check(tensor.is_tensor(got), "loaded " .. name)
    if got then
      check_close(got, t, 0, name)
      check(got:is_contiguous(), name .. " is contiguous")
    end
  end
  check_eq(meta.format, "pt", "metadata format")
  check_eq(meta.step, "100", "metadata step")
  check_eq(meta["ключ"], "значение ✓", "unicode metadata")
  check_eq(meta.empty, "", "empty metadata value")
  check_eq(count(meta), 4, "metadata count")
  -- The view was saved, not its whole storage.
  check_eq(loaded.narrowed:numel(), 30, "narrowed numel")
  -- Saving again replaces the file.
  tensor.save(path, {only = tensor.ones(2)})
  local again, meta2 = tensor.load(path)
  check_eq(count(again), 1, "replaced")
  check_close(again.only, tensor.ones(2), 0, "replaced values")
  check_eq(next(meta2), nil, "no metadata gives an empty table")
end)

test("file layout matches the reference writer", function()
  local path = tmp()
  tensor.save(path, {b = tensor.ones(2, 3), a = tensor.zeros(1)}, {format = "pt"})
  local bytes = read_bytes(path)
  local n, header, data = split(bytes)
  check_eq((8 + n) % 8, 0, "header padded to a multiple of 8")
  check_eq(header:gsub(" +$", ""),
    '{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},'
    .. '"b":{"dtype":"F32","shape":[2,3],"data_offsets":[4,28]}}', "header text")
  check_eq(#data, 28, "data bytes")
  check_eq(string.unpack("<f", data, 5), 1.0, "first value of b, little-endian float32")
  -- An empty table of tensors is a valid (empty) file.
  tensor.save(path, {})
  check_eq(read_bytes(path), string.pack("<I8", 8) .. "{}      ", "empty file")
  local t, m = tensor.load(path)
  check(next(t) == nil and next(m) == nil, "loads as two empty tables")
end)

test("loaded tensors are independent of the file", function()
  local path = tmp()
  local x = tensor.randn(4)
  tensor.save(path, {x = x})
  local a = tensor.load(path).x
  local b = tensor.load(path).x
  a[1] = 100
  check(b[1] ~= 100, "two loads do not share storage")
  os.remove(path)
  check_close(b, x, 0, "still readable after the file is gone")
  collectgarbage()
end)

-- MARK: reference files

test("files written by safetensors 0.8.0", function()
  for file, want in pairs(EXPECTED) do
    local loaded, meta = tensor.load(FIX .. file .. ".safetensors")
    check_eq(count(loaded), count(want.tensors), file .. ": tensor count")
    for name, w in pairs(want.tensors) do
      local got = loaded[name]
      check(got ~= nil, file .. ": " .. name .. " present")
      if got then
        check_eq(table.concat(got:shape(), "x"), table.concat(w.s, "x"), file .. ": " .. name .. " shape")
        if #w.d > 0 then check_close(got:contiguous():view(-1), w.d, 0, file .. ": " .. name) end
      end
    end
    check_eq(count(meta), count(want.metadata), file .. ": metadata count")
    for k, v in pairs(want.metadata) do check_eq(meta[k], v, file .. ": metadata " .. k) end
  end
  check(EXPECTED.f16 and EXPECTED.bf16 and EXPECTED.f32 and EXPECTED.ints, "all dtypes covered")
  check_error(function() return tensor.load(FIX .. "f8.safetensors") end,
    'tensor.load: ' .. FIX .. 'f8.safetensors: tensor "fp8" has dtype F8_E4M3, which Tycho does not convert')
end)

test("a reference file re-saved is byte-identical", function()
  local src = FIX .. "f32.safetensors"
  local t, meta = tensor.load(src)
  local path = tmp()
  tensor.save(path, t, meta)
  check(read_bytes(path) == read_bytes(src), "same bytes as safetensors 0.8.0")
end)

-- MARK: bad arguments

test("bad arguments", function()
  local path = tmp()
  local E = check_error
  E(function() tensor.save() end, "tensor.save: argument #1 (path) must be a string, got no value")
  E(function() tensor.save(path) end, "tensor.save: argument #2 (tensors) must be a table, got no value")
  E(function() tensor.save(path, tensor.ones(2)) end, "argument #2 (tensors) must be a table, got tensor")
  E(function() tensor.save(path, {tensor.ones(2)}) end,
    "tensor.save: argument #2 (tensors) must be a table of name = tensor, got a number key")
  E(function() tensor.save(path, {w = {1, 2}}) end, 'must be a table of name = tensor, got table for "w"')
  E(function() tensor.save(path, {w = tensor.ones(2)}, {epoch = 3}) end,
    'tensor.save: argument #3 (metadata) must be a table of string = string, got number for "epoch"')
  E(function() tensor.save(path, {w = tensor.ones(2)}, {"x"}) end, "argument #3 (metadata) must be a table of string = string, got a number key")
  E(function() tensor.save(path, {__metadata__ = tensor.ones(2)}) end, '"__metadata__" cannot be a tensor name')
  E(function() tensor.save(path, {w = tensor.ones(2)}, nil, 4) end, "expected at most 3 arguments, got 4")
  local dead = tensor.zeros(2)
  getmetatable(dead).__gc(dead)
  E(function() tensor.save(path, {w = dead}) end, 'got a collected tensor for "w"')
  E(function() tensor.save("/nonexistent-dir/w.safetensors", {w = tensor.ones(2)}) end,
    "tensor.save: /nonexistent-dir/w.safetensors: cannot create a temporary file in /nonexistent-dir: No such file or directory")
  E(function() tensor.load() end, "tensor.load: argument #1 (path) must be a string, got no value")
  E(function() tensor.load(3) end, "argument #1 (path) must be a string, got number")
  E(function() tensor.load("/nonexistent-dir/w.safetensors") end,
    "tensor.load: /nonexistent-dir/w.safetensors: cannot open: No such file or directory")
  E(function() tensor.load(TEST_DIR) end, "tensor.load: " .. TEST_DIR .. ": is a directory")
  -- A failed save leaves the previous file.
  tensor.save(path, {keep = tensor.ones(3)})
  E(function() tensor.save(path, {w = {}}) end, "tensor.save")
  check_close(tensor.load(path).keep, tensor.ones(3), 0, "old file intact")
end)

-- MARK: damaged files

test("damaged files are Lua errors naming the file", function()
  local good = tensor.new{{1, 2, 3}, {4, 5, 6}}
  local path = tmp()
  tensor.save(path, {a = good, b = tensor.ones(4)})
  local bytes = read_bytes(path)
  local n, header, data = split(bytes)
  local h = header:gsub(" +$", "")
  local function bad(b, fragment, label)
    write_bytes(path, b)
    local ok, err = pcall(tensor.load, path)
    check(not ok, label .. ": loaded without error")
    err = tostring(err)
    check(err:find("tensor.load: " .. path .. ": ", 1, true) ~= nil, label .. ": error does not name the file: " .. err)
    check(err:find(fragment, 1, true) ~= nil, label .. ": error '" .. err .. "' lacks '" .. fragment .. "'")
  end
  bad(string.pack("<I8", 999999) .. bytes:sub(9), "header length 999999 exceeds file size " .. #bytes, "length")
  bad(bytes:sub(1, 6), "file is 6 bytes, too short", "short")
  bad("", "file is 0 bytes", "empty")
  bad(with_header("[" .. h:sub(2), data), "header does not start with '{'", "not an object")
  bad(with_header(h:gsub('"a":', '"a";'), data), "header is not valid JSON", "not JSON")
  bad(with_header(h:gsub('"F32"', '"F99"', 1), data), 'tensor "a": unknown dtype "F99"', "unknown dtype")
  bad(with_header(h:gsub('"dtype":"F32",', "", 1), data), 'tensor "a": missing "dtype"', "missing dtype")
  bad(with_header(h:gsub("%[2,3%]", "[3,3]"), data), 'tensor "a": shape [3, 3] of F32 needs 36 bytes', "shape mismatch")
  bad(with_header(h:gsub("%[24,40%]", "[20,36]"), data), 'overlaps tensor "a"', "overlap")
  bad(with_header(h:gsub("%[24,40%]", "[28,44]"), data .. "abcd"), "data bytes 24..<28 belong to no tensor", "hole")
  bad(with_header(h:gsub("%[24,40%]", "[24,44]"):gsub("%[4%]", "[5]"), data), "reach past the end of the data", "out of bounds")
  bad(with_header(h, data:sub(1, -2)), "the file is truncated", "truncated")
  bad(with_header(h, data .. "\0"), "1 byte after the last tensor", "trailing")
  bad(with_header(h:gsub('"b":', '"a":'), data), 'tensor name "a" appears twice', "duplicate")
  bad(with_header(h:gsub("^{", '{"__metadata__":{"k":1},'), data), '"__metadata__" value for "k" must be a string', "metadata")
  -- Every prefix of a valid file is an error, never a crash.
  local all = true
  for cut = 0, #bytes - 1 do
    write_bytes(path, bytes:sub(1, cut))
    local ok = pcall(tensor.load, path)
    if ok then all = false; check(false, "prefix of " .. cut .. " bytes loaded") end
  end
  check(all, "every truncation is an error")
end)

for _, p in ipairs(temps) do os.remove(p) end

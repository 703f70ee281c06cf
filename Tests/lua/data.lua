-- data.lua: the `data` module: JSONL in and out, data.null, the row iterator, batches (shuffle, drop_last),
-- SFT token batches against tok's own encodings, and every function with bad arguments.

local FIX = TEST_DIR .. "/../Fixtures/tokenizer/"
local E = check_error

local base = os.tmpname()
os.remove(base)
local made = {}
local function tmp(name)
  local p = base .. "-" .. name
  made[#made + 1] = p
  return p
end

local function write_file(path, text)
  local f = assert(io.open(path, "wb")); f:write(text); f:close()
  return path
end

local function read_file(path)
  local f = assert(io.open(path, "rb")); local s = f:read("a"); f:close()
  return s
end

local function same(a, b)
  if #a ~= #b then return false end
  for i = 1, #a do if a[i] ~= b[i] then return false end end
  return true
end

local function show(xs) return "{" .. table.concat(xs, ",") .. "}" end

-- MARK: reading and writing

test("jsonl: values convert to Lua", function()
  local p = write_file(tmp("types.jsonl"), table.concat({
    '{"s": "héllo\\n\\u4e2d", "i": 3, "neg": -7, "f": 1.5, "one": 1.0, "e": 1e2, "t": true, "no": false,',
    ' "n": null, "list": [1, "two", null, [3]], "obj": {"k": {"deep": []}}, "big": 9007199254740993}\n',
    '\n', '   \n',
    '{"second": 2}\r\n',
  }))
  local rows = data.jsonl(p)
  check_eq(#rows, 2, "blank lines skipped")
  local r = rows[1]
  check_eq(r.s, "héllo\n中")
  check_eq(r.i, 3); check_eq(math.type(r.i), "integer", "integral JSON numbers are integers")
  check_eq(r.neg, -7)
  check_eq(r.f, 1.5); check_eq(math.type(r.one), "float", "1.0 stays a float"); check_eq(r.one, 1.0)
  check_eq(math.type(r.e), "float"); check_eq(r.e, 100)
  check_eq(r.t, true); check_eq(r.no, false)
  check(r.n == data.null, "null is data.null")
  check_eq(#r.list, 4, "null keeps its place in an array")
  check_eq(r.list[2], "two"); check(r.list[3] == data.null); check_eq(r.list[4][1], 3)
  check_eq(type(r.obj.k.deep), "table"); check_eq(#r.obj.k.deep, 0)
  check_eq(r.big, 9007199254740993, "64-bit integers are exact")
  check_eq(rows[2].second, 2)
end)

test("data.null", function()
  check_eq(type(data.null), "userdata")
  check_eq(tostring(data.null), "data.null")
  check(data.null ~= nil and data.null ~= false, "null is a value, so keys stay")
  local p = write_file(tmp("null.jsonl"), '{"a": null, "b": [null, null]}\n')
  local r = data.jsonl(p)[1]
  local keys = 0
  for _ in pairs(r) do keys = keys + 1 end
  check_eq(keys, 2, "the null key is present")
  check_eq(#r.b, 2)
  local q = tmp("null2.jsonl")
  data.write_jsonl(q, {r})
  check_eq(read_file(q), '{"a": null, "b": [null, null]}\n', "null writes back as null")
end)

test("write_jsonl -> jsonl round trip, sorted keys, deterministic bytes", function()
  local rows = {
    {prompt = "Q: 2+2?", completion = " 4", score = 0.25, n = 3, ok = true, tags = {"a", "b"}, meta = {src = "x", k = 1}},
    {text = "tab\there \"quoted\" back\\slash\nnewline é 中 😀", list = {{1, 2}, {}}, f = 2.0, big = math.maxinteger},
    {},
  }
  local p = tmp("round.jsonl")
  check_eq(data.write_jsonl(p, rows), 3, "returns the row count")
  local text = read_file(p)
  local lines = {}
  for l in text:gmatch("([^\n]*)\n") do lines[#lines + 1] = l end
  check_eq(#lines, 3)
  check_eq(lines[1], '{"completion": " 4", "meta": {"k": 1, "src": "x"}, "n": 3, "ok": true, "prompt": "Q: 2+2?", "score": 0.25, "tags": ["a", "b"]}')
  check_eq(lines[2], '{"big": 9223372036854775807, "f": 2.0, "list": [[1, 2], []], "text": "tab\\there \\"quoted\\" back\\\\slash\\nnewline é 中 😀"}')
  check_eq(lines[3], "{}", "an empty row is an empty object")
  local back = data.jsonl(p)
  check_eq(#back, 3)
  check_eq(back[1].prompt, rows[1].prompt); check_eq(back[1].score, 0.25); check_eq(back[1].meta.src, "x")
  check_eq(math.type(back[1].n), "integer"); check_eq(math.type(back[2].f), "float")
  check_eq(back[2].text, rows[2].text); check_eq(back[2].big, math.maxinteger)
  check(same(back[1].tags, rows[1].tags), "lists round trip")
  -- The same rows built in another insertion order give the same bytes.
  local other = {{}, {}, {}}
  for _, k in ipairs{"tags", "ok", "n", "meta", "completion", "score", "prompt"} do other[1][k] = rows[1][k] end
  for _, k in ipairs{"list", "f", "big", "text"} do other[2][k] = rows[2][k] end
  local q = tmp("round2.jsonl")
  data.write_jsonl(q, other)
  check_eq(read_file(q), text, "deterministic output")
  -- Writing what was read gives the file back.
  local r = tmp("round3.jsonl")
  data.write_jsonl(r, back)
  check_eq(read_file(r), text, "read then write is the identity")
  check_eq(data.write_jsonl(tmp("empty.jsonl"), {}), 0)
  check_eq(read_file(base .. "-empty.jsonl"), "", "no rows, empty file")
end)

test("write_jsonl: unwritable values name the row and field, and leave the file as it was", function()
  local p = tmp("atomic.jsonl")
  data.write_jsonl(p, {{a = 1}})
  local before = read_file(p)
  local cyclic = {}
  cyclic.me = cyclic
  local cases = {
    {{{a = 1}, {f = print}}, "data.write_jsonl: row 2: field f: a function value cannot be written as JSON"},
    {{{m = {{content = "x"}, {content = coroutine.create(print)}}}}, "row 1: field m[2].content: a thread value cannot be written as JSON"},
    {{{t = tensor.zeros(2)}}, "row 1: field t: a tensor cannot be written as JSON (convert it with t:totable())"},
    {{{u = io.stdout}}, "row 1: field u: a userdata value cannot be written as JSON (only data.null can)"},
    {{{c = cyclic}}, "row 1: field c.me: a table that contains itself cannot be written as JSON"},
    {{{x = 0/0}}, "row 1: field x: nan cannot be written as JSON"},
    {{{x = math.huge}}, "row 1: field x: inf cannot be written as JSON"},
    {{{x = -math.huge}}, "row 1: field x: -inf cannot be written as JSON"},
    {{{x = {1, 2, k = 3}}}, "row 1: field x: a table with both list entries and named fields cannot be written as JSON"},
    {{{x = {[1] = 1, [3] = 3}}}, "row 1: field x: a list with holes (2 entries, largest index 3) cannot be written as JSON"},
    {{{x = {[true] = 1}}}, "row 1: field x: a table with a boolean key cannot be written as JSON"},
    {{{x = {[1.5] = 1}}}, "row 1: field x: a table with the key 1.5 cannot be written as JSON"},
    {{{x = {[0] = 1}}}, "row 1: field x: a table with the key 0 cannot be written as JSON"},
    {{{x = "\255"}}, "row 1: field x: a string with invalid UTF-8 bytes cannot be written as JSON"},
    {{{["\255"] = 1}}, "row 1: a key with invalid UTF-8 bytes cannot be written as JSON"},
    {{{a = {["\255"] = 1}}}, "row 1: field a: a key with invalid UTF-8 bytes cannot be written as JSON"},
    {{{1, 2}}, "data.write_jsonl: row 1 must be a table with named fields (a JSON object), got a list"},
    {{{a = 1}, "text"}, "data.write_jsonl: row 2 must be a table (a JSON object), got string"},
    {{a = 1}, "data.write_jsonl: argument #2 (rows) must be a list of rows, got a table with named fields (one row? put it in a list: {row})"},
    {{{a = 1}, nil, {b = 2}}, "argument #2 (rows) must be a list of rows"},
  }
  for i, c in ipairs(cases) do
    E(function() return data.write_jsonl(p, c[1]) end, c[2], "case " .. i)
    check_eq(read_file(p), before, "case " .. i .. " left the file unchanged")
  end
  local deep = {}
  local t = deep
  for _ = 1, 600 do t.x = {}; t = t.x end
  E(function() return data.write_jsonl(p, {deep}) end, "nested deeper than 512 levels")
  E(function() return data.write_jsonl("/nonexistent-dir/x.jsonl", {{a = 1}}) end, "data.write_jsonl: /nonexistent-dir/x.jsonl: cannot create a temporary file")
  -- No temporary files are left behind.
  local dir = base:match("^(.*)/")
  local leftovers = 0
  for name in io.popen("ls -a " .. dir):lines() do
    if name:find(base:match("[^/]+$") .. "-atomic.jsonl.tmp", 1, true) then leftovers = leftovers + 1 end
  end
  check_eq(leftovers, 0, "temporary files removed")
end)

test("jsonl: bad lines are errors naming file and line", function()
  local p = write_file(tmp("bad.jsonl"), '{"a": 1}\n\n{"a": 2,}\n{"a": 3}\n')
  E(function() return data.jsonl(p) end,
    "data.jsonl: " .. p .. ":3: invalid JSON at column 9: expected a string key after ',', got '}'")
  local q = write_file(tmp("array.jsonl"), '{"a": 1}\n[1, 2]\n')
  E(function() return data.jsonl(q) end, "data.jsonl: " .. q .. ":2: expected a JSON object (a row with named fields), got an array")
  local d = write_file(tmp("dup.jsonl"), '{"a": 1, "a": 2}\n')
  E(function() return data.jsonl(d) end, d .. ":1: invalid JSON at column 10: duplicate key \"a\"")
  local u = write_file(tmp("utf8.jsonl"), '{"a": "\255"}\n')
  E(function() return data.jsonl(u) end, u .. ":1: invalid JSON at column 7: invalid UTF-8 in the string")
  E(function() return data.jsonl("/nonexistent-dir/x.jsonl") end, "data.jsonl: /nonexistent-dir/x.jsonl: cannot open: No such file or directory")
  E(function() return data.jsonl(TEST_DIR) end, "data.jsonl: " .. TEST_DIR .. ": is a directory")
  E(function() return data.jsonl_rows("/nonexistent-dir/x.jsonl") end, "data.jsonl_rows: /nonexistent-dir/x.jsonl: cannot open")
  -- The iterator reads the good rows, then fails at the bad line.
  local seen = {}
  local ok, err = pcall(function()
    for i, row, line in data.jsonl_rows(p) do seen[#seen + 1] = row.a .. "@" .. line end
  end)
  check(not ok, "the iterator raises")
  check_eq(table.concat(seen, " "), "1@1")
  check(tostring(err):find("data.jsonl_rows: " .. p .. ":3: invalid JSON at column 9", 1, true) ~= nil, tostring(err))
end)

test("jsonl_rows: iterates lazily with row and line numbers, break closes the file", function()
  local lines = {}
  for k = 1, 50 do lines[#lines + 1] = string.format('{"k": %d, "sq": %d}', k, k * k) end
  local p = write_file(tmp("many.jsonl"), table.concat(lines, "\n\n") .. "\n")
  local count, sum, last_line = 0, 0, 0
  for i, row, line in data.jsonl_rows(p) do
    count = count + 1
    check_eq(i, row.k, "i counts rows")
    sum = sum + row.sq
    last_line = line
  end
  check_eq(count, 50); check_eq(sum, 42925); check_eq(last_line, 99, "line numbers count blank lines")
  local all = data.jsonl(p)
  check_eq(#all, 50); check_eq(all[50].sq, 2500)
  local step, reader, control, closing = data.jsonl_rows(p)
  check(rawequal(reader, closing), "the reader is the to-be-closed value")
  check(tostring(reader):find("at line 0", 1, true) ~= nil, tostring(reader))
  for i in step, reader, control, closing do
    if i == 3 then break end
  end
  check(tostring(reader):find("closed", 1, true) ~= nil, "break closed the file: " .. tostring(reader))
  check_eq(step(reader, 0), nil, "a closed reader yields nothing")
  -- Exhausting the file closes it too.
  local s2, r2 = data.jsonl_rows(p)
  while s2(r2, 0) do end
  check(tostring(r2):find("closed", 1, true) ~= nil, tostring(r2))
  E(function() return step("x", 0) end, "data.jsonl_rows: argument #1 (state) must be a data.jsonl_rows reader, got string")
end)

-- MARK: batches

local function collect(rows, opts)
  local out = {}
  for i, b in data.batches(rows, opts) do
    check_eq(i, #out + 1, "batch numbers count from 1")
    out[#out + 1] = b
  end
  return out
end

local function flat(batches)
  local xs = {}
  for _, b in ipairs(batches) do for _, r in ipairs(b) do xs[#xs + 1] = r end end
  return xs
end

local function range(n) local t = {} for i = 1, n do t[i] = i end return t end

test("batches: in order, batch sizes, drop_last", function()
  local rows = range(10)
  local bs = collect(rows, {batch_size = 4})
  check_eq(#bs, 3); check(same(bs[1], {1, 2, 3, 4})); check(same(bs[3], {9, 10}))
  local dl = collect(rows, {batch_size = 4, drop_last = true})
  check_eq(#dl, 2); check(same(dl[2], {5, 6, 7, 8}))
  check_eq(#collect(rows, {batch_size = 10, drop_last = true}), 1)
  check_eq(#collect(rows, {batch_size = 11, drop_last = true}), 0)
  check_eq(#collect(rows, {batch_size = 11})[1], 10)
  check_eq(#collect({}, {batch_size = 2}), 0, "no rows, no batches")
  -- Rows are the caller's values, not copies.
  local t = {{a = 1}, {a = 2}}
  check(rawequal(collect(t, {batch_size = 2})[1][2], t[2]), "rows are shared")
  check(tostring(select(2, data.batches(rows, {batch_size = 3}))):find("0 of 4 batches", 1, true) ~= nil)
end)

test("batches: shuffle is a deterministic function of the seed", function()
  local rows = range(100)
  local function order(opts) return flat(collect(rows, opts)) end
  local a = order{batch_size = 7, shuffle = true, seed = 42}
  local b = order{batch_size = 7, shuffle = true, seed = 42}
  local c = order{batch_size = 7, shuffle = true, seed = 43}
  check(same(a, b), "same seed, same order")
  check(not same(a, c), "another seed, another order")
  check(not same(a, rows), "shuffled")
  local count = {}
  for _, v in ipairs(a) do count[v] = (count[v] or 0) + 1 end
  local once = #a == 100
  for i = 1, 100 do if count[i] ~= 1 then once = false end end
  check(once, "every row exactly once")
  -- The order does not depend on the batch size, only on the seed.
  check(same(order{batch_size = 100, shuffle = true, seed = 42}, a), "batch size does not change the order")
  -- A fixed seed gives a fixed order on every run and machine (xoshiro256** + Fisher-Yates); the expected
  -- order comes from an independent Python reimplementation, Tests/Fixtures/shuffle_order.py.
  check_eq(table.concat(order{batch_size = 3, shuffle = true, seed = 1}, ",", 1, 10), "56,10,87,26,92,79,34,47,95,82",
    "the order for seed 1")
  -- drop_last with shuffle drops the tail of the shuffled order.
  local d = collect(rows, {batch_size = 30, shuffle = true, seed = 42, drop_last = true})
  check_eq(#d, 3); check(same(flat(d), table.move(a, 1, 90, 1, {})), "drop_last keeps the first full batches")
  -- Without a seed, shuffling draws from the state's generator (tensor.manual_seed).
  tensor.manual_seed(7)
  local g1 = order{batch_size = 10, shuffle = true}
  local g2 = order{batch_size = 10, shuffle = true}
  tensor.manual_seed(7)
  local g3 = order{batch_size = 10, shuffle = true}
  check(same(g1, g3), "manual_seed reproduces the order")
  check(not same(g1, g2), "successive shuffles differ")
  check(same(order{batch_size = 10, shuffle = false, seed = 5}, rows), "seed alone does not shuffle")
end)

test("batches: SFT token batches match tok's encodings", function()
  local t = tok.load(FIX .. "gpt2.json")
  local pad = t:token_to_id("<|pad|>")
  local rows = {
    {text = "Hello world, this is a longer line of text."},
    {prompt = "Question: what is 2+2?", completion = " Four."},
    {text = "Hi"},
    {prompt = "Say ", completion = "yes<|endoftext|>"},
  }
  local bs = collect(rows, {batch_size = 4, tokenizer = t})
  check_eq(#bs, 1)
  local b = bs[1]
  local want_ids, want_mask = {}, {}
  for r, row in ipairs(rows) do
    if row.text then
      want_ids[r] = t:encode(row.text)
      want_mask[r] = {}
      for k = 1, #want_ids[r] do want_mask[r][k] = 1 end
    else
      local p, c = t:encode(row.prompt, {add_special = false}), t:encode(row.completion, {add_special = false})
      want_ids[r], want_mask[r] = {}, {}
      for _, id in ipairs(p) do want_ids[r][#want_ids[r] + 1] = id; want_mask[r][#want_mask[r] + 1] = 0 end
      for _, id in ipairs(c) do want_ids[r][#want_ids[r] + 1] = id; want_mask[r][#want_mask[r] + 1] = 1 end
    end
  end
  local T = 0
  for r = 1, 4 do T = math.max(T, #want_ids[r]) end
  check_eq(table.concat(b.ids:shape(), "x"), "4x" .. T, "ids is B x T")
  check_eq(table.concat(b.mask:shape(), "x"), "4x" .. T, "mask is B x T")
  local ids, mask = b.ids:totable(), b.mask:totable()
  for r = 1, 4 do
    check_eq(b.lengths[r], #want_ids[r], "length of row " .. r)
    for k = 1, T do
      local wi = want_ids[r][k] or pad
      local wm = want_mask[r][k] or 0
      if ids[r][k] ~= wi or mask[r][k] ~= wm then
        check(false, string.format("row %d token %d: id %s mask %s, expected %s %s", r, k, ids[r][k], mask[r][k], wi, wm))
        break
      end
    end
    check(rawequal(b.rows[r], rows[r]), "batch.rows holds the rows")
  end
  check_eq(b.truncated, 0)
  -- The completion's special token counts; the prompt is masked.
  check_eq(ids[4][b.lengths[4]], t:token_to_id("<|endoftext|>"))
  check_eq(mask[4][b.lengths[4]], 1)
  local counted = 0
  for r = 1, 4 do for _, m in ipairs(want_mask[r]) do counted = counted + m end end
  check_eq(mask[2][1], 0); check_eq(b.mask:sum():item(), counted, "counted tokens")
  check(counted < b.ids:numel(), "some tokens are masked")
  -- Shuffled token batches come out in the shuffled order.
  local order = flat(collect(range(4), {batch_size = 4, shuffle = true, seed = 9}))
  local sb = collect(rows, {batch_size = 2, tokenizer = t, shuffle = true, seed = 9})
  check(rawequal(sb[1].rows[1], rows[order[1]]) and rawequal(sb[2].rows[2], rows[order[4]]), "shuffled token batches")
end)

test("batches: max_length truncation is counted, pad_id and add_special", function()
  local t = tok.load(FIX .. "gpt2.json")
  local long = "one two three four five six seven eight nine ten"
  local rows = {{text = long}, {text = "one"}, {prompt = long, completion = " end"}}
  local b = collect(rows, {batch_size = 3, tokenizer = t, max_length = 4, pad_id = 0})[1]
  check_eq(table.concat(b.ids:shape(), "x"), "3x4")
  check_eq(b.truncated, 2, "two rows were cut")
  check(same(b.ids:totable()[1], {table.unpack(t:encode(long), 1, 4)}), "truncation keeps the start")
  local one = t:encode("one")
  local padded = {table.unpack(one)}
  for k = #one + 1, 4 do padded[k] = 0 end
  check(#one < 4 and same(b.ids:totable()[2], padded), "pad_id pads: " .. show(b.ids:totable()[2]))
  check_eq(b.mask:totable()[3][4], 0, "a truncated prompt leaves no counted tokens")
  check_eq(b.lengths[1], 4); check_eq(b.lengths[2], #one)
  -- Llama-3 style: add_special puts the BOS first, masked for prompt/completion rows.
  local l = tok.load(FIX .. "llama3.json")
  local bos = l:encode("")[1]
  local lb = collect({{prompt = "Hi", completion = " there"}, {text = "Hi"}}, {batch_size = 2, tokenizer = l})[1]
  check_eq(lb.ids:totable()[1][1], bos); check_eq(lb.mask:totable()[1][1], 0); check_eq(lb.mask:totable()[2][1], 1)
  local nb = collect({{text = "Hi"}}, {batch_size = 1, tokenizer = l, add_special = false})[1]
  check(same(nb.ids:totable()[1], l:encode("Hi", {add_special = false})), "add_special = false")
  -- No pad token in the tokenizer: pad with 0.
  local bytes = tok.bytes()
  local bb = collect({{text = "ab"}, {text = "a"}}, {batch_size = 2, tokenizer = bytes})[1]
  check(same(bb.ids:totable()[2], {97, 0}), "default pad 0 without a pad token")
end)

test("batches: rows of token ids", function()
  local rows = {{ids = {5, 6, 7}}, {ids = {8}, mask = {0, 1}}, {ids = {9, 10}, mask = {false, true}}, {ids = {}}}
  E(function() return data.batches(rows, {batch_size = 2}) end, "data.batches: row 2: mask must have as many entries as ids (2 vs 1)")
  rows[2].mask = {1}
  local bs = collect(rows, {batch_size = 3})
  check_eq(#bs, 2)
  check_close(bs[1].ids, tensor.new{{5, 6, 7}, {8, 0, 0}, {9, 10, 0}}, 0, "ids padded with 0")
  check_close(bs[1].mask, tensor.new{{1, 1, 1}, {1, 0, 0}, {0, 1, 0}}, 0, "mask")
  check_eq(table.concat(bs[2].ids:shape(), "x"), "1x0", "an empty row gives T = 0")
  local cut = collect({{ids = {1, 2, 3, 4, 5}}}, {batch_size = 1, max_length = 2, pad_id = 3})[1]
  check_eq(cut.truncated, 1); check_close(cut.ids, tensor.new{{1, 2}}, 0)
  check_close(collect({{ids = {1}}, {ids = {2, 2}}}, {batch_size = 2, pad_id = 99})[1].ids, tensor.new{{1, 99}, {2, 2}}, 0)
  -- With a tokenizer, ids rows are checked against its vocabulary and mix with text rows.
  local t = tok.load(FIX .. "gpt2.json")
  local mixed = collect({{ids = {700, 2}}, {text = "a"}}, {batch_size = 2, tokenizer = t})[1]
  check_eq(mixed.ids:totable()[1][1], 700)
  E(function() return data.batches({{ids = {701}}}, {batch_size = 1, tokenizer = t}) end,
    "data.batches: row 1: ids[1] must be a token id in 0..700, got 701")
  E(function() return data.batches({{ids = {1}}, {ids = {2^24}}}, {batch_size = 1}) end,
    "data.batches: row 2: ids[1] must be a token id in 0..16777215, got 16777216")
end)

test("batches: rows are checked before the first batch, named by row number", function()
  local t = tok.load(FIX .. "gpt2.json")
  local B = function(rows, opts)
    opts = opts or {batch_size = 2, tokenizer = t}
    return function() return data.batches(rows, opts) end
  end
  E(B{{text = "a"}, {text = "b"}, {prompt = "x"}}, "data.batches: row 3 has a prompt but no completion")
  E(B{{completion = "x"}}, "data.batches: row 1 has a completion but no prompt")
  E(B{{text = 5}}, "data.batches: row 1: text must be a string, got number")
  E(B{{prompt = "a", completion = {}}}, "data.batches: row 1: completion must be a string, got table")
  E(B{{text = "a", prompt = "b", completion = "c"}}, "data.batches: row 1 has both text and prompt/completion; give one")
  E(B{{ids = {1}, text = "a"}}, "data.batches: row 1 has both ids and text or prompt/completion; give one")
  E(B{{text = "a"}, "b"}, "data.batches: row 2 must be a table, got string")
  E(B{{other = 1}}, "data.batches: row 1 needs text, or prompt and completion (strings)")
  E(B{{messages = {{role = "user", content = "hi"}}}}, "conversational rows (messages) need a chat template")
  E(B{{text = "\255"}}, "data.batches: row 1: text must be valid UTF-8 text")
  E(B({{ids = {1}}, {text = "a"}}, {batch_size = 1}), "data.batches: row 2 has no ids (without a tokenizer option")
  E(B({{ids = "12"}}, {batch_size = 1}), "data.batches: row 1: ids must be a list of token ids, got string")
  E(B({{ids = {1, "x"}}}, {batch_size = 1}), "data.batches: row 1: ids[2] must be a token id in 0..16777215, got string")
  E(B({{ids = {1.5}}}, {batch_size = 1}), "got 1.5")
  E(B({{ids = {-1}}}, {batch_size = 1}), "got -1")
  E(B({{ids = {1}, mask = {2}}}, {batch_size = 1}), "data.batches: row 1: mask[1] must be a mask value in 0..1, got 2")
  -- A row changed after the check fails at its batch, still naming the row.
  local rows = {{text = "a"}, {text = "b"}}
  local step, state = data.batches(rows, {batch_size = 1, tokenizer = t})
  rows[2] = {text = 7}
  check(step(state, 0) == 1, "first batch")
  E(function() return step(state, 1) end, "data.batches: row 2: text must be a string, got number")
  local plain = {1, 2}
  local s2, st2 = data.batches(plain, {batch_size = 1})
  plain[2] = nil
  s2(st2, 0)
  E(function() return s2(st2, 1) end, "data.batches: row 2 is missing")
  E(function() return step({}, 0) end, "data.batches: argument #1 (state) must be a data.batches iterator, got table")
end)

-- MARK: every function with bad arguments

local function F(name, ...)
  local args = table.pack(...)
  return function() return data[name](table.unpack(args, 1, args.n)) end
end

local BAD = {
  jsonl = {{F("jsonl"), "data.jsonl: argument #1 (path) must be a string, got no value"},
    {F("jsonl", 3), "argument #1 (path) must be a string, got number"}, {F("jsonl", {}), "must be a string"},
    {F("jsonl", "/nonexistent-dir/x"), "cannot open"}, {F("jsonl", "a", "b"), "expected at most 1 argument, got 2"}},
  jsonl_rows = {{F("jsonl_rows"), "data.jsonl_rows: argument #1 (path) must be a string, got no value"},
    {F("jsonl_rows", true), "must be a string"}, {F("jsonl_rows", "/"), "is a directory"},
    {F("jsonl_rows", "a", 1), "at most 1 argument"}},
  write_jsonl = {{F("write_jsonl"), "data.write_jsonl: argument #1 (path) must be a string, got no value"},
    {F("write_jsonl", "/nonexistent-dir/x"), "argument #2 (rows) must be a table, got no value"},
    {F("write_jsonl", 1, {}), "argument #1 (path) must be a string"},
    {F("write_jsonl", "/nonexistent-dir/x", "rows"), "argument #2 (rows) must be a table, got string"},
    {F("write_jsonl", "/nonexistent-dir/x", {{a = 1}}, 3), "at most 2 arguments"},
    {F("write_jsonl", "", {}), "empty path"}},
  batches = {{F("batches"), "data.batches: argument #1 (rows) must be a table, got no value"},
    {F("batches", {1}), "argument #2 (options) must be a table, got no value"},
    {F("batches", "x", {batch_size = 1}), "argument #1 (rows) must be a table, got string"},
    {F("batches", {1}, {}), "argument #2 (options) must be a table with batch_size = an integer"},
    {F("batches", {1}, {batch_size = 0}), "argument #2 (options) must be a table with batch_size >= 1, got 0"},
    {F("batches", {1}, {batch_size = -3}), "batch_size >= 1, got -3"},
    {F("batches", {1}, {batch_size = 1.5}), "field 'batch_size' is an integer"},
    {F("batches", {1}, {batch_size = "2"}), "field 'batch_size' is an integer"},
    {F("batches", {1}, {batch_size = 1, shufle = true}), "got unknown option 'shufle'"},
    {F("batches", {1}, {batch_size = 1, shuffle = 1}), "field 'shuffle' is a boolean"},
    {F("batches", {1}, {batch_size = 1, drop_last = "yes"}), "field 'drop_last' is a boolean"},
    {F("batches", {1}, {batch_size = 1, seed = 0.5}), "field 'seed' is an integer"},
    {F("batches", {1}, {batch_size = 1, seed = 2^60}), "field 'seed' is an integer"},
    {F("batches", {1}, {batch_size = 1, tokenizer = "gpt2"}), "field 'tokenizer' is a tokenizer (tok.load), got string"},
    {F("batches", {{ids = {1}}}, {batch_size = 1, max_length = 0}), "max_length >= 1, got 0"},
    {F("batches", {1}, {batch_size = 1, max_length = 4}), "a table with a tokenizer (or rows with ids) when max_length or pad_id is given"},
    {F("batches", {1}, {batch_size = 1, pad_id = 0}), "when max_length or pad_id is given"},
    {F("batches", {1}, {batch_size = 1, add_special = true}), "a table with a tokenizer when add_special is given"},
    {F("batches", {{ids = {1}}}, {batch_size = 1, pad_id = -1}), "pad_id in 0..16777215, got -1"},
    {F("batches", {{ids = {1}}}, {batch_size = 1, pad_id = 2^24}), "pad_id in 0..16777215"},
    {F("batches", {a = 1}, {batch_size = 1}), "argument #1 (rows) must be a list of rows, got a table with named fields"},
    {F("batches", {1, nil, 3}, {batch_size = 1}), "a list of rows (entries 1..n), got a table with holes or other keys"},
    {F("batches", {1}, {batch_size = 1}, 3), "at most 2 arguments"}},
  -- preference data (preferences.lua has the full set)
  preferences = {
    {F("preferences", 3, {tokenizer = tok.bytes()}), "argument #1 (path_or_rows) must be a JSONL file path or a list of rows, got number"},
    {F("preferences", {}), "argument #2 (options) must be a table, got no value"},
    {F("preferences", {}, {}), "argument #2 (options) must be a table with tokenizer ="},
    {F("preferences", {{prompt = "a", chosen = "b"}}, {tokenizer = tok.bytes()}), "row 1: has no rejected"}},
  audit = {
    {F("audit", {}), "argument #1 (prefs) must be preference data (data.preferences), got table"},
    {F("audit"), "argument #1 (prefs) must be a value, got no value"}},
}

test("every data function has bad-argument cases", function()
  local missing = {}
  for name, v in pairs(data) do
    if type(v) == "function" and not BAD[name] then missing[#missing + 1] = name end
  end
  table.sort(missing)
  check(#missing == 0, "no bad-argument cases for: " .. table.concat(missing, ", "))
end)

test("bad arguments raise errors naming the function", function()
  BAD.batches[#BAD.batches + 1] = {F("batches", {{text = "a"}}, {batch_size = 1, tokenizer = tok.bytes(), pad_id = 257}), "pad_id in 0..256, got 257"}
  local t = tok.bytes()
  getmetatable(t).__gc(t)
  BAD.batches[#BAD.batches + 1] = {F("batches", {{text = "a"}}, {batch_size = 1, tokenizer = t}), "field 'tokenizer' is a live tokenizer, got one that was already collected"}
  local names = {}
  for name in pairs(BAD) do names[#names + 1] = name end
  table.sort(names)
  for _, name in ipairs(names) do
    check(data[name] ~= nil, "BAD lists data." .. name .. ", which does not exist")
    for i, case in ipairs(BAD[name]) do
      local ok, err = pcall(case[1])
      local label = "data." .. name .. " case " .. i
      if ok then
        check(false, label .. ": no error raised (expected '" .. case[2] .. "')")
      else
        err = tostring(err)
        check(err:find("data." .. name, 1, true) ~= nil, label .. ": error does not name the function: " .. err)
        check(err:find(case[2], 1, true) ~= nil, label .. ": error '" .. err .. "' lacks '" .. case[2] .. "'")
      end
    end
  end
end)

test("sweep: odd values in every position never crash", function()
  local pool = {
    {"nil", nil}, {"string", "x"}, {"numeric string", "2"}, {"true", true}, {"empty table", {}}, {"list", {2, 3}},
    {"rows", {{a = 1}, {b = 2}}}, {"options", {batch_size = 2}}, {"bad options", {batch_size = 0}},
    {"-1", -1}, {"0", 0}, {"1.5", 1.5}, {"inf", math.huge}, {"nan", 0/0}, {"function", print}, {"file", io.stdout},
    {"thread", coroutine.create(print)}, {"tensor", tensor.zeros(2)}, {"null", data.null},
  }
  local function call(name, ...)
    local ok, err = pcall(data[name], ...)
    if not ok then
      return check(tostring(err):find("data." .. name, 1, true) ~= nil, "data." .. name .. ": " .. tostring(err))
    end
    return true
  end
  -- write_jsonl is left out: it would write files named by the odd strings; BAD covers it.
  for _, name in ipairs{"jsonl", "jsonl_rows", "batches"} do
    local all = call(name)
    for _, a in ipairs(pool) do
      all = call(name, a[2]) and all
      for _, b in ipairs(pool) do all = call(name, a[2], b[2]) and all end
    end
    check(all, "sweep of data." .. name)
  end
  -- The step functions with odd states.
  local step = data.batches({1}, {batch_size = 1})
  local rstep = data.jsonl_rows(write_file(tmp("sweep.jsonl"), '{"a": 1}\n'))
  for _, a in ipairs(pool) do
    for _, f in ipairs{step, rstep} do
      local ok, err = pcall(f, a[2], 0)
      check(not ok and tostring(err):find("data.", 1, true) ~= nil, "step(" .. a[1] .. "): " .. tostring(err))
    end
  end
end)

test("help and completion come from the declarations", function()
  check(help ~= nil and data.batches ~= nil and require("data") == data, "data is a module")
  for _, f in ipairs{data.jsonl, data.jsonl_rows, data.write_jsonl, data.batches} do check(type(f) == "function") end
end)

for _, p in ipairs(made) do os.remove(p) end

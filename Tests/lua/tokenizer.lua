-- tokenizer.lua: the `tok` module against Hugging Face `tokenizers`.
--
-- Expected ids come from Tests/Fixtures/tokenizer/cases.lua, written by the committed script
-- Tests/Fixtures/gen_tokenizer_fixtures.py (tokenizers 0.23.3) for the two tokenizers it trained on the
-- committed corpus: gpt2.json (GPT-2 regex) and llama3.json (Llama-3 Split regex, ignore_merges, BOS template).
-- Ids are 0-based Hugging Face ids, compared as values.

local FIX = TEST_DIR .. "/../Fixtures/tokenizer/"
local C = dofile(FIX .. "cases.lua")
local E = check_error

local function same(a, b)
  if #a ~= #b then return false end
  for i = 1, #a do if a[i] ~= b[i] then return false end end
  return true
end

local function show(ids) return "{" .. table.concat(ids, ",", 1, math.min(#ids, 12)) .. (#ids > 12 and ",..." or "") .. "}" end

local function tmpname(name) return os.tmpname() .. "-" .. name end

test("same ids as tokenizers", function()
  for _, name in ipairs{"gpt2", "llama3"} do
    local t = tok.load(FIX .. name .. ".json")
    check_eq(t:vocab_size(), C.info.vocab_size[name], name .. " vocab_size")
    for k, c in ipairs(C.cases) do
      local e = c[name]
      local label = name .. " case " .. k .. " " .. string.format("%q", c.text:sub(1, 24))
      local ids = t:encode(c.text, {add_special = false})
      check(same(ids, e.ids), label .. ": " .. show(ids) .. " vs " .. show(e.ids))
      local ids_s = t:encode(c.text)
      check(same(ids_s, e.ids_special), label .. " (add_special): " .. show(ids_s) .. " vs " .. show(e.ids_special))
      check_eq(t:decode(e.ids_special), e.decode, label .. " decode")
      check_eq(t:decode(e.ids_special, {skip_special = true}), e.decode_skip, label .. " decode skip_special")
      check_eq(t:decode(ids), c.text, label .. " round trip")
    end
  end
end)

test("special tokens and vocabulary", function()
  local t = tok.load(FIX .. "gpt2.json")
  check_eq(t:token_to_id("<|endoftext|>"), 0)
  check_eq(t:id_to_token(0), "<|endoftext|>")
  check_eq(t:token_to_id("no such token"), nil)
  check_eq(t:id_to_token(t:token_to_id("Ġ")), "Ġ")
  local sp = t:special_tokens()
  check_eq(sp["<|endoftext|>"], 0); check_eq(sp["<|pad|>"], 1); check_eq(sp["<tool>"], nil)
  local ids = t:encode("a<|endoftext|>b")
  check_eq(#ids, 3); check_eq(ids[2], 0)
  check_eq(#t:encode(""), 0)
  check(tostring(t):find("Tokenizer(BPE, vocab 701, 2 special tokens)", 1, true) ~= nil, tostring(t))
  check(tok.is_tokenizer(t)); check(not tok.is_tokenizer({}))
  local l = tok.load(FIX .. "llama3.json")
  check_eq(l:encode("hi")[1], l:token_to_id("<|begin_of_text|>"), "llama3 BOS")
  check_eq(#l:encode("", {add_special = true}), 1)
  -- A 1-D tensor of ids decodes like a table.
  check_eq(t:decode(tensor.new(t:encode("Hello world"))), "Hello world")
end)

test("bytes tokenizer", function()
  local b = tok.bytes()
  check_eq(b:vocab_size(), 257)
  local ids = b:encode("hé<|endoftext|>")
  check(same(ids, {104, 195, 169, 256}), show(ids))
  check_eq(b:decode(ids), "hé<|endoftext|>")
  check_eq(b:decode(ids, {skip_special = true}), "hé")
  local b2 = tok.bytes{special_tokens = {"<s>", "</s>"}}
  check_eq(b2:vocab_size(), 258); check_eq(b2:token_to_id("</s>"), 257)
  check_eq(tok.bytes{special_tokens = {}}:vocab_size(), 256)
  local p = tmpname("bytes.json")
  b2:save(p)
  local back = tok.load(p)
  for _, c in ipairs(C.cases) do check(same(back:encode(c.text), b2:encode(c.text)), "bytes reload " .. c.text:sub(1, 20)) end
  os.remove(p)
end)

test("train_bpe: deterministic, saves, loads back", function()
  local opts = {files = {FIX .. "corpus.txt"}, vocab_size = 600, special_tokens = {"<|endoftext|>"}}
  local a = tok.train_bpe(opts)
  local b = tok.train_bpe(opts)
  local pa, pb = tmpname("a.json"), tmpname("b.json")
  a:save(pa); b:save(pb)
  local fa, fb = io.open(pa, "rb"), io.open(pb, "rb")
  local ta, tb = fa:read("a"), fb:read("a")
  fa:close(); fb:close()
  check(#ta > 1000 and ta == tb, "two trainings write the same file")
  check(a:vocab_size() <= 600 and a:vocab_size() > 400, "vocab size " .. a:vocab_size())
  check_eq(a:token_to_id("<|endoftext|>"), 0)
  local back = tok.load(pa)
  for _, c in ipairs(C.cases) do
    local ids = a:encode(c.text)
    check(same(back:encode(c.text), ids), "reload " .. c.text:sub(1, 20))
    check_eq(a:decode(ids), c.text, "train_bpe round trip")
  end
  os.remove(pa); os.remove(pb)
end)

test("bad arguments", function()
  local t = tok.load(FIX .. "gpt2.json")
  E(function() return t:decode({0, 99999}) end, "tok.decode: argument #2 (ids) must be a list of token ids in 0..700, got 99999 at position 2")
  E(function() return t:decode({-1}) end, "tok.decode: argument #2 (ids) must be a list of token ids in 0..700, got -1")
  E(function() return t:decode({1.5}) end, "got 1.5 at position 1")
  E(function() return t:decode({"a"}) end, "tok.decode: argument #2 (ids) must be a list of token ids, got string at position 1")
  E(function() return t:decode("abc") end, "tok.decode: argument #2 (ids) must be a list of token ids, got string")
  E(function() return t:decode(tensor.zeros(2, 2)) end, "1-D tensor")
  E(function() return t:decode({0}, {skip = true}) end, "unknown option 'skip'")
  E(function() return t:decode({0}, {skip_special = 1}) end, "field 'skip_special' is a boolean")
  E(function() return t:encode(5) end, "tok.encode: argument #2 (text) must be a string, got number")
  E(function() return t:encode("x", {add_specal = true}) end, "unknown option 'add_specal'")
  E(function() return t:encode("x", 3) end, "tok.encode: argument #3 (options) must be a table")
  E(function() return t:encode("\255\254") end, "must be valid UTF-8 text")
  E(function() return t:id_to_token(701) end, "tok.id_to_token: argument #2 (id) must be a token id in 0..700, got 701")
  E(function() return t:id_to_token(0.5) end, "tok.id_to_token: argument #2 (id) must be an integer")
  E(function() return t:token_to_id(nil) end, "tok.token_to_id: argument #2 (token) must be a string, got nil")
  E(function() return tok.encode({}, "x") end, "tok.encode: argument #1 (self) must be a tokenizer, got table")
  E(function() return tok.vocab_size(tensor.zeros(1)) end, "argument #1 (self) must be a tokenizer, got tensor")
  E(function() return tok.load(FIX .. "missing.json") end, "tok.load: cannot read")
  E(function() return tok.load(FIX .. "corpus.txt") end, "tok.load: " .. FIX .. "corpus.txt: not valid JSON")
  E(function() return tok.load() end, "tok.load: argument #1 (path) must be a string, got no value")
  E(function() return tok.bytes{special_tokens = {1}} end, "list of strings, got number at position 1")
  E(function() return tok.bytes{special_tokens = {"a"}} end, "tok.bytes: special token \"a\" is given twice or is a byte")
  E(function() return tok.bytes(5) end, "tok.bytes: argument #1 (options) must be a table")
  E(function() return tok.train_bpe{vocab_size = 300} end, "tok.train_bpe: argument #1 (options) must be a table with files")
  E(function() return tok.train_bpe{files = {FIX .. "corpus.txt"}} end, "with vocab_size")
  E(function() return tok.train_bpe{files = {FIX .. "corpus.txt"}, vocab_size = 10} end, "vocab_size must be at least 256")
  E(function() return tok.train_bpe{files = {FIX .. "corpus.txt"}, vocab_size = 2.5} end, "field 'vocab_size' is an integer")
  E(function() return tok.train_bpe{files = {FIX .. "nope.txt"}, vocab_size = 300} end, "cannot read")
  E(function() return tok.train_bpe{files = {FIX .. "corpus.txt"}, vocab_size = 300, specials = {}} end, "unknown option 'specials'")
  E(function() return t:save("/nonexistent-dir/x.json") end, "tok.save: cannot write")
  E(function() return t:save() end, "tok.save: argument #2 (path) must be a string")
  local dead = tok.bytes()
  getmetatable(dead).__gc(dead)
  E(function() return dead:encode("x") end, "already collected")
  E(function() return tostring(dead) end, "already collected")
end)

test("corrupt tokenizer.json files are errors", function()
  local p = tmpname("bad.json")
  local function with(text, fragment)
    local f = io.open(p, "wb"); f:write(text); f:close()
    E(function() return tok.load(p) end, fragment, text:sub(1, 60))
  end
  with("", "not valid JSON")
  with("{\"model\": 3}", "model is missing or not an object")
  with("{\"model\": {\"type\": \"Unigram\", \"vocab\": []}}", "model.type")
  with("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [[\"a\", \"b\"]]}}", "not in the vocabulary")
  -- Every truncation of a real file.
  local f = io.open(FIX .. "gpt2.json", "rb"); local full = f:read("a"); f:close()
  for n = 0, #full - 1, #full // 25 do
    local g = io.open(p, "wb"); g:write(full:sub(1, n)); g:close()
    check(not pcall(tok.load, p), "truncated at " .. n)
  end
  os.remove(p)
end)

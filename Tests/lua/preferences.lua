-- preferences.lua: preference data (data.preferences, data.audit), reference log-probs (dpo.reference_logprobs,
-- cached) and TR-DPO syncing (dpo.sync_reference) against trl.DPOTrainer 1.16 on the tiny GPT-2
-- (Tests/Fixtures/gen_dpo_data_fixtures.py): token ids, masks, log-probs and the sigmoid loss; the cache's
-- hits, misses and invalidation; audits; and every function with bad arguments.

local F = TEST_DIR .. "/../Fixtures/dpo_data/"
local MODEL = TEST_DIR .. "/../Fixtures/models/gpt2"
local REF = dofile(F .. "dpo_data_ref.lua")
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

local function same(a, b)
  if #a ~= #b then return false end
  for i = 1, #a do if a[i] ~= b[i] then return false end end
  return true
end

local function show(xs) return "{" .. table.concat(xs, ",") .. "}" end

local function all(p) local t = {} for i = 1, #p do t[i] = i end return t end

-- Captures what `print` prints while fn runs.
local function printed(fn)
  local out, saved = {}, print
  print = function(...) local t = {} for i = 1, select("#", ...) do t[i] = tostring(select(i, ...)) end out[#out + 1] = table.concat(t, "\t") end
  local ok, err = pcall(fn)
  print = saved
  if not ok then error(err, 0) end
  return table.concat(out, "\n")
end

local function options(c, extra)
  local o = {tokenizer = MODEL, truncation = c.truncation, max_length = c.max_length or false, quiet = true}
  if c.chat_template then o.chat_template = c.chat_template end
  for k, v in pairs(extra or {}) do o[k] = v end
  return o
end

local function logsigmoid(x) if x >= 0 then return -math.log(1 + math.exp(-x)) end return x - math.log(1 + math.exp(x)) end

-- MARK: TRL's tokenization and collation

local names = {}
for name in pairs(REF.cases) do names[#names + 1] = name end
table.sort(names)

for _, name in ipairs(names) do
  local c = REF.cases[name]
  test(name .. ": ids and masks equal TRL's", function()
    local p = data.preferences(F .. c.file, options(c))
    check_eq(#p, #c.rows, name .. ": pairs kept")
    check_eq(p:info().source_rows, c.source_rows, name .. ": rows read")
    for i = 1, #p do
      local q = p:pair(i)
      check_eq(q.row, c.rows[i], name .. " pair " .. i .. " row")
      check(same(q.prompt_ids, c.prompt_ids[i]), name .. " pair " .. i .. " prompt_ids " .. show(q.prompt_ids) .. " vs " .. show(c.prompt_ids[i]))
      check(same(q.chosen_ids, c.chosen_ids[i]), name .. " pair " .. i .. " chosen_ids " .. show(q.chosen_ids) .. " vs " .. show(c.chosen_ids[i]))
      check(same(q.rejected_ids, c.rejected_ids[i]), name .. " pair " .. i .. " rejected_ids " .. show(q.rejected_ids) .. " vs " .. show(c.rejected_ids[i]))
    end
    local b = p:batch(all(p))
    check_eq(table.concat(b.ids:shape(), "x"), #c.input_ids .. "x" .. #c.input_ids[1], name .. ": batch size (2B x T)")
    local ids, mask, att = b.ids:totable(), b.mask:totable(), b.attention_mask:totable()
    for r = 1, #c.input_ids do
      check(same(ids[r], c.input_ids[r]), name .. " input_ids row " .. r)
      check(same(mask[r], c.completion_mask[r]), name .. " completion_mask row " .. r)
      check(same(att[r], c.attention_mask[r]), name .. " attention_mask row " .. r)
    end
    check(same(b.chosen_ids:totable()[1], c.input_ids[1]), name .. ": chosen_ids are the first B rows")
    check(same(b.rejected_mask:totable()[1], c.completion_mask[#c.rows + 1]), name .. ": rejected_mask are the last B rows")
    check(same(b.rows, c.rows), name .. ": batch rows")
    check_eq(p:info().pad_id, c.pad_id, name .. ": pad id (TRL pads with EOS)")
  end)

  if c.loss then
    test(name .. ": log-probs and the sigmoid loss equal TRL's", function()
      local policy, ref = nn.load(MODEL), nn.load(F .. "gpt2_ref")
      local p = data.preferences(F .. c.file, options(c))
      local b = p:batch(all(p))
      local B = #c.rows
      local lp = policy:logprobs(b.ids, b.mask)
      check_close(lp:narrow(1, 1, B), c.policy_chosen, 1e-5, name .. " policy chosen")
      check_close(lp:narrow(1, B + 1, B), c.policy_rejected, 1e-5, name .. " policy rejected")
      check_close(policy:logprobs(b.chosen_ids, b.chosen_mask), c.policy_chosen, 1e-5, name .. " chosen half alone")
      local r = dpo.reference_logprobs(ref, p, {quiet = true, batch_size = 2})
      check_close(r.chosen, c.ref_chosen, 1e-5, name .. " reference chosen")
      check_close(r.rejected, c.ref_rejected, 1e-5, name .. " reference rejected")
      check_eq(r.forward_passes, (B + 1) // 2, name .. ": one forward pass per batch of 2 pairs")
      local loss = 0
      for i = 1, B do
        local d = (lp[i] - r.chosen[i]) - (lp[B + i] - r.rejected[i])
        loss = loss - logsigmoid(c.beta * d)
      end
      check_close(loss / B, c.loss, 1e-5, name .. " sigmoid loss")
      -- the batch carries the attached reference values
      local b2 = p:batch({B, 1})
      check_close(b2.ref_chosen, {r.chosen[B], r.chosen[1]}, 0, name .. ": batch ref_chosen in batch order")
      check_close(b2.ref_rejected, {r.rejected[B], r.rejected[1]}, 0, name .. ": batch ref_rejected")
    end)
  end
end

test("the tokenizer as an object, a tokenizer.json or a folder gives the same pairs", function()
  local c = REF.cases.plain
  local a = data.preferences(F .. c.file, {tokenizer = tok.load(MODEL .. "/tokenizer.json"), quiet = true})
  local b = data.preferences(F .. c.file, {tokenizer = MODEL .. "/tokenizer.json", quiet = true})
  local d = data.preferences(F .. c.file, {tokenizer = MODEL, quiet = true})
  check_eq(a:info().eos_token, "<|endoftext|>", "EOS from the tokenizer's special tokens")
  check_eq(d:info().eos_token, "<|endoftext|>", "EOS from the folder's config.json eos_token_id")
  check_eq(a:info().tokens_hash, d:info().tokens_hash, "object vs folder")
  check_eq(b:info().tokens_hash, d:info().tokens_hash, "file vs folder")
  check_eq(d:info().max_length, 1024, "TRL's default max_length")
  check_eq(d:info().truncation, "keep_start", "TRL's default truncation")
end)

test("rows given as Lua tables equal the same rows read from the file", function()
  for _, name in ipairs({"plain", "chatml", "openai", "implicit"}) do
    local c = REF.cases[name]
    local rows = data.jsonl(F .. c.file)
    local a = data.preferences(F .. c.file, options(c))
    local b = data.preferences(rows, options(c))
    check_eq(a:info().tokens_hash, b:info().tokens_hash, name .. ": tokens")
    check_eq(a:info().rows_hash, b:info().rows_hash, name .. ": rows hash is the content, not the file")
    check_eq(b:info().source, "rows")
  end
end)

test("a Lua chat template function renders like the built-in layout", function()
  local c = REF.cases.chatml
  local calls = 0
  local function chatml(messages, add_generation_prompt)
    calls = calls + 1
    local s = ""
    for _, m in ipairs(messages) do s = s .. "<|im_start|>" .. m.role .. "\n" .. m.content .. "<|im_end|>\n" end
    if add_generation_prompt then s = s .. "<|im_start|>assistant\n" end
    return s
  end
  local a = data.preferences(F .. c.file, options(c))
  local b = data.preferences(F .. c.file, options(c, {chat_template = chatml}))
  check_eq(calls, 9, "three renderings per row (prompt, prompt+chosen, prompt+rejected)")
  for i = 1, #a do check(same(a:pair(i).chosen.ids, b:pair(i).chosen.ids), "pair " .. i) end
  check_eq(b:info().chat_template, "function")
  E(function() data.preferences(F .. c.file, options(c, {chat_template = function() return 3 end})) end,
    "chat.jsonl:1: the chat_template function must return a string")
  E(function() data.preferences(F .. c.file, options(c, {chat_template = function() error("boom") end})) end, "boom")
end)

test("a model folder's chat template is detected", function()
  local dir = tmp("folder")
  os.execute("mkdir -p '" .. dir .. "' && cp '" .. MODEL .. "/tokenizer.json' '" .. dir .. "/'")
  made[#made + 1] = dir .. "/tokenizer.json"; made[#made + 1] = dir .. "/tokenizer_config.json"
  write_file(dir .. "/tokenizer_config.json", '{"eos_token": "<|endoftext|>", "chat_template": "{% for m in messages %}<|start_header_id|>{{ m.role }}{% endfor %}"}')
  local c = REF.cases.llama3
  local p = data.preferences(F .. c.file, {tokenizer = dir, max_length = false, quiet = true})
  check_eq(p:info().chat_template, "llama3", "recognised by its markers")
  check_eq(p:info().tokens_hash, data.preferences(F .. c.file, options(c)):info().tokens_hash, "same as chat_template = llama3")
  write_file(dir .. "/tokenizer_config.json", '{"eos_token": "<|endoftext|>", "chat_template": "{{ messages }}"}')
  local out = printed(function() data.preferences(F .. c.file, {tokenizer = dir, max_length = false}) end)
  check(out:find("does not recognise", 1, true) ~= nil, "an unknown template is said, not silent: " .. out)
  os.remove(dir .. "/tokenizer_config.json"); os.remove(dir .. "/tokenizer.json"); os.remove(dir)
end)

-- MARK: truncation and dropping are reported

test("truncated and dropped rows are counted, listed and printed", function()
  local c = REF.cases.plain_keep_start_12
  local p
  local out = printed(function() p = data.preferences(F .. c.file, {tokenizer = MODEL, max_length = 12}) end)
  local info = p:info()
  check_eq(info.dropped, 1); check(same(info.dropped_rows, {5}), "dropped row 5")
  check(info.drop_reasons[1]:find("max_length 12", 1, true) ~= nil, info.drop_reasons[1])
  check_eq(info.truncated, 3); check(same(info.truncated_rows, {1, 3, 4}), "truncated rows " .. show(info.truncated_rows))
  check(out:find("3 of 5 rows truncated", 1, true) ~= nil, "printed: " .. out)
  check(out:find("1 dropped", 1, true) ~= nil, "printed: " .. out)
  check(tostring(p):find("4 pairs from 5 rows", 1, true) ~= nil, tostring(p))
  local quiet = printed(function() data.preferences(F .. c.file, {tokenizer = MODEL, max_length = 12, quiet = true}) end)
  check_eq(quiet, "", "quiet = true prints nothing")
  local none = printed(function() data.preferences(F .. c.file, {tokenizer = MODEL}) end)
  check_eq(none, "", "nothing to report, nothing printed")
  -- keep_end drops nothing but cuts the start
  local q = data.preferences(F .. c.file, {tokenizer = MODEL, max_length = 12, truncation = "keep_end", quiet = true})
  check_eq(#q, 5); check_eq(q:info().dropped, 0)
  local s = q:pair(5).chosen
  check_eq(#s.ids, 12, "cut to 12"); check_eq(s.mask[12], 1, "the completion's end is kept")
end)

test("max_prompt_length keeps the prompt's end, max_completion_length the completion's start", function()
  local c = REF.cases.plain
  local full = data.preferences(F .. c.file, {tokenizer = MODEL, quiet = true})
  local p = data.preferences(F .. c.file, {tokenizer = MODEL, max_prompt_length = 4, max_completion_length = 3, quiet = true})
  for i = 1, #p do
    local a, b = full:pair(i), p:pair(i)
    local n = math.min(4, #a.prompt_ids)
    check(same(b.prompt_ids, table.move(a.prompt_ids, #a.prompt_ids - n + 1, #a.prompt_ids, 1, {})), "pair " .. i .. " prompt end")
    check(same(b.chosen_ids, table.move(a.chosen_ids, 1, math.min(3, #a.chosen_ids), 1, {})), "pair " .. i .. " chosen start")
    check_eq(b.truncated, #a.prompt_ids > 4 or #a.chosen_ids > 3 or #a.rejected_ids > 3, "pair " .. i .. " counted as truncated")
  end
  check(p:info().settings:find("max_prompt_length=4", 1, true) ~= nil, p:info().settings)
end)

-- MARK: batches

test("batches: sizes, order, shuffling, drop_last, lengths", function()
  local c = REF.cases.plain
  local p = data.preferences(F .. c.file, {tokenizer = MODEL, quiet = true})
  local seen, sizes = {}, {}
  for i, b in p:batches{batch_size = 2} do
    sizes[#sizes + 1] = b.size
    for k, r in ipairs(b.pairs) do seen[#seen + 1] = r; check_eq(b.rows[k], r, "rows are source rows (none dropped)") end
    check_eq(b.chosen_ids:size(1), b.size); check_eq(b.ids:size(1), 2 * b.size)
    local cm = b.chosen_mask:sum(2):totable()
    check(same(cm, b.chosen_lengths:totable()), "chosen_lengths are the mask's row sums")
  end
  check(same(sizes, {2, 2, 1}), "sizes " .. show(sizes)); check(same(seen, {1, 2, 3, 4, 5}), "in order")
  local n = 0
  for _ in p:batches{batch_size = 2, drop_last = true} do n = n + 1 end
  check_eq(n, 2, "drop_last")
  local function order(seed)
    local o = {}
    for _, b in p:batches{batch_size = 5, shuffle = true, seed = seed} do for _, r in ipairs(b.pairs) do o[#o + 1] = r end end
    return show(o)
  end
  check_eq(order(7), order(7), "a seed fixes the order")
  check(order(7) ~= show({1, 2, 3, 4, 5}) or order(8) ~= show({1, 2, 3, 4, 5}), "shuffling moves pairs")
  local b = p:batch({4})
  check_eq(b.rejected_lengths[1], 1, "an empty rejected is its EOS alone")
end)

-- MARK: reference log-probs on disk

test("reference log-probs: computed once, then read from the cache", function()
  local c = REF.cases.plain
  local dir = tmp("cache")
  local ref = nn.load(F .. "gpt2_ref")
  local p = data.preferences(F .. c.file, {tokenizer = MODEL, quiet = true})
  local r1 = dpo.reference_logprobs(ref, p, {cache_dir = dir, batch_size = 2, quiet = true})
  made[#made + 1] = r1.path
  check_eq(r1.cached, false); check_eq(r1.forward_passes, 3, "5 pairs in batches of 2")
  check_close(r1.chosen, c.ref_chosen, 1e-5, "values")
  check(r1.path:find(dir, 1, true) == 1, "the file is in cache_dir")
  check(#r1.key == 64, "a SHA-256 key")
  for _, part in ipairs({"weights", "rows", "tokenizer", "settings", "tokens"}) do check(r1.parts[part] ~= nil, "key part " .. part) end
  -- a second run (a new data object from the same file, another batch size) reads the file
  local p2 = data.preferences(F .. c.file, {tokenizer = MODEL, quiet = true})
  local r2 = dpo.reference_logprobs(nn.load(F .. "gpt2_ref"), p2, {cache_dir = dir, batch_size = 4, quiet = true})
  check_eq(r2.cached, true); check_eq(r2.forward_passes, 0, "no forward pass")
  check_eq(r2.path, r1.path)
  check_close(r2.chosen, r1.chosen, 0, "bitwise the stored values"); check_close(r2.rejected, r1.rejected, 0)
  check_close(p2:batch({1}).ref_chosen, {r1.chosen[1]}, 0, "attached from the cache too")
  local out = printed(function() dpo.reference_logprobs(ref, p2, {cache_dir = dir}) end)
  check(out:find("read from the cache", 1, true) ~= nil, "says so: " .. out)
  -- any key part changing computes anew
  local function miss(what, model, prefs)
    local r = dpo.reference_logprobs(model, prefs, {cache_dir = dir, quiet = true})
    made[#made + 1] = r.path
    check_eq(r.cached, false, what .. " invalidates the cache")
    check(r.path ~= r1.path, what .. " gives another file")
    return r
  end
  miss("max_length", ref, data.preferences(F .. c.file, {tokenizer = MODEL, max_length = 40, quiet = true}))
  miss("truncation", ref, data.preferences(F .. c.file, {tokenizer = MODEL, truncation = "keep_end", quiet = true}))
  miss("max_prompt_length", ref, data.preferences(F .. c.file, {tokenizer = MODEL, max_prompt_length = 30, quiet = true}))
  local rows = data.jsonl(F .. c.file)
  rows[2].chosen = " four"
  miss("the data", ref, data.preferences(rows, {tokenizer = MODEL, quiet = true}))
  miss("the tokenizer", ref, data.preferences(F .. c.file, {tokenizer = tok.bytes(), eos_token = "<|endoftext|>", quiet = true}))
  local moved = nn.load(F .. "gpt2_ref")
  dpo.sync_reference(moved, nn.load(MODEL), 0.5)
  local rm = miss("the reference weights", moved, p)
  check(rm.chosen[1] ~= r1.chosen[1], "other weights, other values")
  -- and the original key still hits
  check_eq(dpo.reference_logprobs(ref, p, {cache_dir = dir, quiet = true}).cached, true, "the first file is still used")
  -- a damaged file is recomputed and replaced
  write_file(r1.path, "not a safetensors file")
  local r3 = dpo.reference_logprobs(ref, p, {cache_dir = dir, quiet = true})
  check_eq(r3.cached, false, "a damaged file is recomputed")
  check_close(r3.chosen, r1.chosen, 1e-5, "(batches of 8, not 2: padding changes float rounding only)")
  check_eq(dpo.reference_logprobs(ref, p, {cache_dir = dir, quiet = true}).cached, true, "and rewritten")
  -- without cache_dir nothing is stored
  local r4 = dpo.reference_logprobs(ref, p, {quiet = true, attach = false})
  check_eq(r4.cached, false); check_eq(r4.path, nil)
  test("sweep: odd values in every position never crash and name the function", function()
  local P = data.preferences(F .. REF.cases.plain.file, {tokenizer = MODEL, quiet = true})
  local pool = {
    {"nil", nil}, {"string", "x"}, {"numeric string", "2"}, {"true", true}, {"false", false}, {"empty table", {}},
    {"list", {2, 3}}, {"rows", {{a = 1}}}, {"options", {tokenizer = MODEL}}, {"-1", -1}, {"0", 0}, {"1.5", 1.5},
    {"inf", math.huge}, {"nan", 0/0}, {"function", print}, {"thread", coroutine.create(print)},
    {"tensor", tensor.zeros(2)}, {"null", data.null}, {"prefs", P}, {"module", nn.linear(2, 2)},
  }
  local function call(label, f, ...)
    local ok, err = pcall(f, ...)
    if not ok then return check(tostring(err):find(label, 1, true) ~= nil, label .. ": " .. tostring(err)) end
    return true
  end
  for _, fn in ipairs{{"data.preferences", data.preferences}, {"data.audit", data.audit},
                      {"dpo.reference_logprobs", dpo.reference_logprobs}, {"dpo.sync_reference", dpo.sync_reference}} do
    local ok = call(fn[1], fn[2])
    for _, a in ipairs(pool) do
      ok = call(fn[1], fn[2], a[2]) and ok
      for _, b in ipairs(pool) do ok = call(fn[1], fn[2], a[2], b[2]) and ok end
    end
    check(ok, "sweep of " .. fn[1])
  end
  for _, name in ipairs{"pair", "batch", "batches", "info", "reference", "size", "split", "subset"} do
    local ok = true
    for _, a in ipairs(pool) do
      ok = call("data.preferences." .. name, P[name], P, a[2]) and ok
      ok = call("data.preferences." .. name, P[name], a[2]) and ok
    end
    check(ok, "sweep of p:" .. name)
  end
  local step, state = P:batches{batch_size = 2}
  for _, a in ipairs(pool) do
    local ok, err = pcall(step, a[2], 0)
    check(not ok and tostring(err):find("data.preferences.batches", 1, true) ~= nil, "step(" .. a[1] .. "): " .. tostring(err))
  end
  check(step(state, 0) == 1, "the real state still works")
end)

for _, f in ipairs(made) do os.remove(f) end
  os.remove(dir)
end)

test("the reference pass runs in evaluation mode without gradients and restores the mode", function()
  local m = nn.load(F .. "gpt2_ref")
  m:train()
  local p = data.preferences(F .. REF.cases.plain.file, {tokenizer = MODEL, quiet = true})
  local r = dpo.reference_logprobs(m, p, {quiet = true})
  check_eq(r.chosen:requires_grad(), false, "no graph")
  check_eq(m:is_training(), true, "training mode restored")
  local q = p:reference()
  check_close(q.chosen, r.chosen, 0, "p:reference()")
  check_eq(data.preferences(F .. REF.cases.plain.file, {tokenizer = MODEL, quiet = true}):reference(), nil, "nil before")
end)

-- MARK: TR-DPO

test("sync_reference equals TRL's SyncRefModelCallback bit for bit", function()
  local policy, ref = nn.load(MODEL), nn.load(F .. "gpt2_ref")
  local before = ref:named_parameters()["transformer.h.1.mlp.c_fc.weight"]:clone()
  check(dpo.sync_reference(ref, policy, REF.sync_alpha) == ref, "returns the reference")
  local want = tensor.load(F .. "sync_ref.safetensors")
  local got = ref:named_parameters()
  for _, name in ipairs(REF.sync_tensors) do
    check_eq((got[name] - want[name]):abs():max():item(), 0, name .. " exactly")
  end
  local p = policy:named_parameters()["transformer.h.1.mlp.c_fc.weight"]
  local expect = before * (1 - REF.sync_alpha) + p * REF.sync_alpha
  check_close(got["transformer.h.1.mlp.c_fc.weight"], expect, 1e-6, "alpha*policy + (1-alpha)*ref")
  local r2 = nn.load(F .. "gpt2_ref")
  dpo.sync_reference(r2, policy, 1)
  check_eq((r2:named_parameters()["transformer.wte.weight"] - policy:named_parameters()["transformer.wte.weight"]):abs():max():item(), 0, "alpha 1 copies the policy")
  local r3 = nn.load(F .. "gpt2_ref")
  dpo.sync_reference(r3, policy)
  check_close(r3:named_parameters()["transformer.ln_f.bias"], want["transformer.ln_f.bias"], 0, "alpha defaults to 0.6 (TRL's ref_model_mixup_alpha)")
end)

-- MARK: audits

local function pref_rows(list)
  local rows = {}
  for i, r in ipairs(list) do rows[i] = {prompt = r[1], chosen = r[2], rejected = r[3]} end
  return rows
end

test("audit: length bias, identical, duplicate and contradictory pairs", function()
  local rows = pref_rows{
    {"Q1", " a long answer here", " no"},
    {"Q2", " another long answer", " bad"},
    {"Q3", " same", " same"},
    {"Q1", " a long answer here", " no"},
    {"Q4", " yes", " no no no no"},
    {"Q4", " no no no no", " yes"},
  }
  local p = data.preferences(rows, {tokenizer = MODEL, quiet = true})
  local a = data.audit(p)
  check_eq(a.pairs, 6)
  check_close(a.length_bias.chosen_longer, 4 / 6, 1e-12, "chosen longer in rows 1, 2, 4 and 6")
  check_close(a.length_bias.rejected_longer, 1 / 6, 1e-12, "rejected longer in row 5")
  check(a.length_bias.chosen_longer + a.length_bias.rejected_longer + a.length_bias.same_length > 0.999, "fractions sum to 1")
  check(a.length_bias.mean_chosen_tokens > a.length_bias.mean_rejected_tokens, "means")
  check_eq(a.identical, 1); check(same(a.identical_rows, {3}), "identical row 3")
  check_eq(a.duplicates, 1); check_eq(a.duplicate_rows[1].row, 4); check_eq(a.duplicate_rows[1].first, 1)
  check_eq(a.contradictions, 1); check_eq(a.contradiction_rows[1].row, 6); check_eq(a.contradiction_rows[1].other, 5)
  check_eq(a.eval_pairs, nil, "no eval split given")
  check(a.report:find("identical pairs", 1, true) ~= nil, a.report)
  check(#a.warnings >= 3, "a warning per problem")
  local out = printed(function() data.audit(p, {print = true}) end)
  check(out:find("Preference data audit: 6 pairs", 1, true) ~= nil, "print = true prints the report: " .. out)
  check_eq(printed(function() data.audit(p) end), "", "nothing printed unless asked")
end)

test("audit: length bias is warned about past 60%", function()
  local list = {}
  for i = 1, 10 do list[i] = {"Q" .. i, i <= 8 and " a much longer chosen answer" or " x", i <= 8 and " short" or " a much longer rejected answer"} end
  local a = data.audit(data.preferences(pref_rows(list), {tokenizer = MODEL, quiet = true}))
  check_close(a.length_bias.chosen_longer, 0.8, 1e-12)
  check(a.warnings[1]:find("chosen is longer than rejected in 80% of pairs", 1, true) ~= nil, a.warnings[1])
  local balanced = {}
  for i = 1, 10 do balanced[i] = {"Q" .. i, i % 2 == 0 and " long long answer" or " x", i % 2 == 0 and " y" or " long long answer"} end
  local b = data.audit(data.preferences(pref_rows(balanced), {tokenizer = MODEL, quiet = true}))
  check_eq(#b.warnings, 0, "balanced data, no warning")
  check(b.report:find("No problems found", 1, true) ~= nil, b.report)
end)

test("audit: prompts shared between train and eval", function()
  local train = data.preferences(pref_rows{{"Q1", " a", " b"}, {"Q2", " a", " b"}, {"Q3", " c", " d"}}, {tokenizer = MODEL, quiet = true})
  local eval = data.preferences(pref_rows{{"Q9", " a", " b"}, {"Q2", " x", " y"}, {"Q3", " c", " d"}, {"Q3", " e", " f"}}, {tokenizer = MODEL, quiet = true})
  local a = data.audit(train, eval)
  check_eq(a.eval_pairs, 4)
  check_eq(a.shared_prompts, 3); check(same(a.shared_prompt_rows, {2, 3, 4}), show(a.shared_prompt_rows))
  check_eq(a.distinct_shared_prompts, 2)
  check_eq(a.eval_leaked, 1); check(same(a.eval_leaked_rows, {3}), "eval row 3 is a training pair")
  check(a.report:find("3 of 4 eval pairs share a prompt", 1, true) ~= nil, a.report)
  -- conversational prompts compare by their rendered text
  local msg = function(role, text) return {{role = role, content = text}} end
  local t2 = data.preferences({{prompt = msg("user", "Hi"), chosen = msg("assistant", "A"), rejected = msg("assistant", "B")}}, {tokenizer = MODEL, quiet = true})
  local e2 = data.preferences({{input = {messages = msg("user", "Hi")}, preferred_output = msg("assistant", "C"), non_preferred_output = msg("assistant", "D")}}, {tokenizer = MODEL, quiet = true})
  check_eq(data.audit(t2, e2).shared_prompts, 1, "a TRL row and an OpenAI row with the same prompt")
end)

test("audit: truncated and dropped rows are in the report", function()
  local c = REF.cases.plain_keep_start_12
  local a = data.audit(data.preferences(F .. c.file, {tokenizer = MODEL, max_length = 12, quiet = true}))
  check_eq(a.truncated, 3); check_eq(a.dropped, 1); check(same(a.dropped_rows, {5}), "dropped row")
  check(a.report:find("3 truncated, 1 dropped", 1, true) ~= nil, a.report)
end)

-- MARK: split and subset

local function rows_of(p) local t = {} for i = 1, #p do t[i] = p:pair(i).row end return t end

-- 20 rows over 8 prompts: Q1..Q7 three times or twice, Q0 twice.
local function twenty()
  local list = {}
  for i = 1, 20 do list[i] = {"Q" .. (i % 8), " yes " .. i, " no " .. i} end
  return data.preferences(pref_rows(list), {tokenizer = MODEL, quiet = true})
end

test("split: sizes, disjoint parts, no shared prompt with by_prompt, determinism for a seed", function()
  local p = twenty()
  local train, held = p:split(0.75, {seed = 1})
  local a, b = rows_of(train), rows_of(held)
  check_eq(#a + #b, 20, "every pair on one side")
  check(math.abs(#a - 15) <= 1, "about floor(0.75 * 20) = 15 pairs (within half the largest prompt group): " .. #a)
  local seen = {}
  for _, r in ipairs(a) do seen[r] = "train" end
  for _, r in ipairs(b) do check(seen[r] == nil, "row " .. r .. " on both sides"); seen[r] = "held" end
  for r = 1, 20 do check(seen[r] ~= nil, "row " .. r .. " kept") end
  for i = 2, #a do check(a[i - 1] < a[i], "each part in data-set order") end
  check_eq(data.audit(train, held).shared_prompts, 0, "by_prompt: no held-out prompt in training")
  -- a seed fixes the split; other seeds give others
  local train2, held2 = p:split(0.75, {seed = 1})
  check(same(rows_of(train2), a) and same(rows_of(held2), b), "the same seed, the same split")
  local other = false
  for seed = 2, 6 do if not same(rows_of(p:split(0.75, {seed = seed})), a) then other = true end end
  check(other, "another seed, another split")
  -- without a seed: tensor.manual_seed's generator
  tensor.manual_seed(5); local x = rows_of(p:split(0.5))
  tensor.manual_seed(5); local y = rows_of(p:split(0.5))
  check(same(x, y), "the global generator, seeded, gives the same split")
  -- by_prompt = false: exactly the count; prompts may then be shared
  local shared = 0
  for seed = 1, 5 do
    local t, h = p:split(0.75, {seed = seed, by_prompt = false})
    check_eq(#t, 15, "pair by pair, exactly 15"); check_eq(#h, 5)
    shared = shared + data.audit(t, h).shared_prompts
  end
  check(shared > 0, "without by_prompt prompts leak (which is why it is the default)")
  -- no shuffle: data-set order
  local t, h = p:split(5, {shuffle = false, by_prompt = false})
  check(same(rows_of(t), {1, 2, 3, 4, 5}), "the first 5 pairs: " .. show(rows_of(t)))
  check_eq(#h, 15)
  local t2 = p:split(0.25, {shuffle = false, by_prompt = false})
  check(same(rows_of(t2), {1, 2, 3, 4, 5}), "a fraction: floor(0.25 * 20) pairs")
  local t3, h3 = p:split(3, {shuffle = false})
  -- prompts by first appearance: Q1 (rows 1, 9, 17), then the first part has 3
  check(same(rows_of(t3), {1, 9, 17}), "whole prompt groups in order: " .. show(rows_of(t3)))
  check_eq(#h3, 17)
  check(train:info().derivation:find("part 1 of a split of 20 pairs (0.75, seed 1, by prompt)", 1, true) ~= nil, train:info().derivation)
  check(tostring(held):find("part 2 of a split", 1, true) ~= nil, tostring(held))
  check_eq(p:info().derivation, nil, "data read from rows has none")
end)

test("subset and split keep source rows, options, reference log-probs; hashes tell them apart", function()
  local c = REF.cases.plain_keep_start_12
  local p = data.preferences(F .. c.file, {tokenizer = MODEL, max_length = 12, quiet = true})
  check(same(rows_of(p), {1, 2, 3, 4}), "row 5 dropped")
  local s = p:subset({4, 2})
  check(same(rows_of(s), {4, 2}), "source rows in the order given")
  check(same(s:pair(1).chosen_ids, p:pair(4).chosen_ids), "the pair itself")
  check(same(s:batch({1, 2}).rows, {4, 2}), "batches name source rows")
  local info = s:info()
  check_eq(info.source_rows, 5); check_eq(info.max_length, 12); check_eq(info.truncation, "keep_start")
  check(same(info.truncated_rows, {4}), "truncated rows by source row: " .. show(info.truncated_rows))
  check_eq(info.dropped, 0, "dropped rows stay the original's")
  check(info.tokens_hash ~= p:info().tokens_hash and info.rows_hash ~= p:info().rows_hash, "hashes of its own")
  check_eq(p:subset({1, 2, 3, 4}):info().tokens_hash, p:info().tokens_hash, "every pair in order is the same data")
  check_eq(#p:subset({}), 0, "an empty subset")
  check_eq(s:reference(), nil, "nothing attached yet")
  -- reference log-probs: carried over, and the cache keys differ per subset
  local dir = tmp("split-cache")
  local ref = nn.load(F .. "gpt2_ref")
  local full = data.preferences(F .. REF.cases.plain.file, {tokenizer = MODEL, quiet = true})
  local r = dpo.reference_logprobs(ref, full, {cache_dir = dir, quiet = true})
  made[#made + 1] = r.path
  local sub = full:subset({5, 1, 3})
  check_close(sub:reference().chosen, {r.chosen[5], r.chosen[1], r.chosen[3]}, 0, "attached values follow their pairs")
  check_close(sub:batch({1}).ref_rejected, {r.rejected[5]}, 0, "batches carry them")
  local train, held = full:split(3, {seed = 2, by_prompt = false})
  local rt = train:reference()
  for i = 1, #train do check_eq(rt.chosen[i], r.chosen[train:pair(i).row], "split part " .. i .. " keeps its reference value") end
  local ks = {}
  for _, part in ipairs({sub, full:subset({1, 3, 5}), train, held}) do
    local q = dpo.reference_logprobs(ref, part, {cache_dir = dir, quiet = true, attach = false})
    made[#made + 1] = q.path
    check_eq(q.cached, false, "a subset is not read from the full data's file")
    check(q.path ~= r.path, "another file")
    check_close(q.chosen, part:reference().chosen, 1e-5, "computed on the subset: the same values")
    for _, k in ipairs(ks) do check(k ~= q.key, "each subset its own key") end
    ks[#ks + 1] = q.key
  end
  check_eq(dpo.reference_logprobs(ref, full:subset({1, 2, 3, 4, 5}), {cache_dir = dir, quiet = true}).cached, true,
    "the whole data in order reads the full data's file")
  os.remove(dir)
end)

test("split and subset: bad arguments name the method", function()
  local p = twenty()
  E(function() p:split() end, "data.preferences.split: argument #2 (fraction_or_count) must be a number")
  E(function() p:split("x") end, "data.preferences.split: argument #2 (fraction_or_count) must be a number")
  for _, bad in ipairs({0, -0.5, 1.5, 20, 21, -3, math.huge, 0 / 0}) do
    E(function() p:split(bad) end, "data.preferences.split: argument #2 (fraction_or_count) must be a fraction in (0, 1) or a pair count in 1..19")
  end
  E(function() p:split(0.01) end, "data.preferences.split: argument #2 (fraction_or_count) must be a fraction of the 20 pairs that leaves both parts non-empty, got 0.01 (0 pairs in the first part)")
  E(function() p:split(0.5, 3) end, "data.preferences.split: argument #3 (options) must be a table")
  E(function() p:split(0.5, {shufle = false}) end, "unknown option 'shufle'")
  E(function() p:split(0.5, {seed = 1.5}) end, "'seed' is an integer")
  E(function() p:split(0.5, {by_prompt = "yes"}) end, "'by_prompt' is a boolean")
  E(function() p:split(0.5, {shuffle = 1}) end, "'shuffle' is a boolean")
  local one = data.preferences(pref_rows{{"Q", " a", " b"}}, {tokenizer = MODEL, quiet = true})
  E(function() one:split(0.5) end, "data.preferences.split: argument #1 (self) must be preference data of at least 2 pairs to split, got 1")
  local same_prompt = data.preferences(pref_rows{{"Q", " a", " b"}, {"Q", " c", " d"}, {"Q", " e", " f"}}, {tokenizer = MODEL, quiet = true})
  E(function() same_prompt:split(1) end, "data.preferences.split: all 3 pairs have the same prompt, so keeping each prompt's pairs on one side (by_prompt) leaves one part empty; set by_prompt = false")
  check_eq(#same_prompt:split(1, {by_prompt = false}), 1, "pair by pair it splits")
  E(function() p.split(3, 0.5) end, "data.preferences.split: argument #1 (self) must be preference data")
  E(function() p:subset() end, "data.preferences.subset: argument #2 (indices) must be a table")
  E(function() p:subset(3) end, "data.preferences.subset: argument #2 (indices) must be a table")
  E(function() p:subset({0}) end, "data.preferences.subset: argument #2 (indices) must be a list of pair numbers in 1..20, got 0 at position 1")
  E(function() p:subset({1, 21}) end, "got 21 at position 2")
  E(function() p:subset({1.5}) end, "got 1.5 at position 1")
  E(function() p:subset({"a"}) end, "got string at position 1")
  E(function() p:subset({2, 3, 2}) end, "data.preferences.subset: argument #2 (indices) must be a list of distinct pair numbers: pair number 2 is given twice (at position 3)")
  E(function() p.subset({}, {1}) end, "data.preferences.subset: argument #1 (self) must be preference data")
  E(function() p:subset({}):subset({1}) end, "a list of pair numbers, but the data has no pairs")
end)

-- MARK: row formats

test("row formats: OpenAI text parts, implicit prompts, extra fields", function()
  local p = data.preferences({
    {input = {messages = {{role = "user", content = {{type = "text", text = "Hel"}, {type = "text", text = "lo"}}}}, tools = {}},
     preferred_output = {{role = "assistant", content = "A"}}, non_preferred_output = {{role = "assistant", content = "B"}}, id = 7},
  }, {tokenizer = MODEL, chat_template = "plain", quiet = true})
  local q = data.preferences({{prompt = {{role = "user", content = "Hello"}}, chosen = {{role = "assistant", content = "A"}},
                               rejected = {{role = "assistant", content = "B"}}, score = 3}}, {tokenizer = MODEL, chat_template = "plain", quiet = true})
  check_eq(p:info().tokens_hash, q:info().tokens_hash, "OpenAI rows read as TRL conversational rows")
  check_eq(p:info().format, "openai"); check_eq(q:info().format, "conversational")
  local i = data.preferences({{chosen = "Q: 2+2? 4", rejected = "Q: 2+2? 5"}}, {tokenizer = MODEL, quiet = true})
  local j = data.preferences({{prompt = "Q: 2+2?", chosen = " 4", rejected = " 5"}}, {tokenizer = MODEL, quiet = true})
  check(same(i:pair(1).prompt_ids, j:pair(1).prompt_ids), "implicit prompt: the shared start before the space")
  check(same(i:pair(1).chosen_ids, j:pair(1).chosen_ids), "implicit prompt: the completion keeps its space")
  local k = data.preferences({{prompt = "P", chosen = " a<|endoftext|>", rejected = " b"}}, {tokenizer = MODEL, quiet = true})
  check_eq(#k:pair(1).chosen_ids, #k:pair(1).rejected_ids, "an EOS already there is not doubled")
  check_eq(k:pair(1).chosen_ids[#k:pair(1).chosen_ids], 0, "ends with EOS")
  local e = data.preferences({}, {tokenizer = MODEL, quiet = true})
  check_eq(#e, 0, "no rows, no pairs"); check_eq(data.audit(e).pairs, 0)
end)

-- MARK: errors

test("bad arguments name the function", function()
  local c = REF.cases.plain
  local T = {tokenizer = MODEL, quiet = true}
  local P = data.preferences(F .. c.file, T)
  local function opts(extra) local o = {tokenizer = MODEL, quiet = true} for k, v in pairs(extra) do o[k] = v end return o end
  -- data.preferences: arguments and options
  E(function() data.preferences() end, "data.preferences: argument #1 (path_or_rows)")
  E(function() data.preferences(3, T) end, "data.preferences: argument #1 (path_or_rows) must be a JSONL file path or a list of rows, got number")
  E(function() data.preferences(F .. c.file) end, "data.preferences: argument #2 (options) must be a table")
  E(function() data.preferences(F .. c.file, {}) end, "data.preferences: argument #2 (options) must be a table with tokenizer =")
  E(function() data.preferences(F .. c.file, opts{max_lenght = 3}) end, "unknown option 'max_lenght'")
  E(function() data.preferences(F .. c.file, {tokenizer = 3}) end, "field 'tokenizer' is a tokenizer, a tokenizer.json or a model folder, got number")
  E(function() data.preferences(F .. c.file, {tokenizer = "/nonexistent/x"}) end, "which does not exist")
  E(function() data.preferences(F .. c.file, {tokenizer = F .. "plain.jsonl"}) end, "data.preferences:")
  for _, bad in ipairs({0, -3, 2.5, "x", true}) do
    E(function() data.preferences(F .. c.file, opts{max_length = bad}) end, "data.preferences: argument #2 (options)")
  end
  E(function() data.preferences(F .. c.file, opts{max_prompt_length = -1}) end, "'max_prompt_length' is at least 0, got -1")
  E(function() data.preferences(F .. c.file, opts{max_completion_length = 0}) end, "'max_completion_length' is at least 1, got 0")
  E(function() data.preferences(F .. c.file, opts{truncation = "keep_middle"}) end, "'truncation' is \"keep_start\" or \"keep_end\", got \"keep_middle\"")
  E(function() data.preferences(F .. c.file, opts{truncation = 1}) end, "'truncation' is a string")
  E(function() data.preferences(F .. c.file, opts{chat_template = "jinja"}) end, "'chat_template' is auto, chatml, llama3, plain or a function, got 'jinja'")
  E(function() data.preferences(F .. c.file, opts{chat_template = 5}) end, "'chat_template' is a template name or a function, got number")
  E(function() data.preferences(F .. c.file, opts{eos_token = "</s>"}) end, "'eos_token' is a token of the tokenizer, got \"</s>\"")
  E(function() data.preferences(F .. c.file, opts{eos_token = 0}) end, "'eos_token' is a string")
  E(function() data.preferences(F .. c.file, opts{pad_id = 384}) end, "'pad_id' is a token id of the tokenizer (0..383), got 384")
  E(function() data.preferences(F .. c.file, opts{pad_id = -1}) end, "got -1")
  E(function() data.preferences(F .. c.file, opts{quiet = "yes"}) end, "'quiet' is a boolean")
  check(pcall(data.preferences, {}, {tokenizer = tok.bytes{special_tokens = {}}, quiet = true}), "an empty data set needs no EOS")
  E(function() data.preferences({{prompt = "a", chosen = "b", rejected = "c"}}, {tokenizer = tok.bytes{special_tokens = {}}}) end,
    "data.preferences: plain-text rows need the tokenizer's EOS text")
  -- rows
  E(function() data.preferences(F .. "missing.jsonl", T) end, "data.preferences: " .. F .. "missing.jsonl: cannot open")
  local bad = write_file(tmp("bad.jsonl"), '{"prompt": "a", "chosen": "b", "rejected": "c"}\n{"prompt": "a", "chosen": 3, "rejected": "c"}\n')
  E(function() data.preferences(bad, T) end, "data.preferences: " .. bad .. ":2: chosen must be a string or a list of messages, got the number 3")
  local broken = write_file(tmp("broken.jsonl"), '{"prompt": "a", "chosen": "b", "rejected": "c"}\n{"prompt": \n')
  E(function() data.preferences(broken, T) end, broken .. ":2: invalid JSON")
  local R = function(row) return function() data.preferences({row}, T) end end
  E(R{prompt = "a", chosen = "b"}, "data.preferences: row 1: has no rejected")
  E(R{prompt = "a"}, "row 1: has no chosen and rejected")
  E(R{prompt = "a", chosen = "b", rejected = {{role = "assistant", content = "c"}}}, "row 1: chosen and rejected must both be strings or both be message lists")
  E(R{prompt = {{role = "user", content = "a"}}, chosen = "b", rejected = "c"}, "row 1: prompt, chosen and rejected must all be strings or all be message lists")
  E(R{prompt = "a", chosen = {}, rejected = {}}, "row 1: chosen is an empty list of messages")
  E(R{prompt = {{role = "user"}}, chosen = {{role = "assistant", content = "b"}}, rejected = {{role = "assistant", content = "c"}}}, "row 1: prompt[1] has no content")
  E(R{prompt = {{content = "a"}}, chosen = {{role = "assistant", content = "b"}}, rejected = {{role = "assistant", content = "c"}}}, "row 1: prompt[1] has no role")
  E(R{prompt = {{role = "user", content = data.null}}, chosen = {{role = "assistant", content = "b"}}, rejected = {{role = "assistant", content = "c"}}}, "prompt[1].content must be a string or a list of text parts, got null")
  E(R{prompt = {{role = "user", content = {{type = "image_url", image_url = "x"}}}}, chosen = {{role = "assistant", content = "b"}}, rejected = {{role = "assistant", content = "c"}}}, "prompt[1].content[1] must be a text part")
  E(R{prompt = {{role = "user", content = "a"}}, chosen = {{role = "assistant", content = "b", tool_calls = {{id = "1"}}}}, rejected = {{role = "assistant", content = "c"}}}, "chosen[1].tool_calls is not supported")
  E(R{chosen = "abc", rejected = "xyz"}, "row 1: has no prompt, and chosen and rejected share no start")
  E(R{chosen = "", rejected = "x"}, "row 1: has no prompt, and chosen or rejected is empty")
  E(R{input = {messages = {{role = "user", content = "a"}}}, preferred_output = {{role = "assistant", content = "b"}}}, "row 1: has no non_preferred_output")
  E(R{preferred_output = {{role = "assistant", content = "b"}}, non_preferred_output = {{role = "assistant", content = "b"}}}, "row 1: has preferred_output but no input")
  E(R{input = {messages = {{role = "user", content = "a"}}, tools = {{type = "function"}}}, preferred_output = {{role = "assistant", content = "b"}}, non_preferred_output = {{role = "assistant", content = "c"}}}, "row 1: input.tools is not supported")
  E(R{input = "hi", preferred_output = {{role = "assistant", content = "b"}}, non_preferred_output = {{role = "assistant", content = "c"}}}, "row 1: input must be an object")
  E(function() data.preferences({{prompt = "a", chosen = "b", rejected = "c"}, {prompt = {{role = "user", content = "a"}}, chosen = {{role = "assistant", content = "b"}}, rejected = {{role = "assistant", content = "c"}}}}, T) end,
    "row 2 is conversational but row 1 is plain text")
  E(function() data.preferences({{prompt = "a", chosen = "b", rejected = "c"}, 5}, T) end, "data.preferences: row 2 must be a table")
  E(function() data.preferences({prompt = "a", chosen = "b", rejected = "c"}, T) end, "a list of rows, got a table with named fields")
  E(function() data.preferences({{prompt = "a", chosen = "b", rejected = "c", f = print}}, T) end, "row 1: field f")
  -- methods
  E(function() P:pair(0) end, "data.preferences.pair: argument #2 (i) must be a pair number in 1..5, got 0")
  E(function() P:pair(6) end, "in 1..5, got 6")
  E(function() P:pair("x") end, "data.preferences.pair: argument #2 (i) must be an integer")
  E(function() P:pair(1.5) end, "must be an integer, got 1.5")
  E(function() P.pair(3, 1) end, "data.preferences.pair: argument #1 (self) must be preference data")
  E(function() P:batch({}) end, "data.preferences.batch: argument #2 (indices) must be a non-empty list")
  E(function() P:batch({1, 9}) end, "a list of pair numbers in 1..5, got 9 at position 2")
  E(function() P:batch({"a"}) end, "got string at position 1")
  E(function() P:batch(2) end, "data.preferences.batch: argument #2 (indices) must be a table")
  E(function() P:batches() end, "data.preferences.batches: argument #2 (options) must be a table")
  E(function() P:batches{} end, "must be a table with batch_size = an integer")
  E(function() P:batches{batch_size = 0} end, "'batch_size' is at least 1, got 0")
  E(function() P:batches{batch_size = 2, shufle = true} end, "unknown option 'shufle'")
  E(function() P:batches{batch_size = 2, seed = 1.5} end, "'seed' is an integer")
  E(function() P:info(1) end, "data.preferences.info: expected at most 1 argument")
  -- data.audit
  E(function() data.audit() end, "data.audit: argument #1 (prefs) must be a value, got no value")
  E(function() data.audit({}) end, "data.audit: argument #1 (prefs) must be preference data")
  E(function() data.audit(P, 3) end, "data.audit: argument #2 (eval_prefs) must be preference data")
  E(function() data.audit(P, {prnt = true}) end, "data.audit: argument #2 (eval_prefs) must be a table of options (print), got unknown option 'prnt'")
  E(function() data.audit(P, P, 4) end, "data.audit: argument #3 (options) must be a table")
  E(function() data.audit(P, {print = 1}) end, "'print' is a boolean")
  -- dpo.reference_logprobs
  local ref = nn.load(F .. "gpt2_ref")
  E(function() dpo.reference_logprobs() end, "dpo.reference_logprobs: argument #1 (ref_model) must be a value, got no value")
  E(function() dpo.reference_logprobs(3, P) end, "dpo.reference_logprobs: argument #1 (ref_model) must be a module, got number")
  E(function() dpo.reference_logprobs(nn.linear(2, 2), P) end, "dpo.reference_logprobs: argument #1 (ref_model) must be a language model")
  E(function() dpo.reference_logprobs(ref, {}) end, "dpo.reference_logprobs: argument #2 (prefs) must be preference data")
  E(function() dpo.reference_logprobs(ref, P, {batch_size = 0}) end, "'batch_size' is at least 1, got 0")
  E(function() dpo.reference_logprobs(ref, P, {batchsize = 2}) end, "unknown option 'batchsize'")
  E(function() dpo.reference_logprobs(ref, P, {cache_dir = 3}) end, "'cache_dir' is a string")
  E(function() dpo.reference_logprobs(ref, P, {cache_dir = F .. "plain.jsonl", quiet = true}) end, "dpo.reference_logprobs: cache_dir " .. F .. "plain.jsonl is a file, not a directory")
  local long = {}
  for i = 1, 3 do long[i] = {prompt = string.rep("word ", 40), chosen = " yes", rejected = " no"} end
  E(function() dpo.reference_logprobs(ref, data.preferences(long, T), {quiet = true}) end, "dpo.reference_logprobs: pairs 1..3 (rows 1..3): logprobs: ")
  local big = nn.gpt2{vocab = 10, ctx = 16, dim = 8, layers = 1, heads = 2}
  E(function() dpo.reference_logprobs(big, P, {quiet = true}) end, "the model's vocabulary has 10 ids")
  -- dpo.sync_reference
  local pol = nn.load(MODEL)
  E(function() dpo.sync_reference() end, "dpo.sync_reference: argument #1 (ref) must be a value, got no value")
  E(function() dpo.sync_reference({}, ref) end, "dpo.sync_reference: argument #1 (ref) must be a module, got table")
  E(function() dpo.sync_reference(ref) end, "dpo.sync_reference: argument #2 (policy) must be a value, got no value")
  E(function() dpo.sync_reference(ref, P) end, "dpo.sync_reference: argument #2 (policy) must be a module, got userdata")
  E(function() dpo.sync_reference(ref, pol, 1.5) end, "dpo.sync_reference: argument #3 (alpha) must be a number in 0..1, got 1.5")
  E(function() dpo.sync_reference(ref, pol, -0.1) end, "in 0..1, got -0.1")
  E(function() dpo.sync_reference(ref, pol, 0 / 0) end, "in 0..1")
  E(function() dpo.sync_reference(ref, pol, "a") end, "argument #3 (alpha) must be a number")
  E(function() dpo.sync_reference(ref, nn.load(TEST_DIR .. "/../Fixtures/models/llama")) end, "dpo.sync_reference: ")
  E(function() dpo.sync_reference(ref, nn.gpt2{vocab = 384, ctx = 64, dim = 16, layers = 2, heads = 4}) end, "dpo.sync_reference: parameter ")
  local w = ref:named_parameters()["transformer.wte.weight"]:clone()
  pcall(dpo.sync_reference, ref, nn.gpt2{vocab = 384, ctx = 64, dim = 16, layers = 2, heads = 4})
  check_eq((ref:named_parameters()["transformer.wte.weight"] - w):abs():max():item(), 0, "a refused sync changes nothing")
  -- odd values
  check(tostring(P):find("data.preferences: 5 pairs", 1, true) == 1, tostring(P))
  check_eq(#P, 5); check_eq(P:size(), 5)
end)

test("sweep: odd values in every position never crash and name the function", function()
  local P = data.preferences(F .. REF.cases.plain.file, {tokenizer = MODEL, quiet = true})
  local pool = {
    {"nil", nil}, {"string", "x"}, {"numeric string", "2"}, {"true", true}, {"false", false}, {"empty table", {}},
    {"list", {2, 3}}, {"rows", {{a = 1}}}, {"options", {tokenizer = MODEL}}, {"-1", -1}, {"0", 0}, {"1.5", 1.5},
    {"inf", math.huge}, {"nan", 0/0}, {"function", print}, {"thread", coroutine.create(print)},
    {"tensor", tensor.zeros(2)}, {"null", data.null}, {"prefs", P}, {"module", nn.linear(2, 2)},
  }
  local function call(label, f, ...)
    local ok, err = pcall(f, ...)
    if not ok then return check(tostring(err):find(label, 1, true) ~= nil, label .. ": " .. tostring(err)) end
    return true
  end
  for _, fn in ipairs{{"data.preferences", data.preferences}, {"data.audit", data.audit},
                      {"dpo.reference_logprobs", dpo.reference_logprobs}, {"dpo.sync_reference", dpo.sync_reference}} do
    local ok = call(fn[1], fn[2])
    for _, a in ipairs(pool) do
      ok = call(fn[1], fn[2], a[2]) and ok
      for _, b in ipairs(pool) do ok = call(fn[1], fn[2], a[2], b[2]) and ok end
    end
    check(ok, "sweep of " .. fn[1])
  end
  for _, name in ipairs{"pair", "batch", "batches", "info", "reference", "size", "split", "subset"} do
    local ok = true
    for _, a in ipairs(pool) do
      ok = call("data.preferences." .. name, P[name], P, a[2]) and ok
      ok = call("data.preferences." .. name, P[name], a[2]) and ok
    end
    check(ok, "sweep of p:" .. name)
  end
  local step, state = P:batches{batch_size = 2}
  for _, a in ipairs(pool) do
    local ok, err = pcall(step, a[2], 0)
    check(not ok and tostring(err):find("data.preferences.batches", 1, true) ~= nil, "step(" .. a[1] .. "): " .. tostring(err))
  end
  check(step(state, 0) == 1, "the real state still works")
end)

for _, f in ipairs(made) do os.remove(f) end

-- eval.lua: the eval module. eval.task against infer.generate's outputs in the same run (graders that accept exactly
-- some of them, scores, grader errors, prompt functions, JSONL items, determinism under a seed); eval.win_rate with
-- deterministic judges (always a, always b, ties, swap averaging, a length judge against counts made here from
-- infer.generate's completions); eval.perplexity against transformers (Tests/Fixtures/eval_fixtures.lua, written
-- by gen_eval_fixtures.py) within 1e-4 relative, for texts, ids, tensors, batches, files and sliding windows;
-- eval.compare's table for models and runs; and an error sweep: every function with bad arguments raises an error
-- naming it and the problem.

local FIX = TEST_DIR .. "/../Fixtures/"
local REF = dofile(FIX .. "eval_fixtures.lua")
local T = tok.load(FIX .. "models/tokenizer.json")
local gpt2 = nn.load(FIX .. "models/gpt2")
local llama = nn.load(FIX .. "models/llama")

local function tmpname()
  local p = os.tmpname()
  os.remove(p)
  return p
end

local function rel_close(a, b, tol, msg)
  return check(math.abs(a - b) <= tol * math.abs(b), (msg or "rel_close") .. ": " .. tostring(a) .. " vs " .. tostring(b))
end

local PROMPTS = {"The license", "Copyright (c)", "Permission is hereby", "THE SOFTWARE IS", "Redistribution"}

local function greedy(m, prompts, opts)
  local o = {max_tokens = 8, temperature = 0}
  for k, v in pairs(opts or {}) do o[k] = v end
  local r = infer.generate(m, T, prompts, o)
  local out = {}
  for i = 1, #prompts do out[i] = r[i][1].text end
  return out
end

-- MARK: eval.task

test("eval.task: greedy answers equal infer.generate's; a grader accepting exactly items 1, 3, 4", function()
  local want = greedy(gpt2, PROMPTS)
  local items = {}
  for i, p in ipairs(PROMPTS) do
    items[i] = {prompt = p, expected = (i == 1 or i == 3 or i == 4) and want[i] or (want[i] .. "#")}
  end
  local seen = {}
  local r = eval.task(gpt2, T, items, {max_tokens = 8, grader = function(output, item)
    seen[#seen + 1] = item
    return output == item.expected
  end})
  check_eq(r.total, 5, "total")
  check_eq(r.correct, 3, "correct")
  check_eq(r.errors, 0, "errors")
  check_close(r.accuracy, 0.6, 1e-12, "accuracy")
  check_close(r.mean_score, 0.6, 1e-12, "mean_score")
  check_eq(r.first_error, nil, "no error")
  for i = 1, 5 do
    check_eq(r.samples[i].output, want[i], "sample " .. i .. " is infer.generate's answer")
    check_eq(r.samples[i].prompt, PROMPTS[i], "sample prompt")
    check_eq(r.samples[i].item_index, i, "item_index")
    check_eq(r.samples[i].score, (i == 1 or i == 3 or i == 4) and 1 or 0, "score " .. i)
    check(seen[i] == items[i], "the grader gets the item table itself")
  end
end)

test("eval.task: scores in [0, 1], string items, prompt functions, stop strings", function()
  local want = greedy(gpt2, PROMPTS, {max_tokens = 6})
  local expect_sum = 0
  for i = 1, 5 do expect_sum = expect_sum + (#want[i] % 5) / 4 end
  local r = eval.task(gpt2, T, PROMPTS, {max_tokens = 6, grader = function(output) return (#output % 5) / 4 end})
  check_close(r.mean_score, expect_sum / 5, 1e-12, "mean of the scores")
  local full = 0
  for i = 1, 5 do if #want[i] % 5 == 4 then full = full + 1 end end
  check_eq(r.correct, full, "only scores of 1 are correct")
  -- a prompt function
  local items = {}
  for i, p in ipairs(PROMPTS) do items[i] = {q = p} end
  local suffixed = {}
  for i, p in ipairs(PROMPTS) do suffixed[i] = p .. ":" end
  local want2 = greedy(gpt2, suffixed)
  local r2 = eval.task(gpt2, T, items, {max_tokens = 8, prompt = function(item) return item.q .. ":" end,
                                      grader = function() return true end})
  for i = 1, 5 do check_eq(r2.samples[i].output, want2[i], "prompt function answer " .. i) end
  check_eq(r2.samples[1].prompt, suffixed[1], "the sample keeps the prompt text")
  -- a prompt field name
  local r3 = eval.task(gpt2, T, {{question = PROMPTS[2]}}, {max_tokens = 8, prompt = "question", grader = function() return true end})
  check_eq(r3.samples[1].output, greedy(gpt2, {PROMPTS[2]})[1], "prompt field")
  -- stop strings and batch size pass through to generation
  local stop = {"e", " "}
  local want4 = greedy(gpt2, PROMPTS, {max_tokens = 12, stop = stop})
  local r4 = eval.task(gpt2, T, PROMPTS, {max_tokens = 12, stop = stop, batch_size = 2, grader = function() return false end})
  for i = 1, 5 do check_eq(r4.samples[i].output, want4[i], "stop strings " .. i) end
  check_eq(r4.accuracy, 0, "all false")
end)

test("eval.task: grader errors and bad verdicts are counted, never stop the eval", function()
  local calls = 0
  local r = eval.task(gpt2, T, PROMPTS, {max_tokens = 4, grader = function(output, item)
    calls = calls + 1
    if item == PROMPTS[2] then error("grader exploded") end
    if item == PROMPTS[3] then return "yes" end
    if item == PROMPTS[4] then return 1.5 end
    return true
  end})
  check_eq(calls, 5, "every item graded")
  check_eq(r.total, 5, "total")
  check_eq(r.errors, 3, "errors")
  check_eq(r.correct, 2, "correct")
  check_close(r.accuracy, 0.4, 1e-12, "errors count as not correct")
  check_close(r.mean_score, 0.4, 1e-12, "errors score 0")
  check(r.first_error:find("item 2: the grader raised an error:", 1, true) and r.first_error:find("grader exploded", 1, true),
        "first_error names the item and the message: " .. tostring(r.first_error))
  check(r.samples[3].error:find("returned string", 1, true), "a string verdict: " .. tostring(r.samples[3].error))
  check(r.samples[4].error:find("[0, 1]", 1, true), "a score out of range: " .. tostring(r.samples[4].error))
  check_eq(r.samples[2].score, nil, "no score on error")
  check_eq(r.samples[5].score, 1, "the eval went on")
end)

test("eval.task: JSONL items, keep_samples, determinism under a seed", function()
  local path = tmpname() .. ".jsonl"
  local rows = {}
  for i, p in ipairs(PROMPTS) do rows[i] = {prompt = p, id = i} end
  data.write_jsonl(path, rows)
  local want = greedy(gpt2, PROMPTS)
  local ids = {}
  local r = eval.task(gpt2, T, path, {max_tokens = 8, grader = function(output, item)
    ids[#ids + 1] = item.id
    return output == want[item.id]
  end})
  os.remove(path)
  check_eq(r.accuracy, 1, "JSONL rows are items")
  check_eq(table.concat(ids, ","), "1,2,3,4,5", "graded in order")
  local quiet = eval.task(gpt2, T, PROMPTS, {max_tokens = 2, keep_samples = false, grader = function() return true end})
  check_eq(quiet.samples, nil, "no samples")
  -- sampling: the same seed gives the same answers, equal to infer.generate's with that seed
  local o = {max_tokens = 8, temperature = 1.3, top_p = 0.95, seed = 7}
  local ref = infer.generate(gpt2, T, PROMPTS, o)
  local g = function() return true end
  local a = eval.task(gpt2, T, PROMPTS, {max_tokens = 8, temperature = 1.3, top_p = 0.95, seed = 7, grader = g})
  local b = eval.task(gpt2, T, PROMPTS, {max_tokens = 8, temperature = 1.3, top_p = 0.95, seed = 7, batch_size = 1, grader = g})
  local c = eval.task(gpt2, T, PROMPTS, {max_tokens = 8, temperature = 1.3, top_p = 0.95, seed = 8, grader = g})
  local differs = false
  for i = 1, 5 do
    check_eq(a.samples[i].output, ref[i][1].text, "seeded sample " .. i .. " equals infer.generate's")
    check_eq(b.samples[i].output, a.samples[i].output, "batch size does not matter " .. i)
    differs = differs or c.samples[i].output ~= a.samples[i].output
  end
  check(differs, "another seed gives other samples")
end)

-- MARK: eval.win_rate

test("eval.win_rate: constant judges, with and without swap", function()
  local function judge(v) return function() return v end end
  local r = eval.win_rate(gpt2, llama, T, PROMPTS, {max_tokens = 6, swap = false, judge = judge("a")})
  check_eq(r.win_rate, 1, "always a, no swap")
  check_eq(r.wins, 5); check_eq(r.losses, 0); check_eq(r.ties, 0); check_eq(r.n, 5); check_eq(r.errors, 0)
  check_eq(r.inconsistent, nil, "inconsistent only with swap")
  r = eval.win_rate(gpt2, llama, T, PROMPTS, {max_tokens = 6, swap = false, judge = judge("b")})
  check_eq(r.win_rate, 0, "always b, no swap")
  check_eq(r.losses, 5)
  r = eval.win_rate(gpt2, llama, T, PROMPTS, {max_tokens = 6, swap = false, judge = judge(0.5)})
  check_eq(r.win_rate, 0.5, "always a tie")
  check_eq(r.ties, 5)
  -- swap: a judge that always says a is pure position bias: each prompt is one win and one loss
  r = eval.win_rate(gpt2, llama, T, PROMPTS, {max_tokens = 6, judge = judge("a")})
  check_eq(r.win_rate, 0.5, "always a, swapped: position bias cancels")
  check_eq(r.wins, 2.5); check_eq(r.losses, 2.5); check_eq(r.ties, 0); check_eq(r.n, 5)
  check_eq(r.inconsistent, 5, "every prompt's two verdicts disagree")
  check_eq(table.concat(r.samples[1].verdicts, ","), "a,a", "both verdicts kept")
  check_eq(r.samples[1].score, 0.5, "prompt score")
  r = eval.win_rate(gpt2, llama, T, PROMPTS, {max_tokens = 6, judge = judge(1)})
  check_eq(r.win_rate, 0.5, "numeric verdicts too")
end)

test("eval.win_rate: a length judge against counts from infer.generate, swap averaging, arguments", function()
  local pol = greedy(gpt2, PROMPTS, {max_tokens = 10, stop = {"e"}})
  local ref = greedy(llama, PROMPTS, {max_tokens = 10, stop = {"e"}})
  local W, L, D = 0, 0, 0
  for i = 1, 5 do
    if #pol[i] > #ref[i] then W = W + 1 elseif #pol[i] < #ref[i] then L = L + 1 else D = D + 1 end
  end
  check(W > 0 and L > 0, "the fixture has both outcomes (" .. W .. " wins, " .. L .. " losses, " .. D .. " ties)")
  local calls = {}
  local function longer(prompt, a, b, item)
    calls[#calls + 1] = {prompt, a, b, item}
    if #a > #b then return "a" elseif #a < #b then return "b" else return "tie" end
  end
  for _, swap in ipairs({false, true}) do
    calls = {}
    local r = eval.win_rate(gpt2, llama, T, PROMPTS, {max_tokens = 10, stop = {"e"}, swap = swap, judge = longer})
    check_eq(r.wins, W, "wins, swap=" .. tostring(swap))
    check_eq(r.losses, L, "losses")
    check_eq(r.ties, D, "ties")
    check_eq(r.n, 5, "n")
    check_close(r.win_rate, (W + D / 2) / 5, 1e-12, "win rate")
    for i = 1, 5 do
      check_eq(r.samples[i].policy, pol[i], "policy completion " .. i)
      check_eq(r.samples[i].reference, ref[i], "reference completion " .. i)
    end
    check_eq(#calls, swap and 10 or 5, "judge calls")
    local c1, c2 = calls[1], calls[swap and 2 or 1]
    check_eq(c1[1], PROMPTS[1], "prompt passed")
    check_eq(c1[2], pol[1], "a is the policy first")
    check_eq(c1[4], PROMPTS[1], "the item is the 4th argument")
    if swap then
      check_eq(c2[2], ref[1], "then a is the reference")
      check_eq(c2[3], pol[1], "and b the policy")
      check_eq(r.inconsistent, 0, "a symmetric judge is consistent")
    end
  end
  -- a judge favouring the policy only when it is shown first: half credit per prompt
  local r = eval.win_rate(gpt2, llama, T, PROMPTS, {max_tokens = 4, judge = function(p, a, b)
    return a == greedy(gpt2, {p}, {max_tokens = 4})[1] and "a" or "tie"
  end})
  check_close(r.win_rate, 0.75, 1e-12, "a win and a tie average to 3/4")
  check_eq(r.wins, 2.5); check_eq(r.ties, 2.5)
end)

test("eval.win_rate: judge errors are counted and left out of n; items with prompt fields", function()
  local items = {}
  for i, p in ipairs(PROMPTS) do items[i] = {text = p, k = i} end
  local r = eval.win_rate(gpt2, llama, T, items, {max_tokens = 3, prompt = "text", swap = false, judge = function(prompt, a, b, item)
    if item.k == 2 then error("judge failed") end
    if item.k == 4 then return "maybe" end
    return "b"
  end})
  check_eq(r.n, 3, "two prompts left out")
  check_eq(r.errors, 2, "errors")
  check_eq(r.win_rate, 0, "always b")
  check(r.first_error:find("prompt 2: the judge raised an error", 1, true) and r.first_error:find("judge failed", 1, true),
        "first_error: " .. tostring(r.first_error))
  check(r.samples[4].error:find('"a", "b" or "tie"', 1, true), "bad verdict: " .. tostring(r.samples[4].error))
  local none = eval.win_rate(gpt2, llama, T, {"x y"}, {max_tokens = 2, judge = function() error("no") end})
  check_eq(none.win_rate, nil, "no prompt judged: no win rate")
  check_eq(none.n, 0)
end)

-- MARK: eval.perplexity

for _, name in ipairs({"gpt2", "llama", "qwen2"}) do
  test(name .. ": eval.perplexity equals transformers' (short texts, ids, batches, per text)", function()
    local m = name == "gpt2" and gpt2 or name == "llama" and llama or nn.load(FIX .. "models/" .. name)
    local ref = REF[name]
    for i, text in ipairs(REF.short_texts) do
      check_eq(table.concat(T:encode(text), ","), table.concat(ref.short_ids[i], ","), name .. " tokens of text " .. i)
    end
    local r = eval.perplexity(m, T, REF.short_texts)
    rel_close(r.perplexity, ref.short.perplexity, 1e-4, name .. " perplexity")
    rel_close(r.nll, ref.short.nll, 1e-4, name .. " nll")
    check_eq(r.tokens, ref.short.tokens, name .. " tokens")
    check_eq(#r.per_sequence, #REF.short_texts, "one entry per text")
    for i, pt in ipairs(ref.short.per_text) do
      check_eq(r.per_sequence[i].tokens, pt.tokens, name .. " tokens of text " .. i)
      if pt.tokens > 0 then rel_close(r.per_sequence[i].total_nll, pt.nll, 1e-4, name .. " nll of text " .. i) end
    end
    check_eq(r.per_sequence[#REF.short_texts].perplexity, nil, "a one-token text predicts nothing")
    rel_close(math.exp(r.total_nll / r.tokens), r.perplexity, 1e-12, "perplexity = exp(total / tokens)")
    -- the same from ids, one at a time, in a padded batch with a mask, and as tensors
    local by_ids = eval.perplexity(m, nil, ref.short_ids, {batch_size = 1})
    rel_close(by_ids.perplexity, ref.short.perplexity, 1e-4, name .. " from id lists")
    check_eq(by_ids.forward_passes, #REF.short_texts - 1, "batch_size 1: one pass per text with a target")
    local width = 0
    for _, s in ipairs(ref.short_ids) do width = math.max(width, #s) end
    local ids, mask = tensor.zeros(#ref.short_ids, width), tensor.zeros(#ref.short_ids, width)
    for i, s in ipairs(ref.short_ids) do
      for j, id in ipairs(s) do ids[i][j] = id; mask[i][j] = 1 end
    end
    local b = eval.perplexity(m, nil, {ids = ids, mask = mask})
    rel_close(b.perplexity, ref.short.perplexity, 1e-4, name .. " from a padded batch")
    check_eq(b.tokens, ref.short.tokens, "padding does not count")
    local tensors = {}
    for i, s in ipairs(ref.short_ids) do tensors[i] = tensor.new(s) end
    rel_close(eval.perplexity(m, nil, tensors).perplexity, ref.short.perplexity, 1e-4, name .. " from 1-D tensors")
  end)

  test(name .. ": sliding windows over a long text equal the guide's loop", function()
    local m = name == "gpt2" and gpt2 or name == "llama" and llama or nn.load(FIX .. "models/" .. name)
    local ref = REF[name]
    check_eq(table.concat(T:encode(REF.long_text), ","), table.concat(ref.long_ids, ","), name .. " tokens of the long text")
    for _, w in ipairs(ref.long) do
      local r = eval.perplexity(m, T, {REF.long_text}, {max_length = w.max_length, stride = w.stride, batch_size = 16})
      rel_close(r.perplexity, w.perplexity, 1e-4, name .. " window " .. w.max_length .. " stride " .. w.stride)
      check_eq(r.tokens, w.tokens, name .. " tokens, window " .. w.max_length .. "/" .. w.stride)
      check_eq(r.windows, w.windows, name .. " windows, " .. w.max_length .. "/" .. w.stride)
    end
    -- defaults: the model's 64 positions, stride 32 (the fixture's first setting)
    local d = eval.perplexity(m, T, {REF.long_text})
    check_eq(d.max_length, 64, "default window")
    check_eq(d.stride, 32, "default stride")
    rel_close(d.perplexity, ref.long[1].perplexity, 1e-4, name .. " defaults")
  end)
end

test("eval.perplexity: a text file, a 1-D tensor, a target mask against m:logprobs", function()
  local ref = REF.gpt2
  local path = tmpname() .. ".txt"
  local f = assert(io.open(path, "w"))
  f:write(REF.long_text)
  f:close()
  local r = eval.perplexity(gpt2, T, path)
  os.remove(path)
  rel_close(r.perplexity, ref.long[1].perplexity, 1e-4, "a file path is one text")
  rel_close(eval.perplexity(gpt2, nil, tensor.new(ref.long_ids)).perplexity, ref.long[1].perplexity, 1e-4, "a tensor")
  -- only the second half of a sequence counts: NLL = -m:logprobs with that mask
  local s = ref.short_ids[1]
  local ids, mask = tensor.new({s}), tensor.zeros(1, #s)
  for j = math.floor(#s / 2), #s do mask[1][j] = 1 end
  local p = eval.perplexity(gpt2, nil, {ids = ids, mask = mask})
  local lp = tensor.no_grad(function() return gpt2:logprobs(ids, mask) end)
  check_close(p.total_nll, -lp:item(), 1e-4, "completion-only NLL equals -logprobs")
  check_eq(p.tokens, #s - math.floor(#s / 2) + 1, "counted tokens")
  -- data.batches' batches work as they are
  local rows = {}
  for i, t in ipairs(REF.short_texts) do if i < #REF.short_texts then rows[#rows + 1] = {text = t} end end
  local total, n = 0, 0
  for _, b in data.batches(rows, {batch_size = 3, tokenizer = T}) do
    local q = eval.perplexity(gpt2, nil, b)
    total, n = total + q.total_nll, n + q.tokens
  end
  rel_close(math.exp(total / n), ref.short.perplexity, 1e-4, "data.batches' batches")
end)

-- MARK: eval.compare

test("eval.compare: models and runs side by side, errors marked, formats", function()
  local root = tmpname()
  local r1 = run.start{name = "dpo-a", dir = root}
  r1:log{step = 1, loss = 1.0, ["eval/acc"] = 0.5}
  r1:log{step = 2, loss = 0.25}
  r1:finish()
  local r2 = run.start{name = "dpo-b", dir = root}
  r2:log{step = 1, loss = 0.75}
  r2:finish()
  local printed = {}
  local old_print = print
  print = function(s) printed[#printed + 1] = s end
  local ok, res = pcall(eval.compare,
    {{"gpt2", gpt2}, {"llama", llama}, "dpo-a", root .. "/dpo-b"},
    {"loss", "eval/acc",
     ppl = function(v) if type(v) == "string" then return nil end return eval.perplexity(v, T, {REF.short_texts[1]}) end,
     n = {function(v, name) return {rows = #name, note = "text is skipped"} end, "rows"},
     boom = function(v) if v == llama then error("llama cannot") end return 2 end,
     lossT = function(v) if type(v) == "string" then return nil end return v:loss(tensor.new({REF.gpt2.short_ids[1]})) end},
    {title = "comparison", dir = root})
  print = old_print
  check(ok, "compare ran: " .. tostring(res))
  if not ok then return end
  check_eq(table.concat(res.rows, ","), "gpt2,llama,dpo-a,dpo-b", "rows in the given order; runs by name")
  check_eq(table.concat(res.columns, ","),
    "loss,eval/acc,boom,lossT,n,ppl/forward_passes,ppl/max_length,ppl/nll,ppl/perplexity,ppl/stride,ppl/tokens,ppl/total_nll,ppl/windows",
    "metrics first, then named columns by name; table results give a column per numeric field")
  check_eq(res.values[3].loss, 0.25, "a run's last logged loss")
  check_eq(res.values[3]["eval/acc"], 0.5, "last value of a metric logged once")
  check_eq(res.values[4].loss, 0.75, "a run given by its folder")
  check_eq(res.values[4]["eval/acc"], nil, "never logged: missing")
  check_eq(res.values[1].loss, nil, "a metric column does not apply to models")
  local p1 = eval.perplexity(gpt2, T, {REF.short_texts[1]})
  check_close(res.values[1]["ppl/perplexity"], p1.perplexity, 1e-9, "a column function's table fields")
  check_eq(res.values[3]["ppl/perplexity"], nil, "nil from a column function: missing")
  check_eq(res.values[2].n, 5, "a chosen field keeps the column's name")
  check_eq(res.values[1].boom, 2, "number result")
  check_eq(res.values[2].boom, nil, "the error row has no value")
  check_close(res.values[1].lossT, tensor.no_grad(function() return gpt2:loss(tensor.new({REF.gpt2.short_ids[1]})) end):item(), 1e-6, "a one-element tensor is a number")
  check_eq(#res.errors, 1, "one error")
  check_eq(res.errors[1].row, "llama"); check_eq(res.errors[1].column, "boom")
  check(res.errors[1].message:find("llama cannot", 1, true), "the message is kept")
  check_eq(#printed, 1, "printed once")
  check_eq(printed[1], res.text, "prints the text it returns")
  local lines = {}
  for l in (res.text .. "\n"):gmatch("(.-)\n") do lines[#lines + 1] = l end
  check_eq(lines[1], "comparison", "title first")
  check(lines[2]:match("^name%s+loss%s+eval/acc%s+boom"), "header: " .. lines[2])
  check(lines[3]:match("^%-+  %-+"), "a rule under the header")
  check(lines[5]:match("^llama%s+%-%s+%-%s+ERR%s"), "error marker in its row: " .. lines[5])
  check(lines[6]:match("^dpo%-a%s+0%.2500%s+0%.5000%s+2%s+%-"), "run row: " .. lines[6])
  local w = #lines[2]
  for k = 4, 7 do check(#lines[k] <= w, "aligned row " .. k) end
  check(res.text:find("ERR llama, boom: the column function raised an error:", 1, true), "error listed under the table")
  -- a name -> value table: rows sorted by name; markdown and html
  local md = eval.compare({zeta = gpt2, alpha = llama}, {one = function() return 1 end}, {format = "markdown", print = false})
  check_eq(table.concat(md.rows, ","), "alpha,zeta", "named entries sorted")
  check_eq(md.text, "| name | one |\n| :--- | ---: |\n| alpha | 1 |\n| zeta | 1 |", "markdown")
  local html = eval.compare({gpt2}, {x = function() error("<bad>") end}, {format = "html", print = false})
  check_eq(html.rows[1], "model 1", "an unnamed model")
  check(html.text:find("<table class=\"tycho-compare\">", 1, true) and html.text:find("&lt;bad&gt;", 1, true), "html escapes")
  os.execute("rm -rf '" .. root .. "'")
end)

-- MARK: errors

test("errors name the function and the problem", function()
  local items = {{prompt = "a"}}
  local g = function() return true end
  local j = function() return "a" end
  local cases = {
    {function() eval.task(nil, T, items, {grader = g}) end, "eval.task: argument #1 (model) must be a value, got nil"},
    {function() eval.task(5, T, items, {grader = g}) end, "eval.task: argument #1 (model) must be a module, got number"},
    {function() eval.task(nn.linear(2, 2), T, items, {grader = g}) end, "eval.task: argument #1 (model) must be a GPT-2 or Llama-family language model"},
    {function() eval.task(gpt2, "x", items, {grader = g}) end, "eval.task: argument #2 (tokenizer) must be a tokenizer, got string"},
    {function() eval.task(gpt2, T, items) end, "eval.task: argument #4 (options) must be a table, got no value"},
    {function() eval.task(gpt2, T, items, {}) end, "eval.task: argument #4 (options) must be a table with grader = a function"},
    {function() eval.task(gpt2, T, items, {grader = 1}) end, "eval.task: argument #4 (options) must be a table whose field 'grader' is a function"},
    {function() eval.task(gpt2, T, items, {grader = g, n = 2}) end, "eval.task: argument #4 (options) must be a table of options (add_special, batch_size, grader, ignore_eos, keep_samples, max_tokens"},
    {function() eval.task(gpt2, T, items, {grader = g, max_tokens = 0}) end, "eval.task: argument #4 (options) must be a table whose field 'max_tokens' is a positive integer, got 0"},
    {function() eval.task(gpt2, T, items, {grader = g, temperature = -1}) end, "field 'temperature' is a number >= 0"},
    {function() eval.task(gpt2, T, items, {grader = g, keep_samples = 1}) end, "field 'keep_samples' is a boolean, got number"},
    {function() eval.task(gpt2, T, items, {grader = g, prompt = 3}) end, "field 'prompt' is a field name or a function(item)"},
    {function() eval.task(gpt2, T, {}, {grader = g}) end, "eval.task: argument #3 (items) must be a non-empty list of items, got an empty table"},
    {function() eval.task(gpt2, T, {prompt = "x"}, {grader = g}) end, "one item? put it in a list"},
    {function() eval.task(gpt2, T, 5, {grader = g}) end, "eval.task: argument #3 (items) must be a list of items or a JSONL file path, got number"},
    {function() eval.task(gpt2, T, "/nonexistent/items.jsonl", {grader = g}) end, "which does not exist"},
    {function() eval.task(gpt2, T, {{q = "x"}}, {grader = g}) end, "eval.task: argument #3 (items) must be a list of items whose field 'prompt' is a string of UTF-8 text, got nil at item 1"},
    {function() eval.task(gpt2, T, {true}, {grader = g}) end, "got boolean at item 1"},
    {function() eval.task(gpt2, T, items, {grader = g, prompt = function() error("no prompt") end}) end, "eval.task: item 1: the prompt function raised an error"},
    {function() eval.task(gpt2, T, items, {grader = g, prompt = function() return 1 end}) end, "eval.task: item 1: the prompt function must return a string"},
    {function() eval.task(gpt2, T, {{prompt = string.rep("ab ", 60)}}, {grader = g}) end, "eval.task: item 1: the prompt has"},
    {function() eval.task(gpt2, T, {{prompt = ""}}, {grader = g}) end, "eval.task: item 1: the prompt is empty"},
    {function() eval.win_rate(gpt2, nil, T, {"a"}, {judge = j}) end, "eval.win_rate: argument #2 (reference) must be a value, got nil"},
    {function() eval.win_rate(gpt2, {}, T, {"a"}, {judge = j}) end, "eval.win_rate: argument #2 (reference) must be a module, got table"},
    {function() eval.win_rate(gpt2, llama, T, {"a"}, {}) end, "eval.win_rate: argument #5 (options) must be a table with judge = a function"},
    {function() eval.win_rate(gpt2, llama, T, {"a"}, {judge = j, swap = "yes"}) end, "eval.win_rate: argument #5 (options) must be a table whose field 'swap' is a boolean, got string"},
    {function() eval.win_rate(gpt2, llama, T, {"a"}, {judge = j, grader = g}) end, "unknown option 'grader'"},
    {function() eval.win_rate(gpt2, llama, T, {}, {judge = j}) end, "eval.win_rate: argument #4 (prompts) must be a non-empty list of prompts"},
    {function() eval.win_rate(gpt2, llama, T, {"a"}, {judge = j, top_p = 2}) end, "field 'top_p' is a number in (0, 1]"},
    {function() eval.perplexity(nil, T, {"a b"}) end, "eval.perplexity: argument #1 (model) must be a value, got nil"},
    {function() eval.perplexity(nn.relu(), T, {"a b"}) end, "eval.perplexity: argument #1 (model) must be a language model"},
    {function() eval.perplexity(gpt2, nil, {"a b"}) end, "eval.perplexity: argument #2 (tokenizer) must be a tokenizer to encode texts (texts given at position 1), got nil"},
    {function() eval.perplexity(gpt2, 3, {"a b"}) end, "eval.perplexity: argument #2 (tokenizer) must be a tokenizer, got number"},
    {function() eval.perplexity(gpt2, T, nil) end, "eval.perplexity: argument #3 (texts) must be a value, got nil"},
    {function() eval.perplexity(gpt2, T, {}) end, "eval.perplexity: argument #3 (texts) must be a non-empty list of texts or token ids, got an empty table"},
    {function() eval.perplexity(gpt2, T, {"a", true}) end, "eval.perplexity: argument #3 (texts) must be texts, token ids or batches, got boolean at position 2"},
    {function() eval.perplexity(gpt2, T, "/nonexistent/text.txt") end, "which cannot be read"},
    {function() eval.perplexity(gpt2, T, {"a"}) end, "eval.perplexity: nothing to predict"},
    {function() eval.perplexity(gpt2, nil, {{1, 400}}) end, "eval.perplexity: sequence 1: token 2 is 400, not an id in 0..383"},
    {function() eval.perplexity(gpt2, nil, {{1, -2}}) end, "non-negative integer ids"},
    {function() eval.perplexity(gpt2, nil, tensor.zeros(2, 2, 2)) end, "a 1-D or 2-D tensor, got a 3-D tensor"},
    {function() eval.perplexity(gpt2, nil, {ids = tensor.zeros(2, 3), mask = tensor.zeros(3, 2)}) end, "a batch whose mask matches its ids"},
    {function() eval.perplexity(gpt2, T, {"a b"}, {max_length = 1}) end, "eval.perplexity: argument #4 (options) must be a table whose field 'max_length' is an integer >= 2, got 1"},
    {function() eval.perplexity(gpt2, T, {"a b"}, {max_length = 65}) end, "field 'max_length' is at most the model's 64 positions, got 65"},
    {function() eval.perplexity(gpt2, T, {"a b"}, {max_length = 10, stride = 11}) end, "field 'stride' is at most max_length (10), got 11"},
    {function() eval.perplexity(gpt2, T, {"a b"}, {stride = 0}) end, "field 'stride' is an integer >= 1, got 0"},
    {function() eval.perplexity(gpt2, T, {"a b"}, {batch_size = 0}) end, "field 'batch_size' is an integer >= 1, got 0"},
    {function() eval.perplexity(gpt2, T, {"a b"}, {window = 3}) end, "unknown option 'window'"},
    {function() eval.compare(nil, {}) end, "eval.compare: argument #1 (entries) must be a table, got nil"},
    {function() eval.compare({gpt2}, nil) end, "eval.compare: argument #2 (columns) must be a table, got nil"},
    {function() eval.compare({}, {"loss"}) end, "eval.compare: argument #1 (entries) must be a non-empty list or table of models and runs"},
    {function() eval.compare({5}, {"loss"}) end, "eval.compare: argument #1 (entries) must be models (nn modules), run names or {name, value} pairs, got number at position 1"},
    {function() eval.compare({"no-such-run"}, {"loss"}, {dir = "/nonexistent"}) end, "'no-such-run' is neither a run folder nor a run in /nonexistent/"},
    {function() eval.compare({{"x"}}, {"loss"}) end, "not a {name, value} pair"},
    {function() eval.compare({gpt2}, {}) end, "eval.compare: argument #2 (columns) must be a table of at least one column"},
    {function() eval.compare({gpt2}, {3}) end, "eval.compare: argument #2 (columns) must be a table whose list part holds metric names, got number at position 1"},
    {function() eval.compare({gpt2}, {x = 5}) end, "column 'x' is a function, a metric name or {function, \"field\", ...}, got number"},
    {function() eval.compare({gpt2}, {x = {5}}) end, "column 'x' is a function"},
    {function() eval.compare({gpt2}, {x = {g, 5}}) end, "column 'x' lists field names after its function, got number at position 2"},
    {function() eval.compare({gpt2}, {"loss"}, {format = "pdf"}) end, "field 'format' is \"text\", \"markdown\" or \"html\", got 'pdf'"},
    {function() eval.compare({gpt2}, {"loss"}, {print = "no"}) end, "field 'print' is a boolean, got string"},
  }
  for k, c in ipairs(cases) do check_error(c[1], c[2], "case " .. k) end
end)

test("sweep: every eval function with odd values in its first two positions, and in the next two after valid ones, raises an error naming it", function()
  local dead = nn.linear(2, 2)
  getmetatable(dead).__gc(dead)
  local pool = {
    {"nil", nil}, {"string", "x"}, {"true", true}, {"empty table", {}}, {"table", {2, 3}}, {"-1", -1}, {"0", 0},
    {"1.5", 1.5}, {"inf", math.huge}, {"nan", 0/0}, {"function", print}, {"vector", tensor.new{1, 2, 3}},
    {"options", {vocab = -1, dim = 0}}, {"released module", dead}, {"module", nn.relu()}, {"tokenizer", T},
  }
  local names = {"compare", "perplexity", "task", "win_rate"}
  for _, name in ipairs(names) do check(type(eval[name]) == "function", "eval." .. name .. " exists") end
  local all_ok = true
  for _, name in ipairs(names) do
    for _, a in ipairs(pool) do
      for _, b in ipairs(pool) do
        local ok, err = pcall(eval[name], a[2], b[2])
        if not ok and not tostring(err):find("eval." .. name, 1, true) then
          all_ok = false
          check(false, "eval." .. name .. "(" .. a[1] .. ", " .. b[1] .. "): " .. tostring(err))
        end
      end
    end
  end
  -- the later positions, after valid leading arguments
  local leads = {task = {gpt2, T}, perplexity = {gpt2, T}, win_rate = {gpt2, llama, T}, compare = {{gpt2}}}
  for _, name in ipairs(names) do
    local lead = leads[name]
    for _, a in ipairs(pool) do
      for _, b in ipairs(pool) do
        local args = {table.unpack(lead)}
        args[#lead + 1], args[#lead + 2] = a[2], b[2]
        local ok, err = pcall(eval[name], table.unpack(args, 1, #lead + 2))
        if not ok and not tostring(err):find("eval." .. name, 1, true) then
          all_ok = false
          check(false, "eval." .. name .. "(..., " .. a[1] .. ", " .. b[1] .. "): " .. tostring(err))
        end
      end
    end
  end
  check(all_ok, "sweep")
end)

test("help(eval) documents every function", function()
  for _, name in ipairs({"task", "win_rate", "perplexity", "compare"}) do
    local printed
    local old = print
    print = function(s) printed = s end
    help(eval[name])
    print = old
    check(printed and printed:find("eval." .. name .. "(", 1, true) and #printed > 200, "help(eval." .. name .. ")")
  end
end)

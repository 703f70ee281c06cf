-- infer.lua: infer.generate against transformers' greedy continuations (Tests/Fixtures/models), alone, in
-- batches of mixed prompt lengths and with continuous batching; sampling against the exact processed
-- distributions; determinism under a seed; stop strings and ids; n; log-probs against m:logprobs; usage;
-- predicted outputs (identical text, accepted/rejected counts from an independent simulation of the rules);
-- and bad arguments.

local FIX = TEST_DIR .. "/../Fixtures/models/"
local T = tok.load(FIX .. "tokenizer.json")

local function join(t) return table.concat(t, ",") end
local function copy(t) local o = {} for i, v in ipairs(t) do o[i] = v end return o end
local function slice(t, a, b) local o = {} for i = a, b do o[#o + 1] = t[i] end return o end

-- Prompts of mixed lengths: the two fixture prompts and four pieces of a corpus line.
local function prompt_set(ref)
  local ps = {}
  for i, c in ipairs(ref.greedy) do ps[i] = copy(c.prompt) end
  local line = T:encode(ref.greedy[1].source_line .. " " .. ref.greedy[2].source_line)
  for _, len in ipairs({1, 3, 12, 20}) do ps[#ps + 1] = slice(line, 1, len) end
  return ps
end

for _, name in ipairs({"gpt2", "llama", "qwen2"}) do
  local ref = dofile(FIX .. name .. "_ref.lua")
  local m = nn.load(FIX .. name)

  test(name .. ": greedy equals transformers' generate, alone and in batches of mixed lengths", function()
    local greedy = {max_tokens = 10, temperature = 0, stop = {}}
    for _, c in ipairs(ref.greedy) do
      local r = infer.generate(m, T, c.prompt, greedy)
      check_eq(join(r[1][1].ids), join(c.new_tokens), name .. " alone from " .. c.prompt_text)
      check_eq(r[1][1].finish_reason, "length", name .. " finish reason")
      check_eq(r[1][1].text, T:decode(c.new_tokens), name .. " text is the decoded ids")
    end
    local ps = prompt_set(ref)
    -- Each prompt alone, as the reference for the batches.
    local alone = {}
    for i, p in ipairs(ps) do alone[i] = join(infer.generate(m, T, p, {max_tokens = 12, temperature = 0, stop = {}})[1][1].ids) end
    for i, c in ipairs(ref.greedy) do check_eq(join(slice(infer.generate(m, T, c.prompt, {max_tokens = 12, temperature = 0, stop = {}})[1][1].ids, 1, 10)), join(c.new_tokens), name .. " 12 tokens start with the 10") end
    for _, bs in ipairs({1, 2, 3, 6}) do
      local r = infer.generate(m, T, ps, {max_tokens = 12, temperature = 0, stop = {}, batch_size = bs})
      for i = 1, #ps do check_eq(join(r[i][1].ids), alone[i], name .. " batch_size " .. bs .. " prompt " .. i .. " equals alone") end
      for i, c in ipairs(ref.greedy) do check_eq(join(slice(r[i][1].ids, 1, 10)), join(c.new_tokens), name .. " batch_size " .. bs .. " vs transformers") end
    end
  end)

  test(name .. ": continuous batching refills slots (different lengths finish at different steps)", function()
    local ps = prompt_set(ref)
    -- Samples finish at different steps (stop strings end some early), and two slots serve six prompts.
    local long = infer.generate(m, T, ps, {max_tokens = 14, temperature = 0, stop = {}, batch_size = 6})
    local stops = {}
    for i = 1, 3 do
      local s = T:decode({long[i][1].ids[3 + 2 * i]})
      if utf8.len(s) and #s > 0 then stops[#stops + 1] = s end
    end
    local r = infer.generate(m, T, ps, {max_tokens = 14, temperature = 0, stop = stops, batch_size = 2})
    local lengths = {}
    for i = 1, #ps do
      local want = long[i][1]
      local got = r[i][1]
      lengths[#got.ids] = true
      -- the same tokens up to where the stop string ended the sample
      check_eq(join(got.ids), join(slice(want.ids, 1, #got.ids)), name .. " refilled prompt " .. i .. " equals the unbatched run")
      if got.finish_reason == "stop" then
        local found = false
        for _, st in ipairs(stops) do found = found or T:decode(got.ids):find(st, 1, true) ~= nil end
        check(found, name .. " a stop string is in the ids' text")
      end
    end
    check(r.usage.steps > 14, name .. " two slots for six prompts need more steps than one round (" .. r.usage.steps .. ")")
    local distinct = 0
    for _ in pairs(lengths) do distinct = distinct + 1 end
    check(distinct >= 2, name .. " samples of different lengths")
    for i, c in ipairs(ref.greedy) do
      local rr = infer.generate(m, T, ps, {max_tokens = 10, temperature = 0, stop = {}, batch_size = 2})
      check_eq(join(rr[i][1].ids), join(c.new_tokens), name .. " refilled slots vs transformers")
    end
  end)
end

-- The exact processed distribution of the next token (an independent implementation of Sampler.swift's rules).
local function expected_distribution(logits, o, seen)
  local v = #logits
  local s = {}
  for i = 1, v do
    s[i] = logits[i]
    local r = o.repetition_penalty or 1
    if seen and seen[i - 1] and r ~= 1 then s[i] = s[i] > 0 and s[i] / r or s[i] * r end
    s[i] = s[i] / o.temperature
  end
  local keep = {}
  for i = 1, v do keep[i] = true end
  if o.top_k and o.top_k > 0 and o.top_k < v then
    local sorted = copy(s)
    table.sort(sorted, function(a, b) return a > b end)
    local kth = sorted[o.top_k]
    for i = 1, v do keep[i] = s[i] >= kth end
  end
  local mx = -math.huge
  for i = 1, v do if keep[i] then mx = math.max(mx, s[i]) end end
  local w, total = {}, 0
  for i = 1, v do w[i] = keep[i] and math.exp(s[i] - mx) or 0; total = total + w[i] end
  if o.top_p and o.top_p < 1 then
    local idx = {}
    for i = 1, v do if w[i] > 0 then idx[#idx + 1] = i end end
    table.sort(idx, function(a, b) return w[a] > w[b] or (w[a] == w[b] and a < b) end)
    local before, cut = 0, #idx + 1
    for k, i in ipairs(idx) do
      if k > 1 and before >= o.top_p * total then cut = k break end
      before = before + w[i]
    end
    for k = cut, #idx do w[idx[k]] = 0 end
  end
  if o.min_p and o.min_p > 0 then
    for i = 1, v do if w[i] < o.min_p then w[i] = 0 end end   -- the best has weight 1
  end
  total = 0
  for i = 1, v do total = total + w[i] end
  local p = {}
  for i = 1, v do p[i] = w[i] / total end
  return p
end

test("sampling follows the exact distribution (temperature, top-k, top-p, min-p, penalty, prediction)", function()
  tensor.manual_seed(11)
  local m = nn.gpt2{vocab = 12, ctx = 8, dim = 8, layers = 1, heads = 2}
  -- Sharpen the logits so that truncation matters.
  tensor.no_grad(function() for _, p in ipairs(m:parameters()) do p:copy(p * 4) end end)
  local prompt = {3, 7, 1}
  local logits = m:logits(tensor.new({prompt})):select(1, 1):select(1, #prompt):totable()
  local seen = {[3] = true, [7] = true, [1] = true}
  local N = 3000
  local cases = {
    {temperature = 1}, {temperature = 0.6}, {temperature = 1.5, top_k = 4}, {temperature = 1, top_p = 0.7},
    {temperature = 0.8, min_p = 0.2}, {temperature = 1.2, top_k = 6, top_p = 0.85, min_p = 0.05},
    {temperature = 1, repetition_penalty = 1.8}, {temperature = 1, prediction = {5}}, {temperature = 1, prediction = {9}},
  }
  for ci, o in ipairs(cases) do
    local want = expected_distribution(logits, o, seen)
    -- With a prediction, two tokens: the first is then a verified draft (accepted with probability p(d)).
    local opts = {max_tokens = o.prediction and 2 or 1, n = N, seed = 100 + ci, batch_size = 64, stop = {}}
    for k, val in pairs(o) do opts[k] = val end
    local r = infer.generate(m, tok.bytes(), {prompt}, opts)
    local counts = {}
    for i = 1, 12 do counts[i] = 0 end
    local accepted = 0
    for j = 1, N do
      local id = r[1][j].ids[1]
      counts[id + 1] = counts[id + 1] + 1
      accepted = accepted + (r[1][j].accepted_prediction_tokens or 0)
    end
    if o.prediction then
      check_eq(accepted, counts[o.prediction[1] + 1], "case " .. ci .. ": the draft was accepted exactly when it was sampled")
      check_eq(r.usage.accepted_prediction_tokens + r.usage.rejected_prediction_tokens, N, "case " .. ci .. ": one draft verified per sample")
    end
    local chi2, tv, impossible = 0, 0, 0
    for i = 1, 12 do
      local e = want[i] * N
      if e > 0 then chi2 = chi2 + (counts[i] - e) ^ 2 / e else impossible = impossible + counts[i] end
      tv = tv + math.abs(counts[i] / N - want[i]) / 2
    end
    local label = "case " .. ci
    check_eq(impossible, 0, label .. ": no sample outside the truncated support")
    -- 11 degrees of freedom at most; 40 is beyond the 1e-4 quantile. The seed is fixed, so this cannot flake.
    check(chi2 < 40, string.format("%s: chi-square %.1f", label, chi2))
    check(tv < 0.04, string.format("%s: total variation %.3f", label, tv))
  end
  -- The truncations really truncate (otherwise the cases above prove little).
  local p = expected_distribution(logits, {temperature = 1, top_p = 0.7}, seen)
  local zeros = 0
  for i = 1, 12 do if p[i] == 0 then zeros = zeros + 1 end end
  check(zeros >= 3 and zeros <= 10, "top_p 0.7 drops some tokens but not all (" .. zeros .. ")")
end)

test("the same seed gives the same samples whatever the batch size; n samples differ", function()
  local m = nn.load(FIX .. "llama")
  local prompts = {"Licensor", "the Work", "You may"}
  local o = {max_tokens = 8, temperature = 0.9, top_p = 0.95, n = 3, seed = 42, stop = {}}
  local runs = {}
  for _, bs in ipairs({1, 4, 9}) do
    o.batch_size = bs
    local r = infer.generate(m, T, prompts, o)
    local s = {}
    for i = 1, 3 do for j = 1, 3 do s[#s + 1] = join(r[i][j].ids) end end
    runs[#runs + 1] = table.concat(s, ";")
  end
  check_eq(runs[2], runs[1], "batch_size 4 vs 1")
  check_eq(runs[3], runs[1], "batch_size 9 vs 1")
  o.batch_size = 4
  local r = infer.generate(m, T, prompts, o)
  check(join(r[1][1].ids) ~= join(r[1][2].ids) or join(r[1][2].ids) ~= join(r[1][3].ids), "n samples differ")
  o.seed = 43
  check(join(infer.generate(m, T, prompts, o)[1][1].ids) ~= join(r[1][1].ids), "another seed, other samples")
  -- Without a seed, tensor.manual_seed decides.
  tensor.manual_seed(5)
  local a = infer.generate(m, T, "the", {max_tokens = 6, stop = {}})
  tensor.manual_seed(5)
  local b = infer.generate(m, T, "the", {max_tokens = 6, stop = {}})
  check_eq(join(a[1][1].ids), join(b[1][1].ids), "manual_seed makes unseeded runs repeat")
end)

test("stop strings and stop ids; n; log-probs against m:logprobs; usage", function()
  local m = nn.load(FIX .. "gpt2")
  local ref = dofile(FIX .. "gpt2_ref.lua")
  local prompt = ref.greedy[2].prompt
  local full = infer.generate(m, T, prompt, {max_tokens = 20, temperature = 0, stop = {}})[1][1]
  -- A stop string starting inside the text: the text is cut before it, ids keep the tokens that spelled it.
  local text = full.text
  local stop
  for k = 3, #full.ids - 1 do
    local s = T:decode(slice(full.ids, k, k + 1))
    if utf8.len(s) and not s:find("\xEF\xBF\xBD") and #s >= 2 then stop = s break end
  end
  check(stop ~= nil, "a valid UTF-8 stop string in the output")
  local r = infer.generate(m, T, prompt, {max_tokens = 20, temperature = 0, stop = {"zzzz-never", stop}})[1][1]
  local at = text:find(stop, 1, true)
  check_eq(r.finish_reason, "stop", "stop string finishes")
  check_eq(r.text, text:sub(1, at - 1), "text cut before the stop string")
  check(T:decode(r.ids):sub(1, at - 1 + #stop) == text:sub(1, at - 1 + #stop), "ids spell the text and the stop string")
  check(#T:decode(slice(r.ids, 1, #r.ids - 1)) < at - 1 + #stop, "the last id completes the stop string")
  check_eq(join(r.ids), join(slice(full.ids, 1, #r.ids)), "same tokens as without the stop")
  -- A stop id: the sample ends after it; the text leaves it out.
  local sid = full.ids[6]
  local first = 0
  for i, v in ipairs(full.ids) do if v == sid then first = i break end end
  r = infer.generate(m, T, prompt, {max_tokens = 20, temperature = 0, stop = {sid}})[1][1]
  check_eq(join(r.ids), join(slice(full.ids, 1, first)), "stop id ends the sample after it")
  check_eq(r.text, T:decode(slice(full.ids, 1, first - 1)), "the stop token is not in the text")
  check_eq(r.finish_reason, "stop", "finish reason stop")
  -- A single string and a single id are lists of one.
  check_eq(infer.generate(m, T, prompt, {max_tokens = 20, temperature = 0, stop = sid})[1][1].finish_reason, "stop", "stop = id")
  -- n samples with log-probs.
  local o = {max_tokens = 9, temperature = 1, n = 3, seed = 3, logprobs = true, stop = {}}
  local res = infer.generate(m, T, {prompt, "Copyright"}, o)
  for i, p in ipairs({prompt, T:encode("Copyright")}) do
    check_eq(#res[i], 3, "n = 3 samples")
    for j = 1, 3 do
      local s = res[i][j]
      check_eq(#s.logprobs, #s.ids, "one log-prob per token")
      local seq, mask = copy(p), {}
      for k = 1, #p do mask[k] = 0 end
      for _, v in ipairs(s.ids) do seq[#seq + 1] = v; mask[#mask + 1] = 1 end
      local want = m:logprobs(tensor.new({seq}), tensor.new({mask}))[1]
      check_close(s.logprob, want, 1e-4, "logprob sum vs m:logprobs")
      local sum = 0
      for _, v in ipairs(s.logprobs) do sum = sum + v end
      check_close(sum, s.logprob, 1e-4, "per-token log-probs sum to logprob")
      local per = m:token_logprobs(tensor.new({seq})):select(1, 1)
      check_close(s.logprobs, per:narrow(1, #p, #s.ids), 1e-4, "per-token log-probs vs m:token_logprobs")
    end
  end
  local u = res.usage
  check_eq(u.prompt_tokens, #prompt + #T:encode("Copyright"), "prompt tokens once per prompt")
  check_eq(u.completion_tokens, 6 * 9, "completion tokens")
  check_eq(u.total_tokens, u.prompt_tokens + u.completion_tokens, "total")
  check(u.seconds > 0 and u.tokens_per_s > 0, "timing")
  check(res[1][1].accepted_prediction_tokens == nil, "no prediction fields without a prediction")
end)

test("EOS stops by default; ignore_eos and stop = {} do not stop", function()
  local m = nn.load(FIX .. "qwen2")   -- eos_token_id = 0 = <|endoftext|>
  local prompt = T:encode("(2) offer yo")  -- its greedy continuation emits 0 as token 13
  local full = infer.generate(m, T, prompt, {max_tokens = 30, temperature = 0, stop = {}})[1][1]
  local at
  for i, v in ipairs(full.ids) do if v == 0 then at = i break end end
  check_eq(at, 13, "the continuation holds EOS")
  check_eq(#full.ids, 30, "stop = {}: no stop at all")
  local r = infer.generate(m, T, prompt, {max_tokens = 30, temperature = 0})[1][1]
  check_eq(join(r.ids), join(slice(full.ids, 1, at)), "EOS ends the sample, EOS kept in ids")
  check_eq(r.finish_reason, "stop", "EOS finish reason")
  check_eq(r.text, T:decode(slice(full.ids, 1, at - 1)), "EOS not in the text")
  r = infer.generate(m, T, prompt, {max_tokens = 30, temperature = 0, stop = {"never here"}})[1][1]
  check_eq(#r.ids, at, "a stop list keeps EOS")
  r = infer.generate(m, T, prompt, {max_tokens = 30, temperature = 0, ignore_eos = true})[1][1]
  check_eq(#r.ids, 30, "ignore_eos")
end)

-- Predicted outputs: the documented rules, simulated on the greedy output G and the prediction P.
local function simulate(G, P, window, max_tokens)
  local j, sync, out, acc, rej = 1, true, 0, 0, 0
  while out < #G do
    local K = 0
    if sync and j <= #P then K = math.min(#P - j + 1, window, max_tokens - out - 1) end
    local a = 0
    while a < K and P[j + a] == G[out + a + 1] do a = a + 1 end
    acc, rej = acc + a, rej + K - a
    local emitted = math.min(a + 1, #G - out)
    if sync then
      j = j + a
      if a < K then sync = false
      elseif emitted > a then
        if j <= #P and P[j] == G[out + a + 1] then j = j + 1 else sync = false end
      end
    end
    out = out + emitted
    if not sync and out >= 3 and #P - j + 1 >= 3 then
      for q = j, #P - 2 do
        if P[q] == G[out - 2] and P[q + 1] == G[out - 1] and P[q + 2] == G[out] then j = q + 3; sync = true; break end
      end
    end
  end
  return acc, rej
end

test("predicted outputs: identical output, accepted and rejected counts", function()
  for _, name in ipairs({"gpt2", "qwen2"}) do
    local m = nn.load(FIX .. name)
    local ref = dofile(FIX .. name .. "_ref.lua")
    for _, c in ipairs(ref.greedy) do
      local M = 24
      local plain = infer.generate(m, T, c.prompt, {max_tokens = M, temperature = 0, stop = {}})[1][1]
      local G = plain.ids
      local function other(v, k) return (v + k) % 384 end
      local cases = {
        {"full", copy(G)},
        {"full and more", (function() local p = copy(G) for i = 1, 5 do p[#p + 1] = other(G[i], 3) end return p end)()},
        {"first 8", (function() local p = slice(G, 1, 8) for i = 9, M do p[#p + 1] = other(G[i], 1) end return p end)()},
        {"none", (function() local p = {} for i = 1, M do p[i] = other(G[i], 5) end return p end)()},
        {"edit in the middle", (function() local p = slice(G, 1, 6) for i = 7, 9 do p[#p + 1] = other(G[i], 2) end for i = 10, M do p[#p + 1] = G[i] end return p end)()},
        {"insertion", (function() local p = slice(G, 1, 5) p[#p + 1] = other(G[6], 9) p[#p + 1] = other(G[6], 11) for i = 6, M do p[#p + 1] = G[i] end return p end)()},
        {"deletion", (function() local p = slice(G, 1, 4) for i = 8, M do p[#p + 1] = G[i] end return p end)()},
        {"as text", T:decode(G)},
      }
      for _, case in ipairs(cases) do
        local r = infer.generate(m, T, c.prompt, {max_tokens = M, temperature = 0, stop = {}, prediction = case[2]})
        local s = r[1][1]
        local label = name .. " " .. c.prompt_text .. " " .. case[1]
        check_eq(join(s.ids), join(G), label .. ": same ids as plain greedy")
        check_eq(s.text, plain.text, label .. ": same text")
        local P = type(case[2]) == "string" and T:encode(case[2], {add_special = false}) or case[2]
        local acc, rej = simulate(G, P, 32, M)
        check_eq(s.accepted_prediction_tokens, acc, label .. ": accepted")
        check_eq(s.rejected_prediction_tokens, rej, label .. ": rejected")
        check_eq(r.usage.accepted_prediction_tokens, acc, label .. ": usage accepted")
        check_eq(r.usage.rejected_prediction_tokens, rej, label .. ": usage rejected")
        if case[1] == "full" then
          check_eq(acc, M - 1, label .. ": all but the last token accepted")
          check(r.usage.steps <= 2, label .. ": one or two steps, got " .. r.usage.steps)
        end
        if case[1] == "none" then check_eq(acc, 0, label .. ": nothing accepted") end
      end
      -- In a batch with other prompts and a stop string, the output is still plain greedy's.
      local both = infer.generate(m, T, {c.prompt, "Grant of", c.prompt}, {max_tokens = M, temperature = 0, stop = {}, batch_size = 2, prediction = slice(G, 1, 12)})
      check_eq(join(both[1][1].ids), join(G), name .. " prediction in a batch")
      check_eq(join(both[3][1].ids), join(G), name .. " prediction in a batch (refilled slot)")
    end
  end
  -- OpenAI's form of the option.
  local m = nn.load(FIX .. "gpt2")
  local r = infer.generate(m, T, "Grant", {max_tokens = 5, temperature = 0, stop = {}, prediction = {type = "content", content = "abc"}})
  check(r.usage.accepted_prediction_tokens + r.usage.rejected_prediction_tokens >= 0, "{type, content} accepted")
end)

-- Bad arguments: every error names infer.generate, none crashes.
local function odd_values()
  local dead = nn.linear(2, 2)
  getmetatable(dead).__gc(dead)
  return {
    {"nil", nil}, {"string", "x"}, {"true", true}, {"empty table", {}}, {"table", {2, 3}}, {"-1", -1}, {"0", 0},
    {"1.5", 1.5}, {"2^62", 2^62}, {"inf", math.huge}, {"nan", 0/0}, {"function", print},
    {"vector", tensor.new{1, 2, 3}}, {"matrix", tensor.new{{1, 2}, {3, 4}}}, {"released module", dead},
    {"module", nn.relu()}, {"options", {max_tokens = 0}}, {"tokenizer", T},
  }
end

test("bad arguments: a sweep of odd values names infer.generate", function()
  local m = nn.gpt2{vocab = 16, ctx = 8, dim = 8, layers = 1, heads = 2}
  local bt = tok.bytes()
  local base = {m, bt, {{1, 2}}, {max_tokens = 2}}
  local pool = odd_values()
  local all_ok = true
  for pos = 1, 4 do
    for _, v in ipairs(pool) do
      local args = {base[1], base[2], base[3], base[4]}
      args[pos] = v[2]
      local ok, err = pcall(infer.generate, table.unpack(args, 1, 4))
      if not ok and not tostring(err):find("infer.generate", 1, true) then
        all_ok = false
        check(false, "argument " .. pos .. " = " .. v[1] .. ": " .. tostring(err))
      end
    end
  end
  check(all_ok, "sweep")
  check_error(function() infer.generate() end, "infer.generate")
  check_error(function() infer.generate(m, bt, {{1}}, {max_tokens = 1}, 5) end, "infer.generate")
end)

test("bad arguments: clear messages", function()
  local m = nn.gpt2{vocab = 16, ctx = 8, dim = 8, layers = 1, heads = 2}
  local bt = tok.bytes()
  local function bad(prompts, opts, fragment)
    check_error(function() infer.generate(m, bt, prompts, opts) end, fragment)
    check_error(function() infer.generate(m, bt, prompts, opts) end, "infer.generate")
  end
  bad({{1}}, {max_tokens = 0}, "max_tokens")
  bad({{1}}, {max_tokens = 1.5}, "max_tokens")
  bad({{1}}, {temperature = -1}, "temperature")
  bad({{1}}, {temperature = math.huge}, "temperature")
  bad({{1}}, {top_k = -1}, "top_k")
  bad({{1}}, {top_p = 0}, "top_p")
  bad({{1}}, {top_p = 1.5}, "top_p")
  bad({{1}}, {min_p = 2}, "min_p")
  bad({{1}}, {repetition_penalty = 0}, "repetition_penalty")
  bad({{1}}, {n = 0}, "'n'")
  bad({{1}}, {n = 2^40}, "'n'")
  bad({{1}}, {stop = {""}}, "stop")
  bad({{1}}, {stop = {{}}}, "stop")
  bad({{1}}, {stop = {-1}}, "stop")
  bad({{1}}, {stop = {1.5}}, "stop")
  bad({{1}}, {stop = {99}}, "stop token 99")
  bad({{1}}, {seed = 1.5}, "seed")
  bad({{1}}, {batch_size = 0}, "batch_size")
  bad({{1}}, {logprobs = 1}, "logprobs")
  bad({{1}}, {prediction = 5}, "prediction")
  bad({{1}}, {prediction = {1, -2}}, "prediction")
  bad({{1}}, {prediction = {77}}, "predicted token 77")
  bad({{1}}, {ignore_eos = "yes"}, "ignore_eos")
  bad({{1}}, {max_token = 3}, "unknown option 'max_token'")
  bad({}, nil, "empty table")
  bad({{}}, nil, "empty")
  bad({""}, nil, "empty")
  bad({{1}, {}}, nil, "prompt 2")
  bad({{-1}}, nil, "non-negative integer")
  bad({{1.5}}, nil, "non-negative integer")
  bad({{16}}, nil, "not an id in 0..15")
  bad({{1, 2, 3, 4, 5, 6, 7, 8, 9}}, nil, "at most 8")
  bad({{1}, true}, nil, "position 2")
  bad({"\xff"}, nil, "UTF-8")
  bad(tensor.new{{1, 2}}, nil, "1-D")
  check_error(function() infer.generate(nn.relu(), bt, {{1}}) end, "language model")
  -- rotary positions have no hard limit: an absurd max_tokens is an error about memory, not a crash
  local ll = nn.llama{vocab = 16, ctx = 8, dim = 8, layers = 1, heads = 2, hidden = 16}
  check_error(function() infer.generate(ll, bt, {{1}}, {max_tokens = 2^52}) end, "too large")
  check_eq(#infer.generate(ll, bt, {{1}}, {max_tokens = 12, stop = {}})[1][1].ids, 12, "llama past its ctx")
  check_error(function() infer.generate(m, "tok", {{1}}) end, "tokenizer")
  -- a model is still usable after errors
  check_eq(#infer.generate(m, bt, {{1}}, {max_tokens = 3, stop = {}})[1][1].ids, 3, "works after errors")
  -- a GPT-2 stops at its context: 8 positions, prompt 6 -> at most 3 new tokens
  local r = infer.generate(m, bt, {{1, 2, 3, 4, 5, 6}}, {max_tokens = 10, stop = {}})
  check_eq(#r[1][1].ids, 3, "context full after 3 tokens")
  check_eq(r[1][1].finish_reason, "length", "context full is 'length'")
end)

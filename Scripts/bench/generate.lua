-- generate.lua: batched greedy generation with infer.generate (KV cache, continuous batching) for configs A and B
-- at 1 and 2 threads, beside Hugging Face's generate with its KV cache (generate_hf.py, run from here in the same
-- session), and predicted outputs (latency with a good, a half-good and a useless prediction).
--   tycho run Scripts/bench/generate.lua [configs=A,B] [threads=1,2] [repeats=N] [rounds=N] [nohf] [noprediction]
--
-- Workload (as generate_hf.py): nn.gpt2 randomly initialised (dropout 0, tied embeddings), 16 prompts of 16
-- uniform random token ids (fixed seed), max_tokens = 64 with stop = {} (no early stop), temperature 0,
-- batch_size 16: 1024 new tokens per call. Each case: one warm-up call, then `repeats` timed calls (wall clock,
-- each timed alone); the median is reported as tokens/s of new tokens. Each case runs in Tycho and then at once
-- in HF (one python3 process per case); with rounds > 1 the whole set repeats and the table gives medians over
-- rounds and the median of the per-pair ratios (the VM is shared and noisy: pairs see the same load), and the
-- ratio of CPU time per call (all threads' time of each process: insensitive to other processes' load, but it
-- counts a second thread's time too, so it favours whichever uses its threads less).
-- Result lines: bench=generate impl=tycho|hf case=A threads=1 median=<tokens/s> ...; then a table of ratios.

local configs = {
  A = { layers = 4, heads = 4, dim = 128, ctx = 128, vocab = 512 },
  B = { layers = 6, heads = 6, dim = 384, ctx = 256, vocab = 512 },
}
local names, threads, repeats, rounds, hf, prediction = { "A", "B" }, { 1, 2 }, 7, 1, true, true
for _, a in ipairs(arg or {}) do
  if a:match("^configs=") then names = {}; for c in a:sub(9):gmatch("[^,]+") do names[#names + 1] = c end
  elseif a:match("^threads=") then threads = {}; for t in a:sub(9):gmatch("%d+") do threads[#threads + 1] = tonumber(t) end
  elseif a:match("^repeats=") then repeats = tonumber(a:sub(9))
  elseif a:match("^rounds=") then rounds = tonumber(a:sub(8))
  elseif a == "nohf" then hf = false
  elseif a == "noprediction" then prediction = false end
end
local PROMPTS, PROMPT_LEN, NEW = 16, 16, 64

local function median(xs)
  local s = {}
  for i, v in ipairs(xs) do s[i] = v end
  table.sort(s)
  local n = #s
  return n % 2 == 1 and s[(n + 1) // 2] or (s[n // 2] + s[n // 2 + 1]) / 2
end

local function build(c)
  tensor.manual_seed(1234)
  local m = nn.gpt2{ vocab = c.vocab, ctx = c.ctx, dim = c.dim, layers = c.layers, heads = c.heads }
  m:eval()
  local ids = tensor.randint(0, c.vocab, PROMPTS, PROMPT_LEN)
  local prompts = {}
  for i = 1, PROMPTS do
    prompts[i] = {}
    for j = 1, PROMPT_LEN do prompts[i][j] = math.floor(ids[i][j]) end
  end
  return m, prompts
end

local tokenizer = tok.bytes()   -- only for the text of the outputs; the model's vocabulary is 512

-- Seconds per call of f: median over `repeats` calls after one warm-up (wall clock), and the median CPU time
-- of this process per call (os.clock: all threads' time; robust to other processes sharing the cores).
local function time_calls(f)
  f()
  local ts, cpu = {}, {}
  for r = 1, repeats do
    collectgarbage()
    local t0, c0 = sys.clock(), os.clock()
    f()
    ts[r], cpu[r] = sys.clock() - t0, os.clock() - c0
  end
  return median(ts), median(cpu)
end

-- One case in Tycho: tokens/s (median over `repeats` calls).
local function tycho_case(name, th)
  tensor.set_num_threads(th)
  local c = assert(configs[name], "unknown config " .. name)
  local m, prompts = build(c)
  local opts = { max_tokens = NEW, temperature = 0, stop = {}, batch_size = PROMPTS }
  local out
  local sec, cpu = time_calls(function() out = infer.generate(m, tokenizer, prompts, opts) end)
  assert(out.usage.completion_tokens == PROMPTS * NEW, "every prompt gets 64 new tokens")
  print(string.format("bench=generate impl=tycho case=%s threads=%d median=%.1f unit=tokens/s ms_per_call=%.2f cpu_tokens_per_s=%.1f steps=%d",
    name, th, PROMPTS * NEW / sec, sec * 1e3, PROMPTS * NEW / cpu, out.usage.steps))
  io.stdout:flush()
  return PROMPTS * NEW / sec, PROMPTS * NEW / cpu
end

-- The same case in Hugging Face (a python3 process running generate_hf.py): tokens/s, or nil.
local function hf_case(name, th)
  local cmd = string.format("python3 Scripts/bench/generate_hf.py --json --configs %s --threads %d --repeats %d 2>/dev/null",
    name, th, repeats)
  local p = io.popen(cmd)
  local tps, cpu
  for line in p:lines() do
    local v = line:match('"tokens_per_s": ([%d.]+)')
    if v then tps = tonumber(v); cpu = tonumber(line:match('"cpu_tokens_per_s": ([%d.]+)')) end
  end
  p:close()
  if tps then
    print(string.format("bench=generate impl=hf case=%s threads=%d median=%.1f unit=tokens/s cpu_tokens_per_s=%.1f", name, th, tps, cpu or 0))
    io.stdout:flush()
  end
  return tps, cpu
end

-- Rounds: each case runs in Tycho and then at once in Hugging Face, so that a pair sees the same load on this
-- shared VM; the ratio is taken per pair, and its median over rounds reported (with the range).
local tycho, hfres, ratios, cpu_ratios = {}, {}, {}, {}
for _ = 1, rounds do
  for _, th in ipairs(threads) do
    for _, name in ipairs(names) do
      local key = name .. "/" .. th
      tycho[key], hfres[key], ratios[key] = tycho[key] or {}, hfres[key] or {}, ratios[key] or {}
      cpu_ratios[key] = cpu_ratios[key] or {}
      local t, tc = tycho_case(name, th)
      table.insert(tycho[key], t)
      local h, hc
      if hf then h, hc = hf_case(name, th) end
      if h then
        table.insert(hfres[key], h)
        table.insert(ratios[key], t / h)
        if hc and hc > 0 then table.insert(cpu_ratios[key], tc / hc) end
      end
    end
  end
end

print()
print("| config | threads | Tycho tokens/s | HF tokens/s | Tycho / HF (median of pairs) | range | by CPU time |")
print("|---|---|---|---|---|---|---|")
for _, name in ipairs(names) do
  for _, th in ipairs(threads) do
    local key = name .. "/" .. th
    local h = #hfres[key] > 0 and median(hfres[key])
    local lo, hi = math.huge, 0
    for _, r in ipairs(ratios[key]) do lo, hi = math.min(lo, r), math.max(hi, r) end
    print(string.format("| %s | %d | %.0f | %s | %s | %s | %s |", name, th, median(tycho[key]), h and string.format("%.0f", h) or "-",
      h and string.format("%.2fx", median(ratios[key])) or "-", h and string.format("%.2f-%.2fx", lo, hi) or "-",
      #cpu_ratios[key] > 0 and string.format("%.2fx", median(cpu_ratios[key])) or "-"))
  end
end

-- Predicted outputs: one prompt, greedy, 64 new tokens, batch_size 1; no prediction, the greedy output itself
-- (all accepted), its first half followed by other tokens, or unrelated tokens. Latency per call (median) and
-- the speed-up over no prediction.
if prediction then
  print()
  print("| config | prediction | ms per call | steps | accepted | rejected | speed-up |")
  print("|---|---|---|---|---|---|---|")
  tensor.set_num_threads(threads[#threads])
  for _, name in ipairs(names) do
    local m, prompts = build(configs[name])
    local base = { max_tokens = NEW, temperature = 0, stop = {}, batch_size = 1 }
    local plain = infer.generate(m, tokenizer, { prompts[1] }, base)[1][1]
    local half, junk = {}, {}
    for i = 1, NEW do
      half[i] = i <= NEW // 2 and plain.ids[i] or (plain.ids[i] + 1) % configs[name].vocab
      junk[i] = (plain.ids[i] + 7) % configs[name].vocab
    end
    local t_none
    for _, case in ipairs({ { "none", nil }, { "exact", plain.ids }, { "first half", half }, { "unrelated", junk } }) do
      local o = { max_tokens = NEW, temperature = 0, stop = {}, batch_size = 1, prediction = case[2] }
      local r
      local sec = (time_calls(function() r = infer.generate(m, tokenizer, { prompts[1] }, o) end))
      assert(table.concat(r[1][1].ids, ",") == table.concat(plain.ids, ","), "prediction changes nothing")
      t_none = t_none or sec
      print(string.format("| %s | %s | %.2f | %d | %d | %d | %.2fx |", name, case[1], sec * 1e3, r.usage.steps,
        r.usage.accepted_prediction_tokens, r.usage.rejected_prediction_tokens, t_none / sec))
    end
  end
end

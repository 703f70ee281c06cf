-- dpo_step.lua: one DPO training step (policy forward + backward on 8 preference pairs, reference log-probs
-- cached) in Tycho, for configs A and B at 1 and 2 threads; dpo_step_torch.py measures the same step in PyTorch.
--   tycho run Scripts/bench/dpo_step.lua [configs=A,B] [threads=1,2] [steps=N] [cpu] [parts]
--
-- Models as train_step.lua: nn.gpt2 (dropout 0, tied embeddings), A: 4 layers, 4 heads, dim 128, ctx 128,
-- vocab 512; B: 6 layers, 6 heads, dim 384, ctx 256, vocab 512. AdamW(lr=1e-4, weight_decay=0.1).
--
-- The batch comes through the real data path: 8 plain {prompt, chosen, rejected} rows of random lower-case
-- letters, tokenized by data.preferences with a byte tokenizer (tok.bytes: one id per letter, EOS id 256
-- appended to each completion), p:batch{1..8} in TRL's concatenated layout: ids and mask (2B x T = 16 x T,
-- the 8 chosen sequences, then the 8 rejected), mask 1 on completion tokens only, right-padded. The lengths
-- (LENGTHS below, the same table as dpo_step_torch.py's) make the longest sequences fill T = 128 (A) or
-- 256 (B) exactly; the others are padded, as real data is (83% of the 16 x T positions are real tokens, 53%
-- completion tokens). The reference model is a frozen clone of the policy before training; its log-probs
-- come from dpo.reference_logprobs (attached to the data, so the batch carries ref_chosen/ref_rejected),
-- computed once, outside the timing.
--
-- One step: opt:zero_grad(); lp = m:logprobs(ids, mask) (16 summed completion log-probs);
-- dpo.loss{type="sigmoid", beta=0.1} on lp's two halves and the cached reference; loss:backward();
-- optim.clip_grad_norm(params, 1.0); opt:step(). 2 warm-up steps, then N timed steps, each timed alone by
-- the wall clock (sys.clock) and by the process's CPU time (os.clock); `median` is the median of the wall
-- times, or with `cpu` of the CPU times for 1-thread runs (2-thread runs stay on the wall clock: CPU time
-- sums both threads). Every line carries both, and the 1-minute load average at the end of the case.
-- `parts` adds a line per case with the median wall and CPU time of each part of the step (forward with the
-- log-probs, loss, backward, clip, AdamW + zero_grad), each part timed in separate steps.
--
-- Output: bench=dpo_step impl=tycho case=A threads=1 median=<ms/step> ... pairs_per_s= tokens_per_s=
-- (tokens = the 16 x T positions the model runs on, padding included) real_tokens_per_s= (non-padding).

-- Per pair: prompt tokens, chosen and rejected completion tokens (EOS included), for T = 128. B doubles
-- every length (T = 256).
local LENGTHS = {
  { 40, 88, 60 }, { 24, 70, 96 }, { 56, 50, 72 }, { 32, 64, 40 },
  { 48, 80, 52 }, { 28, 44, 90 }, { 36, 76, 58 }, { 44, 66, 84 },
}

local configs = {
  A = { layers = 4, heads = 4, dim = 128, ctx = 128, vocab = 512, seq = 128, scale = 1, steps = 10 },
  B = { layers = 6, heads = 6, dim = 384, ctx = 256, vocab = 512, seq = 256, scale = 2, steps = 5 },
}
local names, threads, steps, cpu, parts = { "A", "B" }, { 1, 2 }, nil, false, false
for _, a in ipairs(arg or {}) do
  if a:match("^configs=") then names = {}; for c in a:sub(9):gmatch("[^,]+") do names[#names + 1] = c end
  elseif a:match("^threads=") then threads = {}; for t in a:sub(9):gmatch("%d+") do threads[#threads + 1] = tonumber(t) end
  elseif a:match("^steps=") then steps = tonumber(a:sub(7))
  elseif a == "cpu" then cpu = true
  elseif a == "parts" then parts = true
  else error("unknown argument " .. a) end
end

local function median(xs)
  local s = {}
  for i, x in ipairs(xs) do s[i] = x end
  table.sort(s)
  local n = #s
  return n % 2 == 1 and s[(n + 1) // 2] or (s[n // 2] + s[n // 2 + 1]) / 2
end

local function load1()
  local f = io.open("/proc/loadavg")
  if not f then return "-" end
  local l = f:read("l"); f:close()
  return l:match("^(%S+)")
end

-- n random lower-case letters (one byte token each).
local function letters(n)
  local t = {}
  for i = 1, n do t[i] = string.char(96 + math.random(26)) end
  return table.concat(t)
end

-- The preference data of config c: 8 rows whose tokenized lengths are LENGTHS * c.scale.
local function preference_rows(c)
  math.randomseed(1234)
  local rows = {}
  for i, l in ipairs(LENGTHS) do
    local p, ch, rj = l[1] * c.scale, l[2] * c.scale, l[3] * c.scale
    assert(p + ch <= c.seq and p + rj <= c.seq)
    -- completions get the EOS token from data.preferences: one letter fewer
    rows[i] = { prompt = letters(p), chosen = letters(ch - 1), rejected = letters(rj - 1) }
  end
  return rows
end

for _, th in ipairs(threads) do
  tensor.set_num_threads(th)
  for _, name in ipairs(names) do
    local c = assert(configs[name], "unknown config " .. name)
    tensor.manual_seed(1234)
    local m = nn.gpt2{ vocab = c.vocab, ctx = c.ctx, dim = c.dim, layers = c.layers, heads = c.heads }
    local ref = m:clone():freeze():eval()
    local p = data.preferences(preference_rows(c), { tokenizer = tok.bytes(), max_length = c.seq, quiet = true })
    dpo.reference_logprobs(ref, p, { batch_size = 8, quiet = true })
    local idx = {}
    for i = 1, #p do idx[i] = i end
    local b = p:batch(idx)
    local pairs_n = b.size
    local rows_n, seq = b.ids:size(1), b.ids:size(2)
    assert(rows_n == 16 and seq == c.seq, "batch is " .. rows_n .. "x" .. seq)
    local real_tokens = b.attention_mask:sum():item()
    local opt = optim.adamw(m:parameters(), { lr = 1e-4, weight_decay = 0.1 })
    local params = m:parameters()
    local loss, margin

    -- The step, with an optional hook called between its parts (for `parts`).
    local function step(mark)
      opt:zero_grad()
      local lp = m:logprobs(b.ids, b.mask)                               -- (2B)
      if mark then mark(1) end
      local stats
      loss, stats = dpo.loss{ policy_chosen = lp:narrow(1, 1, pairs_n), policy_rejected = lp:narrow(1, pairs_n + 1, pairs_n),
                              ref_chosen = b.ref_chosen, ref_rejected = b.ref_rejected, beta = 0.1, type = "sigmoid" }
      margin = stats["rewards/margins"]
      if mark then mark(2) end
      loss:backward()
      if mark then mark(3) end
      optim.clip_grad_norm(params, 1.0)
      if mark then mark(4) end
      opt:step()
      if mark then mark(5) end
    end

    step(); step()
    local walls, cpus = {}, {}
    for i = 1, steps or c.steps do
      collectgarbage()
      local w0, c0 = sys.clock(), os.clock()
      step()
      walls[i], cpus[i] = sys.clock() - w0, os.clock() - c0
    end
    local use_cpu = cpu and th == 1
    local ts = use_cpu and cpus or walls
    local lo, hi = math.huge, 0
    for _, t in ipairs(ts) do lo = math.min(lo, t); hi = math.max(hi, t) end
    local med = median(ts)
    print(string.format("bench=dpo_step impl=tycho case=%s threads=%d median=%.2f min=%.2f max=%.2f unit=ms/step clock=%s " ..
      "wall_median=%.2f cpu_median=%.2f pairs_per_s=%.2f tokens_per_s=%.0f real_tokens_per_s=%.0f pairs=%d seq=%d " ..
      "real_tokens=%d steps=%d final_loss=%.4f margin=%.4f load=%s",
      name, th, med * 1e3, lo * 1e3, hi * 1e3, use_cpu and "cpu" or "wall", median(walls) * 1e3, median(cpus) * 1e3,
      pairs_n / med, rows_n * seq / med, real_tokens / med, pairs_n, seq, real_tokens, #ts, loss:item(), margin, load1()))
    io.stdout:flush()

    if parts then
      -- Each part's time, from separate steps: wall and CPU time between the marks.
      local labels = { "forward", "loss", "backward", "clip", "adamw" }
      local pw, pc = {}, {}
      for k = 1, #labels do pw[k], pc[k] = {}, {} end
      for _ = 1, steps or c.steps do
        collectgarbage()
        local w, cp = sys.clock(), os.clock()
        step(function(k)
          local w1, c1 = sys.clock(), os.clock()
          pw[k][#pw[k] + 1], pc[k][#pc[k] + 1] = w1 - w, c1 - cp
          w, cp = w1, c1
        end)
      end
      local fields = {}
      for k, l in ipairs(labels) do
        fields[#fields + 1] = string.format("%s_wall=%.2f %s_cpu=%.2f", l, median(pw[k]) * 1e3, l, median(pc[k]) * 1e3)
      end
      print(string.format("bench=dpo_step_parts impl=tycho case=%s threads=%d unit=ms %s load=%s",
        name, th, table.concat(fields, " "), load1()))
      io.stdout:flush()
    end
  end
end

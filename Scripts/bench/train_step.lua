-- train_step.lua: one GPT-2 training step (forward, loss, backward, AdamW) in Tycho, for configs A and B at 1
-- and 2 threads; train_step_torch.py measures the same step in PyTorch. Also measures sgemm's peak (a 1024
-- matmul) on the same threads, for the model FLOP utilisation (MFU).
--   tycho run Scripts/bench/train_step.lua [configs=A,B] [threads=1,2] [steps=N]
--
-- One step: loss = m:loss(ids) (mean next-token cross entropy, all positions), loss:backward(), opt:step(),
-- opt:zero_grad(). Model nn.gpt2 (dropout 0, tied embeddings), AdamW(lr=1e-4, weight_decay=0.1), uniform
-- random ids (fixed seed). 2 warm-up steps, then N timed steps (each timed alone, wall clock); median reported.
-- FLOPs per step as train_step_torch.py: D * (6 * N + 12 * L * T * d), N = 12 * L * d^2 + V * d.

local configs = {
  A = { layers = 4, heads = 4, dim = 128, ctx = 128, vocab = 512, batch = 8, seq = 128, steps = 10 },
  B = { layers = 6, heads = 6, dim = 384, ctx = 256, vocab = 512, batch = 8, seq = 256, steps = 5 },
}
local names, threads, steps = { "A", "B" }, { 1, 2 }, nil
for _, a in ipairs(arg or {}) do
  if a:match("^configs=") then names = {}; for c in a:sub(9):gmatch("[^,]+") do names[#names + 1] = c end
  elseif a:match("^threads=") then threads = {}; for t in a:sub(9):gmatch("%d+") do threads[#threads + 1] = tonumber(t) end
  elseif a:match("^steps=") then steps = tonumber(a:sub(7)) end
end

local function median(xs)
  table.sort(xs)
  local n = #xs
  return n % 2 == 1 and xs[(n + 1) // 2] or (xs[n // 2] + xs[n // 2 + 1]) / 2
end

local function sgemm_peak()
  local a, b = tensor.randn(1024, 1024), tensor.randn(1024, 1024)
  a:matmul(b)
  local ts = {}
  for r = 1, 5 do
    local t0 = sys.clock()
    for _ = 1, 4 do a:matmul(b) end
    ts[r] = (sys.clock() - t0) / 4
  end
  return 2 * 1024 ^ 3 / median(ts) / 1e9
end

for _, th in ipairs(threads) do
  tensor.set_num_threads(th)
  local peak = sgemm_peak()
  for _, name in ipairs(names) do
    local c = assert(configs[name], "unknown config " .. name)
    tensor.manual_seed(1234)
    local m = nn.gpt2{ vocab = c.vocab, ctx = c.ctx, dim = c.dim, layers = c.layers, heads = c.heads }
    local opt = optim.adamw(m:parameters(), { lr = 1e-4, weight_decay = 0.1 })
    local ids = tensor.randint(0, c.vocab, c.batch, c.seq)
    local loss
    local function step()
      loss = m:loss(ids)
      loss:backward()
      opt:step()
      opt:zero_grad()
    end
    step(); step()
    local ts = {}
    for i = 1, steps or c.steps do
      collectgarbage()
      local t0 = sys.clock()
      step()
      ts[i] = sys.clock() - t0
    end
    local lo, hi = math.huge, 0
    for _, t in ipairs(ts) do lo = math.min(lo, t); hi = math.max(hi, t) end
    local med = median(ts)
    local tokens = c.batch * c.seq
    local n = c.layers * 12 * c.dim ^ 2 + c.vocab * c.dim
    local flops = tokens * (6 * n + 12 * c.layers * c.seq * c.dim)
    print(string.format("bench=train_step impl=tycho case=%s threads=%d median=%.2f min=%.2f max=%.2f unit=ms/step " ..
      "tokens_per_s=%.0f gflop_per_s=%.2f flops_per_step=%d params=%d sgemm_peak_gflops=%.1f mfu=%.3f final_loss=%.4f",
      name, th, med * 1e3, lo * 1e3, hi * 1e3, tokens / med, flops / med / 1e9, flops, m:num_params(), peak,
      flops / med / 1e9 / peak, loss:item()))
    io.stdout:flush()
  end
end

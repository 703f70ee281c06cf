-- dpo_train_step.lua: three DPO optimizer steps built from Tycho's primitives (data.preferences,
-- dpo.reference_logprobs, p:batch, m:logprobs, dpo.loss, backward, optim.clip_grad_norm, optim.adamw,
-- optim.schedule) against a real trl.DPOTrainer.train() on the same tiny GPT-2, reference and rows
-- (Tests/Fixtures/gen_dpo_train_fixtures.py; settings in Tests/Fixtures/dpo_train/README.md).
-- Per step: the rows TRL trained on, its collated ids and masks, the logged loss, grad_norm (before clipping),
-- learning_rate and reward/logps metrics, the same metrics per micro-batch, and after the last step parameter
-- tensors (full values for some, norms for all).

local F = TEST_DIR .. "/../Fixtures/dpo_train/"
local REF = dofile(F .. "dpo_train_ref.lua")
local MODEL = F .. REF.model
local REFERENCE = F .. REF.reference

-- Tolerances; the worst differences measured are printed at the end and listed in dpo_train/README.md:
local TOL = 1e-5          -- |a - b| <= TOL + TOL*|b|: losses, grad norms, rewards, log-probs, parameters
local UPDATE_TOL = 1e-5   -- |a - b| / |b| for the norm of each parameter's total update (about 1e-2)
local METRICS = {"rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins", "logps/chosen", "logps/rejected"}

local function same(a, b)
  if #a ~= #b then return false end
  for i = 1, #a do if a[i] ~= b[i] then return false end end
  return true
end

local function show(xs) return "{" .. table.concat(xs, ",") .. "}" end

-- The largest |a - b| / (1 + |b|) over two tensors (or numbers), for reports.
local function worst(a, b)
  if type(a) == "number" then return math.abs(a - b) / (1 + math.abs(b)) end
  local d = ((a - b):abs() / (b:abs() + 1)):max():item()
  return d
end

local function norm(t) return math.sqrt((t * t):sum():item()) end

local measured = {}
local function note(what, d) if d > (measured[what] or 0) then measured[what] = d end end

-- Replays `case` with Tycho's primitives and returns the policy after the last step.
local function replay(name, case)
  local policy, ref = nn.load(MODEL), nn.load(REFERENCE)
  local p = data.preferences(F .. REF.file, {tokenizer = MODEL, max_length = REF.max_length,
                                             truncation = REF.truncation, quiet = true})
  check_eq(#p, 12, name .. ": every row kept")
  check_eq(p:info().eos_token, REF.eos_token)
  -- TRL's reference forward runs on each micro-batch; the precomputed values are the same sums (batching only
  -- changes float rounding).
  dpo.reference_logprobs(ref, p, {quiet = true, batch_size = case.batch_size})
  policy:train()
  local params = policy:parameters()
  local opt = optim.adamw(params, {lr = case.lr, betas = REF.betas, eps = REF.eps, weight_decay = REF.weight_decay})
  local schedule = optim.schedule{kind = case.scheduler, lr = case.lr, warmup = case.warmup,
                                  total = case.scheduler ~= "constant" and REF.max_steps or nil}
  local GA = case.grad_accum
  for s, want in ipairs(case.steps) do
    local label = name .. " step " .. s
    -- HF's Trainer runs its k-th optimizer step with lr_lambda(k - 1) and logs that rate.
    local lr = schedule(s - 1)
    check_close(lr, want.learning_rate, 1e-12, label .. ": learning_rate")
    opt:set_lr(lr)
    local sums, rows = {}, {}
    for k = 1, GA do
      local mb = case.micro_batches[(s - 1) * GA + k]
      local mlabel = label .. " micro-batch " .. k
      local b = p:batch(mb.rows)  -- no row is dropped, so pair numbers are row numbers
      check(same(b.rows, mb.rows), mlabel .. ": rows " .. show(b.rows))
      for _, r in ipairs(b.rows) do rows[#rows + 1] = r end
      local ids, mask, att = b.ids:totable(), b.mask:totable(), b.attention_mask:totable()
      check_eq(#ids, #mb.input_ids, mlabel .. ": 2B sequences")
      check_eq(#ids[1], #mb.input_ids[1], mlabel .. ": padded length")
      for r = 1, #mb.input_ids do
        check(same(ids[r], mb.input_ids[r]), mlabel .. ": input_ids row " .. r)
        check(same(mask[r], mb.completion_mask[r]), mlabel .. ": completion_mask row " .. r)
        check(same(att[r], mb.attention_mask[r]), mlabel .. ": attention_mask row " .. r)
      end
      local B = b.size
      local lp = policy:logprobs(b.ids, b.mask)
      local loss, stats = dpo.loss{policy_chosen = lp:narrow(1, 1, B), policy_rejected = lp:narrow(1, B + 1, B),
                                   ref_chosen = b.ref_chosen, ref_rejected = b.ref_rejected,
                                   beta = REF.beta, type = REF.loss_type}
      -- HF's training_step divides DPO's loss by the micro-batches of the step before backward.
      local scaled = loss * (1 / GA)
      scaled:backward()
      check_close(loss:item(), mb.loss, TOL, mlabel .. ": loss"); note("loss", worst(loss:item(), mb.loss))
      for _, key in ipairs(METRICS) do
        check_close(stats[key], mb[key], TOL, mlabel .. ": " .. key); note(key, worst(stats[key], mb[key]))
        sums[key] = (sums[key] or 0) + stats[key]
      end
      sums.loss = (sums.loss or 0) + loss:item()
    end
    check(same(rows, want.rows), label .. ": rows " .. show(rows) .. " vs " .. show(want.rows))
    -- TRL logs the mean over the micro-batches of the window of each per-micro-batch mean; HF the mean loss.
    check_close(sums.loss / GA, want.loss, TOL, label .. ": loss"); note("loss", worst(sums.loss / GA, want.loss))
    for _, key in ipairs(METRICS) do
      check_close(sums[key] / GA, want[key], TOL, label .. ": " .. key)
    end
    local norm = optim.clip_grad_norm(params, REF.max_grad_norm)
    check_close(norm, want.grad_norm, TOL, label .. ": grad_norm (before clipping)"); note("grad_norm", worst(norm, want.grad_norm))
    opt:step()
    opt:zero_grad()
  end
  return policy
end

-- The query and value thirds of c_attn.bias, without the key third (see below), as one vector.
local function qv(t, c) return tensor.cat({t:narrow(1, 1, c.key_first - 1), t:narrow(1, c.key_last + 1, t:numel() - c.key_last)}, 1) end

local function check_params(name, case, policy)
  local got = policy:named_parameters()
  local want = tensor.load(F .. case.params_file)
  local initial = nn.load(MODEL):named_parameters()
  for _, key in ipairs(case.params) do
    local c = case.checksums[key]
    local a, b = got[key], want[key]
    if c.key_first then
      -- GPT-2's key bias has a zero gradient in exact arithmetic (q.b_k is added to every score of a query, and the
      -- softmax ignores it); rounding leaves ~1e-8 (TRL's max |grad| 6e-9 to 1e-8 at these steps), which AdamW
      -- divides by sqrt(v) + eps ~ 1e-8, so both TRL and Tycho move it by amplified rounding noise, of no
      -- meaning. Only its size is checked: each of the 3 steps moves a weight by at most about lr.
      local k = c.key_last - c.key_first + 1
      local moved = (a:narrow(1, c.key_first, k) - initial[key]:narrow(1, c.key_first, k)):abs():max():item()
      check(moved <= 3 * case.lr * 1.01, name .. ": " .. key .. " key third moves by noise only: " .. moved)
      check(c.key_delta_max <= 3 * case.lr * 1.01, name .. ": TRL's too: " .. c.key_delta_max)
      note("key-bias noise (not compared)", worst(a:narrow(1, c.key_first, k), b:narrow(1, c.key_first, k)))
      a, b = qv(a, c), qv(b, c)
    end
    local d = worst(a, b)
    note("parameters", d)
    check(d <= TOL, name .. ": " .. key .. " after the last step, worst |a-b|/(1+|b|) = " .. d)
  end
  local n = 0
  for key, c in pairs(case.checksums) do
    n = n + 1
    local t = got[key]
    check(t ~= nil, name .. ": parameter " .. key)
    if t then
      check_eq(t:numel(), c.numel, name .. ": " .. key .. " size")
      local delta = t - initial[key]
      local wn, wd = c.norm, c.delta_norm
      if c.key_first then t, delta, wn, wd = qv(t, c), qv(delta, c), c.norm_qv, c.delta_norm_qv end
      check_close(norm(t), wn, TOL, name .. ": " .. key .. " norm")
      -- the update's norm, relative: every step moves each weight by about lr
      local dn = norm(delta)
      local rel = math.abs(dn - wd) / wd
      check(rel <= UPDATE_TOL, name .. ": " .. key .. " norm of the update " .. dn .. " vs " .. wd)
      note("update norms (relative)", rel)
    end
  end
  local count = 0
  for _ in pairs(got) do count = count + 1 end
  check_eq(n, count, name .. ": a checksum for every parameter")
end

for _, name in ipairs({"constant", "grad_accum", "warmup"}) do
  local case = REF.cases[name]
  test("TRL's DPO steps: " .. name, function()
    check_eq(#case.steps, REF.max_steps, "three steps recorded")
    check_eq(case.optimizer.class, "AdamW"); check_eq(case.optimizer.weight_decay, REF.weight_decay)
    local policy = replay(name, case)
    check_params(name, case, policy)
  end)
end

-- The same steps through dpo.trainer: the loop (micro-batches, loss scaling, clipping, the schedule's k - 1 rule,
-- metric averaging) is the trainer's own, checked against TRL's log.
for _, name in ipairs({"constant", "grad_accum", "warmup"}) do
  local case = REF.cases[name]
  test("dpo.trainer repeats TRL's DPO steps: " .. name, function()
    local policy, ref = nn.load(MODEL), nn.load(REFERENCE)
    local p = data.preferences(F .. REF.file, {tokenizer = MODEL, max_length = REF.max_length,
                                               truncation = REF.truncation, quiet = true})
    local tr = dpo.trainer{
      policy = policy, reference = ref, train = p, loss = REF.loss_type, beta = REF.beta,
      batch_size = case.batch_size, grad_accum = case.grad_accum, max_steps = REF.max_steps, shuffle = false,
      max_grad_norm = REF.max_grad_norm, progress = false,
      optimizer = optim.adamw(policy:parameters(), {lr = case.lr, betas = REF.betas, eps = REF.eps, weight_decay = REF.weight_decay}),
      schedule = optim.schedule{kind = case.scheduler, lr = case.lr, warmup = case.warmup,
                                total = case.scheduler ~= "constant" and REF.max_steps or nil},
    }
    for s, want in ipairs(case.steps) do
      local label = "trainer " .. name .. " step " .. s
      local got = tr:step()
      check(same(got.rows, want.rows), label .. ": rows " .. show(got.rows) .. " vs " .. show(want.rows))
      check_close(got.learning_rate, want.learning_rate, 1e-9, label .. ": learning_rate")
      check_close(got.loss, want.loss, TOL, label .. ": loss"); note("trainer loss", worst(got.loss, want.loss))
      check_close(got.grad_norm, want.grad_norm, TOL, label .. ": grad_norm"); note("trainer grad_norm", worst(got.grad_norm, want.grad_norm))
      for _, key in ipairs(METRICS) do check_close(got[key], want[key], TOL, label .. ": " .. key) end
    end
    check_params("trainer " .. name, case, policy)
  end)
end

test("the steps move the policy (the fixture is not trivially met)", function()
  local c = REF.cases.constant
  check(c.steps[1].grad_norm > REF.max_grad_norm, "clipping is active at step 1")
  check(c.steps[3].loss < c.steps[1].loss, "the loss falls")
  check(c.checksums["transformer.wte.weight"].delta_norm > 1e-2, "the embeddings moved")
  check_close(REF.cases.warmup.steps[1].learning_rate, 0, 0, "HF's first warmup step runs with lr 0")
end)

local keys = {}
for k in pairs(measured) do keys[#keys + 1] = k end
table.sort(keys)
local parts = {}
for _, k in ipairs(keys) do parts[#parts + 1] = string.format("%s %.2g", k, measured[k]) end
print("dpo_train_step: worst |tycho - trl| / (1 + |trl|): " .. table.concat(parts, ", "))

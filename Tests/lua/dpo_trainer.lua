-- dpo_trainer.lua: dpo.trainer against the primitives it is made of (m:logprobs, dpo.loss/simpo/cpo/orpo,
-- backward, optim.clip_grad_norm, optim.adamw, optim.schedule), bit for bit; gradient accumulation; shuffles by
-- seed; epochs and max_steps; resuming from a checkpoint continues bit for bit (dropout on, so the generators
-- matter); a poisoned batch (NaN reference log-probs) rolls back, leaves its rows out and training goes on; an
-- eval regression rolls back with a lower learning rate; TR-DPO syncing; progress lines; run records; and every
-- option and method with bad arguments. The trainer-vs-TRL check is dpo_train_step.lua's.

local MODEL = TEST_DIR .. "/../Fixtures/models/gpt2"
local E = check_error
local tk = tok.load(MODEL .. "/tokenizer.json")

local base = os.tmpname()
os.remove(base)
local function tmp(name) return base .. "-" .. name end

-- 16 small preference rows from word lists (deterministic).
local words = { "red", "blue", "green", "cat", "dog", "sun", "moon", "tree", "river", "stone", "light", "wind" }
local rows = {}
for i = 1, 16 do
  local a, b, c = words[(i * 5) % 12 + 1], words[(i * 7) % 12 + 1], words[(i * 3) % 12 + 1]
  rows[i] = { prompt = "Q: " .. a .. " and " .. b .. "?", chosen = " " .. c .. " " .. a, rejected = " " .. b .. (i % 2 == 0 and " " .. c or "") }
end
local function prefs() return data.preferences(rows, { tokenizer = tk, max_length = 48, quiet = true }) end

local function policy_and_ref(seed, dropout)
  tensor.manual_seed(seed)
  local m = nn.gpt2{ vocab = tk:vocab_size(), ctx = 64, dim = 32, layers = 2, heads = 4, dropout = dropout or 0 }
  local ref = m:clone():freeze()
  -- move the policy off the reference a little, so the first loss is not log 2
  tensor.no_grad(function() for _, p in ipairs(m:parameters()) do p:copy(p + tensor.randn(p:shape()) * 0.02) end end)
  return m, ref
end

local function params(m)
  local out = {}
  for _, p in ipairs(m:parameters()) do out[#out + 1] = p:clone() end
  return out
end

-- Bitwise equal (NaN is never equal).
local function equal(a, b) return (a - b):abs():max():item() == 0 end

local function same_params(a, b)
  for i = 1, #a do if not equal(a[i], b[i]) then return false, i end end
  return true
end

local function range(i, j) local t = {} for k = i, j do t[#t + 1] = k end return t end

test("one step per batch equals the primitives, bit for bit", function()
  local m, ref = policy_and_ref(1)
  local m2 = m:clone()
  local p = prefs()
  local opt = optim.adamw(m:parameters(), { lr = 1e-3, weight_decay = 0 })
  local tr = dpo.trainer{ policy = m, reference = ref, train = p, optimizer = opt, batch_size = 4, max_steps = 3,
                          shuffle = false, beta = 0.1, progress = false }
  check_eq(tr:info().total_steps, 3)
  local got = {}
  for k = 1, 3 do got[k] = tr:step() end
  -- The same by hand (the trainer attached the reference log-probs to p).
  check(p:reference() ~= nil, "reference log-probs attached")
  local opt2 = optim.adamw(m2:parameters(), { lr = 1e-3, weight_decay = 0 })
  for k = 1, 3 do
    local b = p:batch(range(4 * k - 3, 4 * k))
    opt2:zero_grad()
    local logps = m2:logprobs(b.ids, b.mask)
    local loss, stats = dpo.loss{ policy_chosen = logps:narrow(1, 1, 4), policy_rejected = logps:narrow(1, 5, 4),
                                  ref_chosen = b.ref_chosen, ref_rejected = b.ref_rejected, beta = 0.1 }
    loss:backward()
    local norm = optim.clip_grad_norm(m2:parameters(), 1.0)
    opt2:step()
    check_eq(got[k].loss, loss:item(), "loss of step " .. k)
    check_eq(got[k].grad_norm, norm, "grad_norm of step " .. k)
    for _, name in ipairs{ "rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins", "logps/chosen", "logps/rejected" } do
      check_eq(got[k][name], stats[name], name .. " of step " .. k)
    end
    check_eq(got[k].step, k)
    check_eq(#got[k].rows, 4)
    check_eq(got[k].rows[1], b.rows[1], "rows are source rows")
    check_close(got[k].learning_rate, 1e-3, 1e-7)
  end
  check(same_params(params(m), params(m2)), "parameters after 3 steps")
  check_close(got[3].epoch, 0.75, 1e-12, "epoch after 3 of 4 batches")
  check_error(function() tr:step() end, "training is done")
end)

test("a schedule runs step k at its rate for k - 1 (as the HF Trainer)", function()
  local m, ref = policy_and_ref(2)
  local opt = optim.adamw(m:parameters(), { lr = 1e-3, weight_decay = 0 })
  local sched = optim.schedule{ kind = "linear", lr = 1e-3, warmup = 2, total = 4 }
  local tr = dpo.trainer{ policy = m, reference = ref, train = prefs(), optimizer = opt, schedule = sched, batch_size = 4,
                          progress = false, shuffle = false }
  local lrs = {}
  for k = 1, 4 do lrs[k] = tr:step().learning_rate end
  check_close(lrs, { 0, 5e-4, 1e-3, 5e-4 }, 1e-9)
end)

test("gradient accumulation: 2 x 2 pairs equals one batch of 4", function()
  local m1, ref = policy_and_ref(3)
  local m2 = m1:clone()
  local p = prefs()
  local t1 = dpo.trainer{ policy = m1, reference = ref, train = p, lr = 1e-3, batch_size = 4, max_steps = 2, shuffle = false, progress = false }
  local t2 = dpo.trainer{ policy = m2, reference = ref, train = p, lr = 1e-3, batch_size = 2, grad_accum = 2, max_steps = 2, shuffle = false, progress = false }
  check_eq(t2:info().steps_per_epoch, 4)
  for k = 1, 2 do
    local a, b = t1:step(), t2:step()
    check_close(b.loss, a.loss, 1e-6, "loss " .. k)
    check_close(b.grad_norm, a.grad_norm, 1e-5, "grad_norm " .. k)
    check_close(b["rewards/margins"], a["rewards/margins"], 1e-5, "margins " .. k)
    check_eq(#b.rows, 4)
  end
  local pa, pb = params(m1), params(m2)
  for i = 1, #pa do check_close(pb[i], pa[i], 1e-5, "parameter " .. i) end
end)

test("shuffles: same seed same order, another seed another; epochs and max_steps", function()
  local function first_rows(seed)
    local m, ref = policy_and_ref(4)
    local tr = dpo.trainer{ policy = m, reference = ref, train = prefs(), lr = 1e-4, batch_size = 4, seed = seed, epochs = 2, progress = false }
    local seen = {}
    for k = 1, tr:info().total_steps do
      local s = tr:step()
      seen[k] = table.concat(s.rows, ",")
    end
    return seen, tr
  end
  local a, tr = first_rows(7)
  local b = first_rows(7)
  local c = first_rows(8)
  check_eq(#a, 8, "2 epochs of 4 steps")
  check_eq(table.concat(a, "|"), table.concat(b, "|"), "same seed")
  check(table.concat(a, "|") ~= table.concat(c, "|"), "another seed")
  check(table.concat(a, "|", 1, 4) ~= table.concat(a, "|", 5, 8), "each epoch has its own order")
  -- every row once per epoch
  for e = 0, 1 do
    local count = {}
    for k = 1, 4 do for r in a[4 * e + k]:gmatch("%d+") do count[r] = (count[r] or 0) + 1 end end
    local n = 0
    for _, v in pairs(count) do n = n + 1; check_eq(v, 1) end
    check_eq(n, 16, "epoch " .. (e + 1) .. " visits every row")
  end
  check_eq(tr:info().epoch, 2)
  local m, ref = policy_and_ref(4)
  local t = dpo.trainer{ policy = m, reference = ref, train = prefs(), lr = 1e-4, batch_size = 3, grad_accum = 2, max_steps = 5, progress = false }
  check_eq(t:info().steps_per_epoch, 3, "6 micro-batches of 3 (the last has 1), 2 per step")
  check_eq(t:info().total_steps, 5)
  local r = t:fit()
  check_eq(r.steps, 5)
  check_eq(t:info().epoch, 2, "max_steps runs into the second epoch")
end)

test("simpo, cpo and orpo steps equal their losses on the same batch", function()
  for _, kind in ipairs{ "simpo", "cpo", "orpo" } do
    local m = policy_and_ref(5)
    local p = prefs()
    local tr = dpo.trainer{ policy = m, train = p, loss = kind, beta = 0.2, lr = 1e-3, batch_size = 4, shuffle = false, progress = false }
    check(tostring(tr):find(kind, 1, true) ~= nil, tostring(tr))
    local b = p:batch{ 1, 2, 3, 4 }
    local want, stats
    tensor.no_grad(function()
      local logps = m:logprobs(b.ids, b.mask)
      local o = { policy_chosen = logps:narrow(1, 1, 4), policy_rejected = logps:narrow(1, 5, 4), beta = 0.2,
                  chosen_lengths = b.chosen_lengths, rejected_lengths = b.rejected_lengths }
      if kind == "orpo" then
        o.nll_loss = m:loss(b.chosen_ids, b.attention_mask:narrow(1, 1, 4))
        want, stats = dpo.orpo(o)
      else
        want, stats = dpo[kind](o)
      end
    end)
    local got = tr:step()
    check_close(got.loss, want:item(), 2e-6, kind .. " loss")
    check_close(got["rewards/margins"], stats["rewards/margins"], 2e-6, kind .. " margins")
    if kind == "orpo" then check_close(got.nll_loss, stats.nll_loss, 2e-6, "orpo nll") end
  end
end)

test("a poisoned batch rolls back, leaves its rows out, and training goes on", function()
  local m, ref = policy_and_ref(6)
  local p = prefs()
  local r = dpo.reference_logprobs(ref, p, { quiet = true })
  local chosen = r.chosen:clone()
  chosen[6] = 0 / 0  -- pair 6 (source row 6) is poisoned
  p:set_reference(chosen, r.rejected)
  local dir = tmp("poison")
  local run_rec = run.start{ name = "poison", dir = dir .. "/runs" }
  local mgr = ckpt.manager{ dir = dir .. "/ckpt", run = run_rec }
  local pol = ckpt.policy{ on_nonfinite = true, lr_factor = 0.5, max_rollbacks = 2 }
  local tr = dpo.trainer{ policy = m, train = p, lr = 1e-3, batch_size = 4, max_steps = 6, shuffle = false, save_every = 1,
                          checkpoints = mgr, rollback = pol, run = run_rec, progress = false }
  local out = tr:fit()
  check_eq(out.steps, 6, "to step 6, through the rollback")
  check_eq(#out.rollbacks, 1)
  check(out.rollbacks[1]:find("nan", 1, true) ~= nil, out.rollbacks[1])
  local info = tr:info()
  check_eq(info.step, 6)
  check_eq(table.concat(info.skipped_rows, ","), "5,6,7,8", "the rows of the failed batch")
  check_eq(info.rollbacks, 1)
  for _, q in ipairs(m:parameters()) do local v = q:abs():sum():item(); check(v == v and v < math.huge, "parameters stay finite") end
  check_close(out.metrics.learning_rate, 5e-4, 1e-9, "lr halved")
  local rb = mgr:rollbacks()
  check_eq(#rb, 1)
  check_eq(rb[1].trigger, "nonfinite")
  check_eq(rb[1].to_step, 1)
  check_eq(table.concat(rb[1].batch_rows, ","), "5,6,7,8")
  run_rec:finish()
  -- the events of the run name the cause and the rows
  local f = assert(io.open(dir .. "/runs/poison/events.jsonl"))
  local text = f:read("a"); f:close()
  check(text:find('"kind":"rollback"', 1, true) or text:find('"kind": "rollback"', 1, true), text)
  -- without a policy the same step is an error that names the rows, and nothing is applied
  local m2 = policy_and_ref(6)
  local before = params(m2)
  local t2 = dpo.trainer{ policy = m2, train = p, lr = 1e-3, batch_size = 4, shuffle = false, progress = false }
  t2:step()
  local mid = params(m2)
  E(function() t2:step() end, "rows 5, 6, 7, 8")
  check(same_params(params(m2), mid), "the non-finite update was not applied")
  check(not same_params(before, mid), "the first step was")
end)

test("an eval regression rolls back to the best checkpoint with a lower learning rate", function()
  local m, ref = policy_and_ref(7)
  local p = prefs()
  local dir = tmp("regress")
  local mgr = ckpt.manager{ dir = dir, metric = "eval_loss", mode = "min" }
  local pol = ckpt.policy{ on_regression = { metric = "eval_loss", tolerance = 0 }, lr_factor = 0.1, max_rollbacks = 20 }
  -- a learning rate far too high: the eval loss gets worse after it first improves
  local tr = dpo.trainer{ policy = m, reference = ref, train = p, eval = p, lr = 0.05, batch_size = 4, max_steps = 8,
                          eval_every = 1, checkpoints = mgr, rollback = pol, progress = false }
  local out = tr:fit()
  check(#out.rollbacks >= 1, "at least one regression rollback")
  check(out.rollbacks[1]:find("eval_loss regressed", 1, true) ~= nil, tostring(out.rollbacks[1]))
  check_eq(tr:info().step, 8)
  local rb = mgr:rollbacks()
  check_eq(rb[1].trigger, "regression")
  check(out.metrics.learning_rate < 0.05, "lr lowered: " .. out.metrics.learning_rate)
  check(mgr:best().metrics.eval_loss ~= nil, "checkpoints carry eval metrics")
end)

for _, sync in ipairs{ false, true } do
test("resuming from a checkpoint continues bit for bit (dropout on" .. (sync and ", TR-DPO syncing" or "") .. ")", function()
  local function setup()
    local m, ref = policy_and_ref(8, 0.2)
    return m, ref, optim.adamw(m:parameters(), { lr = 2e-3, weight_decay = 0.01 }),
           optim.schedule{ kind = "cosine", lr = 2e-3, warmup = 1, total = 8 }
  end
  local p = prefs()
  local function trainer(m, ref, opt, sched, mgr, steps)
    return dpo.trainer{ policy = m, reference = ref, train = p, optimizer = opt, schedule = sched, batch_size = 3,
                        max_steps = steps, seed = 3, disable_dropout = false, checkpoints = mgr, save_every = 2, progress = false,
                        sync_ref = sync and { alpha = 0.5, every = 3 } or nil }
  end
  -- uninterrupted
  tensor.manual_seed(99)
  local m, ref, opt, sched = setup()
  local whole = trainer(m, ref, opt, sched, nil, 8)
  local want = {}
  for k = 1, 8 do want[k] = whole:step().loss end
  -- stopped at 5 (the last checkpoint is step 4), then a new process' worth of objects resumes
  local dir = tmp("resume" .. tostring(sync))
  tensor.manual_seed(99)
  m, ref, opt, sched = setup()
  local first = trainer(m, ref, opt, sched, ckpt.manager{ dir = dir }, 8)
  for k = 1, 5 do check_eq(first:step().loss, want[k], "before the stop, step " .. k) end
  -- a later save would be at step 6; the stop loses step 5
  tensor.manual_seed(12345)  -- another state of the generator: the checkpoint restores it
  local m2, ref2, opt2, sched2 = setup()
  local second = trainer(m2, ref2, opt2, sched2, nil, 8)
  second = trainer(m2, ref2, opt2, sched2, ckpt.manager{ dir = dir }, 8)
  local s = second:step()
  check_eq(second:info().resumed_from, 4, "resumed from the step-4 checkpoint")
  check_eq(s.step, 5)
  check_eq(s.loss, want[5], "step 5 after resuming")
  for k = 6, 8 do check_eq(second:step().loss, want[k], "step " .. k .. " after resuming") end
  E(function() dpo.trainer{ policy = m2, reference = ref2, train = p, optimizer = opt2, checkpoints = ckpt.manager{ dir = dir },
                            resume = false, progress = false }:step() end, "already holds checkpoints")
  check(want[1] ~= want[2], "the losses change")
end)
end

test("TR-DPO: sync_ref moves the reference towards the policy every N steps", function()
  local m, ref = policy_and_ref(9)
  local before = ref:parameters()[1]:clone()
  local tr = dpo.trainer{ policy = m, reference = ref, train = prefs(), lr = 1e-3, batch_size = 4, sync_ref = { alpha = 0.5, every = 2 },
                          shuffle = false, progress = false }
  tr:step()
  check(equal(ref:parameters()[1], before), "not synced after step 1")
  tr:step()
  local want = before * 0.5 + m:parameters()[1] * 0.5
  check_close(ref:parameters()[1], want, 1e-6, "synced after step 2")
end)

test("progress lines, run metrics and eval events", function()
  local m, ref = policy_and_ref(10)
  local p = prefs()
  local dir = tmp("runs")
  local r = run.start{ name = "dpo", dir = dir }
  local tr = dpo.trainer{ policy = m, reference = ref, train = p, eval = p, lr = 1e-3, batch_size = 4, max_steps = 4,
                          eval_every = 2, run = r, progress = "lines", log_every = 2 }
  local out, saved = {}, io.write
  io.write = function(...) for i = 1, select("#", ...) do out[#out + 1] = tostring(select(i, ...)) end end
  local ok, err = pcall(function() return tr:fit() end)
  io.write = saved
  check(ok, tostring(err))
  local text = table.concat(out)
  check(text:find("step 2/4  loss", 1, true) ~= nil, text)
  check(text:find("step 4/4", 1, true) ~= nil, text)
  check(text:find("step 1/4", 1, true) == nil, "log_every = 2")
  check(text:find("eval at step 2: eval_loss", 1, true) ~= nil, text)
  check(text:find("ETA", 1, true) ~= nil, text)
  r:finish()
  local f = assert(io.open(dir .. "/dpo/metrics.jsonl"))
  local lines = 0
  for line in f:lines() do lines = lines + 1 end
  f:close()
  check_eq(lines, 6, "4 step lines and 2 eval lines")
  local ev = tr:evaluate()
  check(ev.eval_loss > 0 and ev["eval_rewards/accuracies"] >= 0, "evaluate")
  local other = tr:evaluate(p)
  check_eq(other.eval_loss, ev.eval_loss, "evaluate(prefs)")
  -- eval.preferences: the same numbers from the attached reference log-probs, and from the reference model
  local e1 = eval.preferences(m, p, { batch_size = 4 })  -- the trainer's eval batches
  check_eq(e1.eval_loss, ev.eval_loss, "eval.preferences with attached reference log-probs")
  check_eq(e1.accuracy, ev["eval_rewards/accuracies"])
  check_eq(e1.margin, ev["eval_rewards/margins"])
  check_eq(e1.loss, ev.eval_loss)
  check_eq(e1.pairs, 16)
  local fresh = prefs()
  local e2 = eval.preferences(m, fresh, { reference = ref, batch_size = 5 })
  check_close(e2.eval_loss, ev.eval_loss, 1e-6, "eval.preferences with a reference model")
  check_close(e2.accuracy, ev["eval_rewards/accuracies"], 1e-6)
  check_close(eval.preferences(m, p).eval_loss, ev.eval_loss, 1e-6, "other batch sizes round differently, slightly")
  local e3 = eval.preferences(m, fresh, { loss = "simpo", beta = 2 })
  check(e3.loss > 0 and e3.accuracy >= 0 and e3.accuracy <= 1, "a reference-free objective")
  E(function() eval.preferences(m, fresh) end, "no reference log-probs attached")
  E(function() eval.preferences(m, fresh, { reference = m }) end, "other than the model")
  E(function() eval.preferences(m, fresh, { refrence = ref }) end, "refrence")
  E(function() eval.preferences(m, 3) end, "preference data")
  E(function() eval.preferences(nn.linear(2, 2), fresh) end, "language model")
  E(function() eval.preferences(m, fresh, { reference = ref, batch_size = 0 }) end, "batch_size")
end)

test("bad options and calls are errors that say what is wrong", function()
  local m, ref = policy_and_ref(11)
  local p = prefs()
  local function T(o)
    local base = { policy = m, reference = ref, train = p, progress = false }
    for k, v in pairs(o) do base[k] = v end
    return function() return dpo.trainer(base) end
  end
  E(function() dpo.trainer() end, "dpo.trainer: argument #1 (options) must be a table")
  E(function() dpo.trainer{ train = p } end, "policy = the language model")
  E(function() dpo.trainer{ policy = m } end, "train = preference data")
  E(T{ polcy = 1 }, "polcy")
  E(T{ policy = 3 }, "field 'policy' is a language model")
  E(T{ policy = nn.linear(2, 2) }, "language model")
  E(T{ train = {} }, "field 'train' is preference data")
  E(T{ reference = m }, "the reference is the policy itself")
  E(T{ loss = "sigmod" }, "sigmod")
  E(T{ loss = { "sigmoid", 3 } }, "position 2")
  E(T{ loss = "simpo", loss_weights = { 1 } }, "loss_weights")
  E(T{ loss = "sigmoid", simpo_gamma = 1 }, "simpo_gamma")
  E(T{ loss = "orpo", label_smoothing = 0.1 }, "label_smoothing")
  E(T{ loss = { "sigmoid", "ipo" }, loss_weights = { 1 } }, "weights")
  E(T{ beta = "x" }, "field 'beta' is a number")
  E(T{ batch_size = 0 }, "batch_size")
  E(T{ grad_accum = 1.5 }, "grad_accum")
  E(T{ max_steps = 0 }, "max_steps")
  E(T{ eval_every = 2 }, "eval_every needs eval data")
  E(T{ rollback = ckpt.policy{} }, "needs a checkpoint manager")
  E(T{ optimizer = optim.adamw(m:clone():parameters(), { lr = 1 }) }, "not a parameter of the policy")
  E(T{ optimizer = optim.adamw(m:parameters(), { lr = 1 }), lr = 1 }, "not both")
  E(T{ lr = -1 }, "lr")
  E(T{ max_grad_norm = true }, "max_grad_norm")
  E(T{ max_grad_norm = -1 }, "max_grad_norm")
  E(T{ progress = "fancy" }, "progress")
  E(T{ sync_ref = { alpha = 2 } }, "alpha")
  E(T{ sync_ref = { every = 0 } }, "every")
  E(T{ sync_ref = { often = 1 } }, "often")
  E(T{ sync_ref = 5 }, "sync_ref")
  E(T{ checkpoints = "dir" }, "checkpoint manager")
  E(T{ schedule = 1 }, "schedule")
  E(T{ run = {} }, "run")
  E(T{ drop_last = true, batch_size = 64 }, "drop_last leaves no batch")
  local tr = T{}()
  E(function() tr:evaluate() end, "no eval data")
  E(function() tr:evaluate(3) end, "preference data")
  E(function() tr.step(5) end, "trainer")
  E(function() dpo.trainer{ policy = m, train = p, loss = "simpo", sync_ref = true, progress = false } end, "sync_ref needs a reference")
  check(tostring(tr):find("DPOTrainer(dpo (sigmoid), step 0/2, 16 pairs)", 1, true) ~= nil, tostring(tr))
  -- set_reference checks its arguments
  E(function() p:set_reference({ 1, 2 }, { 1, 2 }) end, "16 numbers")
  E(function() p:set_reference(tensor.zeros(3), tensor.zeros(16)) end, "size 3")
  E(function() p:set_reference("x", {}) end, "tensor or a list")
end)

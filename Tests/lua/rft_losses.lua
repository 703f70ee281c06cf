-- rft_losses.lua: rft.advantages and rft.loss against TRL 1.16's GRPOTrainer, then their behaviour and bad arguments.
--
-- Reference values come from Tests/Fixtures/grpo_fixtures.lua, written by the committed script
-- Tests/Fixtures/gen_grpo_fixtures.py: advantages and reward metrics from a real GRPOTrainer's
-- _generate_and_score_completions (completion metrics from its _generate), losses from GRPOTrainer._compute_loss.
-- Advantages, every loss type under token and sequence importance sampling with beta 0 and > 0, every TRL metric,
-- the per-token details and the gradients with respect to the per-token log-probs are compared within 1e-5
-- (absolute plus relative).

local F = dofile(TEST_DIR .. "/../Fixtures/grpo_fixtures.lua")
local TOL = 1e-5
local E = check_error
local NONE = {}

local function T(x)
  if #x.d == 0 then return tensor.zeros(table.unpack(x.s)) end
  return tensor.new(x.d):view(x.s):clone()
end

local function copy(t)
  local out = {}
  for k, v in pairs(t) do out[k] = v end
  return out
end

local function with(base, extra)
  local o = copy(base)
  for k, v in pairs(extra or {}) do if v == NONE then o[k] = nil else o[k] = v end end
  return o
end

-- Compares stats with TRL's: the same names (besides `extra`, a set of names TRL logs elsewhere), within TOL.
local function check_stats(stats, want, label, extra)
  for name, v in pairs(want) do
    check(stats[name] ~= nil, label .. ": stat " .. name .. " is missing")
    if stats[name] ~= nil then check_close(stats[name], v, TOL, label .. ": stat " .. name) end
  end
  for name in pairs(stats) do
    check(want[name] ~= nil or (extra and extra[name]), label .. ": stat " .. name .. " is not one TRL logs")
  end
end

local COMPLETION_STATS = {["completions/mean_length"] = true, ["completions/min_length"] = true,
                          ["completions/max_length"] = true}

-- MARK: against TRL

test("fixture file", function()
  check_eq(F.trl, "1.16.0", "fixtures from TRL 1.16.0")
  check(#F.advantages >= 20 and #F.losses >= 50, "fixtures loaded")
  local seen = {}
  for _, case in ipairs(F.losses) do
    seen[case.options.type .. " " .. case.options.importance_sampling .. " " .. (case.options.beta > 0 and "kl" or "")] = true
  end
  for _, t in ipairs{"dapo", "grpo", "bnpo", "dr_grpo", "cispo", "sapo", "luspo", "vespo"} do
    for _, level in ipairs{"token", "sequence"} do
      for _, kl in ipairs{"", "kl"} do
        check(seen[t .. " " .. level .. " " .. kl], "a fixture covers " .. t .. " " .. level .. " " .. kl)
      end
    end
  end
end)

for _, case in ipairs(F.advantages) do
  test("rft.advantages: " .. case.name, function()
    local adv, stats, d = rft.advantages(T(case.rewards), case.group_size, case.options)
    check_close(adv, T(case.advantages), TOL, "advantages")
    check(not adv:requires_grad(), "no graph")
    check_stats(stats, case.stats, case.name)
    check_eq(#d.rewards, #adv, "details.rewards")
    -- The same completions' metrics, from the mask TRL built and which completions it saw cut.
    local b, t = case.completion_mask.s[1], case.completion_mask.s[2]
    local _, s = rft.loss{logps = tensor.zeros(b, t), advantages = tensor.zeros(b), mask = T(case.completion_mask),
                          truncated = case.truncated}
    for name, v in pairs(case.completion_stats) do
      check_close(s[name], v, TOL, "completion stat " .. name)
    end
  end)
end

for _, case in ipairs(F.losses) do
  test("rft.loss: " .. case.name, function()
    local label = case.name
    local x = F.inputs[case.inputs]
    local o = copy(case.options)
    for _, k in ipairs(case.given) do o[k] = T(x[k]) end
    o.logps:requires_grad(true)
    local loss, stats, d = rft.loss(o)
    loss:backward()
    check_eq(loss:dim(), 0, label .. ": loss is 0-dim")
    check(loss:requires_grad(), label .. ": loss carries the graph")
    check_close(loss, case.loss, TOL, label .. ": loss")
    check_stats(stats, case.stats, label, COMPLETION_STATS)
    for name, want in pairs(case.details) do
      check(d[name] ~= nil, label .. ": details." .. name .. " is missing")
      if d[name] then
        check_close(d[name], T(want), TOL, label .. ": details." .. name)
        check(not d[name]:requires_grad(), label .. ": details." .. name .. " carries no graph")
      end
    end
    for name in pairs(d) do check(case.details[name] ~= nil, label .. ": details." .. name .. " is not TRL's") end
    check_close(o.logps.grad or tensor.zeros(o.logps:shape()), T(case.grad_logps), TOL, label .. ": grad logps")
    if o.old_logps then check(o.old_logps.grad == nil, label .. ": old_logps gets no grad") end
  end)
end

-- MARK: behaviour

local function batch(b, t, seed)
  tensor.manual_seed(seed)
  local logps = (tensor.rand(b, t) * -3 - 0.1):requires_grad(true)
  local old = logps:detach() + tensor.randn(b, t) * 0.2
  local ref = logps:detach() + tensor.randn(b, t) * 0.3
  local mask = tensor.ones(b, t)
  mask[b][t] = 0
  return logps, old, ref, tensor.randn(b), mask
end

test("defaults: dapo, epsilon 0.2, beta 0, token level, old_logps = logps", function()
  local logps, old, ref, adv, mask = batch(4, 5, 1)
  local a = rft.loss{logps = logps, advantages = adv, mask = mask}
  local b = rft.loss{logps = logps, advantages = adv, mask = mask, type = "dapo", epsilon = 0.2, epsilon_high = 0.2,
                     beta = 0, importance_sampling = "token", old_logps = logps:detach()}
  check_eq(a:item(), b:item(), "the defaults")
  -- On-policy with beta 0 the loss is -sum(A M) / sum(M): TRL's "GRPO loss is 0"-style cosmetic value.
  local want = -(adv:view(4, 1) * mask):sum():item() / mask:sum():item()
  check_close(a, want, 1e-6, "on-policy value")
end)

test("ref_logps is read only with beta > 0; advantages as a list", function()
  local logps, old, ref, adv, mask = batch(3, 4, 2)
  local a = rft.loss{logps = logps, old_logps = old, advantages = adv, mask = mask}
  local b = rft.loss{logps = logps, old_logps = old, ref_logps = ref, advantages = adv:totable(), mask = mask}
  check_eq(a:item(), b:item(), "same loss")
end)

test("dr_grpo: B * max_completion_length beyond 2^63 is no integer overflow", function()
  local b = 2049
  local loss = rft.loss{logps = tensor.zeros(b, 1), advantages = tensor.ones(b), mask = tensor.ones(b, 1),
                        type = "dr_grpo", max_completion_length = 2^52}
  check(loss:item() <= 0 and loss:item() > -1e-12, "a tiny finite loss: " .. loss:item())
end)

test("no_grad: the loss carries no graph", function()
  local logps, old, ref, adv, mask = batch(3, 4, 3)
  local loss = tensor.no_grad(function() return rft.loss{logps = logps, old_logps = old, advantages = adv, mask = mask} end)
  check(not loss:requires_grad(), "no graph")
end)

test("end to end: token_logprobs of a tiny GPT-2 into rft.loss, backward reaches the parameters", function()
  tensor.manual_seed(5)
  local m = nn.gpt2{vocab = 16, ctx = 8, dim = 16, layers = 1, heads = 2}
  local ids = tensor.new{{1, 2, 3, 4, 5, 6}, {1, 2, 3, 7, 8, 9}, {2, 3, 1, 5, 5, 0}, {2, 3, 1, 9, 9, 9}}
  local mask = tensor.new{{0, 0, 0, 1, 1, 1}, {0, 0, 0, 1, 1, 0}, {0, 0, 0, 1, 1, 1}, {0, 0, 0, 1, 0, 0}}
  local lp, lmask = m:token_logprobs(ids, mask)
  local adv = rft.advantages({1, 0, 0.5, 0.5}, 2)
  local loss, stats = rft.loss{logps = lp, advantages = adv, mask = lmask, type = "grpo", beta = 0.1,
                               ref_logps = lp:detach()}
  loss:backward()
  local with_grad = 0
  for _, p in ipairs(m:parameters()) do if p.grad then with_grad = with_grad + 1 end end
  check(with_grad > 0, "the loss reaches the model's parameters")
  check_close(stats.kl, 0, 1e-7, "kl 0 against itself")
end)

test("advantages: a list of rewards, group_size dividing N, NaN as a failed grader", function()
  local a, s, d = rft.advantages({1, 0/0, 0, 1}, 2)
  local t = a:totable()
  check_eq(t[2], 0, "the unscorable completion gets 0")
  check(t[1] == 0, "a group with one reward has NaN std: its advantage is 0, as TRL's nan_to_num makes it")
  check_eq(d.unscorable:totable()[2], 1, "unscorable flagged")
  check_close(s.reward, 2 / 3, 1e-6, "reward leaves NaN out")
  check(s["rewards/1/mean"] ~= nil, "default names are the column numbers")
end)

-- MARK: bad arguments

test("rft.advantages bad arguments", function()
  E(function() rft.advantages() end, "rft.advantages: argument #1 (rewards) must be a value, got no value")
  E(function() rft.advantages("x", 2) end, "rft.advantages: argument #1 (rewards) must be a tensor of rewards")
  E(function() rft.advantages({1, "x"}, 2) end, "got string at position 2")
  E(function() rft.advantages({1, 2, 3}, 2) end, "rft.advantages: group_size 2 does not divide the 3 completions")
  E(function() rft.advantages({1, 2}, 0) end, "rft.advantages: argument #2 (group_size) must be a positive integer")
  E(function() rft.advantages({1, 2}, 1.5) end, "rft.advantages: argument #2 (group_size) must be an integer, got 1.5")
  E(function() rft.advantages({1, 2}, "2") end, "argument #2 (group_size) must be an integer, got string")
  E(function() rft.advantages({1, 2}, 2, 3) end, "argument #3 (options) must be a table, got number")
  E(function() rft.advantages({1, 2}, 2, {scale = "groups"}) end,
    "rft.advantages: argument #3 (options) must be a table whose field 'scale' is one of group, batch, none, got 'groups'")
  E(function() rft.advantages({1, 2}, 2, {scale = true}) end, "field 'scale' is a string, got boolean")
  E(function() rft.advantages({1, 2}, 2, {aggregation = "sum"}) end,
    "field 'aggregation' is one of sum_then_normalize, normalize_then_sum, got 'sum'")
  E(function() rft.advantages({1, 2}, 2, {scale_rewards = "group"}) end, "unknown option 'scale_rewards'")
  E(function() rft.advantages({1, 2}, 2, {weights = {1, 2}}) end,
    "rft.advantages: weights has 2 values but rewards has 1 reward function (columns)")
  E(function() rft.advantages(tensor.zeros(2, 2), 2, {weights = {1, 0/0}}) end,
    "argument #3 (options) must be a table whose field 'weights[2]' is a finite number, got nan")
  E(function() rft.advantages(tensor.zeros(2, 2), 2, {names = {"a"}}) end, "names has 1 value but rewards has 2")
  E(function() rft.advantages(tensor.zeros(2, 2), 2, {names = {"a", 3}}) end, "got number at position 2")
  E(function() rft.advantages(tensor.zeros(2, 2, 2), 2) end, "rewards must be a vector (N) or a matrix (N, F)")
  E(function() rft.advantages(tensor.zeros(0), 1) end, "rewards is empty")
  E(function() rft.advantages(tensor.zeros(2, 0), 1) end, "rewards has no columns")
  E(function() rft.advantages({1, math.huge}, 2) end, "rewards must be finite numbers or NaN")
end)

test("rft.loss bad arguments", function()
  local logps, old, ref, adv, mask = batch(3, 4, 7)
  local function L(extra)
    local o = with({logps = logps, old_logps = old, ref_logps = ref, advantages = adv, mask = mask}, extra)
    return function() return rft.loss(o) end
  end
  E(function() rft.loss() end, "rft.loss: argument #1 (options) must be a table, got no value")
  E(function() rft.loss({}, 2) end, "rft.loss: expected at most 1 argument, got 2")
  E(L{logps = NONE}, "rft.loss: argument #1 (options) must be a table with logps = a tensor")
  E(L{mask = NONE}, "must be a table with mask = a tensor of 0 and 1")
  E(L{advantages = NONE}, "must be a table with advantages =")
  E(L{typo = 1}, "unknown option 'typo'")
  E(L{loss_type = "grpo"}, "unknown option 'loss_type'")
  E(L{type = "ppo"}, "field 'type' is one of dapo, grpo, bnpo, dr_grpo, cispo, sapo, luspo, vespo, got 'ppo'")
  E(L{type = 1}, "field 'type' is a string, got number")
  E(L{importance_sampling = "seq"}, "field 'importance_sampling' is one of token, sequence, got 'seq'")
  E(L{logps = tensor.zeros(3)}, "rft.loss: logps must be a matrix of per-token values (B, T), got size 3")
  E(L{logps = tensor.zeros(0, 4), old_logps = NONE, ref_logps = NONE, mask = tensor.zeros(0, 4), advantages = tensor.zeros(0)},
    "logps is empty")
  E(L{mask = tensor.ones(3, 5)}, "rft.loss: mask has size 3x5 but logps has size 3x4")
  E(L{old_logps = tensor.ones(2, 4)}, "old_logps has size 2x4 but logps has size 3x4")
  E(L{ref_logps = tensor.ones(3)}, "ref_logps must be a matrix")
  E(L{entropies = tensor.ones(4, 3)}, "entropies has size 4x3")
  E(L{mask = tensor.ones(3, 4) * 0.5}, "mask must hold 0 and 1 (1 on completion tokens), got 0.5 at row 1, column 1")
  E(L{advantages = tensor.zeros(4)}, "advantages must be a vector of 3 (one per completion) or a matrix of size 3x4")
  E(L{advantages = {1, 2}}, "advantages must be a vector of 3")
  E(L{advantages = "x"}, "field 'advantages' is a tensor, got string")
  E(L{beta = 0.1, ref_logps = NONE}, "rft.loss: beta > 0 needs ref_logps")
  E(L{beta = -1}, "field 'beta' is a finite number >= 0, got -1")
  E(L{beta = "0.1"}, "field 'beta' is a number, got string")
  E(L{epsilon = 0/0}, "field 'epsilon' is a finite number >= 0, got nan")
  E(L{epsilon_high = -0.1}, "field 'epsilon_high' is a finite number >= 0, got -0.1")
  E(L{delta = 0}, "field 'delta' is a positive finite number, got 0")
  E(L{type = "dr_grpo"}, "rft.loss: the dr_grpo loss needs max_completion_length")
  E(L{type = "dr_grpo", max_completion_length = 0}, "field 'max_completion_length' is a positive integer, got 0")
  E(L{max_completion_length = 2.5}, "field 'max_completion_length' is an integer")
  E(L{use_bias_correction_kl = 1}, "field 'use_bias_correction_kl' is a boolean, got number")
  E(L{sapo_temperature_pos = 0}, "field 'sapo_temperature_pos' is a positive finite number, got 0")
  E(L{sapo_temperature_neg = math.huge}, "field 'sapo_temperature_neg' is a positive finite number, got inf")
  E(L{vespo_k_pos = 0/0}, "field 'vespo_k_pos' is a finite number, got nan")
  E(L{vespo_lambda_neg = -math.huge}, "field 'vespo_lambda_neg' is a finite number, got -inf")
  E(L{num_items_in_batch = -1}, "field 'num_items_in_batch' is a finite number >= 0, got -1")
  E(L{truncated = {true}}, "rft.loss: truncated has 1 value but logps has 3 completions")
  E(L{truncated = {true, 2, false}}, "field 'truncated' is a list of booleans or a tensor of 0 and 1, got 2.0 at position 2")
  E(L{truncated = "x"}, "field 'truncated' is a list of booleans or a tensor of 0 and 1, got string")
  E(L{truncated = tensor.zeros(3, 1)}, "got a tensor of size 3x1")
end)

-- MARK: sweeps with odd values

local function odd_values()
  local dead = tensor.zeros(2)
  getmetatable(dead).__gc(dead)
  return {
    {"nil", nil}, {"string", "x"}, {"true", true}, {"false", false}, {"empty table", {}}, {"table", {2, 3}},
    {"-1", -1}, {"0", 0}, {"1", 1}, {"1.5", 1.5}, {"2^62", 2^62}, {"inf", math.huge}, {"-inf", -math.huge},
    {"nan", 0/0}, {"function", print}, {"scalar", tensor.new(2)}, {"vector", tensor.new{1, 2, 3}},
    {"matrix", tensor.new{{1, 2}, {3, 4}}}, {"empty", tensor.zeros(0)}, {"collected tensor", dead},
    {"strings", {"grpo", "x"}}, {"booleans", {true, false, true}},
  }
end

test("sweep: rft functions with odd values in one, two and three positions", function()
  local pool = odd_values()
  local all_ok, calls = true, 0
  local function call(name, args, n, labels)
    calls = calls + 1
    local ok, err = pcall(rft[name], table.unpack(args, 1, n))
    if not ok and not tostring(err):find("rft." .. name, 1, true) then
      all_ok = false
      check(false, "rft." .. name .. "(" .. table.concat(labels, ", ") .. "): error does not name the function: " .. tostring(err))
    end
  end
  for _, name in ipairs{"advantages", "loss"} do
    call(name, {}, 0, {})
    for _, a in ipairs(pool) do
      call(name, {a[2]}, 1, {a[1]})
      for _, b in ipairs(pool) do
        call(name, {a[2], b[2]}, 2, {a[1], b[1]})
        if name == "advantages" then
          for _, c in ipairs(pool) do call(name, {a[2], b[2], c[2]}, 3, {a[1], b[1], c[1]}) end
        end
      end
    end
  end
  check(all_ok and calls > 10000, "sweep (" .. calls .. " calls)")
end)

test("sweep: every option of rft.loss and rft.advantages set to odd values", function()
  local logps, old, ref, adv, mask = batch(3, 3, 8)
  local valid = {logps = logps, old_logps = old, ref_logps = ref, advantages = adv, mask = mask, beta = 0.1,
                 max_completion_length = 4, truncated = {true, false, true}, entropies = tensor.ones(3, 3)}
  local pool = odd_values()
  local all_ok, calls = true, 0
  for _, ty in ipairs{"dapo", "grpo", "bnpo", "dr_grpo", "cispo", "sapo", "luspo", "vespo"} do
    for _, level in ipairs{"token", "sequence"} do
      local base = with(valid, {type = ty, importance_sampling = level})
      check(pcall(rft.loss, base), "rft.loss " .. ty .. " " .. level .. ": the valid call works")
      for _, key in ipairs{"logps", "old_logps", "ref_logps", "advantages", "mask", "entropies", "truncated", "type",
                           "epsilon", "epsilon_high", "delta", "beta", "importance_sampling", "max_completion_length",
                           "use_bias_correction_kl", "sapo_temperature_pos", "sapo_temperature_neg", "vespo_k_pos",
                           "vespo_lambda_pos", "vespo_k_neg", "vespo_lambda_neg", "num_items_in_batch"} do
        for _, v in ipairs(pool) do
          local o = copy(base)
          o[key] = v[2]
          calls = calls + 1
          local ok, err = pcall(rft.loss, o)
          if ok then
            if not (tensor.is_tensor(err) and err:dim() == 0) then
              all_ok = false
              check(false, "rft.loss with " .. key .. " = " .. v[1] .. ": no loss tensor")
            end
          elseif not tostring(err):find("rft.loss", 1, true) then
            all_ok = false
            check(false, "rft.loss " .. ty .. " with " .. key .. " = " .. v[1] .. ": error does not name the function: " .. tostring(err))
          end
        end
      end
    end
  end
  for _, key in ipairs{"scale", "aggregation", "weights", "names"} do
    for _, v in ipairs(pool) do
      calls = calls + 1
      local ok, err = pcall(rft.advantages, tensor.new{{1, 0}, {0.5, 1}, {0, 0}, {1, 1}}, 2, {[key] = v[2]})
      if not ok and not tostring(err):find("rft.advantages", 1, true) then
        all_ok = false
        check(false, "rft.advantages with " .. key .. " = " .. v[1] .. ": error does not name the function: " .. tostring(err))
      end
    end
  end
  check(all_ok and calls > 5000, "option sweep (" .. calls .. " calls)")
end)

test("help covers the rft functions", function()
  check(type(rft.advantages) == "function" and type(rft.loss) == "function", "registered")
  check(require("rft") == rft, "require rft")
end)

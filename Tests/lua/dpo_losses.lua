-- dpo_losses.lua: the `dpo` losses against TRL 1.16's own loss code, then their numerics and bad arguments.
--
-- Reference values come from Tests/Fixtures/dpo_fixtures.lua, written by the committed script
-- Tests/Fixtures/gen_dpo_fixtures.py, which calls DPOTrainer._compute_loss, CPOTrainer/ORPOTrainer
-- .get_batch_loss_metrics and KTOTrainer._compute_loss on fixed per-sequence log-probs. For every loss type and
-- objective the loss, the per-example losses, the implicit rewards, every TRL metric and the gradients with respect
-- to the policy log-probs are compared within 1e-5 (absolute plus relative). Then: stable tails, NaN propagation,
-- no_grad, and bad arguments to every function (named errors, never a crash).

local F = dofile(TEST_DIR .. "/../Fixtures/dpo_fixtures.lua")
local TOL = 1e-5
local E = check_error
-- Marks an option to leave out in the helpers below.
local NONE = {}

-- options with extra fields set (NONE removes one).
local function with(base, extra)
  local o = {}
  for k, v in pairs(base) do o[k] = v end
  for k, v in pairs(extra or {}) do if v == NONE then o[k] = nil else o[k] = v end end
  return o
end

-- A fixture tensor {s = sizes, d = values} as a fresh contiguous tensor.
local function T(x)
  if #x.d == 0 then return tensor.zeros(table.unpack(x.s)) end
  return tensor.new(x.d):view(x.s):clone()
end

local function copy(t)
  local out = {}
  for k, v in pairs(t) do out[k] = v end
  return out
end

-- The grad of a leaf, or zeros when nothing reached it (TRL reports zeros).
local function grad_of(x)
  return x.grad or tensor.zeros(x:shape())
end

-- Compares stats with TRL's: the same names, each value within TOL.
local function check_stats(stats, want, label)
  for name, v in pairs(want) do
    check(stats[name] ~= nil, label .. ": stat " .. name .. " is missing")
    if stats[name] ~= nil then check_close(stats[name], v, TOL, label .. ": stat " .. name) end
  end
  for name in pairs(stats) do
    check(want[name] ~= nil, label .. ": stat " .. name .. " is not one TRL logs")
  end
end

local function check_common(case, loss, stats, d, label)
  check_eq(loss:dim(), 0, label .. ": loss is 0-dim")
  check(loss:requires_grad(), label .. ": loss carries the graph")
  check_close(loss, case.loss, TOL, label .. ": loss")
  check_close(d.losses, T(case.losses), TOL, label .. ": per-example losses")
  check_close(d.chosen_rewards, T(case.chosen_rewards), TOL, label .. ": chosen rewards")
  check_close(d.rejected_rewards, T(case.rejected_rewards), TOL, label .. ": rejected rewards")
  check(not d.losses:requires_grad() and not d.chosen_rewards:requires_grad(), label .. ": details carry no graph")
  check_stats(stats, case.stats, label)
end

-- MARK: against TRL

test("fixture file", function()
  check_eq(F.trl, "1.16.0", "fixtures from TRL 1.16.0")
  check(#F.dpo >= 60 and #F.cpo >= 10 and #F.orpo >= 3 and #F.kto >= 8, "fixtures loaded")
  local seen = {}
  for _, case in ipairs(F.dpo) do
    local ty = case.options.type
    if type(ty) == "string" then seen[ty] = true else for _, t in ipairs(ty) do seen[t] = true end end
  end
  for _, t in ipairs{"sigmoid", "hinge", "ipo", "exo_pair", "nca_pair", "robust", "bco_pair", "sppo_hard", "aot",
                     "aot_unpaired", "apo_zero", "apo_down", "discopop", "sft", "sigmoid_norm"} do
    check(seen[t], "a fixture covers loss type " .. t)
  end
end)

for _, case in ipairs(F.dpo) do
  test("dpo.loss: " .. case.name, function()
    local label = case.name
    local o = copy(case.options)
    for k, v in pairs(case.inputs) do o[k] = T(v) end
    o.policy_chosen:requires_grad(true)
    o.policy_rejected:requires_grad(true)
    local loss, stats, d = dpo.loss(o)
    loss:backward()
    check_common(case, loss, stats, d, label)
    check_eq(#d.terms, #case.terms, label .. ": one term per loss type")
    for k, term in ipairs(case.terms) do
      if d.terms[k] then check_close(d.terms[k], T(term), TOL, label .. ": term " .. k) end
    end
    check_close(grad_of(o.policy_chosen), T(case.grad_policy_chosen), TOL, label .. ": grad policy_chosen")
    check_close(grad_of(o.policy_rejected), T(case.grad_policy_rejected), TOL, label .. ": grad policy_rejected")
    check(o.ref_chosen.grad == nil, label .. ": the reference gets no grad")
  end)
end

for _, case in ipairs(F.cpo) do
  test("dpo." .. case.fn .. ": " .. case.name, function()
    local o = copy(case.options)
    for k, v in pairs(case.inputs) do o[k] = T(v) end
    o.policy_chosen:requires_grad(true)
    o.policy_rejected:requires_grad(true)
    local loss, stats, d = dpo[case.fn](o)
    loss:backward()
    check_common(case, loss, stats, d, case.name)
    check_close(grad_of(o.policy_chosen), T(case.grad_policy_chosen), TOL, case.name .. ": grad policy_chosen")
    check_close(grad_of(o.policy_rejected), T(case.grad_policy_rejected), TOL, case.name .. ": grad policy_rejected")
  end)
end

for _, case in ipairs(F.orpo) do
  test("dpo.orpo: " .. case.name, function()
    local o = copy(case.options)
    for k, v in pairs(case.inputs) do o[k] = T(v) end
    o.policy_chosen:requires_grad(true)
    o.policy_rejected:requires_grad(true)
    -- TRL's NLL, the mean cross-entropy over the chosen sequences' prompt and completion tokens, rebuilt from the
    -- same per-sequence sums so that its gradient reaches policy_chosen as in TRL.
    o.nll_loss = -(o.policy_chosen:sum() + case.nll_prompt_sum) / case.nll_tokens
    local loss, stats, d = dpo.orpo(o)
    loss:backward()
    check_common(case, loss, stats, d, case.name)
    check_close(grad_of(o.policy_chosen), T(case.grad_policy_chosen), TOL, case.name .. ": grad policy_chosen")
    check_close(grad_of(o.policy_rejected), T(case.grad_policy_rejected), TOL, case.name .. ": grad policy_rejected")
  end)
end

for _, case in ipairs(F.kto) do
  test("dpo.kto: " .. case.name, function()
    local o = copy(case.options)
    for k, v in pairs(case.inputs) do o[k] = k == "label" and v or T(v) end
    o.policy:requires_grad(true)
    local loss, stats, d = dpo.kto(o)
    loss:backward()
    check_common(case, loss, stats, d, case.name)
    check_close(d.kl, case.stats.kl, TOL, case.name .. ": kl")
    check_close(grad_of(o.policy), T(case.grad_policy), TOL, case.name .. ": grad policy")
  end)
end

-- MARK: numerics and behaviour

local function pairs_of(b, seed)
  tensor.manual_seed(seed)
  local pc = (tensor.rand(b) * -50 - 5):requires_grad(true)
  local pr = (tensor.rand(b) * -50 - 5):requires_grad(true)
  return pc, pr, pc:detach() + tensor.randn(b), pr:detach() + tensor.randn(b)
end

test("log-sigmoid tails stay finite with enormous margins", function()
  local pc = tensor.new{-1, -2000}:requires_grad(true)
  local pr = tensor.new{-3000, -1}:requires_grad(true)
  local z = tensor.zeros(2)
  -- discopop too, where TRL's own form turns NaN (e^-z overflows times a modulation that underflows to 0).
  for _, ty in ipairs{"sigmoid", "nca_pair", "bco_pair", "robust", "discopop", "exo_pair"} do
    local ls = (ty == "robust" or ty == "exo_pair") and 0.1 or 0
    pc:zero_grad(); pr:zero_grad()
    local loss = dpo.loss{policy_chosen = pc, policy_rejected = pr, ref_chosen = z, ref_rejected = z, beta = 1,
                          type = ty, label_smoothing = ls}
    check(loss:item() == loss:item() and loss:item() < math.huge, ty .. ": finite loss " .. loss:item())
    loss:backward()
    local g = pc.grad:totable()
    check(g[1] == g[1] and g[2] == g[2], ty .. ": no NaN in the gradient")
  end
  -- -log sigmoid(-1999) is 1999, exactly, not inf: the second pair costs its full margin.
  local loss = dpo.loss{policy_chosen = pc, policy_rejected = pr, ref_chosen = z, ref_rejected = z, beta = 1}
  check_close(loss, (0 + 1999) / 2, 1e-6, "sigmoid loss of a 2999 margin and a -1999 margin")
end)

test("NaN log-probs give a NaN loss, not an error", function()
  local pc, pr, rc, rr = pairs_of(3, 1)
  local bad = tensor.new{0/0, -1, -2}
  local loss = dpo.loss{policy_chosen = bad, policy_rejected = pr, ref_chosen = rc, ref_rejected = rr}
  check(loss:item() ~= loss:item(), "NaN loss")
end)

test("no_grad: the loss carries no graph", function()
  local pc, pr, rc, rr = pairs_of(4, 2)
  local loss = tensor.no_grad(function()
    return dpo.loss{policy_chosen = pc, policy_rejected = pr, ref_chosen = rc, ref_rejected = rr}
  end)
  check(not loss:requires_grad(), "no graph")
end)

test("a list of one type equals the type; weights scale the mean", function()
  local pc, pr, rc, rr = pairs_of(5, 3)
  local base = {policy_chosen = pc, policy_rejected = pr, ref_chosen = rc, ref_rejected = rr}
  local o1 = copy(base); o1.type = "hinge"
  local o2 = copy(base); o2.type = {"hinge"}
  local o3 = copy(base); o3.type = {"hinge", "sigmoid"}; o3.weights = {2, 0}
  local a, b, c = dpo.loss(o1), dpo.loss(o2), dpo.loss(o3)
  check_eq(a:item(), b:item(), "list of one")
  check_close(c, a:item() * 2, 1e-6, "weights")
end)

test("lengths as lists or tensors; simpo equals cpo simpo with cpo_alpha 0", function()
  local pc, pr = pairs_of(3, 4)
  local a = dpo.simpo{policy_chosen = pc, policy_rejected = pr, chosen_lengths = {3, 4, 5}, rejected_lengths = {2, 2, 9}}
  local b = dpo.cpo{policy_chosen = pc, policy_rejected = pr, chosen_lengths = tensor.new{3, 4, 5},
                    rejected_lengths = tensor.new{2, 2, 9}, loss_type = "simpo", cpo_alpha = 0}
  check_eq(a:item(), b:item(), "simpo")
end)

test("cpo: a given nll_loss replaces the computed one", function()
  local pc, pr = pairs_of(3, 5)
  local _, s = dpo.cpo{policy_chosen = pc, policy_rejected = pr, nll_loss = 2.5}
  check_eq(s.nll_loss, 2.5, "nll_loss stat")
  local loss, s2 = dpo.cpo{policy_chosen = pc, policy_rejected = pr, chosen_lengths = {10, 10, 10}}
  check_close(s2.nll_loss, -pc:sum():item() / 30, 1e-6, "computed NLL")
  local _, s3 = dpo.cpo{policy_chosen = pc, policy_rejected = pr, cpo_alpha = 0}
  check_eq(s3.nll_loss, 0, "cpo_alpha 0: no NLL")
end)

test("kto: labels as a 0/1 tensor", function()
  local p, _, r = pairs_of(4, 6)
  local a = dpo.kto{policy = p, ref = r, label = {true, false, false, true}, loss_type = "apo_zero_unpaired"}
  local b = dpo.kto{policy = p, ref = r, label = tensor.new{1, 0, 0, 1}, loss_type = "apo_zero_unpaired"}
  check_eq(a:item(), b:item(), "same loss")
end)

test("help and the module", function()
  for _, name in ipairs{"loss", "cpo", "simpo", "orpo", "kto"} do
    check(type(dpo[name]) == "function", "dpo." .. name)
  end
  check(require("dpo") == dpo, "require")
end)

test("end to end: m:logprobs into dpo.loss, backward through a tiny GPT-2, steps that lower the loss", function()
  tensor.manual_seed(12)
  local m = nn.gpt2{vocab = 16, ctx = 8, dim = 16, layers = 1, heads = 2}
  -- Two pairs: prompt tokens 1..3, completions from token 4 on (mask 1 on completion tokens only).
  local chosen = tensor.new{{1, 2, 3, 4, 5, 6}, {2, 3, 1, 7, 8, 9}}
  local rejected = tensor.new{{1, 2, 3, 9, 9, 9}, {2, 3, 1, 5, 5, 0}}
  local mask = tensor.new{{0, 0, 0, 1, 1, 1}, {0, 0, 0, 1, 1, 1}}
  local ref_c, ref_r = tensor.no_grad(function() return m:logprobs(chosen, mask), m:logprobs(rejected, mask) end)
  local opt = optim.sgd(m:parameters(), {lr = 0.5})
  local first, last, margins
  for step = 1, 5 do
    opt:zero_grad()
    local loss, stats = dpo.loss{policy_chosen = m:logprobs(chosen, mask), policy_rejected = m:logprobs(rejected, mask),
                                 ref_chosen = ref_c, ref_rejected = ref_r, beta = 0.5}
    if step == 1 then
      check_close(loss, math.log(2), 1e-6, "policy = reference: loss log 2")
      check_eq(stats["rewards/margins"], 0, "no margin at the start")
    end
    loss:backward()
    local with_grad = 0
    for _, p in ipairs(m:parameters()) do if p.grad then with_grad = with_grad + 1 end end
    check(with_grad > 0, "the loss reaches the model's parameters")
    opt:step()
    first = first or loss:item()
    last, margins = loss:item(), stats["rewards/margins"]
  end
  check(last < first and margins > 0, "five steps lower the loss (" .. first .. " -> " .. last .. ") and open a margin")
end)

-- MARK: bad arguments

test("dpo.loss bad arguments", function()
  local pc, pr, rc, rr = pairs_of(4, 7)
  local function L(extra)
    local o = with({policy_chosen = pc, policy_rejected = pr, ref_chosen = rc, ref_rejected = rr}, extra)
    return function() return dpo.loss(o) end
  end
  E(function() dpo.loss() end, "dpo.loss: argument #1 (options) must be a table, got no value")
  E(function() dpo.loss(3) end, "dpo.loss: argument #1 (options) must be a table, got number")
  E(function() dpo.loss({}, 2) end, "dpo.loss: expected at most 1 argument, got 2")
  E(function() dpo.loss{policy_rejected = pr, ref_chosen = rc, ref_rejected = rr} end,
    "dpo.loss: argument #1 (options) must be a table with policy_chosen = a tensor")
  E(L{bta = 1}, "unknown option 'bta'")
  E(L{policy_chosen = 3}, "field 'policy_chosen' is a tensor, got number")
  for _, b in ipairs{0, -1, math.huge, 0/0} do E(L{beta = b}, "field 'beta' is a positive finite number") end
  E(L{beta = "x"}, "field 'beta' is a number, got string")
  E(L{type = "dpo"}, "field 'type' names loss types among sigmoid, hinge")
  E(L{type = {}}, "non-empty list of strings")
  E(L{type = {"sigmoid", 2}}, "got number at position 2")
  E(L{type = true}, "field 'type' is a string or a list of strings, got boolean")
  E(L{type = {"sigmoid", "sft"}, weights = {1}}, "weights has 1 value but type names 2 loss types")
  E(L{weights = {0/0}}, "field 'weights[1]' is a finite number, got nan")
  E(L{weights = "x"}, "field 'weights' is a list of numbers")
  E(L{label_smoothing = 0.1}, "label_smoothing is read only by the robust, exo_pair, aot and aot_unpaired losses")
  E(L{type = "robust", label_smoothing = 0.5}, "field 'label_smoothing' is a number in [0, 0.5) for the robust loss")
  E(L{type = "aot", label_smoothing = 1}, "field 'label_smoothing' is a number in [0, 1)")
  E(L{type = "exo_pair"}, "greater than 0 for the exo_pair loss")
  E(L{f_divergence_type = "kl"}, "field 'f_divergence_type' is one of reverse_kl, forward_kl, js_divergence, alpha_divergence")
  E(L{f_divergence_type = "forward_kl", type = "nca_pair"}, "f_divergence_type 'forward_kl' works only with")
  E(L{f_alpha_divergence_coef = math.huge}, "f_alpha_divergence_coef' is a finite number")
  E(L{discopop_tau = 0}, "discopop_tau' is a positive finite number")
  E(L{use_weighting = 1}, "field 'use_weighting' is a boolean")
  E(L{policy_rejected = tensor.zeros(3)}, "dpo.loss: policy_rejected has 3 elements but policy_chosen has 4")
  E(L{ref_rejected = tensor.zeros(5)}, "ref_rejected has 5 elements but policy_chosen has 4")
  E(L{policy_chosen = tensor.zeros(2, 2)}, "policy_chosen must be a vector of per-sequence log-probabilities")
  E(L{policy_chosen = tensor.new(1)}, "policy_chosen must be a vector")
  E(function() dpo.loss{policy_chosen = tensor.zeros(0), policy_rejected = tensor.zeros(0),
                        ref_chosen = tensor.zeros(0), ref_rejected = tensor.zeros(0)} end, "policy_chosen is empty")
  E(L{type = "ipo"}, "the ipo loss needs chosen_lengths")
  E(L{type = "sigmoid_norm", chosen_lengths = {1, 2, 3, 4}}, "the sigmoid_norm loss needs rejected_lengths")
  E(L{type = "sft"}, "the sft loss needs chosen_lengths")
  E(L{type = "sft", chosen_lengths = {0, 0, 0, 0}}, "at least one chosen completion token")
  E(L{type = "ipo", chosen_lengths = {1, 2, 3}, rejected_lengths = {1, 2, 3, 4}}, "chosen_lengths must be a vector of 4 completion token counts")
  E(L{type = "ipo", chosen_lengths = {1, -2, 3, 4}, rejected_lengths = {1, 2, 3, 4}}, "chosen_lengths must hold token counts (integers >= 0), got -2.0 at position 2")
  E(L{type = "ipo", chosen_lengths = {1, 2.5, 3, 4}, rejected_lengths = {1, 2, 3, 4}}, "got 2.5 at position 2")
  E(L{type = "ipo", chosen_lengths = {1, "x", 3, 4}, rejected_lengths = {1, 2, 3, 4}}, "field 'chosen_lengths' is a list of numbers, got string at position 2")
  E(L{chosen_lengths = true}, "field 'chosen_lengths' is a tensor, got boolean")
  E(L{use_weighting = true}, "use_weighting needs chosen_lengths")
  E(L{use_weighting = true, chosen_lengths = {1, 1, 1, 1}, rejected_lengths = {1, 1, 1, 1}}, "use_weighting needs chosen_log_sum_sq_probs")
  E(L{use_weighting = true, type = "aot"}, "use_weighting does not work with the aot loss")
  E(L{use_weighting = true, type = "sft"}, "use_weighting does not work with the sft loss")
end)

test("dpo.cpo and dpo.simpo bad arguments", function()
  local pc, pr = pairs_of(3, 8)
  local function C(fn, extra)
    local o = with({policy_chosen = pc, policy_rejected = pr, chosen_lengths = {2, 3, 4}, rejected_lengths = {4, 5, 6}}, extra)
    return function() return dpo[fn](o) end
  end
  E(function() dpo.cpo() end, "dpo.cpo: argument #1 (options) must be a table, got no value")
  E(C("cpo", {loss_type = "dpo"}), "dpo.cpo: argument #1 (options) must be a table whose field 'loss_type' is one of sigmoid, hinge, ipo, simpo, alphapo, got 'dpo'")
  E(C("cpo", {loss_type = "hinge", label_smoothing = 0.1}), "label_smoothing is read only by the sigmoid and simpo losses")
  E(C("cpo", {beta = -1}), "field 'beta' is a positive finite number, got -1")
  E(C("cpo", {cpo_alpha = 0/0}), "field 'cpo_alpha' is a finite number, got nan")
  E(C("cpo", {simpo_gamma = math.huge}), "field 'simpo_gamma' is a finite number, got inf")
  E(C("cpo", {alpha = -math.huge}), "field 'alpha' is a finite number, got -inf")
  E(C("cpo", {loss_type = "alphapo", cpo_alpha = 1}), "'cpo_alpha' is 0 with loss_type alphapo")
  E(C("cpo", {label_smoothing = 1}), "field 'label_smoothing' is a number in [0, 1)")
  E(C("cpo", {chosen_lengths = NONE}), "dpo.cpo: the NLL term (cpo_alpha is not 0; or pass nll_loss) needs chosen_lengths")
  E(C("cpo", {loss_type = "ipo", rejected_lengths = NONE}), "the ipo loss (it compares average log-probs) needs rejected_lengths")
  E(C("cpo", {loss_type = "ipo", chosen_lengths = {1, 0, 1}}), "chosen_lengths must be at least 1 where average log-probs are taken, got 0 at position 2")
  E(C("cpo", {nll_loss = "x"}), "field 'nll_loss' is a tensor or a number, got string")
  E(C("cpo", {nll_loss = tensor.zeros(2)}), "nll_loss must be one number")
  E(C("cpo", {policy_rejected = tensor.zeros(4)}), "policy_rejected has 4 elements but policy_chosen has 3")
  E(C("simpo", {loss_type = "simpo"}), "dpo.simpo: argument #1 (options) must be a table of options")
  E(C("simpo", {rejected_lengths = NONE}), "dpo.simpo: the simpo loss (it compares average log-probs) needs rejected_lengths")
  E(C("simpo", {simpo_gamma = "1"}), "dpo.simpo: argument #1 (options) must be a table whose field 'simpo_gamma' is a number, got string")
end)

test("dpo.orpo bad arguments", function()
  local pc, pr = pairs_of(3, 9)
  local function O(extra)
    local o = with({policy_chosen = pc, policy_rejected = pr, chosen_lengths = {2, 3, 4}, rejected_lengths = {4, 5, 6}, nll_loss = 1}, extra)
    return function() return dpo.orpo(o) end
  end
  E(function() dpo.orpo() end, "dpo.orpo: argument #1 (options) must be a table, got no value")
  E(O{nll_loss = NONE}, "dpo.orpo: argument #1 (options) must be a table with nll_loss")
  E(O{chosen_lengths = NONE}, "must be a table with chosen_lengths and rejected_lengths")
  E(O{rejected_lengths = {1, 0, 2}}, "rejected_lengths must be at least 1")
  E(O{beta = 0}, "field 'beta' is a positive finite number, got 0")
  E(O{cpo_alpha = 1}, "unknown option 'cpo_alpha'")
  E(O{nll_loss = tensor.zeros(1, 2)}, "nll_loss must be one number (a 0-dim tensor), got size 1x2")
end)

test("dpo.kto bad arguments", function()
  local p, _, r = pairs_of(4, 10)
  local kp, kr = tensor.randn(4), tensor.randn(4)
  local function K(extra)
    local o = with({policy = p, ref = r, label = {true, false, true, false}, policy_kl = kp, ref_kl = kr}, extra)
    return function() return dpo.kto(o) end
  end
  E(function() dpo.kto() end, "dpo.kto: argument #1 (options) must be a table, got no value")
  E(K{label = NONE}, "must be a table with label = a list of booleans")
  E(K{label = {true, false}}, "dpo.kto: label has 2 values but policy has 4")
  E(K{label = {true, 2, true, false}}, "field 'label' is a list of booleans (true: desirable) or a tensor of 0 and 1, got 2.0 at position 2")
  E(K{label = {true, "x", true, false}}, "got string at position 2")
  E(K{label = tensor.zeros(2, 2)}, "got a tensor of size 2x2")
  E(K{label = 1}, "field 'label' is a list of booleans (true: desirable) or a tensor of 0 and 1, got number")
  E(K{policy_kl = NONE}, "the kto loss needs policy_kl and ref_kl")
  E(K{ref_kl = tensor.zeros(3)}, "ref_kl has 3 elements but policy_kl has 4")
  E(K{loss_type = "apo_zero_unpaired"}, "the apo_zero_unpaired loss has no KL estimate")
  E(K{loss_type = "kto_pair"}, "field 'loss_type' is one of kto, apo_zero_unpaired, got 'kto_pair'")
  E(K{desirable_weight = -1}, "field 'desirable_weight' is a finite number >= 0, got -1")
  E(K{undesirable_weight = 0/0}, "field 'undesirable_weight' is a finite number >= 0, got nan")
  E(K{ref = tensor.zeros(3)}, "ref has 3 elements but policy has 4")
  E(function() dpo.kto{policy = tensor.new{-1}, ref = tensor.new{-2}, label = {true}, policy_kl = kp, ref_kl = kr} end,
    "the kto loss needs a batch of at least 2 examples")
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
    {"strings", {"sigmoid", "x"}}, {"booleans", {true, false, true}},
  }
end

local FNS = {"loss", "cpo", "simpo", "orpo", "kto"}

test("sweep: every dpo function with odd values in one and two positions", function()
  local pool = odd_values()
  local all_ok = true
  local function call(name, args, n, labels)
    local ok, err = pcall(dpo[name], table.unpack(args, 1, n))
    if not ok and not tostring(err):find("dpo." .. name, 1, true) then
      all_ok = false
      check(false, "dpo." .. name .. "(" .. table.concat(labels, ", ") .. "): error does not name the function: " .. tostring(err))
    end
  end
  for _, name in ipairs(FNS) do
    call(name, {}, 0, {})
    for _, a in ipairs(pool) do
      call(name, {a[2]}, 1, {a[1]})
      for _, b in ipairs(pool) do call(name, {a[2], b[2]}, 2, {a[1], b[1]}) end
    end
  end
  check(all_ok, "sweep")
end)

test("sweep: every option of every dpo function set to odd values", function()
  local pc, pr, rc, rr = pairs_of(3, 11)
  local valid = {
    loss = {policy_chosen = pc, policy_rejected = pr, ref_chosen = rc, ref_rejected = rr, chosen_lengths = {1, 2, 3},
            rejected_lengths = {3, 2, 1}},
    cpo = {policy_chosen = pc, policy_rejected = pr, chosen_lengths = {1, 2, 3}, rejected_lengths = {3, 2, 1}},
    simpo = {policy_chosen = pc, policy_rejected = pr, chosen_lengths = {1, 2, 3}, rejected_lengths = {3, 2, 1}},
    orpo = {policy_chosen = pc, policy_rejected = pr, chosen_lengths = {1, 2, 3}, rejected_lengths = {3, 2, 1}, nll_loss = 1},
    kto = {policy = pc, ref = rc, label = {true, false, true}, policy_kl = pr, ref_kl = rr},
  }
  local keys = {
    loss = {"policy_chosen", "policy_rejected", "ref_chosen", "ref_rejected", "beta", "type", "weights",
            "label_smoothing", "f_divergence_type", "f_alpha_divergence_coef", "discopop_tau", "use_weighting",
            "chosen_lengths", "rejected_lengths", "chosen_log_sum_sq_probs", "rejected_log_sum_sq_probs"},
    cpo = {"policy_chosen", "policy_rejected", "chosen_lengths", "rejected_lengths", "nll_loss", "beta", "loss_type",
           "label_smoothing", "cpo_alpha", "simpo_gamma", "alpha"},
    simpo = {"policy_chosen", "policy_rejected", "chosen_lengths", "rejected_lengths", "nll_loss", "beta",
             "label_smoothing", "cpo_alpha", "simpo_gamma", "alpha"},
    orpo = {"policy_chosen", "policy_rejected", "chosen_lengths", "rejected_lengths", "nll_loss", "beta"},
    kto = {"policy", "ref", "label", "policy_kl", "ref_kl", "beta", "loss_type", "desirable_weight", "undesirable_weight"},
  }
  local pool = odd_values()
  local all_ok, calls = true, 0
  for _, name in ipairs(FNS) do
    local ok0 = pcall(dpo[name], valid[name])
    check(ok0, "dpo." .. name .. ": the valid call works")
    for _, key in ipairs(keys[name]) do
      for _, v in ipairs(pool) do
        local o = copy(valid[name])
        o[key] = v[2]
        calls = calls + 1
        local ok, err = pcall(dpo[name], o)
        if ok then
          -- Accepted: the loss is a 0-dim tensor whatever it holds.
          local loss = err
          if not (tensor.is_tensor(loss) and loss:dim() == 0) then
            all_ok = false
            check(false, "dpo." .. name .. " with " .. key .. " = " .. v[1] .. ": no loss tensor")
          end
        elseif not tostring(err):find("dpo." .. name, 1, true) then
          all_ok = false
          check(false, "dpo." .. name .. " with " .. key .. " = " .. v[1] .. ": error does not name the function: " .. tostring(err))
        end
      end
    end
  end
  check(all_ok and calls > 1000, "option sweep (" .. calls .. " calls)")
end)

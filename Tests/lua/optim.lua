-- optim.lua: the `optim` module: optimizers, gradient clipping and schedules against PyTorch and transformers.
--
-- Reference values come from Tests/Fixtures/optim_fixtures.lua, written by the committed script
-- Tests/Fixtures/gen_optim_fixtures.py (torch.optim.SGD / AdamW on CPU, clip_grad_norm_, transformers'
-- schedules). Parameters are compared within 1e-6 (absolute plus relative): Tycho computes the same float32
-- operations in the same order, but PyTorch's vector kernels fuse some multiply-adds. Schedules are compared
-- exactly where Tycho promises equality. Then: state save/load through tensor.save/tensor.load with a bitwise
-- identical continuation, param groups and the other parameter forms, zero_grad, versions, and bad arguments
-- to every function.

local F = dofile(TEST_DIR .. "/../Fixtures/optim_fixtures.lua")
local TOL = 1e-6
local E = check_error

-- A fixture tensor {s = sizes, d = values} as a fresh contiguous tensor.
local function T(x)
  return tensor.new(x.d):view(x.s):clone()
end

-- A fresh leaf that requires grad.
local function leaf(x)
  return T(x):requires_grad(true)
end

-- Gives each parameter the grad g (false: no grad) through backward of sum(p * g), which yields exactly g.
local function set_grads(params, grads)
  local loss
  for i, p in ipairs(params) do
    p:zero_grad()
    if grads[i] then
      local term = (p * grads[i]):sum()
      loss = loss and loss + term or term
    end
  end
  if loss then loss:backward() end
end

local function size(t) return table.concat(t:shape(), "x") end

-- True when two tensors have the same size and bitwise the same values.
local function same(a, b)
  if size(a) ~= size(b) then return false end
  if a:dim() == 0 then return a:item() == b:item() end
  local x, y = a:contiguous():view(-1):totable(), b:contiguous():view(-1):totable()
  for i = 1, #x do
    if x[i] ~= y[i] then return false end
  end
  return true
end

-- Builds the optimizer of a fixture case over `params` (its groups list the 1-based parameter numbers).
local function build(case, params)
  if not case.groups then return optim[case.kind](params, case.options) end
  local groups = {}
  for g, spec in ipairs(case.groups) do
    local group = {params = {}}
    for _, i in ipairs(spec.params) do group.params[#group.params + 1] = params[i] end
    for k, v in pairs(spec.options or {}) do group[k] = v end
    groups[g] = group
  end
  return optim[case.kind](groups, case.options)
end

-- MARK: against PyTorch

test("fixture file", function()
  check(#F.optim >= 8 and #F.clip >= 3 and #F.schedules >= 6, "fixtures loaded")
end)

for _, case in ipairs(F.optim) do
  test(case.name, function()
    local params = {}
    for i, p in ipairs(case.params) do params[i] = leaf(p) end
    local opt = build(case, params)
    for k, grads in ipairs(case.grads) do
      local gs = {}
      for i, g in ipairs(grads) do gs[i] = g and T(g) end
      opt:zero_grad()
      for _, p in ipairs(params) do check(p.grad == nil, case.name .. ": zero_grad sets grads to nil") end
      set_grads(params, gs)
      opt:step()
      for i, p in ipairs(params) do
        check_close(p, T(case.expected[k][i]), TOL, string.format("%s: step %d, parameter %d", case.name, k, i))
      end
    end
    if case.state then
      local s = opt:state()
      local names = 0
      for name, want in pairs(case.state) do
        names = names + 1
        check(s[name] ~= nil, case.name .. ": state has " .. name)
        if s[name] then check_close(s[name], T(want), TOL, case.name .. ": state " .. name) end
      end
      local mine = 0
      for name in pairs(s) do
        if not name:find("^group") and name ~= "step" then mine = mine + 1 end
      end
      check_eq(mine, names, case.name .. ": per-parameter state entries")
      check_eq(s.step:item(), #case.grads, case.name .. ": step count")
    end
  end)
end

test("clip_grad_norm against PyTorch", function()
  for n, case in ipairs(F.clip) do
    local params = {}
    for i, g in ipairs(case.grads) do
      params[i] = tensor.zeros(g and T(g):shape() or {1}):requires_grad(true)
    end
    local gs = {}
    for i, g in ipairs(case.grads) do gs[i] = g and T(g) end
    set_grads(params, gs)
    local total = optim.clip_grad_norm(params, case.max_norm)
    check_close(total, case.total, TOL, "clip case " .. n .. ": total norm")
    for i, want in ipairs(case.clipped) do
      if want then
        check_close(params[i].grad, T(want), TOL, "clip case " .. n .. ": grad " .. i)
      else
        check(params[i].grad == nil, "clip case " .. n .. ": missing grad stays nil")
      end
    end
  end
end)

test("clip_grad_norm forms and edge cases", function()
  local a, b = tensor.ones(4):requires_grad(true), tensor.ones(3, 3):requires_grad(true)
  set_grads({a, b}, {tensor.full({4}, 3), tensor.full({3, 3}, 4)})  -- norm sqrt(4*9 + 9*16) = sqrt(180)
  local module = setmetatable({}, {__index = {parameters = function() return {a, b} end}})
  check_close(optim.clip_grad_norm(module, 1e9), math.sqrt(180), TOL, "a module; no clipping")
  check_close(a.grad, tensor.full({4}, 3), 0, "grads unchanged when under max_norm")
  check_close(optim.clip_grad_norm({{params = {a}}, {params = {b}}}, 1), math.sqrt(180), TOL, "param groups")
  check_close(optim.clip_grad_norm({a, b}, 1), 1, 1e-5, "clipped to norm 1")
  check_close(optim.clip_grad_norm({}, 1), 0, 0, "no parameters: norm 0")
  local c = tensor.ones(2):requires_grad(true)
  check_eq(optim.clip_grad_norm({c}, 1), 0, "no grads: norm 0")
  check(c.grad == nil, "a missing grad stays nil")
  set_grads({a}, {tensor.full({4}, 0)})
  check_eq(optim.clip_grad_norm({a}, 0), 0, "zero grads with max_norm 0")
end)

-- MARK: schedules

test("schedules against transformers", function()
  for n, case in ipairs(F.schedules) do
    local s = optim.schedule(case.options)
    local exact = (case.options.min_lr or 0) == 0
    local bad = nil
    for k = 0, #case.values - 1 do
      local want, got = case.values[k + 1], s(k)
      local ok = exact and got == want or math.abs(got - want) <= 1e-12 * math.abs(want) + 1e-18
      if not ok and not bad then bad = string.format("step %d: %.17g, expected %.17g", k, got, want) end
      check_eq(s:lr_at(k), got, "lr_at equals the call")
    end
    check(bad == nil, "schedule " .. n .. " (" .. tostring(s) .. "): " .. tostring(bad))
  end
end)

test("schedule shape", function()
  local s = optim.schedule{kind = "cosine", lr = 1e-3, warmup = 10, total = 110, min_lr = 1e-4}
  check_eq(s(0), 0, "warmup starts at 0")
  check_close(s(5), 5e-4, 1e-15, "halfway through the warmup")
  check_eq(s(10), 1e-3, "peak at the end of the warmup")
  check_close(s(60), 5.5e-4, 1e-15, "halfway through the decay")
  check_eq(s(110), 1e-4, "min_lr at total")
  check_eq(s(1000), 1e-4, "min_lr held after total")
  local l = optim.schedule{kind = "linear", lr = 1, total = 4}
  check_eq(l(0), 1, "no warmup: lr at step 0")
  check_eq(l(1), 0.75, "linear")
  check_eq(l(4), 0, "linear reaches 0")
  check_eq(l(9), 0, "and stays")
  local c = optim.schedule{kind = "constant", lr = 0.5, warmup = 2}
  check_eq(c(1), 0.25, "constant warmup")
  check_eq(c(1e6), 0.5, "constant")
  check_eq(tostring(s), "Schedule(cosine, lr=0.001, warmup=10, total=110, min_lr=0.0001)", "tostring")
  check_eq(tostring(c), "Schedule(constant, lr=0.5, warmup=2)", "tostring constant")
  local w = tensor.zeros(2):requires_grad(true)
  local opt = optim.adamw({{params = {w}}, {params = {tensor.zeros(1):requires_grad(true)}, lr = 7}})
  check_eq(s:apply(opt, 5), s(5), "apply returns the rate")
  check_eq(opt:lr(1), 5e-4, "apply sets group 1")
  check_eq(opt:lr(2), 5e-4, "apply sets group 2")
  -- a scale (what a rollback's lr_factor sets) multiplies every rate; scale 1 changes no bit
  check_eq(s:scale(), 1, "scale starts at 1")
  local before = s(50)
  s:set_scale(0.5)
  check_eq(s(50), before * 0.5, "scaled")
  check_eq(tostring(s), "Schedule(cosine, lr=0.001, warmup=10, total=110, min_lr=0.0001, scale=0.5)", "tostring with a scale")
  s:set_scale(1)
  check_eq(s(50), before, "back to the unscaled rate, bit for bit")
end)

-- MARK: state

-- Runs `steps` steps of opt on params with grads from a seeded generator (grads of param 2 skipped on step 2).
local function train(opt, params, first, last)
  for k = first, last do
    tensor.manual_seed(100 + k)
    local gs = {}
    for i, p in ipairs(params) do gs[i] = tensor.randn(p:shape()) end
    if k == 2 then gs[2] = false end
    opt:zero_grad()
    set_grads(params, gs)
    opt:step()
  end
end

local function fresh_params()
  tensor.manual_seed(5)
  return {tensor.randn(4, 3):requires_grad(true), tensor.randn(5):requires_grad(true),
          tensor.randn(2, 2, 2):requires_grad(true), tensor.new(0.5):requires_grad(true)}
end

local function copies(params)
  local out = {}
  for i, p in ipairs(params) do out[i] = p:detach():clone():requires_grad(true) end
  return out
end

local function resume_test(kind, options, groups_of)
  test(kind .. " state round trip continues bitwise", function()
    local a = fresh_params()
    local opt_a = optim[kind](groups_of and groups_of(a) or a, options)
    train(opt_a, a, 1, 3)
    opt_a:set_lr(0.0123, 1)
    local path = os.tmpname()
    tensor.save(path, opt_a:state())
    -- A new optimizer over copies of the parameters, built with other hyperparameters: the state restores them.
    local b = copies(a)
    local opt_b = optim[kind](groups_of and groups_of(b) or b, {lr = 0.5})
    opt_b:load_state(tensor.load(path))
    os.remove(path)
    check_eq(opt_b:lr(1), 0.0123, "lr restored")
    check_eq(tostring(opt_b), tostring(opt_a), "same description")
    local sa, sb = opt_a:state(), opt_b:state()
    for name, t in pairs(sa) do check(sb[name] and same(t, sb[name]), "state entry " .. name .. " restored") end
    for name in pairs(sb) do check(sa[name] ~= nil, "no extra entry " .. name) end
    train(opt_a, a, 4, 6)
    train(opt_b, b, 4, 6)
    for i = 1, #a do check(same(a[i], b[i]), kind .. ": parameter " .. i .. " bitwise equal after resuming") end
    sa, sb = opt_a:state(), opt_b:state()
    for name, t in pairs(sa) do check(sb[name] and same(t, sb[name]), "state entry " .. name .. " equal after resuming") end
  end)
end

resume_test("adamw", {lr = 0.01, betas = {0.8, 0.9}, weight_decay = 0.1})
resume_test("sgd", {lr = 0.05, momentum = 0.9, nesterov = true})
resume_test("adamw", {lr = 0.01}, function(p) return {{params = {p[3], p[1]}, weight_decay = 0}, {params = {p[2], p[4]}, eps = 1e-3}} end)

test("state names and snapshot", function()
  local p = fresh_params()
  local opt = optim.adamw({{params = {p[1]}}, {params = {p[2], p[3], p[4]}, lr = 0.5}})
  local s0 = opt:state()
  check_eq(s0.step:item(), 0, "step 0")
  check(s0["exp_avg.1"] == nil, "no buffers before the first step")
  check_eq(s0["group2.lr"]:item(), 0.5, "group hyperparameters")
  check_close(s0["group2.params"], tensor.new{2, 3, 4}, 0, "group parameter numbers")
  train(opt, p, 1, 2)
  local s = opt:state()
  check_eq(s["step.1"]:item(), 2, "parameter 1 took 2 steps")
  check_eq(s["step.2"]:item(), 1, "parameter 2 skipped step 2 (nil grad)")
  check_eq(size(s["exp_avg_sq.3"]), "2x2x2", "buffer sizes")
  local before = s["exp_avg.1"]:clone()
  train(opt, p, 3, 3)
  check(same(s["exp_avg.1"], before), "state() is a snapshot")
  local sgd = optim.sgd(p, {momentum = 0.9})
  check(sgd:state()["momentum_buffer.1"] == nil, "no momentum buffer before a step")
  train(sgd, p, 1, 1)
  check_eq(size(sgd:state()["momentum_buffer.1"]), "4x3", "momentum buffer")
  local plain = optim.sgd(p)
  train(plain, p, 1, 1)
  check(plain:state()["momentum_buffer.1"] == nil, "no momentum buffer without momentum")
end)

test("load_state refuses bad states and changes nothing", function()
  local p = fresh_params()
  local opt = optim.adamw(p, {lr = 0.01})
  train(opt, p, 1, 3)
  local good = opt:state()
  local function with(changes)
    local s = {}
    for k, v in pairs(good) do s[k] = v end
    for k, v in pairs(changes) do if v == false then s[k] = nil else s[k] = v end end
    return function() opt:load_state(s) end
  end
  E(with{step = false}, "optim.load_state: the state has no 'step' entry")
  E(with{step = tensor.new(1.5)}, "state entry 'step' must be a whole number")
  E(with{["exp_avg.9"] = tensor.zeros(1)}, "the state has exp_avg.9 but this optimizer has 4 parameters")
  E(with{["exp_avg.1"] = tensor.zeros(3, 4)}, "state entry 'exp_avg.1' has size 3x4 but parameter 1 has size 4x3")
  E(with{["exp_avg_sq.2"] = false}, "but no exp_avg_sq.2")
  E(with{["step.2"] = tensor.zeros(1)}, "state entry 'step.2' has size 1 but must hold one number (size ())")
  E(with{["exp_avg.4"] = tensor.zeros(1)}, "state entry 'exp_avg.4' has size 1 but parameter 4 has size ()")
  E(with{["momentum_buffer.1"] = tensor.zeros(4, 3)}, "unknown state entry 'momentum_buffer.1' (is this the state of a AdamW?)")
  E(with{["group2.lr"] = tensor.new(0.1)}, "the state has 2 parameter groups, this optimizer has 1")
  E(with{["group1.lr"] = tensor.new(-1)}, "parameter group 1 of the state: lr must be a non-negative number, got -1")
  E(with{["group1.lr"] = false}, "the state has no 'group1.lr' entry")
  E(with{["group1.params"] = tensor.new{1, 2}}, "parameter group 1 of the state has 2 parameters, this optimizer's has 4")
  E(with{["group1.params"] = tensor.new{1, 3, 2, 4}}, "holds parameters 1,3,2,4, this optimizer's holds 1,2,3,4")
  E(with{["group1.momentum"] = tensor.new(0.9)}, "unknown state entry 'group1.momentum'")
  E(with{extra = tensor.new(1)}, "unknown state entry 'extra'")
  E(function() opt:load_state({step = 3}) end, "optim.load_state: argument #2 (state) must be a table of name = tensor, got number for \"step\"")
  E(function() opt:load_state("x") end, "optim.load_state: argument #2 (state) must be a table, got string")
  local sgd = optim.sgd(p, {momentum = 0.5})
  train(sgd, p, 1, 1)
  E(function() opt:load_state(sgd:state()) end, "is this the state of a AdamW?")
  E(function() sgd:load_state(good) end, "is this the state of a SGD?")
  local after = opt:state()
  for name, t in pairs(good) do check(same(t, after[name]), "failed loads changed nothing: " .. name) end
  E(function() optim.sgd(copies(p), {momentum = 0.5}):load_state(optim.sgd({p[1]}, {momentum = 0.5}):state()) end,
    "parameter group 1 of the state has 1 parameter, this optimizer's has 4")
end)

-- MARK: groups, forms, zero_grad, versions

test("parameter forms", function()
  local a, b = tensor.randn(2):requires_grad(true), tensor.randn(3):requires_grad(true)
  local module = setmetatable({}, {__index = {parameters = function(self) return {a, b} end}})
  check_eq(tostring(optim.sgd(module, {lr = 0.1})), "SGD(lr=0.1, momentum=0, dampening=0, weight_decay=0, nesterov=false, 2 params)", "an object with parameters()")
  local named = optim.sgd({zeta = a, alpha = b}, {momentum = 0.9})
  set_grads({a, b}, {tensor.ones(2), tensor.ones(3)})
  named:step()
  check_eq(size(named:state()["momentum_buffer.1"]), "3", "a table of name = tensor is taken in name order")
  local returns_named = {parameters = function() return {w = a} end}
  check_eq(tostring(optim.adamw(returns_named)), "AdamW(lr=0.001, betas=(0.9, 0.999), eps=1e-08, weight_decay=0.01, 1 param)", "parameters() returning names")
  local grouped = optim.adamw({{params = module}, {params = {tensor.zeros(1):requires_grad(true)}, weight_decay = 0, betas = {0.5, 0.6}}}, {lr = 0.1})
  check_eq(tostring(grouped), "AdamW(2 groups: (lr=0.1, betas=(0.9, 0.999), eps=1e-08, weight_decay=0.01, 2 params), (lr=0.1, betas=(0.5, 0.6), eps=1e-08, weight_decay=0, 1 param))", "groups print one by one")
  check_eq(grouped:lr(), 0.1, "lr of group 1")
  grouped:set_lr(0.2, 2)
  check_eq(grouped:lr(1), 0.1, "set_lr of one group")
  check_eq(grouped:lr(2), 0.2, "set_lr of one group")
  grouped:set_lr(0.3)
  check(grouped:lr(1) == 0.3 and grouped:lr(2) == 0.3, "set_lr of all groups")
  check(optim.is_optimizer(grouped) and not optim.is_optimizer({}) and not optim.is_optimizer(a), "is_optimizer")
end)

test("zero_grad, skipped parameters, versions", function()
  local w = tensor.ones(3):requires_grad(true)
  local u = tensor.ones(2):requires_grad(true)
  local opt = optim.sgd({w, u}, {lr = 1})
  set_grads({w}, {tensor.new{1, 2, 3}})
  opt:step()
  check_close(w, tensor.new{0, -1, -2}, 0, "updated")
  check_close(u, tensor.ones(2), 0, "a parameter without grad is skipped")
  opt:zero_grad()
  check(w.grad == nil and u.grad == nil, "zero_grad sets grads to nil")
  opt:step()
  check_close(w, tensor.new{0, -1, -2}, 0, "a step without grads changes nothing")
  -- A graph that saved w before the step refuses to backward through the updated values.
  local y = (w * w):sum()
  set_grads({w}, {tensor.ones(3)})
  opt:step()
  E(function() y:backward() end, "modified in place")
  -- Autograd still works on the updated parameters.
  opt:zero_grad()
  local z = (w * 2):sum()
  z:backward()
  check_close(w.grad, tensor.full({3}, 2), 0, "grads after steps")
end)

test("lr is the float32 value, printed short", function()
  local opt = optim.sgd({tensor.zeros(1):requires_grad(true)}, {lr = 0.1})
  check_eq(opt:lr(), 0.1, "lr() gives the shortest decimal of the float32 value")
  check_close(opt:state()["group1.lr"], 0.1, 1e-8, "the state holds the float32 value")
  opt:set_lr(1e-5)
  check_eq(opt:lr(), 1e-5, "set_lr")
end)

-- MARK: bad arguments

local w = tensor.randn(3):requires_grad(true)
local opt = optim.adamw({w})
local sch = optim.schedule{kind = "linear", lr = 1, total = 10}

local function dead(value)
  getmetatable(value).__gc(value)
  return value
end

local BAD = {
  sgd = {
    {function() optim.sgd() end, "optim.sgd: argument #1 (params) must be a value, got no value"},
    {function() optim.sgd(3) end, "optim.sgd: argument #1 (params) must be a list of tensors, param groups or an object with parameters(), got number"},
    {function() optim.sgd(w) end, "got a tensor (put it in a list: {t})"},
    {function() optim.sgd({w, "x"}) end, "optim.sgd: argument #1 (params) must be a list of tensors, got string at position 2"},
    {function() optim.sgd({}) end, "optim.sgd: got an empty parameter list"},
    {function() optim.sgd({tensor.zeros(2)}) end, "optim.sgd: parameter 1 does not require grad"},
    {function() optim.sgd({w * 2}) end, "optim.sgd: parameter 1 is not a leaf"},
    {function() optim.sgd({tensor.randn(2, 3):t():requires_grad(true)}) end, "parameter 1 is not contiguous"},
    {function() optim.sgd({w, w}) end, "parameter 2 is the same tensor as parameter 1"},
    {function() optim.sgd({w, w:detach():requires_grad(true)}) end, "parameters 1 and 2 share memory"},
    {function() optim.sgd({w}, {lr = -1}) end, "optim.sgd: argument #2 (options) must be a table whose field 'lr' is a non-negative number, got -1"},
    {function() optim.sgd({w}, {lr = "x"}) end, "field 'lr' is a number, got string"},
    {function() optim.sgd({w}, {lr = 0/0}) end, "field 'lr' is a non-negative number, got nan"},
    {function() optim.sgd({w}, {momentum = -0.5}) end, "field 'momentum' is a non-negative number, got -0.5"},
    {function() optim.sgd({w}, {dampening = 2}) end, "field 'dampening' is a number in [0, 1], got 2"},
    {function() optim.sgd({w}, {weight_decay = -1}) end, "field 'weight_decay' is a non-negative number, got -1"},
    {function() optim.sgd({w}, {nesterov = true}) end, "field 'nesterov' is false unless momentum > 0 and dampening = 0, got true"},
    {function() optim.sgd({w}, {nesterov = true, momentum = 0.9, dampening = 0.1}) end, "field 'nesterov' is false unless momentum > 0"},
    {function() optim.sgd({w}, {nesterov = 1}) end, "field 'nesterov' is a boolean, got number"},
    {function() optim.sgd({w}, {lr = 0.1, betas = {0.9, 0.99}}) end, "got unknown option 'betas'"},
    {function() optim.sgd({w}, 0.1) end, "optim.sgd: argument #2 (options) must be a table, got number"},
    {function() optim.sgd({w}, {}, 3) end, "optim.sgd: expected at most 2 arguments, got 3"},
    {function() optim.sgd({{params = {w}}, 3}) end, "must be a list of param groups (tables with params = ...), got number at position 2"},
    {function() optim.sgd({{lr = 1}}) end, "optim.sgd: argument #1 (params): param group 1 has no params field"},
    {function() optim.sgd({{params = {w}, lrr = 1}}) end, "argument #1 (params): param group 1 has unknown option 'lrr'"},
    {function() optim.sgd({{params = {w}, lr = -2}}) end, "argument #1 (params): param group 1: field 'lr' must be a non-negative number, got -2"},
    {function() optim.sgd({{params = {w}, momentum = "x"}}) end, "param group 1: field 'momentum' must be a number, got string"},
    {function() optim.sgd({{params = {w}}, {params = {}}}) end, "optim.sgd: parameter group 2 has no parameters"},
    {function() optim.sgd({{params = {w}}, {params = {w}}}) end, "parameter 2 is the same tensor as parameter 1"},
    {function() optim.sgd({{params = {w, 5}}}) end, "param group 1: field 'params' must be a list of tensors, got number at position 2"},
    {function() optim.sgd({parameters = function() error("broken model") end}) end, "argument #1 (params): its parameters() method failed"},
    {function() optim.sgd({parameters = function() return 5 end}) end, "argument #1 (params):parameters() must be a list of tensors, param groups or an object with parameters(), got number"},
    {function() optim.sgd({a = w, b = 3}) end, "must be a list of tensors or a table of name = tensor, got number for \"b\""},
    {function() optim.sgd({dead(tensor.zeros(1))}) end, "got a collected tensor at position 1"},
  },
  adamw = {
    {function() optim.adamw() end, "optim.adamw: argument #1 (params) must be a value, got no value"},
    {function() optim.adamw({"w"}) end, "optim.adamw: argument #1 (params) must be a list of tensors, got string at position 1"},
    {function() optim.adamw({tensor.zeros(1)}) end, "optim.adamw: parameter 1 does not require grad"},
    {function() optim.adamw({w}, {lr = -1e-3}) end, "optim.adamw: argument #2 (options) must be a table whose field 'lr' is a non-negative number, got -0.001"},
    {function() optim.adamw({w}, {betas = {1, 0.9}}) end, "field 'betas' is a number in [0, 1) for beta1, got 1"},
    {function() optim.adamw({w}, {betas = {0.9, -0.1}}) end, "field 'betas' is a number in [0, 1) for beta2, got -0.1"},
    {function() optim.adamw({w}, {betas = {0.9}}) end, "field 'betas' is two numbers {beta1, beta2}, got 1 number"},
    {function() optim.adamw({w}, {betas = 0.9}) end, "field 'betas' is a list of numbers, got number"},
    {function() optim.adamw({w}, {betas = {0.9, "x"}}) end, "field 'betas' is a list of numbers, got string at position 2"},
    {function() optim.adamw({w}, {eps = 0}) end, "field 'eps' is a positive number, got 0"},
    {function() optim.adamw({w}, {eps = -1}) end, "field 'eps' is a positive number, got -1"},
    {function() optim.adamw({w}, {weight_decay = -0.1}) end, "field 'weight_decay' is a non-negative number, got -0.1"},
    {function() optim.adamw({w}, {lr = 1e39}) end, "field 'lr' is a non-negative number, got inf"},
    {function() optim.adamw({w}, {momentum = 0.9}) end, "got unknown option 'momentum'"},
    {function() optim.adamw({{params = {w}, betas = {0.9, 2}}}) end, "param group 1: field 'betas' must be a number in [0, 1) for beta2, got 2"},
    {function() optim.adamw({{params = {w}, betas = {0.9}}}) end, "param group 1: field 'betas' must be two numbers {beta1, beta2}, got 1 number"},
    {function() optim.adamw({{params = {w}, betas = "x"}}) end, "param group 1: field 'betas' must be two numbers {beta1, beta2}, got string"},
    {function() optim.adamw({{params = {w}, eps = 0}}) end, "param group 1: field 'eps' must be a positive number, got 0"},
    {function() optim.adamw({{params = {w}, nesterov = true}}) end, "param group 1 has unknown option 'nesterov'"},
  },
  clip_grad_norm = {
    {function() optim.clip_grad_norm({w}) end, "optim.clip_grad_norm: argument #2 (max_norm) must be a number, got no value"},
    {function() optim.clip_grad_norm({w}, "x") end, "argument #2 (max_norm) must be a number, got string"},
    {function() optim.clip_grad_norm({w}, -1) end, "optim.clip_grad_norm: argument #2 (max_norm) must be a non-negative number, got -1"},
    {function() optim.clip_grad_norm({w}, 0/0) end, "argument #2 (max_norm) must be a non-negative number, got"},
    {function() optim.clip_grad_norm({w}, math.huge) end, "argument #2 (max_norm) must be a non-negative number, got"},
    {function() optim.clip_grad_norm(w, 1) end, "optim.clip_grad_norm: argument #1 (params) must be a list of tensors, param groups or an object with parameters(), got a tensor"},
    {function() optim.clip_grad_norm({w, 1}, 1) end, "argument #1 (params) must be a list of tensors, got number at position 2"},
    {function() optim.clip_grad_norm({w, w}, 1) end, "optim.clip_grad_norm: parameter 2 is the same tensor as parameter 1"},
    {function() optim.clip_grad_norm({{params = {w}}, {lr = 1}}, 1) end, "param group 2 has no params field"},
  },
  schedule = {
    {function() optim.schedule() end, "optim.schedule: argument #1 (options) must be a table, got no value"},
    {function() optim.schedule("cosine") end, "optim.schedule: argument #1 (options) must be a table, got string"},
    {function() optim.schedule{lr = 1, total = 10} end, "argument #1 (options) must be a table with kind = \"cosine\", \"linear\" or \"constant\""},
    {function() optim.schedule{kind = "cosin", lr = 1, total = 10} end, "field 'kind' is \"cosine\", \"linear\" or \"constant\", got \"cosin\""},
    {function() optim.schedule{kind = 1, lr = 1, total = 10} end, "field 'kind' is a string, got number"},
    {function() optim.schedule{kind = "cosine", total = 10} end, "argument #1 (options) must be a table with lr = a number"},
    {function() optim.schedule{kind = "cosine", lr = -1, total = 10} end, "field 'lr' is a non-negative number, got -1"},
    {function() optim.schedule{kind = "cosine", lr = 1} end, "field 'total' is the step at which the cosine decay ends (an integer), got nil"},
    {function() optim.schedule{kind = "linear", lr = 1, total = 5, warmup = 6} end, "field 'total' is an integer >= 1 and >= warmup (6), got 5"},
    {function() optim.schedule{kind = "linear", lr = 1, total = 0} end, "field 'total' is an integer >= 1"},
    {function() optim.schedule{kind = "linear", lr = 1, total = 5, warmup = -1} end, "field 'warmup' is a non-negative integer, got -1"},
    {function() optim.schedule{kind = "linear", lr = 1, total = 5, warmup = 1.5} end, "field 'warmup' is an integer, got 1.5"},
    {function() optim.schedule{kind = "cosine", lr = 1, total = 5, min_lr = 2} end, "field 'min_lr' is a number in [0, lr], got 2"},
    {function() optim.schedule{kind = "cosine", lr = 1, total = 5, min_lr = -1} end, "field 'min_lr' is a number in [0, lr], got -1"},
    {function() optim.schedule{kind = "constant", lr = 1, min_lr = 0.5} end, "field 'min_lr' is 0 for a constant schedule, got 0.5"},
    {function() optim.schedule{kind = "cosine", lr = 1, total = 5, steps = 3} end, "got unknown option 'steps'"},
  },
  is_optimizer = {
    {function() optim.is_optimizer() end, "optim.is_optimizer: argument #1 (value) must be a value, got no value"},
  },
  step = {
    {function() opt.step() end, "optim.step: argument #1 (self) must be a value, got no value"},
    {function() optim.step(w) end, "optim.step: argument #1 (self) must be an optimizer, got tensor"},
    {function() optim.step(sch) end, "optim.step: argument #1 (self) must be an optimizer, got userdata"},
    {function() opt:step(1) end, "optim.step: expected at most 1 argument, got 2"},
    {function() dead(optim.sgd({tensor.zeros(1):requires_grad(true)})):step() end, "optim.step: argument #1 (self) must be a live optimizer, got one that was already collected"},
  },
  zero_grad = {
    {function() optim.zero_grad({}) end, "optim.zero_grad: argument #1 (self) must be an optimizer, got table"},
    {function() opt:zero_grad(true) end, "optim.zero_grad: expected at most 1 argument, got 2"},
  },
  lr = {
    {function() optim.lr(3) end, "optim.lr: argument #1 (self) must be an optimizer, got number"},
    {function() opt:lr(2) end, "optim.lr: argument #2 (group) must be a parameter group in 1..1, got 2"},
    {function() opt:lr(0) end, "optim.lr: argument #2 (group) must be a parameter group in 1..1, got 0"},
    {function() opt:lr("1") end, "optim.lr: argument #2 (group) must be an integer, got string"},
    {function() opt:lr(1.5) end, "optim.lr: argument #2 (group) must be an integer, got 1.5"},
  },
  set_lr = {
    {function() opt:set_lr() end, "optim.set_lr: argument #2 (lr) must be a number, got no value"},
    {function() opt:set_lr(-1) end, "optim.set_lr: argument #2 (lr) must be a non-negative number, got -1"},
    {function() opt:set_lr(0/0) end, "optim.set_lr: argument #2 (lr) must be a non-negative number"},
    {function() opt:set_lr(1e39) end, "optim.set_lr: lr must be a non-negative number, got inf"},
    {function() opt:set_lr(0.1, 2) end, "optim.set_lr: argument #3 (group) must be a parameter group in 1..1, got 2"},
    {function() optim.set_lr(sch, 0.1) end, "optim.set_lr: argument #1 (self) must be an optimizer"},
  },
  state = {
    {function() optim.state() end, "optim.state: argument #1 (self) must be a value, got no value"},
    {function() optim.state(sch) end, "optim.state: argument #1 (self) must be an optimizer"},
    {function() opt:state(1) end, "optim.state: expected at most 1 argument, got 2"},
  },
  load_state = {
    {function() opt:load_state() end, "optim.load_state: argument #2 (state) must be a table, got no value"},
    {function() opt:load_state({step = "x"}) end, "argument #2 (state) must be a table of name = tensor, got string for \"step\""},
    {function() opt:load_state({[1] = tensor.zeros(1)}) end, "argument #2 (state) must be a table of name = tensor, got a number key"},
    {function() opt:load_state({}) end, "optim.load_state: the state has no 'step' entry"},
    {function() optim.load_state(w, {}) end, "optim.load_state: argument #1 (self) must be an optimizer, got tensor"},
  },
  lr_at = {
    {function() sch:lr_at() end, "optim.lr_at: argument #2 (step) must be an integer, got no value"},
    {function() sch:lr_at(-1) end, "optim.lr_at: argument #2 (step) must be a step >= 0 (the first step is 1), got -1"},
    {function() sch:lr_at(1.5) end, "optim.lr_at: argument #2 (step) must be an integer, got 1.5"},
    {function() sch:lr_at(2^60) end, "must be an integer below 2^53 in magnitude"},
    {function() optim.lr_at(opt, 1) end, "optim.lr_at: argument #1 (self) must be a schedule, got userdata"},
    {function() sch(-3) end, "optim.__call: argument #2 (step) must be a step >= 0 (the first step is 1), got -3"},
    {function() sch("x") end, "optim.__call: argument #2 (step) must be an integer, got string"},
  },
  scale = {
    {function() optim.scale(opt) end, "optim.scale: argument #1 (self) must be a schedule, got userdata"},
    {function() sch:scale(1) end, "optim.scale: expected at most 1 argument, got 2"},
  },
  set_scale = {
    {function() sch:set_scale() end, "optim.set_scale: argument #2 (scale) must be a number, got no value"},
    {function() sch:set_scale(0) end, "optim.set_scale: argument #2 (scale) must be a positive number, got 0"},
    {function() sch:set_scale(0 / 0) end, "optim.set_scale: argument #2 (scale) must be a positive number"},
    {function() sch:set_scale(-1) end, "must be a positive number, got -1"},
    {function() optim.set_scale(opt, 1) end, "optim.set_scale: argument #1 (self) must be a schedule"},
  },
  apply = {
    {function() sch:apply(w, 1) end, "optim.apply: argument #2 (optimizer) must be an optimizer, got tensor"},
    {function() sch:apply(opt) end, "optim.apply: argument #3 (step) must be an integer, got no value"},
    {function() sch:apply(opt, -1) end, "optim.apply: argument #3 (step) must be a step >= 0"},
    {function() optim.apply(opt, opt, 1) end, "optim.apply: argument #1 (self) must be a schedule, got userdata"},
    {function() dead(optim.schedule{kind = "constant", lr = 1}):apply(opt, 1) end, "must be a live schedule, got one that was already collected"},
  },
}

test("every optim function has bad-argument checks", function()
  for _, name in ipairs({"sgd", "adamw", "clip_grad_norm", "schedule", "is_optimizer", "step", "zero_grad", "lr",
                         "set_lr", "state", "load_state", "lr_at", "apply"}) do
    check(BAD[name] ~= nil, "BAD has an entry for optim." .. name)
  end
  for name, f in pairs(optim) do
    check(BAD[name] ~= nil, "BAD has an entry for optim." .. name)
  end
end)

for name, cases in pairs(BAD) do
  test("bad arguments: optim." .. name, function()
    for _, c in ipairs(cases) do E(c[1], c[2], "optim." .. name) end
  end)
end

test("bad calls leave optimizers usable", function()
  set_grads({w}, {tensor.ones(3)})
  local before = w:clone()
  opt:step()
  check(not same(w, before), "the optimizer still steps after all those errors")
  check_eq(tostring(opt), "AdamW(lr=0.001, betas=(0.9, 0.999), eps=1e-08, weight_decay=0.01, 1 param)", "tostring")
  check_eq(tostring(optim.sgd({w}, {lr = 0.5, momentum = 0.9, dampening = 0.1, weight_decay = 1e-4})),
           "SGD(lr=0.5, momentum=0.9, dampening=0.1, weight_decay=0.0001, nesterov=false, 1 param)", "tostring SGD")
end)

-- ckpt.lua: checkpoint managers and rollback policies: a save/load round trip that continues bit for bit (model,
-- AdamW state, schedule, the random generator and dropout generators), retention and approvals, policies, a
-- small GPT-2 training loop where a poisoned batch (NaN loss) triggers a rollback and training goes on, the
-- max_rollbacks limit, manual rollbacks, the rng state functions, and every function with odd arguments.

local function tmpdir()
  local p = os.tmpname()
  os.remove(p)
  return p
end

local function exists(path)
  local f = io.open(path, "r")
  if f then f:close() return true end
  return false
end

local VOCAB, T = 32, 8
tensor.manual_seed(123)
local DATA = tensor.randint(0, VOCAB, {24, T})

local function setup(seed, dropout)
  tensor.manual_seed(seed)
  local m = nn.gpt2{vocab = VOCAB, ctx = 16, dim = 16, layers = 1, heads = 2, dropout = dropout or 0}
  local opt = optim.adamw(m:parameters(), {lr = 3e-3})
  local sched = optim.schedule{kind = "cosine", lr = 3e-3, warmup = 2, total = 40}
  return m, opt, sched
end

-- The rows of batch `k` (4 rows, cycling through the data), without the rows in `skip`.
local function batch_rows(pos, skip)
  local rows = {}
  while #rows < 4 do
    local r = (pos % 24) + 1
    pos = pos + 1
    if not skip[r] then rows[#rows + 1] = r end
  end
  return rows, pos
end

-- The batch of `rows`: ids, mask, and a factor on the loss that is NaN when a row is poisoned (as a corrupt
-- example or an overflow would make it).
local function batch(rows, poison)
  local ids = DATA:index_select(1, tensor.new(rows))
  local factor = 1
  for _, r in ipairs(rows) do if poison and poison[r] then factor = 0 / 0 end end
  return ids, tensor.ones(#rows, T), factor
end

-- One step: forward, backward, clip; returns the loss (a number) and the grad norm; the update is left to the
-- caller (after the policy has seen the loss).
local function forward_backward(m, opt, sched, step, ids, mask, factor)
  sched:apply(opt, step)
  opt:zero_grad()
  -- a random mask from the state's generator, so that the generator's state matters for the curve
  local keep = tensor.rand(mask:size(1), mask:size(2)):gt(0.2)
  local loss = m:loss(ids, mask * keep) * (factor or 1)
  loss:backward()
  local norm = optim.clip_grad_norm(m:parameters(), 1.0)
  return loss:item(), norm
end

test("save and load continue a run bit for bit (dropout, rng, AdamW, schedule)", function()
  local dir = tmpdir()
  local m, opt, sched = setup(7, 0.1)
  local mgr = ckpt.manager{dir = dir}
  local losses, pos = {}, 0
  for step = 1, 10 do
    local rows
    rows, pos = batch_rows(pos, {})
    local ids, mask = batch(rows)
    losses[step] = forward_backward(m, opt, sched, step, ids, mask)
    opt:step()
    if step == 5 then
      local e = mgr:save{step = 5, model = m, optimizer = opt, schedule = sched, metrics = {loss = losses[5]},
                         data_position = {pos = pos}}
      check_eq(e.step, 5, "entry step")
      check(e.latest and not e.superseded, "the new checkpoint is the latest")
    end
  end
  -- A fresh process would make new objects: do the same with another seed, then load.
  local m2, opt2, sched2 = setup(99, 0.1)
  tensor.manual_seed(4242)
  local mgr2 = ckpt.manager{dir = dir}
  local info = mgr2:load("latest", {model = m2, optimizer = opt2, schedule = sched2})
  check_eq(info.step, 5, "loaded step")
  check_eq(info.data_position.pos, 20, "data position")
  check_eq(info.lr_scale, 1, "lr scale")
  local pos2 = info.data_position.pos
  local same = true
  for step = 6, 10 do
    local rows
    rows, pos2 = batch_rows(pos2, {})
    local ids, mask = batch(rows)
    local l = forward_backward(m2, opt2, sched2, step, ids, mask)
    opt2:step()
    if l ~= losses[step] then same = false; check(false, ("step %d: %a vs %a"):format(step, l, losses[step])) end
  end
  check(same, "losses after the load equal the uninterrupted ones exactly")
  -- the folder is a Hugging Face model folder
  local loaded = nn.load(mgr2:path(5))
  check(loaded:num_params() == m:num_params(), "nn.load reads a checkpoint folder")
  for _, f in ipairs({"config.json", "model.safetensors", "optimizer.safetensors", "scheduler.json", "rng_state.json", "trainer_state.json"}) do
    check(exists(dir .. "/checkpoint-5/" .. f), "checkpoint file " .. f)
  end
  check(exists(dir .. "/checkpoints.json"), "the index")
  -- load checks before it changes anything: another model shape is refused and the model keeps its values
  local other = nn.gpt2{vocab = VOCAB, ctx = 16, dim = 8, layers = 1, heads = 2}
  local before = other:parameters()[1]:clone()
  check_error(function() mgr2:load(5, {model = other}) end, "does not fit this model")
  check(other:parameters()[1]:eq(before):sum():item() == before:numel(), "the refused load changed nothing")
  check_error(function() mgr2:load(7, {model = m2}) end, "no checkpoint of step 7")
end)

test("any nn module saves and loads (parameters by name, no config.json)", function()
  local dir = tmpdir()
  tensor.manual_seed(3)
  local mlp = nn.sequential{nn.linear(4, 8), nn.gelu(), nn.dropout(0.5), nn.linear(8, 2)}
  local opt = optim.sgd(mlp:parameters(), {lr = 0.1, momentum = 0.9})
  local x = tensor.randn(5, 4)
  local function step() opt:zero_grad(); mlp(x):pow(2):mean():backward(); opt:step(); return mlp(x):sum():item() end
  step()
  local mgr = ckpt.manager{dir = dir}
  mgr:save{step = 1, model = mlp, optimizer = opt}
  local a = {step(), step()}
  check(not exists(dir .. "/checkpoint-1/config.json") and exists(dir .. "/checkpoint-1/model.safetensors"), "parameters only")
  mgr:load(1, {model = mlp, optimizer = opt})
  local b = {step(), step()}
  check(a[1] == b[1] and a[2] == b[2], "the sequential with dropout continues bit for bit")
  check_error(function() mgr:load(1, {model = mlp, schedule = optim.schedule{kind = "constant", lr = 1}}) end,
              "holds no scheduler.json")
  local adam = optim.adamw(mlp:parameters())
  check_error(function() mgr:load(1, {optimizer = adam}) end, "optimizer.safetensors")
end)

test("retention keeps the newest, keep_last, keep_best and approved checkpoints", function()
  local dir = tmpdir()
  local m, opt = setup(1)
  local mgr = ckpt.manager{dir = dir, keep_last = 2, keep_best = 1, metric = "eval_loss", mode = "min"}
  local evals = {5, 1, 4, 3, 6, 7}
  for i, v in ipairs(evals) do
    mgr:save{step = i * 10, model = m, optimizer = opt, metrics = {eval_loss = v}}
    if i == 3 then mgr:approve(30, {by = "alice", note = "looks right"}) end
  end
  local steps = {}
  for _, e in ipairs(mgr:list()) do steps[#steps + 1] = e.step end
  check_eq(table.concat(steps, ","), "20,30,50,60", "best (20), approved (30), last two (50, 60)")
  check(not exists(dir .. "/checkpoint-10") and not exists(dir .. "/checkpoint-40"), "the others are removed")
  check_eq(mgr:best().step, 20, "best by min eval_loss")
  check_eq(mgr:latest().step, 60, "latest")
  check_eq(mgr:promoted().step, 30, "promoted = newest approved")
  local e30 = mgr:list()[2]
  check(e30.approved and e30.approval.by == "alice" and e30.approval.note == "looks right", "approval recorded")
  -- persisted: a new manager on the folder sees the same
  local again = ckpt.manager{dir = dir, keep_last = 2, keep_best = 1, metric = "eval_loss", mode = "min"}
  check_eq(again:promoted().step, 30, "approval persisted")
  check_eq(#again:list(), 4, "index persisted")
  check_eq(again:path("best"), dir .. "/checkpoint-20", "path of best")
  check(tostring(again):find("4 checkpoints, latest 60, best 20", 1, true) ~= nil, tostring(again))
  -- mode max ranks the other way
  local dir2 = tmpdir()
  local mx = ckpt.manager{dir = dir2, keep_last = 1, keep_best = 1, metric = "acc", mode = "max"}
  for i, v in ipairs({0.2, 0.9, 0.5}) do mx:save{step = i, model = m, metrics = {acc = v}} end
  local s = {}
  for _, e in ipairs(mx:list()) do s[#s + 1] = e.step end
  check_eq(table.concat(s, ","), "2,3", "max: best 2, latest 3")
end)

test("policies decide: non-finite loss and metrics, regressions with tolerance", function()
  local p = ckpt.policy{on_regression = {metric = "eval_loss", tolerance = 0.1}, lr_factor = 0.25, max_rollbacks = 2}
  check(tostring(p):find("mode=min", 1, true) ~= nil, "losses default to mode min: " .. tostring(p))
  check_eq(p:check{step = 1, loss = 2.0}.action, "ok")
  check_eq(p:check{step = 2, loss = tensor.new{1.5}:sum()}.action, "ok", "a 0-dim tensor loss")
  local d = p:check{step = 3, loss = 0 / 0, batch_rows = {4, 9}}
  check_eq(d.action, "rollback")
  check_eq(d.kind, "nonfinite")
  check(d.cause:find("loss is nan at step 3", 1, true) ~= nil, d.cause)
  check_eq(table.concat(d.batch_rows, ","), "4,9")
  check_eq(d.lr_factor, 0.25)
  check_eq(d.max_rollbacks, 2)
  local g = p:check{step = 4, loss = 1, metrics = {grad_norm = math.huge}}
  check(g.action == "rollback" and g.cause:find("grad_norm is inf", 1, true) ~= nil, "a non-finite metric")
  check_eq(p:check{step = 5, loss = 1, metrics = {eval_loss = 1.0}}.action, "ok", "first eval sets the best")
  check_eq(p:check{step = 6, loss = 1, metrics = {eval_loss = 1.05}}.action, "ok", "within tolerance")
  check_eq(p:check{step = 7, loss = 1, metrics = {eval_loss = 0.8}}.action, "ok", "a new best")
  check_eq(select(1, p:best_metric()), 0.8)
  local r = p:check{step = 8, loss = 1, metrics = {eval_loss = 0.95}}
  check(r.action == "rollback" and r.kind == "regression" and r.best == 0.8 and r.value == 0.95, "regression past tolerance")
  check(r.cause:find("eval_loss regressed to 0.95 at step 8 (best 0.8 at step 7", 1, true) ~= nil, r.cause)
  local acc = ckpt.policy{on_nonfinite = false, on_regression = {metric = "rewards/accuracies"}}
  check_eq(acc:check{step = 1, loss = 0 / 0, metrics = {["rewards/accuracies"] = 0.7}}.action, "ok", "on_nonfinite=false")
  check_eq(acc:check{step = 2, metrics = {["rewards/accuracies"] = 0.6}}.action, "rollback", "accuracies default to max")
end)

-- The training loop a trainer will run: save every 4 steps, check every step, roll back on a NaN.
local function train_with_rollback(dir, opts)
  local m, opt, sched = setup(3)
  local r = run.start{name = "nan-test", dir = dir .. "/runs", config = {lr = 3e-3}}
  local mgr = ckpt.manager{dir = dir .. "/ckpt", keep_last = 3, metric = "loss", mode = "min", run = r}
  local pol = ckpt.policy{lr_factor = 0.5, max_rollbacks = opts.max_rollbacks or 3}
  local poison = opts.poison
  local pos, step = 0, 0
  local skip = {}
  local rollbacks, losses = {}, {}
  mgr:save{step = 0, model = m, optimizer = opt, schedule = sched, data_position = {pos = 0}}
  while step < opts.steps do
    step = step + 1
    local rows
    rows, pos = batch_rows(pos, skip)
    local ids, mask, factor = batch(rows, poison)
    local loss, norm = forward_backward(m, opt, sched, step, ids, mask, factor)
    local d = pol:check{step = step, loss = loss, metrics = {grad_norm = norm}, batch_rows = rows}
    if d.action == "rollback" then
      local info = mgr:rollback(d, {model = m, optimizer = opt, schedule = sched})
      rollbacks[#rollbacks + 1] = info
      step = info.step
      pos = info.data_position.pos
      if opts.skip ~= false then for _, row in ipairs(info.skipped_rows) do skip[row] = true end end
    else
      opt:step()
      losses[step] = loss
      r:log{step = step, loss = loss, grad_norm = norm, learning_rate = opt:lr()}
      if step % 4 == 0 then
        mgr:save{step = step, model = m, optimizer = opt, schedule = sched, metrics = {loss = loss}, data_position = {pos = pos}}
      end
    end
  end
  return {m = m, opt = opt, sched = sched, mgr = mgr, run = r, rollbacks = rollbacks, losses = losses, step = step}
end

test("a poisoned batch (NaN loss) rolls back to the last good checkpoint and training continues", function()
  local dir = tmpdir()
  -- rows 1..24 in order, 4 a step: row 23 is in step 6's batch (rows 21..24)
  local out = train_with_rollback(dir, {steps = 12, poison = {[23] = true}})
  check_eq(#out.rollbacks, 1, "one rollback")
  local rb = out.rollbacks[1]
  check_eq(rb.step, 4, "back to the checkpoint of step 4")
  check(rb.cause:find("loss is nan at step 6", 1, true) ~= nil, rb.cause)
  check_eq(table.concat(rb.skipped_rows, ","), "21,22,23,24", "the batch's rows are reported")
  check_eq(rb.lr_scale, 0.5, "lr scale halved")
  check_eq(out.step, 12, "training reached its last step")
  for s = 1, 12 do check(out.losses[s] and out.losses[s] == out.losses[s], "finite loss at step " .. s) end
  check_close(out.opt:lr(), out.sched:lr_at(12), 1e-7, "the optimizer's lr follows the scaled schedule")
  check_eq(out.sched:scale(), 0.5, "sched:scale()")
  check(tostring(out.sched):find("scale=0.5", 1, true) ~= nil, tostring(out.sched))
  check_close(out.sched:lr_at(12) / optim.schedule{kind = "cosine", lr = 3e-3, warmup = 2, total = 40}:lr_at(12), 0.5, 1e-12,
              "the schedule is scaled by lr_factor")
  local events = out.mgr:rollbacks()
  check_eq(#events, 1)
  check_eq(events[1].trigger, "nonfinite")
  check_eq(events[1].to_step, 4)
  check_eq(table.concat(events[1].batch_rows, ","), "21,22,23,24")
  -- the run's events name the rollback with its cause and batch
  out.run:finish()
  local f = io.open(out.run:dir() .. "/events.jsonl")
  local text = f:read("a")
  f:close()
  check(text:find('"kind": "rollback"', 1, true) and text:find('"batch_rows": [21, 22, 23, 24]', 1, true), text)
  check(text:find('"kind": "checkpoint"', 1, true) ~= nil, "checkpoint events")
  -- a resumed manager knows the scale: loading the rolled-back checkpoint resumes at half the lr
  local m, opt, sched = setup(5)
  local mgr = ckpt.manager{dir = dir .. "/ckpt"}
  local info = mgr:load("latest", {model = m, optimizer = opt, schedule = sched})
  check_eq(info.step, 12)
  check_eq(info.lr_scale, 0.5, "the lr scale survives in later checkpoints")
  check_eq(sched:lr_at(12), out.sched:lr_at(12))
end)

test("after max_rollbacks the rollback is a clear error", function()
  local dir = tmpdir()
  -- without skipping the poisoned rows the same batch fails again and again
  local ok, err = pcall(train_with_rollback, dir, {steps = 12, poison = {[23] = true}, skip = false, max_rollbacks = 2})
  check(not ok, "stopped")
  err = tostring(err)
  check(err:find("ckpt.rollback: giving up: 2 rollbacks already (max_rollbacks = 2) and now loss is nan at step 6", 1, true) ~= nil, err)
  local mgr = ckpt.manager{dir = dir .. "/ckpt"}
  check_eq(#mgr:rollbacks(), 2, "two rollbacks were made")
end)

test("manual rollback supersedes newer checkpoints; a new save of the same step replaces them", function()
  local dir = tmpdir()
  local m, opt, sched = setup(11)
  local mgr = ckpt.manager{dir = dir}
  for s = 1, 3 do
    tensor.no_grad(function() m:parameters()[1]:fill(s) end)  -- parameters tell the checkpoints apart
    mgr:save{step = s, model = m, optimizer = opt, schedule = sched}
  end
  local info = mgr:rollback(1, {model = m, optimizer = opt, schedule = sched, lr_factor = 0.1})
  check_eq(info.step, 1)
  check_eq(m:parameters()[1]:max():item(), 1, "restored the step-1 values")
  check_close(info.lr_scale, 0.1, 1e-12)
  check_eq(mgr:latest().step, 1, "the latest is the rollback target")
  -- the newer ones are gone (neither best nor approved)
  check_eq(#mgr:list(), 1)
  tensor.no_grad(function() m:parameters()[1]:fill(7) end)
  mgr:save{step = 2, model = m, optimizer = opt, schedule = sched}
  check_eq(mgr:latest().step, 2)
  check_eq(mgr:rollbacks()[1].trigger, "manual")
  -- an approved checkpoint survives a rollback past it, set aside when its step is saved again
  mgr:approve(2, {by = "bob"})
  mgr:rollback(1, {model = m})
  local l = mgr:list()
  check(#l == 2 and l[2].superseded and l[2].approved, "approved and superseded")
  mgr:save{step = 2, model = m}
  l = mgr:list()
  check_eq(#l, 3, "the approved one was set aside, not replaced")
  check(exists(dir .. "/checkpoint-2-superseded-1/model.safetensors"), "set aside as checkpoint-2-superseded-1")
  check_eq(mgr:promoted().path, dir .. "/checkpoint-2-superseded-1")
end)

test("opening a folder recovers from an interrupted save", function()
  local dir = tmpdir()
  local m = setup(2)
  local mgr = ckpt.manager{dir = dir}
  mgr:save{step = 1, model = m}
  mgr:save{step = 2, model = m}
  -- as a kill leaves it: a temporary folder, and a finished folder the index does not know
  os.execute("mkdir -p " .. dir .. "/.tmp-checkpoint-3-1-x && cp -r " .. dir .. "/checkpoint-2 " .. dir .. "/checkpoint-9")
  os.execute("sed -i 's/\"global_step\": 2/\"global_step\": 9/' " .. dir .. "/checkpoint-9/trainer_state.json")
  local again = ckpt.manager{dir = dir}
  check(not exists(dir .. "/.tmp-checkpoint-3-1-x"), "the temporary folder is removed")
  check_eq(again:latest().step, 9, "the finished folder is taken into the index")
  os.execute("rm -rf " .. dir .. "/checkpoint-9")
  local third = ckpt.manager{dir = dir}
  check_eq(third:latest().step, 2, "an entry whose folder is gone is dropped")
end)

test("tensor.get_rng_state and set_rng_state repeat the numbers", function()
  tensor.manual_seed(5)
  local s = tensor.get_rng_state()
  check_eq(s:numel(), 16)
  local a = tensor.randn(5)
  tensor.rand(3)
  tensor.set_rng_state(s)
  check(tensor.randn(5):eq(a):sum():item() == 5, "same numbers after set_rng_state")
  check_error(function() tensor.set_rng_state(tensor.zeros(16)) end, "all zeros")
  check_error(function() tensor.set_rng_state(tensor.zeros(3)) end, "tensor.set_rng_state: argument #1 (state)")
  check_error(function() tensor.set_rng_state(tensor.full({16}, 0.5)) end, "whole numbers")
end)

local function odd_values()
  local dead = ckpt.policy{}
  getmetatable(dead).__gc(dead)
  return {
    {"nil", nil}, {"string", "x"}, {"true", true}, {"empty table", {}}, {"list", {2, 3}}, {"-1", -1}, {"0", 0},
    {"1.5", 1.5}, {"nan", 0 / 0}, {"inf", math.huge}, {"function", print}, {"tensor", tensor.new{1, 2}},
    {"options", {dir = 3, step = -1, by = false, metric = 1}}, {"released policy", dead}, {"module", nn.relu()},
  }
end

test("sweep: every ckpt function and method with odd values names itself in its error", function()
  local pool = odd_values()
  local all_ok = true
  local function sweep(label, f, ...)
    local ok, err = pcall(f, ...)
    if not ok and not tostring(err):find("ckpt." .. label, 1, true) then
      all_ok = false
      check(false, "ckpt." .. label .. ": error does not name it: " .. tostring(err))
    end
  end
  for _, name in ipairs({"manager", "policy", "is_manager", "is_policy"}) do
    sweep(name, ckpt[name])
    for _, a in ipairs(pool) do
      sweep(name, ckpt[name], a[2])
      for _, b in ipairs(pool) do sweep(name, ckpt[name], a[2], b[2]) end
    end
  end
  local mgr = ckpt.manager{dir = tmpdir()}
  local pol = ckpt.policy{}
  for _, obj in ipairs({mgr, pol}) do
    for name, f in pairs(getmetatable(obj).__methods) do
      for _, a in ipairs(pool) do
        sweep(name, f, obj, a[2])
        for _, b in ipairs(pool) do sweep(name, f, obj, a[2], b[2]) end
      end
      -- a method called on the wrong object
      sweep(name, f, nn.relu())
    end
  end
  check(all_ok, "sweep")
  check_error(function() ckpt.manager{dir = tmpdir(), keep_last = 0} end, "ckpt.manager: argument #1 (options) must be a table whose field 'keep_last' is an integer >= 1, got 0")
  check_error(function() ckpt.manager{dir = tmpdir(), mode = "up"} end, "\"max\" or \"min\"")
  check_error(function() ckpt.manager{dir = tmpdir(), metrik = "x"} end, "unknown option 'metrik'")
  check_error(function() ckpt.policy{lr_factor = 2} end, "ckpt.policy: lr_factor must be a number in (0, 1], got 2.0")
  check_error(function() ckpt.policy{on_regression = {tolerance = 1}} end, "metric = a metric name")
  check_error(function() mgr:save{step = 1, model = {}} end, "ckpt.save: argument #2 (checkpoint) must be a table whose field 'model' is an nn module")
  check_error(function() mgr:save{step = 1, metrics = {loss = print}} end, "metrics.loss")
  check_error(function() mgr:load("latest", {}) end, "holds no checkpoint yet")
  check_error(function() mgr:load("newest") end, "a step, \"latest\" or \"best\"")
  check_error(function() mgr:rollback({action = "ok"}) end, "there is nothing to roll back")
  check_error(function() mgr:rollback(pol:check{step = 1, loss = 0 / 0}) end, "no checkpoint at or before step 1 to roll back to")
  check_error(function() mgr:approve(3, {by = "x"}) end, "no checkpoint of step 3")
end)

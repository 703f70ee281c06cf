-- run.lua: run records: the folder and its manifest (config, seed, script and data hashes, version, times,
-- status), metrics.jsonl and events.jsonl lines, name collisions, resume, NaN values, finish, and every function
-- with odd arguments.

local function tmpdir()
  local p = os.tmpname()
  os.remove(p)
  return p
end

local function read(path)
  local f = assert(io.open(path, "r"))
  local s = f:read("a")
  f:close()
  return s
end

local function lines(path)
  local out = {}
  for l in read(path):gmatch("[^\n]+") do out[#out + 1] = l end
  return out
end

test("run.start makes the folder, the manifest and the logs", function()
  local root = tmpdir()
  local data_file = root .. "-data.jsonl"
  data.write_jsonl(data_file, {{prompt = "a", chosen = "b", rejected = "c"}})
  local r = run.start{name = "exp", dir = root, config = {beta = 0.1, lr = 5e-6, loss = "sigmoid"}, seed = 42,
                      script = TEST_DIR .. "/run.lua"}
  check_eq(r:name(), "exp")
  check_eq(r:dir(), root .. "/exp")
  check(not r:resumed())
  local sha = r:add_data(data_file)
  check_eq(#sha, 64, "sha256 in hex")
  r:log{step = 1, loss = 0.69, ["rewards/margins"] = 0.01}
  r:log{step = 2, loss = tensor.new{0.5}:sum(), grad_norm = 0 / 0, note = "ok"}
  r:event{kind = "eval", step = 2, accuracy = 0.75}
  local m = r:manifest()
  check_eq(m.name, "exp")
  check_eq(m.status, "running")
  check_eq(m.seed, 42)
  check_eq(m.config.beta, 0.1)
  check_eq(m.config.loss, "sigmoid")
  check_eq(m.tycho_version, "0.1.0")
  check_eq(m.data[1].sha256, sha)
  check_eq(m.data[1].bytes, #read(data_file))
  check(m.script.path:find("run.lua", 1, true) ~= nil and #m.script.sha256 == 64, "script and its hash")
  check(type(m.start_time) == "string" and m.start_time:match("^%d%d%d%d%-%d%d%-%d%dT"), "ISO start time")
  check(m.end_time == data.null, "no end time yet")
  r:finish()
  local m2 = r:manifest()
  check_eq(m2.status, "finished")
  check(type(m2.end_time) == "string", "end time")
  -- the files on disk
  local ml = lines(root .. "/exp/metrics.jsonl")
  check_eq(#ml, 2)
  check(ml[1]:find('"step": 1', 1, true) and ml[1]:find('"loss": 0.69', 1, true) and ml[1]:find('"rewards/margins": 0.01', 1, true), ml[1])
  check(ml[2]:find('"grad_norm": "NaN"', 1, true) and ml[2]:find('"loss": 0.5', 1, true), ml[2])
  local ev = lines(root .. "/exp/events.jsonl")
  check(#ev == 1 and ev[1]:find('"kind": "eval"', 1, true) and ev[1]:find('"accuracy": 0.75', 1, true), ev[1])
  check_error(function() r:log{step = 3, loss = 1} end, "run.log: cannot log: the run exp is finished")
  -- the script's git commit, when the tests run inside a repository
  if m.git ~= data.null then check_eq(#m.git.commit, 40, "a commit id") end
end)

test("names never collide; resume continues a run", function()
  local root = tmpdir()
  local a = run.start{name = "x", dir = root}
  local b = run.start{name = "x", dir = root}
  local c = run.start{name = "x", dir = root}
  check_eq(b:name(), "x-2")
  check_eq(c:name(), "x-3")
  check_error(function() run.start{name = "x", dir = root, resume = true} end, "being written by another process")
  a:log{step = 1, loss = 2}
  a:finish("failed")
  check_eq(a:manifest().status, "failed")
  local again = run.start{name = "x", dir = root, resume = true}
  check(again:resumed(), "resumed")
  check_eq(again:name(), "x")
  again:log{step = 2, loss = 1}
  check_eq(#again:manifest().resumed, 1)
  check_eq(again:manifest().status, "running")
  check_eq(#lines(root .. "/x/metrics.jsonl"), 2, "appends to the same file")
  local d = run.start{dir = root}
  check(d:name():match("^run%-%d+%-%d+") ~= nil, "a default name from the time: " .. d:name())
  check(tostring(again):find("Run(x, " .. root .. "/x)", 1, true) ~= nil, tostring(again))
  check(run.is_run(again) and not run.is_run({}), "is_run")
end)

test("a checkpoint manager records its events into a run", function()
  local root = tmpdir()
  local r = run.start{name = "with-ckpt", dir = root}
  local m = nn.gpt2{vocab = 16, ctx = 8, dim = 8, layers = 1, heads = 2}
  local mgr = ckpt.manager{dir = root .. "/ck", run = r}
  mgr:save{step = 3, model = m, metrics = {loss = 1.5}}
  mgr:approve(3, {by = "carol", note = "fine"})
  local ev = lines(r:dir() .. "/events.jsonl")
  check_eq(#ev, 2)
  check(ev[1]:find('"kind": "checkpoint"', 1, true) and ev[1]:find('"step": 3', 1, true), ev[1])
  check(ev[2]:find('"kind": "approval"', 1, true) and ev[2]:find('"by": "carol"', 1, true), ev[2])
end)

local function odd_values()
  return {
    {"nil", nil}, {"string", "x"}, {"true", true}, {"empty table", {}}, {"list", {2, 3}}, {"-1", -1}, {"0", 0},
    {"1.5", 1.5}, {"nan", 0 / 0}, {"function", print}, {"tensor", tensor.new{1, 2}},
    {"options", {name = "a/b", dir = 3, step = -1, kind = 4}}, {"module", nn.relu()},
  }
end

test("sweep: every run function and method with odd values names itself in its error", function()
  local pool = odd_values()
  local all_ok = true
  local function sweep(label, f, ...)
    local ok, err = pcall(f, ...)
    if not ok and not tostring(err):find("run." .. label, 1, true) then
      all_ok = false
      check(false, "run." .. label .. ": error does not name it: " .. tostring(err))
    end
  end
  -- run.start with odd values would make folders in the working directory; it is checked on its options below.
  for _, a in ipairs(pool) do
    sweep("is_run", run.is_run, a[2])
  end
  local r = run.start{name = "sweep", dir = tmpdir()}
  for name, f in pairs(getmetatable(r).__methods) do
    if name ~= "finish" then
      for _, a in ipairs(pool) do
        sweep(name, f, r, a[2])
        for _, b in ipairs(pool) do sweep(name, f, r, a[2], b[2]) end
      end
    end
    sweep(name, f, nn.relu())
  end
  check(all_ok, "sweep")
  local root = tmpdir()
  check_error(function() run.start{name = "a/b", dir = root} end, "run.start: a run name must be a plain folder name")
  check_error(function() run.start{name = ".hidden", dir = root} end, "plain folder name")
  check_error(function() run.start{name = "", dir = root} end, "1 to 200 bytes")
  check_error(function() run.start{dir = root, config = 3} end, "run.start: argument #1 (options) must be a table whose field 'config' is a table, got number")
  check_error(function() run.start{dir = root, config = {f = print}} end, "config.f")
  check_error(function() run.start{dir = root, seed = 1.5} end, "field 'seed' is an integer")
  check_error(function() run.start{dir = root, nmae = "x"} end, "unknown option 'nmae'")
  check_error(function() run.start{dir = root, script = root .. "/missing.lua"} end, "cannot read")
  check_error(function() r:log{loss = 1} end, "run.log: argument #2 (values) must be a table with step")
  check_error(function() r:log{step = 1, loss = {f = print}} end, "values.loss")
  check_error(function() r:event{step = 1} end, "kind = a non-empty string")
  check_error(function() r:log{step = 1, time = 3} end, "run.log: 'time' is written by the log itself")
  check_error(function() r:event{kind = "x", time = 3} end, "run.event: 'time' is written by the event itself")
  check_error(function() r:add_data(root .. "/nothing") end, "run.add_data: cannot read")
  check_error(function() r:finish("done") end, "run.finish: a run's final status is \"finished\" or \"failed\"")
end)

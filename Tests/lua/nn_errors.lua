-- nn_errors.lua: every nn function and module method called with odd values raises an error that names it
-- (never a crash), and methods on a real module reject bad arguments.

local function odd_values()
  local dead = nn.linear(2, 2)
  getmetatable(dead).__gc(dead)
  return {
    {"nil", nil}, {"string", "x"}, {"true", true}, {"empty table", {}}, {"table", {2, 3}}, {"-1", -1}, {"0", 0},
    {"1", 1}, {"1.5", 1.5}, {"2^62", 2^62}, {"inf", math.huge}, {"nan", 0/0}, {"function", print},
    {"vector", tensor.new{1, 2, 3}}, {"matrix", tensor.new{{1, 2}, {3, 4}}}, {"empty", tensor.zeros(0, 3)},
    {"options", {vocab = -1, dim = 0}}, {"released module", dead}, {"module", nn.relu()},
  }
end

local function sweep_call(name, f, args, n, labels)
  local ok, err = pcall(f, table.unpack(args, 1, n))
  if not ok then
    err = tostring(err)
    return check(err:find("nn." .. name, 1, true) ~= nil,
      "nn." .. name .. "(" .. table.concat(labels, ", ") .. "): error does not name the function: " .. err)
  end
  return true
end

test("sweep: every nn function with odd values in one and two positions", function()
  local pool = odd_values()
  local names = {}
  -- save would write folders named by the odd values; it is checked below on a real model.
  for name in pairs(nn) do if name ~= "save" then names[#names + 1] = name end end
  table.sort(names)
  local all_ok = true
  for _, name in ipairs(names) do
    local f = nn[name]
    all_ok = sweep_call(name, f, {}, 0, {}) and all_ok
    for _, a in ipairs(pool) do
      all_ok = sweep_call(name, f, {a[2]}, 1, {a[1]}) and all_ok
      for _, b in ipairs(pool) do
        all_ok = sweep_call(name, f, {a[2], b[2]}, 2, {a[1], b[1]}) and all_ok
      end
    end
  end
  check(all_ok, "sweep")
end)

test("methods of a real model with odd arguments", function()
  local m = nn.gpt2{vocab = 16, ctx = 8, dim = 8, layers = 1, heads = 2}
  local pool = odd_values()
  local mt = getmetatable(m)
  local names = {}
  for name in pairs(mt.__methods) do if name ~= "save" then names[#names + 1] = name end end
  table.sort(names)
  for _, name in ipairs(names) do
    for _, a in ipairs(pool) do
      local ok, err = pcall(m[name], m, a[2])
      if not ok then
        check(tostring(err):find("nn." .. name, 1, true) ~= nil, "m:" .. name .. "(" .. a[1] .. "): " .. tostring(err))
      end
    end
  end
  for _, mm in ipairs({"__call", "__tostring", "__index"}) do
    for _, a in ipairs(pool) do
      local ok, err = pcall(mt[mm], a[2], a[2])
      if not ok then check(tostring(err):find("nn.", 1, true) ~= nil, mm .. "(" .. a[1] .. "): " .. tostring(err)) end
    end
  end
  check_error(function() m:save("") end, "nn.save")
  check_error(function() m:save("/tmp/x", {max_shard_mb = -1}) end, "max_shard_mb")
  check_error(function() m:save("/tmp/x", {shards = 2}) end, "unknown option")
  check_error(function() m:load_parameters({["transformer.wte.weight"] = tensor.zeros(3)}) end, "missing")
  local named = m:named_parameters()
  named["transformer.wte.weight"] = tensor.zeros(3, 3)
  check_error(function() m:load_parameters(named) end, "size")
  check_error(function() m:load_parameters({1, 2}) end, "named tensors")
end)

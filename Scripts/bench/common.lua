-- common.lua: timing helpers shared by the Lua benchmarks (loaded with dofile by matmul.lua, elementwise.lua).
--
-- Wall time comes from sys.clock() (os.clock() is CPU time summed over threads: wrong for parallel kernels).
-- Every measurement is a median over `repeats` samples; a sample runs the body `iters` times, with `iters`
-- chosen so that one sample lasts about `sample_seconds`. Result lines are printed as key=value pairs that
-- Scripts/bench/run.sh (and the comparison scripts) share:
--   bench=matmul impl=tycho case=1024 threads=2 median=190.1 min=185.0 max=192.3 unit=GFLOP/s

local M = {}

M.repeats = 7
M.sample_seconds = 0.15

--- Options from the script's arguments: `quick` (fewer, shorter samples), `threads=1,2`, `repeats=N`,
--- `ops=exp,gelu` (only these cases; o.ops is nil for all), `sizes=1,4` (in M elements).
function M.options(args)
  local o = { threads = { 1, 2 } }
  for _, a in ipairs(args or {}) do
    if a == "quick" then
      M.repeats, M.sample_seconds, o.quick = 3, 0.05, true
    elseif a:match("^threads=") then
      o.threads = {}
      for t in a:sub(9):gmatch("%d+") do o.threads[#o.threads + 1] = tonumber(t) end
    elseif a:match("^ops=") then
      o.ops = {}
      for name in a:sub(5):gmatch("[%w_]+") do o.ops[name] = true end
    elseif a:match("^sizes=") then
      o.sizes = {}
      for m in a:sub(7):gmatch("%d+") do o.sizes[#o.sizes + 1] = tonumber(m) << 20 end
    elseif a:match("^repeats=") then
      M.repeats = tonumber(a:sub(9))
    end
  end
  return o
end

local function median(xs)
  table.sort(xs)
  local n = #xs
  if n % 2 == 1 then return xs[(n + 1) // 2] end
  return (xs[n // 2] + xs[n // 2 + 1]) / 2
end
M.median = median

--- Seconds per call of `f`: median, min and max over the samples.
function M.time(f)
  collectgarbage()
  f() -- warm up (first-touch page faults, thread pool start)
  local t0 = sys.clock()
  f()
  local once = math.max(sys.clock() - t0, 1e-7)
  local iters = math.max(1, math.floor(M.sample_seconds / once + 0.5))
  local samples = {}
  for r = 1, M.repeats do
    collectgarbage()
    local s = sys.clock()
    for _ = 1, iters do f() end
    samples[r] = (sys.clock() - s) / iters
  end
  local lo, hi = math.huge, 0
  for _, v in ipairs(samples) do lo = math.min(lo, v); hi = math.max(hi, v) end
  return median(samples), lo, hi
end

--- Prints one result line. `rate(seconds)` turns a time per call into the reported unit (higher is better).
function M.report(fields, seconds, lo, hi, rate, unit, extra)
  local parts = {}
  for _, k in ipairs({ "bench", "impl", "case", "threads" }) do parts[#parts + 1] = k .. "=" .. tostring(fields[k]) end
  parts[#parts + 1] = string.format("median=%.2f", rate(seconds))
  parts[#parts + 1] = string.format("min=%.2f", rate(hi))
  parts[#parts + 1] = string.format("max=%.2f", rate(lo))
  parts[#parts + 1] = "unit=" .. unit
  local keys = {}
  for k in pairs(extra or {}) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, k in ipairs(keys) do parts[#parts + 1] = k .. "=" .. extra[k] end
  print(table.concat(parts, " "))
  io.stdout:flush()
end

return M

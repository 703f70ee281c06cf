-- elementwise.lua: element-wise kernels, reductions, softmax and logsumexp on 1M..16M floats, 1 vs 2 threads.
--   tycho run Scripts/bench/elementwise.lua [quick] [threads=1,2] [ops=exp,gelu] [sizes=1,4]
-- Reports GB/s (minimum memory traffic: bytes read + written per element, times elements, per second) and
-- ns per element, medians. elementwise_torch.py measures the same operations in PyTorch.

local dir = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
local B = dofile(dir .. "/common.lua")
local opt = B.options(arg)

local M = 1024 -- row length for broadcast add and softmax: [N, M] + [M], softmax over M
-- {name, bytes per element, function(x, y, row, pos) -> result}; pos holds positive values (for log)
local ops = {
  { "add", 12, function(x, y) return x + y end },
  { "mul", 12, function(x, y) return x * y end },
  { "exp", 8, function(x) return x:exp() end },
  { "log", 8, function(_, _, _, pos) return pos:log() end },
  { "tanh", 8, function(x) return x:tanh() end },
  { "sigmoid", 8, function(x) return x:sigmoid() end },
  { "silu", 8, function(x) return x:silu() end },
  { "gelu", 8, function(x) return x:gelu() end },
  { "gelu_tanh", 8, function(x) return x:gelu("tanh") end },
  { "badd", 8, function(x, _, row) return x + row end },
  { "sum", 4, function(x) return x:sum() end },
  { "softmax", 8, function(x) return x:softmax() end },
  { "log_softmax", 8, function(x) return x:log_softmax() end },
  { "logsumexp", 4, function(x) return x:logsumexp(2) end },
}
local sizes = opt.sizes or (opt.quick and { 1 << 20, 1 << 24 } or { 1 << 20, 1 << 22, 1 << 24 })

tensor.manual_seed(1)
for _, th in ipairs(opt.threads) do
  tensor.set_num_threads(th)
  for _, n in ipairs(sizes) do
    local x = tensor.randn(n // M, M)
    local y = tensor.randn(n // M, M)
    local row = tensor.randn(M)
    local pos = x:abs() + 0.01
    for _, op in ipairs(ops) do
      local name, bytes, f = op[1], op[2], op[3]
      if opt.ops and not opt.ops[name] then goto continue end
      local med, lo, hi = B.time(function() return f(x, y, row, pos) end)
      B.report({ bench = "elementwise", impl = "tycho", case = name .. "/" .. (n >> 20) .. "M", threads = th },
        med, lo, hi, function(s) return bytes * n / s / 1e9 end, "GB/s",
        { ns_per_elem = string.format("%.3f", med / n * 1e9) })
      ::continue::
    end
  end
end

-- matmul.lua: tensor matmul throughput (GFLOP/s, medians), square n x n and one batched case, on 1 and 2 threads.
--   tycho run Scripts/bench/matmul.lua [quick] [threads=1,2]
-- Compare with sgemm_openblas.c (OpenBLAS's own cblas_sgemm) and matmul_torch.py, which measure the same cases.

local dir = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
local B = dofile(dir .. "/common.lua")
local opt = B.options(arg)

-- {case name, batch, n}: C[batch] (n x n) = A[batch] (n x n) * B[batch] (n x n).
local cases = {
  { "256", 1, 256 }, { "512", 1, 512 }, { "1024", 1, 1024 }, { "2048", 1, 2048 },
  { "16x256", 16, 256 },
}
if opt.quick then cases[4] = nil; cases[4] = cases[5]; cases[5] = nil end

tensor.manual_seed(1)
for _, th in ipairs(opt.threads) do
  tensor.set_num_threads(th)
  for _, c in ipairs(cases) do
    local name, batch, n = c[1], c[2], c[3]
    local a, b
    if batch == 1 then a, b = tensor.randn(n, n), tensor.randn(n, n)
    else a, b = tensor.randn(batch, n, n), tensor.randn(batch, n, n) end
    local flops = 2 * batch * n * n * n
    local med, lo, hi = B.time(function() return a:matmul(b) end)
    B.report({ bench = "matmul", impl = "tycho", case = name, threads = th }, med, lo, hi,
      function(s) return flops / s / 1e9 end, "GFLOP/s")
  end
end

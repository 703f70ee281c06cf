-- demo.lua: Tycho's main job for now (later issues replace it with the DPO quickstart).
-- Fits a linear model y = X w + b to noisy synthetic data by full-batch gradient descent, with the
-- gradients written out by hand, then checks the fit against the true weights and the closed-form answer.
-- Run: tycho run Scripts/demo.lua [steps]

local steps = tonumber(arg and arg[1]) or 300
tensor.manual_seed(7)

local n, d = 4096, 16
local true_w = tensor.randn(d, 1)
local true_b = 0.5
local X = tensor.randn(n, d)
local y = X:matmul(true_w) + true_b + tensor.randn(n, 1) * 0.1

local w, b = tensor.zeros(d, 1), 0
local lr = 0.1
print(string.format("fitting %d x %d data, %d steps of gradient descent (%d threads)", n, d, steps, tensor.num_threads()))
local t0 = sys.clock()
for step = 1, steps do
  local residual = X:matmul(w) + b - y                         -- (n, 1)
  local loss = (residual ^ 2):mean():item()
  local grad_w = X:t():matmul(residual) * (2 / n)               -- (d, 1)
  local grad_b = residual:mean():item() * 2
  w = w - grad_w * lr
  b = b - grad_b * lr
  if step == 1 or step % 50 == 0 then print(string.format("step %4d  mse %.6f", step, loss)) end
end
local seconds = sys.clock() - t0

local err = (w - true_w):abs():max():item()
print(string.format("max |w - w_true| = %.4f, b = %.4f (true %.1f), %.1f ms", err, b, true_b, seconds * 1000))
print("first weights, fitted vs true:")
print(tensor.cat({w:narrow(1, 1, 4), true_w:narrow(1, 1, 4)}, 2))
assert(err < 0.01, "the fit did not converge")

-- autograd.lua: gradients of every differentiable tensor op against central finite differences.
--
-- Each case builds leaf tensors, applies the op (often to non-contiguous views or broadcast shapes) and checks
-- d sum(f(x) * w) / dx from backward() against (L(x + h) - L(x - h)) / 2h for every element, h = 1e-2, in float32.
-- The reference differences are computed with recording off, perturbing the leaves in place.

tensor.manual_seed(7)

local H = 1e-2

-- Leaves: a list of tensors (each made a leaf that requires grad); f(leaves...) -> tensor.
local function gradcheck(name, f, leaves, opts)
  opts = opts or {}
  test(name, function()
    for _, x in ipairs(leaves) do x:requires_grad(true); x:zero_grad() end
    local out = f(table.unpack(leaves))
    local w = opts.weights or tensor.randn(out:shape())
    if out:dim() == 0 then w = tensor.new(1.5) end
    local loss = (out * w):sum()
    loss:backward()
    local function value()
      return tensor.no_grad(function() return (f(table.unpack(leaves)) * w):sum():item() end)
    end
    for k, x in ipairs(leaves) do
      if not opts.skip or not opts.skip[k] then
        local g = x.grad
        check(g ~= nil, name .. ": input " .. k .. " has no grad")
        if g then
          check_eq(table.concat(g:shape(), "x"), table.concat(x:shape(), "x"), name .. ": grad size of input " .. k)
          local flat, gflat = x:view(-1), g:contiguous():view(-1)
          local worst = 0
          for i = 1, flat:numel() do
            local v = flat[i]
            tensor.no_grad(function() flat[i] = v + H end)
            local up = value()
            tensor.no_grad(function() flat[i] = v - H end)
            local down = value()
            tensor.no_grad(function() flat[i] = v end)
            local fd = (up - down) / (2 * H)
            local err = math.abs(fd - gflat[i]) / (1 + math.abs(fd))
            if err > worst then worst = err end
          end
          check(worst < (opts.tol or 2e-2), string.format("%s: input %d: finite differences differ by %.3g", name, k, worst))
        end
      end
    end
  end)
end

local randn, rand = tensor.randn, tensor.rand
local function pos(...) return rand(...) + 0.5 end
-- Values away from kinks (relu, abs and clamp are not differentiable there).
local away = tensor.new({-1.5, -0.7, -0.2, 0.1, 0.3, 0.9, 1.7, -2.2})

-- element-wise, with broadcasting
gradcheck("add broadcast", function(a, b) return a + b end, {randn(3, 4), randn(4)})
gradcheck("sub broadcast", function(a, b) return a - b end, {randn(3, 1), randn(1, 4)})
gradcheck("mul broadcast", function(a, b) return a * b end, {randn(2, 3, 4), randn(3, 1)})
gradcheck("div broadcast", function(a, b) return a / b end, {randn(3, 4), pos(4)})
gradcheck("scalar ops", function(a) return (2 - a) * 3 + 1 - a / 4 end, {randn(5)})
gradcheck("scalar divided by", function(a) return 2 / a end, {pos(5)})
gradcheck("neg", function(a) return -a end, {randn(5)})
gradcheck("pow scalar", function(a) return a ^ 3 end, {randn(6)})
gradcheck("pow 2 and 0.5", function(a) return a ^ 2 + a:abs() ^ 0.5 end, {pos(6)})
gradcheck("pow tensor", function(a, b) return a:pow(b) end, {pos(2, 3), randn(3)})
gradcheck("number ^ tensor", function(a) return tensor.pow(2, a) end, {randn(5)})
gradcheck("exp log sqrt", function(a) return a:exp() + a:log() + a:sqrt() end, {pos(7)})
gradcheck("abs", function(a) return a:abs() end, {away:clone()})
gradcheck("tanh sigmoid", function(a) return a:tanh() * 2 + a:sigmoid() end, {randn(8)})
gradcheck("relu", function(a) return a:relu() end, {away:clone()})
gradcheck("gelu exact", function(a) return a:gelu() end, {randn(8) * 2})
gradcheck("gelu tanh", function(a) return a:gelu("tanh") end, {randn(8) * 2})
gradcheck("silu", function(a) return a:silu() end, {randn(8) * 2})
gradcheck("clamp", function(a) return a:clamp(-0.5, 0.7) end, {away:clone()})
gradcheck("maximum minimum", function(a, b) return a:maximum(b) + a:minimum(b) * 2 end, {randn(3, 4), randn(4)})
gradcheck("where", function(a, b) return tensor.where(tensor.new({1, 0, 1, 0}), a, b) end, {randn(3, 4), randn(4)})

-- views
gradcheck("transpose view", function(a) return a:t() * tensor.arange(1, 4):view(3, 1) end, {randn(4, 3)})
gradcheck("permute", function(a) return a:permute(3, 1, 2) end, {randn(2, 3, 4)})
gradcheck("narrow select", function(a) return a:narrow(2, 2, 3):select(1, 2) end, {randn(3, 5)})
gradcheck("view reshape", function(a) return a:t():reshape(6):view(2, 3) end, {randn(2, 3)})
gradcheck("squeeze unsqueeze", function(a) return a:unsqueeze(1):squeeze(2) end, {randn(1, 4)})
gradcheck("expand", function(a) return a:expand(3, 4) end, {randn(1, 4)})
gradcheck("contiguous clone", function(a) return a:t():contiguous():clone() end, {randn(3, 2)})
gradcheck("indexing t[i]", function(a) return a[2] * 2 end, {randn(3, 4)})

-- reductions
gradcheck("sum mean all", function(a) return a:sum() + a:mean() * 3 end, {randn(3, 4)})
gradcheck("sum dim", function(a) return a:sum(2) end, {randn(3, 4)})
gradcheck("mean dim keepdim", function(a) return a:mean(1, true) end, {randn(3, 4)})
gradcheck("var std all", function(a) return a:var() + a:std() end, {randn(6)})
gradcheck("var std dim", function(a) return a:var(2) + a:std(1, true):sum() end, {randn(3, 4)})
gradcheck("max min dim", function(a) local v = a:max(2); local u = a:min(1, true); return v:sum() + u:sum() end,
  {tensor.arange(1, 13):view(3, 4):index_select(2, tensor.new({3, 1, 4, 2})) * 0.7})
gradcheck("logsumexp dim", function(a) return a:logsumexp(2) end, {randn(3, 5)})
gradcheck("logsumexp all", function(a) return a:logsumexp() end, {randn(3, 5)})
gradcheck("softmax last", function(a) return a:softmax(2) end, {randn(3, 5)})
gradcheck("softmax first", function(a) return a:softmax(1) end, {randn(3, 5)})
gradcheck("log_softmax", function(a) return a:log_softmax(2) end, {randn(3, 5)})
gradcheck("log_softmax strided", function(a) return a:t():log_softmax(1) end, {randn(3, 5)})

-- matmul
gradcheck("matmul 2d", function(a, b) return a:matmul(b) end, {randn(3, 4), randn(4, 2)})
gradcheck("matmul transposed views", function(a, b) return a:t():matmul(b:t()) end, {randn(4, 3), randn(2, 4)})
gradcheck("matmul batched broadcast", function(a, b) return a:matmul(b) end, {randn(2, 3, 4), randn(4, 5)})
gradcheck("matmul batch broadcast both", function(a, b) return a:matmul(b) end, {randn(2, 1, 3, 4), randn(3, 4, 2)})
gradcheck("matmul vector", function(a, b) return a:matmul(b) end, {randn(3, 4), randn(4)})
gradcheck("matmul vector left", function(a, b) return a:matmul(b) end, {randn(4), randn(4, 3)})
gradcheck("dot", function(a, b) return a:matmul(b) end, {randn(5), randn(5)})

-- indexing
gradcheck("cat", function(a, b) return tensor.cat({a, b, a}, 2) end, {randn(2, 3), randn(2, 1)})
gradcheck("stack", function(a, b) return tensor.stack({a, b}, 1) end, {randn(2, 3), randn(2, 3)})
gradcheck("gather", function(a) return a:gather(2, tensor.new({{1, 1, 3}, {2, 3, 3}})) end, {randn(2, 3)})
gradcheck("index_select repeated", function(a) return a:index_select(1, tensor.new({3, 1, 3})) end, {randn(3, 2)})
gradcheck("masked_fill", function(a) return a:masked_fill(tensor.new({0, 1, 0}), -5) end, {randn(2, 3)})

-- a small composite: two-layer MLP with softmax cross entropy
gradcheck("mlp", function(w1, b1, w2)
  local x = tensor.new({{0.5, -1, 2}, {1, 0.3, -0.7}})
  local h = (x:matmul(w1) + b1):tanh()
  local logp = h:matmul(w2):log_softmax(2)
  return -logp:gather(2, tensor.new({{2}, {1}})):mean()
end, {randn(3, 4) * 0.5, randn(4) * 0.1, randn(4, 3) * 0.5})

test("engine rules", function()
  local x = tensor.randn(3):requires_grad(true)
  check(x:requires_grad() and x:is_leaf(), "x is a leaf requiring grad")
  local y = (x * 2):sum()
  check(y:requires_grad() and not y:is_leaf(), "y is recorded")
  y:backward()
  check_close(x.grad, tensor.full({3}, 2), 0)
  -- accumulation
  local y2 = (x * 3):sum()
  y2:backward()
  check_close(x.grad, tensor.full({3}, 5), 0)
  x:zero_grad()
  check(x.grad == nil, "zero_grad clears")
  -- the graph is freed after one backward
  check_error(function() y:backward() end, "already used")
  local z = (x * x):sum()
  z:backward(nil, {retain_graph = true})
  z:backward()
  check_close(x.grad, x * 4, 1e-6)
  -- non-scalar needs a gradient
  check_error(function() (x * 2):backward() end, "gradient must be given")
  local v = x * 2
  v:backward(tensor.ones(3))
  -- no_grad records nothing and returns the function's results
  local a, b = tensor.no_grad(function() return x * 2, 7 end)
  check(not a:requires_grad() and b == 7, "no_grad")
  check(not tensor.is_grad_enabled() == false, "grad enabled outside")
  check_error(function() tensor.no_grad(function() error("boom") end) end, "boom")
  check(tensor.is_grad_enabled(), "grad mode restored after an error")
  -- detach
  local d = x:detach()
  check(not d:requires_grad(), "detach")
  -- in-place on a leaf that requires grad
  check_error(function() x:fill(0) end, "requires grad")
  check_error(function() x[1] = 0 end, "requires grad")
  -- a saved tensor modified in place makes backward fail instead of returning wrong gradients
  local c = tensor.randn(3)
  local p = (x * c):sum()
  c:fill(1)
  check_error(function() p:backward() end, "modified in place")
  -- backward on something that does not require grad
  check_error(function() tensor.ones(2):sum():backward() end, "does not require grad")
  check_error(function() (x * 2):requires_grad(false) end, "leaf")
  check_error(function() y:backward(tensor.ones(2)) end, "size")
end)

test("deep graph", function()
  local x = tensor.ones(2):requires_grad(true)
  local y = x
  for _ = 1, 20000 do y = y * 1 end
  y:sum():backward()
  check_close(x.grad, tensor.ones(2), 0)
end)

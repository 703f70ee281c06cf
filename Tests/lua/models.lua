-- models.lua: GPT-2, Llama and Qwen2 loaded from Hugging Face folders against transformers 5.24 references
-- (Tests/Fixtures/gen_model_fixtures.py): logits, loss, per-sequence log-probs, padding invariance, gradients
-- of one training step, greedy continuations; save → load round trips; nn layers and module methods.

local FIX = TEST_DIR .. "/../Fixtures/models/"

local function max_abs_diff(a, b) return (a - b):abs():max():item() end

-- The logits of the real (unpadded) positions of row b.
local function real_logits(logits, b, len) return logits:select(1, b):narrow(1, 1, len) end

for _, name in ipairs({"gpt2", "llama", "qwen2"}) do
  local ref = dofile(FIX .. name .. "_ref.lua")
  local R = tensor.load(FIX .. name .. "_ref.safetensors")
  local ids, mask = R.ids, R.mask

  test(name .. ": logits, loss and log-probs match transformers", function()
    local m = nn.load(FIX .. name)
    check(nn.is_module(m), "nn.load returns a module")
    local logits = m:logits(ids)
    check_eq(table.concat(logits:shape(), "x"), "3x16x384", "logits size")
    for b, len in ipairs(ref.lengths) do
      local d = max_abs_diff(real_logits(logits, b, len), real_logits(R.logits, b, len))
      check(d < 1e-4, string.format("%s row %d: logits differ by %.3g", name, b, d))
    end
    check_close(m:loss(ids, mask), ref.loss, 1e-5, name .. " loss")
    check_close(m:logprobs(ids, mask), ref.logprobs, 1e-5, name .. " logprobs")
    -- m(x) is m:logits(x)
    check(max_abs_diff(m(ids), logits) == 0, "calling the model gives its logits")
  end)

  test(name .. ": right padding gives exactly the unpadded values", function()
    local m = nn.load(FIX .. name)
    local padded = m:logprobs(ids, mask)
    for b, len in ipairs(ref.lengths) do
      local alone = m:logprobs(ids:narrow(1, b, 1):narrow(2, 1, len))
      check_eq(alone[1], padded[b], name .. " row " .. b .. " alone vs padded (exactly)")
      check_close(alone[1], ref.logprobs_unpadded[b], 1e-5, name .. " row " .. b .. " vs transformers")
    end
    -- other padding values change nothing either
    local other = ids:clone()
    for b, len in ipairs(ref.lengths) do
      if len < 16 then other[b]:narrow(1, len + 1, 16 - len):fill(7) end
    end
    check_eq(table.concat(m:logprobs(other, mask):totable(), ","), table.concat(padded:totable(), ","), name .. " pad id does not matter (exactly)")
  end)

  test(name .. ": gradients of one training step match torch", function()
    local m = nn.load(FIX .. name)
    local loss = m:loss(ids, mask)
    loss:backward()
    local count = 0
    for pname, p in pairs(m:named_parameters()) do
      local want = R["grad." .. pname]
      check(want ~= nil, name .. ": reference has a gradient for " .. pname)
      if want then
        local scale = math.max(want:abs():max():item(), 1e-3)
        local d = max_abs_diff(p.grad, want)
        check(d <= 2e-5 * scale + 1e-7, string.format("%s %s: gradient differs by %.3g (max %.3g)", name, pname, d, scale))
        count = count + 1
      end
    end
    local expected = 0
    for k in pairs(R) do if k:sub(1, 5) == "grad." then expected = expected + 1 end end
    check_eq(count, expected, name .. " every parameter has a reference gradient")
  end)

  test(name .. ": one and two AdamW steps and one SGD step match torch.optim", function()
    -- Elements whose gradient is below 1e-6 (torch's rounding noise where the exact gradient is 0) are skipped:
    -- Adam turns that noise into full-size steps (Tests/Fixtures/models/README.md).
    local skip = {}
    for pname, list in pairs(ref.adamw_sensitive.flat_indices) do
      skip[pname] = {}
      for _, i in ipairs(list) do skip[pname][i + 1] = true end
    end
    local function compare(m, prefix, tol)
      local worst, n = 0, 0
      for pname, p in pairs(m:named_parameters()) do
        local want, got = R[prefix .. pname]:contiguous():view(-1), p:detach():contiguous():view(-1)
        local diff = (got - want):abs()
        for i in pairs(skip[pname] or {}) do diff[i] = 0 end
        worst = math.max(worst, diff:max():item())
        n = n + 1
      end
      check(n > 0 and worst < tol, string.format("%s %s: parameters differ by up to %.3g", name, prefix, worst))
    end
    local a = ref.adamw
    local m = nn.load(FIX .. name)
    local opt = optim.adamw(m:parameters(), {lr = a.lr, betas = a.betas, eps = a.eps, weight_decay = a.weight_decay})
    m:loss(ids, mask):backward()
    opt:step()
    compare(m, "adamw.", 1e-6)
    opt:zero_grad()
    check_close(m:loss(ids, mask), ref.loss_after_adamw, 1e-4, name .. " loss after one AdamW step")
    m:loss(ids, mask):backward()
    opt:step()
    compare(m, "adamw2.", 1e-4)
    check_close(m:loss(ids, mask), ref.loss_after_adamw2, 1e-3, name .. " loss after two AdamW steps")
    local sg = ref.sgd
    local m2 = nn.load(FIX .. name)
    local sgd = optim.sgd(m2:parameters(), {lr = sg.lr, momentum = sg.momentum, weight_decay = sg.weight_decay,
                                            nesterov = sg.nesterov, dampening = sg.dampening})
    m2:loss(ids, mask):backward()
    sgd:step()
    compare(m2, "sgd.", 1e-6)
  end)

  test(name .. ": greedy continuations match transformers' generate", function()
    local m = nn.load(FIX .. name)
    tensor.no_grad(function()
      for _, case in ipairs(ref.greedy) do
        local seq = {}
        for i, v in ipairs(case.prompt) do seq[i] = v end
        local got = {}
        for _ = 1, #case.new_tokens do
          local logits = m:logits(tensor.new({seq}))
          local _, idx = logits:select(1, 1):select(1, #seq):max(1)
          local nxt = math.floor(idx:item()) - 1
          got[#got + 1] = nxt
          seq[#seq + 1] = nxt
        end
        check_eq(table.concat(got, ","), table.concat(case.new_tokens, ","), name .. " greedy from " .. case.prompt_text)
      end
    end)
  end)

  test(name .. ": save and load round trip", function()
    local m = nn.load(FIX .. name)
    local dir = os.tmpname()
    os.remove(dir)
    m:save(dir)
    local m2 = nn.load(dir)
    check(max_abs_diff(m2:logits(ids), m:logits(ids)) == 0, name .. ": reloaded model gives the same logits")
    check_eq(m2:num_params(), m:num_params(), "same parameter count")
    local names = m:parameter_names()
    check_eq(table.concat(m2:parameter_names(), ","), table.concat(names, ","), "same names")
    -- sharded
    local dir2 = os.tmpname()
    os.remove(dir2)
    m:save(dir2, {max_shard_mb = 0.05})
    local f = io.open(dir2 .. "/model.safetensors.index.json")
    check(f ~= nil, "sharded save writes an index")
    if f then f:close() end
    check(max_abs_diff(nn.load(dir2):logits(ids), m:logits(ids)) == 0, name .. ": sharded round trip")
    os.execute("rm -rf '" .. dir .. "' '" .. dir2 .. "'")
  end)
end

test("clone, freeze and modes", function()
  tensor.manual_seed(1)
  local m = nn.gpt2{vocab = 50, ctx = 16, dim = 16, layers = 1, heads = 2}
  local ids = tensor.randint(0, 50, 2, 8)
  local ref = m:clone():freeze()
  check_eq(ref:num_params(), m:num_params(), "clone has the same parameters")
  check(max_abs_diff(ref:logits(ids), m:logits(ids)) == 0, "clone computes the same")
  check(not ref:logits(ids):requires_grad(), "a frozen model records no graph")
  check(m:logits(ids):requires_grad(), "the policy records")
  -- the clone is deep: changing the policy leaves it alone
  tensor.no_grad(function() m:parameters()[1]:fill(0) end)
  check(max_abs_diff(ref:logits(ids), m:logits(ids)) > 0, "clone is independent")
  check(m:is_training(), "training by default")
  m:eval()
  check(not m:is_training(), "eval")
  check(tostring(m):find("GPT2") ~= nil, "tostring shows the tree")
  local n = 0
  for _ in pairs(m:named_parameters()) do n = n + 1 end
  check_eq(n, #m:parameters(), "named and listed parameters agree")
  check_eq(m:named_parameters()["transformer.h.0.attn.c_attn.weight"]:size(1), 16, "HF names and Conv1D layout")
  -- eval mode turns off every dropout, also those a layer keeps as a field (GPT-2's embedding, attention and MLP
  -- dropout); a clone keeps the mode
  for _, make in ipairs{ function() return nn.gpt2{vocab = 50, ctx = 16, dim = 16, layers = 2, heads = 2, dropout = 0.5} end } do
    local d = make()
    check(max_abs_diff(d:logits(ids), d:logits(ids)) > 0, "dropout is on in training mode")
    d:eval()
    check_eq(max_abs_diff(d:logits(ids), d:logits(ids)), 0, "no dropout in eval mode")
    local c = d:clone()
    check_eq(max_abs_diff(c:logits(ids), d:logits(ids)), 0, "the clone is in eval mode too")
    d:train()
    check(max_abs_diff(d:logits(ids), d:logits(ids)) > 0, "dropout is back in training mode")
  end
end)

test("layers", function()
  tensor.manual_seed(2)
  local lin = nn.linear(3, 4)
  local x = tensor.randn(2, 3)
  local p = lin:named_parameters()
  check_close(lin(x), x:matmul(p.weight:t()) + p.bias, 1e-6, "linear")
  check_eq(#nn.linear(3, 4, {bias = false}):parameters(), 1, "no bias")
  local emb = nn.embedding(10, 4)
  check_close(emb(tensor.new({{3, 0}})):select(1, 1):select(1, 1), emb:parameters()[1][4], 0, "embedding rows by 0-based id")
  local ln = nn.layernorm(4)
  local y = ln(tensor.randn(3, 4) * 5 + 2)
  check_close(y:mean(2), tensor.zeros(3), 1e-5, "layernorm mean 0")
  check_close(y:var(2, false), tensor.full({3}, 4 / 3), 1e-3, "layernorm var 1 (unbiased 4/3)")
  local rms = nn.rmsnorm(4)
  local z = rms(tensor.new({{1, 2, 3, 4}}))
  check_close(z, tensor.new({{1, 2, 3, 4}}) / math.sqrt(7.5 + 1e-6), 1e-6, "rmsnorm")
  local seq = nn.sequential{nn.linear(3, 8), nn.relu(), nn.linear(8, 2)}
  check_eq(table.concat(seq(x):shape(), "x"), "2x2", "sequential")
  check_eq(#seq:parameters(), 4, "sequential parameters")
  check(seq:named_parameters()["2.weight"] ~= nil, "sequential names")
  local d = nn.dropout(0.5)
  local ones = tensor.ones(1000)
  local out = d(ones)
  check(out:eq(0):sum():item() > 400 and out:eq(0):sum():item() < 600, "dropout drops about half")
  check(out:eq(2):sum():item() + out:eq(0):sum():item() == 1000, "dropout scales the rest by 2")
  d:eval()
  check_close(d(ones), ones, 0, "dropout off in eval")
  local attn = nn.attention{dim = 8, heads = 2}
  check_eq(table.concat(attn(tensor.randn(2, 5, 8)):shape(), "x"), "2x5x8", "attention keeps the size")
  local mlp = nn.mlp{dim = 8, kind = "swiglu", hidden = 16}
  check_eq(table.concat(mlp(tensor.randn(2, 5, 8)):shape(), "x"), "2x5x8", "swiglu mlp")
  check_eq(nn.gelu("tanh")(tensor.new({1})):item(), tensor.new({1}):gelu("tanh"):item(), "gelu module")
  -- attention is causal: changing a later token leaves earlier outputs alone
  local xa = tensor.randn(1, 5, 8)
  local xb = xa:clone()
  xb[1][5]:fill(3)
  check(max_abs_diff(attn(xa):narrow(2, 1, 4), attn(xb):narrow(2, 1, 4)) == 0, "causal")
end)

test("a llama trains: loss falls with plain gradient steps", function()
  tensor.manual_seed(3)
  local m = nn.llama{vocab = 40, ctx = 32, dim = 16, layers = 2, heads = 4, kv_heads = 2, hidden = 32}
  local ids = tensor.randint(0, 40, 4, 12)
  local first, last
  for step = 1, 30 do
    m:zero_grad()
    local loss = m:loss(ids)
    loss:backward()
    tensor.no_grad(function()
      for _, p in ipairs(m:parameters()) do p:copy(p - p.grad * 0.5) end
    end)
    if step == 1 then first = loss:item() end
    last = loss:item()
  end
  check(last < first * 0.7, string.format("loss fell from %.3f to %.3f", first, last))
end)

test("nn errors", function()
  local m = nn.gpt2{vocab = 20, ctx = 8, dim = 8, layers = 1, heads = 2}
  check_error(function() m:logits(tensor.new({{1, 2, 25}})) end, "token id 25")
  check_error(function() m:logits(tensor.zeros(1, 9)) end, "exceed")
  check_error(function() m:loss(tensor.zeros(2, 4), tensor.ones(2, 3)) end, "mask of size")
  check_error(function() m:loss(tensor.zeros(2, 4), tensor.zeros(2, 4)) end, "no target")
  check_error(function() m:logprobs(tensor.zeros(1, 1)) end, "at least 2 tokens")
  check_error(function() nn.gpt2{vocab = 20, ctx = 8, dim = 9, layers = 1, heads = 2} end, "multiple")
  check_error(function() nn.gpt2{vocab = 20, ctx = 8, dim = 8, layers = 1} end, "heads")
  check_error(function() nn.gpt2{vocab = 20, ctx = 8, dim = 8, layers = 1, heads = 2, typo = 1} end, "unknown option 'typo'")
  check_error(function() nn.llama{vocab = 20, ctx = 8, dim = 8, layers = 1, heads = 2, kv_heads = 3, hidden = 8} end, "multiple")
  check_error(function() nn.load("/nonexistent") end, "nn.load")
  check_error(function() nn.linear(3, 4)(tensor.zeros(2, 5)) end, "features")
  check_error(function() nn.linear(3, 0) end, "positive")
  check_error(function() nn.linear(3, 4):logits(tensor.zeros(1, 2)) end, "not a language model")
  check_error(function() nn.sequential{1} end, "list of modules")
  check_error(function() nn.dropout(1.5) end, "probability")
  check_error(function() m:save("/proc/forbidden/x") end, "save")
  check_error(function() m.forward(3, tensor.zeros(1)) end, "module")
  local dir = os.tmpname()
  os.remove(dir)
  os.execute("mkdir -p '" .. dir .. "'")
  local f = io.open(dir .. "/config.json", "w"); f:write('{"model_type": "bert"}'); f:close()
  check_error(function() nn.load(dir) end, "model_type 'bert'")
  f = io.open(dir .. "/config.json", "w"); f:write('{"model_type": "gpt2", '); f:close()
  check_error(function() nn.load(dir) end, "not valid JSON")
  m:save(dir)
  f = io.open(dir .. "/model.safetensors", "r+b"); f:write("garbage!"); f:close()
  check_error(function() nn.load(dir) end, "nn.load")
  os.execute("rm -rf '" .. dir .. "'")
end)

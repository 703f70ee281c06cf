-- license_lm.lua: a small GPT-2 trained from scratch on the license texts shipped in the repo
-- (Scripts/data/licenses.txt), the starting point the notebooks share. A real project would load its SFT
-- checkpoint with nn.load instead; this keeps the notebooks self-contained and quick on 2 cores.
--
--   lm = dofile("license_lm.lua")
--   model, tokenizer, info = lm.train{steps = 300}     -- info: valid_loss, unigram, seconds
--   for line in lm.lines() do ... end                  -- the corpus, line by line
--
-- Everything is seeded: the same steps give the same model.

local M = { corpus = "../Scripts/data/licenses.txt" }

function M.lines()
  return io.lines(M.corpus)
end

-- A byte-level BPE tokenizer trained on the corpus, and the corpus as token ids.
function M.tokenizer(vocab_size)
  return tok.train_bpe{ files = { M.corpus }, vocab_size = vocab_size or 384, special_tokens = { "<|endoftext|>" } }
end

function M.train(o)
  o = o or {}
  local steps, ctx, batch = o.steps or 300, o.ctx or 64, o.batch_size or 16
  tensor.manual_seed(o.seed or 1)
  local t = M.tokenizer(o.vocab_size)
  local f = assert(io.open(M.corpus, "rb"))
  local ids = t:encode(f:read("a"))
  f:close()
  local split = math.floor(#ids * 0.9)
  local function window(from)
    local row = {}
    for j = 0, ctx - 1 do row[j + 1] = ids[from + j] end
    return row
  end
  local valid = {}
  for s = split + 1, #ids - ctx + 1, ctx do valid[#valid + 1] = window(s) end
  valid = tensor.new(valid)
  local model = nn.gpt2{ vocab = t:vocab_size(), ctx = ctx, dim = o.dim or 64, layers = o.layers or 2, heads = 4, dropout = 0 }
  local opt = optim.adamw(model:parameters(), { lr = 3e-3, betas = { 0.9, 0.95 }, weight_decay = 0.1 })
  local sched = optim.schedule{ kind = "cosine", lr = 3e-3, warmup = math.max(1, steps // 10), total = steps, min_lr = 3e-4 }
  local t0 = sys.clock()
  for step = 1, steps do
    local rows = {}
    for b = 1, batch do rows[b] = window(tensor.randint(1, split - ctx + 2, 1)[1]) end
    sched:apply(opt, step)
    opt:zero_grad()
    local loss = model:loss(tensor.new(rows))
    loss:backward()
    optim.clip_grad_norm(model:parameters(), 1.0)
    opt:step()
    if o.log_every and (step % o.log_every == 0 or step == steps) then
      print(string.format("sft step %4d/%d  loss %.3f", step, steps, loss:item()))
    end
  end
  model:eval()
  local valid_loss = tensor.no_grad(function() return model:loss(valid):item() end)
  return model, t, { valid_loss = valid_loss, seconds = sys.clock() - t0, tokens = #ids }
end

return M

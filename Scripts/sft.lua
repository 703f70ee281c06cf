-- sft.lua: trains a small GPT-2 from scratch on text shipped in the repo (Scripts/data/licenses.txt: the GPL-2,
-- LGPL-2.1, Apache-2.0, Artistic and MPL-2.0 texts), checks that its validation loss falls well below the
-- unigram baseline, saves it as a Hugging Face folder with its optimizer state, reloads both and continues.
--
--   tycho run Scripts/sft.lua [steps=400] [out=runs/sft] [quick]
--
-- quick: a smaller model and fewer steps (the test suite runs this). Everything is seeded: the same command gives
-- the same numbers.

local opts = { steps = 400, out = "runs/sft", quick = false }
for _, a in ipairs(arg or {}) do
  local k, v = a:match("^(%w+)=(.*)$")
  if k == "steps" then opts.steps = assert(tonumber(v), "steps must be a number")
  elseif k == "out" then opts.out = v
  elseif a == "quick" then opts.quick = true
  else error("unknown argument " .. a .. " (steps=N, out=DIR, quick)") end
end
if opts.quick and opts.steps == 400 then opts.steps = 120 end

local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
local corpus = here .. "/data/licenses.txt"
os.execute("mkdir -p '" .. opts.out .. "'")
tensor.manual_seed(20261127)

-- 1. A byte-level BPE tokenizer trained on the corpus (deterministic).
local tokenizer = tok.train_bpe{ files = { corpus }, vocab_size = opts.quick and 320 or 512, special_tokens = { "<|endoftext|>" } }
tokenizer:save(opts.out .. "/tokenizer.json")

-- 2. The token stream, split 90/10 into training and validation text (by position, so no overlap).
local f = assert(io.open(corpus, "rb"))
local text = f:read("a")
f:close()
local ids = tokenizer:encode(text)
local split = math.floor(#ids * 0.9)
local train, valid = {}, {}
for i = 1, #ids do if i <= split then train[#train + 1] = ids[i] else valid[#valid + 1] = ids[i] end end
local V = tokenizer:vocab_size()
print(string.format("corpus: %d characters, %d tokens (vocab %d): %d train, %d validation", #text, #ids, V, #train, #valid))

-- Unigram baseline: cross entropy of the validation tokens under add-one-smoothed training frequencies.
local counts = {}
for _, t in ipairs(train) do counts[t] = (counts[t] or 0) + 1 end
local unigram = 0
for i = 2, #valid do
  unigram = unigram - math.log(((counts[valid[i]] or 0) + 1) / (#train + V))
end
unigram = unigram / (#valid - 1)

-- 3. Model, optimizer and schedule.
local ctx, batch = opts.quick and 64 or 128, 8
local config = opts.quick and { vocab = V, ctx = ctx, dim = 64, layers = 2, heads = 4 }
  or { vocab = V, ctx = ctx, dim = 128, layers = 4, heads = 4 }
local model = nn.gpt2(config)
local opt = optim.adamw(model:parameters(), { lr = 3e-3, betas = { 0.9, 0.95 }, weight_decay = 0.1 })
local total = opts.steps + opts.steps // 4
local schedule = optim.schedule{ kind = "cosine", lr = 3e-3, warmup = opts.steps // 10, total = total, min_lr = 3e-4 }
print(tostring(model):match("^[^\n]*"):gsub(" {$", "") .. string.format(" with %d parameters", model:num_params()))

-- Windows of ctx tokens: random ones for training, fixed consecutive ones for validation.
local function window(stream, start)
  local row = {}
  for j = 0, ctx - 1 do row[j + 1] = stream[start + j] end
  return row
end
local valid_batch = {}
for s = 1, #valid - ctx + 1, ctx do valid_batch[#valid_batch + 1] = window(valid, s) end
local valid_ids = tensor.new(valid_batch)

local function validation_loss(m)
  return tensor.no_grad(function() return m:loss(valid_ids):item() end)
end

local function train_steps(m, o, from, to)
  m:train()
  local loss
  for step = from, to do
    local rows = {}
    for b = 1, batch do rows[b] = window(train, tensor.randint(1, #train - ctx + 2, 1)[1]) end
    schedule:apply(o, step)
    o:zero_grad()
    loss = m:loss(tensor.new(rows))
    loss:backward()
    local norm = optim.clip_grad_norm(m:parameters(), 1.0)
    o:step()
    if step % 50 == 0 or step == to then
      print(string.format("step %4d  train loss %.3f  valid loss %.3f  grad norm %.2f  lr %.2e",
        step, loss:item(), validation_loss(m), norm, o:lr()))
    end
  end
  m:eval()
end

local start_loss = validation_loss(model)
print(string.format("unigram baseline %.3f nats/token; untrained model %.3f", unigram, start_loss))
local t0 = sys.clock()
train_steps(model, opt, 1, opts.steps)
local trained = validation_loss(model)
print(string.format("after %d steps (%.1f s): valid loss %.3f, %.3f nats below the unigram baseline",
  opts.steps, sys.clock() - t0, trained, unigram - trained))

-- 4. Save the model (a Hugging Face folder) and the optimizer state; reload both and continue.
model:save(opts.out .. "/model")
tensor.save(opts.out .. "/optimizer.safetensors", opt:state())
local reloaded = nn.load(opts.out .. "/model")
local opt2 = optim.adamw(reloaded:parameters(), { lr = 3e-3, betas = { 0.9, 0.95 }, weight_decay = 0.1 })
opt2:load_state(tensor.load(opts.out .. "/optimizer.safetensors"))
local again = validation_loss(reloaded)
assert(again == trained, string.format("reloaded model gives valid loss %.6f, saved %.6f", again, trained))
print("saved to " .. opts.out .. "/model and reloaded: same validation loss")
train_steps(reloaded, opt2, opts.steps + 1, total)
local final = validation_loss(reloaded)
print(string.format("continued to step %d: valid loss %.3f (unigram %.3f)", total, final, unigram))
reloaded:save(opts.out .. "/model")

-- A machine-readable last line for tests and notebooks.
print(string.format("RESULT unigram=%.4f start=%.4f trained=%.4f continued=%.4f", unigram, start_loss, trained, final))

-- rft_trainer.lua: rft.trainer on a tiny GPT-2 with the fixture tokenizer: a step's metrics and samples (TRL's
-- names; group advantages centred; scores from the grader), failing graders counted while training goes on, a
-- sandboxed rft.grader in the loop, the reward rising under a simple grader, pausing with fit(n) and resuming bit
-- for bit, the validation reward and OpenAI's keep-3-best checkpoints, Ctrl-C-free errors for bad options.

local MODEL = TEST_DIR .. "/../Fixtures/models/gpt2"
local E = check_error
local tk = tok.load(MODEL .. "/tokenizer.json")

local base = os.tmpname()
os.remove(base)
local function tmp(name) return base .. "-" .. name end

local words = { "red", "blue", "green", "cat", "dog", "sun", "moon", "tree" }
local prompts, validation = {}, {}
for i = 1, 16 do prompts[i] = { prompt = "Say " .. words[(i - 1) % 8 + 1] .. ":", word = words[(i - 1) % 8 + 1] } end
for i = 1, 6 do validation[i] = { prompt = "Say " .. words[i] .. ":", word = words[i] } end

-- Reward: the share of the completion's characters that are "a" (learnable by a tiny model: emit "a" tokens).
local function share_a(output)
  if #output == 0 then return 0 end
  local _, n = output:gsub("a", "")
  return n / #output
end

local function model(seed)
  tensor.manual_seed(seed)
  return nn.gpt2{ vocab = tk:vocab_size(), ctx = 64, dim = 32, layers = 2, heads = 4 }
end

local function trainer(m, o)
  local opts = { policy = m, tokenizer = tk, prompts = prompts, grader = function(out) return share_a(out) end,
                 group_size = 4, batch_size = 2, max_completion_length = 8, lr = 1e-2, seed = 5, progress = false }
  for k, v in pairs(o or {}) do opts[k] = v end
  return rft.trainer(opts)
end

test("a step: TRL's metrics, graded samples, centred group advantages", function()
  local tr = trainer(model(1))
  check_eq(tr:info().total_steps, 8, "16 prompts in batches of 2")
  local s = tr:step()
  check_eq(s.step, 1)
  for _, k in ipairs{ "loss", "reward", "reward_std", "frac_reward_zero_std", "completions/mean_length", "grad_norm",
                      "learning_rate", "grader_errors", "clip_ratio/region_mean" } do
    check(s[k] ~= nil, "metric " .. k)
  end
  local samples = tr:samples()
  check_eq(#samples, 8, "2 prompts x 4 completions")
  local sum, mean = 0, 0
  for i, x in ipairs(samples) do
    check_close(x.score, share_a(x.completion), 1e-12, "the grader's score")
    mean = mean + x.score / #samples
    if i <= 4 then sum = sum + x.advantage end
  end
  check_close(sum, 0, 1e-5, "a group's advantages sum to 0")
  check_close(s.reward, mean, 1e-6, "reward is the mean score")
  check_eq(s.grader_errors, 0)
  check(samples[1].prompt:find("Say", 1, true) == 1, samples[1].prompt)
  check_eq(#tr:samples(3), 3)
end)

test("failing graders are counted and the step goes on; sandboxed graders run in the loop", function()
  local calls = 0
  local tr = trainer(model(2), { grader = function(out)
    calls = calls + 1
    if calls % 3 == 0 then error("no verdict") end
    return #out > 3
  end })
  local s = tr:step()
  check_eq(calls, 8)
  check_eq(s.grader_errors, 2)
  check(tr:info().grader_error_examples[1]:find("no verdict", 1, true) ~= nil, tr:info().grader_error_examples[1])
  local bad = 0
  for _, x in ipairs(tr:samples()) do if x.error then bad = bad + 1; check(x.score ~= x.score, "NaN score") end end
  check_eq(bad, 2)
  -- an rft.grader: a sandboxed Lua grader that sometimes loops forever is stopped, counted, and the run goes on
  local g = rft.grader.lua([[
    return function(sample, item)
      if #sample.output_text % 5 == 0 then while true do end end
      return (sample.output_text:find(item.word, 1, true)) and 1 or 0
    end]])
  local t2 = trainer(model(3), { grader = g })
  local r = t2:step()
  check(r.loss == r.loss, "the step is finite")
  check(t2:info().grader_errors == r.grader_errors, "errors counted")
  local s2 = rft.grader.string_check{ input = "{{sample.output_text}}", reference = "{{item.word}}", operation = "like" }
  check(trainer(model(3), { grader = s2 }):step().reward >= 0, "a string_check grader")
end)

test("the reward rises under the grader", function()
  -- shorter answers score higher: the policy learns to end early (emit <|endoftext|>)
  local tr = trainer(model(4), { max_steps = 24, lr = 1e-2, grader = function(out) return math.max(0, 1 - #out / 40) end })
  local first, last = 0, 0
  for k = 1, 24 do
    local s = tr:step()
    if k <= 3 then first = first + s.reward / 3 end
    if k > 21 then last = last + s.reward / 3 end
  end
  print(string.format("rft_trainer: reward %.3f at the start, %.3f at the end", first, last))
  check(last > first + 0.25, string.format("reward %.3f at the start, %.3f at the end", first, last))
end)

test("fit(n) pauses with a checkpoint; a new trainer resumes bit for bit; validation reward and keep-3-best", function()
  local want = {}
  local whole = trainer(model(6), { max_steps = 6, validation = validation })
  for k = 1, 6 do want[k] = whole:step() end
  local dir = tmp("ckpt")
  local first = trainer(model(6), { max_steps = 6, validation = validation, checkpoints = dir, eval_every = 2 })
  local r = first:fit(3)
  check(r.paused, "paused")
  check_eq(r.steps, 3)
  check(r.eval.valid_reward_mean ~= nil, "evaluated at step 2")
  local second = trainer(model(99), { max_steps = 6, validation = validation, checkpoints = dir, eval_every = 2 })
  local s4 = second:step()
  check_eq(second:info().resumed_from, 3)
  check_eq(s4.loss, want[4].loss, "step 4 after resuming")
  check_eq(s4.reward, want[4].reward)
  local done = second:fit()
  check(not done.paused)
  check_eq(second:info().step, 6)
  check_eq(done.metrics.reward, want[6].reward, "step 6 after resuming")
  local ev = second:evaluate()
  check(ev.valid_reward_mean >= 0 and ev.valid_reward_mean <= 1, "valid_reward_mean")
  check_eq(ev.valid_grader_errors, 0)
  local mgr = ckpt.manager{ dir = dir }
  local kept = 0
  for _, e in ipairs(mgr:list()) do if e.metrics.valid_reward_mean then kept = kept + 1 end end
  check(kept >= 1 and kept <= 4, "the best checkpoints by valid_reward_mean (and the newest) are kept: " .. kept)
end)

test("bad options and calls are errors that say what is wrong", function()
  local m = model(7)
  local function T(o)
    return function() return trainer(m, o) end
  end
  E(function() rft.trainer() end, "rft.trainer: argument #1 (options) must be a table")
  E(function() rft.trainer{ tokenizer = tk, prompts = prompts, grader = share_a } end, "policy")
  E(T{ tokenizer = 3 }, "tokenizer")
  E(T{ prompts = {} }, "non-empty list")
  E(T{ prompts = { 5 } }, "item 1")
  E(T{ prompts = { { text = "x" } } }, "'prompt'")
  E(T{ grader = 3 }, "grader")
  E(T{ grader = false }, "grader")
  E(T{ group_size = 1 }, "group_size")
  E(T{ loss = "ppo" }, "ppo")
  E(T{ importance_sampling = "word" }, "importance_sampling")
  E(T{ scale_rewards = "all" }, "scale_rewards")
  E(T{ temperature = 0 }, "temperature")
  E(T{ beta = 0.1 }, "needs a reference")
  E(T{ eval_every = 2 }, "validation")
  E(T{ rollback = ckpt.policy{} }, "checkpoint manager")
  E(T{ reference = m }, "the reference is the policy")
  E(T{ max_completion_length = 100 }, "exceeds the model's 64 positions")
  E(T{ colour = 1 }, "colour")
  E(T{ prompt = 5 }, "prompt")
  E(function() trainer(m, { prompt = function() return 1 end }) end, "not a string")
  local tr = trainer(m)
  E(function() tr:evaluate() end, "no validation prompts")
  E(function() tr:fit(0) end, "steps")
  E(function() tr.step(5) end, "RFT trainer")
  E(function() tr:save() end, "no checkpoint manager")
  check(tostring(tr):find("RFTTrainer(dapo, group 4, step 0/8, 16 prompts)", 1, true) ~= nil, tostring(tr))
end)

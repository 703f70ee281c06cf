-- rft.lua: reinforcement fine-tuning of the quickstart's SFT model against a grader, on the quickstart's task
-- (two-digit addition, Scripts/data/quickstart/: "37+48=" -> "85").
--
--   tycho run Scripts/rft.lua [quick] [out=runs/rft] [sft=DIR] [NAME=VALUE ...]
--
-- 1. The SFT model: sft=DIR (a Hugging Face folder with tokenizer.json), by default OUT/sft, trained first with
--    quickstart.lua's SFT stage when it is not there (same seed, same model: 300 worked examples, about 8 s).
-- 2. The grader: OpenAI's string_check, {{sample.output_text}} equal to {{item.answer}} (score 1 or 0).
-- 3. rft.trainer: each step samples group_size answers to batch_size training prompts at temperature 1, grades them,
--    and makes a GRPO update (TRL's default dapo loss, group-relative advantages); every eval_every steps the
--    validation reward (greedy answers to held-out prompts, graded) goes to the run record, and the checkpoints keep
--    the 3 best by it (OpenAI RFT's rule).
-- 4. The table: greedy accuracy on the held-out test problems, SFT against RFT (eval.compare); OUT/summary.json.
--
-- Everything is seeded: the same command gives the same numbers.

local S = {
  seed = 3,
  group_size = 8, batch_size = 16, steps = 300, lr = 5e-5, temperature = 1.0, max_completion_length = 4,
  eval_every = 50, validation = 200, test_items = 400,
}
local opts = { out = "runs/rft", quick = false, sft = nil }
local overrides = {}
for _, a in ipairs(arg or {}) do
  local k, v = a:match("^([%w_]+)=(.*)$")
  if k == "out" then opts.out = v
  elseif k == "sft" then opts.sft = v
  elseif k and type(S[k]) == "number" then overrides[k] = math.tointeger(tonumber(v)) or assert(tonumber(v), k .. " must be a number")
  elseif a == "quick" then opts.quick = true
  else error("unknown argument " .. a .. " (quick, out=DIR, sft=DIR, or NAME=VALUE: steps, lr, group_size, ...)") end
end
if opts.quick then S.steps, S.validation, S.test_items, S.eval_every = 100, 200, 200, 25 end
for k, v in pairs(overrides) do S[k] = v end

local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
local task_dir = here .. "/data/quickstart"
os.execute("mkdir -p '" .. opts.out .. "'")
local t_start = sys.clock()

-- 1. The SFT model ---------------------------------------------------------------------------------------------------
local sft_dir = opts.sft or (opts.out .. "/sft")
local f = io.open(sft_dir .. "/config.json")
if f then
  f:close()
else
  print("no SFT model in " .. sft_dir .. ": training it with quickstart.lua's SFT stage")
  local saved = arg
  arg = { [0] = here .. "/quickstart.lua", "sft_only=1", "seed=" .. S.seed, "out=" .. (sft_dir:match("^(.*)/sft$") or opts.out) }
  dofile(here .. "/quickstart.lua")
  arg = saved
end
local tokenizer = tok.load(sft_dir .. "/tokenizer.json")

local function first(rows, n)
  local out = {}
  for i = 1, math.min(n, #rows) do out[i] = rows[i] end
  return out
end
local prompts = data.jsonl(task_dir .. "/train.jsonl")
local validation = first(data.jsonl(task_dir .. "/eval.jsonl"), S.validation)
local test_items = first(data.jsonl(task_dir .. "/test.jsonl"), S.test_items)

-- 2. The grader ----------------------------------------------------------------------------------------------------
local grader = rft.grader.string_check{ name = "exact", input = "{{sample.output_text}}", reference = "{{item.answer}}", operation = "eq" }
local ok, problems = rft.grader.validate(grader, validation)
assert(ok, "the grader's templates do not fit the data: " .. tostring(problems[1] and problems[1].message))
print(string.format("grader: %s; %s -> %s scores %g", tostring(grader), validation[1].prompt, validation[1].answer,
  (grader:run(validation[1].answer, validation[1]))))

local function test_accuracy(m)
  return eval.task(m, tokenizer, test_items, { grader = function(out, item) return out == item.answer end,
                                                max_tokens = S.max_completion_length, batch_size = 64, keep_samples = false }).accuracy
end

-- 3. RFT -----------------------------------------------------------------------------------------------------------
local reference = nn.load(sft_dir):freeze():eval()
local policy = nn.load(sft_dir)
local before = test_accuracy(reference)
os.execute("rm -rf '" .. opts.out .. "/ckpt' '" .. opts.out .. "/runs'")
local r = run.start{ name = "rft", dir = opts.out .. "/runs", config = S, seed = S.seed }
r:add_data(task_dir .. "/train.jsonl")
r:add_data(task_dir .. "/eval.jsonl")
local tr = rft.trainer{
  policy = policy, tokenizer = tokenizer, prompts = prompts, validation = validation, grader = grader,
  group_size = S.group_size, batch_size = S.batch_size, max_steps = S.steps, temperature = S.temperature,
  max_completion_length = S.max_completion_length, seed = S.seed, eval_every = S.eval_every,
  optimizer = optim.adamw(policy:parameters(), { lr = S.lr, betas = { 0.9, 0.98 }, weight_decay = 0 }),
  checkpoints = opts.out .. "/ckpt", rollback = ckpt.policy{ on_nonfinite = true }, run = r,
  progress = "lines", log_every = S.eval_every,
}
local t0 = sys.clock()
local fit = tr:fit()
local seconds_rft = sys.clock() - t0
policy:eval()
print("samples of the last step (prompt, answer, score, advantage):")
for _, s in ipairs(tr:samples(8)) do
  print(string.format("  %-7s %-5s %4.1f %+6.3f", s.prompt, string.format("%q", s.completion), s.score, s.advantage))
end

-- 4. Before and after ----------------------------------------------------------------------------------------------
local after = test_accuracy(policy)
local valid = {}
for _, e in ipairs(ckpt.manager{ dir = opts.out .. "/ckpt" }:list()) do
  if e.metrics.valid_reward_mean then valid[#valid + 1] = string.format("%d:%.3f", e.step, e.metrics.valid_reward_mean) end
end
r:event{ kind = "eval", step = S.steps, sft_test_accuracy = before, rft_test_accuracy = after }
r:finish()
local history = {}
for _, line in ipairs(data.jsonl(opts.out .. "/runs/rft/metrics.jsonl")) do
  if line.valid_reward_mean then history[#history + 1] = string.format("%d:%.3f", line.step, line.valid_reward_mean) end
end
print("valid_reward_mean by step: " .. table.concat(history, "  "))
print("checkpoints kept (step:valid_reward_mean): " .. table.concat(valid, "  "))
print("")
local results = { [reference] = before, [policy] = after }
eval.compare({ { "SFT", reference }, { "RFT", policy } }, { ["test accuracy"] = function(m) return results[m] end },
             { title = string.format("%d held-out test problems, greedy", #test_items) })
local first_valid, last_valid
for _, line in ipairs(data.jsonl(opts.out .. "/runs/rft/metrics.jsonl")) do
  if line.valid_reward_mean then
    first_valid = first_valid or line.valid_reward_mean
    last_valid = line.valid_reward_mean
  end
end
data.write_jsonl(opts.out .. "/summary.json", { {
  settings = S, quick = opts.quick, sft_test_accuracy = before, rft_test_accuracy = after,
  valid_reward_first = first_valid, valid_reward_last = last_valid, grader_errors = tr:info().grader_errors,
  seconds = { rft = seconds_rft, total = sys.clock() - t_start },
} })
print(string.format("RFT: %d steps in %.1f s (total %.1f s); run record: tycho runs show rft --dir %s/runs",
  tr:info().step, seconds_rft, sys.clock() - t_start, opts.out))
print(string.format("RESULT sft_test=%.4f rft_test=%.4f valid_first=%.4f valid_last=%.4f", before, after, first_valid, last_valid))

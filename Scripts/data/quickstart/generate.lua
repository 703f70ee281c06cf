-- generate.lua: writes the quickstart task's data (sft.jsonl, train.jsonl, eval.jsonl, test.jsonl beside this file).
--
--   tycho run Scripts/data/quickstart/generate.lua [seed=20261201] [out=DIR]
--
-- The task: two-digit addition, "37+48=" -> "85". Every problem a+b with a and b in 10..99 (8,100 of them) is
-- shuffled with Lua's own generator (xoshiro256**, the same on every machine for the same seed) and cut into
-- four disjoint splits:
--   sft.jsonl      300 problems: the worked examples SFT trains on (few on purpose: the model learns part of the task)
--   train.jsonl  3,500 problems: the prompts whose own samples, graded, become the DPO preference pairs
--   eval.jsonl     400 problems: held out; preference pairs for the eval table come from these prompts
--   test.jsonl     400 problems: held out; greedy accuracy before and after DPO
-- Each row is {"prompt": "37+48=", "answer": "85"}; the answer is checkable by exact match. A character-level
-- tokenizer turns a prompt into 6 tokens and an answer into 2 or 3, plus the end-of-text token.
-- The rows shipped in the repo are this script's output with the default seed (rerun it: the files are the same).

local opts = { seed = 20261201, out = nil }
for _, a in ipairs(arg or {}) do
  local k, v = a:match("^(%w+)=(.*)$")
  if k == "seed" then opts.seed = assert(math.tointeger(tonumber(v)), "seed must be an integer")
  elseif k == "out" then opts.out = v
  else error("unknown argument " .. a .. " (seed=N, out=DIR)") end
end
local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
local out = opts.out or here

local problems = {}
for a = 10, 99 do
  for b = 10, 99 do
    problems[#problems + 1] = { prompt = string.format("%d+%d=", a, b), answer = tostring(a + b) }
  end
end

-- Fisher-Yates with Lua 5.4's seeded generator.
math.randomseed(opts.seed)
for i = #problems, 2, -1 do
  local j = math.random(i)
  problems[i], problems[j] = problems[j], problems[i]
end

local sizes = { { "sft", 300 }, { "train", 3500 }, { "eval", 400 }, { "test", 400 } }
local at = 0
for _, s in ipairs(sizes) do
  local rows = {}
  for i = 1, s[2] do rows[i] = problems[at + i] end
  at = at + s[2]
  local path = out .. "/" .. s[1] .. ".jsonl"
  data.write_jsonl(path, rows)
  print(string.format("%s: %d problems", path, #rows))
end

-- infer_batch.lua: infer.batch from Lua on the tiny GPT-2 fixture: a job from a folder and from objects
-- (same bytes), the summary table, the budget and resuming, a chat template written in Lua, and bad arguments
-- raising errors that name infer.batch.

local FIX = TEST_DIR .. "/../Fixtures/models/"
local base = os.tmpname()
local function path(name) return base .. "_" .. name end
local function read(p)
  local f = io.open(p, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local function request(id, prompt, extra)
  local body = {prompt = prompt, max_tokens = 5}
  for k, v in pairs(extra or {}) do body[k] = v end
  return {custom_id = id, method = "POST", url = "/v1/completions", body = body}
end

local function chat(id, content)
  return {custom_id = id, method = "POST", url = "/v1/chat/completions",
          body = {messages = {{role = "user", content = content}}, max_tokens = 3}}
end

data.write_jsonl(path("in.jsonl"), {
  request("a", "Licensed under", {temperature = 0}),
  request("b", "Hello", {n = 2, seed = 4}),
  chat("c", "Hi"),
  {custom_id = "d", method = "GET", url = "/v1/completions", body = {prompt = "x"}},
  request("a", "duplicate"),
})

test("a job from a model folder", function()
  local s = infer.batch{input = path("in.jsonl"), output = path("out.jsonl"), model = FIX .. "gpt2", batch_size = 2, backoff = 0}
  check_eq(s.done, 3, "done")
  check_eq(s.failed, 0, "failed")
  check_eq(s.invalid, 2, "invalid")
  check_eq(table.concat(s.invalid_lines, ","), "4,5", "invalid lines")
  check_eq(s.left, 0, "left")
  check(s.complete, "complete")
  check_eq(s.stopped_by, nil, "stopped_by")
  check(s.total_tokens == s.prompt_tokens + s.completion_tokens and s.completion_tokens > 0, "tokens")
  check(s.job_id:match("^batch_%x+$") ~= nil, "job id " .. s.job_id)
  check_eq(s.errors, path("out.errors.jsonl"), "default errors file")
  local rows = data.jsonl(path("out.jsonl"))
  check_eq(#rows, 3, "output rows")
  check_eq(rows[1].custom_id, "a")
  check_eq(rows[1].response.status_code, 200)
  check_eq(rows[1].response.body.object, "text_completion")
  check_eq(rows[1].response.body.model, "gpt2")
  check_eq(#rows[2].response.body.choices, 2, "n = 2")
  check_eq(rows[3].response.body.choices[1].message.role, "assistant")
  check_eq(rows[1].error, data.null)
  local errs = data.jsonl(path("out.errors.jsonl"))
  check_eq(#errs, 2, "errors rows")
  check_eq(errs[1].error.code, "invalid_method")
  check_eq(errs[1].error.line, 4)
  check_eq(errs[2].error.code, "duplicate_custom_id")
  check_eq(errs[2].response, data.null)
  -- Rerun: nothing to do, same bytes.
  local before = read(path("out.jsonl"))
  local again = infer.batch{input = path("in.jsonl"), output = path("out.jsonl"), model = FIX .. "gpt2"}
  check_eq(again.skipped, 3, "skipped")
  check_eq(again.done, 0, "done on rerun")
  check_eq(read(path("out.jsonl")), before, "rerun changes nothing")
end)

test("a job from a model and tokenizer object gives the same bytes", function()
  local m = nn.load(FIX .. "gpt2")
  local t = tok.load(FIX .. "gpt2/tokenizer.json")
  local s = infer.batch{input = path("in.jsonl"), output = path("obj.jsonl"), model = m, tokenizer = t, batch_size = 3}
  check_eq(s.done, 3)
  check_eq(read(path("obj.jsonl")), read(path("out.jsonl")), "folder and objects agree")
  check_eq(read(path("obj.errors.jsonl")), read(path("out.errors.jsonl")), "same errors")
end)

test("the budget leaves requests for the rerun", function()
  local opts = {input = path("in.jsonl"), output = path("budget.jsonl"), model = FIX .. "gpt2", batch_size = 1,
                max_total_tokens = 1}
  local s = infer.batch(opts)
  check_eq(s.done, 1, "one request ran")
  check_eq(s.left, 2, "left")
  check_eq(s.complete, false)
  check_eq(s.stopped_by, "max_total_tokens")
  opts.max_total_tokens = nil
  local rest = infer.batch(opts)
  check(rest.complete and rest.done == 2 and rest.skipped == 1, "the rerun finishes")
  check_eq(read(path("budget.jsonl")), read(path("out.jsonl")), "same bytes as the uninterrupted job")
  local none = infer.batch{input = path("in.jsonl"), output = path("none.jsonl"), model = FIX .. "gpt2", max_seconds = 0}
  check(none.left == 3 and none.stopped_by == "max_seconds", "max_seconds = 0 runs nothing")
end)

test("a chat template written in Lua", function()
  data.write_jsonl(path("chat.jsonl"), {chat("x", "Hi"), chat("boom", "explode")})
  local seen = {}
  local s = infer.batch{input = path("chat.jsonl"), output = path("chat_out.jsonl"), model = FIX .. "gpt2",
    chat_template = function(messages)
      seen[#seen + 1] = messages[1].role .. ":" .. messages[1].content
      if messages[1].content == "explode" then error("no template for this") end
      return "<<" .. messages[1].content .. ">>"
    end}
  check_eq(s.done, 1)
  check_eq(s.invalid, 1, "the failing render makes that line invalid")
  check_eq(table.concat(seen, ","), "user:Hi,user:explode")
  local t = tok.load(FIX .. "gpt2/tokenizer.json")
  local rows = data.jsonl(path("chat_out.jsonl"))
  check_eq(rows[1].response.body.usage.prompt_tokens, #t:encode("<<Hi>>", {add_special = false}), "the function's prompt ran")
  local errs = data.jsonl(path("chat_out.errors.jsonl"))
  check(errs[1].error.message:find("no template for this", 1, true) ~= nil, errs[1].error.message)
  local plain = infer.batch{input = path("chat.jsonl"), output = path("chat_plain.jsonl"), model = FIX .. "gpt2",
                            chat_template = "plain"}
  check_eq(plain.done, 2)
end)

test("bad arguments name infer.batch", function()
  local good = {input = path("in.jsonl"), output = path("bad.jsonl"), model = FIX .. "gpt2"}
  local function with(changes)
    local o = {}
    for k, v in pairs(good) do o[k] = v end
    for k, v in pairs(changes) do if v == "NIL" then o[k] = nil else o[k] = v end end
    return o
  end
  check_error(function() infer.batch() end, "infer.batch: argument #1 (options) must be a table, got no value")
  check_error(function() infer.batch("x") end, "infer.batch: argument #1 (options) must be a table, got string")
  check_error(function() infer.batch({}, 2) end, "infer.batch: expected at most 1 argument, got 2")
  check_error(function() infer.batch(with{input = "NIL"}) end, "infer.batch: argument #1 (options) must be a table with input = a JSONL file path")
  check_error(function() infer.batch(with{output = "NIL"}) end, "infer.batch: argument #1 (options) must be a table with output = a JSONL file path")
  check_error(function() infer.batch(with{input = 3}) end, "infer.batch: argument #1 (options) must be a table whose field 'input' is a string, got number")
  check_error(function() infer.batch(with{max_attemps = 3}) end, "unknown option 'max_attemps'")
  check_error(function() infer.batch(with{max_attempts = 0}) end, "infer.batch: argument #1 (options) must be a table whose field 'max_attempts' is at least 1, got 0")
  check_error(function() infer.batch(with{max_attempts = 1.5}) end, "field 'max_attempts' is an integer")
  check_error(function() infer.batch(with{batch_size = 0}) end, "field 'batch_size' is at least 1")
  check_error(function() infer.batch(with{backoff = -1}) end, "field 'backoff' is a number of seconds >= 0")
  check_error(function() infer.batch(with{max_total_tokens = -5}) end, "field 'max_total_tokens' is >= 0")
  check_error(function() infer.batch(with{max_seconds = "soon"}) end, "field 'max_seconds' is a number, got string")
  check_error(function() infer.batch(with{retry_failed = 1}) end, "field 'retry_failed' is a boolean")
  check_error(function() infer.batch(with{model = "NIL"}) end, "infer.batch: argument #1 (options) must be a table whose field 'model' is a model folder or an nn language model, got nil")
  check_error(function() infer.batch(with{model = 42}) end, "field 'model' is a model folder or an nn language model, got number")
  check_error(function() infer.batch(with{model = nn.linear(2, 2)}) end, "field 'model' is a language model (nn.gpt2, nn.llama or nn.load), got Linear")
  check_error(function() infer.batch(with{model = nn.load(FIX .. "gpt2")}) end, "infer.batch: argument #1 (options) must be a table with tokenizer = a tokenizer or a tokenizer.json path")
  check_error(function() infer.batch(with{tokenizer = 42}) end, "field 'tokenizer' is a tokenizer or a tokenizer.json path, got number")
  check_error(function() infer.batch(with{tokenizer = path("missing.json")}) end, "infer.batch:")
  check_error(function() infer.batch(with{model = path("nowhere")}) end, "infer.batch: cannot read " .. path("nowhere") .. "/config.json")
  check_error(function() infer.batch(with{input = path("missing.jsonl")}) end, "infer.batch: " .. path("missing.jsonl") .. ": cannot read")
  check_error(function() infer.batch(with{output = path("in.jsonl")}) end, "infer.batch: the input and output files are the same file")
  check_error(function() infer.batch(with{chat_template = "jinja"}) end, "field 'chat_template' is auto, chatml, llama3, plain or a function, got 'jinja'")
  check_error(function() infer.batch(with{chat_template = 5}) end, "field 'chat_template' is a template name or a function, got number")
  local shown, print0 = nil, print
  print = function(s) shown = s end
  help(infer.batch)
  print = print0
  check(shown and shown:find("infer.batch(options)", 1, true) == 1, "help: " .. tostring(shown))
end)

for _, name in ipairs({"in.jsonl", "out.jsonl", "out.errors.jsonl", "obj.jsonl", "obj.errors.jsonl", "budget.jsonl",
                       "budget.errors.jsonl", "none.jsonl", "none.errors.jsonl", "chat.jsonl", "chat_out.jsonl",
                       "chat_out.errors.jsonl", "chat_plain.jsonl", "bad.jsonl", "bad.errors.jsonl"}) do
  os.remove(path(name))
end
os.remove(base)

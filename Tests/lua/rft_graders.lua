-- rft_graders.lua: rft.grader.* (string_check, text_similarity, lua, multi, from_spec, validate).
-- Metric values come from Tests/Fixtures/grader_fixtures.lua, written by the committed script
-- Tests/Fixtures/gen_grader_fixtures.py (rapidfuzz, sacrebleu, nltk, rouge-score); everything else is hand-worked.

local F = dofile(TEST_DIR .. "/../Fixtures/grader_fixtures.lua")
local G = rft.grader

-- Two constant graders for formulas: a scores 0.5, b scores 2.
local A = G.lua[[return function(sample, item) return 0.5 end]]
local B = G.lua[[return function(sample, item) return 2 end]]

test("text_similarity matches the reference packages on every fixture pair", function()
  check(#F.rows >= 70, "fixtures loaded")
  check_eq(F.sacrebleu, "2.6.0", "fixtures from sacrebleu 2.6.0")
  local metrics = {"fuzzy_match", "bleu", "gleu", "rouge_1", "rouge_2", "rouge_3", "rouge_4", "rouge_5", "rouge_l"}
  for _, m in ipairs(metrics) do
    local g = G.text_similarity{reference = "{{item.ref}}", metric = m}
    local got, want = {}, {}
    for i, r in ipairs(F.rows) do
      got[i] = g:run(r.candidate, {ref = r.reference})
      want[i] = r[m]
    end
    check_close(got, want, 1e-12, m)
  end
end)

test("text_similarity by hand", function()
  local function sim(metric, a, b)
    return (G.text_similarity{input = a, reference = b, metric = metric}:run(""))
  end
  -- kitten/sitting: LCS "ittn" = 4, Indel distance 6 + 7 - 8 = 5, ratio 1 - 5/13
  check_close(sim("fuzzy_match", "kitten", "sitting"), 1 - 5 / 13, 1e-15, "fuzzy kitten")
  check_eq(sim("fuzzy_match", "", ""), 1, "fuzzy of two empty strings")
  check_eq(sim("fuzzy_match", "abc", ""), 0, "fuzzy with one empty string")
  -- all n-grams of "the cat sat" are in the reference: BLEU is the brevity penalty exp(1 - 6/3)
  check_close(sim("bleu", "the cat sat", "the cat sat on the mat"), math.exp(-1), 1e-14, "bleu brevity")
  check_eq(sim("bleu", "", "x"), 0, "bleu of nothing")
  -- GLEU: 3 + 2 + 1 hypothesis n-grams all match; the reference has 6 + 5 + 4 + 3
  check_close(sim("gleu", "the cat sat", "the cat sat on the mat"), 6 / 18, 1e-15, "gleu")
  -- ROUGE-1: p = 3/3, r = 3/6; ROUGE-2: p = 2/2, r = 2/5; ROUGE-L: LCS 3 as ROUGE-1
  check_close(sim("rouge_1", "the cat sat", "the cat sat on the mat"), 2 * 1 * 0.5 / 1.5, 1e-15, "rouge_1")
  check_close(sim("rouge_2", "the cat sat", "the cat sat on the mat"), 2 * 0.4 / 1.4, 1e-15, "rouge_2")
  -- ROUGE-L: the LCS of (police killed the gunman) and (the gunman killed the police) is 2 tokens: p = 2/4, r = 2/5
  check_close(sim("rouge_l", "police killed the gunman", "the gunman killed the police"), 4 / 9, 1e-15, "rouge_l")
  check_eq(sim("rouge_1", "The CAT!", "the cat"), 1, "rouge lowercases and drops punctuation")
  local g = G.text_similarity{input = "{{sample.output_text}}", reference = "{{item.ref}}", metric = "rouge_1",
                              pass_threshold = 0.6}
  local s, d = g:run("the cat sat", {ref = "the cat sat on the mat"})
  check(d.passed == true and d.evaluation_metric == "rouge_1" and d.type == "text_similarity", "passed at 0.667 >= 0.6")
  s, d = g:run("a dog", {ref = "the cat sat on the mat"})
  check(s == 0 and d.passed == false, "failed below the threshold")
  local e = G.text_similarity{reference = "x", evaluation_metric = "gleu"}
  check_eq(select(2, e:run("x")).evaluation_metric, "gleu", "evaluation_metric is accepted for metric")
end)

test("string_check by hand", function()
  local function sc(op, input, ref) return (G.string_check{input = input, reference = ref, operation = op}:run("")) end
  check_eq(sc("eq", "Paris", "Paris"), 1, "eq")
  check_eq(sc("eq", "Paris", "paris"), 0, "eq is case-sensitive")
  check_eq(sc("ne", "Paris", "paris"), 1, "ne")
  check_eq(sc("ne", "a", "a"), 0, "ne equal")
  check_eq(sc("like", "The capital is Paris.", "Paris"), 1, "like: contains")
  check_eq(sc("like", "The capital is PARIS.", "Paris"), 0, "like is case-sensitive")
  check_eq(sc("ilike", "The capital is PARIS.", "paris"), 1, "ilike ignores case")
  check_eq(sc("like", "anything", ""), 1, "the empty reference is contained")
  check_eq(sc("eq", "e\204\129", "\195\169"), 0, "code points compare, not canonical equivalents")
  local g = G.string_check{reference = "{{item.answer}}"}  -- input defaults to the output, operation to eq
  local s, d = g:run("42", {answer = "42"})
  check(s == 1 and d.type == "string_check" and d.name == "string_check" and d.operation == "eq", "defaults")
  check_eq((g:run("42", {answer = 42})), 1, "a number renders as JSON text")
  check_eq((g:run({output_text = "41"}, {answer = "42"})), 0, "sample as a table")
end)

test("templates", function()
  local item = {answer = "Paris", meta = {city = {name = "Lyon"}, tags = {"a", "b"}}, n = 3, x = 1.5, ok = true,
                list = {{v = "first"}, {v = "second"}}}
  local function eq(t, want, sample)
    local it = {}
    for k, v in pairs(item) do it[k] = v end
    it.want = want
    local s, d = G.string_check{input = t, reference = "{{item.want}}"}:run(sample or "out", it)
    return check(s == 1, "template " .. t .. " -> " .. want .. (d.error and (" (" .. d.error .. ")") or ""))
  end
  eq("{{item.answer}}", "Paris")
  eq("{{ item.answer }}!", "Paris!")
  eq("{{item.meta.city.name}}", "Lyon")
  eq("{{item.meta.tags[1]}}/{{item.meta.tags.0}}", "b/a")
  eq("{{item.list[1].v}}", "second")
  eq("{{item.n}} {{item.x}} {{item.ok}}", "3 1.5 true")
  eq("{{item.meta.tags}}", '["a", "b"]')
  eq("<{{sample.output_text}}>", "<out>")
  eq("{{sample.output_json.score}}", "7", '{"score": 7}')
  eq("{{sample.output_json.a.b}}", "x", {output_text = "ignored", output_json = {a = {b = "x"}}})
  local g = G.string_check{input = "{{item.missing}}", reference = "x"}
  local s, d = g:run("out", item)
  check(s == 0 and d.error_kind == "invalid_variable_error" and d.error:find("item.missing", 1, true), "missing field")
  g = G.string_check{input = "{{sample.output_json.score}}", reference = "1"}
  s, d = g:run("not json", {})
  check(s == 0 and d.error_kind == "sample_parse_error", "output_json of a non-JSON answer")
  s, d = g:run('{"other": 1}', {})
  check(d.error_kind == "invalid_variable_error", "output_json without the field")
  check_error(function() G.string_check{input = "{{item.answer", reference = "x"} end, "without a closing '}}'")
  check_error(function() G.string_check{input = "{{item}}", reference = "x"} end, "name a variable")
  check_error(function() G.string_check{input = "{{answer}}", reference = "x"} end, "namespace must be item or sample")
  check_error(function() G.string_check{input = "{{data.answer}}", reference = "x"} end, "namespace must be item or sample")
  check_error(function() G.string_check{input = "{{sample.text}}", reference = "x"} end, "sample.output_text and sample.output_json")
  check_error(function() G.string_check{input = "{{sample.output_text.x}}", reference = "x"} end, "without fields")
  check_error(function() G.string_check{input = "{{item.a[x]}}", reference = "x"} end, "non-negative index")
end)

test("multi formulas", function()
  local function f(formula)
    local g = G.multi{graders = {a = A, b = B}, formula = formula}
    return g:run("x", {})
  end
  check_close(f("a + b * 2"), 4.5, 1e-15, "* before +")
  check_close(f("(a + b) * 2"), 5, 1e-15, "parentheses")
  check_close(f("b - a - a"), 1, 1e-15, "- is left-associative")
  check_close(f("b / b / 2"), 0.5, 1e-15, "/ is left-associative")
  check_close(f("2 ^ 3 ^ 2"), 512, 1e-12, "^ is right-associative")
  check_close(f("-b ^ 2"), -4, 1e-15, "^ binds tighter than unary minus")
  check_close(f("b ^ -1"), 0.5, 1e-15, "negative exponent")
  check_close(f("- -a"), 0.5, 1e-15, "double negation")
  check_close(f("min(a, b, 0.1)"), 0.1, 1e-15, "min")
  check_close(f("max(a, b)"), 2, 1e-15, "max")
  check_close(f("abs(a - b)"), 1.5, 1e-15, "abs")
  check_close(f("floor(a + b) + ceil(a)"), 3, 1e-15, "floor, ceil")
  check_close(f("exp(0) + sqrt(b * 2) + log(b)"), 1 + 2 + math.log(2), 1e-15, "exp, sqrt, log")
  check_close(f("1.5e1 * a"), 7.5, 1e-15, "exponent notation")
  check_close(f("0.5 * a + 0.5 * b"), 1.25, 1e-15, "the issue's example")
  local s, d = f("a / (b - 2)")
  check(s == 0 and d.error_kind == "other_error" and d.error:find("division by zero", 1, true), "division by zero is an error")
  s, d = f("sqrt(a - b)")
  check(s == 0 and d.error:find("sqrt of a negative", 1, true), "sqrt domain")
  s, d = f("log(a - a)")
  check(s == 0 and d.error:find("log of a non-positive", 1, true), "log domain")
  s, d = f("exp(1000 * b)")
  check(s == 0 and d.error:find("not finite", 1, true), "overflow")
  s, d = f("a + b")
  check(d.type == "multi" and d.sub_scores.a == 0.5 and d.sub_scores.b == 2 and d.sub_details.b.type == "lua", "sub-scores")
  check_error(function() f("a +") end, "calculate_output: the formula ends")
  check_error(function() f("a + c") end, "unknown name 'c' (the graders are a, b)")
  check_error(function() f("pow(a, 2)") end, "unknown function 'pow'")
  check_error(function() f("abs(a, b)") end, "abs takes 1 argument, got 2")
  check_error(function() f("(a + b") end, "expected ')'")
  check_error(function() f("a b") end, "unexpected 'b'")
  check_error(function() f("") end, "the formula is empty")
  check_error(function() f(string.rep("(", 300) .. "a" .. string.rep(")", 300)) end, "deeper than 200")
  check_error(function() G.multi{graders = {["1x"] = A}, formula = "1"} end, "identifiers")
  check_error(function() G.multi{graders = {a = A}} end, "multi needs a formula")
  check_error(function() G.multi{formula = "a"} end, "multi needs graders")
  check_error(function() G.multi{graders = {a = 5}, formula = "a"} end, "graders.a: a grader must be")
  -- a sub-grader's error is the multi's error, with its name
  local m = G.multi{graders = {a = A, s = {type = "string_check", input = "{{item.nope}}", reference = "x"}},
                    calculate_output = "a + s"}
  s, d = m:run("x", {})
  check(s == 0 and d.error_kind == "invalid_variable_error" and d.error:find("grader 's'", 1, true), "sub-grader error")
  -- nested multi
  local inner = G.multi{graders = {a = A, b = B}, formula = "a * b", name = "inner"}
  local outer = G.multi{graders = {i = inner, b = B}, formula = "i + b"}
  check_close((outer:run("x")), 3, 1e-15, "nested multi")
end)

test("from_spec and spec round trips", function()
  local g = G.from_spec[[{"type": "string_check", "name": "exact", "input": "{{sample.output_text}}",
                          "reference": "{{item.answer}}", "operation": "eq"}]]
  check_eq(tostring(g), "Grader(string_check 'exact')", "tostring")
  check_eq((g:run("4", {answer = "4"})), 1, "from JSON")
  local spec = {type = "multi", name = "combo", calculate_output = "0.5 * e + 0.5 * t",
                graders = {e = {type = "string_check", input = "{{sample.output_text}}", reference = "{{item.answer}}", operation = "ilike"},
                           t = {type = "text_similarity", input = "{{sample.output_text}}", reference = "{{item.answer}}",
                                evaluation_metric = "fuzzy_match", pass_threshold = 0.8},
                           l = {type = "lua", source = "return function(s, i) return 1 end"}}}
  spec.calculate_output = "0.5 * e + 0.5 * t + 0 * l"
  local m = G.from_spec(spec)
  check_close((m:run("ab", {answer = "AB"})), 0.5, 1e-15, "multi from a table spec")
  local back = m:spec()
  check(back.type == "multi" and back.graders.t.evaluation_metric == "fuzzy_match" and back.graders.l.type == "lua"
        and back.graders.l.source:find("return 1"), "spec back")
  local again = G.from_spec(back)
  check_close((again:run("ab", {answer = "AB"})), 0.5, 1e-15, "from_spec(g:spec()) grades the same")
  check_error(function() G.from_spec{type = "python", source = "def grade(s, i): return 1"} end, "python graders are not supported")
  check_error(function() G.from_spec{type = "string_check", reference = "x", operaton = "eq"} end, "has no field 'operaton'")
  check_error(function() G.from_spec{type = "text_similarity", reference = "x", evaluation_metric = "meteor"} end, "WordNet")
  check_error(function() G.from_spec{type = "bogus"} end, "unknown grader type 'bogus'")
  check_error(function() G.from_spec{reference = "x"} end, "needs a 'type'")
  check_error(function() G.from_spec("{not json") end, "must be JSON")
  check_error(function() G.from_spec{type = "multi", graders = {a = {type = "string_check"}}, calculate_output = "a"} end,
              "graders.a: string_check needs a 'reference'")
  check_error(function() G.from_spec{type = "lua", source = "return 1"} end, "must return a function")
end)

test("validate reports variables the data lacks", function()
  local m = G.multi{graders = {q = G.string_check{reference = "{{item.answer}}"},
                               r = G.text_similarity{reference = "{{item.ref.text}}", metric = "bleu"}},
                    formula = "q + r"}
  local ok, problems = G.validate(m, {{answer = "a", ref = {text = "x"}}, {answer = "b"}, {ref = {text = "y"}}, {}})
  check(ok == false and #problems == 2, "two problems")
  check(problems[1].grader == "q" and problems[1].variable == "item.answer" and problems[1].missing == 2
        and problems[1].first == 3 and problems[1].rows == 4, "item.answer: rows 3 and 4")
  check(problems[2].grader == "r" and problems[2].variable == "item.ref.text" and problems[2].first == 2, "item.ref.text")
  check(problems[1].message:find("missing from 2 of 4 rows", 1, true), "message: " .. problems[1].message)
  ok, problems = G.validate(m, {answer = "a", ref = {text = "t"}})
  check(ok and #problems == 0, "one row, complete")
  ok = G.validate({type = "string_check", reference = "{{item.x}}", input = "{{sample.output_json.y}}"}, {{x = 1}})
  check(ok, "a spec; sample variables are not the data's business")
  ok, problems = G.validate(m)
  check(ok and #problems == 0, "no data: only the construction is checked")
  check_error(function() G.validate(m, {1, 2}) end, "rft.grader.validate: argument #2 (rows) must be a list of rows")
end)

test("lua graders: sample, item, details", function()
  local g = G.lua(function(sample, item)
    print("grading", item.id)
    local ok = sample.output_json and sample.output_json.answer == item.answer
    return ok and 1 or 0, {seen = sample.output_text, null_is = item.nothing == null}
  end, {name = "json_answer"})
  local s, d = g:run('{"answer": 42}', {id = 7, answer = 42, nothing = data.null})
  check(s == 1 and d.type == "lua" and d.name == "json_answer", "graded")
  check(d.returned.seen == '{"answer": 42}' and d.returned.null_is == true, "returned details; JSON null is null")
  check_eq(d.log, "grading\t7\n", "print goes to details.log")
  check(type(d.instructions) == "number" and type(d.memory_kb) == "number", "usage in details")
  check_eq((g:run({output_text = "x", output_json = {answer = 42}}, {answer = 42})), 1, "output_json given")
  check_eq((G.lua[[function grade(sample, item) return sample.output_text == "yes" end]]:run("yes")), 1,
           "a global grade function; booleans score 1 or 0")
  local function grade(sample, item) return #sample.output_text / 10 end
  check_close((G.lua(grade):run("abcd")), 0.4, 1e-15, "a local function's text")
  local M = {}
  function M:method(sample, item) return self.output_text == "x" and sample.k == 2 and 1 or 0 end
  check_eq((G.lua(M.method):run("x", {k = 2})), 1, "a method's text (self first: called as M.method(sample, item))")
  local f = load("return rft.grader.lua(function(s, i) return 0.75 end)")
  check_close((f():run("x")), 0.75, 1e-15, "a function in a loaded string keeps its text")
  local k = 1
  check_error(function() G.lua(function(s, i) return k end) end, "uses 'k' from the code around it")
  check_error(function() G.lua(print) end, "rft.grader.lua: argument #1 (grader) must be a Lua function, got a C function")
  check_error(function() load("return rft.grader.lua(function(s, i) return 1 end)", "=stdin")() end,
              "the text of this function is not available")
  check_error(function() local a, b = G.lua(function(s, i) return 1 end), G.lua(function(s, i) return 2 end) end,
              "more than one function could be the one")
  local path = os.tmpname()
  local fh = io.open(path, "w")
  fh:write("#!/usr/bin/env tycho\nlocal words = {}\nfunction grade(sample, item)\n  return #sample.output_text + #item.x\nend\n")
  fh:close()
  check_eq((G.lua{file = path}:run("ab", {x = "cde"})), 5, "a grader file")
  fh = io.open(path, "w")
  fh:write("return function(sample, item)\n  local x = nil\n  return x.field\nend\n")
  fh:close()
  local s2, d2 = G.lua{file = path}:run("x")
  check(s2 == 0 and d2.error:find(path .. ":3:", 1, true), "errors cite the file and line: " .. tostring(d2.error))
  os.remove(path)
  check_error(function() G.lua{file = "/nonexistent/grader.lua"} end, "cannot read the grader file")
  check_error(function() G.lua("grader.lua") end, "to load a file, use rft.grader.lua{file = \"grader.lua\"}")
  check_error(function() G.lua("return function(") end, "failed when loaded in the sandbox")
  check_error(function() G.lua("return 42") end, "must return a function")
end)

test("the sandbox refuses, stops and goes on", function()
  local limits = {instructions = 1e6, memory_mb = 16}
  local cases = {
    {"os.execute", [[return function(s, i) return os.execute("true") end]], "runtime_error", "os is not available"},
    {"io.open", [[return function(s, i) return io.open("/etc/passwd") end]], "runtime_error", "io is not available"},
    {"require", [[return function(s, i) return require("os") end]], "runtime_error", "require is not available"},
    {"debug", [[return function(s, i) return debug.getinfo(1) end]], "runtime_error", "debug is not available"},
    {"dofile", [[return function(s, i) return dofile("/etc/passwd") end]], "runtime_error", "dofile is not available"},
    {"string.dump", [[return function(s, i) return string.dump(print) end]], "runtime_error", "string.dump is not available"},
    {"load bytecode", [[return function(s, i) return load("\27Lua\84\0") end]], "runtime_error", "precompiled (binary) chunks"},
    {"__gc", [[return function(s, i) setmetatable({}, {__gc = print}) end]], "runtime_error", "__gc metamethods"},
    {"collectgarbage stop", [[return function(s, i) collectgarbage("stop") end]], "runtime_error", "is not allowed"},
    {"infinite loop", [[return function(s, i) while true do end end]], "budget_exceeded", "instruction budget of 1000000"},
    {"loop caught by pcall", [[return function(s, i) while true do pcall(function() while true do end end) end end]],
     "budget_exceeded", "instruction budget"},
    {"loop in xpcall's handler", [[return function(s, i)
       while true do xpcall(function() while true do end end, function() while true do end end) end end]],
     "budget_exceeded", "instruction budget"},
    {"loop in a coroutine", [[return function(s, i)
       while true do coroutine.resume(coroutine.create(function() while true do end end)) end end]],
     "budget_exceeded", "instruction budget"},
    {"string doubling", [[return function(s, i) local x = "x" while true do x = x .. x end end]], "memory_exceeded", "memory cap of 16 MB"},
    {"one huge string.rep", [[return function(s, i) return #string.rep("x", 1e9) end]], "memory_exceeded", "memory cap"},
    {"growing table", [[return function(s, i) local t = {} for k = 1, 1e8 do t[k] = {k} end end]], "memory_exceeded", "memory cap"},
    {"memory error caught by pcall", [[return function(s, i) while true do pcall(string.rep, "x", 1e8) end end]],
     "memory_exceeded", "memory cap"},
    {"deep recursion", [[return function(s, i) local function f() return 1 + f() end return f() end]], nil, nil},
    {"error", [[return function(s, i) error("bad answer") end]], "runtime_error", "bad answer"},
    {"error object", [[return function(s, i) error({}) end]], "runtime_error", "error object is a table value"},
    {"not a score", [[return function(s, i) return "high" end]], "runtime_error", "returned string, expected a number"},
    {"nan", [[return function(s, i) return 0/0 end]], "runtime_error", "expected a finite number"},
  }
  local good = G.lua([[return function(s, i) return #s.output_text end]], limits)
  local errors = 0
  for _, c in ipairs(cases) do
    local g = G.lua(c[2], limits)
    local s, d = g:run("sample", {})
    if d.error then errors = errors + 1 end
    check(s == 0 and d.error ~= nil, c[1] .. " is an error")
    if c[3] then
      check_eq(d.error_kind, c[3], c[1] .. ": kind")
      check(d.error:find(c[4], 1, true), c[1] .. ": message '" .. tostring(d.error) .. "' has '" .. c[4] .. "'")
    end
    check_eq((good:run("next!")), 5, "after " .. c[1] .. ", the next sample is graded")
  end
  check_eq(errors, #cases, "every failure counted")
  -- the host state is untouched
  check(type(os.execute) == "function" and type(io.open) == "function", "the host keeps its libraries")
  -- a grader that breaks its own globals does not break its next run
  local breaker = G.lua[[
    local n = 0
    return function(s, i) n = n + 1; string.len = nil; math = nil; return n end]]
  check_eq((breaker:run("x")), 1, "first run")
  check_eq((breaker:run("x")), 1, "a fresh state each run")
  -- math.random is seeded: graders are deterministic
  local r = G.lua[[return function(s, i) return math.random() end]]
  check_eq(r:run("x"), (r:run("x")), "math.random repeats")
  -- load of text works, in the sandbox's globals
  check_eq((G.lua[[return function(s, i) return load("return 0.25")() end]]:run("x")), 0.25, "load of text")
  check_error(function() G.lua("return function() end", {instructions = 0}) end, "'instructions' is an integer >= 1")
  check_error(function() G.lua("return function() end", {memory_mb = -1}) end, "'memory_mb' is a number > 0")
  check_error(function() G.lua("return function() end", {budget = 1}) end, "unknown option 'budget'")
end)

test("bad arguments name the function", function()
  check_error(function() G.string_check(1) end, "rft.grader.string_check: argument #1 (options) must be a table, got number")
  check_error(function() G.string_check{reference = "x", operation = "contains"} end,
              "rft.grader.string_check: field 'operation' must be one of eq, ne, like, ilike, got 'contains'")
  check_error(function() G.string_check{} end, "rft.grader.string_check: string_check needs a 'reference'")
  check_error(function() G.string_check{reference = "x", type = "multi"} end, "field 'type' is \"string_check\" or absent")
  check_error(function() G.text_similarity{reference = "x", metric = "bleurt"} end,
              "rft.grader.text_similarity: field 'evaluation_metric' must be one of fuzzy_match, bleu")
  check_error(function() G.text_similarity{reference = "x"} end, "needs an 'evaluation_metric'")
  check_error(function() G.text_similarity{reference = "x", metric = "bleu", pass_threshold = "high"} end,
              "field 'pass_threshold' must be a number")
  check_error(function() G.lua(42) end, "rft.grader.lua: argument #1 (grader) must be a function, Lua source text")
  check_error(function() G.lua{} end, "with file = a path or source = Lua text")
  check_error(function() G.multi(nil) end, "rft.grader.multi: argument #1 (options) must be a table")
  check_error(function() G.multi{graders = {a = A}, formula = "a", extra = 1} end, "multi has no field 'extra'")
  check_error(function() G.from_spec(3) end, "rft.grader.from_spec: argument #1 (spec) must be a spec table or a JSON string")
  local g = G.string_check{reference = "x"}
  check_error(function() g:run(42) end, "rft.grader.run: argument #2 (sample) must be a string (the output text) or a table")
  check_error(function() g:run({text = "x"}) end, "unknown option 'text'")
  check_error(function() g:run("x", "row") end, "argument #3 (item) must be a table")
  check_error(function() g:run("x", {1, 2}) end, "a table with named fields (a data row), got a list")
  check_error(function() g.run(5, "x") end, "rft.grader.run: argument #1 (self) must be a grader")
  check(tostring(rft.grader) ~= nil and rft.grader == require("rft").grader, "rft.grader is reachable through require")
end)

test("help for every function", function()
  for _, name in ipairs{"string_check", "text_similarity", "lua", "multi", "from_spec", "validate", "run", "spec"} do
    check(type(G[name]) == "function" or name == "run" or name == "spec", "rft.grader." .. name .. " exists")
  end
  local lines = {}
  local old = print
  print = function(s) lines[#lines + 1] = s end
  help(G.lua); help("rft.grader.multi"); help(rft.grader); help("rft.grader.run")
  print = old
  check(lines[1]:find("rft.grader.lua(grader, [options])", 1, true), "help(rft.grader.lua)")
  check(lines[2]:find("calculate_output", 1, true), "help by name")
  check(lines[3]:find("rft.grader.validate", 1, true), "help(rft.grader) lists the functions")
  check(lines[4]:find("g:run(sample, item)", 1, true), "help for the run method")
end)

test("the sandbox's pattern functions agree with Lua's and spend the budget", function()
  -- Random subjects and patterns (with malformed ones) through string.find/match/gmatch/gsub in the host and in
  -- the sandbox (SandboxPatterns.c): results and error messages must be the same.
  local pieces = {"a", "b", "c", "%a", "%d", "%s", "%w", "%p", "%A", ".", "[ab]", "[^a]", "[a-c]", "[%d.]", "[]]", "[^]a]",
    "%%", "%.", "*", "+", "-", "?", "(", ")", "()", "%b()", "%f[%a]", "%f[%A]", "%1", "%2", "$", " ", "1", "(a*)", "(.-)",
    "%", "[", "x"}
  local letters = {"a", "b", "c", " ", "1", "2", "(", ")", ".", "%", "ab", "x", "A", "]"}
  local seed = 20261207
  local function rnd(n) seed = (seed * 1103515245 + 12345) % 2147483648 return seed % n end
  local function pick(t, n) local o = {} for i = 1, n do o[i] = t[rnd(#t) + 1] end return table.concat(o) end
  local ops = {"find", "findplain", "match", "gmatch", "gsub_s", "gsub_t", "gsub_f", "gsub_n"}
  local cases = {}
  for i = 1, 2000 do
    local p = pick(pieces, rnd(6))
    if rnd(7) == 0 then p = "^" .. p end
    cases[i] = {op = ops[rnd(#ops) + 1], s = pick(letters, rnd(13)), p = p, init = rnd(15) - 6}
  end
  local runner = [[
    function(cases)
      local function clean(e) return (tostring(e):gsub("^[^:]*:%d+: ", "")) end
      local function ser(ok, ...)
        if not ok then return "ERR:" .. clean((...)) end
        local t = {}
        for i = 1, select('#', ...) do local v = select(i, ...) t[i] = type(v) .. ":" .. tostring(v) end
        return table.concat(t, "|")
      end
      local repl_t = {a = "<A>", b = false, ["1"] = 7}
      local function repl_f(...) return select('#', ...) .. "" end
      local out = {}
      for i, c in ipairs(cases) do
        if c.op == "find" then out[i] = ser(pcall(string.find, c.s, c.p, c.init))
        elseif c.op == "findplain" then out[i] = ser(pcall(string.find, c.s, c.p, c.init, true))
        elseif c.op == "match" then out[i] = ser(pcall(string.match, c.s, c.p, c.init))
        elseif c.op == "gmatch" then
          out[i] = ser(pcall(function()
            local acc = {}
            for a, b in string.gmatch(c.s, c.p, c.init) do
              acc[#acc + 1] = tostring(a) .. "," .. tostring(b)
              if #acc > 50 then break end
            end
            return table.concat(acc, ";")
          end))
        elseif c.op == "gsub_s" then out[i] = ser(pcall(string.gsub, c.s, c.p, "<%0%1>"))
        elseif c.op == "gsub_t" then out[i] = ser(pcall(string.gsub, c.s, c.p, repl_t))
        elseif c.op == "gsub_f" then out[i] = ser(pcall(string.gsub, c.s, c.p, repl_f))
        else out[i] = ser(pcall(string.gsub, c.s, c.p, "[%%]", c.init)) end
      end
      return out
    end]]
  local expect = load("return " .. runner)()(cases)
  local errors = 0
  for _, r in ipairs(expect) do if r:sub(1, 4) == "ERR:" then errors = errors + 1 end end
  check(errors > 100 and errors < 1000, "the cases include malformed patterns (" .. errors .. ")")
  local g = G.lua("local run = " .. runner .. [[
    return function(sample, item)
      local got, bad = run(item.cases), {}
      for i, r in ipairs(got) do
        if r ~= item.expect[i] and #bad < 5 then
          local c = item.cases[i]
          bad[#bad + 1] = c.op .. "(" .. c.s .. ", " .. c.p .. ", " .. c.init .. "): " .. r .. " vs " .. item.expect[i]
        end
      end
      return #bad, bad
    end]], {instructions = 1e9})
  local s, d = g:run("", {cases = cases, expect = expect})
  check(s == 0 and d.error == nil, "sandbox patterns disagree: " .. table.concat(d.returned or {d.error}, "; "))
  -- a pattern that backtracks for ever on a long subject is stopped by the budget, like a loop
  local slow = G.lua([[return function(s, i) return string.find(string.rep("a", 3000), ".-.-.-.-.-.-.-.-b") and 1 or 0 end]],
                     {instructions = 1e6})
  local t0 = sys.clock()
  local s2, d2 = slow:run("x")
  check(s2 == 0 and d2.error_kind == "budget_exceeded", "backtracking pattern: " .. tostring(d2.error))
  check(sys.clock() - t0 < 2, "stopped promptly")
  local g2 = G.lua[[return function(s, i) local n = 0 for w in s.output_text:gmatch("%a+") do n = n + 1 end
                                         return n, {trimmed = (s.output_text:gsub("^%s*(.-)%s*$", "%1"))} end]]
  local s3, d3 = g2:run("  one two three  ")
  check(s3 == 3 and d3.returned.trimmed == "one two three", "patterns as graders use them")
end)

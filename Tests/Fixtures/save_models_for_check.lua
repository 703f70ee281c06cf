-- save_models_for_check.lua: writes model folders with m:save and Tycho's logits beside them, for
-- check_saved_models.py (transformers must load them and compute the same logits).
--   tycho run Tests/Fixtures/save_models_for_check.lua /tmp/tycho-saved
local out = assert(arg[1], "usage: save_models_for_check.lua OUTDIR")
local here = arg[0]:match("(.*/)") or "./"
os.execute("mkdir -p '" .. out .. "'")
tensor.manual_seed(5)
local ids = tensor.randint(0, 384, 2, 12)
local models = {
  gpt2 = nn.load(here .. "models/gpt2"),
  llama = nn.load(here .. "models/llama"),
  qwen2 = nn.load(here .. "models/qwen2"),
  new_gpt2 = nn.gpt2{vocab = 384, ctx = 32, dim = 32, layers = 2, heads = 4},
  new_llama = nn.llama{vocab = 384, ctx = 32, dim = 32, layers = 2, heads = 4, kv_heads = 2, hidden = 48, tie = true},
  new_qwen2 = nn.llama{vocab = 384, ctx = 32, dim = 32, layers = 2, heads = 4, kv_heads = 1, hidden = 48, qkv_bias = true},
}
for name, m in pairs(models) do
  m:save(out .. "/" .. name)
  tensor.save(out .. "/" .. name .. ".check.safetensors", {ids = ids, logits = m:logits(ids)})
  m:save(out .. "/" .. name .. "_sharded", {max_shard_mb = 0.05})
  tensor.save(out .. "/" .. name .. "_sharded.check.safetensors", {ids = ids, logits = m:logits(ids)})
end
print("saved " .. out)

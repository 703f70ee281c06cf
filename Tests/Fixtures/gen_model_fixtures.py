#!/usr/bin/env python3
"""gen_model_fixtures.py: tiny Hugging Face models and their reference outputs, for Tycho's model tests.

Writes, under Tests/Fixtures/models/ (see models/README.md for every key and definition):
  tokenizer.json        byte-level BPE (GPT-2 style), vocab 384, trained on Scripts/data/licenses.txt;
                        <|endoftext|> is id 0 and is also the pad id of the reference batch.
  gpt2/                 GPT2LMHeadModel, 2 layers, n_embd 32, 4 heads, ctx 64, tied lm_head (one file).
  llama/                LlamaForCausalLM, 2 layers, hidden 32, 4 heads, 2 KV heads, untied, saved sharded
                        (model-0000k-of-0000n.safetensors + model.safetensors.index.json).
  qwen2/                Qwen2ForCausalLM, same sizes as llama, q/k/v biases, tied lm_head (one file).
                        Each folder: config.json, generation_config.json, model.safetensors*, tokenizer.json.
  <name>_ref.safetensors  float32: ids, mask, logits, logprobs, logprobs_unpadded, loss, grad.<p>,
                        adamw.<p>, adamw2.<p>, sgd.<p> for every stored parameter name <p>.
  <name>_ref.json       the batch, the loss, logprobs, optimizer hyperparameters, greedy continuations,
                        versions, stored names and tensor keys.
Weights are random (fixed seeds) and deliberately far from the usual init (norm weights 1+0.2*randn, all biases
0.1*randn, every matrix 0.2*randn) so that logits are far from uniform and layout mistakes show.
References come from attn_implementation="eager"; the script checks that "sdpa" (after a reload from disk)
agrees, that per-row unpadded logprobs equal the padded ones, that Hugging Face's own labels loss equals the
loss defined here, and that generate() equals a hand-written greedy loop.

Tests never need Python: rerun only after changing this script, the corpus or the library versions:
    pip install torch==2.13.0+cpu transformers && python3 Tests/Fixtures/gen_model_fixtures.py
Generated with torch 2.13.0+cpu, transformers 5.24.0, tokenizers 0.23.3, safetensors 0.8.0.
"""

import json
import os
import shutil

import numpy as np
import safetensors
import tokenizers
import torch
import transformers
from safetensors.numpy import save_file
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import (GenerationConfig, GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM,
                          Qwen2Config, Qwen2ForCausalLM)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(HERE, "models")
CORPUS = os.path.join(ROOT, "Scripts", "data", "licenses.txt")
SEED = 20261128

VOCAB = 384
SEQ_LEN = 16
LENGTHS = [16, 11, 7]          # real tokens per row of the reference batch, right-padded to SEQ_LEN
PAD_ID = 0                     # <|endoftext|>
PROMPT_LENGTHS = [5, 9]        # greedy-generation prompts, unpadded, one at a time
MAX_NEW_TOKENS = 10
ADAMW = {"lr": 1e-2, "betas": [0.9, 0.95], "eps": 1e-8, "weight_decay": 0.1}
SGD = {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.01, "nesterov": True, "dampening": 0.0}
# AdamW moves an element by about lr*sign(g) unless |g| is near eps, so where 0 < |g| < this (at step 1 or 2) the
# reference update is decided by float rounding (e.g. GPT-2's key bias, whose gradient is analytically zero):
# the JSON lists those elements so that tests can skip them in adamw/adamw2.
SENSITIVE_GRAD = 1e-6
LLAMA_SHARD = "80KB"           # gives 3 shards for the ~173 KB llama


# ---------------------------------------------------------------------------------------------------------
# tokenizer and data

def make_tokenizer():
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=True)
    trainer = trainers.BpeTrainer(vocab_size=VOCAB, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train([CORPUS], trainer)
    assert tok.get_vocab_size(with_added_tokens=True) == VOCAB
    assert tok.token_to_id("<|endoftext|>") == PAD_ID
    return tok


def corpus_sequences(tok):
    """Token ids of corpus lines: the first lines (in file order) that have enough tokens, cut to length.
    Row b of the batch is the first LENGTHS[b] tokens of one line; the prompts come from later lines."""
    with open(CORPUS, encoding="utf-8") as f:
        lines = [ln.strip() for ln in f]
    lines = [ln for ln in lines if len(ln) > 40]
    wanted = LENGTHS + PROMPT_LENGTHS
    # spread the picks over the file so that several licences are used
    step = len(lines) // (len(wanted) + 1)
    out = []
    i = step // 2
    for n in wanted:
        while True:
            ids = tok.encode(lines[i], add_special_tokens=False).ids
            i += 1
            if len(ids) >= n and PAD_ID not in ids:
                break
        out.append((lines[i - 1], ids[:n]))
        i += step
    return out[:len(LENGTHS)], out[len(LENGTHS):]


# ---------------------------------------------------------------------------------------------------------
# models

def common_config():
    # bos/eos = <|endoftext|>; pad_token_id stays None so that nn.Embedding gets no padding_idx
    return {"vocab_size": VOCAB, "bos_token_id": PAD_ID, "eos_token_id": PAD_ID, "pad_token_id": None}


def build(name):
    if name == "gpt2":
        cfg = GPT2Config(n_positions=64, n_embd=32, n_layer=2, n_head=4, activation_function="gelu_new",
                         resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, layer_norm_epsilon=1e-5,
                         tie_word_embeddings=True, **common_config())
        cls = GPT2LMHeadModel
    else:
        sizes = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                     num_key_value_heads=2, rope_theta=10000.0, rms_norm_eps=1e-5, max_position_embeddings=64,
                     hidden_act="silu", attention_dropout=0.0, **common_config())
        if name == "llama":
            cfg, cls = LlamaConfig(tie_word_embeddings=False, **sizes), LlamaForCausalLM
        else:
            cfg, cls = Qwen2Config(tie_word_embeddings=True, **sizes), Qwen2ForCausalLM
    cfg._attn_implementation = "eager"
    torch.manual_seed(SEED)
    model = cls(cfg)
    randomize(model, SEED + {"gpt2": 1, "llama": 2, "qwen2": 3}[name])
    model.eval()  # no dropout anywhere (all probabilities are 0 too)
    return model


@torch.no_grad()
def randomize(model, seed):
    """1-D weights (LayerNorm/RMSNorm) 1+0.2*randn; every bias 0.1*randn; every matrix (embeddings, linears,
    Conv1D) 0.2*randn. named_parameters() lists a tied tensor once."""
    g = torch.Generator().manual_seed(seed)
    for pname, p in model.named_parameters():
        r = torch.randn(p.shape, generator=g, dtype=torch.float32)
        if pname.endswith(".bias"):
            p.copy_(0.1 * r)
        elif p.dim() == 1:
            p.copy_(1.0 + 0.2 * r)
        else:
            p.copy_(0.2 * r)


def stored_names(model, folder):
    """Map parameter name (as named_parameters() says) -> name stored in the safetensors file(s)."""
    index = os.path.join(folder, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            keys = list(json.load(f)["weight_map"])
    else:
        with safetensors.safe_open(os.path.join(folder, "model.safetensors"), "np") as f:
            keys = list(f.keys())
    by_ptr = {p.data_ptr(): n for n, p in model.named_parameters()}
    state = model.state_dict()
    out = {}
    for k in keys:
        pn = by_ptr[state[k].data_ptr()]
        assert pn not in out, ("two stored tensors for one parameter", pn, out.get(pn), k)
        out[pn] = k
    assert set(out) == set(by_ptr.values()), ("parameters not stored", set(by_ptr.values()) - set(out))
    return out


# ---------------------------------------------------------------------------------------------------------
# the definitions Tycho implements

def seq_logprobs(logits, ids, mask):
    """Per row: sum over t >= 1 with mask[b,t] = 1 of log_softmax(logits[b,t-1])[ids[b,t]]."""
    lp = torch.log_softmax(logits[:, :-1].float(), dim=-1)
    tok = lp.gather(-1, ids[:, 1:].unsqueeze(-1)).squeeze(-1)
    m = mask[:, 1:].to(lp.dtype)
    return (tok * m).sum(-1), m.sum()


def loss_of(model, ids, mask):
    logits = model(input_ids=ids, attention_mask=mask).logits
    lps, n = seq_logprobs(logits, ids, mask)
    return -lps.sum() / n, logits, lps


def greedy_by_hand(model, prompt, n):
    """Greedy decoding by full forwards; also the smallest top-1 minus top-2 logit gap over the steps."""
    ids, margin = list(prompt), float("inf")
    for _ in range(n):
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([ids])).logits
        top = logits[0, -1].topk(2).values
        margin = min(margin, float(top[0] - top[1]))
        ids.append(int(logits[0, -1].argmax()))
    return ids[len(prompt):], margin


def check_optimizer_formulas(w0, g1, g2, sgd, adamw1, adamw2):
    """The update rules written in models/README.md, recomputed by hand, must match torch.optim."""
    lr, wd, eps = ADAMW["lr"], ADAMW["weight_decay"], ADAMW["eps"]
    b1, b2 = ADAMW["betas"]
    worst = 0.0
    for pn in w0:
        p, m, v = w0[pn].clone(), torch.zeros_like(w0[pn]), torch.zeros_like(w0[pn])
        for t, (g, want) in enumerate(((g1[pn], adamw1[pn]), (g2[pn], adamw2[pn])), start=1):
            p = p * (1 - lr * wd)
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g * g
            p = p - (lr / (1 - b1 ** t)) * m / (v.sqrt() / (1 - b2 ** t) ** 0.5 + eps)
            worst = max(worst, float((p - want).abs().max()))
        d = g1[pn] + SGD["weight_decay"] * w0[pn]
        d = d + SGD["momentum"] * d          # nesterov, first step: buf = d
        worst = max(worst, float((w0[pn] - SGD["lr"] * d - sgd[pn]).abs().max()))
    assert worst < 1e-6, ("optimizer formula mismatch", worst)


# ---------------------------------------------------------------------------------------------------------

def make_fixture(name, tok, batch, prompts):
    folder = os.path.join(OUT, name)
    if os.path.isdir(folder):
        shutil.rmtree(folder)
    model = build(name)
    save_kw = {"max_shard_size": LLAMA_SHARD} if name == "llama" else {}
    model.save_pretrained(folder, safe_serialization=True, **save_kw)
    tok.save(os.path.join(folder, "tokenizer.json"))
    names = stored_names(model, folder)
    files = sorted(os.listdir(folder))
    if name == "llama":
        shards = [f for f in files if f.startswith("model-")]
        assert 2 <= len(shards) <= 3 and "model.safetensors.index.json" in files, files

    ids = torch.full((len(batch), SEQ_LEN), PAD_ID, dtype=torch.long)
    mask = torch.zeros((len(batch), SEQ_LEN), dtype=torch.long)
    for b, (_, row) in enumerate(batch):
        ids[b, :len(row)] = torch.tensor(row)
        mask[b, :len(row)] = 1

    # forward + loss + grads (eager, fp32)
    params = dict(model.named_parameters())
    model.zero_grad(set_to_none=True)
    loss, logits, lps = loss_of(model, ids, mask)
    loss.backward()
    grads = {pn: p.grad.detach().clone() for pn, p in params.items()}
    weights0 = {pn: p.detach().clone() for pn, p in params.items()}
    logits = logits.detach()
    lps = lps.detach()

    # cross-checks
    with torch.no_grad():
        labels = ids.masked_fill(mask == 0, -100)
        hf_loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        assert abs(float(hf_loss) - float(loss)) < 1e-5, (float(hf_loss), float(loss))
        unpadded = []
        for b, (_, row) in enumerate(batch):
            r = torch.tensor([row])
            lp, _ = seq_logprobs(model(input_ids=r).logits, r, torch.ones_like(r))
            unpadded.append(float(lp[0]))
        diff = max(abs(a - b) for a, b in zip(unpadded, lps.tolist()))
        assert diff < 1e-5, ("padded vs unpadded logprobs", diff)
        sdpa = type(model).from_pretrained(folder, attn_implementation="sdpa", dtype=torch.float32)
        sdpa_logits = sdpa(input_ids=ids, attention_mask=mask).logits
        real = mask.bool()
        sdpa_diff = float((sdpa_logits - logits)[real].abs().max())
        assert sdpa_diff < 1e-4, ("sdpa vs eager", sdpa_diff)
        reload_eager = type(model).from_pretrained(folder, attn_implementation="eager", dtype=torch.float32)
        reload_diff = float((reload_eager(input_ids=ids, attention_mask=mask).logits - logits).abs().max())
        assert reload_diff == 0.0, ("reload changed logits", reload_diff)

    # greedy continuations (no eos: always MAX_NEW_TOKENS new tokens)
    gen_cfg = GenerationConfig(do_sample=False, max_new_tokens=MAX_NEW_TOKENS, eos_token_id=None,
                               pad_token_id=PAD_ID, bos_token_id=PAD_ID)
    greedy = []
    for text, prompt in prompts:
        with torch.no_grad():
            out = model.generate(torch.tensor([prompt]), attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
                                 generation_config=gen_cfg)
        new = out[0, len(prompt):].tolist()
        assert len(new) == MAX_NEW_TOKENS, new
        by_hand, margin = greedy_by_hand(model, prompt, MAX_NEW_TOKENS)
        assert new == by_hand, "generate() != greedy loop"
        assert margin > 1e-3, ("greedy step too close to a tie for a fixture", margin)
        greedy.append({"source_line": text, "prompt_text": tok.decode(prompt), "prompt": prompt,
                       "new_tokens": new, "new_text": tok.decode(new), "min_top2_logit_gap": margin})

    # SGD (Nesterov) from the original weights and the first gradients
    opt = torch.optim.SGD(params.values(), lr=SGD["lr"], momentum=SGD["momentum"], dampening=SGD["dampening"],
                          weight_decay=SGD["weight_decay"], nesterov=SGD["nesterov"], foreach=False)
    opt.step()
    sgd = {pn: p.detach().clone() for pn, p in params.items()}

    # AdamW: restore the weights and gradients, step, recompute loss + grads, step again
    with torch.no_grad():
        for pn, p in params.items():
            p.copy_(weights0[pn])
            p.grad = grads[pn].clone()
    opt = torch.optim.AdamW(params.values(), lr=ADAMW["lr"], betas=tuple(ADAMW["betas"]), eps=ADAMW["eps"],
                            weight_decay=ADAMW["weight_decay"], amsgrad=False, foreach=False)
    opt.step()
    adamw1 = {pn: p.detach().clone() for pn, p in params.items()}
    model.zero_grad(set_to_none=True)
    loss2, _, _ = loss_of(model, ids, mask)
    loss2.backward()
    grads2 = {pn: p.grad.detach().clone() for pn, p in params.items()}
    opt.step()
    adamw2 = {pn: p.detach().clone() for pn, p in params.items()}
    check_optimizer_formulas(weights0, grads, grads2, sgd, adamw1, adamw2)
    sensitive = {}
    for pn in params:
        g = torch.stack([grads[pn].flatten(), grads2[pn].flatten()]).abs()
        idx = ((g > 0) & (g < SENSITIVE_GRAD)).any(0).nonzero().flatten().tolist()
        if idx:
            sensitive[names[pn]] = idx
    with torch.no_grad():
        loss3, _, _ = loss_of(model, ids, mask)

    tensors = {
        "ids": ids.float().numpy(),
        "mask": mask.float().numpy(),
        "logits": logits.numpy(),
        "logprobs": lps.numpy(),
        "logprobs_unpadded": np.array(unpadded, dtype=np.float32),
        "loss": np.array(loss.item(), dtype=np.float32),
    }
    for prefix, d in (("grad", grads), ("adamw", adamw1), ("adamw2", adamw2), ("sgd", sgd)):
        for pn, t in d.items():
            tensors[prefix + "." + names[pn]] = t.numpy().astype(np.float32)
    tensors = {k: np.array(v, dtype=np.float32, order="C") for k, v in tensors.items()}  # keeps loss rank-0
    save_file(tensors, os.path.join(OUT, name + "_ref.safetensors"), metadata={"format": "pt"})

    cfg = model.config
    emb = model.get_input_embeddings().weight
    emb_name = names[next(pn for pn, p in params.items() if p is emb)]
    if cfg.tie_word_embeddings:
        assert model.get_output_embeddings().weight is emb and "lm_head.weight" not in names.values()
    info = {
        "model": name,
        "architecture": type(model).__name__,
        "folder": name,
        "files": files,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                     "tokenizers": tokenizers.__version__, "safetensors": safetensors.__version__},
        "seed": SEED,
        "attn_implementation": "eager",
        "tie_word_embeddings": bool(cfg.tie_word_embeddings),
        "tied": {"lm_head.weight": emb_name} if cfg.tie_word_embeddings else {},
        "parameters": {names[pn]: list(p.shape) for pn, p in params.items()},
        "n_parameters": sum(p.numel() for p in params.values()),
        "fixture_seq_len": SEQ_LEN,
        "batch_size": len(batch),
        "lengths": LENGTHS,
        "pad_id": PAD_ID,
        "source_lines": [t for t, _ in batch],
        "decoded": [tok.decode(row) for _, row in batch],
        "ids": ids.tolist(),
        "mask": mask.tolist(),
        "n_targets": int(mask[:, 1:].sum()),
        "loss": float(loss),
        "logprobs": lps.tolist(),
        "logprobs_unpadded": unpadded,
        "loss_after_adamw": float(loss2),
        "loss_after_adamw2": float(loss3),
        "adamw_sensitive": {"grad_below": SENSITIVE_GRAD, "n": sum(len(v) for v in sensitive.values()),
                            "flat_indices": sensitive},
        "adamw": dict(ADAMW, steps=2, amsgrad=False, maximize=False, foreach=False),
        "sgd": dict(SGD, steps=1, foreach=False),
        "greedy": greedy,
        "greedy_settings": {"do_sample": False, "max_new_tokens": MAX_NEW_TOKENS, "eos_token_id": None,
                            "pad_token_id": PAD_ID, "batched": False},
        "checks": {"sdpa_max_abs_diff_real_positions": sdpa_diff,
                   "padded_vs_unpadded_logprobs_max_abs_diff": diff,
                   "hf_labels_loss": float(hf_loss)},
        "tensor_keys": sorted(tensors),
    }
    with open(os.path.join(OUT, name + "_ref.json"), "w", encoding="utf-8") as f:
        json.dump(info, f, indent=1)
        f.write("\n")
    print("%-6s params=%d loss=%.6f -> %.6f -> %.6f sdpa_diff=%.2e pad_diff=%.2e files=%s"
          % (name, info["n_parameters"], float(loss), float(loss2), float(loss3), sdpa_diff, diff, files))


def main():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    os.makedirs(OUT, exist_ok=True)
    tok = make_tokenizer()
    tok.save(os.path.join(OUT, "tokenizer.json"))
    batch, prompts = corpus_sequences(tok)
    for name in ("gpt2", "llama", "qwen2"):
        make_fixture(name, tok, batch, prompts)
    # The Lua tests read the values they need from <name>_ref.lua.
    import ref_json_to_lua
    ref_json_to_lua.main()


if __name__ == "__main__":
    main()

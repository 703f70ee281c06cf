"""train_step_torch.py: one GPT-2 training step (forward, loss, backward, AdamW) in PyTorch, the comparison for
Tycho's `nn.gpt2{...}` + `m:loss(ids, mask)` + backward + AdamW.
    python3 Scripts/bench/train_step_torch.py [--configs A,B] [--threads 1,2] [--steps N] [--json]

Model: transformers GPT2LMHeadModel, attn_implementation="sdpa", resid/embd/attn pdrop 0, gelu_new, tied
embeddings (lm_head = wte), float32, fixed seed. Configs (batch x seq = B x T):
    A: 4 layers, 4 heads, dim 128, ctx 128, vocab 512, batch 8 x 128 (default 10 timed steps)
    B: 6 layers, 6 heads, dim 384, ctx 256, vocab 512, batch 8 x 256 (default 5 timed steps)
One step: logits = model(ids, attention_mask=ones).logits; loss = mean cross entropy of logits[:, :-1] against
ids[:, 1:]; loss.backward(); AdamW(lr=1e-4, weight_decay=0.1, other settings torch's defaults).step();
zero_grad(set_to_none=True). Token ids are uniform random (fixed seed), the mask is all ones.
For each config and thread count: torch.set_num_threads(t) (interop threads 1), a fresh model and optimizer,
2 warm-up steps, then --steps timed steps (wall clock, each step timed alone); the median is reported.

FLOPs per step (PaLM, Chowdhery et al. 2022, appendix B; Chinchilla's 6ND):
    flops_per_step = D * (6 * N + 12 * L * T * d),   D = B * T tokens per step
    N = matmul parameters = L * 12 * d^2 (c_attn 3d^2, attn.c_proj d^2, c_fc 4d^2, mlp.c_proj 4d^2) + V * d (lm_head)
The lm_head counts even though it is tied to wte (it is a matmul); the wte/wpe look-ups, biases and LayerNorms
do not. 12*L*T*d per token is the attention score and value matmuls (forward + backward), counted over all T
keys as in PaLM, i.e. ignoring causality. A: N = 851,968, 6.04 GFLOP per step. B: N = 10,813,440,
147.4 GFLOP per step.

Output per (config, threads): a key=value line (bench=train_step impl=torch case=A threads=1 median=<ms/step>
...), or with --json one JSON line such as
    {"impl": "torch", "config": "A", "threads": 1, "ms_per_step": ..., "tokens_per_s": ..., "flops_per_step": ...}
plus the model sizes, min/max ms and GFLOP/s. Config A takes about 140 ms per step on 1 thread and 90 ms on 2
here, B about 4.4 s per step on 2 threads (one timed step, on a busy machine) and an estimated 7 s on 1, so all
four cases run in about two minutes.
Needs torch and transformers (tested with torch 2.13.0+cpu, transformers 5.24.0).
"""
import argparse
import json
import statistics
import sys
import time

import torch
import transformers
from transformers import GPT2Config, GPT2LMHeadModel

CONFIGS = {
    "A": {"layers": 4, "heads": 4, "dim": 128, "ctx": 128, "vocab": 512, "batch": 8, "seq": 128, "steps": 10},
    "B": {"layers": 6, "heads": 6, "dim": 384, "ctx": 256, "vocab": 512, "batch": 8, "seq": 256, "steps": 5},
}
WARMUP = 2
SEED = 1234


def matmul_params(c):
    return c["layers"] * 12 * c["dim"] ** 2 + c["vocab"] * c["dim"]


def flops_per_step(c):
    tokens = c["batch"] * c["seq"]
    return tokens * (6 * matmul_params(c) + 12 * c["layers"] * c["seq"] * c["dim"])


def build(c):
    torch.manual_seed(SEED)
    cfg = GPT2Config(vocab_size=c["vocab"], n_positions=c["ctx"], n_embd=c["dim"], n_layer=c["layers"],
                     n_head=c["heads"], activation_function="gelu_new", resid_pdrop=0.0, embd_pdrop=0.0,
                     attn_pdrop=0.0, tie_word_embeddings=True, bos_token_id=None, eos_token_id=None)
    cfg._attn_implementation = "sdpa"
    model = GPT2LMHeadModel(cfg)
    model.train()
    assert model.lm_head.weight is model.transformer.wte.weight
    ids = torch.randint(0, c["vocab"], (c["batch"], c["seq"]), generator=torch.Generator().manual_seed(SEED))
    mask = torch.ones_like(ids)
    return model, ids, mask


def run(name, c, threads, steps):
    torch.set_num_threads(threads)
    model, ids, mask = build(c)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.1)
    vocab = c["vocab"]

    def step():
        logits = model(input_ids=ids, attention_mask=mask).logits
        loss = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, vocab), ids[:, 1:].reshape(-1))
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.detach()

    for _ in range(WARMUP):
        step()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        loss = step()
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    tokens = c["batch"] * c["seq"]
    flops = flops_per_step(c)
    return {
        "impl": "torch", "config": name, "threads": threads,
        "ms_per_step": round(med * 1e3, 2), "ms_min": round(min(times) * 1e3, 2),
        "ms_max": round(max(times) * 1e3, 2), "steps": steps,
        "tokens_per_s": round(tokens / med, 1), "flops_per_step": flops,
        "gflop_per_s": round(flops / med / 1e9, 2),
        "params": sum(p.numel() for p in model.parameters()), "matmul_params": matmul_params(c),
        "layers": c["layers"], "heads": c["heads"], "dim": c["dim"], "ctx": c["ctx"], "vocab": c["vocab"],
        "batch": c["batch"], "seq": c["seq"], "final_loss": round(float(loss), 4),
        "torch": torch.__version__, "transformers": transformers.__version__, "attn": "sdpa",
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--configs", default="A,B", help="comma-separated subset of " + ",".join(CONFIGS))
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    ap.add_argument("--steps", type=int, default=None, help="timed steps (default: 10 for A, 5 for B)")
    ap.add_argument("--json", action="store_true", help="one JSON line per (config, threads)")
    args = ap.parse_args()
    torch.set_num_interop_threads(1)
    for name in [s for s in args.configs.split(",") if s]:
        c = CONFIGS[name]
        for th in [int(t) for t in args.threads.split(",") if t]:
            r = run(name, c, th, args.steps or c["steps"])
            if args.json:
                print(json.dumps(r))
            else:
                print(f"bench=train_step impl=torch case={name} threads={th} median={r['ms_per_step']:.2f} "
                      f"min={r['ms_min']:.2f} max={r['ms_max']:.2f} unit=ms/step tokens_per_s={r['tokens_per_s']:.0f} "
                      f"gflop_per_s={r['gflop_per_s']:.2f} flops_per_step={r['flops_per_step']} params={r['params']}")
            sys.stdout.flush()


if __name__ == "__main__":
    main()

"""generate_hf.py: batched greedy generation with Hugging Face `generate` and its KV cache, the comparison for
Tycho's `infer.generate` (Scripts/bench/generate.lua runs this script in the same session).
    python3 Scripts/bench/generate_hf.py [--configs A,B] [--threads 1,2] [--repeats N] [--json]

Model: transformers GPT2LMHeadModel, randomly initialised (fixed seed), attn_implementation="sdpa", pdrop 0,
gelu_new, tied embeddings, float32, eval mode, under torch.inference_mode(). Configs:
    A: 4 layers, 4 heads, dim 128, ctx 128, vocab 512
    B: 6 layers, 6 heads, dim 384, ctx 256, vocab 512
Workload: 16 prompts of 16 uniform random token ids (fixed seed), one batch, left-padding side with all prompts of
equal length (so no pad is needed; attention_mask all ones), model.generate(use_cache=True, do_sample=False,
max_new_tokens=64, min_new_tokens=64, eos_token_id=None, pad_token_id=0): 16 x 64 = 1024 new tokens per call.
For each (config, threads): torch.set_num_threads(t) (interop threads 1), one warm-up call, then --repeats timed
calls (wall clock, each timed alone); the median is reported as tokens/s of new tokens (and, as cpu_tokens_per_s,
per second of this process's CPU time, all threads included).

Output per (config, threads): a key=value line (bench=generate impl=hf case=A threads=1 median=<tokens/s> ...),
or with --json one JSON line {"impl": "hf", "config": "A", "threads": 1, "tokens_per_s": ..., "ms_per_call": ...}.
OMP_WAIT_POLICY is set to PASSIVE unless already set: on this shared 2-core VM, OpenMP's default spinning made
2-thread generate calls 10 to 40 times slower than 1-thread ones whenever another process was running (measured:
A at 2 threads, 98 tokens/s spinning, 1625 passive; 1 thread 1542), which would flatter Tycho's ratios.
Needs torch and transformers (tested with torch 2.13.0+cpu, transformers 5.24.0).
"""
import argparse
import json
import os
import statistics
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads its OpenMP runtime

import torch
import transformers
from transformers import GPT2Config, GPT2LMHeadModel

CONFIGS = {
    "A": {"layers": 4, "heads": 4, "dim": 128, "ctx": 128, "vocab": 512},
    "B": {"layers": 6, "heads": 6, "dim": 384, "ctx": 256, "vocab": 512},
}
PROMPTS, PROMPT_LEN, NEW_TOKENS = 16, 16, 64
SEED = 1234


def build(c):
    torch.manual_seed(SEED)
    cfg = GPT2Config(vocab_size=c["vocab"], n_positions=c["ctx"], n_embd=c["dim"], n_layer=c["layers"],
                     n_head=c["heads"], activation_function="gelu_new", resid_pdrop=0.0, embd_pdrop=0.0,
                     attn_pdrop=0.0, tie_word_embeddings=True, bos_token_id=None, eos_token_id=None,
                     pad_token_id=0)
    cfg._attn_implementation = "sdpa"
    model = GPT2LMHeadModel(cfg).eval()
    ids = torch.randint(0, c["vocab"], (PROMPTS, PROMPT_LEN), generator=torch.Generator().manual_seed(SEED))
    return model, ids, torch.ones_like(ids)


def run(name, c, threads, repeats):
    torch.set_num_threads(threads)
    model, ids, mask = build(c)

    def call():
        with torch.inference_mode():
            out = model.generate(input_ids=ids, attention_mask=mask, use_cache=True, do_sample=False,
                                 max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS, eos_token_id=None,
                                 pad_token_id=0)
        assert out.shape == (PROMPTS, PROMPT_LEN + NEW_TOKENS), out.shape
        return out

    call()
    times, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        call()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    med = statistics.median(times)
    tokens = PROMPTS * NEW_TOKENS
    return {
        "impl": "hf", "config": name, "threads": threads, "tokens_per_s": round(tokens / med, 1),
        "cpu_tokens_per_s": round(tokens / statistics.median(cpu), 1),
        "ms_per_call": round(med * 1e3, 2), "ms_min": round(min(times) * 1e3, 2), "ms_max": round(max(times) * 1e3, 2),
        "repeats": repeats, "prompts": PROMPTS, "prompt_len": PROMPT_LEN, "new_tokens": NEW_TOKENS,
        "layers": c["layers"], "heads": c["heads"], "dim": c["dim"], "ctx": c["ctx"], "vocab": c["vocab"],
        "torch": torch.__version__, "transformers": transformers.__version__, "attn": "sdpa",
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--configs", default="A,B", help="comma-separated subset of " + ",".join(CONFIGS))
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    ap.add_argument("--repeats", type=int, default=7, help="timed calls per case")
    ap.add_argument("--json", action="store_true", help="one JSON line per (config, threads)")
    args = ap.parse_args()
    torch.set_num_interop_threads(1)
    for name in [s for s in args.configs.split(",") if s]:
        for th in [int(t) for t in args.threads.split(",") if t]:
            r = run(name, CONFIGS[name], th, args.repeats)
            if args.json:
                print(json.dumps(r))
            else:
                print(f"bench=generate impl=hf case={name} threads={th} median={r['tokens_per_s']:.1f} "
                      f"unit=tokens/s ms_per_call={r['ms_per_call']:.2f} min={r['ms_min']:.2f} max={r['ms_max']:.2f}")
            sys.stdout.flush()


if __name__ == "__main__":
    main()

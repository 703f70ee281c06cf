"""dpo_step_torch.py: one DPO training step (policy forward + backward on 8 preference pairs, reference
log-probs cached) in PyTorch, the comparison for Scripts/bench/dpo_step.lua.
    python3 Scripts/bench/dpo_step_torch.py [configs=A,B] [threads=1,2] [steps=N] [cpu] [parts] [no_attention_mask]

Model as train_step_torch.py: transformers GPT2LMHeadModel, attn_implementation="sdpa", dropout 0, gelu_new,
tied embeddings, float32, fixed seed. A: 4 layers, 4 heads, dim 128, ctx 128, vocab 512; B: 6 layers, 6 heads,
dim 384, ctx 256, vocab 512. torch.optim.AdamW(lr=1e-4, weight_decay=0.1, other settings torch's defaults).

The batch has dpo_step.lua's layout (the same LENGTHS table): 8 pairs in TRL's concatenated layout, 16 x T
input_ids (the 8 chosen sequences, then the 8 rejected; each = prompt + completion, right-padded), an
attention_mask (1 on real tokens) and a completion_mask (1 on completion tokens). Token ids are uniform random
in 0..255 (the byte tokenizer's letters do not matter to the speed), EOS 256 closes each completion and pads.
The reference model is a deep copy of the policy before training; its summed log-probs are computed once under
torch.no_grad(), outside the timing (TRL's precompute_ref_log_probs).

One step, as TRL 1.16's DPOTrainer computes it on CPU (`_compute_loss` with loss_type "sigmoid"):
    opt.zero_grad(set_to_none=True)
    logits = model(input_ids, attention_mask=attention_mask, use_cache=False).logits
    per_token = selective_log_softmax(logits[:, :-1], input_ids[:, 1:])   # TRL's: gather - logsumexp
    logps = (per_token * completion_mask[:, 1:]).sum(1); chosen, rejected = logps.chunk(2)
    loss = -logsigmoid(beta * ((chosen - ref_chosen) - (rejected - ref_rejected))).mean(), beta = 0.1
    loss.backward(); clip_grad_norm_(params, 1.0); opt.step()
(TRL 1.16 itself goes through its fused LM head, which on CPU scores every position in chunks of 32768 rows
with the same formula: here one chunk; selective_log_softmax is TRL's own when trl imports, else the same
float32 code copied below.) `no_attention_mask` drops the attention mask (causal attention makes right padding
harmless, as in Tycho, which takes no attention mask).

Timing as dpo_step.lua: torch.set_num_threads(t) (interop threads 1), 2 warm-up steps, then N timed steps
(10 for A, 5 for B), each timed alone by the wall clock and by the process's CPU time; `median` is the wall
median, or with `cpu` the CPU-time median for 1-thread runs. `parts` adds a line with each part's median time.
Output: bench=dpo_step impl=torch case=A threads=1 median=<ms/step> ... (key=value, as dpo_step.lua).
Needs torch and transformers (tested with torch 2.13.0+cpu, transformers 5.24.0, trl 1.16.0).
"""
import copy
import statistics
import sys
import time

import torch
import torch.nn.functional as F
import transformers
from transformers import GPT2Config, GPT2LMHeadModel

try:
    from trl.trainer.utils import selective_log_softmax
    SELECTIVE = "trl"
except Exception:  # noqa: BLE001 - trl absent or broken: the same formula, TRL 1.16's float32 branch
    SELECTIVE = "copy"

    def selective_log_softmax(logits, index):
        selected = torch.gather(logits, dim=-1, index=index.unsqueeze(-1)).squeeze(-1)
        lse = torch.stack([torch.logsumexp(lg, dim=-1) for lg in logits])
        return selected - lse

# Per pair: prompt tokens, chosen and rejected completion tokens (EOS included), for T = 128; B doubles them.
LENGTHS = [
    (40, 88, 60), (24, 70, 96), (56, 50, 72), (32, 64, 40),
    (48, 80, 52), (28, 44, 90), (36, 76, 58), (44, 66, 84),
]
CONFIGS = {
    "A": {"layers": 4, "heads": 4, "dim": 128, "ctx": 128, "vocab": 512, "seq": 128, "scale": 1, "steps": 10},
    "B": {"layers": 6, "heads": 6, "dim": 384, "ctx": 256, "vocab": 512, "seq": 256, "scale": 2, "steps": 5},
}
WARMUP = 2
SEED = 1234
EOS = 256
BETA = 0.1


def load1():
    try:
        with open("/proc/loadavg") as f:
            return f.read().split()[0]
    except OSError:
        return "-"


def batch(c):
    """input_ids, attention_mask, completion_mask (2B x T), TRL's concatenated layout, right-padded with EOS."""
    g = torch.Generator().manual_seed(SEED)
    t = c["seq"]
    rows = []
    for side in (1, 2):  # chosen rows, then rejected rows
        for lengths in LENGTHS:
            p, n = lengths[0] * c["scale"], lengths[side] * c["scale"]
            assert p + n <= t
            rows.append((p, n))
    ids = torch.full((len(rows), t), EOS, dtype=torch.long)
    att = torch.zeros((len(rows), t), dtype=torch.long)
    comp = torch.zeros((len(rows), t), dtype=torch.long)
    for r, (p, n) in enumerate(rows):
        ids[r, : p + n - 1] = torch.randint(0, 256, (p + n - 1,), generator=g)
        att[r, : p + n] = 1
        comp[r, p: p + n] = 1
    return ids, att, comp


def build(c):
    torch.manual_seed(SEED)
    cfg = GPT2Config(vocab_size=c["vocab"], n_positions=c["ctx"], n_embd=c["dim"], n_layer=c["layers"],
                     n_head=c["heads"], activation_function="gelu_new", resid_pdrop=0.0, embd_pdrop=0.0,
                     attn_pdrop=0.0, tie_word_embeddings=True, bos_token_id=None, eos_token_id=None)
    cfg._attn_implementation = "sdpa"
    model = GPT2LMHeadModel(cfg)
    model.train()
    assert model.lm_head.weight is model.transformer.wte.weight
    return model


def summed_logps(model, ids, att, comp):
    logits = model(input_ids=ids, attention_mask=att, use_cache=False).logits
    per_token = selective_log_softmax(logits[:, :-1], ids[:, 1:])
    return (per_token * comp[:, 1:]).sum(dim=1)


def run(name, c, threads, steps, cpu, parts, attention):
    torch.set_num_threads(threads)
    model = build(c)
    ids, att, comp = batch(c)
    model_att = att if attention else None
    ref = copy.deepcopy(model).eval()
    with torch.no_grad():
        ref_chosen, ref_rejected = summed_logps(ref, ids, model_att, comp).chunk(2)
    del ref
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.1)
    params = [p for p in model.parameters()]
    state = {}

    def step(mark=None):
        opt.zero_grad(set_to_none=True)
        logps = summed_logps(model, ids, model_att, comp)
        if mark: mark(0)
        chosen, rejected = logps.chunk(2)
        delta = (chosen - ref_chosen) - (rejected - ref_rejected)
        loss = -F.logsigmoid(BETA * delta).mean()
        if mark: mark(1)
        loss.backward()
        if mark: mark(2)
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        if mark: mark(3)
        opt.step()
        if mark: mark(4)
        state["loss"] = float(loss.detach())
        state["margin"] = float(BETA * delta.detach().mean())

    for _ in range(WARMUP):
        step()
    walls, cpus = [], []
    for _ in range(steps):
        w0, c0 = time.perf_counter(), time.process_time()
        step()
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    use_cpu = cpu and threads == 1
    ts = cpus if use_cpu else walls
    med = statistics.median(ts)
    pairs_n = len(LENGTHS)
    rows_n, seq = ids.shape
    real = int(att.sum())
    print(f"bench=dpo_step impl=torch case={name} threads={threads} median={med * 1e3:.2f} min={min(ts) * 1e3:.2f} "
          f"max={max(ts) * 1e3:.2f} unit=ms/step clock={'cpu' if use_cpu else 'wall'} "
          f"wall_median={statistics.median(walls) * 1e3:.2f} cpu_median={statistics.median(cpus) * 1e3:.2f} "
          f"pairs_per_s={pairs_n / med:.2f} tokens_per_s={rows_n * seq / med:.0f} real_tokens_per_s={real / med:.0f} "
          f"pairs={pairs_n} seq={seq} real_tokens={real} steps={steps} final_loss={state['loss']:.4f} "
          f"margin={state['margin']:.4f} attention_mask={'yes' if attention else 'no'} logsoftmax={SELECTIVE} "
          f"torch={torch.__version__} transformers={transformers.__version__} load={load1()}")
    sys.stdout.flush()

    if parts:
        labels = ["forward", "loss", "backward", "clip", "adamw"]
        pw = [[] for _ in labels]
        pc = [[] for _ in labels]
        for _ in range(steps):
            last = [time.perf_counter(), time.process_time()]

            def mark(k):
                w1, c1 = time.perf_counter(), time.process_time()
                pw[k].append(w1 - last[0])
                pc[k].append(c1 - last[1])
                last[0], last[1] = w1, c1
            step(mark)
        fields = " ".join(f"{l}_wall={statistics.median(pw[k]) * 1e3:.2f} {l}_cpu={statistics.median(pc[k]) * 1e3:.2f}"
                          for k, l in enumerate(labels))
        print(f"bench=dpo_step_parts impl=torch case={name} threads={threads} unit=ms {fields} load={load1()}")
        sys.stdout.flush()


def main():
    names, threads, steps, cpu, parts, attention = ["A", "B"], [1, 2], None, False, False, True
    for a in sys.argv[1:]:
        if a.startswith("configs="):
            names = [s for s in a[8:].split(",") if s]
        elif a.startswith("threads="):
            threads = [int(t) for t in a[8:].split(",") if t]
        elif a.startswith("steps="):
            steps = int(a[6:])
        elif a == "cpu":
            cpu = True
        elif a == "parts":
            parts = True
        elif a == "no_attention_mask":
            attention = False
        else:
            sys.exit(f"unknown argument {a}")
    torch.set_num_interop_threads(1)
    for th in threads:
        for name in names:
            c = CONFIGS[name]
            run(name, c, th, steps or c["steps"], cpu, parts, attention)


if __name__ == "__main__":
    main()

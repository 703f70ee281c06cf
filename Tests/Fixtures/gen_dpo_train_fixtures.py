#!/usr/bin/env python3
"""gen_dpo_train_fixtures.py: three optimizer steps of a real trl.DPOTrainer.train(), for Tycho's end-to-end DPO test.

Runs TRL's own training loop (not a re-implementation) on the tiny GPT-2 fixture (Tests/Fixtures/models/gpt2) with
the perturbed reference of Tests/Fixtures/dpo_data/gpt2_ref as a separate `ref_model`, on the 12 plain
prompt/chosen/rejected rows of dpo_train/train.jsonl, and records what TRL logs at every step (through a
callback's on_log with logging_steps=1), the rows of every micro-batch in TRL's order, the per-micro-batch metric
values before TRL averages them over the logging window, and some parameter tensors after the last step.

Cases (all: DPO sigmoid loss, beta 0.1, AdamW with TrainingArguments' defaults (weight decay 0, betas 0.9/0.999,
eps 1e-8; transformers picks torch's fused AdamW), max_grad_norm 1.0, dropout off (the fixture has p = 0 and TRL's
disable_dropout), the sequential sampler (no shuffling), seed 42, 3 optimizer steps, float32 on CPU):
  constant     per_device_train_batch_size 4, gradient_accumulation_steps 1, lr 1e-3 constant
  grad_accum   per_device_train_batch_size 2, gradient_accumulation_steps 2, lr 1e-3 constant (same 4 rows a step)
  warmup       per_device_train_batch_size 4, gradient_accumulation_steps 1, lr 1e-3 linear with warmup_steps 1
               (HF's Trainer runs step k with lr_lambda(k - 1): lr 0, 1e-3, 5e-4)

Writes, under Tests/Fixtures/dpo_train/:
  train.jsonl             the 12 rows
  dpo_train_ref.lua       a Lua table (Tests/lua/dpo_train_step.lua, and a trainer-based check): the settings,
                          versions and per case the steps (TRL's logs), the micro-batches (rows, ids, masks, loss
                          and metrics of each) and parameter checksums after the last step
  params_<case>.safetensors  full values after the last step of the tensors in PARAMS (wte only for `constant`)

Tests never need Python; rerun after changing this script or the library versions:
    pip install trl==1.16.0 && python3 Tests/Fixtures/gen_dpo_train_fixtures.py
Generated with trl 1.16.0, torch 2.13.0+cpu, transformers 5.24.0, accelerate 1.15.0, datasets 5.2.0.
"""

import json
import logging
import math
import os
import tempfile
import warnings

import accelerate
import datasets
import torch
import transformers
import trl
from datasets import Dataset
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast, TrainerCallback
from transformers.trainer_callback import PrinterCallback
from trl import DPOConfig, DPOTrainer

HERE = os.path.dirname(os.path.abspath(__file__))
MODEL = os.path.join(HERE, "models", "gpt2")
REF = os.path.join(HERE, "dpo_data", "gpt2_ref")
OUT = os.path.join(HERE, "dpo_train")
EOS = "<|endoftext|>"
BETA = 0.1
LR = 1e-3
STEPS = 3
SEED = 42
MAX_GRAD_NORM = 1.0
# Full values after the last step (every case); WTE only for `constant` (it is 48 KB).
PARAMS = ["transformer.h.0.attn.c_attn.weight", "transformer.h.0.attn.c_attn.bias", "transformer.h.1.attn.c_attn.bias",
          "transformer.h.1.attn.c_proj.weight", "transformer.h.1.mlp.c_proj.bias", "transformer.ln_f.weight",
          "transformer.ln_f.bias"]
WTE = "transformer.wte.weight"

# Short plain rows (the tiny GPT-2 has 64 positions): lengths vary so every batch is padded; the boundary and
# EOS corner cases are dpo_data's.
ROWS = [
    {"prompt": "The licence says", "chosen": " you may copy it.", "rejected": " nothing at all"},
    {"prompt": "Q: 2+2?", "chosen": " 4", "rejected": " 5"},
    {"prompt": "Permission is granted", "chosen": " to any person", "rejected": " to nobody"},
    {"prompt": "Software", "chosen": " is provided as is.", "rejected": " is sold"},
    {"prompt": "THE SOFTWARE IS PROVIDED", "chosen": " WITHOUT WARRANTY", "rejected": " with a warranty"},
    {"prompt": "Copy it?", "chosen": " Yes.", "rejected": " No, never, not ever."},
    {"prompt": "The sky is", "chosen": " blue", "rejected": " green and made of cheese"},
    {"prompt": "Water boils at", "chosen": " 100 degrees", "rejected": " 10 degrees"},
    {"prompt": "Say hi:", "chosen": " hi", "rejected": " bye"},
    {"prompt": "A cat is an", "chosen": " animal.", "rejected": " engine."},
    {"prompt": "One, two,", "chosen": " three", "rejected": " five"},
    {"prompt": "The end", "chosen": ".", "rejected": " is not near, it is here"},
]

# name, per_device_train_batch_size, gradient_accumulation_steps, lr_scheduler_type, warmup_steps
CASES = [
    ("constant", 4, 1, "constant", 0),
    ("grad_accum", 2, 2, "constant", 0),
    ("warmup", 4, 1, "linear", 1),
]

# What on_log gives each step (HF's loss, grad_norm, learning_rate, epoch; TRL's _metrics averaged over the window).
LOG_KEYS = ["loss", "grad_norm", "learning_rate", "epoch", "rewards/chosen", "rewards/rejected",
            "rewards/accuracies", "rewards/margins", "logps/chosen", "logps/rejected", "logits/chosen",
            "logits/rejected", "entropy", "mean_token_accuracy", "num_tokens"]
METRIC_KEYS = ["rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins", "logps/chosen",
               "logps/rejected", "logits/chosen", "logits/rejected", "entropy", "mean_token_accuracy"]


def tokenizer():
    return PreTrainedTokenizerFast(tokenizer_file=os.path.join(MODEL, "tokenizer.json"), eos_token=EOS)


class Recorder(TrainerCallback):
    def __init__(self):
        self.logs = []

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs is not None and "loss" in logs:  # the final train() summary has train_loss, not loss
            self.logs.append(dict(logs, step=state.global_step))


def run_case(name, batch_size, grad_accum, scheduler, warmup):
    torch.manual_seed(SEED)
    rows = [dict(r, row=i + 1) for i, r in enumerate(ROWS)]
    model = AutoModelForCausalLM.from_pretrained(MODEL)
    ref = AutoModelForCausalLM.from_pretrained(REF)
    initial = {k: v.detach().clone() for k, v in model.named_parameters()}
    # bf16=False: DPOConfig defaults to bf16=True, which autocasts the policy to bfloat16 even on CPU.
    args = DPOConfig(
        output_dir=tempfile.mkdtemp(), report_to=[], use_cpu=True, bf16=False, seed=SEED, data_seed=SEED,
        beta=BETA, loss_type="sigmoid", per_device_train_batch_size=batch_size,
        gradient_accumulation_steps=grad_accum, learning_rate=LR, lr_scheduler_type=scheduler, warmup_steps=warmup,
        max_steps=STEPS, max_grad_norm=MAX_GRAD_NORM, logging_steps=1, save_strategy="no",
        train_sampling_strategy="sequential", remove_unused_columns=False, disable_tqdm=True,
        dataloader_num_workers=0)
    rec = Recorder()
    trainer = DPOTrainer(model=model, ref_model=ref, args=args, train_dataset=Dataset.from_list(rows),
                         processing_class=tokenizer(), callbacks=[rec])
    trainer.remove_callback(PrinterCallback)
    micro = []  # one entry per micro-batch, in the order TRL trains on them

    collate = trainer.data_collator

    def recording_collator(examples):
        batch = collate(examples)
        micro.append({"rows": [e["row"] for e in examples], "input_ids": batch["input_ids"].tolist(),
                      "attention_mask": batch["attention_mask"].tolist(),
                      "completion_mask": batch["completion_mask"].tolist()})
        return batch

    trainer.data_collator = recording_collator
    losses = []
    compute_loss = trainer.compute_loss

    def recording_loss(*a, **k):
        loss = compute_loss(*a, **k)
        losses.append(loss.item())
        return loss

    trainer.compute_loss = recording_loss
    metrics = []  # TRL's _metrics lists at each log, before it averages them
    log = trainer.log

    def recording_log(logs, *a, **k):
        if "loss" in logs:
            metrics.append({k2: list(v) for k2, v in trainer._metrics["train"].items()})
        return log(logs, *a, **k)

    trainer.log = recording_log
    trainer.train()

    opt = trainer.optimizer.optimizer if hasattr(trainer.optimizer, "optimizer") else trainer.optimizer
    group = opt.param_groups[0]
    optimizer = {"class": type(opt).__name__, "fused": bool(group.get("fused")), "foreach": group.get("foreach"),
                 "betas": list(group["betas"]), "eps": group["eps"], "weight_decay": group["weight_decay"],
                 "groups": len(opt.param_groups), "amsgrad": group["amsgrad"]}
    assert len(micro) == STEPS * grad_accum, (name, len(micro))
    assert len(losses) == len(micro) and len(rec.logs) == STEPS and len(metrics) == STEPS
    for k, m in enumerate(micro):
        m["loss"] = losses[k]
        step_metrics = metrics[k // grad_accum]
        for key in METRIC_KEYS:
            m[key] = step_metrics[key][k % grad_accum]
    steps = []
    for s, logs in enumerate(rec.logs):
        entry = {"step": logs["step"], "rows": [r for m in micro[s * grad_accum:(s + 1) * grad_accum] for r in m["rows"]]}
        for key in LOG_KEYS:
            entry[key] = float(logs[key])
        # HF logs the mean of the micro-batch losses (each divided by grad_accum, summed); TRL the mean of its
        # per-micro-batch means. Checked here so the README's description stays true.
        window = micro[s * grad_accum:(s + 1) * grad_accum]
        assert abs(entry["loss"] - sum(m["loss"] for m in window) / grad_accum) < 1e-6
        assert abs(entry["rewards/margins"] - sum(m["rewards/margins"] for m in window) / grad_accum) < 1e-6
        steps.append(entry)

    final = dict(trainer.model.named_parameters())
    checksums = {}
    for k, p in final.items():
        p = p.detach()
        d = p - initial[k]
        checksums[k] = {"norm": p.double().norm().item(), "delta_norm": d.double().norm().item(),
                        "sum": p.double().sum().item(), "numel": p.numel()}
        if k.endswith("attn.c_attn.bias"):
            # The key bias's gradient is 0 in exact arithmetic (it adds q.b_k to every score of a query, which the
            # softmax ignores); float rounding leaves ~1e-8, which AdamW divides by sqrt(v) + eps ~ 1e-8, so this
            # slice moves by amplified rounding noise in TRL and Tycho alike. Checksums without it, and its size.
            n = p.numel() // 3
            qv, dqv = torch.cat([p[:n], p[2 * n:]]), torch.cat([d[:n], d[2 * n:]])
            checksums[k].update({"key_first": n + 1, "key_last": 2 * n, "norm_qv": qv.double().norm().item(),
                                 "delta_norm_qv": dqv.double().norm().item(),
                                 "key_delta_max": d[n:2 * n].abs().max().item()})
    names = PARAMS + ([WTE] if name == "constant" else [])
    path = os.path.join(OUT, f"params_{name}.safetensors")
    save_file({k: final[k].detach().contiguous() for k in names}, path, metadata={"format": "pt"})
    os.chmod(path, 0o644)
    return {"batch_size": batch_size, "grad_accum": grad_accum, "scheduler": scheduler, "warmup": warmup,
            "lr": LR, "steps": steps, "micro_batches": micro, "optimizer": optimizer, "checksums": checksums,
            "params_file": f"params_{name}.safetensors", "params": names}


def quote(s):
    out = []
    for b in s.encode("utf-8"):
        if b in (0x22, 0x5C):
            out.append("\\" + chr(b))
        elif b < 0x20 or b == 0x7F:
            out.append("\\%03d" % b)
        else:
            out.append(chr(b) if b < 0x80 else bytes([b]).decode("latin-1"))
    return '"' + "".join(out) + '"'


def lua(v, indent=""):
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "nil"
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else ("(0/0)" if v != v else ("math.huge" if v > 0 else "-math.huge"))
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return quote(v)
    if isinstance(v, list):
        if any(isinstance(x, dict) for x in v):
            inner = indent + "  "
            return "{\n" + ",\n".join(inner + lua(x, inner) for x in v) + "\n" + indent + "}"
        return "{" + ", ".join(lua(x, indent) for x in v) + "}"
    if isinstance(v, dict):
        inner = indent + "  "
        items = [f"{inner}[{quote(k)}] = {lua(x, inner)}" for k, x in sorted(v.items()) if x is not None]
        return "{\n" + ",\n".join(items) + "\n" + indent + "}"
    raise TypeError(type(v))


def main():
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    datasets.disable_progress_bars()
    os.environ["TQDM_DISABLE"] = "1"
    torch.set_num_threads(1)  # reductions in one fixed order
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "train.jsonl"), "w", encoding="utf-8") as f:
        for r in ROWS:
            f.write(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n")
    cases = {name: run_case(name, *rest) for name, *rest in CASES}
    ref = {
        "versions": {"trl": trl.__version__, "torch": torch.__version__, "transformers": transformers.__version__,
                     "accelerate": accelerate.__version__, "datasets": datasets.__version__},
        "file": "train.jsonl", "model": "../models/gpt2", "reference": "../dpo_data/gpt2_ref",
        "eos_token": EOS, "max_length": 1024, "truncation": "keep_start", "beta": BETA, "loss_type": "sigmoid",
        "lr": LR, "max_steps": STEPS, "seed": SEED, "max_grad_norm": MAX_GRAD_NORM, "weight_decay": 0.0,
        "betas": [0.9, 0.999], "eps": 1e-8, "shuffle": False, "cases": cases,
    }
    with open(os.path.join(OUT, "dpo_train_ref.lua"), "w", encoding="latin-1") as f:
        f.write("-- Generated by Tests/Fixtures/gen_dpo_train_fixtures.py; do not edit. See dpo_train/README.md.\n")
        f.write("return " + lua(ref) + "\n")
    for name, c in cases.items():
        print(name, c["optimizer"]["class"], "fused" if c["optimizer"]["fused"] else "",
              " | ".join(f"step {s['step']}: rows {s['rows']} loss {s['loss']:.6f} grad_norm {s['grad_norm']:.4f} "
                         f"lr {s['learning_rate']:.1e}" for s in c["steps"]))


if __name__ == "__main__":
    main()

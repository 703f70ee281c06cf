#!/usr/bin/env python3
"""gen_dpo_data_fixtures.py: what trl.DPOTrainer makes of preference rows, for Tycho's preference-data tests.

Runs TRL's own code, not a re-implementation: a real `DPOTrainer` is built on the tiny GPT-2 fixture
(Tests/Fixtures/models/gpt2) for each case below, so its `_prepare_dataset` extracts implicit prompts, appends
the EOS text to plain completions, tokenizes prompt and prompt+completion, splits them at their common prefix,
and drops rows whose prompt fills `max_length`; its `DataCollatorForPreference` then truncates and pads the
kept rows into one [chosen; rejected] batch. For the cases marked `logps`, `compute_ref_log_probs` (the code
both the policy and the reference pass use) gives every sequence's summed completion log-prob under the policy
(the fixture GPT-2) and under the reference (a second copy of it, perturbed by 0.02*randn so that the loss is
not log 2), and `compute_loss` gives the DPO sigmoid loss with beta 0.1 (checked here against
-log sigmoid(beta * ((pc - rc) - (pr - rr))) averaged over pairs, to 1e-6).

Writes, under Tests/Fixtures/dpo_data/:
  plain.jsonl, chat.jsonl, openai.jsonl, implicit.jsonl   the input rows (TRL plain strings, TRL
                        conversational messages, OpenAI DPO fine-tuning lines, implicit-prompt strings)
  gpt2_ref/             the reference copy (config.json, model.safetensors)
  sync_ref.safetensors  three reference tensors after one TR-DPO sync (alpha 0.6) towards the policy, by
                        TRL's SyncRefModelCallback.sync_target_model
  dpo_data_ref.json     per case: settings, the kept rows (1-based), prompt/chosen/rejected ids, the collated
                        input_ids, attention_mask and completion_mask (rows 1..B chosen, B+1..2B rejected),
                        and for `logps` cases the per-sequence log-probs and the loss
  dpo_data_ref.lua      the same as a Lua table for Tests/lua/preferences.lua

Chat templates: the tiny tokenizer has none, so the cases set one in Jinja: ChatML, Llama 3 and plain as Tycho
writes them (`chatml`, `llama3`, `plain`), rendered by transformers' own apply_chat_template. The tiny
tokenizer has no chat special tokens, so `<|im_start|>` and the like cost about a dozen byte tokens each: the
cases whose sequences exceed the model's 64 positions (chatml, llama3) check ids and masks only, and
log-probs are checked with the short `plain` layout and with ChatML truncated to 64 tokens (keep_end). OpenAI rows have no TRL
reader: they are mapped as Tycho maps them (prompt = input.messages, chosen = preferred_output, rejected =
non_preferred_output) and then go through TRL like any conversational row.

Tests never need Python; rerun after changing this script or the library versions:
    pip install trl==1.16.0 && python3 Tests/Fixtures/gen_dpo_data_fixtures.py
Generated with trl 1.16.0, torch 2.13.0+cpu, transformers 5.24.0, datasets 5.2.0.
"""

import json
import logging
import os
import shutil
import tempfile
import warnings

import torch
import transformers
import trl
import datasets
from datasets import Dataset
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast
from trl import DPOConfig, DPOTrainer
from trl.trainer.callbacks import SyncRefModelCallback

HERE = os.path.dirname(os.path.abspath(__file__))
MODEL = os.path.join(HERE, "models", "gpt2")
OUT = os.path.join(HERE, "dpo_data")
EOS = "<|endoftext|>"
BETA = 0.1
PERTURB_SEED = 1234
PERTURB_SCALE = 0.02
SYNC_ALPHA = 0.6
SYNC_TENSORS = ["transformer.h.0.attn.c_attn.weight", "transformer.wpe.weight", "transformer.ln_f.bias"]

CHATML = ("{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + "
          "'<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")
LLAMA3 = ("{{ '<|begin_of_text|>' }}{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + "
          "'<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}{% endfor %}"
          "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}")
PLAIN_CHAT = ("{% for message in messages %}{{ message['role'] + ': ' + message['content'] + '\\n' }}{% endfor %}"
              "{% if add_generation_prompt %}{{ 'assistant:' }}{% endif %}")

# Plain rows: a prompt ending in a space (its last token merges with the completion's first, so TRL's
# common-prefix rule moves the boundary), a chosen that already ends with the EOS text (not doubled), non-ASCII
# text, an empty rejected (EOS alone), and a long prompt that the truncation cases cut or drop.
PLAIN = [
    {"prompt": "The licence says ", "chosen": "you may copy it.", "rejected": "nothing"},
    {"prompt": "Q: 2+2?", "chosen": " 4" + EOS, "rejected": " 5"},
    {"prompt": "Permission is granted", "chosen": " to any person", "rejected": " é 中 to nobody"},
    {"prompt": "Software", "chosen": " is provided as is.", "rejected": ""},
    {"prompt": "THE SOFTWARE IS PROVIDED WITHOUT WARRANTY", "chosen": " OF ANY KIND",
     "rejected": " whatever"},
]

CHAT = [
    {"prompt": [{"role": "user", "content": "Copy it?"}],
     "chosen": [{"role": "assistant", "content": "Yes."}],
     "rejected": [{"role": "assistant", "content": "No"}]},
    {"prompt": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"}],
     "chosen": [{"role": "assistant", "content": " 4 "}],
     "rejected": [{"role": "assistant", "content": "5"}]},
    {"prompt": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"},
                {"role": "user", "content": "Bye"}],
     "chosen": [{"role": "assistant", "content": "Bye!"}],
     "rejected": [{"role": "assistant", "content": "?"}]},
]

OPENAI = [
    {"input": {"messages": [{"role": "user", "content": "Copy it?"}]},
     "preferred_output": [{"role": "assistant", "content": "Yes."}],
     "non_preferred_output": [{"role": "assistant", "content": "No"}]},
    {"input": {"messages": [{"role": "system", "content": "Be brief."},
                            {"role": "user", "content": [{"type": "text", "text": "2+"}, {"type": "text", "text": "2?"}]}]},
     "preferred_output": [{"role": "assistant", "content": "4"}],
     "non_preferred_output": [{"role": "assistant", "content": "5"}]},
]

IMPLICIT = [
    {"chosen": "The licence says you may copy it.", "rejected": "The licence says nothing."},
    {"chosen": "Q: 2+2? 4", "rejected": "Q: 2+2? 5"},
]

# name, file, rows, chat template, max_length, truncation_mode, with log-probs and loss
CASES = [
    ("plain", "plain.jsonl", PLAIN, None, None, "keep_start", True),
    ("plain_keep_start_12", "plain.jsonl", PLAIN, None, 12, "keep_start", False),
    ("plain_keep_end_12", "plain.jsonl", PLAIN, None, 12, "keep_end", False),
    ("chat_plain", "chat.jsonl", CHAT, "plain", None, "keep_start", True),
    ("chatml_keep_end_64", "chat.jsonl", CHAT, "chatml", 64, "keep_end", True),
    ("chatml", "chat.jsonl", CHAT, "chatml", None, "keep_start", False),
    ("llama3", "chat.jsonl", CHAT, "llama3", None, "keep_start", False),
    ("openai", "openai.jsonl", OPENAI, "plain", None, "keep_start", True),
    ("implicit", "implicit.jsonl", IMPLICIT, None, None, "keep_start", False),
]


def openai_to_trl(row):
    """Tycho's mapping of an OpenAI DPO line: text parts joined, input.messages the prompt."""
    def flat(m):
        c = m["content"]
        if isinstance(c, list):
            c = "".join(p["text"] for p in c)
        return {"role": m["role"], "content": c}
    return {"prompt": [flat(m) for m in row["input"]["messages"]],
            "chosen": [flat(m) for m in row["preferred_output"]],
            "rejected": [flat(m) for m in row["non_preferred_output"]]}


def tokenizer(template):
    tok = PreTrainedTokenizerFast(tokenizer_file=os.path.join(MODEL, "tokenizer.json"), eos_token=EOS)
    if template is not None:
        tok.chat_template = {"chatml": CHATML, "llama3": LLAMA3, "plain": PLAIN_CHAT}[template]
    return tok


def reference_copy():
    ref = AutoModelForCausalLM.from_pretrained(MODEL)
    g = torch.Generator().manual_seed(PERTURB_SEED)
    with torch.no_grad():
        for _, p in sorted(ref.named_parameters()):
            p.add_(PERTURB_SCALE * torch.randn(p.shape, generator=g))
    return ref


def run_case(name, rows, template, max_length, mode, logps, ref_dir):
    rows = [openai_to_trl(r) if "input" in r else r for r in rows]
    rows = [dict(r, row=i + 1) for i, r in enumerate(rows)]  # carried through map/filter to name kept rows
    model = AutoModelForCausalLM.from_pretrained(MODEL)
    ref = AutoModelForCausalLM.from_pretrained(ref_dir)
    # bf16=False: DPOConfig defaults to bf16=True, and accelerate then autocasts the policy's forward to bfloat16
    # even on CPU (log-probs off by about 1e-2); the reference stays float32. Fixtures are float32 throughout.
    args = DPOConfig(output_dir=tempfile.mkdtemp(), report_to=[], use_cpu=True, bf16=False, beta=BETA,
                     max_length=max_length, truncation_mode=mode, loss_type="sigmoid",
                     per_device_train_batch_size=len(rows), remove_unused_columns=False)
    trainer = DPOTrainer(model=model, ref_model=ref, args=args, train_dataset=Dataset.from_list(rows),
                         processing_class=tokenizer(template))
    data = trainer.train_dataset
    examples = [data[i] for i in range(len(data))]
    batch = trainer.data_collator(examples)
    out = {
        "file": None, "chat_template": template, "max_length": max_length, "truncation": mode,
        "eos_token": EOS, "pad_id": trainer.processing_class.pad_token_id,
        "source_rows": len(rows),
        "rows": [e["row"] for e in examples],
        "prompt_ids": [e["prompt_ids"] for e in examples],
        "chosen_ids": [e["chosen_ids"] for e in examples],
        "rejected_ids": [e["rejected_ids"] for e in examples],
        "input_ids": batch["input_ids"].tolist(),
        "attention_mask": batch["attention_mask"].tolist(),
        "completion_mask": batch["completion_mask"].tolist(),
    }
    if logps:
        trainer.model.eval()
        with torch.no_grad():
            pc, pr = trainer.compute_ref_log_probs(trainer.model, batch)
            rc, rr = trainer.compute_ref_log_probs(trainer.ref_model, batch)
            loss = trainer.compute_loss(trainer.model, batch)
        by_hand = -torch.nn.functional.logsigmoid(BETA * ((pc - rc) - (pr - rr))).mean()
        assert abs(loss.item() - by_hand.item()) < 1e-6, (loss.item(), by_hand.item())
        out.update({"policy_chosen": pc.tolist(), "policy_rejected": pr.tolist(),
                    "ref_chosen": rc.tolist(), "ref_rejected": rr.tolist(),
                    "beta": BETA, "loss": loss.item()})
    return out


def sync_fixture(ref_dir):
    policy = AutoModelForCausalLM.from_pretrained(MODEL)
    ref = AutoModelForCausalLM.from_pretrained(ref_dir)
    SyncRefModelCallback._sync_target_model(policy, ref, SYNC_ALPHA)
    named = dict(ref.named_parameters())
    save_file({k: named[k].detach().contiguous() for k in SYNC_TENSORS}, os.path.join(OUT, "sync_ref.safetensors"),
              metadata={"format": "pt"})


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
        return repr(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return quote(v)
    if isinstance(v, list):
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
    datasets.disable_progress_bars()
    os.environ["TQDM_DISABLE"] = "1"
    torch.manual_seed(0)
    os.makedirs(OUT, exist_ok=True)
    for fname, rows in [("plain.jsonl", PLAIN), ("chat.jsonl", CHAT), ("openai.jsonl", OPENAI),
                        ("implicit.jsonl", IMPLICIT)]:
        with open(os.path.join(OUT, fname), "w", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n")
    ref_dir = os.path.join(OUT, "gpt2_ref")
    shutil.rmtree(ref_dir, ignore_errors=True)
    reference_copy().save_pretrained(ref_dir)
    for extra in ("generation_config.json",):
        p = os.path.join(ref_dir, extra)
        if os.path.exists(p):
            os.remove(p)
    sync_fixture(ref_dir)
    cases = {}
    for name, fname, rows, template, max_length, mode, logps in CASES:
        c = run_case(name, rows, template, max_length, mode, logps, ref_dir)
        c["file"] = fname
        cases[name] = c
    ref = {"versions": {"trl": trl.__version__, "torch": torch.__version__, "transformers": transformers.__version__,
                        "datasets": datasets.__version__},
           "beta": BETA, "sync_alpha": SYNC_ALPHA, "sync_tensors": SYNC_TENSORS,
           "perturb": {"seed": PERTURB_SEED, "scale": PERTURB_SCALE},
           "templates": {"chatml": CHATML, "llama3": LLAMA3, "plain": PLAIN_CHAT}, "cases": cases}
    with open(os.path.join(OUT, "dpo_data_ref.json"), "w", encoding="utf-8") as f:
        json.dump(ref, f, indent=1, sort_keys=True, ensure_ascii=False)
        f.write("\n")
    with open(os.path.join(OUT, "dpo_data_ref.lua"), "w", encoding="latin-1") as f:
        f.write("-- Generated by Tests/Fixtures/gen_dpo_data_fixtures.py; do not edit.\n")
        f.write("return " + lua(ref) + "\n")
    for name, c in cases.items():
        extra = f", loss {c['loss']:.6f}" if "loss" in c else ""
        print(f"{name}: {len(c['rows'])} of {c['source_rows']} rows kept, T = {len(c['input_ids'][0])}{extra}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""gen_eval_fixtures.py: writes eval_fixtures.lua, the perplexities Tests/lua/eval.lua checks eval.perplexity against.

Every value comes from transformers running the tiny models under Tests/Fixtures/models/ (gpt2, llama, qwen2; made
by gen_model_fixtures.py, read here, never changed), following Hugging Face's guide "Perplexity of fixed-length
models" (https://huggingface.co/docs/transformers/perplexity):

  short   six corpus lines and a one-token text, each tokenized alone with tokenizer(text) (no special tokens are
          added by this tokenizer), each fitting in the model's 64 positions. Every text is one forward pass with
          labels = input_ids; the text's NLL is outputs.loss times its predicted tokens (len - 1), and
          perplexity = exp(sum of NLLs / sum of predicted tokens) (token-weighted, not a mean of per-text
          perplexities). A one-token text predicts nothing and adds nothing. Checked against a padded batch with
          labels -100 on the padding, and against log_softmax of the logits summed in float64.
  long    the corpus lines joined with "\\n\\n" (as the guide joins wikitext), about 600 tokens, longer than the
          window: the guide's sliding-window loop (begin_loc in range(0, seq_len, stride), end_loc =
          min(begin_loc + max_length, seq_len), the last trg_len = end_loc - prev_end_loc tokens are targets, the
          others -100) for several (max_length, stride). Each token from the second on is predicted once, with the
          context its window gives it (with stride == max_length, disjoint chunks, the first token of each later
          chunk is not predicted at all: its window starts with it). The window's NLL is outputs.loss times the labels it actually
          predicted (the targets after the internal shift). The guide multiplies by num_valid_tokens - batch_size,
          one token short in windows after the first (where the first label is already -100); that value is
          written too, as guide_literal_perplexity, and the tests do not use it.

Tests never need Python: rerun only after changing this script, the models or the library versions:
    python3 Tests/Fixtures/gen_eval_fixtures.py
Generated with torch 2.13.0+cpu, transformers 5.24.0, tokenizers 0.23.3.
"""

import math
import os

import tokenizers
import torch
import transformers
from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast

from ref_json_to_lua import lua

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
MODELS = os.path.join(HERE, "models")
CORPUS = os.path.join(ROOT, "Scripts", "data", "licenses.txt")
OUT = os.path.join(HERE, "eval_fixtures.lua")

SHORT_LINES = [3, 29, 200, 512, 900, 1100]     # indices into the corpus lines longer than 20 characters
LONG_LINES = range(100, 112)                    # joined with "\n\n" into the long text
WINDOWS = [(64, 32), (64, 64), (64, 1), (20, 7), (33, 33)]   # (max_length, stride) for the long text


def corpus():
    with open(CORPUS, encoding="utf-8") as f:
        lines = [ln.strip() for ln in f]
    return [ln for ln in lines if len(ln) > 20]


def seq_nll(model, ids):
    """Sum of -log p over positions 1.. of one sequence (outputs.loss times the predicted tokens), the count, and
    the same sum from log_softmax in float64."""
    x = torch.tensor([ids])
    with torch.no_grad():
        out = model(input_ids=x, labels=x)
    n = len(ids) - 1
    lp = torch.log_softmax(out.logits[0, :-1].double(), dim=-1)
    by_hand = -float(lp.gather(-1, x[0, 1:].unsqueeze(-1)).sum())
    return float(out.loss) * n, n, by_hand


def batched_nll(model, seqs, pad_id):
    """The same sums from one right-padded batch (attention_mask 0 and labels -100 on the padding)."""
    seqs = [s for s in seqs if len(s) >= 2]
    t = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), t), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), t), dtype=torch.long)
    for b, s in enumerate(seqs):
        ids[b, :len(s)] = torch.tensor(s)
        mask[b, :len(s)] = 1
    labels = ids.masked_fill(mask == 0, -100)
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask, labels=labels)
    n = int((labels[:, 1:] != -100).sum())
    return float(out.loss) * n, n


def sliding(model, ids, max_length, stride):
    """The guide's loop over one long sequence; returns (exact NLL sum, predicted tokens, windows, guide's value)."""
    x = torch.tensor([ids])
    seq_len = x.size(1)
    nll_sum, n_tokens, windows = 0.0, 0, 0
    guide_sum, guide_tokens = 0.0, 0
    prev_end_loc = 0
    for begin_loc in range(0, seq_len, stride):
        end_loc = min(begin_loc + max_length, seq_len)
        trg_len = end_loc - prev_end_loc
        input_ids = x[:, begin_loc:end_loc]
        target_ids = input_ids.clone()
        target_ids[:, :-trg_len] = -100
        with torch.no_grad():
            loss = float(model(input_ids, labels=target_ids).loss)
        predicted = int((target_ids[:, 1:] != -100).sum())     # what the loss averaged over
        nll_sum += loss * predicted
        n_tokens += predicted
        windows += 1
        literal = int((target_ids != -100).sum()) - target_ids.size(0)
        guide_sum += loss * literal
        guide_tokens += literal
        prev_end_loc = end_loc
        if end_loc == seq_len:
            break
    # stride < max_length: every token from the second on; stride == max_length (disjoint chunks): not the first
    # token of each later chunk either (its window gives it no context), as in the guide
    assert n_tokens == seq_len - 1 - (0 if stride < max_length else windows - 1), (n_tokens, seq_len)
    return nll_sum, n_tokens, windows, math.exp(guide_sum / guide_tokens)


def main():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    lines = corpus()
    short = [lines[i] for i in SHORT_LINES] + ["a"]
    long_text = "\n\n".join(lines[i] for i in LONG_LINES)
    out = {"short_texts": short, "long_text": long_text, "windows": [list(w) for w in WINDOWS],
           "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                        "tokenizers": tokenizers.__version__}}
    for name in ("gpt2", "llama", "qwen2"):
        folder = os.path.join(MODELS, name)
        tok = PreTrainedTokenizerFast(tokenizer_file=os.path.join(folder, "tokenizer.json"))
        model = AutoModelForCausalLM.from_pretrained(folder, attn_implementation="eager", dtype=torch.float32)
        model.eval()
        ids = [tok(t)["input_ids"] for t in short]
        assert ids[-1] == [ids[-1][0]], "the last short text is one token"
        assert max(len(s) for s in ids) <= 64, [len(s) for s in ids]
        total, count, per_text = 0.0, 0, []
        for s in ids:
            if len(s) < 2:
                per_text.append({"nll": 0.0, "tokens": 0})
                continue
            nll, n, by_hand = seq_nll(model, s)
            assert abs(nll - by_hand) < 1e-4 * max(1.0, abs(by_hand)), (name, nll, by_hand)
            per_text.append({"nll": by_hand, "tokens": n})
            total += by_hand
            count += n
        b_nll, b_n = batched_nll(model, ids, pad_id=0)
        assert b_n == count and abs(b_nll - total) < 1e-4 * total, (name, b_nll, total)
        long_ids = tok(long_text)["input_ids"]
        assert len(long_ids) > 300, len(long_ids)
        windows = []
        for max_length, stride in WINDOWS:
            nll, n, w, guide = sliding(model, long_ids, max_length, stride)
            windows.append({"max_length": max_length, "stride": stride, "nll": nll / n, "tokens": n, "windows": w,
                            "perplexity": math.exp(nll / n), "guide_literal_perplexity": guide})
        out[name] = {"short_ids": ids, "short": {"nll": total / count, "tokens": count,
                                                 "perplexity": math.exp(total / count), "per_text": per_text},
                     "long_ids": long_ids, "long": windows}
        print("%-6s short ppl %.6f over %d tokens; long (%d tokens): %s" % (
            name, math.exp(total / count), count, len(long_ids),
            ", ".join("%d/%d %.5f" % (x["max_length"], x["stride"], x["perplexity"]) for x in windows)))
    with open(OUT, "w", encoding="latin-1") as f:
        f.write("-- Generated by Tests/Fixtures/gen_eval_fixtures.py; do not edit.\n")
        f.write("return " + lua(out) + "\n")


if __name__ == "__main__":
    main()

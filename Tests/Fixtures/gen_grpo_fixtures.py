#!/usr/bin/env python3
"""gen_grpo_fixtures.py: writes grpo_fixtures.lua, the reference values Tests/lua/rft_losses.lua checks.

Every value comes from TRL 1.16's own GRPOTrainer code:

- Advantages and reward metrics: a real `GRPOTrainer` built on the tiny GPT-2 of Tests/Fixtures/models/gpt2, whose
  `_generate_and_score_completions` runs on fixed prompts. Generation is replaced at one seam only,
  `_generate_single_turn`, which returns fixed ragged completion ids (some ending with EOS, some cut at the length
  limit); TRL's own `_generate` then logs the completion metrics (`completions/*`), and TRL's reward code turns the
  rewards of stand-in reward functions (fixed values, `None` for a failed grader) into advantages and the `reward`,
  `reward_std`, `frac_reward_zero_std`, `rewards/<name>/*` metrics. Reward functions, weights, `scale_rewards`,
  `multi_objective_aggregation` and `num_generations` are set per case on the same trainer, as its __init__ sets
  them from GRPOConfig.
- Losses: `GRPOTrainer._compute_loss`, called unbound on a minimal trainer-like object: a SimpleNamespace holding
  the attributes the method reads, filled from a real GRPOConfig the way GRPOTrainer.__init__ copies them
  (`self.epsilon_low = args.epsilon`, ...), one process (gather and reduce are identities), and the model forward
  (`_get_per_token_logps_and_entropies`) replaced by a function returning fixed per-token log-probs (a leaf that
  requires grad) and entropies. `get_gamma_weights` is TRL's. The loss value, TRL's logged metrics and the gradient
  with respect to the per-token log-probs are recorded; the method's local tensors (per_token_loss, the log
  importance weights, per_token_kl, the clipped masks, phi_seq) are read with a trace function at its `return
  loss` line. Nothing of TRL is modified.

A tensor is written as {s = {sizes...}, d = {row-major values...}} with float32 values printed with 9 significant
digits (exact round trip); stats as doubles with 17; NaN as 0/0. Rerun after changing a case (deterministic for
given numpy/torch/trl):
    pip install trl==1.16.0 && python3 Tests/Fixtures/gen_grpo_fixtures.py
"""

import logging
import math
import os
import sys
import tempfile
import warnings
from collections import defaultdict
from types import SimpleNamespace

import numpy as np
import torch
import trl
from trl import GRPOConfig, GRPOTrainer

SEED = 20260611
HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "grpo_fixtures.lua")
MODEL = os.path.join(HERE, "models", "gpt2")
TMP = tempfile.mkdtemp()
CONFIG = dict(output_dir=TMP, report_to=[], use_cpu=True, bf16=False)
torch.set_num_threads(1)
warnings.simplefilter("ignore")
logging.disable(logging.WARNING)

# MARK: formatting


def num(v):
    v = float(v)
    if math.isnan(v):
        return "0/0"
    if math.isinf(v):
        return "math.huge" if v > 0 else "-math.huge"
    return "%.9g" % v


def dbl(v):
    v = float(v)
    if math.isnan(v):
        return "0/0"
    if math.isinf(v):
        return "math.huge" if v > 0 else "-math.huge"
    return "%.17g" % v


def tensor(a):
    if isinstance(a, torch.Tensor):
        a = a.detach().float().numpy()
    a = np.asarray(a, dtype=np.float32)
    return "{s={%s},d={%s}}" % (",".join(str(s) for s in a.shape), ",".join(num(v) for v in a.reshape(-1)))


def lua(v, indent=""):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, float):
        return dbl(v)
    if isinstance(v, str):
        return '"%s"' % v
    if isinstance(v, (torch.Tensor, np.ndarray)):
        return tensor(v)
    if isinstance(v, list):
        return "{" + ",".join(lua(x, indent) for x in v) + "}"
    if isinstance(v, dict):
        inner = indent + "  "
        parts = []
        for k, x in v.items():
            key = k if k.isidentifier() else '["%s"]' % k
            parts.append("%s%s=%s" % (inner, key, lua(x, inner)))
        return "{\n" + ",\n".join(parts) + "}"
    raise TypeError(type(v))


def metrics(store):
    return {k: float(v[-1]) for k, v in store.items()}


class Locals:
    """Reads local variables of a TRL method at one source line, through sys.settrace."""

    def __init__(self, code, line, names):
        self.code, self.line, self.names = code, line, names
        self.seen = {}

    def tracer(self, frame, event, arg):
        if frame.f_code is not self.code:
            return None

        def local(frame, event, arg):
            if event == "line" and frame.f_lineno == self.line:
                for n in self.names:
                    if n in frame.f_locals:
                        self.seen[n] = frame.f_locals[n].detach().clone()
            return local

        return local

    def run(self, fn):
        sys.settrace(self.tracer)
        try:
            return fn()
        finally:
            sys.settrace(None)


def line_of(fn, text):
    import inspect

    src, start = inspect.getsourcelines(fn)
    for i, l in enumerate(src):
        if l.strip() == text:
            return start + i
    raise ValueError("%r not found in %s" % (text, fn.__qualname__))


rng = np.random.default_rng(SEED)

# MARK: advantages, on a real GRPOTrainer


def build_trainer():
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast

    tok = PreTrainedTokenizerFast(tokenizer_file=os.path.join(MODEL, "tokenizer.json"))
    tok.eos_token = "<|endoftext|>"
    tok.pad_token = tok.eos_token
    model = AutoModelForCausalLM.from_pretrained(MODEL)
    args = GRPOConfig(num_generations=3, per_device_train_batch_size=6, max_completion_length=6, **CONFIG)
    placeholder = lambda prompts, completions, **kw: [0.0] * len(prompts)  # noqa: E731
    tr = GRPOTrainer(model=model, reward_funcs=[placeholder], args=args,
                     train_dataset=Dataset.from_dict({"prompt": ["a b", "c d"]}), processing_class=tok)
    tr.model.train()
    return tr


EOS = 0
MAX_COMPLETION = 6


def completions(n):
    """n fixed ragged completions: lengths 1..6, about half ending with EOS, the others cut at 6 tokens."""
    out = []
    for i in range(n):
        if i % 2 == 0:
            length = int(rng.integers(1, MAX_COMPLETION + 1))
            ids = [int(x) for x in rng.integers(1, 60, size=length - 1)] + [EOS]
        else:
            ids = [int(x) for x in rng.integers(1, 60, size=MAX_COMPLETION)]
        out.append(ids)
    return out


def reward_func(name, values):
    def f(prompts, completions, **kwargs):
        assert len(prompts) == len(values)
        return [None if (v is None) else float(v) for v in values]

    f.__name__ = name
    return f


def advantages_case(tr, name, columns, group_size, scale="group", aggregation="sum_then_normalize", weights=None):
    """columns: {name: [reward or None, ...]} in order; every column has N values."""
    names = list(columns)
    n = len(columns[names[0]])
    tr.reward_funcs = [reward_func(k, columns[k]) for k in names]
    tr.reward_func_names = names
    tr.reward_processing_classes = [None] * len(names)
    tr.reward_weights = torch.tensor(weights if weights is not None else [1.0] * len(names), dtype=torch.float32)
    tr.scale_rewards = scale
    tr.multi_objective_aggregation = aggregation
    tr.num_generations = group_size
    tr._metrics = {"train": defaultdict(list), "eval": defaultdict(list)}
    ids = completions(n)
    tr._generate_single_turn = lambda *a, **k: (ids, None)
    prompts = ["p%d" % (i // group_size) for i in range(n)]
    out = tr._generate_and_score_completions([{"prompt": p} for p in prompts])
    m = metrics(tr._metrics["train"])
    m.pop("num_tokens", None)
    eos_and_pad = [*tr.eos_token_ids, tr._tokenizer.pad_token_id]
    rewards = np.array([[np.nan if columns[k][i] is None else columns[k][i] for k in names] for i in range(n)],
                       dtype=np.float32)
    options = {"scale": scale, "aggregation": aggregation, "names": names}
    if weights is not None:
        options["weights"] = [float(w) for w in weights]
    return {
        "name": name,
        "group_size": group_size,
        "rewards": rewards if len(names) > 1 else rewards[:, 0],
        "options": options,
        "advantages": out["advantages"],
        "stats": {k: v for k, v in m.items() if not k.startswith("completions/")},
        "completion_mask": out["completion_mask"].float(),
        "truncated": [ids_[-1] not in eos_and_pad for ids_ in ids],
        "completion_stats": {k: v for k, v in m.items() if k.startswith("completions/")},
    }


def advantages_cases():
    tr = build_trainer()
    cases = []
    single = {"accuracy": [1.0, None, 0.5, 2.0, 2.0, 2.0]}
    for scale in ["group", "batch", "none"]:
        cases.append(advantages_case(tr, "one grader, a failed reward, a zero-std group, scale %s" % scale, single, 3,
                                     scale=scale))
    two = {"accuracy": [1.0, None, 0.25, 0.7, 0.1, None], "format": [0.3, None, 1.0, None, 0.9, 0.4]}
    for aggregation in ["sum_then_normalize", "normalize_then_sum"]:
        for scale in ["group", "batch", "none"]:
            cases.append(advantages_case(tr, "two graders weighted, NaNs, an unscorable row, %s, scale %s"
                                         % (aggregation, scale), two, 3, scale=scale, aggregation=aggregation,
                                         weights=[1.0, 0.5]))
    r = rng.normal(size=(8, 3)).astype(np.float32)
    three = {}
    for k, nm in enumerate(["correct", "short", "polite"]):
        col = [float(x) for x in r[:, k]]
        for i in range(8):
            if (i + k) % 5 == 0:
                col[i] = None
        three[nm] = col
    for aggregation in ["sum_then_normalize", "normalize_then_sum"]:
        for scale in ["group", "batch"]:
            cases.append(advantages_case(tr, "three graders, groups of 2, %s, scale %s" % (aggregation, scale), three,
                                         2, scale=scale, aggregation=aggregation, weights=[0.5, 2.0, -1.0]))
    lonely = {"accuracy": [None, None, 0.4, 0.1, 0.2, 0.9]}
    for scale in ["group", "batch", "none"]:
        cases.append(advantages_case(tr, "a group with one reward (NaN std), scale %s" % scale, lonely, 3, scale=scale))
    cases.append(advantages_case(tr, "group size 1 (TRL's eval path)", {"accuracy": [0.5, 1.0, 0.0, 0.25]}, 1))
    cases.append(advantages_case(tr, "group size 1, scale batch", {"accuracy": [0.5, 1.0, 0.0, 0.25]}, 1, scale="batch"))
    cases.append(advantages_case(tr, "one group, equal rewards", {"accuracy": [0.75] * 6}, 6))
    big = {"score": [float(x) for x in rng.normal(size=12).astype(np.float32)]}
    for scale in ["group", "batch", "none"]:
        cases.append(advantages_case(tr, "12 completions in groups of 4, scale %s" % scale, big, 4, scale=scale))
    cases.append(advantages_case(tr, "12 completions, normalize_then_sum one grader", big, 4,
                                 aggregation="normalize_then_sum"))
    return cases


# MARK: losses, through GRPOTrainer._compute_loss

B, T = 6, 7
LENGTHS = [7, 3, 5, 1, 6, 4]
RETURN_LINE = line_of(GRPOTrainer._compute_loss, "return loss")
LOCALS = ["per_token_loss", "log_importance_weights", "per_token_kl", "is_low_clipped", "is_high_clipped",
          "is_region_clipped", "is_cispo_clipped", "phi_seq"]


class Accelerator:
    device = torch.device("cpu")
    num_processes = 1
    process_index = 0
    sync_gradients = True

    def gather(self, x):
        return x

    def gather_for_metrics(self, x):
        return x

    def reduce(self, x, reduction="sum"):
        return x


def input_set(lengths=None, t=T, token_advantages=False):
    """Fixed random per-token inputs for B = len(lengths) completions of t positions (padding after each length)."""
    lengths = LENGTHS if lengths is None else lengths
    b = len(lengths)
    mask = np.zeros((b, t), dtype=np.float32)
    for i, l in enumerate(lengths):
        mask[i, :l] = 1
    logps = rng.uniform(-4.0, -0.05, size=(b, t)).astype(np.float32)
    # Per-row offsets and per-token noise: ratios leave [1 - eps, 1 + eps] on both sides, per token and per sequence.
    old = (logps + rng.uniform(-0.45, 0.45, size=(b, 1)) + rng.normal(0, 0.3, size=(b, t))).astype(np.float32)
    ref = (logps + rng.normal(0, 0.5, size=(b, t))).astype(np.float32)
    entropies = rng.uniform(0.0, 3.0, size=(b, t)).astype(np.float32)
    adv = rng.normal(0, 1, size=(b, t) if token_advantages else b).astype(np.float32)
    if not token_advantages and b > 2:
        adv[2] = 0.0  # a zero advantage (ties in min, and sapo's / vespo's sign tests)
    return {"logps": logps, "old_logps": old, "ref_logps": ref, "advantages": adv, "mask": mask,
            "entropies": entropies}


INPUTS = {
    "base": input_set(),
    "token_advantages": input_set(token_advantages=True),
    "empty_row": input_set(lengths=[7, 0, 5, 1, 6, 4]),
    "one_position": input_set(lengths=[1, 0, 1, 1], t=1),
    "one_completion": input_set(lengths=[5]),
}


def loss_case(name, type_, importance="token", beta=0.0, epsilon=0.2, epsilon_high=None, delta=None,
              use_bias_correction_kl=True, with_old=True, num_items=None, max_completion_length=None,
              inputs_name="base", extra=None):
    extra = extra or {}
    x = INPUTS[inputs_name]
    b, t = x["logps"].shape
    mcl = max_completion_length if max_completion_length is not None else 512
    args = GRPOConfig(num_generations=3, per_device_train_batch_size=6, loss_type=type_, beta=beta, epsilon=epsilon,
                      epsilon_high=epsilon_high, delta=delta, importance_sampling_level=importance,
                      use_bias_correction_kl=use_bias_correction_kl, max_completion_length=mcl, **extra, **CONFIG)
    mask = torch.tensor(x["mask"]).long()
    logps, old, ref, entropies, adv = x["logps"], x["old_logps"], x["ref_logps"], x["entropies"], x["advantages"]
    leaf = torch.tensor(logps, requires_grad=True)
    ent = torch.tensor(entropies)
    inputs = {
        "prompt_ids": torch.zeros(b, 2, dtype=torch.long),
        "prompt_mask": torch.ones(b, 2, dtype=torch.long),
        "completion_ids": torch.zeros(b, t, dtype=torch.long),
        "completion_mask": mask,
        "advantages": torch.tensor(adv),
        "num_items_in_batch": torch.tensor(float(num_items) if num_items is not None else mask.sum()),
    }
    if with_old:
        inputs["old_per_token_logps"] = torch.tensor(old)
    if beta != 0.0:
        inputs["ref_per_token_logps"] = torch.tensor(ref)
    # What GRPOTrainer.__init__ copies from its config, and the trainer state _compute_loss reads.
    s = SimpleNamespace(
        args=args, accelerator=Accelerator(), model=SimpleNamespace(training=True),
        beta=args.beta, loss_type=args.loss_type, importance_sampling_level=args.importance_sampling_level,
        epsilon_low=args.epsilon, epsilon_high=args.epsilon_high if args.epsilon_high is not None else args.epsilon,
        max_completion_length=args.max_completion_length, top_entropy_quantile=args.top_entropy_quantile,
        off_policy_mask_threshold=args.off_policy_mask_threshold, use_vllm=False,
        vllm_importance_sampling_correction=False, aux_loss_enabled=False, _entropy_bonus_enabled=False,
        current_gradient_accumulation_steps=1, get_gamma_weights=GRPOTrainer.get_gamma_weights,
        _metrics={"train": defaultdict(list), "eval": defaultdict(list)},
    )
    s._get_per_token_logps_and_entropies = lambda *a, **k: (leaf, ent, None)
    trace = Locals(GRPOTrainer._compute_loss.__code__, RETURN_LINE, LOCALS)
    loss = trace.run(lambda: GRPOTrainer._compute_loss(s, None, inputs))
    loss.backward()
    v = trace.seen
    options = {"type": type_, "importance_sampling": importance, "beta": beta}
    if epsilon != 0.2:
        options["epsilon"] = epsilon
    for k, val in [("epsilon_high", epsilon_high), ("delta", delta), ("num_items_in_batch", num_items),
                 ("max_completion_length", max_completion_length)]:
        if val is not None:
            options[k] = val
    if not use_bias_correction_kl:
        options["use_bias_correction_kl"] = False
    options.update(extra)
    case_inputs = ["logps", "advantages", "mask", "entropies"]
    if with_old:
        case_inputs.append("old_logps")
    if beta != 0.0:
        case_inputs.append("ref_logps")
    details = {"per_token_loss": v["per_token_loss"], "ratios": torch.exp(v["log_importance_weights"])}
    if beta != 0.0:
        details["kl"] = v["per_token_kl"]
    for trl_name, ours in [("is_low_clipped", "low_clipped"), ("is_high_clipped", "high_clipped"),
                           ("is_region_clipped", "region_clipped"), ("is_cispo_clipped", "cispo_clipped"),
                           ("phi_seq", "phi")]:
        if trl_name in v:
            details[ours] = v[trl_name].float()
    return {
        "name": name,
        "options": options,
        "inputs": inputs_name,
        "given": case_inputs,
        "loss": float(loss.detach()),
        "stats": metrics(s._metrics["train"]),
        "details": details,
        "grad_logps": leaf.grad if leaf.grad is not None else torch.zeros(b, t),
    }


TYPES = ["dapo", "grpo", "bnpo", "dr_grpo", "cispo", "sapo", "luspo", "vespo"]


def loss_cases():
    cases = []
    for type_ in TYPES:
        mcl = 10 if type_ == "dr_grpo" else None
        for importance in ["token", "sequence"]:
            for beta in [0.0, 0.04]:
                cases.append(loss_case("%s %s beta %g" % (type_, importance, beta), type_, importance=importance,
                                       beta=beta, max_completion_length=mcl))
    cases += [
        loss_case("dapo delta 1.5 epsilon_high 0.28", "dapo", epsilon_high=0.28, delta=1.5),
        loss_case("grpo sequence delta 1.3 epsilon 0.1", "grpo", importance="sequence", epsilon=0.1, delta=1.3),
        loss_case("bnpo epsilon 0.3 epsilon_high 0.1 beta 0.1", "bnpo", epsilon=0.3, epsilon_high=0.1, beta=0.1),
        loss_case("grpo beta 0.04 without bias correction", "grpo", beta=0.04, use_bias_correction_kl=False),
        loss_case("dapo sequence beta 0.04 without bias correction", "dapo", importance="sequence", beta=0.04,
                  use_bias_correction_kl=False),
        loss_case("dapo on-policy (no old_logps) beta 0.04", "dapo", beta=0.04, with_old=False),
        loss_case("grpo on-policy (no old_logps)", "grpo", with_old=False),
        loss_case("grpo per-token advantages", "grpo", inputs_name="token_advantages"),
        loss_case("dapo sequence per-token advantages beta 0.04", "dapo", importance="sequence", beta=0.04,
                  inputs_name="token_advantages"),
        loss_case("sapo per-token advantages", "sapo", inputs_name="token_advantages"),
        loss_case("vespo per-token advantages", "vespo", inputs_name="token_advantages"),
        loss_case("dapo num_items_in_batch 57", "dapo", num_items=57),
        loss_case("cispo num_items_in_batch 40 beta 0.04", "cispo", num_items=40, beta=0.04),
        loss_case("dr_grpo max_completion_length 7", "dr_grpo", max_completion_length=7),
        loss_case("cispo epsilon_high 5 (ScaleRL)", "cispo", epsilon_high=5.0),
        loss_case("cispo epsilon_high 1.1", "cispo", epsilon_high=1.1),
        loss_case("sapo temperatures 0.5 and 2", "sapo", extra={"sapo_temperature_pos": 0.5,
                                                                "sapo_temperature_neg": 2.0}),
        loss_case("vespo k and lambda", "vespo", extra={"vespo_k_pos": 1.5, "vespo_lambda_pos": 0.5,
                                                         "vespo_k_neg": 4.0, "vespo_lambda_neg": 1.0}),
        loss_case("grpo with an empty completion", "grpo", inputs_name="empty_row"),
        loss_case("grpo sequence with an empty completion beta 0.04", "grpo", importance="sequence", beta=0.04,
                  inputs_name="empty_row"),
        loss_case("dapo with an empty completion", "dapo", inputs_name="empty_row"),
        loss_case("luspo with an empty completion", "luspo", importance="sequence", inputs_name="empty_row"),
        loss_case("dapo one position (T = 1) with an empty completion beta 0.04", "dapo", beta=0.04,
                  inputs_name="one_position"),
        loss_case("grpo one completion", "grpo", inputs_name="one_completion"),
    ]
    return cases


def main():
    adv = advantages_cases()
    losses = loss_cases()
    with open(OUT, "w") as f:
        f.write("-- Generated by Tests/Fixtures/gen_grpo_fixtures.py from TRL %s (torch %s); do not edit.\n"
                % (trl.__version__, torch.__version__.split("+")[0]))
        f.write("return {\n  trl = \"%s\",\n" % trl.__version__)
        f.write("  advantages = {\n")
        for c in adv:
            f.write("  " + lua(c, "  ") + ",\n")
        f.write("  },\n  inputs = %s,\n  losses = {\n" % lua(INPUTS, "  "))
        for c in losses:
            f.write("  " + lua(c, "  ") + ",\n")
        f.write("  },\n}\n")
    print("wrote %s: %d advantage cases, %d loss cases" % (OUT, len(adv), len(losses)))


if __name__ == "__main__":
    main()

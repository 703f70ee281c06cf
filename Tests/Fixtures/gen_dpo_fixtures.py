#!/usr/bin/env python3
"""gen_dpo_fixtures.py: writes dpo_fixtures.lua, the reference values Tests/lua/dpo_losses.lua checks.

Every value comes from TRL's own loss code, called on fixed random per-sequence log-probs:

- DPO: `DPOTrainer._compute_loss` (TRL 1.16 has no standalone dpo_loss; the loss lives in that method).
- CPO / SimPO / AlphaPO: `CPOTrainer.get_batch_loss_metrics`, which runs TRL's `concatenated_forward` (its
  `get_batch_logps` and NLL cross-entropy) and `cpo_loss`.
- ORPO: `ORPOTrainer.get_batch_loss_metrics` (`concatenated_forward` and `odds_ratio_loss`).
- KTO: `KTOTrainer._compute_loss`, including its KL estimate.

None of these can be called without a trainer, and building a real one needs a model, a tokenizer and a dataset,
so each is called unbound on a *minimal trainer-like object*: a SimpleNamespace holding exactly the attributes the
method reads, filled from TRL's own config class (DPOConfig, CPOConfig, ...) the way the trainer's __init__ copies
them (`self.beta = args.beta`, ...), with an accelerator stand-in for one process (gather = identity) and the
trainer's other methods bound from the TRL class itself. The model is a stand-in module:

- for DPO and KTO it returns what TRL's fused LM head returns (`log_probs`, `entropy`, `mean_logits`, `is_top1`,
  `log_sum_sq_probs`), with each sequence's summed log-prob placed on its first completion token and 0 on the
  others, so TRL's sum over tokens is exactly the per-sequence value and the gradient TRL computes for that token
  is the gradient with respect to the per-sequence log-prob;
- for CPO and ORPO it returns logits over a 2-token vocabulary, [l, log(1 - e^l)] at each completion position with
  target token 0 (so log_softmax gives back l), l = the sequence's log-prob spread evenly over its tokens; the
  per-sequence sums written to the fixture are the ones TRL's own get_batch_logps computes from those logits.

Per-pair losses that the methods keep in local variables (`per_sequence_loss`, `losses`) are read with a trace
function at the line where TRL uses them; nothing of TRL is modified. The reference log-probs are passed as
precomputed (`precompute_ref_log_probs`), as TRL supports.

Stats are TRL's logged metrics except those computed from logits (logits/*, entropy, mean_token_accuracy,
num_tokens), which Tycho's losses do not see. Gradients are with respect to the policy's per-sequence log-probs.

A tensor is written as {s = {sizes...}, d = {row-major values...}} with float32 values printed with 9 significant
digits (exact round trip); stats as doubles with 17. Rerun after changing a case (deterministic for given
numpy/torch/trl):
    pip install trl==1.16.0 && python3 Tests/Fixtures/gen_dpo_fixtures.py
"""

import math
import os
import sys
import tempfile
import types
import warnings
from collections import defaultdict
from types import SimpleNamespace

import numpy as np
import torch
import trl
from trl import DPOConfig, DPOTrainer, KTOConfig, KTOTrainer

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from trl.experimental.cpo import CPOConfig, CPOTrainer
    from trl.experimental.orpo import ORPOConfig, ORPOTrainer

SEED = 20261205
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "dpo_fixtures.lua")
PROMPT = 3  # prompt tokens per sequence
TMP = tempfile.mkdtemp()
CONFIG = dict(output_dir=TMP, report_to=[], use_cpu=True, bf16=False)
torch.set_num_threads(1)

# MARK: formatting


def f32(x):
    return np.asarray(x, dtype=np.float32)


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
    a = f32(a.detach().numpy() if isinstance(a, torch.Tensor) else a)
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


# MARK: the stand-ins


class Accelerator:
    """One process: gathers are identities."""

    device = torch.device("cpu")

    def gather_for_metrics(self, x):
        return x

    def gather(self, x):
        return x

    def unwrap_model(self, m):
        return m


def trainer_like(**fields):
    """The minimal trainer-like object: the attributes a TRL loss method reads."""
    s = SimpleNamespace(
        accelerator=Accelerator(),
        aux_loss_enabled=False,
        _metrics={"train": defaultdict(list), "eval": defaultdict(list)},
        _total_train_tokens=0,
        _tp_size=1,
        ref_model=None,
    )
    for k, v in fields.items():
        setattr(s, k, v)
    return s


class FusedHead(torch.nn.Module):
    """Stands in for a causal LM called with fused_lm_head=True: returns per-token outputs prepared in advance,
    keyed by the identity of the input_ids tensor it is called with."""

    def __init__(self, outputs):
        super().__init__()
        self.outputs = outputs  # id(input_ids) -> SimpleNamespace

    def forward(self, input_ids=None, **kwargs):
        return self.outputs[id(input_ids)]


class LogitsModel(torch.nn.Module):
    """Stands in for a causal LM returning logits prepared in advance."""

    def __init__(self, logits):
        super().__init__()
        self.logits = logits

    def forward(self, input_ids=None, **kwargs):
        return SimpleNamespace(logits=self.logits)


class Locals:
    """Reads local variables of a TRL method at given source lines, through sys.settrace."""

    def __init__(self, code, lines, names):
        self.code, self.lines, self.names = code, set(lines), names
        self.seen = defaultdict(list)

    def tracer(self, frame, event, arg):
        if frame.f_code is not self.code:
            return None

        def local(frame, event, arg):
            if event == "line" and frame.f_lineno in self.lines:
                for n in self.names:
                    if n in frame.f_locals:
                        self.seen[(frame.f_lineno, n)].append(frame.f_locals[n].detach().clone())
            return local

        return local

    def run(self, fn):
        sys.settrace(self.tracer)
        try:
            return fn()
        finally:
            sys.settrace(None)


def line_of(fn, text):
    """The source line number in fn's file of the first line of fn containing text."""
    import inspect

    src, start = inspect.getsourcelines(fn)
    for i, l in enumerate(src):
        if text in l:
            return start + i
    raise ValueError("%r not found in %s" % (text, fn.__qualname__))


def metrics(s):
    return {k: float(v[-1]) for k, v in s._metrics["train"].items()}


FROM_LOGITS = {"logits/chosen", "logits/rejected", "entropy", "mean_token_accuracy", "num_tokens", "aux_loss"}

# MARK: random inputs

rng = np.random.default_rng(SEED)


def logps(b, low=-60.0, high=-5.0):
    return f32(rng.uniform(low, high, size=b))


def lengths(b, low=1, high=12):
    return rng.integers(low, high + 1, size=b)


def completion_layout(lens):
    """completion_mask (n, T) with PROMPT prompt tokens then lens[i] completion tokens, and the one-hot (n, T-1)
    of each sequence's first completion token in the shifted frame."""
    n, t = len(lens), PROMPT + int(max(lens))
    mask = torch.zeros(n, t, dtype=torch.long)
    first = torch.zeros(n, t - 1)
    for i, l in enumerate(lens):
        mask[i, PROMPT:PROMPT + int(l)] = 1
        first[i, PROMPT - 1] = 1 if l > 0 else 0
    return mask, first


def fused_outputs(seq, first, lss=None):
    n, t1 = first.shape
    out = SimpleNamespace(
        log_probs=seq[:, None] * first,
        entropy=torch.zeros(n, t1),
        mean_logits=torch.zeros(n, t1),
        is_top1=torch.zeros(n, t1, dtype=torch.bool),
    )
    if lss is not None:
        out.log_sum_sq_probs = lss[:, None] * first
    return out


# MARK: DPO


DPO_LOSS_LINE = line_of(DPOTrainer._compute_loss, "loss += per_sequence_loss.mean() * loss_weight")
DPO_REWARD_LINE = line_of(DPOTrainer._compute_loss, "reward_accuracies = (chosen_rewards > rejected_rewards).float()")


def dpo_case(name, b, types_, beta=0.1, weights=None, label_smoothing=0.0, f_divergence_type="reverse_kl",
             f_alpha_divergence_coef=0.5, discopop_tau=None, use_weighting=False, spread=3.0, scale=1.0):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        extra = {} if discopop_tau is None else {"discopop_tau": discopop_tau}
        args = DPOConfig(loss_type=list(types_), loss_weights=weights, beta=beta, label_smoothing=label_smoothing,
                         f_divergence_type=f_divergence_type, f_alpha_divergence_coef=f_alpha_divergence_coef,
                         use_weighting=use_weighting, precompute_ref_log_probs=True, **extra, **CONFIG)
    pc, pr = logps(b), logps(b)
    rc = f32(pc + scale * rng.normal(0, spread, size=b))
    rr = f32(pr + scale * rng.normal(0, spread, size=b))
    cl, rl = lengths(b), lengths(b)
    mask, first = completion_layout(list(cl) + list(rl))
    seq = torch.tensor(np.concatenate([pc, pr]), requires_grad=True)
    lss = None
    if use_weighting:
        per_token = f32(rng.uniform(-3.0, -0.5, size=2 * b))
        lss = torch.tensor(f32(per_token * np.concatenate([cl, rl])))
    inputs = {
        "input_ids": torch.zeros(2 * b, mask.shape[1], dtype=torch.long),
        "attention_mask": torch.ones(2 * b, mask.shape[1], dtype=torch.long),
        "completion_mask": mask,
        "ref_chosen_logps": torch.tensor(rc),
        "ref_rejected_logps": torch.tensor(rr),
    }
    model = FusedHead({id(inputs["input_ids"]): fused_outputs(seq, first, lss)})
    model.train()
    # What DPOTrainer.__init__ copies from its config.
    s = trainer_like(
        model=model, args=args, beta=args.beta, precompute_ref_logps=args.precompute_ref_log_probs,
        loss_types=args.loss_type, loss_weights=args.loss_weights or [1.0] * len(args.loss_type),
        ld_alpha=args.ld_alpha, f_divergence_type=args.f_divergence_type,
        f_alpha_divergence_coef=args.f_alpha_divergence_coef, label_smoothing=args.label_smoothing,
        use_weighting=args.use_weighting,
    )
    trace = Locals(DPOTrainer._compute_loss.__code__, [DPO_LOSS_LINE, DPO_REWARD_LINE],
                   ["per_sequence_loss", "chosen_rewards", "rejected_rewards"])
    loss = trace.run(lambda: DPOTrainer._compute_loss(s, model, inputs, False))
    loss.backward()
    terms = trace.seen[(DPO_LOSS_LINE, "per_sequence_loss")]
    assert len(terms) == len(types_)
    w = s.loss_weights
    combined = sum(t * float(wk) for t, wk in zip(terms, w))
    options = {"type": list(types_) if len(types_) > 1 else types_[0], "beta": beta}
    if weights is not None:
        options["weights"] = [float(x) for x in weights]
    if label_smoothing:
        options["label_smoothing"] = label_smoothing
    if f_divergence_type != "reverse_kl":
        options["f_divergence_type"] = f_divergence_type
        options["f_alpha_divergence_coef"] = f_alpha_divergence_coef
    if discopop_tau is not None:
        options["discopop_tau"] = discopop_tau
    case_inputs = {"policy_chosen": pc, "policy_rejected": pr, "ref_chosen": rc, "ref_rejected": rr,
                   "chosen_lengths": f32(cl), "rejected_lengths": f32(rl)}
    if use_weighting:
        options["use_weighting"] = True
        case_inputs["chosen_log_sum_sq_probs"] = lss[:b]
        case_inputs["rejected_log_sum_sq_probs"] = lss[b:]
    return {
        "name": name,
        "options": options,
        "inputs": case_inputs,
        "loss": float(loss.detach()),
        "terms": terms,
        "losses": combined,
        "chosen_rewards": trace.seen[(DPO_REWARD_LINE, "chosen_rewards")][-1],
        "rejected_rewards": trace.seen[(DPO_REWARD_LINE, "rejected_rewards")][-1],
        "stats": {k: v for k, v in metrics(s).items() if k not in FROM_LOGITS},
        "grad_policy_chosen": seq.grad[:b],
        "grad_policy_rejected": seq.grad[b:],
    }


SMOOTHING = {"robust": 0.1, "exo_pair": 1e-3, "aot": 0.2, "aot_unpaired": 0.2}
ALL_TYPES = ["sigmoid", "hinge", "ipo", "exo_pair", "nca_pair", "robust", "bco_pair", "sppo_hard", "aot",
             "aot_unpaired", "apo_zero", "apo_down", "discopop", "sft", "sigmoid_norm"]


def dpo_cases():
    cases = []
    for t in ALL_TYPES:
        ls = SMOOTHING.get(t, 0.0)
        cases.append(dpo_case("%s b4" % t, 4, [t], beta=0.1, label_smoothing=ls))
        cases.append(dpo_case("%s b3 beta0.5" % t, 3, [t], beta=0.5, label_smoothing=ls))
        cases.append(dpo_case("%s b8 beta0.02 small margins" % t, 8, [t], beta=0.02, label_smoothing=ls, spread=0.3))
    cases += [
        dpo_case("sigmoid b1", 1, ["sigmoid"], beta=0.1),
        dpo_case("sigmoid huge margins (log-sigmoid tails)", 6, ["sigmoid"], beta=1.0, spread=400.0),
        dpo_case("nca_pair huge margins", 6, ["nca_pair"], beta=1.0, spread=400.0),
        dpo_case("robust label_smoothing 0.4", 5, ["robust"], label_smoothing=0.4),
        dpo_case("exo_pair label_smoothing 0.3", 5, ["exo_pair"], label_smoothing=0.3),
        dpo_case("aot label_smoothing 0", 6, ["aot"]),
        dpo_case("aot_unpaired label_smoothing 0", 6, ["aot_unpaired"]),
        dpo_case("discopop tau 0.2", 5, ["discopop"], discopop_tau=0.2),
        dpo_case("forward_kl sigmoid", 5, ["sigmoid"], f_divergence_type="forward_kl", spread=1.0),
        dpo_case("forward_kl hinge", 5, ["hinge"], f_divergence_type="forward_kl", spread=1.0),
        dpo_case("js_divergence sigmoid", 5, ["sigmoid"], f_divergence_type="js_divergence"),
        dpo_case("js_divergence ipo", 5, ["ipo"], f_divergence_type="js_divergence"),
        dpo_case("alpha_divergence 0.5 sigmoid", 5, ["sigmoid"], f_divergence_type="alpha_divergence", spread=1.0),
        dpo_case("alpha_divergence 0.3 robust", 5, ["robust"], f_divergence_type="alpha_divergence",
                 f_alpha_divergence_coef=0.3, label_smoothing=0.1, spread=1.0),
        dpo_case("alpha_divergence 0.5 sigmoid_norm", 5, ["sigmoid_norm"], f_divergence_type="alpha_divergence"),
        dpo_case("alpha_divergence 0.5 exo_pair", 5, ["exo_pair"], f_divergence_type="alpha_divergence",
                 label_smoothing=1e-3, spread=1.0),
        dpo_case("alpha_divergence 0.5 discopop", 5, ["discopop"], f_divergence_type="alpha_divergence", spread=1.0),
        dpo_case("alpha_divergence 1 (reverse KL)", 4, ["sigmoid"], f_divergence_type="alpha_divergence",
                 f_alpha_divergence_coef=1.0),
        dpo_case("alpha_divergence 3 clamped", 4, ["sigmoid"], f_divergence_type="alpha_divergence",
                 f_alpha_divergence_coef=3.0, spread=40.0),
        dpo_case("js_divergence sigmoid + sft", 4, ["sigmoid", "sft"], f_divergence_type="js_divergence"),
        dpo_case("MPO sigmoid + bco_pair + sft", 6, ["sigmoid", "bco_pair", "sft"], weights=[0.8, 0.2, 1.0]),
        dpo_case("RPO sigmoid + sft 0.5", 4, ["sigmoid", "sft"], weights=[1.0, 0.5]),
        dpo_case("ipo + hinge, default weights", 4, ["ipo", "hinge"]),
        dpo_case("all pair losses at once", 5, ["sigmoid", "hinge", "nca_pair", "bco_pair", "apo_zero", "apo_down",
                                                "sppo_hard", "discopop", "sigmoid_norm"],
                 weights=[1.0, 0.5, 0.25, 2.0, 1.5, -0.5, 0.01, 1.0, 3.0]),
        dpo_case("use_weighting sigmoid", 5, ["sigmoid"], use_weighting=True),
        dpo_case("use_weighting ipo", 5, ["ipo"], use_weighting=True),
        dpo_case("use_weighting robust + nca_pair", 4, ["robust", "nca_pair"], label_smoothing=0.2, use_weighting=True),
    ]
    return cases


# MARK: CPO, SimPO, AlphaPO, ORPO


def pair_batch(b):
    """chosen/rejected input ids, masks and labels (-100 outside the completion) for b pairs of equal width."""
    cl, rl = lengths(b), lengths(b)
    t = PROMPT + int(max(max(cl), max(rl)))
    batch = {}
    for side, lens in (("chosen", cl), ("rejected", rl)):
        ids = torch.ones(b, t, dtype=torch.long)  # pad id 1
        att = torch.zeros(b, t, dtype=torch.long)
        lab = torch.full((b, t), -100, dtype=torch.long)
        for i, l in enumerate(lens):
            ids[i, :PROMPT + l] = 0  # every real token is token 0 of the 2-token vocabulary
            att[i, :PROMPT + l] = 1
            lab[i, PROMPT:PROMPT + l] = 0
        batch[side + "_input_ids"], batch[side + "_attention_mask"], batch[side + "_labels"] = ids, att, lab
    return batch, cl, rl, t


def two_token_logits(seq, prompt_logp, lens, t):
    """(n, t, 2) logits whose log_softmax gives seq[i] / lens[i] for each completion token (and prompt_logp[i] for
    each prompt token after the first) as the log-prob of token 0."""
    n = seq.shape[0]
    per = torch.zeros(n, t)  # per[i, j]: log p of token j + 1 given the prefix, at logits position j
    rows = []
    for i in range(n):
        row = torch.full((t,), -0.6931471805599453)
        row = row.index_put((torch.arange(PROMPT - 1),), prompt_logp[i].expand(PROMPT - 1))
        l = int(lens[i])
        row = row.index_put((torch.arange(PROMPT - 1, PROMPT - 1 + l),), (seq[i] / l).expand(l))
        rows.append(row)
    per = torch.stack(rows)
    other = torch.where(per < -0.6931471805599453, torch.log1p(-torch.exp(per)), torch.log(-torch.expm1(per)))
    return torch.stack([per, other], dim=-1)


def reference_free_case(kind, name, b, **config):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        args = (CPOConfig if kind != "orpo" else ORPOConfig)(**config, **CONFIG)
    batch, cl, rl, t = pair_batch(b)
    lens = list(cl) + list(rl)
    seq = torch.tensor(np.concatenate([logps(b, -30, -2), logps(b, -30, -2)]), requires_grad=True)
    prompt_logp = torch.tensor(f32(rng.uniform(-4, -0.5, size=2 * b)))
    logits = two_token_logits(seq, prompt_logp, lens, t)
    model = LogitsModel(logits)
    Trainer = CPOTrainer if kind != "orpo" else ORPOTrainer
    s = trainer_like(model=model, args=args, beta=args.beta, is_encoder_decoder=False, padding_value=0,
                     pad_token_id=1)
    seen = {}
    if kind == "orpo":
        def odds(*a):
            out = ORPOTrainer.odds_ratio_loss(s, *a)
            seen["losses"], seen["chosen_rewards"], seen["rejected_rewards"] = out[0], out[1], out[2]
            return out
        s.odds_ratio_loss = odds
    else:
        # What CPOTrainer.__init__ copies from its config.
        s.label_smoothing, s.loss_type, s.cpo_alpha, s.alpha = args.label_smoothing, args.loss_type, args.cpo_alpha, args.alpha
        if args.loss_type == "simpo":
            s.simpo_gamma = args.simpo_gamma

        def cpo(*a):
            out = CPOTrainer.cpo_loss(s, *a)
            seen["losses"], seen["chosen_rewards"], seen["rejected_rewards"] = out
            return out
        s.cpo_loss = cpo
    s.concatenated_forward = types.MethodType(Trainer.concatenated_forward, s)
    s.concatenated_inputs = Trainer.concatenated_inputs
    s.get_batch_logps = Trainer.get_batch_logps
    loss, m = Trainer.get_batch_loss_metrics(s, model, batch)
    loss.backward()
    # The per-sequence sums TRL's own get_batch_logps finds in these logits: the fixture's inputs.
    with torch.no_grad():
        labels = torch.cat([batch["chosen_labels"], batch["rejected_labels"]])
        sums = Trainer.get_batch_logps(logits.detach(), labels, average_log_prob=False)
        prompt_labels = torch.cat([batch["chosen_input_ids"], batch["rejected_input_ids"]]).clone()
        prompt_labels[:, PROMPT:] = -100
        prompt_sums = Trainer.get_batch_logps(logits.detach(), prompt_labels, average_log_prob=False)
    # The options as the Lua function takes them (dpo.simpo has no loss_type).
    options = {k: v for k, v in config.items() if not (kind == "simpo" and k == "loss_type")}
    case = {
        "name": name,
        "fn": kind,
        "options": options,
        "inputs": {"policy_chosen": sums[:b], "policy_rejected": sums[b:], "chosen_lengths": f32(cl),
                   "rejected_lengths": f32(rl)},
        "loss": float(loss.detach()),
        "losses": seen["losses"],
        "chosen_rewards": seen["chosen_rewards"],
        "rejected_rewards": seen["rejected_rewards"],
        "stats": {k: float(v) for k, v in m.items() if k not in FROM_LOGITS},
        "grad_policy_chosen": seq.grad[:b],
        "grad_policy_rejected": seq.grad[b:],
    }
    if kind == "orpo":
        # TRL's NLL is the chosen sequences' mean cross-entropy over prompt (after its first token) and
        # completion: -(sum of completion sums + sum of prompt sums) / token count. The test rebuilds it from
        # policy_chosen so that its gradient flows as in TRL.
        case["nll_prompt_sum"] = float(prompt_sums[:b].sum())
        case["nll_tokens"] = int(sum(PROMPT - 1 + int(l) for l in cl))
    return case


def cpo_cases():
    c = reference_free_case
    return [
        c("cpo", "cpo sigmoid", 4),
        c("cpo", "cpo sigmoid label_smoothing 0.1 beta 0.5", 5, beta=0.5, label_smoothing=0.1),
        c("cpo", "cpo hinge cpo_alpha 0.5", 4, loss_type="hinge", cpo_alpha=0.5),
        c("cpo", "cpo ipo", 4, loss_type="ipo"),
        c("cpo", "cpo ipo cpo_alpha 0", 3, loss_type="ipo", cpo_alpha=0.0),
        c("cpo", "cpo simpo (CPO-SimPO)", 4, loss_type="simpo", beta=2.0, simpo_gamma=1.0),
        c("cpo", "cpo sigmoid alpha 0.1 (AlphaPO rewards on sums)", 4, alpha=0.1),
        c("cpo", "cpo alphapo", 4, loss_type="alphapo", alpha=0.25, beta=2.5, simpo_gamma=0.3),
        c("cpo", "cpo b1", 1, beta=0.2),
        c("simpo", "simpo defaults", 4, loss_type="simpo", cpo_alpha=0.0),
        c("simpo", "simpo beta 2.5 gamma 1.4 label_smoothing 0.05", 6, loss_type="simpo", cpo_alpha=0.0, beta=2.5,
          simpo_gamma=1.4, label_smoothing=0.05),
        c("simpo", "simpo with cpo_alpha 0.2", 3, loss_type="simpo", cpo_alpha=0.2, beta=1.0),
    ]


def orpo_cases():
    c = reference_free_case
    return [c("orpo", "orpo", 4), c("orpo", "orpo beta 0.25", 6, beta=0.25), c("orpo", "orpo b1", 1, beta=0.5)]


# MARK: KTO


KTO_LOSS_LINE = line_of(KTOTrainer._compute_loss, "loss = losses.nanmean()")


def kto_case(name, labels, loss_type="kto", beta=0.1, desirable_weight=1.0, undesirable_weight=1.0, kl_shift=0.0):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        args = KTOConfig(loss_type=loss_type, beta=beta, desirable_weight=desirable_weight,
                         undesirable_weight=undesirable_weight, precompute_ref_log_probs=True, **CONFIG)
    b = len(labels)
    p = logps(b)
    r = f32(p + rng.normal(0, 3, size=b))
    lens = lengths(b)
    mask, first = completion_layout(list(lens))
    seq = torch.tensor(p, requires_grad=True)
    calculate_kl = loss_type not in ["apo_zero_unpaired"]  # as KTOTrainer.__init__
    batch = {
        "input_ids": torch.zeros(b, mask.shape[1], dtype=torch.long),
        "attention_mask": torch.ones(b, mask.shape[1], dtype=torch.long),
        "completion_mask": mask,
        "label": torch.tensor(labels, dtype=torch.bool),
        "ref_logps": torch.tensor(r),
    }
    outputs = {id(batch["input_ids"]): fused_outputs(seq, first)}
    kl_p = kl_r = None
    if calculate_kl:
        kl_p = logps(b)
        kl_r = f32(kl_p + rng.normal(kl_shift, 2, size=b))
        kmask, kfirst = completion_layout(list(lengths(b)))
        batch["KL_input_ids"] = torch.zeros(b, kmask.shape[1], dtype=torch.long)
        batch["KL_attention_mask"] = torch.ones(b, kmask.shape[1], dtype=torch.long)
        batch["KL_completion_mask"] = kmask
        batch["ref_KL_logps"] = torch.tensor(kl_r)
        outputs[id(batch["KL_input_ids"])] = fused_outputs(torch.tensor(kl_p), kfirst)
    model = FusedHead(outputs)
    model.train()
    # What KTOTrainer.__init__ copies from its config.
    s = trainer_like(model=model, args=args, beta=args.beta, precompute_ref_logps=args.precompute_ref_log_probs,
                     loss_type=args.loss_type, desirable_weight=args.desirable_weight,
                     undesirable_weight=args.undesirable_weight, calculate_KL=calculate_kl)
    s._compute_kl_logps = types.MethodType(KTOTrainer._compute_kl_logps, s)
    trace = Locals(KTOTrainer._compute_loss.__code__, [KTO_LOSS_LINE],
                   ["losses", "chosen_rewards", "rejected_rewards"])
    loss = trace.run(lambda: KTOTrainer._compute_loss(s, model, batch, False))
    loss.backward()
    options = {"beta": beta, "loss_type": loss_type, "desirable_weight": desirable_weight,
               "undesirable_weight": undesirable_weight}
    inputs = {"policy": p, "ref": r, "label": list(labels)}
    if calculate_kl:
        inputs["policy_kl"], inputs["ref_kl"] = kl_p, kl_r
    got = lambda n: trace.seen[(KTO_LOSS_LINE, n)][-1]
    return {
        "name": name,
        "options": options,
        "inputs": inputs,
        "loss": float(loss.detach()),
        "losses": got("losses"),
        "chosen_rewards": got("chosen_rewards"),
        "rejected_rewards": got("rejected_rewards"),
        "stats": {k: v for k, v in metrics(s).items() if k not in FROM_LOGITS},
        "grad_policy": seq.grad,
    }


def kto_cases():
    T, F = True, False
    return [
        kto_case("kto mixed", [T, F, T, T, F, F]),
        kto_case("kto KL clamped at 0", [T, F, F, T], kl_shift=6.0),
        kto_case("kto KL positive", [F, T, T, F, T], kl_shift=-6.0),
        kto_case("kto weights and beta", [T, T, F, T, F], beta=0.5, desirable_weight=1.33, undesirable_weight=0.7),
        kto_case("kto all desirable", [T, T, T]),
        kto_case("kto all undesirable", [F, F, F]),
        kto_case("apo_zero_unpaired", [T, F, T, F], loss_type="apo_zero_unpaired"),
        kto_case("apo_zero_unpaired one example", [F], loss_type="apo_zero_unpaired", beta=0.3),
    ]


# MARK: main


def main():
    torch.manual_seed(SEED)
    out = {
        "trl": trl.__version__,
        "torch": torch.__version__,
        "seed": SEED,
        "dpo": dpo_cases(),
        "cpo": cpo_cases(),
        "orpo": orpo_cases(),
        "kto": kto_cases(),
    }
    with open(OUT, "w") as f:
        f.write("-- dpo_fixtures.lua: generated by gen_dpo_fixtures.py (trl %s, torch %s, numpy %s, seed %d). Do not edit.\n"
                % (trl.__version__, torch.__version__, np.__version__, SEED))
        f.write("-- Tensors are {s = sizes, d = row-major values}; every value is TRL's own output.\n")
        f.write("return " + lua(out) + "\n")
    print("wrote %s: %d dpo, %d cpo/simpo, %d orpo, %d kto cases" % (OUT, len(out["dpo"]), len(out["cpo"]),
                                                                    len(out["orpo"]), len(out["kto"])))


if __name__ == "__main__":
    main()

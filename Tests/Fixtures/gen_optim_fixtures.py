#!/usr/bin/env python3
"""gen_optim_fixtures.py: writes optim_fixtures.lua, the reference values Tests/lua/optim.lua checks.

For each optimizer case, a few float32 parameters of different shapes (a vector, a matrix with a ragged last SIMD
vector, a 3-D tensor, a 0-dim scalar) take 4 steps of torch.optim.SGD / torch.optim.AdamW (foreach=False: the
single-tensor path PyTorch runs on CPU) with fixed grads that change every step; `false` stands for a parameter
whose grad is None at that step (PyTorch skips it). The file holds the initial parameters, the grads, the
parameters after every step and, for some cases, the optimizer state after the last step under Tycho's names
(exp_avg.<i>, exp_avg_sq.<i>, step.<i>, momentum_buffer.<i>; i is 1-based over all groups).

It also holds torch.nn.utils.clip_grad_norm_ cases (grads, max_norm, returned total norm, clipped grads) and the
learning rates of transformers' get_{cosine,linear,constant}_schedule_with_warmup and
get_cosine_with_min_lr_schedule_with_warmup: values[k + 1] is the learning rate the LambdaLR holds after k calls
to scheduler.step(), which is what Tycho's schedule returns for step k.

A tensor is written as {s = {sizes...}, d = {row-major values...}}, values as float32 printed with 9 significant
digits (exact round trip). Rerun after changing a case (deterministic for given numpy/torch/transformers):
    pip install torch transformers && python3 Tests/Fixtures/gen_optim_fixtures.py
"""

import os

import numpy as np
import torch
import transformers
from transformers.optimization import (
    get_constant_schedule_with_warmup,
    get_cosine_schedule_with_warmup,
    get_cosine_with_min_lr_schedule_with_warmup,
    get_linear_schedule_with_warmup,
)

SEED = 20260611
rng = np.random.default_rng(SEED)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "optim_fixtures.lua")
SHAPES = [(3,), (3, 5), (2, 1, 4), ()]
STEPS = 4

# MARK: formatting


def f32(x):
    return np.asarray(x, dtype=np.float32)


def num(v):
    return "%.9g" % float(v)


def dbl(v):
    return "%.17g" % float(v)


def tensor(a):
    a = f32(a)
    return "{s={%s},d={%s}}" % (",".join(str(s) for s in a.shape), ",".join(num(v) for v in a.reshape(-1)))


def lua_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return dbl(v)
    if isinstance(v, str):
        return '"%s"' % v
    if isinstance(v, (list, tuple)):
        return "{" + ",".join(lua_value(x) for x in v) + "}"
    if isinstance(v, dict):
        return "{" + ",".join("%s=%s" % (k, lua_value(x)) for k, x in v.items()) + "}"
    if v is None:
        return "false"
    return tensor(v.detach().numpy() if isinstance(v, torch.Tensor) else v)


# MARK: optimizers


def torch_options(kind, options):
    o = dict(options)
    if "betas" in o:
        o["betas"] = tuple(o["betas"])
    o["foreach"] = False
    return o


def optimizer_case(name, kind, options, groups=None, skip=(), scale=1.0, state=False):
    """skip: (step, param) pairs (0-based) whose grad is None at that step."""
    params0 = [f32(rng.standard_normal(s)) for s in SHAPES]
    grads = [[None if (k, i) in skip else f32(rng.standard_normal(s) * scale) for i, s in enumerate(SHAPES)]
             for k in range(STEPS)]
    params = [torch.tensor(p.copy(), requires_grad=True) for p in params0]
    cls = {"sgd": torch.optim.SGD, "adamw": torch.optim.AdamW}[kind]
    if groups:
        opt = cls([dict(params=[params[i - 1] for i in g["params"]], **torch_options(kind, g.get("options", {})))
                   for g in groups], **torch_options(kind, options))
    else:
        opt = cls(params, **torch_options(kind, options))
    expected = []
    for k in range(STEPS):
        for p, g in zip(params, grads[k]):
            p.grad = None if g is None else torch.tensor(g.copy())
        opt.step()
        expected.append([p.detach().numpy().copy() for p in params])
    fields = ["name=%s" % lua_value(name), "kind=%s" % lua_value(kind), "options=%s" % lua_value(options)]
    if groups:
        fields.append("groups=%s" % lua_value(groups))
    fields.append("params={%s}" % ",".join(tensor(p) for p in params0))
    fields.append("grads={%s}" % ",".join("{" + ",".join(lua_value(g) for g in step) + "}" for step in grads))
    fields.append("expected={%s}" % ",".join("{" + ",".join(tensor(p) for p in step) + "}" for step in expected))
    if state:
        sd = opt.state_dict()["state"]
        entries = []
        for i in sorted(sd):
            for key, value in sd[i].items():
                entries.append('["%s.%d"]=%s' % (key, i + 1, tensor(value.detach().numpy())))
        fields.append("state={%s}" % ",".join(entries))
    return "{" + ",\n  ".join(fields) + "}"


def optimizer_cases():
    return [
        optimizer_case("sgd plain", "sgd", {"lr": 0.1}),
        optimizer_case("sgd momentum", "sgd", {"lr": 0.05, "momentum": 0.9}, skip={(1, 2)}, state=True),
        optimizer_case("sgd nesterov", "sgd", {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
        optimizer_case("sgd weight decay", "sgd", {"lr": 0.1, "weight_decay": 0.1}),
        optimizer_case("sgd dampening", "sgd", {"lr": 0.05, "momentum": 0.8, "dampening": 0.3, "weight_decay": 0.02},
                       skip={(0, 3)}),
        optimizer_case("adamw default", "adamw", {}, state=True),
        optimizer_case("adamw custom", "adamw", {"lr": 0.01, "betas": [0.8, 0.95], "eps": 1e-6, "weight_decay": 0.1},
                       skip={(1, 0), (2, 3)}, state=True),
        optimizer_case("adamw small betas", "adamw", {"lr": 0.02, "betas": [0.3, 0.5], "eps": 1e-3,
                                                       "weight_decay": 0}, scale=1e-3),
        optimizer_case("adamw groups", "adamw", {"lr": 0.01},
                       groups=[{"params": [1, 3], "options": {"weight_decay": 0}},
                               {"params": [2, 4], "options": {"lr": 0.003, "betas": [0.85, 0.99]}}],
                       skip={(0, 1)}, state=True),
        optimizer_case("sgd groups", "sgd", {"lr": 0.1, "momentum": 0.5},
                       groups=[{"params": [4, 2]}, {"params": [1, 3], "options": {"lr": 0.02, "nesterov": True}}]),
    ]


# MARK: gradient clipping


def clip_case(max_norm, scales, missing=()):
    grads = [None if i in missing else f32(rng.standard_normal(s) * sc) for i, (s, sc) in enumerate(zip(SHAPES, scales))]
    params = [torch.zeros(s, requires_grad=True) for s in SHAPES]
    for p, g in zip(params, grads):
        p.grad = None if g is None else torch.tensor(g.copy())
    total = torch.nn.utils.clip_grad_norm_(params, max_norm, foreach=False)
    clipped = [None if p.grad is None else p.grad.numpy().copy() for p in params]
    return "{max_norm=%s,grads=%s,total=%s,clipped=%s}" % (
        dbl(max_norm), lua_value(grads), num(total.item()), lua_value(clipped))


def clip_cases():
    return [
        clip_case(1.0, [1, 1, 1, 1]),
        clip_case(100.0, [1, 1, 1, 1]),
        clip_case(0.5, [2, 1, 3, 1], missing={1}),
        clip_case(2.0, [1e-3, 1e-3, 1e-3, 1e-3]),
    ]


# MARK: schedules


def schedule_case(kind, lr, warmup, total, last, min_lr=0.0):
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=lr)
    if kind == "cosine" and min_lr > 0:
        sched = get_cosine_with_min_lr_schedule_with_warmup(opt, warmup, total, min_lr=min_lr)
    elif kind == "cosine":
        sched = get_cosine_schedule_with_warmup(opt, warmup, total)
    elif kind == "linear":
        sched = get_linear_schedule_with_warmup(opt, warmup, total)
    else:
        sched = get_constant_schedule_with_warmup(opt, warmup)
    values = []
    for _ in range(last + 1):
        values.append(sched.get_last_lr()[0])
        opt.step()
        sched.step()
    fields = {"kind": kind, "lr": lr, "warmup": warmup}
    if total is not None:
        fields["total"] = total
    if min_lr:
        fields["min_lr"] = min_lr
    return "{options=%s,values={%s}}" % (lua_value(fields), ",".join(dbl(v) for v in values))


def schedule_cases():
    return [
        schedule_case("cosine", 1e-3, 10, 100, 100),
        schedule_case("cosine", 0.5, 0, 7, 7),
        schedule_case("cosine", 3e-4, 5, 5, 5),
        schedule_case("cosine", 1e-3, 3, 20, 20, min_lr=1e-4),
        schedule_case("linear", 3e-4, 5, 50, 55),
        schedule_case("linear", 0.1, 0, 10, 12),
        schedule_case("constant", 0.01, 4, None, 10),
        schedule_case("constant", 0.01, 0, None, 3),
    ]


def main():
    with open(OUT, "w") as f:
        f.write("-- optim_fixtures.lua: generated by gen_optim_fixtures.py (torch %s, transformers %s, numpy %s, "
                "seed %d). Do not edit.\n" % (torch.__version__, transformers.__version__, np.__version__, SEED))
        f.write("-- Tensors are {s = sizes, d = row-major values}; false marks a missing grad.\n")
        f.write("return {\nseed=%d,\ntorch=\"%s\",\n" % (SEED, torch.__version__))
        f.write("optim={\n" + ",\n".join(optimizer_cases()) + "},\n")
        f.write("clip={\n" + ",\n".join(clip_cases()) + "},\n")
        f.write("schedules={\n" + ",\n".join(schedule_cases()) + "},\n")
        f.write("}\n")
    print("wrote", OUT)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""gen_tensor_fixtures.py: writes tensor_fixtures.lua, the reference values Tests/lua/tensor_ops.lua checks.

Inputs are small float32 arrays drawn from a fixed numpy seed. Expected outputs are computed by numpy in
float64 from those float32 inputs, then cast to float32, so they are independent of Tycho's float32 kernels.
Dimensions and indices in the file are 1-based, as the Lua `tensor` module takes them; conversion to numpy's
0-based ones happens here.

A tensor is written as {s = {sizes...}, d = {row-major values...}}; a Lua number stands for itself.
View chains are lists of steps such as {"transpose", 1, 3} that tensor_ops.lua applies as methods.

Rerun after changing a case (the output is deterministic for a given numpy version):
    python3 Tests/Fixtures/gen_tensor_fixtures.py
"""

import math
import os

import numpy as np

SEED = 20240611
rng = np.random.default_rng(SEED)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tensor_fixtures.lua")

# MARK: inputs and formatting


def randn(*shape, scale=1.0):
    return np.asarray(rng.standard_normal(shape) * scale, dtype=np.float32)


def uniform(lo, hi, *shape):
    return np.asarray(rng.uniform(lo, hi, shape), dtype=np.float32)


def ints(lo, hi, *shape):
    """Small integral values (as float32), so comparisons see ties."""
    return np.asarray(rng.integers(lo, hi, shape), dtype=np.float32)


def f32(x):
    """The float32 result of a float64 computation."""
    return np.asarray(x, dtype=np.float64).astype(np.float32)


def num(v):
    v = float(v)
    if math.isnan(v):
        return "0/0"
    if math.isinf(v):
        return "math.huge" if v > 0 else "-math.huge"
    s = "%.9g" % v
    return s


def lua(x):
    """Lua source for a value: tensors (numpy arrays), numbers, strings, booleans, None, lists, dicts."""
    if x is None:
        return "nil"
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    if isinstance(x, (float, np.floating)):
        return num(x)
    if isinstance(x, str):
        return '"' + x + '"'
    if isinstance(x, np.ndarray):
        a = x.astype(np.float32)
        return "{s={%s},d={%s}}" % (",".join(str(s) for s in a.shape),
                                    ",".join(num(v) for v in a.reshape(-1)))
    if isinstance(x, (list, tuple)):
        return "{" + ",".join(lua(v) for v in x) + "}"
    if isinstance(x, dict):
        parts = []
        for k, v in x.items():
            if v is not None:
                parts.append("%s=%s" % (k, lua(v)))
        return "{" + ",".join(parts) + "}"
    raise TypeError(type(x))


def d64(x):
    return np.asarray(x, dtype=np.float64)


# MARK: reference math (float64)


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def gelu(x):
    erf = np.vectorize(math.erf)
    return 0.5 * x * (1 + erf(x / math.sqrt(2)))


def gelu_tanh(x):
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


def logsumexp(x, axis=None, keepdims=False):
    m = np.max(x, axis=axis, keepdims=True)
    r = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    if axis is None:
        return r.reshape(()) if not keepdims else r
    return r if keepdims else np.squeeze(r, axis=axis)


def softmax(x, axis):
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def log_softmax(x, axis):
    return x - logsumexp(x, axis=axis, keepdims=True)


def apply_steps(x, steps):
    """Applies a 1-based view chain (as tensor_ops.lua does with methods) with numpy."""
    for st in steps:
        name, args = st[0], st[1:]
        if name == "transpose":
            x = np.swapaxes(x, args[0] - 1, args[1] - 1)
        elif name == "t":
            x = x.T
        elif name == "permute":
            x = np.transpose(x, [a - 1 for a in args])
        elif name == "narrow":
            d, start, length = args[0] - 1, args[1] - 1, args[2]
            x = np.take(x, range(start, start + length), axis=d)
        elif name == "select":
            x = np.take(x, args[1] - 1, axis=args[0] - 1)
        elif name == "expand":
            x = np.broadcast_to(x, args)
        elif name == "unsqueeze":
            x = np.expand_dims(x, args[0] - 1)
        elif name == "squeeze":
            x = np.squeeze(x, args[0] - 1) if args else np.squeeze(x)
        elif name == "view":
            x = x.reshape(args)
        else:
            raise ValueError(name)
    return x


# MARK: cases

F = {"seed": SEED, "numpy": np.__version__}

# Broadcasting binary operations. `a` and `b` are tensors or numbers; `out` is numpy's result.
BINARY = {
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide, "pow": np.power,
    "maximum": np.maximum, "minimum": np.minimum,
    "eq": np.equal, "ne": np.not_equal, "lt": np.less, "le": np.less_equal, "gt": np.greater, "ge": np.greater_equal,
}
SHAPES = [((3, 4), (3, 4)), ((3, 1), (1, 4)), ((2, 3, 4), (4,)), ((4,), (2, 3, 4)), ((), (2, 3)), ((2, 1, 4), (3, 1))]
binary = []
for op, fn in BINARY.items():
    for sa, sb in SHAPES:
        if op == "pow":
            a, b = uniform(0.5, 2.0, *sa), uniform(-2.0, 2.0, *sb)
        elif op == "div":
            a, b = randn(*sa), uniform(0.5, 2.0, *sb) * rng.choice([-1, 1], sb).astype(np.float32)
        elif op in ("eq", "ne", "lt", "le", "gt", "ge", "maximum", "minimum"):
            a, b = ints(-2, 3, *sa), ints(-2, 3, *sb)
        else:
            a, b = randn(*sa), randn(*sb)
        binary.append({"op": op, "a": a, "b": b, "out": f32(fn(d64(a), d64(b)))})
    # Scalar on either side.
    a = uniform(0.5, 2.0, 3, 4) if op == "pow" else ints(-2, 3, 3, 4) if op in ("eq", "ne", "lt", "le", "gt", "ge") else randn(3, 4)
    c = 1.5 if op in ("pow", "div") else 1.0 if op in ("eq", "ne", "lt", "le", "gt", "ge") else -0.75
    binary.append({"op": op, "a": a, "b": c, "out": f32(fn(d64(a), c))})
    if op not in ("maximum", "minimum", "eq", "ne", "lt", "le", "gt", "ge"):
        binary.append({"op": op, "a": c, "b": a, "out": f32(fn(c, d64(a)))})
# Integer exponents take fast paths in some kernels; check them and a negative base with an integral power.
for e in (2.0, 0.5, 1.0, 3.0, -1.0):
    a = uniform(0.25, 3.0, 5)
    binary.append({"op": "pow", "a": a, "b": e, "out": f32(np.power(d64(a), e))})
a = np.array([-2, -1.5, 0, 1.5, 2], dtype=np.float32)
binary.append({"op": "pow", "a": a, "b": 2.0, "out": f32(d64(a) ** 2)})
binary.append({"op": "pow", "a": a, "b": 3.0, "out": f32(d64(a) ** 3)})
# NaN propagates through maximum and minimum (as in PyTorch and numpy).
a = np.array([1, np.nan, 3, -1], dtype=np.float32)
b = np.array([2, 0, np.nan, -2], dtype=np.float32)
binary.append({"op": "maximum", "a": a, "b": b, "out": f32(np.maximum(d64(a), d64(b)))})
binary.append({"op": "minimum", "a": a, "b": b, "out": f32(np.minimum(d64(a), d64(b)))})
F["binary"] = binary

# where(cond, x, y): broadcasting across all three, numbers allowed for x and y.
where = []
for sc, sx, sy in [((3, 4), (3, 4), (3, 4)), ((3, 1), (1, 4), ()), ((4,), (2, 3, 4), (2, 1, 1)), ((2, 3), None, (2, 3)),
                   ((2, 3), (2, 3), None)]:
    cond = np.asarray(rng.random(sc) < 0.5, dtype=np.float32)
    x = randn(*sx) if sx is not None else 2.5
    y = randn(*sy) if sy is not None else -1.25
    out = f32(np.where(d64(cond) != 0, d64(x), d64(y)))
    where.append({"cond": cond, "x": x, "y": y, "out": out})
# Unpicked infinities must not leak into the result.
cond = np.array([1, 0, 1, 0], dtype=np.float32)
x = np.array([1, np.inf, 3, np.nan], dtype=np.float32)
y = np.array([np.inf, 2, -np.inf, 4], dtype=np.float32)
where.append({"cond": cond, "x": x, "y": y, "out": f32(np.where(cond != 0, x, y))})
F["where"] = where

# Strided views: each chain is applied to `input`; `out` is the view's values. tensor_ops.lua also checks the
# view after contiguous() and clone(), and ops on the non-contiguous view against `exp`, `sum_last` (sum over
# the last dimension), `add` (view + `other`, a contiguous tensor of the view's size) and `mul_self`
# (view * view:contiguous()).
VIEW_CHAINS = [
    ((2, 3, 4), [("transpose", 1, 3)]),
    ((2, 3, 4), [("transpose", 2, 3)]),
    ((2, 3, 4), [("permute", 3, 1, 2)]),
    ((2, 3, 4), [("permute", 2, 3, 1)]),
    ((2, 3, 4), [("narrow", 2, 2, 2)]),
    ((2, 3, 4), [("narrow", 3, 2, 2)]),
    ((2, 3, 4), [("select", 3, 2)]),
    ((2, 3, 4), [("select", 2, 3)]),
    ((2, 3, 4), [("select", 1, 2), ("t",)]),
    ((3, 1), [("expand", 3, 4)]),
    ((1, 4), [("expand", 2, 3, 4)]),
    ((3, 1, 2), [("expand", 3, 5, 2), ("transpose", 1, 2)]),
    ((4, 5), [("t",), ("narrow", 1, 2, 3)]),
    ((4, 5), [("narrow", 2, 1, 4), ("t",), ("select", 2, 3)]),
    ((2, 3, 4), [("permute", 3, 1, 2), ("narrow", 1, 2, 2), ("transpose", 2, 3)]),
    ((3, 4), [("unsqueeze", 2), ("expand", 3, 2, 4), ("transpose", 1, 3)]),
    ((6, 4), [("t",), ("select", 1, 1)]),
]
views = []
for shape, steps in VIEW_CHAINS:
    x = randn(*shape)
    v = apply_steps(d64(x), steps)
    other = randn(*v.shape)
    views.append({
        "input": x, "steps": [list(s) for s in steps], "out": f32(v), "exp": f32(np.exp(v)),
        "sum_last": f32(np.sum(v, axis=-1)), "other": other, "add": f32(v + d64(other)), "mul_self": f32(v * v),
    })
F["views"] = views

# Unary math. `arg` is the extra argument (gelu's mode, clamp's bounds); `transposed` runs the op on the
# transpose view of `input` (the expected value is then for that view).
UNARY = {
    "exp": lambda x: np.exp(x), "log": lambda x: np.log(x), "sqrt": lambda x: np.sqrt(x), "abs": np.abs,
    "tanh": np.tanh, "sigmoid": sigmoid, "relu": lambda x: np.maximum(x, 0), "silu": lambda x: x * sigmoid(x),
    "gelu": gelu, "neg": lambda x: -x,
}
unary = []
for op, fn in UNARY.items():
    for transposed in (False, True):
        x = uniform(0.05, 4.0, 4, 5) if op in ("log", "sqrt") else randn(4, 5, scale=3.0 if op != "exp" else 2.0)
        v = d64(x).T if transposed else d64(x)
        unary.append({"op": op, "input": x, "transposed": transposed, "out": f32(fn(v))})
x = randn(4, 5, scale=3.0)
unary.append({"op": "gelu", "mode": "tanh", "input": x, "out": f32(gelu_tanh(d64(x)))})
unary.append({"op": "gelu", "mode": "none", "input": x, "out": f32(gelu(d64(x)))})
# Large magnitudes: sigmoid and silu must not overflow exp on either side.
big = np.array([-100, -30, -5, 0, 5, 30, 100], dtype=np.float32)
for op in ("sigmoid", "silu", "tanh", "relu", "gelu"):
    unary.append({"op": op, "input": big, "out": f32(UNARY[op](d64(big)))})
for lo, hi in ((-1.0, 1.0), (-0.5, None), (None, 0.25), (0.0, 0.0)):
    x = randn(3, 4, scale=2.0)
    y = d64(x)
    if lo is not None:
        y = np.maximum(y, lo)
    if hi is not None:
        y = np.minimum(y, hi)
    unary.append({"op": "clamp", "min": lo, "max": hi, "input": x, "out": f32(y)})
F["unary"] = unary

# Reductions along each dim (1-based, and -1) with and without keepdim, and over all elements.
# max/min along a dim give values and 1-based indices; argmax/argmin give 1-based indices (a number when full).
REDUCE = {
    "sum": lambda x, a, k: np.sum(x, axis=a, keepdims=k),
    "mean": lambda x, a, k: np.mean(x, axis=a, keepdims=k),
    "var": lambda x, a, k: np.var(x, axis=a, ddof=1, keepdims=k),
    "std": lambda x, a, k: np.std(x, axis=a, ddof=1, keepdims=k),
    "logsumexp": lambda x, a, k: logsumexp(x, axis=a, keepdims=k),
    "max": lambda x, a, k: np.max(x, axis=a, keepdims=k),
    "min": lambda x, a, k: np.min(x, axis=a, keepdims=k),
    "argmax": lambda x, a, k: np.argmax(x, axis=a, keepdims=k) + 1,
    "argmin": lambda x, a, k: np.argmin(x, axis=a, keepdims=k) + 1,
}
reductions = []
for op, fn in REDUCE.items():
    x = randn(3, 4, 5)
    case = {"op": op, "input": x, "all": f32(fn(d64(x), None, False)), "dims": []}
    for dim in (1, 2, 3, -1):
        axis = dim - 1 if dim > 0 else dim
        for keepdim in (False, True):
            entry = {"dim": dim, "keepdim": keepdim, "out": f32(fn(d64(x), axis, keepdim))}
            if op in ("max", "min"):
                entry["indices"] = f32((np.argmax if op == "max" else np.argmin)(x, axis=axis, keepdims=keepdim) + 1)
            case["dims"].append(entry)
    reductions.append(case)
# A reduction over a non-contiguous view (the transpose of a 4x6 matrix).
x = randn(4, 6)
for op in ("sum", "mean", "var", "std", "logsumexp", "max"):
    reductions.append({"op": op, "input": x, "transposed": True, "all": f32(REDUCE[op](d64(x).T, None, False)),
                       "dims": [{"dim": d, "keepdim": False, "out": f32(REDUCE[op](d64(x).T, d - 1, False))}
                                for d in (1, 2)]})
# logsumexp of large values needs the max shift.
x = np.array([[1000, 1000.5, 999], [-1000, -1001, -999.5]], dtype=np.float32)
reductions.append({"op": "logsumexp", "input": x, "all": f32(logsumexp(d64(x))),
                   "dims": [{"dim": 2, "keepdim": False, "out": f32(logsumexp(d64(x), axis=1))}]})
F["reductions"] = reductions

# softmax and log_softmax along each dim; dim = nil means the default (the last).
softmaxes = []
for op, fn in (("softmax", softmax), ("log_softmax", log_softmax)):
    x = randn(2, 3, 4, scale=2.0)
    for dim in (1, 2, 3, -1, None):
        axis = -1 if dim is None else (dim - 1 if dim > 0 else dim)
        softmaxes.append({"op": op, "dim": dim, "input": x, "out": f32(fn(d64(x), axis))})
    x = np.array([[1000, 1001, 1002], [-1000, -1000, -1000]], dtype=np.float32)
    softmaxes.append({"op": op, "dim": 2, "input": x, "out": f32(fn(d64(x), 1))})
F["softmax"] = softmaxes

# matmul: a and b (after their view chains) multiplied as torch.matmul does.
MATMUL = [
    ((5,), [], (5,), []),
    ((3, 4), [], (4, 5), []),
    ((4,), [], (4, 5), []),
    ((3, 4), [], (4,), []),
    ((2, 3, 4), [], (4, 5), []),
    ((1, 3, 4), [], (2, 4, 5), []),
    ((2, 3, 4), [], (2, 4, 5), []),
    ((2, 3, 4), [], (1, 4, 5), []),
    ((3, 4), [], (2, 4, 5), []),
    ((4,), [], (2, 4, 5), []),
    ((2, 3, 4), [], (4,), []),
    ((4, 3), [("t",)], (4, 5), []),
    ((3, 4), [], (5, 4), [("t",)]),
    ((4, 3), [("t",)], (5, 4), [("t",)]),
    ((2, 4, 3), [("transpose", 2, 3)], (2, 4, 5), []),
    ((2, 3, 4), [], (2, 5, 4), [("transpose", 2, 3)]),
    ((3, 2, 4), [("transpose", 1, 2)], (4, 5), []),
    ((3, 4), [], (4, 1), [("expand", 4, 5)]),
    ((1, 4), [("expand", 3, 4)], (4, 5), []),
    ((2, 3, 6), [("narrow", 3, 2, 4)], (2, 4, 5), []),
    ((2, 2, 3, 4), [], (2, 1, 4, 5), []),
    ((1, 7), [], (7, 1), []),
    ((16, 24), [], (24, 8), []),
]
matmul = []
for sa, sta, sb, stb in MATMUL:
    a, b = randn(*sa), randn(*sb)
    va, vb = apply_steps(d64(a), sta), apply_steps(d64(b), stb)
    matmul.append({"a": a, "a_steps": [list(s) for s in sta], "b": b, "b_steps": [list(s) for s in stb],
                   "out": f32(np.matmul(va, vb))})
F["matmul"] = matmul

# cat and stack.
cats = []
for shapes, dim in ((((2, 3), (4, 3)), 1), (((2, 3), (2, 1), (2, 2)), 2), (((2, 3, 4), (2, 3, 1)), 3),
                    (((2, 3, 4), (2, 3, 4)), -1), (((3,), (0,), (2,)), 1)):
    ts = [randn(*s) for s in shapes]
    cats.append({"fn": "cat", "inputs": ts, "dim": dim,
                 "out": f32(np.concatenate([d64(t) for t in ts], axis=dim - 1 if dim > 0 else dim))})
for shape, dim in (((2, 3), 1), ((2, 3), 2), ((2, 3), 3), ((2, 3), -1), ((4,), 1)):
    ts = [randn(*shape) for _ in range(3)]
    axis = dim - 1 if dim > 0 else len(shape) + 1 + dim
    cats.append({"fn": "stack", "inputs": ts, "dim": dim, "out": f32(np.stack([d64(t) for t in ts], axis=axis))})
ts = [randn(2, 3) for _ in range(2)]
cats.append({"fn": "cat", "inputs": ts, "out": f32(np.concatenate(ts, axis=0))})  # default dim 1
cats.append({"fn": "stack", "inputs": ts, "out": f32(np.stack(ts, axis=0))})
F["cat"] = cats

# gather, index_select and masked_fill. Index tensors hold 1-based positions.
gathers = []
for shape, dim, ishape in (((3, 4), 1, (2, 4)), ((3, 4), 2, (3, 6)), ((2, 3, 4), 3, (2, 3, 2)), ((2, 3, 4), 2, (1, 2, 3)),
                           ((5,), 1, (7,)), ((3, 4), -1, (2, 2))):
    x = randn(*shape)
    axis = dim - 1 if dim > 0 else len(shape) + dim
    idx = rng.integers(0, shape[axis], ishape)
    # np.take_along_axis needs the index to match outside `axis`: gather from the leading corner.
    sub = x[tuple(slice(0, ishape[d]) if d != axis else slice(None) for d in range(len(shape)))]
    gathers.append({"fn": "gather", "input": x, "dim": dim, "index": (idx + 1).astype(np.float32),
                    "out": f32(np.take_along_axis(d64(sub), idx, axis=axis))})
for shape, dim, n in (((4, 3), 1, 5), ((4, 3), 2, 2), ((2, 3, 4), 3, 3), ((6,), 1, 4), ((3, 4), -1, 0)):
    x = randn(*shape)
    axis = dim - 1 if dim > 0 else len(shape) + dim
    idx = rng.integers(0, shape[axis], (n,))
    gathers.append({"fn": "index_select", "input": x, "dim": dim, "index": (idx + 1).astype(np.float32),
                    "out": f32(np.take(d64(x), idx, axis=axis))})
for shape, mshape, value in (((3, 4), (3, 4), -1.5), ((3, 4), (3, 1), 7.0), ((2, 3, 4), (4,), -1e9), ((2, 3), (), 0.5)):
    x = randn(*shape)
    mask = np.asarray(rng.random(mshape) < 0.5, dtype=np.float32)
    gathers.append({"fn": "masked_fill", "input": x, "mask": mask, "value": value,
                    "out": f32(np.where(np.broadcast_to(mask, shape) != 0, value, d64(x)))})
F["indexing"] = gathers

# Creation: linspace, arange (values), eye.
creation = []
for args in ((0, 1, 5), (-3, 7, 11), (2, 2, 1), (1, -1, 4), (0, 1, 0), (0.1, 0.9, 9)):
    creation.append({"fn": "linspace", "args": list(args), "out": f32(np.linspace(*args))})
creation.append({"fn": "linspace", "args": [0, 10], "out": f32(np.linspace(0, 10, 100))})  # default steps
for args in ((5,), (1, 4), (1, 2.5, 0.5), (10, 0, -3), (0, 1, 0.1), (-1, 1, 0.25), (3, 3)):
    creation.append({"fn": "arange", "args": list(args), "out": f32(np.arange(*[float(a) for a in args]))})
for args in ((3,), (2, 4), (4, 2), (1,), (0,)):
    creation.append({"fn": "eye", "args": list(args), "out": f32(np.eye(*args))})
F["creation"] = creation

# MARK: write

ORDER = ["binary", "where", "views", "unary", "reductions", "softmax", "matmul", "cat", "indexing", "creation"]
with open(OUT, "w") as f:
    f.write("-- tensor_fixtures.lua: generated by gen_tensor_fixtures.py (numpy %s, seed %d). Do not edit.\n"
            % (np.__version__, SEED))
    f.write("-- Tensors are {s = sizes, d = row-major values}; dims and indices are 1-based.\n")
    f.write("return {\n")
    f.write("seed=%d,\nnumpy=%s,\n" % (SEED, lua(np.__version__)))
    for key in ORDER:
        f.write("%s={\n" % key)
        for case in F[key]:
            f.write(lua(case) + ",\n")
        f.write("},\n")
    f.write("}\n")
print("wrote %s (%d bytes)" % (OUT, os.path.getsize(OUT)))

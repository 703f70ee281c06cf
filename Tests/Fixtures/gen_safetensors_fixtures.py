#!/usr/bin/env python3
"""gen_safetensors_fixtures.py: small safetensors files written by the reference library, and their values.

Writes Tests/Fixtures/safetensors/:
  f32.safetensors       F32 tensors (a matrix, a vector, a 0-dim scalar, an empty 0x3) with __metadata__
  f16.safetensors       F16, including subnormals, -0, +-inf, the largest finite value and NaN
  bf16.safetensors      BF16 (numpy has no bfloat16: rounded to nearest even by bit manipulation, written
                        through safetensors.serialize)
  ints.safetensors      I64, I32, I16, I8, U8, BOOL and F64 in one file (mixed dtypes, mixed alignment)
  unpadded.safetensors  F32 data starting at an odd offset: a header without padding, as MLX writes, and
                        two metadata keys out of order (hand-made)
  f8.safetensors        an F8_E4M3 tensor, which Tycho refuses with a message naming tensor and dtype
  expected.lua          the values Tests/lua/safetensors.lua compares against
  expected.json         the same values as float32 bit patterns, for Tests/TychoNNTests

Values are the exact float32 values a reader must produce (integers and F16/BF16/F64 converted to float32).
The output is deterministic (each file the library writes has at most one metadata key, because the library
orders several keys differently from run to run); rerun it after changing a case:
    python3 Tests/Fixtures/gen_safetensors_fixtures.py

It also checks that a file Tycho wrote loads in Python and that the reference writer produces the very same
bytes from what it loaded (so Tycho's header order, spacing and padding match safetensors 0.8.0):
    python3 Tests/Fixtures/gen_safetensors_fixtures.py --verify FILE
Requires: numpy, safetensors (pip install safetensors). No torch.
"""

import json
import math
import os
import struct
import sys

import numpy as np
from safetensors import TensorSpec, safe_open, serialize
from safetensors.numpy import load_file, save, save_file

SEED = 20261127
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "safetensors")

# MARK: helpers


def f32_to_bf16_bits(a):
    """float32 array -> uint16 bfloat16 bit patterns, round to nearest even (NaN kept quiet)."""
    u = np.asarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    nan = np.isnan(np.asarray(a, dtype=np.float32))
    rounded = np.where(nan, (u >> 16) | 0x40, rounded)
    return rounded.astype(np.uint16)


def bf16_bits_to_f32(bits):
    return (bits.astype(np.uint32) << 16).view(np.float32)


def lua_number(v):
    v = float(v)
    if math.isnan(v):
        return "0/0"
    if math.isinf(v):
        return "1/0" if v > 0 else "-1/0"
    if v == 0 and math.copysign(1, v) < 0:
        return "-0.0"
    return repr(v)  # the shortest text for the double that equals this float32 value: exact in Lua


def lua_string(s):
    out = []
    for b in s.encode("utf-8"):
        c = chr(b)
        out.append("\\" + c if c in '"\\' else c if 32 <= b < 127 else "\\%03d" % b)
    return '"' + "".join(out) + '"'


# MARK: cases


def cases():
    rng = np.random.default_rng(SEED)
    files = {}

    f32 = {
        "weight": rng.standard_normal((3, 4)).astype(np.float32),
        "bias": rng.standard_normal(4).astype(np.float32),
        "scalar": np.array(-2.5, dtype=np.float32),
        "empty": np.zeros((0, 3), dtype=np.float32),
        "layers.0.attn.c_attn.weight": rng.uniform(-1, 1, (2, 3)).astype(np.float32),
    }
    # One metadata key per file the library writes: it keeps __metadata__ in a Rust HashMap, so the order of
    # several keys changes from run to run. The hand-made unpadded.safetensors carries two, in unsorted order.
    files["f32"] = (f32, {"format": "pt"})

    f16_special = np.array([0.0, -0.0, 1.0, -2.0, 65504.0, 6.1035156e-05, 5.9604645e-08, 1e-6, np.inf, -np.inf,
                            np.nan, 0.1, 3.140625], dtype=np.float16)
    files["f16"] = ({
        "special": f16_special,
        "matrix": rng.standard_normal((2, 5)).astype(np.float16),
        "scalar": np.array(0.333, dtype=np.float16),
    }, None)

    bf16_src = np.concatenate([rng.standard_normal(9).astype(np.float32) * 100,
                               np.array([0, -0.0, 1, np.inf, -np.inf, np.nan, 3.0e38, 1.0e-39, 1.00390625],
                                        dtype=np.float32)]).astype(np.float32)
    files["bf16"] = ({
        "values": f32_to_bf16_bits(bf16_src).reshape(3, 6),
        "row": f32_to_bf16_bits(rng.standard_normal(5).astype(np.float32)),
    }, {"dtype_note": "bfloat16 bits, round to nearest even"})

    files["ints"] = ({
        "i64": np.array([[0, -1, 2**24, -(2**24)], [7, 123456789, -3, 2**40]], dtype=np.int64),
        "i32": np.array([1, -2, 3, 2**31 - 1, -(2**31)], dtype=np.int32),
        "i16": np.array([-32768, 0, 32767], dtype=np.int16),
        "i8": np.array([-128, -1, 0, 127], dtype=np.int8),
        "u8": np.array([0, 1, 255], dtype=np.uint8),
        "mask": np.array([[True, False, True], [False, False, True]], dtype=np.bool_),
        "f64": np.array([1.0 / 3.0, -1e-300, 1e300, 2.5], dtype=np.float64),
    }, None)
    return files


def write_bf16(path, tensors, metadata):
    specs = {}
    for name, bits in tensors.items():
        specs[name] = TensorSpec(dtype="bfloat16", shape=list(bits.shape), data_ptr=bits.ctypes.data,
                                 data_len=bits.nbytes)
    data = bytes(serialize(specs, metadata))
    with open(path, "wb") as f:
        f.write(data)


def write_unpadded(path):
    """A hand-made file whose header has no padding and an odd length, so the F32 data is unaligned."""
    values = np.array([1.5, -2.25, 3.0e-3, 4.0e10, -0.0, 7.0], dtype=np.float32)
    header = '{"__metadata__":{"z":"last","a":"first"},"x":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}}'
    if len(header) % 2 == 0:
        header = header[:-1] + " }"  # whitespace is legal JSON; an odd length leaves the data unaligned
    assert len(header) % 2 == 1
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(header)) + header.encode() + values.tobytes())
    return {"x": values.reshape(2, 3)}, {"z": "last", "a": "first"}


def write_f8(path):
    bits = np.array([0x38, 0x40], dtype=np.uint8)
    f32 = np.array([1.0, 2.0], dtype=np.float32)
    specs = {
        "fp8": TensorSpec(dtype="float8_e4m3fn", shape=[2], data_ptr=bits.ctypes.data, data_len=2),
        "ok": TensorSpec(dtype="float32", shape=[2], data_ptr=f32.ctypes.data, data_len=8),
    }
    with open(path, "wb") as f:
        f.write(bytes(serialize(specs, None)))


# MARK: generate


def expected_values(name, arr):
    if name == "bf16":
        return bf16_bits_to_f32(arr)
    with np.errstate(over="ignore"):  # F64 1e300 becomes float32 inf, as a reader must make it
        return np.asarray(arr).astype(np.float32)


def generate():
    os.makedirs(OUT, exist_ok=True)
    expected = {}
    for fname, (tensors, metadata) in cases().items():
        path = os.path.join(OUT, fname + ".safetensors")
        if fname == "bf16":
            write_bf16(path, tensors, metadata)
        else:
            save_file(tensors, path, metadata=metadata)
        expected[fname] = {"metadata": metadata or {},
                           "tensors": {k: expected_values(fname, v) for k, v in tensors.items()}}
    tensors, metadata = write_unpadded(os.path.join(OUT, "unpadded.safetensors"))
    expected["unpadded"] = {"metadata": metadata, "tensors": tensors}
    write_f8(os.path.join(OUT, "f8.safetensors"))

    # Cross-check: what the reference reader gives back equals the expected float32 values.
    for fname, case in expected.items():
        loaded = load_file(os.path.join(OUT, fname + ".safetensors")) if fname != "bf16" else None
        for k, want in case["tensors"].items():
            if loaded is not None:
                with np.errstate(over="ignore"):
                    got = loaded[k].astype(np.float32)
                assert got.shape == want.shape and np.array_equal(got, want, equal_nan=True), (fname, k)

    with open(os.path.join(OUT, "expected.json"), "w") as f:
        out = {}
        for fname, case in expected.items():
            out[fname] = {"metadata": case["metadata"], "tensors": {
                k: {"shape": list(v.shape), "bits": [int(b) for b in np.asarray(v, np.float32).reshape(-1).view(np.uint32)]}
                for k, v in sorted(case["tensors"].items())}}
        json.dump(out, f, indent=1, sort_keys=True)
        f.write("\n")

    with open(os.path.join(OUT, "expected.lua"), "w") as f:
        f.write("-- expected.lua: written by Tests/Fixtures/gen_safetensors_fixtures.py; do not edit.\n")
        f.write("-- file -> {metadata = {...}, tensors = {name = {s = {sizes}, d = {row-major float32 values}}}}\n")
        f.write("return {\n")
        for fname, case in sorted(expected.items()):
            f.write("  %s = {\n    metadata = {" % fname)
            f.write(", ".join("[%s] = %s" % (lua_string(k), lua_string(v)) for k, v in sorted(case["metadata"].items())))
            f.write("},\n    tensors = {\n")
            for k, v in sorted(case["tensors"].items()):
                d = ", ".join(lua_number(x) for x in np.asarray(v, np.float32).reshape(-1))
                f.write("      [%s] = {s = {%s}, d = {%s}},\n" % (lua_string(k), ", ".join(str(s) for s in v.shape), d))
            f.write("    },\n  },\n")
        f.write("}\n")
    total = sum(os.path.getsize(os.path.join(OUT, n)) for n in os.listdir(OUT))
    print("wrote %d files to %s (%d bytes)" % (len(os.listdir(OUT)), OUT, total))


# MARK: verify a Tycho-written file


def verify(path):
    """Loads `path` with the reference library and checks its layout; exits non-zero on any problem."""
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = raw[8:8 + n]
    problems = []
    if (8 + n) % 8 != 0:
        problems.append("header not padded to a multiple of 8 (8 + %d)" % n)
    parsed = json.loads(header)
    tensors = load_file(path)
    with safe_open(path, framework="numpy") as f:
        metadata = f.metadata()
    for name, t in sorted(tensors.items()):
        if parsed[name]["dtype"] != "F32":
            problems.append("%s: dtype %s, expected F32" % (name, parsed[name]["dtype"]))
        print("  %-40s %-8s %s" % (name, parsed[name]["dtype"], list(t.shape)))
    print("  metadata:", metadata)
    order = [k for k in parsed if k != "__metadata__"]
    if order != sorted(order, key=lambda k: k.encode()):
        problems.append("tensors not in name order")
    end = 0
    for k in sorted(order, key=lambda k: parsed[k]["data_offsets"]):
        if parsed[k]["data_offsets"][0] != end:
            problems.append("%s: data_offsets %s do not follow on from %d" % (k, parsed[k]["data_offsets"], end))
        end = parsed[k]["data_offsets"][1]
    # The reference writer, given what it loaded, must produce the same bytes. It orders several metadata keys
    # arbitrarily (a Rust HashMap), so with more than one key compare the parsed header and the data instead.
    resaved = save(tensors, metadata=metadata)
    if metadata is not None and len(metadata) > 1:
        m = struct.unpack("<Q", resaved[:8])[0]
        same = json.loads(resaved[8:8 + m]) == parsed and resaved[8 + m:] == raw[8 + n:] and m == n
    else:
        same = resaved == raw
    if not same:
        problems.append("the reference writer gives different bytes for the same tensors and metadata")
    for p in problems:
        print("NOT OK:", p)
    print("%s: %s (%d tensors, %d bytes)" % (path, "OK" if not problems else "FAILED", len(tensors), len(raw)))
    return 0 if not problems else 1


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "--verify":
        sys.exit(max([verify(p) for p in sys.argv[2:]] or [2]))
    generate()

"""Timing helpers for the PyTorch comparison scripts: the same method and output format as common.lua."""
import sys
import time

REPEATS = 7
SAMPLE_SECONDS = 0.15


def options(argv):
    """`quick` (fewer, shorter samples), `threads=1,2`, `repeats=N`, `ops=exp,gelu` (only these cases; None
    for all), `sizes=1,4` (in M elements; None for the script's own), as in common.lua."""
    global REPEATS, SAMPLE_SECONDS
    opts = {"threads": [1, 2], "quick": False, "ops": None, "sizes": None}
    for a in argv:
        if a == "quick":
            REPEATS, SAMPLE_SECONDS, opts["quick"] = 3, 0.05, True
        elif a.startswith("threads="):
            opts["threads"] = [int(t) for t in a[8:].split(",") if t]
        elif a.startswith("repeats="):
            REPEATS = int(a[8:])
        elif a.startswith("ops="):
            opts["ops"] = set(a[4:].split(","))
        elif a.startswith("sizes="):
            opts["sizes"] = [int(m) << 20 for m in a[6:].split(",") if m]
    return opts


def measure(f):
    """Seconds per call of f: (median, min, max) over REPEATS samples of about SAMPLE_SECONDS each."""
    f()
    t0 = time.perf_counter()
    f()
    once = max(time.perf_counter() - t0, 1e-7)
    iters = max(1, int(SAMPLE_SECONDS / once + 0.5))
    samples = []
    for _ in range(REPEATS):
        s = time.perf_counter()
        for _ in range(iters):
            f()
        samples.append((time.perf_counter() - s) / iters)
    samples.sort()
    n = len(samples)
    med = samples[n // 2] if n % 2 else (samples[n // 2 - 1] + samples[n // 2]) / 2
    return med, samples[0], samples[-1]


def report(bench, impl, case, threads, seconds, lo, hi, rate, unit, extra=None):
    parts = [f"bench={bench}", f"impl={impl}", f"case={case}", f"threads={threads}",
             f"median={rate(seconds):.2f}", f"min={rate(hi):.2f}", f"max={rate(lo):.2f}", f"unit={unit}"]
    for k in sorted(extra or {}):
        parts.append(f"{k}={extra[k]}")
    print(" ".join(parts))
    sys.stdout.flush()

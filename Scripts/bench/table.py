"""table.py: turns the key=value result lines of the benchmarks into comparison tables (Markdown).
    python3 Scripts/bench/table.py results.txt
Lines with the same bench, impl, case and threads (from several rounds) are merged by taking the median.
"""
import statistics
import sys
from collections import defaultdict


def lines_of(path):
    """Every result line as a dict of its fields, in file order."""
    out = []
    for line in open(path):
        if line.startswith("bench="):
            out.append(dict(kv.split("=", 1) for kv in line.split()))
    return out


def parse(path):
    rows = defaultdict(list)
    mins = defaultdict(list)
    extra = {}
    for f in lines_of(path):
        if "median" not in f:
            continue
        key = (f["bench"], f["impl"], f["case"], int(f["threads"]))
        rows[key].append(float(f["median"]))
        if "min" in f:
            mins[key].append(float(f["min"]))
        extra[key] = f
    # kernels.c lines: the minimum over its samples (and over rounds) is the figure to read.
    for key, v in mins.items():
        if key[0] == "kernels":
            extra[key] = dict(extra[key], best=min(v))
    return {k: statistics.median(v) for k, v in rows.items()}, extra


def fmt(x, digits=1):
    return "-" if x is None else f"{x:.{digits}f}"


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def cases_of(res, bench):
    seen = []
    for (b, _, c, _) in res:
        if b == bench and c not in seen:
            seen.append(c)
    return seen


def main():
    res, extra = parse(sys.argv[1])
    threads = sorted({k[3] for k in res})
    get = lambda b, i, c, t: res.get((b, i, c, t))  # noqa: E731

    if cases_of(res, "matmul"):
        core = next((e.get("core") for k, e in extra.items() if k[1] == "openblas" and "core" in e), None)
        print("### matmul, GFLOP/s (median)" + (f"; OpenBLAS kernels: {core}" if core else ""))
        print()
        print("| n | threads | Tycho | OpenBLAS sgemm | OpenBLAS, own core choice | PyTorch | Tycho / OpenBLAS | Tycho / PyTorch |")
        print("|---|---|---|---|---|---|---|---|")
        for c in cases_of(res, "matmul"):
            for t in threads:
                ty, ob = get("matmul", "tycho", c, t), get("matmul", "openblas", c, t)
                od, pt = get("matmul", "openblas-default", c, t), get("matmul", "torch", c, t)
                if ty is None and ob is None and pt is None:
                    continue
                r1, r2 = ratio(ty, ob), ratio(ty, pt)
                print(f"| {c} | {t} | {fmt(ty)} | {fmt(ob)} | {fmt(od)} | {fmt(pt)} | "
                      f"{'-' if r1 is None else f'{r1:.0%}'} | {'-' if r2 is None else f'{r2:.0%}'} |")
        print()

    if cases_of(res, "kernels"):
        kernels_table(res, extra)

    if cases_of(res, "dpo_step"):
        dpo_step_table(lines_of(sys.argv[1]))

    if cases_of(res, "elementwise"):
        print("### element-wise, GB/s of minimum memory traffic (median; higher is better)")
        print()
        hdr = "| op / size |"
        sep = "|---|"
        for t in threads:
            hdr += f" Tycho {t}t | PyTorch {t}t | Tycho/PyTorch {t}t |"
            sep += "---|---|---|"
        # Scaling columns only when every thread count was timed by the same clock (`cpu` is one-thread only).
        clocks = {e.get("clock", "wall") for k, e in extra.items() if k[0] == "elementwise"}
        scaling = len(threads) > 1 and len(clocks) == 1
        if scaling:
            hdr += f" Tycho {threads[-1]}t/{threads[0]}t | PyTorch {threads[-1]}t/{threads[0]}t |"
            sep += "---|---|"
        print(hdr)
        print(sep)
        for c in cases_of(res, "elementwise"):
            line = f"| {c} |"
            for t in threads:
                ty, pt = get("elementwise", "tycho", c, t), get("elementwise", "torch", c, t)
                r = ratio(ty, pt)
                line += f" {fmt(ty)} | {fmt(pt)} | {'-' if r is None else f'{r:.2f}'} |"
            if scaling:
                s1 = ratio(get("elementwise", "tycho", c, threads[-1]), get("elementwise", "tycho", c, threads[0]))
                s2 = ratio(get("elementwise", "torch", c, threads[-1]), get("elementwise", "torch", c, threads[0]))
                line += f" {fmt(s1, 2)} | {fmt(s2, 2)} |"
            print(line)
        print()


def kernels_table(res, extra):
    variants = []
    for (b, i, _, _) in res:
        if b == "kernels" and i not in variants:
            variants.append(i)
    print("### CTensorKernels alone, ns per element (thread CPU time, minimum over samples; lower is better)")
    print()
    print("| kernel | " + " | ".join(variants) + " |")
    print("|---|" + "---|" * len(variants))
    for c in cases_of(res, "kernels"):
        cells = []
        for v in variants:
            e = extra.get(("kernels", v, c, 1))
            cells.append("-" if e is None else f"{e['best']:.2f}")
        print(f"| {c} | " + " | ".join(cells) + " |")
    print()


def dpo_step_table(lines):
    """The DPO step: ms per step of each implementation (median over rounds), PyTorch's time over Tycho's
    (above 1: Tycho faster) as the median and range of the per-round pairs (the k-th Tycho line of a case with
    the k-th PyTorch line, measured back to back), the clock, the cores each process had (CPU time over wall
    time) and the load averages the lines carry."""
    by = defaultdict(list)
    for f in lines:
        if f["bench"] == "dpo_step":
            by[(f["case"], int(f["threads"]), f["impl"])].append(f)
    cases = []
    for (c, t, _) in by:
        if (c, t) not in cases:
            cases.append((c, t))
    print("### DPO step, ms per step (median over rounds; lower is better)")
    print()
    print("| config | threads | clock | Tycho ms | PyTorch ms | PyTorch / Tycho (median of pairs) | range | Tycho pairs/s | "
          "cores used, Tycho / PyTorch | load |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for c, t in sorted(cases):
        ty, pt = by.get((c, t, "tycho"), []), by.get((c, t, "torch"), [])
        clocks = sorted({f.get("clock", "wall") for f in ty + pt})
        med = lambda fs: statistics.median(float(f["median"]) for f in fs) if fs else None  # noqa: E731
        pairs = [float(b["median"]) / float(a["median"]) for a, b in zip(ty, pt)]
        loads = [float(f["load"]) for f in ty + pt if f.get("load", "-") != "-"]
        r = f"{statistics.median(pairs):.2f}" if pairs else "-"
        rng = f"{min(pairs):.2f}-{max(pairs):.2f}" if len(pairs) > 1 else "-"
        pps = statistics.median(float(f["pairs_per_s"]) for f in ty) if ty else None
        load = f"{min(loads):.1f}-{max(loads):.1f}" if loads else "-"
        # CPU time over wall time of each step (medians): how many cores the process really had.
        cores = lambda fs: fmt(statistics.median(float(f["cpu_median"]) / float(f["wall_median"]) for f in fs), 2) \
            if fs and all("cpu_median" in f for f in fs) else "-"  # noqa: E731
        print(f"| {c} | {t} | {'/'.join(clocks)} | {fmt(med(ty))} | {fmt(med(pt))} | {r} | {rng} | {fmt(pps, 2)} | "
              f"{cores(ty)} / {cores(pt)} | {load} |")
    print()
    parts = [f for f in lines if f["bench"] == "dpo_step_parts"]
    if not parts:
        return
    names = ["forward", "loss", "backward", "clip", "adamw"]
    print("### DPO step by part, ms (median over rounds; CPU time at 1 thread, wall time at 2)")
    print()
    print("| config | threads | impl | " + " | ".join(names) + " |")
    print("|---|---|---|" + "---|" * len(names))
    groups = defaultdict(list)
    for f in parts:
        groups[(f["case"], int(f["threads"]), f["impl"])].append(f)
    for (c, t, i) in sorted(groups):
        clock = "cpu" if t == 1 else "wall"
        cells = [fmt(statistics.median(float(f[f"{n}_{clock}"]) for f in groups[(c, t, i)])) for n in names]
        print(f"| {c} | {t} | {i} | " + " | ".join(cells) + " |")
    print()


if __name__ == "__main__":
    main()

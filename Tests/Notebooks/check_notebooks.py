"""check_notebooks.py: notebooks written by `tycho notebook run`, checked with Jupyter's own tools.

    python3 check_notebooks.py --cwd DIR [--kernel tycho] RUN1.ipynb RUN2.ipynb ...

For each notebook the runner wrote:
  1. nbformat validates it, and nbformat.writes gives the file's exact bytes (Tycho writes as nbformat does);
  2. nbclient executes it again through the Tycho kernel (working directory DIR, as the runner used), with no error;
  3. the kernel's outputs equal the runner's, cell by cell (execution counts, output types, text and data), after
     merging consecutive stream pieces (the kernel streams in pieces) and masking timings (`1.2 s`, `350 tokens/s`).
Run by Tests/TychoCLITests/NotebookTests.swift. Prints one line per check, then `N passed, N failed`.
"""

import argparse
import copy
import re
import sys
import time
import traceback

import nbformat
from nbclient import NotebookClient

RESULTS = {"passed": 0, "failed": 0}

TIMING = re.compile(r"[ \t]*\d+(?:\.\d+)?(?:e[-+]?\d+)?(\s*)(ms\b|s\b|seconds\b|step/s|tokens/s|tok/s)")
ETA = re.compile(r"ETA \d+:\d+(?::\d+)?")


def check(name, condition, detail=""):
    if condition:
        RESULTS["passed"] += 1
        print(f"ok   {name}")
    else:
        RESULTS["failed"] += 1
        print(f"FAIL {name} {detail}")


def mask(text):
    return ETA.sub("ETA #", TIMING.sub(r" #\1\2", text))


def normalized(outputs):
    """Outputs as comparable plain data: streams merged, timings masked, metadata dropped."""
    out = []
    for o in outputs:
        t = o["output_type"]
        if t == "stream":
            if out and out[-1][0] == "stream" and out[-1][1] == o["name"]:
                out[-1] = ("stream", o["name"], out[-1][2] + o["text"])
            else:
                out.append(("stream", o["name"], o["text"]))
        elif t in ("execute_result", "display_data"):
            data = tuple(sorted((k, mask(v) if isinstance(v, str) else repr(v)) for k, v in o["data"].items()))
            out.append((t, o.get("execution_count"), data))
        elif t == "error":
            out.append((t, o["ename"], mask(o["evalue"]), tuple(mask(line) for line in o["traceback"])))
    return [(x[0], x[1], mask(x[2])) if x[0] == "stream" else x for x in out]


def first_difference(a, b):
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return f"output {i + 1}: runner {str(x)[:400]!r} / kernel {str(y)[:400]!r}"
    return f"runner has {len(a)} outputs, kernel {len(b)}"


def check_notebook(path, cwd, kernel):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    nb = nbformat.reads(text, as_version=4)
    try:
        nbformat.validate(nb)
        check(f"{path}: nbformat validates", True)
    except Exception as e:
        check(f"{path}: nbformat validates", False, str(e)[:500])
    check(f"{path}: written as nbformat writes it", nbformat.writes(nb) + "\n" == text)
    runner_cells = [c for c in nb.cells if c.cell_type == "code"]
    check(f"{path}: the runner executed every code cell", all(c.execution_count is not None for c in runner_cells if c.source.strip()))

    again = copy.deepcopy(nb)
    for c in again.cells:
        if c.cell_type == "code":
            c.outputs = []
            c.execution_count = None
    started = time.time()
    try:
        NotebookClient(again, kernel_name=kernel, timeout=600, startup_timeout=60,
                       resources={"metadata": {"path": cwd}}).execute()
        check(f"{path}: nbclient runs it through the kernel ({time.time() - started:.1f} s)", True)
    except Exception as e:
        check(f"{path}: nbclient runs it through the kernel", False, str(e)[:2000])
        return
    kernel_cells = [c for c in again.cells if c.cell_type == "code"]
    for i, (r, k) in enumerate(zip(runner_cells, kernel_cells)):
        a, b = normalized(r.outputs), normalized(k.outputs)
        same = a == b and r.execution_count == k.execution_count
        check(f"{path}: cell {i + 1} (In[{r.execution_count}]) same outputs from runner and kernel", same,
              "" if same else f"counts {r.execution_count}/{k.execution_count}; " + first_difference(a, b))
    check(f"{path}: kernel copied language_info", again.metadata.get("language_info", {}).get("name") == "lua")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cwd", required=True)
    ap.add_argument("--kernel", default="tycho")
    ap.add_argument("notebooks", nargs="+")
    args = ap.parse_args()
    for path in args.notebooks:
        try:
            check_notebook(path, args.cwd, args.kernel)
        except Exception:
            traceback.print_exc()
            check(f"{path}: no exception", False)
    print(f"{RESULTS['passed']} passed, {RESULTS['failed']} failed")
    sys.exit(1 if RESULTS["failed"] else 0)


if __name__ == "__main__":
    main()

"""matmul_torch.py: torch.matmul on the cases of matmul.lua (same method and output format).
    python3 Scripts/bench/matmul_torch.py [quick] [threads=1,2]
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_common as B  # noqa: E402
import torch  # noqa: E402

CASES = [("256", 1, 256), ("512", 1, 512), ("1024", 1, 1024), ("2048", 1, 2048), ("16x256", 16, 256)]


def main():
    opts = B.options(sys.argv[1:])
    cases = [c for c in CASES if not (opts["quick"] and c[2] == 2048)]
    torch.manual_seed(1)
    with torch.inference_mode():
        for th in opts["threads"]:
            torch.set_num_threads(th)
            for name, batch, n in cases:
                shape = (n, n) if batch == 1 else (batch, n, n)
                a, b = torch.randn(shape), torch.randn(shape)
                flops = 2 * batch * n ** 3
                med, lo, hi = B.measure(lambda: torch.matmul(a, b))
                B.report("matmul", "torch", name, th, med, lo, hi, lambda s: flops / s / 1e9, "GFLOP/s")


if __name__ == "__main__":
    main()

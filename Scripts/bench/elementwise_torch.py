"""elementwise_torch.py: the operations of elementwise.lua in PyTorch (same sizes, method and output format).
    python3 Scripts/bench/elementwise_torch.py [quick] [threads=1,2]
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_common as B  # noqa: E402
import torch  # noqa: E402

M = 1024
OPS = [
    ("add", 12, lambda x, y, row: x + y),
    ("mul", 12, lambda x, y, row: x * y),
    ("exp", 8, lambda x, y, row: x.exp()),
    ("gelu", 8, lambda x, y, row: torch.nn.functional.gelu(x)),
    ("sigmoid", 8, lambda x, y, row: x.sigmoid()),
    ("badd", 8, lambda x, y, row: x + row),
    ("sum", 4, lambda x, y, row: x.sum()),
    ("softmax", 8, lambda x, y, row: x.softmax(-1)),
]


def main():
    opts = B.options(sys.argv[1:])
    sizes = [1 << 20, 1 << 24] if opts["quick"] else [1 << 20, 1 << 22, 1 << 24]
    torch.manual_seed(1)
    with torch.inference_mode():
        for th in opts["threads"]:
            torch.set_num_threads(th)
            for n in sizes:
                x, y, row = torch.randn(n // M, M), torch.randn(n // M, M), torch.randn(M)
                for name, nbytes, f in OPS:
                    med, lo, hi = B.measure(lambda: f(x, y, row))
                    B.report("elementwise", "torch", f"{name}/{n >> 20}M", th, med, lo, hi,
                             lambda s: nbytes * n / s / 1e9, "GB/s", {"ns_per_elem": f"{med / n * 1e9:.3f}"})


if __name__ == "__main__":
    main()

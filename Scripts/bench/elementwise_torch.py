"""elementwise_torch.py: the operations of elementwise.lua in PyTorch (same sizes, method and output format).
    python3 Scripts/bench/elementwise_torch.py [quick] [threads=1,2] [ops=exp,gelu] [sizes=1,4]
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_common as B  # noqa: E402
import torch  # noqa: E402

M = 1024
F = torch.nn.functional
OPS = [
    ("add", 12, lambda x, y, row, pos: x + y),
    ("mul", 12, lambda x, y, row, pos: x * y),
    ("exp", 8, lambda x, y, row, pos: x.exp()),
    ("log", 8, lambda x, y, row, pos: pos.log()),
    ("tanh", 8, lambda x, y, row, pos: x.tanh()),
    ("sigmoid", 8, lambda x, y, row, pos: x.sigmoid()),
    ("silu", 8, lambda x, y, row, pos: F.silu(x)),
    ("gelu", 8, lambda x, y, row, pos: F.gelu(x)),
    ("gelu_tanh", 8, lambda x, y, row, pos: F.gelu(x, approximate="tanh")),
    ("badd", 8, lambda x, y, row, pos: x + row),
    ("sum", 4, lambda x, y, row, pos: x.sum()),
    ("softmax", 8, lambda x, y, row, pos: x.softmax(-1)),
    ("log_softmax", 8, lambda x, y, row, pos: x.log_softmax(-1)),
    ("logsumexp", 4, lambda x, y, row, pos: x.logsumexp(-1)),
]


def main():
    opts = B.options(sys.argv[1:])
    sizes = opts["sizes"] or ([1 << 20, 1 << 24] if opts["quick"] else [1 << 20, 1 << 22, 1 << 24])
    torch.manual_seed(1)
    with torch.inference_mode():
        for th in opts["threads"]:
            torch.set_num_threads(th)
            for n in sizes:
                x, y, row = torch.randn(n // M, M), torch.randn(n // M, M), torch.randn(M)
                pos = x.abs() + 0.01
                for name, nbytes, f in OPS:
                    if opts["ops"] is not None and name not in opts["ops"]:
                        continue
                    med, lo, hi = B.measure(lambda: f(x, y, row, pos))
                    B.report("elementwise", "torch", f"{name}/{n >> 20}M", th, med, lo, hi,
                             lambda s: nbytes * n / s / 1e9, "GB/s", {"ns_per_elem": f"{med / n * 1e9:.3f}"})


if __name__ == "__main__":
    main()

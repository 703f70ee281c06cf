#!/usr/bin/env python3
"""shuffle_order.py: the row order data.batches gives for a seed, computed independently of Tycho.

Reimplements Tycho's generator (splitmix64 seeding, xoshiro256**, Lemire's unbiased bounded draw; see
Sources/TychoTensor/Random.swift) and the Fisher-Yates shuffle of Sources/TychoText/BatchPlan.swift, and prints
the first rows (1-based) of the shuffled order. Tests/lua/data.lua pins its output for seed 1 and 100 rows:

    python3 Tests/Fixtures/shuffle_order.py 1 100 10   ->   56,10,87,26,92,79,34,47,95,82
"""
import sys

M = (1 << 64) - 1


def rotl(x, k):
    return ((x << k) | (x >> (64 - k))) & M


class Generator:
    def __init__(self, seed):
        x, s = seed & M, []
        for _ in range(4):
            x = (x + 0x9E3779B97F4A7C15) & M
            z = x
            z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M
            z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M
            s.append(z ^ (z >> 31))
        self.s = s

    def next(self):
        s0, s1, s2, s3 = self.s
        result = (rotl((s1 * 5) & M, 7) * 9) & M
        t = (s1 << 17) & M
        s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3; s2 ^= t; s3 = rotl(s3, 45)
        self.s = [s0, s1, s2, s3]
        return result

    def below(self, bound):
        m = self.next() * bound
        if m & M < bound:
            threshold = ((1 << 64) - bound) % bound
            while m & M < threshold:
                m = self.next() * bound
        return m >> 64


def shuffled(count, seed):
    g, order = Generator(seed), list(range(count))
    for i in range(count - 1, 0, -1):
        j = g.below(i + 1)
        order[i], order[j] = order[j], order[i]
    return order


if __name__ == "__main__":
    seed, count, shown = (int(a) for a in sys.argv[1:4]) if len(sys.argv) > 3 else (1, 100, 10)
    print(",".join(str(k + 1) for k in shuffled(count, seed)[:shown]))

// RandomTests.swift: the xoshiro256** generator (Random.swift): pinned sequences and distributions.
//
// The pinned values come from an independent Python transcription of splitmix64 seeding and xoshiro256**;
// they hold on every machine, which is what `tensor.manual_seed` promises.

import Testing
import TychoTensor

@Suite struct RandomTests {
    @Test func pinnedSequences() {
        var g0 = RandomGenerator(seed: 0)
        #expect((0..<4).map { _ in g0.next() } ==
                [0x99ec_5f36_cb75_f2b4, 0xbf6e_1f78_4956_452a, 0x1a5f_849d_4933_e6e0, 0x6aa5_94f1_262d_2d2c])
        var g42 = RandomGenerator(seed: 42)
        #expect((0..<4).map { _ in g42.next() } ==
                [0x1578_0b2e_0c2e_c716, 0x6104_d986_6d11_3a7e, 0xae17_5332_39e4_99a1, 0xecb8_ad47_03b3_60a1])
        var u = RandomGenerator(seed: 42)
        #expect((0..<3).map { _ in u.nextUniform() } == [0.08386296033859253, 0.37898021936416626, 0.6800433993339539])
    }

    @Test func sameSeedSameNumbers() {
        var a = RandomGenerator(seed: 7), b = RandomGenerator(seed: 7), c = RandomGenerator(seed: 8)
        for _ in 0..<1000 { #expect(a.next() == b.next()) }
        var d = RandomGenerator(seed: 7)
        #expect((0..<8).map { _ in d.next() } != (0..<8).map { _ in c.next() })
    }

    @Test func uniform() {
        var g = RandomGenerator(seed: 1)
        let n = 100_000
        var sum = 0.0, lo: Float = 1, hi: Float = 0
        for _ in 0..<n {
            let u = g.nextUniform()
            sum += Double(u); lo = min(lo, u); hi = max(hi, u)
        }
        #expect(lo >= 0 && hi < 1)
        #expect(abs(sum / Double(n) - 0.5) < 0.005)
        for _ in 0..<10_000 {
            let v = g.nextOpenUniformDouble()
            #expect(v > 0 && v < 1)
        }
    }

    @Test func normals() {
        var g = RandomGenerator(seed: 2)
        let pairs = 50_000
        var sum = 0.0, sq = 0.0, cross = 0.0
        for _ in 0..<pairs {
            let (z0, z1) = g.nextNormalPair()
            sum += z0 + z1; sq += z0 * z0 + z1 * z1; cross += z0 * z1
        }
        let n = Double(2 * pairs)
        #expect(abs(sum / n) < 0.02)
        #expect(abs(sq / n - 1) < 0.02)
        #expect(abs(cross / Double(pairs)) < 0.03, "the two values of a pair are uncorrelated")
    }

    @Test func integersBelowABound() {
        var g = RandomGenerator(seed: 3)
        var counts = [Int](repeating: 0, count: 6)
        for _ in 0..<60_000 { counts[Int(g.nextInt(below: 6))] += 1 }
        for c in counts { #expect(abs(c - 10_000) < 600, "counts \(counts)") }
        for _ in 0..<1000 { #expect(g.nextInt(below: 1) == 0) }
        let big: UInt64 = (1 << 63) + 12345
        for _ in 0..<1000 { #expect(g.nextInt(below: big) < big) }
    }
}

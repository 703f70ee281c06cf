// ReferenceLogProbsTests.swift: reference log-probs computed in batches without gradients, cached on disk by
// (weights, rows, tokenizer, settings, tokens), reused (no forward pass) and invalidated; TR-DPO syncing
// against its float32 formula. The agreement with TRL is checked by Tests/lua/preferences.lua.

import Foundation
import Testing
import TychoNN
import TychoTensor
import TychoText
@testable import TychoTrain

@Suite struct ReferenceLogProbsTests {
    static func model(seed: UInt64) throws -> GPT2 {
        var g = RandomGenerator(seed: seed)
        return try GPT2(GPT2Config(vocab: 260, ctx: 64, dim: 16, layers: 1, heads: 2), using: &g)
    }

    static func data(_ rows: [(String, String, String)], maxLength: Int? = 1024) throws -> PreferenceData {
        var o = PreferenceOptions()
        o.eosToken = "<|endoftext|>"
        o.maxLength = maxLength
        let values = rows.map { JSONValue.object([("prompt", .string($0.0)), ("chosen", .string($0.1)), ("rejected", .string($0.2))]) }
        return try PreferenceData(rows: values, places: rows.indices.map { "row \($0 + 1)" },
                                  tokenizer: try Tokenizer.bytes(specialTokens: ["<|endoftext|>"]), options: o, source: "rows")
    }

    static let rows = [("Q: 1+1?", " 2", " 3"), ("Name a colour.", " blue", " seven"), ("Hi", " hello there", " no"),
                       ("Say yes", " yes", " yes")]

    static func temporaryDirectory() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("tycho-ref-\(UUID().uuidString)").path
    }

    @Test func computedInBatchesLikeLogprobs() throws {
        let m = try Self.model(seed: 1)
        let d = try Self.data(Self.rows)
        let (c, r, passes) = try ReferenceCache.compute(model: m, data: d, batchSize: 3)
        #expect(passes == 2 && c.count == 4 && r.count == 4)
        for i in 0..<d.count {
            let b = d.batch([i])
            let lp = try m.logprobs(Tensor(shape: [2, b.length], values: b.ids), mask: Tensor(shape: [2, b.length], values: b.mask)).toArray()
            #expect(Swift.abs(lp[0] - c[i]) < 1e-4 && Swift.abs(lp[1] - r[i]) < 1e-4, "pair \(i)")
        }
        #expect(c[3] == r[3], "identical completions, identical log-probs")
        #expect(m.isTraining, "the mode is restored")
    }

    @Test func cachedOnceThenRead() throws {
        let dir = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let m = try Self.model(seed: 2)
        let d = try Self.data(Self.rows)
        let first = try ReferenceCache.logProbs(model: m, data: d, cacheDir: dir, batchSize: 2)
        #expect(!first.cached && first.forwardPasses == 2)
        let path = try #require(first.path)
        #expect(FileManager.default.fileExists(atPath: path))
        let second = try ReferenceCache.logProbs(model: try Self.model(seed: 2), data: try Self.data(Self.rows), cacheDir: dir, batchSize: 4)
        #expect(second.cached && second.forwardPasses == 0 && second.chosen == first.chosen && second.rejected == first.rejected)
        let metadata = try SafeTensors.load(path: path).metadata
        let weights = try ReferenceCache.weightsHash(m)
        #expect(metadata["key"] == first.key && metadata["weights"] == weights)
        #expect(metadata["rows"] == d.rowsHash && metadata["tokens"] == d.tokensHash && metadata["settings"] == d.options.settingsDescription)
        // each key part changing misses
        let other = try ReferenceCache.logProbs(model: try Self.model(seed: 3), data: d, cacheDir: dir, batchSize: 2)
        #expect(!other.cached && other.path != path, "weights")
        let shorter = try ReferenceCache.logProbs(model: m, data: try Self.data(Self.rows, maxLength: 9), cacheDir: dir, batchSize: 2)
        #expect(!shorter.cached && shorter.path != path, "max_length")
        let fewer = try ReferenceCache.logProbs(model: m, data: try Self.data(Array(Self.rows.prefix(3))), cacheDir: dir, batchSize: 2)
        #expect(!fewer.cached && fewer.path != path, "rows")
        // a damaged file is recomputed
        try Data("junk".utf8).write(to: URL(fileURLWithPath: path))
        let again = try ReferenceCache.logProbs(model: m, data: d, cacheDir: dir, batchSize: 2)
        #expect(!again.cached && again.chosen == first.chosen)
    }

    @Test func weightsHashSeesEveryParameter() throws {
        let m = try Self.model(seed: 4)
        let h = try ReferenceCache.weightsHash(m)
        let same = try ReferenceCache.weightsHash(try Self.model(seed: 4))
        #expect(h == same)
        let (_, last) = try #require(m.namedParameters().last)
        last.basePointer[0] += 1e-6
        let moved = try ReferenceCache.weightsHash(m)
        #expect(h != moved)
    }

    @Test func syncIsTRLsFloatFormula() throws {
        let ref = try Self.model(seed: 5), policy = try Self.model(seed: 6)
        let before = ref.namedParameters().map { $0.1.toArray() }
        try ReferenceSync.sync(reference: ref, policy: policy, alpha: 0.6)
        let scale = Float(1 - 0.6), alpha = Float(0.6)
        for (k, ((_, r), (_, p))) in zip(ref.namedParameters(), policy.namedParameters()).enumerated() {
            let want = zip(before[k], p.toArray()).map { (b, q) in (b * scale).addingProduct(q, alpha) }
            #expect(r.toArray() == want)
        }
        let copy = try Self.model(seed: 5)
        try syncReference(policy: policy, reference: copy, alpha: 0.6)
        #expect(copy.namedParameters().map { $0.1.toArray() } == ref.namedParameters().map { $0.1.toArray() }, "the free function")
        let unchanged = ref.namedParameters().map { $0.1.toArray() }
        var g = RandomGenerator(seed: 7)
        let small = try GPT2(GPT2Config(vocab: 260, ctx: 64, dim: 8, layers: 1, heads: 2), using: &g)
        #expect(throws: TensorError.self) { try ReferenceSync.sync(reference: ref, policy: small, alpha: 0.5) }
        #expect(throws: TensorError.self) { try ReferenceSync.sync(reference: ref, policy: policy, alpha: 1.5) }
        #expect(ref.namedParameters().map { $0.1.toArray() } == unchanged, "a refused sync changes nothing")
    }
}

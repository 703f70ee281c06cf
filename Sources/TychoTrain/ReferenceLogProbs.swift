// ReferenceLogProbs.swift: the reference model's log-probs of every preference pair, computed once and cached on
// disk (TRL's precompute_ref_log_probs, with a cache that survives the run).
//
// The reference pass runs without gradients and with the model in evaluation mode (no dropout), in batches of
// pairs in TRL's concatenated layout (one forward pass of 2B sequences per batch), and gives per pair the summed
// completion log-prob of chosen and of rejected: exactly what `m:logprobs(ids, mask)` gives for a batch.
//
// The cache file `<dir>/ref_logps-<key>.safetensors` holds `chosen` [N] and `rejected` [N] (float32, N pairs in
// data-set order) and, as metadata, the key and each of its parts. The key is the SHA-256 of:
//   weights    SHA-256 of the reference's parameters (names, shapes, float32 bytes, sorted by name)
//   rows       SHA-256 of the data rows (PreferenceData.rowsHash)
//   tokenizer  SHA-256 of the tokenizer.json (PreferenceData.tokenizerHash)
//   settings   max_length, max_prompt_length, max_completion_length, truncation, EOS text, chat template
//   tokens     SHA-256 of every pair's token ids with the settings (what the model is shown)
// and the cache format's version. Any change gives another file name, so a changed part is never read (old files
// stay until removed). A file whose metadata does not match its name, or that cannot be read, is recomputed
// and replaced. Files are written atomically (SafeTensors.save). Nothing here knows of Lua.

import Foundation
import TychoNN
import TychoTensor
import TychoText

public struct ReferenceLogProbs {
    /// Per pair, in data-set order: the reference's summed log-prob of the chosen completion.
    public let chosen: [Float]
    public let rejected: [Float]
    /// True when read from the cache (no forward pass ran).
    public let cached: Bool
    /// Forward passes run (one per batch of pairs); 0 when cached.
    public let forwardPasses: Int
    /// The cache file, or nil without a cache directory.
    public let path: String?
    /// The cache key (64 hex digits).
    public let key: String
    /// The key's parts by name (weights, rows, tokenizer, settings, tokens, format, model_type, pairs).
    public let parts: [(String, String)]
}

public enum ReferenceCache {
    /// Changes when the file layout or the computation changes, so older files are not reused.
    public static let formatVersion = "tycho-reference-logprobs-1"

    /// SHA-256 over the parameters sorted by name: each name, shape and float32 bytes (TRL's `hash_module` hashes
    /// the sorted state dict the same way, with dtypes instead of shapes).
    public static func weightsHash(_ model: Module) throws -> String {
        var h = ContentHasher()
        let named = model.namedParameters().sorted { $0.0.utf8.lexicographicallyPrecedes($1.0.utf8) }
        h.update(int: named.count)
        try GradMode.with(enabled: false) {
            for (name, t) in named {
                h.update(int: name.utf8.count)
                h.update(name)
                h.update(int: t.rank)
                for s in t.shape { h.update(int: s) }
                let c = try t.contiguous()
                h.update(UnsafeRawBufferPointer(start: c.basePointer, count: c.count * MemoryLayout<Float>.size))
            }
        }
        return h.hexDigest()
    }

    /// The parts of the cache key for `model` on `data`, and the key.
    public static func key(model: LanguageModel, data: PreferenceData) throws -> (key: String, parts: [(String, String)]) {
        let parts: [(String, String)] = [
            ("format", formatVersion),
            ("model_type", model.modelType),
            ("weights", try weightsHash(model)),
            ("rows", data.rowsHash),
            ("tokenizer", data.tokenizerHash),
            ("settings", data.options.settingsDescription),
            ("tokens", data.tokensHash),
            ("pairs", String(data.count)),
        ]
        var h = ContentHasher()
        for (k, v) in parts {
            h.update(int: k.utf8.count); h.update(k)
            h.update(int: v.utf8.count); h.update(v)
        }
        return (h.hexDigest(), parts)
    }

    /// The reference log-probs of every pair, in batches of `batchSize` pairs, without gradients and in
    /// evaluation mode (the model's mode is restored). `progress(done, total)` is called after each batch.
    /// - Throws: `TensorError` naming the pairs of a batch the model cannot take (too long, ids out of range).
    public static func compute(model: LanguageModel, data: PreferenceData, batchSize: Int,
                               progress: ((Int, Int) -> Void)? = nil) throws -> (chosen: [Float], rejected: [Float], passes: Int) {
        precondition(batchSize >= 1, "ReferenceCache.compute: batch size must be at least 1")  // checked by callers
        let wasTraining = model.isTraining
        model.setTraining(false)
        defer { model.setTraining(wasTraining) }
        var chosen: [Float] = [], rejected: [Float] = []
        chosen.reserveCapacity(data.count)
        rejected.reserveCapacity(data.count)
        var passes = 0
        var start = 0
        try GradMode.with(enabled: false) {
            while start < data.count {
                let end = Swift.min(start + batchSize, data.count)
                let b = data.batch(Array(start..<end))
                let values: [Float]
                do {
                    let ids = try Tensor(shape: [2 * b.size, b.length], values: b.ids)
                    let mask = try Tensor(shape: [2 * b.size, b.length], values: b.mask)
                    values = try model.logprobs(ids, mask: mask).toArray()  // (2B): chosen then rejected
                } catch let e as TensorError {
                    throw TensorError("pairs \(start + 1)..\(end) (rows \(b.rows.first.map { $0 + 1 } ?? 0)..\(b.rows.last.map { $0 + 1 } ?? 0)): \(e.message)")
                }
                passes += 1
                chosen += values[0..<b.size]
                rejected += values[b.size..<(2 * b.size)]
                start = end
                progress?(start, data.count)
            }
        }
        return (chosen, rejected, passes)
    }

    /// The cache file for `key` in `dir`.
    public static func path(dir: String, key: String) -> String {
        (dir.hasSuffix("/") ? dir : dir + "/") + "ref_logps-\(key.prefix(32)).safetensors"
    }

    /// Reads the cached log-probs for `key`, or nil when there is no file or it does not match.
    static func read(path: String, key: String, count: Int) -> (chosen: [Float], rejected: [Float])? {
        guard FileManager.default.fileExists(atPath: path),
              let (tensors, metadata) = try? SafeTensors.load(path: path),
              metadata["key"] == key,
              let c = tensors["chosen"], let r = tensors["rejected"],
              c.shape == [count], r.shape == [count] else { return nil }
        return (c.toArray(), r.toArray())
    }

    /// The reference log-probs of `data` under `model`: read from `cacheDir` when a file with the same key is
    /// there, else computed (and written there when `cacheDir` is given).
    /// - Throws: `TensorError` when the directory cannot be made or written, or the model cannot take a batch.
    public static func logProbs(model: LanguageModel, data: PreferenceData, cacheDir: String?, batchSize: Int,
                                progress: ((Int, Int) -> Void)? = nil) throws -> ReferenceLogProbs {
        let (key, parts) = try self.key(model: model, data: data)
        var file: String? = nil
        if let dir = cacheDir {
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: dir, isDirectory: &isDir) {
                guard isDir.boolValue else { throw TensorError("cache_dir \(dir) is a file, not a directory") }
            } else {
                do {
                    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
                } catch {
                    throw TensorError("cannot create cache_dir \(dir): \((error as NSError).localizedDescription)")
                }
            }
            let p = path(dir: dir, key: key)
            file = p
            if let (c, r) = read(path: p, key: key, count: data.count) {
                return ReferenceLogProbs(chosen: c, rejected: r, cached: true, forwardPasses: 0, path: p, key: key, parts: parts)
            }
        }
        let (c, r, passes) = try compute(model: model, data: data, batchSize: batchSize, progress: progress)
        if let p = file {
            var metadata = Dictionary(uniqueKeysWithValues: parts)
            metadata["key"] = key
            try SafeTensors.save([(name: "chosen", tensor: try Tensor(shape: [c.count], values: c)),
                                  (name: "rejected", tensor: try Tensor(shape: [r.count], values: r))],
                                 metadata: metadata, to: p)
        }
        return ReferenceLogProbs(chosen: c, rejected: r, cached: false, forwardPasses: passes, path: file, key: key, parts: parts)
    }
}

// HFCheckpoint.swift: Hugging Face model folders: config.json plus model.safetensors, or shards listed by
// model.safetensors.index.json. Reads GPT-2 and Llama-family (llama, mistral, qwen2) folders; writes the same
// layout (F32, atomically, config.json last) so that `transformers` loads what Tycho saves.

import Foundation
import TychoTensor

public enum HFCheckpoint {
    // MARK: reading

    /// Loads the model in folder `dir`.
    public static func load(_ dir: String) throws -> LanguageModel {
        let config = try readJSON(dir + "/config.json", what: "config.json")
        let modelType = config["model_type"] as? String ?? ""
        guard ["gpt2", "llama", "mistral", "qwen2"].contains(modelType) else {
            throw TensorError("\(dir)/config.json has model_type '\(modelType)'; Tycho reads gpt2, llama, mistral and qwen2")
        }
        let tensors = try readWeights(dir)
        var g = RandomGenerator(seed: 0)  // the random initial values are overwritten by the loaded ones
        let model: LanguageModel
        switch modelType {
        case "gpt2":
            let model2 = try GPT2(try gpt2Config(config), using: &g)
            try assign(model2, tensors: gpt2Names(tensors), dir: dir, ignored: { $0.hasSuffix(".attn.bias") || $0.hasSuffix(".attn.masked_bias") || $0 == "lm_head.weight" })
            model = model2
        case "llama", "mistral", "qwen2":
            let c = try llamaConfig(config, modelType: modelType)
            let model2 = try Llama(c, using: &g)
            try assign(model2, tensors: tensors, dir: dir, ignored: { $0.hasSuffix("rotary_emb.inv_freq") || (c.tie && $0 == "lm_head.weight") })
            model = model2
        default:
            throw TensorError("\(dir)/config.json has model_type '\(modelType)'; Tycho reads gpt2, llama, mistral and qwen2")
        }
        return model
    }

    static func readJSON(_ path: String, what: String) throws -> [String: Any] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw TensorError("cannot read \(path)")
        }
        let object: Any
        do { object = try JSONSerialization.jsonObject(with: data) } catch {
            throw TensorError("\(path) is not valid JSON (\(error.localizedDescription))")
        }
        guard let dict = object as? [String: Any] else { throw TensorError("\(path) is not a JSON object") }
        return dict
    }

    /// Every tensor of model.safetensors, or of the shards named by model.safetensors.index.json.
    static func readWeights(_ dir: String) throws -> [String: Tensor] {
        let fm = FileManager.default
        let single = dir + "/model.safetensors", index = dir + "/model.safetensors.index.json"
        if fm.fileExists(atPath: single) { return try SafeTensors.load(path: single).tensors }
        guard fm.fileExists(atPath: index) else {
            throw TensorError("\(dir) has neither model.safetensors nor model.safetensors.index.json")
        }
        let json = try readJSON(index, what: "index")
        guard let map = json["weight_map"] as? [String: String] else {
            throw TensorError("\(index) has no weight_map")
        }
        var out: [String: Tensor] = [:]
        for file in Set(map.values).sorted() {
            guard !file.contains("/"), !file.hasPrefix(".") else { throw TensorError("\(index) names a shard outside the folder: \(file)") }
            let shard = try SafeTensors.load(path: dir + "/" + file).tensors
            for (name, t) in shard {
                guard map[name] == file else { continue }
                out[name] = t
            }
        }
        let absent = map.keys.filter { out[$0] == nil }.sorted()
        if !absent.isEmpty {
            throw TensorError("\(index) lists tensors that its shards do not hold: \(absent.prefix(5).joined(separator: ", "))")
        }
        return out
    }

    /// GPT-2 files from the original hub checkpoint have no `transformer.` prefix; add it.
    static func gpt2Names(_ tensors: [String: Tensor]) -> [String: Tensor] {
        var out: [String: Tensor] = [:]
        for (name, t) in tensors {
            if name.hasPrefix("transformer.") || name.hasPrefix("lm_head.") { out[name] = t } else { out["transformer." + name] = t }
        }
        return out
    }

    /// Copies the named tensors into the model's parameters; every parameter must be present with its size, and
    /// every tensor must be used (or ignorable).
    static func assign(_ model: LanguageModel, tensors: [String: Tensor], dir: String, ignored: (String) -> Bool) throws {
        let params = Dictionary(uniqueKeysWithValues: model.namedParameters())
        let unexpected = tensors.keys.filter { params[$0] == nil && !ignored($0) }.sorted()
        if !unexpected.isEmpty {
            throw TensorError("\(dir) holds tensors this \(model.modelType) model does not have: \(unexpected.prefix(5).joined(separator: ", "))\(unexpected.count > 5 ? ", ..." : "")")
        }
        do { try model.loadParameters(tensors) } catch let e as TensorError { throw TensorError("\(dir): \(e.message)") }
    }

    /// JSON numbers come as NSNumber; on Linux a 0 or 1 also casts to Bool, so tell booleans by their type code.
    static func number(_ v: Any?) -> NSNumber? {
        guard let n = v as? NSNumber else { return nil }
        let code = String(cString: n.objCType)
        return code == "c" || code == "B" ? nil : n
    }

    static func bool(_ v: Any?) -> Bool? {
        guard let n = v as? NSNumber else { return nil }
        let code = String(cString: n.objCType)
        return code == "c" || code == "B" ? n.boolValue : nil
    }

    static func int(_ c: [String: Any], _ keys: [String], default d: Int? = nil) throws -> Int {
        for k in keys {
            if let n = number(c[k]) {
                let v = n.doubleValue
                guard v == v.rounded(), Swift.abs(v) < 1e12 else { throw TensorError("config.json field \(k) must be an integer, got \(v)") }
                return Int(v)
            }
        }
        if let d { return d }
        throw TensorError("config.json lacks \(keys.joined(separator: " / "))")
    }

    static func double(_ c: [String: Any], _ key: String, default d: Double) throws -> Double {
        guard let v = c[key], !(v is NSNull) else { return d }
        guard let n = number(v) else { throw TensorError("config.json field \(key) must be a number") }
        return n.doubleValue
    }

    static func optionalInt(_ c: [String: Any], _ key: String) -> Int? {
        if let n = number(c[key]) { return n.intValue }
        if let list = c[key] as? [NSNumber] { return list.first?.intValue }  // eos_token_id may be a list
        return nil
    }

    static func gpt2Config(_ c: [String: Any]) throws -> GPT2Config {
        var g = GPT2Config(vocab: try int(c, ["vocab_size"]), ctx: try int(c, ["n_positions", "max_position_embeddings", "n_ctx"]),
                           dim: try int(c, ["n_embd", "hidden_size"]), layers: try int(c, ["n_layer", "num_hidden_layers"]),
                           heads: try int(c, ["n_head", "num_attention_heads"]))
        if let inner = number(c["n_inner"]) { g.inner = inner.intValue }
        g.eps = Float(try double(c, "layer_norm_epsilon", default: 1e-5))
        g.dropout = Float(try double(c, "resid_pdrop", default: 0))
        let act = c["activation_function"] as? String ?? "gelu_new"
        switch act {
        case "gelu_new", "gelu_pytorch_tanh", "gelu_fast": g.activation = .geluTanh
        case "gelu": g.activation = .gelu
        case "relu": g.activation = .relu
        case "silu", "swish": g.activation = .silu
        case "tanh": g.activation = .tanh
        default: throw TensorError("GPT-2 activation_function '\(act)' is not supported")
        }
        if bool(c["scale_attn_by_inverse_layer_idx"]) == true {
            throw TensorError("scale_attn_by_inverse_layer_idx is not supported")
        }
        if let tie = bool(c["tie_word_embeddings"]), !tie { throw TensorError("GPT-2 with untied embeddings is not supported") }
        g.bosTokenID = optionalInt(c, "bos_token_id")
        g.eosTokenID = optionalInt(c, "eos_token_id")
        try g.validate()
        return g
    }

    static func llamaConfig(_ c: [String: Any], modelType: String) throws -> LlamaConfig {
        let heads = try int(c, ["num_attention_heads"])
        var l = LlamaConfig(vocab: try int(c, ["vocab_size"]), ctx: try int(c, ["max_position_embeddings"], default: 2048),
                            dim: try int(c, ["hidden_size"]), layers: try int(c, ["num_hidden_layers"]), heads: heads,
                            kvHeads: try int(c, ["num_key_value_heads"], default: heads), hidden: try int(c, ["intermediate_size"]))
        l.modelType = modelType
        if let hd = number(c["head_dim"]) { l.headDim = hd.intValue }
        // transformers 5 writes rope_parameters {rope_theta, rope_type, ...}; 4.x wrote rope_theta and rope_scaling.
        let ropeParameters = c["rope_parameters"] as? [String: Any]
        l.ropeTheta = try double(ropeParameters ?? [:], "rope_theta", default: try double(c, "rope_theta", default: 10000))
        l.normEps = Float(try double(c, "rms_norm_eps", default: 1e-6))
        l.tie = bool(c["tie_word_embeddings"]) ?? false
        l.qkvBias = modelType == "qwen2" ? true : (bool(c["attention_bias"]) ?? false)
        l.mlpBias = bool(c["mlp_bias"]) ?? false
        if let act = c["hidden_act"] as? String, act != "silu" {
            throw TensorError("hidden_act '\(act)' is not supported (Llama-family models use silu)")
        }
        if let scaling = (c["rope_scaling"] as? [String: Any]) ?? ropeParameters {
            let kind = (scaling["rope_type"] ?? scaling["type"]) as? String ?? ""
            switch kind {
            case "default", "": break
            case "llama3":
                l.ropeScaling = RopeScaling(factor: try double(scaling, "factor", default: 8),
                                            lowFreqFactor: try double(scaling, "low_freq_factor", default: 1),
                                            highFreqFactor: try double(scaling, "high_freq_factor", default: 4),
                                            originalMaxPositions: try double(scaling, "original_max_position_embeddings", default: 8192))
            default: throw TensorError("rope_scaling type '\(kind)' is not supported (default and llama3 are)")
            }
        }
        if let window = number(c["sliding_window"]), bool(c["use_sliding_window"]) == true, window.intValue < l.ctx {
            throw TensorError("sliding-window attention is not supported")
        }
        l.bosTokenID = optionalInt(c, "bos_token_id")
        l.eosTokenID = optionalInt(c, "eos_token_id")
        try l.validate()
        return l
    }

    // MARK: writing

    /// Writes config.json and model.safetensors (or shards of at most `maxShardBytes` with an index) into `dir`.
    public static func save(_ model: LanguageModel, to dir: String, maxShardBytes: Int? = nil) throws {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        if fm.fileExists(atPath: dir, isDirectory: &isDir) {
            guard isDir.boolValue else { throw TensorError("\(dir) exists and is not a folder") }
        } else {
            do { try fm.createDirectory(atPath: dir, withIntermediateDirectories: true) } catch {
                throw TensorError("cannot create \(dir): \(error.localizedDescription)")
            }
        }
        let named = model.namedParameters()
        let total = named.reduce(0) { $0 + $1.1.count * 4 }
        if let limit = maxShardBytes, total > limit {
            var shards: [[(name: String, tensor: Tensor)]] = [[]]
            var size = 0
            for (name, t) in named {
                if size > 0, size + t.count * 4 > limit { shards.append([]); size = 0 }
                shards[shards.count - 1].append((name, t))
                size += t.count * 4
            }
            var map: [String: String] = [:]
            for (i, shard) in shards.enumerated() {
                let file = String(format: "model-%05d-of-%05d.safetensors", i + 1, shards.count)
                try SafeTensors.save(shard, metadata: ["format": "pt"], to: dir + "/" + file)
                for (name, _) in shard { map[name] = file }
            }
            try writeJSON(["metadata": ["total_size": total], "weight_map": map], to: dir + "/model.safetensors.index.json")
            try? fm.removeItem(atPath: dir + "/model.safetensors")
        } else {
            try SafeTensors.save(named.map { (name: $0.0, tensor: $0.1) }, metadata: ["format": "pt"], to: dir + "/model.safetensors")
            try? fm.removeItem(atPath: dir + "/model.safetensors.index.json")
        }
        try writeJSON(model.configJSON(), to: dir + "/config.json")
    }

    static func writeJSON(_ object: [String: Any], to path: String) throws {
        let data: Data
        do { data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys]) } catch {
            throw TensorError("cannot encode \(path): \(error.localizedDescription)")
        }
        try AtomicFile.write(to: path) { sink in try sink.write(Array(data) + [10]) }
    }
}

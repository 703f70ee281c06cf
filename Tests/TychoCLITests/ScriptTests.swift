// ScriptTests.swift: the shipped experiment scripts run end to end (Scripts/sft.lua and Scripts/quickstart.lua in
// their quick modes).

import Foundation
import Testing

@Suite struct ScriptTests {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// The numbers of sft.lua's last line: `RESULT unigram=... start=... trained=... continued=...`.
    static func result(_ stdout: String) -> [String: Double] {
        var out: [String: Double] = [:]
        guard let line = stdout.split(separator: "\n").last(where: { $0.hasPrefix("RESULT ") }) else { return out }
        for field in line.split(separator: " ").dropFirst() {
            let kv = field.split(separator: "=")
            if kv.count == 2, let v = Double(kv[1]) { out[String(kv[0])] = v }
        }
        return out
    }

    @Test func sftTrainsBelowTheUnigramBaselineSavesReloadsAndContinues() throws {
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("tycho-sft-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: out) }
        let script = ScriptTests.repo.appendingPathComponent("Scripts/sft.lua").path
        let r = try TychoProcess.run(["run", script, "quick", "out=\(out.path)"])
        #expect(r.status == 0, "\(r.stderr)")
        let v = ScriptTests.result(r.stdout)
        let unigram = try #require(v["unigram"]), start = try #require(v["start"])
        let trained = try #require(v["trained"]), continued = try #require(v["continued"])
        #expect(start > unigram, "an untrained model is worse than unigram counts")
        #expect(trained < unigram - 0.5, "validation loss \(trained) is not well below the unigram baseline \(unigram)")
        #expect(continued <= trained + 0.05, "training continued after reloading: \(trained) -> \(continued)")
        for file in ["model/config.json", "model/model.safetensors", "tokenizer.json", "optimizer.safetensors"] {
            #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent(file).path), "\(file) written")
        }
        // Same seed, same script: the same numbers.
        let again = try TychoProcess.run(["run", script, "quick", "out=\(out.path)-2"])
        defer { try? FileManager.default.removeItem(atPath: out.path + "-2") }
        #expect(ScriptTests.result(again.stdout) == v, "a second run gives the same numbers")
    }

    /// The numbers quickstart.lua writes to OUT/summary.json (one JSON object).
    static func summary(_ dir: URL) throws -> [String: Any] {
        let data = try Data(contentsOf: dir.appendingPathComponent("summary.json"))
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    @Test func quickstartGainsFromDPOOnItsOwnGradedSamples() throws {
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("tycho-quickstart-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: out) }
        let script = ScriptTests.repo.appendingPathComponent("Scripts/quickstart.lua").path
        let r = try TychoProcess.run(["run", script, "quick", "out=\(out.path)"])
        #expect(r.status == 0, "\(r.stderr)")
        let s = try ScriptTests.summary(out)
        let sft = try #require(s["sft"] as? [String: Any]), dpo = try #require(s["dpo"] as? [String: Any])
        let sftTest = try #require(sft["test_accuracy"] as? Double), dpoTest = try #require(dpo["test_accuracy"] as? Double)
        let sftPairs = try #require(sft["pair_accuracy"] as? Double), dpoPairs = try #require(dpo["pair_accuracy"] as? Double)
        let pairs = try #require(s["pairs"] as? [String: Any])
        let trainPairs = try #require(pairs["train"] as? Int), evalPairs = try #require(pairs["eval"] as? Int)
        // The SFT model is right on part of the held-out problems only, so DPO has room to improve.
        #expect(sftTest > 0.1 && sftTest < 0.9, "SFT greedy accuracy \(sftTest) leaves room for DPO")
        #expect(trainPairs >= 200 && evalPairs >= 20, "pairs from graded samples: \(trainPairs) train, \(evalPairs) eval")
        // The gain: DPO on the model's own graded samples raises held-out greedy accuracy and pair accuracy.
        #expect(dpoTest >= sftTest + 0.05, "held-out greedy accuracy \(sftTest) -> \(dpoTest)")
        #expect(dpoPairs > sftPairs, "held-out pair accuracy \(sftPairs) -> \(dpoPairs)")
        // The rollback: the corrupt reference log-prob made one step non-finite; the trainer rolled back and left
        // the batch's rows out, the poisoned pair among them.
        let rollbacks = try #require(dpo["rollbacks"] as? [String])
        #expect(rollbacks.count == 1 && rollbacks.first?.contains("nan") == true, "\(rollbacks)")
        let skipped = try #require(dpo["skipped_rows"] as? [Int]), poisoned = try #require(dpo["poisoned_pair"] as? Int)
        #expect(skipped.contains(poisoned), "rows left out \(skipped) include the poisoned pair \(poisoned)")
        #expect(r.stdout.contains("rollback: loss is nan at step"), "the rollback is shown")
        // The printed line agrees with the summary.
        let v = ScriptTests.result(r.stdout)
        #expect(v["sft_test"].map { abs($0 - sftTest) < 1e-4 } == true && v["dpo_test"].map { abs($0 - dpoTest) < 1e-4 } == true,
                "RESULT line \(v) matches summary.json")
        for file in ["sft/config.json", "sft/model.safetensors", "sft/tokenizer.json", "dpo/model.safetensors",
                     "pairs_train.jsonl", "pairs_eval.jsonl"] {
            #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent(file).path), "\(file) written")
        }
        // Same seed, same script: the same numbers (everything in summary.json but the timings) and the same pairs.
        let again = try TychoProcess.run(["run", script, "quick", "out=\(out.path)-2"])
        defer { try? FileManager.default.removeItem(atPath: out.path + "-2") }
        #expect(again.status == 0, "\(again.stderr)")
        var first = s, second = try ScriptTests.summary(URL(fileURLWithPath: out.path + "-2"))
        first["seconds"] = nil
        second["seconds"] = nil
        let canonical = { (d: [String: Any]) in String(decoding: try JSONSerialization.data(withJSONObject: d, options: [.sortedKeys]), as: UTF8.self) }
        #expect(try canonical(first) == canonical(second), "a second run gives the same numbers")
        let pairs1 = try Data(contentsOf: out.appendingPathComponent("pairs_train.jsonl"))
        let pairs2 = try Data(contentsOf: URL(fileURLWithPath: out.path + "-2/pairs_train.jsonl"))
        #expect(pairs1 == pairs2, "a second run samples the same pairs")
    }

    @Test func rftRaisesTheValidationReward() throws {
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("tycho-rft-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: out) }
        let script = ScriptTests.repo.appendingPathComponent("Scripts/rft.lua").path
        let r = try TychoProcess.run(["run", script, "quick", "out=\(out.path)"])
        #expect(r.status == 0, "\(r.stderr)")
        let s = try ScriptTests.summary(out)
        let first = try #require(s["valid_reward_first"] as? Double), last = try #require(s["valid_reward_last"] as? Double)
        let sft = try #require(s["sft_test_accuracy"] as? Double), rft = try #require(s["rft_test_accuracy"] as? Double)
        #expect(last >= first + 0.03, "validation reward \(first) -> \(last)")
        #expect(rft > sft, "held-out test accuracy \(sft) -> \(rft)")
        // The run record shows it: valid_reward_mean logged at step 0 and at the end.
        let metrics = (try? String(contentsOf: out.appendingPathComponent("runs/rft/metrics.jsonl"), encoding: .utf8)) ?? ""
        #expect(metrics.split(separator: "\n").filter { $0.contains("valid_reward_mean") }.count >= 2, "\(metrics.prefix(300))")
        #expect(r.stdout.contains("RESULT sft_test="))
    }
}

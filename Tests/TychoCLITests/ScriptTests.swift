// ScriptTests.swift: the shipped experiment scripts run end to end (Scripts/sft.lua in its quick mode).

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
}

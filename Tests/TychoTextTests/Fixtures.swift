// Fixtures.swift: the reference tokenizers and cases written by Tests/Fixtures/gen_tokenizer_fixtures.py.

import Foundation
import Testing
@testable import TychoText

enum Fixtures {
    static let directory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures").appendingPathComponent("tokenizer")

    static func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    struct Expected {
        let ids: [Int], idsSpecial: [Int], decode: String, decodeSkip: String
    }

    struct Case {
        let text: String
        let expected: [String: Expected]
    }

    struct Fuzz {
        let text: String
        let pieces: [String: [String]]
    }

    static let data: [String: Any] = {
        guard let d = FileManager.default.contents(atPath: path("cases.json")),
              let o = try? JSONSerialization.jsonObject(with: d) as? [String: Any] else { return [:] }
        return o
    }()

    static let names = ["gpt2", "llama3"]

    static let cases: [Case] = ((data["cases"] as? [[String: Any]]) ?? []).map { c in
        var e: [String: Expected] = [:]
        for n in names {
            guard let r = c[n] as? [String: Any] else { continue }
            e[n] = Expected(ids: r["ids"] as? [Int] ?? [-1], idsSpecial: r["ids_special"] as? [Int] ?? [-1],
                            decode: r["decode"] as? String ?? "?", decodeSkip: r["decode_skip"] as? String ?? "?")
        }
        return Case(text: c["text"] as? String ?? "?", expected: e)
    }

    static let fuzz: [Fuzz] = ((data["fuzz"] as? [[String: Any]]) ?? []).map { c in
        var p: [String: [String]] = [:]
        for n in names { p[n] = c[n] as? [String] }
        return Fuzz(text: c["text"] as? String ?? "?", pieces: p)
    }

    static func tokenizer(_ name: String) throws -> Tokenizer { try Tokenizer.load(path: path("\(name).json")) }

    /// A fresh temporary directory for files a test writes.
    static func temporaryDirectory() throws -> URL {
        let u = FileManager.default.temporaryDirectory.appendingPathComponent("tycho-text-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: u, withIntermediateDirectories: true)
        return u
    }
}

/// llm.c-style comparison report: the label, the first few values as OK/NOT OK.
func compareIDs(_ label: String, _ got: [Int], _ want: [Int]) -> Bool {
    if got == want { return true }
    var lines = ["\(label): \(got.count) ids vs \(want.count) expected"]
    for i in 0..<min(max(got.count, want.count), 8) {
        let g = i < got.count ? String(got[i]) : "-", w = i < want.count ? String(want[i]) : "-"
        lines.append("  \(i): \(g) \(w) \(g == w ? "OK" : "NOT OK")")
    }
    Issue.record(Comment(rawValue: lines.joined(separator: "\n")))
    return false
}

// RunRecordTests.swift: run records (manifest, fsync'd lines, collisions, resume, reading back), SHA-256 against
// known vectors, git commits read from repository files (branch, packed-refs, detached, work trees), append-only
// files cutting a partial last line, and the plots (well-formed SVG with the expected polyline points; terminal
// chart shape).

import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing
import TychoText
@testable import TychoTrain

func temporaryDirectory(_ tag: String) throws -> String {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("tycho-\(tag)-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url.path
}

func write(_ text: String, _ path: String) throws {
    try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
    try text.write(toFile: path, atomically: true, encoding: .utf8)
}

@Suite struct RunRecordTests {
    @Test func sha256KnownVectors() throws {
        #expect(FileHash.sha256(bytes: Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(FileHash.sha256(bytes: [UInt8]()) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        let dir = try temporaryDirectory("hash")
        // More than one 1 MiB read: a million 'a' is the FIPS 180-2 long vector.
        try write(String(repeating: "a", count: 1_000_000), dir + "/a.txt")
        let (hex, bytes) = try FileHash.sha256(path: dir + "/a.txt")
        #expect(hex == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
        #expect(bytes == 1_000_000)
        #expect(throws: RecordError.self) { try FileHash.sha256(path: dir + "/missing") }
    }

    @Test func gitCommitFromFiles() throws {
        let root = try temporaryDirectory("git")
        let commit = String(repeating: "ab", count: 20), other = String(repeating: "cd", count: 20)
        try write("ref: refs/heads/main\n", root + "/.git/HEAD")
        try write(commit + "\n", root + "/.git/refs/heads/main")
        try write("print(1)\n", root + "/sub/dir/x.lua")
        #expect(GitInfo.find(from: root + "/sub/dir/x.lua") == GitInfo(commit: commit, branch: "main", root: root))
        // packed-refs when there is no loose ref
        try FileManager.default.removeItem(atPath: root + "/.git/refs/heads/main")
        try write("# pack-refs with: peeled fully-peeled sorted\n\(other) refs/heads/main\n^\(commit)\n", root + "/.git/packed-refs")
        #expect(GitInfo.find(from: root)?.commit == other)
        // detached
        try write(commit + "\n", root + "/.git/HEAD")
        #expect(GitInfo.find(from: root) == GitInfo(commit: commit, branch: nil, root: root))
        // a work tree: .git is a file naming its folder, whose commondir holds the refs
        let wt = try temporaryDirectory("worktree")
        try write("gitdir: \(root)/.git/worktrees/wt\n", wt + "/.git")
        try write("ref: refs/heads/feature\n", root + "/.git/worktrees/wt/HEAD")
        try write("../..\n", root + "/.git/worktrees/wt/commondir")
        try write(other + "\n", root + "/.git/refs/heads/feature")
        #expect(GitInfo.find(from: wt) == GitInfo(commit: other, branch: "feature", root: wt))
        // a repository without commits, and none at all
        try write("ref: refs/heads/empty\n", root + "/.git/HEAD")
        #expect(GitInfo.find(from: root) == nil)
    }

    @Test func appendOnlyLinesCutAPartialLastLine() throws {
        let dir = try temporaryDirectory("append")
        let path = dir + "/m.jsonl"
        try write("{\"step\": 1}\n{\"step\": 2}\n{\"ste", path)
        let f = try AppendOnlyLines(path)
        try f.append("{\"step\": 3}")
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "{\"step\": 1}\n{\"step\": 2}\n{\"step\": 3}\n")
        try write("no newline at all", dir + "/n.jsonl")
        _ = try AppendOnlyLines(dir + "/n.jsonl")
        #expect(try String(contentsOfFile: dir + "/n.jsonl", encoding: .utf8) == "")
    }

    @Test func recordWriteAndReadBack() throws {
        let root = try temporaryDirectory("runs")
        var o = RunRecord.Options()
        o.name = "dpo"
        o.root = root
        o.config = .object([("beta", .double(0.1)), ("seed", .int(7))])
        o.tychoVersion = "9.9"
        let r = try RunRecord.start(o)
        #expect(r.name == "dpo" && !r.resumed)
        try r.log(step: 1, [("loss", .double(0.7)), ("rewards/margins", .double(0.1))])
        try r.log(step: 2, [("loss", .number(.nan))])
        try r.log(step: 2, [("loss", .double(0.6))])  // logged again after a rollback: the last line wins
        try r.log(step: 3, [("loss", .double(0.5)), ("rewards/margins", .double(0.3))])
        try r.event(kind: "rollback", [("step", .int(2)), ("to_step", .int(1)), ("cause", .string("loss is nan at step 2"))])
        let second = try RunRecord.start(o)
        #expect(second.name == "dpo-2")
        #expect(throws: RecordError.self) { var p = o; p.resume = true; _ = try RunRecord.start(p) }

        var h = try RunHistory.load(directory: r.directory)
        #expect(h.status == "running")
        #expect(h.manifest["seed"] == .int(7), "seed from config.seed")
        #expect(h.manifest["tycho_version"] == .string("9.9"))
        #expect(h.points.map(\.step) == [1, 2, 3])
        #expect(h.series("loss").map(\.value) == [0.7, 0.6, 0.5])
        #expect(h.last("rewards/margins") == 0.3)
        #expect(h.metricNames == ["loss", "rewards/margins"])
        #expect(h.events(kind: "rollback").count == 1)
        try r.finish()
        h = try RunHistory.load(directory: r.directory)
        #expect(h.status == "finished" && h.endTime != nil)
        #expect(throws: RecordError.self) { try r.log(step: 4, []) }
        // A run whose process died without finishing reads as interrupted.
        var dir3 = ""
        do {
            let third = try RunRecord.start(o)
            dir3 = third.directory
        }  // released without finish: its lock goes, as a killed process's does
        #expect(try RunHistory.load(directory: dir3).status == "interrupted")
        #expect(RunHistory.list(root: root).map(\.name) == ["dpo", "dpo-2", "dpo-3"])
        // Damaged lines are skipped and counted.
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: r.directory + "/metrics.jsonl"))
        handle.seekToEndOfFile()
        handle.write(Data("garbage\n".utf8))
        try handle.close()
        #expect(try RunHistory.load(directory: r.directory).skippedLines == 1)
    }

    @Test func svgPlotIsWellFormedWithOnePointPerFiniteValue() throws {
        let loss = PlotSeries(name: "loss", points: (1...50).map { (Double($0), 1 / Double($0)) } + [(51, .nan)])
        let evalLoss = PlotSeries(name: "eval_loss", points: stride(from: 10, through: 50, by: 10).map { (Double($0), 2 / Double($0)) })
        let margins = PlotSeries(name: "rewards/margins", points: (1...50).map { (Double($0), Double($0) * 0.01 - 0.1) })
        let svg = SVGPlot.render(title: "run <a&b>", panels: [SVGPlot.Panel(title: "loss", series: [loss, evalLoss]),
                                                              SVGPlot.Panel(title: "rewards", series: [margins])],
                                 markers: [(x: 20, label: "rollback: loss is nan")])
        let counts = try SVGCheck.polylinePointCounts(svg)
        #expect(counts == ["loss": 50, "eval_loss": 5, "rewards/margins": 50])
        #expect(svg.contains("run &lt;a&amp;b&gt;"))
        #expect(svg.contains("class=\"rollback\""))
        #expect(svg.contains(">step</text>"), "an x axis label")
        // An empty panel still draws a frame.
        let empty = SVGPlot.render(title: "e", panels: [SVGPlot.Panel(title: "loss", series: [PlotSeries(name: "loss", points: [])])])
        #expect(try SVGCheck.polylinePointCounts(empty) == ["loss": 0])
        #expect(empty.contains("no finite values"))
    }

    @Test func terminalPlotHasTheAskedSize() {
        let s = PlotSeries(name: "loss", points: (0..<100).map { (Double($0), sin(Double($0) / 10)) })
        let text = TerminalPlot.render(s, width: 40, height: 8)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.count == 1 + 8 + 2)
        #expect(lines[1].hasSuffix("┤" + lines[1].split(separator: "┤").last!))
        #expect(lines[1...8].allSatisfy { $0.split(separator: "┤", omittingEmptySubsequences: false).last!.count == 40 })
        #expect(lines.last!.contains("step 0") && lines.last!.hasSuffix("99"))
        let ascii = TerminalPlot.render(s, width: 30, height: 6, unicode: false)
        #expect(ascii.contains("*") && ascii.unicodeScalars.allSatisfy { $0.isASCII })
        #expect(TerminalPlot.render(PlotSeries(name: "x", points: [(1, .nan)])).contains("no finite values"))
    }
}

/// Parses SVG text as XML (FoundationXML) and counts the points of each polyline by its data-name.
enum SVGCheck {
    final class Delegate: NSObject, XMLParserDelegate {
        var counts: [String: Int] = [:]
        var root: String?
        func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
                    attributes: [String: String] = [:]) {
            if root == nil { root = name }
            guard name == "polyline" else { return }
            let points = (attributes["points"] ?? "").split(separator: " ").filter { $0.split(separator: ",").count == 2 }
            counts[attributes["data-name"] ?? "?"] = points.count
        }
    }

    static func polylinePointCounts(_ svg: String) throws -> [String: Int] {
        let parser = XMLParser(data: Data(svg.utf8))
        let d = Delegate()
        parser.delegate = d
        guard parser.parse() else {
            throw RecordError("not well-formed XML: \(parser.parserError.map { "\($0)" } ?? "?")")
        }
        guard d.root == "svg" else { throw RecordError("the root element is \(d.root ?? "none"), not svg") }
        return d.counts
    }
}

// RunsCommand.swift: `tycho runs` lists the run records under a folder (name, start, steps, last loss, status);
// `tycho runs show NAME` prints one run's summary and terminal plots of its loss and reward curves, and writes
// the same curves as runs/NAME/plot.svg. The records are TychoTrain's RunRecord folders (Lua module `run`).
// Exit status 0, or 1 when the folder or the run does not exist.

import ArgumentParser
import Foundation
import TychoText
import TychoTrain

struct Runs: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List run records (runs/NAME folders written by run.start), or show one.",
        subcommands: [RunsList.self, RunsShow.self],
        defaultSubcommand: RunsList.self)
}

func formatValue(_ v: Double?) -> String {
    guard let v else { return "-" }
    if v.isNaN { return "nan" }
    if v.isInfinite { return v > 0 ? "inf" : "-inf" }
    return String(format: "%.4g", v)
}

/// `2026-05-01T12:00:00.000Z` -> `2026-05-01 12:00:00`.
func shortTime(_ s: String?) -> String {
    guard let s, s.count >= 19 else { return s ?? "-" }
    return String(s.prefix(19)).replacingOccurrences(of: "T", with: " ")
}

struct RunsList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List the runs (the default).")

    @Option(help: ArgumentHelp("The folder holding runs.", valueName: "dir"))
    var dir = "runs"

    func run() throws {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDir), isDir.boolValue else {
            reportError("no runs folder \(dir) (run.start{...} makes one; --dir names another)")
            throw ExitCode(1)
        }
        let runs = RunHistory.list(root: dir)
        if runs.isEmpty {
            print("no runs in \(dir)")
            return
        }
        let rows = [["NAME", "STARTED", "STEPS", "LAST LOSS", "STATUS"]] + runs.map { r in
            [r.name, shortTime(r.startTime), r.lastStep.map(String.init) ?? "-", formatValue(r.last("loss")), r.status]
        }
        let widths = (0..<5).map { c in rows.map { $0[c].count }.max() ?? 0 }
        for row in rows {
            print(row.enumerated().map { c, s in
                c == 2 || c == 3 ? String(repeating: " ", count: widths[c] - s.count) + s : s + String(repeating: " ", count: widths[c] - s.count)
            }.joined(separator: "  ").trimmingCharacters(in: .whitespaces))
        }
    }
}

struct RunsShow: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Print a run's summary and plots of its loss and reward curves; write NAME/plot.svg.")

    @Argument(help: "The run's name (or its folder).")
    var name: String

    @Option(help: ArgumentHelp("The folder holding runs.", valueName: "dir"))
    var dir = "runs"

    @Flag(help: "Plot with ASCII characters instead of Unicode braille.")
    var ascii = false

    @Option(help: "Plot width in characters.")
    var width = 60

    func run() throws {
        let folder = FileManager.default.fileExists(atPath: dir + "/" + name + "/manifest.json") ? dir + "/" + name : name
        guard FileManager.default.fileExists(atPath: folder + "/manifest.json") else {
            reportError("no run \(name) in \(dir) (tycho runs --dir \(dir) lists them)")
            throw ExitCode(1)
        }
        let r: RunHistory
        do { r = try RunHistory.load(directory: folder) } catch {
            reportError("\(error)")
            throw ExitCode(1)
        }
        print(summary(r))
        let unicode = !ascii
        for panel in r.plotPanels {
            for s in panel.series {
                print("")
                print(TerminalPlot.render(s, width: max(10, min(width, 200)), height: s.name == "loss" ? 12 : 8, unicode: unicode))
            }
        }
        do {
            let svg = try r.writeSVG()
            print("\nplot: \(svg)")
        } catch {
            reportError("cannot write the plot: \(error)")
            throw ExitCode(1)
        }
    }

    func summary(_ r: RunHistory) -> String {
        let m = r.manifest
        var lines = ["run \(r.name) (\(r.status))"]
        func add(_ key: String, _ value: String) { lines.append("  " + key.padding(toLength: 10, withPad: " ", startingAt: 0) + " " + value) }
        if let s = m["script"], !s.isNull {
            add("script", "\(s["path"]?.stringValue ?? "?")  sha256 \(s["sha256"]?.stringValue ?? "?")")
        }
        var times = "started \(shortTime(r.startTime))"
        if let end = r.endTime {
            times += ", ended \(shortTime(end))"
            if let a = r.startTime.flatMap(parseTime), let b = parseTime(end) { times += String(format: " (%.1f s)", b.timeIntervalSince(a)) }
        }
        add("time", times)
        if let resumed = m["resumed"]?.arrayValue, !resumed.isEmpty { add("resumed", "\(resumed.count) time\(resumed.count == 1 ? "" : "s")") }
        add("steps", r.lastStep.map { "\($0) (\(r.points.count) logged)" } ?? "none logged")
        if let seed = m["seed"], !seed.isNull { add("seed", seed.line) }
        var version = "tycho \(m["tycho_version"]?.stringValue ?? "?")"
        if let g = m["git"], !g.isNull {
            version += "  git \(String((g["commit"]?.stringValue ?? "").prefix(12)))"
            if let b = g["branch"]?.stringValue { version += " (\(b))" }
        }
        add("version", version)
        if let c = m["config"]?.objectValue, !c.isEmpty {
            add("config", c.sorted { $0.0 < $1.0 }.map { "\($0.0)=\($0.1.line)" }.joined(separator: " "))
        }
        for d in m["data"]?.arrayValue ?? [] {
            add("data", "\(d["path"]?.stringValue ?? "?")  \(d["bytes"]?.intValue ?? 0) bytes  sha256 \(d["sha256"]?.stringValue ?? "?")")
        }
        if let last = r.points.last {
            add("last", last.values.keys.sorted().map { "\($0)=\(formatValue(last.values[$0]))" }.joined(separator: " "))
        }
        var kinds: [String: Int] = [:]
        for e in r.events { kinds[e["kind"]?.stringValue ?? "?", default: 0] += 1 }
        if !kinds.isEmpty { add("events", kinds.keys.sorted().map { "\(kinds[$0]!) \($0)" }.joined(separator: ", ")) }
        for e in r.events(kind: "rollback") {
            let rows = (e["batch_rows"]?.arrayValue ?? []).compactMap(\.intValue).map(String.init)
            var text = "step \(e["step"]?.intValue.map(String.init) ?? "?") -> \(e["to_step"]?.intValue.map(String.init) ?? "?"): \(e["cause"]?.stringValue ?? "")"
            if !rows.isEmpty { text += " (batch rows \(rows.prefix(12).joined(separator: ", "))\(rows.count > 12 ? ", ..." : ""))" }
            add("rollback", text)
        }
        let nonFinite = r.points.flatMap { p in p.values.filter { !$0.value.isFinite }.map { "\($0.key) at step \(p.step)" } }
        if !nonFinite.isEmpty { add("non-finite", nonFinite.prefix(8).joined(separator: ", ") + (nonFinite.count > 8 ? ", ..." : "")) }
        if r.skippedLines > 0 { add("damaged", "\(r.skippedLines) unreadable line\(r.skippedLines == 1 ? "" : "s") skipped") }
        return lines.joined(separator: "\n")
    }

    func parseTime(_ s: String) -> Date? {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f.date(from: s)
    }
}

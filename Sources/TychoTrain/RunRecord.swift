// RunRecord.swift: the record of one training run, a folder people and tools can read without Tycho:
//
//   runs/NAME/manifest.json   what ran: script path and sha256, config, seed, data files and their sha256, Tycho
//                             version, git commit (when there is one), start and end time, status
//   runs/NAME/metrics.jsonl   one line per logged step: {"step": 12, "time": 1767225600.5, "loss": 0.69, ...}
//   runs/NAME/events.jsonl    one line per event: {"kind": "checkpoint" | "rollback" | "eval" | ..., "time": ...}
//   runs/NAME/.lock           held (flock) while a process writes the run, so a killed run reads as interrupted
//
// Lines are appended with one write and synced before the call returns (AppendOnlyLines), the manifest is
// replaced atomically, so a kill -9 at any moment leaves a readable record. A resumed run appends to the same
// files; readers take the last line of each step (a step logged again after a resume or a rollback replaces the
// old value). Names never collide: a taken name gets a suffix (`dpo`, `dpo-2`, `dpo-3`).
// Non-finite metric values are written as the strings "NaN", "Infinity", "-Infinity" (JSON has no NaN).
// What it refuses: writing a run that another live process holds; names with `/`, a leading `.`, or control
// characters.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import TychoText

public final class RunRecord {
    /// How a run starts.
    public struct Options {
        /// The run's name (a folder name); nil gives `run-YYYYMMDD-HHMMSS`.
        public var name: String?
        /// Any JSON object (hyperparameters).
        public var config: JSONValue = .object([])
        /// The folder holding runs.
        public var root: String = "runs"
        /// The seed, when the caller knows it (else config.seed, when present).
        public var seed: JSONValue?
        /// The script that runs (hashed into the manifest); nil when none (the REPL, stdin).
        public var script: String?
        /// Continue the run of that name when it exists (instead of making a new name).
        public var resume = false
        /// The Tycho version to record.
        public var tychoVersion = ""
        /// The command line to record.
        public var command: [String] = []

        public init() {}
    }

    public let name: String
    /// `root/NAME`.
    public let directory: String
    public private(set) var manifest: JSONValue
    public private(set) var isFinished = false
    /// True when `start` found the run and continued it.
    public let resumed: Bool
    private let metrics: AppendOnlyLines
    private let events: AppendOnlyLines
    private var lockFD: Int32

    /// Checks a run name: a plain folder name.
    public static func checkName(_ name: String) throws {
        guard !name.isEmpty, name.utf8.count <= 200 else { throw RecordError("a run name must have 1 to 200 bytes, got \(name.utf8.count)") }
        guard !name.hasPrefix("."), !name.contains("/"),
              !name.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else {
            throw RecordError("a run name must be a plain folder name (no '/', no leading '.', no control characters), got \"\(name.prefix(60))\"")
        }
    }

    /// Makes `root/NAME/` with its manifest (or reopens it with `resume`), and holds its lock until `finish` or
    /// the record is released.
    public static func start(_ o: Options) throws -> RunRecord {
        let base = o.name ?? defaultName()
        try checkName(base)
        try DurableFiles.makeDirectory(o.root)
        if o.resume, DurableFiles.isDirectory(o.root + "/" + base),
           DurableFiles.exists(o.root + "/" + base + "/manifest.json") {
            return try RunRecord(reopen: base, options: o)
        }
        // Take the first free name: mkdir is atomic, so two processes never get the same folder.
        var name = base
        var k = 1
        while true {
            let dir = o.root + "/" + name
            if mkdir(dir, 0o777) == 0 { break }
            guard errno == EEXIST else { throw RecordError("cannot create \(dir): \(DurableFiles.errnoText())") }
            k += 1
            name = "\(base)-\(k)"
            guard k < 10_000 else { throw RecordError("too many runs named \(base) in \(o.root)") }
        }
        try DurableFiles.syncDirectory(o.root)
        return try RunRecord(new: name, options: o)
    }

    static func defaultName() -> String {
        let f = DateFormatter()
        f.dateFormat = "yyyyMMdd-HHmmss"
        f.locale = Locale(identifier: "en_US_POSIX")
        return "run-" + f.string(from: Date())
    }

    private init(new name: String, options o: Options) throws {
        self.name = name
        directory = o.root + "/" + name
        resumed = false
        lockFD = try RunRecord.lock(directory)
        var fields: [(String, JSONValue)] = [
            ("name", .string(name)), ("status", .string("running")),
            ("start_time", .string(Timestamp.iso())), ("end_time", .null),
            ("config", o.config), ("seed", o.seed ?? o.config["seed"] ?? .null), ("data", .array([])),
            ("tycho_version", .string(o.tychoVersion)), ("command", .array(o.command.map { .string($0) })),
            ("host", .string(ProcessInfo.processInfo.hostName)), ("pid", .int(Int(getpid()))),
        ]
        fields.append(("script", try RunRecord.scriptEntry(o.script)))
        let gitFrom = o.script ?? FileManager.default.currentDirectoryPath
        if let g = GitInfo.find(from: gitFrom) {
            fields.append(("git", .object([("commit", .string(g.commit)), ("branch", g.branch.map { .string($0) } ?? .null),
                                           ("root", .string(g.root))])))
        } else {
            fields.append(("git", .null))
        }
        manifest = .object(fields)
        metrics = try AppendOnlyLines(directory + "/metrics.jsonl")
        events = try AppendOnlyLines(directory + "/events.jsonl")
        try writeManifest()
    }

    private init(reopen name: String, options o: Options) throws {
        self.name = name
        directory = o.root + "/" + name
        resumed = true
        lockFD = try RunRecord.lock(directory)
        var m = try JSONValue.read(directory + "/manifest.json")
        guard m.objectValue != nil else { throw RecordError("\(directory)/manifest.json is not a JSON object") }
        let times = (m["resumed"]?.arrayValue ?? []) + [.string(Timestamp.iso())]
        m = m.setting("resumed", .array(times)).setting("status", .string("running")).setting("end_time", .null)
            .setting("pid", .int(Int(getpid())))
        manifest = m
        metrics = try AppendOnlyLines(directory + "/metrics.jsonl")
        events = try AppendOnlyLines(directory + "/events.jsonl")
        try writeManifest()
    }

    deinit { unlock() }

    private static func scriptEntry(_ script: String?) throws -> JSONValue {
        guard let script, !script.isEmpty, script != "-" else { return .null }
        let path = URL(fileURLWithPath: script).standardizedFileURL.path
        let (hex, bytes) = try FileHash.sha256(path: path)
        return .object([("path", .string(path)), ("sha256", .string(hex)), ("bytes", .int(bytes))])
    }

    /// Opens and locks `dir/.lock`; fails when another live process holds it.
    private static func lock(_ dir: String) throws -> Int32 {
        let fd = open(dir + "/.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o666)
        guard fd >= 0 else { throw RecordError("\(dir)/.lock: cannot open: \(DurableFiles.errnoText())") }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            _ = close(fd)
            throw RecordError("the run \(dir) is being written by another process")
        }
        return fd
    }

    private func unlock() {
        if lockFD >= 0 { _ = close(lockFD); lockFD = -1 }
    }

    /// True when some live process holds the run folder's lock.
    static func isLocked(_ dir: String) -> Bool {
        let fd = open(dir + "/.lock", O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { _ = close(fd) }
        if flock(fd, LOCK_EX | LOCK_NB) == 0 { _ = flock(fd, LOCK_UN); return false }
        return errno == EWOULDBLOCK
    }

    private func writeManifest() throws {
        try DurableFiles.writeText(manifest.prettyText, to: directory + "/manifest.json")
    }

    private func checkOpen(_ what: String) throws {
        if isFinished { throw RecordError("cannot \(what): the run \(name) is finished") }
    }

    // MARK: writing

    /// Appends one metrics line: `step` first, the wall time, then `values` (numbers, strings, booleans).
    public func log(step: Int, _ values: [(String, JSONValue)]) throws {
        try checkOpen("log")
        if values.contains(where: { $0.0 == "time" }) { throw RecordError("'time' is written by the log itself (the wall time); name the value otherwise") }
        var fields: [(String, JSONValue)] = [("step", .int(step)), ("time", .double(Date().timeIntervalSince1970))]
        for (k, v) in values where k != "step" && k != "time" { fields.append((k, v)) }
        try metrics.append(JSONValue.object(fields).line)
    }

    /// Appends one event line: `{"kind": kind, "time": ..., fields...}`.
    public func event(kind: String, _ values: [(String, JSONValue)]) throws {
        try checkOpen("record an event")
        if values.contains(where: { $0.0 == "time" }) { throw RecordError("'time' is written by the event itself (the wall time); name the value otherwise") }
        var fields: [(String, JSONValue)] = [("kind", .string(kind)), ("time", .string(Timestamp.iso()))]
        for (k, v) in values where k != "kind" && k != "time" { fields.append((k, v)) }
        try events.append(JSONValue.object(fields).line)
    }

    /// Hashes a data file into the manifest's `data` list (once per path); returns its sha256.
    @discardableResult
    public func addData(path: String) throws -> String {
        try checkOpen("add data")
        let full = URL(fileURLWithPath: path).standardizedFileURL.path
        let (hex, bytes) = try FileHash.sha256(path: full)
        var list = manifest["data"]?.arrayValue ?? []
        list.removeAll { $0["path"]?.stringValue == full }
        list.append(.object([("path", .string(full)), ("sha256", .string(hex)), ("bytes", .int(bytes))]))
        manifest = manifest.setting("data", .array(list))
        try writeManifest()
        return hex
    }

    /// Records the end time and status ("finished" or "failed") and releases the lock. A second call does nothing.
    public func finish(status: String = "finished") throws {
        guard !isFinished else { return }
        guard ["finished", "failed"].contains(status) else {
            throw RecordError("a run's final status is \"finished\" or \"failed\", got \"\(status.prefix(40))\"")
        }
        manifest = manifest.setting("status", .string(status)).setting("end_time", .string(Timestamp.iso()))
        try writeManifest()
        isFinished = true
        unlock()
    }
}

// MARK: reading runs

/// A run as read back from its folder: the manifest, the metrics (the last line of each step, in step order) and
/// the events. Damaged lines are skipped and counted.
public struct RunHistory {
    public struct Point {
        public let step: Int
        public let values: [String: Double]
    }

    public let name: String
    public let directory: String
    public let manifest: JSONValue
    public let points: [Point]
    public let events: [JSONValue]
    /// Lines of metrics.jsonl or events.jsonl that could not be read.
    public let skippedLines: Int
    /// "finished", "failed", "running" (its lock is held) or "interrupted" (left running by a killed process).
    public let status: String

    public static func load(directory: String) throws -> RunHistory {
        let manifest = try JSONValue.read(directory + "/manifest.json")
        var skipped = 0
        var byStep: [Int: [String: Double]] = [:]
        for line in lines(directory + "/metrics.jsonl") {
            guard let v = try? JSONParser.parse(line), let step = v["step"]?.intValue, let kv = v.objectValue else { skipped += 1; continue }
            var values: [String: Double] = [:]
            for (k, x) in kv where k != "step" && k != "time" { if let d = x.doubleValue { values[k] = d } }
            byStep[step, default: [:]].merge(values) { _, new in new }  // eval lines join the step's training line
        }
        var events: [JSONValue] = []
        for line in lines(directory + "/events.jsonl") {
            guard let v = try? JSONParser.parse(line), v["kind"] != nil else { skipped += 1; continue }
            events.append(v)
        }
        var status = manifest["status"]?.stringValue ?? "unknown"
        if status == "running" && !RunRecord.isLocked(directory) { status = "interrupted" }
        let name = manifest["name"]?.stringValue ?? URL(fileURLWithPath: directory).lastPathComponent
        return RunHistory(name: name, directory: directory, manifest: manifest,
                          points: byStep.keys.sorted().map { Point(step: $0, values: byStep[$0]!) },
                          events: events, skippedLines: skipped, status: status)
    }

    static func lines(_ path: String) -> [String] {
        guard let d = FileManager.default.contents(atPath: path) else { return [] }
        return String(decoding: d, as: UTF8.self).split(separator: "\n").map(String.init).filter { !$0.isEmpty }
    }

    /// Every run folder (one holding manifest.json) under `root`, oldest start first.
    public static func list(root: String) -> [RunHistory] {
        let runs = DurableFiles.list(root).filter { !$0.hasPrefix(".") }.compactMap { name -> RunHistory? in
            let dir = root + "/" + name
            guard DurableFiles.exists(dir + "/manifest.json") else { return nil }
            return try? load(directory: dir)
        }
        return runs.sorted { ($0.startTime ?? "", $0.name) < ($1.startTime ?? "", $1.name) }
    }

    public var startTime: String? { manifest["start_time"]?.stringValue }
    public var endTime: String? { manifest["end_time"]?.stringValue }
    public var lastStep: Int? { points.last?.step }

    /// The metric names logged, `loss` first, then the others sorted.
    public var metricNames: [String] {
        let all = Set(points.flatMap(\.values.keys))
        return all.sorted { ($0 == "loss" ? 0 : 1, $0) < ($1 == "loss" ? 0 : 1, $1) }
    }

    /// (step, value) of one metric, in step order.
    public func series(_ metric: String) -> [(step: Int, value: Double)] {
        points.compactMap { p in p.values[metric].map { (p.step, $0) } }
    }

    /// The last logged value of a metric.
    public func last(_ metric: String) -> Double? { series(metric).last?.value }

    /// The events of one kind.
    public func events(kind: String) -> [JSONValue] { events.filter { $0["kind"]?.stringValue == kind } }
}

// CheckpointManager.swift: a folder of checkpoints with an index, retention, rollbacks and human approvals.
//
//   DIR/checkpoint-N/        one checkpoint (CheckpointFiles.swift)
//   DIR/checkpoints.json     the index: every checkpoint's step, folder, time, metrics, approval, whether a
//                            rollback superseded it, the lr scale it resumes with; the rollback events; "latest"
//
// Saving is atomic, in this order: the files go into DIR/.tmp-checkpoint-N-<tag>/ (each synced), the folder is
// synced and renamed to DIR/checkpoint-N (the parent synced), then the index is replaced atomically, then
// retention removes old folders (renamed to .trash-* first, so a folder named checkpoint-N is always whole).
// A kill -9 at any moment leaves the last good checkpoint loadable; opening the folder again cleans up:
// temporary and trash folders are removed, index entries whose folder is gone are dropped, and a whole
// checkpoint folder that a kill kept out of the index is taken in.
//
// Retention keeps the newest checkpoint, the `keepLast` most recent, the `keepBest` best by `metric` (mode max
// or min) and every approved one; nothing else survives a save. A rollback restores a checkpoint into the given
// objects, multiplies the learning rate by the policy's factor (the optimizer's groups and the schedule's
// scale), marks the newer checkpoints superseded (the run goes on from the restored one; superseded ones are
// kept only when best or approved) and records the event with its cause and the batch rows that triggered it.
// One writer per folder: two processes saving into one folder are not supported.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import TychoNN
import TychoTensor
import TychoText

public final class CheckpointManager {
    public enum Mode: String, CaseIterable {
        case max, min
    }

    public struct Options {
        public var directory: String
        /// How many of the most recent checkpoints to keep (nil: all).
        public var keepLast: Int?
        /// How many of the best checkpoints by `metric` to keep.
        public var keepBest: Int = 3
        /// The metric that ranks checkpoints (a key of the metrics given to `save`).
        public var metric: String?
        public var mode: Mode = .max

        public init(directory: String) { self.directory = directory }
    }

    public struct Approval: Equatable {
        public let by: String
        public let note: String
        public let time: String
    }

    public struct Entry {
        public let step: Int
        /// The folder name inside the manager's directory.
        public internal(set) var folder: String
        public let time: String
        public let metrics: [(String, JSONValue)]
        public internal(set) var approval: Approval?
        public internal(set) var superseded: Bool
        /// The lr scale the run resumes with from this checkpoint (lowered by rollbacks to it).
        public internal(set) var lrScale: Double

        public func metric(_ name: String) -> Double? { metrics.last { $0.0 == name }?.1.doubleValue }
    }

    /// Which checkpoint: a step, the newest, or the best.
    public enum Reference: Equatable {
        case step(Int), latest, best
    }

    /// What a load or rollback restored.
    public struct Restored {
        public let entry: Entry
        public let path: String
        public let dataPosition: JSONValue
        /// The saved generator of the Lua state (nil when it was saved without one or rng was not asked for).
        public let generator: RandomGenerator?
        public let lrScale: Double
    }

    public let directory: String
    public let options: Options
    public private(set) var entries: [Entry] = []
    /// Rollback events, oldest first, as recorded in the index.
    public private(set) var rollbacks: [JSONValue] = []
    /// Where checkpoint, rollback and approval events also go.
    public var run: RunRecord?
    /// What opening the folder cleaned up (temporary folders, dropped and adopted entries), for the curious.
    public private(set) var recoveryNotes: [String] = []

    static let indexName = "checkpoints.json"

    public init(_ o: Options) throws {
        guard !o.directory.isEmpty else { throw RecordError("dir must be a non-empty path") }
        if let k = o.keepLast, k < 1 { throw RecordError("keep_last must be at least 1, got \(k)") }
        guard o.keepBest >= 0 else { throw RecordError("keep_best must be at least 0, got \(o.keepBest)") }
        if let m = o.metric, m.isEmpty { throw RecordError("metric must be a non-empty name") }
        options = o
        directory = o.directory
        try DurableFiles.makeDirectory(directory)
        try recover()
    }

    // MARK: the index

    var indexPath: String { directory + "/" + CheckpointManager.indexName }

    public func path(of e: Entry) -> String { directory + "/" + e.folder }

    static func folderStep(_ name: String) -> Int? {
        let parts = name.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count >= 2, parts[0] == "checkpoint", let step = Int(parts[1]), step >= 0 else { return nil }
        if parts.count == 2 { return step }
        if parts.count == 4, parts[2] == "superseded", Int(parts[3]) != nil { return step }
        return nil
    }

    private func recover() throws {
        for name in DurableFiles.list(directory) where name.hasPrefix(".tmp-checkpoint-") || name.hasPrefix(".trash-checkpoint-") {
            DurableFiles.removeTree(directory + "/" + name)
            recoveryNotes.append("removed \(name) (left by an interrupted save)")
        }
        var changed = false
        if DurableFiles.exists(indexPath) {
            let index: JSONValue
            do { index = try JSONValue.read(indexPath) } catch let e as RecordError {
                throw RecordError("\(e.message) (move it away to rebuild the index from the checkpoint folders, losing approvals)")
            }
            guard let list = index["checkpoints"]?.arrayValue else { throw RecordError("\(indexPath) has no checkpoints list") }
            entries = try list.map(CheckpointManager.entry(from:))
            rollbacks = index["rollbacks"]?.arrayValue ?? []
        }
        let present = entries.filter { DurableFiles.isDirectory(directory + "/" + $0.folder) }
        if present.count != entries.count {
            for e in entries where !present.contains(where: { $0.folder == e.folder }) {
                recoveryNotes.append("dropped step \(e.step) from the index: \(e.folder) is gone")
            }
            entries = present
            changed = true
        }
        for name in DurableFiles.list(directory) where CheckpointManager.folderStep(name) != nil && !entries.contains(where: { $0.folder == name }) {
            guard let state = try? JSONValue.read(directory + "/" + name + "/" + CheckpointFiles.trainerState),
                  let step = state["global_step"]?.intValue else { continue }
            entries.append(Entry(step: step, folder: name, time: state["time"]?.stringValue ?? Timestamp.iso(),
                                 metrics: state["metrics"]?.objectValue ?? [], approval: nil,
                                 superseded: name.contains("superseded") || entries.contains { $0.step == step && !$0.superseded },
                                 lrScale: state["lr_scale"]?.doubleValue ?? 1))
            recoveryNotes.append("took \(name) into the index (saved, but the index was not updated before a stop)")
            changed = true
        }
        sortEntries()
        if changed { try writeIndex() }
    }

    private func sortEntries() {
        entries.sort { ($0.step, $0.superseded ? 0 : 1, $0.folder) < ($1.step, $1.superseded ? 0 : 1, $1.folder) }
    }

    static func entry(from v: JSONValue) throws -> Entry {
        guard let step = v["step"]?.intValue, let folder = v["dir"]?.stringValue, folderStep(folder) == step else {
            throw RecordError("checkpoints.json has an entry without a step and its checkpoint-<step> dir")
        }
        var approval: Approval?
        if let a = v["approved"], !a.isNull {
            approval = Approval(by: a["by"]?.stringValue ?? "", note: a["note"]?.stringValue ?? "", time: a["time"]?.stringValue ?? "")
        }
        return Entry(step: step, folder: folder, time: v["time"]?.stringValue ?? "", metrics: v["metrics"]?.objectValue ?? [],
                     approval: approval, superseded: v["superseded"]?.boolValue ?? false, lrScale: v["lr_scale"]?.doubleValue ?? 1)
    }

    static func json(_ e: Entry) -> JSONValue {
        let approval: JSONValue = e.approval.map {
            .object([("by", .string($0.by)), ("note", .string($0.note)), ("time", .string($0.time))])
        } ?? .null
        return .object([("step", .int(e.step)), ("dir", .string(e.folder)), ("time", .string(e.time)),
                        ("metrics", .object(e.metrics)), ("approved", approval), ("superseded", .bool(e.superseded)),
                        ("lr_scale", .double(e.lrScale))])
    }

    private func writeIndex() throws {
        var fields: [(String, JSONValue)] = [("format", .string("tycho.checkpoints/1")), ("mode", .string(options.mode.rawValue)),
                                             ("checkpoints", .array(entries.map(CheckpointManager.json))),
                                             ("rollbacks", .array(rollbacks))]
        fields.append(("metric", options.metric.map { .string($0) } ?? .null))
        fields.append(("latest", latest.map { .int($0.step) } ?? .null))
        fields.append(("best", best.map { .int($0.step) } ?? .null))
        try DurableFiles.writeText(JSONValue.object(fields).prettyText, to: indexPath)
    }

    // MARK: queries

    /// The newest checkpoint the run goes on from (not superseded).
    public var latest: Entry? { entries.last { !$0.superseded } }

    /// The best checkpoint by the metric (finite values only); ties go to the newer one.
    public var best: Entry? { ranked().first }

    /// The newest approved checkpoint.
    public var promoted: Entry? { entries.last { $0.approval != nil } }

    /// Entries with a finite value of the metric, best first.
    func ranked() -> [Entry] {
        guard let metric = options.metric else { return [] }
        let scored = entries.compactMap { e -> (Entry, Double)? in
            guard let v = e.metric(metric), v.isFinite else { return nil }
            return (e, v)
        }
        return scored.sorted { a, b in
            if a.1 != b.1 { return options.mode == .max ? a.1 > b.1 : a.1 < b.1 }
            return a.0.step > b.0.step
        }.map(\.0)
    }

    public func entry(_ ref: Reference) throws -> Entry {
        switch ref {
        case .latest:
            guard let e = latest else { throw RecordError("\(directory) holds no checkpoint yet") }
            return e
        case .best:
            guard let metric = options.metric else { throw RecordError("\"best\" needs the manager's metric option") }
            guard let e = best else { throw RecordError("no checkpoint in \(directory) has a finite \(metric)") }
            return e
        case .step(let s):
            guard let e = entries.last(where: { $0.step == s && !$0.superseded }) ?? entries.last(where: { $0.step == s }) else {
                let have = entries.map { String($0.step) }.joined(separator: ", ")
                throw RecordError("no checkpoint of step \(s) in \(directory) (there are: \(have.isEmpty ? "none" : have))")
            }
            return e
        }
    }

    /// The lr scale a run resumes with from `e`: the scale of the newest rollback to it, else its own.
    func resumeScale(_ e: Entry) -> Double { e.lrScale }

    /// Rows of batches whose loss was not finite, from every rollback they caused (a trainer leaves them out).
    public var skippedRows: [Int] {
        var seen = Set<Int>()
        var out: [Int] = []
        for r in rollbacks where r["trigger"]?.stringValue == "nonfinite" {
            for x in r["batch_rows"]?.arrayValue ?? [] { if let i = x.intValue, seen.insert(i).inserted { out.append(i) } }
        }
        return out
    }

    /// Rollbacks a policy asked for (manual ones do not count against max_rollbacks).
    public var policyRollbacks: Int { rollbacks.filter { $0["trigger"]?.stringValue != "manual" }.count }

    // MARK: test hook

    /// `TYCHO_CKPT_TEST_PAUSE=phase` (files, renamed, indexed, retention) stops a save at that point for a minute
    /// after saying so on stderr, so that a test can kill the process exactly there. Not a feature.
    private func pause(_ phase: String, step: Int) {
        guard let want = ProcessInfo.processInfo.environment["TYCHO_CKPT_TEST_PAUSE"], !want.isEmpty else { return }
        let parts = want.split(separator: "@").map(String.init)
        guard parts[0] == phase, parts.count == 1 || Int(parts[1]) == step else { return }
        FileHandle.standardError.write(Data("ckpt: paused at \(phase) (step \(step))\n".utf8))
        sleep(60)
    }

    // MARK: saving

    /// Saves a checkpoint of `objects` at `step`, atomically, then applies retention.
    /// - Parameters:
    ///   - generator: the Lua state's generator (saved in rng_state.json).
    ///   - metrics: numbers (or strings) to rank and show the checkpoint by.
    ///   - dataPosition: any JSON value the trainer needs to continue its data where it was.
    @discardableResult
    public func save(step: Int, objects: TrainingObjects, generator: RandomGenerator?, metrics: [(String, JSONValue)],
                     dataPosition: JSONValue) throws -> Entry {
        guard step >= 0 else { throw RecordError("step must be a non-negative integer, got \(step)") }
        let time = Timestamp.iso()
        let scale = objects.schedule?.scale ?? latest.map(resumeScale) ?? 1
        let final = "checkpoint-\(step)"
        let tmp = directory + "/.tmp-\(final)-\(getpid())-\(DurableFiles.tag())"
        try DurableFiles.makeDirectory(tmp)
        do {
            // The best so far, counting this one.
            var bestInfo: (step: Int, value: Double, dir: String)?
            if let metric = options.metric {
                var candidates = ranked().compactMap { e in e.metric(metric).map { (e.step, $0, directory + "/" + e.folder) } }
                if let v = metrics.last(where: { $0.0 == metric })?.1.doubleValue, v.isFinite { candidates.append((step, v, directory + "/" + final)) }
                bestInfo = candidates.sorted { options.mode == .max ? $0.1 > $1.1 : $0.1 < $1.1 }.first
            }
            try CheckpointFiles.write(to: tmp, step: step, objects: objects, generator: generator, metrics: metrics,
                                      dataPosition: dataPosition, lrScale: scale, best: bestInfo, time: time)
            try DurableFiles.syncDirectory(tmp)
        } catch {
            DurableFiles.removeTree(tmp)
            throw error
        }
        pause("files", step: step)

        // A checkpoint of this step already there: set a kept superseded one aside, replace any other.
        var trash: [String] = []
        for i in entries.indices where entries[i].folder == final {
            let keep = entries[i].superseded && (entries[i].approval != nil || isKeptAsBest(entries[i]))
            if keep {
                var k = 1
                while DurableFiles.exists(directory + "/\(final)-superseded-\(k)") { k += 1 }
                try DurableFiles.rename(directory + "/" + final, directory + "/\(final)-superseded-\(k)")
                entries[i].folder = "\(final)-superseded-\(k)"
                entries[i].superseded = true
            } else {
                let t = directory + "/.trash-\(final)-\(DurableFiles.tag())"
                try DurableFiles.rename(directory + "/" + final, t)
                trash.append(t)
            }
        }
        entries.removeAll { $0.folder == final }
        if DurableFiles.exists(directory + "/" + final) {  // a folder the index did not know
            let t = directory + "/.trash-\(final)-\(DurableFiles.tag())"
            try DurableFiles.rename(directory + "/" + final, t)
            trash.append(t)
        }
        try DurableFiles.rename(tmp, directory + "/" + final)
        try DurableFiles.syncDirectory(directory)
        pause("renamed", step: step)

        // A new checkpoint on the current line supersedes nothing; later steps of the line are superseded by it
        // (they can only exist after a manual save of an earlier step).
        for i in entries.indices where entries[i].step > step { entries[i].superseded = true }
        let entry = Entry(step: step, folder: final, time: time, metrics: metrics, approval: nil, superseded: false, lrScale: scale)
        entries.append(entry)
        sortEntries()
        try writeIndex()
        pause("indexed", step: step)
        for t in trash { DurableFiles.removeTree(t) }
        try applyRetention(step: step)
        var fields: [(String, JSONValue)] = [("step", .int(step)), ("path", .string(directory + "/" + final)), ("metrics", .object(metrics))]
        if let b = best { fields.append(("best_step", .int(b.step))) }
        try run?.event(kind: "checkpoint", fields)
        return entry
    }

    private func isKeptAsBest(_ e: Entry) -> Bool {
        ranked().prefix(options.keepBest).contains { $0.folder == e.folder }
    }

    /// The folders retention keeps.
    func kept() -> Set<String> {
        var keep = Set<String>()
        let line = entries.filter { !$0.superseded }
        if let newest = line.last { keep.insert(newest.folder) }
        for e in (options.keepLast.map { line.suffix($0) } ?? line[...]) { keep.insert(e.folder) }
        for e in ranked().prefix(options.keepBest) { keep.insert(e.folder) }
        for e in entries where e.approval != nil { keep.insert(e.folder) }
        return keep
    }

    private func applyRetention(step: Int) throws {
        let keep = kept()
        let doomed = entries.filter { !keep.contains($0.folder) }
        guard !doomed.isEmpty else { return }
        // Out of sight first (a folder named checkpoint-N is always one the index may list), then out of the index,
        // then off the disk: a kill between the steps leaves trash that the next opening removes.
        var trash: [String] = []
        for e in doomed {
            let t = directory + "/.trash-\(e.folder)-\(DurableFiles.tag())"
            if (try? DurableFiles.rename(directory + "/" + e.folder, t)) != nil { trash.append(t) }
        }
        try DurableFiles.syncDirectory(directory)
        entries.removeAll { !keep.contains($0.folder) }
        try writeIndex()
        pause("retention", step: step)
        for t in trash { DurableFiles.removeTree(t) }
    }

    // MARK: loading

    /// Restores checkpoint `ref` into `objects` (only those given); with `rng`, returns its saved generator and
    /// restores the model's dropout generators.
    public func load(_ ref: Reference, into objects: TrainingObjects, rng: Bool = true) throws -> Restored {
        let e = try entry(ref)
        let path = path(of: e)
        let r = try CheckpointFiles.restore(from: path, into: objects, rng: rng, scale: resumeScale(e))
        return Restored(entry: e, path: path, dataPosition: r.trainerState["data_position"] ?? .null, generator: r.generator,
                        lrScale: r.scale)
    }

    // MARK: rollback

    /// Rolls back to a checkpoint: the one a policy decision names (the last good one for its cause), or the
    /// given step. Restores it into `objects`, multiplies the learning rate by `lrFactor` (the decision's when
    /// nil), supersedes newer checkpoints and records the event.
    /// - Throws: `RecordError` when a policy's rollbacks reached its max_rollbacks, or no checkpoint fits.
    public func rollback(decision: RollbackDecision?, step: Int?, objects: TrainingObjects, lrFactor: Double?,
                         rng: Bool = true) throws -> Restored {
        let factor = lrFactor ?? decision?.lrFactor ?? 1
        guard factor.isFinite, factor > 0 else { throw RecordError("lr_factor must be a positive number, got \(factor)") }
        let target: Entry
        if let d = decision {
            guard policyRollbacks < d.maxRollbacks else {
                let last = rollbacks.last { $0["trigger"]?.stringValue != "manual" }?["cause"]?.stringValue ?? ""
                throw RecordError("giving up: \(policyRollbacks) rollback\(policyRollbacks == 1 ? "" : "s") already (max_rollbacks = \(d.maxRollbacks)) and now \(d.cause)\(last.isEmpty ? "" : "; the previous: \(last)")")
            }
            target = try lastGood(for: d)
        } else if let step {
            target = try entry(.step(step))
        } else {
            throw RecordError("rollback needs a step or a policy decision")
        }
        let newScale = resumeScale(target) * factor
        let restored = try CheckpointFiles.restore(from: path(of: target), into: objects, rng: rng, scale: newScale)
        // The run goes on from the target: newer checkpoints leave the line, and the target resumes at the new scale.
        for i in entries.indices {
            if entries[i].step > target.step && !entries[i].superseded { entries[i].superseded = true }
            if entries[i].folder == target.folder {
                entries[i].lrScale = newScale
                entries[i].superseded = false
            }
        }
        var event: [(String, JSONValue)] = [("time", .string(Timestamp.iso())), ("to_step", .int(target.step)),
                                            ("lr_factor", .double(factor)), ("lr_scale", .double(newScale))]
        if let d = decision {
            event += [("trigger", .string(d.kind.rawValue)), ("cause", .string(d.cause)), ("step", .int(d.step)),
                      ("batch_rows", .array(d.batchRows.map { .int($0) }))]
            if let m = d.metric { event.append(("metric", .string(m))) }
            if let v = d.value { event.append(("value", .number(v))) }
            if let b = d.best { event.append(("best", .number(b))) }
        } else {
            event += [("trigger", .string("manual")), ("cause", .string("manual rollback to step \(target.step)")),
                      ("batch_rows", .array([]))]
        }
        rollbacks.append(.object(event))
        sortEntries()
        try writeIndex()
        try applyRetention(step: target.step)
        try run?.event(kind: "rollback", event.filter { $0.0 != "time" })
        let e = entries.first { $0.folder == target.folder } ?? target
        return Restored(entry: e, path: path(of: e), dataPosition: restored.trainerState["data_position"] ?? .null,
                        generator: restored.generator, lrScale: newScale)
    }

    /// The checkpoint to go back to for a decision: the newest one at or before its step on the current line whose
    /// metrics are all finite; for a regression, also one whose metric is within the tolerance of the best (when
    /// any checkpoint has the metric).
    func lastGood(for d: RollbackDecision) throws -> Entry {
        let line = entries.filter { !$0.superseded && $0.step <= d.step }
        let finite = line.filter { e in e.metrics.allSatisfy { $0.1.doubleValue.map { $0.isFinite } ?? true } }
        var candidates = finite
        if d.kind == .regression, let metric = d.metric, let best = d.best {
            let scored = finite.filter { $0.metric(metric) != nil }
            if !scored.isEmpty {
                candidates = scored.filter { e in
                    let v = e.metric(metric)!
                    return d.mode == .max ? v >= best - d.tolerance : v <= best + d.tolerance
                }
            }
        }
        guard let e = candidates.last else {
            throw RecordError("no checkpoint at or before step \(d.step) to roll back to (\(d.cause)); save one before training starts: save{step = 0, ...}")
        }
        return e
    }

    // MARK: approval

    /// Records a human review of checkpoint `step` (persisted in the index; approved checkpoints are never removed).
    @discardableResult
    public func approve(step: Int, by: String, note: String) throws -> Entry {
        let e = try entry(.step(step))
        guard let i = entries.firstIndex(where: { $0.folder == e.folder }) else { throw RecordError("no checkpoint of step \(step)") }
        entries[i].approval = Approval(by: by, note: note, time: Timestamp.iso())
        try writeIndex()
        try run?.event(kind: "approval", [("step", .int(step)), ("by", .string(by)), ("note", .string(note)),
                                          ("path", .string(path(of: entries[i])))])
        return entries[i]
    }
}

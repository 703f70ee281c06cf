// BatchJob.swift: running an OpenAI Batch API input file through an engine, resumably.
//
// A job reads what its output and errors files already hold, checks every input line, and runs the requests
// that are not finished, `batchSize` at a time, writing each result the moment the engine reports it. Rerunning
// the same job resumes it: a custom_id with a result in the output file, or a failure in the errors file, is
// skipped (`retryFailed` runs failures again). When both files hold a custom_id (a retried failure that then
// succeeded, killed before compaction), **the output wins**; among several failures of one id, the last wins.
//
// - Invalid lines (bad JSON, missing or duplicate custom_id, bad method, url or body fields) are reported in the
//   errors file with their line numbers and in the summary; they never stop the job.
// - Retries: a failing request is tried up to `maxAttempts` times, waiting `backoff * 2^(k-1)` seconds (at
//   most `maxBackoff`) before attempt k+1; one that still fails (or fails permanently) goes to the errors file
//   at once, with its attempt count. Only requests waiting for their next attempt are held in memory.
// - Budget: once `maxTotalTokens` tokens (prompt + completion, of this run's results) or `maxSeconds` are
//   spent, no new engine call starts; finished results are kept, the summary counts what is left, and a rerun
//   continues with it (requests waiting for a retry start again at attempt 1).
// - Order: results are appended as they finish; when the job returns, both files are rewritten atomically in
//   input order (errors by line number), so the final files are the same bytes however often the job was
//   killed and resumed. Lines for custom_ids no longer in the input are kept, after the others.
// - Determinism: ids hash the input file's bytes and the custom_id, `created` is the job's time (`created`, or
//   $SOURCE_DATE_EPOCH, or the input file's modification time), and a request without a seed gets one from the
//   job seed and its custom_id.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import TychoText

/// What a batch job is told.
public struct BatchJobOptions {
    /// The input JSONL file (OpenAI Batch API requests).
    public var input: String
    /// The output JSONL file (appended to, then rewritten in input order).
    public var output: String
    /// The errors file; nil for `defaultErrorsPath(for: output)`.
    public var errors: String?
    /// The `model` written in response bodies.
    public var modelName = "tycho"
    public var maxAttempts = 3
    /// Seconds before the second attempt; doubles for each further one.
    public var backoff = 1.0
    public var maxBackoff = 60.0
    public var maxTotalTokens: Int? = nil
    public var maxSeconds: Double? = nil
    /// Requests per engine call.
    public var batchSize = 8
    public var seed: UInt64 = 0
    public var chatTemplate: BatchChatTemplate = ChatMLTemplate()
    /// Run requests whose failure is in the errors file again.
    public var retryFailed = false
    /// `created` of every response body; nil for $SOURCE_DATE_EPOCH or the input's modification time.
    public var created: Int? = nil
    /// Called at the start and after each finished request.
    public var progress: ((BatchProgress) -> Void)? = nil
    /// Seconds on a monotonic clock (tests inject their own).
    public var clock: () -> Double = BatchJob.monotonicSeconds
    public var sleep: (Double) -> Void = BatchJob.sleepSeconds

    public init(input: String, output: String, errors: String? = nil) {
        self.input = input; self.output = output; self.errors = errors
    }

    public var errorsPath: String { errors ?? BatchJobOptions.defaultErrorsPath(for: output) }

    /// `out.jsonl` -> `out.errors.jsonl`; other names get `.errors.jsonl` appended.
    public static func defaultErrorsPath(for output: String) -> String {
        output.hasSuffix(".jsonl") ? String(output.dropLast(6)) + ".errors.jsonl" : output + ".errors.jsonl"
    }
}

/// Where a running job is.
public struct BatchProgress: Equatable {
    /// Requests this run set out to do (input requests minus those already finished).
    public var total = 0
    public var done = 0
    public var failed = 0
    public var retries = 0
    public var completionTokens = 0
    public var seconds = 0.0

    public init() {}

    public var finished: Int { done + failed }
    /// Generated tokens per second so far.
    public var tokensPerSecond: Double { seconds > 0 ? Double(completionTokens) / seconds : 0 }
    /// Seconds still to go at the rate so far, when there is a rate.
    public var eta: Double? {
        guard finished > 0, seconds > 0 else { return nil }
        return seconds / Double(finished) * Double(total - finished)
    }
}

/// What a job did.
public struct BatchSummary: Equatable {
    /// `batch_` and a hash of the input file.
    public var jobID = ""
    /// Valid requests in the input.
    public var requests = 0
    /// Requests that succeeded in this run.
    public var done = 0
    /// Requests that failed for good in this run (in the errors file).
    public var failed = 0
    /// Requests already finished by an earlier run (a result, or a failure unless retried).
    public var skipped = 0
    /// Invalid input lines (malformed, missing or duplicate custom_id, bad fields), and their numbers.
    public var invalid = 0
    public var invalidLines: [Int] = []
    /// Requests not run because the budget ran out; a rerun does them.
    public var left = 0
    /// Attempts beyond the first.
    public var retries = 0
    public var promptTokens = 0
    public var completionTokens = 0
    public var seconds = 0.0
    /// "max_total_tokens" or "max_seconds" when the budget stopped the job.
    public var stoppedBy: String? = nil
    /// Bytes of an incomplete last line cut from the output and errors files at the start (a crash mid-write).
    public var truncatedBytes = 0

    public init() {}

    /// Every request has an outcome (none left by the budget).
    public var complete: Bool { left == 0 }
    public var totalTokens: Int { promptTokens + completionTokens }
    /// Generated tokens per second of this run.
    public var tokensPerSecond: Double { seconds > 0 ? Double(completionTokens) / seconds : 0 }
}

public final class BatchJob {
    /// Runs (or resumes) the job described by `options` on `engine`.
    /// - Throws: `BatchJobError` for a fatal problem: bad options, an unreadable input, an output that cannot be
    ///   written or is locked by another job. Bad lines and failing requests are not fatal.
    public static func run(_ options: BatchJobOptions, engine: BatchEngine) throws -> BatchSummary {
        let job = try BatchJob(options, engine: engine)
        return try job.run()
    }

    public static func monotonicSeconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }

    public static func sleepSeconds(_ s: Double) {
        guard s > 0 else { return }
        var ts = timespec(tv_sec: Int(s), tv_nsec: Int((s - s.rounded(.down)) * 1e9))
        var rest = timespec()
        while nanosleep(&ts, &rest) != 0 && errno == EINTR { ts = rest }
    }

    typealias Range = (offset: Int, length: Int)

    let options: BatchJobOptions
    let engine: BatchEngine
    let errorsPath: String
    var summary = BatchSummary()
    var progress = BatchProgress()
    var ids = BatchIDs(jobID: "")
    var created = 0
    var startTime = 0.0

    let out: BatchFile
    var err: BatchFile?
    /// Result lines of the output file, first per custom_id, in file order; and where each custom_id's is.
    var outLines: [(customID: String, range: Range)] = []
    var outIndex: [String: Range] = [:]
    /// The output file holds lines other than `outLines` (damaged or duplicate).
    var outDirty = false
    /// The last failure line per custom_id in the errors file, and the order custom_ids first failed in.
    var failures: [String: Range] = [:]
    var failureOrder: [String] = []
    /// Invalid-line reports already in the errors file.
    var reportedProblems: Set<String> = []
    /// This input's invalid-line reports and valid requests, in line order.
    var problems: [(line: Int, text: String)] = []
    var inputOrder: [(customID: String, line: Int)] = []

    init(_ options: BatchJobOptions, engine: BatchEngine) throws {
        self.options = options
        self.engine = engine
        self.errorsPath = options.errorsPath
        guard options.maxAttempts >= 1 else { throw BatchJobError("max_attempts must be at least 1, got \(options.maxAttempts)") }
        guard options.batchSize >= 1 else { throw BatchJobError("batch_size must be at least 1, got \(options.batchSize)") }
        guard options.backoff >= 0, options.backoff.isFinite else { throw BatchJobError("backoff must be a non-negative number of seconds") }
        if let t = options.maxTotalTokens, t < 0 { throw BatchJobError("max_total_tokens must be >= 0, got \(t)") }
        if let s = options.maxSeconds, !(s >= 0) { throw BatchJobError("max_seconds must be >= 0") }
        guard !options.output.isEmpty else { throw BatchJobError("no output file given") }
        let paths = [("input", options.input), ("output", options.output), ("errors", errorsPath)]
        for i in 0..<paths.count {
            for j in (i + 1)..<paths.count where BatchJob.samePath(paths[i].1, paths[j].1) {
                throw BatchJobError("the \(paths[i].0) and \(paths[j].0) files are the same file (\(paths[j].1))")
            }
        }
        guard let hash = BatchHash.file(options.input) else {
            throw BatchJobError("\(options.input): cannot read: \(errnoText())")
        }
        ids = BatchIDs(jobID: "batch_" + BatchHash.hex64(hash))
        summary.jobID = ids.jobID
        created = options.created ?? BatchJob.defaultCreated(input: options.input)
        out = try BatchFile(appending: options.output, lock: true)
    }

    static func samePath(_ a: String, _ b: String) -> Bool {
        if a == b { return true }
        var sa = stat(), sb = stat()
        guard stat(a, &sa) == 0, stat(b, &sb) == 0 else { return false }
        return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino
    }

    static func defaultCreated(input: String) -> Int {
        if let s = getenv("SOURCE_DATE_EPOCH"), let v = Int(String(cString: s)) { return v }
        var st = stat()
        guard stat(input, &st) == 0 else { return 0 }
        #if canImport(Darwin)
        return Int(st.st_mtimespec.tv_sec)
        #else
        return Int(st.st_mtim.tv_sec)
        #endif
    }

    // MARK: the run

    func run() throws -> BatchSummary {
        let start = options.clock()
        startTime = start
        try readExisting()
        let pending = try readInput()
        progress.total = pending.count
        options.progress?(progress)

        var queue = pending[...]
        var waiting: [(readyAt: Double, request: BatchRequest, attempts: Int)] = []
        while !queue.isEmpty || !waiting.isEmpty {
            if let stop = budgetSpent(start) {
                summary.stoppedBy = stop
                break
            }
            let now = options.clock()
            var chunk: [(request: BatchRequest, attempts: Int)] = []
            let ready = waiting.indices.filter { waiting[$0].readyAt <= now }
                .sorted { waiting[$0].request.line < waiting[$1].request.line }.prefix(options.batchSize)
            for i in ready { chunk.append((waiting[i].request, waiting[i].attempts)) }
            let taken = Set(ready)
            waiting = waiting.indices.filter { !taken.contains($0) }.map { waiting[$0] }
            while chunk.count < options.batchSize, let r = queue.popFirst() { chunk.append((r, 0)) }
            if chunk.isEmpty {
                var wait = (waiting.map(\.readyAt).min() ?? now) - now
                if let s = options.maxSeconds { wait = Swift.min(wait, start + s - now) }
                options.sleep(Swift.max(wait, 0))
                continue
            }
            var reported = [Bool](repeating: false, count: chunk.count)
            var writeError: Error? = nil
            engine.run(chunk.map(\.request)) { i, result in
                guard i >= 0 && i < chunk.count, !reported[i], writeError == nil else { return }
                reported[i] = true
                do {
                    if let retry = try settle(chunk[i].request, attempts: chunk[i].attempts + 1, result) {
                        waiting.append(retry)
                    }
                } catch { writeError = error }
            }
            if let writeError { throw writeError }
            for i in chunk.indices where !reported[i] {
                let e = BatchRequestError(code: "server_error", message: "the engine did not report this request", retryable: true)
                if let retry = try settle(chunk[i].request, attempts: chunk[i].attempts + 1, .failure(e)) {
                    waiting.append(retry)
                }
            }
        }
        summary.left = queue.count + waiting.count
        summary.seconds = options.clock() - start
        try compact()
        summary.seconds = options.clock() - start
        return summary
    }

    func budgetSpent(_ start: Double) -> String? {
        if let t = options.maxTotalTokens, summary.totalTokens >= t { return "max_total_tokens" }
        if let s = options.maxSeconds, options.clock() - start >= s { return "max_seconds" }
        return nil
    }

    /// Writes a result or a final failure; returns the request to retry (and when) otherwise.
    func settle(_ request: BatchRequest, attempts: Int,
                _ result: Result<BatchResponse, Error>) throws -> (readyAt: Double, request: BatchRequest, attempts: Int)? {
        switch result {
        case .success(let response):
            let line = BatchRecord.success(request, response, ids: ids, model: options.modelName, created: created)
            let offset = try out.append(line)
            let range = (offset, line.utf8.count)
            if outIndex[request.customID] == nil {
                outIndex[request.customID] = range
                outLines.append((request.customID, range))
            }
            summary.done += 1
            summary.promptTokens += response.promptTokens
            summary.completionTokens += response.completionTokens
            progress.done += 1
            progress.completionTokens += response.completionTokens
        case .failure(let error):
            let e = BatchRequestError.from(error)
            if e.retryable && attempts < options.maxAttempts {
                summary.retries += 1
                progress.retries += 1
                let delay = Swift.min(options.backoff * Double(1 << Swift.min(attempts - 1, 40)), options.maxBackoff)
                return (options.clock() + delay, request, attempts)
            }
            let why = e.retryable ? "failed after \(attempts) attempt\(attempts == 1 ? "" : "s")" : "not retried: the error is permanent"
            let line = BatchRecord.failure(customID: request.customID, code: e.code, message: "\(e.message) (\(why))", ids: ids)
            let file = try errorsFile()
            let offset = try file.append(line)
            if failures[request.customID] == nil { failureOrder.append(request.customID) }
            failures[request.customID] = (offset, line.utf8.count)
            summary.failed += 1
            progress.failed += 1
        }
        if let p = options.progress {
            progress.seconds = options.clock() - startTime
            p(progress)
        }
        return nil
    }

    func errorsFile() throws -> BatchFile {
        if let err { return err }
        let f = try BatchFile(appending: errorsPath, lock: false)
        err = f
        return f
    }

    // MARK: reading what is there

    /// Reads the output and errors files: finished custom_ids, failures, reports; cuts incomplete lines.
    func readExisting() throws {
        summary.truncatedBytes += try out.scanLines { offset, bytes in
            guard let rec = BatchRecord.read(bytes), rec.isResult, let cid = rec.customID else { outDirty = true; return }
            if outIndex[cid] != nil { outDirty = true; return }
            let range = (offset, bytes.count)
            outIndex[cid] = range
            outLines.append((cid, range))
        }
        guard access(errorsPath, F_OK) == 0 else { return }
        let e = try errorsFile()
        summary.truncatedBytes += try e.scanLines { offset, bytes in
            guard let rec = BatchRecord.read(bytes), !rec.isResult else { return }
            if rec.line != nil {
                reportedProblems.insert(String(decoding: bytes, as: UTF8.self))
            } else if let cid = rec.customID {
                if failures[cid] == nil { failureOrder.append(cid) }
                failures[cid] = (offset, bytes.count)
            }
        }
    }

    /// Checks every input line; reports invalid ones (once) and returns the requests still to run.
    func readInput() throws -> [BatchRequest] {
        let reader: JSONLinesReader
        do { reader = try JSONLinesReader(path: options.input) } catch { throw BatchJobError("\(error)") }
        var firstLine: [String: Int] = [:]
        var pending: [BatchRequest] = []
        while true {
            let parsed: Result<BatchRequest, BatchInputProblem>
            do {
                guard let (line, row) = try reader.next() else { break }
                parsed = BatchRequestParser.parse(row, line: line, template: options.chatTemplate, jobSeed: options.seed)
            } catch let e as JSONLinesError {
                guard let line = e.line else { throw BatchJobError(e.description) }
                try report(BatchInputProblem(line: line, customID: nil, code: "invalid_json_line", message: e.message))
                continue
            }
            let line: Int, cid: String?
            switch parsed {
            case .success(let r): line = r.line; cid = r.customID
            case .failure(let p): line = p.line; cid = p.customID
            }
            if let cid, let first = firstLine[cid] {
                try report(BatchInputProblem(line: line, customID: cid, code: "duplicate_custom_id",
                                             message: "custom_id \(JSONValue.string(cid).line) is already used on line \(first)"))
                continue
            }
            if let cid { firstLine[cid] = line }
            switch parsed {
            case .failure(let p): try report(p)
            case .success(let r):
                summary.requests += 1
                inputOrder.append((r.customID, r.line))
                if outIndex[r.customID] != nil || (failures[r.customID] != nil && !options.retryFailed) {
                    summary.skipped += 1
                } else {
                    pending.append(r)
                }
            }
        }
        return pending
    }

    func report(_ p: BatchInputProblem) throws {
        let text = BatchRecord.invalid(p, ids: ids)
        summary.invalid += 1
        summary.invalidLines.append(p.line)
        problems.append((p.line, text))
        if !reportedProblems.contains(text) {
            try errorsFile().append(text)
            reportedProblems.insert(text)
        }
    }

    // MARK: compaction

    /// Rewrites both files in input order when they are not already (see the file comment).
    func compact() throws {
        let inInput = Set(inputOrder.map(\.customID))
        var wanted: [Range] = inputOrder.compactMap { outIndex[$0.customID] }
        wanted += outLines.filter { !inInput.contains($0.customID) }.map(\.range)
        let current = outLines.map(\.range)
        if outDirty || wanted.count != current.count || !zip(wanted, current).allSatisfy({ $0.offset == $1.offset }) {
            try BatchFile.rewrite(options.output) { sink in
                for r in wanted { try sink.write(try out.read(offset: r.offset, length: r.length) + [0x0A]) }
            }
        }
        out.close()

        // Errors: reports and failures (those without a result) by line; failures of ids not in the input last.
        var entries: [(line: Int, bytes: [UInt8])] = problems.map { ($0.line, Array($0.text.utf8)) }
        let lineOf = Dictionary(inputOrder.map { ($0.customID, $0.line) }, uniquingKeysWith: { a, _ in a })
        var extras: [[UInt8]] = []
        if let err {
            for cid in failureOrder where outIndex[cid] == nil {
                guard let r = failures[cid] else { continue }
                let bytes = try err.read(offset: r.offset, length: r.length)
                if let line = lineOf[cid] { entries.append((line, bytes)) } else { extras.append(bytes) }
            }
        }
        entries.sort { $0.line < $1.line }
        var text: [UInt8] = []
        for e in entries.map(\.bytes) + extras { text += e; text.append(0x0A) }
        if let err {
            let existing = err.size > 0 ? try err.read(offset: 0, length: err.size) : []
            err.close()
            if existing != text { try BatchFile.rewrite(errorsPath) { try $0.write(text) } }
        }
    }
}

// BatchCommand.swift: `tycho batch INPUT.jsonl --model DIR --output OUT.jsonl`, an OpenAI Batch API file run
// through a local model, resumably (the job itself is TychoInfer's BatchJob; this file reads the command line,
// loads the model, draws progress and prints the summary).
//
// Exit status: 0 when the job completed (every request has a result or a failure in the errors file, so a
// job with failed requests still exits 0); 3 when the budget (--max-total-tokens, --max-seconds) stopped it
// with requests left (rerun the same command to continue); 1 on a fatal error (unreadable input, bad model
// folder or tokenizer, unwritable or locked output).
//
// Test hooks (not features): TYCHO_BATCH_TEST_FAULTS=`id=count,...` makes those custom_ids fail their first
// `count` attempts in this process, and TYCHO_BATCH_TEST_DELAY=`seconds` waits after each finished request,
// so tests can exercise retries and kill the job at random moments on the real engine.

import ArgumentParser
import Foundation
import TychoInfer
import TychoNN
import TychoText

struct Batch: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run an OpenAI Batch API input file through a local model (resumable).",
        discussion: """
            Input lines: {"custom_id", "method": "POST", "url": "/v1/completions" | "/v1/chat/completions", "body"}. \
            Results go to the output file in the OpenAI batch output format; failed requests and invalid lines go \
            to the errors file (default: OUTPUT with .errors.jsonl). Rerunning the same command skips every \
            custom_id already finished, so a killed or budget-stopped job resumes. Exit status 0 when the job \
            completed (even with failed requests), 3 when the budget left requests to do, 1 on a fatal error.
            """)

    @Argument(help: "The input JSONL file (OpenAI Batch API requests).")
    var input: String

    @Option(help: ArgumentHelp("The model folder (config.json and model.safetensors).", valueName: "dir"))
    var model: String

    @Option(help: ArgumentHelp("The tokenizer.json (default: DIR/tokenizer.json).", valueName: "file"))
    var tokenizer: String?

    @Option(help: ArgumentHelp("The output JSONL file.", valueName: "file"))
    var output: String

    @Option(help: ArgumentHelp("The errors JSONL file (default: OUTPUT with .errors.jsonl).", valueName: "file"))
    var errors: String?

    @Option(help: "Attempts per request before it goes to the errors file.")
    var maxAttempts = 3

    @Option(help: ArgumentHelp("Seconds before the second attempt; doubled for each further one (at most 60).", valueName: "seconds"))
    var backoff = 1.0

    @Option(help: ArgumentHelp("Stop starting requests once this many tokens (prompt + completion) are used.", valueName: "n"))
    var maxTotalTokens: Int?

    @Option(help: ArgumentHelp("Stop starting requests after this many seconds.", valueName: "seconds"))
    var maxSeconds: Double?

    @Option(help: "Requests generated together.")
    var batchSize = 8

    @Option(help: "Seed for requests that give none (mixed with each custom_id).")
    var seed = 0

    @Option(help: ArgumentHelp("Chat template: auto (the model folder's, if recognised, else chatml), chatml, llama3 or plain.", valueName: "name"))
    var chatTemplate = "auto"

    @Flag(help: "Run requests whose failure is already in the errors file again.")
    var retryFailed = false

    func validate() throws {
        guard maxAttempts >= 1 else { throw ValidationError("--max-attempts must be at least 1") }
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1") }
        guard backoff >= 0 && backoff.isFinite else { throw ValidationError("--backoff must be a number of seconds >= 0") }
        if let t = maxTotalTokens, t < 0 { throw ValidationError("--max-total-tokens must be >= 0") }
        if let s = maxSeconds, !(s >= 0) { throw ValidationError("--max-seconds must be >= 0") }
        guard chatTemplate == "auto" || BatchChatTemplates.named(chatTemplate) != nil else {
            throw ValidationError("--chat-template must be auto, \(BatchChatTemplates.names.joined(separator: ", ")); got '\(chatTemplate)'")
        }
    }

    func run() throws {
        let lm: LanguageModel
        let tok: Tokenizer
        do {
            lm = try HFCheckpoint.load(model)
            tok = try Tokenizer.load(path: tokenizer ?? model + "/tokenizer.json")
        } catch {
            reportError("batch: \(error)")
            throw ExitCode(1)
        }
        var options = BatchJobOptions(input: input, output: output, errors: errors)
        options.modelName = BatchEngines.modelName(folder: model)
        options.maxAttempts = maxAttempts
        options.backoff = backoff
        options.maxTotalTokens = maxTotalTokens
        options.maxSeconds = maxSeconds
        options.batchSize = batchSize
        options.seed = UInt64(bitPattern: Int64(seed))
        options.retryFailed = retryFailed
        if chatTemplate == "auto" {
            let found = BatchChatTemplates.detect(modelFolder: model)
            options.chatTemplate = found.template
            if let note = found.note { reportError("batch: \(note)") }
        } else {
            options.chatTemplate = BatchChatTemplates.named(chatTemplate)!  // checked in validate()
        }
        var engine = BatchEngines.make(model: lm, tokenizer: tok, eosIDs: BatchEngines.eosIDs(modelFolder: model), batchSize: batchSize)
        let env = ProcessInfo.processInfo.environment
        if env["TYCHO_BATCH_TEST_FAULTS"] != nil || env["TYCHO_BATCH_TEST_DELAY"] != nil {
            do {
                let faults = try BatchFaultEngine.parseFaults(env["TYCHO_BATCH_TEST_FAULTS"] ?? "")
                engine = BatchFaultEngine(wrapping: engine, failures: faults, delay: Double(env["TYCHO_BATCH_TEST_DELAY"] ?? "") ?? 0)
            } catch {
                reportError("batch: \(error)")
                throw ExitCode(1)
            }
        }
        let bar = BatchProgressBar()
        options.progress = { bar.show($0) }
        let summary: BatchSummary
        do {
            summary = try BatchJob.run(options, engine: engine)
        } catch {
            bar.finish()
            reportError("batch: \(error)")
            throw ExitCode(1)
        }
        bar.finish()
        print(BatchReport.text(summary, output: output, errors: options.errorsPath))
        if !summary.complete { throw ExitCode(3) }
    }
}

/// The summary printed at the end.
enum BatchReport {
    static func text(_ s: BatchSummary, output: String, errors: String) -> String {
        var lines: [String] = []
        var invalid = "\(s.invalid) invalid line\(s.invalid == 1 ? "" : "s")"
        if !s.invalidLines.isEmpty {
            let shown = s.invalidLines.prefix(10).map(String.init).joined(separator: ", ")
            invalid += " (line\(s.invalidLines.count == 1 ? "" : "s") \(shown)\(s.invalidLines.count > 10 ? ", ..." : ""))"
        }
        lines.append("batch: \(s.done) done, \(s.failed) failed, \(s.skipped) skipped (already finished), \(invalid), \(s.left) left")
        lines.append("tokens: \(s.totalTokens) (prompt \(s.promptTokens), completion \(s.completionTokens)), "
                     + "\(format(s.tokensPerSecond)) tokens/s, \(format(s.seconds)) s")
        if s.retries > 0 { lines.append("retries: \(s.retries)") }
        if s.truncatedBytes > 0 {
            lines.append("resumed: cut an incomplete last line (\(s.truncatedBytes) bytes) left by an interrupted run")
        }
        if let stop = s.stoppedBy {
            let flag = stop == "max_total_tokens" ? "--max-total-tokens" : "--max-seconds"
            lines.append("stopped by \(flag): \(s.left) request\(s.left == 1 ? "" : "s") left; rerun the same command to continue")
        }
        lines.append("output: \(output)")
        if s.failed > 0 || s.invalid > 0 || FileManager.default.fileExists(atPath: errors) { lines.append("errors: \(errors)") }
        return lines.joined(separator: "\n")
    }

    static func format(_ x: Double) -> String { String(format: "%.1f", x) }
}

/// Progress on stderr: a redrawn bar on a terminal (done/total, tokens/s, ETA), otherwise a plain line every
/// ten seconds.
final class BatchProgressBar {
    let terminal = isatty(STDERR_FILENO) != 0
    var lastDraw = -1.0
    var drawn = false
    var latest = BatchProgress()

    func show(_ p: BatchProgress) {
        latest = p
        let due = terminal ? 0.1 : 10
        guard p.finished == p.total || p.seconds - lastDraw >= due || lastDraw < 0 else { return }
        if !terminal && p.finished == 0 { lastDraw = p.seconds; return }
        lastDraw = p.seconds
        let eta = p.eta.map { "ETA \(clock($0))" } ?? "ETA --"
        let rate = "\(Int(p.tokensPerSecond.rounded())) tok/s"
        let failed = p.failed > 0 ? ", \(p.failed) failed" : ""
        if terminal {
            let width = 24
            let filled = p.total > 0 ? width * p.finished / p.total : width
            let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
            write("\r\u{1B}[K[\(bar)] \(p.finished)/\(p.total)\(failed)  \(rate)  \(eta)")
            drawn = true
        } else {
            write("batch: \(p.finished)/\(p.total) finished\(failed), \(rate), \(eta)\n")
        }
    }

    func finish() {
        if drawn { write("\n") }
        drawn = false
    }

    func clock(_ s: Double) -> String {
        let t = Int(s.rounded())
        return t >= 3600 ? String(format: "%d:%02d:%02d", t / 3600, t / 60 % 60, t % 60) : String(format: "%d:%02d", t / 60, t % 60)
    }

    func write(_ s: String) { FileHandle.standardError.write(s.data(using: .utf8) ?? Data()) }
}

// TrainerCommandTests.swift: dpo.trainer through the real binary, killed with SIGKILL: at random moments of a run,
// and in the middle of a checkpoint write (the TYCHO_CKPT_TEST_PAUSE hook). Each time the last good checkpoint
// loads, the run resumes from it, and the loss curve in the run record (the last line of each step) is bit for bit
// the uninterrupted run's; the run's events record the resumes.

import Foundation
import Testing

@Suite struct TrainerCommandTests {
    static let tokenizer = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/models/gpt2/tokenizer.json").path

    // A DPO run on generated preference rows: GPT-2 with dropout (so the random generators matter), AdamW, a
    // cosine schedule, shuffled epochs, a checkpoint every 3 steps, a rollback policy; resumes when the folder
    // has a checkpoint (the trainer does that by itself).
    static let script = """
        local dir, total, tokenizer = arg[1], tonumber(arg[2]), arg[3]
        tensor.set_num_threads(1)
        tensor.manual_seed(42)
        local tk = tok.load(tokenizer)
        local words = { "red", "blue", "green", "cat", "dog", "sun", "moon", "tree", "river", "stone", "light", "wind" }
        local rows = {}
        for i = 1, 20 do
          local a, b, c = words[(i * 5) % 12 + 1], words[(i * 7) % 12 + 1], words[(i * 3) % 12 + 1]
          rows[i] = { prompt = "Q: " .. a .. " and " .. b .. "?", chosen = " " .. c .. " " .. a, rejected = " " .. b }
        end
        local p = data.preferences(rows, { tokenizer = tk, max_length = 48, quiet = true })
        local m = nn.gpt2{ vocab = tk:vocab_size(), ctx = 64, dim = 64, layers = 2, heads = 4, dropout = 0.1 }
        local ref = m:clone():freeze()
        local opt = optim.adamw(m:parameters(), { lr = 2e-3, weight_decay = 0.01 })
        local sched = optim.schedule{ kind = "cosine", lr = 2e-3, warmup = 2, total = total }
        local r = run.start{ name = "dpo", dir = dir .. "/runs", seed = 42, resume = true }
        local mgr = ckpt.manager{ dir = dir .. "/ckpt", keep_last = 2, run = r }
        local tr = dpo.trainer{ policy = m, reference = ref, train = p, optimizer = opt, schedule = sched, batch_size = 4,
                                max_steps = total, seed = 7, disable_dropout = false, save_every = 3, checkpoints = mgr,
                                rollback = ckpt.policy{}, run = r, progress = "lines", log_every = 1 }
        tr:fit()
        r:finish()
        print("done " .. tr:info().step)
        """

    func directory() throws -> String {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("tycho-trainer-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url.path
    }

    func read(_ path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }

    func start(_ arguments: [String], out: String, env: [String: String] = [:]) throws -> Process {
        FileManager.default.createFile(atPath: out, contents: nil)
        FileManager.default.createFile(atPath: out + ".err", contents: nil)
        let p = Process()
        p.executableURL = TychoProcess.executable
        p.arguments = arguments
        p.environment = ProcessInfo.processInfo.environment.merging(env) { $1 }
        p.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: out))
        p.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: out + ".err"))
        try p.run()
        return p
    }

    func wait(_ seconds: Double, _ condition: () -> Bool) -> Bool {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end {
            if condition() { return true }
            usleep(20_000)
        }
        return condition()
    }

    func kill9(_ p: Process) {
        if p.isRunning { kill(p.processIdentifier, SIGKILL) }
        p.waitUntilExit()
    }

    /// The loss of each step in the run record, as written (the last line of a step wins, as readers take it).
    func losses(_ runDir: String) -> [Int: String] {
        var out: [Int: String] = [:]
        for line in read(runDir + "/metrics.jsonl").split(separator: "\n") {
            guard let d = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  let step = d["step"] as? Int, d["loss"] != nil else { continue }
            // the text of the number as written, so the comparison is exact
            guard let r = line.range(of: "\"loss\":") else { continue }
            let rest = line[r.upperBound...].drop { $0 == " " }
            out[step] = String(rest.prefix { $0 != "," && $0 != "}" })
        }
        return out
    }


    @Test func killedRunsResumeWithTheUninterruptedLossCurve() throws {
        let dir = try directory()
        let script = try TychoProcess.temporaryFile(TrainerCommandTests.script)
        let total = 40
        let whole = try TychoProcess.run(["run", script.path, dir + "/a", String(total), TrainerCommandTests.tokenizer])
        #expect(whole.status == 0, "\(whole.stderr)")
        #expect(whole.stdout.contains("done \(total)"), "\(whole.stdout)")
        let reference = losses(dir + "/a/runs/dpo")
        #expect(reference.count == total, "\(reference)")

        // Killed twice at random moments after a few steps, then run to the end.
        for k in 0..<2 {
            let out = dir + "/b\(k).out"
            let p = try start(["run", script.path, dir + "/b", String(total), TrainerCommandTests.tokenizer], out: out)
            let target = 4 + 5 * k + Int.random(in: 0...2)
            _ = wait(120) { losses(dir + "/b/runs/dpo").count >= target || !p.isRunning }
            usleep(useconds_t(Double.random(in: 0...0.05) * 1e6))
            kill9(p)
        }
        #expect(losses(dir + "/b/runs/dpo").count < total, "the kills came before the end")
        let last = try TychoProcess.run(["run", script.path, dir + "/b", String(total), TrainerCommandTests.tokenizer])
        #expect(last.status == 0, "\(last.stderr)")
        #expect(last.stdout.contains("resumed from"), "\(last.stdout)")
        let resumed = losses(dir + "/b/runs/dpo")
        #expect(resumed.count == total)
        for s in 1...total {
            #expect(resumed[s] == reference[s], "step \(s): \(resumed[s] ?? "none") after resuming, \(reference[s] ?? "none") uninterrupted")
        }
        #expect(read(dir + "/b/runs/dpo/events.jsonl").contains("\"resume\""))
    }

    @Test func ctrlCStopsAFitAtAStepBoundary() throws {
        let dir = try directory()
        let script = try TychoProcess.temporaryFile(TrainerCommandTests.script)
        let out = dir + "/c.out"
        let p = try start(["run", script.path, dir + "/c", "100000", TrainerCommandTests.tokenizer], out: out)
        let running = wait(120) { read(out).contains("step 3/") || !p.isRunning }
        #expect(running && p.isRunning, "the run did not get going: \(read(out + ".err"))")
        kill(p.processIdentifier, SIGINT)
        let stopped = wait(60) { !p.isRunning }
        if !stopped { kill9(p) }
        #expect(stopped, "SIGINT did not stop the fit")
        p.waitUntilExit()
        #expect(p.terminationStatus == 1)
        #expect(read(out + ".err").contains("interrupted"), "\(read(out + ".err"))")
        #expect(!read(out).contains("done"))
    }

    @Test func sigkillInsideACheckpointWriteKeepsTheLastGoodOne() throws {
        let dir = try directory()
        let script = try TychoProcess.temporaryFile(TrainerCommandTests.script)
        let total = 9
        let whole = try TychoProcess.run(["run", script.path, dir + "/a", String(total), TrainerCommandTests.tokenizer])
        #expect(whole.status == 0, "\(whole.stderr)")
        let reference = losses(dir + "/a/runs/dpo")

        // Stopped while the files of the step-6 checkpoint are being written, and killed there.
        let out = dir + "/b.out"
        let p = try start(["run", script.path, dir + "/b", String(total), TrainerCommandTests.tokenizer], out: out,
                          env: ["TYCHO_CKPT_TEST_PAUSE": "files@6"])
        let paused = wait(120) { read(out + ".err").contains("ckpt: paused at files (step 6)") || !p.isRunning }
        #expect(paused && p.isRunning, "the save did not pause: \(read(out + ".err"))")
        kill9(p)
        let left = (try? FileManager.default.contentsOfDirectory(atPath: dir + "/b/ckpt")) ?? []
        #expect(left.contains("checkpoint-3") && !left.contains("checkpoint-6"), "\(left)")

        let again = try TychoProcess.run(["run", script.path, dir + "/b", String(total), TrainerCommandTests.tokenizer])
        #expect(again.status == 0, "\(again.stderr)")
        #expect(again.stdout.contains("(step 3 of 9)"), "resumed from the last good checkpoint: \(again.stdout)")
        let resumed = losses(dir + "/b/runs/dpo")
        for s in 1...total {
            #expect(resumed[s] == reference[s], "step \(s): \(resumed[s] ?? "none") after resuming, \(reference[s] ?? "none") uninterrupted")
        }
        let after = (try? FileManager.default.contentsOfDirectory(atPath: dir + "/b/ckpt")) ?? []
        #expect(!after.contains { $0.hasPrefix(".tmp") }, "the half-written folder was cleaned up: \(after)")
    }
}

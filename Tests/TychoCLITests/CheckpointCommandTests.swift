// CheckpointCommandTests.swift: checkpoints and run records through the real binary: SIGKILL at random moments
// of a loop that does nothing but save, and at each step of a save (through the TYCHO_CKPT_TEST_PAUSE hook),
// always leaves the last good checkpoint loadable; a training run killed with SIGKILL and resumed from its last
// checkpoint reproduces the uninterrupted loss curve bit for bit; `tycho runs` and `tycho runs show` list and
// plot run records (a well-formed SVG with one point per logged step).

import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing

@Suite struct CheckpointCommandTests {
    func directory() throws -> String {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("tycho-ckpt-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url.path
    }

    func read(_ path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }

    /// Starts tycho with stdout and stderr going to files.
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

    /// Waits until `condition` holds (polling), at most `seconds`.
    func wait(_ seconds: Double, _ condition: () -> Bool) -> Bool {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end {
            if condition() { return true }
            usleep(20_000)
        }
        return condition()
    }

    func kill9(_ p: Process) -> Bool {
        let killed = p.isRunning && kill(p.processIdentifier, SIGKILL) == 0
        p.waitUntilExit()
        return killed
    }

    // A loop that only saves: every parameter and the optimizer's lr hold the step number, so a loaded checkpoint
    // can be checked whole. About 50 MB a checkpoint, so most of the time goes into writing files.
    static let saveLoop = """
        local dir, first = arg[1], tonumber(arg[2])
        tensor.set_num_threads(1)
        tensor.manual_seed(1)
        local m = nn.gpt2{vocab = 4096, ctx = 64, dim = 256, layers = 4, heads = 4}
        local opt = optim.adamw(m:parameters(), {lr = 1})
        m:loss(tensor.randint(0, 4096, {1, 8})):backward()
        opt:step()
        local mgr = ckpt.manager{dir = dir, keep_last = 2}
        for step = first, first + 200 do
          tensor.no_grad(function() for _, p in ipairs(m:parameters()) do p:fill(step) end end)
          opt:set_lr(step)
          mgr:save{step = step, model = m, optimizer = opt, metrics = {loss = step}, data_position = {step = step}}
          print("saved " .. step)
          io.stdout:flush()
        end
        """

    // Opens the folder as a new run would and checks that the latest checkpoint and every listed one load whole.
    static let verify = """
        local dir = arg[1]
        local m = nn.gpt2{vocab = 4096, ctx = 64, dim = 256, layers = 4, heads = 4}
        local opt = optim.adamw(m:parameters(), {lr = 1})
        m:loss(tensor.randint(0, 4096, {1, 8})):backward()
        opt:step()
        local mgr = ckpt.manager{dir = dir, keep_last = 2}
        local function check(which)
          local info = mgr:load(which, {model = m, optimizer = opt})
          for _, p in ipairs(m:parameters()) do
            assert(p:min():item() == info.step and p:max():item() == info.step, "parameters of step " .. info.step)
          end
          assert(opt:lr() == info.step, "optimizer of step " .. info.step)
          assert(info.data_position.step == info.step and info.metrics.loss == info.step, "trainer state")
          return info.step
        end
        local latest = check("latest")
        local n = 0
        for _, e in ipairs(mgr:list()) do check(e.step); n = n + 1 end
        print("latest " .. latest .. " count " .. n)
        """

    func verify(_ dir: String, _ script: String) throws -> (latest: Int, count: Int) {
        let r = try TychoProcess.run(["run", script, dir])
        #expect(r.status == 0, "verify failed: \(r.stderr)")
        let parts = r.stdout.split(whereSeparator: { $0 == " " || $0 == "\n" })
        guard parts.count >= 4, let latest = Int(parts[1]), let count = Int(parts[3]) else { return (-1, -1) }
        return (latest, count)
    }

    func leftovers(_ dir: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasPrefix(".tmp") || $0.hasPrefix(".trash") }
    }

    @Test func sigkillDuringCheckpointWritesLeavesTheLastGoodOneLoadable() throws {
        let dir = try directory()
        let loop = try TychoProcess.temporaryFile(CheckpointCommandTests.saveLoop)
        let check = try TychoProcess.temporaryFile(CheckpointCommandTests.verify)
        let ckpt = dir + "/ckpt"
        var first = 1
        var kills = 0
        var lastLatest = 0
        for round in 0..<6 {
            let p = try start(["run", loop.path, ckpt, String(first)], out: dir + "/out")
            // Let it save a few times, then kill it at a random moment (mostly inside a save).
            _ = wait(30) { read(dir + "/out").components(separatedBy: "saved").count > 2 || !p.isRunning }
            usleep(useconds_t(Double.random(in: 0.01...0.5) * 1e6))
            if kill9(p) { kills += 1 }
            let saved = read(dir + "/out").split(separator: "\n").compactMap { Int($0.split(separator: " ").last ?? "") }
            let (latest, count) = try verify(ckpt, check.path)
            #expect(latest >= (saved.last ?? 0), "round \(round): latest \(latest), but step \(saved.last ?? 0) was reported saved")
            #expect(latest >= lastLatest && count >= 1 && count <= 3, "round \(round): latest \(latest), \(count) checkpoints")
            #expect(leftovers(ckpt).isEmpty, "opening the folder cleans up: \(leftovers(ckpt))")
            lastLatest = latest
            first = latest + 1
        }
        #expect(kills >= 4, "the loop should be killed mid-run")
    }

    @Test(arguments: [("files", 2), ("renamed", 3), ("indexed", 3), ("retention", 3)])
    func sigkillAtEachStepOfASave(_ phase: String, _ expectedLatest: Int) throws {
        let dir = try directory()
        let loop = try TychoProcess.temporaryFile(CheckpointCommandTests.saveLoop)
        let check = try TychoProcess.temporaryFile(CheckpointCommandTests.verify)
        let ckpt = dir + "/ckpt"
        let p = try start(["run", loop.path, ckpt, "1"], out: dir + "/out", env: ["TYCHO_CKPT_TEST_PAUSE": "\(phase)@3"])
        let paused = wait(60) { read(dir + "/out.err").contains("ckpt: paused at \(phase) (step 3)") }
        #expect(paused, "the save did not reach \(phase): \(read(dir + "/out.err"))")
        #expect(kill9(p))
        let (latest, count) = try verify(ckpt, check.path)
        #expect(latest == expectedLatest, "killed at \(phase): latest \(latest)")
        #expect(count >= 1 && count <= 3)
        #expect(leftovers(ckpt).isEmpty)
    }

    // A small training run: GPT-2 with dropout, AdamW, a cosine schedule, shuffled batches (data.batches with a
    // seed per epoch), a random loss mask from the state's generator; a checkpoint every 3 steps; resumes from the
    // latest one when the folder has it. Each step's loss goes to a file as a hex float.
    static let train = """
        local dir, losses_path, total = arg[1], arg[2], tonumber(arg[3])
        tensor.set_num_threads(1)
        tensor.manual_seed(42)
        local m = nn.gpt2{vocab = 64, ctx = 16, dim = 32, layers = 2, heads = 4, dropout = 0.1}
        local opt = optim.adamw(m:parameters(), {lr = 3e-3, weight_decay = 0.1})
        local sched = optim.schedule{kind = "cosine", lr = 3e-3, warmup = 3, total = total}
        local rows = {}
        local ids = tensor.randint(0, 64, {20, 12})
        for i = 1, 20 do rows[i] = {ids = ids[i]:totable()} end
        local r = run.start{name = "resume", dir = dir .. "/runs", config = {lr = 3e-3, total = total}, seed = 42, resume = true}
        local mgr = ckpt.manager{dir = dir .. "/ckpt", keep_last = 2, run = r}
        local step, epoch, index = 0, 1, 0
        if mgr:latest() then
          local info = mgr:load("latest", {model = m, optimizer = opt, schedule = sched})
          step, epoch, index = info.step, info.data_position.epoch, info.data_position.index
        end
        local out = io.open(losses_path, "a")
        while step < total do
          for i, b in data.batches(rows, {batch_size = 4, shuffle = true, seed = epoch}) do
            if i > index then
              step = step + 1
              sched:apply(opt, step)
              opt:zero_grad()
              local keep = tensor.rand(b.ids:size(1), b.ids:size(2)):gt(0.1)
              local loss = m:loss(b.ids, b.mask * keep)
              loss:backward()
              local norm = optim.clip_grad_norm(m:parameters(), 1.0)
              opt:step()
              out:write(string.format("%d %a\\n", step, loss:item()))
              out:flush()
              r:log{step = step, loss = loss, grad_norm = norm, ["rewards/margins"] = step / 100}
              index = i
              if step % 3 == 0 then
                mgr:save{step = step, model = m, optimizer = opt, schedule = sched, metrics = {loss = loss},
                         data_position = {epoch = epoch, index = index}}
              end
              if step >= total then break end
            end
          end
          if step < total then epoch, index = epoch + 1, 0 end
        end
        out:close()
        r:finish()
        """

    func lossLines(_ path: String) -> [(Int, String)] {
        read(path).split(separator: "\n").compactMap { line in
            let parts = line.split(separator: " ")
            guard parts.count == 2, let s = Int(parts[0]) else { return nil }
            return (s, String(parts[1]))
        }
    }

    @Test func resumeAfterSigkillReproducesTheLossCurveBitwise() throws {
        let dir = try directory()
        let script = try TychoProcess.temporaryFile(CheckpointCommandTests.train)
        let total = 24
        let whole = try TychoProcess.run(["run", script.path, dir + "/a", dir + "/a.losses", String(total)])
        #expect(whole.status == 0, "\(whole.stderr)")
        let reference = Dictionary(uniqueKeysWithValues: lossLines(dir + "/a.losses"))
        #expect(reference.count == total)

        // Killed twice at random moments after its first checkpoints, then run to the end.
        for k in 0..<2 {
            let p = try start(["run", script.path, dir + "/b", dir + "/b.losses", String(total)], out: dir + "/b.out")
            let target = 4 + 7 * k + Int.random(in: 0...3)
            _ = wait(120) { lossLines(dir + "/b.losses").count >= target || !p.isRunning }
            _ = kill9(p)
        }
        let last = try TychoProcess.run(["run", script.path, dir + "/b", dir + "/b.losses", String(total)])
        #expect(last.status == 0, "\(last.stderr)")
        let lines = lossLines(dir + "/b.losses")
        #expect(lines.count > total, "the killed runs repeated the steps after their last checkpoint")
        #expect(Set(lines.map(\.0)) == Set(1...total))
        for (s, hex) in lines {
            #expect(reference[s] == hex, "step \(s): \(hex) after resuming, \(reference[s] ?? "none") uninterrupted")
        }
        // The resumed run record says so, and reads back with the final curve.
        let manifest = read(dir + "/b/runs/resume/manifest.json")
        #expect(manifest.contains("\"resumed\": [") && manifest.contains("\"status\": \"finished\""), "\(manifest)")
        let show = try TychoProcess.run(["runs", "show", "resume", "--dir", dir + "/b/runs"])
        #expect(show.status == 0, "\(show.stderr)")
        #expect(show.stdout.contains("steps      \(total)"), "\(show.stdout)")
    }

    @Test func runsListsAndShowsRunsWithPlots() throws {
        let dir = try directory()
        let script = try TychoProcess.temporaryFile("""
            local root = arg[1]
            local r = run.start{name = "dpo", dir = root, config = {beta = 0.1}, seed = 3}
            for s = 1, 30 do
              r:log{step = s, loss = 0.7 - s * 0.01, ["rewards/margins"] = s * 0.02, ["rewards/accuracies"] = 0.5 + s / 100}
            end
            r:log{step = 31, loss = 0 / 0}
            r:event{kind = "rollback", step = 31, to_step = 30, cause = "loss is nan at step 31", batch_rows = {5, 9}}
            r:finish()
            local open = run.start{name = "left-open", dir = root}
            open:log{step = 1, loss = 2}
            """)
        let made = try TychoProcess.run(["run", script.path, dir + "/runs"])
        #expect(made.status == 0, "\(made.stderr)")
        let list = try TychoProcess.run(["runs", "--dir", dir + "/runs"])
        #expect(list.status == 0, "\(list.stderr)")
        let rows = list.stdout.split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true).map(String.init) }
        #expect(rows.first == ["NAME", "STARTED", "STEPS", "LAST", "LOSS", "STATUS"], "\(list.stdout)")
        #expect(rows.contains { $0.first == "dpo" && $0.contains("31") && $0.contains("nan") && $0.last == "finished" }, "\(list.stdout)")
        #expect(rows.contains { $0.first == "left-open" && $0.last == "interrupted" }, "\(list.stdout)")

        let show = try TychoProcess.run(["runs", "show", "dpo", "--dir", dir + "/runs"])
        #expect(show.status == 0, "\(show.stderr)")
        let out = show.stdout
        for fragment in ["run dpo (finished)", "config     beta=0.1", "seed       3", "steps      31 (31 logged)",
                         "rollback   step 31 -> 30: loss is nan at step 31 (batch rows 5, 9)", "non-finite loss at step 31",
                         "rewards/accuracies", "rewards/margins", "┤", "plot: \(dir)/runs/dpo/plot.svg"] {
            #expect(out.contains(fragment), "missing '\(fragment)' in:\n\(out)")
        }
        #expect(out.unicodeScalars.contains { $0.value >= 0x2801 && $0.value <= 0x28FF }, "a braille curve")
        let svg = read(dir + "/runs/dpo/plot.svg")
        let counts = try polylinePoints(svg)
        #expect(counts == ["loss": 30, "rewards/margins": 30, "rewards/accuracies": 30], "one point per finite value: \(counts)")
        #expect(svg.contains("class=\"rollback\""))

        let ascii = try TychoProcess.run(["runs", "show", "dpo", "--dir", dir + "/runs", "--ascii"])
        #expect(ascii.stdout.contains("*") && !ascii.stdout.contains("┤"))
        let missing = try TychoProcess.run(["runs", "show", "nope", "--dir", dir + "/runs"])
        #expect(missing.status == 1 && missing.stderr.contains("no run nope"))
        let noFolder = try TychoProcess.run(["runs", "--dir", dir + "/absent"])
        #expect(noFolder.status == 1 && noFolder.stderr.contains("no runs folder"))
    }

    final class PolylineCounter: NSObject, XMLParserDelegate {
        var counts: [String: Int] = [:]
        func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
                    attributes: [String: String] = [:]) {
            guard name == "polyline" else { return }
            counts[attributes["data-name"] ?? "?"] = (attributes["points"] ?? "").split(separator: " ").count
        }
    }

    func polylinePoints(_ svg: String) throws -> [String: Int] {
        let parser = XMLParser(data: Data(svg.utf8))
        let d = PolylineCounter()
        parser.delegate = d
        #expect(parser.parse(), "plot.svg is well-formed XML: \(String(describing: parser.parserError))")
        return d.counts
    }
}

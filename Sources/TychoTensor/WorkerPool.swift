// WorkerPool.swift: the threads behind `Parallel.forRanges`.
//
// Dispatch's concurrentPerform wakes its worker threads for each call; in this VM that takes tens of
// microseconds, so a 100 us loop split in two took longer than running it on one thread. Here worker threads
// stay awake (yielding) for a short while after each job, as OpenMP's do, and then sleep on a condition
// variable. Jobs are numbered chunks handed out under a mutex; the caller runs chunks too, and returns once
// every chunk has finished, so the job's closure never outlives the call.
//
// One job at a time: a call made while another runs (from another thread, or nested inside a chunk) gets
// `false` and runs its chunks itself.

#if os(Linux)
import Foundation
import Synchronization

final class WorkerPool: @unchecked Sendable {
    static let shared = WorkerPool()

    /// How long an idle worker keeps polling for the next job before it sleeps.
    static let spinSeconds = 0.000_5

    private let busy = Atomic<Bool>(false)
    private let generation = Atomic<Int>(0)
    private let finished = Atomic<Int>(0)

    // The job slot and the worker count, guarded by `mutex`.
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let wake = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var body: ((Int) -> Void)?
    private var jobGeneration = 0
    private var count = 0
    private var next = 0
    private var participants = 0
    private var started = 0
    private var sleeping = 0

    private init() {
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(wake, nil)
    }

    /// Runs `body(0..<chunks)` on the calling thread and up to `helpers` workers. Returns false (running
    /// nothing) when the pool is busy with another job.
    func run(chunks: Int, helpers: Int, _ body: (Int) -> Void) -> Bool {
        guard busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else { return false }
        defer { busy.store(false, ordering: .releasing) }
        startWorkers(helpers)
        withoutActuallyEscaping(body) { body in
            pthread_mutex_lock(mutex)
            self.body = body
            count = chunks
            next = 0
            participants = helpers
            finished.store(0, ordering: .relaxed)
            jobGeneration += 1
            generation.store(jobGeneration, ordering: .releasing)
            if sleeping > 0 { pthread_cond_broadcast(wake) }
            pthread_mutex_unlock(mutex)
            let job = jobGeneration
            while runOneChunk(job) { finished.add(1, ordering: .releasing) }
            while finished.load(ordering: .acquiring) < chunks { sched_yield() }
            pthread_mutex_lock(mutex)
            self.body = nil
            pthread_mutex_unlock(mutex)
        }
        return true
    }

    /// Takes the next chunk of job `job` and runs it; false when there is none. Kept out of line so that
    /// the closure reference is released before the caller counts the chunk as finished.
    @inline(never)
    private func runOneChunk(_ job: Int) -> Bool {
        pthread_mutex_lock(mutex)
        guard jobGeneration == job, next < count, let f = body else {
            pthread_mutex_unlock(mutex)
            return false
        }
        let index = next
        next += 1
        pthread_mutex_unlock(mutex)
        f(index)
        return true
    }

    private func startWorkers(_ n: Int) {
        pthread_mutex_lock(mutex)
        let missing = n - started
        let first = started
        if missing > 0 { started = n }
        pthread_mutex_unlock(mutex)
        guard missing > 0 else { return }
        for k in first..<(first + missing) {
            let t = Thread { [unowned self] in self.workerLoop(k) }
            t.name = "tycho-worker-\(k + 1)"
            t.start()
        }
    }

    private func workerLoop(_ me: Int) {
        var seen = generation.load(ordering: .acquiring)
        while true {
            // Wait for a new job: poll for a while, then sleep.
            var deadline = 0.0
            var polls = 0
            while generation.load(ordering: .acquiring) == seen {
                polls += 1
                if polls & 63 == 0 {
                    let t = WorkerPool.now()
                    if deadline == 0 { deadline = t + WorkerPool.spinSeconds } else if t > deadline {
                        pthread_mutex_lock(mutex)
                        sleeping += 1
                        while generation.load(ordering: .acquiring) == seen { pthread_cond_wait(wake, mutex) }
                        sleeping -= 1
                        pthread_mutex_unlock(mutex)
                        break
                    }
                }
                sched_yield()
            }
            seen = generation.load(ordering: .acquiring)
            pthread_mutex_lock(mutex)
            let takesPart = me < participants && jobGeneration == seen
            pthread_mutex_unlock(mutex)
            guard takesPart else { continue }
            while runOneChunk(seen) { finished.add(1, ordering: .releasing) }
        }
    }

    private static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }
}
#endif

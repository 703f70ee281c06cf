// SysBinding.swift: the Lua module `sys`: wall-clock time for benchmarks and scripts.
//
// Lua's own `os.clock()` is CPU time summed over all threads, wrong for timing multithreaded kernels;
// `sys.clock()` is a monotonic wall clock.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CLua
import CLuaShim

enum SysBinding {
    /// Seconds on a monotonic clock (arbitrary origin).
    static func monotonicSeconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }

    static let module = LuaModule(name: "sys", doc: "Wall-clock time: sys.clock(), sys.sleep(s).", functions: [
        LuaFunction("clock", doc: "Seconds (a float) on a monotonic wall clock with an arbitrary origin; subtract two readings to time code. Unlike os.clock(), counts elapsed time, not CPU time.") { a in
            a.push(monotonicSeconds())
        },
        LuaFunction("sleep", [.required("seconds", .number)], doc: "Sleeps for `seconds` (a float, at most one day).") { a in
            let s = try a.number(1)
            guard s.isFinite, s >= 0, s <= 86_400 else {
                throw a.argumentError(1, "a number of seconds in 0..86400, got \(LuaArgs.formatNumber(s))")
            }
            var req = timespec(tv_sec: Int(s), tv_nsec: Int((s - s.rounded(.down)) * 1e9))
            var rem = timespec()
            while nanosleep(&req, &rem) != 0 && errno == EINTR { req = rem }
            return 0
        },
    ])
}

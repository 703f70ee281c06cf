// BLASSetup.swift: make sure OpenBLAS runs kernels made for this CPU.
//
// OpenBLAS builds with DYNAMIC_ARCH (Debian's) choose their kernels by CPU model when the library loads. A
// CPU newer than the build is not recognised and gets the generic "Prescott" (SSE3) kernels: Debian 12's
// OpenBLAS 0.3.21 on an Intel Xeon of model 207 (Emerald Rapids) runs sgemm at about 30 GFLOP/s per core
// that way, against about 105 with its SkylakeX (AVX-512) kernels. When OpenBLAS reports that fallback on a
// CPU that has AVX-512 or AVX2 with FMA, and the user has not chosen a core with OPENBLAS_CORETYPE, Tycho
// selects the matching family through OpenBLAS's own OPENBLAS_CORETYPE mechanism, before its first BLAS call.
// Setting OPENBLAS_CORETYPE (to any value OpenBLAS accepts, Prescott included) turns this off.

#if canImport(Glibc)
import Glibc
#endif
import COpenBLAS

public enum BLASSetup {
    /// Runs once, before Tycho's first BLAS call (every call goes through `Tensor`'s matmul, which touches
    /// this first; the lazy static makes concurrent first calls wait for it).
    static let configured: Void = {
        configure()
        openblas_set_num_threads(1)  // Tycho splits products over its own threads (RowInvariantGemm.swift)
    }()

    /// The name of the kernel family OpenBLAS uses, e.g. "SkylakeX" or "Haswell".
    public static var coreName: String {
        _ = configured
        guard let p = openblas_get_corename() else { return "unknown" }
        return String(cString: p)
    }

    /// What was done at startup, for diagnostics: nil when OpenBLAS's own choice was kept.
    public private(set) nonisolated(unsafe) static var override: String?

    private static func configure() {
        #if os(Linux)
        guard getenv("OPENBLAS_CORETYPE") == nil,
              let p = openblas_get_corename(), String(cString: p).lowercased() == "prescott",
              let flags = cpuFlags() else { return }
        let core: String
        if ["avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"].allSatisfy(flags.contains) {
            core = "SkylakeX"
        } else if flags.contains("avx2") && flags.contains("fma") {
            core = "Haswell"
        } else {
            return
        }
        // gotoblas_dynamic_quit/init are exported by DYNAMIC_ARCH builds only; without them, nothing to do.
        guard let quitSym = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "gotoblas_dynamic_quit"),
              let initSym = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "gotoblas_dynamic_init") else { return }
        typealias Hook = @convention(c) () -> Void
        setenv("OPENBLAS_CORETYPE", core, 0)
        unsafeBitCast(quitSym, to: Hook.self)()
        unsafeBitCast(initSym, to: Hook.self)()
        unsetenv("OPENBLAS_CORETYPE")  // leave the environment of child processes as it was
        override = "Prescott -> " + (openblas_get_corename().map { String(cString: $0) } ?? "?")
        #endif
    }

    /// The CPU feature flags the kernel reports (Linux lists only those the OS has enabled).
    private static func cpuFlags() -> Set<String>? {
        #if os(Linux)
        guard let f = fopen("/proc/cpuinfo", "r") else { return nil }
        defer { fclose(f) }
        var line: UnsafeMutablePointer<CChar>?
        var cap = 0
        defer { free(line) }
        while getline(&line, &cap, f) > 0 {
            guard let line else { break }
            let s = String(cString: line)
            if s.hasPrefix("flags") {
                guard let colon = s.firstIndex(of: ":") else { return nil }
                return Set(s[s.index(after: colon)...].split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init))
            }
        }
        #endif
        return nil
    }
}

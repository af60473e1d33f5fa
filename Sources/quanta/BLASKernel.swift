#if canImport(Glibc)
import Glibc
#endif
import QuantaCore

/// Debian's OpenBLAS 0.3.21 does not recognise some recent x86 CPUs and falls back to its SSE3
/// (Prescott) kernels, three times slower than the AVX-512 ones on the same machine. OpenBLAS
/// picks its kernel when the library loads, so when OPENBLAS_CORETYPE is unset and the CPU has
/// AVX-512 (or AVX2+FMA), `quanta` sets it and re-executes itself once. An OPENBLAS_CORETYPE
/// the user set is always respected. Invocations that multiply no matrices skip the re-execution
/// (about 16 ms: every shared library loads twice): see `needsBLAS`.
enum BLASKernel {
    /// Options of `quanta quantize` under which it only rounds to GGUF blocks, as llama-quantize
    /// does (no calibration, solver or evaluation: no matrix product).
    static let roundingOnly: Set<String> = ["--pure", "--imatrix", "--tensor-type", "--output-tensor-type", "--token-embedding-type",
                                            "--leave-output-tensor", "--allow-requantize", "--dry-run", "--threads", "--json"]

    /// Whether `arguments` (the command line) may reach a matrix product. Only `quantize` with
    /// `roundingOnly` options is known not to; anything else, a value starting with "-" included, may.
    static func needsBLAS(_ arguments: [String]) -> Bool {
        guard arguments.count > 1, arguments[1] == "quantize" else { return true }
        return arguments.dropFirst(2).contains { $0.hasPrefix("-") && !roundingOnly.contains(String($0.prefix { $0 != "=" })) }
    }

    /// OpenBLAS starts its worker threads when it loads, and they spin (sched_yield) for about
    /// 0.1 s before sleeping: a core taken from a run that multiplies nothing. Such runs stop them.
    static func stopThreadsIfUnneeded() {
        if !needsBLAS(CommandLine.arguments) { _ = blasThreadShutdown() }
    }

    static func selectAndReexecIfNeeded() {
        guard getenv("OPENBLAS_CORETYPE") == nil, getenv("QUANTA_BLAS_SELECTED") == nil, needsBLAS(CommandLine.arguments) else { return }
        guard let flags = CPUFlags.current else { return }
        let core: String
        if flags.contains("avx512f") && flags.contains("avx512bw") && flags.contains("avx512vl") {
            core = "SkylakeX"
        } else if flags.contains("avx2") && flags.contains("fma") {
            core = "Haswell"
        } else {
            return
        }
        setenv("OPENBLAS_CORETYPE", core, 1)
        setenv("QUANTA_BLAS_SELECTED", core, 1)
        var arguments = CommandLine.arguments.map { strdup($0) } + [nil]
        execv("/proc/self/exe", &arguments)
        // execv only returns on failure: carry on with the kernel OpenBLAS chose.
    }
}

/// OpenBLAS's blas_thread_shutdown_ (exported, not in its headers): stops and joins its worker
/// threads; a later product would start them again.
@_silgen_name("blas_thread_shutdown_") private func blasThreadShutdown() -> Int32

#if canImport(Glibc)
import Glibc
#endif
import QuantaCore

/// Debian's OpenBLAS 0.3.21 does not recognise some recent x86 CPUs and falls back to its SSE3
/// (Prescott) kernels, three times slower than the AVX-512 ones on the same machine. OpenBLAS
/// picks its kernel from OPENBLAS_CORETYPE when it is opened, which is at the first matrix
/// product (the CBLAS module opens it on first use; runs that multiply nothing never do), so
/// `quanta` sets the variable at start when it is unset. A value the user set is respected.
enum BLASKernel {
    /// OpenBLAS's name for the kernel to use on a CPU with these /proc/cpuinfo `flags`: SkylakeX
    /// with AVX-512 (F, BW and VL), Haswell with AVX2 and FMA, nil (OpenBLAS's own choice) otherwise.
    static func coreType(flags: Set<String>) -> String? {
        if flags.isSuperset(of: ["avx512f", "avx512bw", "avx512vl"]) { return "SkylakeX" }
        if flags.isSuperset(of: ["avx2", "fma"]) { return "Haswell" }
        return nil
    }

    /// Sets OPENBLAS_CORETYPE for this CPU unless it is set, before anything opens OpenBLAS.
    static func select() {
        guard getenv("OPENBLAS_CORETYPE") == nil, let flags = CPUFlags.current, let core = coreType(flags: flags) else { return }
        setenv("OPENBLAS_CORETYPE", core, 1)
    }
}

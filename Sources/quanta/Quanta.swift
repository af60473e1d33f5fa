import ArgumentParser
import QuantaCore
import QuantaIO

/// The `quanta` command: configuration only; the work is in the subcommands.
@main
struct Quanta: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quanta",
        abstract: "Quantize, evaluate and compare transformer models.",
        discussion: """
            Exit codes: 0 success, 64 bad arguments, 65 malformed input, 66 input not found, \
            69 unsupported input, 74 I/O error, 77 input refused (e.g. pickle checkpoints); \
            interrupted by SIGINT, SIGTERM or SIGHUP: 128 + the signal (130, 143, 129), unfinished outputs removed.
            """,
        version: QuantaVersion.string,
        subcommands: [Inspect.self, Quantize.self, Convert.self, Calibrate.self, Eval.self, Sensitivity.self, Compare.self, GateCommand.self, ReportCommand.self]
    )

    static func main() {
        BLASKernel.select()
        keepFreedMemoryInTheHeap()
        TemporaryFiles.installSignalHandlers()
        main(nil)
    }
}

/// glibc's `mallopt` (malloc.h is not part of Swift's Glibc module).
@_silgen_name("mallopt") private func mallopt(_ parameter: Int32, _ value: Int32) -> Int32

/// Blocks streamed from a quantized file allocate and free the same sizes once per block and
/// pass. glibc maps allocations from 128 KB up (raising the bar only after a free) and returns
/// freed memory above 128 KB at the heap's top, so each block's weights were faulted in afresh,
/// page by page: allocations up to 32 MB now come from the heap and freed memory stays there
/// (up to 128 MB) for the next block. Peak memory measured unchanged for eval (452 MB on a
/// SmolLM2 Q4_K_M) and within 4 MB for quantize (186 against 182 MB, SmolLM2 F32 to Q4_K_M).
private func keepFreedMemoryInTheHeap() {
    let trimThreshold: Int32 = -1, mmapThreshold: Int32 = -3  // M_TRIM_THRESHOLD, M_MMAP_THRESHOLD
    _ = mallopt(mmapThreshold, 32 << 20)
    _ = mallopt(trimThreshold, 128 << 20)
}

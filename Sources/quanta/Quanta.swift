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
        BLASKernel.selectAndReexecIfNeeded()
        TemporaryFiles.installSignalHandlers()
        main(nil)
    }
}

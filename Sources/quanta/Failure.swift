import ArgumentParser
import QuantaCore

#if canImport(Glibc)
import Glibc
#endif

/// Runs a subcommand's work, turning a `QuantaError` into "quanta: error: <message>" on
/// standard error and the error's own exit code (see `Quanta`'s help for the table).
func reportingFailures(_ work: () throws -> Void) throws {
    do {
        try work()
    } catch let error as QuantaError {
        printError("quanta: error: \(error)")
        throw ExitCode(error.exitCode)
    }
}

/// A line on standard error.
func printError(_ text: String) {
    writeError(text + "\n")
}

/// Text on standard error, unbuffered.
func writeError(_ text: String) {
    let bytes = Array(text.utf8)
    _ = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
}

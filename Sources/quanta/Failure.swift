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
        let message = Array("quanta: error: \(error)\n".utf8)
        _ = message.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
        throw ExitCode(error.exitCode)
    }
}

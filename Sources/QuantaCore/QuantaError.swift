/// The one error type of Quanta. Every message names what was being read (a file, a tensor,
/// a field or a line) and what is wrong with it, so a user can act without a debugger.
public struct QuantaError: Error, CustomStringConvertible, Equatable, Sendable {
    /// What went wrong, which also decides the process exit code.
    public enum Kind: String, Sendable {
        /// The input exists but its bytes or structure break the format's promises.
        case malformed
        /// The input is well-formed but uses something Quanta does not support.
        case unsupported
        /// The input was refused on purpose (for example pickle checkpoints).
        case refused
        /// The file or folder does not exist.
        case notFound
        /// Reading or writing failed at the operating-system level.
        case io
        /// A caller passed an argument that cannot work.
        case invalidArgument
    }

    public let kind: Kind
    /// The file, tensor or field the error is about; empty when there is none.
    public let subject: String
    /// What is wrong, as a sentence fragment without the subject.
    public let reason: String

    public init(_ kind: Kind, _ subject: String, _ reason: String) {
        self.kind = kind
        self.subject = subject
        self.reason = reason
    }

    public var description: String { subject.isEmpty ? reason : "\(subject): \(reason)" }

    /// Process exit code for this error (sysexits.h values).
    public var exitCode: Int32 {
        switch kind {
        case .malformed: 65          // EX_DATAERR
        case .notFound: 66           // EX_NOINPUT
        case .unsupported: 69        // EX_UNAVAILABLE
        case .refused: 77            // EX_NOPERM
        case .io: 74                 // EX_IOERR
        case .invalidArgument: 64    // EX_USAGE
        }
    }

    /// The same error with `outer` prepended to its subject ("model.safetensors: tensor 'x'").
    public func within(_ outer: String) -> QuantaError {
        QuantaError(kind, subject.isEmpty ? outer : "\(outer): \(subject)", reason)
    }
}

extension QuantaError {
    public static func malformed(_ subject: String, _ reason: String) -> QuantaError {
        QuantaError(.malformed, subject, reason)
    }
    public static func unsupported(_ subject: String, _ reason: String) -> QuantaError {
        QuantaError(.unsupported, subject, reason)
    }
}

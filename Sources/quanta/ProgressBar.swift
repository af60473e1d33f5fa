#if canImport(Glibc)
import Glibc
#endif

/// Progress on standard error: a rewriting line on a terminal, one line per step with
/// `verbose`, nothing otherwise (so pipes and logs stay clean).
final class ProgressBar: @unchecked Sendable {
    private let tty: Bool
    private let enabled: Bool
    private let verbose: Bool
    private var drawn = false

    init(enabled: Bool, verbose: Bool) {
        self.tty = isatty(2) == 1
        self.enabled = enabled
        self.verbose = verbose
    }

    func update(_ done: Int, of total: Int, _ label: String) {
        guard enabled, tty || verbose else { return }
        let width = 24
        let filled = total > 0 ? done * width / total : width
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        let line = "[\(bar)] \(done)/\(total) \(label)"
        if tty && !verbose {
            emit("\r\u{1B}[2K" + line)
            drawn = true
        } else {
            emit(line + "\n")
        }
    }

    func finish() {
        if drawn { emit("\n") }
        drawn = false
    }

    private func emit(_ text: String) { writeError(text) }
}

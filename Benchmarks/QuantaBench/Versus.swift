import BenchSupport
import QuantaCore
import QuantaReport

#if canImport(Glibc)
import Glibc
#endif

/// `quanta-bench versus`: whole commands timed side by side. Each run executes every command once,
/// in turn (Quanta's first, then the reference), so slow drifts of the machine hit both alike;
/// the report gives per command the median wall time and peak resident memory over the runs, and
/// each command's median over the first one's. The sgemm peak of the same run is printed, so
/// figures from different sessions can be put on one scale.
///
/// Usage: quanta-bench versus [--runs N] [--warmup W] --command 'quanta quantize ...' [--command 'llama-quantize ...' ...]
/// Commands run through /bin/sh -c; their output is discarded, and a failing command stops the
/// benchmark with its exit status and the last lines of its standard error.
enum Versus {
    struct Sample {
        let seconds: Double
        let peakKilobytes: Int
    }

    static func run(_ arguments: [String]) -> Int32 {
        var runs = 5, warmup = 1
        var commands: [String] = []
        var iterator = arguments.makeIterator()
        while let argument = iterator.next() {
            switch argument {
            case "--runs": runs = max(1, Int(iterator.next() ?? "") ?? runs)
            case "--warmup": warmup = max(0, Int(iterator.next() ?? "") ?? warmup)
            case "--command":
                guard let command = iterator.next() else { return usage("--command needs a command line") }
                commands.append(command)
            default: return usage("unknown argument '\(argument)'")
            }
        }
        guard !commands.isEmpty else { return usage("give at least one --command") }
        print("sgemm peak: \(fixed(sgemmPeak(1024, 5), 1)) GFLOP/s (n 1024, OpenBLAS threads as configured)")
        var samples = [[Sample]](repeating: [], count: commands.count)
        for round in 0..<(warmup + runs) {
            for (index, command) in commands.enumerated() {
                switch execute(command) {
                case let .success(sample): if round >= warmup { samples[index].append(sample) }
                case let .failure(failure):
                    print("command \(index + 1) failed: \(failure.message)")
                    return 1
                }
            }
        }
        let base = median(samples[0].map(\.seconds))
        print("median of \(runs) alternating runs (after \(warmup) warm-up):")
        print("  #   wall s   ratio   peak MB   command")
        for (index, command) in commands.enumerated() {
            let wall = median(samples[index].map(\.seconds))
            let peak = Double(samples[index].map(\.peakKilobytes).max() ?? 0) / 1024
            print("\(String(index + 1).leftPadded(3)) \(fixed(wall, 3).leftPadded(8)) \(fixed(wall / base, 2).leftPadded(7)) \(fixed(peak, 1).leftPadded(9))   \(command)")
        }
        return 0
    }

    static func usage(_ problem: String) -> Int32 {
        print("quanta-bench versus: \(problem)")
        print("usage: quanta-bench versus [--runs N] [--warmup W] --command CMD [--command CMD ...]")
        return 64
    }

    static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        guard !sorted.isEmpty else { return .nan }
        return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    }

    /// Runs `command` through /bin/sh with output to /dev/null (standard error kept in a temporary
    /// file for the failure message); wall time from spawn to reaping, peak RSS from wait4.
    static func execute(_ command: String) -> Result<Sample, Failure> {
        let errorPath = "/tmp/quanta-bench-versus-\(getpid()).err"
        defer { unlink(errorPath) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, errorPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        let argv: [UnsafeMutablePointer<CChar>?] = ["/bin/sh", "-c", command].map { (text: String) in strdup(text) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var pid: pid_t = 0
        let start = monotonicSeconds()
        let spawned = posix_spawn(&pid, "/bin/sh", &actions, nil, argv, environ)
        guard spawned == 0 else { return .failure(Failure("cannot start /bin/sh: \(String(cString: strerror(spawned)))")) }
        var status: Int32 = 0
        var usage = rusage()
        while wait4(pid, &status, 0, &usage) < 0 && errno == EINTR {}
        let seconds = monotonicSeconds() - start
        guard status & 0x7f == 0, (status >> 8) & 0xff == 0 else {
            let tail = (try? String(contentsOfFile: errorPath, encoding: .utf8))?.split(separator: "\n").suffix(3).joined(separator: "\n") ?? ""
            return .failure(Failure("exit status \(status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)): \(command)\n\(tail)"))
        }
        return .success(Sample(seconds: seconds, peakKilobytes: usage.ru_maxrss))
    }

    struct Failure: Error {
        let message: String
        init(_ message: String) { self.message = message }
    }
}

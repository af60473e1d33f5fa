import Foundation
import QuantaEval
import QuantaIO
import QuantaModel
import TestSupport
import XCTest

/// What the architecture family tests share: the transformers oracle scripts
/// (`Scripts/<family>_reference.py`) and the comparisons with llama.cpp.
enum FamilyOracle {
    /// The token ids every oracle script runs.
    static let ids: [Int32] = [5, 17, 300, 2048, 4095, 9, 9, 1000]

    /// Runs `Scripts/<script>` with a fresh folder `name` first and then `arguments`; returns the
    /// folder and the logits the script printed. Skips when torch or transformers are absent.
    static func run(_ script: String, folder name: String, _ arguments: [String],
                    file: StaticString = #filePath, line: UInt = #line) throws -> (folder: String, logits: [Float]) {
        let python = try TestSupport.python()
        guard try TestSupport.run(python, ["-c", "import torch, transformers"]).status == 0 else {
            throw XCTSkip("torch and transformers absent from the oracle venv: run `bash Scripts/setup.sh --torch`")
        }
        let folder = try TestSupport.temporaryFolder() + "/" + name
        let run = try TestSupport.run(python, [TestSupport.path("Scripts/" + script), folder] + arguments)
        XCTAssertEqual(run.status, 0, run.stderr, file: file, line: line)
        return (folder, run.stdout.split(separator: " ").map { Float($0.trimmingCharacters(in: .whitespacesAndNewlines))! })
    }

    /// Each case's `extra` keys added to the config.json members `base` make ModelFolder throw an
    /// error naming "config.json: <key>".
    static func assertConfigsRefused(base: String, _ cases: [(extra: String, key: String)], file: StaticString = #filePath, line: UInt = #line) throws {
        for (extra, key) in cases {
            let folder = try TestSupport.temporaryFolder() + "/\(key)"
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            try "{\(base), \(extra)}".write(toFile: folder + "/config.json", atomically: true, encoding: .utf8)
            XCTAssertThrowsError(try ModelFolder(path: folder), key, file: file, line: line) { error in
                XCTAssertTrue("\(error)".contains("config.json: \(key)"), "\(error)", file: file, line: line)
            }
        }
    }

    /// Columns 0, 97, ... of the 8 positions' logits over a vocabulary of `vocab`, as the scripts print them.
    static func sampled(_ logits: [Float], vocab: Int = 4096) -> [Float] {
        (0..<8).flatMap { t in stride(from: 0, to: vocab, by: 97).map { logits[t * vocab + $0] } }
    }

    static func maxDifference(_ a: [Float], _ b: [Float], file: StaticString = #filePath, line: UInt = #line) -> Float {
        XCTAssertEqual(a.count, b.count, file: file, line: line)
        return zip(a, b).map { abs($0 - $1) }.max() ?? .infinity
    }

    /// `quanta quantize folder F32` equals llama.cpp's converter output for the folder (tensors,
    /// bytes, `<arch>.*` and `tokenizer.*` keys); llama-perplexity on Quanta's file is within 1e-4
    /// relative of Quanta's fp32 eval (ctx 64, 8 chunks; when built); Quanta's Q4_K_M of the
    /// folder equals llama-quantize's of the converter's file (skips when not built). Returns the
    /// Q4_K_M types. Needs QUANTA_LLAMA_CPP (skips otherwise).
    @discardableResult
    static func checkAgainstLlamaCpp(folder: String, architecture: String, file: StaticString = #filePath, line: UInt = #line) throws -> [String] {
        let tree = try TestSupport.llamaCppTree()
        let ours = folder + ".gguf", theirs = folder + "-llamacpp.gguf"
        XCTAssertEqual(try TestSupport.quanta(["quantize", folder, ours, "F32"]).status, 0, file: file, line: line)
        try TestSupport.convertWithLlamaCpp(tree, folder: folder, to: theirs, file: file, line: line)
        TestSupport.assertSameGGUF(try GGUFFile(path: ours), try GGUFFile(path: theirs), keyPrefixes: [architecture + ".", "tokenizer."],
                                   file: file, line: line)
        if let (text, perplexity) = try TestSupport.llamaPerplexity(tree, model: ours, ctx: 64, chunks: 8, file: file, line: line) {
            let settings = PerplexityProtocol(context: 64, chunks: 8, addBOS: false, batch: 4)
            let mine = try Evaluator(model: DecoderModel(path: ours), protocol: settings).run(text: String(contentsOfFile: text, encoding: .utf8))
            XCTAssertEqual(mine.perplexity, perplexity, accuracy: perplexity * 1e-4, "llama-perplexity", file: file, line: line)
        }
        return try TestSupport.assertQuantizeEqualsLlamaQuantize(tree, folder: folder, converted: theirs, preset: "Q4_K_M", file: file, line: line)
    }
}

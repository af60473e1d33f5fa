import Foundation
import QuantaIO
import XCTest

/// llama.cpp as a measuring peer: its converter, llama-perplexity and llama-quantize, from the
/// source tree (with a CPU build in build/bin) that QUANTA_LLAMA_CPP names.
extension TestSupport {
    /// The llama.cpp tree QUANTA_LLAMA_CPP names; throws XCTSkip when it is unset or has no converter.
    public static func llamaCppTree() throws -> String {
        guard let tree = ProcessInfo.processInfo.environment["QUANTA_LLAMA_CPP"],
              FileManager.default.fileExists(atPath: tree + "/convert_hf_to_gguf.py") else {
            throw XCTSkip("set QUANTA_LLAMA_CPP to a llama.cpp source tree to compare with its convert_hf_to_gguf.py")
        }
        return tree
    }

    /// `python -c` source running llama.cpp's convert_hf_to_gguf.py (argv[1], then its own
    /// arguments) with the pre-tokenizer named "gpt-2": the converter does not know the bundled
    /// tokenizer's hash, and "gpt-2" is the name Quanta writes for a ByteLevel pre-tokenizer.
    public static let llamaConverterWrapper = """
        import runpy, sys
        converter = sys.argv[1]
        sys.path.insert(0, converter.rsplit("/", 1)[0])
        import conversion.base as base
        base.TextModel.get_vocab_base_pre = lambda self, tokenizer: "gpt-2"
        sys.argv = [converter] + sys.argv[2:]
        runpy.run_path(converter, run_name="__main__")
        """

    /// Runs the converter of `tree` on `folder` (F32) into `output`, through `llamaConverterWrapper`
    /// when `gpt2Vocabulary`, and asserts it succeeded.
    public static func convertWithLlamaCpp(_ tree: String, folder: String, to output: String, gpt2Vocabulary: Bool = true,
                                           file: StaticString = #filePath, line: UInt = #line) throws {
        let converter = [tree + "/convert_hf_to_gguf.py", folder, "--outtype", "f32", "--outfile", output]
        let run = try TestSupport.run(try python(), gpt2Vocabulary ? ["-c", llamaConverterWrapper] + converter : converter)
        XCTAssertEqual(run.status, 0, run.stderr, file: file, line: line)
    }

    /// The first 4000 characters of the bundled evaluation text in a file of their own, and
    /// llama-perplexity's final PPL on `model` over them (`-c ctx --chunks chunks`, 2 threads);
    /// nil when llama-perplexity is not built.
    public static func llamaPerplexity(_ tree: String, model: String, ctx: Int, chunks: Int,
                                       file: StaticString = #filePath, line: UInt = #line) throws -> (text: String, perplexity: Double)? {
        let binary = tree + "/build/bin/llama-perplexity"
        guard FileManager.default.isExecutableFile(atPath: binary) else { return nil }
        let text = try temporaryFolder() + "/eval.txt"
        try String(try String(contentsOfFile: path("Calibration/austen-persuasion-eval.txt"), encoding: .utf8).prefix(4000))
            .write(toFile: text, atomically: true, encoding: .utf8)
        let run = try TestSupport.run(binary, ["-m", model, "-f", text, "-c", String(ctx), "--chunks", String(chunks), "-b", String(ctx), "-t", "2"])
        XCTAssertEqual(run.status, 0, run.stderr, file: file, line: line)
        let final = (run.stdout + run.stderr).components(separatedBy: "Final estimate: PPL = ").last?.split(separator: " ").first
        return (text, try XCTUnwrap(final.flatMap { Double($0) }, run.stderr, file: file, line: line))
    }

    /// `quanta quantize folder PRESET` against llama-quantize's PRESET of `converted` (the
    /// converter's F32 file of the same folder): the same tensors in the same order, the same
    /// types, the same bytes. Throws XCTSkip when llama-quantize is not built. Returns the types.
    @discardableResult
    public static func assertQuantizeEqualsLlamaQuantize(_ tree: String, folder: String, converted: String, preset: String,
                                                         file: StaticString = #filePath, line: UInt = #line) throws -> [String] {
        let llamaQuantize = tree + "/build/bin/llama-quantize"
        guard FileManager.default.isExecutableFile(atPath: llamaQuantize) else {
            throw XCTSkip("\(llamaQuantize) is not built: the \(preset) comparison is skipped")
        }
        let ours = folder + "-\(preset).gguf", theirs = folder + "-llamacpp-\(preset).gguf"
        let run = try quanta(["quantize", folder, ours, preset])
        XCTAssertEqual(run.status, 0, run.stderr, file: file, line: line)
        let quantize = try TestSupport.run(llamaQuantize, [converted, theirs, preset])
        XCTAssertEqual(quantize.status, 0, quantize.stderr, file: file, line: line)
        let mine = try GGUFFile(path: ours), expected = try GGUFFile(path: theirs)
        XCTAssertEqual(mine.tensors.map(\.name), expected.tensors.map(\.name), file: file, line: line)
        XCTAssertEqual(mine.tensors.map(\.type), expected.tensors.map(\.type), file: file, line: line)
        for (x, y) in zip(mine.tensors, expected.tensors) {
            XCTAssertTrue(mine.rawBytes(x).elementsEqual(expected.rawBytes(y)), "\(y.name): bytes differ", file: file, line: line)
        }
        return expected.tensors.map(\.type.name)
    }
}

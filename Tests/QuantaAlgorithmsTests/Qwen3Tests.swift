import QuantaAlgorithms
import QuantaCore
import QuantaEval
import QuantaIO
import QuantaModel
import TestSupport
import XCTest

/// Qwen3 through the seams: a tiny random model made by transformers' Qwen3ForCausalLM
/// (`Scripts/qwen3_reference.py`), against its logits, then quantize -> eval -> convert.
final class Qwen3Tests: XCTestCase {
    static let ids: [Int32] = [5, 17, 300, 2048, 4095, 9, 9, 1000]

    /// The folder and transformers' logits at columns 0, 97, ... of the 8 positions.
    func reference() throws -> (folder: String, logits: [Float]) {
        try FamilyOracle.run("qwen3_reference.py", folder: "qwen3", [TestSupport.austenModel + "/tokenizer.json"])
    }


    /// Largest difference over the largest reference magnitude.
    func relativeError(_ ours: [Float], _ theirs: [Float]) -> Float {
        XCTAssertEqual(ours.count, theirs.count)
        let scale = theirs.map(abs).max() ?? 1
        return zip(ours, theirs).map { abs($0 - $1) }.max()! / scale
    }

    func testForwardQuantizeEvalConvert() throws {
        let (folder, transformers) = try reference()
        XCTAssertEqual(transformers.count, 8 * 43)
        let model = try DecoderModel(path: folder)
        XCTAssertTrue(model.config.qkNorm)
        XCTAssertEqual([model.config.headDim, model.config.qDim, model.config.hiddenSize], [32, 128, 64])
        XCTAssertLessThan(relativeError(FamilyOracle.sampled(try model.logits([Qwen3Tests.ids])), transformers), 1e-4)

        // F32 GGUF: llama.cpp's qwen3 names and keys, HF rotary halves (no q/k permutation).
        let gguf = folder + ".gguf"
        var options = QuantizationOptions()
        options.pure = true
        _ = try GGUFExport(source: HuggingFaceSource(path: folder), preset: .f32, options: options, importance: nil, threads: 2).run(output: gguf)
        let file = try GGUFFile(path: gguf)
        XCTAssertEqual(file["general.architecture"], .string("qwen3"))
        XCTAssertEqual(file["qwen3.attention.key_length"]?.intValue, 32)
        XCTAssertEqual(file["qwen3.attention.value_length"]?.intValue, 32)
        XCTAssertEqual(file["qwen3.embedding_length"]?.intValue, 64)
        XCTAssertEqual(file["qwen3.attention.head_count_kv"]?.intValue, 2)
        XCTAssertNil(file["qwen3.vocab_size"])  // llama.cpp's converter writes neither for qwen3
        XCTAssertNil(file["qwen3.rope.dimension_count"])
        XCTAssertEqual(file.tensor("blk.1.attn_q_norm.weight")?.dimensions, [32])
        XCTAssertEqual(file.tensor("blk.0.attn_k_norm.weight")?.dimensions, [32])
        XCTAssertEqual(file.tensor("blk.0.attn_q.weight")?.dimensions, [64, 128])
        XCTAssertNil(file.tensor("blk.0.attn_q.bias"))
        XCTAssertEqual(file.tensors.count, 3 + 2 * 11)
        let q = try HuggingFaceSource(path: folder).values("blk.0.attn_q.weight")
        XCTAssertEqual(try file.rawBytes("blk.0.attn_q.weight").withMemoryRebound(to: Float.self) { Array($0) }, q)

        // Eval of the GGUF at F32 equals eval of the folder.
        let text = String(try String(contentsOfFile: TestSupport.path("Calibration/austen-persuasion-eval.txt"), encoding: .utf8).prefix(4000))
        let settings = PerplexityProtocol(context: 64, chunks: 8, addBOS: true, batch: 4)
        let fromFolder = try Evaluator(model: model, protocol: settings).run(text: text)
        let fromGGUF = try Evaluator(model: DecoderModel(path: gguf), protocol: settings).run(text: text)
        XCTAssertEqual(fromFolder.scoredTokens, 8 * 31)
        XCTAssertEqual(fromGGUF.perplexity, fromFolder.perplexity, accuracy: fromFolder.perplexity * 1e-5)

        // Every preset writes a file that loads and evaluates; the 8-bit one stays close.
        for preset in GGUFPreset.allCases {
            let output = "\(folder)-\(preset.rawValue).gguf"
            _ = try GGUFExport(source: HuggingFaceSource(path: folder), preset: preset, options: QuantizationOptions(),
                               importance: nil, threads: 2).run(output: output)
            let result = try Evaluator(model: DecoderModel(path: output), protocol: settings).run(text: text)
            XCTAssertTrue(result.perplexity.isFinite, preset.rawValue)
            if preset == .q8_0 { XCTAssertEqual(result.perplexity, fromFolder.perplexity, accuracy: fromFolder.perplexity * 0.01) }
        }

        // And back to a Hugging Face folder with the same logits.
        let back = folder + "-back"
        _ = try HuggingFaceExport.convert(gguf: gguf, to: back)
        let converted = try DecoderModel(path: back)
        XCTAssertEqual(converted.config.modelType, "qwen3")
        XCTAssertEqual(try converted.logits([Qwen3Tests.ids]), try model.logits([Qwen3Tests.ids]))
    }
}

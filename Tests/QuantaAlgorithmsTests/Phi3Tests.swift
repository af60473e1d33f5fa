import Foundation
import QuantaAlgorithms
import QuantaCore
import QuantaEval
import QuantaIO
import QuantaModel
import TestSupport
import XCTest

/// Phi-3 through the seams: tiny random models made by transformers' Phi3ForCausalLM
/// (`Scripts/phi3_reference.py`: 3 layers, fused qkv_proj and gate_up_proj, 12 of 16 head
/// dimensions rotated, LongRoPE), against its logits with the short and the long factors; then
/// `quanta quantize` to GGUF, llama.cpp's converter, eval and convert.
final class Phi3Tests: XCTestCase {
    /// Largest |ours - transformers| allowed on logits of magnitude up to ~10.
    static let tolerance: Float = 5e-5

    /// A model folder with `original_max_position_embeddings` = `original` (named without
    /// "phi3": see testNameLlamaCppCannotLoadIsRefused) and transformers' logits at columns 0, 97, ... of the 8 positions.
    func reference(original: Int) throws -> (folder: String, logits: [Float]) {
        try FamilyOracle.run("phi3_reference.py", folder: "tiny-p3-\(original)", [TestSupport.austenModel + "/tokenizer.json", String(original)])
    }



    /// Settings Quanta does not run, or that contradict each other, are refused naming the key.
    func testUnsupportedConfigsNameTheKey() throws {
        let base = #""model_type": "phi3", "hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 4096, "original_max_position_embeddings": 32"#
        let cases = [
            (#""hidden_act": "gelu""#, "hidden_act"),
            (#""rope_parameters": {"rope_type": "dynamic", "factor": 2.0}"#, "rope_parameters"),
            (#""rope_parameters": {"rope_type": "longrope", "short_factor": [1, 1], "long_factor": [1, 1, 1, 1, 1, 1, 1, 1]}"#, "rope_parameters.short_factor"),
            (#""rope_scaling": {"type": "su", "short_factor": [1, 1, 1, 1, 1, 1, 1, 1], "long_factor": [1, 1, 1, 1, 1, 1, 1, -1]}"#, "rope_scaling.long_factor"),
            (#""partial_rotary_factor": 0.1"#, "partial_rotary_factor"),
        ]
        try FamilyOracle.assertConfigsRefused(base: base, cases)
    }

    /// transformers' logits with the short factors (8 positions within the original 32) and with
    /// the long ones (beyond the original 4).
    func testForwardShortAndLongFactors() throws {
        for original in [32, 4] {
            let (folder, transformers) = try reference(original: original)
            XCTAssertEqual(transformers.count, 8 * 43)
            let model = try DecoderModel(path: folder)
            let c = model.config
            XCTAssertEqual(c.modelType, "phi3")
            XCTAssertEqual([c.headDim, c.qDim, c.kvDim, c.rotaryDimensions, c.layerCount], [16, 64, 32, 12, 3])
            XCTAssertEqual(c.originalContext, original)
            XCTAssertEqual(c.maxPositionEmbeddings, 4 * original)
            let rope = try XCTUnwrap(c.longRope)
            XCTAssertEqual(rope.short, [1.0, 1.05, 1.2, 1.6, 2.5, 4.0])
            XCTAssertEqual(rope.long, [1.0, 1.3, 2.0, 3.5, 6.0, 11.0])
            XCTAssertEqual(rope.attentionFactor, (1 + log(4.0) / log(Double(original))).squareRoot(), accuracy: 1e-12)
            XCTAssertNil(c.slidingWindow)
            XCTAssertFalse(c.tieWordEmbeddings)
            XCTAssertLessThan(FamilyOracle.maxDifference(FamilyOracle.sampled(try model.logits([FamilyOracle.ids])), transformers), Phi3Tests.tolerance, "original \(original)")
        }
    }

    /// `quanta quantize FOLDER F32`: llama.cpp's phi3 names and keys, fused tensors kept fused,
    /// RoPE factors as tensors; the GGUF runs as the folder does (eval at a context of 64, past the
    /// original 32: the long factors); Q8_0 stays within 1%; the GGUF converts back to the same model.
    func testGGUFEvalAndConvert() throws {
        let (folder, _) = try reference(original: 32)
        let model = try DecoderModel(path: folder)
        let gguf = folder + ".gguf"
        let run = try TestSupport.quanta(["quantize", folder, gguf, "F32"])
        XCTAssertEqual(run.status, 0, run.stderr)
        let file = try GGUFFile(path: gguf)
        XCTAssertEqual(file["general.architecture"], .string("phi3"))
        let expected: [(String, GGUFValue)] = [
            ("phi3.rope.scaling.attn_factor", .float32(Float((1 + log(4.0) / log(32.0)).squareRoot()))),
            ("phi3.context_length", .uint32(128)), ("phi3.rope.scaling.original_context_length", .uint32(32)),
            ("phi3.embedding_length", .uint32(64)), ("phi3.feed_forward_length", .uint32(96)), ("phi3.block_count", .uint32(3)),
            ("phi3.attention.head_count", .uint32(4)), ("phi3.attention.head_count_kv", .uint32(2)),
            ("phi3.attention.layer_norm_rms_epsilon", .float32(1e-5)), ("phi3.rope.dimension_count", .uint32(12)),
            ("phi3.rope.freq_base", .float32(10000)), ("phi3.attention.sliding_window", .uint32(0)),
        ]
        XCTAssertEqual(file.metadata.filter { $0.key.hasPrefix("phi3.") }.map(\.key), expected.map(\.0))
        for (key, value) in expected { XCTAssertEqual(file[key], value, key) }
        XCTAssertEqual(file.tensors.count, 5 + 3 * 6)
        XCTAssertEqual(Array(file.tensors.prefix(5).map(\.name)),  // llama.cpp's order: outside the blocks first, by name
                       ["output.weight", "output_norm.weight", "rope_factors_long.weight", "rope_factors_short.weight", "token_embd.weight"])
        XCTAssertEqual(try file.rawBytes("rope_factors_long.weight").withMemoryRebound(to: Float.self) { Array($0) }, [1.0, 1.3, 2.0, 3.5, 6.0, 11.0])
        XCTAssertEqual(file.tensor("blk.1.attn_qkv.weight")?.dimensions, [64, 128])
        XCTAssertEqual(file.tensor("blk.1.ffn_up.weight")?.dimensions, [64, 192])
        XCTAssertNil(file.tensor("blk.1.ffn_gate.weight"))

        let back = try DecoderModel(path: gguf)
        XCTAssertEqual(back.config.rotaryDimensions, 12)
        XCTAssertEqual(back.config.longRope?.long, model.config.longRope?.long)
        XCTAssertNil(back.config.slidingWindow)
        // The attention factor went through f32 in the file.
        XCTAssertLessThan(FamilyOracle.maxDifference(try back.logits([FamilyOracle.ids]), try model.logits([FamilyOracle.ids])), 1e-5)
        let text = String(try String(contentsOfFile: TestSupport.path("Calibration/austen-persuasion-eval.txt"), encoding: .utf8).prefix(4000))
        let settings = PerplexityProtocol(context: 64, chunks: 8, addBOS: false, batch: 4)
        let fromFolder = try Evaluator(model: model, protocol: settings).run(text: text)
        let fromGGUF = try Evaluator(model: back, protocol: settings).run(text: text)
        XCTAssertEqual(fromFolder.scoredTokens, 8 * 31)
        XCTAssertEqual(fromGGUF.perplexity, fromFolder.perplexity, accuracy: fromFolder.perplexity * 1e-5)

        let q8 = folder + "-q8.gguf"
        XCTAssertEqual(try TestSupport.quanta(["quantize", folder, q8, "Q8_0"]).status, 0)
        let q8Result = try Evaluator(model: DecoderModel(path: q8), protocol: settings).run(text: text)
        XCTAssertEqual(q8Result.perplexity, fromFolder.perplexity, accuracy: fromFolder.perplexity * 0.01)
        XCTAssertNotEqual(q8Result.perplexity, fromFolder.perplexity)

        let hf = folder + "-back"
        _ = try HuggingFaceExport.convert(gguf: gguf, to: hf)
        let converted = try DecoderModel(path: hf)
        XCTAssertEqual(converted.config.modelType, "phi3")
        XCTAssertEqual(converted.config.longRope?.short, model.config.longRope?.short)
        XCTAssertEqual(try converted.logits([FamilyOracle.ids]), try back.logits([FamilyOracle.ids]))
    }

    /// llama.cpp cannot load a phi3 file named "phi3..." whose vocabulary lacks `<s>`, `</s>`,
    /// `<unk>` or `<|endoftext|>`: Quanta refuses to write it and writes nothing. GPTQ refuses the
    /// fused projections it does not split.
    func testRefusals() throws {
        let (folder, _) = try reference(original: 32)
        let named = folder.replacingOccurrences(of: "tiny-p3", with: "my-Phi3")
        try FileManager.default.moveItem(atPath: folder, toPath: named)
        let out = named + ".gguf"
        let run = try TestSupport.quanta(["quantize", named, out, "Q8_0"])
        XCTAssertNotEqual(run.status, 0)
        XCTAssertTrue(run.stderr.contains("general.name 'my-Phi3-32': llama.cpp looks up <s>, </s>, <unk> in the vocabulary"), run.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))

        try FileManager.default.moveItem(atPath: named, toPath: folder)
        let gptq = try TestSupport.quanta(["quantize", folder, out, "Q4_K_M", "--method", "gptq", "--data",
                                           TestSupport.path("Calibration/austen-train.txt"), "--samples", "2", "--seq-len", "16"])
        XCTAssertNotEqual(gptq.status, 0)
        XCTAssertTrue(gptq.stderr.contains("gptq: phi3's fused projections (qkv_proj, gate_up_proj) are quantized by round-to-nearest only"), gptq.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
    }

    /// The F32 GGUF equals what llama.cpp's converter writes for the same folder (tensors, bytes,
    /// `phi3.*` and `tokenizer.*` keys); llama-perplexity on Quanta's file agrees with Quanta's eval
    /// (context 64, past the original 32: the long factors); llama-quantize's Q4_K_M of the
    /// converter's file equals Quanta's (attn_qkv raised like attn_v). Needs a llama.cpp tree in
    /// QUANTA_LLAMA_CPP, as Gemma3Tests; the converter reads the folder's tokenizer as Phi-4's GPT2Tokenizer.
    func testGGUFEqualsLlamaCppConverter() throws {
        _ = try TestSupport.llamaCppTree()
        let (folder, _) = try reference(original: 32)
        try FamilyOracle.checkAgainstLlamaCpp(folder: folder, architecture: "phi3")
        // attn_qkv follows attn_v's rules: Q6_K in the last block (Q8_0 for rows of 64), Q4_K (Q5_0) in the first.
        let ours = try GGUFFile(path: folder + "-Q4_K_M.gguf")
        XCTAssertEqual(ours.tensor("blk.2.attn_qkv.weight")?.type, .q8_0)
        XCTAssertEqual(ours.tensor("blk.0.attn_qkv.weight")?.type, .q5_0)
    }

    /// Phi-3 mini's tokenizer form (SentencePiece `tokenizer.model` plus added tokens in
    /// tokenizer.json, tokenizer_config.json and added_tokens.json; vocab_size 1024 beyond the
    /// 1003 tokens): the folder runs as transformers does, and the GGUF vocabulary follows
    /// llama.cpp's Phi-3 converter (added tokens control when special, else user-defined, even
    /// when they look special; "[PAD<i>]" unused with score -10000 after them), equal to the
    /// converter's keys with QUANTA_LLAMA_CPP.
    func testSentencePieceVocabulary() throws {
        let python = try TestSupport.python()
        guard try TestSupport.run(python, ["-c", "import torch, transformers, sentencepiece"]).status == 0 else {
            throw XCTSkip("torch, transformers or sentencepiece absent from the oracle venv: run `bash Scripts/setup.sh --torch`")
        }
        let root = try TestSupport.temporaryFolder()
        let vocabulary = try TestSupport.run(python, [TestSupport.path("Scripts/sentencepiece_vocabulary.py"), root,
                                                      TestSupport.path("Calibration/calib-c4.txt")])
        XCTAssertEqual(vocabulary.status, 0, vocabulary.stderr)
        let folder = root + "/tiny-p3-spm"
        let run = try TestSupport.run(python, [TestSupport.path("Scripts/phi3_reference.py"), folder, root, "32"])
        XCTAssertEqual(run.status, 0, run.stderr)
        let transformers = run.stdout.split(separator: " ").map { Float($0.trimmingCharacters(in: .whitespacesAndNewlines))! }
        let model = try DecoderModel(path: folder)
        let logits = try model.logits([FamilyOracle.ids.map { $0 % 1024 }])
        let sampled = FamilyOracle.sampled(logits, vocab: 1024)
        XCTAssertLessThan(FamilyOracle.maxDifference(sampled, transformers), Phi3Tests.tolerance)

        let gguf = folder + ".gguf"
        let quantize = try TestSupport.quanta(["quantize", folder, gguf, "F32"])
        XCTAssertEqual(quantize.status, 0, quantize.stderr)
        let file = try GGUFFile(path: gguf)
        let tokens = file["tokenizer.ggml.tokens"]?.arrayValue?.compactMap(\.stringValue) ?? []
        let types = file["tokenizer.ggml.token_type"]?.arrayValue?.compactMap(\.intValue) ?? []
        let scores = file["tokenizer.ggml.scores"]?.arrayValue?.compactMap(\.doubleValue) ?? []
        XCTAssertEqual(tokens.count, 1024)
        XCTAssertEqual(Array(tokens[999...1004]), [try SentencePieceModelFile(path: folder + "/tokenizer.model").pieces[999].text,
                                                    "<|endoftext|>", "<|user|>", "<|assistant|>", "[PAD1003]", "[PAD1004]"])
        XCTAssertEqual(Array(types[1000...1004]), [3, 4, 3, 5, 5])
        XCTAssertEqual(Array(scores[1000...1004]), [-1000, -1000, -1000, -10000, -10000])
        XCTAssertEqual(file["tokenizer.ggml.model"]?.stringValue, "llama")
        XCTAssertEqual(file["tokenizer.ggml.eos_token_id"]?.intValue, 1000)

        let tree = try TestSupport.llamaCppTree()
        let theirs = folder + "-llamacpp.gguf"
        try TestSupport.convertWithLlamaCpp(tree, folder: folder, to: theirs, gpt2Vocabulary: false)
        TestSupport.assertSameGGUF(file, try GGUFFile(path: theirs), keyPrefixes: ["phi3.", "tokenizer."])
    }
    /// A phi3 GGUF whose RoPE metadata contradicts itself is refused naming the key or tensor:
    /// an odd rotated width, one wider than a head, factor tensors of the wrong count or sign, long factors without short ones.
    func testMalformedRoPEMetadataRefused() throws {
        let (folder, _) = try reference(original: 32)
        let gguf = folder + ".gguf"
        XCTAssertEqual(try TestSupport.quanta(["quantize", folder, gguf, "F32"]).status, 0)
        let file = try GGUFFile(path: gguf)
        func rewrite(_ name: String, metadata: (inout [(key: String, value: GGUFValue)]) -> Void = { _ in },
                     tensor: (GGUFTensorInfo, [UInt8]) -> (dimensions: [Int], bytes: [UInt8])? = { info, bytes in (info.dimensions, bytes) }) throws -> String {
            var kv = file.metadata
            metadata(&kv)
            let entries = file.tensors.compactMap { info -> GGUFWriter.TensorEntry? in
                tensor(info, Array(file.rawBytes(info))).map { GGUFWriter.TensorEntry(name: info.name, dimensions: $0.dimensions, type: info.type, bytes: $0.bytes) }
            }
            let path = folder + "-\(name).gguf"
            try GGUFWriter.write(to: path, metadata: kv, tensors: entries)
            return path
        }
        func floats(_ values: [Float]) -> [UInt8] { values.withUnsafeBytes { Array($0) } }
        let cases: [(path: String, message: String)] = [
            (try rewrite("odd") { kv in
                if let i = kv.firstIndex(where: { $0.key == "phi3.rope.dimension_count" }) { kv[i].value = .uint32(13) }
            }, "head width 13 (key_length, rope.dimension_count or embedding_length / head_count) is not a positive even number"),
            (try rewrite("wide") { kv in
                if let i = kv.firstIndex(where: { $0.key == "phi3.rope.dimension_count" }) { kv[i].value = .uint32(18) }
            }, "phi3.rope.dimension_count 18 must be even and at most the head width 16"),
            (try rewrite("count", tensor: { info, bytes in
                info.name == "rope_factors_long.weight" ? ([5], floats([1, 1, 1, 1, 1])) : (info.dimensions, bytes)
            }), "tensor 'rope_factors_long.weight': must hold 6 F32 values (rope.dimension_count / 2)"),
            (try rewrite("sign", tensor: { info, bytes in
                info.name == "rope_factors_short.weight" ? ([6], floats([1, 1, 1, -1, 1, 1])) : (info.dimensions, bytes)
            }), "tensor 'rope_factors_short.weight': RoPE factors must be positive"),
            (try rewrite("alone", tensor: { info, bytes in info.name == "rope_factors_short.weight" ? nil : (info.dimensions, bytes) }),
             "rope_factors_long.weight without rope_factors_short.weight"),
        ]
        for (path, message) in cases {
            XCTAssertThrowsError(try DecoderModel(path: path), message) { error in
                XCTAssertTrue("\(error)".contains(message), "\(error)")
            }
        }
    }
}

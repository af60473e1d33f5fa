import Foundation
import QuantaAlgorithms
import QuantaCore
import QuantaEval
import QuantaIO
import QuantaModel
import TestSupport
import XCTest

/// Gemma 3 through the seams: tiny random models made by transformers' Gemma3ForCausalLM
/// (`Scripts/gemma3_reference.py`: 7 layers, layer 5 global and the others sliding with a window
/// of 4 over 8 tokens, head_dim 32 with 4 heads on hidden 64, linear RoPE scaling on the global
/// layer), against its logits; then `quanta quantize` to GGUF, llama.cpp's converter, eval and convert.
final class Gemma3Tests: XCTestCase {
    /// Largest |ours - transformers| allowed on logits of magnitude up to ~12.5 (measured: 5.7e-6
    /// with query_pre_attn_scalar 24, 4.8e-6 with 32).
    static let tolerance: Float = 5e-5

    /// A model folder with `query_pre_attn_scalar` = `scalar` and transformers' logits at
    /// columns 0, 97, ... of the 8 positions.
    func reference(scalar: Int, multimodal: Bool = false) throws -> (folder: String, logits: [Float]) {
        try FamilyOracle.run("gemma3_reference.py", folder: "gemma3-\(scalar)\(multimodal ? "-mm" : "")",
                             [TestSupport.austenModel + "/tokenizer.json", String(scalar)] + (multimodal ? ["multimodal"] : []))
    }



    /// Settings Quanta does not run are refused naming the key, before any weight is read.
    func testUnsupportedConfigsNameTheKey() throws {
        let base = #""model_type": "gemma3_text", "hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 32, "vocab_size": 4096"#
        let cases = [
            (#""final_logit_softcapping": 30.0"#, "final_logit_softcapping"),
            (#""attn_logit_softcapping": 50.0"#, "attn_logit_softcapping"),
            (#""hidden_activation": "silu""#, "hidden_activation"),
            (#""layer_types": ["full_attention"]"#, "layer_types"),
            (#""rope_scaling": {"rope_type": "yarn", "factor": 4.0}"#, "rope_scaling"),
        ]
        try FamilyOracle.assertConfigsRefused(base: base, cases)
    }

    /// query_pre_attn_scalar 24 != head_dim 32: transformers' logits, and a GGUF refused because
    /// llama.cpp would scale attention by 1/sqrt(32).
    func testForwardWithQueryScalarAndRefusedGGUF() throws {
        let (folder, transformers) = try reference(scalar: 24)
        XCTAssertEqual(transformers.count, 8 * 43)
        let model = try DecoderModel(path: folder)
        let c = model.config
        XCTAssertEqual(c.modelType, "gemma3_text")
        XCTAssertEqual([c.headDim, c.qDim, c.hiddenSize, c.layerCount], [32, 128, 64, 7])
        XCTAssertEqual(c.queryPreAttentionScalar, 24)
        XCTAssertEqual(c.slidingWindow, 4)
        XCTAssertEqual(c.slidingLayers, [true, true, true, true, true, false, true])
        XCTAssertEqual(c.ropeTheta, 1_000_000)
        XCTAssertEqual(c.ropeLocalTheta, 10000)
        XCTAssertEqual(c.ropeLinearFactor, 8)
        XCTAssertTrue(c.tieWordEmbeddings && c.qkNorm && c.postNorms && c.scalesEmbeddings)
        XCTAssertEqual(c.activation, .geluTanh)
        XCTAssertLessThan(FamilyOracle.maxDifference(FamilyOracle.sampled(try model.logits([FamilyOracle.ids])), transformers), Gemma3Tests.tolerance)

        let run = try TestSupport.quanta(["quantize", folder, folder + ".gguf", "F32"])
        XCTAssertNotEqual(run.status, 0)
        XCTAssertTrue(run.stderr.contains("query_pre_attn_scalar"), run.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder + ".gguf"))
    }

    /// query_pre_attn_scalar = head_dim: the forward pass, then `quanta quantize FOLDER F32`
    /// with llama.cpp's gemma3 names, keys and norm weights + 1; eval of the GGUF equals eval of
    /// the folder; the GGUF converts back to the same model.
    func testGGUFEvalAndConvert() throws {
        let (folder, transformers) = try reference(scalar: 32)
        let model = try DecoderModel(path: folder)
        XCTAssertLessThan(FamilyOracle.maxDifference(FamilyOracle.sampled(try model.logits([FamilyOracle.ids])), transformers), Gemma3Tests.tolerance)

        let gguf = folder + ".gguf"
        let run = try TestSupport.quanta(["quantize", folder, gguf, "F32"])
        XCTAssertEqual(run.status, 0, run.stderr)
        let file = try GGUFFile(path: gguf)
        XCTAssertEqual(file["general.architecture"], .string("gemma3"))
        let expected: [(String, GGUFValue)] = [
            ("gemma3.block_count", .uint32(7)), ("gemma3.context_length", .uint32(512)), ("gemma3.embedding_length", .uint32(64)),
            ("gemma3.feed_forward_length", .uint32(96)), ("gemma3.attention.head_count", .uint32(4)),
            ("gemma3.attention.head_count_kv", .uint32(2)), ("gemma3.rope.scaling.type", .string("linear")),
            ("gemma3.rope.scaling.factor", .float32(8)), ("gemma3.rope.freq_base", .float32(1_000_000)),
            ("gemma3.rope.freq_base_swa", .float32(10000)), ("gemma3.attention.layer_norm_rms_epsilon", .float32(1e-6)),
            ("gemma3.attention.key_length", .uint32(32)), ("gemma3.attention.value_length", .uint32(32)),
            ("gemma3.attention.sliding_window", .uint32(4)),
        ]
        XCTAssertEqual(file.metadata.filter { $0.key.hasPrefix("gemma3.") }.map(\.key), expected.map(\.0))
        for (key, value) in expected { XCTAssertEqual(file[key], value, key) }
        XCTAssertEqual(file.tensors.count, 2 + 7 * 13)
        XCTAssertNil(file.tensor("output.weight"))
        XCTAssertEqual(file.tensor("blk.5.post_attention_norm.weight")?.dimensions, [64])
        XCTAssertEqual(file.tensor("blk.5.post_ffw_norm.weight")?.dimensions, [64])
        XCTAssertEqual(file.tensor("blk.0.attn_q.weight")?.dimensions, [64, 128])
        // Norm weights as llama.cpp's converter stores them: 1 + w.
        let weights = try SafetensorsCollection(file: folder + "/model.safetensors")
        for (hf, ggufName) in [("model.layers.3.pre_feedforward_layernorm.weight", "blk.3.ffn_norm.weight"),
                               ("model.layers.3.self_attn.k_norm.weight", "blk.3.attn_k_norm.weight"),
                               ("model.norm.weight", "output_norm.weight")] {
            let stored = try file.rawBytes(ggufName).withMemoryRebound(to: Float.self) { Array($0) }
            XCTAssertEqual(stored, try weights.floatTensor(hf).storage.map { $0 + 1 }, ggufName)
        }

        // The GGUF reads back as the same model: config, logits, perplexity.
        let back = try DecoderModel(path: gguf)
        XCTAssertEqual(back.config.slidingLayers, model.config.slidingLayers)
        XCTAssertEqual(back.config.queryPreAttentionScalar, 32)
        XCTAssertEqual(back.config.ropeLinearFactor, 8)
        XCTAssertEqual(back.config.ropeLocalTheta, 10000)
        XCTAssertEqual(try back.logits([FamilyOracle.ids]), try model.logits([FamilyOracle.ids]))
        let text = String(try String(contentsOfFile: TestSupport.path("Calibration/austen-persuasion-eval.txt"), encoding: .utf8).prefix(4000))
        let settings = PerplexityProtocol(context: 64, chunks: 8, addBOS: true, batch: 4)
        let fromFolder = try Evaluator(model: model, protocol: settings).run(text: text)
        let fromGGUF = try Evaluator(model: back, protocol: settings).run(text: text)
        XCTAssertEqual(fromFolder.scoredTokens, 8 * 31)
        XCTAssertEqual(fromGGUF.perplexity, fromFolder.perplexity, accuracy: fromFolder.perplexity * 1e-4)

        // A quantized file loads and stays close at 8 bits.
        let q8 = folder + "-q8.gguf"
        XCTAssertEqual(try TestSupport.quanta(["quantize", folder, q8, "Q8_0"]).status, 0)
        let q8Result = try Evaluator(model: DecoderModel(path: q8), protocol: settings).run(text: text)
        XCTAssertEqual(q8Result.perplexity, fromFolder.perplexity, accuracy: fromFolder.perplexity * 0.01)

        // And back to a Hugging Face folder that transformers' class reads: same logits here.
        let hf = folder + "-back"
        _ = try HuggingFaceExport.convert(gguf: gguf, to: hf)
        let converted = try DecoderModel(path: hf)
        XCTAssertEqual(converted.config.modelType, "gemma3_text")
        XCTAssertEqual(try converted.logits([FamilyOracle.ids]), try model.logits([FamilyOracle.ids]))
        // (w + 1) - 1 is within half an ulp of 1 of w.
        XCTAssertLessThanOrEqual(FamilyOracle.maxDifference(try SafetensorsCollection(file: hf + "/model.safetensors").floatTensor("model.norm.weight").storage,
                                               try weights.floatTensor("model.norm.weight").storage), 0x1p-24)
    }

    /// The F32 GGUF equals what llama.cpp's own converter writes for the same folder: every
    /// tensor (name, dimensions, type, bytes) and every `gemma3.*` and `tokenizer.*` key and
    /// value; llama-perplexity on Quanta's file agrees with Quanta's eval; and llama-quantize's
    /// Q4_K_M of the converter's file equals Quanta's. Needs a llama.cpp source tree in QUANTA_LLAMA_CPP (its convert_hf_to_gguf.py runs
    /// with the oracle venv); the converter does not know the bundled tokenizer's pre-tokenizer
    /// hash, so the run tells it "gpt-2", the name Quanta writes for a ByteLevel pre-tokenizer.
    /// The last two parts need llama-perplexity and llama-quantize built in QUANTA_LLAMA_CPP/build/bin.
    func testGGUFEqualsLlamaCppConverter() throws {
        _ = try TestSupport.llamaCppTree()
        let (folder, _) = try reference(scalar: 32)
        let types = try FamilyOracle.checkAgainstLlamaCpp(folder: folder, architecture: "gemma3")
        XCTAssertEqual(Set(types), ["F32", "Q5_0", "Q8_0"], "rows of 64 send the k-quants to their fallbacks")
    }

    /// A multimodal `gemma3` folder (Gemma3ForConditionalGeneration: text_config, a SigLIP vision
    /// tower, the projector) read for its text model: transformers' logits of a text-only input,
    /// and a GGUF with only the text model's tensors, byte-equal (tensors and gemma3.* keys) to the
    /// one written from the same text model saved as Gemma3ForCausalLM; with QUANTA_LLAMA_CPP,
    /// equal to what llama.cpp's converter writes for the multimodal folder.
    func testMultimodalFolderTextModel() throws {
        let (folder, transformers) = try reference(scalar: 32, multimodal: true)
        let model = try DecoderModel(path: folder)
        XCTAssertEqual(model.config.modelType, "gemma3_text")
        XCTAssertEqual(model.config.hfTensorPrefix, "language_model.")
        XCTAssertEqual(model.config.slidingLayers, [true, true, true, true, true, false, true])
        XCTAssertLessThan(FamilyOracle.maxDifference(FamilyOracle.sampled(try model.logits([FamilyOracle.ids])), transformers), Gemma3Tests.tolerance)

        let (text, _) = try reference(scalar: 32)
        let ours = folder + ".gguf", textOnly = text + ".gguf"
        for (from, to) in [(folder, ours), (text, textOnly)] {
            let run = try TestSupport.quanta(["quantize", from, to, "F32"])
            XCTAssertEqual(run.status, 0, run.stderr)
        }
        let a = try GGUFFile(path: ours)
        XCTAssertEqual(a.tensors.count, 2 + 7 * 13)
        TestSupport.assertSameGGUF(a, try GGUFFile(path: textOnly), keyPrefixes: ["gemma3.", "tokenizer."])

        let tree = try TestSupport.llamaCppTree()
        let theirs = folder + "-llamacpp.gguf"
        try TestSupport.convertWithLlamaCpp(tree, folder: folder, to: theirs)
        TestSupport.assertSameGGUF(a, try GGUFFile(path: theirs), keyPrefixes: ["gemma3.", "tokenizer."])
    }
    /// A Gemma 3 folder with Gemma's tokenizer form: `tokenizer.model` (SentencePiece BPE) and the
    /// tokenizer.json transformers' GemmaConverter writes (spaces replaced by "▁", no prefix, a
    /// Split on " " with nothing left to split, no Strip in the decoder). The GGUF vocabulary is
    /// `_set_vocab_sentencepiece`'s with `add_space_prefix` false, and the GGUF tokenizer (llama.cpp's
    /// SPM by score) gives the folder tokenizer's ids; with QUANTA_LLAMA_CPP the file equals the converter's.
    func testSentencePieceTokenizerModel() throws {
        let python = try TestSupport.python()
        guard try TestSupport.run(python, ["-c", "import torch, transformers, sentencepiece"]).status == 0 else {
            throw XCTSkip("torch, transformers or sentencepiece absent from the oracle venv: run `bash Scripts/setup.sh --torch`")
        }
        let (folder, _) = try reference(scalar: 32)
        let root = try TestSupport.temporaryFolder()
        let vocabulary = try TestSupport.run(python, [TestSupport.path("Scripts/sentencepiece_vocabulary.py"), root,
                                                      TestSupport.path("Calibration/calib-c4.txt")])
        XCTAssertEqual(vocabulary.status, 0, vocabulary.stderr)
        _ = try TestSupport.oracle(#"""
            import json, shutil, sys
            root, folder = sys.argv[1], sys.argv[2]
            sp = "\u2581"
            j = json.load(open(root + "/sp.json", encoding="utf-8"))
            j["normalizer"] = {"type": "Replace", "pattern": {"String": " "}, "content": sp}
            j["pre_tokenizer"] = {"type": "Split", "pattern": {"String": " "}, "behavior": "MergedWithPrevious", "invert": False}
            j["decoder"] = {"type": "Sequence", "decoders": [{"type": "Replace", "pattern": {"String": sp}, "content": " "},
                            {"type": "ByteFallback"}, {"type": "Fuse"}]}
            json.dump(j, open(folder + "/tokenizer.json", "w", encoding="utf-8"), ensure_ascii=False)
            shutil.copy(root + "/sp.model", folder + "/tokenizer.model")
            json.dump({"add_bos_token": True, "add_eos_token": False, "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>",
                       "pad_token": None, "model_max_length": 512, "tokenizer_class": "GemmaTokenizerFast"},
                      open(folder + "/tokenizer_config.json", "w"))
            """#, [root, folder])
        let gguf = folder + ".gguf"
        let run = try TestSupport.quanta(["quantize", folder, gguf, "F32"])
        XCTAssertEqual(run.status, 0, run.stderr)
        let file = try GGUFFile(path: gguf)
        XCTAssertEqual(file["tokenizer.ggml.model"]?.stringValue, "llama")
        XCTAssertEqual(file.metadata.last { $0.key.hasPrefix("tokenizer.") }?.key, "tokenizer.ggml.add_space_prefix")
        XCTAssertEqual(file["tokenizer.ggml.add_space_prefix"]?.boolValue, false)
        let fromFolder = try DecoderModel(path: folder).tokenizer, fromGGUF = try BPETokenizer(gguf: file)
        let text = String(decoding: try TestSupport.read(TestSupport.path("Calibration/calib-c4.txt")), as: UTF8.self)
        let lines = text.split(separator: "\n").prefix(400).map(String.init) + [" leading", "two  spaces", "tab\there", "x"]
        for line in lines { XCTAssertEqual(fromGGUF.encode(line), fromFolder.encode(line), line) }

        let tree = try TestSupport.llamaCppTree()
        let theirs = folder + "-llamacpp.gguf"
        try TestSupport.convertWithLlamaCpp(tree, folder: folder, to: theirs, gpt2Vocabulary: false)
        TestSupport.assertSameGGUF(file, try GGUFFile(path: theirs), keyPrefixes: ["gemma3.", "tokenizer."])
    }
}
